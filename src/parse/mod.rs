//! MTA parsers: turn one log line into what it says about SMTP replies and
//! deliveries, or say that it is not an MTA line.
//!
//! Owns picking the parser for a line and the result types every parser
//! returns. The parsers are functions on `&str`; they never classify (that
//! is [`crate::classify`]) and never count (that is [`crate::metrics`]).
//!
//! Picking the MTA, per line, cheapest test first (byte comparisons, no
//! regex):
//!
//! 1. A source configured with `mta:` hands every line to that parser
//!    (after stripping a syslog envelope when there is one).
//! 2. A line with a syslog envelope goes by its program name: `postfix*`
//!    (any `syslog_name`), `exim*`, `sendmail*` and `sm-*` (`sm-mta`,
//!    `sm-msp-queue`, `sm-acceptingconnections`; not `sm-notify`, an NFS
//!    tool), `smtpd` and `opensmtpd*`. Any other program is another daemon
//!    sharing the file (dovecot, amavis, opendkim …): `Foreign`, never
//!    parsed for replies — unless the user enabled the generic rule or
//!    custom parsers ([`generic`]).
//! 3. A line without one is Exim's own format when it starts with Exim's
//!    timestamp (`2026-11-28 17:35:01[.123][ +0100] `) — so an Exim mainlog
//!    needs no configuration —, or a syslog hybrid (`2019-10-22 03:39:17
//!    host exim[29786]: …`, `host exim[3751842]: 2021-07-17 23:20:49 …`);
//!    OpenSMTPD's foreground format when it starts with a 16-hex session id
//!    (`c1a89cb774083905 smtp …`); and, right after an Exim line, an Exim
//!    continuation (rejectlog header dumps, continuation lines, a reply's
//!    second physical line). Anything else is `Unrecognized`.

pub mod exim;
pub mod facts;
pub mod generic;
pub mod opensmtpd;
pub mod postfix;
mod scan;
pub mod sendmail;

use std::sync::Arc;

use serde::Deserialize;

use crate::envelope::{self, Envelope, Timestamp};
use crate::model::{DeliveryStatus, Mta, Reply};
use exim::EximParser;
pub use facts::Facts;
pub use generic::{OtherParsers, ParsersSpec};

/// What one MTA line says.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Record<'a> {
    pub mta: Mta,
    /// The SMTP reply the line carries, if any.
    pub reply: Option<Reply<'a>>,
    /// The delivery outcome the line reports, if any.
    pub delivery: Option<DeliveryStatus>,
    /// The reply was only logged, never sent: Postfix `reject_warning`
    /// (`warn_if_reject`), a dry run of a restriction.
    pub warning_only: bool,
    /// The recipient's domain on outbound delivery lines (for `report`;
    /// never a metric label, it is unbounded).
    pub remote_domain: Option<&'a str>,
    /// How many recipients the line reports on: its reply and its outcome
    /// count once per recipient. 1 except on Sendmail lines that list
    /// several recipients in one `to=`.
    pub recipients: u32,
    /// Delays, sizes, sessions, TLS … ([`facts`]); empty on most lines.
    pub facts: Facts<'a>,
}

impl<'a> Record<'a> {
    pub fn new(mta: Mta) -> Self {
        Record {
            mta,
            reply: None,
            delivery: None,
            warning_only: false,
            remote_domain: None,
            recipients: 1,
            facts: Facts::default(),
        }
    }
}

/// How a line was understood.
// A `Line` lives on the stack from the parser to the recorder, once per
// line; boxing the record would allocate on every line instead.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Line<'a> {
    /// A line written by an MTA we read.
    Mta(Record<'a>),
    /// A line from another program (dovecot, amavis, cron …) that shares the
    /// log file. Counted, never parsed for replies.
    Foreign,
    /// Not understood: no known envelope, or an MTA line that seems to carry
    /// a reply the parser could not place. Counted and logged at debug level
    /// so a user can report the shape.
    Unrecognized,
}

