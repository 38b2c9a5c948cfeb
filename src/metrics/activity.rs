//! The families fed by a line's [`Facts`]: delivery delays, messages
//! received with their sizes and recipient counts, notifications, inbound
//! sessions, TLS, authentication failures, postscreen and filter actions.
//!
//! Every label value comes from a fixed enum except `service`, which is the
//! postmaster's name for a listener (a master.cf service, an Exim port, a
//! Sendmail daemon name). A shared log file could still carry any program
//! name, so services are admitted up to [`MAX_SERVICES`]; later ones fold
//! into `other` and are counted in `mta_metrics_overflow_total`.
//!
//! Histograms have fixed buckets. Delays span 0 (Postfix logs `delays=0/0/0/0`
//! for most local stages, so a `le="0"` bucket tells "no time at all" from
//! "under a millisecond") to 5 days (the default maximal queue lifetime).
//! Like every per-source handle, each label set is resolved once per
//! [`ActivityRecorder`] and cached, so a line costs a hash lookup and an
//! atomic add (a short uncontended lock for a histogram).

use std::collections::HashSet;

use rustc_hash::FxHashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::model::{DeliveryStatus, Direction, Mta, Phase};
use crate::parse::facts::{
    Action, AuthMethod, CipherClass, Facts, Filter, Notification, Postscreen, PostscreenTest, SessionError,
    SessionEvent, Stage, TlsProtocol, TlsTrust,
};

/// Upper bounds of the delay buckets, in seconds: 0, 1 ms … 5 days.
pub const DELAY_BUCKETS: [f64; 26] = [
    0.0, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
    3600.0, 7200.0, 14400.0, 28800.0, 86400.0, 172800.0, 432000.0,
];

/// Upper bounds of the message size buckets, in bytes: 1 KiB … 100 MiB.
pub const SIZE_BUCKETS: [f64; 11] =
    [1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 10485760.0, 26214400.0, 52428800.0, 104857600.0];

/// Upper bounds of the recipients-per-message buckets.
pub const RECIPIENT_BUCKETS: [f64; 10] = [1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0, 500.0, 1000.0];

/// Upper bounds of postscreen's DNSBL rank buckets.
pub const DNSBL_RANK_BUCKETS: [f64; 10] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0];

/// Distinct `(mta, service)` pairs admitted before new ones fold into `other`.
pub const MAX_SERVICES: usize = 64;

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The label set of a family without labels.
type NoLabels = [(&'static str, &'static str); 0];

fn rank_histogram() -> Histogram {
    Histogram::new(DNSBL_RANK_BUCKETS)
}

fn delay_histogram() -> Histogram {
    Histogram::new(DELAY_BUCKETS)
}

fn size_histogram() -> Histogram {
    Histogram::new(SIZE_BUCKETS)
}

