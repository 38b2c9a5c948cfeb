//! The `mta_exporter` binary: resolve settings, start the sources, serve
//! HTTP until SIGTERM/SIGINT, then stop everything in order — or run one of
//! the commands (`explain`, `report`, `check-config`) and exit.

#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use mta_exporter::classify::Classifier;
use mta_exporter::cli::{self, Cli, Settings};
use mta_exporter::http::{self, AppState};
use mta_exporter::metrics::{Metrics, MetricsOptions};
use mta_exporter::shutdown::Shutdown;
use mta_exporter::{commands, logging, source};

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
            eprintln!("mta_exporter: {first}; run 'mta_exporter --help' for the list of flags and commands");
            return ExitCode::from(2);
        }
    };
    if let Some(command) = cli.command {
        return commands::run(command);
    }
    logging::init(cli.log_level, cli.log_format);
    let settings = match cli.settings() {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("mta_exporter: {message}");
            return ExitCode::from(2);
        }
    };
    match run(settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mta_exporter: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(settings: Settings) -> anyhow::Result<()> {
    let rules = settings.config.cause_rules()?;
    let classifier = Arc::new(Classifier::new(rules));
    let others = Arc::new(settings.config.other_parsers()?);
    let metrics = Metrics::new(MetricsOptions { max_series_per_family: settings.config.limits.max_series_per_family });
    let shutdown = Shutdown::new();

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // Bind before starting the sources, so a busy port fails fast and clean.
    let listeners = runtime.block_on(bind_all(&settings.listen))?;
    for spec in &settings.sources {
        tracing::info!(source = %spec.name, kind = spec.kind_label(), location = %spec.location(), "source configured");
    }
    let sources =
        source::Sources::start(&settings.sources, settings.follow.clone(), &metrics, &classifier, &others, &shutdown)?;
    let state =
        Arc::new(AppState { metrics, telemetry_path: settings.telemetry_path.clone(), sources: sources.board() });
    for listener in &listeners {
        if let Ok(address) = listener.local_addr() {
            tracing::info!(%address, path = %settings.telemetry_path, "listening");
        }
    }
    runtime.block_on(async {
        let signals = {
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                wait_for_signal().await;
                tracing::info!("shutting down");
                shutdown.trigger();
            })
        };
        http::serve(listeners, state, shutdown.clone()).await;
        signals.abort();
    });
    sources.join();
    Ok(())
}

async fn bind_all(addresses: &[std::net::SocketAddr]) -> anyhow::Result<Vec<tokio::net::TcpListener>> {
    let mut listeners = Vec::new();
    for &address in addresses {
        match http::bind(&[address]).await {
            Ok(mut bound) => listeners.append(&mut bound),
            // Where IPv6 is disabled, ":PORT" falls back to the IPv4 wildcard.
            Err(err) => match cli::ipv4_fallback(address) {
                Some(v4) => listeners.append(&mut http::bind(&[v4]).await.map_err(|_| err)?),
                None => return Err(err.into()),
            },
        }
    }
    Ok(listeners)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
