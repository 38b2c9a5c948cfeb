//! Conformance on the shared corpus of real Exim, Sendmail, OpenSMTPD and
//! other MTA lines (`../shared/corpus`, never copied into this repository).
//! Runs only where the corpus exists; elsewhere it says so and checks
//! nothing. Postfix has its own test (`corpus_postfix.rs`).
//!
//! Each file is read line by line through one [`LineParser`], as a source
//! would read it (Exim's parser keeps state across lines). For every line:
//! no panic; a line that carries a reply code — by an independent pattern,
//! not by our parsers — yields a reply; and no line of a known MTA is
//! unrecognized. The figures per MTA are printed (`cargo test --test
//! corpus_mtas -- --nocapture`).
//!
//! What is not an MTA line, and so not fed to the parser, is only what the
//! corpus README lists as test-harness output: the `******** SERVER
//! ********` and `**NOTE: …` separators of the Exim test suite, and the
//! transcript its LMTP simulator prints into two mainlogs (`log/5100`,
//! `log/5101`: lines with neither an Exim timestamp nor leading white
//! space).
//!
//! Two kinds of Exim lines are held to a different rule, by shape:
//! * Lines the test suite's *configuration* writes (`logwrite`,
//!   `event_action`, DKIM ACL logging: bodies starting with `event `, `. `,
//!   `signer:`, `dkim_acl:`, `Authentication-Results:`). They quote replies
//!   already counted on Exim's own lines; they must not yield a reply, and
//!   may be unrecognized.
//! * A recipient line (`==`/`**`) that repeats the error of a host-level
//!   line (`H=host [ip]: SMTP error …`) of the same message and host: the
//!   host-level line counted that reply, so the first repeat must *not*
//!   yield one (see `parse::exim`). This is modelled here with plain
//!   regexes, independently of the parser.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::shared_dir;
use mta_exporter::parse::{Line, LineParser, MtaSelection, OtherParsers, ParsersSpec};
use regex::Regex;

fn corpus() -> Option<PathBuf> {
    let dir = shared_dir().join("corpus");
    dir.is_dir().then_some(dir)
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).collect();
    out.sort();
    out
}

/// The corpus files of each MTA group.
fn groups(corpus: &Path) -> BTreeMap<&'static str, Vec<PathBuf>> {
    let mut groups: BTreeMap<&'static str, Vec<PathBuf>> = BTreeMap::new();
    let mut add = |group, path: PathBuf| {
        assert!(path.exists(), "corpus file missing: {}", path.display());
        groups.entry(group).or_default().push(path);
    };
    for path in files_under(&corpus.join("exim-testsuite/log")) {
        add("exim", path);
    }
    for path in files_under(&corpus.join("exim-testsuite/rejectlog")) {
        add("exim", path);
    }
    for name in ["exim", "exim-spam"] {
        add("exim", corpus.join("fail2ban").join(name));
    }
    for dir in ["exim-bf", "exim-logs", "exim-spam", "exim-syslog-logs"] {
        for path in files_under(&corpus.join("crowdsec-hub").join(dir)) {
            add("exim", path);
        }
    }
    add("exim", corpus.join("ossec-hids/contrib/ossec-testing/tests/exim.ini"));
    for name in ["sendmail-auth", "sendmail-reject"] {
        add("sendmail", corpus.join("fail2ban").join(name));
    }
    for name in
        ["sendmail-plain.log", "sendmail-custom-dsn.log", "sendmail-done.log", "sendmail-ruleset.log", "technoids.log"]
    {
        add("sendmail", corpus.join("parse-syslog-mail/t/logs").join(name));
    }
    add("sendmail", corpus.join("fluent-plugin-sendmail/test/data/data"));
    add("opensmtpd", corpus.join("ossec-hids/contrib/ossec-testing/tests/opensmtpd.ini"));
    for name in ["courier-smtp", "qmail", "oracleims", "assp", "kerio", "domino-smtp"] {
        add("other", corpus.join("fail2ban").join(name));
    }
    for dir in ["exchange-smtp-bf", "exchange-smtp-logs"] {
        for path in files_under(&corpus.join("crowdsec-hub").join(dir)) {
            add("other", path);
        }
    }
    groups
}