/// The `mta:` setting of a source: found per line, or one MTA for all lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MtaSelection {
    #[default]
    Auto,
    Postfix,
    Exim,
    Sendmail,
    Opensmtpd,
}

impl MtaSelection {
    fn fixed(self) -> Option<Mta> {
        match self {
            MtaSelection::Auto => None,
            MtaSelection::Postfix => Some(Mta::Postfix),
            MtaSelection::Exim => Some(Mta::Exim),
            MtaSelection::Sendmail => Some(Mta::Sendmail),
            MtaSelection::Opensmtpd => Some(Mta::Opensmtpd),
        }
    }
}

/// The MTA a syslog program name belongs to.
pub fn mta_of_program(program: &str) -> Option<Mta> {
    let p = program.as_bytes();
    if p.starts_with(b"postfix") {
        Some(Mta::Postfix)
    } else if p.starts_with(b"exim") {
        Some(Mta::Exim)
    } else if p.starts_with(b"sendmail") || (p.starts_with(b"sm-") && !p.starts_with(b"sm-notify")) {
        Some(Mta::Sendmail)
    } else if p == b"smtpd" || p.starts_with(b"opensmtpd") {
        Some(Mta::Opensmtpd)
    } else {
        None
    }
}

/// The parser of one source. Holds the only per-source parsing state: the
/// Exim parser's memory of host-level errors, and whether the last line was
/// Exim's (for continuation lines).
#[derive(Debug)]
pub struct LineParser {
    selection: MtaSelection,
    others: Arc<OtherParsers>,
    exim: EximParser,
    postfix: PostfixQueue,
    opensmtpd: opensmtpd::LocalSessions,
    /// The previous line was an Exim line without envelope, so a following
    /// continuation line belongs to it.
    exim_entry_open: bool,
}

impl Default for LineParser {
    fn default() -> Self {
        LineParser::new(MtaSelection::Auto, Arc::new(OtherParsers::default()))
    }
}

impl LineParser {
    pub fn new(selection: MtaSelection, others: Arc<OtherParsers>) -> Self {
        LineParser {
            selection,
            others,
            exim: EximParser::new(),
            postfix: PostfixQueue::default(),
            opensmtpd: opensmtpd::LocalSessions::default(),
            exim_entry_open: false,
        }
    }

