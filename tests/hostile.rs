//! Hostile and broken input, one test per case: lines of 10 MB, a file of
//! NUL bytes, binary garbage, invalid UTF-8 and overlong encodings, CR-only
//! line ends, a log cut in the middle of a multi-byte character; strangers'
//! addresses, HELO names and reply texts made to look like other fields of
//! every MTA's lines; a flood of distinct codes against the series cap; and
//! regex rules too expensive to compile. The syslog listener under a flood
//! is in `tests/sources.rs`; memory over a 10-million-line hostile file is
//! measured by `scripts/hostile-rss.sh` (a measurement, not a test).
//!
//! Every expectation is an exact count: what the line really says is
//! counted, nothing a stranger wrote into it is.

mod common;

use std::io::Write;
use std::sync::Arc;

use common::{parse_exposition, sum, Exporter, Samples};
use mta_exporter::classify::{CauseRules, Classifier};
use mta_exporter::decode::Format;
use mta_exporter::framing::LineFramer;
use mta_exporter::metrics::{Metrics, MetricsOptions};
use mta_exporter::parse::{MtaSelection, OtherParsers, ParsersSpec};
use mta_exporter::pipeline::{LineOptions, Pipeline};

const MAX_LINE: usize = 64 * 1024;

/// Feeds `input` through a pipeline in reads of `read` bytes, as a file
/// source does, then ends the input.
fn run_with(input: &[u8], read: usize, max_series: usize) -> Samples {
    let metrics = Metrics::new(MetricsOptions { max_series_per_family: max_series });
    let options = LineOptions {
        format: Format::Auto,
        mta: MtaSelection::Auto,
        others: Arc::new(OtherParsers::default()),
        max_line_bytes: MAX_LINE,
    };
    let mut pipeline = Pipeline::with_options("t", &metrics, Arc::new(Classifier::with_default_rules()), options);
    let mut framer = LineFramer::new(MAX_LINE);
    for chunk in input.chunks(read) {
        let mut reader = chunk;
        while !reader.is_empty() {
            let n = framer.fill(&mut reader).expect("read");
            pipeline.add_bytes(n as u64);
            framer.drain(|line| {
                pipeline.process(line);
            });
        }
    }
    framer.flush(|line| {
        pipeline.process(line);
    });
    pipeline.finish();
    parse_exposition(&metrics.encode_text())
}

fn run(input: &[u8]) -> Samples {
    run_with(input, 64 * 1024, 2000)
}

/// Lines counted per result: [reply, recognized, ignored, unrecognized].
fn lines(samples: &Samples) -> [f64; 4] {
    ["reply", "recognized", "ignored", "unrecognized"].map(|r| sum(samples, "mta_log_lines_total", &[("result", r)]))
}

fn truncated(samples: &Samples) -> f64 {
    sum(samples, "mta_log_lines_truncated_total", &[])
}

