//! The README's metric reference lists exactly the families `/metrics`
//! serves. A family has no lines in a scrape until its first series
//! exists, so this feeds every captured log of tests/fixtures (the four
//! MTAs, their sessions captures), a queue spool and the source handles,
//! then compares the family names with the README's table both ways.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use mta_exporter::classify::Classifier;
use mta_exporter::framing::FramedLine;
use mta_exporter::metrics::{ConfigFile, Metrics, MetricsOptions};
use mta_exporter::pipeline::Pipeline;
use mta_exporter::queue::{PostfixMethod, QueueMta, QueuesConfig, SpoolConfig};

#[tokio::test]
async fn readme_lists_every_served_family() {
    let metrics = Metrics::new(MetricsOptions::default());
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for mta in ["postfix", "exim", "sendmail", "opensmtpd"] {
        for entry in std::fs::read_dir(fixtures.join(mta)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("log") {
                continue;
            }
            let mut pipeline =
                Pipeline::new(&path.display().to_string(), &metrics, Arc::new(Classifier::with_default_rules()));
            let bytes = std::fs::read(&path).unwrap();
            for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                pipeline.process(FramedLine { bytes: line, truncated: false });
            }
        }
    }
    metrics.source_handles("source");
    metrics.syslog_handles("syslog");
    metrics.track_config_file(ConfigFile::Config);
    let spool = tempfile::tempdir().unwrap();
    for queue in ["incoming", "active", "deferred", "hold", "maildrop"] {
        std::fs::create_dir(spool.path().join(queue)).unwrap();
    }
    metrics.queues().configure(&QueuesConfig {
        spools: vec![SpoolConfig {
            mta: QueueMta::Postfix,
            path: spool.path().into(),
            method: PostfixMethod::Directories,
        }],
        ..QueuesConfig::default()
    });
    metrics.queues().refresh().await;

    let text = metrics.encode_text();
    let served: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            let (name, kind) = l.split_once(' ')?;
            Some(if kind == "counter" && !name.ends_with("_total") {
                format!("{name}_total")
            } else {
                name.to_string()
            })
        })
        .filter(|name| name.starts_with("mta_"))
        .collect();
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme.find("\n## Metrics\n").unwrap();
    let end = start + readme[start..].find("\nLabels:\n").unwrap();
    let listed: BTreeSet<String> = readme[start..end]
        .lines()
        .filter_map(|l| l.strip_prefix("| `mta_"))
        .filter_map(|l| l.split('`').next())
        .map(|name| format!("mta_{name}"))
        .collect();
    assert_eq!(served.difference(&listed).collect::<Vec<_>>(), Vec::<&String>::new(), "served but not in the README");
    assert_eq!(listed.difference(&served).collect::<Vec<_>>(), Vec::<&String>::new(), "in the README but not served");
}