/// The log lines of a corpus file, without comments, blank lines, test
/// wrappers and test-harness output; `\r` is removed as the framing does.
fn log_lines(path: &Path) -> (Vec<String>, usize) {
    let bytes = std::fs::read(path).expect("read corpus file");
    let text = String::from_utf8_lossy(&bytes);
    let exim_testsuite = path.to_string_lossy().contains("exim-testsuite");
    let lmtp_transcript = path.ends_with("log/5100") || path.ends_with("log/5101");
    let exim_timestamp = Regex::new(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d").unwrap();
    let mut harness = 0;
    let mut lines = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || (!exim_testsuite && line.starts_with('#')) {
            continue;
        }
        if exim_testsuite
            && (line.starts_with("******** SERVER")
                || line.starts_with("**NOTE:")
                || (lmtp_transcript && !exim_timestamp.is_match(line) && !line.starts_with([' ', '\t'])))
        {
            harness += 1;
            continue;
        }
        // OSSEC's test files wrap each line as `log N pass = <line>`.
        let line = match line.split_once(" pass = ") {
            Some((head, rest)) if head.starts_with("log ") => rest,
            _ if path.extension().is_some_and(|e| e == "ini") => continue,
            _ => line,
        };
        lines.push(line.to_string());
    }
    (lines, harness)
}

#[derive(Default)]
struct Tally {
    files: usize,
    lines: usize,
    harness: usize,
    replies: usize,
    deliveries: usize,
    foreign: usize,
    /// Exim lines the test suite's configuration writes.
    config: usize,
    /// Recipient lines repeating a host-level error.
    repeats: usize,
    unrecognized: Vec<String>,
    missed: Vec<String>,
    /// Replies counted where they must not be.
    double: Vec<String>,
}

