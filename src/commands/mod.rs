//! The subcommands beside the exporter itself: `explain` (what a reply code
//! means), `report` (a one-pass summary of whole log files) and
//! `check-config` (validate a config file). Each writes its result to
//! stdout and a one-line error to stderr, and returns the exit code; none
//! starts the HTTP server or follows files.

pub mod check_config;
pub mod explain;
pub mod report;
mod text;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};

use crate::classify::CauseRules;
use crate::config::{Config, ConfigError};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Explain an SMTP reply: `explain 550 5.7.26`, `explain 5.7.26`,
    /// `explain 421`, or a whole reply or log line in quotes.
    Explain(explain::ExplainArgs),
    /// Read whole log files once and print what a postmaster should know:
    /// totals, top problem codes and causes with their fix, the remote
    /// domains that defer and bounce most, lines not understood.
    Report(report::ReportArgs),
    /// Check a config file (and its cause rules) without starting anything.
    CheckConfig(check_config::CheckConfigArgs),
}

/// `--output` of the commands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For a terminal.
    #[default]
    Text,
    /// For scripts.
    Json,
}

/// Runs a command; its output goes to stdout, a failure to stderr.
pub fn run(command: Command) -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let (name, result) = match command {
        Command::Explain(args) => ("explain", explain::run(&args, &mut out)),
        Command::Report(args) => ("report", report::run(&args, &mut out)),
        Command::CheckConfig(args) => ("check-config", check_config::run(&args, &mut out)),
    };
    let _ = out.flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if !failure.message.is_empty() {
                eprintln!("mta_exporter {name}: {}", failure.message);
            }
            ExitCode::from(failure.exit_code)
        }
    }
}

/// Why a command failed: a one-line message and the exit code.
#[derive(Debug, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    pub exit_code: u8,
}

impl Failure {
    /// The input given on the command line was wrong (exit code 2).
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure { message: message.into(), exit_code: 2 }
    }

    /// A file could not be read or is invalid (exit code 1).
    pub fn input(message: impl Into<String>) -> Failure {
        Failure { message: message.into(), exit_code: 1 }
    }
}

impl From<std::io::Error> for Failure {
    fn from(err: std::io::Error) -> Failure {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            // `report … | head`: the reader has what it wanted.
            return Failure { message: String::new(), exit_code: 0 };
        }
        Failure::input(format!("cannot write the output: {err}"))
    }
}

/// The config file of `--config.file`, if given: its cause rules and limits
/// apply to the command as they would to the exporter.
fn load_config(path: Option<&Path>) -> Result<Config, Failure> {
    match path {
        Some(path) => Config::load(path).map_err(|e: ConfigError| Failure::input(e.to_string())),
        None => Ok(Config::default()),
    }
}

fn cause_rules(config: &Config) -> Result<CauseRules, Failure> {
    config.cause_rules().map_err(|e| Failure::input(e.to_string()))
}
