//! `mta_exporter explain`: what a reply code means, whose problem it is and
//! what fixes it, from the catalogue and the cause rules.
//!
//! Accepts a basic code (`550`), an enhanced code (`5.7.26`, `X.7.26`), both
//! (`550 5.7.26`, `550-5.7.26`), a whole reply text, or a whole log line
//! (the first reply in it is explained). With the text, provider-specific
//! meanings are told apart ("421 4.7.0 [TSS04] …" is Yahoo's) and the cause
//! comes from the same rules the exporter uses.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::text::{class_words, second_digit_words, subject_words, whose_words, wrap_into};
use super::{cause_rules, load_config, Failure, OutputFormat};
use crate::classify::catalogue::{
    catalogue, category_of_basic, class_of_basic, parse_basic, EnhancedKey, Entry, Whose, UNCATALOGUED,
};
use crate::classify::Category;
use crate::model::{scan_reply, Direction, EnhancedStatus, Phase, Reply, ReplyCode};

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A basic code (550), an enhanced code (5.7.26), both, or a whole reply
    /// text or log line (quote it).
    #[arg(value_name = "REPLY")]
    pub reply: Vec<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: OutputFormat,

    /// Take the cause rules from this config file (as the exporter would).
    #[arg(long = "config.file", value_name = "FILE")]
    pub config_file: Option<PathBuf>,
}

const HOW: &str = "give a basic code (550), an enhanced code (5.7.26), both (550 5.7.26), or a whole reply in quotes";

/// What was asked: the codes found and the reply text after them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub code: Option<u16>,
    pub enhanced: Option<EnhancedKey>,
    /// The reply text after the codes, when there is one.
    pub text: Option<String>,
}

/// Reads the codes from what the user typed or pasted. The error is a
/// sentence saying what is wrong and what to give instead.
pub fn parse_query(input: &str) -> Result<Query, String> {
    let input = input.trim();
    if input.is_empty() {
        return Err(format!("nothing to explain; {HOW}"));
    }
    if let Some(query) = codes_at_start(input)? {
        return Ok(query);
    }
    // A reply or log line with something in front: the first reply code
    // that starts a word (after a space or a parenthesis).
    let bytes = input.as_bytes();
    for at in 1..bytes.len() {
        if !matches!(bytes[at - 1], b' ' | b'(' | b'"' | b'\'') {
            continue;
        }
        if let Some((code, enhanced, text_at)) = scan_reply(&input[at..]) {
            return Ok(Query {
                code: code.map(ReplyCode::value),
                enhanced: enhanced.map(EnhancedKey::of),
                text: non_empty(&input[at + text_at..]),
            });
        }
    }
    Err(format!("found no reply code in {input:?}; {HOW}"))
}

/// `550`, `550 5.7.26 text`, `550-5.7.26 text`, `5.7.26 text`, `X.7.26`.
fn codes_at_start(input: &str) -> Result<Option<Query>, String> {
    let (first, rest) = split_token(input);
    if first.bytes().all(|b| b.is_ascii_digit()) {
        let code = match (first.len(), parse_basic(first)) {
            (3, Some(code)) => code,
            (3, None) => {
                return Err(format!(
                    "{first} is not an SMTP reply code: the first digit is 1 to 5 (2 success, 3 intermediate, 4 temporary failure, 5 permanent failure)"
                ))
            }
            _ => return Err(format!("{first} is not a reply code: basic codes have three digits (550); {HOW}")),
        };
        let (second, after) = split_token(rest);
        if looks_enhanced(second) {
            let enhanced =
                EnhancedKey::parse(second.trim_end_matches([':', ',', ';'])).ok_or_else(|| enhanced_problem(second))?;
            return Ok(Some(Query { code: Some(code), enhanced: Some(enhanced), text: non_empty(after) }));
        }
        return Ok(Some(Query { code: Some(code), enhanced: None, text: non_empty(rest) }));
    }
    if looks_enhanced(first) {
        let enhanced =
            EnhancedKey::parse(first.trim_end_matches([':', ',', ';'])).ok_or_else(|| enhanced_problem(first))?;
        return Ok(Some(Query { code: None, enhanced: Some(enhanced), text: non_empty(rest) }));
    }
    Ok(None)
}

