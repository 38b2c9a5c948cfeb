//! The Postfix parser called directly: the first input line is the syslog
//! program, every other line a message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mta_exporter::parse::postfix;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let text = common::text(data);
    let (program, messages) = text.split_once('\n').unwrap_or(("postfix/smtp", &text));
    for message in messages.split('\n') {
        if let Some(record) = postfix::parse(program, message) {
            common::check_record(&record, message);
        }
    }
});