    /// Parses one line (without its line terminator).
    pub fn parse<'a>(&mut self, line: &'a str) -> Line<'a> {
        self.parse_stamped(line).1
    }

    /// Parses one line and returns its syslog timestamp too, when it has a
    /// syslog envelope (the source health metrics want the last one).
    pub fn parse_stamped<'a>(&mut self, line: &'a str) -> (Option<Timestamp<'a>>, Line<'a>) {
        match envelope::parse(line) {
            Some(envelope) => (Some(envelope.timestamp), self.parse_entry(envelope.program, envelope.message)),
            None => (None, self.parse_bare(line)),
        }
    }

    /// A log entry whose program and message are already known: a syslog
    /// envelope, or a journald record (`SYSLOG_IDENTIFIER`, `MESSAGE`).
    pub fn parse_entry<'a>(&mut self, program: &'a str, message: &'a str) -> Line<'a> {
        self.exim_entry_open = false;
        match self.selection.fixed().or_else(|| mta_of_program(program)) {
            Some(mta) => self.run(mta, program, message),
            None => match self.others.is_active().then(|| self.others.parse(Some(program), message)).flatten() {
                Some(record) => Line::Mta(record),
                None => Line::Foreign,
            },
        }
    }

    /// A line without a syslog envelope.
    fn parse_bare<'a>(&mut self, line: &'a str) -> Line<'a> {
        if let Some(mta) = self.selection.fixed() {
            if mta == Mta::Exim && self.exim_entry_open && exim::is_continuation(line) {
                return Line::Mta(Record::new(Mta::Exim));
            }
            self.exim_entry_open = mta == Mta::Exim && exim::timestamp_len(line.as_bytes()).is_some();
            return self.run(mta, mta.label(), line);
        }
        // Exim writes one space after its timestamp; other programs' ISO
        // stamps (Domino's `2016-11-07 22:21:20   smtp: …`) are not Exim's.
        if let Some(len) =
            exim::timestamp_len(line.as_bytes()).filter(|&len| line.as_bytes().get(len + 1) != Some(&b' '))
        {
            let rest = line[len..].strip_prefix(' ').unwrap_or(&line[len..]);
            if let Some((program, message)) = hybrid_tag(rest) {
                return self.parse_entry(program, message);
            }
            self.exim_entry_open = true;
            return self.run(Mta::Exim, "exim", line);
        }
        if let Some((program, message)) = hybrid_tag(line) {
            return self.parse_entry(program, message);
        }
        if opensmtpd::session_body(line).is_some() {
            self.exim_entry_open = false;
            return self.run(Mta::Opensmtpd, "smtpd", line);
        }
        if self.exim_entry_open && exim::is_continuation(line) {
            return Line::Mta(Record::new(Mta::Exim));
        }
        self.exim_entry_open = false;
        match self.others.is_active().then(|| self.others.parse(None, line)).flatten() {
            Some(record) => Line::Mta(record),
            None => Line::Unrecognized,
        }
    }

    fn run<'a>(&mut self, mta: Mta, program: &'a str, message: &'a str) -> Line<'a> {
        let record = match mta {
            Mta::Postfix => postfix::parse(program, message).map(|mut record| {
                self.postfix.settle(&mut record.facts);
                record
            }),
            Mta::Exim => self.exim.parse(message),
            Mta::Sendmail => sendmail::parse(message),
            Mta::Opensmtpd => opensmtpd::parse(message).map(|mut record| {
                self.opensmtpd.settle(message, &mut record.facts);
                record
            }),
            Mta::Other => self.others.parse(Some(program), message),
        };
        record.map_or(Line::Unrecognized, Line::Mta)
    }
}

/// How many Postfix queue ids [`PostfixQueue`] remembers at most.
pub const POSTFIX_QUEUE_MEMORY: usize = 100_000;

/// Postfix's queue manager logs `QID: from=<…>, size=…, nrcpt=… (queue
/// active)` every time a message enters the active queue: when it arrives,
/// and again on every retry of deferred mail. A message is received once,
/// so this remembers the queue ids it has seen there until qmgr logs `QID:
/// removed`, and turns a repeated activation into no fact.
///
/// Limits: a deferred message that arrived before the exporter started
/// reading counts at its first retry seen; beyond
/// [`POSTFIX_QUEUE_MEMORY`] messages in the queue at once, the ids of new
/// ones are not remembered (each of their retries counts again) — the
/// memory stays under 2 MiB.
#[derive(Debug, Default)]
pub struct PostfixQueue {
    /// Hashes of queue ids seen in the active queue and not yet removed.
    active: std::collections::HashSet<u64>,
}

impl PostfixQueue {
    fn settle(&mut self, facts: &mut Facts<'_>) {
        let Some(id) = facts.queue_id else { return };
        let key = {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            id.hash(&mut hasher);
            hasher.finish()
        };
        if facts.removed {
            self.active.remove(&key);
        } else if facts.received.is_some() {
            if self.active.contains(&key) {
                facts.received = None;
            } else if self.active.len() < POSTFIX_QUEUE_MEMORY {
                self.active.insert(key);
            }
        }
    }
}

