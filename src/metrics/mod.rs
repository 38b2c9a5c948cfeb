//! The metric contract: every family the exporter serves, its labels, the
//! series caps, and the per-source [`Recorder`] that the ingest threads feed.
//!
//! The names and labels here are a contract that the dashboards, the alert
//! rules and every parser follow; change them only with all of those.
//!
//! Hot path: a [`Recorder`] keeps its own map from a small `Copy` key to a
//! resolved counter handle, so counting a reply costs one hash lookup and
//! one atomic add. The map hashes with FxHash: the keys are a few small
//! integers, and the map never holds more than the family's cap of them
//! (folded keys are not kept), so SipHash's flooding resistance buys
//! nothing here and cost more than the rest of the counting; delivery
//! outcomes are a plain array. The shared, locked index is touched only
//! the first time a recorder meets a label set; it enforces the per-family series cap, folding
//! any new label set beyond it into `other` and counting that in
//! `mta_metrics_overflow_total`.
//!
//! `mta_smtp_reply_info` is fed on the same cold path: when a reply series
//! is first created, its code pair gets its meaning from the catalogue.

mod activity;
mod process;
mod source;

pub use activity::{DELAY_BUCKETS, DNSBL_RANK_BUCKETS, MAX_SERVICES, RECIPIENT_BUCKETS, SIZE_BUCKETS};

pub use source::{DropReason, SourceHandles, SyslogHandles};

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rustc_hash::FxHashMap;

use crate::classify::catalogue::catalogue;
use crate::classify::{Category, Cause, Classification};
use crate::model::{DeliveryStatus, Direction, EnhancedStatus, Mta, Phase, ReplyClass, ReplyCode};
use crate::parse::{Line, Record};

/// Default for `limits.max_series_per_family`.
pub const DEFAULT_MAX_SERIES: usize = 2000;

/// The value for a label whose part is absent (never an empty string).
pub const NONE: &str = "none";
/// The value a label is folded into when its family is over its cap.
pub const OTHER: &str = "other";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReplyLabels {
    pub mta: &'static str,
    pub direction: &'static str,
    pub phase: &'static str,
    pub class: &'static str,
    pub code: String,
    pub enhanced: String,
    pub category: &'static str,
    pub cause: &'static str,
}

/// `mta_smtp_reply_info`: what a code pair means, for a Grafana table.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReplyInfoLabels {
    pub code: String,
    pub enhanced: String,
    /// From the catalogue (`config/catalogue.yaml`): a bounded set of texts,
    /// or `uncatalogued`.
    pub meaning: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WarningLabels {
    pub mta: &'static str,
    pub phase: &'static str,
    pub class: &'static str,
    pub cause: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    pub mta: &'static str,
    pub status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LineLabels {
    pub source: Arc<str>,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    pub source: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FamilyLabels {
    family: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    file: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConfigFileLabels {
    file: &'static str,
}

/// A configuration file that can be reloaded while running (the `file`
/// label of the reload families).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigFile {
    /// `--config.file`: reloaded on SIGHUP and `POST /-/reload`.
    Config,
    /// `--web.config.file`: reloaded when it or a file it names changes.
    WebConfig,
}

impl ConfigFile {
    pub fn label(self) -> &'static str {
        match self {
            ConfigFile::Config => "config",
            ConfigFile::WebConfig => "web_config",
        }
    }
}

/// How a line was understood, as the `result` label of `mta_log_lines_total`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum LineResult {
    /// Carried at least one counted reply.
    Reply,
    /// An MTA line understood, with no reply in it.
    Recognized,
    /// A line from a program that is not an MTA (dovecot, amavis …).
    Ignored,
    /// Not understood; logged at debug level.
    Unrecognized,
}

impl LineResult {
    pub const ALL: [LineResult; 4] =
        [LineResult::Reply, LineResult::Recognized, LineResult::Ignored, LineResult::Unrecognized];

