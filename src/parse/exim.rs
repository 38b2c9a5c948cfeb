//! Exim 4: mainlog and rejectlog lines, from Exim's own files or through
//! syslog, with or without `[pid]` (`+pid`), milliseconds (`+millisec`)
//! and a time zone (`log_timezone`).
//!
//! A line is `[TIMESTAMP ][[PID] ][MESSAGE-ID ]BODY`; through syslog the
//! timestamp is usually absent (or Exim's own one follows the syslog tag).
//! The rules, tried on BODY:
//!
//! * **Deliveries** `=> `, `-> ` (another recipient of the same
//!   transaction) and `>> ` (cutthrough): outcome `sent`. The reply is the
//!   remote confirmation in `C="…"` (`log_selector = +smtp_confirmation`),
//!   answering the end of data; without `C=` the line has no reply.
//!   `*> ` (delivery suppressed by `-N`), `<= ` and `(= ` (arrivals) have
//!   no outcome.
//! * **Deferrals** `== ` and **bounces** `** `: outcome `deferred` /
//!   `bounced`. The reply is in the error text after the fields:
//!   `SMTP error from remote mail server after <cmd>: <reply>` (the phase
//!   is `<cmd>`: `initial connection`, `HELO …`, `MAIL FROM:<…>`, `RCPT
//!   TO:<…>`, `DATA`, `end of data`, `sending data block`, with or without
//!   `pipelined `), `LMTP error after DATA: <reply>` (LMTP answers each
//!   recipient after the end of data), `Malformed SMTP reply … in response
//!   to <cmd>: <reply>`, `(EHLO response was: <reply>)`; a code that starts
//!   the error text itself (a router's `:fail: 590 5.4.3 …`) is a status
//!   Exim generated and counts like Postfix's own statuses (outbound,
//!   phase `none` when no host was involved). A trailing ` DT=…` is not
//!   part of the reply. A bounce because the retry time ran out (`** a@b:
//!   retry timeout exceeded`) is the outcome `expired`, as Postfix's
//!   `status=expired`.
//! * **Host-level errors** `H=name [ip]: <error>`: Exim logs an error that
//!   concerns the host rather than one recipient (a greeting or EHLO
//!   rejection, a 4xx to MAIL/DATA/end of data or AUTH, a malformed reply)
//!   once for the host, and — when this was the last host it tried — again
//!   on every recipient's `==`/`**` line. Counted exactly once per
//!   recipient, like Postfix's one status line per recipient: the
//!   host-level line counts the reply and stands for the *first* recipient
//!   line that repeats it (same message id, host address and error text);
//!   that recipient line counts only its outcome, later ones count the
//!   reply again. A host-level line that no recipient line repeats (Exim
//!   moved on to the next MX) is a non-final reply, counted like Postfix's
//!   `host … said:` lines without a status. The parser remembers the last
//!   [`CREDITS`] host-level errors for this; that is its only state.
//! * **Inbound rejections** `… [temporarily ]rejected <what> …: <message>`
//!   (`RCPT`, `MAIL`, `DATA`, `after DATA`, `connection in "connect" ACL`,
//!   `EHLO`/`HELO`, `by local_scan()`, `by non-SMTP ACL`, `VRFY` …) and
//!   `dropped by 'connect' ACL`: outcome `rejected`, inbound. Exim does not
//!   log the code it sent: the reply is counted only when the ACL message
//!   starts with one (`message = 452 4.5.3 Try again`).
//! * **Authentication**: `NAME authenticator failed for HOST: 535 …` is our
//!   server's reply to a client (inbound, phase `auth`, no outcome);
//!   `NAME authenticator failed H=HOST 535-5.7.8 …` is a remote server's
//!   reply to our client (outbound). Exim writes that remote reply with its
//!   real line breaks, so the next physical line starts with `535 5.7.8`:
//!   see [`is_continuation`].
//! * **Callouts** `sender verify fail for <a>: <error>` (also `recipient
//!   verify`, `defer`): the remote reply quoted in the error
//!   (`response to "RCPT TO:<a>" from H [ip] was: 550 …`, or the `SMTP error
//!   from remote mail server` form) is a remote server's reply to our
//!   callout: outbound, no outcome.
//! * `tmp-reject from cutthrough after DATA: … C="459 …"`: the cutthrough
//!   target's reply, outbound.
//!
//! A protocol synchronization error (`…: rejected connection from …`) is a
//! rejection without a code. Command timeouts, `SMTP protocol error
//! in "AUTH LOGIN" …`, `SMTP call from … dropped` and everything else Exim
//! writes are recognized without a reply (Exim does not log the code it
//! sent there), unless a line seems to carry a reply that no rule placed
//! (then it is unrecognized). Multi-line replies are joined by Exim with a
//! literal `\n` (`\\n` inside `C="…"`); the first line's codes count.
//!
//! Trust: addresses, HELO names (`H=(…)`), host names and reply texts are
//! written by strangers. Fields are walked from the left with `<…>`, `"…"`,
//! `(…)` and `[…]` kept whole, so text inside an address or a HELO name
//! cannot pose as `rejected` or as the error text; the error text starts
//! after the first field that ends with `:`. `C="…"` is found from the right
//! (Exim escapes `"` inside its value, so a `C="` earlier on the line is a
//! stranger's).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use super::facts::{
    self, Action, AuthMethod, CipherClass, Facts, Filter, FilterAction, Notification, Received, Session, SessionError,
    SessionEvent, Tls, TlsProtocol, TlsTrust,
};
use super::scan::{angle_len, find, looks_like_basic_reply, quoted_len, reply_at, rfind, unit_window, unquote};
use super::Record;
use crate::model::{scan_reply, DeliveryStatus, Direction, Mta, Phase, Reply};

/// How many host-level errors are remembered for the recipient lines that
/// repeat them. A delivery process writes the host-level line and the
/// recipient lines together, so even a busy mainlog with many parallel
/// deliveries interleaves far fewer than this in between.
pub const CREDITS: usize = 256;

/// The Exim parser of one source: pure per line except for the memory of
/// recent host-level errors (see the module doc).
#[derive(Debug, Clone)]
pub struct EximParser {
    /// Fingerprints of host-level errors not yet repeated by a recipient
    /// line; 0 is an empty slot.
    credits: Box<[u64; CREDITS]>,
    /// The slot the next credit goes to (the oldest one is overwritten).
    next: usize,
}

impl Default for EximParser {
    fn default() -> Self {
        EximParser { credits: Box::new([0; CREDITS]), next: 0 }
    }
}

impl EximParser {
    pub fn new() -> Self {
        EximParser::default()
    }

