//! Replies from programs no built-in parser knows, counted as `mta="other"`:
//! user-defined parsers from the config file, and an opt-in catch-all rule.
//!
//! * **Custom parsers** (`parsers.custom`): a regex with named groups
//!   `code` (`550`), `enhanced` (`5.1.1`), `text`, and optionally
//!   `direction` (a value starting with `in` or `out`) and `phase` (an SMTP
//!   command word). At least one of `code` and `enhanced` must match a
//!   valid code for the line to count; otherwise the next parser is tried.
//!   A parser with `program` only sees lines whose syslog program is exactly
//!   that; without it, it sees every line that no built-in parser claimed
//!   (including lines without a syslog envelope). Each regex is compiled
//!   once at start, with a size cap, so a pathological pattern is a config
//!   error instead of a memory problem.
//! * **Generic rule** (`parsers.generic: true`): a line from an unknown
//!   program (or without a syslog envelope, in no format we know) whose
//!   message has a basic *and* an enhanced code (`550 5.1.1`,
//!   `421-4.7.0`) in reply position — at its start, or right after `: `,
//!   `="` or `,` — counts that reply. Which side gave it is a guess from the
//!   wording before it: `said`/`remote` mean a remote server's reply
//!   (outbound), anything else a reply this host gave (inbound). The phase
//!   is `unknown`. Off by default: an unknown program's numbers are only
//!   counted when the user says they are replies.
//!
//! Trust: the whole message is a stranger's text here; the generic rule
//! takes only the first reply in position and never a delivery outcome.

use regex::{Regex, RegexBuilder};
use serde::Deserialize;

use super::Record;
use crate::model::{scan_reply, Direction, EnhancedStatus, Mta, Phase, Reply, ReplyCode};

/// Compiled-program size cap per custom regex (the `regex` crate's
/// `size_limit`); a pattern that needs more is refused at start.
pub const MAX_REGEX_BYTES: usize = 1 << 20;
/// Longest pattern text accepted.
pub const MAX_PATTERN_LEN: usize = 4096;
/// Most custom parsers accepted: each one can cost a regex run per line.
pub const MAX_CUSTOM_PARSERS: usize = 64;

/// `parsers:` in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ParsersSpec {
    /// Count `NNN X.Y.Z` replies from unknown programs as `mta="other"`.
    pub generic: bool,
    /// User-defined parsers, tried in order.
    pub custom: Vec<CustomSpec>,
}

/// One user-defined parser as written in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomSpec {
    /// For log messages about this parser.
    pub name: String,
    /// Only lines from this syslog program (exact match).
    #[serde(default)]
    pub program: Option<String>,
    /// Regex with named groups `code`, `enhanced`, `text`, `direction`, `phase`.
    pub regex: String,
    /// Used when the regex has no `direction` group (or it does not match).
    #[serde(default)]
    pub direction: Option<DirectionSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DirectionSpec {
    Inbound,
    Outbound,
}

