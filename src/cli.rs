//! Command-line flags, in the style of the Prometheus exporters, and the
//! settings they resolve to together with the config file.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::config::{Config, SourceConfig};
use crate::decode::Format;
use crate::parse::MtaSelection;
use crate::queue::{PostfixMethod, QueueMta, SpoolConfig};
use crate::source::file::{StartAt, Target};
use crate::source::syslog::SyslogOptions;
use crate::source::{FollowOptions, SourceKind, SourceSpec};

/// The default port, registered for mta_exporter on the Prometheus wiki's
/// default port allocations page.
pub const DEFAULT_PORT: u16 = 10040;

/// Used when neither a flag nor the config file names a source.
pub const DEFAULT_LOG_PATH: &str = "/var/log/mail.log";

#[derive(Debug, Parser)]
#[command(
    name = "mta_exporter",
    version,
    about = "Prometheus exporter for mail servers: finds every SMTP reply code in Postfix, Exim, Sendmail and OpenSMTPD logs, classifies it, and serves the counts.",
    after_help = "Example: mta_exporter --log.path /var/log/mail.log\nThen: curl -s localhost:10040/metrics\n\nWithout a command the exporter runs; the commands do one job and exit.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// A one-shot command instead of running the exporter.
    #[command(subcommand)]
    pub command: Option<crate::commands::Command>,

    /// Address to listen on (repeatable). ":10040" means every interface.
    #[arg(long = "web.listen-address", value_name = "ADDR", default_value = ":10040")]
    pub listen_addresses: Vec<String>,

    /// Path under which to expose metrics.
    #[arg(long = "web.telemetry-path", value_name = "PATH", default_value = "/metrics")]
    pub telemetry_path: String,

    /// Web configuration file (TLS, basic auth, headers) in the Prometheus
    /// exporter-toolkit format. Changes are picked up while running.
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub web_config_file: Option<PathBuf>,

    /// Serve on the sockets systemd passes (socket activation) instead of
    /// --web.listen-address.
    #[arg(long = "web.systemd-socket")]
    pub systemd_socket: bool,

    /// Enable POST /-/reload (reloads --config.file, as SIGHUP does).
    #[arg(long = "web.enable-lifecycle")]
    pub enable_lifecycle: bool,

    /// A client must send its request headers (and finish the TLS
    /// handshake) within this time; an idle HTTP/1.1 keep-alive connection
    /// is closed after it too.
    #[arg(long = "web.read-header-timeout", value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub read_header_timeout: Duration,

    /// A connection on which nothing is read or written for this long is closed.
    #[arg(long = "web.idle-timeout", value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// Connections served at once; further clients wait in the listen queue.
    #[arg(long = "web.max-connections", value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// YAML config file (sources, limits, cause rules). Optional.
    #[arg(long = "config.file", value_name = "FILE")]
    pub config_file: Option<PathBuf>,

    /// Mail log to follow (repeatable): a file, a glob such as
    /// '/var/log/containers/*postfix*.log', a named pipe, or - for standard
    /// input. Default: /var/log/mail.log when no other source is configured.
    #[arg(long = "log.path", value_name = "FILE")]
    pub log_paths: Vec<PathBuf>,

    /// Read log files from their beginning instead of their end, then follow them.
    #[arg(long = "log.from-beginning")]
    pub from_beginning: bool,

    /// Keep each file's read position here, so that a restart continues
    /// where it stopped (saved atomically, periodically and at shutdown).
    #[arg(long = "log.positions-file", value_name = "FILE")]
    pub positions_file: Option<PathBuf>,

    /// Receive syslog messages (UDP and TCP) on this address, e.g. :514 or
    /// 127.0.0.1:5140.
    #[arg(long = "syslog.listen-address", value_name = "ADDR")]
    pub syslog_listen: Option<String>,

    /// Read an MTA's mail queue at every scrape (repeatable): MTA=PATH,
    /// e.g. postfix=/var/spool/postfix, exim=/var/spool/exim4,
    /// sendmail=/var/spool/mqueue, opensmtpd=/var/spool/smtpd. Adds to the
    /// config file's queues.spools.
    #[arg(long = "queue.spool", value_name = "MTA=PATH", value_parser = parse_spool)]
    pub queue_spools: Vec<SpoolConfig>,

    /// Only log messages with the given severity or above.
    #[arg(long = "log.level", value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,

    /// Output format of log messages.
    #[arg(long = "log.format", value_enum, default_value_t = LogFormat::Logfmt)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Logfmt,
    Json,
}

