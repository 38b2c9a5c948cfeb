//! The check every `tests/real_<mta>.rs` runs on a log captured from a real
//! MTA (`tests/mta/<mta>/run.sh`) against the counts its driver and the SMTP
//! sink know, independently of any parser (`*.expected.json`, whose
//! counting conventions are in `tests/mta/README.md`): exactly the same
//! conventions as the exporter's, so nothing is moved or subtracted here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mta_exporter::classify::Classifier;
use mta_exporter::framing::{FramedLine, LineFramer};
use mta_exporter::metrics::{Metrics, MetricsOptions};
use mta_exporter::model::Reply;
use mta_exporter::parse::{Line, LineParser};
use mta_exporter::pipeline::Pipeline;
use serde_json::Value;

use super::{parse_exposition, Samples};

/// (direction, phase, code, enhanced, status of the same line)
pub type Row = (String, String, String, String, String);

/// `tests/fixtures/<mta>/<log>` and the expected counts beside it
/// (`<stem>.expected.json`, or `<log>.expected.json` for a rejectlog).
pub fn fixture(mta: &str, log: &str) -> (String, Value) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(mta);
    let expected: PathBuf = match log.strip_suffix(".log") {
        Some(stem) => dir.join(format!("{stem}.expected.json")),
        None => dir.join(format!("{log}.expected.json")),
    };
    let text = std::fs::read_to_string(dir.join(log)).unwrap_or_else(|e| panic!("{}: {e}", dir.join(log).display()));
    let expected = std::fs::read_to_string(&expected).unwrap_or_else(|e| panic!("{}: {e}", expected.display()));
    (text, serde_json::from_str(&expected).expect("expected json"))
}

fn label(reply: &Reply<'_>) -> (String, String, String, String) {
    (
        reply.direction.label().to_string(),
        reply.phase.label().to_string(),
        reply.code.map_or_else(|| "none".into(), |c| c.to_string()),
        reply.enhanced.map_or_else(|| "none".into(), |e| e.to_string()),
    )
}

fn differences<K: Ord + std::fmt::Debug>(want: &BTreeMap<K, f64>, got: &BTreeMap<K, f64>) -> Vec<String> {
    let keys: BTreeSet<&K> = want.keys().chain(got.keys()).collect();
    keys.into_iter()
        .filter(|k| want.get(*k).copied().unwrap_or(0.0) != got.get(*k).copied().unwrap_or(0.0))
        .map(|k| format!("{k:?}: want {:?}, got {:?}", want.get(k), got.get(k)))
        .collect()
}

/// Sum of `name` per tuple of the values of `keys`, zero samples dropped.
fn by_labels(samples: &Samples, name: &str, keys: &[&str]) -> BTreeMap<Vec<String>, f64> {
    let mut out = BTreeMap::new();
    for ((n, labels), v) in samples {
        if n == name && *v != 0.0 {
            let key = keys.iter().map(|k| labels.get(*k).cloned().unwrap_or_default()).collect();
            *out.entry(key).or_default() += v;
        }
    }
    out
}

/// Asserts the fixture `tests/fixtures/<mta>/<log>` twice: reply by reply
/// with the parser (each reply with the delivery status of its line, once
/// per recipient the line reports on), and through the exporter's pipeline
/// and `/metrics` text (replies per `(mta, direction, phase, code,
/// enhanced)`, deliveries per status, reject warnings, no unrecognized and
/// no ignored line), exactly as `tests/mta/e2e_check.py` compares a live run.
pub fn check(mta: &str, log: &str) {
    let (text, expected) = fixture(mta, log);
    let name = format!("{mta}/{log}");

    let mut parser = LineParser::default();
    let mut got: BTreeMap<Row, f64> = BTreeMap::new();
    let mut unrecognized = Vec::new();
    for line in text.lines() {
        match parser.parse(line) {
            Line::Mta(record) => {
                assert_eq!(record.mta.label(), mta, "{name}: a line taken for another MTA: {line}");
                if let Some(reply) = record.reply.filter(|_| !record.warning_only) {
                    let (direction, phase, code, enhanced) = label(&reply);
                    let status = record.delivery.map_or("none", |s| s.label()).to_string();
                    *got.entry((direction, phase, code, enhanced, status)).or_default() += f64::from(record.recipients);
                }
            }
            Line::Unrecognized => unrecognized.push(line),
            Line::Foreign => panic!("{name}: a line taken for another program: {line}"),
        }
    }
    assert!(unrecognized.is_empty(), "unrecognized lines in {name}:\n{}", unrecognized.join("\n"));
    let mut want: BTreeMap<Row, f64> = BTreeMap::new();
    let mut want_series: BTreeMap<Vec<String>, f64> = BTreeMap::new();
    for row in expected["replies"].as_array().expect("replies") {
        let field = |k: &str| row[k].as_str().expect("string field").to_string();
        let count = row["count"].as_f64().expect("count");
        let key = (field("direction"), field("phase"), field("code"), field("enhanced"), field("status"));
        *want.entry(key).or_default() += count;
        let series = vec![mta.to_string(), field("direction"), field("phase"), field("code"), field("enhanced")];
        *want_series.entry(series).or_default() += count;
    }
    let diff = differences(&want, &got);
    assert!(diff.is_empty(), "{name}: replies differ from what the driver knows:\n{}", diff.join("\n"));

    // The same log through the exporter's pipeline and metrics.
    let metrics = Metrics::new(MetricsOptions::default());
    let mut pipeline = Pipeline::new(&name, &metrics, Arc::new(Classifier::with_default_rules()));
    let mut framer = LineFramer::new(64 * 1024);
    framer.push(text.as_bytes(), |line: FramedLine<'_>| {
        pipeline.process(line);
    });
    framer.flush(|line| {
        pipeline.process(line);
    });
    let samples = parse_exposition(&metrics.encode_text());
    let got_series = by_labels(&samples, "mta_smtp_replies_total", &["mta", "direction", "phase", "code", "enhanced"]);
    let diff = differences(&want_series, &got_series);
    assert!(diff.is_empty(), "{name}: mta_smtp_replies_total differs:\n{}", diff.join("\n"));

    let mut want_deliveries = BTreeMap::new();
    for (status, count) in expected["deliveries"].as_object().expect("deliveries") {
        let count = count.as_f64().expect("delivery count");
        if count != 0.0 {
            want_deliveries.insert(vec![mta.to_string(), status.clone()], count);
        }
    }
    let got_deliveries = by_labels(&samples, "mta_deliveries_total", &["mta", "status"]);
    let diff = differences(&want_deliveries, &got_deliveries);
    assert!(diff.is_empty(), "{name}: mta_deliveries_total differs:\n{}", diff.join("\n"));

    let warnings = expected["reject_warnings"].as_f64().expect("reject_warnings");
    let got_warnings = by_labels(&samples, "mta_smtp_reject_warnings_total", &["mta"]);
    assert_eq!(got_warnings.values().sum::<f64>(), warnings, "{name}: reject warnings");
    if warnings != 0.0 {
        assert_eq!(got_warnings.get(&vec![mta.to_string()]), Some(&warnings), "{name}: reject warnings of {mta}");
    }

    let lines = by_labels(&samples, "mta_log_lines_total", &["result"]);
    assert_eq!(lines.get(&vec!["unrecognized".to_string()]), None, "{name}: unrecognized lines");
    assert_eq!(lines.get(&vec!["ignored".to_string()]), None, "{name}: lines taken for another program");
    assert_eq!(lines.values().sum::<f64>(), text.lines().count() as f64, "{name}: lines read");
}
