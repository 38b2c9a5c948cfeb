//! The cause rule table: an ordered list of conditions over the class, the
//! codes, the direction and the reply text, each naming a plain-language
//! cause. The defaults ship as `config/causes.yaml` inside the binary; a
//! config file can put its own rules in front of them or replace them.
//!
//! Text conditions are case-insensitive regular expressions, tried in rule
//! order and only when an earlier rule without a text condition did not
//! already decide (so 2xx replies never touch them). A reply text is first
//! scanned once for the literal words the patterns start with
//! ([`TextPrefilter`]); a pattern runs only on texts that contain one of
//! its words, anchored where they are. One `RegexSet` over all patterns did
//! the same in one pass, but
//! it has to report every pattern that matches anywhere, which cost about
//! 5,700 instructions per reply (a third of the exporter's whole per-line
//! budget on a busy server) and a lazily built automaton of up to 16 MiB.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Mutex, OnceLock};

use regex::RegexSetBuilder;
use regex_automata::nfa::thompson::WhichCaptures;
use regex_automata::util::syntax;
use regex_automata::{meta, Anchored, Input};
use regex_syntax::hir::literal::{ExtractKind, Extractor};
use serde::Deserialize;

use crate::model::{Direction, EnhancedStatus, Reply, ReplyClass, ReplyCode};

/// The rule table built into the binary.
pub const DEFAULT_RULES_YAML: &str = include_str!("../../config/causes.yaml");

/// Compiled size cap for all text conditions together. The `regex` crate
/// runs in linear time whatever the pattern, but a pattern such as
/// `\w{1000}{1000}` compiles to a huge automaton; refuse those at load time.
const TEXT_SIZE_LIMIT: usize = 8 << 20;
const MAX_RULES: usize = 1000;

/// A cause name: a short lowercase identifier used as the `cause` label.
/// Names are interned, so a `Cause` is a pointer-sized copyable value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cause(&'static str);

impl Cause {
    pub const NONE: Cause = Cause("none");
    pub const OTHER: Cause = Cause("other");

    /// Interns `name` if it is a valid cause name (`[a-z][a-z0-9_]{0,31}`).
    pub fn new(name: &str) -> Option<Cause> {
        let valid = (1..=32).contains(&name.len())
            && name.as_bytes()[0].is_ascii_lowercase()
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return None;
        }
        static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
        let mut names = NAMES.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&known) = names.get(name) {
            return Some(Cause(known));
        }
        // Leaked on purpose: names come from the rule table only, so the set
        // is bounded by what an operator ever configured.
        let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
        names.insert(leaked);
        Some(Cause(leaked))
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A rule as written in YAML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub cause: String,
    #[serde(default)]
    pub class: Vec<String>,
    #[serde(default)]
    pub code: Vec<String>,
    #[serde(default)]
    pub enhanced: Vec<String>,
    #[serde(default)]
    pub direction: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    rules: Vec<RuleSpec>,
}

#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("cause rules: {0}")]
    Yaml(String),
    #[error("cause rule {index} ({cause}): {problem}")]
    Invalid { index: usize, cause: String, problem: String },
    #[error("cause rules: the text patterns together compile to more than {limit} bytes; simplify them (bounded repetitions such as `.{{1000}}` are the usual culprit): {source}")]
    TooExpensive { limit: usize, source: regex::Error },
    #[error("cause rules: {count} rules is more than the limit of {MAX_RULES}")]
    TooMany { count: usize },
}

/// The regex syntax error in one line: its text spans several lines (the
/// pattern, a caret, the message); the message is the last.
fn syntax_problem(text: &str) -> String {
    text.lines().rev().find_map(|l| l.strip_prefix("error: ")).unwrap_or(text.trim()).to_string()
}

/// A case-insensitive regex over reply texts, for `is_match` only: what
/// `regex::RegexBuilder` builds with `case_insensitive(true)` and
/// `size_limit(size_limit)`, as the engine under it (which can also search
/// anchored at a position), without what only other searches need. Half
/// the memory: 24 KiB a pattern instead of 45 for the built-in rules.
pub(crate) fn text_regex(pattern: &str, size_limit: usize) -> Result<meta::Regex, String> {
    meta::Regex::builder()
        .syntax(syntax::Config::new().case_insensitive(true))
        .configure(
            meta::Config::new()
                .nfa_size_limit(Some(size_limit))
                // Only `is_match` is asked: no capture states in the NFA,
                // and no engines that exist to report captures.
                .which_captures(WhichCaptures::None)
                .onepass(false)
                .backtrack(false)
                // The cause rules' prefilter already found where a match can
                // start; the regex's own literal searcher (an Aho-Corasick
                // automaton for a pattern of many words) is not worth its
                // memory on texts of a hundred bytes.
                .auto_prefilter(false),
        )
        .build(pattern)
        .map_err(|e| match e.syntax_error() {
            Some(syntax) => syntax_problem(&syntax.to_string()),
            None => e.to_string(),
        })
}

