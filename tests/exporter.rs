//! The binary end to end: start it on a temp file, append lines, scrape
//! `/metrics` over HTTP, assert exact counter values.

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use common::{sum, Exporter, Samples};

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new().create(true).append(true).open(path).expect("open log");
    f.write_all(text.as_bytes()).expect("append");
}

fn lines_read(samples: &Samples) -> f64 {
    sum(samples, "mta_log_lines_total", &[])
}

const SENT: &str = "Nov 28 17:35:01 mx1 postfix/smtp[11]: 4A1B2C3D4E: to=<anna@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.26]:25, delay=0.9, delays=0.1/0/0.3/0.5, dsn=2.0.0, status=sent (250 2.0.0 OK  1732815301 a1-20020a5d4e01000000b0038f2e10ce06si1234567wrq.412 - gsmtp)\n";
const BOUNCED: &str = "Nov 28 17:35:02 mx1 postfix/smtp[11]: 5B2C3D4E5F: to=<nobody@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.26]:25, delay=0.5, delays=0.1/0/0.2/0.2, dsn=5.1.1, status=bounced (host gmail-smtp-in.l.google.com[142.250.102.26] said: 550-5.1.1 The email account that you tried to reach does not exist. 550 5.1.1  https://support.google.com/mail/?p=NoSuchUser a1si1 - gsmtp (in reply to RCPT TO command))\n";
const DEFERRED: &str = "2026-11-28T17:35:03.120000+00:00 mx1 postfix/smtp[12]: 6C3D4E5F6A: to=<bob@example.org>, relay=mx.example.org[198.51.100.7]:25, delay=300, delays=299/0/0.5/0.5, dsn=4.2.0, status=deferred (host mx.example.org[198.51.100.7] said: 450 4.2.0 <bob@example.org>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.org.html (in reply to RCPT TO command))\n";
const REJECT: &str = "Nov 28 17:35:04 mx1 postfix/smtpd[13]: NOQUEUE: reject: RCPT from unknown[203.0.113.9]: 554 5.7.1 Service unavailable; Client host [203.0.113.9] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/203.0.113.9; from=<x@spam.example> to=<info@example.com> proto=ESMTP helo=<spam.example>\n";
const NOISE: &str = "Nov 28 17:35:05 mx1 postfix/smtpd[13]: connect from unknown[203.0.113.9]\n";
const DOVECOT: &str = "Nov 28 17:35:06 mx1 dovecot: imap-login: Login: user=<anna@example.com>, method=PLAIN\n";

#[test]
fn counts_appended_lines_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("mail.log");
    // Lines already in the file are history: the default is to start at the end.
    append(&log, SENT);
    let exporter = Exporter::start(&["--log.path", log.to_str().unwrap()]);
    common::wait_until(|| exporter.get("/-/ready").0 == 200);
    assert_eq!(lines_read(&exporter.metrics()), 0.0);

    append(&log, &[SENT, BOUNCED, DEFERRED, REJECT, NOISE, DOVECOT, "garbage line\n"].concat());
    // Bytes are added once per read batch, after its lines: wait for both.
    let appended = [SENT, BOUNCED, DEFERRED, REJECT, NOISE, DOVECOT, "garbage line\n"].concat().len();
    let samples =
        exporter.metrics_when(|s| lines_read(s) >= 7.0 && sum(s, "mta_log_bytes_total", &[]) >= appended as f64);
    let replies = |labels: &[(&str, &str)]| sum(&samples, "mta_smtp_replies_total", labels);
    assert_eq!(lines_read(&samples), 7.0);
    assert_eq!(replies(&[]), 4.0);
    assert_eq!(
        replies(&[
            ("direction", "outbound"),
            ("class", "2xx"),
            ("code", "250"),
            ("enhanced", "2.0.0"),
            ("phase", "end_of_data"),
            ("cause", "none")
        ]),
        1.0
    );
    assert_eq!(
        replies(&[
            ("direction", "outbound"),
            ("class", "5xx"),
            ("code", "550"),
            ("enhanced", "5.1.1"),
            ("phase", "rcpt"),
            ("category", "addressing"),
            ("cause", "user_unknown")
        ]),
        1.0
    );
    assert_eq!(
        replies(&[
            ("class", "4xx"),
            ("code", "450"),
            ("enhanced", "4.2.0"),
            ("cause", "greylisted"),
            ("category", "mailbox")
        ]),
        1.0
    );
    assert_eq!(
        replies(&[
            ("direction", "inbound"),
            ("code", "554"),
            ("enhanced", "5.7.1"),
            ("phase", "rcpt"),
            ("cause", "blocklisted"),
            ("category", "policy")
        ]),
        1.0
    );
    let deliveries = |status| sum(&samples, "mta_deliveries_total", &[("mta", "postfix"), ("status", status)]);
    assert_eq!(
        (deliveries("sent"), deliveries("bounced"), deliveries("deferred"), deliveries("rejected")),
        (1.0, 1.0, 1.0, 1.0)
    );
    let result = |r| sum(&samples, "mta_log_lines_total", &[("result", r)]);
    assert_eq!(
        (result("reply"), result("recognized"), result("ignored"), result("unrecognized")),
        (4.0, 1.0, 1.0, 1.0)
    );
    assert_eq!(sum(&samples, "mta_log_bytes_total", &[]), appended as f64);
    // The log line is written when the line is counted, but read from the
    // child's stderr by another thread: wait for it rather than race it.
    common::wait_until(|| {
        exporter.stderr.lock().unwrap().iter().any(|l| l.contains("unrecognized line") && l.contains("garbage line"))
    });
    assert!(samples.keys().any(|(name, _)| name == "process_resident_memory_bytes"));
    assert_eq!(sum(&samples, "mta_exporter_build_info", &[]), 1.0);
    assert!(exporter.terminate().success());
}

