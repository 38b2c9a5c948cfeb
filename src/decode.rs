//! Line formats: what wraps the log text before the syslog envelope.
//!
//! Owns turning one framed line of a source into the log entry it carries:
//!
//! * `plain` — the line is the log text (read lossily: invalid UTF-8 is
//!   replaced, never dropped).
//! * `cri` — the format containerd and CRI-O write under `/var/log/pods`
//!   and `/var/log/containers`: `2026-11-28T17:35:01.123456789Z stdout F
//!   <text>`. A `P` (partial) line is held and joined with the following
//!   ones of the same stream up to the `F` line that ends it.
//! * `docker` — Docker's `json-file` driver: `{"log":"<text>\n",
//!   "stream":"stdout","time":"…"}`. A `log` value without the final `\n`
//!   is a partial line (Docker splits lines at 16 KiB), joined likewise.
//! * `journald-json` — `journalctl -o json` output: `MESSAGE` (a string,
//!   or an array of byte values when it is not valid UTF-8),
//!   `SYSLOG_IDENTIFIER` (else `_COMM`) as the program, `SYSLOG_PID` (else
//!   `_PID`), `__REALTIME_TIMESTAMP` (microseconds since the epoch).
//! * `auto` (the default) — decided per line from the line's first bytes:
//!   `{` with a `MESSAGE`/`__REALTIME_TIMESTAMP` key is journald, `{` with a
//!   `log` key is Docker, an RFC 3339 timestamp followed by ` stdout `/`
//!   stderr ` and `F`/`P` is CRI, anything else plain.
//!
//! A line that is not in a source's explicitly configured format is
//! [`Entry::Invalid`] (counted as unrecognized); in `auto` it is plain text.
//! Joined partial lines are capped at the source's maximal line length,
//! like any other line. A [`Decoder`] is per source: it holds the partial
//! lines, nothing else.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

/// The `format:` setting of a source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    #[default]
    Auto,
    Plain,
    Cri,
    Docker,
    JournaldJson,
}

/// One decoded log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry<'a> {
    /// Log text as the MTA (or syslog) wrote it: the envelope is still on it.
    Text(Cow<'a, str>),
    /// A journald record: program and message are separate fields.
    Journal {
        program: String,
        pid: Option<String>,
        message: String,
        /// `__REALTIME_TIMESTAMP`, microseconds since the epoch.
        realtime_us: Option<u64>,
    },
    /// Not in the source's configured format.
    Invalid,
}

/// The decoder of one source.
#[derive(Debug)]
pub struct Decoder {
    format: Format,
    max_line: usize,
    /// Partial CRI/Docker lines being joined, per stream (stdout, stderr),
    /// as bytes: a runtime may cut a line inside a UTF-8 character, so the
    /// text is read (lossily) only once the line is whole.
    partial: [Vec<u8>; 2],
}

impl Decoder {
    pub fn new(format: Format, max_line: usize) -> Self {
        Decoder { format, max_line: max_line.max(1), partial: [Vec::new(), Vec::new()] }
    }

    /// Decodes one framed line. `None` when it was a partial line that is
    /// held until the rest arrives.
    pub fn decode<'a>(&mut self, raw: &'a [u8]) -> Option<Entry<'a>> {
        let format = match self.format {
            Format::Auto => sniff(raw),
            explicit => explicit,
        };
        match format {
            Format::Auto | Format::Plain => Some(Entry::Text(lossy(raw))),
            Format::Cri => match cri(raw) {
                Some((stream, partial, text)) => self.join(stream, partial, text),
                None => self.invalid(raw),
            },
            Format::Docker => match docker(raw) {
                Some((stream, text)) => {
                    let (text, partial) = match text.strip_suffix('\n') {
                        Some(line) => (line.strip_suffix('\r').unwrap_or(line), false),
                        None => (text.as_str(), true),
                    };
                    self.join(stream, partial, text.as_bytes()).map(into_owned)
                }
                None => self.invalid(raw),
            },
            Format::JournaldJson => match journal(raw) {
                Some(entry) => Some(entry),
                None => self.invalid(raw),
            },
        }
    }

    /// Hands out what partial lines are still held: the input ended without
    /// the lines that would have completed them.
    pub fn flush(&mut self) -> Vec<Entry<'static>> {
        let max = self.max_line;
        self.partial
            .iter_mut()
            .filter(|p| !p.is_empty())
            .map(|p| Entry::Text(Cow::Owned(text_of(std::mem::take(p), max))))
            .collect()
    }

    fn invalid<'a>(&self, raw: &'a [u8]) -> Option<Entry<'a>> {
        match self.format {
            Format::Auto => Some(Entry::Text(lossy(raw))),
            _ => Some(Entry::Invalid),
        }
    }

    /// Appends a chunk to its stream's partial line; a final chunk hands out
    /// the whole line.
    fn join<'a>(&mut self, stream: usize, partial: bool, text: &'a [u8]) -> Option<Entry<'a>> {
        let held = &mut self.partial[stream];
        if !partial && held.is_empty() {
            // Framing already cut the raw line; this only matters when the
            // decoder is fed lines from elsewhere (after an empty partial).
            if text.len() > self.max_line {
                return Some(Entry::Text(Cow::Owned(text_of(text[..self.max_line].to_vec(), self.max_line))));
            }
            return Some(Entry::Text(lossy(text)));
        }
        let room = self.max_line.saturating_sub(held.len());
        held.extend_from_slice(&text[..text.len().min(room)]);
        if partial {
            None
        } else {
            Some(Entry::Text(Cow::Owned(text_of(std::mem::take(held), self.max_line))))
        }
    }
}