/// Every reply series as `mta direction phase class code enhanced` → count.
fn replies(samples: &Samples) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = samples
        .iter()
        .filter(|((name, _), v)| name == "mta_smtp_replies_total" && **v > 0.0)
        .map(|((_, l), v)| {
            (
                format!(
                    "{} {} {} {} {} {}",
                    l["mta"], l["direction"], l["phase"], l["class"], l["code"], l["enhanced"]
                ),
                *v,
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Every delivery outcome as `mta status` → count.
fn deliveries(samples: &Samples) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = samples
        .iter()
        .filter(|((name, _), v)| name == "mta_deliveries_total" && **v > 0.0)
        .map(|((_, l), v)| (format!("{} {}", l["mta"], l["status"]), *v))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn want(items: &[(&str, f64)]) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = items.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

const SENT: &str = "Nov 28 17:35:01 mx1 postfix/smtp[1]: 4F2A1C3D5E: to=<a@b.example>, relay=b[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 1234)";
const BOUNCED: &str = "Nov 28 17:35:02 mx1 postfix/smtp[1]: 4F2B1C3D5E: to=<c@d.example>, relay=d[192.0.2.2]:25, delay=1, delays=0/0/0/1, dsn=5.1.1, status=bounced (host d[192.0.2.2] said: 550 5.1.1 no such user (in reply to RCPT TO command))";

#[test]
fn a_line_of_10_mb_is_cut_and_the_next_line_is_whole() {
    let mut input = format!("{SENT}\n").into_bytes();
    // A status line whose remote reply text is 10 MB long.
    input.extend_from_slice(BOUNCED.trim_end_matches("(in reply to RCPT TO command))").as_bytes());
    input.extend(std::iter::repeat_n(b'x', 10 * 1024 * 1024));
    input.extend_from_slice(b" (in reply to RCPT TO command))\n");
    input.extend_from_slice(format!("{SENT}\n").as_bytes());
    for read in [4096, 64 * 1024, 1024 * 1024] {
        let samples = run_with(&input, read, 2000);
        // The cut line is still parsed from its first 64 KiB: its reply and outcome count.
        assert_eq!(lines(&samples), [3.0, 0.0, 0.0, 0.0], "read size {read}");
        assert_eq!(truncated(&samples), 1.0);
        assert_eq!(
            replies(&samples),
            want(&[
                ("postfix outbound end_of_data 2xx 250 2.0.0", 2.0),
                ("postfix outbound unknown 5xx 550 5.1.1", 1.0)
            ])
        );
        assert_eq!(deliveries(&samples), want(&[("postfix bounced", 1.0), ("postfix sent", 2.0)]));
    }
}

#[test]
fn a_10_mb_line_through_the_file_source() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    let mut file = std::fs::File::create(&log).unwrap();
    writeln!(file, "{SENT}").unwrap();
    file.write_all(&vec![b'y'; 10 * 1024 * 1024]).unwrap();
    writeln!(file).unwrap();
    writeln!(file, "{SENT}").unwrap();
    drop(file);
    let exporter = Exporter::start(&["--log.path", log.to_str().unwrap(), "--log.from-beginning"]);
    let samples = exporter.metrics_when(|s| sum(s, "mta_log_lines_total", &[]) >= 3.0);
    assert_eq!(lines(&samples), [2.0, 0.0, 0.0, 1.0]);
    assert_eq!(truncated(&samples), 1.0);
    assert_eq!(deliveries(&samples), want(&[("postfix sent", 2.0)]));
    assert!(exporter.terminate().success());
}

#[test]
fn a_file_of_nul_bytes() {
    // No newline at all: one line, cut at the limit, unrecognized.
    let samples = run(&vec![0u8; 1024 * 1024]);
    assert_eq!(lines(&samples), [0.0, 0.0, 0.0, 1.0]);
    assert_eq!(truncated(&samples), 1.0);
    // NUL bytes between newlines: each line counted, none understood.
    let samples = run(b"\0\0\0\n\0\n\n\0\0");
    assert_eq!(lines(&samples), [0.0, 0.0, 0.0, 4.0]);
    // NUL bytes inside a real line do not hide it.
    let samples = run(format!("{}\0\0\n", SENT).as_bytes());
    assert_eq!(deliveries(&samples), want(&[("postfix sent", 1.0)]));
}

#[test]
fn binary_garbage() {
    // A reproducible megabyte of noise (xorshift), with a real line after it.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut input: Vec<u8> = (0..1024 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let newlines = input.iter().filter(|&&b| b == b'\n').count();
    input.extend_from_slice(format!("\n{SENT}\n").as_bytes());
    let samples = run(&input);
    let [reply, recognized, ignored, unrecognized] = lines(&samples);
    assert_eq!(reply, 1.0, "only the real line carries a reply");
    assert_eq!(reply + recognized + ignored + unrecognized, (newlines + 2) as f64, "every line counted once");
    assert_eq!(deliveries(&samples), want(&[("postfix sent", 1.0)]));
}

#[test]
fn invalid_utf8_and_overlong_encodings() {
    // Overlong `/` (C0 AF, E0 80 AF), a UTF-16 surrogate (ED A0 80), stray
    // continuation bytes and FF inside the recipient and the reply text.
    let mut input = Vec::new();
    input.extend_from_slice(b"Nov 28 17:35:02 mx1 postfix/smtp[1]: 4F2B1C3D5E: to=<\xc0\xaf\xe0\x80\xaf@d.example>, relay=d[192.0.2.2]:25, delay=1, delays=0/0/0/1, dsn=5.1.1, status=bounced (host d[192.0.2.2] said: 550 5.1.1 \xed\xa0\x80 no \x80\x80 such \xff user (in reply to RCPT TO command))\n");
    // An overlong encoding of the digits of a code is not a code.
    input.extend_from_slice(b"Nov 28 17:35:02 mx1 postfix/smtp[1]: 4F2C1C3D5E: to=<e@f.example>, relay=none, delay=1, delays=0/0/0/1, dsn=4.4.1, status=deferred (\xc0\xb5\xc0\xb5\xc0\xb0 connect to f[192.0.2.3]:25: Connection refused)\n");
    // The syslog prefix itself broken by an invalid byte: not an envelope.
    input.extend_from_slice(b"Nov 28 17:35:0\xff mx1 postfix/smtp[1]: 4F2D1C3D5E: to=<g@h>, status=sent (250 ok)\n");
    let samples = run(&input);
    assert_eq!(lines(&samples), [2.0, 0.0, 0.0, 1.0]);
    assert_eq!(
        replies(&samples),
        want(&[("postfix outbound rcpt 5xx 550 5.1.1", 1.0), ("postfix outbound none 4xx none 4.4.1", 1.0)])
    );
    assert_eq!(deliveries(&samples), want(&[("postfix bounced", 1.0), ("postfix deferred", 1.0)]));
}

#[test]
fn cr_only_line_ends() {
    // Old Mac line ends: no `\n`, so the file is one line, cut at the limit.
    // A `\r` never splits a line, so text after one cannot pose as a line of
    // its own; the first line's own reply is what counts.
    let input = format!("{SENT}\r{BOUNCED}\r{SENT}\r");
    let samples = run(input.as_bytes());
    assert_eq!(lines(&samples), [1.0, 0.0, 0.0, 0.0]);
    assert_eq!(replies(&samples), want(&[("postfix outbound end_of_data 2xx 250 2.0.0", 1.0)]));
    assert_eq!(deliveries(&samples), want(&[("postfix sent", 1.0)]));
    // Long enough to pass the limit: counted as truncated, nothing lost silently.
    let long = format!("{SENT}\r").repeat(MAX_LINE / SENT.len() + 2);
    let samples = run(long.as_bytes());
    assert_eq!(lines(&samples), [1.0, 0.0, 0.0, 0.0]);
    assert_eq!(truncated(&samples), 1.0);
    // `\r\n` is a line end like `\n`.
    let samples = run(format!("{SENT}\r\n{BOUNCED}\r\n").as_bytes());
    assert_eq!(deliveries(&samples), want(&[("postfix bounced", 1.0), ("postfix sent", 1.0)]));
}

#[test]
fn a_log_cut_in_the_middle_of_a_multibyte_character() {
    // The last line ends inside `é` (C3 A9) and has no newline (a file being
    // written, or a rotated file's last line): it is read lossily, counted once.
    let mut input = format!("{SENT}\n").into_bytes();
    input.extend_from_slice(&BOUNCED.as_bytes()[..BOUNCED.len() - 35]);
    input.extend_from_slice("café".as_bytes());
    input.pop();
    for read in [1, 3, 4096] {
        let samples = run_with(&input, read, 2000);
        assert_eq!(lines(&samples), [2.0, 0.0, 0.0, 0.0], "read size {read}");
        assert_eq!(
            replies(&samples),
            want(&[
                ("postfix outbound end_of_data 2xx 250 2.0.0", 1.0),
                ("postfix outbound unknown 5xx 550 5.1.1", 1.0)
            ])
        );
    }
    // A container runtime cutting a line inside a character: the CRI pieces
    // join back to the character, not to two replacement characters.
    let options = LineOptions { format: Format::Cri, ..LineOptions::default() };
    let mut reader = mta_exporter::pipeline::LineReader::new(options);
    let classifier = Classifier::with_default_rules();
    let text = "Nov 28 17:35:01 mx1 postfix/smtp[1]: 4F2A1C3D5E: to=<jörg@b.example>, relay=b[192.0.2.1]:25, dsn=2.0.0, status=sent (250 2.0.0 Ok)";
    let at = text.find('ö').unwrap() + 1;
    let mut first = b"2026-11-28T17:35:01.1Z stdout P ".to_vec();
    first.extend_from_slice(&text.as_bytes()[..at]);
    let mut second = b"2026-11-28T17:35:01.2Z stdout F ".to_vec();
    second.extend_from_slice(&text.as_bytes()[at..]);
    assert!(reader.read(&first, &classifier, |_, _, _| ()).is_none());
    let joined = reader.read(&second, &classifier, |t, _, _| t.to_string()).unwrap();
    assert_eq!(joined, text);
}

/// Series (as `replies`/`deliveries` print them) with their counts.
type Counts = Vec<(String, f64)>;
/// A crafted line, its `mta_log_lines_total` by outcome, its deliveries.
type UnitCase = (String, [f64; 4], &'static [(&'static str, f64)]);

