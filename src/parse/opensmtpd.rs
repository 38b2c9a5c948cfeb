//! OpenSMTPD (`smtpd` through syslog, or its own foreground output): the
//! 6.4+ format `<session-id> <subsystem> <event> key=value …` and the
//! older `smtp-in:`/`relay:`/`delivery:` lines.
//!
//! The rules:
//!
//! * **Outbound deliveries** `… mta delivery evpid=… from=<…> to=<…>
//!   rcpt=<…> source="…" relay="…" delay=… result="Ok|TempFail|PermFail"
//!   stat="<reply>"`: one line per recipient; `result` gives the outcome
//!   (sent, deferred, bounced) and `stat` is the remote reply when it starts
//!   with a code (`250 2.0.0 Ok …`, `421 4.3.0 …`). OpenSMTPD does not log
//!   which command a failure answered: the phase is `end_of_data` for `Ok`
//!   and `unknown` otherwise. A `stat` without a code (`Network error on
//!   destination MXs`, `Loop detected`, `BANNER rejected: 554 …`) is no reply
//!   on this line.
//! * **Session errors** `… mta error reason=BANNER rejected: 554 …` (also
//!   `EHLO`, `HELO`, `LHLO`, `STARTTLS`, `AUTH`), and `smtp-out: Error on
//!   session … after N messages sent: …`: the remote reply, outbound, phase
//!   from the step. The delivery lines that follow quote it as
//!   `stat="BANNER rejected: …"` and do not count it again.
//! * **Local deliveries** `… mda delivery … result=Ok stat=Delivered`: the
//!   outcome; a reply only when `stat` starts with a code (an LMTP server's).
//! * **Replies to clients** `… smtp failed-command command="…" result="550 …"`
//!   and `… smtp bad-input result="500 …"`: OpenSMTPD logs every 4xx/5xx it
//!   sends. Inbound; the phase follows the command (`""` is the connection
//!   itself, refused by a filter); a 4xx/5xx at connect, EHLO/HELO, MAIL,
//!   RCPT, DATA or end of data is also a rejection (a client, sender,
//!   recipient or message turned away, as Postfix's `reject:` and Exim's
//!   `rejected …` lines count), one to AUTH, STARTTLS or another command
//!   (an unknown command, VRFY: a protocol error) is not.
//! * Before 6.4: `smtp-in: Failed command on session …: "MAIL FROM:<…>  " =>
//!   421 4.3.0: Temporary Error` (inbound), `relay: Ok|TempFail|PermFail for
//!   …: …, stat=250 2.0.0: Ok` (outbound) and `delivery: Ok for …: …,
//!   stat=Delivered` (local). OpenSMTPD writes `4.3.0:` with a colon.
//!   6.4+ keeps this shape for what its queue process logs: `relay: Expire
//!   for <evpid>: from=<…>, to=<…>, rcpt=<->, delay=15s, stat=Envelope
//!   expired` is an envelope that outlived its `ttl` (expired); `Remove`
//!   (removed by the administrator) is no outcome.
//!
//! Everything else (`smtp connected`, `smtp message`, `mta connecting`, TLS
//! lines …) is recognized without a reply, unless it seems to carry a reply
//! that no rule placed.
//!
//! Trust: the command a client sent is logged as the client sent it (quotes
//! included), the reply text echoes addresses OpenSMTPD has validated (no
//! quotes, no spaces). So the reply is taken after the *last* ` result="`
//! (or `" => `) of the line. On delivery lines the fields are walked from the
//! left with addresses (`<…>`) and quoted values taken whole, so the `stat`
//! found is OpenSMTPD's, not text inside an address.

use super::facts::{
    self, AuthMethod, CipherClass, Facts, Notification, Received, Session, SessionError, SessionEvent, Tls,
    TlsProtocol, TlsTrust,
};
use super::scan::{angle_len, find, looks_like_reply, quoted_len, reply_at, rfind, unit_window};
use super::Record;
use crate::model::{DeliveryStatus, Direction, Mta, Phase, ReplyClass};

