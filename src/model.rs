//! The plain data that flows between the stages: reply codes as found in a
//! log line, where a reply came from, and what happened to a delivery.
//!
//! Everything here is `Copy` and borrow-only so that the hot path (one log
//! line at a time) never allocates. Validation lives with the types: a
//! [`ReplyCode`] or [`EnhancedStatus`] that exists is a valid one, so later
//! stages never re-check digits.

use std::fmt;

/// An RFC 5321 basic reply code such as `550`.
///
/// Only classes 2, 4 and 5 are accepted: 1xx is not used by SMTP and 3xx
/// (`334`, `354`) are intermediate replies that no MTA logs as an outcome.
/// The second and third digits may be any digit; codes such as Exim's
/// config-supplied `599` or Sendmail's `571` are real values in real logs.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ReplyCode(u16);

impl ReplyCode {
    /// Accepts exactly three ASCII digits with a first digit of 2, 4 or 5.
    pub fn parse(digits: &[u8]) -> Option<Self> {
        match *digits {
            [a @ (b'2' | b'4' | b'5'), b, c] if b.is_ascii_digit() && c.is_ascii_digit() => {
                Some(ReplyCode(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')))
            }
            _ => None,
        }
    }

    pub fn new(value: u16) -> Option<Self> {
        matches!(value / 100, 2 | 4 | 5).then_some(ReplyCode(value))
    }

    pub fn value(self) -> u16 {
        self.0
    }

    pub fn class(self) -> ReplyClass {
        ReplyClass::from_digit((self.0 / 100) as u8).unwrap_or(ReplyClass::Permanent)
    }

    /// The RFC 5321 §4.2.1 second digit.
    pub fn second_digit(self) -> u8 {
        ((self.0 / 10) % 10) as u8
    }
}

impl fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An RFC 3463 enhanced status code `class.subject.detail`, e.g. `5.7.26`.
///
/// Validated as the issue of record asks: class 2, 4 or 5; subject 0–7 (the
/// subjects RFC 3463 defines); detail of one to three digits. A string such
/// as `5.12.345` or the `4.16.55.1` inside a Yahoo reply text is not one.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct EnhancedStatus {
    class: u8,
    subject: u8,
    detail: u16,
}

impl EnhancedStatus {
    pub fn new(class: u8, subject: u8, detail: u16) -> Option<Self> {
        (matches!(class, 2 | 4 | 5) && subject <= 7 && detail <= 999).then_some(EnhancedStatus {
            class,
            subject,
            detail,
        })
    }

    /// Parses a whole token such as `5.1.1` (no surrounding text allowed).
    pub fn parse(token: &[u8]) -> Option<Self> {
        match scan_enhanced(token) {
            Some((status, len)) if len == token.len() => Some(status),
            _ => None,
        }
    }

    pub fn class(self) -> ReplyClass {
        ReplyClass::from_digit(self.class).unwrap_or(ReplyClass::Permanent)
    }

    pub fn class_digit(self) -> u8 {
        self.class
    }

    pub fn subject(self) -> u8 {
        self.subject
    }

    pub fn detail(self) -> u16 {
        self.detail
    }
}

impl fmt::Display for EnhancedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// Reads an enhanced status code at the start of `bytes` and returns it with
/// the number of bytes it spans. The code must not be followed by another
/// digit or `.digit` (so `4.16.55.1` and `5.1.10.2` are rejected, and
/// `5.1.10` is read whole).
pub fn scan_enhanced(bytes: &[u8]) -> Option<(EnhancedStatus, usize)> {
    let class = *bytes.first()?;
    if !matches!(class, b'2' | b'4' | b'5') || bytes.get(1) != Some(&b'.') {
        return None;
    }
    let (subject, s_len) = scan_number(&bytes[2..], 3)?;
    let mut pos = 2 + s_len;
    if bytes.get(pos) != Some(&b'.') {
        return None;
    }
    pos += 1;
    let (detail, d_len) = scan_number(&bytes[pos..], 3)?;
    pos += d_len;
    match bytes.get(pos) {
        Some(b) if b.is_ascii_digit() => return None,
        Some(b'.') if bytes.get(pos + 1).is_some_and(u8::is_ascii_digit) => return None,
        _ => {}
    }
    let subject = u8::try_from(subject).ok()?;
    Some((EnhancedStatus::new(class - b'0', subject, detail)?, pos))
}

/// One to `max` leading ASCII digits as a number; more digits is no match.
fn scan_number(bytes: &[u8], max: usize) -> Option<(u16, usize)> {
    let len = bytes.iter().take(max + 1).take_while(|b| b.is_ascii_digit()).count();
    if len == 0 || len > max {
        return None;
    }
    let value = bytes[..len].iter().fold(0u16, |acc, b| acc * 10 + u16::from(b - b'0'));
    Some((value, len))
}

/// The class of a reply: the first digit of its code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ReplyClass {
    Success,
    Transient,
    Permanent,
}

