//! `Sources::reconcile`: start new sources, stop removed ones, keep
//! unchanged ones running, and never lose a counter value.

use std::io::Write;
use std::sync::Arc;

use mta_exporter::classify::Classifier;
use mta_exporter::metrics::{Metrics, MetricsOptions};
use mta_exporter::shutdown::Shutdown;
use mta_exporter::source::file::StartAt;
use mta_exporter::source::{FollowOptions, Reconciled, SourceKind, SourceSpec, Sources};

fn spec(name: &str, path: &std::path::Path) -> SourceSpec {
    SourceSpec {
        name: name.into(),
        kind: SourceKind::File { path: path.to_path_buf(), start: StartAt::Beginning },
        format: Default::default(),
        mta: Default::default(),
    }
}

fn lines(metrics: &Metrics, source: &str) -> f64 {
    let text = metrics.encode_text();
    text.lines()
        .filter(|l| l.starts_with("mta_log_lines_total{") && l.contains(&format!("source=\"{source}\"")))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

fn wait_for(metrics: &Metrics, source: &str, want: f64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while lines(metrics, source) < want {
        assert!(std::time::Instant::now() < deadline, "{source} never reached {want}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn reconcile_starts_stops_and_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (dir.path().join("a.log"), dir.path().join("b.log"), dir.path().join("c.log"));
    for p in [&a, &b, &c] {
        std::fs::write(p, "x\n").unwrap();
    }
    let metrics = Metrics::new(MetricsOptions::default());
    let classifier = Arc::new(Classifier::with_default_rules());
    let shutdown = Shutdown::new();
    let options = FollowOptions { poll_interval: std::time::Duration::from_millis(50), ..FollowOptions::default() };
    let mut sources =
        Sources::start(&[spec("a", &a), spec("b", &b)], options, &metrics, &classifier, &Default::default(), &shutdown)
            .unwrap();
    let board = sources.board();
    wait_for(&metrics, "a", 1.0);
    wait_for(&metrics, "b", 1.0);

    let report = sources.reconcile(&[spec("a", &a), spec("c", &c)]).unwrap();
    assert_eq!(report, Reconciled { started: vec!["c".into()], stopped: vec!["b".into()], kept: vec!["a".into()] });
    let names: Vec<String> = board.snapshot().iter().map(|s| s.spec.name.clone()).collect();
    assert_eq!(names, ["a", "c"]);
    wait_for(&metrics, "c", 1.0);
    // The kept source was not restarted: it does not read a.log again.
    std::fs::OpenOptions::new().append(true).open(&a).unwrap().write_all(b"y\n").unwrap();
    wait_for(&metrics, "a", 2.0);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(lines(&metrics, "a"), 2.0);
    // The stopped source's counters keep their value; its gauges are gone.
    assert_eq!(lines(&metrics, "b"), 1.0);
    assert!(!metrics.encode_text().contains("mta_log_lag_bytes{source=\"b\"}"));
    std::fs::OpenOptions::new().append(true).open(&b).unwrap().write_all(b"z\n").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(lines(&metrics, "b"), 1.0, "a stopped source reads nothing");
    shutdown.trigger();
    sources.join();
}
