//! The per-source line pipeline: framed bytes → envelope and MTA parser →
//! classifier → counters. One [`Pipeline`] per source, owned by the thread
//! that reads the source, so nothing here locks on the hot path.
//! [`understand`] is the decode → parse → classify step on its own, shared
//! with `mta_exporter report`.

use std::borrow::Cow;
use std::sync::Arc;

use crate::classify::{Classification, Classifier};
use crate::framing::FramedLine;
use crate::metrics::{LineResult, Metrics, Recorder};
use crate::parse::{self, Line};

pub struct Pipeline {
    source: Arc<str>,
    classifier: Arc<Classifier>,
    recorder: Recorder,
}

impl Pipeline {
    pub fn new(source: &str, metrics: &Arc<Metrics>, classifier: Arc<Classifier>) -> Self {
        Pipeline { source: Arc::from(source), classifier, recorder: metrics.recorder(source) }
    }

    /// Counts bytes read from the source (framing overhead included).
    pub fn add_bytes(&self, n: u64) {
        self.recorder.add_bytes(n);
    }

    /// Parses, classifies and counts one line.
    pub fn process(&mut self, line: FramedLine<'_>) -> LineResult {
        let Pipeline { source, classifier, recorder } = self;
        understand(line.bytes, classifier, |text, parsed, classification| {
            let result = recorder.record(parsed, classification);
            if result == LineResult::Unrecognized {
                tracing::debug!(source = %source, line = %text, "unrecognized line");
            }
            result
        })
    }
}

/// Decodes, parses and classifies one line, and hands the results to `then`
/// (the parsed line borrows the decoded text). This is the part of the
/// pipeline that the exporter and `mta_exporter report` share.
pub fn understand<R>(
    bytes: &[u8],
    classifier: &Classifier,
    then: impl FnOnce(&str, &Line<'_>, Option<Classification>) -> R,
) -> R {
    // Mail logs are UTF-8 or close to it; a line that is not is read
    // lossily (one allocation, for that line only) and never dropped.
    let text: Cow<'_, str> = String::from_utf8_lossy(bytes);
    let parsed = parse::parse_line(&text);
    let classification = match &parsed {
        Line::Mta(record) => record.reply.map(|reply| classifier.classify(&reply)),
        _ => None,
    };
    then(&text, &parsed, classification)
}