    /// Parses the text of one Exim line: a whole mainlog/rejectlog line, or
    /// the message after a syslog envelope. Returns `None` when the line
    /// seems to carry a reply that no rule placed.
    pub fn parse<'a>(&mut self, text: &'a str) -> Option<Record<'a>> {
        let (id, body) = split_prefix(text);
        let record = match body.get(..3) {
            Some("=> " | "-> " | ">> ") => Some(sent(&body[3..])),
            Some("** ") => Some(self.failed(id, &body[3..], DeliveryStatus::Bounced)),
            Some("== ") => Some(self.failed(id, &body[3..], DeliveryStatus::Deferred)),
            Some("<= " | "(= ") => Some(arrival(&body[3..])),
            Some("*> ") => Some(Record::new(Mta::Exim)),
            _ => self.event(id, body),
        };
        match record {
            Some(record) => Some(record),
            None if looks_like_basic_reply(body) => None,
            None => Some(Record::new(Mta::Exim)),
        }
    }

    /// `** addr … : error` and `== addr … defer (N) H=…: error`.
    fn failed<'a>(&mut self, id: &str, rest: &'a str, status: DeliveryStatus) -> Record<'a> {
        let mut record = Record { delivery: Some(status), ..Record::new(Mta::Exim) };
        record.remote_domain = first_field(rest).and_then(|a| a.rsplit_once('@')).map(|(_, d)| d);
        let Some((fields, message)) = split_message(rest) else { return record };
        delivery_facts(fields, &mut record.facts);
        // Exim's own error text for a failed handshake with the remote host.
        if message.starts_with("TLS session: ") {
            record.facts.tls_failure = Some(Direction::Outbound);
        }
        // On `**` lines Exim appends ` DT=…` after the error text.
        if record.facts.attempt.is_none() {
            if let Some(at) = rfind(message, " DT=") {
                let value = &message[at + 4..];
                if !value.contains(' ') {
                    record.facts.attempt = facts::unit_duration(value);
                }
            }
        }
        if status == DeliveryStatus::Bounced && given_up(message) {
            record.delivery = Some(DeliveryStatus::Expired);
            return record;
        }
        let host = host_address(fields);
        record.reply = match smtp_error(message) {
            Some(error) => {
                let repeated = self.take_credit(fingerprint(id, host, error.span));
                (!repeated).then_some(error.reply)
            }
            None => {
                let phase = if host.is_some() { Phase::Unknown } else { Phase::None };
                reply_at(strip_delivery_time(message), Direction::Outbound, phase)
            }
        };
        record
    }

    /// Lines that are not deliveries: rejections, authentication failures,
    /// callouts, host-level errors and informational lines. `None` when no
    /// rule applies.
    fn event<'a>(&mut self, id: &str, body: &'a str) -> Option<Record<'a>> {
        if let Some(record) = session(body) {
            return Some(record);
        }
        // Exim's own messages about a client's protocol errors, its own
        // configuration, or a virus/spam scanner's protocol (whose codes are
        // not SMTP replies).
        if body.starts_with("SMTP protocol synchronization error") && find(body, "): rejected ").is_some() {
            // Exim refused the client for talking out of turn; it does not log the code.
            return Some(Record { delivery: Some(DeliveryStatus::Rejected), ..Record::new(Mta::Exim) });
        }
        const INFORMATIONAL: [&str; 5] = [
            "SMTP protocol",
            "SMTP command timeout",
            "EHLO/HELO response",
            "malware acl condition:",
            "spam acl condition:",
        ];
        if INFORMATIONAL.iter().any(|p| body.starts_with(p)) {
            return Some(Record::new(Mta::Exim));
        }
        let mut first = true;
        let mut host_level = false;
        let mut previous = "";
        for (start, end) in Fields::new(body) {
            let field = &body[start..end];
            let name = std::mem::replace(&mut previous, field);
            if first {
                host_level = field.starts_with("H=");
                first = false;
            }
            match field {
                "rejected" => return Some(rejected(&body[end..])),
                "dropped" if body[end..].starts_with(" by ") => return Some(rejected(&body[end..])),
                "authenticator" if body[end..].starts_with(" failed ") => {
                    let mut record = authentication_failure(&body[end + " failed".len()..]);
                    if record.reply.is_some_and(|r| r.direction == Direction::Inbound) {
                        record.facts.auth_failure = Some(AuthMethod::from_authenticator(name));
                    }
                    return Some(record);
                }
                "verify" => return Some(callout(&body[end..])),
                "tmp-reject" => return Some(cutthrough(body)),
                _ => {}
            }
            if host_level && field.starts_with('[') {
                // `H=name [ip]: error` (or without the colon): the host's
                // address ends the host, and an error text follows it.
                let message = body[end..].trim_start_matches(' ');
                if HOST_ERRORS.iter().any(|e| message.starts_with(e)) {
                    let error = smtp_error(message)?;
                    self.give_credit(fingerprint(id, host_address(&body[..end]), error.span));
                    return Some(Record { reply: Some(error.reply), ..Record::new(Mta::Exim) });
                }
            }
            // An ACL's `warn` message goes on after `Warning:`.
            if field.ends_with(':') && field != "Warning:" {
                return None;
            }
        }
        None
    }

    fn give_credit(&mut self, fingerprint: Option<u64>) {
        if let Some(fp) = fingerprint {
            self.credits[self.next] = fp;
            self.next = (self.next + 1) % CREDITS;
        }
    }

    /// Whether a host-level line already counted this error; if so the
    /// credit is used up, so the next recipient line counts again.
    fn take_credit(&mut self, fingerprint: Option<u64>) -> bool {
        let Some(fp) = fingerprint else { return false };
        match self.credits.iter().position(|&c| c == fp) {
            Some(slot) => {
                self.credits[slot] = 0;
                true
            }
            None => false,
        }
    }
}

/// How the error texts Exim writes after a host's address begin.
const HOST_ERRORS: [&str; 5] = [
    "SMTP error from remote mail server",
    "LMTP error",
    "PRDR error",
    "Malformed SMTP reply",
    "Remote host closed connection",
];

/// Exim gave up on an address because its retry rules' time ran out (the
/// queue lifetime, in Postfix's words): `retry timeout exceeded`, `retry
/// time not reached for any host after a long failure period`.
fn given_up(message: &str) -> bool {
    let message = strip_delivery_time(message);
    message.starts_with("retry timeout exceeded") || message.ends_with("after a long failure period")
}

/// Identifies one host-level error: the message, the host's address and
/// the error text. `None` without a message id or host (nothing to match).
fn fingerprint(id: &str, host: Option<&str>, error: &str) -> Option<u64> {
    let host = host?;
    if id.is_empty() {
        return None;
    }
    let mut hasher = DefaultHasher::new();
    (id, host, error).hash(&mut hasher);
    // 0 marks an empty slot.
    Some(hasher.finish().max(1))
}

/// Length of Exim's own timestamp at the start of `b`: `YYYY-MM-DD
/// HH:MM:SS`, then `.mmm` with `+millisec` and ` +HHMM` with
/// `log_timezone`. Exim's timestamp must be followed by a space or end the line.
pub fn timestamp_len(b: &[u8]) -> Option<usize> {
    let digits = |r: &[u8]| r.iter().all(u8::is_ascii_digit);
    if b.len() < 19
        || !digits(&b[0..4])
        || b[4] != b'-'
        || !digits(&b[5..7])
        || b[7] != b'-'
        || !digits(&b[8..10])
        || b[10] != b' '
        || !digits(&b[11..13])
        || b[13] != b':'
        || !digits(&b[14..16])
        || b[16] != b':'
        || !digits(&b[17..19])
    {
        return None;
    }
    let mut pos = 19;
    if b.get(pos) == Some(&b'.') {
        let n = b[pos + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        pos += 1 + n;
    }
    if b.get(pos) == Some(&b' ')
        && matches!(b.get(pos + 1), Some(b'+' | b'-'))
        && b.get(pos + 2..pos + 6).is_some_and(digits)
        && !b.get(pos + 6).is_some_and(u8::is_ascii_digit)
    {
        pos += 6;
    }
    matches!(b.get(pos), None | Some(b' ')).then_some(pos)
}

/// Splits `[TIMESTAMP ][[PID] ][MESSAGE-ID ]` off a line: returns the
/// message id (empty when absent) and the body.
fn split_prefix(text: &str) -> (&str, &str) {
    let mut rest = text;
    if let Some(len) = timestamp_len(rest.as_bytes()) {
        rest = rest[len..].strip_prefix(' ').unwrap_or(&rest[len..]);
    }
    if let Some(inner) = rest.strip_prefix('[') {
        let digits = inner.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && inner[digits..].starts_with("] ") {
            rest = &inner[digits + 2..];
        }
    }
    match message_id_len(rest.as_bytes()) {
        Some(len) => (&rest[..len], rest[len..].strip_prefix(' ').unwrap_or("")),
        None => ("", rest),
    }
}

/// Exim message ids: `1tGRwu-003Zjm-oi` (before 4.97) and
/// `1tGRwu-000DBc0l8j-0000` (4.97 and later).
fn message_id_len(b: &[u8]) -> Option<usize> {
    let alnum = |r: &[u8]| r.iter().all(u8::is_ascii_alphanumeric);
    [(6, 6, 2), (6, 11, 4)].into_iter().find_map(|(a, m, c)| {
        let len = a + 1 + m + 1 + c;
        let ok = b.len() >= len
            && b[a] == b'-'
            && b[a + 1 + m] == b'-'
            && alnum(&b[..a])
            && alnum(&b[a + 1..a + 1 + m])
            && alnum(&b[a + 2 + m..len])
            && matches!(b.get(len), None | Some(b' '));
        ok.then_some(len)
    })
}

/// Whether a line without a timestamp continues the Exim entry before it:
/// a continuation line (leading white space), the header dump a rejectlog
/// writes after a rejection (`Envelope-from: <…>`, `P Received: …` with
/// Exim's one-letter header flag), or the rest of a remote reply that Exim
/// logged with its real line breaks (`535 5.7.8 …` after `authenticator
/// failed H=…`). Such lines carry nothing to count: the entry's first line
/// was counted.
pub fn is_continuation(line: &str) -> bool {
    let b = line.as_bytes();
    match b.first() {
        None => false,
        Some(b' ' | b'\t') => true,
        Some(_) if line.starts_with("Envelope-from: ") || line.starts_with("Envelope-to: ") => true,
        Some(flag) if b" *BCFIPRST".contains(flag) && b.get(1) == Some(&b' ') => {
            let name = b[2..].iter().take_while(|c| c.is_ascii_graphic() && **c != b':').count();
            name > 0 && b.get(2 + name) == Some(&b':')
        }
        Some(_) => matches!(scan_reply(line), Some((Some(_), _, _))),
    }
}

/// A delivery: `addr [<orig>] … C="250 …"`.
fn sent(rest: &str) -> Record<'_> {
    let reply = rfind(rest, " C=\"")
        .and_then(|at| unquote(&rest[at + 3..]))
        .and_then(|value| reply_at(value, Direction::Outbound, Phase::EndOfData));
    let remote_domain = first_field(rest).and_then(|a| a.trim_matches(['<', '>']).rsplit_once('@')).map(|(_, d)| d);
    let mut record = Record { reply, delivery: Some(DeliveryStatus::Sent), remote_domain, ..Record::new(Mta::Exim) };
    delivery_facts(rest, &mut record.facts);
    if rest.starts_with("blackhole (") {
        // An ACL's `discard` verb: the recipients were dropped unseen.
        record.facts.filter = Some(FilterAction { filter: Filter::Acl, action: Action::Discard });
    }
    record
}

