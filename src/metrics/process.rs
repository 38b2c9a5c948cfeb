//! The standard `process_*` metrics, read from `/proc/self` at scrape time
//! (the same names the Go client library exports, so existing dashboards
//! and the "exporter memory" panels work unchanged). On systems without
//! `/proc` the family is simply absent.

use std::fs;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Linux reports times in `/proc/*/stat` in USER_HZ, which the kernel ABI
/// fixes at 100 on every architecture Rust targets.
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug, Default)]
pub struct ProcessCollector;

struct Sample {
    cpu_seconds: f64,
    start_time_seconds: Option<f64>,
    virtual_bytes: f64,
    resident_bytes: Option<f64>,
    open_fds: Option<f64>,
    max_fds: Option<f64>,
}

fn sample() -> Option<Sample> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    // The command name is in parentheses and may contain spaces.
    let after_comm = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_comm.split(' ').collect();
    // Field numbers in proc(5) start at 1 with pid; after `comm` (2) we are at 3.
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    let cpu_seconds = (field(14)? + field(15)?) / TICKS_PER_SECOND;
    let boot_time = fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse::<f64>().ok()));
    let start_time_seconds = boot_time.zip(field(22)).map(|(boot, ticks)| boot + ticks / TICKS_PER_SECOND);
    let resident_bytes = fs::read_to_string("/proc/self/status").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kib| kib * 1024.0)
    });
    let open_fds = fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as f64);
    let max_fds = fs::read_to_string("/proc/self/limits").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|v| v.parse::<f64>().ok())
    });
    Some(Sample { cpu_seconds, start_time_seconds, virtual_bytes: field(23)?, resident_bytes, open_fds, max_fds })
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(s) = sample() else { return Ok(()) };
        let cpu = ConstCounter::new(s.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            cpu.metric_type(),
        )?)?;
        let gauges = [
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds",
                s.start_time_seconds,
            ),
            ("process_virtual_memory_bytes", "Virtual memory size in bytes", Some(s.virtual_bytes)),
            ("process_resident_memory_bytes", "Resident memory size in bytes", s.resident_bytes),
            ("process_open_fds", "Number of open file descriptors", s.open_fds),
            ("process_max_fds", "Maximum number of open file descriptors", s.max_fds),
        ];
        for (name, help, value) in gauges {
            if let Some(value) = value {
                let gauge = ConstGauge::new(value);
                gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
            }
        }
        Ok(())
    }
}
