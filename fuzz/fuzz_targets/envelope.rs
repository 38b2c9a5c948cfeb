//! The syslog prefix parser (RFC 3164, RFC 3339, RFC 5424, BSD tags) and
//! the timestamp arithmetic behind it.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use mta_exporter::envelope;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let line = common::text(data);
    if let Some(env) = envelope::parse(&line) {
        for part in [env.host, env.program, env.message].into_iter().chain(env.pid) {
            assert!(common::within(part, &line) || part.is_empty(), "{part:?} not from the line");
        }
        assert!(!env.program.is_empty());
        // Any clock, including one before the epoch's first year ends.
        for now in [0, 86_399, 1_795_780_800, u32::MAX as u64] {
            let _ = env.timestamp.to_system_time(UNIX_EPOCH + Duration::from_secs(now));
        }
        let _ = mta_exporter::parse::parse_envelope(&env);
    }
});
