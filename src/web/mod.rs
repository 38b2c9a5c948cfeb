//! The HTTP side: `/metrics` (the telemetry path), a landing page at `/`,
//! `/-/healthy`, `/-/ready` and, with `--web.enable-lifecycle`,
//! `POST /-/reload`; secured by a web configuration file in the Prometheus
//! exporter-toolkit format.
//!
//! * [`config`] — the web config file: parsed, checked, ready to serve with.
//! * [`tls`] — `tls_server_config` as a rustls server configuration.
//! * [`auth`] — basic auth against bcrypt hashes, with a credential cache.
//! * [`watch`] — the web configuration in force, re-read when its files change.
//! * [`negotiate`] — exposition format and gzip from the request headers.
//! * [`handler`] — what each request gets.
//! * [`server`] — listeners, connection limits and timeouts, TLS, HTTP/1.1
//!   and HTTP/2, draining at shutdown.
//!
//! One current-thread runtime serves everything: a scrape only reads the
//! registry (ingest threads never wait for it); bcrypt and reloads run on
//! the blocking pool so they never stall it.

pub mod auth;
pub mod config;
pub mod handler;
pub mod negotiate;
pub mod server;
pub mod tls;
pub mod watch;

pub use handler::{App, ReloadFn, SourceList};
pub use server::{bind, serve, systemd_listeners};
pub use watch::WebState;
