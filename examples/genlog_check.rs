//! Checks a scrape of a running exporter against a `genlog.py` truth file,
//! with the same mapping as `tests/genlog_truth.rs` (`tests/common/genlog.rs`).
//! `bench/whole_process.py` runs it after each exporter run.
//!
//! ```sh
//! genlog_check TRUTH.json SCRAPE.txt [LOG] [--repeat N]
//! ```
//!
//! LOG (the generated log) is needed for logs with Exim lines; `--repeat N`
//! when the exporter read N copies of the log. Prints `ok` and exits 0, or
//! prints every difference and exits 1.

// The test helpers this needs (the rest of `tests/common` is for tests only);
// `genlog` finds `sum` and `Samples` in its parent, here the crate root.
#[path = "../tests/common/exposition.rs"]
mod exposition;
#[path = "../tests/common/genlog.rs"]
mod genlog;

use exposition::{parse_exposition, sum, Samples};

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut positional = Vec::new();
    let mut repeat = 1;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--repeat" {
            repeat = args.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        } else {
            positional.push(arg);
        }
    }
    if !(2..=3).contains(&positional.len()) || repeat == 0 {
        eprintln!("usage: genlog_check TRUTH.json SCRAPE.txt [LOG] [--repeat N]");
        return ExitCode::from(2);
    }
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let truth: serde_json::Value = serde_json::from_str(&read(&positional[0])).expect("truth file is JSON");
    let samples = parse_exposition(&read(&positional[1]));
    let log = positional.get(2).map(|p| read(p));
    let differences = genlog::differences(&samples, &truth, log.as_deref(), repeat);
    if differences.is_empty() {
        println!("ok");
        ExitCode::SUCCESS
    } else {
        for d in &differences {
            println!("{d}");
        }
        ExitCode::FAILURE
    }
}
