//! Postfix 2.x/3.x: every line shape that carries an SMTP reply.
//!
//! The rules, in the order they are tried on the text after `program[pid]: `:
//!
//! * **Delivery status** (`QID: to=<…>, relay=…, dsn=…, status=S (detail)`,
//!   any delivery agent): one delivery outcome. The reply is the *remote*
//!   one inside the detail: `host H said: <reply> (in reply to X command)`,
//!   `host H refused to talk to me: <reply>`, `SASL authentication failed;
//!   server H said: <reply>`, or the detail itself when it starts with a code
//!   (`status=sent (250 2.0.0 Ok)`). Only the first reply of the detail is
//!   counted: in `250 2.0.0 from MTA(smtp:[…]:10025): 250 2.0.0 Ok` the
//!   first one is what the content filter we delivered to answered, the
//!   second is what the filter was told further down the line. When the
//!   detail has no reply, the line is a status our Postfix generated itself
//!   (connection refused, timeout, local delivery): it is counted with code
//!   `none` and `dsn=` as the enhanced code, because a postmaster wants
//!   "connection timed out to gmail" in the same family as a 421.
//!   `dsn=` is never used when a reply is present: Postfix rewrites it
//!   (a `554 5.7.1` greeting becomes `dsn=4.7.1`).
//! * **Expired** (`QID: from=<…>, status=expired, returned to sender`).
//! * **Client rejects** (`QID|NOQUEUE: reject: STAGE from CLIENT: <reply>;
//!   from=<…> …`, also `milter-reject`, `proxy-reject`, `proxy-accept`,
//!   `reject_warning`, postscreen's `[IP]:port` clients, and cleanup's
//!   `reject: header … helo=<…>: 5.7.1 …`): an inbound reply.
//!   `reject_warning` is logged but never sent, so it is only a warning.
//! * **Per-host client lines** without a status (`QID: host H said: …`,
//!   `QID: host H refused to talk to me: …`, `QID: SASL authentication
//!   failed; server H said: …`): an outbound reply, no delivery outcome —
//!   Postfix tries the next MX or retries later.
//!
//! Any other Postfix line is recognized as informational, unless it seems to
//! carry a reply that none of the rules placed (then it is unrecognized).
//!
//! Trust: the recipient and sender addresses, HELO names, header values and
//! remote reply texts in a line are written by strangers. The fields that
//! decide what is counted (`status=`, the position of the reply) are found
//! by walking Postfix's fixed field order from the left, skipping over
//! addresses as quoted units, so text inside an address or a reply cannot
//! pose as a field of another delivery.

use super::scan::{find, looks_like_reply, reply_at, rfind, split_once};
use super::Record;
use crate::model::{scan_reply, DeliveryStatus, Direction, EnhancedStatus, Mta, Phase, Reply};

/// Parses the text of one Postfix line. `program` is the syslog tag
/// (`postfix/smtp`, `postfix-mx/submission/smtpd`). Returns `None` when the
/// line seems to carry a reply that no rule placed.
pub fn parse<'a>(program: &'a str, message: &'a str) -> Option<Record<'a>> {
    let service = program.rsplit('/').next().unwrap_or(program);
    let body = strip_queue_id(message);
    let record = if let Some(fields) = body.strip_prefix("to=") {
        delivery_status(service, fields)
    } else if body.starts_with("from=<") && find(body, ", status=expired").is_some() {
        Some(Record { delivery: Some(DeliveryStatus::Expired), ..Record::new(Mta::Postfix) })
    } else if let Some(rest) = body.strip_prefix("host ") {
        host_reply(rest).map(|reply| Record { reply: Some(reply), ..Record::new(Mta::Postfix) })
    } else if let Some(rest) = body.strip_prefix("SASL authentication failed; ") {
        sasl_failure(rest).map(|reply| Record { reply: Some(reply), ..Record::new(Mta::Postfix) })
    } else {
        client_action(body)
    };
    match record {
        Some(record) => Some(record),
        None if looks_like_reply(body) => None,
        None => Some(Record::new(Mta::Postfix)),
    }
}

/// Drops `QID: ` or `NOQUEUE: `. Queue ids are hex (short ids) or base-52
/// (long ids, `enable_long_queue_ids`).
fn strip_queue_id(message: &str) -> &str {
    let bytes = message.as_bytes();
    let len = bytes.iter().take(21).take_while(|b| b.is_ascii_alphanumeric()).count();
    if (5..=20).contains(&len) && bytes.get(len) == Some(&b':') && bytes.get(len + 1) == Some(&b' ') {
        &message[len + 2..]
    } else {
        message
    }
}

