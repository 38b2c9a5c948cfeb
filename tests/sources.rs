//! Stream sources end to end with the binary: the syslog listener over real
//! UDP and TCP sockets on loopback (oversized and malformed messages, a
//! client that disconnects mid-message, the connection cap), stdin, a
//! command, and the positions file across a restart.

mod common;

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::process::{Command, Stdio};

use common::{sum, Exporter, Samples};

const SENT: &str = "postfix/smtp[11]: 4A1B2C3D4E: to=<anna@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.26]:25, delay=0.9, delays=0.1/0/0.3/0.5, dsn=2.0.0, status=sent (250 2.0.0 OK 1732815301 - gsmtp)";

fn lines(samples: &Samples, source: &str) -> f64 {
    sum(samples, "mta_log_lines_total", &[("source", source)])
}

/// The syslog addresses from the exporter's "syslog listening" log line.
fn syslog_address(exporter: &Exporter) -> String {
    common::wait_until(|| exporter.stderr.lock().unwrap().iter().any(|l| l.contains("syslog listening")));
    let stderr = exporter.stderr.lock().unwrap();
    let line = stderr.iter().find(|l| l.contains("syslog listening")).unwrap();
    line.split_whitespace().find_map(|f| f.strip_prefix("tcp=")).unwrap().trim_matches('"').to_string()
}

#[test]
fn syslog_over_udp_and_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mta.yaml");
    std::fs::write(
        &config,
        "sources:\n  - syslog:\n      listen_address: 127.0.0.1:0\n      max_message_bytes: 1024\n",
    )
    .unwrap();
    let exporter = Exporter::start(&["--config.file", config.to_str().unwrap()]);
    let address = syslog_address(&exporter);
    common::wait_until(|| exporter.get("/-/ready").0 == 200);

    // UDP: RFC 3164 and RFC 5424, one malformed, one oversized.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(format!("<22>Nov 28 17:35:01 mx1 {SENT}").as_bytes(), &address).unwrap();
    udp.send_to(b"complete garbage, no header at all", &address).unwrap();
    let oversized = format!("<22>Nov 28 17:35:03 mx1 postfix/smtpd[12]: connect from x{}", "y".repeat(2_000));
    udp.send_to(oversized.as_bytes(), &address).unwrap();
    // Last, so that its own time is the one published for the batch.
    udp.send_to("<22>1 2026-11-28T17:35:02.000Z mx1 postfix/smtp 11 - - 4A1B2C3D4F: to=<b@gmail.com>, relay=x[1.2.3.4]:25, delay=1, delays=0/0/0/1, dsn=5.1.1, status=bounced (host x[1.2.3.4] said: 550 5.1.1 no such user (in reply to RCPT TO command))".as_bytes(), &address).unwrap();
    let samples = exporter.metrics_when(|s| lines(s, "syslog") >= 4.0);
    assert_eq!(lines(&samples, "syslog"), 4.0);
    assert_eq!(sum(&samples, "mta_deliveries_total", &[("status", "sent")]), 1.0);
    assert_eq!(sum(&samples, "mta_deliveries_total", &[("status", "bounced")]), 1.0);
    assert_eq!(sum(&samples, "mta_log_lines_total", &[("source", "syslog"), ("result", "unrecognized")]), 1.0);
    assert_eq!(sum(&samples, "mta_log_lines_truncated_total", &[("source", "syslog")]), 1.0);
    assert_eq!(
        sum(&samples, "mta_log_last_line_timestamp_seconds", &[("source", "syslog")]),
        1_795_887_302.0,
        "the RFC 5424 message's own time"
    );

    // TCP: octet-counted and newline-framed on one connection, split writes.
    let mut tcp = TcpStream::connect(&address).unwrap();
    let framed = format!("<22>Nov 28 17:35:04 mx1 {SENT}");
    let mut stream = format!("{} {framed}", framed.len()).into_bytes();
    stream.extend_from_slice(format!("<22>Nov 28 17:35:05 mx1 {SENT}\n").as_bytes());
    for chunk in stream.chunks(7) {
        tcp.write_all(chunk).unwrap();
    }
    let samples = exporter.metrics_when(|s| lines(s, "syslog") >= 6.0);
    assert_eq!(sum(&samples, "mta_deliveries_total", &[("status", "sent")]), 3.0);
    assert_eq!(sum(&samples, "mta_syslog_connections", &[("source", "syslog")]), 1.0);
    // A client that disconnects in the middle of an octet-counted message.
    tcp.write_all(b"500 <22>Nov 28 17:35:06 mx1 postfix/smtp[1]: cut").unwrap();
    drop(tcp);
    let samples = exporter.metrics_when(|s| {
        sum(s, "mta_syslog_messages_dropped_total", &[("reason", "incomplete")]) >= 1.0
            && sum(s, "mta_syslog_connections", &[]) == 0.0
    });
    assert_eq!(sum(&samples, "mta_syslog_messages_dropped_total", &[("reason", "incomplete")]), 1.0);
    assert_eq!(lines(&samples, "syslog"), 6.0);
    // A newline-framed client that disconnects without a final newline: the
    // message is complete.
    let mut tcp = TcpStream::connect(&address).unwrap();
    tcp.write_all(format!("<22>Nov 28 17:35:07 mx1 {SENT}").as_bytes()).unwrap();
    drop(tcp);
    let samples = exporter.metrics_when(|s| lines(s, "syslog") >= 7.0);
    assert_eq!(sum(&samples, "mta_deliveries_total", &[("status", "sent")]), 4.0);
    assert!(exporter.terminate().success());
}

