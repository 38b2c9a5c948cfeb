//! The activity families (delays, messages, notifications, sessions, TLS,
//! SASL, postscreen, filters) on logs captured from real MTAs, compared
//! exactly with `<capture>.families.json`: the expected values written by
//! `tests/mta/families.py`, an independent regex reading of the same log
//! whose counts the capture drivers checked against what they did
//! (connections opened, TLS negotiated, logins failed …).
//!
//! Every series of every family must match: the same label sets, the same
//! counts, the same cumulative bucket counts; histogram sums to 1e-9.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use mta_exporter::classify::Classifier;
use mta_exporter::framing::FramedLine;
use mta_exporter::metrics::{Metrics, MetricsOptions};
use mta_exporter::pipeline::Pipeline;
use serde_json::Value;

const COUNTERS: &[&str] = &[
    "mta_messages_received_total",
    "mta_notifications_total",
    "mta_smtp_connections_total",
    "mta_smtp_disconnections_total",
    "mta_smtp_session_errors_total",
    "mta_tls_connections_total",
    "mta_tls_failures_total",
    "mta_smtp_auth_failures_total",
    "mta_postscreen_connections_total",
    "mta_postscreen_results_total",
    "mta_postscreen_violations_total",
    "mta_filter_actions_total",
];

const HISTOGRAMS: &[&str] = &[
    "mta_delivery_delay_seconds",
    "mta_delivery_stage_delay_seconds",
    "mta_message_size_bytes",
    "mta_message_recipients",
    "mta_postscreen_dnsbl_rank",
];

/// Reads a whole log through one pipeline, as the exporter does.
fn exporter_output(log: &Path) -> String {
    let metrics = Metrics::new(MetricsOptions::default());
    let mut pipeline = Pipeline::new("fixture", &metrics, Arc::new(Classifier::with_default_rules()));
    let bytes = std::fs::read(log).unwrap();
    for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        pipeline.process(FramedLine { bytes: line, truncated: false });
    }
    pipeline.finish();
    metrics.encode_text()
}

/// `name{a="x",b="y"} 3` → ("a=x,b=y" sorted, "3"), for one metric name.
fn series(text: &str, name: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else { continue };
        let (labels, value) = match rest.strip_prefix('{') {
            Some(r) => {
                let close = r.rfind('}').unwrap();
                (&r[..close], r[close + 1..].trim())
            }
            None if rest.starts_with(' ') => ("", rest.trim()),
            None => continue,
        };
        let mut pairs: Vec<(String, String)> = Vec::new();
        for pair in labels.split("\",").filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once("=\"").unwrap();
            pairs.push((k.to_string(), v.trim_end_matches('"').to_string()));
        }
        pairs.sort();
        let key = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
        out.insert(key, value.to_string());
    }
    out
}

fn without(key: &str, label: &str) -> (String, Option<String>) {
    let mut kept = Vec::new();
    let mut removed = None;
    for pair in key.split(',').filter(|p| !p.is_empty()) {
        match pair.strip_prefix(&format!("{label}=")) {
            Some(v) => removed = Some(v.to_string()),
            None => kept.push(pair),
        }
    }
    (kept.join(","), removed)
}