impl From<DirectionSpec> for Direction {
    fn from(spec: DirectionSpec) -> Self {
        match spec {
            DirectionSpec::Inbound => Direction::Inbound,
            DirectionSpec::Outbound => Direction::Outbound,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParserError {
    #[error("parsers.custom[{index}] ({name}): {message}")]
    Invalid { index: usize, name: String, message: String },
    #[error("parsers.custom has {0} entries; at most {MAX_CUSTOM_PARSERS} are allowed")]
    TooMany(usize),
}

#[derive(Debug)]
struct CustomParser {
    program: Option<String>,
    regex: Regex,
    direction: Direction,
}

/// The parsers for lines no built-in MTA parser claims; shared by every
/// source, immutable after start.
#[derive(Debug, Default)]
pub struct OtherParsers {
    generic: bool,
    custom: Vec<CustomParser>,
}

impl OtherParsers {
    /// Compiles the config's parsers; errors name the parser and what to fix.
    pub fn compile(spec: &ParsersSpec) -> Result<Self, ParserError> {
        if spec.custom.len() > MAX_CUSTOM_PARSERS {
            return Err(ParserError::TooMany(spec.custom.len()));
        }
        let mut custom = Vec::with_capacity(spec.custom.len());
        for (index, c) in spec.custom.iter().enumerate() {
            let invalid = |message: String| ParserError::Invalid { index, name: c.name.clone(), message };
            if c.regex.len() > MAX_PATTERN_LEN {
                return Err(invalid(format!("the regex is longer than {MAX_PATTERN_LEN} bytes")));
            }
            let regex = RegexBuilder::new(&c.regex)
                .size_limit(MAX_REGEX_BYTES)
                .dfa_size_limit(MAX_REGEX_BYTES)
                .build()
                .map_err(|e| invalid(format!("the regex does not compile: {e}")))?;
            let groups: Vec<&str> = regex.capture_names().flatten().collect();
            if !groups.contains(&"code") && !groups.contains(&"enhanced") {
                return Err(invalid(
                    "the regex needs a named group `code` or `enhanced`, e.g. (?P<code>[245]\\d\\d)".into(),
                ));
            }
            if let Some(unknown) =
                groups.iter().find(|g| !["code", "enhanced", "text", "direction", "phase"].contains(g))
            {
                return Err(invalid(format!(
                    "unknown group `{unknown}`; the groups are code, enhanced, text, direction, phase"
                )));
            }
            let direction = c.direction.map_or(Direction::Inbound, Direction::from);
            custom.push(CustomParser { program: c.program.clone(), regex, direction });
        }
        Ok(OtherParsers { generic: spec.generic, custom })
    }

    /// Whether any rule is configured (otherwise unknown lines are not looked at).
    pub fn is_active(&self) -> bool {
        self.generic || !self.custom.is_empty()
    }

    /// A line from `program` (`None`: a line without a syslog envelope) that
    /// no built-in parser claimed. `None` when no rule counts it.
    pub fn parse<'a>(&self, program: Option<&str>, message: &'a str) -> Option<Record<'a>> {
        for parser in &self.custom {
            if parser.program.as_deref().is_some_and(|p| Some(p) != program) {
                continue;
            }
            if let Some(reply) = parser.reply(message) {
                return Some(Record { reply: Some(reply), ..Record::new(Mta::Other) });
            }
        }
        if self.generic {
            let reply = generic_reply(message)?;
            return Some(Record { reply: Some(reply), ..Record::new(Mta::Other) });
        }
        None
    }
}

impl CustomParser {
    fn reply<'a>(&self, message: &'a str) -> Option<Reply<'a>> {
        let caps = self.regex.captures(message)?;
        let code = caps.name("code").and_then(|m| ReplyCode::parse(m.as_str().as_bytes()));
        let enhanced = caps.name("enhanced").and_then(|m| EnhancedStatus::parse(m.as_str().as_bytes()));
        if code.is_none() && enhanced.is_none() {
            return None;
        }
        let direction = match caps.name("direction").map(|m| m.as_str().to_ascii_lowercase()) {
            Some(d) if d.starts_with("in") => Direction::Inbound,
            Some(d) if d.starts_with("out") => Direction::Outbound,
            _ => self.direction,
        };
        let phase = caps.name("phase").map_or(Phase::Unknown, |m| Phase::from_command(m.as_str()));
        let text = caps.name("text").map_or("", |m| m.as_str());
        Some(Reply { code, enhanced, text, direction, phase })
    }
}