/// `host program[pid]: message` (or `host program: message` for a known
/// MTA) at the start of `text`: a syslog tag without a syslog timestamp,
/// as in Exim's syslog hybrids. An Exim message id in the host position,
/// or a program that is neither a known MTA nor followed by `[pid]`, means
/// it is Exim's own text (`1tGRwu-003Zjm-oi DKIM: …`, `DANE error: …`).
fn hybrid_tag(text: &str) -> Option<(&str, &str)> {
    let b = text.as_bytes();
    let host_len = b.iter().position(|&c| c == b' ')?;
    let host = &b[..host_len];
    let host_ok = host_len > 0
        && host.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b':'))
        && host.last() != Some(&b':')
        && exim_message_id(&text[..host_len]).is_none();
    if !host_ok {
        return None;
    }
    let tag = &text[host_len + 1..];
    let t = tag.as_bytes();
    let prog_len = t.iter().position(|&c| !(c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b'/')))?;
    if prog_len == 0 {
        return None;
    }
    let program = &tag[..prog_len];
    let mut pos = prog_len;
    let mut has_pid = false;
    if t.get(pos) == Some(&b'[') {
        let digits = t[pos + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || t.get(pos + 1 + digits) != Some(&b']') {
            return None;
        }
        pos += digits + 2;
        has_pid = true;
    }
    if t.get(pos) != Some(&b':') || !matches!(t.get(pos + 1), None | Some(b' ')) {
        return None;
    }
    if !has_pid && mta_of_program(program).is_none() {
        return None;
    }
    let message = tag.get(pos + 2..).unwrap_or("");
    Some((program, message))
}

fn exim_message_id(token: &str) -> Option<()> {
    let b = token.as_bytes();
    let alnum = |r: &[u8]| r.iter().all(u8::is_ascii_alphanumeric);
    let ok = (b.len() == 16 && b[6] == b'-' && b[13] == b'-' && alnum(&b[..6]) && alnum(&b[7..13]) && alnum(&b[14..]))
        || (b.len() == 23 && b[6] == b'-' && b[18] == b'-' && alnum(&b[..6]) && alnum(&b[7..18]) && alnum(&b[19..]));
    ok.then_some(())
}

/// Parses one line with a fresh default parser (auto MTA selection, no
/// custom parsers). For tests and one-off use; a source keeps one
/// [`LineParser`].
pub fn parse_line(line: &str) -> Line<'_> {
    LineParser::default().parse(line)
}

