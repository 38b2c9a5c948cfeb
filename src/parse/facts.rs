//! What a log line says besides its reply and delivery outcome: delays,
//! message sizes, sessions, TLS, authentication failures, postscreen
//! verdicts, notifications and filter actions ([`Facts`]), and the small
//! pure readers the MTA parsers share for them (durations in each MTA's
//! notation, cipher and protocol classes, SASL mechanisms).
//!
//! Every value here is bounded: labels come from the enums below, never
//! from the line's text. Where a line names something a stranger chose
//! (a cipher suite, a mechanism a client asked for), it is mapped onto a
//! fixed set with `other` for the rest. Durations are kept as
//! [`Duration`]s (exact, no float) until they are observed.

use std::time::Duration;

use crate::model::{Direction, Phase};

/// Everything a line reports besides its reply and delivery outcome. Most
/// lines report nothing here; a few report several things at once (an
/// Exim delivery line has the queue time, the delivery time and the TLS
/// of the connection).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Facts<'a> {
    /// Time from the message's arrival to this delivery attempt: Postfix
    /// `delay=`, Exim `QT=`, Sendmail `delay=`, OpenSMTPD `delay=`.
    pub delay: Option<Duration>,
    /// Postfix `delays=a/b/c/d`, in [`Stage`] order.
    pub stages: Option<[Duration; 4]>,
    /// This delivery attempt alone: Exim `DT=`, Sendmail `xdelay=`.
    pub attempt: Option<Duration>,
    /// A message entered the queue.
    pub received: Option<Received>,
    /// The Postfix queue id of a qmgr line, for the parser's memory of
    /// messages it has already seen in the active queue.
    pub queue_id: Option<&'a str>,
    /// qmgr removed the message from the queue (`QID: removed`).
    pub removed: bool,
    /// An inbound SMTP session began, ended or failed.
    pub session: Option<Session<'a>>,
    /// A TLS session was established.
    pub tls: Option<Tls>,
    /// A TLS handshake failed, in this direction.
    pub tls_failure: Option<Direction>,
    /// A client failed to authenticate, with this mechanism.
    pub auth_failure: Option<AuthMethod>,
    pub postscreen: Option<Postscreen>,
    /// The MTA generated a delivery status notification (a bounce).
    pub notification: Option<Notification>,
    /// A milter or content filter acted on a message.
    pub filter: Option<FilterAction>,
}

impl Facts<'_> {
    /// Whether the line reports anything here (most lines do not; the
    /// metrics skip them with one comparison).
    pub fn is_empty(&self) -> bool {
        *self == Facts::default()
    }
}

/// A message that entered the queue, with what the MTA logged about it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Received {
    /// Bytes, as the MTA counts them (Postfix `size=`, Exim `S=`, Sendmail
    /// `size=`, OpenSMTPD `size=`).
    pub size: Option<u64>,
    /// Envelope recipients (Postfix `nrcpt=`, Sendmail `nrcpts=`,
    /// OpenSMTPD `nrcpt=`, Exim's `for a b c` with `+received_recipients`).
    pub recipients: Option<u32>,
}

/// The four stages of Postfix's `delays=a/b/c/d`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Stage {
    /// a: from arrival until the queue manager took the message (includes
    /// the time the client took to send it).
    BeforeQueueManager,
    /// b: in the queue manager (waiting for a delivery agent).
    QueueManager,
    /// c: connection setup (DNS, HELO, TLS).
    ConnectionSetup,
    /// d: message transmission.
    Transmission,
    /// Exim `DT=`, Sendmail `xdelay=`: one delivery attempt, connection
    /// setup and transmission together (Postfix's c + d).
    Attempt,
}

impl Stage {
    /// The Postfix stages, in the order of `delays=a/b/c/d`.
    pub const POSTFIX: [Stage; 4] =
        [Stage::BeforeQueueManager, Stage::QueueManager, Stage::ConnectionSetup, Stage::Transmission];

