//! Sources: where log lines come from, and the threads that read them.
//!
//! Each source runs on its own OS thread that owns its reader, its
//! [`Pipeline`] and its counter handles, so ingestion never contends with
//! another source or with a scrape.
//!
//! * `file` — a path, a glob or a FIFO, followed across rotation by
//!   [`file::FileTailer`]. The thread sleeps on a wake channel fed by file
//!   events ([`watch`]) and by the poll interval as a safety net.
//! * `stdin` and `command` — a byte stream (`--log.path -`; a program such as
//!   `journalctl -o json --follow`, restarted with backoff when it exits),
//!   see [`stream`].
//! * `syslog` — a UDP and TCP listener, see [`syslog`].
//!
//! [`Sources`] starts them, stops them at shutdown (saving the positions
//! file last), and [`Sources::reconcile`] applies a new list of sources
//! (start new, stop removed, keep unchanged ones running and counting).

pub mod file;
pub mod positions;
pub mod stream;
pub mod syslog;
pub mod watch;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::decode::Format;
use crate::metrics::{Metrics, SourceHandles};
use crate::parse::{MtaSelection, OtherParsers};
use crate::pipeline::{LineOptions, Pipeline, SharedClassifier};
use crate::shutdown::Shutdown;
use file::{FileTailer, StartAt, TailOptions, Target};
use positions::Positions;
use syslog::{SyslogListener, SyslogOptions};
use watch::{DirWatcher, WatchMode};

/// One configured source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceSpec {
    /// The `source` label value.
    pub name: String,
    pub kind: SourceKind,
    /// The line format (`format:` in the config).
    pub format: Format,
    /// The MTA that wrote the lines (`mta:` in the config).
    pub mta: MtaSelection,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// A path, a glob, or a named pipe.
    File {
        path: PathBuf,
        start: StartAt,
    },
    /// The exporter's standard input (`--log.path -`).
    Stdin,
    /// A program whose standard output is the log; restarted when it exits.
    Command {
        argv: Vec<String>,
    },
    Syslog(SyslogOptions),
}

impl SourceSpec {
    /// Where the source reads from, for people (landing page, logs).
    pub fn location(&self) -> String {
        match &self.kind {
            SourceKind::File { path, .. } => path.display().to_string(),
            SourceKind::Stdin => "-".into(),
            SourceKind::Command { argv } => argv.join(" "),
            SourceKind::Syslog(options) => format!("syslog {}", options.listen),
        }
    }

    pub fn kind_label(&self) -> &'static str {
        match &self.kind {
            SourceKind::File { .. } => "file",
            SourceKind::Stdin => "stdin",
            SourceKind::Command { .. } => "command",
            SourceKind::Syslog(_) => "syslog",
        }
    }
}

/// Settings shared by all sources.
#[derive(Clone, Debug)]
pub struct FollowOptions {
    /// Safety-net poll when no file event arrives; also how often globs are
    /// expanded again.
    pub poll_interval: Duration,
    pub max_line_bytes: usize,
    /// How long a rotated file is still read after it stopped growing.
    pub rotate_wait: Duration,
    pub watch: WatchMode,
    pub positions_file: Option<PathBuf>,
    pub positions_interval: Duration,
}

impl Default for FollowOptions {
    fn default() -> Self {
        FollowOptions {
            poll_interval: Duration::from_secs(1),
            max_line_bytes: crate::framing::DEFAULT_MAX_LINE,
            rotate_wait: Duration::from_secs(5),
            watch: WatchMode::Auto,
            positions_file: None,
            positions_interval: Duration::from_secs(10),
        }
    }
}

/// A source's state as `/-/ready` and the landing page report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum SourceState {
    Starting = 0,
    /// Reading: a file is open, a stream or a listener is running.
    Open = 1,
    /// The file does not exist yet; it will be read when it appears.
    Waiting = 2,
    /// Reading failed (permissions, I/O error, a command that exits); retried.
    Failing = 3,
    /// A stream that ended (stdin reached its end).
    Ended = 4,
}

