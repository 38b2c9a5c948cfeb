//! Mail queues, read when Prometheus scrapes: how many messages each queue
//! holds, how many bytes, and how old the oldest one is.
//!
//! One reader per MTA ([`postfix`], [`exim`], [`sendmail`], [`opensmtpd`]),
//! each a plain function from a spool to a [`Snapshot`]; they only read, so
//! a sidecar can mount the spool read-only. Postfix is asked through its
//! `showq` socket (connecting to a socket works on a read-only mount) and
//! its directories are walked when the socket cannot be reached.
//!
//! A scrape never waits longer than `queues.timeout` for a queue: the read
//! runs on a blocking thread, and when it is late the scrape serves the last
//! values read, with `mta_queue_up` 0 until a read finishes in time again; a
//! late read that finishes still updates the values. Reads closer together
//! than `queues.min_interval` (two Prometheus servers) share one result.
//!
//! Why gauges and not histograms: a queue is a snapshot that shrinks as
//! well as grows. A Prometheus histogram is a set of counters that only go
//! up; fed from snapshots its buckets would go down, which `rate()` and
//! `histogram_quantile()` over time read as resets. The three gauges answer
//! what the alerts ask — how many, how heavy, how old is the oldest — each
//! exactly, per queue.

pub mod exim;
pub mod opensmtpd;
pub mod postfix;
pub mod sendmail;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Deserialize;

use crate::model::Mta;

/// One message found in a queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Message {
    pub arrival: Option<SystemTime>,
    pub size: Option<u64>,
}

/// One queue's totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub messages: u64,
    pub bytes: u64,
    /// The arrival of the oldest message (`None` when empty or unknown).
    pub oldest: Option<SystemTime>,
}

/// What one read of an MTA's queues found, per queue. Every queue the MTA
/// has is present, empty ones at zero.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    queues: BTreeMap<&'static str, QueueStats>,
}

impl Snapshot {
    pub fn new(queues: &[&'static str]) -> Self {
        Snapshot { queues: queues.iter().map(|&q| (q, QueueStats::default())).collect() }
    }

    pub fn add(&mut self, queue: &'static str, message: Message) {
        let stats = self.queues.entry(queue).or_default();
        stats.messages += 1;
        stats.bytes += message.size.unwrap_or(0);
        if let Some(arrival) = message.arrival {
            stats.oldest = Some(stats.oldest.map_or(arrival, |o| o.min(arrival)));
        }
    }

    pub fn stats(&self, queue: &str) -> QueueStats {
        self.queues.get(queue).copied().unwrap_or_default()
    }

    pub fn queues(&self) -> impl Iterator<Item = (&'static str, QueueStats)> + '_ {
        self.queues.iter().map(|(&q, &s)| (q, s))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("unexpected answer: {0}")]
    Protocol(String),
}

impl QueueError {
    fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        QueueError::Io { what: what.into(), source }
    }
}

/// The `queues:` section of the config file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QueuesConfig {
    /// Longest a scrape waits for a queue read.
    #[serde(deserialize_with = "crate::config::duration")]
    pub timeout: Duration,
    /// Reads closer together than this share one result.
    #[serde(deserialize_with = "crate::config::duration")]
    pub min_interval: Duration,
    pub spools: Vec<SpoolConfig>,
}

impl Default for QueuesConfig {
    fn default() -> Self {
        QueuesConfig { timeout: Duration::from_secs(5), min_interval: Duration::from_secs(5), spools: Vec::new() }
    }
}

/// One MTA's spool.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SpoolConfig {
    pub mta: QueueMta,
    /// `/var/spool/postfix`, `/var/spool/exim4`, `/var/spool/mqueue`,
    /// `/var/spool/smtpd`.
    pub path: PathBuf,
    /// Postfix only: `auto` (the showq socket, else the directories),
    /// `showq` or `directories`.
    #[serde(default)]
    pub method: PostfixMethod,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum QueueMta {
    Postfix,
    Exim,
    Sendmail,
    Opensmtpd,
}

impl QueueMta {
    pub fn mta(self) -> Mta {
        match self {
            QueueMta::Postfix => Mta::Postfix,
            QueueMta::Exim => Mta::Exim,
            QueueMta::Sendmail => Mta::Sendmail,
            QueueMta::Opensmtpd => Mta::Opensmtpd,
        }
    }