    pub fn label(self) -> &'static str {
        match self {
            Stage::BeforeQueueManager => "before_queue_manager",
            Stage::QueueManager => "queue_manager",
            Stage::ConnectionSetup => "connection_setup",
            Stage::Transmission => "transmission",
            Stage::Attempt => "attempt",
        }
    }
}

/// An event of an inbound SMTP session, on a named service.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Session<'a> {
    /// The listening service: Postfix's master.cf service (from the
    /// syslog name, `postfix/submission/smtpd` is `submission`), Exim's
    /// local port (`smtp`, `submission`, `smtps` for 25, 587, 465, else the
    /// number), Sendmail's daemon name (`MTA`, `MSA`), `smtpd` for
    /// OpenSMTPD. Chosen by the postmaster, never by a client; the metrics
    /// still cap it.
    pub service: &'a str,
    pub event: SessionEvent,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SessionEvent {
    Connect,
    Disconnect,
    /// The session failed, after the command of `phase` (`Phase::Unknown`
    /// when the MTA does not say). `disconnect`: the MTA writes no other
    /// line for the session's end, so this one is also its disconnection
    /// (Exim, OpenSMTPD; Postfix logs a `disconnect from` line as well).
    Error {
        error: SessionError,
        phase: Phase,
        disconnect: bool,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum SessionError {
    /// The client went away without QUIT.
    LostConnection,
    /// The client was too slow.
    Timeout,
    /// The server hung up after too many errors or bad commands.
    TooManyErrors,
}

impl SessionError {
    pub fn label(self) -> &'static str {
        match self {
            SessionError::LostConnection => "lost_connection",
            SessionError::Timeout => "timeout",
            SessionError::TooManyErrors => "too_many_errors",
        }
    }
}

/// An established TLS session.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Tls {
    pub direction: Direction,
    pub protocol: TlsProtocol,
    pub cipher: CipherClass,
    pub trust: TlsTrust,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum TlsProtocol {
    Tls13,
    Tls12,
    Tls11,
    Tls10,
    Ssl3,
    Other,
}

impl TlsProtocol {
    /// OpenSSL's `TLSv1.3`, GnuTLS's (Exim) `TLS1.3`, `SSLv3`.
    pub fn parse(text: &str) -> TlsProtocol {
        let t = text.as_bytes();
        let rest = if let Some(r) = t.strip_prefix(b"TLSv").or_else(|| t.strip_prefix(b"TLS")) {
            r
        } else {
            return if t.eq_ignore_ascii_case(b"SSLv3") || t.eq_ignore_ascii_case(b"SSL3.0") {
                TlsProtocol::Ssl3
            } else {
                TlsProtocol::Other
            };
        };
        match rest {
            b"1.3" => TlsProtocol::Tls13,
            b"1.2" => TlsProtocol::Tls12,
            b"1.1" => TlsProtocol::Tls11,
            b"1" | b"1.0" => TlsProtocol::Tls10,
            _ => TlsProtocol::Other,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            TlsProtocol::Tls13 => "tls1.3",
            TlsProtocol::Tls12 => "tls1.2",
            TlsProtocol::Tls11 => "tls1.1",
            TlsProtocol::Tls10 => "tls1.0",
            TlsProtocol::Ssl3 => "ssl3",
            TlsProtocol::Other => "other",
        }
    }
}

/// The bulk cipher of a suite, which is what decides whether a session is
/// strong: a bounded class instead of the suite's name (OpenSSL, IANA and
/// GnuTLS spell the same suite differently, and a peer may offer anything).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum CipherClass {
    Aes128Gcm,
    Aes256Gcm,
    Chacha20Poly1305,
    AesCcm,
    AesCbc,
    Camellia,
    TripleDes,
    Rc4,
    Other,
}

