//! The commands end to end, through the binary: `explain`, `report` and
//! `check-config`, with exact expected output on fixtures written for this
//! project (`tests/fixtures/`), and bad input for each.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn run(args: &[&str]) -> Output {
    run_with_stdin(args, None)
}

fn run_with_stdin(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mta_exporter"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mta_exporter");
    if let Some(input) = stdin {
        child.stdin.take().expect("stdin").write_all(input).expect("write stdin");
    }
    child.wait_with_output().expect("wait")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("utf-8 stderr")
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)).expect("fixture")
}

/// Succeeded, wrote nothing to stderr.
fn ok(out: &Output) -> String {
    assert!(out.status.success(), "exit {:?}, stderr: {}", out.status, stderr(out));
    assert_eq!(stderr(out), "");
    stdout(out)
}

/// Failed with `code`, nothing on stdout, exactly one line on stderr.
fn failed(out: &Output, code: i32) -> String {
    assert_eq!(out.status.code(), Some(code), "stdout: {}\nstderr: {}", stdout(out), stderr(out));
    assert_eq!(stdout(out), "");
    let err = stderr(out);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    err
}

#[test]
fn explain_a_code_pair() {
    assert_eq!(ok(&run(&["explain", "550", "5.7.26"])), fixture("explain-550-5.7.26.txt"));
    // The same, written the way it appears in a reply.
    assert_eq!(ok(&run(&["explain", "550-5.7.26"])), fixture("explain-550-5.7.26.txt"));
}

#[test]
fn explain_a_pasted_reply_picks_the_provider() {
    let reply = "421-4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes";
    assert_eq!(ok(&run(&["explain", reply])), fixture("explain-yahoo-tss04.txt"));
}

#[test]
fn explain_as_json() {
    let json: Value = serde_json::from_str(&ok(&run(&["explain", "--output", "json", "535", "5.7.3"]))).expect("json");
    assert_eq!(json["code"], "535");
    assert_eq!(json["enhanced"], "5.7.3");
    assert_eq!(json["class"], "5xx");
    assert_eq!(json["category"], "policy");
    assert_eq!(json["cause"], "auth_failed");
    assert_eq!(json["meaning"], "Authentication unsuccessful");
    assert_eq!(json["whose"], "sender");
    assert_eq!(json["catalogued"], true);
    assert_eq!(json["parts"].as_array().map(Vec::len), Some(2), "535 and X.7.3 on their own");

    let json: Value = serde_json::from_str(&ok(&run(&["explain", "--output", "json", "599"]))).expect("json");
    assert_eq!(json["meaning"], "uncatalogued");
    assert_eq!(json["catalogued"], false);
    assert_eq!(json["class"], "5xx");
    assert_eq!(json["category"], "other");
}

#[test]
fn explain_either_code_alone() {
    let out = ok(&run(&["explain", "5.1.1"]));
    assert!(out.starts_with("5.1.1  Bad destination mailbox address\n"), "{out}");
    assert!(out.contains("  Cause     user_unknown — The recipient address does not exist\n"), "{out}");
    let out = ok(&run(&["explain", "120"]));
    assert!(out.starts_with("120  Service ready in a few minutes (FTP, not SMTP)\n"), "{out}");
    assert!(out.contains("Standard SMTP does not use it."), "{out}");
}

#[test]
fn explain_bad_input() {
    let cases: &[(&[&str], &str)] = &[
        (&["explain"], "mta_exporter explain: nothing to explain; give a basic code (550), an enhanced code (5.7.26), both (550 5.7.26), or a whole reply in quotes\n"),
        (&["explain", "650"], "mta_exporter explain: 650 is not an SMTP reply code: the first digit is 1 to 5 (2 success, 3 intermediate, 4 temporary failure, 5 permanent failure)\n"),
        (&["explain", "5.8.1"], "mta_exporter explain: 5.8.1 is not an enhanced status code: subject 8 is not defined; RFC 3463 subjects are 0 to 7\n"),
        (&["explain", "hello"], "mta_exporter explain: found no reply code in \"hello\"; give a basic code (550), an enhanced code (5.7.26), both (550 5.7.26), or a whole reply in quotes\n"),
    ];
    for (args, want) in cases {
        assert_eq!(failed(&run(args), 2), *want, "{args:?}");
    }
    let err = failed(&run(&["explain", "--output", "xml", "550"]), 2);
    assert!(err.contains("xml"), "{err}");
}

#[test]
fn report_on_the_fixture() {
    assert_eq!(ok(&run(&["report", "tests/fixtures/report.log"])), fixture("report.txt"));
    let got: Value =
        serde_json::from_str(&ok(&run(&["report", "--output", "json", "tests/fixtures/report.log"]))).expect("json");
    let want: Value = serde_json::from_str(&fixture("report.json")).expect("fixture json");
    assert_eq!(got, want);
}