#[test]
fn every_reply_of_every_mta_in_the_corpus_is_found() {
    let Some(corpus) = corpus() else {
        eprintln!("corpus not found at {}: conformance test not run", shared_dir().join("corpus").display());
        return;
    };
    // Independent of the parsers: a basic code where MTAs write replies —
    // after `: `, inside `C="…"`, after `reject=`/`reply=`/`result=`/`stat=`,
    // after OpenSMTPD's `=> ` and after a host address (`[ip] 535 …`).
    // A hyphen after the code must start a text or an enhanced code (a host
    // name `211-75-6-133.example` is not a reply).
    let carries_code =
        Regex::new(r#"(?:: |C="|(?:reject|reply|result|stat)="?|=> |\] )[245]\d\d(?:-(?:\D|[245]\.\d)| |"|$)"#)
            .unwrap();
    let config_line = Regex::new(
        r"^\d{4}-\d\d-\d\d [\d:.]+ (?:\S+-\S+-\S+ )?(?:event |\. |signer: |dkim_acl: |Authentication-Results: )",
    )
    .unwrap();
    // Exim's own lines with a code that is no SMTP reply: its warning about
    // a configured EHLO response, a virus scanner's protocol status.
    let not_a_reply = Regex::new(r"^\d{4}-\d\d-\d\d [\d:.]+ (?:\S+-\S+-\S+ )?(?:EHLO/HELO response must not contain newlines|malware acl condition:)").unwrap();
    // For other programs only the opt-in generic rule counts: a basic and
    // an enhanced code in reply position.
    let carries_full_code = Regex::new(r#"(?:: |="|,)[245]\d\d[ -][245]\.\d{1,3}\.\d{1,3}(?:[ :;,]|$)"#).unwrap();
    let others = Arc::new(OtherParsers::compile(&ParsersSpec { generic: true, custom: Vec::new() }).unwrap());

    let mut tallies: BTreeMap<&str, Tally> = BTreeMap::new();
    for (group, files) in groups(&corpus) {
        let tally = tallies.entry(group).or_default();
        for path in files {
            let origin = path.strip_prefix(&corpus).unwrap_or(&path).display().to_string();
            let (lines, harness) = log_lines(&path);
            tally.files += 1;
            tally.harness += harness;
            let mut parser = LineParser::new(MtaSelection::Auto, Arc::clone(&others));
            let mut repeats = common::EximRepeats::new();
            for (i, line) in lines.iter().enumerate() {
                tally.lines += 1;
                let at = format!("{origin} #{}: {line}", i + 1);
                let parsed = parser.parse(line);
                if group == "exim" && config_line.is_match(line) {
                    tally.config += 1;
                    if matches!(parsed, Line::Mta(r) if r.reply.is_some()) {
                        tally.double.push(format!("{at} (a configuration line yielded a reply)"));
                    }
                    continue;
                }
                if repeats.is_repeat(line) {
                    tally.repeats += 1;
                    if matches!(parsed, Line::Mta(r) if r.reply.is_some()) {
                        tally.double.push(format!("{at} (counted again after its host-level line)"));
                    }
                    continue;
                }
                match parsed {
                    Line::Mta(record) => {
                        if record.delivery.is_some() {
                            tally.deliveries += 1;
                        }
                        if record.reply.is_some() {
                            tally.replies += 1;
                        } else if group == "other" {
                            if carries_full_code.is_match(line) {
                                tally.missed.push(at);
                            }
                        } else if carries_code.is_match(line) && !continuation(line) && !not_a_reply.is_match(line) {
                            tally.missed.push(at);
                        }
                    }
                    Line::Foreign => {
                        tally.foreign += 1;
                        if group != "other" {
                            tally.unrecognized.push(format!("{at} (taken for another program)"));
                        } else if carries_full_code.is_match(line) {
                            tally.missed.push(at);
                        }
                    }
                    Line::Unrecognized => {
                        if group != "other" {
                            tally.unrecognized.push(at);
                        } else if carries_full_code.is_match(line) {
                            tally.missed.push(at);
                        }
                    }
                }
            }
        }
    }
    let mut failures = Vec::new();
    for (group, t) in &tallies {
        eprintln!(
            "{group} corpus: {} files, {} lines read, {} replies found, {} delivery outcomes, {} unrecognized, {} lines of other programs, {} recipient lines repeating a host-level reply, {} configuration-written lines, {} harness lines skipped, {} lines with a code but no reply",
            t.files,
            t.lines,
            t.replies,
            t.deliveries,
            if *group == "other" { t.lines - t.replies - t.foreign } else { t.unrecognized.len() },
            t.foreign,
            t.repeats,
            t.config,
            t.harness,
            t.missed.len()
        );
        if !t.double.is_empty() {
            failures.push(format!("{group}: replies counted twice:\n{}", t.double.join("\n")));
        }
        if !t.unrecognized.is_empty() {
            failures.push(format!("{group}: unrecognized lines:\n{}", t.unrecognized.join("\n")));
        }
        if !t.missed.is_empty() {
            failures.push(format!("{group}: lines with a code but no reply:\n{}", t.missed.join("\n")));
        }
    }
    assert!(tallies["exim"].lines > 10_000, "expected the Exim test suite's logs");
    assert!(tallies["sendmail"].lines > 300, "expected the Sendmail logs");
    assert!(tallies["opensmtpd"].replies >= 1, "expected the OpenSMTPD failed command");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Lines that continue an entry (the first line was counted): leading white
/// space, a rejectlog header dump.
fn continuation(line: &str) -> bool {
    line.starts_with([' ', '\t'])
        || mta_exporter::parse::exim::is_continuation(line) && !line.starts_with(char::is_numeric)
}