/// Parses the text of one OpenSMTPD line (after the syslog envelope, or a
/// whole line of its foreground output). Returns `None` when the line
/// seems to carry a reply that no rule placed.
pub fn parse(message: &str) -> Option<Record<'_>> {
    let record = if let Some(rest) = session_body(message) {
        session_event(rest)
    } else if let Some(rest) = message.strip_prefix("smtp-in: Failed command on session ") {
        legacy_failed_command(rest)
    } else if let Some(rest) = message.strip_prefix("smtp-out: Error on session ") {
        find(rest, " sent: ").and_then(|at| session_error(&rest[at + " sent: ".len()..]))
    } else {
        message.strip_prefix("relay: ").or_else(|| message.strip_prefix("delivery: ")).map(legacy_delivery)
    };
    match record {
        Some(record) => Some(record),
        None if looks_like_reply(message) => None,
        None => Some(Record::new(Mta::Opensmtpd)),
    }
}

/// The text after a 6.4+ session id (16 hex digits and a space).
pub fn session_body(message: &str) -> Option<&str> {
    let b = message.as_bytes();
    (b.len() > 17 && b[..16].iter().all(u8::is_ascii_hexdigit) && b[16] == b' ').then(|| &message[17..])
}

/// `smtp failed-command …`, `smtp bad-input …`, `mta delivery …`, `mda
/// delivery …`, `mta error …` (replies and outcomes); `smtp connected`,
/// `smtp disconnected`, `smtp message`, `smtp envelope`, `smtp tls`, `mta
/// tls`, `smtp authentication` (facts). Other events carry nothing.
fn session_event(rest: &str) -> Option<Record<'_>> {
    let (subsystem, rest) = rest.split_once(' ')?;
    let (event, fields) = rest.split_once(' ').unwrap_or((rest, ""));
    let mut record = Record::new(Mta::Opensmtpd);
    let facts = &mut record.facts;
    match (subsystem, event) {
        ("smtp", "connected") => facts.session = Some(Session { service: SERVICE, event: SessionEvent::Connect }),
        ("smtp", "disconnected") => {
            let reason = fields.strip_prefix("reason=").unwrap_or("");
            let reason = &reason[..reason.find(' ').unwrap_or(reason.len())];
            facts.session = Some(Session { service: SERVICE, event: disconnection(reason) });
        }
        ("smtp", "message") => {
            facts.received = Some(Received {
                size: facts::field(fields, "size=", false).and_then(|v| v.parse().ok()),
                recipients: facts::field(fields, "nrcpt=", false).and_then(|v| v.parse().ok()),
            });
        }
        // OpenSMTPD's own bounces arrive through a local session with the
        // null sender; [`LocalSessions`] drops this from other sessions.
        ("smtp", "envelope") => {
            let after_evpid = fields.strip_prefix("evpid=").map(|f| &f[f.find(' ').unwrap_or(f.len())..]);
            if after_evpid.is_some_and(|rest| rest.starts_with(" from=<> ")) {
                facts.notification = Some(Notification::NonDelivery);
            }
        }
        ("smtp" | "mta", "tls") => {
            let direction = if subsystem == "smtp" { Direction::Inbound } else { Direction::Outbound };
            let ciphers = fields.strip_prefix("ciphers=")?;
            let mut parts = ciphers.split(':');
            let protocol = TlsProtocol::parse(parts.next()?);
            let cipher = CipherClass::of_suite(parts.next()?);
            facts.tls = Some(Tls { direction, protocol, cipher, trust: TlsTrust::Unknown });
        }
        ("smtp", "authentication") => {
            // `user=… result=ok|permfail|tempfail`: the user is a stranger's
            // text, the result is OpenSMTPD's last field.
            if fields.ends_with(" result=permfail") {
                facts.auth_failure = Some(AuthMethod::Unknown);
            }
        }
        _ => return session_reply(subsystem, event, fields),
    }
    Some(record)
}