fn recipient_histogram() -> Histogram {
    Histogram::new(RECIPIENT_BUCKETS)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MtaLabels {
    mta: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DelayLabels {
    mta: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    mta: &'static str,
    stage: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotificationLabels {
    mta: &'static str,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    mta: &'static str,
    service: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SessionErrorLabels {
    mta: &'static str,
    service: Arc<str>,
    error: &'static str,
    phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TlsLabels {
    mta: &'static str,
    direction: &'static str,
    protocol: &'static str,
    cipher: &'static str,
    trust: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    mta: &'static str,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuthLabels {
    mta: &'static str,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PostscreenResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PostscreenTestLabels {
    test: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FilterLabels {
    mta: &'static str,
    filter: &'static str,
    action: &'static str,
}

/// The families, registered once and shared by every recorder.
#[derive(Debug)]
pub(super) struct ActivityFamilies {
    delay: HistogramFamily<DelayLabels>,
    stage_delay: HistogramFamily<StageLabels>,
    received: Family<MtaLabels, Counter>,
    size: HistogramFamily<MtaLabels>,
    recipients: HistogramFamily<MtaLabels>,
    notifications: Family<NotificationLabels, Counter>,
    connections: Family<ServiceLabels, Counter>,
    disconnections: Family<ServiceLabels, Counter>,
    session_errors: Family<SessionErrorLabels, Counter>,
    tls: Family<TlsLabels, Counter>,
    tls_failures: Family<DirectionLabels, Counter>,
    auth_failures: Family<AuthLabels, Counter>,
    /// Label-less, and without a series until postscreen is seen (an
    /// Exim server has no postscreen).
    postscreen_connections: Family<NoLabels, Counter>,
    postscreen_results: Family<PostscreenResultLabels, Counter>,
    postscreen_violations: Family<PostscreenTestLabels, Counter>,
    postscreen_rank: HistogramFamily<NoLabels>,
    filter_actions: Family<FilterLabels, Counter>,
    /// Services admitted as label values, at most [`MAX_SERVICES`].
    services: Mutex<HashSet<(Mta, Arc<str>)>>,
    /// Counts folded into `service="other"`.
    service_overflow: Counter,
}

impl ActivityFamilies {
    pub(super) fn new(registry: &mut Registry, service_overflow: Counter) -> Self {
        let families = ActivityFamilies {
            delay: Family::new_with_constructor(delay_histogram),
            stage_delay: Family::new_with_constructor(delay_histogram),
            received: Family::default(),
            size: Family::new_with_constructor(size_histogram),
            recipients: Family::new_with_constructor(recipient_histogram),
            notifications: Family::default(),
            connections: Family::default(),
            disconnections: Family::default(),
            session_errors: Family::default(),
            tls: Family::default(),
            tls_failures: Family::default(),
            auth_failures: Family::default(),
            postscreen_connections: Family::default(),
            postscreen_results: Family::default(),
            postscreen_violations: Family::default(),
            postscreen_rank: Family::new_with_constructor(rank_histogram),
            filter_actions: Family::default(),
            services: Mutex::new(HashSet::new()),
            service_overflow,
        };
        let r = registry;
        r.register(
            "mta_delivery_delay_seconds",
            "Time from a message's arrival to a delivery attempt, by outcome (Postfix delay=, Exim QT=, Sendmail delay=, OpenSMTPD delay=)",
            families.delay.clone(),
        );
        r.register(
            "mta_delivery_stage_delay_seconds",
            "Delivery delay by stage: Postfix delays=a/b/c/d (before_queue_manager, queue_manager, connection_setup, transmission); one delivery attempt (attempt: Exim DT=, Sendmail xdelay=)",
            families.stage_delay.clone(),
        );
        r.register(
            "mta_messages_received",
            "Messages that entered the queue, notifications the MTA generated included",
            families.received.clone(),
        );
        r.register("mta_message_size_bytes", "Size of messages entering the queue", families.size.clone());
        r.register(
            "mta_message_recipients",
            "Envelope recipients per message entering the queue",
            families.recipients.clone(),
        );
        r.register(
            "mta_notifications",
            "Delivery status notifications the MTA generated: non_delivery (bounces), delay (warnings), delivery (success)",
            families.notifications.clone(),
        );
        r.register(
            "mta_smtp_connections",
            "Inbound SMTP connections, by service (master.cf service, listening port or daemon name)",
            families.connections.clone(),
        );
        r.register(
            "mta_smtp_disconnections",
            "Inbound SMTP sessions that ended, normally or not",
            families.disconnections.clone(),
        );
        r.register(
            "mta_smtp_session_errors",
            "Inbound SMTP sessions that failed: lost_connection, timeout, too_many_errors, after the command of phase",
            families.session_errors.clone(),
        );
        r.register(
            "mta_tls_connections",
            "TLS sessions established, by direction, protocol, cipher class and trust level of the peer's certificate",
            families.tls.clone(),
        );
        r.register("mta_tls_failures", "TLS handshakes that failed", families.tls_failures.clone());
        r.register(
            "mta_smtp_auth_failures",
            "Failed SMTP AUTH attempts of clients, by SASL mechanism (never by user)",
            families.auth_failures.clone(),
        );
        r.register(
            "mta_postscreen_connections",
            "Connections postscreen examined",
            families.postscreen_connections.clone(),
        );
        r.register(
            "mta_postscreen_results",
            "postscreen verdicts: pass_new, pass_old, allowlisted, denylisted",
            families.postscreen_results.clone(),
        );
        r.register(
            "mta_postscreen_violations",
            "postscreen protocol tests failed: pregreet, hangup, pipelining, non_smtp_command, bare_newline, command_limit",
            families.postscreen_violations.clone(),
        );
        r.register(
            "mta_postscreen_dnsbl_rank",
            "postscreen DNSBL score of clients that reached postscreen_dnsbl_threshold",
            families.postscreen_rank.clone(),
        );
        r.register(
            "mta_filter_actions",
            "Milter and content-filter verdicts: reject, tempfail, discard, hold, quarantine",
            families.filter_actions.clone(),
        );
        families
    }

    /// The label value for a service: the name itself while fewer than
    /// [`MAX_SERVICES`] are admitted, else `other`.
    fn admit(&self, mta: Mta, service: &str) -> (Arc<str>, bool) {
        let mut services = self.services.lock().unwrap_or_else(|e| e.into_inner());
        let key = (mta, Arc::<str>::from(service));
        if services.contains(&key) {
            return (key.1, false);
        }
        if services.len() < MAX_SERVICES {
            services.insert(key.clone());
            return (key.1, false);
        }
        (Arc::from(super::OTHER), true)
    }
}

/// Everything about one service's counters, resolved once.
#[derive(Debug)]
struct ServiceHandles {
    mta: Mta,
    name: Box<str>,
    label: Arc<str>,
    folded: bool,
}

/// One source's cached handles for the activity families. The maps hash
/// with FxHash, like the reply handle cache: the keys are a few small enums
/// (and a service index), and SipHash cost more than the counting.
#[derive(Debug)]
pub(super) struct ActivityRecorder {
    families: Arc<ActivityFamilies>,
    delay: FxHashMap<(Mta, DeliveryStatus), Histogram>,
    stage_delay: FxHashMap<(Mta, Stage), Histogram>,
    received: FxHashMap<Mta, Counter>,
    sizes: FxHashMap<Mta, Histogram>,
    recipients: FxHashMap<Mta, Histogram>,
    notifications: FxHashMap<(Mta, Notification), Counter>,
    /// Services seen by this recorder; a session key holds an index here.
    services: Vec<ServiceHandles>,
    connections: FxHashMap<(Mta, usize), Counter>,
    disconnections: FxHashMap<(Mta, usize), Counter>,
    session_errors: FxHashMap<(Mta, usize, SessionError, Phase), Counter>,
    tls: FxHashMap<(Mta, Direction, TlsProtocol, CipherClass, TlsTrust), Counter>,
    tls_failures: FxHashMap<(Mta, Direction), Counter>,
    auth_failures: FxHashMap<(Mta, AuthMethod), Counter>,
    postscreen_results: FxHashMap<Postscreen, Counter>,
    postscreen_violations: FxHashMap<PostscreenTest, Counter>,
    filter_actions: FxHashMap<(Mta, Filter, Action), Counter>,
}

/// The cached handle for `key`, resolved from `family` the first time.
fn cached<K: Hash + Eq, M: Clone>(map: &mut FxHashMap<K, M>, key: K, resolve: impl FnOnce() -> M) -> &M {
    map.entry(key).or_insert_with(resolve)
}

impl ActivityRecorder {
    pub(super) fn new(families: Arc<ActivityFamilies>) -> Self {
        ActivityRecorder {
            families,
            delay: FxHashMap::default(),
            stage_delay: FxHashMap::default(),
            received: FxHashMap::default(),
            sizes: FxHashMap::default(),
            recipients: FxHashMap::default(),
            notifications: FxHashMap::default(),
            services: Vec::new(),
            connections: FxHashMap::default(),
            disconnections: FxHashMap::default(),
            session_errors: FxHashMap::default(),
            tls: FxHashMap::default(),
            tls_failures: FxHashMap::default(),
            auth_failures: FxHashMap::default(),
            postscreen_results: FxHashMap::default(),
            postscreen_violations: FxHashMap::default(),
            filter_actions: FxHashMap::default(),
        }
    }

    /// Counts what a line's facts say. `status` is the line's delivery
    /// outcome (the delay's label), `times` how many recipients the line
    /// stands for (Sendmail lists several).
    pub(super) fn record(&mut self, mta: Mta, status: Option<DeliveryStatus>, facts: &Facts<'_>, times: u64) {
        let f = &self.families;
        if let (Some(delay), Some(status)) = (facts.delay, status) {
            let h = cached(&mut self.delay, (mta, status), || {
                f.delay.get_or_create_owned(&DelayLabels { mta: mta.label(), status: status.label() })
            });
            for _ in 0..times {
                h.observe(delay.as_secs_f64());
            }
        }
        if let Some(stages) = facts.stages {
            for (stage, value) in Stage::POSTFIX.into_iter().zip(stages) {
                self.observe_stage(mta, stage, value.as_secs_f64(), times);
            }
        }
        if let Some(attempt) = facts.attempt {
            self.observe_stage(mta, Stage::Attempt, attempt.as_secs_f64(), times);
        }
        let f = &self.families;
        if let Some(received) = facts.received {
            let labels = || MtaLabels { mta: mta.label() };
            cached(&mut self.received, mta, || f.received.get_or_create_owned(&labels())).inc();
            if let Some(bytes) = received.size {
                cached(&mut self.sizes, mta, || f.size.get_or_create_owned(&labels())).observe(bytes as f64);
            }
            if let Some(n) = received.recipients {
                cached(&mut self.recipients, mta, || f.recipients.get_or_create_owned(&labels())).observe(f64::from(n));
            }
        }
        if let Some(kind) = facts.notification {
            cached(&mut self.notifications, (mta, kind), || {
                f.notifications.get_or_create_owned(&NotificationLabels { mta: mta.label(), kind: kind.label() })
            })
            .inc();
        }
        if let Some(session) = facts.session {
            self.session(mta, session.service, session.event);
        }
        let f = &self.families;
        if let Some(tls) = facts.tls {
            let key = (mta, tls.direction, tls.protocol, tls.cipher, tls.trust);
            cached(&mut self.tls, key, || {
                f.tls.get_or_create_owned(&TlsLabels {
                    mta: mta.label(),
                    direction: tls.direction.label(),
                    protocol: tls.protocol.label(),
                    cipher: tls.cipher.label(),
                    trust: tls.trust.label(),
                })
            })
            .inc_by(times);
        }
        if let Some(direction) = facts.tls_failure {
            cached(&mut self.tls_failures, (mta, direction), || {
                f.tls_failures.get_or_create_owned(&DirectionLabels { mta: mta.label(), direction: direction.label() })
            })
            .inc();
        }
        if let Some(method) = facts.auth_failure {
            cached(&mut self.auth_failures, (mta, method), || {
                f.auth_failures.get_or_create_owned(&AuthLabels { mta: mta.label(), method: method.label() })
            })
            .inc();
        }
        if let Some(event) = facts.postscreen {
            self.postscreen(event);
        }
        let f = &self.families;
        if let Some(action) = facts.filter {
            cached(&mut self.filter_actions, (mta, action.filter, action.action), || {
                f.filter_actions.get_or_create_owned(&FilterLabels {
                    mta: mta.label(),
                    filter: action.filter.label(),
                    action: action.action.label(),
                })
            })
            .inc_by(times);
        }
    }

    fn observe_stage(&mut self, mta: Mta, stage: Stage, seconds: f64, times: u64) {
        let f = &self.families;
        let h = cached(&mut self.stage_delay, (mta, stage), || {
            f.stage_delay.get_or_create_owned(&StageLabels { mta: mta.label(), stage: stage.label() })
        });
        for _ in 0..times {
            h.observe(seconds);
        }
    }

    /// The index of a service in this recorder's list, admitting it (or
    /// folding it) the first time.
    fn service(&mut self, mta: Mta, name: &str) -> usize {
        if let Some(i) = self.services.iter().position(|s| s.mta == mta && &*s.name == name) {
            return i;
        }
        let (label, folded) = self.families.admit(mta, name);
        self.services.push(ServiceHandles { mta, name: name.into(), label, folded });
        self.services.len() - 1
    }

    fn session(&mut self, mta: Mta, service: &str, event: SessionEvent) {
        let i = self.service(mta, service);
        let label = Arc::clone(&self.services[i].label);
        if self.services[i].folded {
            self.families.service_overflow.inc();
        }
        let f = &self.families;
        let labels = || ServiceLabels { mta: mta.label(), service: Arc::clone(&label) };
        match event {
            SessionEvent::Connect => {
                cached(&mut self.connections, (mta, i), || f.connections.get_or_create_owned(&labels())).inc();
            }
            SessionEvent::Disconnect => {
                cached(&mut self.disconnections, (mta, i), || f.disconnections.get_or_create_owned(&labels())).inc();
            }
            SessionEvent::Error { error, phase, disconnect } => {
                cached(&mut self.session_errors, (mta, i, error, phase), || {
                    f.session_errors.get_or_create_owned(&SessionErrorLabels {
                        mta: mta.label(),
                        service: Arc::clone(&label),
                        error: error.label(),
                        phase: phase.label(),
                    })
                })
                .inc();
                if disconnect {
                    cached(&mut self.disconnections, (mta, i), || f.disconnections.get_or_create_owned(&labels()))
                        .inc();
                }
            }
        }
    }

    fn postscreen(&mut self, event: Postscreen) {
        let f = &self.families;
        let result = match event {
            Postscreen::Connect => {
                f.postscreen_connections.get_or_create(&[]).inc();
                return;
            }
            Postscreen::DnsblRank(rank) => {
                f.postscreen_rank.get_or_create(&[]).observe(f64::from(rank));
                return;
            }
            Postscreen::Violation(test) => {
                cached(&mut self.postscreen_violations, test, || {
                    f.postscreen_violations.get_or_create_owned(&PostscreenTestLabels { test: test.label() })
                })
                .inc();
                return;
            }
            Postscreen::Pass { new: true } => "pass_new",
            Postscreen::Pass { new: false } => "pass_old",
            Postscreen::Allowlisted => "allowlisted",
            Postscreen::Denylisted => "denylisted",
        };
        cached(&mut self.postscreen_results, event, || {
            f.postscreen_results.get_or_create_owned(&PostscreenResultLabels { result })
        })
        .inc();
    }
}

#[cfg(test)]
mod tests {
    use crate::classify::Classifier;
    use crate::metrics::{Metrics, MetricsOptions, MAX_SERVICES};
    use crate::parse::{parse_line, Line, Record};

    fn feed(lines: &[String]) -> String {
        let metrics = Metrics::new(MetricsOptions::default());
        let classifier = Classifier::with_default_rules();
        let mut recorder = metrics.recorder("test");
        for text in lines {
            let line = parse_line(text);
            let classification = match &line {
                Line::Mta(Record { reply: Some(reply), .. }) => Some(classifier.classify(reply)),
                _ => None,
            };
            recorder.record(&line, classification);
        }
        metrics.encode_text()
    }

    fn samples(text: &str, prefix: &str) -> Vec<String> {
        let mut out: Vec<String> = text.lines().filter(|l| l.starts_with(prefix)).map(str::to_owned).collect();
        out.sort();
        out
    }

    #[test]
    fn postfix_stage_delays_have_their_stage_names() {
        let line = "Nov 28 19:10:00 mx1 postfix/smtp[1]: 8F404B69B2: to=<a@b.test>, relay=x[127.0.0.1]:2525, delay=2.5, delays=0.5/0/1.5/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok)".to_string();
        let text = feed(&[line.clone(), line]);
        let counts = samples(&text, "mta_delivery_stage_delay_seconds_count");
        assert_eq!(
            counts,
            [
                "mta_delivery_stage_delay_seconds_count{mta=\"postfix\",stage=\"before_queue_manager\"} 2",
                "mta_delivery_stage_delay_seconds_count{mta=\"postfix\",stage=\"connection_setup\"} 2",
                "mta_delivery_stage_delay_seconds_count{mta=\"postfix\",stage=\"queue_manager\"} 2",
                "mta_delivery_stage_delay_seconds_count{mta=\"postfix\",stage=\"transmission\"} 2",
            ]
        );
        // kumina's postfix_exporter files all four under stage="": ours never.
        assert!(!text.contains("stage=\"\""));
        assert_eq!(
            samples(&text, "mta_delivery_stage_delay_seconds_sum"),
            [
                "mta_delivery_stage_delay_seconds_sum{mta=\"postfix\",stage=\"before_queue_manager\"} 1.0",
                "mta_delivery_stage_delay_seconds_sum{mta=\"postfix\",stage=\"connection_setup\"} 3.0",
                "mta_delivery_stage_delay_seconds_sum{mta=\"postfix\",stage=\"queue_manager\"} 0.0",
                "mta_delivery_stage_delay_seconds_sum{mta=\"postfix\",stage=\"transmission\"} 1.0",
            ]
        );
        // A zero delay lands in le="0", below the 1 ms bucket.
        let qmgr = samples(&text, "mta_delivery_stage_delay_seconds_bucket{mta=\"postfix\",stage=\"queue_manager\"");
        assert!(
            qmgr.contains(
                &"mta_delivery_stage_delay_seconds_bucket{mta=\"postfix\",stage=\"queue_manager\",le=\"0\"} 2"
                    .to_string()
            ),
            "{qmgr:#?}"
        );
        assert_eq!(
            samples(&text, "mta_delivery_delay_seconds_count"),
            ["mta_delivery_delay_seconds_count{mta=\"postfix\",status=\"sent\"} 2"]
        );
    }

    #[test]
    fn count_equals_the_inf_bucket_and_buckets_span_1ms_to_5_days() {
        let delays = ["0", "0.001", "0.0015", "4", "86400", "432000", "432001"];
        let lines: Vec<String> = delays
            .iter()
            .map(|d| format!("Nov 28 19:10:00 mx1 postfix/smtp[1]: 8F404B69B2: to=<a@b.test>, relay=x[1.2.3.4]:25, delay={d}, delays=0/0/0/0, dsn=4.0.0, status=deferred (host x[1.2.3.4] said: 451 later (in reply to RCPT TO command))"))
            .collect();
        let text = feed(&lines);
        let buckets = samples(&text, "mta_delivery_delay_seconds_bucket{mta=\"postfix\",status=\"deferred\"");
        let bucket = |le: &str| {
            let want = format!("le=\"{le}\"}} ");
            buckets.iter().find(|b| b.contains(&want)).and_then(|b| b.rsplit(' ').next()).map(str::to_owned)
        };
        assert_eq!(buckets.len(), 27, "{buckets:#?}");
        assert_eq!(bucket("0").as_deref(), Some("1"));
        assert_eq!(bucket("0.001").as_deref(), Some("2"));
        assert_eq!(bucket("0.005").as_deref(), Some("3"));
        assert_eq!(bucket("86400").as_deref(), Some("5"));
        assert_eq!(bucket("432000").as_deref(), Some("6"));
        assert_eq!(bucket("+Inf").as_deref(), Some("7"));
        assert_eq!(
            samples(&text, "mta_delivery_delay_seconds_count"),
            ["mta_delivery_delay_seconds_count{mta=\"postfix\",status=\"deferred\"} 7"]
        );
    }

    #[test]
    fn services_beyond_the_cap_fold_into_other() {
        let lines: Vec<String> = (0..MAX_SERVICES + 3)
            .map(|i| format!("Nov 28 19:10:00 mx1 postfix/svc{i}/smtpd[1]: connect from x[1.2.3.4]"))
            .collect();
        let text = feed(&lines);
        let connections = samples(&text, "mta_smtp_connections_total{");
        assert_eq!(connections.len(), MAX_SERVICES + 1);
        assert!(connections.contains(&"mta_smtp_connections_total{mta=\"postfix\",service=\"other\"} 3".to_string()));
        assert!(text.contains("mta_metrics_overflow_total{family=\"service\"} 3"));
    }

    #[test]
    fn sendmail_lines_count_once_per_recipient() {
        let text = feed(&["Nov 28 19:56:14 vm sendmail[1]: 6ASJuEG1013969: to=<a@s.test>,<b@s.test>,<c@s.test>, delay=00:01:00, xdelay=00:00:02, mailer=esmtp, pri=1, relay=[127.0.0.1] [127.0.0.1], dsn=2.0.0, stat=Sent (ok)".to_string()]);
        assert_eq!(
            samples(&text, "mta_delivery_delay_seconds_count"),
            ["mta_delivery_delay_seconds_count{mta=\"sendmail\",status=\"sent\"} 3"]
        );
        assert_eq!(
            samples(&text, "mta_delivery_delay_seconds_sum"),
            ["mta_delivery_delay_seconds_sum{mta=\"sendmail\",status=\"sent\"} 180.0"]
        );
        assert_eq!(
            samples(&text, "mta_deliveries_total{"),
            ["mta_deliveries_total{mta=\"sendmail\",status=\"sent\"} 3"]
        );
    }
}
