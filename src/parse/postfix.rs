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

use std::time::Duration;

use super::facts::{
    self, Action, AuthMethod, CipherClass, Filter, FilterAction, Notification, Postscreen, PostscreenTest, Received,
    Session, SessionError, SessionEvent, Tls, TlsProtocol, TlsTrust,
};
use super::scan::{find, finder, looks_like_reply, reply_at, rfind, split_once};
use super::Record;
use crate::model::{scan_reply, DeliveryStatus, Direction, EnhancedStatus, Mta, Phase, Reply, ReplyClass};

/// Parses the text of one Postfix line. `program` is the syslog tag
/// (`postfix/smtp`, `postfix-mx/submission/smtpd`). Returns `None` when the
/// line seems to carry a reply that no rule placed.
pub fn parse<'a>(program: &'a str, message: &'a str) -> Option<Record<'a>> {
    // The last `/`-part: a byte search, `rsplit` cost 300 instructions a line.
    let daemon = program.bytes().rposition(|b| b == b'/').map_or(program, |at| &program[at + 1..]);
    let (queue_id, body) = split_queue_id(message);
    let record = if let Some(fields) = body.strip_prefix("to=") {
        delivery_status(daemon, fields)
    } else if let Some(fields) = body.strip_prefix("from=") {
        queue_manager(queue_id, fields)
    } else if let Some(rest) = body.strip_prefix("host ") {
        host_reply(rest).map(|reply| Record { reply: Some(reply), ..Record::new(Mta::Postfix) })
    } else if let Some(rest) = body.strip_prefix("SASL authentication failed; ") {
        sasl_failure(rest).map(|reply| Record { reply: Some(reply), ..Record::new(Mta::Postfix) })
    } else {
        match client_action(body) {
            Some(record) => Some(record),
            None => daemon_event(program, daemon, queue_id, body),
        }
    };
    match record {
        Some(record) => Some(record),
        None if looks_like_reply(body) => None,
        None => Some(Record::new(Mta::Postfix)),
    }
}

/// Where a field's value ends: at the next `, ` or the end. The fields this
/// walks (`relay=`, `delay=` … before `status=`) are written by Postfix and
/// hold no `, ` of their own. The values are short: a plain loop costs less
/// than setting up `memchr` on the rest of the line.
fn field_end(value: &str) -> usize {
    let bytes = value.as_bytes();
    let mut from = 0;
    while let Some(at) = bytes[from..].iter().position(|&b| b == b',') {
        let at = from + at;
        if bytes.get(at + 1) == Some(&b' ') {
            return at;
        }
        from = at + 1;
    }
    bytes.len()
}

/// Splits `QID: ` or `NOQUEUE: ` off a message. Queue ids are upper-case
/// hex (short ids) or base-52 without vowels (long ids,
/// `enable_long_queue_ids`), so `warning: ` is not one.
fn split_queue_id(message: &str) -> (Option<&str>, &str) {
    let bytes = message.as_bytes();
    let len = bytes.iter().take(21).take_while(|b| b.is_ascii_alphanumeric()).count();
    if !(5..=20).contains(&len) || bytes.get(len) != Some(&b':') || bytes.get(len + 1) != Some(&b' ') {
        return (None, message);
    }
    let id = &message[..len];
    let rest = &message[len + 2..];
    if id == "NOQUEUE" {
        return (None, rest);
    }
    let short = id.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b));
    let long = !id.bytes().any(|b| b"aeiouAEIOU".contains(&b));
    if short || long {
        (Some(id), rest)
    } else {
        (None, message)
    }
}

/// qmgr's `from=<a@b>, size=N, nrcpt=M (queue active)` (the message was
/// moved into the active queue: on its arrival, and again on every retry
/// of deferred mail — [`super::PostfixQueue`] tells them apart) and
/// `from=<a@b>, status=expired, returned to sender`. The sender is walked
/// over as a unit, so text inside it cannot pose as either.
fn queue_manager<'a>(queue_id: Option<&'a str>, fields: &'a str) -> Option<Record<'a>> {
    let (_, rest) = address(fields)?;
    if rest.starts_with(", status=expired") {
        return Some(Record { delivery: Some(DeliveryStatus::Expired), ..Record::new(Mta::Postfix) });
    }
    let size = rest.strip_prefix(", size=")?;
    let size_len = size.bytes().take_while(u8::is_ascii_digit).count();
    let nrcpt = size[size_len..].strip_prefix(", nrcpt=")?;
    let nrcpt_len = nrcpt.bytes().take_while(u8::is_ascii_digit).count();
    if !nrcpt[nrcpt_len..].starts_with(" (queue active)") {
        return None;
    }
    let received = Received { size: size[..size_len].parse().ok(), recipients: nrcpt[..nrcpt_len].parse().ok() };
    let mut record = Record::new(Mta::Postfix);
    record.facts.received = Some(received);
    record.facts.queue_id = queue_id;
    Some(record)
}