/// One digit position of a code pattern: a digit or "any".
type DigitPattern = Option<u16>;

#[derive(Debug, Clone, Copy)]
struct CodePattern([DigitPattern; 3]);

impl CodePattern {
    fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != 3 {
            return None;
        }
        let mut digits = [None; 3];
        for (slot, &b) in digits.iter_mut().zip(bytes) {
            *slot = match b {
                b'0'..=b'9' => Some(u16::from(b - b'0')),
                b'x' | b'X' => None,
                _ => return None,
            };
        }
        Some(CodePattern(digits))
    }

    fn matches(self, code: ReplyCode) -> bool {
        let v = code.value();
        let actual = [v / 100, (v / 10) % 10, v % 10];
        self.0.iter().zip(actual).all(|(want, got)| want.is_none_or(|w| w == got))
    }
}

#[derive(Debug, Clone, Copy)]
struct EnhancedPattern([DigitPattern; 3]);

impl EnhancedPattern {
    fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('.');
        let mut out = [None; 3];
        for (i, slot) in out.iter_mut().enumerate() {
            let part = parts.next()?;
            *slot = if part.eq_ignore_ascii_case("x") {
                None
            } else {
                let max_len = if i == 0 { 1 } else { 3 };
                if part.is_empty() || part.len() > max_len || !part.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                Some(part.parse().ok()?)
            };
        }
        if parts.next().is_some() {
            return None;
        }
        if let Some(class) = out[0] {
            if !matches!(class, 2 | 4 | 5) {
                return None;
            }
        }
        Some(EnhancedPattern(out))
    }

    fn matches(self, status: EnhancedStatus) -> bool {
        let actual = [u16::from(status.class_digit()), u16::from(status.subject()), status.detail()];
        self.0.iter().zip(actual).all(|(want, got)| want.is_none_or(|w| w == got))
    }
}

#[derive(Debug, Clone)]
struct Rule {
    cause: Cause,
    /// Bit per class (2xx, 4xx, 5xx); 0 = any.
    classes: u8,
    codes: Vec<CodePattern>,
    enhanced: Vec<EnhancedPattern>,
    direction: Option<Direction>,
    /// Index into the rule table's text patterns.
    text: Option<usize>,
}

fn class_bit(class: ReplyClass) -> u8 {
    match class {
        ReplyClass::Success => 1,
        ReplyClass::Transient => 2,
        ReplyClass::Permanent => 4,
    }
}

impl Rule {
    /// All conditions but the text one.
    fn matches_codes(&self, reply: &Reply<'_>) -> bool {
        (self.classes == 0 || self.classes & class_bit(reply.class()) != 0)
            && self.direction.is_none_or(|d| d == reply.direction)
            && (self.codes.is_empty() || reply.code.is_some_and(|c| self.codes.iter().any(|p| p.matches(c))))
            && (self.enhanced.is_empty() || reply.enhanced.is_some_and(|e| self.enhanced.iter().any(|p| p.matches(e))))
    }
}

/// Whether [`CauseRules::build`] checks the patterns' total size.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TotalSize {
    Check,
    /// The built-in table, checked by the tests: building the set only to
    /// check it again would leave a megabyte of freed heap behind in a
    /// process that has just started.
    Trusted,
}

/// The compiled, ordered rule table.
#[derive(Debug, Clone)]
pub struct CauseRules {
    rules: Vec<Rule>,
    /// The text conditions, each compiled on its own.
    texts: Vec<meta::Regex>,
    prefilter: TextPrefilter,
}

/// A set of text patterns, one bit each (at most [`MAX_RULES`]).
#[derive(Clone, Copy, Debug)]
struct PatternBits([u64; MAX_RULES.div_ceil(64)]);