/// A joined line as text: without a copy when it is valid UTF-8 (the usual
/// case), lossily otherwise. Each invalid byte becomes a three-byte
/// replacement character, so lossy text is cut back to `max` bytes.
fn text_of(bytes: Vec<u8>, max: usize) -> String {
    match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => {
            let mut text = String::from_utf8_lossy(err.as_bytes()).into_owned();
            if text.len() > max {
                let mut cut = max;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
            }
            text
        }
    }
}

/// Bytes as text, invalid UTF-8 replaced. Nearly every log line is valid,
/// so the check comes first and is the fast one: `simdutf8` takes about
/// 110 instructions on a 210-byte genlog.py line where
/// `std::str::from_utf8` took 200 (and `String::from_utf8_lossy` alone,
/// which walks every byte, a sixth of the whole per-line cost). Same answer.
pub fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    match simdutf8::basic::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

fn into_owned(entry: Entry<'_>) -> Entry<'static> {
    match entry {
        Entry::Text(text) => Entry::Text(Cow::Owned(text.into_owned())),
        Entry::Journal { program, pid, message, realtime_us } => Entry::Journal { program, pid, message, realtime_us },
        Entry::Invalid => Entry::Invalid,
    }
}

/// The format of one line in `auto` mode, from its first bytes.
fn sniff(raw: &[u8]) -> Format {
    match raw.first() {
        Some(b'{') => {
            let has = |key: &[u8]| memchr::memmem::find(raw, key).is_some();
            if has(b"\"MESSAGE\":") || has(b"\"__REALTIME_TIMESTAMP\":") {
                Format::JournaldJson
            } else if has(b"\"log\":") {
                Format::Docker
            } else {
                Format::Plain
            }
        }
        Some(b'0'..=b'9') if cri(raw).is_some() => Format::Cri,
        _ => Format::Plain,
    }
}

/// `TIMESTAMP STREAM TAG TEXT` → (stream index, partial, text).
fn cri(raw: &[u8]) -> Option<(usize, bool, &[u8])> {
    let ts_end = memchr::memchr(b' ', raw)?;
    let ts = &raw[..ts_end];
    if ts.len() < 20 || ts[4] != b'-' || ts[10] != b'T' || !ts[..4].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let rest = &raw[ts_end + 1..];
    let (stream, rest) = if let Some(r) = rest.strip_prefix(b"stdout ") {
        (0, r)
    } else if let Some(r) = rest.strip_prefix(b"stderr ") {
        (1, r)
    } else {
        return None;
    };
    // The tag is `F` or `P`, possibly with more flags after a `:`.
    let tag_end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    let partial = match rest[..tag_end].split(|&b| b == b':').next() {
        Some(b"F") => false,
        Some(b"P") => true,
        _ => return None,
    };
    let text = rest.get(tag_end + 1..).unwrap_or(b"");
    Some((stream, partial, text))
}

#[derive(Deserialize)]
struct DockerLine {
    log: String,
    #[serde(default)]
    stream: Option<String>,
}

fn docker(raw: &[u8]) -> Option<(usize, String)> {
    let line: DockerLine = serde_json::from_slice(raw).ok()?;
    let stream = usize::from(line.stream.as_deref() == Some("stderr"));
    Some((stream, line.log))
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct JournalRecord {
    #[serde(default)]
    MESSAGE: Value,
    #[serde(default)]
    SYSLOG_IDENTIFIER: Value,
    #[serde(default)]
    _COMM: Value,
    #[serde(default)]
    SYSLOG_PID: Value,
    #[serde(default)]
    _PID: Value,
    #[serde(default)]
    __REALTIME_TIMESTAMP: Value,
}

fn journal(raw: &[u8]) -> Option<Entry<'static>> {
    let record: JournalRecord = serde_json::from_slice(raw).ok()?;
    let message = journal_text(&record.MESSAGE)?;
    let program = journal_text(&record.SYSLOG_IDENTIFIER).or_else(|| journal_text(&record._COMM)).unwrap_or_default();
    let pid = journal_text(&record.SYSLOG_PID).or_else(|| journal_text(&record._PID));
    let realtime_us = journal_text(&record.__REALTIME_TIMESTAMP).and_then(|t| t.parse().ok());
    Some(Entry::Journal { program, pid, message, realtime_us })
}

/// A journald field: a string, an array of byte values (a value that is not
/// printable UTF-8), or an array of strings (a field set several times:
/// the first is used).
fn journal_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(items) if items.iter().all(Value::is_u64) => {
            let bytes: Vec<u8> =
                items.iter().filter_map(Value::as_u64).map(|b| u8::try_from(b).unwrap_or(b'?')).collect();
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
        Value::Array(items) => items.first().and_then(journal_text),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(entry: Option<Entry<'_>>) -> Option<String> {
        match entry {
            Some(Entry::Text(t)) => Some(t.into_owned()),
            other => panic!("not text: {other:?}"),
        }
    }

    #[test]
    fn plain_lines_are_read_lossily() {
        let mut d = Decoder::new(Format::Plain, 1024);
        assert_eq!(
            text(d.decode(b"Nov  8 17:35:01 mx1 postfix/smtp[1]: x")).as_deref(),
            Some("Nov  8 17:35:01 mx1 postfix/smtp[1]: x")
        );
        assert_eq!(text(d.decode(b"caf\xe9 \xff")).as_deref(), Some("caf\u{fffd} \u{fffd}"));
        // An explicit plain source does not look inside JSON.
        assert_eq!(text(d.decode(b"{\"log\":\"x\\n\"}")).as_deref(), Some("{\"log\":\"x\\n\"}"));
    }

    #[test]
    fn cri_lines_and_partials() {
        let mut d = Decoder::new(Format::Cri, 1024);
        assert_eq!(
            text(d.decode(b"2026-11-28T17:35:01.123456789Z stdout F Nov 28 17:35:01 mx1 postfix/smtp[1]: x"))
                .as_deref(),
            Some("Nov 28 17:35:01 mx1 postfix/smtp[1]: x")
        );
        assert_eq!(d.decode(b"2026-11-28T17:35:01.1Z stdout P 2026-11-28 17:35:01 1tGRwu-00 "), None);
        assert_eq!(d.decode(b"2026-11-28T17:35:01.2Z stderr F other stream"), Some(Entry::Text("other stream".into())));
        assert_eq!(d.decode(b"2026-11-28T17:35:01.3Z stdout P 0DBc-0s => a@b "), None);
        assert_eq!(
            text(d.decode(b"2026-11-28T17:35:01.4Z stdout F C=\"250 OK\"")).as_deref(),
            Some("2026-11-28 17:35:01 1tGRwu-00 0DBc-0s => a@b C=\"250 OK\"")
        );
        assert_eq!(text(d.decode(b"2026-11-28T17:35:01Z stdout F")).as_deref(), Some(""));
        assert_eq!(d.decode(b"not cri at all"), Some(Entry::Invalid));
        // A partial line the input never completed is flushed at the end.
        assert_eq!(d.decode(b"2026-11-28T17:35:01.5Z stdout P dangling"), None);
        assert_eq!(d.flush(), vec![Entry::Text("dangling".into())]);
        assert!(d.flush().is_empty());
    }

    #[test]
    fn joined_partials_are_capped() {
        let mut d = Decoder::new(Format::Cri, 8);
        assert_eq!(d.decode(b"2026-11-28T17:35:01Z stdout P 12345"), None);
        assert_eq!(d.decode(b"2026-11-28T17:35:01Z stdout P 67890"), None);
        assert_eq!(text(d.decode(b"2026-11-28T17:35:01Z stdout F abc")).as_deref(), Some("12345678"));
        // Invalid bytes read lossily stay within the cap too (each would
        // be three bytes of replacement character).
        assert_eq!(d.decode(b"2026-11-28T17:35:01Z stdout P \xff\xff\xff"), None);
        let joined = text(d.decode(b"2026-11-28T17:35:01Z stdout F \xfe\xfe\xfe\xfe\xfe")).unwrap();
        assert_eq!(joined, "\u{fffd}\u{fffd}");
    }

    #[test]
    fn a_character_cut_between_partial_lines_is_joined_whole() {
        // "é" is C3 A9; the runtime cut the line between the two bytes.
        let mut d = Decoder::new(Format::Cri, 1024);
        assert_eq!(d.decode(b"2026-11-28T17:35:01Z stdout P caf\xc3"), None);
        assert_eq!(text(d.decode(b"2026-11-28T17:35:01Z stdout F \xa9 ok")).as_deref(), Some("caf\u{e9} ok"));
        // And a line the input ended inside a character is read lossily.
        assert_eq!(d.decode(b"2026-11-28T17:35:01Z stdout P caf\xc3"), None);
        assert_eq!(d.flush(), vec![Entry::Text("caf\u{fffd}".into())]);
    }

    #[test]
    fn docker_json_file() {
        let mut d = Decoder::new(Format::Docker, 1024);
        assert_eq!(
            text(d.decode(br#"{"log":"Nov 28 17:35:01 mx1 postfix/smtp[1]: status=sent (250 2.0.0 \"Ok\")\n","stream":"stdout","time":"2026-11-28T17:35:01.1Z"}"#)).as_deref(),
            Some("Nov 28 17:35:01 mx1 postfix/smtp[1]: status=sent (250 2.0.0 \"Ok\")")
        );
        assert_eq!(d.decode(br#"{"log":"first half ","stream":"stderr","time":"t"}"#), None);
        assert_eq!(
            text(d.decode(br#"{"log":"second\r\n","stream":"stderr","time":"t"}"#)).as_deref(),
            Some("first half second")
        );
        assert_eq!(d.decode(b"{broken"), Some(Entry::Invalid));
    }

    #[test]
    fn journald_records() {
        let mut d = Decoder::new(Format::JournaldJson, 1024);
        let entry = d.decode(br#"{"__CURSOR":"s=1","__REALTIME_TIMESTAMP":"1795887301123456","_PID":"77","SYSLOG_IDENTIFIER":"postfix/smtpd","SYSLOG_PID":"3967801","MESSAGE":"NOQUEUE: reject: RCPT from x[1.2.3.4]: 554 5.7.1 <a@b>: Relay access denied","PRIORITY":"6"}"#);
        assert_eq!(
            entry,
            Some(Entry::Journal {
                program: "postfix/smtpd".into(),
                pid: Some("3967801".into()),
                message: "NOQUEUE: reject: RCPT from x[1.2.3.4]: 554 5.7.1 <a@b>: Relay access denied".into(),
                realtime_us: Some(1_795_887_301_123_456),
            })
        );
        // MESSAGE as bytes (not valid UTF-8), program from _COMM.
        let entry = d.decode(br#"{"MESSAGE":[104,105,255],"_COMM":"exim4","_PID":"9"}"#);
        assert_eq!(
            entry,
            Some(Entry::Journal {
                program: "exim4".into(),
                pid: Some("9".into()),
                message: "hi\u{fffd}".into(),
                realtime_us: None
            })
        );
        assert_eq!(d.decode(br#"{"MESSAGE":null}"#), Some(Entry::Invalid));
        assert_eq!(d.decode(b"Nov 28 17:35:01 mx1 postfix/smtp[1]: x"), Some(Entry::Invalid));
    }

    #[test]
    fn auto_detects_per_line() {
        let mut d = Decoder::new(Format::Auto, 1024);
        assert!(matches!(d.decode(br#"{"MESSAGE":"x","SYSLOG_IDENTIFIER":"exim"}"#), Some(Entry::Journal { .. })));
        assert_eq!(text(d.decode(br#"{"log":"y\n","stream":"stdout"}"#)).as_deref(), Some("y"));
        assert_eq!(text(d.decode(b"2026-11-28T17:35:01.1Z stdout F z")).as_deref(), Some("z"));
        for plain in [
            "2026-11-28T17:35:01.123456+00:00 mx1 postfix/smtpd[1]: x",
            "2026-11-28 17:35:01 1tGRwu-000DBc-0s Completed",
            "{not json but text",
        ] {
            assert_eq!(text(d.decode(plain.as_bytes())).as_deref(), Some(plain));
        }
    }
}