impl SourceState {
    pub fn label(self) -> &'static str {
        match self {
            SourceState::Starting => "starting",
            SourceState::Open => "open",
            SourceState::Waiting => "waiting",
            SourceState::Failing => "failing",
            SourceState::Ended => "ended",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => SourceState::Open,
            2 => SourceState::Waiting,
            3 => SourceState::Failing,
            4 => SourceState::Ended,
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
    fn new(spec: SourceSpec) -> Self {
        SourceStatus { spec, state: AtomicU8::new(SourceState::Starting as u8) }
    }

    pub fn state(&self) -> SourceState {
        SourceState::from_u8(self.state.load(Ordering::Acquire))
    }

    fn set(&self, state: SourceState) {
        let old = self.state.swap(state as u8, Ordering::AcqRel);
        if old != state as u8 {
            let location = self.spec.location();
            match state {
                SourceState::Waiting => {
                    tracing::warn!(source = %self.spec.name, %location, "log file does not exist yet; waiting for it")
                }
                SourceState::Open => tracing::info!(source = %self.spec.name, %location, "reading source"),
                SourceState::Ended => tracing::info!(source = %self.spec.name, %location, "source ended"),
                SourceState::Failing | SourceState::Starting => {}
            }
        }
    }
}

/// The live list of source statuses, for HTTP (`/-/ready`, the landing
/// page). Cheap to clone; it follows [`Sources::reconcile`].
#[derive(Clone, Debug, Default)]
pub struct StatusBoard(Arc<RwLock<Vec<Arc<SourceStatus>>>>);

impl StatusBoard {
    pub fn snapshot(&self) -> Vec<Arc<SourceStatus>> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// See [`Sources::ready`].
    pub fn ready(&self) -> bool {
        Sources::ready(&self.snapshot())
    }

    fn set(&self, statuses: Vec<Arc<SourceStatus>>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = statuses;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}")]
    Positions(#[from] positions::PositionsError),
    #[error("source {name}: {message}")]
    Start { name: String, message: String },
}

/// How one running source is told to stop.
#[derive(Clone, Debug)]
struct Stop {
    flag: Arc<AtomicBool>,
    token: CancellationToken,
    wake: SyncSender<()>,
}

impl Stop {
    fn trigger(&self) {
        self.flag.store(true, Ordering::Release);
        self.token.cancel();
        let _ = self.wake.try_send(());
    }

    fn is_set(&self, shutdown: &Shutdown) -> bool {
        self.flag.load(Ordering::Acquire) || shutdown.is_triggered()
    }
}

/// What a source thread needs.
struct Context {
    status: Arc<SourceStatus>,
    pipeline: Pipeline,
    health: SourceHandles,
    stop: Stop,
    shutdown: Shutdown,
}

struct Running {
    status: Arc<SourceStatus>,
    stop: Stop,
    thread: JoinHandle<()>,
}

/// Everything a source thread is started with, shared by all of them.
#[derive(Clone)]
struct Shared {
    options: FollowOptions,
    metrics: Arc<Metrics>,
    classifier: SharedClassifier,
    /// Parsers for lines no built-in parser claims (`parsers:` in the config).
    others: Arc<OtherParsers>,
    shutdown: Shutdown,
    positions: Option<Arc<Positions>>,
}

/// The running sources.
pub struct Sources {
    shared: Shared,
    running: Vec<Running>,
    board: StatusBoard,
    saver: Option<(SyncSender<()>, JoinHandle<()>)>,
}

/// What [`Sources::reconcile`] did, by source name.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    pub started: Vec<String>,
    pub stopped: Vec<String>,
    pub kept: Vec<String>,
}

impl Sources {
    /// Ready once every source is reading, waiting for its file by design,
    /// or has ended (stdin); a source that cannot be read keeps the exporter
    /// not ready.
    pub fn ready(statuses: &[Arc<SourceStatus>]) -> bool {
        statuses.iter().all(|s| matches!(s.state(), SourceState::Open | SourceState::Waiting | SourceState::Ended))
    }

    /// Loads the positions file (if any) and starts one thread per source.
    /// Listener addresses are bound here, so a busy port fails the start.
    pub fn start(
        specs: &[SourceSpec],
        options: FollowOptions,
        metrics: &Arc<Metrics>,
        classifier: impl Into<SharedClassifier>,
        others: &Arc<OtherParsers>,
        shutdown: &Shutdown,
    ) -> Result<Sources, SourceError> {
        let positions = match &options.positions_file {
            Some(path) => {
                let positions = Positions::load(path)?;
                let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
                positions.retain(&names);
                Some(Arc::new(positions))
            }
            None => None,
        };
        let shared = Shared {
            options,
            metrics: Arc::clone(metrics),
            classifier: classifier.into(),
            others: Arc::clone(others),
            shutdown: shutdown.clone(),
            positions,
        };
        let saver =
            shared.positions.as_ref().map(|p| spawn_saver(Arc::clone(p), shared.options.positions_interval, shutdown));
        let mut sources = Sources { shared, running: Vec::new(), board: StatusBoard::default(), saver };
        for spec in specs {
            match sources.start_one(spec) {
                Ok(running) => sources.running.push(running),
                Err(err) => {
                    for running in sources.running.drain(..) {
                        running.stop.trigger();
                        let _ = running.thread.join();
                    }
                    return Err(err);
                }
            }
        }
        sources.publish();
        Ok(sources)
    }

