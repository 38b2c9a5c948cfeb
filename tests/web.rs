//! The secured endpoint over real sockets: TLS and mTLS with a CA made at
//! test time, basic auth with bcrypt hashes, content negotiation, the limits
//! on slow and greedy clients, and reloading the web config and the config
//! file while running.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use common::pki::{self, Ca, Tls};
use common::{header, http_request_bytes, parse_exposition, sum, wait_until, Exporter};

/// Replaces a file the way editors and Kubernetes do: write aside, rename.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text).unwrap();
    fs::rename(&tmp, path).unwrap();
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// A hash as `htpasswd -nBC <cost>` writes it ($2y$).
fn htpasswd(password: &str, cost: u32) -> String {
    bcrypt::hash_with_result(password, cost).unwrap().format_for_version(bcrypt::Version::TwoY)
}

fn run_expecting_failure(args: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mta_exporter")).args(args).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

struct Setup {
    dir: tempfile::TempDir,
    ca: Ca,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("test CA");
        fs::write(dir.path().join("ca.crt"), ca.pem()).unwrap();
        ca.server().write(dir.path(), "server");
        fs::write(dir.path().join("mail.log"), "").unwrap();
        Setup { dir, ca }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }

    fn web_config(&self, text: &str) -> String {
        let path = self.path("web.yml");
        replace(Path::new(&path), text);
        path
    }

    fn start(&self, web_config: &str, extra: &[&str]) -> Exporter {
        let log = self.path("mail.log");
        let mut args = vec!["--log.path", &log, "--web.config.file", web_config];
        args.extend_from_slice(extra);
        Exporter::start(&args)
    }
}

const TLS: &str = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";

#[test]
fn tls_serves_metrics_over_http1_and_http2_and_refuses_plain_http() {
    let setup = Setup::new();
    let web = setup.web_config(TLS);
    let exporter = setup.start(&web, &[]);
    let client = pki::client_config(&setup.ca, None, &[b"http/1.1"]);
    let (status, head, body) = pki::https(&exporter.address, &client, "/metrics", &[]).unwrap();
    assert_eq!(status, 200, "{head}");
    let samples = parse_exposition(&String::from_utf8(body).unwrap());
    assert_eq!(sum(&samples, "mta_exporter_build_info", &[]), 1.0);

    // Plain HTTP on the TLS port gets no HTTP answer.
    assert!(http_request_bytes(&exporter.address, "GET", "/metrics", &[]).is_err());

    // HTTP/2 through ALPN (http2 defaults to true, as in the Go toolkit).
    let h2 = pki::client_config(&setup.ca, None, &[b"h2", b"http/1.1"]);
    let tls = Tls::connect(&exporter.address, h2.clone()).unwrap();
    assert_eq!(tls.alpn().as_deref(), Some(&b"h2"[..]));
    assert_eq!(h2_get(&exporter.address, h2, "/metrics"), 200);
}

/// One GET over HTTP/2 with hyper's client; returns the status.
fn h2_get(address: &str, config: std::sync::Arc<rustls::ClientConfig>, path: &str) -> u16 {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
        let connector = tokio_rustls::TlsConnector::from(config);
        let tls = connector.connect(rustls::pki_types::ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tls),
        )
        .await
        .unwrap();
        tokio::spawn(connection);
        let request = hyper::Request::get(format!("https://localhost{path}"))
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.version(), hyper::Version::HTTP_2);
        response.status().as_u16()
    })
}

