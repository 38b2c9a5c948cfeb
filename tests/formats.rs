//! Envelopes and line formats through the whole pipeline (decoder,
//! envelope, MTA parser, classifier, counters), with exact counter values:
//! the same replies wrapped as a plain syslog file, an RFC 5424 relay, CRI
//! and Docker container logs, and `journalctl -o json` output, with `\r\n`
//! endings, invalid UTF-8 and no final newline.

mod common;

use std::sync::Arc;

use common::{parse_exposition, sum, Samples};
use mta_exporter::classify::Classifier;
use mta_exporter::decode::Format;
use mta_exporter::framing::LineFramer;
use mta_exporter::metrics::{Metrics, MetricsOptions};
use mta_exporter::parse::{MtaSelection, OtherParsers};
use mta_exporter::pipeline::{LineOptions, Pipeline};

/// Feeds `input` through a pipeline in small reads, then ends the input.
fn run(input: &[u8], format: Format, mta: MtaSelection) -> Samples {
    let metrics = Metrics::new(MetricsOptions::default());
    let options = LineOptions { format, mta, others: Arc::new(OtherParsers::default()), max_line_bytes: 64 * 1024 };
    let mut pipeline = Pipeline::with_options("t", &metrics, Arc::new(Classifier::with_default_rules()), options);
    let mut framer = LineFramer::new(64 * 1024);
    for chunk in input.chunks(7) {
        let mut reader = chunk;
        let n = framer.fill(&mut reader).expect("read");
        pipeline.add_bytes(n as u64);
        framer.drain(|line| {
            pipeline.process(line);
        });
    }
    framer.flush(|line| {
        pipeline.process(line);
    });
    pipeline.finish();
    parse_exposition(&metrics.encode_text())
}

