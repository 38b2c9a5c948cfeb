//! The web configuration in force, and keeping it current: the file and
//! every file it names (certificates, keys, client CA) are re-read when
//! inotify reports a change in their directories, every
//! [`POLL_INTERVAL`] as a safety net, and on SIGHUP / `POST /-/reload`.
//!
//! A reload is taken only when something was actually different, and only
//! whole: a file that fails any check keeps the last good configuration in
//! force, is logged once (not at every poll) and counted in
//! `mta_exporter_config_reloads_total{file="web_config",result="failure"}`.
//! Connections already open keep the TLS session they negotiated; new
//! connections get the new certificate — which is what cert-manager's
//! rotation needs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::{RecursiveMode, Watcher};

use super::config::{self, Snapshot, WebConfig, WebConfigError};
use super::handler::RateLimiter;
use crate::metrics::{ConfigFile, Metrics};
use crate::shutdown::Shutdown;

/// How often the files are re-read when no file event arrives.
pub const POLL_INTERVAL: Duration = Duration::from_secs(5);
/// Events often come in bursts (a `kubectl` secret update swaps a symlink,
/// cert-manager writes several files): wait this long for the burst to end.
const SETTLE: Duration = Duration::from_millis(200);

/// The configuration in force, with its runtime state.
#[derive(Debug)]
pub struct Active {
    pub config: WebConfig,
    pub rate_limiter: Option<RateLimiter>,
}

impl Active {
    fn new(config: WebConfig) -> Self {
        let rate_limiter = config.rate_limit.map(RateLimiter::new);
        Active { config, rate_limiter }
    }
}

/// What a check of the files found.
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    /// Nothing changed since the last check (or no file is configured).
    Unchanged,
    Reloaded,
    /// The files changed but are not valid; the message is one line.
    Failed(String),
}

pub struct WebState {
    current: ArcSwap<Active>,
    path: Option<PathBuf>,
    metrics: Arc<Metrics>,
    /// What the last check read, to tell a change from the same files.
    last: Mutex<Option<Snapshot>>,
}

impl std::fmt::Debug for WebState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebState").field("path", &self.path).finish_non_exhaustive()
    }
}

impl WebState {
    /// Loads `--web.config.file` (or the no-file default). An invalid file
    /// is an error here: at start, the exporter refuses to run on it.
    pub fn load(path: Option<&Path>, metrics: Arc<Metrics>) -> Result<WebState, WebConfigError> {
        let Some(path) = path else {
            return Ok(WebState {
                current: ArcSwap::from_pointee(Active::new(WebConfig::default())),
                path: None,
                metrics,
                last: Mutex::new(None),
            });
        };
        let (snapshot, config) = config::load(path);
        let config = config?;
        log_ignored(&config);
        metrics.track_config_file(ConfigFile::WebConfig);
        Ok(WebState {
            current: ArcSwap::from_pointee(Active::new(config)),
            path: Some(path.to_path_buf()),
            metrics,
            last: Mutex::new(Some(snapshot)),
        })
    }

    pub fn current(&self) -> Arc<Active> {
        self.current.load_full()
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Re-reads the files; takes the new configuration if they changed and
    /// are valid. Blocking (file reads, certificate parsing).
    pub fn check(&self) -> Check {
        let Some(path) = &self.path else {
            return Check::Unchanged;
        };
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let (snapshot, result) = config::load(path);
        if last.as_ref() == Some(&snapshot) {
            return Check::Unchanged;
        }
        *last = Some(snapshot);
        let outcome = result.map_err(|e| e.to_string()).and_then(|config| {
            // Turning TLS on or off under running clients is refused: an
            // edit that drops tls_server_config must not silently expose
            // the endpoint over plain HTTP.
            match (self.current.load().config.tls.is_some(), config.tls.is_some()) {
                (true, false) => Err(format!(
                    "web config file {}: tls_server_config was removed; switching TLS off needs a restart",
                    path.display()
                )),
                (false, true) => Err(format!(
                    "web config file {}: tls_server_config was added; switching TLS on needs a restart",
                    path.display()
                )),
                _ => Ok(config),
            }
        });
        match outcome {
            Ok(config) => {
                log_ignored(&config);
                tracing::info!(
                    file = %path.display(),
                    tls = config.tls.as_ref().map_or("off", |t| t.summary.as_str()),
                    basic_auth = config.auth.is_some(),
                    "web config reloaded"
                );
                self.current.store(Arc::new(Active::new(config)));
                self.metrics.record_reload(ConfigFile::WebConfig, true);
                Check::Reloaded
            }
            Err(message) => {
                tracing::error!(error = %message, "web config reload failed; keeping the last good configuration");
                self.metrics.record_reload(ConfigFile::WebConfig, false);
                Check::Failed(message)
            }
        }
    }

    fn directories(&self) -> Vec<PathBuf> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(Snapshot::directories).unwrap_or_default()
    }

    /// Keeps the configuration current until shutdown.
    pub async fn watch(self: Arc<Self>, shutdown: Shutdown) {
        if self.path.is_none() {
            return;
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        let mut watched: Vec<PathBuf> = Vec::new();
        let mut watcher: Option<notify::RecommendedWatcher> = None;
        let mut poll = tokio::time::interval(POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let directories = self.directories();
            if directories != watched {
                watcher = watch_directories(&directories, tx.clone());
                watched = directories;
            }
            tokio::select! {
                () = shutdown.triggered() => break,
                _ = poll.tick() => {}
                Some(()) = rx.recv() => {
                    tokio::time::sleep(SETTLE).await;
                    while rx.try_recv().is_ok() {}
                }
            }
            let state = Arc::clone(&self);
            let _ = tokio::task::spawn_blocking(move || state.check()).await;
        }
        drop(watcher);
    }
}

fn log_ignored(config: &WebConfig) {
    for option in &config.ignored {
        tracing::warn!(option = %option, "web config option ignored");
    }
}

/// Watches directories, not files: a watch on a file behind a Kubernetes
/// `..data` symlink goes silent after the first swap. Any event only means
/// "re-read now".
fn watch_directories(
    directories: &[PathBuf],
    wake: tokio::sync::mpsc::Sender<()>,
) -> Option<notify::RecommendedWatcher> {
    let handler = move |_event: notify::Result<notify::Event>| {
        let _ = wake.try_send(());
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(err) => {
            tracing::warn!(error = %err, "file events unavailable; the web config is polled every 5s");
            return None;
        }
    };
    for dir in directories {
        if let Err(err) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %dir.display(), error = %err, "cannot watch directory; the web config is polled every 5s");
        }
    }
    Some(watcher)
}
