//! What each request gets: the rate limit, basic auth and security headers
//! of the web config first, then the route — the telemetry path (format
//! and gzip negotiated), the landing page, `/-/healthy`, `/-/ready` and,
//! with `--web.enable-lifecycle`, `/-/reload`.

use std::convert::Infallible;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{
    HeaderValue, ACCEPT, ACCEPT_ENCODING, ALLOW, AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, VARY,
    WWW_AUTHENTICATE,
};
use hyper::{Method, Request, Response, StatusCode};

use super::auth::Outcome;
use super::config::RateLimit;
use super::negotiate::{self, Format};
use super::watch::WebState;
use crate::metrics::Metrics;
use crate::source::{SourceState, SourceStatus};

/// Requests never need a body here; a larger declared one gets 413.
pub const MAX_BODY_BYTES: u64 = 4096;

/// The sources as the HTTP side sees them: a live view that follows a
/// reload.
pub type SourceList = crate::source::StatusBoard;

/// Reloads `--config.file`; the error is one line for the client and the log.
pub type ReloadFn = Arc<dyn Fn() -> Result<String, String> + Send + Sync>;

/// What the handlers need.
pub struct App {
    pub metrics: Arc<Metrics>,
    pub telemetry_path: String,
    pub sources: SourceList,
    pub web: Arc<WebState>,
    /// `Some` with `--web.enable-lifecycle`.
    pub reload: Option<ReloadFn>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("telemetry_path", &self.telemetry_path)
            .field("lifecycle", &self.reload.is_some())
            .finish_non_exhaustive()
    }
}

/// A token bucket: `burst` requests at once, refilled at one per `interval`.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    /// (tokens left, when they were counted).
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        RateLimiter { limit, state: Mutex::new((f64::from(limit.burst), Instant::now())) }
    }

    pub fn allow_at(&self, now: Instant) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = now.saturating_duration_since(state.1);
        let refill = elapsed.as_secs_f64() / self.limit.interval.max(Duration::from_nanos(1)).as_secs_f64();
        state.0 = (state.0 + refill).min(f64::from(self.limit.burst));
        state.1 = now;
        if state.0 >= 1.0 {
            state.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

type Body = Full<Bytes>;

pub async fn handle<B>(app: Arc<App>, req: Request<B>) -> Result<Response<Body>, Infallible> {
    let web = app.web.current();
    let head = req.method() == Method::HEAD;
    let mut response = if web.rate_limiter.as_ref().is_some_and(|l| !l.allow_at(Instant::now())) {
        text(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests\n")
    } else if let Some(auth) = &web.config.auth {
        match auth.check(req.headers().get(AUTHORIZATION)).await {
            Outcome::Allowed => route(&app, &req).await,
            Outcome::Denied => {
                let mut r = text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
                r.headers_mut().insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"mta_exporter\", charset=\"UTF-8\""),
                );
                r
            }
        }
    } else {
        route(&app, &req).await
    };
    for (name, value) in &web.config.headers {
        response.headers_mut().insert(name, value.clone());
    }
    if head {
        *response.body_mut() = Full::new(Bytes::new());
    }
    Ok(response)
}

async fn route<B>(app: &App, req: &Request<B>) -> Response<Body> {
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return text(StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large\n");
    }
    let path = req.uri().path();
    let read_only = matches!(*req.method(), Method::GET | Method::HEAD);
    if path == app.telemetry_path {
        if !read_only {
            return not_allowed("GET, HEAD");
        }
        // Queues are read now, each for at most queues.timeout.
        app.metrics.queues().refresh().await;
        return telemetry(app, req);
    }
    match path {
        "/" | "/-/healthy" | "/-/ready" if !read_only => not_allowed("GET, HEAD"),
        "/" => html(landing_page(app)),
        "/-/healthy" => text(StatusCode::OK, "Healthy\n"),
        "/-/ready" => ready(&app.sources.snapshot()),
        "/-/reload" => match &app.reload {
            None => text(StatusCode::FORBIDDEN, "Lifecycle API is not enabled (start with --web.enable-lifecycle).\n"),
            Some(_) if !matches!(*req.method(), Method::POST | Method::PUT) => not_allowed("POST, PUT"),
            Some(reload) => {
                let reload = Arc::clone(reload);
                match tokio::task::spawn_blocking(move || reload()).await {
                    Ok(Ok(summary)) => owned_text(StatusCode::OK, format!("Reloaded: {summary}\n")),
                    Ok(Err(message)) => {
                        owned_text(StatusCode::INTERNAL_SERVER_ERROR, format!("failed to reload config: {message}\n"))
                    }
                    Err(_) => {
                        text(StatusCode::INTERNAL_SERVER_ERROR, "failed to reload config: the reload task failed\n")
                    }
                }
            }
        },
        _ => text(StatusCode::NOT_FOUND, "Not Found\n"),
    }
}

