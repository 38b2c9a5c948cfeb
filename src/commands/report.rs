//! `mta_exporter report FILE…`: read whole logs once and summarise them for
//! a postmaster — totals by class and direction, deliveries, the top
//! problem codes and causes with their meaning and fix, the remote domains
//! that defer and bounce most, and the lines not understood.
//!
//! Lines go through the exporter's own stages ([`LineFramer`], then
//! [`understand`]: decode, parse, classify) and are counted as the exporter
//! counts them ([`LineResult::of`]), so a report and the metrics of the
//! same log agree. Per line it costs what the exporter costs plus, for
//! outbound status lines, one lookup of the recipient's domain. Gzip files
//! (rotated logs) are read as they are; `-` is standard input. A progress
//! bar is drawn on stderr only when it is a terminal and the input is large.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use super::text::{grouped, wrap_into};
use super::{cause_rules, load_config, Failure, OutputFormat};
use crate::classify::catalogue::{catalogue, EnhancedKey, Entry, Whose};
use crate::classify::{Category, Cause, Classification, Classifier};
use crate::framing::LineFramer;
use crate::metrics::LineResult;
use crate::model::{DeliveryStatus, Direction, EnhancedStatus, Reply, ReplyClass, ReplyCode};
use crate::parse::Line;
use crate::parse::OtherParsers;
use crate::pipeline::{LineOptions, LineReader};

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Log files to read, plain or gzip-compressed; `-` reads standard input.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: OutputFormat,

    /// How many codes, causes and domains to list (0: all).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,

    /// Take the cause rules and line limit from this config file (as the exporter would).
    #[arg(long = "config.file", value_name = "FILE")]
    pub config_file: Option<PathBuf>,
}

/// Below this many bytes of input no progress bar is drawn.
const LARGE_INPUT: u64 = 64 << 20;
/// Distinct remote domains tallied one by one; more fold into one entry.
const MAX_DOMAINS: usize = 100_000;
/// Unrecognized lines kept as examples.
const EXAMPLES: usize = 5;
/// The name of the folded domain entry.
const OTHER_DOMAINS: &str = "(other domains)";

/// Identifies one kind of reply in the tally.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct ReplyKey {
    direction: Direction,
    code: Option<ReplyCode>,
    enhanced: Option<EnhancedStatus>,
    class: ReplyClass,
    category: Category,
    cause: Cause,
}

#[derive(Default, Debug)]
struct DomainTally {
    deliveries: [u64; 7],
    transient: u64,
    permanent: u64,
    causes: Vec<(Cause, u64)>,
}

