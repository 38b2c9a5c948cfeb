//! The OpenSMTPD parser called directly on every input line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mta_exporter::parse::opensmtpd;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let text = common::text(data);
    for line in text.split('\n') {
        let _ = opensmtpd::session_body(line);
        if let Some(record) = opensmtpd::parse(line) {
            common::check_record(&record, line);
        }
    }
});