/// Substrings of a suite name, tried in order, and the class they mean.
/// Upper-cased names; `-` and `_` are equal (OpenSSL `AES256-GCM`, IANA
/// `AES_256_GCM`, GnuTLS `AES_256_GCM`).
const CIPHER_CLASSES: &[(&str, CipherClass)] = &[
    ("CHACHA20", CipherClass::Chacha20Poly1305),
    ("AES_128_GCM", CipherClass::Aes128Gcm),
    ("AES128_GCM", CipherClass::Aes128Gcm),
    ("AES_256_GCM", CipherClass::Aes256Gcm),
    ("AES256_GCM", CipherClass::Aes256Gcm),
    ("CCM", CipherClass::AesCcm),
    ("3DES", CipherClass::TripleDes),
    ("DES_CBC3", CipherClass::TripleDes),
    ("RC4", CipherClass::Rc4),
    ("CAMELLIA", CipherClass::Camellia),
    ("AES", CipherClass::AesCbc),
];

impl CipherClass {
    pub fn of_suite(name: &str) -> CipherClass {
        // Suite names are short; normalise into a stack buffer.
        let mut buf = [0u8; 64];
        let bytes = name.as_bytes();
        if bytes.len() > buf.len() {
            return CipherClass::Other;
        }
        for (i, &b) in bytes.iter().enumerate() {
            buf[i] = if b == b'-' { b'_' } else { b.to_ascii_uppercase() };
        }
        let norm = &buf[..bytes.len()];
        CIPHER_CLASSES
            .iter()
            .find(|(needle, _)| memchr::memmem::find(norm, needle.as_bytes()).is_some())
            .map_or(CipherClass::Other, |&(_, class)| class)
    }

    pub fn label(self) -> &'static str {
        match self {
            CipherClass::Aes128Gcm => "aes_128_gcm",
            CipherClass::Aes256Gcm => "aes_256_gcm",
            CipherClass::Chacha20Poly1305 => "chacha20_poly1305",
            CipherClass::AesCcm => "aes_ccm",
            CipherClass::AesCbc => "aes_cbc",
            CipherClass::Camellia => "camellia",
            CipherClass::TripleDes => "3des",
            CipherClass::Rc4 => "rc4",
            CipherClass::Other => "other",
        }
    }
}

/// How far the peer's certificate was checked, in Postfix's words.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum TlsTrust {
    /// The certificate chain is trusted and the name matched.
    Verified,
    /// The certificate chain is trusted (name not checked or not matched).
    Trusted,
    /// A certificate was presented but not trusted.
    Untrusted,
    /// No certificate (a client without one, anonymous ciphers).
    Anonymous,
    /// The MTA does not log it.
    Unknown,
}

impl TlsTrust {
    /// Postfix's `Trusted TLS connection established …` first word.
    pub fn from_postfix(word: &str) -> Option<TlsTrust> {
        match word {
            "Verified" => Some(TlsTrust::Verified),
            "Trusted" => Some(TlsTrust::Trusted),
            "Untrusted" => Some(TlsTrust::Untrusted),
            "Anonymous" => Some(TlsTrust::Anonymous),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            TlsTrust::Verified => "verified",
            TlsTrust::Trusted => "trusted",
            TlsTrust::Untrusted => "untrusted",
            TlsTrust::Anonymous => "anonymous",
            TlsTrust::Unknown => "unknown",
        }
    }
}

/// A SASL mechanism (never the user name).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum AuthMethod {
    Plain,
    Login,
    CramMd5,
    DigestMd5,
    ScramSha1,
    ScramSha256,
    XOauth2,
    OauthBearer,
    Gssapi,
    Ntlm,
    External,
    /// A mechanism not in this list.
    Other,
    /// The MTA does not log the mechanism.
    Unknown,
}