/// The `service` label of OpenSMTPD sessions: its log does not name the
/// listener.
const SERVICE: &str = "smtpd";

/// `smtp disconnected reason=…`: `quit` is a normal end; `disconnect` (the
/// client closed the connection without QUIT), `timeout` and `io-error`
/// end it abnormally.
fn disconnection(reason: &str) -> SessionEvent {
    let error = match reason {
        "disconnect" | "io-error" => SessionError::LostConnection,
        "timeout" => SessionError::Timeout,
        _ => return SessionEvent::Disconnect,
    };
    SessionEvent::Error { error, phase: Phase::Unknown, disconnect: true }
}

/// The session ids of OpenSMTPD's local sessions (`smtp connected
/// address=local`): its own bounces and `sendmail`-style submissions. Their
/// connects and disconnects are not SMTP sessions, and a null-sender
/// envelope in one is a notification OpenSMTPD generated.
#[derive(Debug, Default)]
pub struct LocalSessions {
    open: std::collections::HashSet<u64>,
}

/// Local sessions last well under a second; more than this many open at
/// once means lines were lost, and the set starts over.
const LOCAL_SESSIONS_MAX: usize = 4096;

impl LocalSessions {
    /// Adjusts what the parser found on one line with what is known about
    /// its session.
    pub fn settle(&mut self, message: &str, facts: &mut Facts<'_>) {
        let Some(id) = message.get(..16).and_then(|hex| u64::from_str_radix(hex, 16).ok()) else {
            facts.notification = None;
            return;
        };
        match facts.session.map(|s| s.event) {
            Some(SessionEvent::Connect) if find(message, " smtp connected address=local ").is_some() => {
                if self.open.len() >= LOCAL_SESSIONS_MAX {
                    self.open.clear();
                }
                self.open.insert(id);
                facts.session = None;
            }
            Some(SessionEvent::Disconnect | SessionEvent::Error { .. }) if self.open.remove(&id) => {
                facts.session = None;
            }
            _ => {}
        }
        if facts.notification.is_some() && !self.open.contains(&id) {
            facts.notification = None;
        }
    }
}

/// The events that carry replies and delivery outcomes.
fn session_reply<'a>(subsystem: &str, event: &str, fields: &'a str) -> Option<Record<'a>> {
    match (subsystem, event) {
        ("smtp", "failed-command") => Some(failed_command(fields)),
        ("smtp", "bad-input") => {
            let reply = result(fields).and_then(|text| reply_at(text, Direction::Inbound, Phase::Unknown));
            Some(Record { reply, ..Record::new(Mta::Opensmtpd) })
        }
        ("mta" | "mda", "delivery") => Some(delivery(fields)),
        ("mta", "error") => fields.strip_prefix("reason=").and_then(session_error),
        _ => None,
    }
}

/// The value of the last ` result="…"` (or a leading `result="…"`), to the
/// line's last quote.
fn result(fields: &str) -> Option<&str> {
    let start = match rfind(fields, " result=\"") {
        Some(at) => at + " result=\"".len(),
        None => fields.strip_prefix("result=\"").map(|_| "result=\"".len())?,
    };
    let value = &fields[start..];
    Some(value.strip_suffix('"').unwrap_or(value))
}

/// `command="RCPT TO:<a@b> " result="550 Invalid recipient: <a@b>"`.
fn failed_command(fields: &str) -> Record<'_> {
    let command = match (fields.strip_prefix("command=\""), rfind(fields, "\" result=\"")) {
        (Some(_), Some(end)) if end >= "command=\"".len() => &fields["command=\"".len()..end],
        _ => "",
    };
    client_reply(command, result(fields))
}