impl ReplyClass {
    pub fn from_digit(digit: u8) -> Option<Self> {
        match digit {
            2 => Some(ReplyClass::Success),
            4 => Some(ReplyClass::Transient),
            5 => Some(ReplyClass::Permanent),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ReplyClass::Success => "2xx",
            ReplyClass::Transient => "4xx",
            ReplyClass::Permanent => "5xx",
        }
    }
}

/// Which MTA wrote a line. `Other` is for the opt-in generic parser.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Mta {
    Postfix,
    Exim,
    Sendmail,
    Opensmtpd,
    Other,
}

impl Mta {
    pub const ALL: [Mta; 5] = [Mta::Postfix, Mta::Exim, Mta::Sendmail, Mta::Opensmtpd, Mta::Other];

    /// Position in [`Mta::ALL`], for per-MTA arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn label(self) -> &'static str {
        match self {
            Mta::Postfix => "postfix",
            Mta::Exim => "exim",
            Mta::Sendmail => "sendmail",
            Mta::Opensmtpd => "opensmtpd",
            Mta::Other => "other",
        }
    }
}

/// Who gave the reply.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Direction {
    /// A remote server's reply to one of our deliveries, or a delivery status
    /// our MTA generated itself (connection refused, local delivery, …).
    Outbound,
    /// A reply our server gave to a connecting client.
    Inbound,
}

impl Direction {
    pub fn label(self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
        }
    }
}

/// The point of the SMTP dialogue that a reply answered.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Phase {
    /// The greeting, or failing to connect at all.
    Connect,
    /// EHLO/HELO/LHLO and STARTTLS: setting up the session.
    Helo,
    Auth,
    Mail,
    Rcpt,
    /// The DATA (or BDAT) command itself.
    Data,
    /// The reply after the message content was sent.
    EndOfData,
    /// A known command that is none of the above (VRFY, ETRN, RSET, QUIT …).
    Other,
    /// An SMTP dialogue took place but the log does not say where it failed.
    Unknown,
    /// No SMTP dialogue: local, virtual or pipe delivery.
    None,
}

impl Phase {
    pub fn label(self) -> &'static str {
        match self {
            Phase::Connect => "connect",
            Phase::Helo => "helo",
            Phase::Auth => "auth",
            Phase::Mail => "mail",
            Phase::Rcpt => "rcpt",
            Phase::Data => "data",
            Phase::EndOfData => "end_of_data",
            Phase::Other => "other",
            Phase::Unknown => "unknown",
            Phase::None => "none",
        }
    }

    /// Maps an SMTP command word as MTAs log it (`RCPT`, `RCPT TO`, `MAIL
    /// FROM`, `end of DATA`, `END-OF-MESSAGE`, …), case-insensitively.
    pub fn from_command(command: &str) -> Phase {
        let command = command.trim();
        let word = command.split([' ', ':']).next().unwrap_or("");
        let is = |w: &str| word.eq_ignore_ascii_case(w);
        if command.eq_ignore_ascii_case("end of DATA")
            || command.eq_ignore_ascii_case("end of data")
            || command.eq_ignore_ascii_case("END-OF-MESSAGE")
        {
            Phase::EndOfData
        } else if is("CONNECT") {
            Phase::Connect
        } else if is("EHLO") || is("HELO") || is("LHLO") || is("STARTTLS") {
            Phase::Helo
        } else if is("AUTH") {
            Phase::Auth
        } else if is("MAIL") {
            Phase::Mail
        } else if is("RCPT") {
            Phase::Rcpt
        } else if is("DATA") || is("BDAT") {
            Phase::Data
        } else if word.is_empty() {
            Phase::Unknown
        } else {
            Phase::Other
        }
    }
}