#[test]
fn inline_certificate_and_http2_off() {
    let setup = Setup::new();
    let indent = |pem: &str| pem.lines().map(|l| format!("    {l}\n")).collect::<String>();
    let leaf = setup.ca.server();
    let web = setup.web_config(&format!(
        "tls_server_config:\n  cert: |\n{}  key: |\n{}http_server_config:\n  http2: false\n",
        indent(&leaf.cert_pem),
        indent(&leaf.key_pem)
    ));
    let exporter = setup.start(&web, &[]);
    let client = pki::client_config(&setup.ca, None, &[b"h2", b"http/1.1"]);
    let tls = Tls::connect(&exporter.address, client).unwrap();
    assert_eq!(tls.alpn().as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(tls.server_certificate(), leaf.der());
    assert_eq!(tls.request("GET", "/-/healthy", &[]).unwrap().0, 200);
}

#[test]
fn mutual_tls_accepts_the_ca_clients_and_the_allowed_sans_only() {
    let setup = Setup::new();
    let other_ca = Ca::new("someone else");
    let web = setup.web_config(&format!(
        "{TLS}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  client_allowed_sans: [prometheus.example.org]\n"
    ));
    let exporter = setup.start(&web, &[]);
    let get = |identity: Option<&pki::Leaf>| {
        pki::https(&exporter.address, &pki::client_config(&setup.ca, identity, &[]), "/metrics", &[]).map(|r| r.0)
    };
    assert_eq!(get(Some(&setup.ca.client("prometheus.example.org"))).unwrap(), 200);
    assert!(get(None).is_err(), "no client certificate");
    assert!(get(Some(&other_ca.client("prometheus.example.org"))).is_err(), "a certificate from another CA");
    assert!(get(Some(&setup.ca.client("grafana.example.org"))).is_err(), "a SAN that is not allowed");
}

#[test]
fn the_other_client_auth_types() {
    let setup = Setup::new();
    let stranger = Ca::new("self-made").client("anyone");
    let ours = setup.ca.client("prometheus");
    // (client_auth_type, without a certificate, with a stranger's, with ours)
    for (auth, none, strange, own) in [
        ("RequestClientCert", true, true, true),
        ("RequireAnyClientCert", false, true, true),
        ("VerifyClientCertIfGiven", true, false, true),
    ] {
        let web = setup.web_config(&format!("{TLS}  client_auth_type: {auth}\n  client_ca_file: ca.crt\n"));
        let exporter = setup.start(&web, &[]);
        let get = |identity: Option<&pki::Leaf>| {
            pki::https(&exporter.address, &pki::client_config(&setup.ca, identity, &[]), "/-/healthy", &[])
                .map(|r| r.0)
                .unwrap_or(0)
                == 200
        };
        assert_eq!((get(None), get(Some(&stranger)), get(Some(&ours))), (none, strange, own), "{auth}");
    }
}

#[test]
fn basic_auth_with_bcrypt_hashes() {
    let setup = Setup::new();
    let web = setup.web_config(&format!(
        "basic_auth_users:\n  alice: {}\n  bob: {}\nhttp_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n    X-Frame-Options: deny\n",
        htpasswd("correct horse", 10),
        bcrypt::hash_with_result("battery staple", 4).unwrap().format_for_version(bcrypt::Version::TwoB),
    ));
    let exporter = setup.start(&web, &[]);
    let get = |path: &str, auth: Option<String>| {
        let headers: Vec<(&str, &str)> = auth.as_deref().map(|a| vec![("Authorization", a)]).unwrap_or_default();
        http_request_bytes(&exporter.address, "GET", path, &headers).unwrap()
    };
    for _ in 0..3 {
        let (status, head, _) = get("/metrics", Some(basic("alice", "correct horse")));
        assert_eq!(status, 200, "{head}");
        assert_eq!(header(&head, "x-frame-options"), Some("deny"));
    }
    assert_eq!(get("/metrics", Some(basic("bob", "battery staple"))).0, 200);
    let refused = [
        get("/metrics", Some(basic("alice", "wrong"))),
        get("/metrics", Some(basic("mallory", "correct horse"))),
        get("/metrics", None),
        get("/metrics", Some("Bearer abc".into())),
        get("/-/healthy", None),
        get("/no-such-page", None),
    ];
    for (status, head, body) in &refused {
        assert_eq!(*status, 401, "{head}");
        assert_eq!(header(head, "www-authenticate"), Some("Basic realm=\"mta_exporter\", charset=\"UTF-8\""));
        assert_eq!(header(head, "x-content-type-options"), Some("nosniff"));
        assert_eq!(body, b"Unauthorized\n");
    }
    // The three scrapes as alice paid bcrypt once: the outcome is cached.
    let bcrypt_runs = |user: &str| {
        let needle = format!("user={user}");
        exporter
            .stderr
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("checked credentials with bcrypt") && l.contains(&needle))
            .count()
    };
    assert_eq!(bcrypt_runs("alice"), 2, "one for the right password, one for the wrong one");
    assert_eq!(bcrypt_runs("mallory"), 1);
}

