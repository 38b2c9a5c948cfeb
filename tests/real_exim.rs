//! Logs captured from a real Exim 4.96 (tests/fixtures/exim: Debian's
//! default `log_selector`, and `+all` with pids, milliseconds, ports,
//! `DT=` …) against counts the driver and the SMTP sink know, independently
//! of any parser (`*.expected.json`). The driver counts a host-level error
//! (`H=host [ip]: SMTP error …`) as the first recipient's reply and that
//! recipient's line repeating it as an outcome only, as the parser does (see
//! "What counts as one reply" in README.md).

mod common;

#[test]
fn exim_default_log_selector() {
    common::real::check("exim", "scenarios.log");
}

#[test]
fn exim_all_log_selectors() {
    common::real::check("exim", "scenarios-all.log");
}

#[test]
fn exim_rejectlog() {
    common::real::check("exim", "scenarios.rejectlog");
}

#[test]
fn exim_rejectlog_all_log_selectors() {
    common::real::check("exim", "scenarios-all.rejectlog");
}
