//! The `mta_exporter` binary: resolve settings, start the sources, serve
//! HTTP until SIGTERM/SIGINT (reloading on SIGHUP), then stop everything
//! in order: drain in-flight scrapes, then stop the sources and save their
//! positions — or run one of the commands (`explain`, `report`,
//! `check-config`) and exit.

#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo, clippy::unimplemented)]

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use mta_exporter::classify::Classifier;
use mta_exporter::cli::{self, Cli, ConfigSettings, Settings};
use mta_exporter::commands;
use mta_exporter::logging;
use mta_exporter::metrics::{Metrics, MetricsOptions};
use mta_exporter::pipeline::SharedClassifier;
use mta_exporter::reload::Reloader;
use mta_exporter::shutdown::Shutdown;
use mta_exporter::web::{self, App, ReloadFn, WebState};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => {
            // --help and --version
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            let rendered = err.to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("mta_exporter: {first}; run 'mta_exporter --help' for the list of flags");
            return ExitCode::from(2);
        }
    };
    if let Some(command) = cli.command {
        return commands::run(command);
    }
    logging::init(cli.log_level, cli.log_format);
    // Socket activation reads and clears the environment: before any thread.
    let systemd = if cli.systemd_socket {
        match web::systemd_listeners() {
            Ok(listeners) => Some(listeners),
            Err(err) => {
                eprintln!("mta_exporter: {err}");
                return ExitCode::from(2);
            }
        }
    } else {
        None
    };
    let settings = match cli.settings() {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("mta_exporter: {message}");
            return ExitCode::from(2);
        }
    };
    let metrics = Metrics::new(MetricsOptions { max_series_per_family: settings.config.limits.max_series_per_family });
    metrics.queues().configure(&settings.config.queues);
    let web = match WebState::load(cli.web_config_file.as_deref(), Arc::clone(&metrics)) {
        Ok(web) => Arc::new(web),
        Err(err) => {
            eprintln!("mta_exporter: {err}");
            return ExitCode::from(2);
        }
    };
    match run(cli, settings, metrics, web, systemd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mta_exporter: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(
    cli: Cli,
    settings: Settings,
    metrics: Arc<Metrics>,
    web: Arc<WebState>,
    systemd: Option<Vec<std::net::TcpListener>>,
) -> anyhow::Result<()> {
    let rules = settings.config.cause_rules()?;
    let classifier = SharedClassifier::new(Classifier::new(rules));
    let shutdown = Shutdown::new();

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // Bind before starting the sources, so a busy port fails fast and clean.
    let listeners = runtime.block_on(async {
        match systemd {
            Some(sockets) => sockets.into_iter().map(tokio::net::TcpListener::from_std).collect::<Result<Vec<_>, _>>(),
            None => bind_all(&settings.listen).await,
        }
    })?;
    let lifecycle = cli.enable_lifecycle;
    let Settings { telemetry_path, sources, follow, config, http, .. } = settings;
    let others = Arc::new(config.other_parsers()?);
    let reloader = Arc::new(Reloader::start(
        cli,
        &ConfigSettings { config, sources, follow },
        others,
        Arc::clone(&metrics),
        classifier,
        Arc::clone(&web),
        shutdown.clone(),
    )?);
    let reload: Option<ReloadFn> = lifecycle.then(|| {
        let reloader = Arc::clone(&reloader);
        Arc::new(move || reloader.reload_all()) as ReloadFn
    });
    let app = Arc::new(App {
        metrics,
        telemetry_path: telemetry_path.clone(),
        sources: reloader.board(),
        web: Arc::clone(&web),
        reload,
    });
    let tls = web.current().config.tls.as_ref().map(|t| t.summary.clone());
    for listener in &listeners {
        if let Ok(address) = listener.local_addr() {
            tracing::info!(%address, path = %telemetry_path, tls = tls.as_deref().unwrap_or("off"), "listening");
        }
    }
    runtime.block_on(async {
        let signals = tokio::spawn(handle_signals(shutdown.clone(), Arc::clone(&reloader)));
        let watcher = tokio::spawn(Arc::clone(&web).watch(shutdown.clone()));
        web::serve(listeners, app, http, shutdown.clone()).await;
        signals.abort();
        let _ = watcher.await;
    });
    // After the last scrape: stop the sources and save their positions.
    reloader.stop();
    Ok(())
}

async fn bind_all(addresses: &[std::net::SocketAddr]) -> std::io::Result<Vec<tokio::net::TcpListener>> {
    let mut listeners = Vec::new();
    for &address in addresses {
        match web::bind(&[address]).await {
            Ok(mut bound) => listeners.append(&mut bound),
            // Where IPv6 is disabled, ":PORT" falls back to the IPv4 wildcard.
            Err(err) => match cli::ipv4_fallback(address) {
                Some(v4) => listeners.append(&mut web::bind(&[v4]).await.map_err(|_| err)?),
                None => return Err(err),
            },
        }
    }
    Ok(listeners)
}

/// SIGTERM and SIGINT stop the exporter; SIGHUP reloads the config files.
async fn handle_signals(shutdown: Shutdown, reloader: Arc<Reloader>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()))
    else {
        tracing::warn!("cannot install signal handlers; only Ctrl-C stops the exporter, SIGHUP does not reload");
        let _ = tokio::signal::ctrl_c().await;
        shutdown.trigger();
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading");
                let reloader = Arc::clone(&reloader);
                // The outcome is logged and counted by the reload itself.
                let _ = tokio::task::spawn_blocking(move || reloader.reload_all()).await;
            }
        }
    }
    tracing::info!("shutting down");
    shutdown.trigger();
}
