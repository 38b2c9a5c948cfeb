//! Sources: where log lines come from, and the threads that read them.
//!
//! Each source runs on its own OS thread that owns its reader, its
//! [`Pipeline`] and its counter handles, so ingestion never contends with
//! another source or with a scrape. A file source sleeps on a wake channel
//! fed by `notify` (inotify on the parent directory, so renames and symlink
//! swaps are seen) and by a slow timer as a safety net; it never busy-polls.

pub mod file;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

use crate::metrics::Metrics;
use crate::pipeline::{Pipeline, SharedClassifier};
use crate::shutdown::Shutdown;
use file::{FileTailer, StartAt};

/// One configured source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceSpec {
    /// The `source` label value.
    pub name: String,
    pub path: PathBuf,
    pub start: StartAt,
}

/// Settings shared by all file sources.
#[derive(Clone, Copy, Debug)]
pub struct FollowOptions {
    /// Safety-net poll when no file event arrives.
    pub poll_interval: Duration,
    pub max_line_bytes: usize,
}

/// A source's state as `/-/ready` and the landing page report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum SourceState {
    Starting = 0,
    /// The file is open and being followed.
    Open = 1,
    /// The file does not exist yet; it will be read when it appears.
    Waiting = 2,
    /// Reading failed (permissions, I/O error); retried at every poll.
    Failing = 3,
}

impl SourceState {
    pub fn label(self) -> &'static str {
        match self {
            SourceState::Starting => "starting",
            SourceState::Open => "open",
            SourceState::Waiting => "waiting",
            SourceState::Failing => "failing",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => SourceState::Open,
            2 => SourceState::Waiting,
            3 => SourceState::Failing,
            _ => SourceState::Starting,
        }
    }
}

/// The shared, lock-free view of one source's state.
#[derive(Debug)]
pub struct SourceStatus {
    pub spec: SourceSpec,
    state: AtomicU8,
}

impl SourceStatus {
    pub fn state(&self) -> SourceState {
        SourceState::from_u8(self.state.load(Ordering::Acquire))
    }

    fn set(&self, state: SourceState) {
        self.state.store(state as u8, Ordering::Release);
    }
}

/// The running sources: their status for HTTP, their threads for shutdown.
#[derive(Debug)]
pub struct Sources {
    pub statuses: Vec<Arc<SourceStatus>>,
    threads: Vec<JoinHandle<()>>,
}

impl Sources {
    /// Ready once every source has been opened or is waiting for its file by
    /// design; a source that cannot be read keeps the exporter not ready.
    pub fn ready(statuses: &[Arc<SourceStatus>]) -> bool {
        statuses.iter().all(|s| matches!(s.state(), SourceState::Open | SourceState::Waiting))
    }

    /// Waits for every source thread to finish (after a shutdown).
    pub fn join(self) {
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// Starts one thread per source.
pub fn spawn(
    specs: &[SourceSpec],
    options: FollowOptions,
    metrics: &Arc<Metrics>,
    classifier: &SharedClassifier,
    shutdown: &Shutdown,
) -> std::io::Result<Sources> {
    let mut statuses = Vec::new();
    let mut threads = Vec::new();
    for spec in specs {
        let status = Arc::new(SourceStatus { spec: spec.clone(), state: AtomicU8::new(SourceState::Starting as u8) });
        let (wake_tx, wake_rx) = mpsc::sync_channel(1);
        shutdown.register_waker(wake_tx.clone());
        let pipeline = Pipeline::new(&spec.name, metrics, classifier.clone());
        let tailer = FileTailer::new(&spec.path, spec.start, options.max_line_bytes);
        let thread_status = Arc::clone(&status);
        let thread_shutdown = shutdown.clone();
        let thread = std::thread::Builder::new().name(format!("source {}", spec.name)).spawn(move || {
            follow(tailer, pipeline, &thread_status, wake_tx, wake_rx, options.poll_interval, &thread_shutdown)
        })?;
        statuses.push(status);
        threads.push(thread);
    }
    Ok(Sources { statuses, threads })
}

/// The thread body of a file source.
fn follow(
    mut tailer: FileTailer,
    mut pipeline: Pipeline,
    status: &SourceStatus,
    wake_tx: SyncSender<()>,
    wake_rx: Receiver<()>,
    poll_interval: Duration,
    shutdown: &Shutdown,
) {
    let _watcher = watch_parent(&tailer, wake_tx);
    let mut last_error: Option<String> = None;
    loop {
        let mut on_line = |line: crate::framing::FramedLine<'_>| {
            pipeline.process(line);
        };
        match tailer.poll(&mut on_line) {
            Ok(report) => {
                pipeline.add_bytes(report.bytes);
                if report.rotations > 0 || report.truncations > 0 {
                    tracing::info!(source = %status.spec.name, path = %tailer.path().display(),
                        rotations = report.rotations, truncations = report.truncations, "log file rotated");
                }
                let state = if report.waiting { SourceState::Waiting } else { SourceState::Open };
                if state != status.state() {
                    if state == SourceState::Waiting {
                        tracing::warn!(source = %status.spec.name, path = %tailer.path().display(), "log file does not exist yet; waiting for it");
                    } else {
                        tracing::info!(source = %status.spec.name, path = %tailer.path().display(), "following log file");
                    }
                }
                status.set(state);
                last_error = None;
            }
            Err(err) => {
                let message = err.to_string();
                if last_error.as_deref() != Some(message.as_str()) {
                    tracing::error!(source = %status.spec.name, path = %tailer.path().display(), error = %message, "cannot read log file; retrying");
                }
                last_error = Some(message);
                status.set(SourceState::Failing);
            }
        }
        if shutdown.is_triggered() {
            return;
        }
        match wake_rx.recv_timeout(poll_interval) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if shutdown.is_triggered() {
            return;
        }
    }
}

/// Watches the file's directory: a watch on the file itself goes silent
/// after a rename or a symlink swap. Any event only means "poll now".
fn watch_parent(tailer: &FileTailer, wake: SyncSender<()>) -> Option<notify::RecommendedWatcher> {
    let dir =
        tailer.path().parent().map(PathBuf::from).filter(|p| !p.as_os_str().is_empty()).unwrap_or_else(|| ".".into());
    let handler = move |_event: notify::Result<notify::Event>| {
        let _ = wake.try_send(());
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(err) => {
            tracing::warn!(error = %err, "file events unavailable; polling only");
            return None;
        }
    };
    if let Err(err) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
        tracing::warn!(dir = %dir.display(), error = %err, "cannot watch directory; polling only");
        return None;
    }
    Some(watcher)
}