/// The first basic-and-enhanced reply in reply position.
fn generic_reply(message: &str) -> Option<Reply<'_>> {
    let b = message.as_bytes();
    let starts = std::iter::once(0).chain(memchr::memchr3_iter(b':', b'"', b',', b).filter_map(|at| match b[at] {
        b':' if b.get(at + 1) == Some(&b' ') => Some(at + 2),
        b'"' if at > 0 && b[at - 1] == b'=' => Some(at + 1),
        b',' => Some(at + 1),
        _ => None,
    }));
    for start in starts {
        if let Some((code @ Some(_), enhanced @ Some(_), text_at)) = scan_reply(&message[start..]) {
            let before = message[..start].to_ascii_lowercase();
            let direction = if before.contains("said") || before.contains("remote") {
                Direction::Outbound
            } else {
                Direction::Inbound
            };
            let text = &message[start + text_at..];
            return Some(Reply { code, enhanced, text, direction, phase: Phase::Unknown });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> ParsersSpec {
        serde_saphyr::from_str(yaml).expect("spec")
    }

    /// (code, enhanced, direction, phase, text)
    type Codes<'a> = (Option<u16>, Option<String>, Direction, Phase, &'a str);

    fn codes(record: Option<Record<'_>>) -> Option<Codes<'_>> {
        let reply = record?.reply?;
        Some((
            reply.code.map(|c| c.value()),
            reply.enhanced.map(|e| e.to_string()),
            reply.direction,
            reply.phase,
            reply.text,
        ))
    }

    #[test]
    fn the_generic_rule_is_opt_in() {
        let line = "error,relay=::ffff:1.2.3.4,from=<a@b>,to=<c@d>: 550 5.1.1 User unknown.";
        assert_eq!(OtherParsers::default().parse(Some("courieresmtpd"), line), None);
        let on = OtherParsers::compile(&spec("generic: true")).unwrap();
        assert!(on.is_active());
        assert_eq!(
            codes(on.parse(Some("courieresmtpd"), line)),
            Some((Some(550), Some("5.1.1".into()), Direction::Inbound, Phase::Unknown, "User unknown."))
        );
        assert_eq!(codes(on.parse(Some("relayd"), "msg=\"421 4.7.0 try later\" host=x")).map(|c| c.0), Some(Some(421)));
        assert_eq!(
            codes(on.parse(Some("mailrelay"), "host mx said: 451-4.7.1 greylisted")).map(|c| c.2),
            Some(Direction::Outbound)
        );
        // A basic code alone, or numbers out of reply position, are not replies.
        assert_eq!(on.parse(Some("qmail"), "1744358400.123456 qmail-smtpd: 421 blocked: ip 198.51.100.54"), None);
        assert_eq!(on.parse(Some("app"), "version 550 5.1.1 of the tool"), None);
        assert_eq!(on.parse(Some("app"), "x: 4.16.55.1 y"), None);
        // Lines without a syslog envelope too (Exchange's CSV protocol log).
        assert_eq!(
            codes(on.parse(None, "2022-07-20T21:12:06.270Z,EX-1,08DA4F7C11473A60,9,192.168.9.241:25,192.168.9.212:53722,>,535 5.7.3 Authentication unsuccessful,")).map(|c| c.0),
            Some(Some(535))
        );
    }

    #[test]
    fn custom_parsers() {
        let parsers = OtherParsers::compile(&spec(
            r#"
custom:
  - name: exchange
    regex: '^[^,]*,(?:[^,]*,){5}(?P<direction>[<>]),(?P<code>[245]\d\d) (?P<enhanced>[245]\.\d{1,3}\.\d{1,3}) (?P<text>[^,]*)'
    direction: inbound
  - name: qmail
    program: qmail
    regex: 'qmail-smtpd: (?P<code>[245]\d\d) (?P<text>.*)'
"#,
        ))
        .unwrap();
        assert_eq!(
            codes(parsers.parse(None, "2022-07-20T21:12:06.270Z,EXCHANGE-1\\Default Frontend EXCHANGE-1,08DA4F7C11473A60,9,192.168.9.241:25,192.168.9.212:53722,>,535 5.7.3 Authentication unsuccessful,")),
            Some((Some(535), Some("5.7.3".into()), Direction::Inbound, Phase::Unknown, "Authentication unsuccessful"))
        );
        let qmail = "1744358400.123456 qmail-smtpd: 421 blocked: ip 198.51.100.54 listed";
        assert_eq!(codes(parsers.parse(Some("qmail"), qmail)).map(|c| c.0), Some(Some(421)));
        assert_eq!(parsers.parse(Some("other"), qmail), None, "program filter");
        assert_eq!(parsers.parse(Some("qmail"), "qmail-smtpd: 999 nope"), None, "no valid code");
    }

    #[test]
    fn bad_parsers_are_named() {
        let err = OtherParsers::compile(&spec("custom:\n  - name: broken\n    regex: '(?P<code>[245'\n")).unwrap_err();
        assert!(err.to_string().starts_with("parsers.custom[0] (broken): the regex does not compile"), "{err}");
        let err = OtherParsers::compile(&spec("custom:\n  - name: nocode\n    regex: 'x(?P<text>.*)'\n")).unwrap_err();
        assert!(err.to_string().contains("needs a named group `code` or `enhanced`"), "{err}");
        let err = OtherParsers::compile(&spec("custom:\n  - name: typo\n    regex: '(?P<cod>\\d+)(?P<code>\\d)'\n"))
            .unwrap_err();
        assert!(err.to_string().contains("unknown group `cod`"), "{err}");
        let huge = format!("custom:\n  - name: huge\n    regex: '(?P<code>\\d{{3}}){}'\n", "\\w{100}".repeat(40));
        let err = OtherParsers::compile(&spec(&huge)).unwrap_err();
        assert!(err.to_string().contains("huge"), "{err}");
    }
}