/// `to=<a@b>, [orig_to=<…>,] relay=…, delay=…, delays=…, dsn=…, status=S (detail)`
fn delivery_status<'a>(service: &str, fields: &'a str) -> Option<Record<'a>> {
    let (recipient, mut rest) = address(fields)?;
    let mut relay = "";
    let mut dsn = None;
    loop {
        rest = rest.strip_prefix(", ")?;
        let eq = rest.find('=')?;
        let (key, value_on) = (&rest[..eq], &rest[eq + 1..]);
        if key == "status" {
            return Some(status(service, recipient, relay, dsn, value_on));
        }
        if key == "orig_to" {
            rest = address(value_on)?.1;
            continue;
        }
        let end = find(value_on, ", ").unwrap_or(value_on.len());
        match key {
            "relay" => relay = &value_on[..end],
            "dsn" => dsn = EnhancedStatus::parse(&value_on.as_bytes()[..end]),
            _ => {}
        }
        rest = &value_on[end..];
    }
}

/// An address as Postfix logs it: `<…>` (a quoted local part may contain
/// `>` or `, `) or a bare word. Returns the address and the text after it.
fn address(text: &str) -> Option<(&str, &str)> {
    let Some(inner) = text.strip_prefix('<') else {
        let end = find(text, ", ").unwrap_or(text.len());
        return Some((&text[..end], &text[end..]));
    };
    let bytes = inner.as_bytes();
    let mut pos = 0;
    if bytes.first() == Some(&b'"') {
        pos = 1;
        while pos < bytes.len() && bytes[pos] != b'"' {
            pos += if bytes[pos] == b'\\' { 2 } else { 1 };
        }
    }
    let close = pos + inner.get(pos..)?.find('>')?;
    Some((&inner[..close], &inner[close + 1..]))
}

fn status<'a>(
    service: &str,
    recipient: &'a str,
    relay: &'a str,
    dsn: Option<EnhancedStatus>,
    value: &'a str,
) -> Record<'a> {
    let word_end = value.find([' ', ',']).unwrap_or(value.len());
    let delivery = match &value[..word_end] {
        "sent" => Some(DeliveryStatus::Sent),
        "deferred" | "SOFTBOUNCE" => Some(DeliveryStatus::Deferred),
        "bounced" => Some(DeliveryStatus::Bounced),
        "expired" => Some(DeliveryStatus::Expired),
        "deliverable" => Some(DeliveryStatus::Deliverable),
        s if s.starts_with("undeliverable") => Some(DeliveryStatus::Undeliverable),
        _ => None,
    };
    // The detail runs to the line's last `)`; the remote text inside may hold
    // parentheses of its own.
    let detail = value[word_end..].strip_prefix(" (").map(|d| d.strip_suffix(')').unwrap_or(d)).unwrap_or("");
    let reply = remote_reply(detail, delivery).or_else(|| {
        dsn.map(|enhanced| Reply {
            code: None,
            enhanced: Some(enhanced),
            text: detail,
            direction: Direction::Outbound,
            phase: local_phase(service, relay, detail),
        })
    });
    let remote_domain = recipient.rsplit_once('@').map(|(_, domain)| domain);
    Record { reply, delivery, remote_domain, ..Record::new(Mta::Postfix) }
}

/// The remote server's reply inside a status detail, if there is one.
fn remote_reply(detail: &str, delivery: Option<DeliveryStatus>) -> Option<Reply<'_>> {
    let detail = detail.strip_prefix("delivery temporarily suspended: ").unwrap_or(detail);
    if let Some(rest) = detail.strip_prefix("host ") {
        return host_reply(rest);
    }
    if let Some(rest) = detail.strip_prefix("SASL authentication failed; ") {
        return sasl_failure(rest);
    }
    let phase = match delivery {
        Some(DeliveryStatus::Sent) => Phase::EndOfData,
        Some(DeliveryStatus::Deliverable | DeliveryStatus::Undeliverable) => Phase::Rcpt,
        _ => Phase::Unknown,
    };
    reply_at(detail, Direction::Outbound, phase)
}

/// After `host `: `NAME[ADDR] said: <reply> (in reply to X command)` or
/// `NAME[ADDR] refused to talk to me: <reply>`.
fn host_reply(rest: &str) -> Option<Reply<'_>> {
    let (_, after_host) = rest.split_once(' ')?;
    if let Some(said) = after_host.strip_prefix("said: ") {
        return said_reply(said);
    }
    let greeting = after_host.strip_prefix("refused to talk to me: ")?;
    reply_at(greeting, Direction::Outbound, Phase::Connect)
}

