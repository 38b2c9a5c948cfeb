//! The reply code catalogue: what each basic code, enhanced code and
//! provider-specific combination means, whose problem it usually is and
//! what usually fixes it, plus a description of every cause name.
//!
//! The data lives in `config/catalogue.yaml`, built into the binary and
//! parsed once, on first use (the exporter needs it only when a new code
//! combination appears, for `mta_smtp_reply_info`). Loading validates the
//! whole table: codes well formed, class and category agreeing with the
//! digits (through the same [`Category`] functions the exporter's labels
//! use), no duplicate entries, text patterns compiling. A code that is not
//! catalogued still has a class and a category from its digits; its
//! meaning is [`UNCATALOGUED`].

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use regex_automata::meta::Regex;
use serde::{Deserialize, Serialize};

use super::Category;
use crate::model::{EnhancedStatus, ReplyCode};

/// The catalogue built into the binary.
pub const CATALOGUE_YAML: &str = include_str!("../../config/catalogue.yaml");

/// The meaning of a code combination the catalogue does not know.
pub const UNCATALOGUED: &str = "uncatalogued";

/// Whose side usually has to act.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Whose {
    /// The sending side: the SMTP client, its operator, the sending domain.
    Sender,
    /// The receiving side: the SMTP server, the recipient's mailbox.
    Receiver,
    Either,
    /// Nothing went wrong.
    None,
}

impl Whose {
    pub fn label(self) -> &'static str {
        match self {
            Whose::Sender => "sender",
            Whose::Receiver => "receiver",
            Whose::Either => "either",
            Whose::None => "none",
        }
    }
}

/// An enhanced code as the catalogue keys it: `X.7.26` (any class) or a
/// class-specific `5.7.708`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct EnhancedKey {
    /// `None` for `X`.
    pub class: Option<u8>,
    pub subject: u8,
    pub detail: u16,
}

impl EnhancedKey {
    /// Parses `X.7.26`, `x.7.26` or `5.7.26`: class 2, 4, 5 or X, subject
    /// 0-7, detail of one to three digits.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('.');
        let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let class = match class {
            "X" | "x" => None,
            "2" | "4" | "5" => Some(class.as_bytes()[0] - b'0'),
            _ => return None,
        };
        let number = |s: &str, max_len: usize| {
            ((1..=max_len).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u16>().ok())?
        };
        let subject = u8::try_from(number(subject, 1)?).ok().filter(|s| *s <= 7)?;
        let detail = number(detail, 3)?;
        Some(EnhancedKey { class, subject, detail })
    }

    pub fn of(status: EnhancedStatus) -> Self {
        EnhancedKey { class: Some(status.class_digit()), subject: status.subject(), detail: status.detail() }
    }

    fn any_class(self) -> Self {
        EnhancedKey { class: None, ..self }
    }
}

impl fmt::Display for EnhancedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.class {
            Some(class) => write!(f, "{class}.{}.{}", self.subject, self.detail),
            None => write!(f, "X.{}.{}", self.subject, self.detail),
        }
    }
}

/// One catalogue entry, as written in the YAML file.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// `550`, `X.7.26` or `5.7.708`.
    pub code: String,
    /// Only for `replies`: the enhanced code of the pair.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enhanced: Option<String>,
    /// `5xx`, or `any` for an `X.` code.
    pub class: String,
    /// The `category` label value the exporter gives this code.
    pub category: String,
    /// Short meaning; a label value of `mta_smtp_reply_info`.
    pub meaning: String,
    pub whose: Whose,
    pub fix: String,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Only for `replies`: the entry applies when the reply text matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What a cause name means.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CauseEntry {
    pub cause: String,
    pub meaning: String,
    pub whose: Whose,
    pub fix: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    basic: Vec<Entry>,
    enhanced: Vec<Entry>,
    replies: Vec<Entry>,
    causes: Vec<CauseEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("catalogue: {0}")]
    Yaml(String),
    #[error("catalogue {section} entry {code}: {problem}")]
    Invalid { section: &'static str, code: String, problem: String },
}

/// A `replies` entry's parsed key.
#[derive(Debug)]
struct PairKey {
    code: u16,
    enhanced: Option<EnhancedKey>,
    text: Option<Regex>,
}

/// The parsed, indexed catalogue.
#[derive(Debug)]
pub struct Catalogue {
    basic: Vec<Entry>,
    enhanced: Vec<Entry>,
    replies: Vec<Entry>,
    causes: Vec<CauseEntry>,
    basic_index: HashMap<u16, usize>,
    enhanced_index: HashMap<EnhancedKey, usize>,
    /// Parallel to `replies`.
    pair_keys: Vec<PairKey>,
}

