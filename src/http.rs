//! The HTTP server: `/metrics` (the telemetry path), a landing page at `/`,
//! and `/-/healthy` and `/-/ready`. Anything else is 404.
//!
//! Built on hyper 1.x with a current-thread runtime: a scrape only reads the
//! registry (ingest threads never wait for it), and one thread serves every
//! connection comfortably.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::source::StatusBoard;

/// A slow client gets this long to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// In-flight scrapes get this long to finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What the handlers need.
#[derive(Debug)]
pub struct AppState {
    pub metrics: Arc<Metrics>,
    pub telemetry_path: String,
    /// Live view of the sources (follows a reload).
    pub sources: StatusBoard,
}

/// Binds every address first, so a busy port is reported before anything runs.
pub async fn bind(addresses: &[SocketAddr]) -> std::io::Result<Vec<TcpListener>> {
    let mut listeners = Vec::with_capacity(addresses.len());
    for address in addresses {
        let listener = TcpListener::bind(address)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {address}: {e}")))?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// Serves until the shutdown is triggered, then drains in-flight requests.
pub async fn serve(listeners: Vec<TcpListener>, state: Arc<AppState>, shutdown: Shutdown) {
    let graceful = Arc::new(GracefulShutdown::new());
    let mut tasks = tokio::task::JoinSet::new();
    for listener in listeners {
        let state = Arc::clone(&state);
        let shutdown = shutdown.clone();
        let graceful = Arc::clone(&graceful);
        tasks.spawn(async move {
            loop {
                let (stream, peer) = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok(pair) => pair,
                        Err(err) => {
                            tracing::warn!(error = %err, "accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                    () = shutdown.triggered() => return,
                };
                let state = Arc::clone(&state);
                let service = service_fn(move |req| handle(Arc::clone(&state), req));
                let connection = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(err) = connection.await {
                        tracing::debug!(%peer, error = %err, "connection ended with an error");
                    }
                });
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let graceful = Arc::try_unwrap(graceful).unwrap_or_else(|_| GracefulShutdown::new());
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("some scrapes did not finish in time");
    }
}

async fn handle(state: Arc<AppState>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path();
    let head = req.method() == Method::HEAD;
    if req.method() != Method::GET && !head {
        return Ok(text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n"));
    }
    let mut response = if path == state.telemetry_path {
        let body = state.metrics.encode_text();
        let mut r = Response::new(Full::new(Bytes::from(body)));
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(prometheus_client::encoding::prometheus_text::CONTENT_TYPE));
        r
    } else {
        match path {
            "/" => html(landing_page(&state)),
            "/-/healthy" => text(StatusCode::OK, "Healthy\n"),
            "/-/ready" if state.sources.ready() => text(StatusCode::OK, "Ready\n"),
            "/-/ready" => text(StatusCode::SERVICE_UNAVAILABLE, "Not ready: a log source is not open yet\n"),
            _ => text(StatusCode::NOT_FOUND, "Not Found\n"),
        }
    };
    if head {
        *response.body_mut() = Full::new(Bytes::new());
    }
    Ok(response)
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

fn html(body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    r
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn landing_page(state: &AppState) -> String {
    let path = escape(&state.telemetry_path);
    let rows: String = state
        .sources
        .snapshot()
        .iter()
        .map(|s| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                escape(&s.spec.name),
                escape(&s.spec.location()),
                s.state().label()
            )
        })
        .collect();
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>mta_exporter</title></head>\n<body>\n\
         <h1>mta_exporter</h1>\n<p>Version {version}. SMTP reply codes from mail server logs, classified.</p>\n\
         <ul>\n<li><a href=\"{path}\">{path}</a> — metrics</li>\n<li><a href=\"/-/healthy\">/-/healthy</a> — liveness</li>\n\
         <li><a href=\"/-/ready\">/-/ready</a> — readiness (every source open or waiting for its file)</li>\n</ul>\n\
         <h2>Sources</h2>\n<table>\n<tr><th>name</th><th>location</th><th>state</th></tr>\n{rows}</table>\n</body></html>\n",
        version = env!("CARGO_PKG_VERSION"),
    )
}