#[test]
fn syslog_connection_cap() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mta.yaml");
    std::fs::write(
        &config,
        "sources:\n  - syslog:\n      listen_address: 127.0.0.1:0\n      udp: false\n      max_connections: 2\n",
    )
    .unwrap();
    let exporter = Exporter::start(&["--config.file", config.to_str().unwrap()]);
    let address = syslog_address(&exporter);
    let first = TcpStream::connect(&address).unwrap();
    let second = TcpStream::connect(&address).unwrap();
    exporter.metrics_when(|s| sum(s, "mta_syslog_connections", &[]) == 2.0);
    let mut third = TcpStream::connect(&address).unwrap();
    // The third is closed by the server: reading gives end of stream.
    third.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(std::io::Read::read(&mut third, &mut buf).unwrap_or(0), 0);
    let samples = exporter
        .metrics_when(|s| sum(s, "mta_syslog_messages_dropped_total", &[("reason", "connection_limit")]) >= 1.0);
    assert_eq!(sum(&samples, "mta_syslog_messages_dropped_total", &[("reason", "connection_limit")]), 1.0);
    drop((first, second));
}

#[test]
fn stdin_is_read_to_its_end() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mta_exporter"))
        .args(["--web.listen-address", "127.0.0.1:0", "--log.path", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(a) = line.split_whitespace().find_map(|f| f.strip_prefix("address=")) {
                let _ = tx.send(a.trim_matches('"').to_string());
            }
        }
    });
    let address = rx.recv_timeout(std::time::Duration::from_secs(20)).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "Nov 28 17:35:01 mx1 {SENT}").unwrap();
    write!(stdin, "Nov 28 17:35:02 mx1 {SENT}").unwrap(); // no final newline
    drop(stdin);
    let metrics = || common::parse_exposition(&common::http_get(&address, "/metrics").unwrap().2);
    common::wait_until(|| lines(&metrics(), "stdin") >= 2.0);
    assert_eq!(sum(&metrics(), "mta_deliveries_total", &[("status", "sent")]), 2.0);
    let (_, _, page) = common::http_get(&address, "/").unwrap();
    assert!(page.contains("ended"), "{page}");
    assert_eq!(common::http_get(&address, "/-/ready").unwrap().0, 200);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_command_source_is_restarted_when_it_exits() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mta.yaml");
    // Prints one line per run, then exits: each restart adds one line.
    std::fs::write(
        &config,
        format!(
            "sources:\n  - command: [sh, -c, 'echo \"Nov 28 17:35:01 mx1 {}\"']\n    name: cmd\n",
            SENT.replace('\'', "''")
        ),
    )
    .unwrap();
    let exporter = Exporter::start(&["--config.file", config.to_str().unwrap()]);
    // The first run at once, the second after the 1 s backoff.
    let samples = exporter.metrics_when(|s| lines(s, "cmd") >= 2.0);
    assert!(lines(&samples, "cmd") >= 2.0);
    assert_eq!(sum(&samples, "mta_log_lines_total", &[("source", "cmd"), ("result", "reply")]), lines(&samples, "cmd"));
    assert!(exporter.stderr.lock().unwrap().iter().any(|l| l.contains("command exited; restarting it")));
}

#[test]
fn the_positions_file_carries_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    let positions = dir.path().join("positions.yaml");
    std::fs::write(&log, "").unwrap();
    let args = ["--log.path", log.to_str().unwrap(), "--log.positions-file", positions.to_str().unwrap()];
    let append = |text: &str| {
        std::fs::OpenOptions::new().append(true).open(&log).unwrap().write_all(text.as_bytes()).unwrap();
    };
    let source = log.to_str().unwrap();
    let exporter = Exporter::start(&args);
    common::wait_until(|| exporter.get("/-/ready").0 == 200);
    append(&format!("Nov 28 17:35:01 mx1 {SENT}\n").repeat(3));
    exporter.metrics_when(|s| lines(s, source) >= 3.0);
    assert!(exporter.terminate().success());
    let saved = std::fs::read_to_string(&positions).unwrap();
    assert!(saved.contains("offset:"), "{saved}");
    // While stopped: two more lines, then a rotation, then one more.
    append(&format!("Nov 28 17:35:02 mx1 {SENT}\n").repeat(2));
    std::fs::rename(&log, dir.path().join("mail.log.1")).unwrap();
    std::fs::write(&log, format!("Nov 28 17:35:03 mx1 {SENT}\n")).unwrap();
    let exporter = Exporter::start(&args);
    let samples = exporter.metrics_when(|s| lines(s, source) >= 3.0 && sum(s, "mta_log_files_watched", &[]) == 2.0);
    assert_eq!(lines(&samples, source), 3.0, "exactly the lines written while stopped");
    assert_eq!(sum(&samples, "mta_log_rotations_total", &[("kind", "rename")]), 1.0);
    assert_eq!(sum(&samples, "mta_log_files_watched", &[]), 2.0, "the rotated file is still being read");
    assert!(exporter.terminate().success());
}

