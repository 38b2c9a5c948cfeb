//! A log captured from a real OpenSMTPD 6.8 through syslog
//! (tests/mta/opensmtpd/run.sh) against counts the driver and the SMTP sink
//! know, independently of any parser
//! (tests/fixtures/opensmtpd/scenarios.expected.json).

mod common;

#[test]
fn opensmtpd_via_syslog() {
    common::real::check("opensmtpd", "scenarios.log");
}
