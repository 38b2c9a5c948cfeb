//! Every reply in the shared corpus (`../shared/corpus`) gets a cause, and
//! few land in `other`. Runs only where the corpus exists; elsewhere it says
//! so and checks nothing.
//!
//! All lines go through the same parser dispatch as the exporter, so the
//! replies of every MTA the parsers understand count. The Exim test suite
//! is reported apart: its replies are written by the test harness ("550 GO
//! AWAY", "450 not right now") and say nothing a rule could name.

mod common;

use std::collections::BTreeMap;

use common::corpus::{all_samples, corpus, source_of};
use common::shared_dir;
use mta_exporter::classify::Classifier;
use mta_exporter::parse::{parse_line, Line, Record};

/// Synthetic replies, reported but not held to the bound.
const SYNTHETIC: &[&str] = &["exim-testsuite"];

/// At most this share of the real-world replies may have cause `other`.
const MAX_OTHER_PERCENT: f64 = 1.0;

#[derive(Default)]
struct Tally {
    replies: usize,
    other: Vec<String>,
}

#[test]
fn corpus_replies_rarely_land_in_other() {
    let Some(corpus) = corpus() else {
        eprintln!("corpus not found at {}: cause test not run", shared_dir().join("corpus").display());
        return;
    };
    let classifier = Classifier::with_default_rules();
    let mut by_source: BTreeMap<String, Tally> = BTreeMap::new();
    for sample in all_samples(&corpus) {
        let Line::Mta(Record { reply: Some(reply), warning_only: false, .. }) = parse_line(&sample.line) else {
            continue;
        };
        let tally = by_source.entry(source_of(&sample).to_string()).or_default();
        tally.replies += 1;
        if classifier.classify(&reply).cause.as_str() == "other" {
            tally.other.push(format!("{}: {}", sample.origin, reply.text));
        }
    }
    let (mut replies, mut other) = (0, Vec::new());
    for (source, tally) in &by_source {
        let synthetic = SYNTHETIC.contains(&source.as_str());
        eprintln!(
            "{source}: {} replies, {} with cause other ({:.2}%){}",
            tally.replies,
            tally.other.len(),
            percent(tally.other.len(), tally.replies),
            if synthetic { " [synthetic, not bounded]" } else { "" }
        );
        if !synthetic {
            replies += tally.replies;
            other.extend(tally.other.iter().cloned());
        }
    }
    let share = percent(other.len(), replies);
    eprintln!("real-world corpus: {replies} replies, {} with cause other ({share:.2}%)", other.len());
    for line in &other {
        eprintln!("  other: {line}");
    }
    assert!(replies > 500, "expected the corpus to hold replies, found {replies}");
    assert!(share <= MAX_OTHER_PERCENT, "{share:.2}% of corpus replies have cause other:\n{}", other.join("\n"));
}

fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}