    pub fn parse(text: &str) -> Option<QueueMta> {
        match text {
            "postfix" => Some(QueueMta::Postfix),
            "exim" => Some(QueueMta::Exim),
            "sendmail" => Some(QueueMta::Sendmail),
            "opensmtpd" => Some(QueueMta::Opensmtpd),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PostfixMethod {
    #[default]
    Auto,
    Showq,
    Directories,
}

impl SpoolConfig {
    /// Reads the spool once (blocking).
    pub fn read(&self, timeout: Duration) -> Result<Snapshot, QueueError> {
        match self.mta {
            QueueMta::Postfix => {
                let socket = self.path.join("public").join("showq");
                match self.method {
                    PostfixMethod::Directories => postfix::read_directories(&self.path),
                    PostfixMethod::Showq => read_showq_socket(&socket, timeout),
                    PostfixMethod::Auto => read_showq_socket(&socket, timeout).or_else(|err| {
                        tracing::debug!(socket = %socket.display(), error = %err, "showq not reachable; reading the queue directories");
                        postfix::read_directories(&self.path)
                    }),
                }
            }
            QueueMta::Exim => exim::read_spool(&self.path),
            QueueMta::Sendmail => sendmail::read_queue(&self.path),
            QueueMta::Opensmtpd => opensmtpd::read_queue(&self.path),
        }
    }
}

fn read_showq_socket(socket: &std::path::Path, timeout: Duration) -> Result<Snapshot, QueueError> {
    let stream = std::os::unix::net::UnixStream::connect(socket)
        .map_err(|e| QueueError::io(format!("connecting to {}", socket.display()), e))?;
    // The scrape stops waiting after `timeout`; the read itself may take
    // longer (its result is kept for the next scrape), but not forever.
    let patience = timeout.saturating_mul(12).max(Duration::from_secs(60));
    stream.set_read_timeout(Some(patience)).map_err(|e| QueueError::io("setting a read timeout", e))?;
    postfix::read_showq(stream, SystemTime::now())
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    mta: &'static str,
    queue: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MtaLabels {
    mta: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    mta: &'static str,
    reason: &'static str,
}

/// The queue families. Registered with every exporter; they have series
/// only for configured spools.
#[derive(Debug, Default)]
pub struct QueueFamilies {
    messages: Family<QueueLabels, Gauge>,
    bytes: Family<QueueLabels, Gauge>,
    oldest: Family<QueueLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    up: Family<MtaLabels, Gauge>,
    duration: Family<MtaLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    errors: Family<ErrorLabels, Counter>,
}

impl QueueFamilies {
    pub fn register(&self, registry: &mut Registry) {
        registry.register("mta_queue_messages", "Messages in each mail queue", self.messages.clone());
        registry.register("mta_queue_size_bytes", "Bytes of the messages in each mail queue", self.bytes.clone());
        registry.register(
            "mta_queue_oldest_message_age_seconds",
            "Age of the oldest message in each mail queue (0 when empty)",
            self.oldest.clone(),
        );
        registry.register(
            "mta_queue_up",
            "1 if the last read of the MTA's queue succeeded in time, 0 if it failed or timed out (the queue values are then the last ones read)",
            self.up.clone(),
        );
        registry.register(
            "mta_queue_scrape_duration_seconds",
            "How long the last finished read of the MTA's queue took",
            self.duration.clone(),
        );
        registry.register(
            "mta_queue_scrape_errors",
            "Queue reads that failed (reason=read) or did not finish within queues.timeout (reason=timeout)",
            self.errors.clone(),
        );
    }
}

/// The state of one spool's reads.
#[derive(Debug, Default)]
struct ReadState {
    running: bool,
    /// Bumped when a read finishes.
    generation: u64,
    /// The last read succeeded.
    last_ok: bool,
    /// What the last successful read found; it stands while reads fail.
    snapshot: Option<Snapshot>,
    finished_at: Option<Instant>,
    took: Duration,
}

/// One configured spool and its reads.
#[derive(Debug)]
struct Monitor {
    spool: SpoolConfig,
    state: Mutex<ReadState>,
    finished: tokio::sync::watch::Sender<u64>,
}

/// How a refresh of one spool went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A read finished in time (or a recent one was reused) and succeeded.
    Fresh,
    /// The read failed.
    Failed,
    /// The read did not finish in time: the last values stand.
    TimedOut,
}

/// Every configured spool; the web handler refreshes them before it
/// encodes a scrape.
#[derive(Debug, Default)]
pub struct Queues {
    families: QueueFamilies,
    settings: Mutex<(Duration, Duration)>,
    monitors: Mutex<Vec<Arc<Monitor>>>,
}

impl Queues {
    pub fn new(registry: &mut Registry) -> Self {
        let queues = Queues::default();
        queues.families.register(registry);
        queues
    }

    /// Sets the spools to read (at start, and on a reload). Series of a
    /// spool no longer configured are removed; its error counter stays.
    pub fn configure(&self, config: &QueuesConfig) {
        *self.settings.lock().unwrap_or_else(|e| e.into_inner()) = (config.timeout, config.min_interval);
        let mut monitors = self.monitors.lock().unwrap_or_else(|e| e.into_inner());
        if monitors.iter().map(|m| &m.spool).eq(config.spools.iter()) {
            return;
        }
        for old in monitors.iter() {
            if !config.spools.contains(&old.spool) {
                self.forget(old.spool.mta);
            }
        }
        *monitors = config
            .spools
            .iter()
            .map(|spool| {
                let (finished, _) = tokio::sync::watch::channel(0);
                let mta = spool.mta.mta().label();
                for reason in ["read", "timeout"] {
                    self.families.errors.get_or_create_owned(&ErrorLabels { mta, reason });
                }
                Arc::new(Monitor { spool: spool.clone(), state: Mutex::new(ReadState::default()), finished })
            })
            .collect();
    }

    fn forget(&self, mta: QueueMta) {
        let label = mta.mta().label();
        self.families.up.remove(&MtaLabels { mta: label });
        self.families.duration.remove(&MtaLabels { mta: label });
        let queues: &[&'static str] = match mta {
            QueueMta::Postfix => &postfix::QUEUES,
            QueueMta::Exim => &exim::QUEUES,
            QueueMta::Sendmail => &sendmail::QUEUES,
            QueueMta::Opensmtpd => &opensmtpd::QUEUES,
        };
        for &queue in queues {
            let labels = QueueLabels { mta: label, queue };
            self.families.messages.remove(&labels);
            self.families.bytes.remove(&labels);
            self.families.oldest.remove(&labels);
        }
    }

    /// Reads every spool (all at once, at most `timeout`) and sets the
    /// gauges. Returns each spool's outcome.
    pub async fn refresh(&self) -> Vec<(Mta, Outcome)> {
        let (timeout, min_interval) = *self.settings.lock().unwrap_or_else(|e| e.into_inner());
        let monitors = self.monitors.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let deadline = tokio::time::Instant::now() + timeout;
        let started: Vec<_> = monitors.iter().map(|m| begin(m, timeout, min_interval)).collect();
        let mut outcomes = Vec::with_capacity(monitors.len());
        for (monitor, started) in monitors.iter().zip(started) {
            let outcome = match started {
                Begun::Done(outcome) => outcome,
                Begun::Waiting(mut finished, generation) => {
                    let wait = finished.wait_for(|&g| g > generation);
                    if tokio::time::timeout_at(deadline, wait).await.is_ok() {
                        outcome_of(&monitor.state.lock().unwrap_or_else(|e| e.into_inner()))
                    } else {
                        Outcome::TimedOut
                    }
                }
            };
            self.publish(monitor, outcome, SystemTime::now());
            outcomes.push((monitor.spool.mta.mta(), outcome));
        }
        outcomes
    }

    fn publish(&self, monitor: &Monitor, outcome: Outcome, now: SystemTime) {
        let mta = monitor.spool.mta.mta().label();
        let state = monitor.state.lock().unwrap_or_else(|e| e.into_inner());
        let f = &self.families;
        match outcome {
            Outcome::Fresh => {}
            Outcome::Failed => {
                f.errors.get_or_create_owned(&ErrorLabels { mta, reason: "read" }).inc();
            }
            Outcome::TimedOut => {
                f.errors.get_or_create_owned(&ErrorLabels { mta, reason: "timeout" }).inc();
            }
        }
        f.up.get_or_create_owned(&MtaLabels { mta }).set(i64::from(outcome == Outcome::Fresh));
        f.duration.get_or_create_owned(&MtaLabels { mta }).set(state.took.as_secs_f64());
        let Some(snapshot) = &state.snapshot else { return };
        for (queue, stats) in snapshot.queues() {
            let labels = QueueLabels { mta, queue };
            f.messages.get_or_create_owned(&labels).set(i64::try_from(stats.messages).unwrap_or(i64::MAX));
            f.bytes.get_or_create_owned(&labels).set(i64::try_from(stats.bytes).unwrap_or(i64::MAX));
            let age = stats.oldest.and_then(|o| now.duration_since(o).ok()).unwrap_or_default();
            f.oldest.get_or_create_owned(&labels).set(age.as_secs_f64());
        }
    }
}

enum Begun {
    /// A recent read is reused.
    Done(Outcome),
    /// A read runs: wait for the generation after this one.
    Waiting(tokio::sync::watch::Receiver<u64>, u64),
}

/// Starts a read on a blocking thread unless one runs already or a recent
/// one can be reused.
fn begin(monitor: &Arc<Monitor>, timeout: Duration, min_interval: Duration) -> Begun {
    let finished = monitor.finished.subscribe();
    let mut state = monitor.state.lock().unwrap_or_else(|e| e.into_inner());
    let recent = state.finished_at.is_some_and(|at| at.elapsed() < min_interval);
    if recent && !state.running {
        return Begun::Done(outcome_of(&state));
    }
    if !state.running {
        state.running = true;
        let worker = Arc::clone(monitor);
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let result = worker.spool.read(timeout);
            if let Err(err) = &result {
                tracing::warn!(mta = worker.spool.mta.mta().label(), path = %worker.spool.path.display(), error = %err, "cannot read the mail queue");
            }
            let mut state = worker.state.lock().unwrap_or_else(|e| e.into_inner());
            state.running = false;
            state.generation += 1;
            state.took = started.elapsed();
            state.finished_at = Some(Instant::now());
            state.last_ok = result.is_ok();
            if let Ok(snapshot) = result {
                state.snapshot = Some(snapshot);
            }
            let generation = state.generation;
            drop(state);
            worker.finished.send_replace(generation);
        });
    }
    Begun::Waiting(finished, state.generation)
}

fn outcome_of(state: &ReadState) -> Outcome {
    if state.last_ok {
        Outcome::Fresh
    } else {
        Outcome::Failed
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Write;
    use std::os::unix::net::UnixListener;
    use std::path::Path;
    use std::time::UNIX_EPOCH;

    use super::*;

    fn postfix_record(kind: u8, data: &str) -> Vec<u8> {
        let mut out = vec![kind];
        let mut len = data.len();
        loop {
            let b = (len & 0x7f) as u8;
            len >>= 7;
            out.push(if len > 0 { b | 0x80 } else { b });
            if len == 0 {
                break;
            }
        }
        out.extend_from_slice(data.as_bytes());
        out
    }

    fn postfix_queue_file(path: &Path, size: u64, arrival: u64) {
        let mut bytes =
            postfix_record(b'C', &format!("{size:>15} {:>15} {:>15} {:>15} {size:>15} {:>15}", 145, 1, 0, 0));
        bytes.extend(postfix_record(b'T', &format!("{arrival} 123456")));
        bytes.extend(postfix_record(b'S', "alice@example.test"));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }

    fn at(secs: u64) -> Option<SystemTime> {
        Some(UNIX_EPOCH + Duration::from_secs(secs))
    }

    #[test]
    fn postfix_directories_with_hashed_subdirectories() {
        let spool = tempfile::tempdir().unwrap();
        let s = spool.path();
        postfix_queue_file(&s.join("deferred/8/8F404B69B2"), 473, 1000);
        postfix_queue_file(&s.join("deferred/2/22088B69C1"), 527, 3000);
        postfix_queue_file(&s.join("hold/A5209B69C1"), 9000, 2000);
        postfix_queue_file(&s.join("active/B03D5B69D9"), 10, 4000);
        fs::create_dir_all(s.join("incoming")).unwrap();
        fs::create_dir_all(s.join("maildrop")).unwrap();
        // A maildrop file has no C record: its file size counts.
        let mut maildrop = postfix_record(b'T', "5000 0");
        maildrop.extend(postfix_record(b'F', "x"));
        fs::write(s.join("maildrop/12345.678"), &maildrop).unwrap();
        let spool = SpoolConfig { mta: QueueMta::Postfix, path: s.into(), method: PostfixMethod::Auto };
        // No showq socket: the directories are read.
        let snapshot = spool.read(Duration::from_secs(1)).unwrap();
        assert_eq!(snapshot.stats("deferred"), QueueStats { messages: 2, bytes: 1000, oldest: at(1000) });
        assert_eq!(snapshot.stats("hold"), QueueStats { messages: 1, bytes: 9000, oldest: at(2000) });
        assert_eq!(snapshot.stats("active"), QueueStats { messages: 1, bytes: 10, oldest: at(4000) });
        assert_eq!(snapshot.stats("incoming"), QueueStats::default());
        assert_eq!(
            snapshot.stats("maildrop"),
            QueueStats { messages: 1, bytes: maildrop.len() as u64, oldest: at(5000) }
        );
        assert_eq!(snapshot.queues().count(), 5);
        let showq_only = SpoolConfig { method: PostfixMethod::Showq, ..spool };
        assert!(showq_only.read(Duration::from_secs(1)).is_err());
    }

    #[test]
    fn a_missing_queue_directory_is_an_error_not_an_empty_queue() {
        let spool = tempfile::tempdir().unwrap();
        let spool =
            SpoolConfig { mta: QueueMta::Postfix, path: spool.path().join("nope"), method: PostfixMethod::Directories };
        let err = spool.read(Duration::from_secs(1)).unwrap_err().to_string();
        assert!(err.starts_with("listing ") && err.contains("nope/incoming"), "{err}");
    }

    #[test]
    fn exim_spool_with_frozen_messages() {
        let spool = tempfile::tempdir().unwrap();
        let input = spool.path().join("input");
        fs::create_dir_all(input.join("F")).unwrap();
        let header = |id: &str, time: u64, frozen: bool| {
            format!("{id}-H\nDebian-exim 101 101\n<a@e.test>\n{time} 0\n-ident x\n{}XX\n1\nr@x.test\n\n017T To: rcpt@xy.test\n", if frozen { "-frozen 1\n" } else { "" })
        };
        for (dir, id, time, frozen) in [
            ("", "1xXOLN-0006kV-2F", 100, false),
            ("F", "1xXOLO-0006ke-2F", 50, true),
            ("", "1xXOLP-0006kn-1s", 300, false),
        ] {
            fs::write(input.join(dir).join(format!("{id}-H")), header(id, time, frozen)).unwrap();
            // 19 bytes of `ID-D\n`, then a 30-byte body.
            fs::write(input.join(dir).join(format!("{id}-D")), format!("{id}-D\n{}", "b".repeat(30))).unwrap();
        }
        let spool = SpoolConfig { mta: QueueMta::Exim, path: spool.path().into(), method: PostfixMethod::Auto };
        let snapshot = spool.read(Duration::from_secs(1)).unwrap();
        // exim -bp: headers 17 + body 30 + 1.
        assert_eq!(snapshot.stats("input"), QueueStats { messages: 2, bytes: 96, oldest: at(100) });
        assert_eq!(snapshot.stats("frozen"), QueueStats { messages: 1, bytes: 48, oldest: at(50) });
    }

    #[test]
    fn sendmail_and_opensmtpd_queues() {
        let mqueue = tempfile::tempdir().unwrap();
        fs::write(mqueue.path().join("qf6ASJuEG1013969"), "V8\nT1000\nSa@e\n.\n").unwrap();
        fs::write(mqueue.path().join("df6ASJuEG1013969"), "x".repeat(284)).unwrap();
        fs::write(mqueue.path().join("hf6ASJuFcQ013974"), "V8\nT2000\n.\n").unwrap();
        fs::write(mqueue.path().join("df6ASJuFcQ013974"), "x".repeat(16)).unwrap();
        fs::write(mqueue.path().join("xf6ASJuEG1013969"), "transcript").unwrap();
        let spool = SpoolConfig { mta: QueueMta::Sendmail, path: mqueue.path().into(), method: PostfixMethod::Auto };
        let snapshot = spool.read(Duration::from_secs(1)).unwrap();
        assert_eq!(snapshot.stats("queued"), QueueStats { messages: 1, bytes: 284, oldest: at(1000) });
        assert_eq!(snapshot.stats("quarantined"), QueueStats { messages: 1, bytes: 16, oldest: at(2000) });

        let smtpd = tempfile::tempdir().unwrap();
        let message = smtpd.path().join("queue/93/03e7f193");
        fs::create_dir_all(message.join("envelopes")).unwrap();
        fs::write(message.join("message"), "y".repeat(437)).unwrap();
        fs::write(message.join("envelopes/03e7f1932a2d1ccf"), "version: 3\nctime: 1795893602\n").unwrap();
        fs::write(message.join("envelopes/03e7f1932a2d1cd0"), "version: 3\nctime: 1795893600\n").unwrap();
        let spool = SpoolConfig { mta: QueueMta::Opensmtpd, path: smtpd.path().into(), method: PostfixMethod::Auto };
        let snapshot = spool.read(Duration::from_secs(1)).unwrap();
        assert_eq!(snapshot.stats("queued"), QueueStats { messages: 1, bytes: 437, oldest: at(1_795_893_600) });
    }

    fn showq_answer(records: &[(&str, u64, u64)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (queue, time, size) in records {
            for (k, v) in [
                ("queue_name", queue.to_string()),
                ("queue_id", "8F404B69B2".into()),
                ("time", time.to_string()),
                ("size", size.to_string()),
            ] {
                out.extend_from_slice(k.as_bytes());
                out.push(0);
                out.extend_from_slice(v.as_bytes());
                out.push(0);
            }
            out.push(0);
        }
        out
    }

    fn sample(metrics: &crate::metrics::Metrics, prefix: &str) -> Vec<String> {
        let mut lines: Vec<String> =
            metrics.encode_text().lines().filter(|l| l.starts_with(prefix)).map(str::to_owned).collect();
        lines.sort();
        lines
    }

    /// The showq socket answers when the test says so: a read that the
    /// scrape gives up on, then one that finishes.
    #[tokio::test]
    async fn a_slow_queue_serves_the_last_values_and_says_so() {
        let spool = tempfile::tempdir().unwrap();
        fs::create_dir_all(spool.path().join("public")).unwrap();
        let listener = UnixListener::bind(spool.path().join("public/showq")).unwrap();
        let (release, released) = std::sync::mpsc::channel::<()>();
        // Not joined: after the test it waits for a connection that never comes.
        std::thread::spawn(move || {
            // First connection: answered at once.
            let (mut first, _) = listener.accept().unwrap();
            first.write_all(&showq_answer(&[("deferred", 1000, 400), ("deferred", 2000, 600)])).unwrap();
            drop(first);
            // Second: held until released, then answered; later ones at once.
            let (mut second, _) = listener.accept().unwrap();
            released.recv().unwrap();
            second.write_all(&showq_answer(&[("hold", 3000, 50)])).unwrap();
            drop(second);
            while let Ok((mut next, _)) = listener.accept() {
                let _ = next.write_all(&showq_answer(&[("hold", 3000, 50)]));
            }
        });
        let metrics = crate::metrics::Metrics::new(crate::metrics::MetricsOptions::default());
        metrics.queues().configure(&QueuesConfig {
            timeout: Duration::from_millis(200),
            min_interval: Duration::ZERO,
            spools: vec![SpoolConfig {
                mta: QueueMta::Postfix,
                path: spool.path().into(),
                method: PostfixMethod::Showq,
            }],
        });
        assert_eq!(metrics.queues().refresh().await, vec![(Mta::Postfix, Outcome::Fresh)]);
        let deferred = "mta_queue_messages{mta=\"postfix\",queue=\"deferred\"} 2";
        assert!(sample(&metrics, "mta_queue_messages{").contains(&deferred.to_string()));
        assert_eq!(sample(&metrics, "mta_queue_up{"), ["mta_queue_up{mta=\"postfix\"} 1"]);

        // The second read is held: the scrape stops waiting, keeps the values, says up 0.
        assert_eq!(metrics.queues().refresh().await, vec![(Mta::Postfix, Outcome::TimedOut)]);
        assert!(sample(&metrics, "mta_queue_messages{").contains(&deferred.to_string()));
        assert_eq!(sample(&metrics, "mta_queue_up{"), ["mta_queue_up{mta=\"postfix\"} 0"]);
        assert!(sample(&metrics, "mta_queue_scrape_errors_total{")
            .contains(&"mta_queue_scrape_errors_total{mta=\"postfix\",reason=\"timeout\"} 1".to_string()));

        // Released, the late read finishes (the next scrape waits for it if
        // it still runs, or reads again) and the new values are served.
        release.send(()).unwrap();
        assert_eq!(metrics.queues().refresh().await, vec![(Mta::Postfix, Outcome::Fresh)]);
        assert_eq!(
            sample(&metrics, "mta_queue_messages{"),
            [
                "mta_queue_messages{mta=\"postfix\",queue=\"active\"} 0",
                "mta_queue_messages{mta=\"postfix\",queue=\"deferred\"} 0",
                "mta_queue_messages{mta=\"postfix\",queue=\"hold\"} 1",
                "mta_queue_messages{mta=\"postfix\",queue=\"incoming\"} 0",
                "mta_queue_messages{mta=\"postfix\",queue=\"maildrop\"} 0",
            ]
        );
        assert_eq!(sample(&metrics, "mta_queue_up{"), ["mta_queue_up{mta=\"postfix\"} 1"]);

        // The socket is gone and showq is required: a read error, the last values stand.
        drop(spool);
        assert_eq!(metrics.queues().refresh().await, vec![(Mta::Postfix, Outcome::Failed)]);
        assert_eq!(sample(&metrics, "mta_queue_up{"), ["mta_queue_up{mta=\"postfix\"} 0"]);
        assert!(sample(&metrics, "mta_queue_messages{")
            .contains(&"mta_queue_messages{mta=\"postfix\",queue=\"hold\"} 1".to_string()));
        assert!(sample(&metrics, "mta_queue_scrape_errors_total{")
            .contains(&"mta_queue_scrape_errors_total{mta=\"postfix\",reason=\"read\"} 1".to_string()));
    }

    #[tokio::test]
    async fn the_oldest_age_grows_between_reads_and_reads_are_shared() {
        let spool = tempfile::tempdir().unwrap();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        postfix_queue_file(&spool.path().join("deferred/8/8F404B69B2"), 473, now - 3600);
        for q in ["incoming", "active", "hold", "maildrop"] {
            fs::create_dir_all(spool.path().join(q)).unwrap();
        }
        let metrics = crate::metrics::Metrics::new(crate::metrics::MetricsOptions::default());
        metrics.queues().configure(&QueuesConfig {
            timeout: Duration::from_secs(5),
            min_interval: Duration::from_secs(3600),
            spools: vec![SpoolConfig {
                mta: QueueMta::Postfix,
                path: spool.path().into(),
                method: PostfixMethod::Directories,
            }],
        });
        metrics.queues().refresh().await;
        let age = |metrics: &crate::metrics::Metrics| -> f64 {
            let line =
                sample(metrics, "mta_queue_oldest_message_age_seconds{mta=\"postfix\",queue=\"deferred\"}").remove(0);
            line.rsplit(' ').next().unwrap().parse().unwrap()
        };
        assert!((3600.0..3700.0).contains(&age(&metrics)), "{}", age(&metrics));
        // Within min_interval the same read is reused: a new file is not seen yet.
        postfix_queue_file(&spool.path().join("deferred/2/22088B69C1"), 1, now);
        metrics.queues().refresh().await;
        assert!(sample(&metrics, "mta_queue_messages{")
            .contains(&"mta_queue_messages{mta=\"postfix\",queue=\"deferred\"} 1".to_string()));
        assert_eq!(
            sample(&metrics, "mta_queue_size_bytes{mta=\"postfix\",queue=\"deferred\"}"),
            ["mta_queue_size_bytes{mta=\"postfix\",queue=\"deferred\"} 473"]
        );
    }
}