/// `QT=`, `DT=` and the TLS fields (`X=`, `CV=`, `DN=`) of a delivery line's
/// fields (up to the error text on `**`/`==` lines). `C="…"` and `DN="…"`
/// are quoted units, so remote text cannot pose as a field.
fn delivery_facts<'a>(fields: &'a str, facts: &mut Facts<'a>) {
    let mut tls = TlsFields::default();
    for (start, end) in Fields::new(fields) {
        let field = fields[start..end].trim_end_matches(':');
        if let Some(value) = field.strip_prefix("QT=") {
            facts.delay = facts::unit_duration(value);
        } else if let Some(value) = field.strip_prefix("DT=") {
            facts.attempt = facts::unit_duration(value);
        } else {
            tls.read(field);
        }
    }
    facts.tls = tls.finish(Direction::Outbound);
}

/// Exim's TLS fields: `X=TLS1.3:TLS_AES_256_GCM_SHA384:256` (`+tls_cipher`),
/// `CV=yes|no|dane` (`+tls_certificate_verified`), `DN="…"`
/// (`+tls_peerdn`: the peer presented a certificate).
#[derive(Default)]
struct TlsFields<'a> {
    cipher: Option<&'a str>,
    verified: Option<&'a str>,
    peer_dn: bool,
}

impl<'a> TlsFields<'a> {
    fn read(&mut self, field: &'a str) {
        if let Some(value) = field.strip_prefix("X=") {
            self.cipher = Some(value);
        } else if let Some(value) = field.strip_prefix("CV=") {
            self.verified = Some(value);
        } else if field.starts_with("DN=") {
            self.peer_dn = true;
        }
    }

    fn finish(self, direction: Direction) -> Option<Tls> {
        let mut parts = self.cipher?.split(':');
        let protocol = TlsProtocol::parse(parts.next()?);
        let cipher = CipherClass::of_suite(parts.next()?);
        let trust = match (self.verified, direction) {
            (Some("dane"), _) | (Some("yes"), Direction::Outbound) => TlsTrust::Verified,
            // A client certificate is checked against the CA, not a name.
            (Some("yes"), Direction::Inbound) => TlsTrust::Trusted,
            (Some("no"), _) if self.peer_dn => TlsTrust::Untrusted,
            (Some("no"), _) => TlsTrust::Anonymous,
            _ => TlsTrust::Unknown,
        };
        Some(Tls { direction, protocol, cipher, trust })
    }
}

/// An arrival, `<= sender [R=ref] U=… P=… [X=… CV=…] S=size … id=…`: a
/// message entered the queue. `<= <> R=…` is a notification Exim
/// generated (a bounce or delay warning for the message `R=` names). Only
/// the fields before `id=` are read: the message id and subject after it
/// are the sender's text.
fn arrival(rest: &str) -> Record<'_> {
    let mut record = Record::new(Mta::Exim);
    let mut received = Received::default();
    let mut tls = TlsFields::default();
    let mut fields = Fields::new(rest);
    let null_sender = fields.next().is_some_and(|(s, e)| &rest[s..e] == "<>");
    for (start, end) in fields {
        let field = &rest[start..end];
        if field.starts_with("id=") || field.starts_with("id*=") || field.starts_with("T=") {
            break;
        }
        if let Some(size) = field.strip_prefix("S=") {
            received.size = size.parse().ok();
        } else if field.starts_with("R=") && null_sender {
            record.facts.notification = Some(Notification::NonDelivery);
        } else {
            tls.read(field);
        }
    }
    record.facts.received = Some(received);
    record.facts.tls = tls.finish(Direction::Inbound);
    record
}

/// Session lines (`+smtp_connection`, `+lost_incoming_connection`, and
/// the errors Exim always logs), which carry no message id:
/// `SMTP connection from [ip]:port I=[ip]:port (TCP/IP connection count =
/// 1)`, `… closed by QUIT`, `… lost [while reading message data]`, `SMTP
/// command timeout on connection from …`, `SMTP data timeout (message
/// abandoned) on connection from …`, `unexpected disconnection while
/// reading SMTP command from …`, `SMTP call from … dropped: too many …`.
/// The client part (`name (helo) [ip]:port`) is walked over in fields, a
/// HELO name in parentheses kept whole.
fn session(body: &str) -> Option<Record<'_>> {
    const TIMEOUTS: [(&str, Phase); 2] = [
        ("SMTP command timeout on connection from ", Phase::Unknown),
        ("SMTP data timeout (message abandoned) on connection from ", Phase::Data),
    ];
    if let Some(client) = body.strip_prefix("SMTP connection from ") {
        // What happened is at the end of the line, after the client's HELO
        // name; found from the right so a HELO name cannot pose as it.
        let event = if client.ends_with(')') && rfind(client, " (TCP/IP connection count = ").is_some() {
            SessionEvent::Connect
        } else if client.ends_with(" closed by QUIT") || rfind(client, " closed by DROP in ACL").is_some() {
            SessionEvent::Disconnect
        } else {
            let at = rfind(client, " lost")?;
            let after = &client[at + " lost".len()..];
            if !(after.is_empty() || after.starts_with(" D=") || after.starts_with(" while ")) {
                return None;
            }
            let phase = if after.starts_with(" while reading message data") { Phase::Data } else { Phase::Unknown };
            SessionEvent::Error { error: SessionError::LostConnection, phase, disconnect: true }
        };
        return event_of(client, event);
    }
    for (prefix, phase) in TIMEOUTS {
        if let Some(client) = body.strip_prefix(prefix) {
            return event_of(client, SessionEvent::Error { error: SessionError::Timeout, phase, disconnect: true });
        }
    }
    if body.starts_with("TLS error on connection from ") {
        let mut record = Record::new(Mta::Exim);
        record.facts.tls_failure = Some(Direction::Inbound);
        return Some(record);
    }
    if let Some(client) = body.strip_prefix("unexpected disconnection while reading SMTP command from ") {
        let event =
            SessionEvent::Error { error: SessionError::LostConnection, phase: Phase::Unknown, disconnect: true };
        return event_of(client, event);
    }
    let client = body.strip_prefix("SMTP call from ")?;
    // The first field `dropped:` ends the client part.
    let (_, dropped) = Fields::new(client).find(|&(s, e)| &client[s..e] == "dropped:")?;
    let at = dropped - "dropped:".len();
    if !client[at..].starts_with("dropped: too many ") {
        return None;
    }
    let phase = find(&client[at..], "(last command was ")
        .and_then(|p| unquote(&client[at + p + "(last command was ".len()..]))
        .map_or(Phase::Unknown, command_phase);
    event_of(client, SessionEvent::Error { error: SessionError::TooManyErrors, phase, disconnect: true })
}

