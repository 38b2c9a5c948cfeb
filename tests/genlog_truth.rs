//! Exact counts on logs from `../shared/bench/genlog.py`, reply for reply,
//! against the generator's own truth file: Postfix syslog files, Exim
//! mainlogs, and both interleaved in one file (`--format mixed`, read with
//! no configuration: the MTA is found per line).
//!
//! The mapping from the truth file to our metrics is in
//! `tests/common/genlog.rs` (shared with `bench/whole_process.py`, which
//! checks a running exporter the same way).

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::{genlog, parse_exposition, shared_dir, Samples};
use mta_exporter::classify::Classifier;
use mta_exporter::framing::LineFramer;
use mta_exporter::metrics::{Metrics, MetricsOptions};
use mta_exporter::pipeline::Pipeline;
use serde_json::Value;

fn generate(dir: &Path, lines: u32, seed: u32, format: &str, timestamp: &str) -> (PathBuf, Value) {
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
        .args(["--lines", &lines.to_string(), "--seed", &seed.to_string(), "--format", format])
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
    assert!(pipeline.finish().is_empty(), "plain lines leave nothing held");
    parse_exposition(&metrics.encode_text())
}

fn check(lines: u32, seed: u32, format: &str, timestamp: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, truth) = generate(dir.path(), lines, seed, format, timestamp);
    let samples = ingest(&log);
    assert_eq!(truth["bytes"].as_u64(), Some(std::fs::metadata(&log).unwrap().len()), "the truth file's size");
    let text = std::fs::read_to_string(&log).expect("log");
    let differences = genlog::differences(&samples, &truth, Some(&text), 1);
    assert!(differences.is_empty(), "counts differ from the truth file:\n{}", differences.join("\n"));
}

#[test]
fn genlog_200k_rfc3164() {
    check(200_000, 42, "postfix", "rfc3164");
}

#[test]
fn genlog_50k_rfc3339_other_seed() {
    check(50_000, 7, "postfix", "rfc3339");
}

#[test]
fn genlog_exim_100k() {
    check(100_000, 5, "exim", "rfc3164");
}

#[test]
fn genlog_mixed_100k() {
    check(100_000, 6, "mixed", "rfc3164");
}

#[test]
fn genlog_mixed_30k_rfc3339() {
    check(30_000, 11, "mixed", "rfc3339");
}
