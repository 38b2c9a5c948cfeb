//! mta_exporter: a Prometheus exporter that finds every SMTP reply code in
//! mail server logs, classifies it, and serves the counts.
//!
//! The stages, each a module with one job and plain data between them:
//!
//! * [`source`] — where lines come from: files followed across rotation,
//!   one thread per source.
//! * [`framing`] — bytes to complete lines, bounded memory, no per-line allocation.
//! * [`decode`] — line formats around the log text: plain, container (CRI,
//!   Docker json-file) and journald JSON, partial lines joined.
//! * [`envelope`] — the syslog-style prefix (`timestamp host program[pid]: `).
//! * [`parse`] — MTA parsers (one file per MTA: Postfix, Exim, Sendmail,
//!   OpenSMTPD, and user-defined ones): a line to a [`parse::Record`] (the
//!   reply it carries, the delivery outcome it reports).
//! * [`classify`] — a reply to its class, category and cause (the cause rule
//!   table is data: `config/causes.yaml`).
//! * [`metrics`] — the metric contract and the per-source counter handles.
//! * [`web`] — `/metrics`, the landing page, health, readiness and reload,
//!   secured by an exporter-toolkit web config (TLS, basic auth).
//! * [`queue`] — the mail queues (Postfix showq or spool directories, Exim,
//!   Sendmail and OpenSMTPD spools), read when Prometheus scrapes.
//!
//! [`commands`] holds the subcommands beside the exporter: `explain` (the
//! reply code catalogue, [`classify::catalogue`]), `report` (the same
//! framing → parse → classify stages over whole files) and `check-config`.
//!
//! [`model`] holds the vocabulary all stages share (`ReplyCode`,
//! `EnhancedStatus`, `Reply`, `DeliveryStatus`); [`pipeline`] wires one
//! source's stages together; [`cli`] and [`config`] resolve the settings;
//! [`reload`] applies a changed config file while running;
//! [`shutdown`] is the one way every task stops.

#![forbid(unsafe_code)]
// Input and the environment never make the exporter panic: no unwrap/expect,
// no explicit panics outside tests. The three tables built into the binary
// (`config/causes.yaml`, `config/catalogue.yaml`) are the exception, allowed
// where they are loaded: they are compile-time data checked by the test
// suite, so failing to load one is a build defect. Indexing and slicing are
// not denied (`clippy::indexing_slicing` would flag every parser's
// position arithmetic and turn a logic error into a silent miss); the fuzz
// targets in `fuzz/` and the property tests in `tests/properties.rs`
// exercise them on arbitrary input instead (SECURITY.md).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo, clippy::unimplemented)
)]

pub mod classify;
pub mod cli;
pub mod commands;
pub mod config;
pub mod decode;
pub mod envelope;
pub mod framing;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod parse;
pub mod pipeline;
pub mod queue;
pub mod reload;
pub mod shutdown;
pub mod source;
pub mod web;
