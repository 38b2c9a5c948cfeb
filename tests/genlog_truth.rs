//! Exact counts on logs from `../shared/bench/genlog.py`, reply for reply,
//! against the generator's own truth file.
//!
//! Mapping of the truth file's roles to our metrics:
//! * `remote` → `mta_smtp_replies_total{direction="outbound"}`;
//! * `local` → `{direction="inbound"}`;
//! * `other` is counted as follows (our documented choice): non-final
//!   per-MX replies (`host_said_nonfinal`, `refused_nonfinal`) and
//!   SMTP-client SASL failures (`smtp_sasl_fail`) are real replies from a
//!   remote server → `outbound`; `reject_warning` was never sent to anyone →
//!   `mta_smtp_reject_warnings_total`, not a reply.
//! * status lines without a reply code (local deliveries, connection
//!   failures) → `outbound` with `code="none"` and the `dsn=` as enhanced.

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::{parse_exposition, shared_dir, sum, Samples};
use mta_exporter::classify::Classifier;
use mta_exporter::framing::LineFramer;
use mta_exporter::metrics::{Metrics, MetricsOptions};
use mta_exporter::pipeline::Pipeline;
use serde_json::Value;

fn generate(dir: &Path, lines: u32, seed: u32, timestamp: &str) -> (std::path::PathBuf, Value) {
    let genlog = shared_dir().join("bench").join("genlog.py");
    assert!(
        genlog.exists(),
        "{} not found: this test needs ../shared beside the checkout (or MTA_SHARED_DIR)",
        genlog.display()
    );
    let log = dir.join("mail.log");
    let truth = dir.join("truth.json");
    let status = Command::new("python3")
        .arg(&genlog)
        .args(["--lines", &lines.to_string(), "--seed", &seed.to_string(), "--format", "postfix"])
        .args(["--timestamp", timestamp])
        .arg("--truth")
        .arg(&truth)
        .arg("-o")
        .arg(&log)
        .status()
        .expect("python3 runs");
    assert!(status.success(), "genlog.py failed");
    let truth: Value = serde_json::from_reader(File::open(&truth).expect("truth file")).expect("truth json");
    (log, truth)
}

/// Reads the file through the same pipeline the exporter runs per source.
fn ingest(path: &Path) -> Samples {
    let metrics = Metrics::new(MetricsOptions::default());
    let mut pipeline = Pipeline::new("genlog", &metrics, Arc::new(Classifier::with_default_rules()));
    let mut framer = LineFramer::new(64 * 1024);
    let mut file = File::open(path).expect("log");
    loop {
        let n = framer.fill(&mut file).expect("read");
        if n == 0 {
            break;
        }
        pipeline.add_bytes(n as u64);
        framer.drain(|line| {
            pipeline.process(line);
        });
    }
    framer.flush(|line| {
        pipeline.process(line);
    });
    parse_exposition(&metrics.encode_text())
}

fn code_key(basic: &Value, enhanced: &Value) -> (String, String) {
    let part = |v: &Value| v.as_str().unwrap_or("none").to_string();
    (part(basic), part(enhanced))
}

/// Expected counts per (direction, code, enhanced) from the truth file.
fn expected_replies(truth: &Value) -> BTreeMap<(String, String, String), f64> {
    let mut want = BTreeMap::new();
    for entry in truth["codes"].as_array().expect("codes") {
        let direction = match entry["role"].as_str() {
            Some("remote") => "outbound",
            Some("local") => "inbound",
            _ => continue, // `other` comes from kind_codes below
        };
        let (code, enhanced) = code_key(&entry["basic"], &entry["enhanced"]);
        *want.entry((direction.to_string(), code, enhanced)).or_insert(0.0) += entry["lines"].as_f64().expect("lines");
    }
    for kind in ["host_said_nonfinal", "refused_nonfinal", "smtp_sasl_fail"] {
        let Some(codes) = truth["kind_codes"][kind].as_object() else { continue };
        for (pair, n) in codes {
            let (basic, enhanced) = pair.split_once(' ').expect("`basic enhanced`");
            let part = |s: &str| if s == "-" { "none".to_string() } else { s.to_string() };
            *want.entry(("outbound".to_string(), part(basic), part(enhanced))).or_insert(0.0) += n.as_f64().unwrap();
        }
    }
    want
}

