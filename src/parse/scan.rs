//! Small byte-level helpers shared by the MTA parsers.

use crate::model::{scan_reply, Direction, Phase, Reply, ReplyCode};
use memchr::memmem;

/// A substring searcher for a fixed needle, built once. [`find`] (like
/// `memmem::find`) builds one on every call, which on a log line costs more
/// than the search itself: the needles searched on every line use this.
/// `finder!(", ").find(text.as_bytes())`.
macro_rules! finder {
    ($needle:literal) => {{
        static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new($needle));
        &*FINDER
    }};
}
pub(crate) use finder;

pub fn find(haystack: &str, needle: &str) -> Option<usize> {
    memmem::find(haystack.as_bytes(), needle.as_bytes())
}

/// The last occurrence of `needle`. The needles searched from the end are
/// markers near the end of a line (`" (in reply to "`, `"; from=<"`,
/// `" C=\""`): `memrchr` on the needle's first byte that is not a space
/// finds them in a few steps, where `memmem::rfind` (Two-Way from the end,
/// no SIMD) cost about five instructions per byte of the line.
pub fn rfind(haystack: &str, needle: &str) -> Option<usize> {
    let (text, needle) = (haystack.as_bytes(), needle.as_bytes());
    let anchor = needle.iter().position(|&b| b != b' ').unwrap_or(0);
    let Some(&byte) = needle.get(anchor) else { return Some(text.len()) };
    let mut end = text.len();
    while let Some(at) = memchr::memrchr(byte, &text[..end]) {
        if at >= anchor && text[at - anchor..].starts_with(needle) {
            return Some(at - anchor);
        }
        end = at;
    }
    None
}

/// The reply that starts `text`, if `text` starts with a code.
pub fn reply_at(text: &str, direction: Direction, phase: Phase) -> Option<Reply<'_>> {
    let (code, enhanced, at) = scan_reply(text)?;
    Some(Reply { code, enhanced, text: &text[at..], direction, phase })
}

/// Whether a line the parser could not place still seems to carry a reply:
/// a remote `said:` or a basic and enhanced code right after `: `. Such a
/// line is reported as unrecognized rather than silently passed over.
pub fn looks_like_reply(text: &str) -> bool {
    after_colons(text, |_, enhanced| enhanced.is_some())
}

/// Like [`looks_like_reply`], but a basic code alone after `: ` is enough:
/// for MTAs (Exim) whose replies often carry no enhanced code.
pub fn looks_like_basic_reply(text: &str) -> bool {
    after_colons(text, |_, _| true)
}

/// Splits `word` off the front of `text` at the first occurrence of `sep`.
pub fn split_once<'a>(text: &'a str, sep: &str) -> Option<(&'a str, &'a str)> {
    let at = find(text, sep)?;
    Some((&text[..at], &text[at + sep.len()..]))
}

/// Whether some `: ` in `text` ends a ` said` or starts a basic code that
/// `accept` takes (given whether an enhanced code follows it). One pass
/// over the `:`s: most lines this runs on carry nothing.
fn after_colons(text: &str, accept: impl Fn(ReplyCode, Option<crate::model::EnhancedStatus>) -> bool) -> bool {
    let bytes = text.as_bytes();
    memchr::memchr_iter(b':', bytes).any(|at| {
        bytes.get(at + 1) == Some(&b' ')
            && (bytes[..at].ends_with(b" said")
                || matches!(bytes.get(at + 2), Some(b'2' | b'4' | b'5'))
                    && matches!(scan_reply(&text[at + 2..]), Some((Some(code), enhanced, _)) if accept(code, enhanced)))
    })
}

/// How far the field walkers look for the end of a `<…>`, `"…"`, `(…)` or
/// `[…]` unit. Four times the longest address SMTP allows (a path is at
/// most 256 bytes, RFC 5321 §4.5.3.1.3; the MTAs log only valid addresses,
/// and Exim's `H=(…)` only a syntactically valid HELO name), and what keeps
/// a line full of units that never close linear: each opener costs at most
/// this much, not the rest of the line. Before, a 64 KiB line of `a=(` or
/// `a=< ` took seconds to parse (found with crafted lines; tests/hostile.rs
/// keeps them).
pub const MAX_UNIT: usize = 1024;

/// The part of `bytes` a unit starting there may span: see [`MAX_UNIT`].
pub fn unit_window(bytes: &[u8]) -> &[u8] {
    &bytes[..bytes.len().min(MAX_UNIT)]
}

/// Length of the `"…"` unit at the start of `bytes` (backslash escapes
/// honoured), including both quotes. `None` when it is not closed.
pub fn quoted_len(bytes: &[u8]) -> Option<usize> {
    if bytes.first() != Some(&b'"') {
        return None;
    }
    let mut pos = 1;
    while pos < bytes.len() {
        match bytes[pos] {
            b'\\' => pos += 2,
            b'"' => return Some(pos + 1),
            _ => pos += 1,
        }
    }
    None
}