fn telemetry<B>(app: &App, req: &Request<B>) -> Response<Body> {
    let header = |name| req.headers().get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    let format = negotiate::format(header(ACCEPT));
    let body = match format {
        Format::PrometheusText => app.metrics.encode_text(),
        Format::OpenMetrics => {
            let mut out = String::with_capacity(16 * 1024);
            // Writing into a String cannot fail.
            let _ = prometheus_client::encoding::text::encode(&mut out, app.metrics.registry());
            out
        }
    };
    let gzipped = negotiate::gzip(header(ACCEPT_ENCODING)).then(|| gzip(body.as_bytes())).flatten();
    let mut response = match gzipped {
        Some(compressed) => {
            let mut r = Response::new(Full::new(Bytes::from(compressed)));
            r.headers_mut().insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            r
        }
        None => Response::new(Full::new(Bytes::from(body))),
    };
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    headers.insert(VARY, HeaderValue::from_static("Accept, Accept-Encoding"));
    response
}

/// Fast compression: a scrape is small and frequent, CPU matters more than
/// the last few percent of bytes.
fn gzip(body: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 6), flate2::Compression::fast());
    encoder.write_all(body).ok()?;
    encoder.finish().ok()
}

/// `/-/ready`: 200 once every source is open or waiting for its file.
fn ready(sources: &[Arc<SourceStatus>]) -> Response<Body> {
    let not_ready: Vec<String> = sources
        .iter()
        .filter(|s| !matches!(s.state(), SourceState::Open | SourceState::Waiting | SourceState::Ended))
        .map(|s| format!("{} ({})", s.spec.name, s.state().label()))
        .collect();
    if not_ready.is_empty() {
        text(StatusCode::OK, "Ready\n")
    } else {
        owned_text(StatusCode::SERVICE_UNAVAILABLE, format!("Not ready: {}\n", not_ready.join(", ")))
    }
}

fn not_allowed(allow: &'static str) -> Response<Body> {
    let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n");
    r.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
    r
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

fn owned_text(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

fn html(body: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    r
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn landing_page(app: &App) -> String {
    let path = escape(&app.telemetry_path);
    let sources = app.sources.snapshot();
    let rows: String = sources
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
    let reload =
        if app.reload.is_some() { "<li>POST /-/reload — reload the config file (lifecycle API)</li>\n" } else { "" };
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>mta_exporter</title></head>\n<body>\n\
         <h1>mta_exporter</h1>\n<p>Version {version}. SMTP reply codes from mail server logs, classified.</p>\n\
         <ul>\n<li><a href=\"{path}\">{path}</a> — metrics (Prometheus text, or OpenMetrics when asked; gzip when asked)</li>\n\
         <li><a href=\"/-/healthy\">/-/healthy</a> — liveness</li>\n\
         <li><a href=\"/-/ready\">/-/ready</a> — readiness (every source open or waiting for its file)</li>\n{reload}</ul>\n\
         <h2>Sources</h2>\n<table>\n<tr><th>name</th><th>location</th><th>state</th></tr>\n{rows}</table>\n</body></html>\n",
        version = env!("CARGO_PKG_VERSION"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_one_per_interval() {
        let limiter = RateLimiter::new(RateLimit { burst: 2, interval: Duration::from_secs(1) });
        let t0 = Instant::now();
        assert!(limiter.allow_at(t0));
        assert!(limiter.allow_at(t0));
        assert!(!limiter.allow_at(t0));
        assert!(!limiter.allow_at(t0 + Duration::from_millis(500)));
        assert!(limiter.allow_at(t0 + Duration::from_millis(1000)));
        assert!(!limiter.allow_at(t0 + Duration::from_millis(1100)));
        // A long pause refills up to the burst, not beyond.
        let later = t0 + Duration::from_secs(60);
        assert!(limiter.allow_at(later) && limiter.allow_at(later) && !limiter.allow_at(later));
    }
}