/// The outcome of one delivery attempt, or an inbound rejection.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum DeliveryStatus {
    Sent,
    Deferred,
    Bounced,
    /// Gave up after the maximal queue lifetime (Postfix `status=expired`).
    Expired,
    /// Our server refused a message or recipient from a client.
    Rejected,
    /// Address-verification probe result, not a real delivery.
    Deliverable,
    /// Address-verification probe result, not a real delivery.
    Undeliverable,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 7] = [
        DeliveryStatus::Sent,
        DeliveryStatus::Deferred,
        DeliveryStatus::Bounced,
        DeliveryStatus::Expired,
        DeliveryStatus::Rejected,
        DeliveryStatus::Deliverable,
        DeliveryStatus::Undeliverable,
    ];

    /// Position in [`DeliveryStatus::ALL`], for per-status arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn label(self) -> &'static str {
        match self {
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Deferred => "deferred",
            DeliveryStatus::Bounced => "bounced",
            DeliveryStatus::Expired => "expired",
            DeliveryStatus::Rejected => "rejected",
            DeliveryStatus::Deliverable => "deliverable",
            DeliveryStatus::Undeliverable => "undeliverable",
        }
    }
}

/// One SMTP reply found in a log line, before classification.
///
/// At least one of `code` and `enhanced` is present: a line with neither
/// carries no reply. `text` is the reply as logged (for multi-line replies,
/// all lines as the MTA joined them) and only feeds cause detection; it is
/// never a label.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Reply<'a> {
    pub code: Option<ReplyCode>,
    pub enhanced: Option<EnhancedStatus>,
    pub text: &'a str,
    pub direction: Direction,
    pub phase: Phase,
}

impl Reply<'_> {
    /// The basic code decides the class; an enhanced code alone (Postfix
    /// cleanup rejects) decides it when there is no basic code.
    pub fn class(&self) -> ReplyClass {
        match (self.code, self.enhanced) {
            (Some(code), _) => code.class(),
            (None, Some(enhanced)) => enhanced.class(),
            (None, None) => ReplyClass::Permanent,
        }
    }
}

/// A reply code found at the start of `text`: basic code, enhanced code, or
/// both, e.g. `550 5.1.1 <a@b>: User unknown`, `550-5.7.26 …`, `451 Try
/// later`, `5.7.1 Spam` (enhanced only), `421 4.3.0: Temporary` (OpenSMTPD's
/// colon). Returns the codes and the byte offset where the text starts.
pub fn scan_reply(text: &str) -> Option<(Option<ReplyCode>, Option<EnhancedStatus>, usize)> {
    let bytes = text.as_bytes();
    if bytes.len() >= 3 {
        if let Some(code) = ReplyCode::parse(&bytes[..3]) {
            return match bytes.get(3) {
                None => Some((Some(code), None, 3)),
                Some(b' ' | b'-') => {
                    let rest = &bytes[4..];
                    match scan_enhanced(rest) {
                        Some((enhanced, len)) if ends_token(rest.get(len)) => {
                            let after = 4 + len + usize::from(rest.get(len) == Some(&b':'));
                            Some((Some(code), Some(enhanced), skip_space(bytes, after)))
                        }
                        _ => Some((Some(code), None, 4)),
                    }
                }
                // `550.` or `5501` are not codes in reply position.
                _ => None,
            };
        }
    }
    match scan_enhanced(bytes) {
        Some((enhanced, len)) if ends_token(bytes.get(len)) => {
            let after = len + usize::from(bytes.get(len) == Some(&b':'));
            Some((None, Some(enhanced), skip_space(bytes, after)))
        }
        _ => None,
    }
}

