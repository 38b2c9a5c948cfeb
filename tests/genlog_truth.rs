//! Exact counts on logs from `../shared/bench/genlog.py`, reply for reply,
//! against the generator's own truth file: Postfix syslog files, Exim
//! mainlogs, and both interleaved in one file (`--format mixed`, read with
//! no configuration: the MTA is found per line).
//!
//! Mapping of the truth file's roles to our metrics:
//! * `remote` → `mta_smtp_replies_total{direction="outbound"}` (Postfix
//!   `status=` lines; Exim `=>` with `C="…"`, `==`, `**`);
//! * `local` → `{direction="inbound"}` (Postfix rejects; Exim's
//!   `authenticator failed for …: 535`);
//! * `other` is counted as follows (our documented choice): Postfix
//!   non-final per-MX replies (`host_said_nonfinal`, `refused_nonfinal`)
//!   and SMTP-client SASL failures (`smtp_sasl_fail`) are real replies from
//!   a remote server → `outbound`; Postfix `reject_warning` was never sent to
//!   anyone → `mta_smtp_reject_warnings_total`, not a reply; Exim
//!   sender-verify callouts (`exim_sender_verify`) quote a remote server's
//!   reply to our callout → `outbound`.
//! * Postfix status lines without a reply code (local deliveries, connection
//!   failures) → `outbound` with `code="none"` and the `dsn=` as enhanced.
//!   Exim writes no `dsn=`: its status lines without a code are outcomes
//!   only.
//! * Exim outcomes: `delivered` → `sent`, plus the `->` lines
//!   (`exim_additional`: another recipient delivered in the same
//!   transaction, which the generator does not count as `delivered`);
//!   `deferred` as it is; `bounced` except `** …: retry timeout exceeded`,
//!   which we count `expired` (Exim gave up when the retry time ran out, as
//!   Postfix's `status=expired`); `rejected` = the inbound rejections
//!   (`exim_rcpt_reject`, `exim_rcpt_defer`, `exim_data_reject`,
//!   `exim_helo_reject`), which carry no code (Exim does not log it), plus
//!   the protocol synchronization errors among `exim_misc` (`…: rejected
//!   connection from …`). The truth file does not single out these two
//!   shapes, so the test counts them in the generated file by their fixed
//!   text.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::{parse_exposition, shared_dir, sum, Samples};
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

/// (mta, direction, code, enhanced)
type ReplyKey = (String, String, String, String);

fn part(v: &Value) -> String {
    v.as_str().unwrap_or("none").to_string()
}

/// Expected counts per (mta, direction, code, enhanced) from the truth file.
fn expected_replies(truth: &Value) -> BTreeMap<ReplyKey, f64> {
    let mut want = BTreeMap::new();
    for entry in truth["codes"].as_array().expect("codes") {
        let mta = part(&entry["mta"]);
        let direction = match (mta.as_str(), entry["role"].as_str()) {
            (_, Some("remote")) => "outbound",
            (_, Some("local")) => "inbound",
            ("exim", Some("other")) => "outbound", // sender-verify callouts
            _ => continue,                         // Postfix `other` comes from kind_codes below
        };
        let key = (mta, direction.to_string(), part(&entry["basic"]), part(&entry["enhanced"]));
        *want.entry(key).or_insert(0.0) += entry["lines"].as_f64().expect("lines");
    }
    for kind in ["host_said_nonfinal", "refused_nonfinal", "smtp_sasl_fail"] {
        let Some(codes) = truth["kind_codes"][kind].as_object() else { continue };
        for (pair, n) in codes {
            let (basic, enhanced) = pair.split_once(' ').expect("`basic enhanced`");
            let part = |s: &str| if s == "-" { "none".to_string() } else { s.to_string() };
            let key = ("postfix".to_string(), "outbound".to_string(), part(basic), part(enhanced));
            *want.entry(key).or_insert(0.0) += n.as_f64().unwrap();
        }
    }
    want
}

fn kinds(truth: &Value, names: &[&str]) -> f64 {
    names.iter().map(|k| truth["kinds"][*k].as_f64().unwrap_or(0.0)).sum()
}

const POSTFIX_LOCAL_STATUSES: [&str; 5] =
    ["local_sent", "virtual_sent", "pipe_sent", "deferred_nocode", "bounced_nocode"];