/// Lines that are neither statuses nor rejections: sessions, TLS,
/// authentication failures, postscreen, notifications, content-check
/// actions, qmgr's `removed`. Dispatched on the daemon first so most lines
/// cost one comparison. `None` when nothing here applies.
fn daemon_event<'a>(program: &'a str, daemon: &str, queue_id: Option<&'a str>, body: &'a str) -> Option<Record<'a>> {
    let mut record = Record::new(Mta::Postfix);
    let facts = &mut record.facts;
    match daemon {
        "smtpd" => {
            let service = service_name(program);
            if body.starts_with("connect from ") {
                facts.session = Some(Session { service, event: SessionEvent::Connect });
            } else if body.starts_with("disconnect from ") {
                facts.session = Some(Session { service, event: SessionEvent::Disconnect });
            } else if let Some(event) = session_error(body) {
                facts.session = Some(Session { service, event });
            } else if let Some(rest) = body.strip_prefix("warning: ") {
                facts.auth_failure = Some(sasl_server_failure(rest)?);
            } else if body.starts_with("SSL_accept error from ") {
                facts.tls_failure = Some(Direction::Inbound);
            } else if let Some(tls) = tls_established(body) {
                facts.tls = Some(tls);
            } else {
                facts.filter = Some(content_action(body)?);
            }
        }
        "smtp" | "lmtp" => {
            if body.starts_with("SSL_connect error to ") {
                facts.tls_failure = Some(Direction::Outbound);
            } else {
                facts.tls = Some(tls_established(body)?);
            }
        }
        "postscreen" => facts.postscreen = Some(postscreen(body)?),
        "qmgr" | "postsuper" if body == "removed" && queue_id.is_some() => {
            facts.queue_id = queue_id;
            facts.removed = true;
        }
        "bounce" => facts.notification = Some(notification(body)?),
        "cleanup" => facts.filter = Some(content_action(body)?),
        _ => return None,
    }
    Some(record)
}

/// The master.cf service of an smtpd: `postfix/submission/smtpd` is
/// `submission` (its `-o syslog_name=postfix/submission`), a plain
/// `postfix/smtpd` (or `postfix-mx/smtpd`) is `smtpd`.
fn service_name(program: &str) -> &str {
    let mut parts = program.rsplit('/');
    let daemon = parts.next().unwrap_or(program);
    match (parts.next(), parts.next()) {
        (Some(service), Some(_)) if !service.is_empty() => service,
        _ => daemon,
    }
}

/// smtpd's `lost connection after RCPT from …`, `timeout after DATA
/// (12 bytes) from …`, `too many errors after RCPT from …`. The command is
/// one of smtpd's own names (`CONNECT`, `EHLO`, `END-OF-MESSAGE`, `DATA`,
/// `UNKNOWN` …), never the client's text.
fn session_error(body: &str) -> Option<SessionEvent> {
    const ERRORS: [(&str, SessionError); 3] = [
        ("lost connection after ", SessionError::LostConnection),
        ("timeout after ", SessionError::Timeout),
        ("too many errors after ", SessionError::TooManyErrors),
    ];
    let (rest, error) = ERRORS.iter().find_map(|&(prefix, error)| body.strip_prefix(prefix).map(|r| (r, error)))?;
    let command = &rest[..rest.find([' ', '('])?];
    let phase = match command {
        "CONNECT" => Phase::Connect,
        "END-OF-MESSAGE" => Phase::EndOfData,
        command => Phase::from_command(command),
    };
    Some(SessionEvent::Error { error, phase, disconnect: false })
}

