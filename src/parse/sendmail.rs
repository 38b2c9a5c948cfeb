//! Sendmail 8.x through syslog (`sendmail`, `sm-mta`, `sm-msp-queue`,
//! `sm-acceptingconnections` …).
//!
//! The rules, tried on the text after `program[pid]: ` and the queue id:
//!
//! * **Delivery status** `to=<a>,<b>, [ctladdr=…,] delay=…, xdelay=…,
//!   mailer=…, pri=…, relay=…, dsn=X.Y.Z, [reply=…,] stat=…`: Sendmail
//!   writes one line per attempt for a group of recipients with the same
//!   outcome (and repeats the line, each with its share of the list and a
//!   ` [more]` mark, when the list is too long for one syslog record). The
//!   line counts **once per listed recipient**, for both its outcome and its
//!   reply, so that `mta="sendmail"` counts the same thing as Postfix's one
//!   status line per recipient. The outcome follows `dsn=` (Sendmail's own
//!   field, written before any remote text): 2.x.x sent, 4.x.x deferred,
//!   5.x.x bounced; without `dsn=` the `stat=` word decides (`Sent`,
//!   `Deferred`, anything else bounced); `stat=queued` and
//!   `stat=quarantined` (a milter's quarantine: the message waits in the
//!   queue for the postmaster) are no outcome.
//!   A `to=` line with neither `mailer=` nor `dsn=` (`to=<a>, delay=…,
//!   pri=…, stat=<milter text>` after `Milter: data, reject=…`) is a message
//!   Sendmail refused at the end of its data and never gave to a mailer: no
//!   outcome, the `reject=` line counted the rejection.
//!   The reply is `reply=` (the remote's first reply line) when present,
//!   else the reply after `stat=Deferred: ` — the same reply when both are
//!   there, so it counts once. `stat=Sent (Ok: queued as …)` keeps only the
//!   text: Sendmail strips the remote's `250` and enhanced code, so such a
//!   line (and `stat=User unknown`, `stat=Deferred: Connection refused by …`,
//!   local deliveries) counts as a status Sendmail generated, like Postfix's
//!   statuses without a reply: code `none` and `dsn=` as the enhanced code.
//!   The phase is `end_of_data` for a successful SMTP delivery, `connect`
//!   when the text says the connection failed, `none` for a non-SMTP
//!   mailer (local, prog, cyrus …) and `unknown` otherwise: Sendmail does
//!   not log which command a reply answered.
//! * **Ruleset rejections** `ruleset=check_rcpt, arg1=<…>, relay=…,
//!   reject=550 5.7.1 …`: an inbound reply and a rejection; the phase
//!   follows the ruleset (`check_relay` connect, `check_mail` mail,
//!   `check_rcpt` rcpt, `check_data`/`check_eom`/`check_eoh` …).
//! * **Milter rejections** `Milter: to=<…>, reject=550 …` (also `from=`,
//!   `connect`, `helo`, `data`): the same, phase from the milter step.
//!   `Milter: data, discard` and `milter=NAME, quarantine=REASON` are
//!   filter actions without a reply.
//! * **Protocol errors** `host.: SMTP DATA-2 protocol error: 571 …`: a
//!   remote reply that Sendmail did not expect; outbound, no outcome (the
//!   `to=` line that follows carries it).
//! * **Refused addresses** `QID: <addr>... User unknown` (also an error
//!   mailer's text, `Invalid route address`, `No such user here`): Sendmail
//!   refused a client's RCPT (or MAIL) address with a 5xx it does not log:
//!   a rejection without a reply.
//! * **Queue return** `QID: QID2: DSN: Cannot send message for 5 days`: the
//!   message stayed queued past `Timeout.queuereturn` and goes back to its
//!   sender: expired (once per message, as Postfix's `status=expired`). The
//!   other `DSN:` lines (`DSN: User unknown`, the `Warning: could not send
//!   message for past 4 hours` delay notice) only name the notification
//!   Sendmail made; the `to=` line counted the outcome.
//!
//! Everything else (`from=` lines, AUTH failures, `did not issue
//! MAIL/EXPN/VRFY/ETRN`, notify lines, octal-escaped texts) is recognized
//! without a reply, unless it seems to carry a reply that no rule placed.
//!
//! Trust: addresses (`to=`, `arg1=`, `from=`), relay names and reply texts
//! are written by strangers. Fields are walked from the left in Sendmail's
//! fixed order, addresses taken whole (`<…>` with quoted parts); `dsn=` is
//! read before any remote text, and `reply=` ends at the first `, stat=`
//! after it, so remote text can only shorten its own reply.

use super::facts::{
    self, Action, AuthMethod, CipherClass, Filter, FilterAction, Notification, Received, Session, SessionError,
    SessionEvent, Tls, TlsProtocol, TlsTrust,
};
use super::scan::{address_list, angle_len, find, looks_like_reply, reply_at, rfind, unit_window};
use super::Record;
use crate::model::{DeliveryStatus, Direction, EnhancedStatus, Mta, Phase, Reply, ReplyClass};