/// Everything counted while reading.
#[derive(Default, Debug)]
struct Tally {
    lines: [u64; 4],
    truncated: u64,
    deliveries: [u64; 7],
    warnings: u64,
    /// Per kind of reply: its count, and the provider variant of the
    /// catalogue that the text of its first occurrence matched.
    /// FxHash: a handful of small integer keys, looked up on every reply
    /// line (SipHash cost more than the rest of the tally).
    replies: rustc_hash::FxHashMap<ReplyKey, (u64, Option<&'static Entry>)>,
    domains: HashMap<String, DomainTally>,
    other_domains: DomainTally,
    unrecognized: Vec<String>,
    /// Reused for lowercasing domain names.
    scratch: String,
}

/// The provider-specific catalogue entry a reply's text picks, if any
/// (looked up once per kind of reply, not per line).
fn variant_of(reply: &Reply<'_>) -> Option<&'static Entry> {
    let code = reply.code?.value();
    catalogue().reply(code, reply.enhanced.map(EnhancedKey::of), Some(reply.text)).filter(|e| e.text.is_some())
}

fn delivery_index(status: DeliveryStatus) -> usize {
    match status {
        DeliveryStatus::Sent => 0,
        DeliveryStatus::Deferred => 1,
        DeliveryStatus::Bounced => 2,
        DeliveryStatus::Expired => 3,
        DeliveryStatus::Rejected => 4,
        DeliveryStatus::Deliverable => 5,
        DeliveryStatus::Undeliverable => 6,
    }
}

fn line_index(result: LineResult) -> usize {
    match result {
        LineResult::Reply => 0,
        LineResult::Recognized => 1,
        LineResult::Ignored => 2,
        LineResult::Unrecognized => 3,
    }
}

impl Tally {
    fn add(&mut self, text: &str, line: &Line<'_>, classification: Option<Classification>, truncated: bool) {
        let result = LineResult::of(line, classification);
        self.lines[line_index(result)] += 1;
        self.truncated += u64::from(truncated);
        match line {
            Line::Mta(record) => {
                if let Some(status) = record.delivery {
                    self.deliveries[delivery_index(status)] += 1;
                }
                let counted = match (record.reply, classification) {
                    (Some(reply), Some(c)) if record.warning_only => {
                        self.warnings += 1;
                        let _ = (reply, c);
                        None
                    }
                    (Some(reply), Some(c)) => {
                        let key = ReplyKey {
                            direction: reply.direction,
                            code: reply.code,
                            enhanced: reply.enhanced,
                            class: c.class,
                            category: c.category,
                            cause: c.cause,
                        };
                        self.replies.entry(key).or_insert_with(|| (0, variant_of(&reply))).0 += 1;
                        Some(c)
                    }
                    _ => None,
                };
                if let Some(domain) = record.remote_domain.filter(|_| !record.warning_only) {
                    let tally = self.domain(domain);
                    if let Some(status) = record.delivery {
                        tally.deliveries[delivery_index(status)] += 1;
                    }
                    if let Some(c) = counted.filter(|c| c.class != ReplyClass::Success) {
                        match c.class {
                            ReplyClass::Transient => tally.transient += 1,
                            _ => tally.permanent += 1,
                        }
                        match tally.causes.iter_mut().find(|(cause, _)| *cause == c.cause) {
                            Some((_, n)) => *n += 1,
                            None => tally.causes.push((c.cause, 1)),
                        }
                    }
                }
            }
            Line::Unrecognized if self.unrecognized.len() < EXAMPLES => self.unrecognized.push(text.to_string()),
            _ => {}
        }
    }

    /// The tally of a domain, case-insensitively; folded beyond [`MAX_DOMAINS`].
    fn domain(&mut self, domain: &str) -> &mut DomainTally {
        let Tally { domains, other_domains, scratch, .. } = self;
        let key = if domain.bytes().any(|b| b.is_ascii_uppercase()) {
            scratch.clear();
            scratch.push_str(domain);
            scratch.make_ascii_lowercase();
            scratch.as_str()
        } else {
            domain
        };
        if domains.contains_key(key) {
            return domains.get_mut(key).unwrap_or(other_domains);
        }
        if domains.len() < MAX_DOMAINS {
            return domains.entry(key.to_owned()).or_default();
        }
        other_domains
    }
}

/// One file read.
#[derive(Debug, Serialize)]
pub struct FileSummary {
    pub name: String,
    pub lines: u64,
    /// Bytes read from the file (compressed bytes for a gzip file).
    pub bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct LineCounts {
    pub total: u64,
    pub reply: u64,
    pub recognized: u64,
    pub ignored: u64,
    pub unrecognized: u64,
    pub truncated: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct ClassCounts {
    #[serde(rename = "2xx")]
    pub success: u64,
    #[serde(rename = "4xx")]
    pub transient: u64,
    #[serde(rename = "5xx")]
    pub permanent: u64,
}

impl ClassCounts {
    fn add(&mut self, class: ReplyClass, n: u64) {
        match class {
            ReplyClass::Success => self.success += n,
            ReplyClass::Transient => self.transient += n,
            ReplyClass::Permanent => self.permanent += n,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ReplyCounts {
    pub total: u64,
    pub outbound: ClassCounts,
    pub inbound: ClassCounts,
}

#[derive(Debug, Serialize)]
pub struct Deliveries {
    pub sent: u64,
    pub deferred: u64,
    pub bounced: u64,
    pub expired: u64,
    /// Inbound rejections.
    pub rejected: u64,
    pub deliverable: u64,
    pub undeliverable: u64,
}

/// A problem reply (4xx or 5xx), all its lines together.
#[derive(Debug, Serialize)]
pub struct CodeSummary {
    pub direction: &'static str,
    pub code: String,
    pub enhanced: String,
    pub class: &'static str,
    pub category: &'static str,
    pub count: u64,
    /// The most frequent cause of these replies.
    pub cause: &'static str,
    pub meaning: String,
    pub catalogued: bool,
    pub whose: Whose,
    pub fix: String,
}

#[derive(Debug, Serialize)]
pub struct CauseSummary {
    pub direction: &'static str,
    pub cause: &'static str,
    pub count: u64,
    pub meaning: String,
    pub whose: Whose,
    pub fix: String,
}

#[derive(Debug, Serialize)]
pub struct DomainSummary {
    pub domain: String,
    pub sent: u64,
    pub deferred: u64,
    pub bounced: u64,
    pub expired: u64,
    /// 4xx replies from the domain's servers.
    pub replies_4xx: u64,
    /// 5xx replies from the domain's servers.
    pub replies_5xx: u64,
    pub top_cause: Option<&'static str>,
}

/// The summary, as printed or as JSON.
#[derive(Debug, Serialize)]
pub struct Report {
    pub files: Vec<FileSummary>,
    pub lines: LineCounts,
    pub deliveries: Deliveries,
    /// Rejections that were only logged (Postfix `reject_warning`).
    pub reject_warnings: u64,
    pub replies: ReplyCounts,
    pub codes: Vec<CodeSummary>,
    pub causes: Vec<CauseSummary>,
    pub domains: Vec<DomainSummary>,
    pub unrecognized_examples: Vec<String>,
}

fn take_top<T>(mut items: Vec<T>, top: usize) -> Vec<T> {
    if top > 0 {
        items.truncate(top);
    }
    items
}

fn summarise(tally: Tally, files: Vec<FileSummary>, top: usize) -> Report {
    let c = catalogue();
    let mut outbound = ClassCounts::default();
    let mut inbound = ClassCounts::default();
    // (direction, code, enhanced) → (class, category, count, causes, variants)
    type Group = (ReplyClass, Category, u64, Vec<(Cause, u64)>, Vec<(Cause, &'static Entry)>);
    let mut groups: HashMap<(Direction, Option<ReplyCode>, Option<EnhancedStatus>), Group> = HashMap::new();
    let mut causes: HashMap<(Direction, Cause), u64> = HashMap::new();
    for (key, &(n, variant)) in &tally.replies {
        match key.direction {
            Direction::Outbound => outbound.add(key.class, n),
            Direction::Inbound => inbound.add(key.class, n),
        }
        if key.class == ReplyClass::Success {
            continue;
        }
        let group = groups.entry((key.direction, key.code, key.enhanced)).or_insert((
            key.class,
            key.category,
            0,
            Vec::new(),
            Vec::new(),
        ));
        group.2 += n;
        group.3.push((key.cause, n));
        if let Some(variant) = variant {
            group.4.push((key.cause, variant));
        }
        *causes.entry((key.direction, key.cause)).or_insert(0) += n;
    }
    let mut codes: Vec<CodeSummary> = groups
        .into_iter()
        .map(|((direction, code, enhanced), (class, category, count, causes, variants))| {
            let cause = dominant(&causes).unwrap_or(Cause::OTHER);
            // A provider's meaning, when the replies with the dominant cause
            // had one; else what the codes mean.
            let variant = variants.iter().filter(|(c, _)| *c == cause).map(|(_, e)| *e).min_by_key(|e| &e.meaning);
            let generic = c.lookup(code.map(ReplyCode::value), enhanced.map(EnhancedKey::of), None).best();
            let best = variant.or(generic);
            let cause_entry = c.cause(cause.as_str());
            CodeSummary {
                direction: direction.label(),
                code: code.map_or_else(|| "none".to_string(), |c| c.to_string()),
                enhanced: enhanced.map_or_else(|| "none".to_string(), |e| e.to_string()),
                class: class.label(),
                category: category.label(),
                count,
                cause: cause.as_str(),
                meaning: best.map_or_else(|| c.meaning(code, enhanced).to_string(), |e| e.meaning.clone()),
                catalogued: best.is_some(),
                whose: best.map_or_else(|| cause_entry.map_or(Whose::Either, |e| e.whose), |e| e.whose),
                fix: best.map_or_else(|| cause_entry.map_or_else(String::new, |e| e.fix.clone()), |e| e.fix.clone()),
            }
        })
        .collect();
    codes.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.direction.cmp(b.direction))
            .then_with(|| a.code.cmp(&b.code))
            .then_with(|| a.enhanced.cmp(&b.enhanced))
    });
    let mut causes: Vec<CauseSummary> = causes
        .into_iter()
        .map(|((direction, cause), count)| {
            let entry = c.cause(cause.as_str());
            CauseSummary {
                direction: direction.label(),
                cause: cause.as_str(),
                count,
                meaning: entry
                    .map_or_else(|| "a cause of the config file's own rules".to_string(), |e| e.meaning.clone()),
                whose: entry.map_or(Whose::Either, |e| e.whose),
                fix: entry.map_or_else(String::new, |e| e.fix.clone()),
            }
        })
        .collect();
    causes.sort_by(|a, b| {
        b.count.cmp(&a.count).then_with(|| a.direction.cmp(b.direction)).then_with(|| a.cause.cmp(b.cause))
    });
    let mut domains: Vec<DomainSummary> = tally
        .domains
        .iter()
        .map(|(name, t)| (name.as_str(), t))
        .chain(std::iter::once((OTHER_DOMAINS, &tally.other_domains)))
        .filter(|(_, t)| t.deliveries[1] + t.deliveries[2] + t.deliveries[3] + t.transient + t.permanent > 0)
        .map(|(name, t)| DomainSummary {
            domain: name.to_string(),
            sent: t.deliveries[0],
            deferred: t.deliveries[1],
            bounced: t.deliveries[2],
            expired: t.deliveries[3],
            replies_4xx: t.transient,
            replies_5xx: t.permanent,
            top_cause: dominant(&t.causes).map(Cause::as_str),
        })
        .collect();
    let problems = |d: &DomainSummary| d.deferred + d.bounced + d.expired;
    domains.sort_by(|a, b| {
        problems(b)
            .cmp(&problems(a))
            .then_with(|| (b.replies_4xx + b.replies_5xx).cmp(&(a.replies_4xx + a.replies_5xx)))
            .then_with(|| a.domain.cmp(&b.domain))
    });
    let [reply, recognized, ignored, unrecognized] = tally.lines;
    let d = tally.deliveries;
    Report {
        files,
        lines: LineCounts {
            total: tally.lines.iter().sum(),
            reply,
            recognized,
            ignored,
            unrecognized,
            truncated: tally.truncated,
        },
        deliveries: Deliveries {
            sent: d[0],
            deferred: d[1],
            bounced: d[2],
            expired: d[3],
            rejected: d[4],
            deliverable: d[5],
            undeliverable: d[6],
        },
        reject_warnings: tally.warnings,
        replies: ReplyCounts { total: tally.replies.values().map(|(n, _)| n).sum(), outbound, inbound },
        codes: take_top(codes, top),
        causes: take_top(causes, top),
        domains: take_top(domains, top),
        unrecognized_examples: tally.unrecognized,
    }
}

/// The most frequent cause; ties go to the name that sorts first.
fn dominant(causes: &[(Cause, u64)]) -> Option<Cause> {
    let mut merged: Vec<(Cause, u64)> = Vec::new();
    for &(cause, n) in causes {
        match merged.iter_mut().find(|(c, _)| *c == cause) {
            Some((_, total)) => *total += n,
            None => merged.push((cause, n)),
        }
    }
    merged.into_iter().max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.as_str().cmp(a.0.as_str()))).map(|(c, _)| c)
}

/// Counts the bytes read from the underlying file and moves the bar.
struct Counting<R> {
    inner: R,
    bytes: u64,
    bar: ProgressBar,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

fn is_stdin(path: &Path) -> bool {
    path == Path::new("-")
}

fn display_name(path: &Path) -> String {
    if is_stdin(path) {
        "(standard input)".to_string()
    } else {
        path.display().to_string()
    }
}

/// Reads one file (or stdin) to its end through framing → understand → tally.
fn read_one(
    path: &Path,
    framer: &mut LineFramer,
    options: &LineOptions,
    classifier: &Classifier,
    tally: &mut Tally,
    bar: &ProgressBar,
) -> Result<FileSummary, Failure> {
    let name = display_name(path);
    let cannot = |e: io::Error| Failure::input(format!("cannot read {name}: {e}"));
    let raw: Box<dyn Read> = if is_stdin(path) {
        Box::new(io::stdin().lock())
    } else {
        if path.is_dir() {
            return Err(Failure::input(format!("{name} is a directory; give the log files inside it")));
        }
        Box::new(File::open(path).map_err(cannot)?)
    };
    let mut counting = BufReader::new(Counting { inner: raw, bytes: 0, bar: bar.clone() });
    let gzip = counting.fill_buf().map_err(cannot)?.starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn Read + '_> =
        if gzip { Box::new(flate2::bufread::MultiGzDecoder::new(&mut counting)) } else { Box::new(&mut counting) };
    let before: u64 = tally.lines.iter().sum();
    framer.reset();
    // Each file is its own source, as the exporter would read it.
    let mut lines = LineReader::new(options.clone());
    loop {
        let n = framer.fill(&mut reader).map_err(|e| Failure::input(format!("cannot read {name}: {e}")))?;
        if n == 0 {
            break;
        }
        framer.drain(|line| {
            lines.read(line.bytes, classifier, |text, parsed, c| tally.add(text, parsed, c, line.truncated));
        });
    }
    framer.flush(|line| {
        lines.read(line.bytes, classifier, |text, parsed, c| tally.add(text, parsed, c, line.truncated));
    });
    lines.finish(classifier, |text, parsed, c| tally.add(text, parsed, c, false));
    drop(reader);
    let bytes = counting.get_ref().bytes;
    Ok(FileSummary { name, lines: tally.lines.iter().sum::<u64>() - before, bytes })
}

/// Reads every file and builds the report.
pub fn build(
    files: &[PathBuf],
    classifier: &Classifier,
    others: Arc<OtherParsers>,
    max_line: usize,
    top: usize,
) -> Result<Report, Failure> {
    let options = LineOptions { others, max_line_bytes: max_line, ..LineOptions::default() };
    let total: u64 =
        files.iter().filter(|p| !is_stdin(p)).filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
    let bar = if io::stderr().is_terminal() && total >= LARGE_INPUT && !files.iter().any(|p| is_stdin(p)) {
        let style = ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        ProgressBar::new(total).with_style(style)
    } else {
        ProgressBar::hidden()
    };
    let mut framer = LineFramer::new(max_line);
    let mut tally = Tally::default();
    let mut summaries = Vec::with_capacity(files.len());
    for path in files {
        bar.set_message(display_name(path));
        summaries.push(read_one(path, &mut framer, &options, classifier, &mut tally, &bar)?);
    }
    bar.finish_and_clear();
    Ok(summarise(tally, summaries, top))
}

pub fn run(args: &ReportArgs, out: &mut impl Write) -> Result<(), Failure> {
    if args.files.is_empty() {
        return Err(Failure::usage(
            "give the log files to read, e.g. mta_exporter report /var/log/mail.log /var/log/mail.log.1 (- reads standard input)",
        ));
    }
    if args.files.iter().filter(|p| is_stdin(p)).count() > 1 {
        return Err(Failure::usage("standard input (-) can be read only once"));
    }
    let config = load_config(args.config_file.as_deref())?;
    let classifier = Classifier::new(cause_rules(&config)?);
    let started = Instant::now();
    let others = Arc::new(config.other_parsers().map_err(|e| Failure::input(format!("config file: {e}")))?);
    let report = build(&args.files, &classifier, others, config.limits.max_line_bytes, args.top)?;
    if io::stderr().is_terminal() {
        let seconds = started.elapsed().as_secs_f64();
        eprintln!(
            "read {} lines in {seconds:.1} s ({} lines/s)",
            grouped(report.lines.total),
            grouped((report.lines.total as f64 / seconds.max(1e-9)) as u64)
        );
    }
    match args.output {
        OutputFormat::Text => out.write_all(render_text(&report).as_bytes())?,
        OutputFormat::Json => {
            let json = serde_json::to_string_pretty(&report)
                .map_err(|e| Failure::input(format!("cannot encode JSON: {e}")))?;
            writeln!(out, "{json}")?;
        }
    }
    Ok(())
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", grouped(n), if n == 1 { one } else { many })
}

/// The terminal layout.
pub fn render_text(r: &Report) -> String {
    let mut out = String::new();
    let bytes: u64 = r.files.iter().map(|f| f.bytes).sum();
    out.push_str(&format!(
        "mta_exporter report: {}, {}, {}\n",
        plural(r.files.len() as u64, "file", "files"),
        plural(r.lines.total, "line", "lines"),
        human_bytes(bytes)
    ));
    if r.files.len() > 1 {
        let width = r.files.iter().map(|f| f.name.len()).max().unwrap_or(0);
        for f in &r.files {
            out.push_str(&format!("  {:<width$}  {}\n", f.name, plural(f.lines, "line", "lines")));
        }
    }
    out.push('\n');
    let l = &r.lines;
    out.push_str(&format!(
        "Lines       with a reply {} · other MTA lines {} · other programs {} · not understood {}\n",
        grouped(l.reply),
        grouped(l.recognized),
        grouped(l.ignored),
        grouped(l.unrecognized)
    ));
    if l.truncated > 0 {
        out.push_str(&format!(
            "            {} longer than the line limit (cut, still read)\n",
            plural(l.truncated, "line", "lines")
        ));
    }
    let d = &r.deliveries;
    out.push_str(&format!(
        "Deliveries  sent {} · deferred {} · bounced {} · expired {} · rejected inbound {}\n",
        grouped(d.sent),
        grouped(d.deferred),
        grouped(d.bounced),
        grouped(d.expired),
        grouped(d.rejected)
    ));
    if d.deliverable + d.undeliverable > 0 {
        out.push_str(&format!(
            "            address probes: deliverable {} · undeliverable {}\n",
            grouped(d.deliverable),
            grouped(d.undeliverable)
        ));
    }
    if r.reject_warnings > 0 {
        out.push_str(&format!(
            "Warnings    {} only logged, not sent (warn_if_reject)\n",
            plural(r.reject_warnings, "rejection", "rejections")
        ));
    }

    out.push_str(&format!("\nReplies ({})\n", grouped(r.replies.total)));
    let rows = [("outbound", &r.replies.outbound), ("inbound", &r.replies.inbound)];
    let cells: Vec<[String; 3]> =
        rows.iter().map(|(_, c)| [grouped(c.success), grouped(c.transient), grouped(c.permanent)]).collect();
    let w = cells.iter().flatten().map(String::len).max().unwrap_or(1).max(3);
    out.push_str(&format!("  {:<10}{:>w$}  {:>w$}  {:>w$}\n", "", "2xx", "4xx", "5xx"));
    for ((name, _), [a, b, c]) in rows.iter().zip(&cells) {
        out.push_str(&format!("  {name:<10}{a:>w$}  {b:>w$}  {c:>w$}\n"));
    }

    out.push_str("\nTop problem replies (4xx and 5xx)\n");
    if r.codes.is_empty() {
        out.push_str("  none\n");
    } else {
        let counts: Vec<String> = r.codes.iter().map(|c| grouped(c.count)).collect();
        let wc = counts.iter().map(String::len).max().unwrap_or(0).max(5);
        let replies: Vec<String> = r.codes.iter().map(|c| reply_name(&c.code, &c.enhanced)).collect();
        let wr = replies.iter().map(String::len).max().unwrap_or(0).max(5);
        let wk = r.codes.iter().map(|c| c.cause.len()).max().unwrap_or(0).max(5);
        out.push_str(&format!("  {:>wc$}  {:<9} {:<wr$}  {:<wk$}  meaning\n", "count", "direction", "reply", "cause"));
        let indent = 2 + wc + 2 + 10;
        for ((code, count), reply) in r.codes.iter().zip(&counts).zip(&replies) {
            let meaning =
                if code.catalogued { code.meaning.clone() } else { format!("{} (uncatalogued)", code.meaning) };
            out.push_str(&format!(
                "  {count:>wc$}  {:<9} {reply:<wr$}  {:<wk$}  {meaning}\n",
                code.direction, code.cause
            ));
            if !code.fix.is_empty() {
                out.push_str(&" ".repeat(indent));
                out.push_str("fix: ");
                wrap_into(&mut out, &code.fix, indent + 5, indent + 5);
            }
        }
    }

    out.push_str("\nTop causes\n");
    if r.causes.is_empty() {
        out.push_str("  none\n");
    } else {
        let counts: Vec<String> = r.causes.iter().map(|c| grouped(c.count)).collect();
        let wc = counts.iter().map(String::len).max().unwrap_or(0).max(5);
        let wk = r.causes.iter().map(|c| c.cause.len()).max().unwrap_or(0).max(5);
        out.push_str(&format!("  {:>wc$}  {:<9} {:<wk$}  meaning\n", "count", "direction", "cause"));
        let indent = 2 + wc + 2 + 10;
        for (cause, count) in r.causes.iter().zip(&counts) {
            out.push_str(&format!("  {count:>wc$}  {:<9} {:<wk$}  {}\n", cause.direction, cause.cause, cause.meaning));
            if !cause.fix.is_empty() {
                out.push_str(&" ".repeat(indent));
                out.push_str("fix: ");
                wrap_into(&mut out, &cause.fix, indent + 5, indent + 5);
            }
        }
    }

    out.push_str("\nRemote domains with the most deferrals and bounces\n");
    if r.domains.is_empty() {
        out.push_str("  none\n");
    } else {
        let wd = r.domains.iter().map(|d| d.domain.len()).max().unwrap_or(0).max(6);
        let nums: Vec<[String; 6]> = r
            .domains
            .iter()
            .map(|d| [d.sent, d.deferred, d.bounced, d.expired, d.replies_4xx, d.replies_5xx].map(grouped))
            .collect();
        let headers = ["sent", "deferred", "bounced", "expired", "4xx", "5xx"];
        let widths: Vec<usize> =
            (0..6).map(|i| nums.iter().map(|n| n[i].len()).max().unwrap_or(0).max(headers[i].len())).collect();
        out.push_str(&format!("  {:<wd$}", "domain"));
        for (h, w) in headers.iter().zip(&widths) {
            out.push_str(&format!("  {h:>w$}"));
        }
        out.push_str("  top cause\n");
        for (d, n) in r.domains.iter().zip(&nums) {
            out.push_str(&format!("  {:<wd$}", d.domain));
            for (v, w) in n.iter().zip(&widths) {
                out.push_str(&format!("  {v:>w$}"));
            }
            out.push_str(&format!("  {}\n", d.top_cause.unwrap_or("-")));
        }
    }

    if l.unrecognized > 0 {
        out.push_str(&format!(
            "\nNot understood: {} (please report such lines); the first {}:\n",
            plural(l.unrecognized, "line", "lines"),
            r.unrecognized_examples.len()
        ));
        for line in &r.unrecognized_examples {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out
}

fn reply_name(code: &str, enhanced: &str) -> String {
    match (code, enhanced) {
        ("none", e) => e.to_string(),
        (c, "none") => c.to_string(),
        (c, e) => format!("{c} {e}"),
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return plural(n, "byte", "bytes");
    }
    let mut value = n as f64;
    let mut unit = "B";
    for u in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    format!("{value:.1} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dominant_cause_ties_go_to_the_first_name() {
        let a = Cause::new("spf").unwrap();
        let b = Cause::new("dkim").unwrap();
        assert_eq!(dominant(&[(a, 2), (b, 1), (b, 1)]), Some(b));
        assert_eq!(dominant(&[(a, 3), (b, 1)]), Some(a));
        assert_eq!(dominant(&[]), None);
    }

    #[test]
    fn sizes() {
        assert_eq!(human_bytes(10), "10 bytes");
        assert_eq!(human_bytes(2048), "2.0 KiB");
        assert_eq!(human_bytes(5 << 20), "5.0 MiB");
    }
}