/// An inbound reply to `command`; a rejection when it refused the
/// connection, the client's greeting, a sender, a recipient or the message.
fn client_reply<'a>(command: &str, result: Option<&'a str>) -> Record<'a> {
    let command = command.trim();
    let phase = match command {
        "" => Phase::Connect,
        "." => Phase::EndOfData,
        _ => Phase::from_command(command),
    };
    let reply = result.and_then(|text| reply_at(text, Direction::Inbound, phase));
    // (STARTTLS has phase helo too, but a refused STARTTLS turns nobody away.)
    let greeting = || {
        let word = command.split([' ', ':']).next().unwrap_or("");
        word.eq_ignore_ascii_case("EHLO") || word.eq_ignore_ascii_case("HELO")
    };
    let refused = (matches!(phase, Phase::Connect | Phase::Mail | Phase::Rcpt | Phase::Data | Phase::EndOfData)
        || (phase == Phase::Helo && greeting()))
        && reply.is_some_and(|r| r.class() != ReplyClass::Success);
    Record { reply, delivery: refused.then_some(DeliveryStatus::Rejected), ..Record::new(Mta::Opensmtpd) }
}

/// Pre-6.4: `SESSION: "MAIL FROM:<root@x>  " => 421 4.3.0: Temporary Error`.
fn legacy_failed_command(rest: &str) -> Option<Record<'_>> {
    let open = find(rest, ": \"")? + 3;
    let close = rfind(rest, "\" => ")?;
    let command = if close >= open { &rest[open..close] } else { "" };
    Some(client_reply(command, Some(&rest[close + "\" => ".len()..])))
}

/// `BANNER rejected: 554 …` and the like: a remote server's reply that
/// ended the session before any delivery.
fn session_error(error: &str) -> Option<Record<'_>> {
    let at = find(error, " rejected: ")?;
    let phase = match &error[..at] {
        "BANNER" => Phase::Connect,
        "AUTH" => Phase::Auth,
        step => Phase::from_command(step),
    };
    let reply = reply_at(&error[at + " rejected: ".len()..], Direction::Outbound, phase)?;
    Some(Record { reply: Some(reply), ..Record::new(Mta::Opensmtpd) })
}

/// `evpid=… from=<…> to=<…> … result="Ok" stat="250 …"` (quoted for
/// `mta`, bare for `mda`): fields walked from the left, `stat` runs to the
/// end of the line.
fn delivery(fields: &str) -> Record<'_> {
    let mut result = "";
    let mut to = "";
    let mut stat = "";
    let mut delay = None;
    let mut rest = fields;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim_start();
        let value_on = &rest[eq + 1..];
        if key == "stat" {
            stat = value_on.strip_prefix('"').map_or(value_on, |v| v.strip_suffix('"').unwrap_or(v));
            break;
        }
        let b = value_on.as_bytes();
        let len = match b.first() {
            Some(b'<') => angle_len(unit_window(b)),
            Some(b'"') => quoted_len(unit_window(b)),
            _ => None,
        }
        .unwrap_or_else(|| value_on.find(' ').unwrap_or(value_on.len()));
        let value = &value_on[..len];
        match key {
            "result" => result = value.trim_matches('"'),
            "to" => to = value.trim_matches(['<', '>']),
            "delay" => delay = facts::unit_duration(value),
            _ => {}
        }
        rest = &value_on[len..];
    }
    let mut record = outcome(result, stat, to);
    if record.delivery.is_some() {
        record.facts.delay = delay;
    }
    record
}

/// Pre-6.4 `relay:`/`delivery:` lines: `Ok for EVPID: key=value, …, stat=…`.
fn legacy_delivery(rest: &str) -> Record<'_> {
    let (result, fields) = rest.split_once(" for ").unwrap_or((rest, ""));
    let fields = fields.split_once(": ").map_or("", |(_, f)| f);
    let mut to = "";
    let mut stat = "";
    let mut field = fields;
    while let Some(eq) = field.find('=') {
        let key = field[..eq].trim_start_matches([',', ' ']);
        let value_on = &field[eq + 1..];
        if key == "stat" {
            stat = value_on;
            break;
        }
        let unit = angle_len(unit_window(value_on.as_bytes())).unwrap_or(0);
        let end = unit + find(&value_on[unit..], ", ").unwrap_or(value_on.len() - unit);
        if key == "to" {
            to = value_on[..end].trim_matches(['<', '>']);
        }
        field = &value_on[end..];
    }
    outcome(result, stat, to)
}