/// Parses the text of one Sendmail line (after the syslog envelope).
/// Returns `None` when the line seems to carry a reply that no rule placed.
pub fn parse(message: &str) -> Option<Record<'_>> {
    let body = strip_queue_ids(message);
    let record = if let Some(fields) = body.strip_prefix("to=") {
        Some(delivery(fields))
    } else if let Some(rest) = body.strip_prefix("ruleset=") {
        Some(ruleset(rest))
    } else if let Some(rest) = body.strip_prefix("Milter") {
        Some(milter(rest))
    } else if let Some(rest) = body.strip_prefix("milter=") {
        let mut record = Record::new(Mta::Sendmail);
        if find(rest, ", quarantine=").is_some() {
            record.facts.filter = Some(FilterAction { filter: Filter::Milter, action: Action::Quarantine });
        }
        Some(record)
    } else if let Some(fields) = body.strip_prefix("from=") {
        received(fields)
    } else if let Some(rest) = body.strip_prefix("DSN: ") {
        Some(notification(rest))
    } else if let Some(rest) = body.strip_prefix("lost input channel from ") {
        lost_input(rest)
    } else if let Some(rest) = body.strip_prefix("timeout waiting for input from ") {
        timeout(rest)
    } else if body.starts_with("collect: premature EOM: ") {
        // The client went away in the message data: Sendmail says so here,
        // not with `lost input channel`, and names no daemon.
        let mut record = Record::new(Mta::Sendmail);
        let event = SessionEvent::Error { error: SessionError::LostConnection, phase: Phase::Data, disconnect: false };
        record.facts.session = Some(Session { service: "unknown", event });
        Some(record)
    } else if let Some(rest) = body.strip_prefix("AUTH failure (") {
        let method = &rest[..rest.find(')')?];
        let mut record = Record::new(Mta::Sendmail);
        record.facts.auth_failure = Some(AuthMethod::parse(method));
        Some(record)
    } else if let Some(rest) = body.strip_prefix("STARTTLS=") {
        starttls(rest)
    } else if let Some(at) = find(body, " protocol error: ") {
        protocol_error(body, at)
    } else if refused_address(body) {
        Some(Record { delivery: Some(DeliveryStatus::Rejected), ..Record::new(Mta::Sendmail) })
    } else {
        None
    };
    match record {
        Some(record) => Some(record),
        None if looks_like_reply(body) => None,
        None => Some(Record::new(Mta::Sendmail)),
    }
}

/// `<addr>... text`: the note Sendmail logs when it refuses an address a
/// client gave (the text is what the client got, after a code Sendmail does
/// not log). A reply-like text is left to the caller.
fn refused_address(body: &str) -> bool {
    angle_len(body.as_bytes())
        .and_then(|len| body[len..].strip_prefix("... "))
        .is_some_and(|text| !text.is_empty() && !looks_like_reply(text))
}