fn parse_spool(text: &str) -> Result<SpoolConfig, String> {
    let (mta, path) = text.split_once('=').ok_or_else(|| format!("{text:?} is not MTA=PATH"))?;
    let mta = QueueMta::parse(mta)
        .ok_or_else(|| format!("{mta:?} is not an MTA whose queue can be read (postfix, exim, sendmail, opensmtpd)"))?;
    if path.is_empty() {
        return Err(format!("{text:?} names no spool directory"));
    }
    Ok(SpoolConfig { mta, path: PathBuf::from(path), method: PostfixMethod::Auto })
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration =
        humantime::parse_duration(text).map_err(|e| format!("{text:?} is not a duration like 10s or 1m: {e}"))?;
    if duration.is_zero() {
        return Err("a timeout of zero would cut every client off".into());
    }
    Ok(duration)
}

/// Everything the exporter needs to start, resolved from flags and config.
#[derive(Debug)]
pub struct Settings {
    pub listen: Vec<SocketAddr>,
    pub telemetry_path: String,
    pub sources: Vec<SourceSpec>,
    pub follow: FollowOptions,
    pub config: Config,
    pub http: HttpLimits,
}

/// Limits on what one client may cost the HTTP server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    pub read_header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

/// The part of the settings that `--config.file` decides, resolved again
/// on every reload.
#[derive(Debug)]
pub struct ConfigSettings {
    pub config: Config,
    pub sources: Vec<SourceSpec>,
    pub follow: FollowOptions,
}

impl Cli {
    /// Resolves flags and config file. Errors are one sentence that names
    /// the input and what to do about it.
    pub fn settings(&self) -> Result<Settings, String> {
        let ConfigSettings { config, sources, follow } = self.config_settings()?;
        if !self.telemetry_path.starts_with('/') || self.telemetry_path.len() < 2 {
            return Err(format!(
                "--web.telemetry-path {:?} must start with / and name a path (for example /metrics)",
                self.telemetry_path
            ));
        }
        let mut listen = Vec::new();
        for address in &self.listen_addresses {
            listen.extend(parse_listen_address(address)?);
        }
        let http = HttpLimits {
            read_header_timeout: self.read_header_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections as usize,
        };
        Ok(Settings { listen, telemetry_path: self.telemetry_path.clone(), sources, follow, config, http })
    }

    /// Reads `--config.file` (if any) and resolves the sources from it and
    /// the flags: what a reload changes.
    pub fn config_settings(&self) -> Result<ConfigSettings, String> {
        let config = match &self.config_file {
            Some(path) => {
                Config::load(path).map_err(|e| format!("{e} (fix the file, or check it with a YAML linter)"))?
            }
            None => Config::default(),
        };
        let mut config = config;
        config.queues.spools.extend(self.queue_spools.iter().cloned());
        for (i, spool) in config.queues.spools.iter().enumerate() {
            if config.queues.spools[..i].iter().any(|other| other.mta == spool.mta) {
                return Err(format!(
                    "two queue spools are given for {}; read one spool per MTA (--queue.spool or queues.spools)",
                    spool.mta.mta().label()
                ));
            }
        }
        let sources = self.sources(&config)?;
        let follow = FollowOptions {
            poll_interval: config.follow.poll_interval,
            max_line_bytes: config.limits.max_line_bytes,
            rotate_wait: config.follow.rotate_wait,
            watch: config.follow.watch,
            positions_file: self.positions_file.clone().or_else(|| config.follow.positions_file.clone()),
            positions_interval: config.follow.positions_interval,
        };
        Ok(ConfigSettings { config, sources, follow })
    }