fn check(mta: &str, capture: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(mta);
    let text = exporter_output(&dir.join(format!("{capture}.log")));
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{capture}.families.json"))).unwrap()).unwrap();
    let mut problems = Vec::new();
    for &family in COUNTERS {
        let want: BTreeMap<String, String> = expected["counters"][family]
            .as_object()
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap().to_string())).collect())
            .unwrap_or_default();
        let got = series(&text, family);
        if got != want {
            problems.push(format!("{family}:\n  want {want:?}\n  got  {got:?}"));
        }
    }
    for &family in HISTOGRAMS {
        let want = expected["histograms"][family].as_object().cloned().unwrap_or_default();
        let counts = series(&text, &format!("{family}_count"));
        let sums = series(&text, &format!("{family}_sum"));
        let buckets = series(&text, &format!("{family}_bucket"));
        let want_keys: Vec<&String> = want.keys().collect();
        let got_keys: Vec<&String> = counts.keys().collect();
        if want_keys != got_keys {
            problems.push(format!("{family}: series want {want_keys:?} got {got_keys:?}"));
            continue;
        }
        for (key, w) in &want {
            let count: u64 = counts[key].parse().unwrap();
            if count != w["count"].as_u64().unwrap() {
                problems.push(format!("{family}{{{key}}} count want {} got {count}", w["count"]));
            }
            let sum: f64 = sums[key].parse().unwrap();
            if (sum - w["sum"].as_f64().unwrap()).abs() > 1e-9 {
                problems.push(format!("{family}{{{key}}} sum want {} got {sum}", w["sum"]));
            }
            // The exporter's buckets of this series, by upper bound.
            let mut got_buckets = BTreeMap::new();
            for (bucket_key, value) in &buckets {
                let (rest, le) = without(bucket_key, "le");
                if &rest == key {
                    let le = le.unwrap();
                    let le: f64 = if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap() };
                    got_buckets.insert(format!("{le:e}"), value.parse::<u64>().unwrap());
                }
            }
            let want_buckets: BTreeMap<String, u64> = w["buckets"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(le, n)| {
                    let le: f64 = if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap() };
                    (format!("{le:e}"), n.as_u64().unwrap())
                })
                .collect();
            if got_buckets != want_buckets {
                problems.push(format!("{family}{{{key}}} buckets\n  want {want_buckets:?}\n  got  {got_buckets:?}"));
            }
            // _count is the +Inf bucket.
            assert_eq!(got_buckets.get(&format!("{:e}", f64::INFINITY)), Some(&count), "{family}{{{key}}}");
        }
    }
    assert!(problems.is_empty(), "{mta}/{capture}:\n{}", problems.join("\n"));
}

#[test]
fn postfix_scenarios() {
    check("postfix", "scenarios");
    check("postfix", "scenarios-syslog");
}

/// TLS in and out, SASL, session errors, postscreen (with a DNSBL),
/// milter and header_checks HOLD/DISCARD, notifications.
#[test]
fn postfix_sessions() {
    check("postfix", "sessions");
}

/// The counts of what tests/mta/<mta>/sessions.py did, written out by hand
/// from its scenario list (the same counts it checked against the log).
fn driver_counts(mta: &str, capture: &str, want: &[(&str, &str, u64)]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(mta);
    let text = exporter_output(&dir.join(format!("{capture}.log")));
    for &(family, key, n) in want {
        let got = series(&text, family).get(key).cloned();
        assert_eq!(got, Some(n.to_string()), "{mta}/{capture}: {family}{{{key}}}");
    }
}

#[test]
fn exim_scenarios() {
    check("exim", "scenarios");
    check("exim", "scenarios-all");
}

/// TLS in (anonymous, client certificate) and out (verified, unverified,
/// a broken handshake), AUTH failures per authenticator, lost connections,
/// a timeout, too many errors, ACL discard.
#[test]
fn exim_sessions() {
    check("exim", "sessions");
    driver_counts(
        "exim",
        "sessions",
        &[
            (
                "mta_tls_connections_total",
                "cipher=aes_256_gcm,direction=inbound,mta=exim,protocol=tls1.3,trust=anonymous",
                1,
            ),
            (
                "mta_tls_connections_total",
                "cipher=aes_256_gcm,direction=inbound,mta=exim,protocol=tls1.3,trust=trusted",
                1,
            ),
            (
                "mta_tls_connections_total",
                "cipher=aes_256_gcm,direction=outbound,mta=exim,protocol=tls1.3,trust=verified",
                1,
            ),
            (
                "mta_tls_connections_total",
                "cipher=aes_256_gcm,direction=outbound,mta=exim,protocol=tls1.3,trust=untrusted",
                1,
            ),
            ("mta_tls_failures_total", "direction=outbound,mta=exim", 1),
            ("mta_smtp_auth_failures_total", "method=plain,mta=exim", 1),
            ("mta_smtp_auth_failures_total", "method=login,mta=exim", 2),
            ("mta_smtp_auth_failures_total", "method=cram_md5,mta=exim", 1),
            ("mta_smtp_session_errors_total", "error=lost_connection,mta=exim,phase=unknown,service=10025", 1),
            ("mta_smtp_session_errors_total", "error=lost_connection,mta=exim,phase=data,service=10025", 1),
            ("mta_smtp_session_errors_total", "error=timeout,mta=exim,phase=unknown,service=10025", 1),
            ("mta_smtp_session_errors_total", "error=too_many_errors,mta=exim,phase=other,service=10025", 1),
            ("mta_smtp_connections_total", "mta=exim,service=10025", 8),
            ("mta_smtp_connections_total", "mta=exim,service=10587", 12),
            ("mta_smtp_disconnections_total", "mta=exim,service=10025", 8),
            ("mta_smtp_disconnections_total", "mta=exim,service=10587", 12),
            ("mta_filter_actions_total", "action=discard,filter=acl,mta=exim", 1),
        ],
    );
}