/// What one line counts: its delivery outcomes and its replies.
fn counted(line: &str) -> (Counts, Counts) {
    let samples = run(format!("{line}\n").as_bytes());
    (deliveries(&samples), replies(&samples))
}

#[test]
fn postfix_fields_a_stranger_writes_cannot_pose_as_others() {
    // Recipient addresses spelling out a successful delivery (Postfix quotes
    // a local part with spaces, `,` or `>`).
    for line in [
        r#"Nov 28 17:35:02 mx1 postfix/smtp[1]: 4F2B1C3D5E: to=<"x>, relay=a[1.1.1.1]:25, dsn=2.0.0, status=sent (250 2.0.0 ok)"@victim.example>, relay=v[192.0.2.2]:25, delay=1, delays=1/0/0/0, dsn=5.1.1, status=bounced (host v[192.0.2.2] said: 550 5.1.1 no such user (in reply to RCPT TO command))"#,
        r#"Nov 28 17:35:02 mx1 postfix/smtp[1]: 4F2B1C3D5E: to=<c@d.example>, orig_to=<"y, status=sent (250 2.0.0 ok), dsn=2.0.0"@victim.example>, relay=v[192.0.2.2]:25, delay=1, delays=1/0/0/0, dsn=5.1.1, status=bounced (host v[192.0.2.2] said: 550 5.1.1 no such user (in reply to RCPT TO command))"#,
        // A remote server's reply text that repeats fields and a fake `said:`.
        r#"Nov 28 17:35:02 mx1 postfix/smtp[1]: 4F2B1C3D5E: to=<c@d.example>, relay=v[192.0.2.2]:25, delay=1, delays=1/0/0/0, dsn=5.1.1, status=bounced (host v[192.0.2.2] said: 550 5.1.1 no; status=sent (host x[1.1.1.1] said: 250 2.0.0 ok (in reply to end of DATA command)) dsn=2.0.0 (in reply to RCPT TO command))"#,
    ] {
        let (d, r) = counted(line);
        assert_eq!(d, want(&[("postfix bounced", 1.0)]), "{line}");
        assert_eq!(r, want(&[("postfix outbound rcpt 5xx 550 5.1.1", 1.0)]), "{line}");
    }
    // A client's HELO name (Postfix logs it whole, spaces and all) that
    // spells out an accepting reply after a fake `helo=<…>: `.
    let line = "Nov 28 17:35:02 mx1 postfix/cleanup[1]: 4C3F2E05B9: reject: header Subject: hi from h[192.0.2.9]; from=<a@b.example> to=<c@d.example> proto=ESMTP helo=<evil helo=<x>: 250 2.0.0 accepted>: 5.7.1 Spam subject";
    let (d, r) = counted(line);
    assert_eq!(d, want(&[("postfix rejected", 1.0)]));
    assert_eq!(r, want(&[("postfix inbound end_of_data 5xx none 5.7.1", 1.0)]));
    // The same in a Subject header (also the stranger's).
    let line = "Nov 28 17:35:02 mx1 postfix/cleanup[1]: 4C3F2E05B9: reject: header Subject: x; from=<a> to=<b> proto=SMTP helo=<h>: 250 2.0.0 ok from h[192.0.2.9]; from=<a@b.example> to=<c@d.example> proto=ESMTP helo=<h.example>: 5.7.1 Spam subject";
    let (d, r) = counted(line);
    assert_eq!(d, want(&[("postfix rejected", 1.0)]));
    assert_eq!(r, want(&[("postfix inbound end_of_data 5xx none 5.7.1", 1.0)]));
    // A client's sender and HELO after an smtpd reject: the reply is the one
    // right after the client, whatever follows.
    let line = "Nov 28 17:35:02 mx1 postfix/smtpd[1]: NOQUEUE: reject: RCPT from x[192.0.2.9]: 554 5.7.1 <v@victim.example>: Relay access denied; from=<\"a; status=sent\"@b> to=<v@victim.example> proto=ESMTP helo=<x]: 250 2.0.0 ok; from=<y>";
    let (d, r) = counted(line);
    assert_eq!(d, want(&[("postfix rejected", 1.0)]));
    assert_eq!(r, want(&[("postfix inbound rcpt 5xx 554 5.7.1", 1.0)]));
}

