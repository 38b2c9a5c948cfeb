//! Conformance on the shared corpus of real Postfix lines (`../shared/corpus`,
//! never copied into this repository). Runs only where the corpus exists;
//! elsewhere it says so and checks nothing.
//!
//! For every Postfix line: no panic; a line that carries a reply code (by an
//! independent pattern, not by our parser) yields a classified reply; and no
//! Postfix line is unrecognized. Where the corpus has an oracle (the
//! postfix-grok-patterns `results:`), the codes must match it.

mod common;

use common::corpus::{corpus, postfix_samples};
use common::shared_dir;
use mta_exporter::classify::Classifier;
use mta_exporter::envelope;
use mta_exporter::parse::{self, postfix, Line, Record};
use regex::Regex;

#[test]
fn every_postfix_reply_in_the_corpus_is_found() {
    let Some(corpus) = corpus() else {
        eprintln!("corpus not found at {}: conformance test not run", shared_dir().join("corpus").display());
        return;
    };
    // Independent of the parser: a code in a position where replies stand.
    let carries_code = Regex::new(
        r"(?: said: |refused to talk to me: |\]: |\]:\d+: |END-OF-MESSAGE: |>: )[245]\d\d[ -]|(?:\]: |>: )[245]\.\d{1,3}\.\d{1,3} |status=\w+ \([245]\d\d[ -]",
    )
    .unwrap();
    let classifier = Classifier::with_default_rules();
    let samples = postfix_samples(&corpus);
    let (mut lines, mut replies, mut classified_other) = (0, 0, 0);
    let mut missed = Vec::new();
    let mut unrecognized = Vec::new();
    let mut oracle_mismatch = Vec::new();
    for sample in &samples {
        let Some(env) = envelope::parse(&sample.line) else { continue };
        if !env.program.starts_with("postfix") {
            continue;
        }
        lines += 1;
        let record = match parse::parse_envelope(&env) {
            Line::Mta(record) => record,
            _ => {
                unrecognized.push(format!("{}: {}", sample.origin, sample.line));
                continue;
            }
        };
        let Record { reply, .. } = record;
        if let Some(reply) = reply {
            replies += 1;
            if classifier.classify(&reply).cause.as_str() == "other" {
                classified_other += 1;
            }
        } else if carries_code.is_match(env.message) {
            missed.push(format!("{}: {}", sample.origin, sample.line));
        }
        if let Some((code, enhanced)) = &sample.oracle {
            let got_code = reply.and_then(|r| r.code).map(|c| c.to_string());
            let got_enhanced = reply.and_then(|r| r.enhanced).map(|e| e.to_string());
            // RFC 3463 defines subjects 0-7 only: `5.12.345` is not an enhanced code.
            let valid_enhanced =
                enhanced.clone().filter(|e| e.split('.').nth(1).is_some_and(|s| s.len() == 1 && s < "8"));
            if got_code != *code || got_enhanced != valid_enhanced {
                oracle_mismatch.push(format!(
                    "{}: oracle {code:?} {enhanced:?}, got {got_code:?} {got_enhanced:?}",
                    sample.origin
                ));
            }
        }
        // The parser must agree with itself when called directly.
        assert_eq!(postfix::parse(env.program, env.message), Some(record));
    }
    eprintln!(
        "postfix corpus: {lines} lines, {replies} replies ({classified_other} with cause other), {} unrecognized, {} missed, {} oracle mismatches",
        unrecognized.len(),
        missed.len(),
        oracle_mismatch.len()
    );
    assert!(lines > 500, "expected the corpus to hold Postfix lines, found {lines}");
    assert!(unrecognized.is_empty(), "unrecognized Postfix lines:\n{}", unrecognized.join("\n"));
    assert!(missed.is_empty(), "lines with a code but no reply:\n{}", missed.join("\n"));
    assert!(oracle_mismatch.is_empty(), "codes differ from the grok oracle:\n{}", oracle_mismatch.join("\n"));
}
