//! The YAML configuration file (`--config.file`) and its defaults.
//!
//! Every setting has a default, so the exporter runs with flags alone; the
//! file only adds sources, cause rules and limits. Unknown keys are errors,
//! so a typo is reported instead of silently ignored.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::classify::causes::{CauseRules, RuleError, RuleSpec};
use crate::decode::Format;
use crate::framing::DEFAULT_MAX_LINE;
use crate::metrics::DEFAULT_MAX_SERIES;
use crate::parse::generic::ParserError;
use crate::parse::{MtaSelection, OtherParsers, ParsersSpec};
use crate::source::watch::WatchMode;
use crate::source::FollowOptions;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Log sources; the `--log.path` flags add to these.
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub follow: Follow,
    #[serde(default)]
    pub causes: Causes,
    /// Parsers for programs no built-in parser knows.
    #[serde(default)]
    pub parsers: ParsersSpec,
    /// Mail queues to read at scrape time.
    #[serde(default)]
    pub queues: crate::queue::QueuesConfig,
}

/// One source: exactly one of `path`, `command` or `syslog`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// A file, a glob (`/var/log/containers/*postfix*.log`), a named pipe,
    /// or `-` for standard input.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// A program and its arguments whose standard output is the log
    /// (`[journalctl, -o, json, --follow]`); restarted when it exits.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// A syslog listener (UDP and TCP).
    #[serde(default)]
    pub syslog: Option<SyslogConfig>,
    /// The `source` label; defaults to the path, the program, or `syslog`.
    #[serde(default)]
    pub name: Option<String>,
    /// Read the file from its beginning instead of its end at start.
    #[serde(default)]
    pub from_beginning: Option<bool>,
    /// The line format: `auto` (detected per line), `plain`, `cri`,
    /// `docker`, `journald-json`.
    #[serde(default)]
    pub format: Format,
    /// The MTA that wrote the lines: `auto` (from the syslog program name or
    /// the line format), `postfix`, `exim`, `sendmail`, `opensmtpd`.
    #[serde(default)]
    pub mta: MtaSelection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// `HOST:PORT`; `:514` is every interface.
    pub listen_address: String,
    #[serde(default = "yes")]
    pub udp: bool,
    #[serde(default = "yes")]
    pub tcp: bool,
    /// TCP connections served at once; more are closed and counted.
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// Longer messages are cut (and still parsed). Default: `limits.max_line_bytes`.
    #[serde(default)]
    pub max_message_bytes: Option<usize>,
    /// Bytes of messages waiting to be parsed, at most.
    #[serde(default)]
    pub queue_bytes: Option<usize>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Series per metric family before new label sets fold into `other`.
    pub max_series_per_family: usize,
    /// Longer lines are cut to this many bytes (and still parsed).
    pub max_line_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_series_per_family: DEFAULT_MAX_SERIES, max_line_bytes: DEFAULT_MAX_LINE }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Follow {
    /// How often a followed file is checked when no file event arrives (and
    /// how often globs are expanded again).
    #[serde(deserialize_with = "duration")]
    pub poll_interval: Duration,
    /// `auto` (inotify, polling on network filesystems), `inotify` or `poll`.
    pub watch: WatchMode,
    /// How long a rotated file is still read after it stopped growing.
    #[serde(deserialize_with = "duration")]
    pub rotate_wait: Duration,
    /// Where to keep each file's read position across restarts.
    pub positions_file: Option<PathBuf>,
    #[serde(deserialize_with = "duration")]
    pub positions_interval: Duration,
}