#[test]
fn exim_fields_a_stranger_writes_cannot_pose_as_others() {
    for (line, delivery, reply) in [
        // A recipient whose quoted local part spells a bounce's error text.
        (
            r#"2026-11-28 17:35:01 1tGRwu-005JDt-yH ** "x: SMTP error from remote mail server after RCPT TO:<v>: 250 2.0.0 ok"@victim.example R=dnslookup T=remote_smtp H=mx.p.example [192.0.2.4]: SMTP error from remote mail server after RCPT TO:<l@p.example>: 550 5.1.1 no such user"#,
            "exim bounced",
            Some("exim outbound rcpt 5xx 550 5.1.1"),
        ),
        // A sent line without +smtp_confirmation: a `C="…"` in the address is not a confirmation.
        (
            r#"2026-11-28 17:35:01 1tGRwu-005JDt-yH => "a C=\"550 5.1.1 fake\""@victim.example R=dnslookup T=remote_smtp H=mx.p.example [192.0.2.4]"#,
            "exim sent",
            None,
        ),
        // A HELO name (in parentheses) and a sender that spell a rejection with a code.
        (
            r#"2026-11-28 17:35:01 H=(rejected RCPT <a>: 250 2.0.0 ok) [192.0.2.9] F=<"x rejected RCPT: 250 ok"@b.example> rejected RCPT <v@victim.example>: relay not permitted"#,
            "exim rejected",
            None,
        ),
        // A remote reply that quotes a second error text.
        (
            r#"2026-11-28 17:35:01 1tGRwu-005JDt-yH == l@p.example R=dnslookup T=remote_smtp defer (-44) H=mx.p.example [192.0.2.4]: SMTP error from remote mail server after RCPT TO:<l@p.example>: 451 4.7.1 later SMTP error from remote mail server after RCPT TO:<v>: 250 2.0.0 ok"#,
            "exim deferred",
            Some("exim outbound rcpt 4xx 451 4.7.1"),
        ),
    ] {
        let (d, r) = counted(line);
        assert_eq!(d, want(&[(delivery, 1.0)]), "{line}");
        assert_eq!(r, want(&reply.map(|k| vec![(k, 1.0)]).unwrap_or_default()), "{line}");
    }
}