#[test]
fn gzip_and_openmetrics_when_asked() {
    let setup = Setup::new();
    let log = setup.path("mail.log");
    let exporter = Exporter::start(&["--log.path", &log]);
    let get = |headers: &[(&str, &str)]| http_request_bytes(&exporter.address, "GET", "/metrics", headers).unwrap();

    let (status, head, plain) = get(&[]);
    assert_eq!(status, 200);
    assert_eq!(header(&head, "content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    assert_eq!(header(&head, "content-encoding"), None);

    let (_, head, compressed) = get(&[("Accept-Encoding", "gzip")]);
    assert_eq!(header(&head, "content-encoding"), Some("gzip"));
    assert_eq!(header(&head, "vary"), Some("Accept, Accept-Encoding"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(&compressed[..]).read_to_string(&mut text).unwrap();
    let families = |t: &str| t.lines().filter(|l| l.starts_with("# TYPE")).map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(families(&text), families(&String::from_utf8(plain).unwrap()));
    assert!(compressed.len() * 2 < text.len(), "{} bytes compressed from {}", compressed.len(), text.len());
    assert_eq!(header(&get(&[("Accept-Encoding", "gzip;q=0, identity")]).1, "content-encoding"), None);

    // What Prometheus sends by default.
    let accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let (_, head, body) = get(&[("Accept", accept), ("Accept-Encoding", "gzip")]);
    assert_eq!(header(&head, "content-type"), Some("application/openmetrics-text; version=1.0.0; charset=utf-8"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(&body[..]).read_to_string(&mut text).unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(text.contains("# TYPE mta_log_lines counter\n"), "{text}");
}

#[test]
fn slow_clients_are_cut_off() {
    // Headers that never end.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    let exporter = Exporter::start(&["--log.path", log.to_str().unwrap(), "--web.read-header-timeout", "1s"]);
    let mut stream = TcpStream::connect(&exporter.address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ").unwrap();
    let mut answer = Vec::new();
    // Returns once the server closes; the 20 s read timeout would be an error.
    stream.read_to_end(&mut answer).unwrap();
    assert!(!String::from_utf8_lossy(&answer).contains("200 OK"), "{answer:?}");

    // A TLS client that never says hello.
    let setup = Setup::new();
    let web = setup.web_config(TLS);
    let exporter = setup.start(&web, &["--web.read-header-timeout", "1s"]);
    let mut silent = TcpStream::connect(&exporter.address).unwrap();
    silent.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(silent.read(&mut buf).unwrap(), 0, "the server closed the connection");
}

#[test]
fn an_idle_connection_is_closed() {
    let setup = Setup::new();
    let web = setup.web_config(TLS);
    let exporter = setup.start(&web, &["--web.idle-timeout", "1s", "--web.read-header-timeout", "60s"]);
    // An HTTP/2 client that never sends a request: only the idle timeout
    // applies (the header read timeout is HTTP/1.1's).
    let mut tls = Tls::connect(&exporter.address, pki::client_config(&setup.ca, None, &[b"h2"])).unwrap();
    assert_eq!(tls.alpn().as_deref(), Some(&b"h2"[..]));
    tls.stream.sock.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match tls.stream.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => continue, // the server's SETTINGS frame
            Err(e) => {
                assert!(
                    !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
                    "not closed: {e}"
                );
                break;
            }
        }
    }
}

#[test]
fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    let exporter = Exporter::start(&[
        "--log.path",
        log.to_str().unwrap(),
        "--web.max-connections",
        "1",
        "--web.read-header-timeout",
        "60s",
    ]);
    // A keep-alive client that has had its answer holds the only slot.
    let mut holder = TcpStream::connect(&exporter.address).unwrap();
    holder.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    holder.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    while !answer.ends_with(b"Healthy\n") {
        let mut buf = [0u8; 256];
        let n = holder.read(&mut buf).unwrap();
        assert!(n > 0, "closed early: {answer:?}");
        answer.extend_from_slice(&buf[..n]);
    }
    let mut waiting = TcpStream::connect(&exporter.address).unwrap();
    waiting.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    waiting.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut buf = [0u8; 256];
    let err = waiting.read(&mut buf).expect_err("no answer while the only slot is taken");
    assert!(matches!(err.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut), "{err}");
    drop(holder);
    waiting.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answer = Vec::new();
    waiting.read_to_end(&mut answer).unwrap();
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200 OK"), "{answer:?}");
}

#[test]
fn oversized_requests_and_wrong_methods() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    let exporter = Exporter::start(&["--log.path", log.to_str().unwrap()]);
    let big = "x".repeat(20 * 1024);
    let (status, _, _) = http_request_bytes(&exporter.address, "GET", "/metrics", &[("X-Big", &big)]).unwrap();
    assert_eq!(status, 431);
    let (status, _, _) =
        http_request_bytes(&exporter.address, "POST", "/-/healthy", &[("Content-Length", "100000")]).unwrap();
    assert_eq!(status, 413);
    let (status, head, _) = http_request_bytes(&exporter.address, "DELETE", "/metrics", &[]).unwrap();
    assert_eq!((status, header(&head, "allow")), (405, Some("GET, HEAD")));
    let (status, head, body) = http_request_bytes(&exporter.address, "HEAD", "/metrics", &[]).unwrap();
    assert_eq!(status, 200, "{head}");
    assert!(body.is_empty());
}

fn reloads(samples: &common::Samples, file: &str, result: &str) -> f64 {
    sum(samples, "mta_exporter_config_reloads_total", &[("file", file), ("result", result)])
}

#[test]
fn web_config_changes_apply_and_a_broken_edit_keeps_the_last_good_one() {
    let setup = Setup::new();
    let users = |user: &str| format!("basic_auth_users:\n  {user}: {}\n", htpasswd("pw", 4));
    let web = setup.web_config(&users("alice"));
    let exporter = setup.start(&web, &[]);
    let status = |user: &str| {
        let auth = basic(user, "pw");
        http_request_bytes(&exporter.address, "GET", "/-/healthy", &[("Authorization", &auth)]).unwrap().0
    };
    let metrics = |user: &str| {
        let auth = basic(user, "pw");
        let (_, _, body) =
            http_request_bytes(&exporter.address, "GET", "/metrics", &[("Authorization", &auth)]).unwrap();
        parse_exposition(&String::from_utf8(body).unwrap())
    };
    assert_eq!(status("alice"), 200);
    let samples = metrics("alice");
    assert_eq!((reloads(&samples, "web_config", "success"), reloads(&samples, "web_config", "failure")), (0.0, 0.0));

    replace(Path::new(&web), &users("bob"));
    wait_until(|| status("bob") == 200);
    assert_eq!(status("alice"), 401);
    assert_eq!(reloads(&metrics("bob"), "web_config", "success"), 1.0);

    replace(Path::new(&web), "basic_auth_users:\n  carol: not-a-hash\n");
    wait_until(|| reloads(&metrics("bob"), "web_config", "failure") == 1.0);
    let samples = metrics("bob");
    assert_eq!(sum(&samples, "mta_exporter_config_last_reload_successful", &[("file", "web_config")]), 0.0);
    assert_eq!(status("carol"), 401);
    assert!(exporter
        .stderr
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("web config reload failed") && l.contains("user \\\"carol\\\"")));

    replace(Path::new(&web), &users("carol"));
    wait_until(|| status("carol") == 200);
    let samples = metrics("carol");
    assert_eq!((reloads(&samples, "web_config", "success"), reloads(&samples, "web_config", "failure")), (2.0, 1.0));
    assert_eq!(sum(&samples, "mta_exporter_config_last_reload_successful", &[("file", "web_config")]), 1.0);
}

#[test]
fn a_rotated_certificate_is_served_without_restart() {
    let setup = Setup::new();
    let web = setup.web_config(TLS);
    let exporter = setup.start(&web, &[]);
    let client = pki::client_config(&setup.ca, None, &[]);
    let served = || Tls::connect(&exporter.address, client.clone()).unwrap().server_certificate();
    let first = served();
    // cert-manager style: a new key pair, written in place.
    let renewed = setup.ca.server();
    let dir = setup.dir.path();
    replace(&dir.join("server.key"), &renewed.key_pem);
    replace(&dir.join("server.crt"), &renewed.cert_pem);
    wait_until(|| served() == renewed.der());
    assert_ne!(first, renewed.der());

    // Removing TLS by an edit is refused: the endpoint stays on TLS.
    replace(Path::new(&web), "basic_auth_users: {}\n");
    let metrics = || {
        let (_, _, body) = pki::https(&exporter.address, &client, "/metrics", &[]).unwrap();
        parse_exposition(&String::from_utf8(body).unwrap())
    };
    wait_until(|| reloads(&metrics(), "web_config", "failure") == 1.0);
    assert!(http_request_bytes(&exporter.address, "GET", "/metrics", &[]).is_err());
    assert!(exporter.stderr.lock().unwrap().iter().any(|l| l.contains("switching TLS off needs a restart")));
}

#[test]
fn invalid_web_config_is_refused_at_start_with_one_line() {
    let setup = Setup::new();
    let log = setup.path("mail.log");
    for (text, needle) in [
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: missing.key\n",
            "tls_server_config.key_file: cannot read",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: Maybe\n",
            "client_auth_type \"Maybe\" is not one of",
        ),
        ("basic_auth_users:\n  alice: hunter2\n", "user \"alice\" is not a bcrypt hash"),
        ("http_server_config:\n  headers:\n    Server: nginx\n", "HTTP header \"Server\" can not be configured"),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS14\n",
            "min_version \"TLS14\"",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: ca.crt\n",
            "key_file: holds no usable PEM private key",
        ),
        ("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  sni: x\n", "sni"),
    ] {
        let web = setup.web_config(text);
        let (code, stderr) = run_expecting_failure(&["--log.path", &log, "--web.config.file", &web]);
        assert_eq!(code, Some(2), "{text}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{text}: {stderr}");
        assert!(stderr.contains(needle) && stderr.contains("web config file"), "{text}: {stderr}");
    }
    let (code, stderr) = run_expecting_failure(&["--log.path", &log, "--web.config.file", &setup.path("nope.yml")]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("cannot read it"), "{stderr}");
}

