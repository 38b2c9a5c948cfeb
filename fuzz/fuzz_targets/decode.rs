//! The line format decoders (plain, CRI, Docker json-file, journald JSON,
//! auto): every input line through one decoder per format, partial lines
//! joined across lines as a source would.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mta_exporter::decode::{Decoder, Entry, Format};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the joined-line cap, so small caps are hit often.
    let Some((&cap, data)) = data.split_first() else { return };
    let max_line = usize::from(cap) + 1;
    for format in [Format::Auto, Format::Plain, Format::Cri, Format::Docker, Format::JournaldJson] {
        let mut decoder = Decoder::new(format, max_line);
        for raw in data.split(|&b| b == b'\n') {
            match decoder.decode(raw) {
                Some(Entry::Text(text)) => {
                    // A line is never longer than the line it came from
                    // (read lossily), nor a joined line than the cap.
                    let lossy = String::from_utf8_lossy(raw).len();
                    assert!(text.len() <= lossy.max(max_line), "{} > {lossy}/{max_line}", text.len());
                }
                Some(Entry::Journal { message, .. }) => assert!(message.len() <= 3 * raw.len()),
                Some(Entry::Invalid) | None => {}
            }
        }
        for entry in decoder.flush() {
            if let Entry::Text(text) = entry {
                assert!(text.len() <= max_line, "flushed {} > {max_line}", text.len());
            }
        }
        assert!(decoder.flush().is_empty());
    }
});
