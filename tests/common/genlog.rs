//! What the exporter must count on a log from `../shared/bench/genlog.py`,
//! from the generator's truth file: used by `tests/genlog_truth.rs` (the
//! in-process pipeline) and by `examples/genlog_check.rs` (a real
//! exporter's scrape, for `bench/whole_process.py`).
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
//!   shapes, so they are counted in the generated file by their fixed text.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{sum, Samples};

/// (mta, direction, code, enhanced)
type ReplyKey = (String, String, String, String);

fn part(v: &Value) -> String {
    v.as_str().unwrap_or("none").to_string()
}

/// Expected counts per (mta, direction, code, enhanced) from the truth file.
fn expected_replies(truth: &Value) -> BTreeMap<ReplyKey, f64> {
    let mut want = BTreeMap::new();
    for entry in truth["codes"].as_array().into_iter().flatten() {
        let mta = part(&entry["mta"]);
        let direction = match (mta.as_str(), entry["role"].as_str()) {
            (_, Some("remote")) => "outbound",
            (_, Some("local")) => "inbound",
            ("exim", Some("other")) => "outbound", // sender-verify callouts
            _ => continue,                         // Postfix `other` comes from kind_codes below
        };
        let key = (mta, direction.to_string(), part(&entry["basic"]), part(&entry["enhanced"]));
        *want.entry(key).or_insert(0.0) += entry["lines"].as_f64().unwrap_or(f64::NAN);
    }
    for kind in ["host_said_nonfinal", "refused_nonfinal", "smtp_sasl_fail"] {
        let Some(codes) = truth["kind_codes"][kind].as_object() else { continue };
        for (pair, n) in codes {
            let (basic, enhanced) = pair.split_once(' ').unwrap_or((pair, "-"));
            let part = |s: &str| if s == "-" { "none".to_string() } else { s.to_string() };
            let key = ("postfix".to_string(), "outbound".to_string(), part(basic), part(enhanced));
            *want.entry(key).or_insert(0.0) += n.as_f64().unwrap_or(f64::NAN);
        }
    }
    want
}

fn kinds(truth: &Value, names: &[&str]) -> f64 {
    names.iter().map(|k| truth["kinds"][*k].as_f64().unwrap_or(0.0)).sum()
}

const POSTFIX_LOCAL_STATUSES: [&str; 5] =
    ["local_sent", "virtual_sent", "pipe_sent", "deferred_nocode", "bounced_nocode"];

/// Collects what differs from the truth, one message per difference.
struct Differences {
    repeat: f64,
    found: Vec<String>,
}

impl Differences {
    /// `got` must be `want` (a truth figure, times the number of copies).
    fn check(&mut self, what: &str, got: f64, want: f64) {
        let want = want * self.repeat;
        if got != want {
            self.found.push(format!("{what}: want {want}, got {got}"));
        }
    }
}

