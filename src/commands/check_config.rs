//! `mta_exporter check-config FILE`: load a config file exactly as the
//! exporter would (syntax, unknown keys, limits, the cause rule table) and
//! say what it configures, or exit non-zero with one line naming the
//! problem.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::{cause_rules, load_config, Failure};
use crate::classify::CauseRules;

#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// The YAML config file to check.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
}

pub fn run(args: &CheckConfigArgs, out: &mut impl Write) -> Result<(), Failure> {
    let Some(path) = &args.file else {
        return Err(Failure::usage(
            "give the config file to check, e.g. mta_exporter check-config /etc/mta_exporter.yaml",
        ));
    };
    let config = load_config(Some(path))?;
    let rules = cause_rules(&config)?;
    let own = config.causes.rules.len();
    let built_in = if config.causes.replace_defaults { 0 } else { CauseRules::default_specs().len() };
    writeln!(out, "{}: valid", path.display())?;
    writeln!(out, "  sources: {}", config.sources.len())?;
    for source in &config.sources {
        let name = source.name.as_deref().map(|n| format!(" as {n:?}")).unwrap_or_default();
        let (location, state) = match (&source.path, &source.command, &source.syslog) {
            (Some(path), _, _) if path.as_os_str() == "-" => ("standard input".to_string(), ""),
            (Some(path), _, _) => {
                let state = match std::fs::metadata(path) {
                    Ok(meta) if meta.is_dir() => " (a directory here: the exporter will refuse it)",
                    Ok(_) => "",
                    Err(_) if path.to_string_lossy().contains(['*', '?', '[']) => " (a glob)",
                    Err(_) => " (not found here: the exporter waits for it)",
                };
                (path.display().to_string(), state)
            }
            (None, Some(argv), _) => (format!("command: {}", argv.join(" ")), ""),
            (None, None, Some(syslog)) => (format!("syslog listener on {}", syslog.listen_address), ""),
            (None, None, None) => ("(no path, command or syslog: the exporter will refuse it)".to_string(), ""),
        };
        writeln!(out, "    {location}{name}{state}")?;
    }
    writeln!(out, "  cause rules: {} ({own} from the file, {built_in} built in)", rules.len())?;
    let known = CauseRules::defaults().causes();
    let new: Vec<&str> = rules.causes().into_iter().filter(|c| !known.contains(c)).map(|c| c.as_str()).collect();
    if !new.is_empty() {
        writeln!(out, "  causes added by the file: {}", new.join(", "))?;
    }
    writeln!(
        out,
        "  limits: {} series per family, lines cut at {} bytes; follow: poll every {}",
        config.limits.max_series_per_family,
        config.limits.max_line_bytes,
        humantime::format_duration(config.follow.poll_interval)
    )?;
    if !config.queues.spools.is_empty() {
        let spools: Vec<String> =
            config.queues.spools.iter().map(|s| format!("{} at {}", s.mta.mta().label(), s.path.display())).collect();
        writeln!(
            out,
            "  queues: {}; read at each scrape, for at most {}",
            spools.join(", "),
            humantime::format_duration(config.queues.timeout)
        )?;
    }
    Ok(())
}
