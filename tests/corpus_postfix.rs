//! Conformance on the shared corpus of real Postfix lines (`../shared/corpus`,
//! never copied into this repository). Runs only where the corpus exists;
//! elsewhere it says so and checks nothing.
//!
//! For every Postfix line: no panic; a line that carries a reply code (by an
//! independent pattern, not by our parser) yields a classified reply; and no
//! Postfix line is unrecognized. Where the corpus has an oracle (the
//! postfix-grok-patterns `results:`), the codes must match it.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::shared_dir;
use mta_exporter::classify::Classifier;
use mta_exporter::envelope;
use mta_exporter::parse::{self, postfix, Line, Record};
use regex::Regex;
use serde::Deserialize;

/// A line and where it came from.
struct Sample {
    origin: String,
    line: String,
    /// (code, enhanced) from an oracle, when the source has one.
    oracle: Option<(Option<String>, Option<String>)>,
}

fn corpus() -> Option<PathBuf> {
    let dir = shared_dir().join("corpus");
    dir.is_dir().then_some(dir)
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
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

fn log_lines(path: &Path, corpus: &Path) -> Vec<Sample> {
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
fn grok_cases(dir: &Path, corpus: &Path) -> Vec<Sample> {
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

fn postfix_samples(corpus: &Path) -> Vec<Sample> {
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
fn lightmeter_tarball(corpus: &Path) -> Vec<Sample> {
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
        .collect()
}

#[test]
fn every_postfix_reply_in_the_corpus_is_found() {
    let Some(corpus) = corpus() else {
        eprintln!("corpus not found at {}: conformance test not run", shared_dir().join("corpus").display());
        return;
    };
    // Independent of the parser: a code in a position where replies stand.
    let carries_code = Regex::new(
        r"(?: said: |refused to talk to me: |\]: |\]:\d+: |END-OF-MESSAGE: |>: )[245]\d\d[ -]|(?:\]: |>: )[245]\.\d{1,3}\.\d{1,3} |status=\w+ \([245]\d\d[ -]",
    )
    .unwrap();
    let classifier = Classifier::with_default_rules();
    let samples = postfix_samples(&corpus);
    let (mut lines, mut replies, mut classified_other) = (0, 0, 0);
    let mut missed = Vec::new();
    let mut unrecognized = Vec::new();
    let mut oracle_mismatch = Vec::new();
    for sample in &samples {
        let Some(env) = envelope::parse(&sample.line) else { continue };
        if !env.program.starts_with("postfix") {
            continue;
        }
        lines += 1;
        let record = match parse::parse_envelope(&env) {
            Line::Mta(record) => record,
            _ => {
                unrecognized.push(format!("{}: {}", sample.origin, sample.line));
                continue;
            }
        };
        let Record { reply, .. } = record;
        if let Some(reply) = reply {
            replies += 1;
            if classifier.classify(&reply).cause.as_str() == "other" {
                classified_other += 1;
            }
        } else if carries_code.is_match(env.message) {
            missed.push(format!("{}: {}", sample.origin, sample.line));
        }
        if let Some((code, enhanced)) = &sample.oracle {
            let got_code = reply.and_then(|r| r.code).map(|c| c.to_string());
            let got_enhanced = reply.and_then(|r| r.enhanced).map(|e| e.to_string());
            // RFC 3463 defines subjects 0-7 only: `5.12.345` is not an enhanced code.
            let valid_enhanced =
                enhanced.clone().filter(|e| e.split('.').nth(1).is_some_and(|s| s.len() == 1 && s < "8"));
            if got_code != *code || got_enhanced != valid_enhanced {
                oracle_mismatch.push(format!(
                    "{}: oracle {code:?} {enhanced:?}, got {got_code:?} {got_enhanced:?}",
                    sample.origin
                ));
            }
        }
        // The parser must agree with itself when called directly.
        assert_eq!(postfix::parse(env.program, env.message), Some(record));
    }
    eprintln!(
        "postfix corpus: {lines} lines, {replies} replies ({classified_other} with cause other), {} unrecognized, {} missed, {} oracle mismatches",
        unrecognized.len(),
        missed.len(),
        oracle_mismatch.len()
    );
    assert!(lines > 500, "expected the corpus to hold Postfix lines, found {lines}");
    assert!(unrecognized.is_empty(), "unrecognized Postfix lines:\n{}", unrecognized.join("\n"));
    assert!(missed.is_empty(), "lines with a code but no reply:\n{}", missed.join("\n"));
    assert!(oracle_mismatch.is_empty(), "codes differ from the grok oracle:\n{}", oracle_mismatch.join("\n"));
}