impl PatternBits {
    fn none() -> Self {
        PatternBits([0; MAX_RULES.div_ceil(64)])
    }

    fn all() -> Self {
        PatternBits([u64::MAX; MAX_RULES.div_ceil(64)])
    }

    fn insert(&mut self, index: usize) {
        self.0[index / 64] |= 1 << (index % 64);
    }

    fn contains(&self, index: usize) -> bool {
        self.0[index / 64] & (1 << (index % 64)) != 0
    }
}

/// Which text patterns can match a reply text at all, found in one pass.
///
/// Every match of a pattern starts with one of its prefix literals (as the
/// `regex` crate extracts them for its own prefilters). One pass over the
/// text looks each 3-byte window up in a small hashed table of the
/// literals' first three bytes (ASCII case folded, like the patterns) and
/// compares the few literals filed there; the patterns whose literals are
/// present are the candidates. A pattern with no finite set of non-empty
/// ASCII prefixes of at least three bytes (`.*x`, `\d+ days`, a non-ASCII
/// letter that Unicode folds to an ASCII one) is always a candidate, and so
/// is every pattern on a text that is not ASCII (Unicode case folding could
/// match there what ASCII folding does not). So the prefilter never drops a
/// pattern that would match: it only saves running the ones that cannot.
///
/// An Aho-Corasick automaton over the same literals did this in about 23
/// instructions per byte of text (a DFA of 0.6 MiB, entered again for every
/// overlapping match); this table is 17 KiB and costs a few instructions
/// per byte.
///
/// A literal that is a whole match of its pattern (an alternative spelled
/// out, like `spamhaus`, in a pattern without `\b` or inline flags) also
/// proves the pattern matches, so its regex need not run.
#[derive(Clone, Debug)]
struct TextPrefilter {
    /// Bit per table slot: whether any literal is filed there.
    occupied: Box<[u64; SLOTS / 64]>,
    /// Slot → the range of `literals` filed there (`start[slot]..start[slot + 1]`).
    start: Box<[u16; SLOTS + 1]>,
    /// Sorted by slot.
    literals: Box<[PrefixLiteral]>,
    /// Patterns without usable prefix literals: always candidates.
    unfiltered: PatternBits,
}

#[derive(Clone, Debug)]
struct PrefixLiteral {
    /// The first three bytes, folded as [`fold`] folds a text's.
    key: u32,
    /// The first eight bytes (fewer if shorter), folded, and which of the
    /// eight bytes are the literal's.
    head: u64,
    head_mask: u64,
    /// ASCII lowercase, at least three bytes.
    bytes: Box<[u8]>,
    pattern: usize,
    /// Finding it proves the pattern matches.
    proves: bool,
}

/// The table's slots: 8192 for a few hundred literals keep the slots a
/// text's windows hit mostly empty.
const SLOTS: usize = 1 << 13;

/// Bit 5 set in every byte: ASCII letters of either case fold to the same
/// value. Other bytes may fold together too (`[` and `{`), so equal folded
/// bytes make a literal a candidate; only an exact comparison proves it.
const FOLD: u64 = 0x2020_2020_2020_2020;

fn slot_of(key: u32) -> usize {
    (key.wrapping_mul(0x9E37_79B1) >> (32 - SLOTS.trailing_zeros())) as usize
}

/// Up to eight bytes from `bytes[at..]` as a little-endian word, folded.
fn word_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    let rest = &bytes[at..];
    let n = rest.len().min(8);
    word[..n].copy_from_slice(&rest[..n]);
    u64::from_le_bytes(word) | FOLD
}