impl Default for Follow {
    fn default() -> Self {
        let defaults = FollowOptions::default();
        Follow {
            poll_interval: defaults.poll_interval,
            watch: defaults.watch,
            rotate_wait: defaults.rotate_wait,
            positions_file: None,
            positions_interval: defaults.positions_interval,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Causes {
    /// Rules tried before the built-in ones (same format as `config/causes.yaml`).
    pub rules: Vec<RuleSpec>,
    /// Use only `rules`, not the built-in table.
    pub replace_defaults: bool,
}

pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text)
        .map_err(|e| serde::de::Error::custom(format!("{text:?} is not a duration like 500ms, 1s or 2m: {e}")))
}

/// serde-saphyr appends a source snippet; our errors are one line (the
/// first line already names the line, column and problem).
fn first_line(message: &str) -> String {
    let first = message.lines().next().unwrap_or(message);
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is not valid: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("config file {path}: {source}")]
    Rules { path: PathBuf, source: RuleError },
    #[error("config file {path}: {source}")]
    Parsers { path: PathBuf, source: ParserError },
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        let config = Config::parse(&text).map_err(|message| ConfigError::Invalid { path: path.into(), message })?;
        config.cause_rules().map_err(|source| ConfigError::Rules { path: path.into(), source })?;
        config.other_parsers().map_err(|source| ConfigError::Parsers { path: path.into(), source })?;
        Ok(config)
    }

    pub fn parse(text: &str) -> Result<Config, String> {
        // An empty file is a valid, all-defaults config.
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let config: Config = serde_saphyr::from_str(text).map_err(|e| first_line(&e.to_string()))?;
        if config.limits.max_series_per_family == 0 {
            return Err("limits.max_series_per_family must be at least 1".into());
        }
        if config.limits.max_line_bytes < 256 {
            return Err("limits.max_line_bytes must be at least 256".into());
        }
        if config.follow.poll_interval < Duration::from_millis(10) {
            return Err("follow.poll_interval must be at least 10ms".into());
        }
        if config.follow.positions_interval < Duration::from_millis(100) {
            return Err("follow.positions_interval must be at least 100ms".into());
        }
        for (i, source) in config.sources.iter().enumerate() {
            let kinds = [source.path.is_some(), source.command.is_some(), source.syslog.is_some()];
            if kinds.iter().filter(|k| **k).count() != 1 {
                return Err(format!("sources[{i}] must have exactly one of path, command or syslog"));
            }
            if source.command.as_ref().is_some_and(|c| c.is_empty() || c[0].is_empty()) {
                return Err(format!("sources[{i}].command must name a program (a list: [program, arg, …])"));
            }
            if let Some(syslog) = &source.syslog {
                if !syslog.udp && !syslog.tcp {
                    return Err(format!("sources[{i}].syslog must have udp or tcp (or both)"));
                }
                if syslog.max_message_bytes.is_some_and(|m| m < 256) {
                    return Err(format!("sources[{i}].syslog.max_message_bytes must be at least 256"));
                }
                if syslog.max_connections == Some(0) {
                    return Err(format!("sources[{i}].syslog.max_connections must be at least 1"));
                }
            }
        }
        Ok(config)
    }

    /// The compiled `parsers:` section.
    pub fn other_parsers(&self) -> Result<OtherParsers, ParserError> {
        OtherParsers::compile(&self.parsers)
    }

    /// The configured rules followed by the built-in ones (unless replaced).
    pub fn cause_rules(&self) -> Result<CauseRules, RuleError> {
        if self.causes.rules.is_empty() && !self.causes.replace_defaults {
            return Ok(CauseRules::defaults());
        }
        let mut specs = self.causes.rules.clone();
        if !self.causes.replace_defaults {
            specs.extend(CauseRules::default_specs());
        }
        CauseRules::compile(&specs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_a_file() {
        let config = Config::parse("").expect("empty is fine");
        assert_eq!(config.limits.max_series_per_family, DEFAULT_MAX_SERIES);
        assert_eq!(config.limits.max_line_bytes, DEFAULT_MAX_LINE);
        assert_eq!(config.follow.poll_interval, Duration::from_secs(1));
        assert_eq!(config.follow.watch, WatchMode::Auto);
        assert_eq!(config.follow.rotate_wait, Duration::from_secs(5));
        assert_eq!(config.follow.positions_file, None);
    }

    #[test]
    fn every_kind_of_source() {
        let config = Config::parse(
            "sources:\n  - path: /var/log/containers/*postfix*.log\n  - path: '-'\n  - command: [journalctl, -o, json, --follow]\n    name: journal\n  - syslog:\n      listen_address: ':514'\n      tcp: false\n      max_message_bytes: 8192\nfollow:\n  watch: poll\n  rotate_wait: 10s\n  positions_file: /var/lib/mta_exporter/positions.yaml\n  positions_interval: 5s\n",
        )
        .expect("valid");
        assert_eq!(config.sources.len(), 4);
        assert_eq!(
            config.sources[2].command.as_deref(),
            Some(&["journalctl".to_string(), "-o".into(), "json".into(), "--follow".into()][..])
        );
        let syslog = config.sources[3].syslog.as_ref().expect("syslog");
        assert!(syslog.udp && !syslog.tcp);
        assert_eq!(syslog.max_message_bytes, Some(8192));
        assert_eq!(config.follow.watch, WatchMode::Poll);
        assert_eq!(config.follow.positions_interval, Duration::from_secs(5));
        let err = Config::parse("sources:\n  - path: /a\n    command: [b]\n").unwrap_err();
        assert!(err.contains("exactly one of"), "{err}");
        let err = Config::parse("sources:\n  - command: []\n").unwrap_err();
        assert!(err.contains("must name a program"), "{err}");
        let err = Config::parse("follow:\n  watch: fanotify\n").unwrap_err();
        assert!(err.contains("fanotify"), "{err}");
    }

    #[test]
    fn a_full_file() {
        let config = Config::parse(
            "sources:\n  - path: /var/log/mail.log\n    name: mail\n    from_beginning: true\nlimits:\n  max_series_per_family: 500\nfollow:\n  poll_interval: 250ms\ncauses:\n  rules:\n    - cause: our_filter\n      text: 'rejected by ourfilter'\n",
        )
        .expect("valid");
        assert_eq!(config.sources[0].name.as_deref(), Some("mail"));
        assert_eq!(config.limits.max_series_per_family, 500);
        assert_eq!(config.follow.poll_interval, Duration::from_millis(250));
        let rules = config.cause_rules().expect("rules");
        assert!(rules.causes().iter().any(|c| c.as_str() == "our_filter"));
        assert!(rules.causes().iter().any(|c| c.as_str() == "user_unknown"));
    }

    #[test]
    fn sources_name_their_format_and_mta() {
        let config = Config::parse(
            "sources:\n  - path: /var/log/containers/mx.log\n    format: cri\n    mta: exim\n  - path: /var/log/mail.log\nparsers:\n  generic: true\n  custom:\n    - name: qmail\n      program: qmail\n      regex: 'qmail-smtpd: (?P<code>[245]\\d\\d) (?P<text>.*)'\n",
        )
        .expect("valid");
        assert_eq!(config.sources[0].format, Format::Cri);
        assert_eq!(config.sources[0].mta, MtaSelection::Exim);
        assert_eq!(config.sources[1].format, Format::Auto);
        assert_eq!(config.sources[1].mta, MtaSelection::Auto);
        assert!(config.other_parsers().expect("compiles").is_active());
        let err = Config::parse("sources:\n  - path: x\n    format: json\n").unwrap_err();
        assert!(err.contains("json"), "{err}");
        let err = Config::parse("sources:\n  - path: x\n    mta: qmail\n").unwrap_err();
        assert!(err.contains("qmail"), "{err}");
        let config = Config::parse("parsers:\n  custom:\n    - name: bad\n      regex: '(?P<code>'\n").expect("parses");
        assert!(config.other_parsers().unwrap_err().to_string().contains("bad"));
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let config = Config::parse(include_str!("../config/example.yaml")).expect("config/example.yaml parses");
        config.cause_rules().expect("its rules compile");
        let others = config.other_parsers().expect("its parsers compile");
        assert_eq!(config.sources.len(), 1);
        // The custom parser of the example (and of README's "Other MTAs").
        let mut parser = crate::parse::LineParser::new(MtaSelection::Auto, std::sync::Arc::new(others));
        let line = "Apr 10 03:47:57 web courieresmtpd: error,relay=::ffff:1.2.3.4,from=<a@b.example>,to=<c@d.example>: 550 User unknown.";
        let crate::parse::Line::Mta(record) = parser.parse(line) else { panic!("not counted: {line}") };
        let reply = record.reply.expect("a reply");
        assert_eq!(record.mta, crate::model::Mta::Other);
        assert_eq!((reply.code.map(|c| c.value()), reply.enhanced, reply.text), (Some(550), None, "User unknown."));
        assert_eq!(reply.direction, crate::model::Direction::Inbound);
    }

    #[test]
    fn mistakes_are_named() {
        let err = Config::parse("sourcez: []\n").unwrap_err();
        assert!(err.contains("sourcez"), "{err}");
        let err = Config::parse("follow:\n  poll_interval: soon\n").unwrap_err();
        assert!(err.contains("soon"), "{err}");
        let err = Config::parse("limits:\n  max_series_per_family: 0\n").unwrap_err();
        assert!(err.contains("max_series_per_family"), "{err}");
        let config = Config::parse("causes:\n  rules:\n    - cause: x\n      code: ['5']\n").expect("parses");
        assert!(config.cause_rules().is_err());
    }
}
