//! The classifier with cause rules: the built-in table on every reply found
//! in the input, and rules made from the input (a YAML rule file before the
//! first NUL byte) compiled and applied when they are valid.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mta_exporter::classify::catalogue::catalogue;
use mta_exporter::classify::{CauseRules, Classifier};
use mta_exporter::model::{scan_reply, Direction, Phase, Reply};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let (rules, replies) = match data.iter().position(|&b| b == 0) {
        Some(at) => (Some(&data[..at]), &data[at + 1..]),
        None => (None, data),
    };
    // The built-in table once per process (it is immutable; compiling it
    // and warming its automaton each run would leave little time to fuzz).
    static DEFAULTS: OnceLock<Classifier> = OnceLock::new();
    let defaults = DEFAULTS.get_or_init(Classifier::with_default_rules);
    let mut custom = None;
    if let Some(rules) = rules.filter(|r| r.len() <= 4096) {
        if let Ok(rules) = CauseRules::from_yaml(&String::from_utf8_lossy(rules)) {
            custom = Some(Classifier::new(rules));
        }
    }
    let classifiers: Vec<&Classifier> = std::iter::once(defaults).chain(custom.as_ref()).collect();
    let text = common::text(replies);
    for line in text.split('\n') {
        let Some((code, enhanced, at)) = scan_reply(line) else { continue };
        assert!(at <= line.len());
        for direction in [Direction::Inbound, Direction::Outbound] {
            let reply = Reply { code, enhanced, text: &line[at..], direction, phase: Phase::Rcpt };
            common::check_reply(&reply, line);
            for classifier in &classifiers {
                let c = classifier.classify(&reply);
                assert_eq!(c.class, reply.class());
                let cause = c.cause.as_str();
                assert!(!cause.is_empty() && cause.len() <= 32, "{cause:?}");
            }
            let _ = catalogue().meaning(code, enhanced);
        }
    }
});