fn check(lines: u32, seed: u32, format: &str, timestamp: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, truth) = generate(dir.path(), lines, seed, format, timestamp);
    let samples = ingest(&log);
    let has_postfix = format != "exim";
    let has_exim = format != "postfix";

    // Every reply with a code, per MTA, direction and code pair.
    let mut got = BTreeMap::new();
    for ((name, labels), value) in &samples {
        if name != "mta_smtp_replies_total" || labels["code"] == "none" && labels["direction"] == "outbound" {
            continue;
        }
        let key =
            (labels["mta"].clone(), labels["direction"].clone(), labels["code"].clone(), labels["enhanced"].clone());
        *got.entry(key).or_insert(0.0) += value;
    }
    let want = expected_replies(&truth);
    let differences: Vec<String> = want
        .keys()
        .chain(got.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|k| want.get(*k) != got.get(*k))
        .map(|k| format!("{k:?}: want {:?}, got {:?}", want.get(k), got.get(k)))
        .collect();
    assert!(differences.is_empty(), "reply counts differ:\n{}", differences.join("\n"));

    // Status lines without a reply: Postfix's are counted by their dsn.
    let none = |class| {
        sum(&samples, "mta_smtp_replies_total", &[("direction", "outbound"), ("code", "none"), ("class", class)])
    };
    assert_eq!(none("2xx"), kinds(&truth, &["local_sent", "virtual_sent", "pipe_sent"]));
    assert_eq!(none("4xx"), kinds(&truth, &["deferred_nocode"]));
    assert_eq!(none("5xx"), kinds(&truth, &["bounced_nocode"]));
    assert_eq!(
        sum(&samples, "mta_smtp_replies_total", &[("mta", "exim"), ("code", "none")]),
        0.0,
        "Exim writes no dsn: no reply without a code"
    );

    // reject_warning is a warning, not a reply.
    assert_eq!(sum(&samples, "mta_smtp_reject_warnings_total", &[]), kinds(&truth, &["reject_warning"]));

    // Delivery outcomes.
    let delivery = |mta, status| sum(&samples, "mta_deliveries_total", &[("mta", mta), ("status", status)]);
    let truth_status = |mta: &str, status: &str| truth["status"][mta][status].as_f64().unwrap_or(0.0);
    if has_postfix {
        for status in ["sent", "deferred", "bounced", "deliverable", "undeliverable"] {
            assert_eq!(delivery("postfix", status), truth_status("postfix", status), "postfix status {status}");
        }
        assert_eq!(delivery("postfix", "expired"), kinds(&truth, &["qmgr_expired"]));
        let postfix_local: f64 = truth["codes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["mta"] == "postfix" && c["role"] == "local")
            .map(|c| c["lines"].as_f64().unwrap())
            .sum();
        assert_eq!(delivery("postfix", "rejected"), postfix_local, "one rejection per inbound reject line");
    }
    if has_exim {
        let text = std::fs::read_to_string(&log).expect("log");
        // Exim's own lines: `YYYY-MM-DD hh:mm:ss …` (a space, not RFC 3339's `T`).
        let exim_lines = || text.lines().filter(|l| l.as_bytes().get(10) == Some(&b' '));
        let given_up = exim_lines().filter(|l| l.ends_with(": retry timeout exceeded")).count() as f64;
        let out_of_turn = exim_lines().filter(|l| l.contains(" SMTP protocol synchronization error (")).count() as f64;
        assert!(given_up > 0.0 && out_of_turn > 0.0, "the generator writes both shapes");
        assert_eq!(
            delivery("exim", "sent"),
            truth_status("exim", "delivered") + kinds(&truth, &["exim_additional"]),
            "`=>` and `->` lines"
        );
        assert_eq!(delivery("exim", "deferred"), truth_status("exim", "deferred"));
        assert_eq!(delivery("exim", "bounced"), truth_status("exim", "bounced") - given_up);
        assert_eq!(delivery("exim", "expired"), given_up);
        assert_eq!(
            delivery("exim", "rejected"),
            kinds(&truth, &["exim_rcpt_reject", "exim_rcpt_defer", "exim_data_reject", "exim_helo_reject"])
                + out_of_turn
        );
        assert!(truth_status("exim", "delivered") > 0.0 && truth_status("exim", "bounced") > 0.0);
    }
    for mta in ["sendmail", "opensmtpd", "other"] {
        assert_eq!(sum(&samples, "mta_deliveries_total", &[("mta", mta)]), 0.0, "nothing is taken for {mta}");
        assert_eq!(sum(&samples, "mta_smtp_replies_total", &[("mta", mta)]), 0.0, "nothing is taken for {mta}");
    }

    // Every line is accounted for, and the generator writes nothing we cannot read.
    let result = |r| sum(&samples, "mta_log_lines_total", &[("result", r)]);
    let foreign: f64 = ["opendkim", "dovecot", "policyd-spf", "amavis"]
        .iter()
        .map(|p| truth["programs"][*p].as_f64().unwrap_or(0.0))
        .sum();
    assert_eq!(result("unrecognized"), 0.0);
    assert_eq!(result("ignored"), foreign);
    let with_reply = truth["lines_with_code"].as_f64().unwrap() - kinds(&truth, &["reject_warning"])
        + kinds(&truth, &POSTFIX_LOCAL_STATUSES);
    assert_eq!(result("reply"), with_reply);
    assert_eq!(result("reply") + result("recognized") + result("ignored"), truth["lines"].as_f64().unwrap());
    let bytes = std::fs::metadata(&log).unwrap().len();
    assert_eq!(sum(&samples, "mta_log_bytes_total", &[]), bytes as f64);
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