/// After `warning: `: `HOST[ADDR]:PORT: SASL LOGIN authentication failed:
/// …` (the port since Postfix 3.x). The host name was validated by
/// Postfix (no spaces, no brackets), so the client ends at its `]`.
fn sasl_server_failure(rest: &str) -> Option<AuthMethod> {
    let close = rest.find(']')?;
    let mut after = &rest[close + 1..];
    if let Some(port) = after.strip_prefix(':') {
        let digits = port.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            after = &port[digits..];
        }
    }
    let mechanism = after.strip_prefix(": SASL ")?;
    let (mechanism, tail) = mechanism.split_once(' ')?;
    tail.starts_with("authentication failed").then(|| AuthMethod::parse(mechanism))
}

/// `Anonymous TLS connection established from H[A]: TLSv1.3 with cipher
/// TLS_AES_256_GCM_SHA384 (256/256 bits) …` (smtpd) and `Trusted TLS
/// connection established to H[A]:25: TLSv1.2 with cipher …` (smtp).
fn tls_established(body: &str) -> Option<Tls> {
    let (trust, rest) = body.split_once(' ')?;
    let trust = TlsTrust::from_postfix(trust)?;
    let rest = rest.strip_prefix("TLS connection established ")?;
    let (direction, peer) = match rest.strip_prefix("from ") {
        Some(peer) => (Direction::Inbound, peer),
        None => (Direction::Outbound, rest.strip_prefix("to ")?),
    };
    let close = peer.find(']')?;
    let (_, after) = peer[close..].split_once(": ")?;
    let (protocol, cipher) = after.split_once(" with cipher ")?;
    let cipher = &cipher[..cipher.find(' ').unwrap_or(cipher.len())];
    Some(Tls { direction, protocol: TlsProtocol::parse(protocol), cipher: CipherClass::of_suite(cipher), trust })
}

/// postscreen's verdicts (`PASS NEW [ip]:port`, `DNSBL rank 3 for …`,
/// `PREGREET 14 after 0.08 from …`). Its rejections are client actions.
fn postscreen(body: &str) -> Option<Postscreen> {
    const WORDS: [(&str, Postscreen); 15] = [
        ("CONNECT from ", Postscreen::Connect),
        ("PASS NEW ", Postscreen::Pass { new: true }),
        ("PASS OLD ", Postscreen::Pass { new: false }),
        ("ALLOWLISTED ", Postscreen::Allowlisted),
        ("WHITELISTED ", Postscreen::Allowlisted),
        ("DENYLISTED ", Postscreen::Denylisted),
        ("BLACKLISTED ", Postscreen::Denylisted),
        ("PREGREET ", Postscreen::Violation(PostscreenTest::Pregreet)),
        ("HANGUP ", Postscreen::Violation(PostscreenTest::Hangup)),
        ("COMMAND PIPELINING ", Postscreen::Violation(PostscreenTest::Pipelining)),
        ("NON-SMTP COMMAND ", Postscreen::Violation(PostscreenTest::NonSmtpCommand)),
        ("BARE NEWLINE ", Postscreen::Violation(PostscreenTest::BareNewline)),
        ("COMMAND TIME LIMIT ", Postscreen::Violation(PostscreenTest::CommandLimit)),
        ("COMMAND COUNT LIMIT ", Postscreen::Violation(PostscreenTest::CommandLimit)),
        ("COMMAND LENGTH LIMIT ", Postscreen::Violation(PostscreenTest::CommandLimit)),
    ];
    if let Some(rest) = body.strip_prefix("DNSBL rank ") {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if !rest[digits..].starts_with(" for ") {
            return None;
        }
        return rest[..digits].parse().ok().map(Postscreen::DnsblRank);
    }
    WORDS.iter().find(|(word, _)| body.starts_with(word)).map(|&(_, event)| event)
}

/// bounce's `sender non-delivery notification: QID` (also `delay` and
/// `delivery status`). Copies to the postmaster are not counted: they are
/// not what the sender gets.
fn notification(body: &str) -> Option<Notification> {
    let rest = body.strip_prefix("sender ")?;
    let kind = &rest[..find(rest, " notification: ")?];
    match kind {
        "non-delivery" => Some(Notification::NonDelivery),
        "delay" => Some(Notification::Delay),
        "delivery status" => Some(Notification::Delivery),
        _ => None,
    }
}

