//! The Exim parser called directly, one parser over all lines (it
//! remembers host-level errors between lines).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mta_exporter::parse::exim::{self, EximParser};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let text = common::text(data);
    let mut parser = EximParser::new();
    for line in text.split('\n') {
        let _ = exim::is_continuation(line);
        let _ = exim::timestamp_len(line.as_bytes());
        if let Some(record) = parser.parse(line) {
            common::check_record(&record, line);
        }
    }
});