/// Drops `QID: ` (and a second `QID: ` on DSN and notify lines, and the
/// `[2]` Sendmail adds to a record split over several syslog lines).
fn strip_queue_ids(message: &str) -> &str {
    let mut rest = message;
    for _ in 0..2 {
        let b = rest.as_bytes();
        let len = b.iter().take(21).take_while(|c| c.is_ascii_alphanumeric()).count();
        if !(8..=20).contains(&len) {
            break;
        }
        let mut end = len;
        if b.get(end) == Some(&b'[') {
            let digits = b[end + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if digits > 0 && b.get(end + 1 + digits) == Some(&b']') {
                end += digits + 2;
            }
        }
        match rest[end..].strip_prefix(": ") {
            Some(after) => rest = after,
            None => break,
        }
    }
    rest
}

/// After `to=`: the recipient list, then `, key=value` fields; `stat=` is
/// the last one and runs to the end of the line.
fn delivery(fields: &str) -> Record<'_> {
    let (recipients, list_len) = address_list(fields);
    let first = &fields[..list_len];
    let remote_domain = first
        .split(',')
        .next()
        .map(|a| a.trim_matches(['<', '>']))
        .and_then(|a| a.rsplit_once('@'))
        .map(|(_, domain)| domain);
    let mut rest = &fields[list_len..];
    let (mut mailer, mut relay, mut dsn, mut reply_field, mut stat) = ("", "", None, None, None);
    let (mut delay, mut xdelay) = (None, None);
    while let Some(field) = rest.strip_prefix(", ") {
        // The `=` is looked for in this field only (up to the next `, `),
        // so a run of fields without one costs each field's length, not
        // the rest of the line each time.
        let next = find(field, ", ");
        let eq = field[..next.unwrap_or(field.len())].find('=');
        let Some(eq) = eq.filter(|&eq| !field[..eq].contains(' ')) else {
            // ` [more]` and other words between fields.
            match next {
                Some(next) => {
                    rest = &field[next..];
                    continue;
                }
                None => break,
            }
        };
        let key = &field[..eq];
        let value_on = &field[eq + 1..];
        let end = match key {
            "stat" => {
                stat = Some(value_on);
                break;
            }
            "reply" => find(value_on, ", stat=").unwrap_or(value_on.len()),
            _ => find(value_on, ", ").unwrap_or(value_on.len()),
        };
        let value = &value_on[..end];
        match key {
            "mailer" => mailer = value,
            "relay" => relay = value,
            "dsn" => dsn = EnhancedStatus::parse(value.as_bytes()),
            "reply" => reply_field = Some(value),
            "delay" => delay = facts::clock_duration(value),
            "xdelay" => xdelay = facts::clock_duration(value),
            _ => {}
        }
        rest = &value_on[end..];
    }
    let stat_word = stat.map(|s| &s[..s.find([' ', ':', '(']).unwrap_or(s.len())]);
    let outcome = match (stat_word, dsn) {
        (Some("queued" | "quarantined"), _) => None,
        (_, None) if mailer.is_empty() => None,
        (_, Some(dsn)) => Some(match dsn.class_digit() {
            2 => DeliveryStatus::Sent,
            4 => DeliveryStatus::Deferred,
            _ => DeliveryStatus::Bounced,
        }),
        (Some("Sent"), None) => Some(DeliveryStatus::Sent),
        (Some("Deferred"), None) => Some(DeliveryStatus::Deferred),
        (Some(_), None) => Some(DeliveryStatus::Bounced),
        (None, None) => None,
    };
    let smtp = mailer.contains("smtp") || mailer == "relay" || relay.contains('[');
    let phase = if outcome == Some(DeliveryStatus::Sent) { Phase::EndOfData } else { Phase::Unknown };
    let detail = stat.unwrap_or("");
    let reply = reply_field
        .and_then(|text| reply_at(text, Direction::Outbound, phase))
        .or_else(|| detail.strip_prefix("Deferred: ").and_then(|t| reply_at(t, Direction::Outbound, phase)))
        .or_else(|| {
            dsn.map(|enhanced| Reply {
                code: None,
                enhanced: Some(enhanced),
                text: detail,
                direction: Direction::Outbound,
                phase: generated_phase(smtp, outcome, detail),
            })
        });
    let mut record = Record { reply, delivery: outcome, remote_domain, recipients, ..Record::new(Mta::Sendmail) };
    // A `stat=queued` line or a milter's end-of-data verdict is no delivery attempt.
    if outcome.is_some() && !mailer.is_empty() {
        record.facts.delay = delay;
        record.facts.attempt = xdelay;
    }
    record
}

/// After `from=`: `<a@b>, size=N, class=0, nrcpts=M, msgid=<…>, proto=…,
/// daemon=MTA, relay=…`, logged when a transaction ends. With no recipient
/// accepted (`nrcpts=0`) nothing was received. The sender is taken whole.
fn received(fields: &str) -> Option<Record<'_>> {
    let skip = angle_len(fields.as_bytes()).unwrap_or_else(|| find(fields, ", ").unwrap_or(fields.len()));
    let mut rest = &fields[skip..];
    let mut received = Received::default();
    while let Some(field) = rest.strip_prefix(", ") {
        let Some(eq) = field.find('=') else { break };
        let value_on = &field[eq + 1..];
        let end = find(value_on, ", ").unwrap_or(value_on.len());
        match &field[..eq] {
            "size" => received.size = value_on[..end].parse().ok(),
            "nrcpts" => received.recipients = value_on[..end].parse().ok(),
            // Later fields (msgid, relay) are strangers' text.
            "msgid" | "proto" => break,
            _ => {}
        }
        rest = &value_on[end..];
    }
    let mut record = Record::new(Mta::Sendmail);
    if received.recipients.is_some_and(|n| n > 0) {
        record.facts.received = Some(received);
    }
    Some(record)
}

/// `NEWQID: DSN: reason` (after the original's queue id): Sendmail queued
/// a notification for the sender. `Warning: could not send message for
/// past 4 hours` is a delay warning, `Return receipt` a success
/// notification; anything else a bounce. The notification is a new
/// message in the queue, so it is also received (Sendmail logs no `from=`
/// line for it).
fn notification(reason: &str) -> Record<'_> {
    let kind = if reason.starts_with("Warning: ") {
        Notification::Delay
    } else if reason.starts_with("Return receipt") {
        Notification::Delivery
    } else {
        Notification::NonDelivery
    };
    // `Cannot send message for 5 days`: the queue return, once per message.
    let expired = reason.starts_with("Cannot send message for ");
    let mut record = Record { delivery: expired.then_some(DeliveryStatus::Expired), ..Record::new(Mta::Sendmail) };
    record.facts.notification = Some(kind);
    record.facts.received = Some(Received::default());
    record
}

/// After `lost input channel from `: `HOST [IP] to DAEMON after STAGE`.
/// The daemon name is the postmaster's (`DaemonPortOptions=Name=MTA`);
/// the host part is walked over up to its last ` to `.
fn lost_input(rest: &str) -> Option<Record<'_>> {
    let at = rfind(rest, " to ")?;
    let (daemon, stage) = rest[at + 4..].split_once(" after ")?;
    let phase = match stage {
        "connect" => Phase::Connect,
        "ehlo" | "helo" | "starttls" => Phase::Helo,
        stage => Phase::from_command(stage),
    };
    let mut record = Record::new(Mta::Sendmail);
    let event = SessionEvent::Error { error: SessionError::LostConnection, phase, disconnect: false };
    record.facts.session = Some(Session { service: daemon, event });
    Some(record)
}

