//! Reads log files through the exporter's per-source stages (framing →
//! decode → envelope → parser → classifier → counters) in this process, on
//! one thread, with no HTTP and no file following: the in-process cost of a
//! line, for profiling.
//!
//! ```sh
//! cargo build --release --example ingest
//! valgrind --tool=callgrind target/release/examples/ingest mail.log
//! ```
//!
//! Prints lines, seconds and lines/s to stderr, and with `--metrics` the
//! exposition text to stdout.

use std::fs::File;
use std::sync::Arc;
use std::time::Instant;

use mta_exporter::classify::Classifier;
use mta_exporter::framing::{LineFramer, DEFAULT_MAX_LINE};
use mta_exporter::metrics::{Metrics, MetricsOptions};
use mta_exporter::pipeline::Pipeline;

fn main() -> std::io::Result<()> {
    let mut print_metrics = false;
    let mut paths = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--metrics" => print_metrics = true,
            _ => paths.push(arg),
        }
    }
    if paths.is_empty() {
        eprintln!("usage: ingest [--metrics] FILE...");
        std::process::exit(2);
    }
    let metrics = Metrics::new(MetricsOptions::default());
    let mut pipeline = Pipeline::new("ingest", &metrics, Arc::new(Classifier::with_default_rules()));
    let started = Instant::now();
    let mut lines = 0u64;
    for path in &paths {
        let mut framer = LineFramer::new(DEFAULT_MAX_LINE);
        let mut file = File::open(path)?;
        loop {
            let n = framer.fill(&mut file)?;
            if n == 0 {
                break;
            }
            pipeline.add_bytes(n as u64);
            framer.drain(|line| {
                lines += 1;
                pipeline.process(line);
            });
        }
        framer.flush(|line| {
            lines += 1;
            pipeline.process(line);
        });
        pipeline.finish();
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("{lines} lines in {seconds:.3} s: {:.0} lines/s", lines as f64 / seconds);
    if print_metrics {
        print!("{}", metrics.encode_text());
    }
    Ok(())
}