const USER_UNKNOWN: &str = "Nov 28 17:35:02 mx1 postfix/smtp[11]: 5B2C3D4E5F: to=<nobody@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.26]:25, delay=0.5, delays=0.1/0/0.2/0.2, dsn=5.1.1, status=bounced (host gmail-smtp-in.l.google.com[142.250.102.26] said: 550-5.1.1 The email account that you tried to reach does not exist. (in reply to RCPT TO command))\n";

fn append(path: &Path, text: &str) {
    fs::OpenOptions::new().append(true).create(true).open(path).unwrap().write_all(text.as_bytes()).unwrap();
}

#[test]
fn lifecycle_reload_changes_rules_and_sources_and_keeps_counts() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    fs::write(&a, "").unwrap();
    fs::write(&b, "").unwrap();
    let config = dir.path().join("mta.yaml");
    let sources = |names: &[&str]| -> String {
        names
            .iter()
            .map(|n| format!("  - path: {}\n    name: {n}\n", dir.path().join(format!("{n}.log")).display()))
            .collect()
    };
    replace(&config, &format!("sources:\n{}", sources(&["a"])));
    let exporter = Exporter::start(&["--config.file", config.to_str().unwrap(), "--web.enable-lifecycle"]);
    wait_until(|| exporter.get("/-/ready").0 == 200);
    let cause = |s: &common::Samples, c: &str| sum(s, "mta_smtp_replies_total", &[("cause", c)]);
    let lines = |s: &common::Samples, source: &str| sum(s, "mta_log_lines_total", &[("source", source)]);
    let post = || common::http_request(&exporter.address, "POST", "/-/reload", &[]).unwrap();

    append(&a, USER_UNKNOWN);
    let samples = exporter.metrics_when(|s| lines(s, "a") == 1.0);
    assert_eq!(cause(&samples, "user_unknown"), 1.0);

    // New rules, a new source.
    replace(
        &config,
        &format!(
            "sources:\n{}causes:\n  rules:\n    - cause: our_rule\n      text: 'tried to reach does not exist'\n",
            sources(&["a", "b"])
        ),
    );
    let (status, _, body) = post();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "Reloaded: 2 sources (added: b; removed: none)\n");
    // A new source starts at the end of its file, once it has opened it.
    wait_until(|| exporter.get("/-/ready").0 == 200);
    append(&a, USER_UNKNOWN);
    append(&b, USER_UNKNOWN);
    let samples = exporter.metrics_when(|s| lines(s, "a") == 2.0 && lines(s, "b") == 1.0);
    assert_eq!((lines(&samples, "a"), lines(&samples, "b")), (2.0, 1.0), "a kept its count");
    assert_eq!((cause(&samples, "user_unknown"), cause(&samples, "our_rule")), (1.0, 2.0));
    assert_eq!(reloads(&samples, "config", "success"), 1.0);

    // A source removed: it leaves the landing page; its counts stay.
    replace(&config, &format!("sources:\n{}", sources(&["b"])));
    assert_eq!(post().2, "Reloaded: 1 sources (added: none; removed: a)\n");
    let landing = exporter.get("/").2;
    assert!(landing.contains("b.log") && !landing.contains("a.log"), "{landing}");
    append(&a, USER_UNKNOWN);
    append(&b, USER_UNKNOWN);
    let samples = exporter.metrics_when(|s| lines(s, "b") == 2.0);
    assert_eq!((lines(&samples, "a"), lines(&samples, "b")), (2.0, 2.0));

    // A broken file: 500 with the reason, and the running config stays.
    replace(&config, "sources:\n  - pth: x\n");
    let (status, _, body) = post();
    assert_eq!(status, 500);
    assert!(body.starts_with("failed to reload config: config file") && body.contains("pth"), "{body}");
    append(&b, USER_UNKNOWN);
    let samples = exporter.metrics_when(|s| lines(s, "b") == 3.0);
    assert_eq!(lines(&samples, "b"), 3.0);
    assert_eq!((reloads(&samples, "config", "success"), reloads(&samples, "config", "failure")), (2.0, 1.0));
    assert_eq!(sum(&samples, "mta_exporter_config_last_reload_successful", &[("file", "config")]), 0.0);
    assert_eq!(exporter.get("/-/reload").0, 405);
}