#[test]
fn sendmail_fields_a_stranger_writes_cannot_pose_as_others() {
    for (line, delivery, reply) in [
        // A recipient list entry spelling a successful status.
        (
            r#"Nov 28 17:35:01 h sm-mta[5]: v12AbCd7004412: to=<"x>, dsn=2.0.0, stat=Sent (250 2.0.0 ok)"@victim.example>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=v.example. [192.0.2.2], dsn=5.1.1, stat=User unknown"#,
            "sendmail bounced",
            "sendmail outbound unknown 5xx none 5.1.1",
        ),
        // A remote reply that repeats `, stat=` and `dsn=` (it can only shorten its own `reply=`).
        (
            r#"Nov 28 17:35:01 h sm-mta[5]: v12AbCd7004412: to=<a@b.example>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=1, relay=b.example. [192.0.2.2], dsn=4.7.1, reply=451 4.7.1 later, dsn=2.0.0, stat=Sent (250 ok), stat=Deferred: 451 4.7.1 later, dsn=2.0.0, stat=Sent (250 ok)"#,
            "sendmail deferred",
            "sendmail outbound unknown 4xx 451 4.7.1",
        ),
        // A ruleset argument spelling an accepting `reject=`.
        (
            r#"Nov 28 17:35:01 h sm-mta[5]: v12AbCd7004412: ruleset=check_rcpt, arg1=<"x, reject=250 2.0.0 ok"@victim.example>, relay=[192.0.2.9], reject=550 5.7.1 <v@victim.example>... Relaying denied"#,
            "sendmail rejected",
            "sendmail inbound rcpt 5xx 550 5.7.1",
        ),
    ] {
        let (d, r) = counted(line);
        assert_eq!(d, want(&[(delivery, 1.0)]), "{line}");
        assert_eq!(r, want(&[(reply, 1.0)]), "{line}");
    }
}