fn event_of(client: &str, event: SessionEvent) -> Option<Record<'_>> {
    let mut record = Record::new(Mta::Exim);
    record.facts.session = Some(Session { service: service(client), event });
    Some(record)
}

/// The service of a session line: the local port of its `I=[ip]:port`
/// field (`+incoming_interface`, `+incoming_port`), named for the three
/// standard ports; `smtp` when the line does not say.
fn service(client: &str) -> &str {
    let port = Fields::new(client)
        .map(|(s, e)| &client[s..e])
        .find_map(|f| f.strip_prefix("I=[").and_then(|f| f.rsplit_once("]:")).map(|(_, port)| port));
    match port {
        Some("25") | None => "smtp",
        Some("587") => "submission",
        Some("465") => "smtps",
        Some(port) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => port,
        Some(_) => "smtp",
    }
}

/// After `rejected` (or `dropped`): `RCPT <addr>: message`, `after DATA:
/// message`, `connection in "connect" ACL: message`, `EHLO from [ip]:
/// message`, `by local_scan(): message`, `by 'connect' ACL: message`.
fn rejected(rest: &str) -> Record<'_> {
    let record = Record { delivery: Some(DeliveryStatus::Rejected), ..Record::new(Mta::Exim) };
    let Some((what, message)) = split_message(rest) else { return record };
    let mut words = Fields::new(what).map(|(s, e)| what[s..e].trim_end_matches(':'));
    let phase = match (words.next().unwrap_or(""), words.next().unwrap_or("")) {
        ("after", _) => Phase::EndOfData,
        ("connection", _) => Phase::Connect,
        ("by", "'connect'") => Phase::Connect,
        ("by", "local_scan()") => Phase::EndOfData,
        ("by", "non-SMTP") => Phase::None,
        (command, _) => Phase::from_command(command.trim_matches('"')),
    };
    // A failed verify callout puts the remote server's reply in the message.
    let reply = reply_at(message, Direction::Inbound, phase).or_else(|| callout_reply(message));
    Record { reply, ..record }
}

/// After `authenticator failed`: ` for HOST: 535 …` (our server's reply)
/// or ` H=HOST [ip] 535-5.7.8 …` (a remote server's reply to our client).
fn authentication_failure(rest: &str) -> Record<'_> {
    let reply = if let Some(server) = rest.strip_prefix(" for ") {
        split_message(server).and_then(|(_, message)| reply_at(message, Direction::Inbound, Phase::Auth))
    } else {
        Fields::new(rest)
            .find(|&(s, _)| matches!(scan_reply(&rest[s..]), Some((Some(_), _, _))))
            .and_then(|(s, _)| reply_at(&rest[s..], Direction::Outbound, Phase::Auth))
    };
    Record { reply, ..Record::new(Mta::Exim) }
}

/// After `verify`: ` fail for <addr>: <error>`.
fn callout(rest: &str) -> Record<'_> {
    let Some((_, message)) = split_message(rest) else { return Record::new(Mta::Exim) };
    Record { reply: callout_reply(message), ..Record::new(Mta::Exim) }
}

/// The remote reply in a callout's error text: `… response to "RCPT
/// TO:<a>" [from H [ip]] was: 550 …` or `… SMTP error from remote mail
/// server after RCPT TO:<a>: 550 …`.
fn callout_reply(message: &str) -> Option<Reply<'_>> {
    match find(message, "response to \"").map(|at| &message[at + "response to ".len()..]) {
        Some(quoted) => {
            let len = quoted_len(quoted.as_bytes())?;
            let phase = command_phase(&quoted[1..len - 1]);
            let after = &quoted[len..];
            let was = find(after, " was: ")?;
            reply_at(&after[was + " was: ".len()..], Direction::Outbound, phase)
        }
        None => smtp_error(message).map(|error| error.reply),
    }
}

/// `… tmp-reject from cutthrough after DATA: … C="459 …"`.
fn cutthrough(body: &str) -> Record<'_> {
    let reply = rfind(body, " C=\"")
        .and_then(|at| unquote(&body[at + 3..]))
        .and_then(|value| reply_at(value, Direction::Outbound, Phase::EndOfData));
    Record { reply, ..Record::new(Mta::Exim) }
}

/// A remote reply inside an Exim error text, and the error text it was
/// found in (without a trailing ` DT=…`): the key that ties a host-level
/// line to the recipient lines that repeat it.
struct SmtpError<'a> {
    reply: Reply<'a>,
    span: &'a str,
}

fn smtp_error(message: &str) -> Option<SmtpError<'_>> {
    // (marker, the reply answers the end of data for each recipient)
    const MARKERS: [(&str, bool); 4] = [
        ("SMTP error from remote mail server after ", false),
        ("LMTP error after ", true),
        ("PRDR error after ", true),
        (" in response to ", false),
    ];
    for (marker, lmtp) in MARKERS {
        let Some(at) = find(message, marker) else { continue };
        if marker == " in response to " && !message[..at].starts_with("Malformed SMTP reply") {
            continue;
        }
        let span_start = if marker == " in response to " { 0 } else { at };
        let (command, reply_text) = after_command(&message[at + marker.len()..])?;
        let phase = if lmtp { Phase::EndOfData } else { command_phase(command) };
        // Older Exims: `after <cmd>: host NAME [ip]: <reply>`.
        let reply_text = match reply_text.strip_prefix("host ").and_then(|h| h.find("]: ").map(|at| &h[at + 3..])) {
            Some(after_host) => after_host,
            None => reply_text,
        };
        let reply_text = strip_delivery_time(reply_text);
        let reply = reply_at(reply_text, Direction::Outbound, phase)?;
        return Some(SmtpError { reply, span: strip_delivery_time(&message[span_start..]) });
    }
    // `Remote host closed connection in response to HELO x (EHLO response was: 550 …)`
    let at = find(message, "(EHLO response was: ")?;
    let text = &message[at + "(EHLO response was: ".len()..];
    let text = text.strip_suffix(')').unwrap_or(text);
    let reply = reply_at(text, Direction::Outbound, Phase::Helo)?;
    Some(SmtpError { reply, span: message })
}

/// `RCPT TO:<a@b>: 550 …` → (`RCPT TO:<a@b>`, `550 …`); an address in the
/// command is skipped whole, whatever it contains.
fn after_command(text: &str) -> Option<(&str, &str)> {
    let b = text.as_bytes();
    let mut pos = 0;
    while pos < b.len() {
        match b[pos] {
            b'<' => pos += angle_len(unit_window(&b[pos..])).unwrap_or(1),
            b':' if b.get(pos + 1) == Some(&b' ') => return Some((&text[..pos], &text[pos + 2..])),
            _ => pos += 1,
        }
    }
    None
}

/// The phase of the command Exim names in an error.
fn command_phase(command: &str) -> Phase {
    let command = command.strip_prefix("pipelined ").unwrap_or(command);
    if command == "initial connection" {
        Phase::Connect
    } else if command.ends_with("data block") {
        Phase::Data
    } else {
        Phase::from_command(command)
    }
}

/// Drops the ` DT=1.2s` (`+deliver_time`) Exim appends after the error.
fn strip_delivery_time(text: &str) -> &str {
    match rfind(text, " DT=") {
        Some(at) if !text[at + 4..].is_empty() && !text[at + 4..].contains(' ') => &text[..at],
        _ => text,
    }
}

/// Splits `fields …: message` after the first field that ends with `:`.
fn split_message(text: &str) -> Option<(&str, &str)> {
    Fields::new(text)
        .find(|&(s, e)| text[s..e].ends_with(':'))
        .map(|(_, end)| (&text[..end], text[end..].trim_start_matches(' ')))
}

/// The address in the `[…]` field after `H=`: `127.0.0.1` of
/// `H=localhost [127.0.0.1]:25`.
fn host_address(fields: &str) -> Option<&str> {
    let h = rfind(fields, " H=").map(|at| at + 1).or_else(|| fields.starts_with("H=").then_some(0))?;
    let rest = &fields[h..];
    let open = rest.find(" [")? + 2;
    let close = rest[open..].find(']')? + open;
    Some(&rest[open..close])
}