/// Mechanism names as clients and MTAs write them (upper case, RFC 4422
/// registry spelling), and Exim authenticator names that contain them.
const AUTH_METHODS: &[(&str, AuthMethod)] = &[
    ("SCRAM-SHA-256", AuthMethod::ScramSha256),
    ("SCRAM-SHA-1", AuthMethod::ScramSha1),
    ("CRAM-MD5", AuthMethod::CramMd5),
    ("DIGEST-MD5", AuthMethod::DigestMd5),
    ("XOAUTH2", AuthMethod::XOauth2),
    ("OAUTHBEARER", AuthMethod::OauthBearer),
    ("GSSAPI", AuthMethod::Gssapi),
    ("NTLM", AuthMethod::Ntlm),
    ("EXTERNAL", AuthMethod::External),
    ("PLAIN", AuthMethod::Plain),
    ("LOGIN", AuthMethod::Login),
];

impl AuthMethod {
    /// A mechanism name as logged (`LOGIN`, `cram-md5`).
    pub fn parse(name: &str) -> AuthMethod {
        AUTH_METHODS
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
            .map_or(AuthMethod::Other, |&(_, method)| method)
    }

    /// An Exim authenticator's name (`dovecot_plain`, `plain_server`,
    /// `cram_md5`): the postmaster names it after its mechanism by
    /// convention; a name that contains none is `other`.
    pub fn from_authenticator(name: &str) -> AuthMethod {
        let mut buf = [0u8; 64];
        let bytes = name.as_bytes();
        if bytes.len() > buf.len() {
            return AuthMethod::Other;
        }
        for (i, &b) in bytes.iter().enumerate() {
            buf[i] = if b == b'_' { b'-' } else { b.to_ascii_uppercase() };
        }
        let norm = &buf[..bytes.len()];
        AUTH_METHODS
            .iter()
            .find(|(known, _)| memchr::memmem::find(norm, known.as_bytes()).is_some())
            .map_or(AuthMethod::Other, |&(_, method)| method)
    }

    pub fn label(self) -> &'static str {
        match self {
            AuthMethod::Plain => "plain",
            AuthMethod::Login => "login",
            AuthMethod::CramMd5 => "cram_md5",
            AuthMethod::DigestMd5 => "digest_md5",
            AuthMethod::ScramSha1 => "scram_sha_1",
            AuthMethod::ScramSha256 => "scram_sha_256",
            AuthMethod::XOauth2 => "xoauth2",
            AuthMethod::OauthBearer => "oauthbearer",
            AuthMethod::Gssapi => "gssapi",
            AuthMethod::Ntlm => "ntlm",
            AuthMethod::External => "external",
            AuthMethod::Other => "other",
            AuthMethod::Unknown => "unknown",
        }
    }
}

/// What Postfix's postscreen logged about a client.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Postscreen {
    /// `CONNECT from [ip]:port to [ip]:port`.
    Connect,
    /// `PASS NEW` (passed the tests for the first time) or `PASS OLD`
    /// (passed before, still in the cache).
    Pass { new: bool },
    /// `ALLOWLISTED` / `WHITELISTED` (postscreen_access_list permit).
    Allowlisted,
    /// `DENYLISTED` / `BLACKLISTED` (postscreen_access_list reject).
    Denylisted,
    /// `DNSBL rank N for [ip]:port`: the client's DNSBL score reached the
    /// threshold.
    DnsblRank(u32),
    /// The client failed a protocol test.
    Violation(PostscreenTest),
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum PostscreenTest {
    /// `PREGREET`: talked before the greeting.
    Pregreet,
    /// `HANGUP`: hung up before the tests finished.
    Hangup,
    /// `COMMAND PIPELINING`: sent commands without waiting for replies.
    Pipelining,
    /// `NON-SMTP COMMAND`: `GET /`, `CONNECT`, header lines …
    NonSmtpCommand,
    /// `BARE NEWLINE`: a line that ends in LF without CR.
    BareNewline,
    /// `COMMAND TIME LIMIT`, `COMMAND COUNT LIMIT`, `COMMAND LENGTH LIMIT`.
    CommandLimit,
}

