//! The per-source line pipeline: framed bytes → line format decoder →
//! envelope and MTA parser → classifier → counters. One [`Pipeline`] per
//! source, owned by the thread that reads the source, so nothing here locks
//! on the hot path.
//!
//! Sources hand lines to [`Pipeline::process`] (files, stdin, commands) or
//! an already split envelope to [`Pipeline::process_envelope`] (the syslog
//! listener), call [`Pipeline::end_batch`] after each read — the log's own
//! timestamp of the batch's last line is turned into a number only there,
//! not once per line — and [`Pipeline::finish`] when a stream ends, so a
//! partial line the decoder still holds is counted.
//!
//! [`LineReader`] is the decode → parse → classify step on its own, with the
//! per-source state it needs (partial container lines, Exim's memory of
//! host-level errors); `mta_exporter report` uses it too, so a report counts
//! exactly what the exporter would.
//!
//! The classifier can be replaced while running (a config reload changes
//! the cause rules): every pipeline shares one [`SharedClassifier`] and
//! keeps an `arc_swap::Cache` of it, so picking up a new table costs one
//! atomic load per line when nothing changed, and no lock ever.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::{ArcSwap, Cache};

use crate::classify::{Classification, Classifier};
use crate::decode::{Decoder, Entry, Format};
use crate::envelope::{Envelope, Timestamp};
use crate::framing::{FramedLine, DEFAULT_MAX_LINE};
use crate::metrics::{LineResult, Metrics, Recorder, SourceHandles};
use crate::parse::{Line, LineParser, MtaSelection, OtherParsers};

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

/// Longest timestamp text kept (RFC 3339 with nanoseconds and a zone is 35).
const STAMP_MAX: usize = 40;

/// The last line's own timestamp, copied out of the line (no allocation).
#[derive(Clone, Copy, Debug)]
enum LastStamp {
    None,
    Text { rfc3339: bool, len: usize, bytes: [u8; STAMP_MAX] },
    Time(SystemTime),
}

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

impl From<&Arc<Classifier>> for SharedClassifier {
    fn from(classifier: &Arc<Classifier>) -> Self {
        SharedClassifier::from(Arc::clone(classifier))
    }
}

impl From<&SharedClassifier> for SharedClassifier {
    fn from(classifier: &SharedClassifier) -> Self {
        classifier.clone()
    }
}

/// Decode → parse → classify for one source, without counting.
#[derive(Debug)]
pub struct LineReader {
    decoder: Decoder,
    parser: LineParser,
    last_stamp: LastStamp,
}

impl LineReader {
    pub fn new(options: LineOptions) -> Self {
        LineReader {
            decoder: Decoder::new(options.format, options.max_line_bytes),
            parser: LineParser::new(options.mta, options.others),
            last_stamp: LastStamp::None,
        }
    }