fn first_field(text: &str) -> Option<&str> {
    Fields::new(text).next().map(|(s, e)| &text[s..e])
}

/// Exim's space-separated fields, as byte ranges. A `<…>`, `"…"`, `(…)` or
/// `[…]` that opens a field or follows its `=` is kept whole, so a HELO
/// name or address with spaces in it stays one field.
struct Fields<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Fields<'a> {
    fn new(text: &'a str) -> Self {
        Fields { text, pos: 0 }
    }
}

impl Iterator for Fields<'_> {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        let b = self.text.as_bytes();
        let mut start = self.pos;
        while start < b.len() && b[start] == b' ' {
            start += 1;
        }
        if start >= b.len() {
            self.pos = start;
            return None;
        }
        let mut i = start;
        while i < b.len() && b[i] != b' ' {
            if i == start || b[i - 1] == b'=' {
                let window = unit_window(&b[i..]);
                let unit = match b[i] {
                    b'<' => angle_len(window),
                    b'"' => quoted_len(window),
                    b'(' => bracket_len(window, b'(', b')'),
                    b'[' => bracket_len(window, b'[', b']'),
                    _ => None,
                };
                if let Some(len) = unit {
                    i += len;
                    continue;
                }
            }
            i += 1;
        }
        self.pos = i;
        Some((start, i))
    }
}