/// cleanup's `hold: header …` / `discard: body …` (header_checks and
/// body_checks HOLD and DISCARD), and the milter's `milter-hold:` /
/// `milter-discard: END-OF-MESSAGE from …: milter triggers … action`.
fn content_action(body: &str) -> Option<FilterAction> {
    let (action, rest) = body.split_once(": ")?;
    let (filter, action) = match action {
        "hold" => (Filter::ContentChecks, Action::Hold),
        "discard" => (Filter::ContentChecks, Action::Discard),
        "milter-hold" => (Filter::Milter, Action::Hold),
        "milter-discard" => (Filter::Milter, Action::Discard),
        _ => return None,
    };
    // An access map's HOLD or DISCARD (`hold: RCPT from …`) is a
    // restriction, not a content check.
    if filter == Filter::ContentChecks && header_check(rest).is_none() {
        return None;
    }
    Some(FilterAction { filter, action })
}

/// `to=<a@b>, [orig_to=<…>,] relay=…, delay=…, delays=…, dsn=…, status=S (detail)`
fn delivery_status<'a>(service: &str, fields: &'a str) -> Option<Record<'a>> {
    let (recipient, mut rest) = address(fields)?;
    let mut relay = "";
    let mut dsn = None;
    let (mut delay, mut stages) = (None, None);
    loop {
        rest = rest.strip_prefix(", ")?;
        // Keys are a few letters: a plain loop beats a searcher here.
        let eq = rest.bytes().position(|b| b == b'=')?;
        let (key, value_on) = (&rest[..eq], &rest[eq + 1..]);
        if key == "status" {
            let mut record = status(service, recipient, relay, dsn, value_on);
            record.facts.delay = delay;
            record.facts.stages = stages;
            return Some(record);
        }
        if key == "orig_to" {
            rest = address(value_on)?.1;
            continue;
        }
        let end = field_end(value_on);
        let value = &value_on[..end];
        match key {
            "relay" => relay = value,
            "dsn" => dsn = EnhancedStatus::parse(value.as_bytes()),
            "delay" => delay = facts::decimal_seconds(value),
            "delays" => stages = stage_delays(value),
            _ => {}
        }
        rest = &value_on[end..];
    }
}

/// `delays=a/b/c/d`: all four or none.
fn stage_delays(value: &str) -> Option<[Duration; 4]> {
    let mut parts = value.split('/');
    let mut stage = || parts.next().and_then(facts::decimal_seconds);
    let stages = [stage()?, stage()?, stage()?, stage()?];
    parts.next().is_none().then_some(stages)
}

/// An address as Postfix logs it: `<…>` (a quoted local part may contain
/// `>` or `, `) or a bare word. Returns the address and the text after it.
fn address(text: &str) -> Option<(&str, &str)> {
    let Some(inner) = text.strip_prefix('<') else {
        let end = finder!(", ").find(text.as_bytes()).unwrap_or(text.len());
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
    let close = pos + inner.as_bytes().get(pos..)?.iter().position(|&b| b == b'>')?;
    Some((&inner[..close], &inner[close + 1..]))
}

fn status<'a>(
    service: &str,
    recipient: &'a str,
    relay: &'a str,
    dsn: Option<EnhancedStatus>,
    value: &'a str,
) -> Record<'a> {
    let word_end = value.bytes().position(|b| b == b' ' || b == b',').unwrap_or(value.len());
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
    let remote_domain = recipient.bytes().rposition(|b| b == b'@').map(|at| &recipient[at + 1..]);
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
    let after_host = &rest[rest.bytes().position(|b| b == b' ')? + 1..];
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
    let at = finder!(" said: ").find(rest.as_bytes())?;
    reply_at(&rest[at + " said: ".len()..], Direction::Outbound, Phase::Auth)
}