/// After `timeout waiting for input from `: `HOST during server cmd read`
/// (between commands) or `during message collect` (in the message data).
fn timeout(rest: &str) -> Option<Record<'_>> {
    let at = rfind(rest, " during ")?;
    let phase = match &rest[at + 8..] {
        "message collect" => Phase::Data,
        _ => Phase::Unknown,
    };
    let mut record = Record::new(Mta::Sendmail);
    let event = SessionEvent::Error { error: SessionError::Timeout, phase, disconnect: false };
    record.facts.session = Some(Session { service: "unknown", event });
    Some(record)
}

/// After `STARTTLS=`: `server, relay=…, version=TLSv1.3, verify=NO,
/// cipher=TLS_AES_256_GCM_SHA384, bits=256/256` (or `client`), or
/// `server, error: accept failed=…` / `client, error: connect failed=…`.
/// The relay is the peer's name, so the fields Sendmail writes after it
/// are found from the right.
fn starttls(rest: &str) -> Option<Record<'_>> {
    let (side, fields) = rest.split_once(", ")?;
    let direction = match side {
        "server" => Direction::Inbound,
        "client" => Direction::Outbound,
        _ => return None,
    };
    let mut record = Record::new(Mta::Sendmail);
    if fields.starts_with("error: ") {
        record.facts.tls_failure = Some(direction);
        return Some(record);
    }
    let value = |key: &str| {
        rfind(fields, key).map(|at| {
            let v = &fields[at + key.len()..];
            &v[..find(v, ", ").unwrap_or(v.len())]
        })
    };
    let protocol = TlsProtocol::parse(value(", version=")?);
    let cipher = CipherClass::of_suite(value(", cipher=")?);
    let trust = match value(", verify=")? {
        "OK" => TlsTrust::Trusted,
        "NO" | "NOT" | "NONE" => TlsTrust::Anonymous,
        "FAIL" | "TEMP" | "PROTOCOL" | "SOFTWARE" => TlsTrust::Untrusted,
        _ => TlsTrust::Unknown,
    };
    record.facts.tls = Some(Tls { direction, protocol, cipher, trust });
    Some(record)
}

/// Where a status Sendmail generated itself failed, from its wording.
fn generated_phase(smtp: bool, outcome: Option<DeliveryStatus>, detail: &str) -> Phase {
    const CONNECT: [&str; 6] = [
        "Connection refused",
        "Connection timed out",
        "Host unknown",
        "Name server",
        "No route to host",
        "Network is unreachable",
    ];
    if !smtp {
        Phase::None
    } else if outcome == Some(DeliveryStatus::Sent) {
        Phase::EndOfData
    } else if CONNECT.iter().any(|w| find(detail, w).is_some()) {
        Phase::Connect
    } else {
        Phase::Unknown
    }
}

/// After `ruleset=`: `NAME, arg1=…, [arg2=…,] relay=…, reject=…`.
fn ruleset(rest: &str) -> Record<'_> {
    let name_end = find(rest, ", ").unwrap_or(rest.len());
    let phase = match &rest[..name_end] {
        "check_relay" => Phase::Connect,
        "check_mail" => Phase::Mail,
        "check_rcpt" => Phase::Rcpt,
        "check_data" => Phase::Data,
        "check_eoh" | "check_eom" => Phase::EndOfData,
        "check_vrfy" | "check_expn" | "check_etrn" => Phase::Other,
        "tls_client" | "tls_server" => Phase::Helo,
        _ => Phase::Unknown,
    };
    rejection(&rest[name_end..], phase)
}

/// `, key=value` fields up to `reject=`, whose value runs to the end.
fn rejection(mut rest: &str, phase: Phase) -> Record<'_> {
    while let Some(field) = rest.strip_prefix(", ") {
        let Some(eq) = field.find('=') else { break };
        let value_on = &field[eq + 1..];
        if &field[..eq] == "reject" {
            return Record {
                reply: reply_at(value_on, Direction::Inbound, phase),
                delivery: Some(DeliveryStatus::Rejected),
                ..Record::new(Mta::Sendmail)
            };
        }
        let unit = angle_len(unit_window(value_on.as_bytes())).unwrap_or(0);
        let end = unit + find(&value_on[unit..], ", ").unwrap_or(value_on.len() - unit);
        rest = &value_on[end..];
    }
    Record::new(Mta::Sendmail)
}

