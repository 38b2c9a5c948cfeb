//! The parsers for other programs: the generic rule and a custom regex
//! parser (as in the README), with and without a program name.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mta_exporter::parse::{OtherParsers, ParsersSpec};

#[path = "common.rs"]
mod common;

const SPEC: &str = r#"
generic: true
custom:
  - name: courier
    program: courieresmtpd
    regex: ': (?P<code>[245]\d\d)(?: (?P<enhanced>[245]\.\d{1,3}\.\d{1,3}))? (?P<text>.*)$'
    direction: inbound
  - name: anything
    regex: '(?P<direction>\w+) (?P<phase>\w+) (?P<code>\d+) (?P<enhanced>\S+) (?P<text>.*)'
"#;

fuzz_target!(|data: &[u8]| {
    // Compiled once per process, as the exporter does at start.
    static PARSERS: OnceLock<OtherParsers> = OnceLock::new();
    let parsers = PARSERS.get_or_init(|| {
        let spec: ParsersSpec = serde_saphyr::from_str(SPEC).unwrap();
        OtherParsers::compile(&spec).unwrap()
    });
    let text = common::text(data);
    for line in text.split('\n') {
        for program in [None, Some("courieresmtpd"), Some("x")] {
            if let Some(record) = parsers.parse(program, line) {
                common::check_record(&record, line);
            }
        }
    }
});