/// Resident memory of a process, from /proc (KiB).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn syslog_under_a_flood() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mta.yaml");
    std::fs::write(
        &config,
        "sources:\n  - syslog:\n      listen_address: 127.0.0.1:0\n      udp: false\n      max_connections: 8\n      max_message_bytes: 1024\n      queue_bytes: 65536\n",
    )
    .unwrap();
    let exporter = Exporter::start(&["--config.file", config.to_str().unwrap()]);
    let address = syslog_address(&exporter);

    // Slow senders: each starts a frame and never finishes it; together
    // they hold every connection slot.
    let mut slow: Vec<TcpStream> = (0..7)
        .map(|_| {
            let mut s = TcpStream::connect(&address).unwrap();
            s.write_all(b"500 <13>Nov 28 17:35:01 mx1 postfix/smtp[1]: only the start").unwrap();
            s
        })
        .collect();
    let mut flooder = TcpStream::connect(&address).unwrap();
    exporter.metrics_when(|s| sum(s, "mta_syslog_connections", &[]) == 8.0);

    // Many connections beyond the cap: each closed at once, each counted.
    for _ in 0..50 {
        let mut extra = TcpStream::connect(&address).unwrap();
        extra.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(extra.read(&mut buf).unwrap_or(0), 0);
    }
    let samples = exporter
        .metrics_when(|s| sum(s, "mta_syslog_messages_dropped_total", &[("reason", "connection_limit")]) >= 50.0);
    assert_eq!(sum(&samples, "mta_syslog_messages_dropped_total", &[("reason", "connection_limit")]), 50.0);

    // Huge frames on the one working connection: 40 frames of 4 MiB
    // (octet-counted and newline-framed), 160 MiB in all, each cut to 1 KiB
    // and still parsed; then an ordinary message.
    let baseline = rss_kib(exporter.pid());
    let big = vec![b'x'; 4 << 20];
    for i in 0..40 {
        let head = format!("<13>Nov 28 17:35:01 mx1 {SENT} ");
        if i % 2 == 0 {
            flooder.write_all(format!("{} {head}", head.len() + big.len()).as_bytes()).unwrap();
            flooder.write_all(&big).unwrap();
        } else {
            flooder.write_all(head.as_bytes()).unwrap();
            flooder.write_all(&big).unwrap();
            flooder.write_all(b"\n").unwrap();
        }
        // Scrapes are answered while the flood goes on.
        assert_eq!(exporter.get("/metrics").0, 200);
    }
    flooder.write_all(format!("<13>Nov 28 17:35:01 mx1 {SENT}\n").as_bytes()).unwrap();
    let samples = exporter.metrics_when(|s| lines(s, "syslog") >= 41.0);
    assert_eq!(lines(&samples, "syslog"), 41.0);
    assert_eq!(sum(&samples, "mta_log_lines_truncated_total", &[("source", "syslog")]), 40.0);
    assert_eq!(sum(&samples, "mta_deliveries_total", &[("status", "sent")]), 41.0, "cut messages are still parsed");
    // 160 MiB went through; memory grew by far less than one frame.
    let grown = rss_kib(exporter.pid()).saturating_sub(baseline);
    assert!(grown < 16 * 1024, "RSS grew by {grown} KiB over a 160 MiB flood");

    // A slow sender that gives up in the middle of its frame: counted.
    drop(slow.pop());
    let samples = exporter.metrics_when(|s| {
        sum(s, "mta_syslog_messages_dropped_total", &[("reason", "incomplete")]) >= 1.0
            && sum(s, "mta_syslog_connections", &[]) == 7.0
    });
    assert_eq!(sum(&samples, "mta_syslog_messages_dropped_total", &[("reason", "incomplete")]), 1.0);
    // Its slot is free again: a new sender is served.
    let mut late = TcpStream::connect(&address).unwrap();
    late.write_all(format!("<13>Nov 28 17:35:01 mx1 {SENT}\n").as_bytes()).unwrap();
    drop(late);
    let samples = exporter.metrics_when(|s| lines(s, "syslog") >= 42.0);
    assert_eq!(lines(&samples, "syslog"), 42.0);
    drop(slow);
    assert!(exporter.terminate().success());
}
