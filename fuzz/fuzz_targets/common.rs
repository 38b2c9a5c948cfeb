//! Invariants every fuzz target checks on what the exporter made of its
//! input, beyond "it did not panic". Shared by `#[path]` include.
#![allow(dead_code)]

use mta_exporter::model::{Reply, ReplyClass};
use mta_exporter::parse::{Line, Record};

/// Whether `part` lies inside `whole` (the parsers only borrow from their input).
pub fn within(part: &str, whole: &str) -> bool {
    let (p, w) = (part.as_ptr() as usize, whole.as_ptr() as usize);
    p >= w && p + part.len() <= w + whole.len()
}

/// A reply has a code, its class is its basic code's first digit (else the
/// enhanced code's), and its text is part of the line.
pub fn check_reply(reply: &Reply<'_>, input: &str) {
    assert!(reply.code.is_some() || reply.enhanced.is_some(), "a reply without any code: {reply:?}");
    let digit = match (reply.code, reply.enhanced) {
        (Some(code), _) => (code.value() / 100) as u8,
        (None, Some(enhanced)) => enhanced.class_digit(),
        (None, None) => unreachable!(),
    };
    let want = match digit {
        2 => ReplyClass::Success,
        4 => ReplyClass::Transient,
        5 => ReplyClass::Permanent,
        other => panic!("class digit {other} in {reply:?}"),
    };
    assert_eq!(reply.class(), want, "{reply:?}");
    // (An empty text may be a literal `""`: it is part of nothing.)
    assert!(reply.text.is_empty() || within(reply.text, input), "reply text {:?} is not part of the input", reply.text);
}

pub fn check_record(record: &Record<'_>, input: &str) {
    if let Some(reply) = &record.reply {
        check_reply(reply, input);
    }
    if let Some(domain) = record.remote_domain {
        assert!(domain.is_empty() || within(domain, input), "remote domain {domain:?} is not part of the input");
    }
    assert!(record.recipients >= 1, "{record:?}");
    // Every recipient is at least one byte of the line.
    assert!(record.recipients as usize <= input.len().max(1), "{record:?}");
}

pub fn check_line(line: &Line<'_>, input: &str) {
    if let Line::Mta(record) = line {
        check_record(record, input);
    }
}

/// The input as text (lossily, as the exporter reads every line).
pub fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}