/// After `Milter`: `: to=<…>, reject=…`, `: from=<…>, reject=…`, `: data,
/// reject=…`, `: connect: host=…, addr=…, reject=…`, `: helo=…, reject=…`.
fn milter(rest: &str) -> Record<'_> {
    let Some(step) = rest.strip_prefix(": ") else { return Record::new(Mta::Sendmail) };
    let (phase, skip) = if let Some(addr) = step.strip_prefix("to=") {
        (Phase::Rcpt, 3 + angle_len(addr.as_bytes()).unwrap_or(0))
    } else if let Some(addr) = step.strip_prefix("from=") {
        (Phase::Mail, 5 + angle_len(addr.as_bytes()).unwrap_or(0))
    } else if step.starts_with("connect") {
        (Phase::Connect, 0)
    } else if step.starts_with("helo") {
        (Phase::Helo, 0)
    } else if ["data", "eom", "eoh", "body", "header"].iter().any(|w| step.starts_with(w)) {
        (Phase::EndOfData, 0)
    } else {
        (Phase::Unknown, 0)
    };
    match find(&step[skip..], ", reject=") {
        Some(at) => {
            let mut record = rejection(&step[skip + at..], phase);
            let tempfail = record.reply.is_some_and(|r| r.class() == ReplyClass::Transient);
            let action = if tempfail { Action::Tempfail } else { Action::Reject };
            record.facts.filter = Some(FilterAction { filter: Filter::Milter, action });
            record
        }
        None if step.ends_with(", discard") => {
            let mut record = Record::new(Mta::Sendmail);
            record.facts.filter = Some(FilterAction { filter: Filter::Milter, action: Action::Discard });
            record
        }
        None => Record::new(Mta::Sendmail),
    }
}