/// Length of a balanced `(…)`/`[…]` at the start of `b`, brackets included.
fn bracket_len(b: &[u8], open: u8, close: u8) -> Option<usize> {
    let mut depth = 0usize;
    for (i, &c) in b.iter().enumerate() {
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return Some(i + 1);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ReplyCode;
    use DeliveryStatus::*;
    use Direction::*;

    /// (code, enhanced, direction, phase, delivery)
    type Want = (Option<u16>, Option<&'static str>, Option<Direction>, Option<Phase>, Option<DeliveryStatus>);

    fn got(record: &Record<'_>) -> Want {
        let reply = record.reply;
        let enhanced = reply.and_then(|r| r.enhanced).map(|e| e.to_string());
        // Leak the enhanced code's text so the tuple compares with literals.
        let enhanced: Option<&'static str> = enhanced.map(|e| &*Box::leak(e.into_boxed_str()));
        (
            reply.and_then(|r| r.code).map(ReplyCode::value),
            enhanced,
            reply.map(|r| r.direction),
            reply.map(|r| r.phase),
            record.delivery,
        )
    }

    fn check(cases: &[(&str, Want)]) {
        for (line, want) in cases {
            let record = EximParser::new().parse(line).unwrap_or_else(|| panic!("unrecognized: {line}"));
            assert_eq!(got(&record), *want, "{line}");
        }
    }

    const NONE: Want = (None, None, None, None, None);

    #[test]
    fn deliveries() {
        let out = Some(Outbound);
        check(&[
            ("2024-11-28 00:00:00 1tGRwu-000DBc-0s => max@gmail.com R=dnslookup T=remote_smtp H=gmail-smtp-in.l.google.com [74.125.206.27] X=TLS1.3:TLS_AES_128_GCM_SHA256:128 CV=yes C=\"250 2.0.0 OK  1732752000 - gsmtp\"",
             (Some(250), Some("2.0.0"), out, Some(Phase::EndOfData), Some(Sent))),
            ("2026-03-02 10:15:07 1vQzbA-000A2k-7Q -> userxz@mail.example.com F=<sender@example.com> R=smart_route T=lmtp H=127.0.0.1 [127.0.0.1] C=\"250-Accepted this one\\\\n250 OK\"",
             (Some(250), None, out, Some(Phase::EndOfData), Some(Sent))),
            ("2024-11-28 00:00:00 1tGRwu-00DcmL-BN => costa17 <costa17@kleinshop.ie> R=local_user T=mail_spool",
             (None, None, None, None, Some(Sent))),
            ("2024-11-28 00:00:00.123 +0100 [4242] 1tGRwu-00GJFE-Jh -> h@delta.biz R=dnslookup T=remote_smtp H=mail.delta.biz [13.183.237.49] X=TLS1.2:ECDHE_ECDSA_AES_256_GCM_SHA384:256 CV=yes",
             (None, None, None, None, Some(Sent))),
            ("2026-03-02 10:15:07 1vQzaX-000A2k-7Q >> zoe@dest.example P=<sender@example.com> R=cutthrough T=remote_smtp H=127.0.0.1 [127.0.0.1] C=\"250 OK\"",
             (Some(250), None, out, Some(Phase::EndOfData), Some(Sent))),
            ("2026-03-02 10:15:07 1vQzaX-000A2k-7Q *> xavi@srv01.example.org R=r1 T=t1 H=relay-1.example.org [198.51.100.21]:25 C=\"delivery bypassed by -N option (test)\"",
             NONE),
            // A recipient address that spells out a confirmation is not one.
            ("2024-11-28 00:00:00 1tGRwu-000DBc-0s => \"x C=\\\"550 no\"@example.com R=dnslookup T=remote_smtp H=mx [1.2.3.4] C=\"250 2.0.0 Ok\"",
             (Some(250), Some("2.0.0"), out, Some(Phase::EndOfData), Some(Sent))),
            ("2024-11-28 00:00:00 1tGRwu-000DBc-zt <= jones66@valley-travel.cz H=o1.example.net (ubuntu) [5.63.198.37] P=esmtps S=10682 id=ee@jv.br",
             NONE),
        ]);
    }

    #[test]
    fn deferrals_and_bounces() {
        let out = Some(Outbound);
        check(&[
            ("2026-03-02 10:15:07 1vQzbB-000A2k-7Q == dora@example.org <Dora@example.org> R=client T=smtp_out defer (-44) H=127.0.0.1 [127.0.0.1]: SMTP error from remote mail server after RCPT TO:<Dora@example.org>: 452 4.5.3 Try again later please",
             (Some(452), Some("4.5.3"), out, Some(Phase::Rcpt), Some(Deferred))),
            ("2026-03-02 10:15:07 1vQzaX-000A2k-7Q ** ben@dest-one.example <ann@dest-one.example> R=smtp_route T=smtp H=127.0.0.1 [127.0.0.1] : SMTP error from remote mail server after RCPT TO:<ben@dest-one.example>: 550 No such mailbox here",
             (Some(550), None, out, Some(Phase::Rcpt), Some(Bounced))),
            ("2026-11-28 17:35:01 1tGRwu-005JDt-yH ** l@p.ch R=dnslookup T=remote_smtp H=mx.p.ch [180.228.155.234] X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=yes: SMTP error from remote mail server after pipelined RCPT TO:<l@p.ch>: 550-5.1.1 <l@p.ch>: no such user\\n550 5.1.1 see https://x DT=0.4s",
             (Some(550), Some("5.1.1"), out, Some(Phase::Rcpt), Some(Bounced))),
            ("2024-11-28 00:00:00 1tGRwu-000kcx-b9 == r@googlemail.com R=dnslookup T=remote_smtp defer (-46) H=alt2.gmail-smtp-in.l.google.com [74.125.206.27]: SMTP error from remote mail server after end of data: 421-4.7.0 [90.105.172.248      15] Our system has detected\\n421 4.7.0 review our Guidelines. - gsmtp",
             (Some(421), Some("4.7.0"), out, Some(Phase::EndOfData), Some(Deferred))),
            ("2024-11-28 00:00:00 1tGRwu-000kcx-b9 == b@x.de R=dnslookup T=remote_smtp defer (-45) H=mx.x.de [1.2.3.4]: SMTP error from remote mail server after MAIL FROM:<bounce@pine.de> SIZE=1234: 451 4.7.1 Greylisted",
             (Some(451), Some("4.7.1"), out, Some(Phase::Mail), Some(Deferred))),
            ("2026-03-02 10:15:07 1vQzaY-000A2k-7Q ** userxy@mail.example.com F=<sender@example.com> R=smart_route T=lmtp H=127.0.0.1 [127.0.0.1] : LMTP error after DATA: 550-That user is refused\\n550 Unknown user here",
             (Some(550), None, out, Some(Phase::EndOfData), Some(Bounced))),
            ("2026-03-02 10:15:07 1vQzbB-000A2k-7Q ** fred@example.org R=r1 : 590 5.4.3 Code set by the ACL",
             (Some(590), Some("5.4.3"), out, Some(Phase::None), Some(Bounced))),
            ("2026-03-02 10:15:07 1vQzaY-000A2k-7Q ** ann@example.org: retry timeout exceeded", (None, None, None, None, Some(Expired))),
            ("2024-11-28 00:00:00 1tGRwu-000DBc-wm ** a@b.example R=dnslookup T=remote_smtp: retry timeout exceeded DT=0s", (None, None, None, None, Some(Expired))),
            ("2024-11-28 00:00:00 1tGRwu-000DBc-wm ** a@b.example R=dnslookup T=remote_smtp: retry time not reached for any host after a long failure period", (None, None, None, None, Some(Expired))),
            ("2024-11-28 00:00:00 1tGRwu-000DBc-wm ** sam@taylorgroup.jp R=dnslookup: all relevant MX records point to non-existent hosts",
             (None, None, None, None, Some(Bounced))),
            ("2024-11-28 00:00:00 1tGRwu-000DBc-wm == a@b.c R=dnslookup T=remote_smtp defer (111): Connection refused", (None, None, None, None, Some(Deferred))),
            ("2026-03-02 10:15:07 1vQzbB-000A2k-7Q == ann@dest-one.example R=others T=smtp defer (dd): Connection timed out H=192.0.2.44 [192.0.2.44]: SMTP timeout after initial connection",
             (None, None, None, None, Some(Deferred))),
            ("2026-07-30 18:02:41.318 1vQzbA-000A2k-7Q ** sid@example.org R=to_server T=remote_smtp H=127.0.0.1 [127.0.0.1] : SMTP error from remote mail server after pipelined sending data block: 550 sender not acceptable",
             (Some(550), None, out, Some(Phase::Data), Some(Bounced))),
            ("2026-03-02 10:15:07 1vQzaX-000A2k-7Q ** ann@dest-one.example F=<sender@example.com> R=others T=smtp H=mx-b.example.net [127.0.0.1] : SMTP error from remote mail server after initial connection: 550 Not welcome here",
             (Some(550), None, out, Some(Phase::Connect), Some(Bounced))),
            // An address cannot move where the error text starts.
            ("2026-03-02 10:15:07 1vQzaX-000A2k-7Q ** <\"x: SMTP error from remote mail server after DATA: 250 ok\"@y> R=r T=t H=h [1.2.3.4] : SMTP error from remote mail server after RCPT TO:<\"x: 250\"@y>: 550 5.1.1 no",
             (Some(550), Some("5.1.1"), out, Some(Phase::Rcpt), Some(Bounced))),
        ]);
    }

    #[test]
    fn a_host_level_error_counts_once_per_recipient() {
        let mut parser = EximParser::new();
        let mut replies = |line: &str| parser.parse(line).map(|r| (r.reply.map(|r| r.code), r.delivery));
        let host = "2026-03-02 10:15:07 1vQzaZ-000A2k-7Q H=mx-b.example.net [127.0.0.1]: SMTP error from remote mail server after HELO mx1.example.com: 550 Your HELO is refused";
        let first = "2026-03-02 10:15:07 1vQzaZ-000A2k-7Q ** ann@dest-one.example F=<sender@example.com> R=others T=smtp H=mx-b.example.net [127.0.0.1] : SMTP error from remote mail server after HELO mx1.example.com: 550 Your HELO is refused DT=1s";
        let second = "2026-03-02 10:15:07 1vQzaZ-000A2k-7Q ** ben@dest-two.example F=<sender@example.com> R=others T=smtp H=mx-b.example.net [127.0.0.1] : SMTP error from remote mail server after HELO mx1.example.com: 550 Your HELO is refused";
        let code = ReplyCode::new(550);
        assert_eq!(replies(host), Some((Some(code), None)));
        assert_eq!(replies(first), Some((None, Some(Bounced))), "the host-level line stood for it");
        assert_eq!(replies(second), Some((Some(code), Some(Bounced))));
        // A non-final MX: the next host's error is another reply; only the
        // last host's error is repeated on the recipient line.
        let mx1 = "2026-03-02 10:15:07 1vQzaX-000A2k-7Q H=127.0.0.1 [127.0.0.1]: SMTP error from remote mail server after MAIL FROM:<sender@example.com>: 450 Deferred for now";
        let mx2 = "2026-03-02 10:15:07 1vQzaX-000A2k-7Q H=192.0.2.44 [192.0.2.44]: SMTP error from remote mail server after MAIL FROM:<sender@example.com>: 450 Deferred for now";
        let rcpt = "2026-03-02 10:15:07 1vQzaX-000A2k-7Q == ann@example.org R=r1 T=t1 defer (-45) H=192.0.2.44 [192.0.2.44]: SMTP error from remote mail server after MAIL FROM:<sender@example.com>: 450 Deferred for now";
        let code = ReplyCode::new(450);
        assert_eq!(replies(mx1), Some((Some(code), None)));
        assert_eq!(replies(mx2), Some((Some(code), None)));
        assert_eq!(replies(rcpt), Some((None, Some(Deferred))));
        // Another message with the same error text is not a repeat.
        let other = rcpt.replace("1vQzaX", "1vQzaY");
        assert_eq!(replies(&other), Some((Some(code), Some(Deferred))));
    }

    #[test]
    fn inbound_lines() {
        let inb = Some(Inbound);
        let rej = Some(Rejected);
        check(&[
            ("2026-03-02 10:15:07 H=localhost (mail.example.com) [127.0.0.1] F=<sender@example.com> temporarily rejected RCPT <Bea@example.org>: 452 4.5.3 Try again later please",
             (Some(452), Some("4.5.3"), inb, Some(Phase::Rcpt), rej)),
            ("2026-03-02 10:15:07 U=mailer F=<> rejected RCPT <gus@example.org>: 599 5.12.3 Code set by the ACL",
             (Some(599), None, inb, Some(Phase::Rcpt), rej)),
            ("2026-03-02 10:15:07 H=[127.0.0.1] rejected connection in \"connect\" ACL: 550 your client is not welcome",
             (Some(550), None, inb, Some(Phase::Connect), rej)),
            ("2025-04-11 08:12:09 H=mx.sender.example [198.51.100.16] F=<k@sender.example> rejected RCPT <o@dest.example>: Unknown user",
             (None, None, None, None, rej)),
            ("2025-04-11 08:12:10 [8812] H=([198.51.100.95]) [198.51.100.95]:40391 I=[192.0.2.4]:25 F=f@sender.example rejected RCPT someone@dest.example: listed in a DNS blocklist",
             (None, None, None, None, rej)),
            ("2025-04-11 08:12:11 1tHxQa-00FfEr-2B H=out1.bulk.example (bulk.example) [203.0.113.108] F=<q@bulk.example> rejected after DATA: spam score 10.3 is over the limit",
             (None, None, None, None, rej)),
            ("2025-04-11 08:12:12 rejected EHLO from [203.0.113.198]: syntactically invalid argument(s): bad_name", (None, None, None, None, rej)),
            ("2025-04-11 08:12:13 1tHxQb-00FfEt-0c F=u@bulk.example H=out2.bulk.example [203.0.113.40] P=esmtp rejected by local_scan(): 550 5.7.1 scored too high",
             (Some(550), Some("5.7.1"), inb, Some(Phase::EndOfData), rej)),
            ("2025-04-11 08:12:14 H=[192.0.2.101]:51839 dropped by 'connect' ACL: not accepting from this network", (None, None, None, None, rej)),
            // A HELO name cannot pose as the rejection.
            ("2024-01-01 00:00:00 H=(x rejected RCPT <a>: 250 ok) [1.2.3.4] F=<a@b> rejected RCPT <c@d>: 550 5.7.1 no relay",
             (Some(550), Some("5.7.1"), inb, Some(Phase::Rcpt), rej)),
            ("2025-04-11 08:12:15 login authenticator failed for dsl-7.isp.example ([192.168.2.33]) [198.51.100.74]: 535 Incorrect authentication data (set_id=carol)",
             (Some(535), None, inb, Some(Phase::Auth), None)),
            ("2025-04-11 08:12:16 dovecot_login authenticator failed for (PC) [203.0.113.1]:40298 I=[192.0.2.55]:465 Ci=41416: 535 Incorrect authentication data (set_id=u@example.com)",
             (Some(535), None, inb, Some(Phase::Auth), None)),
            ("2026-03-02 10:15:07 defer authenticator failed for H=(laptop.example) [192.0.2.10] U=mailer: 435 Unable to authenticate at present",
             (Some(435), None, inb, Some(Phase::Auth), None)),
            ("2026-03-02 10:15:07 1vQzaZ-000A2k-7Q plain authenticator failed H=127.0.0.1 [127.0.0.1] 535 Authentication did not succeed",
             (Some(535), None, Some(Outbound), Some(Phase::Auth), None)),
            ("2026-11-28 17:35:01 1tGRwu-005JDt-yH PLAIN authenticator failed H=smtp.gmail.com [142.250.1.1] 535-5.7.8 Username and Password not accepted. For more information, go to",
             (Some(535), Some("5.7.8"), Some(Outbound), Some(Phase::Auth), None)),
        ]);
    }

    #[test]
    fn callouts_and_host_lines() {
        let out = Some(Outbound);
        check(&[
            ("2024-11-28 00:00:01 H=(mocoywgcn.ru) [17.221.20.187] sender verify fail for <d@s.ro>: response to \"RCPT TO:<d@s.ro>\" from mx.s.ro [150.226.19.176] was: 550 5.1.1 <d@s.ro>: Recipient address rejected: User unknown",
             (Some(550), Some("5.1.1"), out, Some(Phase::Rcpt), None)),
            ("2026-03-02 10:15:07 H=(test) [198.51.100.21] U=root sender verify fail for <probe@checker.example>: 127.0.0.1 [127.0.0.1] : SMTP error from remote mail server after RCPT TO:<postmaster@checker.example>: 550 NO",
             (Some(550), None, out, Some(Phase::Rcpt), None)),
            ("2025-04-11 08:12:17 H=a.example (srv.a.example) [198.51.100.211] sender verify fail for <user@example.com>: Unrouteable address", NONE),
            ("2026-03-02 10:15:07 1vQzaX-000A2k-7Q H=mx-b.example.net [127.0.0.1]: SMTP error from remote mail server after initial connection: 450 Busy, try later",
             (Some(450), None, out, Some(Phase::Connect), None)),
            ("2026-03-02 10:15:07 1vQzaZ-000A2k-7Q H=127.0.0.1 [127.0.0.1]:10002: SMTP error from remote mail server after MAIL FROM:<>: 450 later, please",
             (Some(450), None, out, Some(Phase::Mail), None)),
            ("2026-03-02 10:15:07 1vQzbB-000A2k-7Q H=mx-b.example.net [127.0.0.1]: Remote host closed connection in response to HELO mx1.example.com (EHLO response was: 550 Banned here)",
             (Some(550), None, out, Some(Phase::Helo), None)),
            ("2026-03-02 10:15:07 1vQzaX-000A2k-7Q H=127.0.0.1 [127.0.0.1]: Malformed SMTP reply in response to end of data: 550 The reply was too long",
             (Some(550), None, out, Some(Phase::EndOfData), None)),
            ("2026-03-02 10:15:07 1vQzbA-000A2k-7Q U=mailer eve@dest.example F=<sender@example.com> P=<sender@example.com> tmp-reject from cutthrough after DATA: R=cutthrough T=remote_smtp H=192.0.2.9 [192.0.2.9] C=\"459 content refused for now\"",
             (Some(459), None, out, Some(Phase::EndOfData), None)),
            ("2026-03-02 10:15:07 1vQzbK-000A2k-7Q H=127.0.0.1 [127.0.0.1] Connection refused", NONE),
        ]);
    }

    #[test]
    fn a_synchronization_error_is_a_rejection() {
        check(&[
            ("2025-04-11 08:12:18 [7314] SMTP protocol synchronization error (input sent without waiting for greeting): rejected connection from H=[203.0.113.192]:45936 I=[192.0.2.4]:25 input=\"HEAD / HTTP/1.0\\r\\n\"",
             (None, None, None, None, Some(Rejected))),
            ("2025-04-11 08:12:19 [7315] SMTP protocol synchronization error (next input sent too soon: pipelining was not advertised): rejected \"NOOP\" H=c.sender.example [198.51.100.77]:48302 I=[192.0.2.4]:25 next input=\"QUIT\\r\\n\"",
             (None, None, None, None, Some(Rejected))),
        ]);
    }

    #[test]
    fn lines_without_a_reply() {
        for line in [
            "2024-11-28 00:00:00 SMTP command timeout on connection from (x) [1.2.3.4]:2555",
            "2025-04-11 08:12:20 [7516] SMTP protocol error in \"AUTH PLAIN\" H=(scanner) [203.0.113.167]:50723 I=[192.0.2.6]:587 AUTH command used when not advertised",
            "2025-04-11 08:12:21 SMTP call from [192.0.2.119] dropped: too many syntax or protocol errors (last command was \"HELP\")",
            "2024-11-28 00:00:00 1tGRwu-005JDt-Nm H=o5.sendgrid.net (localhost) [5.63.198.37] Warning: Detected spam: score=11.9",
            "2025-04-11 08:12:22 1tHxQc-00FfEx-1d DKIM: d=news.example s=sel1 c=relaxed/relaxed a=rsa-sha256 b=2048 [verification succeeded]",
            "2024-11-28 00:00:00 1tGRwu-005JDt-tU Completed",
            "2024-11-28 00:00:00 no host name found for IP address 2a01:4f8::c886",
            "2024-11-28 00:00:00 End queue run: pid=2045367",
            "2024-11-28 00:00:00 1tGRwu-000DBc-9g SMTP connection outbound 1732752000 1tGRwu-00AzeV-Vm iron-works.de sales@star-shop.com",
            "2025-04-11 08:12:23 1tHxQd-00FfEz-4e SA: Action: flagged as Spam but accepted: score=7.1 required=5.0",
        ] {
            let record = EximParser::new().parse(line).unwrap_or_else(|| panic!("unrecognized: {line}"));
            assert_eq!((record.reply, record.delivery), (None, None), "{line}");
        }
    }

    #[test]
    fn an_unplaced_reply_is_unrecognized() {
        assert_eq!(EximParser::new().parse("2024-01-01 00:00:00 something new happened: 550 5.1.1 unknown user"), None);
        assert_eq!(EximParser::new().parse("2024-01-01 00:00:00 odd: 451 try later"), None);
    }

    #[test]
    fn prefixes() {
        assert_eq!(timestamp_len(b"2023-05-30 06:10:13.345 login"), Some(23));
        assert_eq!(timestamp_len(b"2023-05-30 06:10:13 +0200 x"), Some(25));
        assert_eq!(timestamp_len(b"2023-05-30 06:10:13"), Some(19));
        assert_eq!(timestamp_len(b"2023-05-30T06:10:13Z x"), None);
        assert_eq!(timestamp_len(b"2023-05-30 06:10:13x"), None);
        assert_eq!(
            split_prefix("2016-04-01 11:08:00 [8003] 1ahr79-0006jK-G9 Completed"),
            ("1ahr79-0006jK-G9", "Completed")
        );
        assert_eq!(split_prefix("[8003] SMTP protocol error"), ("", "SMTP protocol error"));
        assert_eq!(split_prefix("1vQzaX-000A2k-7Q <= a"), ("1vQzaX-000A2k-7Q", "<= a"));
    }

    #[test]
    fn continuations() {
        for line in [
            "Envelope-from: <ann@example.org>",
            "P Received: from mailer by myhost",
            "\t(envelope-from <u@t>)",
            "  Date: Tue",
            "F From: ann@example.org",
            "535 5.7.8 https://support.google.com/mail/?p=BadCredentials - gsmtp",
        ] {
            assert!(is_continuation(line), "{line}");
        }
        for line in ["", "2024-01-01 00:00:00 x", "Nov  8 17:35:01 h postfix/smtp[1]: x", "garbage", "P nothing"] {
            assert!(!is_continuation(line), "{line}");
        }
    }
}

#[cfg(test)]
mod fact_tests {
    use std::time::Duration;

    use super::*;

    fn facts(line: &str) -> Facts<'_> {
        EximParser::new().parse(line).unwrap_or_else(|| panic!("unrecognized: {line}")).facts
    }

    #[test]
    fn arrivals() {
        let f = facts("2026-11-28 19:44:21.714 [25947] 1xXOLN-0006kV-2F <= alice@example.test H=(client.example.test) [127.0.0.1]:60808 I=[127.0.0.1]:10587 P=esmtp L- S=510 M8S=0 RT=0.003s id=20261128194419.025935@vm T=\"test\" from <alice@example.test> for a@b.test");
        assert_eq!(f.received, Some(Received { size: Some(510), recipients: None }));
        assert_eq!((f.notification, f.tls), (None, None));
        let f = facts("2026-11-28 19:43:25 1xXOKT-0006UM-2h <= <> R=1xXOKT-0006UI-2N U=Debian-exim P=local S=2166");
        assert_eq!(f.received, Some(Received { size: Some(2166), recipients: None }));
        assert_eq!(f.notification, Some(Notification::NonDelivery));
        let f = facts("2026-11-28 19:43:25 1xXOKT-0006UM-2h <= a@b.test H=c [192.0.2.1] P=esmtps X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no S=900 id=x");
        assert_eq!(
            f.tls,
            Some(Tls {
                direction: Direction::Inbound,
                protocol: TlsProtocol::Tls13,
                cipher: CipherClass::Aes256Gcm,
                trust: TlsTrust::Anonymous
            })
        );
        // The message id is the sender's text: nothing after it is read.
        let f = facts("2026-11-28 19:43:25 1xXOKT-0006UM-2h <= a@b.test H=c [192.0.2.1] P=esmtp S=900 id=x S=1 X=TLS1.0:RC4-MD5:1 R=y");
        assert_eq!(
            (f.received, f.tls, f.notification),
            (Some(Received { size: Some(900), recipients: None }), None, None)
        );
    }

    #[test]
    fn deliveries() {
        let f = facts("2026-11-28 19:44:22.735 [25957] 1xXOLO-0006ke-26 => ok@sink.test F=<alice@example.test> R=to_sink T=remote_smtp S=487 H=127.0.0.1 [127.0.0.1]:2525 X=TLS1.2:ECDHE_X25519__RSA_PSS_RSAE_SHA256__AES_256_GCM:256 CV=yes DN=\"CN=sink\" C=\"250 2.0.0 Ok QT=9s DT=9s\" QT=0.077s DT=0.006s");
        assert_eq!((f.delay, f.attempt), (Some(Duration::from_millis(77)), Some(Duration::from_millis(6))));
        assert_eq!(
            f.tls,
            Some(Tls {
                direction: Direction::Outbound,
                protocol: TlsProtocol::Tls12,
                cipher: CipherClass::Aes256Gcm,
                trust: TlsTrust::Verified
            })
        );
        let f = facts("2026-11-28 19:44:21.754 [25949] 1xXOLN-0006kV-2F == r@e.test R=to_sink T=remote_smtp defer (-44) H=127.0.0.1 [127.0.0.1]:2525 I=[127.0.0.1]:50488 DT=1m2s: SMTP error from remote mail server after RCPT TO:<r@e.test>: 451 4.7.1 later");
        assert_eq!((f.delay, f.attempt), (None, Some(Duration::from_secs(62))));
        let f = facts("2026-11-28 19:44:26.211 [25990] 1xXOLS-0006lB-0S ** r@s.test F=<a@e.test> R=to_sink T=remote_smtp H=127.0.0.1 [127.0.0.1]:2525 I=[127.0.0.1]:50512: SMTP error from remote mail server after RCPT TO:<r@s.test>: 550 5.1.1 no DT=5s DT=0.25s");
        assert_eq!(f.attempt, Some(Duration::from_millis(250)));
        let f = facts("2026-11-28 22:10:45.933 [18391] 1xXQd3-0004ma-2l == a@tlsbroken.test R=to_sink T=tls_any defer (-37) H=127.0.0.1 [127.0.0.1]:2536 I=[127.0.0.1]:51448 DT=0.035s: TLS session: (gnutls_handshake): The TLS connection was non-properly terminated.");
        assert_eq!(f.tls_failure, Some(Direction::Outbound));
        let f = facts("2026-11-28 22:10:45 TLS error on connection from (x) [192.0.2.1]:4321 I=[192.0.2.2]:25 (gnutls_handshake): A TLS fatal alert has been received.");
        assert_eq!(f.tls_failure, Some(Direction::Inbound));
        let f = facts("2026-11-28 19:44:26 1xXOLS-0006lB-0S => blackhole (DATA ACL discarded recipients)");
        assert_eq!(f.filter, Some(FilterAction { filter: Filter::Acl, action: Action::Discard }));
    }

    #[test]
    fn sessions() {
        let session = |line| facts(line).session;
        let s = |service, event| Some(Session { service, event });
        let error = |error, phase| SessionEvent::Error { error, phase, disconnect: true };
        assert_eq!(session("2026-11-28 19:44:21.672 [25888] SMTP connection from [127.0.0.1]:53218 I=[127.0.0.1]:25 (TCP/IP connection count = 1)"), s("smtp", SessionEvent::Connect));
        assert_eq!(session("2026-11-28 19:44:21.727 [25947] SMTP connection from (client.example.test) [127.0.0.1]:60808 I=[127.0.0.1]:587 closed by QUIT"), s("submission", SessionEvent::Disconnect));
        assert_eq!(session("2026-11-28 19:44:21.680 [25945] SMTP connection from [127.0.0.1]:53218 I=[127.0.0.1]:10025 lost D=0.000s"), s("10025", error(SessionError::LostConnection, Phase::Unknown)));
        assert_eq!(
            session("2026-11-28 19:44:21 SMTP connection from (x) [192.0.2.1] lost while reading message data"),
            s("smtp", error(SessionError::LostConnection, Phase::Data))
        );
        assert_eq!(session("2026-11-28 19:44:21 SMTP command timeout on connection from (x) [192.0.2.1]:1234 I=[192.0.2.2]:465 D=5m"), s("smtps", error(SessionError::Timeout, Phase::Unknown)));
        assert_eq!(
            session("2026-11-28 19:44:21 SMTP data timeout (message abandoned) on connection from [192.0.2.1] F=<a@b>"),
            s("smtp", error(SessionError::Timeout, Phase::Data))
        );
        assert_eq!(
            session("2026-11-28 19:44:21 unexpected disconnection while reading SMTP command from [192.0.2.1] D=1s"),
            s("smtp", error(SessionError::LostConnection, Phase::Unknown))
        );
        assert_eq!(session("2026-11-28 19:44:21 SMTP call from (x) [192.0.2.1]:1234 I=[192.0.2.2]:25 dropped: too many syntax or protocol errors (last command was \"RCPT TO:<a@b>\", C=EHLO,MAIL,RCPT)"), s("smtp", error(SessionError::TooManyErrors, Phase::Rcpt)));
        // A HELO name cannot pose as the end of the line.
        assert_eq!(
            session("2026-11-28 19:44:21 SMTP connection from (x closed by QUIT) [192.0.2.1] lost D=0s"),
            s("smtp", error(SessionError::LostConnection, Phase::Unknown))
        );
        assert_eq!(
            session(
                "2026-11-28 19:44:21 SMTP connection from (x (TCP/IP connection count = 1)) [192.0.2.1] closed by QUIT"
            ),
            s("smtp", SessionEvent::Disconnect)
        );
    }

    #[test]
    fn authentication_failures() {
        let f = facts("2025-04-11 08:12:05.217 login authenticator failed for c.example.org [192.0.2.12]:6432: 535 Incorrect authentication data (set_id=dave)");
        assert_eq!(f.auth_failure, Some(AuthMethod::Login));
        let f = facts("2025-04-11 08:12:05 dovecot_plain authenticator failed for (PC) [192.0.2.37]: 535 Incorrect authentication data (set_id=info@corp.example)");
        assert_eq!(f.auth_failure, Some(AuthMethod::Plain));
        // Our client's failure at a remote server is not a client of ours failing.
        let f = facts("2025-04-11 08:12:05 1tHxQe-00FfF1-6g PLAIN authenticator failed H=smtp.example [192.0.2.4] 535-5.7.8 Username and Password not accepted");
        assert_eq!(f.auth_failure, None);
    }
}