#[test]
fn opensmtpd_fields_a_stranger_writes_cannot_pose_as_others() {
    for (line, delivery, reply) in [
        // The command as the client sent it, with a fake result.
        (
            r#"Nov 28 17:35:01 h smtpd[5]: c1a89cb774083905 smtp failed-command command="RCPT TO:<v@victim.example> result="250 2.0.0 ok"" result="550 Invalid recipient: <v@victim.example>""#,
            Some("opensmtpd rejected"),
            "opensmtpd inbound rcpt 5xx 550 none",
        ),
        // A sender address spelling `result=` and `stat=` on a delivery line.
        (
            r#"Nov 28 17:35:01 h smtpd[5]: c1a89cb774083905 mta delivery evpid=1 from=<"a result=\"Ok\" stat=\"250 2.0.0 ok\""@b.example> to=<v@victim.example> rcpt=<-> source="192.0.2.1" relay="192.0.2.2 (mx.victim.example)" delay=1s result="PermFail" stat="550 5.1.1 no such user""#,
            Some("opensmtpd bounced"),
            "opensmtpd outbound unknown 5xx 550 5.1.1",
        ),
    ] {
        let (d, r) = counted(line);
        assert_eq!(d, want(&delivery.map(|k| vec![(k, 1.0)]).unwrap_or_default()), "{line}");
        assert_eq!(r, want(&[(reply, 1.0)]), "{line}");
    }
}

#[test]
fn a_flood_of_distinct_codes_stays_within_the_cap() {
    // 20,000 distinct (code, enhanced) pairs against a cap of 50 series.
    let mut input = String::new();
    let mut n = 0;
    'outer: for code in 500..=559 {
        for subject in 0..=7 {
            for detail in 0..=999 {
                input.push_str(&format!("Nov 28 17:35:01 mx1 postfix/smtpd[1]: NOQUEUE: reject: RCPT from x[192.0.2.9]: {code} 5.{subject}.{detail} flood {n}; from=<a> to=<b> proto=ESMTP helo=<h>\n"));
                n += 1;
                if n == 20_000 {
                    break 'outer;
                }
            }
        }
    }
    let samples = run_with(input.as_bytes(), 64 * 1024, 50);
    let series = samples.keys().filter(|(name, _)| name == "mta_smtp_replies_total").count();
    let info = samples.keys().filter(|(name, _)| name == "mta_smtp_reply_info").count();
    // 50 real series, plus the folded one that takes the rest.
    assert_eq!(series, 51);
    assert!(info <= 50, "{info} reply_info series");
    assert_eq!(sum(&samples, "mta_smtp_replies_total", &[]), 20_000.0);
    assert_eq!(sum(&samples, "mta_smtp_replies_total", &[("code", "other")]), 19_950.0);
    assert_eq!(
        sum(&samples, "mta_metrics_overflow_total", &[("family", "mta_smtp_replies_total")]),
        19_950.0,
        "every folded reply is counted as overflow"
    );
}

