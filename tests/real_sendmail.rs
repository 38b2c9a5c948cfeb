//! A log captured from a real Sendmail 8.17 through syslog
//! (tests/mta/sendmail/run.sh) against counts the driver, the SMTP sink and
//! the milter know, independently of any parser
//! (tests/fixtures/sendmail/scenarios.expected.json).

mod common;

#[test]
fn sendmail_via_syslog() {
    common::real::check("sendmail", "scenarios.log");
}