    /// Decodes, parses and classifies one framed line and hands the results
    /// to `then` (the parsed line borrows the decoded text). `None` when the
    /// line was part of a longer one (a CRI `P` or Docker partial line) that
    /// is handed over once it is complete.
    pub fn read<R>(
        &mut self,
        bytes: &[u8],
        classifier: &Classifier,
        then: impl FnOnce(&str, &Line<'_>, Option<Classification>) -> R,
    ) -> Option<R> {
        let entry = self.decoder.decode(bytes)?;
        if entry == Entry::Invalid {
            tracing::debug!(line = %String::from_utf8_lossy(bytes), "line not in the source's configured format");
        }
        Some(self.entry(entry, classifier, then))
    }

    /// Hands over what partial lines the decoder still holds: call it when
    /// the input has ended.
    pub fn finish<R>(
        &mut self,
        classifier: &Classifier,
        mut then: impl FnMut(&str, &Line<'_>, Option<Classification>) -> R,
    ) -> Vec<R> {
        self.decoder.flush().into_iter().map(|entry| self.entry(entry, classifier, &mut then)).collect()
    }

    /// A message whose envelope was already split (by the syslog listener).
    pub fn read_envelope<R>(
        &mut self,
        envelope: &Envelope<'_>,
        time: Option<SystemTime>,
        classifier: &Classifier,
        then: impl FnOnce(&str, &Line<'_>, Option<Classification>) -> R,
    ) -> R {
        if let Some(time) = time {
            self.last_stamp = LastStamp::Time(time);
        }
        let parsed = self.parser.parse_entry(envelope.program, envelope.message);
        then(envelope.message, &parsed, classify(&parsed, classifier))
    }

    /// The own timestamp of the last line read since the previous call.
    pub fn take_last_time(&mut self, now: SystemTime) -> Option<SystemTime> {
        let time = match self.last_stamp {
            LastStamp::None => None,
            LastStamp::Time(time) => Some(time),
            LastStamp::Text { rfc3339, len, bytes } => std::str::from_utf8(&bytes[..len]).ok().and_then(|text| {
                let stamp = if rfc3339 { Timestamp::Rfc3339(text) } else { Timestamp::Rfc3164(text) };
                stamp.to_system_time(now)
            }),
        };
        self.last_stamp = LastStamp::None;
        time
    }

    fn remember(&mut self, stamp: Timestamp<'_>) {
        let (rfc3339, text) = match stamp {
            Timestamp::Rfc3339(text) => (true, text),
            Timestamp::Rfc3164(text) => (false, text),
            Timestamp::Nil => return,
        };
        if text.len() <= STAMP_MAX {
            let mut bytes = [0; STAMP_MAX];
            bytes[..text.len()].copy_from_slice(text.as_bytes());
            self.last_stamp = LastStamp::Text { rfc3339, len: text.len(), bytes };
        }
    }

    fn entry<R>(
        &mut self,
        entry: Entry<'_>,
        classifier: &Classifier,
        then: impl FnOnce(&str, &Line<'_>, Option<Classification>) -> R,
    ) -> R {
        match &entry {
            Entry::Text(text) => {
                let (stamp, parsed) = self.parser.parse_stamped(text);
                if let Some(stamp) = stamp {
                    self.remember(stamp);
                }
                then(text, &parsed, classify(&parsed, classifier))
            }
            Entry::Journal { program, message, realtime_us, .. } => {
                if let Some(us) = realtime_us {
                    self.last_stamp = LastStamp::Time(UNIX_EPOCH + Duration::from_micros(*us));
                }
                let parsed = self.parser.parse_entry(program, message);
                then(message, &parsed, classify(&parsed, classifier))
            }
            Entry::Invalid => then("", &Line::Unrecognized, None),
        }
    }
}

fn classify(parsed: &Line<'_>, classifier: &Classifier) -> Option<Classification> {
    match parsed {
        Line::Mta(record) => record.reply.map(|reply| classifier.classify(&reply)),
        _ => None,
    }
}

pub struct Pipeline {
    source: Arc<str>,
    classifier: Cache<Arc<ArcSwap<Classifier>>, Arc<Classifier>>,
    recorder: Recorder,
    health: SourceHandles,
    reader: LineReader,
}

impl Pipeline {
    /// A pipeline with the default line options (format and MTA detected per line).
    pub fn new(source: &str, metrics: &Arc<Metrics>, classifier: impl Into<SharedClassifier>) -> Self {
        Pipeline::with_options(source, metrics, classifier, LineOptions::default())
    }

    pub fn with_options(
        source: &str,
        metrics: &Arc<Metrics>,
        classifier: impl Into<SharedClassifier>,
        options: LineOptions,
    ) -> Self {
        let SharedClassifier(shared) = classifier.into();
        Pipeline {
            source: Arc::from(source),
            classifier: Cache::new(shared),
            recorder: metrics.recorder(source),
            health: metrics.source_handles(source),
            reader: LineReader::new(options),
        }
    }

    /// Counts bytes read from the source (framing overhead included).
    pub fn add_bytes(&self, n: u64) {
        self.recorder.add_bytes(n);
    }

    /// Decodes, parses, classifies and counts one framed line. `None` when
    /// it was part of a longer line that is counted once it is complete.
    pub fn process(&mut self, line: FramedLine<'_>) -> Option<LineResult> {
        if line.truncated {
            self.health.truncated_line();
        }
        let Pipeline { source, classifier, recorder, reader, .. } = self;
        reader.read(line.bytes, classifier.load(), |text, parsed, c| count(recorder, source, text, parsed, c))
    }

    /// Counts what partial lines the decoder still holds: call it when the
    /// input has ended (end of stdin, a command that exited).
    pub fn finish(&mut self) -> Vec<LineResult> {
        let Pipeline { source, classifier, recorder, reader, .. } = self;
        reader.finish(classifier.load(), |text, parsed, c| count(recorder, source, text, parsed, c))
    }

    /// Parses, classifies and counts a message whose envelope was already
    /// split (by the syslog listener); `time` is its parsed timestamp.
    pub fn process_envelope(
        &mut self,
        envelope: &Envelope<'_>,
        time: Option<SystemTime>,
        truncated: bool,
    ) -> LineResult {
        if truncated {
            self.health.truncated_line();
        }
        let Pipeline { source, classifier, recorder, reader, .. } = self;
        reader.read_envelope(envelope, time, classifier.load(), |text, parsed, c| {
            count(recorder, source, text, parsed, c)
        })
    }

    /// Ends a read batch: publishes the last line's own timestamp.
    pub fn end_batch(&mut self, now: SystemTime) {
        if let Some(time) = self.reader.take_last_time(now) {
            self.health.last_line_at(time);
        }
    }
}

fn count(
    recorder: &mut Recorder,
    source: &str,
    text: &str,
    parsed: &Line<'_>,
    classification: Option<Classification>,
) -> LineResult {
    let result = recorder.record(parsed, classification);
    if result == LineResult::Unrecognized && !text.is_empty() {
        tracing::debug!(source = %source, line = %text, "unrecognized line");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::MetricsOptions;
    use std::time::{Duration, UNIX_EPOCH};

    fn sample(text: &str, prefix: &str) -> Option<String> {
        text.lines().find(|l| l.starts_with(prefix)).map(str::to_owned)
    }

    #[test]
    fn the_last_lines_own_timestamp_is_published_per_batch() {
        let metrics = Metrics::new(MetricsOptions::default());
        let mut pipeline = Pipeline::new("t", &metrics, Arc::new(Classifier::with_default_rules()));
        pipeline
            .process(FramedLine { bytes: b"2026-11-28T17:35:01Z mx1 postfix/qmgr[1]: ABC: removed", truncated: false });
        pipeline.process(FramedLine {
            bytes: b"2026-11-28T17:35:09.5+00:00 mx1 postfix/qmgr[1]: ABD: removed",
            truncated: false,
        });
        pipeline.process(FramedLine { bytes: b"no envelope", truncated: true });
        let text = metrics.encode_text();
        assert_eq!(
            sample(&text, "mta_log_last_line_timestamp_seconds{"),
            Some("mta_log_last_line_timestamp_seconds{source=\"t\"} 0.0".into())
        );
        pipeline.end_batch(UNIX_EPOCH + Duration::from_secs(1_795_780_800));
        let text = metrics.encode_text();
        assert_eq!(
            sample(&text, "mta_log_last_line_timestamp_seconds{"),
            Some("mta_log_last_line_timestamp_seconds{source=\"t\"} 1795887309.0".into())
        );
        assert_eq!(
            sample(&text, "mta_log_lines_truncated_total{"),
            Some("mta_log_lines_truncated_total{source=\"t\"} 1".into())
        );
    }
}