impl TextPrefilter {
    fn new(patterns: &[&str]) -> Self {
        let mut literals: Vec<PrefixLiteral> = Vec::new();
        let mut unfiltered = PatternBits::none();
        for (index, pattern) in patterns.iter().enumerate() {
            match prefixes(pattern) {
                Some(prefixes) => literals.extend(prefixes.into_iter().map(|(bytes, proves)| {
                    let head_len = bytes.len().min(8);
                    let head_mask = if head_len == 8 { u64::MAX } else { (1u64 << (8 * head_len)) - 1 };
                    let head = word_at(&bytes, 0) & head_mask;
                    PrefixLiteral {
                        key: (head & 0xFF_FFFF) as u32,
                        head,
                        head_mask,
                        bytes: bytes.into_boxed_slice(),
                        pattern: index,
                        proves,
                    }
                })),
                None => unfiltered.insert(index),
            }
        }
        // The extractor gives at most 250 literals per pattern, so only a
        // table of hundreds of rules could overflow the u16 offsets; such a
        // table runs every pattern instead.
        if literals.len() > usize::from(u16::MAX) {
            for literal in &literals {
                unfiltered.insert(literal.pattern);
            }
            literals.clear();
        }
        literals.sort_by_key(|l| slot_of(l.key));
        let mut occupied = Box::new([0u64; SLOTS / 64]);
        let mut start = Box::new([0u16; SLOTS + 1]);
        for literal in &literals {
            let slot = slot_of(literal.key);
            occupied[slot / 64] |= 1 << (slot % 64);
            start[slot + 1] += 1;
        }
        for slot in 0..SLOTS {
            start[slot + 1] += start[slot];
        }
        TextPrefilter { occupied, start, literals: literals.into_boxed_slice(), unfiltered }
    }

    /// One pass over `text`: which patterns can match it, and where.
    fn scan(&self, text: &str) -> Scan {
        let mut scan = Scan {
            candidates: self.unfiltered,
            proven: PatternBits::none(),
            anywhere: self.unfiltered,
            hits: [(0, 0); MAX_HITS],
            len: 0,
        };
        if !text.is_ascii() {
            scan.candidates = PatternBits::all();
            scan.anywhere = PatternBits::all();
            return scan;
        }
        let bytes = text.as_bytes();
        if bytes.len() < 3 {
            return scan;
        }
        // The window's first two bytes, folded; `at` is where it starts.
        let mut pair = (u32::from(bytes[0]) | u32::from(bytes[1]) << 8) | FOLD as u32 & 0xFFFF;
        for (at, &byte) in bytes[2..].iter().enumerate() {
            let key = pair | u32::from(byte | 0x20) << 16;
            pair = key >> 8;
            let slot = slot_of(key);
            if self.occupied[slot / 64] & (1 << (slot % 64)) != 0 {
                self.check(bytes, at, key, slot, &mut scan);
            }
        }
        scan
    }

    /// Compares the literals filed in `slot` with the text at `at`.
    #[inline(never)]
    fn check(&self, bytes: &[u8], at: usize, key: u32, slot: usize, scan: &mut Scan) {
        let filed = usize::from(self.start[slot])..usize::from(self.start[slot + 1]);
        let word = match bytes.get(at..at + 8) {
            Some(eight) => {
                u64::from_le_bytes([eight[0], eight[1], eight[2], eight[3], eight[4], eight[5], eight[6], eight[7]])
                    | FOLD
            }
            None => word_at(bytes, at),
        };
        for literal in &self.literals[filed] {
            if literal.key != key || word & literal.head_mask != literal.head || bytes.len() - at < literal.bytes.len()
            {
                continue;
            }
            if literal.proves || literal.bytes.len() > 8 {
                // The folded comparison took `[` for `{`: compare exactly.
                if !bytes[at..at + literal.bytes.len()].eq_ignore_ascii_case(&literal.bytes) {
                    continue;
                }
            }
            scan.candidates.insert(literal.pattern);
            if literal.proves {
                scan.proven.insert(literal.pattern);
            } else if scan.len < MAX_HITS {
                scan.hits[scan.len] = (literal.pattern, at);
                scan.len += 1;
            } else {
                scan.anywhere.insert(literal.pattern);
            }
        }
    }
}

/// Literal occurrences a [`Scan`] keeps the positions of; a pattern with
/// more is searched in the whole text.
const MAX_HITS: usize = 24;

/// What one pass of the [`TextPrefilter`] found in a reply text.
struct Scan {
    /// Patterns that may match.
    candidates: PatternBits,
    /// Patterns that do match (one of their whole-match literals is there).
    proven: PatternBits,
    /// Candidates to search in the whole text: no usable literals, a text
    /// that is not ASCII, or more occurrences than `hits` holds.
    anywhere: PatternBits,
    /// (pattern, position) of the literal occurrences found.
    hits: [(usize, usize); MAX_HITS],
    len: usize,
}