fn kinds(truth: &Value, names: &[&str]) -> f64 {
    names.iter().map(|k| truth["kinds"][*k].as_f64().unwrap_or(0.0)).sum()
}

fn check(lines: u32, seed: u32, timestamp: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, truth) = generate(dir.path(), lines, seed, timestamp);
    let samples = ingest(&log);

    // Every reply with a code, per direction and code pair.
    let mut got = BTreeMap::new();
    for ((name, labels), value) in &samples {
        if name != "mta_smtp_replies_total" || labels["code"] == "none" && labels["direction"] == "outbound" {
            continue;
        }
        *got.entry((labels["direction"].clone(), labels["code"].clone(), labels["enhanced"].clone())).or_insert(0.0) +=
            value;
    }
    let want = expected_replies(&truth);
    let differences: Vec<String> = want
        .keys()
        .chain(got.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|k| want.get(*k) != got.get(*k))
        .map(|k| format!("{k:?}: want {:?}, got {:?}", want.get(k), got.get(k)))
        .collect();
    assert!(differences.is_empty(), "reply counts differ:\n{}", differences.join("\n"));

    // Status lines without a reply: counted by their dsn, class from the dsn.
    let none = |class| {
        sum(&samples, "mta_smtp_replies_total", &[("direction", "outbound"), ("code", "none"), ("class", class)])
    };
    assert_eq!(none("2xx"), kinds(&truth, &["local_sent", "virtual_sent", "pipe_sent"]));
    assert_eq!(none("4xx"), kinds(&truth, &["deferred_nocode"]));
    assert_eq!(none("5xx"), kinds(&truth, &["bounced_nocode"]));

    // reject_warning is a warning, not a reply.
    assert_eq!(sum(&samples, "mta_smtp_reject_warnings_total", &[]), kinds(&truth, &["reject_warning"]));

    // Delivery outcomes.
    let delivery = |status| sum(&samples, "mta_deliveries_total", &[("mta", "postfix"), ("status", status)]);
    for status in ["sent", "deferred", "bounced", "deliverable", "undeliverable"] {
        assert_eq!(delivery(status), truth["status"]["postfix"][status].as_f64().unwrap_or(0.0), "status {status}");
    }
    assert_eq!(delivery("expired"), kinds(&truth, &["qmgr_expired"]));
    assert_eq!(
        delivery("rejected"),
        truth["by_role"]["local"].as_f64().unwrap(),
        "one rejection per inbound reject line"
    );

    // Every line is accounted for, and the generator writes nothing we cannot read.
    let result = |r| sum(&samples, "mta_log_lines_total", &[("result", r)]);
    let foreign: f64 = ["opendkim", "dovecot", "policyd-spf", "amavis"]
        .iter()
        .map(|p| truth["programs"][*p].as_f64().unwrap_or(0.0))
        .sum();
    assert_eq!(result("unrecognized"), 0.0);
    assert_eq!(result("ignored"), foreign);
    let with_reply = truth["lines_with_code"].as_f64().unwrap() - kinds(&truth, &["reject_warning"])
        + kinds(&truth, &["local_sent", "virtual_sent", "pipe_sent", "deferred_nocode", "bounced_nocode"]);
    assert_eq!(result("reply"), with_reply);
    assert_eq!(result("reply") + result("recognized") + result("ignored"), truth["lines"].as_f64().unwrap());
    let mut bytes = 0u64;
    File::open(&log).unwrap().read_to_end(&mut Vec::new()).map(|n| bytes = n as u64).unwrap();
    assert_eq!(sum(&samples, "mta_log_bytes_total", &[]), bytes as f64);
}

#[test]
fn genlog_200k_rfc3164() {
    check(200_000, 42, "rfc3164");
}

#[test]
fn genlog_50k_rfc3339_other_seed() {
    check(50_000, 7, "rfc3339");
}
