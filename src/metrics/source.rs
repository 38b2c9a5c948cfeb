//! The sources' own health metrics: rotations, read errors, lag, the time of
//! the last read and of the last line's own timestamp, truncated lines, and
//! the syslog listener's drops. An alert can tell a dead tailer (no read for
//! long, lag growing) from a quiet server (reads, but old line timestamps).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::SourceLabels;
use crate::source::file::RotationKind;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RotationLabels {
    pub source: Arc<str>,
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    pub source: Arc<str>,
    pub reason: &'static str,
}

/// Why the syslog listener did not turn a message into a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// The queue to the parser was full (the exporter is overloaded).
    Overload,
    /// The client closed the connection in the middle of an octet-counted frame.
    Incomplete,
    /// A connection beyond `max_connections` was refused.
    Connections,
}

impl DropReason {
    pub const ALL: [DropReason; 3] = [DropReason::Overload, DropReason::Incomplete, DropReason::Connections];

    pub fn label(self) -> &'static str {
        match self {
            DropReason::Overload => "overload",
            DropReason::Incomplete => "incomplete",
            DropReason::Connections => "connection_limit",
        }
    }
}

type FloatGauge = Gauge<f64, AtomicU64>;

#[derive(Debug, Default)]
pub(super) struct SourceFamilies {
    rotations: Family<RotationLabels, Counter>,
    read_errors: Family<SourceLabels, Counter>,
    last_read: Family<SourceLabels, FloatGauge>,
    lag: Family<SourceLabels, Gauge>,
    files_watched: Gauge,
    last_line: Family<SourceLabels, FloatGauge>,
    truncated: Family<SourceLabels, Counter>,
    dropped: Family<DropLabels, Counter>,
    connections: Family<SourceLabels, Gauge>,
}

impl SourceFamilies {
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "mta_log_rotations",
            "Log file rotations seen, by source and kind (rename, delete, symlink, copytruncate, truncate)",
            self.rotations.clone(),
        );
        registry.register(
            "mta_log_read_errors",
            "Errors reading a source (retried at the next poll)",
            self.read_errors.clone(),
        );
        registry.register(
            "mta_log_last_read_timestamp_seconds",
            "When a source last gave new bytes (Unix time)",
            self.last_read.clone(),
        );
        registry.register("mta_log_lag_bytes", "Bytes in a source's open files not read yet", self.lag.clone());
        registry.register(
            "mta_log_files_watched",
            "Files held open by all file sources (followed, and rotated ones still being read)",
            self.files_watched.clone(),
        );
        registry.register(
            "mta_log_last_line_timestamp_seconds",
            "The log's own timestamp of the last line read from a source (Unix time)",
            self.last_line.clone(),
        );
        registry.register(
            "mta_log_lines_truncated",
            "Lines longer than limits.max_line_bytes, cut to that length (and still parsed)",
            self.truncated.clone(),
        );
        registry.register(
            "mta_syslog_messages_dropped",
            "Syslog messages not read, by reason (overload, incomplete, connection_limit)",
            self.dropped.clone(),
        );
        registry.register("mta_syslog_connections", "Open syslog TCP connections", self.connections.clone());
    }

    pub(super) fn handles(&self, source: &str) -> SourceHandles {
        let source: Arc<str> = Arc::from(source);
        let labels = SourceLabels { source: source.clone() };
        SourceHandles {
            rotations: RotationKind::ALL.map(|kind| {
                self.rotations.get_or_create_owned(&RotationLabels { source: source.clone(), kind: kind.label() })
            }),
            read_errors: self.read_errors.get_or_create_owned(&labels),
            last_read: self.last_read.get_or_create_owned(&labels),
            lag: self.lag.get_or_create_owned(&labels),
            files_watched: self.files_watched.clone(),
            last_line: self.last_line.get_or_create_owned(&labels),
            truncated: self.truncated.get_or_create_owned(&labels),
            source,
        }
    }

    pub(super) fn syslog_handles(&self, source: &str) -> SyslogHandles {
        let source: Arc<str> = Arc::from(source);
        SyslogHandles {
            dropped: DropReason::ALL.map(|reason| {
                self.dropped.get_or_create_owned(&DropLabels { source: source.clone(), reason: reason.label() })
            }),
            connections: self.connections.get_or_create_owned(&SourceLabels { source }),
        }
    }

    /// Gauges describe a running source; once it is removed they would
    /// only mislead. Counters stay, so that rates never see a reset.
    pub(super) fn forget(&self, source: &str) {
        let labels = SourceLabels { source: Arc::from(source) };
        self.last_read.remove(&labels);
        self.lag.remove(&labels);
        self.last_line.remove(&labels);
        self.connections.remove(&labels);
    }
}

/// One source's resolved handles, owned by its thread (and its pipeline).
#[derive(Clone, Debug)]
pub struct SourceHandles {
    source: Arc<str>,
    rotations: [Counter; 5],
    read_errors: Counter,
    last_read: FloatGauge,
    lag: Gauge,
    files_watched: Gauge,
    last_line: FloatGauge,
    truncated: Counter,
}

impl SourceHandles {
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn rotation(&self, kind: RotationKind) {
        self.rotations[kind.index()].inc();
    }

    pub fn read_error(&self) {
        self.read_errors.inc();
    }

    pub fn read_at(&self, when: SystemTime) {
        self.last_read.set(unix_seconds(when));
    }

    pub fn set_lag(&self, bytes: u64) {
        self.lag.set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// Adds `delta` files to the exporter-wide count of open files.
    pub fn files_opened(&self, delta: i64) {
        self.files_watched.inc_by(delta);
    }

    pub fn last_line_at(&self, when: SystemTime) {
        self.last_line.set(unix_seconds(when));
    }

    pub fn truncated_line(&self) {
        self.truncated.inc();
    }
}

/// The syslog listener's extra handles.
#[derive(Clone, Debug)]
pub struct SyslogHandles {
    dropped: [Counter; 3],
    connections: Gauge,
}

impl SyslogHandles {
    pub fn dropped(&self, reason: DropReason) {
        self.dropped[reason as usize].inc();
    }

    pub fn connection_opened(&self) {
        self.connections.inc();
    }

    pub fn connection_closed(&self) {
        self.connections.dec();
    }
}

fn unix_seconds(when: SystemTime) -> f64 {
    when.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as f64 / 1000.0).unwrap_or(0.0)
}