#[test]
fn regex_rules_too_expensive_are_refused_at_load() {
    // Cause rules: each pattern alone, and all of them together.
    let err =
        CauseRules::from_yaml("rules:\n  - cause: costly\n    text: '\\w{1000}{1000}'\n").unwrap_err().to_string();
    assert!(err.contains("cause rule 0 (costly)") && err.contains("text"), "{err}");
    let many: String = (0..200).map(|i| format!("  - cause: c{i}\n    text: '[a-z]{{2000}}'\n")).collect();
    let err = CauseRules::from_yaml(&format!("rules:\n{many}")).unwrap_err().to_string();
    assert!(err.contains("compile to more than") || err.contains("not a usable regular expression"), "{err}");
    // Custom parsers.
    let spec: ParsersSpec =
        serde_saphyr::from_str("custom:\n  - name: costly\n    regex: '(?P<code>\\d{3}) \\w{1000}{1000}'\n").unwrap();
    let err = OtherParsers::compile(&spec).unwrap_err().to_string();
    assert!(err.contains("parsers.custom[0] (costly)") && err.contains("does not compile"), "{err}");
    // Through the config file loader, as the exporter starts.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mta.yaml");
    std::fs::write(&config, "causes:\n  rules:\n    - cause: costly\n      text: '(a{100}){100}{100}'\n").unwrap();
    let err = mta_exporter::config::Config::load(&config).unwrap_err().to_string();
    assert!(err.contains("costly") && err.contains(config.to_str().unwrap()), "{err}");
}

/// A line of `len` bytes: `prefix`, `unit` repeated, `suffix`.
fn crafted(prefix: &str, unit: &str, suffix: &str, len: usize) -> String {
    let n = (len - prefix.len() - suffix.len()) / unit.len();
    format!("{prefix}{}{suffix}", unit.repeat(n))
}

#[test]
fn lines_full_of_units_that_never_close() {
    // Each `<`, `"`, `(` or `[` that opens an address, quoted value or
    // bracketed name and never closes used to be scanned to the end of the
    // line: a 63 KiB line took seconds (quadratic). Now each costs at most
    // `MAX_UNIT` bytes; the counts stay what the lines say. (No timing
    // assertion: the suite would take minutes if this came back.)
    let len = 63 * 1024;
    let cases: [UnitCase; 7] = [
        (crafted("2026-11-28 17:35:01 H=(", "a=(", ") [192.0.2.9] rejected RCPT <a@b>: no", len), [0.0, 1.0, 0.0, 0.0], &[("exim rejected", 1.0)]),
        (crafted("2026-11-28 17:35:01 1tGRwu-005JDt-yH H=x [192.0.2.9] ", "a=<", "", len), [0.0, 1.0, 0.0, 0.0], &[]),
        (crafted("2026-11-28 17:35:01 1tGRwu-005JDt-yH H=x [192.0.2.9] ", "a=[", "", len), [0.0, 1.0, 0.0, 0.0], &[]),
        (crafted("2026-11-28 17:35:01 1tGRwu-005JDt-yH ** a@b R=r T=t H=h [192.0.2.4]: SMTP error from remote mail server after RCPT TO:", "<", "", len), [0.0, 1.0, 0.0, 0.0], &[("exim bounced", 1.0)]),
        (crafted("Nov 28 17:35:01 h sm-mta[5]: v12AbCd7004412: ruleset=check_rcpt", ", a=<", "", len), [0.0, 1.0, 0.0, 0.0], &[]),
        (crafted("Nov 28 17:35:01 h smtpd[5]: c1a89cb774083905 mta delivery ", "a=< ", "result=\"Ok\" stat=\"250 ok\"", len), [1.0, 0.0, 0.0, 0.0], &[("opensmtpd sent", 1.0)]),
        (crafted("Nov 28 17:35:01 h smtpd[5]: relay: Ok for 1234: ", ", a=<", ", stat=250 2.0.0: Ok", len), [1.0, 0.0, 0.0, 0.0], &[("opensmtpd sent", 1.0)]),
    ];
    for (line, want_lines, want_deliveries) in cases {
        let samples = run(format!("{line}\n").as_bytes());
        assert_eq!(lines(&samples), want_lines, "{}", &line[..80]);
        assert_eq!(deliveries(&samples), want(want_deliveries), "{}", &line[..80]);
    }
    // Sendmail counts a line once per listed recipient: every `<` here is
    // one (malformed) address, so the count is bounded by the line's length.
    let line =
        crafted("Nov 28 17:35:01 h sm-mta[5]: v12AbCd7004412: to=", "<,", "<, dsn=5.1.1, stat=User unknown", len);
    let samples = run(format!("{line}\n").as_bytes());
    let listed = line.matches("<,").count() as f64;
    assert_eq!(lines(&samples), [1.0, 0.0, 0.0, 0.0]);
    assert_eq!(deliveries(&samples), want(&[("sendmail bounced", listed)]));
}