/// Length of the `<…>` unit at the start of `bytes`, including the angle
/// brackets. A quoted local part (`<"a>b"@c>`) is kept whole, so text a
/// stranger put inside an address cannot end it early.
pub fn angle_len(bytes: &[u8]) -> Option<usize> {
    if bytes.first() != Some(&b'<') {
        return None;
    }
    let mut pos = 1;
    while pos < bytes.len() {
        match bytes[pos] {
            b'"' => pos += quoted_len(&bytes[pos..]).unwrap_or(bytes.len() - pos),
            b'>' => return Some(pos + 1),
            _ => pos += 1,
        }
    }
    None
}

/// The value of a `"…"` unit without its quotes (escapes left as logged).
pub fn unquote(text: &str) -> Option<&str> {
    let len = quoted_len(text.as_bytes())?;
    Some(&text[1..len - 1])
}

/// Counts the addresses of a comma-separated recipient list as Sendmail
/// and OpenSMTPD write it (`<a>,<b>,c@d`), up to the first `, ` (the next
/// field) or the end. Returns the count and the bytes the list spans.
pub fn address_list(text: &str) -> (u32, usize) {
    let bytes = text.as_bytes();
    let mut pos = 0;
    let mut count = 0u32;
    while pos < bytes.len() {
        let unit = match bytes[pos] {
            b'<' => angle_len(unit_window(&bytes[pos..])),
            b'"' => quoted_len(unit_window(&bytes[pos..])),
            _ => None,
        };
        pos += unit.unwrap_or(0);
        while pos < bytes.len() && bytes[pos] != b',' && bytes[pos] != b' ' {
            pos += 1;
        }
        count = count.saturating_add(1);
        if bytes.get(pos) == Some(&b',') && !matches!(bytes.get(pos + 1), None | Some(b' ')) {
            pos += 1;
            continue;
        }
        break;
    }
    (count, pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_like_text() {
        assert!(looks_like_reply("x: host a[1.2.3.4] said: 550 no"));
        assert!(looks_like_reply("something odd: 550 5.1.1 User unknown"));
        assert!(!looks_like_reply("warning: Message delivery request rate limit exceeded: 334 from x"));
        assert!(!looks_like_reply("statistics: max connection rate 2/60s for (smtp:1.2.3.4)"));
        assert!(!looks_like_reply("DNSBL rank 2 for [1.2.3.4]:55382"));
        assert!(looks_like_basic_reply("odd: 550 Not that one"));
        assert!(!looks_like_basic_reply("odd: 5500 x"));
        assert!(!looks_like_basic_reply("port 587 is closed"));
    }

    #[test]
    fn rfind_finds_the_last_occurrence() {
        let text = "a (in reply to x) b (in reply to RCPT TO command)";
        assert_eq!(rfind(text, " (in reply to "), Some(19));
        assert_eq!(rfind(text, "a ("), Some(0));
        assert_eq!(rfind(text, "command)"), Some(text.len() - 8));
        assert_eq!(rfind(text, " (in reply to RCPT TO command) "), None);
        assert_eq!(rfind("x;; from=<a>; from=<b>", "; from=<"), Some(12));
        assert_eq!(rfind("abc", ""), Some(3));
        assert_eq!(rfind("abc", "  "), None);
        assert_eq!(rfind("", "x"), None);
        for (hay, needle) in [("aaaa", "aa"), ("  x  x", " x"), ("ab ab", " ab"), ("x", "  ")] {
            assert_eq!(rfind(hay, needle), memmem::rfind(hay.as_bytes(), needle.as_bytes()), "{hay:?} {needle:?}");
        }
    }

    #[test]
    fn units() {
        assert_eq!(quoted_len(br#""a\"b" rest"#), Some(6));
        assert_eq!(quoted_len(b"\"open"), None);
        assert_eq!(angle_len(b"<\"x>, y\"@z>, next"), Some(11));
        assert_eq!(angle_len(b"<a@b"), None);
        assert_eq!(unquote(r#""250 OK" x"#), Some("250 OK"));
    }

    #[test]
    fn recipient_lists() {
        assert_eq!(address_list("<a@b>,<c@d>, delay=1"), (2, 11));
        assert_eq!(address_list("kweek@glurpp, delay=1"), (1, 12));
        assert_eq!(address_list("<\"x>,<y\"@z>,b@c, stat=Sent"), (2, 15));
        assert_eq!(address_list("root@localhost"), (1, 14));
        assert_eq!(address_list("<a>,<b>, [more], delay=1"), (2, 7));
    }
}