/// The first token and the rest; `550-5.7.26` splits after the hyphen.
fn split_token(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    let bytes = text.as_bytes();
    if bytes.len() > 4 && bytes[..3].iter().all(u8::is_ascii_digit) && bytes[3] == b'-' {
        return (&text[..3], &text[4..]);
    }
    match text.find(char::is_whitespace) {
        Some(end) => (&text[..end], text[end..].trim_start()),
        None => (text, ""),
    }
}

fn looks_enhanced(token: &str) -> bool {
    token.contains('.') && token.starts_with(|c: char| c.is_ascii_digit() || c == 'X' || c == 'x')
}

fn enhanced_problem(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let problem = match parts.as_slice() {
        [class, ..] if !matches!(*class, "2" | "4" | "5" | "X" | "x") => {
            format!("an enhanced code starts with 2, 4 or 5 (or X for any class), not {class}")
        }
        [_, subject, _] if subject.parse::<u8>().is_ok_and(|s| s > 7) => {
            format!("subject {subject} is not defined; RFC 3463 subjects are 0 to 7")
        }
        [_, _, detail] if detail.len() > 3 => "the detail has at most three digits".to_string(),
        _ => "an enhanced code is class.subject.detail (5.7.26)".to_string(),
    };
    format!("{token} is not an enhanced status code: {problem}")
}

