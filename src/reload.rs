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
//! * sources: removed ones are stopped (their thread finishes the read in
//!   progress), added ones start, unchanged ones (same name and path) keep
//!   running untouched, so they lose and repeat nothing;
//! * counters live in one registry for the life of the process, so every
//!   series that exists keeps its value across a reload (a removed source's
//!   series stay at their last value).
//!
//! `limits.max_line_bytes` and `follow.poll_interval` are given to a source
//! when it starts, so a change applies to sources started after it.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::classify::Classifier;
use crate::cli::{Cli, ConfigSettings};
use crate::metrics::{ConfigFile, Metrics};
use crate::pipeline::SharedClassifier;
use crate::shutdown::Shutdown;
use crate::source::{self, FollowOptions, SourceSpec, SourceStatus, Sources};
use crate::web::watch::Check;
use crate::web::{SourceList, WebState};

/// The running configuration and what a reload changes.
pub struct Reloader {
    cli: Cli,
    metrics: Arc<Metrics>,
    classifier: SharedClassifier,
    sources: Mutex<RunningSources>,
    list: SourceList,
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
        metrics: Arc<Metrics>,
        classifier: SharedClassifier,
        web: Arc<WebState>,
        shutdown: Shutdown,
    ) -> std::io::Result<Reloader> {
        let running = RunningSources::start(&settings.sources, settings.follow, &metrics, &classifier)?;
        if cli.config_file.is_some() {
            metrics.track_config_file(ConfigFile::Config);
        }
        let list = Arc::new(ArcSwap::from_pointee(running.statuses()));
        Ok(Reloader { cli, metrics, classifier, sources: Mutex::new(running), list, web, shutdown })
    }

    /// The sources as `/-/ready` and the landing page see them.
    pub fn source_list(&self) -> SourceList {
        Arc::clone(&self.list)
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
        let mut running = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        let result = self.apply(&mut running);
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

    fn apply(&self, running: &mut RunningSources) -> Result<String, String> {
        let settings = self.cli.config_settings()?;
        let rules = settings.config.cause_rules().map_err(|e| e.to_string())?;
        self.classifier.replace(Classifier::new(rules));
        self.metrics.set_max_series_per_family(settings.config.limits.max_series_per_family);
        if settings.follow.poll_interval != running.follow.poll_interval
            || settings.follow.max_line_bytes != running.follow.max_line_bytes
        {
            tracing::warn!(
                "follow.poll_interval and limits.max_line_bytes changed: sources started from now on use the new values, running sources keep theirs until restart"
            );
        }
        let change = running
            .reconcile(&settings.sources, settings.follow, &self.metrics, &self.classifier)
            .map_err(|e| format!("cannot start a source thread: {e}"))?;
        self.list.store(Arc::new(running.statuses()));
        let names = |v: &[String]| if v.is_empty() { "none".to_string() } else { v.join(", ") };
        Ok(format!(
            "{} sources (added: {}; removed: {})",
            settings.sources.len(),
            names(&change.added),
            names(&change.removed)
        ))
    }

    /// Stops every source and waits for its thread (after the HTTP server
    /// has drained). This is where a source manager flushes its positions.
    pub fn stop(&self) {
        let mut running = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        running.stop_all();
    }
}

/// What a reconcile did, by source name.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Change {
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

/// The running sources, each with its own stop switch so that one can be
/// removed without touching the others.
///
/// This adapts the core's `source::spawn` (which starts a set of sources
/// that live until shutdown); a source manager with its own `reconcile`
/// replaces it without changing [`Reloader`].
struct RunningSources {
    running: Vec<RunningSource>,
    /// The options the running sources were started with.
    follow: FollowOptions,
}

struct RunningSource {
    spec: SourceSpec,
    stop: Shutdown,
    sources: Sources,
}

impl RunningSources {
    fn start(
        specs: &[SourceSpec],
        follow: FollowOptions,
        metrics: &Arc<Metrics>,
        classifier: &SharedClassifier,
    ) -> std::io::Result<Self> {
        let mut running = RunningSources { running: Vec::new(), follow };
        running.reconcile(specs, follow, metrics, classifier)?;
        Ok(running)
    }

    fn statuses(&self) -> Vec<Arc<SourceStatus>> {
        self.running.iter().flat_map(|r| r.sources.statuses.iter().cloned()).collect()
    }

    fn reconcile(
        &mut self,
        specs: &[SourceSpec],
        follow: FollowOptions,
        metrics: &Arc<Metrics>,
        classifier: &SharedClassifier,
    ) -> std::io::Result<Change> {
        let same = |a: &SourceSpec, b: &SourceSpec| a.name == b.name && a.path == b.path;
        let mut change = Change::default();
        let (keep, remove): (Vec<RunningSource>, Vec<RunningSource>) =
            std::mem::take(&mut self.running).into_iter().partition(|r| specs.iter().any(|s| same(s, &r.spec)));
        for source in remove {
            tracing::info!(source = %source.spec.name, path = %source.spec.path.display(), "source removed");
            change.removed.push(source.spec.name.clone());
            source.stop.trigger();
            source.sources.join();
        }
        let mut keep: Vec<Option<RunningSource>> = keep.into_iter().map(Some).collect();
        for spec in specs {
            if let Some(kept) =
                keep.iter_mut().find(|r| r.as_ref().is_some_and(|r| same(&r.spec, spec))).and_then(Option::take)
            {
                self.running.push(kept);
                continue;
            }
            let stop = Shutdown::new();
            let sources = source::spawn(std::slice::from_ref(spec), follow, metrics, classifier, &stop)?;
            tracing::info!(source = %spec.name, path = %spec.path.display(), from_beginning = matches!(spec.start, source::file::StartAt::Beginning), "source configured");
            change.added.push(spec.name.clone());
            self.running.push(RunningSource { spec: spec.clone(), stop, sources });
        }
        if !change.added.is_empty() {
            self.follow = follow;
        }
        Ok(change)
    }

    fn stop_all(&mut self) {
        for source in &self.running {
            source.stop.trigger();
        }
        for source in self.running.drain(..) {
            source.sources.join();
        }
    }
}
