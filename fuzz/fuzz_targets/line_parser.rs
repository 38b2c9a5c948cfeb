//! The whole parse stage as a source runs it: one `LineParser` (it keeps
//! state between lines: Exim continuations and host-level errors) over
//! every line of the input, with automatic MTA selection and with each MTA
//! fixed, and the generic rule enabled.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use mta_exporter::parse::{LineParser, MtaSelection, OtherParsers, ParsersSpec};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let text = common::text(data);
    let generic = Arc::new(OtherParsers::compile(&ParsersSpec { generic: true, custom: Vec::new() }).unwrap());
    let selections = [
        (MtaSelection::Auto, Arc::new(OtherParsers::default())),
        (MtaSelection::Auto, generic),
        (MtaSelection::Postfix, Arc::new(OtherParsers::default())),
        (MtaSelection::Exim, Arc::new(OtherParsers::default())),
        (MtaSelection::Sendmail, Arc::new(OtherParsers::default())),
        (MtaSelection::Opensmtpd, Arc::new(OtherParsers::default())),
    ];
    for (selection, others) in selections {
        let mut parser = LineParser::new(selection, others);
        for line in text.split('\n') {
            let (_, parsed) = parser.parse_stamped(line);
            common::check_line(&parsed, line);
        }
    }
});