/// The entries that explain one reply, most specific first.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lookup<'a> {
    /// A `replies` entry for the code pair (and text, when given).
    pub reply: Option<&'a Entry>,
    pub enhanced: Option<&'a Entry>,
    pub basic: Option<&'a Entry>,
}

impl<'a> Lookup<'a> {
    /// The most specific entry. `X.0.0` says only "the class is known",
    /// so the basic code, when catalogued, says more.
    pub fn best(&self) -> Option<&'a Entry> {
        let specific = self.enhanced.filter(|e| e.code != "X.0.0");
        self.reply.or(specific).or(self.basic).or(self.enhanced)
    }
}

/// The catalogue built into the binary, parsed on first use.
#[allow(clippy::panic)] // compile-time data, see the lint note in lib.rs
pub fn catalogue() -> &'static Catalogue {
    static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();
    // The built-in file is validated by the test suite; failing here is a
    // build defect, not an input error.
    CATALOGUE.get_or_init(|| match Catalogue::from_yaml(CATALOGUE_YAML) {
        Ok(catalogue) => catalogue,
        Err(err) => panic!("built-in config/catalogue.yaml is invalid: {err}"),
    })
}

/// Parses a basic code as the catalogue and `explain` accept it: three
/// digits, first digit 1-5 (1xx and 3xx are catalogued, though the exporter
/// never counts them).
pub fn parse_basic(text: &str) -> Option<u16> {
    match text.as_bytes() {
        [a @ b'1'..=b'5', b, c] if b.is_ascii_digit() && c.is_ascii_digit() => {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}

/// The class label of a basic code (`5xx`).
pub fn class_of_basic(code: u16) -> String {
    format!("{}xx", code / 100)
}

/// The category of a basic code by its second digit.
pub fn category_of_basic(code: u16) -> Category {
    Category::of_second_digit(((code / 10) % 10) as u8)
}

impl Catalogue {
    pub fn from_yaml(yaml: &str) -> Result<Catalogue, CatalogueError> {
        let file: CatalogueFile = serde_saphyr::from_str(yaml).map_err(|e| {
            let message = e.to_string();
            let first = message.lines().next().unwrap_or(&message);
            CatalogueError::Yaml(first.strip_prefix("error: ").unwrap_or(first).to_string())
        })?;
        let mut basic_index = HashMap::new();
        for (i, entry) in file.basic.iter().enumerate() {
            let invalid =
                |problem: String| CatalogueError::Invalid { section: "basic", code: entry.code.clone(), problem };
            let code = parse_basic(&entry.code).ok_or_else(|| invalid("code is not three digits 100-599".into()))?;
            check_common(entry, &class_of_basic(code), category_of_basic(code)).map_err(invalid)?;
            if entry.enhanced.is_some() || entry.text.is_some() {
                return Err(invalid("`enhanced` and `text` belong in the replies section".into()));
            }
            if basic_index.insert(code, i).is_some() {
                return Err(invalid("duplicate entry".into()));
            }
        }
        let mut enhanced_index = HashMap::new();
        for (i, entry) in file.enhanced.iter().enumerate() {
            let invalid =
                |problem: String| CatalogueError::Invalid { section: "enhanced", code: entry.code.clone(), problem };
            let key = EnhancedKey::parse(&entry.code)
                .ok_or_else(|| invalid("code is not class.subject.detail (X.7.26 or 5.7.708)".into()))?;
            let class = key.class.map_or_else(|| "any".to_string(), |c| format!("{c}xx"));
            check_common(entry, &class, Category::of_subject(key.subject)).map_err(invalid)?;
            if entry.enhanced.is_some() || entry.text.is_some() {
                return Err(invalid("`enhanced` and `text` belong in the replies section".into()));
            }
            if key.class.is_some() && entry.provider.is_none() {
                return Err(invalid("a class-specific code is a provider's; name the `provider`".into()));
            }
            if enhanced_index.insert(key, i).is_some() {
                return Err(invalid("duplicate entry".into()));
            }
        }
        let mut pair_keys: Vec<PairKey> = Vec::with_capacity(file.replies.len());
        for entry in &file.replies {
            let name = format!("{} {}", entry.code, entry.enhanced.as_deref().unwrap_or("-"));
            let invalid = |problem: String| CatalogueError::Invalid { section: "replies", code: name.clone(), problem };
            let code = parse_basic(&entry.code).ok_or_else(|| invalid("code is not three digits 100-599".into()))?;
            let enhanced = match &entry.enhanced {
                Some(text) => Some(
                    EnhancedKey::parse(text)
                        .filter(|k| k.class.is_some())
                        .ok_or_else(|| invalid(format!("enhanced {text:?} is not class.subject.detail (5.7.26)")))?,
                ),
                None => None,
            };
            if let Some(key) = enhanced {
                if key.class != Some((code / 100) as u8) {
                    return Err(invalid("the enhanced code's class differs from the basic code's".into()));
                }
            }
            let category = match enhanced {
                Some(key) => Category::of_subject(key.subject),
                None => category_of_basic(code),
            };
            check_common(entry, &class_of_basic(code), category).map_err(invalid)?;
            if enhanced.is_none() && entry.text.is_none() {
                return Err(invalid("a reply entry needs an enhanced code or a text pattern".into()));
            }
            let text = match &entry.text {
                Some(pattern) => Some(
                    super::causes::text_regex(pattern, 1 << 20)
                        .map_err(|problem| invalid(format!("text: {problem}")))?,
                ),
                None => None,
            };
            if entry.text.is_some() && entry.provider.is_none() {
                return Err(invalid("a text variant names its `provider`".into()));
            }
            let duplicate = pair_keys
                .iter()
                .zip(&file.replies)
                .any(|(k, other)| k.code == code && k.enhanced == enhanced && other.text == entry.text);
            if duplicate {
                return Err(invalid("duplicate entry".into()));
            }
            pair_keys.push(PairKey { code, enhanced, text });
        }
        let mut seen = Vec::new();
        for cause in &file.causes {
            let invalid =
                |problem: String| CatalogueError::Invalid { section: "causes", code: cause.cause.clone(), problem };
            if crate::classify::Cause::new(&cause.cause).is_none() {
                return Err(invalid("not a valid cause name".into()));
            }
            if cause.meaning.trim().is_empty() || cause.fix.trim().is_empty() {
                return Err(invalid("meaning and fix must not be empty".into()));
            }
            if seen.contains(&cause.cause.as_str()) {
                return Err(invalid("duplicate entry".into()));
            }
            seen.push(cause.cause.as_str());
        }
        Ok(Catalogue {
            basic: file.basic,
            enhanced: file.enhanced,
            replies: file.replies,
            causes: file.causes,
            basic_index,
            enhanced_index,
            pair_keys,
        })
    }

    pub fn basic_entries(&self) -> &[Entry] {
        &self.basic
    }

    pub fn enhanced_entries(&self) -> &[Entry] {
        &self.enhanced
    }

    pub fn reply_entries(&self) -> &[Entry] {
        &self.replies
    }

    pub fn cause_entries(&self) -> &[CauseEntry] {
        &self.causes
    }

    pub fn basic(&self, code: u16) -> Option<&Entry> {
        self.basic_index.get(&code).map(|&i| &self.basic[i])
    }

    /// The class-specific entry if there is one (`5.7.708`), else the
    /// registry entry (`X.7.26`).
    pub fn enhanced(&self, key: EnhancedKey) -> Option<&Entry> {
        self.enhanced_index.get(&key).or_else(|| self.enhanced_index.get(&key.any_class())).map(|&i| &self.enhanced[i])
    }

    /// The `replies` entry for a code pair: with a reply text, the first
    /// provider variant whose pattern matches it; else the entry without a
    /// pattern, if any.
    pub fn reply(&self, code: u16, enhanced: Option<EnhancedKey>, text: Option<&str>) -> Option<&Entry> {
        let candidates = || self.pair_keys.iter().zip(&self.replies).filter(move |(k, _)| k.code == code);
        if let Some(text) = text {
            let variant = candidates().find(|(k, _)| {
                (k.enhanced.is_none() || k.enhanced == enhanced) && k.text.as_ref().is_some_and(|re| re.is_match(text))
            });
            if let Some((_, entry)) = variant {
                return Some(entry);
            }
        }
        candidates().find(|(k, _)| k.text.is_none() && enhanced.is_some() && k.enhanced == enhanced).map(|(_, e)| e)
    }

    /// The provider variants of a code pair (entries with a text pattern).
    pub fn variants(&self, code: u16, enhanced: Option<EnhancedKey>) -> impl Iterator<Item = &Entry> {
        self.pair_keys
            .iter()
            .zip(&self.replies)
            .filter(move |(k, _)| {
                k.code == code && k.text.is_some() && (k.enhanced.is_none() || k.enhanced == enhanced)
            })
            .map(|(_, e)| e)
    }

    /// Everything the catalogue says about a reply.
    pub fn lookup(&self, code: Option<u16>, enhanced: Option<EnhancedKey>, text: Option<&str>) -> Lookup<'_> {
        Lookup {
            reply: code.and_then(|c| self.reply(c, enhanced, text)),
            enhanced: enhanced.and_then(|e| self.enhanced(e)),
            basic: code.and_then(|c| self.basic(c)),
        }
    }

    /// The meaning of a code combination without its text, as the metric
    /// `mta_smtp_reply_info` shows it: the code pair's own entry, else the
    /// enhanced code's, else the basic code's, else [`UNCATALOGUED`].
    pub fn meaning(&self, code: Option<ReplyCode>, enhanced: Option<EnhancedStatus>) -> &str {
        self.lookup(code.map(ReplyCode::value), enhanced.map(EnhancedKey::of), None)
            .best()
            .map_or(UNCATALOGUED, |entry| entry.meaning.as_str())
    }

    pub fn cause(&self, name: &str) -> Option<&CauseEntry> {
        self.causes.iter().find(|c| c.cause == name)
    }
}

/// The checks every entry shares.
fn check_common(entry: &Entry, class: &str, category: Category) -> Result<(), String> {
    if entry.class != class {
        return Err(format!("class {:?} does not agree with the code (expected {class:?})", entry.class));
    }
    if entry.category != category.label() {
        return Err(format!(
            "category {:?} does not agree with the code (expected {:?})",
            entry.category,
            category.label()
        ));
    }
    for (field, value) in [("meaning", &entry.meaning), ("fix", &entry.fix), ("source", &entry.source)] {
        if value.trim().is_empty() {
            return Err(format!("{field} must not be empty"));
        }
    }
    if entry.meaning.len() > 80 || entry.meaning.contains('\n') {
        return Err("meaning must be one line of at most 80 characters (it is a label value)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enhanced_keys() {
        assert_eq!(EnhancedKey::parse("X.7.26"), Some(EnhancedKey { class: None, subject: 7, detail: 26 }));
        assert_eq!(EnhancedKey::parse("5.7.708").map(|k| k.to_string()), Some("5.7.708".into()));
        for bad in ["3.1.1", "5.8.1", "5.1", "5.1.1000", "5.1.1.1", "X.7.", "a.b.c", ""] {
            assert_eq!(EnhancedKey::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn bad_catalogues_are_refused() {
        let base = "basic: []\nenhanced: []\nreplies: []\ncauses: []\n";
        assert!(Catalogue::from_yaml(base).is_ok());
        let entry = |section: &str, body: &str| base.replace(&format!("{section}: []"), &format!("{section}:\n{body}"));
        let err = |yaml: String| Catalogue::from_yaml(&yaml).unwrap_err().to_string();
        let basic =
            "  - {code: \"550\", class: 5xx, category: mail_system, meaning: m, whose: sender, fix: f, source: s}\n";
        assert!(Catalogue::from_yaml(&entry("basic", basic)).is_ok());
        assert!(err(entry("basic", &basic.replace("5xx", "4xx"))).contains("class"));
        assert!(err(entry("basic", &basic.replace("mail_system", "syntax"))).contains("category"));
        assert!(err(entry("basic", &format!("{basic}{basic}"))).contains("duplicate"));
        assert!(err(entry("basic", &basic.replace("\"550\"", "\"55\""))).contains("three digits"));
        assert!(err(entry("basic", &basic.replace("whose: sender", "whose: nobody"))).contains("nobody"));
        let enhanced =
            "  - {code: X.7.26, class: any, category: policy, meaning: m, whose: sender, fix: f, source: s}\n";
        assert!(Catalogue::from_yaml(&entry("enhanced", enhanced)).is_ok());
        assert!(
            err(entry("enhanced", &enhanced.replace("X.7.26", "5.7.26").replace("any", "5xx"))).contains("provider")
        );
        assert!(err(entry("enhanced", &enhanced.replace("policy", "content"))).contains("category"));
        let pair = "  - {code: \"550\", enhanced: 4.7.1, class: 5xx, category: policy, meaning: m, whose: sender, fix: f, source: s}\n";
        assert!(err(entry("replies", pair)).contains("class differs"));
        let pair = "  - {code: \"550\", enhanced: 5.7.1, text: '(', provider: p, class: 5xx, category: policy, meaning: m, whose: sender, fix: f, source: s}\n";
        assert!(err(entry("replies", pair)).contains("text:"));
    }
}