fn outcome<'a>(result: &str, stat: &'a str, to: &'a str) -> Record<'a> {
    let delivery = match result {
        "Ok" => Some(DeliveryStatus::Sent),
        "TempFail" => Some(DeliveryStatus::Deferred),
        "PermFail" | "Loop" => Some(DeliveryStatus::Bounced),
        // The envelope outlived its `ttl`/`queue ttl` and goes back to the sender.
        "Expire" => Some(DeliveryStatus::Expired),
        _ => None,
    };
    let phase = if delivery == Some(DeliveryStatus::Sent) { Phase::EndOfData } else { Phase::Unknown };
    let reply = reply_at(stat, Direction::Outbound, phase);
    let remote_domain = to.rsplit_once('@').map(|(_, domain)| domain);
    Record { reply, delivery, remote_domain, ..Record::new(Mta::Opensmtpd) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ReplyCode;
    use DeliveryStatus::*;
    use Direction::*;

    /// (code, enhanced, direction, phase, delivery)
    type Want<'a> = (Option<u16>, Option<&'a str>, Option<Direction>, Option<Phase>, Option<DeliveryStatus>);

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
            );
            assert_eq!(got, *want, "{message}");
        }
    }

    #[test]
    fn deliveries() {
        let out = Some(Outbound);
        check(&[
            ("b4a942c1a10c63f2 mta delivery evpid=a5f3c9d0e1b2c3d4 from=<a@src.test> to=<rcpt-451@sink.test> rcpt=<-> source=\"127.0.0.1\" relay=\"127.0.0.1 (localhost)\" delay=1s result=\"TempFail\" stat=\"421 4.3.0: Temporary failure\"",
             (Some(421), Some("4.3.0"), out, Some(Phase::Unknown), Some(Deferred))),
            ("b4a942c1a10c63f2 mta delivery evpid=a5f3c9d0e1b2c3d4 from=<a@src.test> to=<u@sink.test> rcpt=<-> source=\"127.0.0.1\" relay=\"127.0.0.1 (localhost)\" delay=0s result=\"Ok\" stat=\"250 2.0.0 Ok: queued as 4F2A\"",
             (Some(250), Some("2.0.0"), out, Some(Phase::EndOfData), Some(Sent))),
            ("b4a942c1a10c63f2 mta delivery evpid=a5f3c9d0e1b2c3d4 from=<a@src.test> to=<u@sink.test> rcpt=<-> source=\"127.0.0.1\" relay=\"127.0.0.1 (localhost)\" delay=0s result=\"PermFail\" stat=\"550 5.1.1 <u@sink.test>: no such userand this is the second line\"",
             (Some(550), Some("5.1.1"), out, Some(Phase::Unknown), Some(Bounced))),
            ("b4a942c1a10c63f2 mta delivery evpid=a5f3c9d0e1b2c3d4 from=<a@src.test> to=<u@sink.test> rcpt=<-> source=\"-\" relay=\"127.0.0.1\" delay=3s result=\"TempFail\" stat=\"BANNER rejected: 554 5.7.1 go away\"",
             (None, None, None, None, Some(Deferred))),
            ("b4a942c1a10c63f2 mta delivery evpid=a5f3c9d0e1b2c3d4 from=<a@src.test> to=<u@sink.test> rcpt=<-> source=\"-\" relay=\"127.0.0.1\" delay=3s result=\"TempFail\" stat=\"Network error on destination MXs\"",
             (None, None, None, None, Some(Deferred))),
            ("3a0d7e3e7e2b8c11 mda delivery evpid=9b0c1d2e3f405162 from=<a@src.test> to=<root@localhost> rcpt=<root@localhost> user=root delay=0s result=Ok stat=Delivered",
             (None, None, None, None, Some(Sent))),
            // An address cannot pose as the status.
            ("b4a942c1a10c63f2 mta delivery evpid=a5f3c9d0e1b2c3d4 from=<\"x stat=\\\"250 ok\"@evil> to=<u@sink.test> rcpt=<-> source=\"-\" relay=\"1.2.3.4\" delay=3s result=\"PermFail\" stat=\"550 5.7.1 no\"",
             (Some(550), Some("5.7.1"), out, Some(Phase::Unknown), Some(Bounced))),
            ("b4a942c1a10c63f2 mta error reason=BANNER rejected: 554 5.7.1 go away", (Some(554), Some("5.7.1"), out, Some(Phase::Connect), None)),
            ("b4a942c1a10c63f2 mta error reason=EHLO rejected: 550 5.7.1 helo denied", (Some(550), Some("5.7.1"), out, Some(Phase::Helo), None)),
            ("smtp-out: Error on session b4a942c1a10c63f2 after 1 message sent: AUTH rejected: 535 5.7.8 bad", (Some(535), Some("5.7.8"), out, Some(Phase::Auth), None)),
            ("relay: Ok for 5ba7e3a8c1b1f9e9: session=5ba7e3a8ab, from=<a@b>, to=<c@d.example>, rcpt=<->, source=1.2.3.4, relay=mx.d.example [5.6.7.8], delay=2s, stat=250 2.0.0: 123 Message accepted for delivery",
             (Some(250), Some("2.0.0"), out, Some(Phase::EndOfData), Some(Sent))),
            // OpenSMTPD 6.8 (tests/fixtures/opensmtpd): the queue process, no session id.
            ("relay: Expire for 0ebb4092b3a8c22f: from=<alice@example.test>, to=<rcpt-451-4.7.1@expire.test>, rcpt=<->, delay=6s, stat=Envelope expired",
             (None, None, None, None, Some(Expired))),
            ("delivery: Expire for 0ebb4092b3a8c230: from=<alice@example.test>, to=<box@mx1.example.test>, rcpt=<box@mx1.example.test>, delay=4d, stat=Envelope expired",
             (None, None, None, None, Some(Expired))),
            ("relay: Remove for 0ebb4092b3a8c231: from=<alice@example.test>, to=<a@sink.test>, rcpt=<->, delay=1h, stat=Removed by administrator",
             (None, None, None, None, None)),
            ("delivery: Ok for 5307a501bb: from=<ops@gw.example.com>, to=<team@gw.example.com>, user=team, method=mbox, delay=0s, stat=Delivered",
             (None, None, None, None, Some(Sent))),
        ]);
    }

    #[test]
    fn replies_to_clients() {
        let inb = Some(Inbound);
        check(&[
            ("bf23567dd3150185 smtp failed-command command=\"RCPT TO:<root@cun.bsdsx.fr> \" result=\"550 Invalid recipient: <root@cun.bsdsx.fr>\"",
             (Some(550), None, inb, Some(Phase::Rcpt), Some(Rejected))),
            ("b4a942c181a10c63 smtp failed-command command=\"DATA\" result=\"451 Try again later please later\"", (Some(451), None, inb, Some(Phase::Data), Some(Rejected))),
            ("88166f7f21c951f4 smtp failed-command command=\"\" result=\"550 no rDNS please fix\"", (Some(550), None, inb, Some(Phase::Connect), Some(Rejected))),
            // OpenSMTPD 6.8 (tests/fixtures/opensmtpd): a filter refusing
            // EHLO and HELO turns the client away; protocol errors do not.
            ("7b8ec615169af9ce smtp failed-command command=\"EHLO bad.helo.test\" result=\"550 5.7.1 Your EHLO name is not acceptable\"",
             (Some(550), Some("5.7.1"), inb, Some(Phase::Helo), Some(Rejected))),
            ("7b8ec615169af9ce smtp failed-command command=\"HELO bad.helo.test\" result=\"550 5.7.1 Your HELO name is not acceptable\"",
             (Some(550), Some("5.7.1"), inb, Some(Phase::Helo), Some(Rejected))),
            ("7b8ec618af4c4def smtp failed-command command=\"STARTTLS\" result=\"454 4.7.0 TLS not available\"",
             (Some(454), Some("4.7.0"), inb, Some(Phase::Helo), None)),
            ("7b8ec618af4c4def smtp failed-command command=\"FOO bar\" result=\"500 5.5.1 Invalid command: Command unrecognized\"",
             (Some(500), Some("5.5.1"), inb, Some(Phase::Other), None)),
            ("7b8ec618af4c4def smtp failed-command command=\"VRFY ok\" result=\"500 5.5.1 Invalid command: Command unrecognized\"",
             (Some(500), Some("5.5.1"), inb, Some(Phase::Other), None)),
            ("7b8ec618af4c4def smtp failed-command command=\"MAIL FROM:<bad address\" result=\"553 5.1.0 Sender address syntax error\"",
             (Some(553), Some("5.1.0"), inb, Some(Phase::Mail), Some(Rejected))),
            ("7b8ec618af4c4def smtp failed-command command=\"DATA\" result=\"503 5.5.4 Invalid command arguments: No recipient specified\"",
             (Some(503), Some("5.5.4"), inb, Some(Phase::Data), Some(Rejected))),
            ("c1a89cb774083905 smtp failed-command command=\"AUTH LOGIN\" result=\"503 5.5.1 Invalid command: Command not supported\"",
             (Some(503), Some("5.5.1"), inb, Some(Phase::Auth), None)),
            ("c1a89cb8c5b84cbf smtp bad-input result=\"500 5.5.1 Invalid command: Pipelining not supported\"", (Some(500), Some("5.5.1"), inb, Some(Phase::Unknown), None)),
            // A client's command cannot pose as the result.
            ("c1a89cb774083905 smtp failed-command command=\"MAIL FROM:<a> result=\"250 2.0.0 ok\"\" result=\"553 5.1.7 Sender address syntax error\"",
             (Some(553), Some("5.1.7"), inb, Some(Phase::Mail), Some(Rejected))),
            ("smtp-in: Failed command on session 2a66bdcdf16e1234: \"MAIL FROM:<ops@gateway.example.com>  \" => 421 4.3.0: Temporary failure",
             (Some(421), Some("4.3.0"), inb, Some(Phase::Mail), Some(Rejected))),
        ]);
    }

    #[test]
    fn lines_without_a_reply() {
        for message in [
            "c1a89cb774083905 smtp connected address=185.234.219.64 host=<unknown>",
            "c1a89cb774083905 smtp disconnected reason=disconnect",
            "b4a942c181a10c63 smtp tls ciphers=TLSv1.2:ECDHE-RSA-AES256-SHA384:256",
            "b4a942c181a10c63 smtp message msgid=5a3c6ee8 size=1234 nrcpt=1 proto=ESMTP",
            "b4a942c181a10c63 smtp authentication user=alice result=permfail",
            "b4a942c181a10c63 mta connecting address=smtp://127.0.0.1:2525 host=localhost",
            "smtp-in: New session 19e967c283f7ad6d from host gw.example.com [local]",
            "smtp-in: Accepted message 5307a501 on session 19e967c283f7ad6d: from=<ops@gw.example.com>, to=<team@gw.example.com>, size=2210, ndest=1, proto=ESMTP",
            "smtp-in: Started TLS on session 538f85ad3f57a910: version=TLSv1.3, cipher=TLS_AES_256_GCM_SHA384, bits=256",
            "info: OpenSMTPD 6.8.0p2 starting",
        ] {
            let record = parse(message).unwrap_or_else(|| panic!("unrecognized: {message}"));
            assert_eq!((record.reply, record.delivery), (None, None), "{message}");
        }
        assert_eq!(parse("warn: something odd: 550 5.1.1 no"), None);
    }
}