#[test]
fn nothing_lost_or_doubled_across_rotation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("mail.log");
    append(&log, "");
    let exporter = Exporter::start(&["--log.path", log.to_str().unwrap()]);
    common::wait_until(|| exporter.get("/-/ready").0 == 200);

    append(&log, &SENT.repeat(100));
    exporter.metrics_when(|s| lines_read(s) >= 100.0);
    // logrotate's default: rename, then the MTA keeps writing to the renamed
    // file for a moment, then a new file appears under the old name.
    fs::rename(&log, dir.path().join("mail.log.1")).expect("rename");
    append(&dir.path().join("mail.log.1"), &BOUNCED.repeat(10));
    append(&log, &SENT.repeat(50));
    let samples = exporter.metrics_when(|s| lines_read(s) >= 160.0);
    // copytruncate style on the new file.
    fs::File::create(&log).expect("truncate");
    append(&log, &DEFERRED.repeat(5));
    let samples_after = exporter.metrics_when(|s| lines_read(s) >= 165.0);
    // Give a double-count a chance to show up before asserting.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let last = exporter.metrics();
    assert_eq!(lines_read(&samples), 160.0);
    assert_eq!(lines_read(&samples_after), 165.0);
    assert_eq!(lines_read(&last), 165.0);
    let deliveries = |status| sum(&last, "mta_deliveries_total", &[("status", status)]);
    assert_eq!((deliveries("sent"), deliveries("bounced"), deliveries("deferred")), (150.0, 10.0, 5.0));
}

#[test]
fn reads_a_sample_from_the_beginning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("mail.log");
    append(&log, &[SENT, BOUNCED, REJECT].concat());
    let exporter = Exporter::start(&["--log.path", log.to_str().unwrap(), "--log.from-beginning"]);
    let samples = exporter.metrics_when(|s| lines_read(s) >= 3.0);
    assert_eq!(sum(&samples, "mta_smtp_replies_total", &[]), 3.0);
}

#[test]
fn endpoints_and_not_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("missing-yet.log");
    let exporter = Exporter::start(&["--log.path", log.to_str().unwrap(), "--web.telemetry-path", "/stats"]);
    common::wait_until(|| exporter.get("/-/ready").0 == 200);
    let (status, _, body) = exporter.get("/");
    assert_eq!(status, 200);
    assert!(body.contains("/stats") && body.contains("waiting"), "{body}");
    assert_eq!(exporter.get("/-/healthy").0, 200);
    assert_eq!(exporter.get("/-/ready").0, 200, "waiting for a file by design is ready");
    assert_eq!(exporter.get("/stats").0, 200);
    assert_eq!(exporter.get("/metrics").0, 404);
    assert_eq!(exporter.get("/nope").0, 404);
    let (status, _, _) = common::http_request(&exporter.address, "POST", "/stats", &[]).expect("POST");
    assert_eq!(status, 405);
    // A file that appears later is read from its start.
    append(&log, SENT);
    let sent = || {
        let samples = common::parse_exposition(&exporter.get("/stats").2);
        sum(&samples, "mta_deliveries_total", &[("status", "sent")])
    };
    common::wait_until(|| sent() >= 1.0);
    assert_eq!(sent(), 1.0);
}

#[test]
fn bad_input_is_one_clear_line_and_a_failing_exit() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mta_exporter")).args(args).output().expect("run");
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let bad_config = dir.path().join("bad.yaml");
    fs::write(&bad_config, "sources:\n  - pth: /var/log/mail.log\n").unwrap();
    let unreadable = dir.path().join("secret.log");
    fs::write(&unreadable, "").unwrap();
    for (args, needle) in [
        (vec!["--no-such-flag"], "unexpected argument '--no-such-flag'"),
        (vec!["--log.format", "xml"], "invalid value 'xml'"),
        (vec!["--config.file", bad_config.to_str().unwrap()], "pth"),
        (vec!["--log.path", "/"], "is a directory"),
        (vec!["--web.listen-address", "nonsense"], "is not HOST:PORT"),
    ] {
        let (code, stderr) = run(&args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?} printed more than one line:\n{stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // Permissions only bite when not root (CI runs as root).
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&unreadable, fs::Permissions::from_mode(0o000)).unwrap();
    if fs::File::open(&unreadable).is_err() {
        let (code, stderr) = run(&["--log.path", unreadable.to_str().unwrap()]);
        assert_eq!(code, Some(2));
        assert!(stderr.contains("cannot read log file"), "{stderr}");
    }
    // A port that is taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let log = dir.path().join("ok.log");
    let (code, stderr) = run(&["--log.path", log.to_str().unwrap(), "--web.listen-address", &address]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("cannot listen on") && stderr.trim().lines().count() == 1, "{stderr}");
}