/// `<reply> (in reply to X command)`; the last such suffix is Postfix's own,
/// earlier ones belong to a nested reply quoted inside the text.
fn said_reply(said: &str) -> Option<Reply<'_>> {
    let (text, phase) = match rfind(said, " (in reply to ") {
        Some(at) => {
            let command = &said[at + " (in reply to ".len()..];
            let command = command.strip_suffix(" command)").unwrap_or(command);
            (&said[..at], Phase::from_command(command))
        }
        None => (said, Phase::Unknown),
    };
    reply_at(text, Direction::Outbound, phase)
}

/// After `SASL authentication failed; `: `server H[ADDR] said: 535 …`.
/// Postfix joins a multi-line reply here with `?` instead of a space; the
/// first line's code is what counts, so the join does not matter.
fn sasl_failure(rest: &str) -> Option<Reply<'_>> {
    let (_, said) = split_once(rest, " said: ")?;
    reply_at(said, Direction::Outbound, Phase::Auth)
}

/// Where a locally generated status failed, from Postfix's fixed wording.
fn local_phase(service: &str, relay: &str, detail: &str) -> Phase {
    let detail = detail.strip_prefix("delivery temporarily suspended: ").unwrap_or(detail);
    if let Some(at) = find(detail, " while ") {
        let doing = &detail[at + " while ".len()..];
        return if doing.contains("greeting") {
            Phase::Connect
        } else if ["EHLO", "HELO", "LHLO", "STARTTLS", "TLS"].iter().any(|w| doing.contains(w)) {
            Phase::Helo
        } else if doing.contains("MAIL FROM") {
            Phase::Mail
        } else if doing.contains("RCPT TO") {
            Phase::Rcpt
        } else if doing.contains("end of data") || doing.contains("final server response") {
            Phase::EndOfData
        } else if doing.contains("DATA") || doing.contains("message body") {
            Phase::Data
        } else {
            Phase::Unknown
        };
    }
    if detail.starts_with("connect to ")
        || detail.starts_with("Host or domain name not found")
        || detail.contains("does not accept mail (nullMX)")
        || detail.contains("loops back to myself")
    {
        return Phase::Connect;
    }
    if detail.starts_with("TLS is required") || detail.starts_with("Server certificate not") {
        return Phase::Helo;
    }
    let networked = matches!(service, "smtp" | "lmtp") && relay.contains('[');
    if networked {
        Phase::Unknown
    } else {
        Phase::None
    }
}

/// `ACTION: STAGE from CLIENT: <reply>; from=<…> to=<…> proto=… helo=<…>`
/// as written by smtpd, postscreen and cleanup.
fn client_action(body: &str) -> Option<Record<'_>> {
    let colon = body.find(": ")?;
    let action = &body[..colon];
    let rest = &body[colon + 2..];
    let (delivery, warning_only) = match action {
        "reject" | "milter-reject" | "proxy-reject" => (Some(DeliveryStatus::Rejected), false),
        "reject_warning" => (None, true),
        "proxy-accept" => (None, false),
        _ => return None,
    };
    let (stage, reply_text) = if let Some(header) = header_check(rest) {
        (header, header_reply(rest))
    } else {
        let stage_end = rest.find([' ', ':'])?;
        let stage = &rest[..stage_end];
        let after_stage = &rest[stage_end..];
        let text = match after_stage.strip_prefix(" from ") {
            Some(client) => after_client(client),
            None => after_stage.strip_prefix(": "),
        };
        (stage, text.map(trim_trailer))
    };
    let phase = if header_check(rest).is_some() { Phase::EndOfData } else { Phase::from_command(stage) };
    let reply = reply_text.and_then(|text| reply_at(text, Direction::Inbound, phase));
    Some(Record { reply, delivery, warning_only, ..Record::new(Mta::Postfix) })
}

/// cleanup's header/body checks: `header Subject: … from H[IP]; from=<…> …`.
fn header_check(rest: &str) -> Option<&str> {
    ["header ", "body ", "mime-header ", "nested-header ", "content "].into_iter().find(|kind| rest.starts_with(kind))
}