    /// The statuses now (see [`Sources::board`] for a live view).
    pub fn statuses(&self) -> Vec<Arc<SourceStatus>> {
        self.running.iter().map(|r| Arc::clone(&r.status)).collect()
    }

    /// A live view of the statuses that follows reconciles.
    pub fn board(&self) -> StatusBoard {
        self.board.clone()
    }

    /// Applies a new list of sources: starts the new ones, stops the ones
    /// that are gone (their counters stay; their gauges are removed), keeps
    /// the unchanged ones running untouched. A source whose settings changed
    /// is restarted (its counters continue). On an error (a port that cannot
    /// be bound) the sources started so far keep running and the error says
    /// which source failed.
    pub fn reconcile(&mut self, specs: &[SourceSpec]) -> Result<Reconciled, SourceError> {
        let mut report = Reconciled::default();
        let mut kept = Vec::new();
        for running in std::mem::take(&mut self.running) {
            if specs.contains(&running.status.spec) {
                report.kept.push(running.status.spec.name.clone());
                kept.push(running);
            } else {
                let name = running.status.spec.name.clone();
                running.stop.trigger();
                let _ = running.thread.join();
                if !specs.iter().any(|s| s.name == name) {
                    self.shared.metrics.forget_source(&name);
                }
                report.stopped.push(name);
            }
        }
        self.running = kept;
        if let Some(positions) = &self.shared.positions {
            let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
            positions.retain(&names);
        }
        let mut result = Ok(());
        for spec in specs {
            if self.running.iter().any(|r| &r.status.spec == spec) {
                continue;
            }
            match self.start_one(spec) {
                Ok(running) => {
                    report.started.push(spec.name.clone());
                    self.running.push(running);
                }
                Err(err) => {
                    result = Err(err);
                    break;
                }
            }
        }
        self.publish();
        result.map(|()| report)
    }

    /// Settings for sources started from now on (by [`Sources::reconcile`]):
    /// running sources keep the ones they started with. The positions file
    /// cannot change while running.
    pub fn set_options(&mut self, mut options: FollowOptions, others: Arc<OtherParsers>) {
        options.positions_file = self.shared.options.positions_file.clone();
        self.shared.options = options;
        self.shared.others = others;
    }

    /// After the shutdown was triggered: waits for every source thread, then
    /// saves the positions one last time.
    pub fn join(mut self) {
        for running in self.running.drain(..) {
            running.stop.trigger();
            let _ = running.thread.join();
        }
        if let Some((wake, thread)) = self.saver.take() {
            let _ = wake.try_send(());
            let _ = thread.join();
        }
        if let Some(positions) = &self.shared.positions {
            if let Err(err) = positions.save() {
                tracing::error!(path = %positions.path().display(), error = %err, "cannot save positions");
            }
        }
    }

    fn publish(&self) {
        self.board.set(self.statuses());
    }

