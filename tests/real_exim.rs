//! Logs captured from a real Exim 4.96 (tests/fixtures/exim: Debian's
//! default `log_selector`, and `+all` with pids, milliseconds, ports,
//! `DT=` …) against counts the driver and the SMTP sink know, independently
//! of any parser (`*.expected.json`).
//!
//! One documented difference from those files: they count every line that
//! carries a reply, so a host-level error (`H=host [ip]: SMTP error …`) and
//! the recipient lines that repeat it count it twice. We count exactly once
//! per recipient, as for Postfix (see `parse::exim`): the host-level line
//! stands for the first recipient line that repeats it, which then counts
//! only its outcome. This test moves those repeats out of the expected
//! counts; which lines are repeats is found with plain regexes
//! ([`common::EximRepeats`]), not by the parser.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use common::{parse_exposition, sum, EximRepeats};
use mta_exporter::classify::Classifier;
use mta_exporter::framing::{FramedLine, LineFramer};
use mta_exporter::metrics::{Metrics, MetricsOptions};
use mta_exporter::model::Reply;
use mta_exporter::parse::{Line, LineParser};
use mta_exporter::pipeline::Pipeline;
use serde_json::Value;

/// (direction, phase, code, enhanced, status)
type Row = (String, String, String, String, String);

fn fixture(file: &str) -> (String, Value) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/exim");
    let log = std::fs::read_to_string(dir.join(file)).expect("fixture log");
    let expected = std::fs::read_to_string(
        dir.join(format!("{file}.expected.json")).to_string_lossy().replace(".log.expected", ".expected"),
    )
    .expect("expected counts");
    (log, serde_json::from_str(&expected).expect("expected json"))
}

/// The error text of an Exim line, from its first error marker on.
fn error_text(line: &str) -> &str {
    ["SMTP error", "LMTP error", "PRDR error", "Malformed SMTP reply", "Remote host closed connection"]
        .iter()
        .filter_map(|marker| line.find(marker))
        .min()
        .map_or("", |at| &line[at..])
}

fn label(reply: &Reply<'_>) -> (String, String, String, String) {
    (
        reply.direction.label().to_string(),
        reply.phase.label().to_string(),
        reply.code.map_or_else(|| "none".into(), |c| c.to_string()),
        reply.enhanced.map_or_else(|| "none".into(), |e| e.to_string()),
    )
}

fn check(file: &str, want_repeats: usize) {
    let (log, expected) = fixture(file);

    // Reply by reply, with the delivery status of the same line.
    let mut parser = LineParser::default();
    let mut repeats = EximRepeats::new();
    let mut got: BTreeMap<Row, u64> = BTreeMap::new();
    let mut moved: BTreeMap<Row, u64> = BTreeMap::new();
    // The reply of each host-level line, by its text after the host.
    let mut host_level: BTreeMap<String, (String, String, String, String)> = BTreeMap::new();
    let mut unrecognized = Vec::new();
    for line in log.lines() {
        let repeat = repeats.is_repeat(line);
        match parser.parse(line) {
            Line::Mta(record) => {
                let status = record.delivery.map_or("none", |s| s.label()).to_string();
                if let Some(reply) = record.reply {
                    let (direction, phase, code, enhanced) = label(&reply);
                    if repeats.is_host_level(line) {
                        host_level.insert(
                            error_text(line).to_string(),
                            (direction.clone(), phase.clone(), code.clone(), enhanced.clone()),
                        );
                    }
                    *got.entry((direction, phase, code, enhanced, status.clone())).or_default() += 1;
                }
                if repeat {
                    // The expected files count this line's reply; find it by the host-level line's text.
                    let error = host_level
                        .iter()
                        .find(|(text, _)| error_text(line).starts_with(text.as_str()))
                        .map(|(_, key)| key.clone())
                        .unwrap_or_else(|| panic!("{file}: a repeat without its host-level line: {line}"));
                    assert!(record.reply.is_none(), "{file}: a repeated host-level reply counted again: {line}");
                    *moved.entry((error.0, error.1, error.2, error.3, status)).or_default() += 1;
                }
            }
            Line::Unrecognized => unrecognized.push(line),
            Line::Foreign => {}
        }
    }
    assert!(unrecognized.is_empty(), "unrecognized lines in {file}:\n{}", unrecognized.join("\n"));
    assert_eq!(
        moved.values().sum::<u64>() as usize,
        want_repeats,
        "{file}: recipient lines repeating a host-level error"
    );

    let mut want: BTreeMap<Row, u64> = BTreeMap::new();
    for row in expected["replies"].as_array().expect("replies") {
        let field = |k: &str| row[k].as_str().expect("string field").to_string();
        let key = (field("direction"), field("phase"), field("code"), field("enhanced"), field("status"));
        *want.entry(key).or_default() += row["count"].as_u64().expect("count");
    }
    for (key, n) in &moved {
        let count = want.get_mut(key).unwrap_or_else(|| panic!("{file}: the expected counts have no {key:?}"));
        *count -= n;
    }
    want.retain(|_, n| *n > 0);
    let keys: BTreeSet<&Row> = want.keys().chain(got.keys()).collect();
    let differences: Vec<String> = keys
        .into_iter()
        .filter(|k| want.get(*k) != got.get(*k))
        .map(|k| format!("{k:?}: want {:?}, got {:?}", want.get(k), got.get(k)))
        .collect();
    assert!(differences.is_empty(), "{file}: replies differ from what the driver knows:\n{}", differences.join("\n"));

    // The same log through the exporter's pipeline and metrics.
    let metrics = Metrics::new(MetricsOptions::default());
    let mut pipeline = Pipeline::new(file, &metrics, Arc::new(Classifier::with_default_rules()));
    let mut framer = LineFramer::new(64 * 1024);
    framer.push(log.as_bytes(), |line: FramedLine<'_>| {
        pipeline.process(line);
    });
    framer.flush(|line| {
        pipeline.process(line);
    });
    let samples = parse_exposition(&metrics.encode_text());
    for (status, count) in expected["deliveries"].as_object().expect("deliveries") {
        assert_eq!(
            sum(&samples, "mta_deliveries_total", &[("mta", "exim"), ("status", status)]),
            count.as_f64().unwrap(),
            "{file}: deliveries {status}"
        );
    }
    let total: u64 = want.values().sum();
    assert_eq!(sum(&samples, "mta_smtp_replies_total", &[("mta", "exim")]), total as f64);
    assert_eq!(sum(&samples, "mta_smtp_replies_total", &[]), total as f64);
    assert_eq!(sum(&samples, "mta_log_lines_total", &[("result", "unrecognized")]), 0.0);
    assert_eq!(sum(&samples, "mta_log_lines_total", &[("result", "ignored")]), 0.0);
}

#[test]
fn exim_default_log_selector() {
    check("scenarios.log", 6);
}

#[test]
fn exim_all_log_selectors() {
    check("scenarios-all.log", 6);
}

#[test]
fn exim_rejectlog() {
    check("scenarios.rejectlog", 0);
}

#[test]
fn exim_rejectlog_all_log_selectors() {
    check("scenarios-all.rejectlog", 0);
}