impl Scan {
    /// Whether pattern `index` (compiled as `regex`) matches `text`. Every
    /// match starts where one of the pattern's literals occurs, so the
    /// regex runs anchored at those positions only (with the text before
    /// each as context, for `\b`): a few bytes each instead of the text.
    fn matches(&self, index: usize, regex: &meta::Regex, text: &str) -> bool {
        if !self.candidates.contains(index) {
            return false;
        }
        if self.proven.contains(index) {
            return true;
        }
        if self.anywhere.contains(index) {
            return regex.is_match(text);
        }
        self.hits[..self.len].iter().any(|&(pattern, at)| {
            pattern == index && regex.is_match(Input::new(text).range(at..).anchored(Anchored::Yes))
        })
    }
}

/// Bytes of each prefix literal kept: a prefix of a prefix is as sound a
/// condition, only less selective. For the built-in table on genlog.py's
/// Postfix replies: full length, 0.94 patterns run per reply; 8 bytes, 1.3;
/// 4 bytes, 3.7 (which doubled the cost of classifying). A literal that
/// proves its pattern is kept whole.
const PREFIX_BYTES: usize = 8;

/// The literals every match of `pattern` starts with, lowercased and
/// deduplicated, each with whether it is a whole match of the pattern; or
/// `None` when there is no such finite set of ASCII literals of at least
/// three bytes. Literals that do not prove a match are cut to
/// [`PREFIX_BYTES`].
fn prefixes(pattern: &str) -> Option<Vec<(Vec<u8>, bool)>> {
    // Parsed case-sensitively: the literals as written, folded below.
    let hir = regex_syntax::parse(pattern).ok()?;
    // The extractor takes a look-around (`\b`) for an empty string, so a
    // literal next to one is no proof; nor is one under an inline flag
    // (`(?-i:ABC)` must not match `abc`).
    let provable = hir.properties().look_set().is_empty() && !pattern.contains("(?");
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(&hir);
    let mut out: Vec<(Vec<u8>, bool)> = Vec::new();
    for literal in seq.literals()? {
        let bytes = literal.as_bytes();
        if bytes.len() < 3 || !bytes.is_ascii() {
            return None;
        }
        let proves = provable && literal.is_exact();
        let keep = if proves { bytes.len() } else { bytes.len().min(PREFIX_BYTES) };
        out.push((bytes[..keep].to_ascii_lowercase(), proves));
    }
    out.sort();
    out.dedup();
    (!out.is_empty()).then_some(out)
}

impl CauseRules {
    /// The built-in table. It is checked by the test suite, so failing to
    /// compile it here would be a build defect, not an input error.
    #[allow(clippy::panic)] // compile-time data, see the lint note in lib.rs
    pub fn defaults() -> Self {
        static DEFAULTS: OnceLock<CauseRules> = OnceLock::new();
        DEFAULTS
            .get_or_init(|| match CauseRules::build(&CauseRules::default_specs(), TotalSize::Trusted) {
                Ok(rules) => rules,
                Err(err) => panic!("built-in config/causes.yaml is invalid: {err}"),
            })
            .clone()
    }

    #[allow(clippy::panic)] // compile-time data, see the lint note in lib.rs
    pub fn default_specs() -> Vec<RuleSpec> {
        match serde_saphyr::from_str::<RuleFile>(DEFAULT_RULES_YAML) {
            Ok(file) => file.rules,
            Err(err) => panic!("built-in config/causes.yaml is invalid: {err}"),
        }
    }

    /// Parses a rule file (`rules: [...]`).
    pub fn from_yaml(yaml: &str) -> Result<Self, RuleError> {
        let file: RuleFile = serde_saphyr::from_str(yaml).map_err(|e| {
            let message = e.to_string();
            let first = message.lines().next().unwrap_or(&message);
            RuleError::Yaml(first.strip_prefix("error: ").unwrap_or(first).to_string())
        })?;
        Self::compile(&file.rules)
    }

    pub fn compile(specs: &[RuleSpec]) -> Result<Self, RuleError> {
        CauseRules::build(specs, TotalSize::Check)
    }