#[test]
fn an_exim_mainlog_needs_no_configuration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("mainlog");
    append(&log, "");
    let exporter = Exporter::start(&["--log.path", log.to_str().unwrap()]);
    common::wait_until(|| exporter.get("/-/ready").0 == 200);
    append(
        &log,
        "2026-11-28 17:35:01.123 [4242] 1tGRwu-000DBc-0s => anna@gmail.com R=dnslookup T=remote_smtp H=gmail-smtp-in.l.google.com [142.250.102.26] X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=yes C=\"250 2.0.0 OK  1732815301 - gsmtp\"\n\
         2026-11-28 17:35:02.456 [4243] 1tGRwu-000DBc-0t == bob@example.org R=dnslookup T=remote_smtp defer (-44) H=mx.example.org [198.51.100.7]: SMTP error from remote mail server after RCPT TO:<bob@example.org>: 451-4.7.1 Greylisted\\n451 4.7.1 come back later\n\
         2026-11-28 17:35:03.789 [4244] H=(spam.example) [203.0.113.9] F=<x@spam.example> rejected RCPT <info@example.com>: relay not permitted\n\
         2026-11-28 17:35:04.000 [4245] 1tGRwu-000DBc-0s Completed\n",
    );
    let samples = exporter.metrics_when(|s| lines_read(s) >= 4.0);
    let replies = |labels: &[(&str, &str)]| sum(&samples, "mta_smtp_replies_total", labels);
    assert_eq!(replies(&[("mta", "exim")]), 2.0);
    assert_eq!(replies(&[("mta", "exim"), ("code", "250"), ("phase", "end_of_data"), ("direction", "outbound")]), 1.0);
    assert_eq!(
        replies(&[("mta", "exim"), ("code", "451"), ("enhanced", "4.7.1"), ("phase", "rcpt"), ("cause", "greylisted")]),
        1.0
    );
    let deliveries = |status| sum(&samples, "mta_deliveries_total", &[("mta", "exim"), ("status", status)]);
    assert_eq!((deliveries("sent"), deliveries("deferred"), deliveries("rejected")), (1.0, 1.0, 1.0));
    let result = |r| sum(&samples, "mta_log_lines_total", &[("result", r)]);
    assert_eq!((result("reply"), result("recognized"), result("unrecognized")), (2.0, 2.0, 0.0));
}

#[test]
fn sources_with_container_and_journald_formats() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cri = dir.path().join("smtpd.log");
    let journal = dir.path().join("journal.json");
    let config = dir.path().join("config.yaml");
    fs::write(
        &config,
        format!(
            "sources:\n  - path: {}\n    name: opensmtpd\n    format: cri\n    mta: opensmtpd\n  - path: {}\n    name: journal\n    format: journald-json\n",
            cri.display(),
            journal.display()
        ),
    )
    .unwrap();
    append(&cri, "");
    append(&journal, "");
    let exporter = Exporter::start(&["--config.file", config.to_str().unwrap()]);
    common::wait_until(|| exporter.get("/-/ready").0 == 200);
    append(
        &cri,
        "2026-11-28T17:35:01.1Z stdout P c1a89cb774083905 smtp failed-command command=\"RCPT TO:<x@y.example>\" \n",
    );
    append(&cri, "2026-11-28T17:35:01.2Z stdout F result=\"550 Invalid recipient: <x@y.example>\"\n");
    append(
        &journal,
        "{\"SYSLOG_IDENTIFIER\":\"sm-mta\",\"MESSAGE\":\"55IC59VD017002: to=<a@b.example>,<c@b.example>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=mx.b.example. [192.0.2.8], dsn=4.7.1, reply=451 4.7.1 Greylisted, stat=Deferred: 451 4.7.1 Greylisted\",\"__REALTIME_TIMESTAMP\":\"1795887301123456\"}\n",
    );
    let samples = exporter.metrics_when(|s| lines_read(s) >= 2.0);
    let by_source = |source, result| sum(&samples, "mta_log_lines_total", &[("source", source), ("result", result)]);
    assert_eq!((by_source("opensmtpd", "reply"), by_source("journal", "reply")), (1.0, 1.0));
    assert_eq!(
        sum(
            &samples,
            "mta_smtp_replies_total",
            &[("mta", "opensmtpd"), ("direction", "inbound"), ("code", "550"), ("phase", "rcpt")]
        ),
        1.0
    );
    // Two recipients on one Sendmail line: one reply and one deferral each.
    assert_eq!(
        sum(&samples, "mta_smtp_replies_total", &[("mta", "sendmail"), ("code", "451"), ("enhanced", "4.7.1")]),
        2.0
    );
    assert_eq!(sum(&samples, "mta_deliveries_total", &[("mta", "sendmail"), ("status", "deferred")]), 2.0);
}
