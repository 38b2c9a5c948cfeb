//! Per-line cost of the parsers and the classifier, per MTA, on realistic
//! line mixes: `../shared/bench/genlog.py` Postfix, Exim and mixed logs
//! (generated at start, seeded, so every run reads the same lines) and the
//! real Sendmail and OpenSMTPD captures in `tests/fixtures/`.
//!
//! ```sh
//! cargo bench --bench pipeline                 # all groups
//! cargo bench --bench pipeline -- parse/exim   # one
//! ```
//!
//! Groups, each in lines per second:
//! * `parse` — envelope and MTA parser (`LineParser::parse`), no classification;
//! * `parse_classify` — the same plus the classifier on every reply;
//! * `pipeline` — what a source thread does per framed line: decode,
//!   parse, classify and count (`Pipeline::process`).
//!
//! The whole process (file following, HTTP, peers) is measured by
//! `bench/whole_process.py`; figures go to BENCHMARKS.md.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mta_exporter::classify::Classifier;
use mta_exporter::framing::FramedLine;
use mta_exporter::metrics::{Metrics, MetricsOptions};
use mta_exporter::parse::{Line, LineParser};
use mta_exporter::pipeline::Pipeline;

/// Lines per generated mix: large enough that the classifier's lazily built
/// automaton and the counter handle caches are warm, small enough to
/// generate in about a second.
const GENERATED_LINES: u32 = 20_000;

struct Mix {
    name: &'static str,
    lines: Vec<String>,
}

fn shared_dir() -> PathBuf {
    match std::env::var_os("MTA_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("shared"),
    }
}

fn generated(dir: &Path, name: &'static str, format: &str, seed: u32) -> Mix {
    let genlog = shared_dir().join("bench").join("genlog.py");
    assert!(genlog.exists(), "{} not found: set MTA_SHARED_DIR to the shared directory", genlog.display());
    let out = dir.join(format!("{name}.log"));
    let status = Command::new("python3")
        .arg(&genlog)
        .args(["--lines", &GENERATED_LINES.to_string(), "--seed", &seed.to_string(), "--format", format, "-o"])
        .arg(&out)
        .status()
        .expect("python3 runs");
    assert!(status.success(), "genlog.py failed");
    read(name, &out)
}

fn fixture(name: &'static str, path: &str) -> Mix {
    read(name, &Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
}

fn read(name: &'static str, path: &Path) -> Mix {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Mix { name, lines: text.lines().map(str::to_owned).collect() }
}

fn mixes() -> Vec<Mix> {
    let dir = tempfile::tempdir().expect("tempdir");
    vec![
        generated(dir.path(), "postfix", "postfix", 42),
        generated(dir.path(), "exim", "exim", 5),
        generated(dir.path(), "mixed", "mixed", 6),
        fixture("sendmail", "tests/fixtures/sendmail/scenarios.log"),
        fixture("opensmtpd", "tests/fixtures/opensmtpd/scenarios.log"),
    ]
}

fn benches(c: &mut Criterion) {
    let mixes = mixes();
    let classifier = Classifier::with_default_rules();

    let mut group = c.benchmark_group("parse");
    for mix in &mixes {
        group.throughput(Throughput::Elements(mix.lines.len() as u64));
        let mut parser = LineParser::default();
        group.bench_function(mix.name, |b| {
            b.iter(|| {
                for line in &mix.lines {
                    black_box(parser.parse(line));
                }
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("parse_classify");
    for mix in &mixes {
        group.throughput(Throughput::Elements(mix.lines.len() as u64));
        let mut parser = LineParser::default();
        group.bench_function(mix.name, |b| {
            b.iter(|| {
                for line in &mix.lines {
                    if let Line::Mta(record) = parser.parse(line) {
                        if let Some(reply) = record.reply {
                            black_box(classifier.classify(&reply));
                        }
                    }
                }
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("pipeline");
    let classifier = Arc::new(classifier);
    for mix in &mixes {
        group.throughput(Throughput::Elements(mix.lines.len() as u64));
        let metrics = Metrics::new(MetricsOptions::default());
        let mut pipeline = Pipeline::new(mix.name, &metrics, Arc::clone(&classifier));
        group.bench_function(mix.name, |b| {
            b.iter(|| {
                for line in &mix.lines {
                    black_box(pipeline.process(FramedLine { bytes: line.as_bytes(), truncated: false }));
                }
            })
        });
    }
    group.finish();
}

criterion_group!(pipeline, benches);
criterion_main!(pipeline);
