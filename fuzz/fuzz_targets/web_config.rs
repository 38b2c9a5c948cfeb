//! The web config loader (exporter-toolkit format: TLS, basic auth,
//! headers, rate limit) on a file with the input's contents. Files the
//! config names are read relative to an empty directory; inputs naming
//! device or proc files are skipped (the config is an operator's, and an
//! operator who names /dev/zero as a certificate gets what was asked for).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mta_exporter::web::config;

fuzz_target!(|data: &[u8]| {
    let hay = String::from_utf8_lossy(data);
    if ["/dev", "/proc", "/sys", "..", "~"].iter().any(|p| hay.contains(p)) {
        return;
    }
    let Ok(dir) = tempfile::tempdir() else { return };
    let path = dir.path().join("web.yml");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let _ = config::load(&path);
});