impl PostscreenTest {
    pub fn label(self) -> &'static str {
        match self {
            PostscreenTest::Pregreet => "pregreet",
            PostscreenTest::Hangup => "hangup",
            PostscreenTest::Pipelining => "pipelining",
            PostscreenTest::NonSmtpCommand => "non_smtp_command",
            PostscreenTest::BareNewline => "bare_newline",
            PostscreenTest::CommandLimit => "command_limit",
        }
    }
}

/// A delivery status notification the MTA generated.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Notification {
    /// A bounce: the message could not be delivered.
    NonDelivery,
    /// A delay warning: not delivered yet.
    Delay,
    /// A success notification (DSN NOTIFY=SUCCESS, return receipts).
    Delivery,
}

impl Notification {
    pub fn label(self) -> &'static str {
        match self {
            Notification::NonDelivery => "non_delivery",
            Notification::Delay => "delay",
            Notification::Delivery => "delivery",
        }
    }
}

/// A milter's or content filter's verdict on a message.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct FilterAction {
    pub filter: Filter,
    pub action: Action,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Filter {
    /// A milter (Postfix `milter-…`, Sendmail `Milter:`).
    Milter,
    /// Postfix's header_checks/body_checks (cleanup).
    ContentChecks,
    /// Postfix's before-queue content filter (`proxy-reject`).
    ContentFilter,
    /// An Exim ACL (`discard`, `control = freeze`).
    Acl,
}

