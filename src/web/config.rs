//! The web configuration file (`--web.config.file`) in the format of the
//! Prometheus exporter-toolkit, so operators reuse the file they already
//! give node_exporter and friends.
//!
//! Owns reading the file and every file it names (certificates, keys, client
//! CAs), checking all of it, and turning it into a ready-to-serve
//! [`WebConfig`]. Loading is all-or-nothing: a file that fails any check
//! yields one error that names the key and the problem, and the caller keeps
//! the configuration it had (see [`super::watch`]).
//!
//! Differences from the Go implementation are deliberate and documented in
//! the README ("Securing the endpoint"): rustls implements TLS 1.2 and 1.3
//! only and a subset of Go's cipher suites and curves, and the verifying
//! client-auth types need a client CA (Go would fall back to the system
//! roots, which is almost never what an exporter wants).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Deserializer};

use super::auth::BasicAuth;
use super::tls::{self, TlsSettings};

/// The headers `http_server_config.headers` may set, with the values
/// allowed where the value is an enumeration (the exporter-toolkit list).
const ALLOWED_HEADERS: &[(&str, &[&str])] = &[
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

/// The file as written. Unknown keys are errors, as in the Go toolkit.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    #[serde(default)]
    tls_server_config: Option<TlsServerConfig>,
    #[serde(default)]
    http_server_config: Option<HttpServerConfig>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, String>>,
    #[serde(default)]
    rate_limit: Option<RateLimitConfig>,
}

/// `tls_server_config`, key for key as in exporter-toolkit.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TlsServerConfig {
    #[serde(default)]
    pub cert: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    #[serde(default)]
    pub client_auth_type: Option<String>,
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    #[serde(default)]
    pub client_ca: Option<String>,
    #[serde(default)]
    pub client_allowed_sans: Option<Vec<String>>,
    #[serde(default)]
    pub cipher_suites: Option<Vec<String>>,
    #[serde(default)]
    pub curve_preferences: Option<Vec<String>>,
    #[serde(default)]
    pub min_version: Option<String>,
    #[serde(default)]
    pub max_version: Option<String>,
    #[serde(default)]
    pub prefer_server_cipher_suites: Option<bool>,
}

impl TlsServerConfig {
    /// The Go toolkit's rule: any of these keys turns TLS on.
    fn is_enabled(&self) -> bool {
        self.cert.is_some()
            || self.key.is_some()
            || self.cert_file.is_some()
            || self.key_file.is_some()
            || self.client_ca_file.is_some()
            || self.client_ca.is_some()
            || self.client_auth_type.as_deref().is_some_and(|t| !t.is_empty())
    }

    /// Relative paths are relative to the web config file's directory.
    fn resolve_paths(&mut self, dir: &Path) {
        for path in [&mut self.cert_file, &mut self.key_file, &mut self.client_ca_file].into_iter().flatten() {
            if path.is_relative() {
                *path = dir.join(&*path);
            }
        }
    }

    fn files(&self) -> impl Iterator<Item = (&'static str, &PathBuf)> {
        [("cert_file", &self.cert_file), ("key_file", &self.key_file), ("client_ca_file", &self.client_ca_file)]
            .into_iter()
            .filter_map(|(key, path)| path.as_ref().map(|p| (key, p)))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpServerConfig {
    #[serde(default = "yes")]
    http2: bool,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimitConfig {
    #[serde(default)]
    burst: u32,
    #[serde(default, deserialize_with = "go_duration")]
    interval: Option<Duration>,
}

fn go_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text)
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("{text:?} is not a duration like 100ms or 1s: {e}")))
}

/// A request rate limit: `burst` requests at once, then one per `interval`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub burst: u32,
    pub interval: Duration,
}

/// A loaded, checked web configuration, ready to serve with.
#[derive(Debug)]
pub struct WebConfig {
    /// `None` serves plain HTTP.
    pub tls: Option<TlsSettings>,
    /// `None` when `basic_auth_users` is empty: no authentication.
    pub auth: Option<Arc<BasicAuth>>,
    /// Added to every response.
    pub headers: HeaderMap,
    /// Offered through ALPN when TLS is on (HTTP/2 needs TLS here, as in Go).
    pub http2: bool,
    pub rate_limit: Option<RateLimit>,
    /// Options that were accepted but cannot be honoured by rustls; logged
    /// at every (re)load.
    pub ignored: Vec<String>,
}

