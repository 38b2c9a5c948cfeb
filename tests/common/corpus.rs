//! Reading the shared corpus of real log lines (`../shared/corpus`, never
//! copied into this repository) for the conformance tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::shared_dir;

/// A line and where it came from.
pub struct Sample {
    pub origin: String,
    pub line: String,
    /// (code, enhanced) from an oracle, when the source has one.
    pub oracle: Option<(Option<String>, Option<String>)>,
}

pub fn corpus() -> Option<PathBuf> {
    let dir = shared_dir().join("corpus");
    dir.is_dir().then_some(dir)
}

pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

pub fn log_lines(path: &Path, corpus: &Path) -> Vec<Sample> {
    let bytes = std::fs::read(path).expect("read corpus file");
    let text = String::from_utf8_lossy(&bytes);
    let origin = path.strip_prefix(corpus).unwrap_or(path).display().to_string();
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with('#') && !l.trim().is_empty())
        .map(|(i, l)| {
            // OSSEC's test files wrap each line as `log N pass = <line>`.
            let l = match l.split_once(" pass = ") {
                Some((head, rest)) if head.starts_with("log ") => rest,
                _ => l,
            };
            Sample { origin: format!("{origin}:{}", i + 1), line: l.trim_end_matches('\r').to_string(), oracle: None }
        })
        .collect()
}

#[derive(Deserialize)]
struct GrokCase {
    data: String,
    #[serde(default)]
    results: BTreeMap<String, serde_json::Value>,
}

/// postfix-grok-patterns: one message without envelope per file; the file
/// name says the daemon (`smtpd_0030.yaml`).
pub fn grok_cases(dir: &Path, corpus: &Path) -> Vec<Sample> {
    let mut out = Vec::new();
    for path in files_under(dir) {
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let Ok(case) = serde_saphyr::from_str::<GrokCase>(&text) else { continue };
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let daemon = name.rsplit_once('_').map_or(name, |(d, _)| d);
        let daemon = match daemon {
            "tls_features" | "delays" | "command_counter_data" => "smtp",
            other => other,
        };
        let value = |key: &str| case.results.get(key).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string));
        let oracle = value("postfix_status_code").map(|code| (Some(code), value("postfix_status_code_enhanced")));
        for data in case.data.lines() {
            out.push(Sample {
                origin: path.strip_prefix(corpus).unwrap_or(&path).display().to_string(),
                line: format!("Jan  1 00:00:00 host postfix/{daemon}[1]: {data}"),
                oracle: oracle.clone(),
            });
        }
    }
    out
}

pub fn postfix_samples(corpus: &Path) -> Vec<Sample> {
    let mut samples = Vec::new();
    for path in files_under(corpus) {
        let rel = path.strip_prefix(corpus).unwrap_or(&path).to_string_lossy().to_string();
        let wanted = rel.starts_with("fail2ban/postfix")
            || (rel.starts_with("crowdsec-hub/postfix") && rel.ends_with(".log"))
            || (rel.starts_with("lightmeter-controlcenter/") && (rel.ends_with(".log") || rel.ends_with(".txt")))
            || rel == "ossec-hids/contrib/ossec-testing/tests/postfix.ini"
            || rel.starts_with("parse-syslog-mail/");
        if wanted {
            samples.extend(log_lines(&path, corpus));
        }
    }
    samples.extend(grok_cases(&corpus.join("postfix-grok-patterns").join("test"), corpus));
    samples.extend(lightmeter_tarball(corpus));
    samples
}

/// A whole `/var/log/mail.log*` set (Postfix with dovecot, amavis, opendkim …).
pub fn lightmeter_tarball(corpus: &Path) -> Vec<Sample> {
    let tarball = corpus.join("lightmeter-controlcenter/test_files/postfix_logs/complete.tar.gz");
    if !tarball.exists() {
        return Vec::new();
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let status = std::process::Command::new("tar").arg("-xzf").arg(&tarball).arg("-C").arg(dir.path()).status();
    assert!(status.is_ok_and(|s| s.success()), "tar could not unpack {}", tarball.display());
    files_under(dir.path())
        .iter()
        .filter(|p| p.extension().is_none_or(|e| e != "gz"))
        .flat_map(|p| log_lines(p, dir.path()))
        .map(|sample| Sample {
            origin: format!("lightmeter-controlcenter/complete.tar.gz/{}", sample.origin),
            ..sample
        })
        .collect()
}

/// Every log line of every source in the corpus, whatever the MTA: the
/// plain log files, the postfix-grok-patterns messages (with a Postfix
/// envelope) and the lightmeter tarball. Harness lines of the Exim test
/// suite are included; they are not MTA lines and parse as such.
pub fn all_samples(corpus: &Path) -> Vec<Sample> {
    let mut samples = Vec::new();
    for path in files_under(corpus) {
        let rel = path.strip_prefix(corpus).unwrap_or(&path).to_string_lossy().to_string();
        let skip = rel.ends_with(".md")
            || rel.ends_with(".gz")
            || rel.starts_with("postfix-grok-patterns/")
            || rel.ends_with("LICENSE")
            || rel.ends_with("COPYING");
        if !skip {
            samples.extend(log_lines(&path, corpus));
        }
    }
    samples.extend(grok_cases(&corpus.join("postfix-grok-patterns").join("test"), corpus));
    samples.extend(lightmeter_tarball(corpus));
    samples
}

/// The corpus source a sample came from: its top-level folder.
pub fn source_of(sample: &Sample) -> &str {
    sample.origin.split('/').next().unwrap_or("")
}