/// The reply after `helo=<…>: `. The HELO name is the last field a
/// stranger writes, and Postfix logs it whole (spaces, `<`, `>` and all), so
/// a HELO can spell `helo=<x>: 250 …` itself; the reply text that follows it
/// comes from the admin's check table. So the reply is the *last* `>: `
/// followed by a code: nothing a stranger wrote comes after it.
fn header_reply(rest: &str) -> Option<&str> {
    let start = match find(rest, " helo=<") {
        Some(at) => at,
        None => find(rest, "; from=<")?,
    };
    let tail = &rest[start..];
    memchr::memmem::rfind_iter(tail.as_bytes(), b">: ")
        .map(|at| &tail[at + 3..])
        .find(|reply| scan_reply(reply).is_some())
        .or_else(|| split_once(tail, ">: ").map(|(_, reply)| reply))
}

/// After ` from `: `name[addr]: ` (smtpd) or `[addr]:port: ` (postscreen).
fn after_client(client: &str) -> Option<&str> {
    let close = client.find(']')?;
    let mut rest = &client[close + 1..];
    if let Some(port) = rest.strip_prefix(':') {
        let digits = port.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            rest = &port[digits..];
        }
    }
    rest.strip_prefix(": ")
}

/// The reply text ends where Postfix appends the envelope: the last
/// `; from=<`, `; to=<` or `; proto=` (the reply itself may contain `; `).
fn trim_trailer(text: &str) -> &str {
    ["; from=<", "; to=<", "; proto="].into_iter().find_map(|marker| rfind(text, marker)).map_or(text, |at| &text[..at])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ReplyClass, ReplyCode};

    /// (code, enhanced, direction, phase, delivery, warning_only)
    type Want = (Option<u16>, Option<&'static str>, Option<Direction>, Option<Phase>, Option<DeliveryStatus>, bool);

    fn check(program: &str, message: &str, want: Want) {
        let record = parse(program, message).unwrap_or_else(|| panic!("unrecognized: {message}"));
        let reply = record.reply;
        let got: Want = (
            reply.and_then(|r| r.code).map(ReplyCode::value),
            None,
            reply.map(|r| r.direction),
            reply.map(|r| r.phase),
            record.delivery,
            record.warning_only,
        );
        let got_enhanced = reply.and_then(|r| r.enhanced).map(|e| e.to_string());
        assert_eq!(got_enhanced.as_deref(), want.1, "enhanced of: {message}");
        assert_eq!((got.0, got.2, got.3, got.4, got.5), (want.0, want.2, want.3, want.4, want.5), "{message}");
    }

    use DeliveryStatus::*;
    use Direction::*;

    #[test]
    fn delivery_status_lines() {
        let out = Some(Outbound);
        let cases: &[(&str, &str, Want)] = &[
            ("postfix/smtp", "776E41855DB2: to=<invalid@example.com>, relay=mx.example.com[11.22.33.44]:25, delay=1.9, delays=0/0/1.5/0.37, dsn=5.1.1, status=bounced (host mx.example.com[11.22.33.44] said: 550 5.1.1 <invalid@example.com> User unknown (in reply to RCPT TO command))",
             (Some(550), Some("5.1.1"), out, Some(Phase::Rcpt), Some(Bounced), false)),
            ("postfix-10.20.30.40/smtp", "0C31D3D1E6: to=<r@aol.com>, relay=mx[11.22.33.44]:25, delay=18910, delays=18900/8.9/0.69/0.03, dsn=4.7.0, status=deferred (host mx[11.22.33.44] said: 421 4.7.0 [TSS04] Messages from 10.20.30.40 temporarily deferred due to user complaints - 4.16.55.1; see https://help.yahoo.com/kb/postmaster/SLN3434.html (in reply to MAIL FROM command))",
             (Some(421), Some("4.7.0"), out, Some(Phase::Mail), Some(Deferred), false)),
            ("postfix/smtp", "E389F657C: to=<h@h.com>, orig_to=<h@g.com>, relay=h[199.3.254.155]:25, delay=0.26, delays=0.09/0.01/0.13/0.02, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 2ACE7800D0)",
             (Some(250), Some("2.0.0"), out, Some(Phase::EndOfData), Some(Sent), false)),
            ("postfix/smtp", "1310930001DB: to=<r@dst3.example.com>, relay=aspmx.l.google.com[74.125.143.26]:25, delay=0.34, delays=0.02/0.03/0.26/0.03, dsn=5.1.1, status=bounced (host aspmx.l.google.com[74.125.143.26] said: 550-5.1.1 The email account that you tried to reach does not exist. Please try 550-5.1.1 double-checking. Learn more at 550 5.1.1  https://support.google.com/mail/?p=NoSuchUser od20si504618ejb.621 - gsmtp (in reply to RCPT TO command))",
             (Some(550), Some("5.1.1"), out, Some(Phase::Rcpt), Some(Bounced), false)),
            ("postfix/smtp", "A17F830001CA: to=<r@r.com>, relay=m[141.30.67.69]:25, delay=0.75, delays=0/0.03/0.66/0.06, dsn=4.0.0, status=deferred (host m[141.30.67.69] said: 451-You have been greylisted. 451 this mail from you in 42 seconds (in reply to RCPT TO command))",
             (Some(451), None, out, Some(Phase::Rcpt), Some(Deferred), false)),
            ("postfix/error", "2DC5552A34: to=<user@yahoo.com>, relay=none, delay=63495, delays=63350/144/0/0, dsn=4.4.2, status=deferred (delivery temporarily suspended: lost connection with mta7.am0.yahoodns.net[98.136.216.22] while sending RCPT TO)",
             (None, Some("4.4.2"), out, Some(Phase::Rcpt), Some(Deferred), false)),
            ("postfix/smtp", "1310930001DB: to=<r42@example.com>, relay=none, delay=0.09, delays=0.02/0.05/0.02/0, dsn=5.1.0, status=bounced (Domain example.com does not accept mail (nullMX))",
             (None, Some("5.1.0"), out, Some(Phase::Connect), Some(Bounced), false)),
            ("postfix/local", "892A0205B6: to=ghdsgfhdslfh@localhost, relay=local, delay=0.05, delays=0.02/0/0/0.02, dsn=5.1.1, status=bounced (unknown user: \"ghdsgfhdslfh\")",
             (None, Some("5.1.1"), out, Some(Phase::None), Some(Bounced), false)),
            ("postfix/smtp", "3E29030F8637E: to=<user@yahoo.com>, relay=none, delay=0.01, delays=0.01/0/0/0, dsn=5.1.1, status=undeliverable-but-not-cached (User unknown in virtual alias table)",
             (None, Some("5.1.1"), out, Some(Phase::None), Some(Undeliverable), false)),
            ("postfix/smtp", "BA8F630001DA: to=<r@dst1.example.com>, relay=127.0.0.1[127.0.0.1]:10024, delay=0.38, delays=0.23/0.02/0/0.13, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 1310930001DB)",
             (Some(250), Some("2.0.0"), out, Some(Phase::EndOfData), Some(Sent), false)),
            ("postfix/lmtp", "AD6E41CDC05C: to=<admin@example.com>, relay=sub1.example.com[private/dovecot-lmtp], delay=0.15, delays=0.04/0/0.02/0.08, dsn=2.0.0, status=sent (250 2.0.0 <admin@example.com> qYyyBMsl9FRuZQAAA15QOA Saved)",
             (Some(250), Some("2.0.0"), out, Some(Phase::EndOfData), Some(Sent), false)),
            ("postfix/smtp", "CCAE27A4: to=<cpan-testers@perl.org>, relay=mx.develooper.com[63.251.223.176], delay=9, status=sent (250 Queued! 1108907778 qp 18309 <2005@fangorn>)",
             (Some(250), None, out, Some(Phase::EndOfData), Some(Sent), false)),
            ("postfix/smtp", "84179E35: to=<secdalek@gmail.coml>, relay=none, delay=0, status=bounced (Host or domain name not found. Name service error for name=gmail.coml type=A: Host not found)",
             (None, None, None, None, Some(Bounced), false)),
            ("postfix/smtp", "7EE668039: to=<user@example.com>, relay=mail.example.com[1.2.3.4]:25, delay=3.6, delays=0.08/0.02/0.85/0.14, tls=dane, dsn=2.1.5, status=sent (250 2.0.0 Ok: queued as 153053D)",
             (Some(250), Some("2.0.0"), out, Some(Phase::EndOfData), Some(Sent), false)),
            ("postfix/smtp", "4E74613FE76: to=<r@gmail.com>, relay=gmail-smtp-in.l.google.com[2607:f8b0:400e:c04::1b]:25, delay=1.9, delays=0.05/0/1.1/0.71, dsn=5.7.1, status=bounced (host gmail-smtp-in.l.google.com[2607:f8b0:400e:c04::1b] said: 550-5.7.1 [2607:4100:3:25:100::2      12] Our system has detected that this 550-5.7.1 message is likely unsolicited mail. 550 5.7.1 more information. qc12si8475009pab.211 - gsmtp (in reply to end of DATA command))",
             (Some(550), Some("5.7.1"), out, Some(Phase::EndOfData), Some(Bounced), false)),
            ("postfix/smtp", "ABC123: to=<x@y.com>, relay=y[1.2.3.4]:25, delay=1, delays=1/0/0/0, dsn=4.7.1, status=deferred (host y[1.2.3.4] refused to talk to me: 554 5.7.1 Service unavailable; Client host [5.6.7.8] blocked using zen.spamhaus.org)",
             (Some(554), Some("5.7.1"), out, Some(Phase::Connect), Some(Deferred), false)),
            ("postfix/smtp", "ABC123: to=<x@y.com>, relay=y[1.2.3.4]:25, delay=1, delays=1/0/0/0, dsn=4.4.1, status=deferred (connect to y[1.2.3.4]:25: Connection refused)",
             (None, Some("4.4.1"), out, Some(Phase::Connect), Some(Deferred), false)),
            ("postfix/smtp", "ABC123: to=<x@y.com>, relay=y[1.2.3.4]:25, delay=1, delays=1/0/0/0, dsn=4.7.8, status=deferred (SASL authentication failed; server y[1.2.3.4] said: 535 5.7.8 Error: authentication failed)",
             (Some(535), Some("5.7.8"), out, Some(Phase::Auth), Some(Deferred), false)),
            ("postfix/smtp", "ABC123: to=<x@y.com>, relay=y[1.2.3.4]:25, delay=1, delays=1/0/0/0, dsn=2.1.5, status=deliverable (250 2.1.5 Ok)",
             (Some(250), Some("2.1.5"), out, Some(Phase::Rcpt), Some(Deliverable), false)),
            ("postfix/pipe", "ABC123: to=<x@y.com>, relay=dovecot, delay=1, delays=1/0/0/0, dsn=2.0.0, status=sent (delivered via dovecot service)",
             (None, Some("2.0.0"), out, Some(Phase::None), Some(Sent), false)),
            ("postfix/smtp", "ABC123: to=<x@y.com>, relay=y[1.2.3.4]:25, delay=1, delays=1/0/0/0, dsn=4.4.2, status=deferred (conversation with y[1.2.3.4] timed out while receiving the initial server greeting)",
             (None, Some("4.4.2"), out, Some(Phase::Connect), Some(Deferred), false)),
            ("postfix/smtp", "ABC123: to=<x@y.com>, relay=none, delay=1, delays=1/0/0/0, dsn=4.7.5, status=deferred (TLS is required, but was not offered by host y[1.2.3.4])",
             (None, Some("4.7.5"), out, Some(Phase::Helo), Some(Deferred), false)),
            ("postfix/qmgr", "B54DA300087: from=<r@company.com>, status=expired, returned to sender",
             (None, None, None, None, Some(Expired), false)),
        ];
        for (program, message, want) in cases {
            check(program, message, *want);
        }
    }

    #[test]
    fn an_address_cannot_pose_as_a_field() {
        // A stranger picks a recipient that spells out a successful delivery.
        let message = "ABC123: to=<\"x>, relay=a[1.1.1.1]:25, dsn=2.0.0, status=sent (250 2.0.0 ok)\"@victim.example>, relay=v[2.2.2.2]:25, delay=1, delays=1/0/0/0, dsn=5.1.1, status=bounced (host v[2.2.2.2] said: 550 5.1.1 no such user (in reply to RCPT TO command))";
        check(
            "postfix/smtp",
            message,
            (Some(550), Some("5.1.1"), Some(Outbound), Some(Phase::Rcpt), Some(Bounced), false),
        );
    }

    #[test]
    fn a_helo_name_cannot_pose_as_the_reply() {
        // Postfix logs the HELO argument whole, spaces included.
        check(
            "postfix/cleanup",
            "4C3F2E05B9: reject: header Subject: hi from h[1.2.3.4]; from=<a@b.c> to=<d@e.f> proto=ESMTP helo=<evil helo=<x>: 250 2.0.0 fine>: 5.7.1 Spam subject",
            (None, Some("5.7.1"), Some(Inbound), Some(Phase::EndOfData), Some(Rejected), false),
        );
    }

    #[test]
    fn client_rejects() {
        let inb = Some(Inbound);
        let cases: &[(&str, &str, Want)] = &[
            ("postfix/smtpd", "NOQUEUE: reject: RCPT from 1-2-3-4-example.com[1.2.3.4]: 554 5.7.1 <smtp@example.com>: Relay access denied; from=<john@example.com> to=<smtp@example.org> proto=SMTP helo=<198.51.100.17>",
             (Some(554), Some("5.7.1"), inb, Some(Phase::Rcpt), Some(Rejected), false)),
            ("postfix/smtpd", "00ADB3C0899: reject: RCPT from example.com[192.0.2.1]: 550 5.1.1 <sales@server.com>: Recipient address rejected: User unknown in local recipient table; from=<x@example.com> to=<sales@server.com> proto=ESMTP helo=<mail.example.com>",
             (Some(550), Some("5.1.1"), inb, Some(Phase::Rcpt), Some(Rejected), false)),
            ("postfix/smtpd", "NOQUEUE: reject: CONNECT from unknown[192.0.2.114]: 450 4.7.25 Client host rejected: cannot find your hostname, [178.215.236.114]; proto=SMTP",
             (Some(450), Some("4.7.25"), inb, Some(Phase::Connect), Some(Rejected), false)),
            ("postfix-smo/submission/smtpd", "44JCRG5tYPzCqt2: reject: BDAT from signing-milter.example.com[192.0.2.109]: 550 5.5.3 <DATA>: Data command rejected: Multi-recipient bounce; from=<> to=<some@example.com> proto=ESMTP helo=<domain.tld>",
             (Some(550), Some("5.5.3"), inb, Some(Phase::Data), Some(Rejected), false)),
            ("postfix/smtpd", "NOQUEUE: reject_warning: RCPT from example.com[93.184.216.34]: 553 5.7.1 <sender@example.com>: Sender address rejected: not owned by user ph123; from=<sender@example.com> to=<r@example.com> proto=ESMTP helo=<example.com>",
             (Some(553), Some("5.7.1"), inb, Some(Phase::Rcpt), None, true)),
            ("postfix/smtpd", "NOQUEUE: reject: VRFY from unknown[2001:968:9999:20:88b:9b7d:2a54:2bd2]: 454 4.7.1 <aap@henk.com>: Relay access denied; to=<aap@henk.com> proto=SMTP helo=<me>",
             (Some(454), Some("4.7.1"), inb, Some(Phase::Other), Some(Rejected), false)),
            ("postfix/smtpd", "NOQUEUE: reject: RCPT from x[61.238.241.86]: 550 5.12.345 <user@example.com>: Recipient address rejected: Some error message; from=<w@c.com> to=<user@example.com> proto=ESMTP helo=<e.com>",
             (Some(550), None, inb, Some(Phase::Rcpt), Some(Rejected), false)),
            ("postfix/postscreen", "NOQUEUE: reject: RCPT from [216.245.194.173]:60591: 550 5.7.1 Service unavailable; client [216.245.194.173] blocked using rbl.example.com; from=<s@example.com>, to=<g@example.com>, proto=ESMTP, helo=<b.example.com>",
             (Some(550), Some("5.7.1"), inb, Some(Phase::Rcpt), Some(Rejected), false)),
            ("postfix/smtpd", "1D8CC1CA0A7F: milter-reject: DATA from 66-220-155-151.mail-mail.facebook.com[192.0.2.151]: 550 5.7.1 Command rejected; from=<s@mail.example.com> to=<h@example.com> proto=ESMTP helo=<x>",
             (Some(550), Some("5.7.1"), inb, Some(Phase::Data), Some(Rejected), false)),
            ("postfix/cleanup", "B37FD2E05B9: milter-reject: END-OF-MESSAGE from h-ca74[254.65.43.194]: 4.7.1 Try again later; from=<b@h.com> to=<h@h.com> proto=ESMTP helo=<h-ca74>",
             (None, Some("4.7.1"), inb, Some(Phase::EndOfData), Some(Rejected), false)),
            ("postfix/smtpd", "proxy-reject: END-OF-MESSAGE: 554 5.7.0 Reject, contact postmaster@example.com, id=31619-02 - spam; from=<> to=<u2@example2.com> proto=SMTP helo=<17.33.12.53>",
             (Some(554), Some("5.7.0"), inb, Some(Phase::EndOfData), Some(Rejected), false)),
            ("postfix/smtpd", "proxy-accept: END-OF-MESSAGE: 250 2.0.0 from MTA(smtp:[127.0.0.1]:10013): 250 2.0.0 Ok: queued as DF66E940333; from=<u1@t.example.com> to=<u2@example2.com> proto=ESMTP helo=<[127.0.0.1]>",
             (Some(250), Some("2.0.0"), inb, Some(Phase::EndOfData), None, false)),
            ("postfix/smtpd", "proxy-reject: END-OF-MESSAGE: ; from=<u1@t.example.com> to=<u2@example2.com> proto=ESMTP helo=<[192.168.0.16]>",
             (None, None, None, None, Some(Rejected), false)),
            ("postfix/cleanup", "4C3F2E05B9: reject: header Subject: Invoice #123 overdue; from=<x> from h[1.2.3.4]; from=<a@b.c> to=<d@e.f> proto=ESMTP helo=<h.example>: 5.7.1 Spam subject",
             (None, Some("5.7.1"), inb, Some(Phase::EndOfData), Some(Rejected), false)),
            ("postfix/postscreen", "NOQUEUE: reject: CONNECT from [192.0.2.1]:4321: too many connections",
             (None, None, None, None, Some(Rejected), false)),
        ];
        for (program, message, want) in cases {
            check(program, message, *want);
        }
    }

    #[test]
    fn client_side_lines_without_status() {
        let out = Some(Outbound);
        let cases: &[(&str, &str, Want)] = &[
            ("postfix/smtp", "1234ABCDEF: host relay.example.com[192.0.2.1] said: 450 4.1.8 root@localhost.localdomain: Sender address rejected: Domain not found (in reply to RCPT TO command)",
             (Some(450), Some("4.1.8"), out, Some(Phase::Rcpt), None, false)),
            ("postfix/smtp", "40197AA: host mg2.egov.bg[213.91.191.86] refused to talk to me: 450 4.3.2 try again later",
             (Some(450), Some("4.3.2"), out, Some(Phase::Connect), None, false)),
            ("postfix/smtp", "D0F29603B4: SASL authentication failed; server xyz.example.com[1.2.3.4] said: 535 5.7.8 Error: authentication failed: authentication failure",
             (Some(535), Some("5.7.8"), out, Some(Phase::Auth), None, false)),
        ];
        for (program, message, want) in cases {
            check(program, message, *want);
        }
    }

    #[test]
    fn numbers_that_are_not_codes() {
        for (program, message) in [
            ("postfix/smtpd", "warning: Message delivery request rate limit exceeded: 334 from spam.example.com[192.0.2.227] for service submission"),
            ("postfix/postscreen", "PREGREET 14 after 0.08 from [192.0.2.2]:59415: EHLO ylmf-pc\\r\\n"),
            ("postfix/postscreen", "HANGUP after 16 from [192.0.2.3]:48119 in tests after SMTP handshake"),
            ("postfix/anvil", "statistics: max connection rate 2/60s for (submission:68.183.218.8) at Dec  7 13:28:01"),
            ("postfix/submission/smtpd", "Anonymous TLS connection established from i59f7fc34.versanet.de[89.247.252.52]: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519"),
            ("postfix/postscreen", "DNSBL rank 2 for [1.2.3.4]:55382"),
            ("postfix/smtpd", "warning: unknown[192.0.2.237]:55729: SASL LOGIN authentication failed: authentication failure"),
            ("postfix/smtpd", "disconnect from unknown[1.2.3.4] ehlo=1 mail=1 rcpt=0/1 data=0/1 rset=1 quit=1 commands=4/6"),
            ("postfix/smtp", "745137AA: lost connection with hotmail-com.olc.protection.outlook.com[104.47.55.161] while sending RCPT TO"),
            ("postfix/qmgr", "17CCA8044: from=<a@b.c>, size=1234, nrcpt=1 (queue active)"),
            ("postfix/smtpd", "NOQUEUE: discard: RCPT from x[1.2.3.4]: <a@b>: Sender address triggers DISCARD action; from=<a@b> to=<c@d> proto=ESMTP helo=<x>"),
        ] {
            let record = parse(program, message).unwrap_or_else(|| panic!("unrecognized: {message}"));
            assert_eq!(record.reply, None, "{message}");
            assert_eq!(record.delivery, None, "{message}");
        }
    }

    #[test]
    fn an_unplaced_reply_is_unrecognized() {
        assert_eq!(parse("postfix/smtp", "ABC123: something new: 550 5.1.1 unknown user"), None);
        assert_eq!(parse("postfix/smtp", "ABC123: odd host x said: 550 no"), None);
    }

    #[test]
    fn class_comes_from_the_basic_code() {
        let record = parse("postfix/smtp", "ABC123: to=<x@y.com>, relay=y[1.2.3.4]:25, delay=1, delays=1/0/0/0, dsn=4.7.1, status=deferred (host y[1.2.3.4] refused to talk to me: 554 5.7.1 no)").unwrap();
        assert_eq!(record.reply.unwrap().class(), ReplyClass::Permanent);
        assert_eq!(record.remote_domain, Some("y.com"));
    }
}