fn non_empty(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// One catalogue entry as `explain` shows it.
#[derive(Debug, Serialize)]
pub struct Part {
    pub code: String,
    pub meaning: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    pub whose: Whose,
    pub fix: String,
    pub source: String,
}

impl Part {
    fn of(entry: &Entry) -> Part {
        let code = match &entry.enhanced {
            Some(enhanced) => format!("{} {enhanced}", entry.code),
            None => entry.code.clone(),
        };
        Part {
            code,
            meaning: entry.meaning.clone(),
            provider: entry.provider.clone(),
            whose: entry.whose,
            fix: entry.fix.clone(),
            source: entry.source.clone(),
        }
    }
}

/// Everything `explain` says about one reply.
#[derive(Debug, Serialize)]
pub struct Explanation {
    pub code: Option<String>,
    pub enhanced: Option<String>,
    pub text: Option<String>,
    /// `5xx`, or `any` for an `X.` code alone.
    pub class: String,
    pub category: String,
    pub cause: String,
    pub catalogued: bool,
    pub meaning: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    pub whose: Whose,
    pub fix: String,
    /// What to do about the cause, when a reply text decided it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause_fix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The basic and the enhanced code on their own, where they say
    /// something besides the headline.
    pub parts: Vec<Part>,
    /// Provider-specific meanings of these codes (without a reply text to
    /// pick one).
    pub variants: Vec<Part>,
    #[serde(skip)]
    category_words: &'static str,
    #[serde(skip)]
    cause_meaning: Option<String>,
}

/// Explains a query with the given cause rules.
pub fn explain(query: &Query, rules: &crate::classify::CauseRules) -> Explanation {
    let c = catalogue();
    let lookup = c.lookup(query.code, query.enhanced, query.text.as_deref());
    let class = match (query.code, query.enhanced) {
        (Some(code), _) => class_of_basic(code),
        (None, Some(EnhancedKey { class: Some(class), .. })) => format!("{class}xx"),
        _ => "any".to_string(),
    };
    let (category, category_words) = match (query.enhanced, query.code) {
        (Some(e), _) => (Category::of_subject(e.subject), subject_words(e.subject)),
        (None, Some(code)) => (category_of_basic(code), second_digit_words(((code / 10) % 10) as u8)),
        (None, None) => (Category::Other, ""),
    };
    let cause = cause_of(query, rules);
    let cause_entry = c.cause(&cause);
    let best = lookup.best();
    let (meaning, whose, fix) = match best {
        Some(entry) => (entry.meaning.clone(), entry.whose, entry.fix.clone()),
        None => {
            let from_cause = cause_entry.filter(|e| e.cause != "other" && e.cause != "none");
            (
                UNCATALOGUED.to_string(),
                from_cause.map_or(Whose::Either, |e| e.whose),
                from_cause.map_or_else(
                    || "Read the reply text: it is the server's own explanation.".to_string(),
                    |e| e.fix.clone(),
                ),
            )
        }
    };
    let note = match best {
        Some(entry) => entry.note.clone(),
        None => Some(
            "No RFC, IANA registry entry or provider documentation we know defines this code; it is classified by its digits."
                .to_string(),
        ),
    };
    let is_best = |entry: &Entry| best.is_some_and(|b| std::ptr::eq(b, entry));
    let parts = [lookup.basic, lookup.enhanced].into_iter().flatten().filter(|e| !is_best(e)).map(Part::of).collect();
    // Without the reply text the provider variants are candidates; with it,
    // the one that applies (if any) is already the headline.
    let variants = match (query.code, &query.text) {
        (Some(code), None) => c.variants(code, query.enhanced).map(Part::of).collect(),
        _ => Vec::new(),
    };
    // With a reply text the cause can say more than generic codes (unless
    // the text already picked a provider's own entry): its fix too.
    let from_text = best.is_some_and(|e| e.text.is_some());
    let cause_fix = cause_entry
        .filter(|e| query.text.is_some() && !from_text && e.cause != "other" && e.cause != "none" && e.fix != fix)
        .map(|e| e.fix.clone());
    Explanation {
        code: query.code.map(|c| c.to_string()),
        enhanced: query.enhanced.map(|e| e.to_string()),
        text: query.text.clone(),
        class,
        category: category.label().to_string(),
        cause: cause.clone(),
        catalogued: best.is_some(),
        meaning,
        provider: best.and_then(|e| e.provider.clone()),
        whose,
        fix,
        cause_fix,
        source: best.map(|e| e.source.clone()),
        note,
        parts,
        variants,
        category_words,
        cause_meaning: cause_entry.map(|e| e.meaning.clone()),
    }
}

/// The cause the exporter would count, as if a remote server had sent this
/// reply. 1xx and 3xx replies are never counted and have no cause; an `X.`
/// code alone is taken as a failure.
fn cause_of(query: &Query, rules: &crate::classify::CauseRules) -> String {
    let code = query.code.and_then(ReplyCode::new);
    let class_digit = match (query.enhanced.and_then(|e| e.class), query.code) {
        (Some(class), _) => class,
        (None, Some(code)) => (code / 100) as u8,
        (None, None) => 5,
    };
    let enhanced = query.enhanced.and_then(|e| EnhancedStatus::new(class_digit, e.subject, e.detail));
    if code.is_none() && (enhanced.is_none() || query.code.is_some()) {
        return "none".to_string();
    }
    let reply = Reply {
        code,
        enhanced,
        text: query.text.as_deref().unwrap_or(""),
        direction: Direction::Outbound,
        phase: Phase::Unknown,
    };
    rules.cause_of(&reply).as_str().to_string()
}

/// The terminal layout.
pub fn render_text(e: &Explanation) -> String {
    let mut out = String::new();
    let codes: Vec<&str> = [e.code.as_deref(), e.enhanced.as_deref()].into_iter().flatten().collect();
    out.push_str(&format!("{}  {}\n", codes.join(" "), e.meaning));
    if let Some(text) = &e.text {
        out.push_str("  Reply     ");
        wrap_into(&mut out, text, 12, 12);
    }
    out.push('\n');
    let mut field = |name: &str, value: &str, words: &str| {
        out.push_str(&format!("  {name:<10}"));
        let body = if words.is_empty() { value.to_string() } else { format!("{value} — {words}") };
        wrap_into(&mut out, &body, 12, 12);
    };
    field("Class", &e.class, class_words(&e.class));
    field("Category", &e.category, e.category_words);
    let cause_words = match e.cause.as_str() {
        "other" if e.text.is_none() => "the codes alone do not tell; paste the whole reply text".to_string(),
        _ => e.cause_meaning.clone().unwrap_or_default(),
    };
    field("Cause", &e.cause, &cause_words);
    if let Some(provider) = &e.provider {
        field("Provider", provider, "");
    }
    field("Whose", e.whose.label(), whose_words(e.whose));
    field("Fix", &e.fix, "");
    if let Some(cause_fix) = &e.cause_fix {
        field("Cause fix", cause_fix, "");
    }
    if let Some(note) = &e.note {
        field("Note", note, "");
    }
    if let Some(source) = &e.source {
        field("Source", source, "");
    }
    if !e.parts.is_empty() {
        out.push_str("\n  The codes on their own:\n");
        let width = e.parts.iter().map(|p| p.code.len()).max().unwrap_or(0);
        for part in &e.parts {
            out.push_str(&format!("    {:<width$}  ", part.code));
            wrap_into(&mut out, &format!("{} ({})", part.meaning, part.source), 6 + width, 6 + width);
        }
    }
    if !e.variants.is_empty() {
        out.push_str("\n  At providers (paste the whole reply to tell which applies):\n");
        for part in &e.variants {
            out.push_str("    ");
            wrap_into(&mut out, &format!("{}: {}", part.meaning, part.fix), 4, 6);
        }
    }
    out
}

pub fn run(args: &ExplainArgs, out: &mut impl Write) -> Result<(), Failure> {
    let query = parse_query(&args.reply.join(" ")).map_err(Failure::usage)?;
    let config = load_config(args.config_file.as_deref())?;
    let rules = cause_rules(&config)?;
    let explanation = explain(&query, &rules);
    match args.output {
        OutputFormat::Text => out.write_all(render_text(&explanation).as_bytes())?,
        OutputFormat::Json => {
            let json = serde_json::to_string_pretty(&explanation)
                .map_err(|e| Failure::input(format!("cannot encode JSON: {e}")))?;
            writeln!(out, "{json}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(input: &str) -> (Option<u16>, Option<String>, Option<String>) {
        let q = parse_query(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        (q.code, q.enhanced.map(|e| e.to_string()), q.text)
    }

    #[test]
    fn what_can_be_asked() {
        assert_eq!(query("550 5.7.26"), (Some(550), Some("5.7.26".into()), None));
        assert_eq!(
            query(" 550-5.7.26 Unauthenticated email "),
            (Some(550), Some("5.7.26".into()), Some("Unauthenticated email".into()))
        );
        assert_eq!(query("5.7.26"), (None, Some("5.7.26".into()), None));
        assert_eq!(query("x.7.26"), (None, Some("X.7.26".into()), None));
        assert_eq!(query("354"), (Some(354), None, None));
        assert_eq!(query("451 Try again"), (Some(451), None, Some("Try again".into())));
        assert_eq!(query("421 4.3.0: Temporary"), (Some(421), Some("4.3.0".into()), Some("Temporary".into())));
        let line = "Nov 28 17:35:02 mx1 postfix/smtp[11]: 5B2C3D4E5F: to=<nobody@gmail.com>, relay=g[142.250.102.26]:25, delay=0.5, delays=0.1/0/0.2/0.2, dsn=5.1.1, status=bounced (host g[142.250.102.26] said: 550-5.1.1 The email account does not exist. (in reply to RCPT TO command))";
        let (code, enhanced, text) = query(line);
        assert_eq!((code, enhanced.as_deref()), (Some(550), Some("5.1.1")));
        assert!(text.unwrap().starts_with("The email account does not exist."));
    }

    #[test]
    fn what_cannot() {
        let err = |input: &str| parse_query(input).unwrap_err();
        assert!(err("").contains("nothing to explain"));
        assert!(err("650").contains("first digit is 1 to 5"), "{}", err("650"));
        assert!(err("55").contains("three digits"));
        assert!(err("5500").contains("three digits"));
        assert!(err("5.8.1").contains("subject 8"));
        assert!(err("3.1.1").contains("starts with 2, 4 or 5"));
        assert!(err("5.1.1000").contains("three digits"));
        assert!(err("550 5.9.1 x").contains("subject 9"));
        assert!(err("hello world").contains("found no reply code"));
    }

    #[test]
    fn causes_need_a_failure() {
        let rules = crate::classify::CauseRules::defaults();
        let cause = |input: &str| explain(&parse_query(input).unwrap(), &rules).cause;
        assert_eq!(cause("354"), "none");
        assert_eq!(cause("250"), "none");
        assert_eq!(cause("X.7.26"), "dmarc");
        assert_eq!(cause("550 5.1.1"), "user_unknown");
        assert_eq!(cause("550"), "other");
        assert_eq!(cause("550 Relay access denied"), "relay_denied");
    }
}