fn ends_token(next: Option<&u8>) -> bool {
    matches!(next, None | Some(b' ' | b':' | b';' | b',' | b'\t' | b'\\'))
}

fn skip_space(bytes: &[u8], mut pos: usize) -> usize {
    while bytes.get(pos) == Some(&b' ') {
        pos += 1;
    }
    pos.min(bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(text: &str) -> Option<(Option<u16>, Option<String>, &str)> {
        scan_reply(text).map(|(c, e, at)| (c.map(ReplyCode::value), e.map(|e| e.to_string()), &text[at..]))
    }

    /// (basic code, enhanced code, text after the codes)
    type Codes = (Option<u16>, Option<&'static str>, &'static str);

    #[test]
    fn reply_shapes() {
        let cases: &[(&str, Option<Codes>)] = &[
            ("550 5.1.1 <a@b>: User unknown", Some((Some(550), Some("5.1.1"), "<a@b>: User unknown"))),
            (
                "550-5.7.26 Unauthenticated 550 5.7.26 x",
                Some((Some(550), Some("5.7.26"), "Unauthenticated 550 5.7.26 x")),
            ),
            ("451 4.7.500 Server busy", Some((Some(451), Some("4.7.500"), "Server busy"))),
            ("550 5.1.10 RESOLVER", Some((Some(550), Some("5.1.10"), "RESOLVER"))),
            ("451-You have been greylisted", Some((Some(451), None, "You have been greylisted"))),
            ("554 delivery error: dd", Some((Some(554), None, "delivery error: dd"))),
            ("421 4.3.0: Temporary Error", Some((Some(421), Some("4.3.0"), "Temporary Error"))),
            ("5.7.1 Blocked by SpamAssassin", Some((None, Some("5.7.1"), "Blocked by SpamAssassin"))),
            ("250", Some((Some(250), None, ""))),
            ("550 5.12.345 <user@example.com>: x", Some((Some(550), None, "5.12.345 <user@example.com>: x"))),
            ("421 4.16.55.1 text", Some((Some(421), None, "4.16.55.1 text"))),
            ("334 from spam.example.com", None),
            ("2550 x", None),
            ("550.5 x", None),
            ("123 x", None),
            ("14 after 0.08", None),
            ("4.16.55.1; see", None),
            ("", None),
        ];
        for (text, want) in cases {
            let want = want.map(|(c, e, t)| (c, e.map(str::to_string), t));
            assert_eq!(codes(text), want, "{text}");
        }
    }

    #[test]
    fn enhanced_validation() {
        assert!(EnhancedStatus::parse(b"5.7.708").is_some());
        assert!(EnhancedStatus::parse(b"2.0.0").is_some());
        assert!(EnhancedStatus::parse(b"5.8.1").is_none(), "subject 8 is not defined");
        assert!(EnhancedStatus::parse(b"3.1.1").is_none());
        assert!(EnhancedStatus::parse(b"5.1.1000").is_none());
        assert!(EnhancedStatus::parse(b"5.1").is_none());
        assert_eq!(EnhancedStatus::parse(b"4.7.26").map(|e| e.detail()), Some(26));
    }

    #[test]
    fn array_indexes_follow_the_all_lists() {
        for (i, mta) in Mta::ALL.into_iter().enumerate() {
            assert_eq!(mta.index(), i);
        }
        for (i, status) in DeliveryStatus::ALL.into_iter().enumerate() {
            assert_eq!(status.index(), i);
        }
    }

    #[test]
    fn phases_from_commands() {
        for (command, phase) in [
            ("RCPT TO", Phase::Rcpt),
            ("MAIL FROM", Phase::Mail),
            ("end of DATA", Phase::EndOfData),
            ("END-OF-MESSAGE", Phase::EndOfData),
            ("DATA", Phase::Data),
            ("BDAT", Phase::Data),
            ("EHLO", Phase::Helo),
            ("STARTTLS", Phase::Helo),
            ("CONNECT", Phase::Connect),
            ("VRFY", Phase::Other),
            ("AUTH", Phase::Auth),
            ("", Phase::Unknown),
        ] {
            assert_eq!(Phase::from_command(command), phase, "{command}");
        }
    }
}