    fn start_one(&self, spec: &SourceSpec) -> Result<Running, SourceError> {
        let start_error = |message: String| SourceError::Start { name: spec.name.clone(), message };
        let status = Arc::new(SourceStatus::new(spec.clone()));
        let (wake_tx, wake_rx) = mpsc::sync_channel(1);
        self.shared.shutdown.register_waker(wake_tx.clone());
        let stop = Stop { flag: Arc::new(AtomicBool::new(false)), token: CancellationToken::new(), wake: wake_tx };
        let ctx = Context {
            status: Arc::clone(&status),
            pipeline: Pipeline::with_options(
                &spec.name,
                &self.shared.metrics,
                self.shared.classifier.clone(),
                LineOptions {
                    format: spec.format,
                    mta: spec.mta,
                    others: Arc::clone(&self.shared.others),
                    max_line_bytes: self.shared.options.max_line_bytes,
                },
            ),
            health: self.shared.metrics.source_handles(&spec.name),
            stop: stop.clone(),
            shutdown: self.shared.shutdown.clone(),
        };
        let options = self.shared.options.clone();
        let thread_name = format!("source {}", spec.name);
        let builder = std::thread::Builder::new().name(thread_name);
        let spawned = match &spec.kind {
            SourceKind::File { path, start } => {
                let target = Target::new(path).map_err(start_error)?;
                let mut tail = TailOptions::new(*start, options.max_line_bytes);
                tail.rotate_wait = options.rotate_wait;
                tail.rescan_interval = options.poll_interval;
                let mut tailer = FileTailer::new(target, tail);
                let positions = self.shared.positions.clone();
                if let Some(p) = &positions {
                    if let Some(checkpoints) = p.for_source(&spec.name) {
                        tailer = tailer.with_checkpoints(checkpoints, true);
                    }
                }
                builder.spawn(move || follow_files(tailer, ctx, wake_rx, &options, positions.as_deref()))
            }
            SourceKind::Stdin => builder.spawn(move || stream::read_stdin(ctx, options.max_line_bytes)),
            SourceKind::Command { argv } => {
                let argv = argv.clone();
                builder.spawn(move || stream::run_command(ctx, &argv, options.max_line_bytes))
            }
            SourceKind::Syslog(syslog) => {
                let listener = SyslogListener::bind(syslog).map_err(|e| start_error(e.to_string()))?;
                let handles = self.shared.metrics.syslog_handles(&spec.name);
                builder.spawn(move || listener.run(ctx, handles))
            }
        };
        let thread = spawned.map_err(|e| start_error(format!("cannot start a thread: {e}")))?;
        Ok(Running { status, stop, thread })
    }
}

fn spawn_saver(positions: Arc<Positions>, interval: Duration, shutdown: &Shutdown) -> (SyncSender<()>, JoinHandle<()>) {
    let (tx, rx) = mpsc::sync_channel::<()>(1);
    shutdown.register_waker(tx.clone());
    let shutdown = shutdown.clone();
    let thread = std::thread::spawn(move || loop {
        match rx.recv_timeout(interval) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                if shutdown.is_triggered() {
                    // The final save happens after the sources have stopped.
                    return;
                }
            }
        }
        if let Err(err) = positions.save() {
            tracing::error!(path = %positions.path().display(), error = %err, "cannot save positions");
        }
    });
    (tx, thread)
}

/// The thread body of a file source.
fn follow_files(
    mut tailer: FileTailer,
    mut ctx: Context,
    wake_rx: Receiver<()>,
    options: &FollowOptions,
    positions: Option<&Positions>,
) {
    let name = ctx.status.spec.name.clone();
    let mut watcher = DirWatcher::new(options.watch, ctx.stop.wake.clone(), options.poll_interval);
    let mut watched_generation = None;
    let mut files_counted: i64 = 0;
    let mut last_error: Option<String> = None;
    let mut last_publish = Instant::now();
    loop {
        let pipeline = &mut ctx.pipeline;
        let report = tailer.poll(Instant::now(), &mut |line| {
            pipeline.process(line);
        });
        if report.bytes > 0 {
            ctx.pipeline.add_bytes(report.bytes);
            let now = SystemTime::now();
            ctx.health.read_at(now);
            ctx.pipeline.end_batch(now);
        }
        for rotation in &report.rotations {
            ctx.health.rotation(rotation.kind);
            tracing::info!(source = %name, path = %rotation.path.display(), kind = rotation.kind.label(),
                recovered_bytes = rotation.recovered, "log file rotated");
        }
        for lost in &report.lost {
            tracing::warn!(source = %name, path = %lost.path.display(), offset = lost.offset,
                "a file rotated while the exporter was stopped is gone; the rest of it cannot be read");
        }
        for (path, err) in &report.errors {
            ctx.health.read_error();
            let message = format!("{}: {err}", path.display());
            if last_error.as_deref() != Some(message.as_str()) {
                tracing::error!(source = %name, path = %path.display(), error = %err, "cannot read log file; retrying");
            }
            last_error = Some(message);
        }
        if report.errors.is_empty() {
            last_error = None;
        }
        ctx.health.set_lag(report.lag_bytes);
        let files = report.open_files as i64;
        ctx.health.files_opened(files - files_counted);
        files_counted = files;
        ctx.status.set(if !report.errors.is_empty() && report.waiting {
            SourceState::Failing
        } else if report.waiting {
            SourceState::Waiting
        } else {
            SourceState::Open
        });
        if watched_generation != Some(tailer.generation()) || watcher.has_missing() {
            watcher.update(&tailer.watch_dirs());
            watched_generation = Some(tailer.generation());
        }
        let stopping = ctx.stop.is_set(&ctx.shutdown);
        if let Some(positions) = positions {
            if stopping || last_publish.elapsed() >= Duration::from_secs(1) {
                positions.update(&name, tailer.checkpoints());
                last_publish = Instant::now();
            }
        }
        if stopping {
            ctx.health.files_opened(-files_counted);
            return;
        }
        if report.more {
            continue;
        }
        match wake_rx.recv_timeout(options.poll_interval) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}