#[test]
fn sendmail_scenarios() {
    check("sendmail", "scenarios");
}

/// STARTTLS in and out (and a broken handshake each way), AUTH failures per
/// mechanism, lost input channels, a command timeout, milter discard and
/// quarantine. Sendmail logs no connections.
#[test]
fn sendmail_sessions() {
    check("sendmail", "sessions");
    driver_counts(
        "sendmail",
        "sessions",
        &[
            (
                "mta_tls_connections_total",
                "cipher=aes_256_gcm,direction=inbound,mta=sendmail,protocol=tls1.3,trust=anonymous",
                1,
            ),
            (
                "mta_tls_connections_total",
                "cipher=aes_256_gcm,direction=inbound,mta=sendmail,protocol=tls1.3,trust=trusted",
                1,
            ),
            (
                "mta_tls_connections_total",
                "cipher=aes_256_gcm,direction=outbound,mta=sendmail,protocol=tls1.3,trust=trusted",
                1,
            ),
            ("mta_tls_failures_total", "direction=inbound,mta=sendmail", 1),
            ("mta_tls_failures_total", "direction=outbound,mta=sendmail", 1),
            ("mta_smtp_auth_failures_total", "method=login,mta=sendmail", 2),
            ("mta_smtp_auth_failures_total", "method=plain,mta=sendmail", 1),
            ("mta_smtp_auth_failures_total", "method=cram_md5,mta=sendmail", 1),
            ("mta_smtp_session_errors_total", "error=lost_connection,mta=sendmail,phase=mail,service=MTA-v4", 1),
            ("mta_smtp_session_errors_total", "error=lost_connection,mta=sendmail,phase=rcpt,service=MTA-v4", 1),
            ("mta_smtp_session_errors_total", "error=lost_connection,mta=sendmail,phase=data,service=unknown", 1),
            ("mta_smtp_session_errors_total", "error=timeout,mta=sendmail,phase=unknown,service=unknown", 1),
            ("mta_filter_actions_total", "action=discard,filter=milter,mta=sendmail", 1),
            ("mta_filter_actions_total", "action=quarantine,filter=milter,mta=sendmail", 1),
        ],
    );
}

#[test]
fn opensmtpd_scenarios() {
    check("opensmtpd", "scenarios");
}

/// TLS out, clients that leave (the probe, after EHLO, after RCPT). No TLS
/// in and no AUTH: Debian 12's OpenSMTPD 6.8 cannot do server-side TLS
/// with OpenSSL 3 (tests/mta/opensmtpd/sessions-conf/smtpd.conf.in).
#[test]
fn opensmtpd_sessions() {
    check("opensmtpd", "sessions");
    driver_counts(
        "opensmtpd",
        "sessions",
        &[
            (
                "mta_tls_connections_total",
                "cipher=aes_256_gcm,direction=outbound,mta=opensmtpd,protocol=tls1.3,trust=unknown",
                1,
            ),
            ("mta_smtp_connections_total", "mta=opensmtpd,service=smtpd", 8),
            ("mta_smtp_disconnections_total", "mta=opensmtpd,service=smtpd", 8),
            ("mta_smtp_session_errors_total", "error=lost_connection,mta=opensmtpd,phase=unknown,service=smtpd", 3),
        ],
    );
}
