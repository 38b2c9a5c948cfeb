//! The Sendmail parser called directly on every input line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mta_exporter::parse::sendmail;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let text = common::text(data);
    for line in text.split('\n') {
        if let Some(record) = sendmail::parse(line) {
            common::check_record(&record, line);
        }
    }
});
