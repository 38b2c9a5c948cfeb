//! Listening and connections: the limits every client is held to, TLS,
//! HTTP/1.1 or HTTP/2, and draining at shutdown.
//!
//! Limits, per connection unless said otherwise:
//! * at most `max_connections` connections are served at once (for all
//!   listeners together); the next client waits in the kernel's listen
//!   queue until one ends — the Go `netutil.LimitListener` behaviour;
//! * the TLS handshake and the request headers must arrive within the
//!   header read timeout (hyper also applies it while an HTTP/1.1
//!   keep-alive connection waits for its next request);
//! * request headers are capped at [`MAX_HEADER_BYTES`] (431 beyond);
//! * a connection on which nothing is read or written for the idle timeout
//!   is closed (a client that stops reading its response, an idle HTTP/2
//!   connection).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulConnection;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use super::handler::{self, App};
use crate::cli::HttpLimits;
use crate::shutdown::Shutdown;

/// Request headers, start line included, beyond which a client gets 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// HTTP/2 streams one connection may have open at once.
const MAX_STREAMS: u32 = 16;
/// In-flight scrapes get this long to finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

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

/// The sockets systemd passed (`LISTEN_FDS`), for `--web.systemd-socket`.
/// Call before any thread starts: it reads and clears the environment.
pub fn systemd_listeners() -> std::io::Result<Vec<std::net::TcpListener>> {
    let mut fds = listenfd::ListenFd::from_env();
    let mut listeners = Vec::new();
    for index in 0..fds.len() {
        match fds.take_tcp_listener(index)? {
            Some(listener) => {
                listener.set_nonblocking(true)?;
                listeners.push(listener);
            }
            None => {
                return Err(std::io::Error::other(format!("systemd socket #{index} is not a TCP listening socket")))
            }
        }
    }
    if listeners.is_empty() {
        return Err(std::io::Error::other(
            "--web.systemd-socket is set but systemd passed no socket (LISTEN_FDS); start the exporter from a .socket unit",
        ));
    }
    Ok(listeners)
}

/// Serves until the shutdown is triggered, then drains in-flight requests.
pub async fn serve(listeners: Vec<TcpListener>, app: Arc<App>, limits: HttpLimits, shutdown: Shutdown) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    let mut accepting = tokio::task::JoinSet::new();
    for listener in listeners {
        let app = Arc::clone(&app);
        let shutdown = shutdown.clone();
        let permits = Arc::clone(&permits);
        let connections = connections.clone();
        accepting.spawn(async move {
            loop {
                let permit = tokio::select! {
                    permit = Arc::clone(&permits).acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => return,
                    },
                    () = shutdown.triggered() => return,
                };
                let (stream, peer) = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok(pair) => pair,
                        Err(err) => {
                            // EMFILE and friends: back off instead of spinning.
                            tracing::warn!(error = %err, "accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                    () = shutdown.triggered() => return,
                };
                let app = Arc::clone(&app);
                let shutdown = shutdown.clone();
                connections.spawn(async move {
                    connection(stream, peer, app, limits, shutdown).await;
                    drop(permit);
                });
            }
        });
    }
    while accepting.join_next().await.is_some() {}
    connections.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, connections.wait()).await.is_err() {
        tracing::warn!(connections = connections.len(), "some requests did not finish in time at shutdown");
    }
}

async fn connection(stream: TcpStream, peer: SocketAddr, app: Arc<App>, limits: HttpLimits, shutdown: Shutdown) {
    let _ = stream.set_nodelay(true);
    let activity = Activity::new();
    let io = ActivityIo { inner: stream, activity: Arc::clone(&activity) };
    // The TLS settings are taken per connection, so a rotated certificate
    // applies from the next connection on.
    let tls = app.web.current().config.tls.as_ref().map(|t| Arc::clone(&t.server_config));
    let Some(tls) = tls else {
        return http(io, false, peer, app, limits, shutdown, activity).await;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let stream = match tokio::time::timeout(limits.read_header_timeout, acceptor.accept(io)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(err)) => {
            tracing::debug!(%peer, error = %err, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    http(stream, h2, peer, app, limits, shutdown, activity).await;
}

async fn http<I>(
    io: I,
    h2: bool,
    peer: SocketAddr,
    app: Arc<App>,
    limits: HttpLimits,
    shutdown: Shutdown,
    activity: Arc<Activity>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| handler::handle(Arc::clone(&app), req));
    if h2 {
        let connection = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .max_concurrent_streams(MAX_STREAMS)
            .max_header_list_size(MAX_HEADER_BYTES as u32)
            .serve_connection(TokioIo::new(io), service);
        drive(connection, peer, limits, shutdown, activity).await;
    } else {
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.read_header_timeout)
            .max_header_size(MAX_HEADER_BYTES)
            .serve_connection(TokioIo::new(io), service);
        drive(connection, peer, limits, shutdown, activity).await;
    }
}

/// Runs a connection to its end: graceful at shutdown, cut when idle.
async fn drive<C>(connection: C, peer: SocketAddr, limits: HttpLimits, shutdown: Shutdown, activity: Arc<Activity>)
where
    C: GracefulConnection,
    C::Error: std::fmt::Display,
{
    let mut connection = std::pin::pin!(connection);
    let mut draining = false;
    loop {
        let idle_until = activity.last() + limits.idle_timeout;
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(%peer, error = %err, "connection ended with an error");
                }
                return;
            }
            () = shutdown.triggered(), if !draining => {
                connection.as_mut().graceful_shutdown();
                draining = true;
            }
            () = tokio::time::sleep_until(idle_until.into()) => {
                if activity.last() + limits.idle_timeout <= Instant::now() {
                    tracing::debug!(%peer, "connection idle; closing it");
                    return;
                }
            }
        }
    }
}

/// When a connection last read or wrote a byte.
#[derive(Debug)]
struct Activity {
    start: Instant,
    /// Milliseconds since `start`.
    last: AtomicU64,
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Activity { start: Instant::now(), last: AtomicU64::new(0) })
    }

    fn touch(&self) {
        let elapsed = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(elapsed, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last.load(Ordering::Relaxed))
    }
}

/// A socket that records activity for the idle timeout.
struct ActivityIo {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for ActivityIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        result
    }
}

impl AsyncWrite for ActivityIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
