//! The per-source line pipeline: framed bytes → envelope and MTA parser →
//! classifier → counters. One [`Pipeline`] per source, owned by the thread
//! that reads the source, so nothing here locks on the hot path.
//!
//! Sources hand lines to [`Pipeline::process`] (files, stdin, commands) or
//! an already split envelope to [`Pipeline::process_envelope`] (the syslog
//! listener), and call [`Pipeline::end_batch`] after each read: the log's own
//! timestamp of the batch's last line is turned into a number only there,
//! not once per line.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use crate::classify::Classifier;
use crate::envelope::{self, Envelope, Timestamp};
use crate::framing::FramedLine;
use crate::metrics::{LineResult, Metrics, Recorder, SourceHandles};
use crate::parse::{self, Line};

/// Longest timestamp text kept (RFC 3339 with nanoseconds and a zone is 35).
const STAMP_MAX: usize = 40;

/// The last line's own timestamp, copied out of the line (no allocation).
#[derive(Clone, Copy, Debug)]
enum LastStamp {
    None,
    Text { rfc3339: bool, len: usize, bytes: [u8; STAMP_MAX] },
    Time(SystemTime),
}

pub struct Pipeline {
    source: Arc<str>,
    classifier: Arc<Classifier>,
    recorder: Recorder,
    health: SourceHandles,
    last_stamp: LastStamp,
}

impl Pipeline {
    pub fn new(source: &str, metrics: &Arc<Metrics>, classifier: Arc<Classifier>) -> Self {
        Pipeline {
            source: Arc::from(source),
            classifier,
            recorder: metrics.recorder(source),
            health: metrics.source_handles(source),
            last_stamp: LastStamp::None,
        }
    }

    /// Counts bytes read from the source (framing overhead included).
    pub fn add_bytes(&self, n: u64) {
        self.recorder.add_bytes(n);
    }

    /// Parses, classifies and counts one line.
    pub fn process(&mut self, line: FramedLine<'_>) -> LineResult {
        if line.truncated {
            self.health.truncated_line();
        }
        // Mail logs are UTF-8 or close to it; a line that is not is read
        // lossily (one allocation, for that line only) and never dropped.
        let text: Cow<'_, str> = String::from_utf8_lossy(line.bytes);
        match envelope::parse(&text) {
            Some(envelope) => {
                self.remember(envelope.timestamp);
                let parsed = parse::parse_envelope(&envelope);
                self.record(&parsed, &text)
            }
            None => self.record(&Line::Unrecognized, &text),
        }
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
        if let Some(time) = time {
            self.last_stamp = LastStamp::Time(time);
        }
        let parsed = parse::parse_envelope(envelope);
        self.record(&parsed, envelope.message)
    }

    /// Ends a read batch: publishes the last line's own timestamp.
    pub fn end_batch(&mut self, now: SystemTime) {
        let time = match self.last_stamp {
            LastStamp::None => return,
            LastStamp::Time(time) => Some(time),
            LastStamp::Text { rfc3339, len, bytes } => std::str::from_utf8(&bytes[..len]).ok().and_then(|text| {
                let stamp = if rfc3339 { Timestamp::Rfc3339(text) } else { Timestamp::Rfc3164(text) };
                stamp.to_system_time(now)
            }),
        };
        self.last_stamp = LastStamp::None;
        if let Some(time) = time {
            self.health.last_line_at(time);
        }
    }

    fn remember(&mut self, stamp: Timestamp<'_>) {
        let (rfc3339, text) = match stamp {
            Timestamp::Rfc3339(text) => (true, text),
            Timestamp::Rfc3164(text) => (false, text),
        };
        if text.len() <= STAMP_MAX {
            let mut bytes = [0; STAMP_MAX];
            bytes[..text.len()].copy_from_slice(text.as_bytes());
            self.last_stamp = LastStamp::Text { rfc3339, len: text.len(), bytes };
        }
    }

    fn record(&mut self, parsed: &Line<'_>, text: &str) -> LineResult {
        let classification = match parsed {
            Line::Mta(record) => record.reply.map(|reply| self.classifier.classify(&reply)),
            _ => None,
        };
        let result = self.recorder.record(parsed, classification);
        if result == LineResult::Unrecognized {
            tracing::debug!(source = %self.source, line = %text, "unrecognized line");
        }
        result
    }
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