    fn sources(&self, config: &Config) -> Result<Vec<SourceSpec>, String> {
        let mut specs = Vec::new();
        for source in &config.sources {
            specs.push(self.source_spec(source, config)?);
        }
        for path in &self.log_paths {
            let source = SourceConfig { path: Some(path.clone()), ..SourceConfig::default() };
            specs.push(self.source_spec(&source, config)?);
        }
        if let Some(address) = &self.syslog_listen {
            let listen = first_address(address, "--syslog.listen-address")?;
            let mut options = SyslogOptions::new(listen);
            options.max_message_bytes = config.limits.max_line_bytes;
            specs.push(SourceSpec {
                name: "syslog".into(),
                kind: SourceKind::Syslog(options),
                format: Format::Auto,
                mta: MtaSelection::Auto,
            });
        }
        if specs.is_empty() {
            let source = SourceConfig { path: Some(DEFAULT_LOG_PATH.into()), ..SourceConfig::default() };
            specs.push(self.source_spec(&source, config)?);
        }
        for (i, spec) in specs.iter().enumerate() {
            if specs[..i].iter().any(|other| other.name == spec.name) {
                return Err(format!(
                    "two sources are named {:?}; give each a distinct `name` in the config file",
                    spec.name
                ));
            }
        }
        if specs.iter().filter(|s| s.kind == SourceKind::Stdin).count() > 1 {
            return Err("standard input (-) can be read by one source only".into());
        }
        Ok(specs)
    }

    fn source_spec(&self, source: &SourceConfig, config: &Config) -> Result<SourceSpec, String> {
        let start =
            if source.from_beginning.unwrap_or(self.from_beginning) { StartAt::Beginning } else { StartAt::End };
        let (default_name, kind) = if let Some(path) = &source.path {
            if path.as_os_str() == "-" {
                ("stdin".to_string(), SourceKind::Stdin)
            } else {
                if let Target::Path(path) = Target::new(path)? {
                    check_readable(&path)?;
                }
                (path.display().to_string(), SourceKind::File { path: path.clone(), start })
            }
        } else if let Some(argv) = &source.command {
            let program = argv.first().map(String::as_str).unwrap_or_default();
            let name = std::path::Path::new(program).file_name().map(|n| n.to_string_lossy().into_owned());
            (name.unwrap_or_else(|| program.to_string()), SourceKind::Command { argv: argv.clone() })
        } else if let Some(syslog) = &source.syslog {
            let listen = first_address(&syslog.listen_address, "syslog.listen_address")?;
            let mut options = SyslogOptions::new(listen);
            options.udp = syslog.udp;
            options.tcp = syslog.tcp;
            options.max_message_bytes = syslog.max_message_bytes.unwrap_or(config.limits.max_line_bytes);
            if let Some(max) = syslog.max_connections {
                options.max_connections = max;
            }
            if let Some(bytes) = syslog.queue_bytes {
                options.queue_bytes = bytes;
            }
            ("syslog".to_string(), SourceKind::Syslog(options))
        } else {
            return Err("a source must have one of path, command or syslog".into());
        };
        Ok(SourceSpec {
            name: source.name.clone().unwrap_or(default_name),
            kind,
            format: source.format,
            mta: source.mta,
        })
    }
}

fn first_address(text: &str, what: &str) -> Result<std::net::SocketAddr, String> {
    let addresses = parse_listen_address(text).map_err(|e| e.replace("--web.listen-address", what))?;
    addresses.into_iter().next().ok_or_else(|| format!("{what} {text:?} names no address"))
}