impl Filter {
    pub fn label(self) -> &'static str {
        match self {
            Filter::Milter => "milter",
            Filter::ContentChecks => "content_checks",
            Filter::ContentFilter => "content_filter",
            Filter::Acl => "acl",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Action {
    /// Refused with a 5xx.
    Reject,
    /// Refused with a 4xx.
    Tempfail,
    /// Accepted and thrown away.
    Discard,
    /// Kept in the hold queue (Postfix `HOLD`, Exim freeze).
    Hold,
    /// Quarantined (Sendmail `quarantine=`).
    Quarantine,
}

impl Action {
    pub fn label(self) -> &'static str {
        match self {
            Action::Reject => "reject",
            Action::Tempfail => "tempfail",
            Action::Discard => "discard",
            Action::Hold => "hold",
            Action::Quarantine => "quarantine",
        }
    }
}

// --------------------------------------------------------------------------
// durations in each MTA's notation

/// Longest duration accepted (about 30 years): a larger value is not a delay.
const MAX_SECONDS: u64 = 1 << 30;

/// A decimal number of seconds as Postfix writes it (`0.05`, `46`, `1.2e-05`
/// is not written; `delay_logging_resolution_limit` allows up to six
/// decimals). Returns `None` for anything else.
pub fn decimal_seconds(text: &str) -> Option<Duration> {
    // One pass over the bytes: up to five of these on every delivery line
    // (`delay=`, `delays=a/b/c/d`), where splitting, checking and parsing
    // separately cost 400 instructions a line.
    let bytes = text.as_bytes();
    let whole = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if whole == 0 || whole > 10 {
        return None;
    }
    let secs = bytes[..whole].iter().fold(0u64, |n, &b| n * 10 + u64::from(b - b'0'));
    let mut nanos: u32 = 0;
    if let Some((&dot, frac)) = bytes[whole..].split_first() {
        if dot != b'.' || frac.is_empty() || frac.len() > 9 {
            return None;
        }
        let mut scale = 100_000_000;
        for &b in frac {
            if !b.is_ascii_digit() {
                return None;
            }
            nanos += u32::from(b - b'0') * scale;
            scale /= 10;
        }
    }
    if secs > MAX_SECONDS {
        return None;
    }
    Some(Duration::new(secs, nanos))
}

/// Exim's and OpenSMTPD's durations: `0.077s`, `2s`, `1m5s`, `3h2m`,
/// `1d2h`, `2w1d`. Units in descending order, each at most once, a
/// fraction only on seconds.
pub fn unit_duration(text: &str) -> Option<Duration> {
    if text.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    let mut last_unit = u64::MAX;
    while !rest.is_empty() {
        let len = rest.bytes().take_while(|b| b.is_ascii_digit() || *b == b'.').count();
        let (number, after) = rest.split_at(len);
        let unit = after.bytes().next()?;
        let seconds_per: u64 = match unit {
            b'w' => 7 * 86_400,
            b'd' => 86_400,
            b'h' => 3_600,
            b'm' => 60,
            b's' => 1,
            _ => return None,
        };
        if seconds_per >= last_unit {
            return None;
        }
        last_unit = seconds_per;
        let value = if seconds_per == 1 {
            decimal_seconds(number)?
        } else {
            let n: u64 = if number.is_empty() || number.contains('.') { return None } else { number.parse().ok()? };
            Duration::from_secs(n.checked_mul(seconds_per)?)
        };
        total = total.checked_add(value)?;
        rest = &after[1..];
    }
    (total.as_secs() <= MAX_SECONDS).then_some(total)
}

/// Sendmail's `[D+]HH:MM:SS` (`00:00:01`, `2+03:04:05`).
pub fn clock_duration(text: &str) -> Option<Duration> {
    let (days, clock) = match text.split_once('+') {
        Some((d, c)) => (d.parse::<u64>().ok()?, c),
        None => (0, text),
    };
    let mut parts = clock.split(':');
    let mut field = |max: u64| -> Option<u64> {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 2 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse::<u64>().ok().filter(|&v| v <= max)
    };
    let (h, m, s) = (field(99)?, field(59)?, field(59)?);
    if parts.next().is_some() || days > MAX_SECONDS / 86_400 {
        return None;
    }
    Some(Duration::from_secs(days * 86_400 + h * 3_600 + m * 60 + s))
}

/// The value after `key` in `text` up to the next space (or `,` when
/// `comma` is set): `S=` → `1234`. Found from the left; callers pass the
/// part of the line where the MTA, not a stranger, writes fields.
pub fn field<'a>(text: &'a str, key: &str, comma: bool) -> Option<&'a str> {
    let at = memchr::memmem::find(text.as_bytes(), key.as_bytes())?;
    let value = &text[at + key.len()..];
    let end = value.bytes().position(|b| b == b' ' || (comma && b == b',')).unwrap_or(value.len());
    Some(&value[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postfix_seconds() {
        assert_eq!(decimal_seconds("0.05"), Some(Duration::from_millis(50)));
        assert_eq!(decimal_seconds("46"), Some(Duration::from_secs(46)));
        assert_eq!(decimal_seconds("0"), Some(Duration::ZERO));
        assert_eq!(decimal_seconds("1.000001"), Some(Duration::from_micros(1_000_001)));
        for bad in ["", ".5", "5.", "-1", "1e-05", "1.2.3", "x", "99999999999"] {
            assert_eq!(decimal_seconds(bad), None, "{bad}");
        }
    }

    #[test]
    fn exim_and_opensmtpd_durations() {
        assert_eq!(unit_duration("0.077s"), Some(Duration::from_millis(77)));
        assert_eq!(unit_duration("6s"), Some(Duration::from_secs(6)));
        assert_eq!(unit_duration("1m5s"), Some(Duration::from_secs(65)));
        assert_eq!(unit_duration("3h2m"), Some(Duration::from_secs(3 * 3600 + 120)));
        assert_eq!(unit_duration("1d2h"), Some(Duration::from_secs(86_400 + 7200)));
        assert_eq!(unit_duration("2w1d"), Some(Duration::from_secs(15 * 86_400)));
        for bad in ["", "s", "5", "5x", "1s1m", "1m1m", "1.5m", "1s.", "-1s"] {
            assert_eq!(unit_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn sendmail_clock() {
        assert_eq!(clock_duration("00:00:01"), Some(Duration::from_secs(1)));
        assert_eq!(clock_duration("01:02:03"), Some(Duration::from_secs(3723)));
        assert_eq!(clock_duration("2+03:04:05"), Some(Duration::from_secs(2 * 86_400 + 11_045)));
        for bad in ["", "1:2", "00:60:00", "00:00:00:00", "x+00:00:00", "00:00:1x"] {
            assert_eq!(clock_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn cipher_classes() {
        for (suite, class) in [
            ("TLS_AES_256_GCM_SHA384", CipherClass::Aes256Gcm),
            ("TLS_AES_128_GCM_SHA256", CipherClass::Aes128Gcm),
            ("TLS_CHACHA20_POLY1305_SHA256", CipherClass::Chacha20Poly1305),
            ("ECDHE-RSA-AES256-GCM-SHA384", CipherClass::Aes256Gcm),
            ("ECDHE-RSA-CHACHA20-POLY1305", CipherClass::Chacha20Poly1305),
            ("ECDHE_X25519__RSA_PSS_RSAE_SHA256__AES_256_GCM", CipherClass::Aes256Gcm),
            ("ECDHE_ECDSA_AES_256_GCM_SHA384", CipherClass::Aes256Gcm),
            ("ECDHE-RSA-AES256-SHA384", CipherClass::AesCbc),
            ("AES128-SHA", CipherClass::AesCbc),
            ("TLS_AES_128_CCM_SHA256", CipherClass::AesCcm),
            ("DES-CBC3-SHA", CipherClass::TripleDes),
            ("RC4-MD5", CipherClass::Rc4),
            ("CAMELLIA256-SHA", CipherClass::Camellia),
            ("NULL-SHA", CipherClass::Other),
            ("<script>", CipherClass::Other),
        ] {
            assert_eq!(CipherClass::of_suite(suite), class, "{suite}");
        }
        assert_eq!(CipherClass::of_suite(&"A".repeat(100)), CipherClass::Other);
    }

    #[test]
    fn protocols() {
        for (text, protocol) in [
            ("TLSv1.3", TlsProtocol::Tls13),
            ("TLS1.3", TlsProtocol::Tls13),
            ("TLSv1.2", TlsProtocol::Tls12),
            ("TLSv1", TlsProtocol::Tls10),
            ("TLS1.0", TlsProtocol::Tls10),
            ("TLSv1.1", TlsProtocol::Tls11),
            ("SSLv3", TlsProtocol::Ssl3),
            ("TLSv9", TlsProtocol::Other),
            ("", TlsProtocol::Other),
        ] {
            assert_eq!(TlsProtocol::parse(text), protocol, "{text}");
        }
    }

    #[test]
    fn auth_methods() {
        assert_eq!(AuthMethod::parse("LOGIN"), AuthMethod::Login);
        assert_eq!(AuthMethod::parse("cram-md5"), AuthMethod::CramMd5);
        assert_eq!(AuthMethod::parse("SCRAM-SHA-256"), AuthMethod::ScramSha256);
        assert_eq!(AuthMethod::parse("bob@example.com"), AuthMethod::Other);
        assert_eq!(AuthMethod::from_authenticator("dovecot_plain"), AuthMethod::Plain);
        assert_eq!(AuthMethod::from_authenticator("plain_server"), AuthMethod::Plain);
        assert_eq!(AuthMethod::from_authenticator("login_server"), AuthMethod::Login);
        assert_eq!(AuthMethod::from_authenticator("cram_md5"), AuthMethod::CramMd5);
        assert_eq!(AuthMethod::from_authenticator("my_auth"), AuthMethod::Other);
    }

    #[test]
    fn fields() {
        assert_eq!(field("S=510 M8S=0", "S=", false), Some("510"));
        assert_eq!(field("size=473, nrcpt=1 (queue active)", "nrcpt=", true), Some("1"));
        assert_eq!(field("a=1", "b=", false), None);
    }
}