    fn build(specs: &[RuleSpec], total: TotalSize) -> Result<Self, RuleError> {
        if specs.len() > MAX_RULES {
            return Err(RuleError::TooMany { count: specs.len() });
        }
        let mut patterns = Vec::new();
        let mut texts = Vec::new();
        let mut rules = Vec::with_capacity(specs.len());
        for (index, spec) in specs.iter().enumerate() {
            let invalid = |problem: String| RuleError::Invalid { index, cause: spec.cause.clone(), problem };
            let cause = Cause::new(&spec.cause).ok_or_else(|| {
                invalid("a cause name is 1-32 characters of a-z, 0-9 and _, starting with a letter".into())
            })?;
            let mut classes = 0;
            for class in &spec.class {
                classes |= match class.as_str() {
                    "2xx" => 1,
                    "4xx" => 2,
                    "5xx" => 4,
                    other => return Err(invalid(format!("class {other:?} is not one of 2xx, 4xx, 5xx"))),
                };
            }
            let codes = spec
                .code
                .iter()
                .map(|c| {
                    CodePattern::parse(c)
                        .ok_or_else(|| invalid(format!("code {c:?} is not three digits or x (like 550 or 55x)")))
                })
                .collect::<Result<_, _>>()?;
            let enhanced = spec
                .enhanced
                .iter()
                .map(|e| {
                    EnhancedPattern::parse(e).ok_or_else(|| {
                        invalid(format!("enhanced {e:?} is not class.subject.detail (like 5.1.1 or X.7.26)"))
                    })
                })
                .collect::<Result<_, _>>()?;
            let direction = match spec.direction.as_deref() {
                None => None,
                Some("inbound") => Some(Direction::Inbound),
                Some("outbound") => Some(Direction::Outbound),
                Some(other) => return Err(invalid(format!("direction {other:?} is not inbound or outbound"))),
            };
            let text = match &spec.text {
                None => None,
                Some(pattern) => {
                    // Each pattern alone first, so an error names its rule.
                    let regex = text_regex(pattern, TEXT_SIZE_LIMIT).map_err(|problem| {
                        invalid(format!("text: {pattern:?} is not a usable regular expression: {problem}"))
                    })?;
                    patterns.push(pattern.as_str());
                    texts.push(regex);
                    Some(patterns.len() - 1)
                }
            };
            rules.push(Rule { cause, classes, codes, enhanced, direction, text });
        }
        // All patterns together within the size limit too (the set is
        // only built to check that), so a thousand rules cannot add up to
        // a thousand times the limit.
        if total == TotalSize::Check {
            RegexSetBuilder::new(&patterns)
                .case_insensitive(true)
                .size_limit(TEXT_SIZE_LIMIT)
                .build()
                .map_err(|source| RuleError::TooExpensive { limit: TEXT_SIZE_LIMIT, source })?;
        }
        let prefilter = TextPrefilter::new(&patterns);
        Ok(CauseRules { rules, texts, prefilter })
    }

    /// The first matching rule's cause, or `other`.
    pub fn cause_of(&self, reply: &Reply<'_>) -> Cause {
        let mut scan = None;
        for rule in &self.rules {
            if !rule.matches_codes(reply) {
                continue;
            }
            match rule.text {
                None => return rule.cause,
                Some(index) => {
                    let scan = scan.get_or_insert_with(|| self.prefilter.scan(reply.text));
                    if scan.matches(index, &self.texts[index], reply.text) {
                        return rule.cause;
                    }
                }
            }
        }
        Cause::OTHER
    }

    /// Every cause name the table can produce, `other` included, in first-use order.
    pub fn causes(&self) -> Vec<Cause> {
        let mut out: Vec<Cause> = Vec::new();
        for cause in self.rules.iter().map(|r| r.cause).chain([Cause::OTHER]) {
            if !out.contains(&cause) {
                out.push(cause);
            }
        }
        out
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{scan_reply, Phase};

    fn cause(direction: Direction, reply_text: &str) -> &'static str {
        let (code, enhanced, at) = scan_reply(reply_text).expect("a reply");
        let reply = Reply { code, enhanced, text: &reply_text[at..], direction, phase: Phase::Rcpt };
        CauseRules::defaults().cause_of(&reply).as_str()
    }

    #[test]
    fn the_built_in_table_compiles() {
        // With the total size check that `defaults()` trusts.
        let rules = CauseRules::from_yaml(DEFAULT_RULES_YAML).expect("valid defaults");
        assert!(rules.len() > 40);
        assert!(rules.causes().contains(&Cause::OTHER));
    }