/// A path that exists must be a readable file now; one that does not exist
/// yet is waited for (it may be created by the MTA later).
fn check_readable(path: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::metadata(path) {
        // Opening a FIFO here would wait for a writer; the source opens it
        // without blocking.
        Ok(meta) if meta.file_type().is_fifo() => Ok(()),
        Ok(meta) if meta.is_dir() => {
            Err(format!("log path {} is a directory; pass the log file inside it (for example {}/mail.log)", path.display(), path.display()))
        }
        Ok(_) => std::fs::File::open(path).map(drop).map_err(|e| {
            format!(
                "cannot read log file {}: {e} (run the exporter as a user that may read it, e.g. in the 'adm' group on Debian)",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot read log file {}: {e}", path.display())),
    }
}

/// `:10040` (every interface, IPv6 and IPv4), `0.0.0.0:10040`, `[::1]:10040`,
/// `localhost:10040`.
pub fn parse_listen_address(text: &str) -> Result<Vec<SocketAddr>, String> {
    let invalid =
        || format!("--web.listen-address {text:?} is not HOST:PORT (examples: :10040, 127.0.0.1:10040, [::1]:10040)");
    if let Some(port) = text.strip_prefix(':') {
        let port: u16 = port.parse().map_err(|_| invalid())?;
        // A dual-stack [::] socket accepts IPv4 too; the IPv4 wildcard is the
        // fallback where IPv6 is disabled (see `main`).
        return Ok(vec![SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))]);
    }
    let addrs: Vec<SocketAddr> = text.to_socket_addrs().map_err(|_| invalid())?.collect();
    if addrs.is_empty() {
        return Err(invalid());
    }
    Ok(addrs)
}

/// The IPv4 wildcard with the same port as an IPv6 wildcard address.
pub fn ipv4_fallback(address: SocketAddr) -> Option<SocketAddr> {
    (address.ip() == Ipv6Addr::UNSPECIFIED).then(|| SocketAddr::from((Ipv4Addr::UNSPECIFIED, address.port())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("mta_exporter").chain(args.iter().copied())).expect("valid flags")
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(parse_listen_address(":10040").unwrap(), vec!["[::]:10040".parse().unwrap()]);
        assert_eq!(parse_listen_address("127.0.0.1:9").unwrap(), vec!["127.0.0.1:9".parse().unwrap()]);
        assert_eq!(parse_listen_address("[::1]:9").unwrap(), vec!["[::1]:9".parse().unwrap()]);
        assert!(parse_listen_address("10040").unwrap_err().contains("HOST:PORT"));
        assert!(parse_listen_address(":http").is_err());
    }

    #[test]
    fn flags_alone_are_enough() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mail.log");
        std::fs::write(&log, "").unwrap();
        let settings = cli(&["--log.path", log.to_str().unwrap(), "--log.from-beginning"]).settings().unwrap();
        assert_eq!(settings.sources.len(), 1);
        assert_eq!(settings.sources[0].kind, SourceKind::File { path: log.clone(), start: StartAt::Beginning });
        assert_eq!(settings.telemetry_path, "/metrics");
        assert_eq!(settings.listen, vec!["[::]:10040".parse().unwrap()]);
    }

    #[test]
    fn bad_inputs_name_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let err = cli(&["--log.path", dir.path().to_str().unwrap()]).settings().unwrap_err();
        assert!(err.contains("is a directory"), "{err}");
        let err = cli(&["--config.file", "/nonexistent/mta.yaml"]).settings().unwrap_err();
        assert!(err.contains("cannot read config file"), "{err}");
        let err = cli(&["--web.telemetry-path", "metrics"]).settings().unwrap_err();
        assert!(err.contains("must start with /"), "{err}");
        let err = cli(&["--syslog.listen-address", "514"]).settings().unwrap_err();
        assert!(err.contains("--syslog.listen-address") && err.contains("HOST:PORT"), "{err}");
        let err = cli(&["--log.path", "-", "--log.path", "-"]).settings().unwrap_err();
        assert!(err.contains("two sources are named \"stdin\""), "{err}");
    }

    #[test]
    fn stdin_syslog_globs_and_positions() {
        let settings = cli(&[
            "--log.path",
            "-",
            "--log.path",
            "/var/log/containers/*postfix*.log",
            "--syslog.listen-address",
            "127.0.0.1:5140",
            "--log.positions-file",
            "/tmp/p.yaml",
        ])
        .settings()
        .unwrap();
        let kinds: Vec<&str> = settings.sources.iter().map(|s| s.kind_label()).collect();
        assert_eq!(kinds, ["stdin", "file", "syslog"]);
        assert_eq!(settings.sources[0].name, "stdin");
        assert_eq!(settings.sources[1].name, "/var/log/containers/*postfix*.log");
        match &settings.sources[2].kind {
            SourceKind::Syslog(options) => {
                assert_eq!(options.listen, "127.0.0.1:5140".parse().unwrap());
                assert!(options.udp && options.tcp);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(settings.follow.positions_file, Some(PathBuf::from("/tmp/p.yaml")));
    }
}