/// (mta, direction, phase, code, enhanced) of every reply series, with counts.
fn replies(samples: &Samples) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = samples
        .iter()
        .filter(|((name, _), _)| name == "mta_smtp_replies_total")
        .map(|((_, l), v)| {
            (format!("{} {} {} {} {}", l["mta"], l["direction"], l["phase"], l["code"], l["enhanced"]), *v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn lines(samples: &Samples) -> [f64; 4] {
    ["reply", "recognized", "ignored", "unrecognized"].map(|r| sum(samples, "mta_log_lines_total", &[("result", r)]))
}

const EXIM_BOUNCE: &str = "1tGRwu-005JDt-yH ** l@p.example R=dnslookup T=remote_smtp H=mx.p.example [192.0.2.4]: SMTP error from remote mail server after RCPT TO:<l@p.example>: 550 5.1.1 no such user";
const SENDMAIL_REJECT: &str = "55IC59VD017002: ruleset=check_rcpt, arg1=<s@t.example>, relay=[198.51.100.67], reject=550 5.7.1 <s@t.example>... Relaying denied";
const OPENSMTPD_FAIL: &str = "c1a89cb774083905 smtp failed-command command=\"RCPT TO:<x@y.example>\" result=\"550 Invalid recipient: <x@y.example>\"";

fn want_three() -> Vec<(String, f64)> {
    vec![
        ("exim outbound rcpt 550 5.1.1".to_string(), 1.0),
        ("opensmtpd inbound rcpt 550 none".to_string(), 1.0),
        ("sendmail inbound rcpt 550 5.7.1".to_string(), 1.0),
    ]
}

#[test]
fn plain_syslog_with_crlf_invalid_utf8_and_no_final_newline() {
    let mut input = Vec::new();
    input.extend_from_slice(format!("Nov 28 17:35:01 mx1 exim[1]: {EXIM_BOUNCE}\r\n").as_bytes());
    input.extend_from_slice(format!("<22>Nov 28 17:35:02 mx1 sm-mta[2]: {SENDMAIL_REJECT}\r\n").as_bytes());
    input.extend_from_slice(b"Nov 28 17:35:03 mx1 dovecot: imap-login: caf\xe9 \xff\r\n");
    input.extend_from_slice(format!("Nov 28 17:35:04 mx1 smtpd[3]: {OPENSMTPD_FAIL}").as_bytes());
    let samples = run(&input, Format::Auto, MtaSelection::Auto);
    assert_eq!(replies(&samples), want_three());
    assert_eq!(lines(&samples), [3.0, 0.0, 1.0, 0.0]);
    assert_eq!(sum(&samples, "mta_log_bytes_total", &[]), input.len() as f64);
    let rejected = |mta| sum(&samples, "mta_deliveries_total", &[("mta", mta), ("status", "rejected")]);
    assert_eq!((rejected("sendmail"), rejected("opensmtpd")), (1.0, 1.0));
    assert_eq!(sum(&samples, "mta_deliveries_total", &[("mta", "exim"), ("status", "bounced")]), 1.0);
}

#[test]
fn rfc5424_with_and_without_structured_data() {
    let input = format!(
        "<22>1 2026-11-28T17:35:01.123456+00:00 mx1 exim 1 - [meta sequenceId=\"7\"] {EXIM_BOUNCE}\n\
         <22>1 2026-11-28T17:35:02Z mx1 sendmail 2 - - {SENDMAIL_REJECT}\n\
         <22>1 2026-11-28T17:35:03Z mx1 smtpd 3 ID1 - \u{feff}{OPENSMTPD_FAIL}\n\
         <22>1 2026-11-28T17:35:04Z mx1 dovecot - - - imap-login: Login\n"
    );
    let samples = run(input.as_bytes(), Format::Auto, MtaSelection::Auto);
    assert_eq!(replies(&samples), want_three());
    assert_eq!(lines(&samples), [3.0, 0.0, 1.0, 0.0]);
}

#[test]
fn cri_container_log_with_partial_lines() {
    let (head, tail) = SENDMAIL_REJECT.split_at(40);
    let input = format!(
        "2026-11-28T17:35:01.000000001Z stdout F 2026-11-28 17:35:01 {EXIM_BOUNCE}\n\
         2026-11-28T17:35:02.000000001Z stdout P Nov 28 17:35:02 mx1 sm-mta[2]: {head}\n\
         2026-11-28T17:35:02.100000001Z stderr F {OPENSMTPD_FAIL}\n\
         2026-11-28T17:35:02.200000001Z stdout F {tail}\n\
         2026-11-28T17:35:03.000000001Z stdout P a partial line the container never finished\n"
    );
    for format in [Format::Cri, Format::Auto] {
        let samples = run(input.as_bytes(), format, MtaSelection::Auto);
        assert_eq!(replies(&samples), want_three(), "{format:?}");
        // 4 logical lines: three replies, and the unfinished one flushed at the end.
        assert_eq!(lines(&samples), [3.0, 0.0, 0.0, 1.0], "{format:?}");
    }
    // A source that says its lines are CRI counts other lines as unrecognized.
    let samples = run(b"Nov 28 17:35:01 mx1 exim[1]: 1tGRwu-005JDt-tU Completed\n", Format::Cri, MtaSelection::Auto);
    assert_eq!(lines(&samples), [0.0, 0.0, 0.0, 1.0]);
}

#[test]
fn docker_json_file() {
    let json = |text: &str, stream: &str| {
        format!(
            "{{\"log\":{},\"stream\":\"{stream}\",\"time\":\"2026-11-28T17:35:01.1Z\"}}\n",
            serde_json::to_string(text).unwrap()
        )
    };
    let input = [
        json(&format!("2026-11-28 17:35:01 {EXIM_BOUNCE}\n"), "stdout"),
        json(&format!("Nov 28 17:35:02 mx1 sm-mta[2]: {}", &SENDMAIL_REJECT[..30]), "stdout"),
        json(&format!("{}\n", &SENDMAIL_REJECT[30..]), "stdout"),
        json(&format!("{OPENSMTPD_FAIL}\r\n"), "stderr"),
    ]
    .concat();
    let samples = run(input.as_bytes(), Format::Docker, MtaSelection::Auto);
    assert_eq!(replies(&samples), want_three());
    assert_eq!(lines(&samples), [3.0, 0.0, 0.0, 0.0]);
}

#[test]
fn journald_json() {
    let entry = |program: &str, message: &str| {
        format!(
            "{{\"__REALTIME_TIMESTAMP\":\"1795887301123456\",\"SYSLOG_IDENTIFIER\":\"{program}\",\"SYSLOG_PID\":\"42\",\"MESSAGE\":{}}}\n",
            serde_json::to_string(message).unwrap()
        )
    };
    let mut input = [
        entry("exim", EXIM_BOUNCE),
        entry("sm-mta", SENDMAIL_REJECT),
        entry("postfix/smtpd", "NOQUEUE: reject: RCPT from x[192.0.2.1]: 554 5.7.1 <a@b.example>: Relay access denied; from=<c@d.example> to=<a@b.example> proto=ESMTP helo=<x>"),
        entry("dovecot", "imap-login: Login"),
    ]
    .concat();
    // MESSAGE as an array of bytes: an OpenSMTPD line with a byte that is not UTF-8.
    let mut bytes: Vec<u8> = OPENSMTPD_FAIL.as_bytes().to_vec();
    bytes.extend_from_slice(b" \xff");
    let array = bytes.iter().map(u8::to_string).collect::<Vec<_>>().join(",");
    input.push_str(&format!("{{\"_COMM\":\"smtpd\",\"_PID\":\"7\",\"MESSAGE\":[{array}]}}\n"));
    let samples = run(input.as_bytes(), Format::JournaldJson, MtaSelection::Auto);
    let mut want = want_three();
    want.insert(2, ("postfix inbound rcpt 554 5.7.1".to_string(), 1.0));
    assert_eq!(replies(&samples), want);
    assert_eq!(lines(&samples), [4.0, 0.0, 1.0, 0.0]);
}

#[test]
fn a_source_can_name_its_mta() {
    // OpenSMTPD's own foreground output in a container, no syslog envelope.
    let input = format!(
        "2026-11-28T17:35:01.1Z stdout F {OPENSMTPD_FAIL}\n2026-11-28T17:35:01.2Z stdout F info: OpenSMTPD starting\n"
    );
    let samples = run(input.as_bytes(), Format::Cri, MtaSelection::Opensmtpd);
    assert_eq!(replies(&samples), vec![("opensmtpd inbound rcpt 550 none".to_string(), 1.0)]);
    assert_eq!(lines(&samples), [1.0, 1.0, 0.0, 0.0]);
}