/// Where a locally generated status failed, from Postfix's fixed wording.
fn local_phase(service: &str, relay: &str, detail: &str) -> Phase {
    let detail = detail.strip_prefix("delivery temporarily suspended: ").unwrap_or(detail);
    if let Some(at) = finder!(" while ").find(detail.as_bytes()) {
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
    let colon = finder!(": ").find(body.as_bytes())?;
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
    let content_check = header_check(rest).is_some();
    let phase = if content_check { Phase::EndOfData } else { Phase::from_command(stage) };
    let reply = reply_text.and_then(|text| reply_at(text, Direction::Inbound, phase));
    let mut record = Record { reply, delivery, warning_only, ..Record::new(Mta::Postfix) };
    let filter = match action {
        "milter-reject" => Some(Filter::Milter),
        "proxy-reject" => Some(Filter::ContentFilter),
        "reject" if content_check => Some(Filter::ContentChecks),
        _ => None,
    };
    record.facts.filter = filter.map(|filter| {
        let tempfail = reply.is_some_and(|r| r.class() == ReplyClass::Transient);
        FilterAction { filter, action: if tempfail { Action::Tempfail } else { Action::Reject } }
    });
    Some(record)
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

#[cfg(test)]
mod fact_tests {
    use std::time::Duration;

    use super::*;
    use crate::parse::facts::Facts;

    fn facts<'a>(program: &'a str, message: &'a str) -> Facts<'a> {
        parse(program, message).unwrap_or_else(|| panic!("unrecognized: {message}")).facts
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn delays_by_stage() {
        let f = facts("postfix/smtp", "8F404B69B2: to=<a@b.test>, relay=x[127.0.0.1]:2525, delay=0.03, delays=0.01/0.02/0/1.5, dsn=4.7.1, status=deferred (host x[127.0.0.1] said: 451 4.7.1 later (in reply to RCPT TO command))");
        assert_eq!(f.delay, Some(ms(30)));
        assert_eq!(f.stages, Some([ms(10), ms(20), ms(0), ms(1500)]));
        // An address cannot pose as the delay fields.
        let f = facts("postfix/smtp", "8F404B69B2: to=<\"x, delay=999, delays=9/9/9/9\"@b.test>, relay=x[1.2.3.4]:25, delay=46, delays=46/0/0/0, dsn=2.0.0, status=sent (250 ok)");
        assert_eq!(
            (f.delay, f.stages),
            (Some(Duration::from_secs(46)), Some([Duration::from_secs(46), ms(0), ms(0), ms(0)]))
        );
        // No delays= (Postfix before 2.3): only the delay.
        let f = facts(
            "postfix/smtp",
            "CCAE27A4: to=<c@p.org>, relay=m[63.251.223.176], delay=9, status=sent (250 Queued!)",
        );
        assert_eq!((f.delay, f.stages), (Some(Duration::from_secs(9)), None));
    }

    #[test]
    fn queue_manager_lines() {
        let f = facts("postfix/qmgr", "8F404B69B2: from=<alice@example.test>, size=473, nrcpt=3 (queue active)");
        assert_eq!(f.received, Some(Received { size: Some(473), recipients: Some(3) }));
        assert_eq!(f.queue_id, Some("8F404B69B2"));
        let f = facts(
            "postfix/qmgr",
            "8F404B69B2: from=<\", size=1, nrcpt=99 (queue active)\"@x>, status=expired, returned to sender",
        );
        assert_eq!(f.received, None);
        assert_eq!(
            parse("postfix/qmgr", "8F404B69B2: from=<a@b>, status=expired, returned to sender").unwrap().delivery,
            Some(DeliveryStatus::Expired)
        );
        let f = facts("postfix/qmgr", "8F404B69B2: removed");
        assert_eq!((f.queue_id, f.removed), (Some("8F404B69B2"), true));
    }

    #[test]
    fn sessions_by_service() {
        let session = |program, message| facts(program, message).session;
        assert_eq!(
            session("postfix/smtpd", "connect from localhost[127.0.0.1]"),
            Some(Session { service: "smtpd", event: SessionEvent::Connect })
        );
        assert_eq!(
            session("postfix/submission/smtpd", "disconnect from localhost[127.0.0.1] ehlo=1 quit=1 commands=2"),
            Some(Session { service: "submission", event: SessionEvent::Disconnect })
        );
        assert_eq!(
            session("postfix-mx/smtps/smtpd", "connect from x[1.2.3.4]"),
            Some(Session { service: "smtps", event: SessionEvent::Connect })
        );
        for (message, error, phase) in [
            ("lost connection after RCPT from unknown[192.0.2.1]", SessionError::LostConnection, Phase::Rcpt),
            ("lost connection after CONNECT from unknown[192.0.2.1]", SessionError::LostConnection, Phase::Connect),
            (
                "lost connection after END-OF-MESSAGE from unknown[192.0.2.1]",
                SessionError::LostConnection,
                Phase::EndOfData,
            ),
            ("lost connection after UNKNOWN from unknown[192.0.2.1]", SessionError::LostConnection, Phase::Other),
            ("timeout after DATA (12 bytes) from unknown[192.0.2.1]", SessionError::Timeout, Phase::Data),
            ("too many errors after RCPT from unknown[192.0.2.1]", SessionError::TooManyErrors, Phase::Rcpt),
        ] {
            assert_eq!(
                session("postfix/smtpd", message),
                Some(Session { service: "smtpd", event: SessionEvent::Error { error, phase, disconnect: false } }),
                "{message}"
            );
        }
        // The client side's lost connections are not sessions of ours.
        assert_eq!(
            session("postfix/smtp", "745137AA: lost connection with h[104.47.55.161] while sending RCPT TO"),
            None
        );
    }

    #[test]
    fn tls_and_sasl() {
        let f = facts("postfix/smtpd", "Anonymous TLS connection established from i59f7fc34.versanet.de[89.247.252.52]: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519");
        assert_eq!(
            f.tls,
            Some(Tls {
                direction: Direction::Inbound,
                protocol: TlsProtocol::Tls13,
                cipher: CipherClass::Aes256Gcm,
                trust: TlsTrust::Anonymous
            })
        );
        let f = facts("postfix/smtp", "Verified TLS connection established to mx.example.com[192.0.2.5]:25: TLSv1.2 with cipher ECDHE-RSA-CHACHA20-POLY1305 (256/256 bits)");
        assert_eq!(
            f.tls,
            Some(Tls {
                direction: Direction::Outbound,
                protocol: TlsProtocol::Tls12,
                cipher: CipherClass::Chacha20Poly1305,
                trust: TlsTrust::Verified
            })
        );
        assert_eq!(
            facts("postfix/smtpd", "SSL_accept error from unknown[192.0.2.9]: -1").tls_failure,
            Some(Direction::Inbound)
        );
        assert_eq!(
            facts("postfix/smtp", "SSL_connect error to mx[192.0.2.9]:25: -1").tls_failure,
            Some(Direction::Outbound)
        );
        assert_eq!(
            facts(
                "postfix/smtpd",
                "warning: unknown[192.0.2.237]:55729: SASL LOGIN authentication failed: authentication failure"
            )
            .auth_failure,
            Some(AuthMethod::Login)
        );
        assert_eq!(
            facts(
                "postfix/submission/smtpd",
                "warning: x.example[192.0.2.1]: SASL CRAM-MD5 authentication failed: bad protocol / cancel"
            )
            .auth_failure,
            Some(AuthMethod::CramMd5)
        );
        assert_eq!(
            facts("postfix/smtpd", "warning: hostname x does not resolve to address 192.0.2.1").auth_failure,
            None
        );
    }

    #[test]
    fn postscreen_events() {
        let ps = |message| facts("postfix/postscreen", message).postscreen;
        assert_eq!(ps("CONNECT from [127.0.0.1]:38280 to [127.0.0.1]:10026"), Some(Postscreen::Connect));
        assert_eq!(ps("PASS NEW [192.0.2.1]:38280"), Some(Postscreen::Pass { new: true }));
        assert_eq!(ps("PASS OLD [192.0.2.1]:38280"), Some(Postscreen::Pass { new: false }));
        assert_eq!(ps("DENYLISTED [127.0.0.1]:38280"), Some(Postscreen::Denylisted));
        assert_eq!(ps("WHITELISTED [127.0.0.1]:38280"), Some(Postscreen::Allowlisted));
        assert_eq!(ps("DNSBL rank 3 for [192.0.2.1]:38280"), Some(Postscreen::DnsblRank(3)));
        assert_eq!(
            ps("PREGREET 28 after 0 from [::1]:52590: EHLO pregreet.example.test\\r\\n"),
            Some(Postscreen::Violation(PostscreenTest::Pregreet))
        );
        assert_eq!(
            ps("COMMAND PIPELINING from [192.0.2.1]:52590 after EHLO: MAIL FROM:<a@b>\\r\\n"),
            Some(Postscreen::Violation(PostscreenTest::Pipelining))
        );
        assert_eq!(
            ps("NON-SMTP COMMAND from [192.0.2.1]:52590 after CONNECT: GET / HTTP/1.1"),
            Some(Postscreen::Violation(PostscreenTest::NonSmtpCommand))
        );
        assert_eq!(
            ps("HANGUP after 0.1 from [192.0.2.1]:52590 in tests after SMTP handshake"),
            Some(Postscreen::Violation(PostscreenTest::Hangup))
        );
        assert_eq!(ps("DISCONNECT [::1]:52590"), None);
    }

    #[test]
    fn notifications_and_filters() {
        let n = |message| facts("postfix/bounce", message).notification;
        assert_eq!(n("283F0B69D6: sender non-delivery notification: 2AD07B69D8"), Some(Notification::NonDelivery));
        assert_eq!(n("283F0B69D6: sender delay notification: 2AD07B69D8"), Some(Notification::Delay));
        assert_eq!(n("283F0B69D6: sender delivery status notification: 2AD07B69D8"), Some(Notification::Delivery));
        assert_eq!(n("283F0B69D6: postmaster non-delivery notification: 2AD07B69D8"), None);
        let filter = |program, message| facts(program, message).filter;
        let fa = |filter, action| Some(FilterAction { filter, action });
        assert_eq!(filter("postfix/cleanup", "B37FD2E05B9: milter-reject: END-OF-MESSAGE from h[254.65.43.194]: 4.7.1 Try again later; from=<b@h.com> to=<h@h.com> proto=ESMTP helo=<h>"), fa(Filter::Milter, Action::Tempfail));
        assert_eq!(filter("postfix/smtpd", "1D8CC1CA0A7F: milter-reject: DATA from x[192.0.2.151]: 550 5.7.1 Command rejected; from=<s@m.example.com> to=<h@example.com> proto=ESMTP helo=<x>"), fa(Filter::Milter, Action::Reject));
        assert_eq!(filter("postfix/cleanup", "4C3F2E05B9: reject: header Subject: x from h[1.2.3.4]; from=<a@b.c> to=<d@e.f> proto=ESMTP helo=<h>: 5.7.1 Spam"), fa(Filter::ContentChecks, Action::Reject));
        assert_eq!(filter("postfix/cleanup", "4C3F2E05B9: hold: header Subject: x from h[1.2.3.4]; from=<a@b.c> to=<d@e.f> proto=ESMTP helo=<h>: held"), fa(Filter::ContentChecks, Action::Hold));
        assert_eq!(
            filter(
                "postfix/cleanup",
                "4C3F2E05B9: discard: body spam from h[1.2.3.4]; from=<a@b.c> to=<d@e.f> proto=ESMTP helo=<h>: gone"
            ),
            fa(Filter::ContentChecks, Action::Discard)
        );
        assert_eq!(filter("postfix/cleanup", "4C3F2E05B9: milter-hold: END-OF-MESSAGE from h[1.2.3.4]: milter triggers HOLD action; from=<a@b.c> to=<d@e.f> proto=ESMTP helo=<h>"), fa(Filter::Milter, Action::Hold));
        assert_eq!(filter("postfix/cleanup", "4C3F2E05B9: milter-discard: END-OF-MESSAGE from h[1.2.3.4]: milter triggers DISCARD action; from=<a@b.c> to=<d@e.f> proto=ESMTP helo=<h>"), fa(Filter::Milter, Action::Discard));
        assert_eq!(filter("postfix/smtpd", "proxy-reject: END-OF-MESSAGE: 554 5.7.0 Reject, id=31619-02 - spam; from=<> to=<u2@example2.com> proto=SMTP helo=<h>"), fa(Filter::ContentFilter, Action::Reject));
        // Restrictions are not filters.
        assert_eq!(filter("postfix/smtpd", "NOQUEUE: reject: RCPT from x[1.2.3.4]: 554 5.7.1 <a@b>: Relay access denied; from=<a@b> to=<c@d> proto=SMTP helo=<x>"), None);
        assert_eq!(filter("postfix/smtpd", "ABC123: hold: RCPT from x[1.2.3.4]: <a@b>: Sender address triggers HOLD action; from=<a@b> to=<c@d> proto=ESMTP helo=<x>"), None);
    }
}