#[test]
fn report_reads_stdin_and_gzip_the_same() {
    let log = fixture("report.log");
    let json = |out: &Output| {
        let mut value: Value = serde_json::from_str(&ok(out)).expect("json");
        value.as_object_mut().expect("object").remove("files");
        value
    };
    let plain = json(&run(&["report", "--output", "json", "tests/fixtures/report.log"]));
    let piped = json(&run_with_stdin(&["report", "--output", "json", "-"], Some(log.as_bytes())));
    assert_eq!(piped, plain);

    let dir = tempfile::tempdir().expect("tempdir");
    let gz = dir.path().join("mail.log.1.gz");
    let mut encoder =
        flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::default());
    encoder.write_all(log.as_bytes()).unwrap();
    encoder.finish().unwrap();
    let out = run(&["report", "--output", "json", gz.to_str().unwrap()]);
    assert_eq!(json(&out), plain);

    // Two files: totals add up, each file is listed.
    let out = run(&["report", gz.to_str().unwrap(), "tests/fixtures/report.log"]);
    let text = ok(&out);
    assert!(text.starts_with("mta_exporter report: 2 files, 58 lines"), "{text}");
    assert!(
        text.contains("Deliveries  sent 4 · deferred 10 · bounced 4 · expired 2 · rejected inbound 10\n"),
        "{text}"
    );
}

#[test]
fn report_uses_the_config_files_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "causes:\n  rules:\n    - cause: new_sender_throttle\n      text: 'unexpected volume'\n")
        .unwrap();
    let json: Value = serde_json::from_str(&ok(&run(&[
        "report",
        "--output",
        "json",
        "--config.file",
        config.to_str().unwrap(),
        "tests/fixtures/report.log",
    ])))
    .expect("json");
    let causes: Vec<&str> = json["causes"].as_array().unwrap().iter().map(|c| c["cause"].as_str().unwrap()).collect();
    assert!(causes.contains(&"new_sender_throttle"), "{causes:?}");
}

#[test]
fn report_bad_input() {
    assert_eq!(
        failed(&run(&["report"]), 2),
        "mta_exporter report: give the log files to read, e.g. mta_exporter report /var/log/mail.log /var/log/mail.log.1 (- reads standard input)\n"
    );
    assert_eq!(
        failed(&run(&["report", "/nonexistent/mail.log"]), 1),
        "mta_exporter report: cannot read /nonexistent/mail.log: No such file or directory (os error 2)\n"
    );
    assert_eq!(
        failed(&run(&["report", "tests"]), 1),
        "mta_exporter report: tests is a directory; give the log files inside it\n"
    );
    assert_eq!(
        failed(&run(&["report", "-", "-"]), 2),
        "mta_exporter report: standard input (-) can be read only once\n"
    );
    // A corrupt gzip file is named, not a panic.
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = dir.path().join("mail.log.2.gz");
    std::fs::write(&broken, [0x1f, 0x8b, 0x08, 0x00, 0x01, 0x02]).unwrap();
    let err = failed(&run(&["report", broken.to_str().unwrap()]), 1);
    assert!(err.starts_with(&format!("mta_exporter report: cannot read {}: ", broken.display())), "{err}");
}

#[test]
fn check_config_valid() {
    let out = ok(&run(&["check-config", "config/example.yaml"]));
    assert_eq!(
        out,
        "config/example.yaml: valid\n  sources: 1\n    /var/log/mail.log as \"mail\" (not found here: the exporter waits for it)\n"
            .to_string()
            + &format!(
                "  cause rules: {} (1 from the file, {} built in)\n",
                1 + mta_exporter::classify::CauseRules::default_specs().len(),
                mta_exporter::classify::CauseRules::default_specs().len()
            )
            + "  limits: 2000 series per family, lines cut at 65536 bytes; follow: poll every 1s\n"
            + "  queues: postfix at /var/spool/postfix; read at each scrape, for at most 5s\n"
    );
}

#[test]
fn check_config_names_the_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let typo = write("typo.yaml", "limits:\n  max_series: 3\n");
    assert_eq!(
        failed(&run(&["check-config", &typo]), 1),
        format!("mta_exporter check-config: config file {typo} is not valid: line 2 column 3: unknown field `max_series`, expected one of max_series_per_family, max_line_bytes\n")
    );
    let rule = write("rule.yaml", "causes:\n  rules:\n    - cause: greylisted\n      text: '(unclosed'\n");
    let err = failed(&run(&["check-config", &rule]), 1);
    assert!(
        err.starts_with(&format!("mta_exporter check-config: config file {rule}: cause rule 0 (greylisted): text:")),
        "{err}"
    );
    let name = write("name.yaml", "causes:\n  rules:\n    - cause: Bad-Name\n");
    assert_eq!(
        failed(&run(&["check-config", &name]), 1),
        format!("mta_exporter check-config: config file {name}: cause rule 0 (Bad-Name): a cause name is 1-32 characters of a-z, 0-9 and _, starting with a letter\n")
    );
    assert_eq!(
        failed(&run(&["check-config"]), 2),
        "mta_exporter check-config: give the config file to check, e.g. mta_exporter check-config /etc/mta_exporter.yaml\n"
    );
    assert_eq!(
        failed(&run(&["check-config", "/nonexistent.yaml"]), 1),
        "mta_exporter check-config: cannot read config file /nonexistent.yaml: No such file or directory (os error 2)\n"
    );
}

#[test]
fn commands_do_not_take_the_exporters_flags() {
    let err = failed(&run(&["--log.path", "/tmp/x", "explain", "550"]), 2);
    assert!(err.contains("'explain' cannot be used with '--log.path"), "{err}");
}