impl Default for WebConfig {
    /// No file: plain HTTP, no authentication, no extra headers.
    fn default() -> Self {
        WebConfig {
            tls: None,
            auth: None,
            headers: HeaderMap::new(),
            http2: true,
            rate_limit: None,
            ignored: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("web config file {path}: {message}")]
pub struct WebConfigError {
    pub path: PathBuf,
    pub message: String,
}

/// Everything a load read: the config file and the files it names, with
/// their contents, so that a watcher can tell whether anything changed.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// (path, digest of its contents or of the error reading it).
    pub files: Vec<(PathBuf, [u8; 32])>,
}

impl Snapshot {
    pub fn directories(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self
            .files
            .iter()
            .map(|(path, _)| {
                path.parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
            })
            .collect();
        dirs.sort();
        dirs.dedup();
        dirs
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    out
}

/// Reads `path` and every file it names. Returns what was read (always) and
/// the parsed configuration (if every step passed).
pub fn load(path: &Path) -> (Snapshot, Result<WebConfig, WebConfigError>) {
    let fail = |message: String| WebConfigError { path: path.to_path_buf(), message };
    let mut snapshot = Snapshot { files: Vec::new() };
    let text = match std::fs::read(path) {
        Ok(bytes) => {
            snapshot.files.push((path.to_path_buf(), digest(&bytes)));
            bytes
        }
        Err(e) => {
            snapshot.files.push((path.to_path_buf(), digest(format!("error: {e}").as_bytes())));
            return (snapshot, Err(fail(format!("cannot read it: {e}"))));
        }
    };
    let text = match String::from_utf8(text) {
        Ok(text) => text,
        Err(_) => return (snapshot, Err(fail("it is not UTF-8 text".into()))),
    };
    let mut file: FileFormat = if text.trim().is_empty() {
        FileFormat::default()
    } else {
        match serde_saphyr::from_str(&text) {
            Ok(file) => file,
            Err(e) => return (snapshot, Err(fail(first_line(&e.to_string())))),
        }
    };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if let Some(tls) = &mut file.tls_server_config {
        tls.resolve_paths(dir);
    }
    let mut reader = FileReader { snapshot, read: Vec::new() };
    let result = build(file, &mut reader).map_err(fail);
    (reader.snapshot, result)
}

/// Reads the files a config names (each once) and records them in the snapshot.
pub(super) struct FileReader {
    snapshot: Snapshot,
    read: Vec<(PathBuf, Result<Vec<u8>, String>)>,
}

impl FileReader {
    pub(super) fn read(&mut self, key: &str, path: &Path) -> Result<Vec<u8>, String> {
        if let Some((_, result)) = self.read.iter().find(|(p, _)| p == path) {
            return result.clone().map_err(|e| format!("tls_server_config.{key}: {e}"));
        }
        let result = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()));
        let fingerprint = match &result {
            Ok(bytes) => digest(bytes),
            Err(e) => digest(format!("error: {e}").as_bytes()),
        };
        self.snapshot.files.push((path.to_path_buf(), fingerprint));
        self.read.push((path.to_path_buf(), result.clone()));
        result.map_err(|e| format!("tls_server_config.{key}: {e}"))
    }
}

fn build(file: FileFormat, reader: &mut FileReader) -> Result<WebConfig, String> {
    let http = file.http_server_config.unwrap_or(HttpServerConfig { http2: true, headers: BTreeMap::new() });
    let headers = check_headers(&http.headers)?;
    let auth = match file.basic_auth_users {
        Some(users) if !users.is_empty() => Some(Arc::new(BasicAuth::new(users)?)),
        _ => None,
    };
    let rate_limit = match file.rate_limit {
        Some(RateLimitConfig { interval: Some(interval), burst }) if !interval.is_zero() => {
            if burst == 0 {
                return Err("rate_limit.burst must be at least 1 when rate_limit.interval is set".into());
            }
            Some(RateLimit { burst, interval })
        }
        _ => None,
    };
    let mut ignored = Vec::new();
    let tls = match file.tls_server_config {
        Some(tls) if tls.is_enabled() => {
            // Read every named file first, so that the snapshot (what a
            // watcher compares) covers all of them even when a check fails.
            for (key, path) in tls.files() {
                let _ = reader.read(key, path);
            }
            Some(tls::build(&tls, http.http2, reader, &mut ignored)?)
        }
        Some(tls) => {
            // Options without a certificate: the Go toolkit serves plain
            // HTTP here, and so do we, but saying so avoids a surprise.
            if tls.client_allowed_sans.is_some()
                || tls.cipher_suites.is_some()
                || tls.min_version.is_some()
                || tls.max_version.is_some()
            {
                ignored.push("tls_server_config has TLS options but no certificate: serving plain HTTP".into());
            }
            None
        }
        None => None,
    };
    Ok(WebConfig { tls, auth, headers, http2: http.http2, rate_limit, ignored })
}