#[cfg(test)]
mod fact_tests {
    use std::time::Duration;

    use super::*;
    use crate::parse::{Line, LineParser};

    fn facts(message: &str) -> Facts<'_> {
        parse(message).unwrap_or_else(|| panic!("unrecognized: {message}")).facts
    }

    #[test]
    fn messages_delays_tls_auth() {
        let f = facts("7b8ec5c672a6a7a3 smtp message msgid=03e7f193 size=437 nrcpt=2 proto=ESMTP");
        assert_eq!(f.received, Some(Received { size: Some(437), recipients: Some(2) }));
        let f = facts("7b8ec5c9beb11f20 mta delivery evpid=03e7f1932a2d1ccf from=<a@e.test> to=<r@x.test> rcpt=<-> source=\"127.0.0.1\" relay=\"127.0.0.1 (localhost)\" delay=1m3s result=\"TempFail\" stat=\"451 4.7.1 later delay=9s\"");
        assert_eq!(f.delay, Some(Duration::from_secs(63)));
        let f = facts("b4a942c181a10c63 smtp tls ciphers=TLSv1.2:ECDHE-RSA-AES256-SHA384:256");
        assert_eq!(
            f.tls,
            Some(Tls {
                direction: Direction::Inbound,
                protocol: TlsProtocol::Tls12,
                cipher: CipherClass::AesCbc,
                trust: TlsTrust::Unknown
            })
        );
        let f = facts("b4a942c181a10c63 mta tls ciphers=TLSv1.3:TLS_CHACHA20_POLY1305_SHA256:256");
        assert_eq!(f.tls.map(|t| (t.direction, t.cipher)), Some((Direction::Outbound, CipherClass::Chacha20Poly1305)));
        assert_eq!(
            facts("b4a942c181a10c63 smtp authentication user=alice result=permfail").auth_failure,
            Some(AuthMethod::Unknown)
        );
        assert_eq!(facts("b4a942c181a10c63 smtp authentication user=x result=permfail result=ok").auth_failure, None);
        assert_eq!(facts("b4a942c181a10c63 smtp authentication user=alice result=ok").auth_failure, None);
    }

    #[test]
    fn local_sessions_are_not_smtp_sessions() {
        let mut parser = LineParser::default();
        let mut facts_of = |line: &'static str| match parser.parse(line) {
            Line::Mta(record) => record.facts,
            other => panic!("{other:?}"),
        };
        let connect = Some(Session { service: "smtpd", event: SessionEvent::Connect });
        assert_eq!(
            facts_of(
                "Nov 28 20:10:02 vm smtpd[4561]: 7b8ec5c672a6a7a3 smtp connected address=127.0.0.1 host=localhost"
            )
            .session,
            connect
        );
        assert_eq!(
            facts_of("Nov 28 20:10:09 vm smtpd[4561]: 7b8ec5caf0553d17 smtp connected address=local host=vm").session,
            None
        );
        assert_eq!(facts_of("Nov 28 20:10:09 vm smtpd[4561]: 7b8ec5caf0553d17 smtp envelope evpid=333652fcd02d072c from=<> to=<alice@example.test>").notification, Some(Notification::NonDelivery));
        // A null sender from a remote client is not a notification of ours.
        assert_eq!(facts_of("Nov 28 20:10:09 vm smtpd[4561]: 7b8ec5c672a6a7a3 smtp envelope evpid=333652fcd02d072d from=<> to=<alice@example.test>").notification, None);
        assert_eq!(
            facts_of("Nov 28 20:10:09 vm smtpd[4561]: 7b8ec5caf0553d17 smtp disconnected reason=quit").session,
            None
        );
        assert_eq!(
            facts_of("Nov 28 20:10:09 vm smtpd[4561]: 7b8ec5c672a6a7a3 smtp disconnected reason=quit").session,
            Some(Session { service: "smtpd", event: SessionEvent::Disconnect })
        );
        let lost = SessionEvent::Error { error: SessionError::LostConnection, phase: Phase::Unknown, disconnect: true };
        assert_eq!(
            facts_of("Nov 28 20:10:09 vm smtpd[4561]: 7b8ec5c672a6a7a4 smtp disconnected reason=disconnect").session,
            Some(Session { service: "smtpd", event: lost })
        );
    }
}
