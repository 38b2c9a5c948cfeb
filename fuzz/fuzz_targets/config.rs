//! The config file loader: parse, then compile the cause rules and the
//! custom parsers it names (the expensive parts, size-capped).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mta_exporter::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(config) = Config::parse(text) {
        let _ = config.cause_rules();
        let _ = config.other_parsers();
    }
});