/// `host.: SMTP DATA-2 protocol error: 571 Message Refused`.
fn protocol_error(body: &str, at: usize) -> Option<Record<'_>> {
    let before = &body[..at];
    let command = before.rsplit_once("SMTP ").map_or("", |(_, c)| c);
    let phase = match command {
        "DATA-1" => Phase::Data,
        "DATA-2" => Phase::EndOfData,
        other => Phase::from_command(other),
    };
    let reply = reply_at(&body[at + " protocol error: ".len()..], Direction::Outbound, phase)?;
    Some(Record { reply: Some(reply), ..Record::new(Mta::Sendmail) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ReplyCode;
    use DeliveryStatus::*;
    use Direction::*;

    /// (code, enhanced, direction, phase, delivery, recipients)
    type Want<'a> = (Option<u16>, Option<&'a str>, Option<Direction>, Option<Phase>, Option<DeliveryStatus>, u32);

    fn check(cases: &[(&str, Want<'_>)]) {
        for (message, want) in cases {
            let record = parse(message).unwrap_or_else(|| panic!("unrecognized: {message}"));
            let reply = record.reply;
            let enhanced = reply.and_then(|r| r.enhanced).map(|e| e.to_string());
            let got = (
                reply.and_then(|r| r.code).map(ReplyCode::value),
                enhanced.as_deref(),
                reply.map(|r| r.direction),
                reply.map(|r| r.phase),
                record.delivery,
                record.recipients,
            );
            assert_eq!(got, *want, "{message}");
        }
    }

    #[test]
    fn delivery_lines() {
        let out = Some(Outbound);
        check(&[
            ("v12AbCd7004411: to=<later@example.com>, delay=00:00:09, xdelay=00:00:09, mailer=esmtp, pri=30211, relay=[198.51.100.34] [198.51.100.34], dsn=4.3.5, stat=Deferred: 451 4.3.5 Configuration error at the receiver",
             (Some(451), Some("4.3.5"), out, Some(Phase::Unknown), Some(Deferred), 1)),
            ("v12AbCd7004411: to=<s1@example.com>,<s2@example.com>, delay=00:00:00, xdelay=00:00:00, mailer=esmtp, pri=120044, relay=[198.51.100.34] [198.51.100.34], dsn=2.0.0, stat=Sent (Ok: queued as 7F3A1B)",
             (None, Some("2.0.0"), out, Some(Phase::EndOfData), Some(Sent), 2)),
            ("5AQHZ1a9012345: to=<a@sink.test>,<b@sink.test>,<c@sink.test>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=120000, relay=[127.0.0.1] [127.0.0.1], dsn=5.1.1, reply=550-5.1.1 <a@sink.test>... no such user, stat=User unknown",
             (Some(550), Some("5.1.1"), out, Some(Phase::Unknown), Some(Bounced), 3)),
            ("5AQHZ1a9012345: to=<a@sink.test>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=120000, relay=[IPv6:::1] [IPv6:::1], dsn=4.7.1, reply=451 4.7.1 Greylisted, stat=Deferred: 451 4.7.1 Greylisted",
             (Some(451), Some("4.7.1"), out, Some(Phase::Unknown), Some(Deferred), 1)),
            ("5AQHZ1a9012345: to=<a@sink.test>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=120000, relay=[127.0.0.1] [127.0.0.1], dsn=2.0.0, reply=250 2.0.0 Ok: queued as 4F2A, stat=Sent (Ok: queued as 4F2A)",
             (Some(250), Some("2.0.0"), out, Some(Phase::EndOfData), Some(Sent), 1)),
            ("v12AbCd7004412: to=admin@localhost.localdomain, ctladdr=admin@localhost.localdomain (1000/1000), delay=00:00:00, xdelay=00:00:00, mailer=local, pri=30044, dsn=2.0.0, stat=Sent",
             (None, Some("2.0.0"), out, Some(Phase::None), Some(Sent), 1)),
            ("v12AbCd7004413: to=mbox@imap, delay=00:00:01, xdelay=00:00:01, mailer=cyrusv2, pri=30046, relay=localhost, dsn=2.0.0",
             (None, Some("2.0.0"), out, Some(Phase::None), Some(Sent), 1)),
            ("v12AbCd7004430: to=<x@y.net>, delay=00:00:01, xdelay=00:00:00, mailer=esmtp, pri=34674, relay=y.net., dsn=4.0.0, stat=Deferred: Connection refused by y.net.",
             (None, Some("4.0.0"), out, Some(Phase::Connect), Some(Deferred), 1)),
            ("v12AbCd7004430: to=<a@b>,<c@d>, [more], delay=00:00:01, mailer=esmtp, pri=1, relay=m. [1.2.3.4], dsn=5.1.1, stat=User unknown",
             (None, Some("5.1.1"), out, Some(Phase::Unknown), Some(Bounced), 2)),
            ("v12AbCd7004430: to=<a@b>, delay=00:00:00, mailer=esmtp, pri=1, stat=queued", (None, None, None, None, None, 1)),
            // Sendmail 8.17 (tests/fixtures/sendmail): after `Milter: data,
            // reject=…` the message never reached a mailer.
            ("6ASL5g0P027599: to=<milteom-550-5.7.1@mx.test>, delay=00:00:00, pri=30276, stat=Message rejected by content scanner: spam score 12.4 is above the limit of 5.0",
             (None, None, None, None, None, 1)),
            ("6ASL5g0P027600: to=<a@mx.test>,<b@mx.test>, delay=00:00:00, pri=60276, stat=Data format error",
             (None, None, None, None, None, 2)),
            // A mailer without dsn= still decides by the stat= word.
            ("6ASL5g0P027601: to=<a@mx.test>, delay=00:00:00, mailer=esmtp, pri=30276, stat=Sent",
             (None, None, None, None, Some(Sent), 1)),
            // A recipient that spells out a delivery is one address.
            ("v12AbCd7004430: to=<\"x>, dsn=2.0.0, stat=Sent (250 ok)\"@victim>, delay=00:00:01, mailer=esmtp, pri=1, relay=v. [2.2.2.2], dsn=5.1.1, reply=550 5.1.1 no, stat=User unknown",
             (Some(550), Some("5.1.1"), out, Some(Phase::Unknown), Some(Bounced), 1)),
        ]);
    }

    #[test]
    fn inbound_lines() {
        let inb = Some(Inbound);
        let rej = Some(Rejected);
        check(&[
            ("v12AbCd7004414: ruleset=check_rcpt, arg1=<victim@elsewhere.example>, relay=dsl-133.isp.example [203.0.113.133], reject=550 5.7.1 <victim@elsewhere.example>... Relaying denied. Authenticate first.",
             (Some(550), Some("5.7.1"), inb, Some(Phase::Rcpt), rej, 1)),
            ("ruleset=check_relay, arg1=line-82.isp.example, arg2=203.0.113.82, relay=line-82.isp.example [203.0.113.82], reject=421 4.3.2 Too many connections from your address.",
             (Some(421), Some("4.3.2"), inb, Some(Phase::Connect), rej, 1)),
            ("v12AbCd7004415: ruleset=check_rcpt, arg1=<s@t.example>, relay=[198.51.100.67], reject=450 4.4.0 <s@t.example>... Relaying temporarily denied. No PTR record for 198.51.100.67",
             (Some(450), Some("4.4.0"), inb, Some(Phase::Rcpt), rej, 1)),
            ("j2OFquVD026245: ruleset=check_mail, arg1=<\"a, reject=250 2.0.0 ok\"@x>, relay=m [1.2.3.4], reject=553 5.1.8 <a@x>... Domain of sender address does not exist",
             (Some(553), Some("5.1.8"), inb, Some(Phase::Mail), rej, 1)),
            ("5AQHZ1a9012345: Milter: to=<u@example.com>, reject=550 5.7.1 Command rejected",
             (Some(550), Some("5.7.1"), inb, Some(Phase::Rcpt), rej, 1)),
            ("5AQHZ1a9012345: Milter: data, reject=554 5.7.1 Rejected by content filter",
             (Some(554), Some("5.7.1"), inb, Some(Phase::EndOfData), rej, 1)),
            ("v12AbCd7004416: mx.dest.example.: SMTP DATA-2 protocol error: 571 Message not accepted",
             (Some(571), None, Some(Outbound), Some(Phase::EndOfData), None, 1)),
        ]);
    }

    #[test]
    fn outcomes_without_a_reply() {
        for (message, want) in [
            // Sendmail 8.17 (tests/fixtures/sendmail): RCPT refused with 550 5.1.1
            // (an unknown local user) and with an error mailer's 550 5.1.2.
            ("6ASL5WEK027366: <nosuch@mx1.example.test>... User unknown", Some(Rejected)),
            ("6ASL5UFh027327: <x@retired.test>... This address is no longer in use", Some(Rejected)),
            ("j4KC1gSG002847: <badguy@badhost.example.com,,0,>... Invalid route address", Some(Rejected)),
            ("rA37ZTSC026250: <\"a>... b\"@domain.com>... No such user here", Some(Rejected)),
            // Queue return after Timeout.queuereturn, then the notifications.
            ("6ASL500h026805: 6ASL5mGF027710: DSN: Cannot send message for 15 seconds", Some(Expired)),
            ("u31FFPtp032300: u31FFPtq032301: DSN: Cannot send message for 5 days", Some(Expired)),
            ("u31FFPtp032300: u31FFPtq032302: DSN: Warning: could not send message for past 4 hours", None),
            ("6ASL56GR026887: 6ASL56GR026890: DSN: User unknown", None),
            ("j4K970hV028494: j4K975hV028499: DSN: Service unavailable", None),
            ("6ASL5RMI027269: 6ASL5SMI027278: DSN: Service unavailable (<data-552-5.2.2@lmtp.test>: Mailbox full, the recipient is over their storage quota)", None),
            // Not an address note.
            ("6ASL5WEK027367: <nosuch@mx1.example.test>", None),
            ("6ASL5WEK027368: <nosuch@mx1.example.test>... ", None),
        ] {
            let record = parse(message).unwrap_or_else(|| panic!("unrecognized: {message}"));
            assert_eq!((record.reply, record.delivery, record.recipients), (None, want, 1), "{message}");
        }
    }

    #[test]
    fn lines_without_a_reply() {
        for message in [
            "v12AbCd7004417: from=<a@sender.example>, size=2208, class=0, nrcpts=0, proto=ESMTP, daemon=MTA-v4, relay=[192.0.2.45]",
            "v12AbCd7004418: probe.example [IPv6:2001:db8::7] did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA-v6",
            "v12AbCd7004419: AUTH failure (PLAIN): authentication failure (-13) SASL(-13): authentication failure: Password verification failed, user=u@example.com, relay=guess.example [192.0.2.3]",
            "v12AbCd7004422[2]: \\310\\341\\262\\342 subject text",
            "v12AbCd7004423: [203.0.113.178]: possible SMTP attack: command=AUTH, count=7",
            "starting daemon (8.17.1): SMTP+queueing@00:30:00",
            "v12AbCd7004424: Milter: no active filter",
            "v12AbCd7004425: done; delay=00:00:02, ntries=1",
        ] {
            let record = parse(message).unwrap_or_else(|| panic!("unrecognized: {message}"));
            assert_eq!((record.reply, record.delivery), (None, None), "{message}");
        }
        assert_eq!(parse("v12AbCd7004426: something new: 550 5.1.1 no"), None);
    }

    #[test]
    fn queue_ids() {
        assert_eq!(strip_queue_ids("v12AbCd7004427: v12AbCe7004428: sender notify: x"), "sender notify: x");
        assert_eq!(strip_queue_ids("v12AbCd7004429[2]: rest"), "rest");
        assert_eq!(strip_queue_ids("ruleset=check_relay, x"), "ruleset=check_relay, x");
        assert_eq!(strip_queue_ids("starting daemon"), "starting daemon");
    }
}

#[cfg(test)]
mod fact_tests {
    use std::time::Duration;

    use super::*;

    fn facts(message: &str) -> facts::Facts<'_> {
        parse(message).unwrap_or_else(|| panic!("unrecognized: {message}")).facts
    }

    #[test]
    fn messages_and_delays() {
        let f = facts("6ASJuEG1013969: from=<alice@example.test>, size=284, class=0, nrcpts=2, msgid=<x@vm>, proto=ESMTP, daemon=MSA, relay=localhost [127.0.0.1]");
        assert_eq!(f.received, Some(Received { size: Some(284), recipients: Some(2) }));
        assert_eq!(facts("6ASJumMc015173: from=<bob@example.test>, size=0, class=0, nrcpts=0, proto=ESMTP, daemon=MTA-v6, relay=[IPv6:::1]").received, None);
        // A sender cannot pose as the size.
        let f = facts("6ASJuEG1013969: from=<\"x, size=999, nrcpts=9\"@e>, size=1, class=0, nrcpts=1, msgid=<, size=5>, proto=ESMTP, daemon=MSA, relay=l");
        assert_eq!(f.received, Some(Received { size: Some(1), recipients: Some(1) }));
        let f = facts("6ASJuEG1013969: to=<r@s.test>, delay=01:02:03, xdelay=00:00:07, mailer=esmtp, pri=30284, relay=[127.0.0.1] [127.0.0.1], dsn=4.7.1, reply=451 4.7.1 later, stat=Deferred: 451 4.7.1 later");
        assert_eq!((f.delay, f.attempt), (Some(Duration::from_secs(3723)), Some(Duration::from_secs(7))));
        // A milter's verdict at end of data is no delivery attempt.
        let f = facts(
            "6ASJuxd4015667: to=<m@mx.test>, delay=00:00:00, pri=30276, stat=Message rejected by content scanner",
        );
        assert_eq!((f.delay, f.attempt), (None, None));
    }

    #[test]
    fn notifications() {
        let n = |m| facts(m).notification;
        assert_eq!(n("6ASJuK80014088: 6ASJuK80014090: DSN: User unknown"), Some(Notification::NonDelivery));
        assert_eq!(
            n("6ASJuEG1013969: 6ASJv5OW015873: DSN: Cannot send message for 15 seconds"),
            Some(Notification::NonDelivery)
        );
        assert_eq!(
            n("6ASJuEG1013969: 6ASJv5OW015873: DSN: Warning: could not send message for past 4 hours"),
            Some(Notification::Delay)
        );
        assert_eq!(n("6ASJuEG1013969: 6ASJv5OW015873: DSN: Return receipt"), Some(Notification::Delivery));
        assert_eq!(facts("6ASJuK80014088: 6ASJuK80014090: DSN: User unknown").received, Some(Received::default()));
    }

    #[test]
    fn sessions_tls_auth() {
        let lost = |service, phase| {
            Some(Session {
                service,
                event: SessionEvent::Error { error: SessionError::LostConnection, phase, disconnect: false },
            })
        };
        assert_eq!(
            facts("56VFYCxS024291: lost input channel from mail.aqicn.org [139.162.120.196] to MTA-v4 after rcpt")
                .session,
            lost("MTA-v4", Phase::Rcpt)
        );
        assert_eq!(
            facts("j4K98Yl7029739: lost input channel from h [192.0.2.1] to MTA after data").session,
            lost("MTA", Phase::Data)
        );
        let timeout = |phase| {
            Some(Session {
                service: "unknown",
                event: SessionEvent::Error { error: SessionError::Timeout, phase, disconnect: false },
            })
        };
        assert_eq!(
            facts("j4K97TIQ029478: timeout waiting for input from [61.250.1.2] during message collect").session,
            timeout(Phase::Data)
        );
        assert_eq!(
            facts("6ASJv16x015735: timeout waiting for input from localhost during server cmd read").session,
            timeout(Phase::Unknown)
        );
        assert_eq!(facts("06I02CNi016764: AUTH failure (LOGIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed, user=u@e.com, relay=e.com").auth_failure, Some(AuthMethod::Login));
        assert_eq!(facts("14NNwaRl065696: AUTH failure (DIGEST-MD5): user not found (-20) SASL(-13): user not found, user=scanner, relay=[192.0.2.1]").auth_failure, Some(AuthMethod::DigestMd5));
        let f = facts("6ASK0bJ2001234: STARTTLS=server, relay=localhost [127.0.0.1], version=TLSv1.3, verify=NO, cipher=TLS_AES_256_GCM_SHA384, bits=256/256");
        assert_eq!(
            f.tls,
            Some(Tls {
                direction: Direction::Inbound,
                protocol: TlsProtocol::Tls13,
                cipher: CipherClass::Aes256Gcm,
                trust: TlsTrust::Anonymous
            })
        );
        let f = facts("6ASK0bJ2001234: STARTTLS=client, relay=[127.0.0.1], version=TLSv1.2, verify=FAIL, cipher=ECDHE-RSA-AES128-GCM-SHA256, bits=128/128");
        assert_eq!(
            f.tls,
            Some(Tls {
                direction: Direction::Outbound,
                protocol: TlsProtocol::Tls12,
                cipher: CipherClass::Aes128Gcm,
                trust: TlsTrust::Untrusted
            })
        );
        assert_eq!(facts("STARTTLS=server, error: accept failed=-1, reason=no shared cipher, SSL_error=1, errno=0, retry=-1, relay=[192.0.2.1]").tls_failure, Some(Direction::Inbound));
        let f = facts("6ASJuxd4015667: Milter: data, reject=451 4.7.1 later");
        assert_eq!(f.filter, Some(FilterAction { filter: Filter::Milter, action: Action::Tempfail }));
        // Sendmail 8.17, tests/fixtures/sendmail/sessions.log.
        let f = facts("6ASN4jua022007: Milter: data, discard");
        assert_eq!(f.filter, Some(FilterAction { filter: Filter::Milter, action: Action::Discard }));
        let f = facts("6ASN4kdW022010: milter=testmilter, quarantine=held by milter.py");
        assert_eq!(f.filter, Some(FilterAction { filter: Filter::Milter, action: Action::Quarantine }));
        let r = parse("6ASN4kdW022010: to=<miltquarantine@mx.test>, delay=00:00:01, mailer=esmtp, pri=30273, quarantine=held by milter.py, stat=quarantined").unwrap();
        assert_eq!((r.delivery, r.reply.is_some(), r.facts.delay), (None, false, None));
        let f = facts("6ASN409m021961: collect: premature EOM: unexpected close");
        let event = SessionEvent::Error { error: SessionError::LostConnection, phase: Phase::Data, disconnect: false };
        assert_eq!(f.session, Some(Session { service: "unknown", event }));
        assert_eq!(
            facts("6ASN409m021961: collect: relay=localhost, from=<bob@example.test>, info=unexpected close").session,
            None
        );
    }
}