    #[test]
    fn causes_of_typical_replies() {
        use Direction::*;
        let cases = [
            (Outbound, "250 2.0.0 Ok: queued as 2ACE7800D0", "none"),
            (Outbound, "550-5.1.1 The email account that you tried to reach does not exist. Please try 550 5.1.1 x", "user_unknown"),
            (Outbound, "452-4.2.2 The recipient's inbox is out of storage space. 452 4.2.2 x", "mailbox_full"),
            (Outbound, "421-4.7.28 Gmail has detected an unusual rate of unsolicited mail from your DKIM domain. 421 4.7.28 x", "rate_limited"),
            (Outbound, "550-5.7.26 Unauthenticated email from example.com is not accepted due to 550-5.7.26 domain's DMARC policy.", "dmarc"),
            (Outbound, "550 5.7.23 <u@x>: Recipient address rejected: Message rejected due to: SPF fail - not authorized.", "spf"),
            (Outbound, "450 4.2.0 <u@x>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/x.html", "greylisted"),
            (Outbound, "451-You have been greylisted. This is part of our standard anti-spam measures", "greylisted"),
            (Outbound, "554 5.7.1 Service unavailable; Client host [1.2.3.4] blocked using zen.spamhaus.org", "blocklisted"),
            (Outbound, "553 5.7.1 [BL21] Connections will not be accepted from 1.2.3.4, because the ip is in Spamhaus's list", "blocklisted"),
            (Outbound, "550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP.", "blocklisted"),
            (Outbound, "421 4.7.0 [TSS04] Messages from 1.2.3.4 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1", "rate_limited"),
            (Outbound, "550 5.4.1 Recipient address rejected: Access denied. For more information see https://aka.ms/EXOSmtpErrors", "user_unknown"),
            (Outbound, "552 5.3.4 Message size exceeds fixed limit", "message_too_large"),
            (Outbound, "554 5.7.1 <u@x>: Relay access denied", "relay_denied"),
            (Outbound, "535 5.7.8 Error: authentication failed: authentication failure", "auth_failed"),
            (Outbound, "451 4.3.0 <u@x>: Temporary lookup failure", "server_error"),
            (Outbound, "550 5.7.25 [1.2.3.4] The IP address sending this message does not have a PTR record setup", "reverse_dns"),
            (Outbound, "554 delivery error: dd This mailbox is disabled (554.30).", "mailbox_disabled"),
            (Outbound, "553 5.1.8 <b@x>... Domain of sender address b@x does not exist", "dns"),
            (Outbound, "550-Verification failed for <b@x> 550-Unrouteable address 550 Sender verify failed", "policy"),
            (Outbound, "550 Unrouteable address", "user_unknown"),
            (Outbound, "421 4.4.2 mail.example.com Error: timeout exceeded", "timeout"),
            (Inbound, "504 5.5.2 <WIN-X>: Helo command rejected: need fully-qualified hostname", "syntax"),
            (Inbound, "450 4.7.25 Client host rejected: cannot find your hostname, [1.2.3.4]", "reverse_dns"),
            (Inbound, "553 5.7.1 <a@b>: Sender address rejected: not logged in", "auth_required"),
            (Inbound, "5.7.1 Gtube pattern", "spam"),
            (Inbound, "550 5.7.1 Command rejected", "policy"),
            (Outbound, "599 weird", "other"),
        ];
        for (direction, text, want) in cases {
            assert_eq!(cause(direction, text), want, "{text}");
        }
    }

