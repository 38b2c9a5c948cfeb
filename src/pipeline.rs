//! The per-source line pipeline: framed bytes → envelope and MTA parser →
//! classifier → counters. One [`Pipeline`] per source, owned by the thread
//! that reads the source, so nothing here locks on the hot path.
//!
//! The classifier can be replaced while running (a config reload changes
//! the cause rules): every pipeline shares one [`SharedClassifier`] and
//! keeps an `arc_swap::Cache` of it, so picking up a new table costs one
//! atomic load per line when nothing changed, and no lock ever.

use std::borrow::Cow;
use std::sync::Arc;

use arc_swap::{ArcSwap, Cache};

use crate::classify::Classifier;
use crate::framing::FramedLine;
use crate::metrics::{LineResult, Metrics, Recorder};
use crate::parse::{self, Line};

/// The classifier all pipelines use, replaced as a whole on reload.
#[derive(Clone, Debug)]
pub struct SharedClassifier(Arc<ArcSwap<Classifier>>);

impl SharedClassifier {
    pub fn new(classifier: Classifier) -> Self {
        SharedClassifier(Arc::new(ArcSwap::from_pointee(classifier)))
    }

    /// Every pipeline classifies its next line with `classifier`.
    pub fn replace(&self, classifier: Classifier) {
        self.0.store(Arc::new(classifier));
    }

    pub fn current(&self) -> Arc<Classifier> {
        self.0.load_full()
    }
}

/// A pipeline's own classifier: not shared with any other pipeline.
impl From<Arc<Classifier>> for SharedClassifier {
    fn from(classifier: Arc<Classifier>) -> Self {
        SharedClassifier(Arc::new(ArcSwap::new(classifier)))
    }
}

pub struct Pipeline {
    source: Arc<str>,
    classifier: Cache<Arc<ArcSwap<Classifier>>, Arc<Classifier>>,
    recorder: Recorder,
}

impl Pipeline {
    pub fn new(source: &str, metrics: &Arc<Metrics>, classifier: impl Into<SharedClassifier>) -> Self {
        let SharedClassifier(shared) = classifier.into();
        Pipeline { source: Arc::from(source), classifier: Cache::new(shared), recorder: metrics.recorder(source) }
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
            Line::Mta(record) => record.reply.map(|reply| self.classifier.load().classify(&reply)),
            _ => None,
        };
        let result = self.recorder.record(&parsed, classification);
        if result == LineResult::Unrecognized {
            tracing::debug!(source = %self.source, line = %text, "unrecognized line");
        }
        result
    }
}
