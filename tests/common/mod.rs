//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod corpus;
mod exposition;
pub mod genlog;
pub mod pki;
pub mod real;

pub use exposition::{parse_exposition, sum, Samples};

use std::collections::BTreeMap;
use std::path::PathBuf;

/// `../shared` beside the checkout (or `$MTA_SHARED_DIR`).
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("MTA_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("shared"),
    }
}

/// A plain HTTP/1.1 GET: (status, headers, body). No client library needed.
pub fn http_get(address: &str, path: &str) -> std::io::Result<(u16, String, String)> {
    http_request(address, "GET", path, &[])
}

pub fn http_request(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<(u16, String, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok((status, head.to_string(), body.to_string()))
}

/// Like [`http_request`], with the body as bytes (for gzip).
pub fn http_request_bytes(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<(u16, String, Vec<u8>)> {
    let stream = std::net::TcpStream::connect(address)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    exchange(stream, address, method, path, headers)
}

/// One HTTP/1.1 request with `Connection: close` over any stream.
pub fn exchange<S: std::io::Read + std::io::Write>(
    mut stream: S,
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<(u16, String, Vec<u8>)> {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.flush()?;
    let mut raw = Vec::new();
    match stream.read_to_end(&mut raw) {
        Ok(_) => {}
        // A TLS peer that closes without close_notify: what arrived counts.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e),
    }
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("no HTTP response: {:?}", String::from_utf8_lossy(&raw)),
        )
    })?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = raw[split + 4..].to_vec();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok((status, head, body))
}

/// The value of a response header (case-insensitive name).
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The exporter binary running as a child process; killed when dropped so a
/// failing test never leaks it.
pub struct Exporter {
    child: std::process::Child,
    pub address: String,
    pub stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Exporter {
    /// Starts `mta_exporter` on a free loopback port with `args` and waits
    /// until it answers on `/-/healthy`.
    pub fn start(args: &[&str]) -> Exporter {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mta_exporter"))
            .args(["--web.listen-address", "127.0.0.1:0", "--log.level", "debug"])
            .args(args)
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start mta_exporter");
        let stderr = child.stderr.take().expect("stderr");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("message=listening") {
                    if let Some(addr) = line.split_whitespace().find_map(|f| f.strip_prefix("address=")) {
                        let _ = tx.send(addr.trim_matches('"').to_string());
                    }
                }
                sink.lock().unwrap().push(line);
            }
        });
        let address = match rx.recv_timeout(std::time::Duration::from_secs(20)) {
            Ok(address) => address,
            Err(_) => {
                let _ = child.kill();
                panic!("exporter did not start; stderr:\n{}", lines.lock().unwrap().join("\n"));
            }
        };
        Exporter { child, address, stderr: lines }
    }

    pub fn get(&self, path: &str) -> (u16, String, String) {
        http_get(&self.address, path).expect("HTTP request")
    }

    pub fn metrics(&self) -> Samples {
        let (status, _, body) = self.get("/metrics");
        assert_eq!(status, 200);
        parse_exposition(&body)
    }

    /// Polls `/metrics` until `done` holds (or 20 s pass) and returns the samples.
    pub fn metrics_when(&self, done: impl Fn(&Samples) -> bool) -> Samples {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let samples = self.metrics();
            if done(&samples) || std::time::Instant::now() > deadline {
                return samples;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = std::process::Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("exporter did not stop on SIGTERM");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `condition` every 20 ms for up to 20 s; panics if it never holds.
pub fn wait_until(condition: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !condition() {
        assert!(std::time::Instant::now() < deadline, "condition not met within 20 s");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Exim's host-level error lines (`ID H=host [ip]: SMTP error …`) and the
/// recipient lines (`ID ==|** … H=host [ip]…: SMTP error …`) that repeat
/// them, found with plain regexes, independently of the parser. Feed every
/// line of a file in order; [`EximRepeats::is_repeat`] says whether a line is
/// the first repeat of a host-level line still open (which must not count
/// the reply again, see `parse::exim`).
pub struct EximRepeats {
    host_error: regex::Regex,
    recipient_error: regex::Regex,
    /// (message id, host address, error text) → host-level lines not yet repeated.
    open: BTreeMap<(String, String, String), usize>,
}

impl EximRepeats {
    pub fn new() -> Self {
        const ERRORS: &str = r"(?:SMTP error|LMTP error|PRDR error|Malformed SMTP reply|Remote host closed connection)";
        let prefix = r"^\d{4}-\d\d-\d\d [\d:.]+(?: [+-]\d{4})?(?: \[\d+\])? (\S+-\S+-\S+) ";
        EximRepeats {
            host_error: regex::Regex::new(&format!(r"{prefix}H=[^\[]*\[([^\]]+)\]\S* ?({ERRORS} .*)$")).unwrap(),
            recipient_error: regex::Regex::new(&format!(
                r"{prefix}(?:==|\*\*) .*? H=[^\[]*\[([^\]]+)\]\S*(?: [A-Z][A-Za-z]*=\S*)* ?:? ?({ERRORS} .*?)(?: DT=\S+)?$"
            ))
            .unwrap(),
            open: BTreeMap::new(),
        }
    }

    /// Whether `line` is a host-level error line.
    pub fn is_host_level(&self, line: &str) -> bool {
        self.host_error.is_match(line)
    }

    pub fn is_repeat(&mut self, line: &str) -> bool {
        let key = |c: regex::Captures<'_>| (c[1].to_string(), c[2].to_string(), c[3].to_string());
        if let Some(c) = self.host_error.captures(line) {
            *self.open.entry(key(c)).or_default() += 1;
            return false;
        }
        match self.recipient_error.captures(line).and_then(|c| self.open.get_mut(&key(c))) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }
}

impl Default for EximRepeats {
    fn default() -> Self {
        EximRepeats::new()
    }
}