    pub fn label(self) -> &'static str {
        match self {
            LineResult::Reply => "reply",
            LineResult::Recognized => "recognized",
            LineResult::Ignored => "ignored",
            LineResult::Unrecognized => "unrecognized",
        }
    }

    /// How a parsed line counts: a reply only when it carries a classified
    /// reply that was sent (a `reject_warning` was only logged).
    pub fn of(line: &Line<'_>, classification: Option<Classification>) -> LineResult {
        match line {
            Line::Mta(record) if record.reply.is_some() && classification.is_some() && !record.warning_only => {
                LineResult::Reply
            }
            Line::Mta(_) => LineResult::Recognized,
            Line::Foreign => LineResult::Ignored,
            Line::Unrecognized => LineResult::Unrecognized,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Everything that identifies one `mta_smtp_replies_total` series.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ReplyKey {
    pub mta: Mta,
    pub direction: Direction,
    pub phase: Phase,
    pub code: Option<ReplyCode>,
    pub enhanced: Option<EnhancedStatus>,
    pub class: ReplyClass,
    pub category: Category,
    pub cause: Cause,
}

impl ReplyKey {
    fn labels(&self) -> ReplyLabels {
        ReplyLabels {
            mta: self.mta.label(),
            direction: self.direction.label(),
            phase: self.phase.label(),
            class: self.class.label(),
            code: self.code.map_or_else(|| NONE.to_owned(), |c| c.to_string()),
            enhanced: self.enhanced.map_or_else(|| NONE.to_owned(), |e| e.to_string()),
            category: self.category.label(),
            cause: self.cause.as_str(),
        }
    }

    /// Over the cap, only the labels that alerts rely on survive.
    fn folded(&self) -> ReplyLabels {
        ReplyLabels {
            mta: self.mta.label(),
            direction: self.direction.label(),
            phase: OTHER,
            class: self.class.label(),
            code: OTHER.to_owned(),
            enhanced: OTHER.to_owned(),
            category: OTHER,
            cause: OTHER,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct WarningKey {
    mta: Mta,
    phase: Phase,
    class: ReplyClass,
    cause: Cause,
}

impl WarningKey {
    fn labels(&self) -> WarningLabels {
        WarningLabels {
            mta: self.mta.label(),
            phase: self.phase.label(),
            class: self.class.label(),
            cause: self.cause.as_str(),
        }
    }

    fn folded(&self) -> WarningLabels {
        WarningLabels { mta: self.mta.label(), phase: OTHER, class: self.class.label(), cause: OTHER }
    }
}

/// A counter family with a cap on its number of series.
#[derive(Debug)]
struct CappedFamily<K, L> {
    name: &'static str,
    family: Family<L, Counter>,
    index: Mutex<HashMap<K, Counter>>,
    /// Changed by a config reload; applies to label sets not seen before.
    cap: AtomicUsize,
}

impl<K, L> CappedFamily<K, L>
where
    K: Copy + Eq + Hash,
    L: Clone + Eq + Hash + EncodeLabelSet + Send + Sync + std::fmt::Debug + 'static,
{
    fn new(name: &'static str, cap: usize) -> Self {
        CappedFamily { name, family: Family::default(), index: Mutex::new(HashMap::new()), cap: AtomicUsize::new(cap) }
    }

    /// The counter for `key`; the second value says whether it was folded.
    fn resolve(&self, key: K, labels: impl FnOnce() -> L, folded: impl FnOnce() -> L) -> (Counter, bool) {
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(counter) = index.get(&key) {
            return (counter.clone(), false);
        }
        if index.len() < self.cap.load(Ordering::Relaxed) {
            let counter = self.family.get_or_create_owned(&labels());
            index.insert(key, counter.clone());
            (counter, false)
        } else {
            // The folded series live outside the index: there are few of
            // them (mta × direction × class) and they must always exist.
            (self.family.get_or_create_owned(&folded()), true)
        }
    }
}

/// Settings that shape the families.
#[derive(Clone, Copy, Debug)]
pub struct MetricsOptions {
    pub max_series_per_family: usize,
}

impl Default for MetricsOptions {
    fn default() -> Self {
        MetricsOptions { max_series_per_family: DEFAULT_MAX_SERIES }
    }
}

/// All families, registered once; shared by the ingest threads and the HTTP server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    replies: CappedFamily<ReplyKey, ReplyLabels>,
    reject_warnings: CappedFamily<WarningKey, WarningLabels>,
    deliveries: Family<DeliveryLabels, Counter>,
    lines: Family<LineLabels, Counter>,
    bytes: Family<SourceLabels, Counter>,
    overflow: Family<FamilyLabels, Counter>,
    sources: source::SourceFamilies,
    reply_info: Family<ReplyInfoLabels, Gauge>,
    /// The code pairs that have a `mta_smtp_reply_info` series. Every one is
    /// the projection of a reply series within the cap, so this set never
    /// outgrows the cap either.
    reply_info_seen: Mutex<HashSet<(Option<ReplyCode>, Option<EnhancedStatus>)>>,
    reloads: Family<ReloadLabels, Counter>,
    reload_ok: Family<ConfigFileLabels, Gauge>,
    activity: Arc<activity::ActivityFamilies>,
    queues: crate::queue::Queues,
}

impl Metrics {
    pub fn new(options: MetricsOptions) -> Arc<Self> {
        let cap = options.max_series_per_family.max(1);
        let replies = CappedFamily::new("mta_smtp_replies_total", cap);
        let reject_warnings = CappedFamily::new("mta_smtp_reject_warnings_total", cap);
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        let lines = Family::<LineLabels, Counter>::default();
        let bytes = Family::<SourceLabels, Counter>::default();
        let overflow = Family::<FamilyLabels, Counter>::default();
        let reply_info = Family::<ReplyInfoLabels, Gauge>::default();
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info.get_or_create(&BuildLabels { version: env!("CARGO_PKG_VERSION") }).set(1);
        for family in [replies.name, reject_warnings.name] {
            overflow.get_or_create_owned(&FamilyLabels { family });
        }

        let mut registry = Registry::default();
        registry.register(
            "mta_smtp_replies",
            "SMTP replies found in the logs, by MTA, direction, SMTP phase, class, basic and enhanced code, category and cause",
            replies.family.clone(),
        );
        registry.register(
            "mta_smtp_reject_warnings",
            "Rejections that were only logged, not sent (Postfix reject_warning / warn_if_reject)",
            reject_warnings.family.clone(),
        );
        registry.register(
            "mta_deliveries",
            "Delivery outcomes: sent, deferred, bounced, expired; rejected for inbound rejections; deliverable/undeliverable for address-verification probes",
            deliveries.clone(),
        );
        registry.register("mta_log_lines", "Log lines read, by source and how they were understood", lines.clone());
        registry.register("mta_log_bytes", "Log bytes read, by source", bytes.clone());
        registry.register(
            "mta_metrics_overflow",
            "Counts that went to a folded 'other' series because their family reached its series cap",
            overflow.clone(),
        );
        registry.register(
            "mta_smtp_reply_info",
            "What each SMTP reply code pair seen means (from the built-in catalogue); always 1",
            reply_info.clone(),
        );
        registry.register("mta_exporter_build_info", "Build information; always 1", build_info);
        let reloads = Family::<ReloadLabels, Counter>::default();
        let reload_ok = Family::<ConfigFileLabels, Gauge>::default();
        registry.register(
            "mta_exporter_config_reloads",
            "Reloads of a configuration file while running, by file (config, web_config) and result (success, failure)",
            reloads.clone(),
        );
        registry.register(
            "mta_exporter_config_last_reload_successful",
            "1 if the last reload of the file succeeded (or none was tried), 0 if the exporter runs on an older version of it",
            reload_ok.clone(),
        );
        let sources = source::SourceFamilies::default();
        sources.register(&mut registry);
        let service_overflow = overflow.get_or_create_owned(&FamilyLabels { family: "service" });
        let activity = Arc::new(activity::ActivityFamilies::new(&mut registry, service_overflow));
        let queues = crate::queue::Queues::new(&mut registry);
        registry.register_collector(Box::new(process::ProcessCollector));

        Arc::new(Metrics {
            registry,
            replies,
            reject_warnings,
            deliveries,
            lines,
            bytes,
            overflow,
            sources,
            reply_info,
            reply_info_seen: Mutex::new(HashSet::new()),
            reloads,
            reload_ok,
            activity,
            queues,
        })
    }

    /// The mail queues read at scrape time.
    pub fn queues(&self) -> &crate::queue::Queues {
        &self.queues
    }

    /// The health handles of one source (rotations, errors, lag …); its
    /// series exist (at zero) from now on.
    pub fn source_handles(&self, source: &str) -> SourceHandles {
        self.sources.handles(source)
    }

    /// The syslog listener's drop and connection handles for one source.
    pub fn syslog_handles(&self, source: &str) -> SyslogHandles {
        self.sources.syslog_handles(source)
    }

    /// Removes the gauges of a source that is no longer configured; its
    /// counters stay so that rates never see a reset.
    pub fn forget_source(&self, source: &str) {
        self.sources.forget(source);
    }

    /// The registry, for encoding a scrape.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Prometheus text format 0.0.4.
    pub fn encode_text(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }

    /// Makes the reload series of a file in use exist (at zero, successful).
    pub fn track_config_file(&self, file: ConfigFile) {
        for result in ["success", "failure"] {
            self.reloads.get_or_create_owned(&ReloadLabels { file: file.label(), result });
        }
        self.reload_ok.get_or_create_owned(&ConfigFileLabels { file: file.label() }).set(1);
    }

    /// Counts one reload of `file`.
    pub fn record_reload(&self, file: ConfigFile, ok: bool) {
        let result = if ok { "success" } else { "failure" };
        self.reloads.get_or_create_owned(&ReloadLabels { file: file.label(), result }).inc();
        self.reload_ok.get_or_create_owned(&ConfigFileLabels { file: file.label() }).set(i64::from(ok));
    }

    /// A new `limits.max_series_per_family`. Series that exist stay; the
    /// cap decides only for label sets seen for the first time from now on.
    pub fn set_max_series_per_family(&self, cap: usize) {
        let cap = cap.max(1);
        self.replies.cap.store(cap, Ordering::Relaxed);
        self.reject_warnings.cap.store(cap, Ordering::Relaxed);
    }

    /// A recorder for one source. Its line counters exist (at zero) from now on.
    pub fn recorder(self: &Arc<Self>, source: &str) -> Recorder {
        let source: Arc<str> = Arc::from(source);
        let lines = LineResult::ALL.map(|result| {
            self.lines.get_or_create_owned(&LineLabels { source: source.clone(), result: result.label() })
        });
        let bytes = self.bytes.get_or_create_owned(&SourceLabels { source: source.clone() });
        Recorder {
            metrics: Arc::clone(self),
            lines,
            bytes,
            replies: FxHashMap::default(),
            warnings: FxHashMap::default(),
            deliveries: Default::default(),
            activity: activity::ActivityRecorder::new(Arc::clone(&self.activity)),
        }
    }

    fn overflow_counter(&self, family: &'static str) -> Counter {
        self.overflow.get_or_create_owned(&FamilyLabels { family })
    }

    /// Creates the `mta_smtp_reply_info` series of a code pair, once. Called
    /// only when a reply series is created, never per line.
    fn note_reply_info(&self, code: Option<ReplyCode>, enhanced: Option<EnhancedStatus>) {
        let mut seen = self.reply_info_seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= self.replies.cap.load(Ordering::Relaxed) || !seen.insert((code, enhanced)) {
            return;
        }
        let labels = ReplyInfoLabels {
            code: code.map_or_else(|| NONE.to_owned(), |c| c.to_string()),
            enhanced: enhanced.map_or_else(|| NONE.to_owned(), |e| e.to_string()),
            meaning: catalogue().meaning(code, enhanced),
        };
        self.reply_info.get_or_create(&labels).set(1);
    }
}

/// A handle cache for one source, owned by the thread that reads it.
#[derive(Debug)]
pub struct Recorder {
    metrics: Arc<Metrics>,
    lines: [Counter; 4],
    bytes: Counter,
    /// Handles of the series this source counted into, never of folded
    /// ones: so this holds at most the family's cap.
    replies: FxHashMap<ReplyKey, Counter>,
    warnings: FxHashMap<WarningKey, Counter>,
    /// Per MTA and status, resolved on first use.
    deliveries: [[Option<Counter>; DeliveryStatus::ALL.len()]; Mta::ALL.len()],
    activity: activity::ActivityRecorder,
}

impl Recorder {
    pub fn add_bytes(&self, n: u64) {
        self.bytes.inc_by(n);
    }

    /// Counts one parsed line; `classification` is the reply's, if it has one.
    /// Returns how the line was counted.
    pub fn record(&mut self, line: &Line<'_>, classification: Option<Classification>) -> LineResult {
        if let Line::Mta(record) = line {
            self.record_mta(record, classification);
        }
        let result = LineResult::of(line, classification);
        self.lines[result.index()].inc();
        result
    }

    fn record_mta(&mut self, record: &Record<'_>, classification: Option<Classification>) {
        // A Sendmail line that lists several recipients counts once per recipient.
        let times = u64::from(record.recipients.max(1));
        if let Some(status) = record.delivery {
            self.delivery(record.mta, status).inc_by(times);
        }
        if !record.facts.is_empty() {
            self.activity.record(record.mta, record.delivery, &record.facts, times);
        }
        let (Some(reply), Some(c)) = (record.reply, classification) else {
            return;
        };
        if record.warning_only {
            let key = WarningKey { mta: record.mta, phase: reply.phase, class: c.class, cause: c.cause };
            if let Some(counter) = self.warnings.get(&key) {
                counter.inc_by(times);
                return;
            }
            let metrics = &self.metrics;
            let (counter, folded) = metrics.reject_warnings.resolve(key, || key.labels(), || key.folded());
            counter.inc_by(times);
            if folded {
                metrics.overflow_counter(metrics.reject_warnings.name).inc_by(times);
            } else {
                self.warnings.insert(key, counter);
            }
            return;
        }
        let key = ReplyKey {
            mta: record.mta,
            direction: reply.direction,
            phase: reply.phase,
            code: reply.code,
            enhanced: reply.enhanced,
            class: c.class,
            category: c.category,
            cause: c.cause,
        };
        if let Some(counter) = self.replies.get(&key) {
            counter.inc_by(times);
            return;
        }
        let metrics = &self.metrics;
        let (counter, folded) = metrics.replies.resolve(key, || key.labels(), || key.folded());
        counter.inc_by(times);
        if folded {
            // Not remembered per key: the keys a sender can make up are
            // many (every code × enhanced code × phase …), and the handle
            // cache must stay as small as the family it caches.
            metrics.overflow_counter(metrics.replies.name).inc_by(times);
        } else {
            metrics.note_reply_info(key.code, key.enhanced);
            self.replies.insert(key, counter);
        }
    }

    fn delivery(&mut self, mta: Mta, status: DeliveryStatus) -> &Counter {
        let metrics = &self.metrics;
        self.deliveries[mta.index()][status.index()].get_or_insert_with(|| {
            metrics.deliveries.get_or_create_owned(&DeliveryLabels { mta: mta.label(), status: status.label() })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Classifier;
    use crate::parse::parse_line;

    fn feed(metrics: &Arc<Metrics>, lines: &[&str]) -> Vec<LineResult> {
        let classifier = Classifier::with_default_rules();
        let mut recorder = metrics.recorder("test");
        lines
            .iter()
            .map(|text| {
                let line = parse_line(text);
                let classification = match &line {
                    Line::Mta(Record { reply: Some(reply), .. }) => Some(classifier.classify(reply)),
                    _ => None,
                };
                recorder.record(&line, classification)
            })
            .collect()
    }

    fn sample_lines(text: &str, prefix: &str) -> Vec<String> {
        let mut out: Vec<String> = text.lines().filter(|l| l.starts_with(prefix)).map(str::to_owned).collect();
        out.sort();
        out
    }

    #[test]
    fn the_handle_cache_stays_within_the_cap_under_a_flood() {
        // A flood of distinct codes: before, every folded key got its own
        // cache entry, so a source's memory grew with what senders made up.
        let metrics = Metrics::new(MetricsOptions { max_series_per_family: 10 });
        let classifier = Classifier::with_default_rules();
        let mut recorder = metrics.recorder("test");
        for detail in 0..5000 {
            let text = format!("Nov  8 17:35:02 mx1 postfix/smtpd[2]: NOQUEUE: reject: RCPT from a[1.2.3.4]: 550 5.1.{detail} no; from=<a@b> to=<c@d> proto=ESMTP helo=<x>");
            let warning = text.replace("reject:", "reject_warning:");
            for text in [text, warning] {
                let line = parse_line(&text);
                let Line::Mta(Record { reply: Some(reply), .. }) = &line else { panic!("{text}") };
                recorder.record(&line, Some(classifier.classify(reply)));
            }
        }
        assert_eq!(recorder.replies.len(), 10);
        assert!(recorder.warnings.len() <= 10);
        let text = metrics.encode_text();
        assert!(text.contains("mta_metrics_overflow_total{family=\"mta_smtp_replies_total\"} 4990\n"), "{text}");
    }

    #[test]
    fn a_reply_lands_in_exactly_one_series() {
        let metrics = Metrics::new(MetricsOptions::default());
        let results = feed(&metrics, &[
            "Nov  8 17:35:01 mx1 postfix/smtp[1]: ABC123: to=<u@gmail.com>, relay=g[1.2.3.4]:25, delay=1, delays=1/0/0/0, dsn=5.1.1, status=bounced (host g[1.2.3.4] said: 550-5.1.1 no such user 550 5.1.1 x (in reply to RCPT TO command))",
            "Nov  8 17:35:02 mx1 postfix/smtpd[2]: NOQUEUE: reject_warning: RCPT from a[1.2.3.4]: 450 4.7.1 Client host rejected: cannot find your reverse hostname, [1.2.3.4]; from=<a@b> to=<c@d> proto=ESMTP helo=<x>",
            "Nov  8 17:35:03 mx1 dovecot: imap-login: Login",
            "Nov  8 17:35:04 mx1 postfix/qmgr[3]: ABC123: removed",
            "not a log line",
        ]);
        assert_eq!(
            results,
            [
                LineResult::Reply,
                LineResult::Recognized,
                LineResult::Ignored,
                LineResult::Recognized,
                LineResult::Unrecognized
            ]
        );
        let text = metrics.encode_text();
        assert_eq!(
            sample_lines(&text, "mta_smtp_replies_total{"),
            ["mta_smtp_replies_total{mta=\"postfix\",direction=\"outbound\",phase=\"rcpt\",class=\"5xx\",code=\"550\",enhanced=\"5.1.1\",category=\"addressing\",cause=\"user_unknown\"} 1"]
        );
        assert_eq!(
            sample_lines(&text, "mta_smtp_reject_warnings_total{"),
            ["mta_smtp_reject_warnings_total{mta=\"postfix\",phase=\"rcpt\",class=\"4xx\",cause=\"reverse_dns\"} 1"]
        );
        assert_eq!(
            sample_lines(&text, "mta_deliveries_total{"),
            ["mta_deliveries_total{mta=\"postfix\",status=\"bounced\"} 1"]
        );
        assert_eq!(
            sample_lines(&text, "mta_log_lines_total{"),
            [
                "mta_log_lines_total{source=\"test\",result=\"ignored\"} 1",
                "mta_log_lines_total{source=\"test\",result=\"recognized\"} 2",
                "mta_log_lines_total{source=\"test\",result=\"reply\"} 1",
                "mta_log_lines_total{source=\"test\",result=\"unrecognized\"} 1",
            ]
        );
        assert!(text.contains("mta_exporter_build_info{version=\""));
        assert_eq!(
            sample_lines(&text, "mta_smtp_reply_info{"),
            ["mta_smtp_reply_info{code=\"550\",enhanced=\"5.1.1\",meaning=\"Bad destination mailbox address\"} 1"]
        );
    }

    #[test]
    fn the_series_cap_folds_into_other_and_counts_it() {
        let metrics = Metrics::new(MetricsOptions { max_series_per_family: 2 });
        let line = |code: &str| {
            format!("Nov  8 17:35:01 mx1 postfix/smtpd[2]: NOQUEUE: reject: RCPT from a[1.2.3.4]: {code} Nope; from=<a@b> to=<c@d> proto=ESMTP helo=<x>")
        };
        let lines: Vec<String> = ["550 5.1.1", "551 5.1.1", "552 5.1.1", "553 5.1.1", "550 5.1.1"].map(line).to_vec();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        feed(&metrics, &refs);
        let text = metrics.encode_text();
        let replies = sample_lines(&text, "mta_smtp_replies_total{");
        assert_eq!(replies.len(), 3, "{replies:#?}");
        assert!(replies.iter().any(|s| s.contains("code=\"550\"") && s.ends_with(" 2")));
        assert!(replies
            .iter()
            .any(|s| s.contains("code=\"other\"") && s.contains("class=\"5xx\"") && s.ends_with(" 2")));
        assert!(text.contains("mta_metrics_overflow_total{family=\"mta_smtp_replies_total\"} 2"));
        // One info series per code pair of an unfolded reply series.
        assert_eq!(
            sample_lines(&text, "mta_smtp_reply_info{"),
            [
                "mta_smtp_reply_info{code=\"550\",enhanced=\"5.1.1\",meaning=\"Bad destination mailbox address\"} 1",
                "mta_smtp_reply_info{code=\"551\",enhanced=\"5.1.1\",meaning=\"Bad destination mailbox address\"} 1",
            ]
        );
    }

    #[test]
    fn reply_info_once_per_code_pair_with_uncatalogued_codes() {
        let metrics = Metrics::new(MetricsOptions::default());
        let line = |source: &str, code: &str| {
            format!("Nov  8 17:35:01 mx1 postfix/smtpd[2]: NOQUEUE: reject: RCPT from {source}[1.2.3.4]: {code} Nope; from=<a@b> to=<c@d> proto=ESMTP helo=<x>")
        };
        let lines = [line("a", "550 5.7.1"), line("b", "550 5.7.1"), line("a", "599 5.7.999"), line("a", "421")];
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        feed(&metrics, &refs);
        // Two sources' recorders meet the same pair: still one series.
        feed(&metrics, &refs[..1]);
        assert_eq!(
            sample_lines(&metrics.encode_text(), "mta_smtp_reply_info{"),
            [
                "mta_smtp_reply_info{code=\"421\",enhanced=\"none\",meaning=\"Service not available; closing the connection\"} 1",
                "mta_smtp_reply_info{code=\"550\",enhanced=\"5.7.1\",meaning=\"Delivery not authorized, message refused\"} 1",
                "mta_smtp_reply_info{code=\"599\",enhanced=\"5.7.999\",meaning=\"uncatalogued\"} 1",
            ]
        );
    }
}
