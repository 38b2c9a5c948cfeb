//! The per-source line pipeline: framed bytes → line format decoder →
//! envelope and MTA parser → classifier → counters. One [`Pipeline`] per
//! source, owned by the thread that reads the source, so nothing here locks
//! on the hot path.

use std::sync::Arc;

use crate::classify::Classifier;
use crate::decode::{Decoder, Entry, Format};
use crate::framing::{FramedLine, DEFAULT_MAX_LINE};
use crate::metrics::{LineResult, Metrics, Recorder};
use crate::parse::{LineParser, MtaSelection, OtherParsers};

/// How a source's lines are read: its line format, its MTA, and the parsers
/// for lines no built-in parser claims.
#[derive(Clone, Debug)]
pub struct LineOptions {
    pub format: Format,
    pub mta: MtaSelection,
    pub others: Arc<OtherParsers>,
    /// Cap for partial lines joined by the decoder.
    pub max_line_bytes: usize,
}

impl Default for LineOptions {
    fn default() -> Self {
        LineOptions {
            format: Format::Auto,
            mta: MtaSelection::Auto,
            others: Arc::new(OtherParsers::default()),
            max_line_bytes: DEFAULT_MAX_LINE,
        }
    }
}

pub struct Pipeline {
    source: Arc<str>,
    classifier: Arc<Classifier>,
    recorder: Recorder,
    decoder: Decoder,
    parser: LineParser,
}

impl Pipeline {
    /// A pipeline with the default line options (format and MTA detected per line).
    pub fn new(source: &str, metrics: &Arc<Metrics>, classifier: Arc<Classifier>) -> Self {
        Pipeline::with_options(source, metrics, classifier, LineOptions::default())
    }

    pub fn with_options(
        source: &str,
        metrics: &Arc<Metrics>,
        classifier: Arc<Classifier>,
        options: LineOptions,
    ) -> Self {
        Pipeline {
            source: Arc::from(source),
            classifier,
            recorder: metrics.recorder(source),
            decoder: Decoder::new(options.format, options.max_line_bytes),
            parser: LineParser::new(options.mta, options.others),
        }
    }

    /// Counts bytes read from the source (framing overhead included).
    pub fn add_bytes(&self, n: u64) {
        self.recorder.add_bytes(n);
    }

    /// Decodes, parses, classifies and counts one framed line. `None` when
    /// it was part of a longer line (a CRI `P` or Docker partial line) that
    /// is counted once it is complete.
    pub fn process(&mut self, line: FramedLine<'_>) -> Option<LineResult> {
        let entry = self.decoder.decode(line.bytes)?;
        if entry == Entry::Invalid {
            tracing::debug!(source = %self.source, line = %String::from_utf8_lossy(line.bytes), "line not in the source's configured format");
        }
        Some(self.entry(entry))
    }

    /// Counts what partial lines the decoder still holds: call it when the
    /// input has ended (end of stdin, a command that exited).
    pub fn finish(&mut self) -> Vec<LineResult> {
        self.decoder.flush().into_iter().map(|entry| self.entry(entry)).collect()
    }

    fn entry(&mut self, entry: Entry<'_>) -> LineResult {
        let parsed = match &entry {
            Entry::Text(text) => self.parser.parse(text),
            Entry::Journal { program, message, .. } => self.parser.parse_entry(program, message),
            Entry::Invalid => crate::parse::Line::Unrecognized,
        };
        let classification = match &parsed {
            crate::parse::Line::Mta(record) => record.reply.map(|reply| self.classifier.classify(&reply)),
            _ => None,
        };
        let result = self.recorder.record(&parsed, classification);
        if result == LineResult::Unrecognized {
            match &entry {
                Entry::Text(text) => tracing::debug!(source = %self.source, line = %text, "unrecognized line"),
                Entry::Journal { program, message, .. } => {
                    tracing::debug!(source = %self.source, program = %program, line = %message, "unrecognized line")
                }
                Entry::Invalid => {}
            }
        }
        result
    }
}