#[test]
fn sighup_reloads_and_the_lifecycle_api_is_off_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    fs::write(&log, "").unwrap();
    let config = dir.path().join("mta.yaml");
    replace(&config, "");
    let exporter = Exporter::start(&["--config.file", config.to_str().unwrap(), "--log.path", log.to_str().unwrap()]);
    let (status, _, _) = common::http_request(&exporter.address, "POST", "/-/reload", &[]).unwrap();
    assert_eq!(status, 403);
    replace(&config, "causes:\n  rules:\n    - cause: our_rule\n      text: 'tried to reach does not exist'\n");
    std::process::Command::new("kill").args(["-HUP", &exporter.pid().to_string()]).status().unwrap();
    exporter.metrics_when(|s| reloads(s, "config", "success") == 1.0);
    append(&log, USER_UNKNOWN);
    let samples = exporter.metrics_when(|s| sum(s, "mta_log_lines_total", &[]) == 1.0);
    assert_eq!(sum(&samples, "mta_smtp_replies_total", &[("cause", "our_rule")]), 1.0);
    assert!(exporter.terminate().success());
}

#[test]
fn systemd_socket_activation() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    // What systemd does: the socket as fd 3, LISTEN_PID naming the service.
    // The shell moves stdin (the socket) to fd 3 and execs in its own pid.
    let script = format!(
        "exec 3<&0 0</dev/null; LISTEN_PID=$$ LISTEN_FDS=1 exec {} --web.systemd-socket --log.path {} --web.listen-address 127.0.0.1:1",
        env!("CARGO_BIN_EXE_mta_exporter"),
        log.display()
    );
    let mut child = std::process::Command::new("sh")
        .args(["-c", &script])
        .stdin(std::process::Stdio::from(std::os::fd::OwnedFd::from(listener)))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        match common::http_get(&address, "/-/healthy") {
            Ok((status, _, _)) => break status,
            Err(_) if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(err) => panic!("no answer on the passed socket: {err}"),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200);
}
