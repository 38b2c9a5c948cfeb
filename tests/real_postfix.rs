//! Logs captured from a real Postfix 3.7 (tests/mta/postfix/run.sh) against
//! counts the driver and the SMTP sink know, independently of any parser
//! (tests/fixtures/postfix/*.expected.json).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use common::{parse_exposition, sum};
use mta_exporter::framing::{FramedLine, LineFramer};
use mta_exporter::metrics::{Metrics, MetricsOptions};
use mta_exporter::parse::{parse_line, Line};
use mta_exporter::pipeline::Pipeline;
use mta_exporter::{classify::Classifier, model::Reply};
use serde_json::Value;

/// (direction, phase, code, enhanced, status)
type Row = (String, String, String, String, String);

fn fixture(name: &str) -> (String, Value) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/postfix");
    let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).expect("fixture log");
    let expected = std::fs::read_to_string(dir.join(format!("{name}.expected.json"))).expect("expected counts");
    (log, serde_json::from_str(&expected).expect("expected json"))
}

fn label(reply: &Reply<'_>) -> (String, String, String, String) {
    (
        reply.direction.label().to_string(),
        reply.phase.label().to_string(),
        reply.code.map_or_else(|| "none".into(), |c| c.to_string()),
        reply.enhanced.map_or_else(|| "none".into(), |e| e.to_string()),
    )
}

fn check(name: &str) {
    let (log, expected) = fixture(name);

    // Reply by reply, with the delivery status of the same line.
    let mut got: BTreeMap<Row, u64> = BTreeMap::new();
    let mut unrecognized = Vec::new();
    for line in log.lines() {
        match parse_line(line) {
            Line::Mta(record) => {
                if let Some(reply) = record.reply.filter(|_| !record.warning_only) {
                    let (direction, phase, code, enhanced) = label(&reply);
                    let status = record.delivery.map_or("none", |s| s.label()).to_string();
                    *got.entry((direction, phase, code, enhanced, status)).or_default() += 1;
                }
            }
            Line::Unrecognized => unrecognized.push(line),
            Line::Foreign => {}
        }
    }
    assert!(unrecognized.is_empty(), "unrecognized lines in {name}:\n{}", unrecognized.join("\n"));
    let mut want: BTreeMap<Row, u64> = BTreeMap::new();
    for row in expected["replies"].as_array().expect("replies") {
        let field = |k: &str| row[k].as_str().expect("string field").to_string();
        let key = (field("direction"), field("phase"), field("code"), field("enhanced"), field("status"));
        *want.entry(key).or_default() += row["count"].as_u64().expect("count");
    }
    let keys: std::collections::BTreeSet<&Row> = want.keys().chain(got.keys()).collect();
    let differences: Vec<String> = keys
        .into_iter()
        .filter(|k| want.get(*k) != got.get(*k))
        .map(|k| format!("{k:?}: want {:?}, got {:?}", want.get(k), got.get(k)))
        .collect();
    assert!(differences.is_empty(), "{name}: replies differ from what the driver knows:\n{}", differences.join("\n"));

    // The same log through the exporter's pipeline and metrics.
    let metrics = Metrics::new(MetricsOptions::default());
    let mut pipeline = Pipeline::new(name, &metrics, Arc::new(Classifier::with_default_rules()));
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
            sum(&samples, "mta_deliveries_total", &[("status", status)]),
            count.as_f64().unwrap(),
            "{name}: deliveries {status}"
        );
    }
    assert_eq!(
        sum(&samples, "mta_smtp_reject_warnings_total", &[]),
        expected["reject_warnings"].as_f64().unwrap(),
        "{name}: reject warnings"
    );
    let total: u64 = want.values().sum();
    assert_eq!(sum(&samples, "mta_smtp_replies_total", &[]), total as f64);
    assert_eq!(sum(&samples, "mta_log_lines_total", &[("result", "unrecognized")]), 0.0);
}

#[test]
fn postfix_maillog_file() {
    check("scenarios");
}

#[test]
fn postfix_via_syslog() {
    check("scenarios-syslog");
}

#[test]
fn the_bundled_sample_is_the_captured_log() {
    let sample = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sample/postfix.log"))
        .expect("config/sample/postfix.log");
    assert_eq!(sample, fixture("scenarios").0);
}
