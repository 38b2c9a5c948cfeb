//! Applying a changed configuration while running: SIGHUP and
//! `POST /-/reload` re-read `--config.file` (and re-check the web config).
//!
//! A reload is all or nothing. The file is read and checked completely
//! first; if anything is wrong, the running configuration stays, the error
//! is logged and counted (`mta_exporter_config_reloads_total{file="config",
//! result="failure"}`), and the caller gets the one-line message. Otherwise:
//!
//! * the cause rules: a new classifier replaces the old one atomically
//!   ([`SharedClassifier`]); every ingest thread uses it from its next line;
//! * `limits.max_series_per_family`: applies to label sets first seen after
//!   the reload (series that exist are never dropped);
//! * sources, through [`Sources::reconcile`]: removed ones are stopped,
//!   added ones start, unchanged ones (same spec) keep running untouched, so
//!   they lose and repeat nothing; a source whose settings changed restarts
//!   (from its positions when a positions file is used);
//! * counters live in one registry for the life of the process, so every
//!   counter keeps its value across a reload (a removed source's gauges go,
//!   its counters stay).
//!
//! `follow.*`, `limits.max_line_bytes` and `parsers:` are given to a source
//! when it starts, so a change applies to sources started after it; the
//! positions file cannot change while running.

use std::sync::{Arc, Mutex};

use crate::classify::Classifier;
use crate::cli::{Cli, ConfigSettings};
use crate::metrics::{ConfigFile, Metrics};
use crate::parse::OtherParsers;
use crate::pipeline::SharedClassifier;
use crate::shutdown::Shutdown;
use crate::source::{SourceError, Sources, StatusBoard};
use crate::web::watch::Check;
use crate::web::WebState;

/// The running configuration and what a reload changes.
pub struct Reloader {
    cli: Cli,
    metrics: Arc<Metrics>,
    classifier: SharedClassifier,
    /// `None` once stopped.
    sources: Mutex<Option<Sources>>,
    board: StatusBoard,
    web: Arc<WebState>,
    shutdown: Shutdown,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader").finish_non_exhaustive()
    }
}

impl Reloader {
    /// Starts the sources of `settings`.
    pub fn start(
        cli: Cli,
        settings: &ConfigSettings,
        others: Arc<OtherParsers>,
        metrics: Arc<Metrics>,
        classifier: SharedClassifier,
        web: Arc<WebState>,
        shutdown: Shutdown,
    ) -> Result<Reloader, SourceError> {
        for spec in &settings.sources {
            tracing::info!(source = %spec.name, kind = spec.kind_label(), location = %spec.location(), "source configured");
        }
        let sources =
            Sources::start(&settings.sources, settings.follow.clone(), &metrics, &classifier, &others, &shutdown)?;
        if cli.config_file.is_some() {
            metrics.track_config_file(ConfigFile::Config);
        }
        let board = sources.board();
        Ok(Reloader { cli, metrics, classifier, sources: Mutex::new(Some(sources)), board, web, shutdown })
    }

    /// The sources as `/-/ready` and the landing page see them (live).
    pub fn board(&self) -> StatusBoard {
        self.board.clone()
    }

    /// What SIGHUP and `POST /-/reload` do: re-check the web config, reload
    /// the config file. Blocking.
    pub fn reload_all(&self) -> Result<String, String> {
        let web = self.web.check();
        let config = self.reload();
        match (web, config) {
            (Check::Failed(web), Err(config)) => Err(format!("{config}; {web}")),
            (Check::Failed(web), Ok(_)) => Err(web),
            (Check::Reloaded, Ok(summary)) => Ok(format!("{summary}; web config reloaded")),
            (_, result) => result,
        }
    }

    /// Reloads `--config.file` (and re-resolves the `--log.path` sources).
    pub fn reload(&self) -> Result<String, String> {
        if self.shutdown.is_triggered() {
            return Err("the exporter is shutting down".into());
        }
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        let result = match sources.as_mut() {
            Some(sources) => self.apply(sources),
            None => Err("the exporter is shutting down".into()),
        };
        let tracked = self.cli.config_file.is_some();
        match &result {
            Ok(summary) => {
                tracing::info!(summary = %summary, "config reloaded");
                if tracked {
                    self.metrics.record_reload(ConfigFile::Config, true);
                }
            }
            Err(message) => {
                tracing::error!(error = %message, "config reload failed; keeping the running configuration");
                if tracked {
                    self.metrics.record_reload(ConfigFile::Config, false);
                }
            }
        }
        result
    }

    fn apply(&self, sources: &mut Sources) -> Result<String, String> {
        // Everything is checked before anything changes.
        let settings = self.cli.config_settings()?;
        let rules = settings.config.cause_rules().map_err(|e| e.to_string())?;
        let others = settings.config.other_parsers().map_err(|e| e.to_string())?;
        self.classifier.replace(Classifier::new(rules));
        self.metrics.set_max_series_per_family(settings.config.limits.max_series_per_family);
        self.metrics.queues().configure(&settings.config.queues);
        sources.set_options(settings.follow.clone(), Arc::new(others));
        let change = sources.reconcile(&settings.sources).map_err(|e| e.to_string())?;
        let names = |v: &[String]| if v.is_empty() { "none".to_string() } else { v.join(", ") };
        Ok(format!(
            "{} sources (added: {}; removed: {})",
            settings.sources.len(),
            names(&added(&change)),
            names(&removed(&change))
        ))
    }

    /// Stops every source and waits for its thread (after the HTTP server
    /// has drained), then saves the positions one last time.
    pub fn stop(&self) {
        let sources = self.sources.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(sources) = sources {
            sources.join();
        }
    }
}

/// Started and not merely restarted.
fn added(change: &crate::source::Reconciled) -> Vec<String> {
    change.started.iter().filter(|n| !change.stopped.contains(n)).cloned().collect()
}

/// Stopped and not restarted.
fn removed(change: &crate::source::Reconciled) -> Vec<String> {
    change.stopped.iter().filter(|n| !change.started.contains(n)).cloned().collect()
}