    #[test]
    fn locally_generated_statuses_get_causes_too() {
        let status = |enhanced: &str, text: &'static str| {
            let reply = Reply {
                code: None,
                enhanced: EnhancedStatus::parse(enhanced.as_bytes()),
                text,
                direction: Direction::Outbound,
                phase: Phase::Connect,
            };
            CauseRules::defaults().cause_of(&reply).as_str()
        };
        assert_eq!(status("4.4.1", "connect to x[1.2.3.4]:25: Connection timed out"), "connection");
        assert_eq!(
            status("4.4.2", "conversation with x[1.2.3.4] timed out while receiving the initial server greeting"),
            "timeout"
        );
        assert_eq!(
            status("5.4.4", "Host or domain name not found. Name service error for name=x type=A: Host not found"),
            "dns"
        );
        assert_eq!(status("4.7.5", "TLS is required, but was not offered by host x[1.2.3.4]"), "tls_required");
        assert_eq!(status("5.1.1", "unknown user: \"bob\""), "user_unknown");
        assert_eq!(status("2.0.0", "delivered to mailbox"), "none");
    }

    #[test]
    fn bad_rules_are_refused_with_their_position() {
        let err = CauseRules::from_yaml("rules:\n  - cause: Bad-Name\n").unwrap_err().to_string();
        assert!(err.contains("rule 0") && err.contains("cause name"), "{err}");
        let err = CauseRules::from_yaml("rules:\n  - cause: x\n    code: ['5']\n").unwrap_err().to_string();
        assert!(err.contains("code \"5\""), "{err}");
        let err = CauseRules::from_yaml("rules:\n  - cause: x\n    text: '(['\n").unwrap_err().to_string();
        assert_eq!(err, "cause rule 0 (x): text: \"([\" is not a usable regular expression: unclosed character class");
        let err = CauseRules::from_yaml("rules:\n  - cause: x\n    text: '\\w{1000}{1000}'\n").unwrap_err().to_string();
        assert!(err.contains("rule 0"), "{err}");
        let err = CauseRules::from_yaml("rules:\n  - cause: x\n    colour: red\n").unwrap_err().to_string();
        assert!(err.contains("colour"), "{err}");
    }

    /// The prefilter only skips patterns that cannot match: the causes are
    /// those of running every pattern (a `RegexSet`), on texts in any case,
    /// non-ASCII ones, and texts where a pattern matches without its word
    /// being where the prefilter looks.
    #[test]
    fn the_prefilter_never_drops_a_match() {
        let specs = CauseRules::default_specs();
        let mut patterns: Vec<String> = specs.iter().filter_map(|s| s.text.clone()).collect();
        patterns.extend(["\\d+ days?".to_string(), "(?-i:ABC)x".to_string(), "ſpam".to_string(), "a*".to_string()]);
        let refs: Vec<&str> = patterns.iter().map(String::as_str).collect();
        let set = RegexSetBuilder::new(&refs).case_insensitive(true).build().unwrap();
        let texts: Vec<meta::Regex> = refs.iter().map(|p| text_regex(p, TEXT_SIZE_LIMIT).unwrap()).collect();
        let prefilter = TextPrefilter::new(&refs);
        let samples = [
            "450 4.2.0 Recipient address rejected: GREYLISTED, see http://postgrey.schweikert.ch/help/x.html",
            "421 4.7.0 [TSS04] Messages temporarily deferred due to user complaints",
            "550 5.7.1 Service unavailable; client [1.2.3.4] BLOCKED using zen.spamhaus.org",
            "554 5.7.1 Message rejected: SPAM score too high; retry in 3 days",
            "550 5.7.1 ABCx and abcx",
            "550 5.7.1 \u{17f}pam and \u{212a}elvin: Spam with a non-ASCII text, ümlaut",
            "553 5.1.8 Domain of sender address x@y.example does not exist",
            "550 {BL1} spamhausspam \\bvirus antivirus; PTRS no ptr",
            "550 nothing in here at all",
            "ab",
            "",
        ];
        for text in samples {
            let want: Vec<usize> = set.matches(text).into_iter().collect();
            let scan = prefilter.scan(text);
            let got: Vec<usize> = (0..refs.len()).filter(|&i| scan.matches(i, &texts[i], text)).collect();
            assert_eq!(got, want, "{text}");
        }
        // More occurrences than a scan keeps positions of.
        let many = "rate ".repeat(MAX_HITS + 5) + "limit";
        let scan = prefilter.scan(&many);
        let got: Vec<usize> = (0..refs.len()).filter(|&i| scan.matches(i, &texts[i], &many)).collect();
        assert_eq!(got, set.matches(&many).into_iter().collect::<Vec<_>>());
        // Every built-in pattern has prefix literals, so none runs on every reply.
        for spec in &specs {
            if let Some(text) = &spec.text {
                assert!(prefixes(text).is_some(), "no prefilter for {text}");
            }
        }
        assert!(prefixes("\\d+ days?").is_none() && prefixes("a*").is_none() && prefixes("ſpam").is_none());
    }

    #[test]
    fn patterns() {
        let p = EnhancedPattern::parse("X.7.26").unwrap();
        assert!(p.matches(EnhancedStatus::parse(b"4.7.26").unwrap()));
        assert!(!p.matches(EnhancedStatus::parse(b"4.7.2").unwrap()));
        assert!(EnhancedPattern::parse("3.1.1").is_none());
        assert!(EnhancedPattern::parse("5.1").is_none());
        let c = CodePattern::parse("55x").unwrap();
        assert!(c.matches(ReplyCode::new(554).unwrap()));
        assert!(!c.matches(ReplyCode::new(450).unwrap()));
    }
}
