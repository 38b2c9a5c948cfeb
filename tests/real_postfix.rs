//! Logs captured from a real Postfix 3.7 (tests/mta/postfix/run.sh) against
//! counts the driver and the SMTP sink know, independently of any parser
//! (tests/fixtures/postfix/*.expected.json).

mod common;

use std::path::Path;

#[test]
fn postfix_maillog_file() {
    common::real::check("postfix", "scenarios.log");
}

#[test]
fn postfix_via_syslog() {
    common::real::check("postfix", "scenarios-syslog.log");
}

#[test]
fn the_bundled_sample_is_the_captured_log() {
    let sample = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sample/postfix.log"))
        .expect("config/sample/postfix.log");
    assert_eq!(sample, common::real::fixture("postfix", "scenarios.log").0);
}