fn check_headers(headers: &BTreeMap<String, String>) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let Some((canonical, allowed)) = ALLOWED_HEADERS.iter().find(|(allowed, _)| allowed == name) else {
            let names: Vec<&str> = ALLOWED_HEADERS.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "http_server_config.headers: HTTP header {name:?} can not be configured (allowed: {})",
                names.join(", ")
            ));
        };
        if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
            return Err(format!(
                "http_server_config.headers: invalid value for {canonical}: expected one of {allowed:?}, got {value:?}"
            ));
        }
        let value = HeaderValue::from_str(value)
            .map_err(|_| format!("http_server_config.headers: the value of {canonical} is not a valid header value"))?;
        map.insert(HeaderName::from_static(static_lower(canonical)), value);
    }
    Ok(map)
}

/// Header names as hyper wants them (lower case, static).
fn static_lower(name: &str) -> &'static str {
    match name {
        "Strict-Transport-Security" => "strict-transport-security",
        "X-Content-Type-Options" => "x-content-type-options",
        "X-Frame-Options" => "x-frame-options",
        "X-XSS-Protection" => "x-xss-protection",
        _ => "content-security-policy",
    }
}

/// serde-saphyr appends a source snippet; our errors are one line.
fn first_line(message: &str) -> String {
    let first = message.lines().next().unwrap_or(message);
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(dir: &Path, text: &str) -> Result<WebConfig, String> {
        let path = dir.join("web.yml");
        std::fs::write(&path, text).unwrap();
        load(&path).1.map_err(|e| e.message)
    }

    #[test]
    fn empty_and_plain_files() {
        let dir = tempfile::tempdir().unwrap();
        let config = load_text(dir.path(), "").unwrap();
        assert!(config.tls.is_none() && config.auth.is_none() && config.headers.is_empty() && config.http2);
        let config = load_text(
            dir.path(),
            "http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n    Content-Security-Policy: \"default-src 'self'\"\nrate_limit:\n  interval: 100ms\n  burst: 5\n",
        )
        .unwrap();
        assert!(!config.http2);
        assert_eq!(config.headers.get("x-frame-options").unwrap(), "deny");
        assert_eq!(config.headers.get("content-security-policy").unwrap(), "default-src 'self'");
        assert_eq!(config.rate_limit, Some(RateLimit { burst: 5, interval: Duration::from_millis(100) }));
    }

    #[test]
    fn mistakes_are_named() {
        let dir = tempfile::tempdir().unwrap();
        for (text, needle) in [
            ("tls_server_confg: {}\n", "tls_server_confg"),
            ("http_server_config:\n  headers:\n    X-Powered-By: me\n", "\"X-Powered-By\" can not be configured"),
            ("http_server_config:\n  headers:\n    X-Frame-Options: allow\n", "invalid value for X-Frame-Options"),
            ("basic_auth_users:\n  alice: secret\n", "user \"alice\""),
            ("basic_auth_users:\n  \"a:b\": $2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi\n", "':'"),
            ("tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n", "cert_file: cannot read"),
            ("tls_server_config:\n  key_file: x.key\n", "missing one of cert or cert_file"),
            ("rate_limit:\n  interval: 1s\n", "rate_limit.burst"),
            ("rate_limit:\n  interval: often\n", "often"),
        ] {
            let err = load_text(dir.path(), text).unwrap_err();
            assert!(err.contains(needle), "{text:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{err}");
        }
    }

    #[test]
    fn relative_paths_are_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.yml");
        std::fs::write(&path, "tls_server_config:\n  cert_file: tls/a.crt\n  key_file: tls/a.key\n").unwrap();
        let (snapshot, result) = load(&path);
        let err = result.unwrap_err().message;
        assert!(err.contains(&dir.path().join("tls/a.crt").display().to_string()), "{err}");
        let paths: Vec<&PathBuf> = snapshot.files.iter().map(|(p, _)| p).collect();
        assert_eq!(paths[0], &path);
        assert_eq!(paths[1], &dir.path().join("tls/a.crt"));
        assert_eq!(snapshot.directories(), vec![dir.path().to_path_buf(), dir.path().join("tls")]);
    }

    #[test]
    fn a_snapshot_changes_with_any_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.yml");
        std::fs::write(&path, "basic_auth_users: {}\n").unwrap();
        let a = load(&path).0;
        assert_eq!(a, load(&path).0);
        std::fs::write(&path, "basic_auth_users: {}\n\n").unwrap();
        assert_ne!(a, load(&path).0);
    }
}