/// Every difference between a scrape of the exporter that read the
/// generated log (`repeat` copies of it, one after the other) and the
/// truth file. `log` is the generated log's text (one copy), needed only
/// for logs with Exim lines. Empty when every counter is right.
pub fn differences(samples: &Samples, truth: &Value, log: Option<&str>, repeat: u32) -> Vec<String> {
    let mut d = Differences { repeat: f64::from(repeat), found: Vec::new() };
    let format = truth["format"].as_str().unwrap_or("postfix");
    let has_postfix = format != "exim";
    let has_exim = format != "postfix";

    // Every reply with a code, per MTA, direction and code pair.
    let mut got = BTreeMap::new();
    for ((name, labels), value) in samples {
        if name != "mta_smtp_replies_total" || labels["code"] == "none" && labels["direction"] == "outbound" {
            continue;
        }
        let key =
            (labels["mta"].clone(), labels["direction"].clone(), labels["code"].clone(), labels["enhanced"].clone());
        *got.entry(key).or_insert(0.0) += value;
    }
    let want = expected_replies(truth);
    for key in want.keys().chain(got.keys()).collect::<BTreeSet<_>>() {
        let what = format!("replies {key:?}");
        d.check(&what, got.get(key).copied().unwrap_or(0.0), want.get(key).copied().unwrap_or(0.0));
    }

    // Status lines without a reply: Postfix's are counted by their dsn.
    let none = |class| {
        sum(samples, "mta_smtp_replies_total", &[("direction", "outbound"), ("code", "none"), ("class", class)])
    };
    d.check("outbound code=none 2xx", none("2xx"), kinds(truth, &["local_sent", "virtual_sent", "pipe_sent"]));
    d.check("outbound code=none 4xx", none("4xx"), kinds(truth, &["deferred_nocode"]));
    d.check("outbound code=none 5xx", none("5xx"), kinds(truth, &["bounced_nocode"]));
    d.check(
        "Exim replies without a code (Exim writes no dsn)",
        sum(samples, "mta_smtp_replies_total", &[("mta", "exim"), ("code", "none")]),
        0.0,
    );

    // reject_warning is a warning, not a reply.
    d.check("reject warnings", sum(samples, "mta_smtp_reject_warnings_total", &[]), kinds(truth, &["reject_warning"]));

    // Delivery outcomes.
    let delivery = |mta, status| sum(samples, "mta_deliveries_total", &[("mta", mta), ("status", status)]);
    let truth_status = |mta: &str, status: &str| truth["status"][mta][status].as_f64().unwrap_or(0.0);
    if has_postfix {
        for status in ["sent", "deferred", "bounced", "deliverable", "undeliverable"] {
            d.check(&format!("postfix {status}"), delivery("postfix", status), truth_status("postfix", status));
        }
        d.check("postfix expired", delivery("postfix", "expired"), kinds(truth, &["qmgr_expired"]));
        let postfix_local: f64 = truth["codes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["mta"] == "postfix" && c["role"] == "local")
            .map(|c| c["lines"].as_f64().unwrap_or(f64::NAN))
            .sum();
        d.check("postfix rejected (one per inbound reject line)", delivery("postfix", "rejected"), postfix_local);
    }
    if has_exim {
        let text = log.unwrap_or("");
        // Exim's own lines: `YYYY-MM-DD hh:mm:ss …` (a space, not RFC 3339's `T`).
        let exim_lines = || text.lines().filter(|l| l.as_bytes().get(10) == Some(&b' '));
        let given_up = exim_lines().filter(|l| l.ends_with(": retry timeout exceeded")).count() as f64;
        let out_of_turn = exim_lines().filter(|l| l.contains(" SMTP protocol synchronization error (")).count() as f64;
        if given_up == 0.0 || out_of_turn == 0.0 {
            d.found.push("the generated Exim log lacks the retry-timeout or synchronization-error shapes".into());
        }
        d.check(
            "exim sent (`=>` and `->` lines)",
            delivery("exim", "sent"),
            truth_status("exim", "delivered") + kinds(truth, &["exim_additional"]),
        );
        d.check("exim deferred", delivery("exim", "deferred"), truth_status("exim", "deferred"));
        d.check("exim bounced", delivery("exim", "bounced"), truth_status("exim", "bounced") - given_up);
        d.check("exim expired", delivery("exim", "expired"), given_up);
        d.check(
            "exim rejected",
            delivery("exim", "rejected"),
            kinds(truth, &["exim_rcpt_reject", "exim_rcpt_defer", "exim_data_reject", "exim_helo_reject"])
                + out_of_turn,
        );
    }
    for mta in ["sendmail", "opensmtpd", "other"] {
        d.check(&format!("{mta} deliveries"), sum(samples, "mta_deliveries_total", &[("mta", mta)]), 0.0);
        d.check(&format!("{mta} replies"), sum(samples, "mta_smtp_replies_total", &[("mta", mta)]), 0.0);
    }

    // Every line is accounted for, and the generator writes nothing we cannot read.
    let result = |r| sum(samples, "mta_log_lines_total", &[("result", r)]);
    let foreign: f64 = ["opendkim", "dovecot", "policyd-spf", "amavis"]
        .iter()
        .map(|p| truth["programs"][*p].as_f64().unwrap_or(0.0))
        .sum();
    d.check("unrecognized lines", result("unrecognized"), 0.0);
    d.check("ignored lines", result("ignored"), foreign);
    let with_reply = truth["lines_with_code"].as_f64().unwrap_or(f64::NAN) - kinds(truth, &["reject_warning"])
        + kinds(truth, &POSTFIX_LOCAL_STATUSES);
    d.check("lines with a reply", result("reply"), with_reply);
    d.check(
        "all lines",
        result("reply") + result("recognized") + result("ignored"),
        truth["lines"].as_f64().unwrap_or(f64::NAN),
    );
    d.check("bytes", sum(samples, "mta_log_bytes_total", &[]), truth["bytes"].as_f64().unwrap_or(f64::NAN));
    d.found
}