/// Picks the parser from the syslog program name (default settings).
pub fn parse_envelope<'a>(envelope: &Envelope<'a>) -> Line<'a> {
    LineParser::default().parse_entry(envelope.program, envelope.message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Direction;

    fn mta(line: &Line<'_>) -> Option<Mta> {
        match line {
            Line::Mta(record) => Some(record.mta),
            _ => None,
        }
    }

    #[test]
    fn a_postfix_message_is_received_once_however_often_it_is_retried() {
        let mut parser = LineParser::default();
        let mut received = |line: &str| match parser.parse(line) {
            Line::Mta(record) => record.facts.received.map(|r| (r.size, r.recipients)),
            other => panic!("{other:?}"),
        };
        let active =
            "Nov 28 19:10:00 mx1 postfix/qmgr[1]: 8F404B69B2: from=<a@e.test>, size=473, nrcpt=2 (queue active)";
        assert_eq!(received(active), Some((Some(473), Some(2))));
        // The retry of the deferred message 46 s later.
        assert_eq!(received(active), None);
        let other = "Nov 28 19:10:01 mx1 postfix/qmgr[1]: 22088B69C1: from=<>, size=2687, nrcpt=1 (queue active)";
        assert_eq!(received(other), Some((Some(2687), Some(1))));
        assert_eq!(received("Nov 28 19:10:46 mx1 postfix/qmgr[1]: 8F404B69B2: removed"), None);
        // A queue id is reused once its file is gone: a new message.
        assert_eq!(received(active), Some((Some(473), Some(2))));
    }

    #[test]
    fn dispatch_by_program() {
        assert!(matches!(
            parse_line("Nov  8 17:35:01 mx1 postfix/smtpd[1]: connect from a[1.2.3.4]"),
            Line::Mta(Record { mta: Mta::Postfix, reply: None, .. })
        ));
        assert_eq!(
            parse_line("Nov  8 17:35:01 mx1 amavis[1]: (1-07) FWD from <a> -> <b>, BODY=7BIT 250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok"),
            Line::Foreign
        );
        assert_eq!(parse_line("no envelope here"), Line::Unrecognized);
        assert_eq!(parse_line(""), Line::Unrecognized);
        for (line, want) in [
            ("Apr 11 08:12:11 gw exim[1234]: dovecot_plain authenticator failed for (m.example.com) [203.0.113.181]:37807: 535 Incorrect authentication data", Some(Mta::Exim)),
            ("Apr 11 08:12:12 gw exim4[1234]: 1tHxQe-00FfF1-6g Completed", Some(Mta::Exim)),
            ("Apr 11 08:12:01 gw sm-acceptingconnections[3713]: v12AbCd7004411: ruleset=check_rcpt, arg1=<a@b>, relay=[192.0.2.4], reject=550 5.7.1 <a@b>... Relaying denied", Some(Mta::Sendmail)),
            ("Apr 11 08:12:02 gw sendmail[4245]: v12AbCd7004412: from=<a@b>, size=1", Some(Mta::Sendmail)),
            ("Apr 11 08:12:03 <mail.notice> gw sm-mta[5002]: v12AbCd7004413: lost input channel", Some(Mta::Sendmail)),
            ("Apr 11 08:12:04 gw smtpd[6882]: smtp-in: Failed command on session 2a66bdcdf16e1234: \"MAIL FROM:<r@j>  \" => 421 4.3.0: Temporary failure", Some(Mta::Opensmtpd)),
            ("Apr 11 08:12:13 backup smtpd[4503]: 99277f8f32d062a5 smtp connected address=203.0.113.192 host=<unknown>", Some(Mta::Opensmtpd)),
            ("Nov  2 00:01:33 h sm-notify[60503]: Version 2.6.2 starting", None),
            ("Nov  2 00:01:33 h dovecot: imap-login: Login: user=<a>", None),
        ] {
            assert_eq!(mta(&parse_line(line)), want, "{line}");
        }
    }

    #[test]
    fn lines_without_an_envelope() {
        for (line, want) in [
            ("2024-11-28 00:00:00 1tGRwu-000DBc-wm ** sam@t.jp R=dnslookup: all relevant MX records point to non-existent hosts", Some(Mta::Exim)),
            ("2025-04-11 08:12:05.217 login authenticator failed for c.example.org [192.0.2.12]:6432: 535 Incorrect authentication data (set_id=dave)", Some(Mta::Exim)),
            ("2025-04-11 08:12:06 1tHxQd-00FfEz-4e SA: Action: flagged as Spam but accepted", Some(Mta::Exim)),
            ("2026-03-02 10:15:07 DANE error: tlsa lookup DEFER", Some(Mta::Exim)),
            ("2025-04-11 08:12:07 mx1.corp.example exim[9786]: dovecot_login authenticator failed for (PC) [192.0.2.37]: 535 Incorrect authentication data (set_id=info@corp.example)", Some(Mta::Exim)),
            ("mx2.corp.example exim[1842]: 2025-04-11 08:12:08 plain_server authenticator failed for ([192.0.2.17]) [192.0.2.28]: 535 Incorrect authentication data", Some(Mta::Exim)),
            ("2025-04-11 08:12:09 info exim[6003]: [6003] SMTP protocol error in \"AUTH CRAM-MD5\" H=(PC) [192.0.2.29]:5816 I=[192.0.2.1]:25 Ci=6003 CRAM-MD5 authentication mechanism not supported", Some(Mta::Exim)),
            ("d2b90dc885194a16 smtp failed-command command=\"AUTH LOGIN\" result=\"503 5.5.1 Invalid command: Command not supported\"", Some(Mta::Opensmtpd)),
            ("2019-10-22 03:39:17 mx1 dovecot[12]: imap-login: x", None),
            ("2025-04-11 08:12:16 mx1 postfix/smtpd[12]: connect from unknown[192.0.2.9]", Some(Mta::Postfix)),
            ("P Received: from mailer by mail.example.com with local (Exim 4.96)", None),
            ("2025-04-11 08:12:10   SMTP Server [0A1B:0042-0000000123] Connection from [192.0.2.2] rejected for policy reasons.", None),
        ] {
            assert_eq!(mta(&parse_line(line)), want, "{line}");
        }
        let hybrid = parse_line("2025-04-11 08:12:07 mx1.corp.example exim[9786]: dovecot_login authenticator failed for (PC) [192.0.2.37]: 535 Incorrect authentication data (set_id=info@corp.example)");
        assert!(matches!(hybrid, Line::Mta(Record { reply: Some(Reply { direction: Direction::Inbound, .. }), .. })));
    }

    #[test]
    fn exim_continuations_follow_an_exim_line() {
        let mut parser = LineParser::default();
        let lines = [
            "2026-03-02 10:15:07 1vQzaX-000A2k-7Q F=<ann@example.org> rejected by non-SMTP ACL: 599 Refused by policy",
            "Envelope-from: <ann@example.org>",
            "P Received: from mailer by mail.example.com with local (Exim 4.96)",
            "\t(envelope-from <ann@example.org>)",
            "  Date: Wed, 11 Apr 2025 08:12:00 +0000",
        ];
        let results: Vec<_> = lines.iter().map(|l| parser.parse(l)).collect();
        assert!(matches!(
            results[0],
            Line::Mta(Record { reply: Some(_), delivery: Some(DeliveryStatus::Rejected), .. })
        ));
        for (line, result) in lines.iter().zip(&results).skip(1) {
            assert_eq!(*result, Line::Mta(Record::new(Mta::Exim)), "{line}");
        }
        // The second physical line of a reply Exim logged with its line break.
        assert!(matches!(parser.parse("2026-01-01 00:00:00 1tGRwu-005JDt-yH PLAIN authenticator failed H=smtp.gmail.com [142.250.1.1] 535-5.7.8 Username and Password not accepted."), Line::Mta(Record { reply: Some(_), .. })));
        assert_eq!(
            parser.parse("535 5.7.8 https://support.google.com/mail/?p=BadCredentials - gsmtp"),
            Line::Mta(Record::new(Mta::Exim))
        );
        // Not after a line of another program.
        parser.parse("Nov  8 17:35:01 mx1 postfix/smtpd[1]: connect from a[1.2.3.4]");
        assert_eq!(parser.parse("535 5.7.8 continuation"), Line::Unrecognized);
    }

    #[test]
    fn a_source_can_fix_its_mta() {
        let mut parser = LineParser::new(MtaSelection::Opensmtpd, Arc::new(OtherParsers::default()));
        assert_eq!(
            mta(&parser.parse("Nov  2 00:01:33 h custom-name[1]: 88166f7f21c951f4 smtp failed-command command=\"\" result=\"550 no rDNS\"")),
            Some(Mta::Opensmtpd)
        );
        let mut parser = LineParser::new(MtaSelection::Exim, Arc::new(OtherParsers::default()));
        assert!(matches!(
            parser.parse("login authenticator failed for (x) [1.2.3.4]: 535 Incorrect authentication data"),
            Line::Mta(Record { mta: Mta::Exim, reply: Some(_), .. })
        ));
    }

    #[test]
    fn other_programs_with_parsers_enabled() {
        let others = OtherParsers::compile(&serde_saphyr::from_str("generic: true").unwrap()).unwrap();
        let mut parser = LineParser::new(MtaSelection::Auto, Arc::new(others));
        assert!(matches!(
            parser.parse("Apr 11 08:12:14 web courieresmtpd: error,relay=::ffff:192.0.2.4,from=<a@b>,to=<c@d>: 550 5.1.1 User unknown."),
            Line::Mta(Record { mta: Mta::Other, reply: Some(_), .. })
        ));
        assert_eq!(parser.parse("Apr 11 08:12:15 web dovecot: imap-login: Login"), Line::Foreign);
    }
}
