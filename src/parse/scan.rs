//! Small byte-level helpers shared by the MTA parsers.

use crate::model::{scan_reply, Direction, Phase, Reply};
use memchr::memmem;

pub fn find(haystack: &str, needle: &str) -> Option<usize> {
    memmem::find(haystack.as_bytes(), needle.as_bytes())
}

pub fn rfind(haystack: &str, needle: &str) -> Option<usize> {
    memmem::rfind(haystack.as_bytes(), needle.as_bytes())
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
    if find(text, " said: ").is_some() {
        return true;
    }
    memmem::find_iter(text.as_bytes(), b": ")
        .any(|at| matches!(scan_reply(&text[at + 2..]), Some((Some(_), Some(_), _))))
}

/// Splits `word` off the front of `text` at the first occurrence of `sep`.
pub fn split_once<'a>(text: &'a str, sep: &str) -> Option<(&'a str, &'a str)> {
    let at = find(text, sep)?;
    Some((&text[..at], &text[at + sep.len()..]))
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
    }
}
