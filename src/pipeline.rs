//! The per-source line pipeline: framed bytes → envelope and MTA parser →
//! classifier → counters. One [`Pipeline`] per source, owned by the thread
//! that reads the source, so nothing here locks on the hot path.

use std::borrow::Cow;
use std::sync::Arc;

use crate::classify::Classifier;
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
        // Mail logs are UTF-8 or close to it; a line that is not is read
        // lossily (one allocation, for that line only) and never dropped.
        let text: Cow<'_, str> = String::from_utf8_lossy(line.bytes);
        let parsed = parse::parse_line(&text);
        let classification = match &parsed {
            Line::Mta(record) => record.reply.map(|reply| self.classifier.classify(&reply)),
            _ => None,
        };
        let result = self.recorder.record(&parsed, classification);
        if result == LineResult::Unrecognized {
            tracing::debug!(source = %self.source, line = %text, "unrecognized line");
        }
        result
    }
}
