//! TLS for the endpoint: `tls_server_config` turned into a rustls
//! [`ServerConfig`] (ring provider), including the five client-auth types of
//! the Go toolkit and its `client_allowed_sans` check.
//!
//! What rustls cannot honour is accepted, listed in
//! [`WebConfig::ignored`](super::config::WebConfig::ignored) and logged:
//! TLS 1.0/1.1 as `min_version` (TLS 1.2 is the floor), Go's CBC and
//! RSA-key-exchange cipher suites, TLS 1.3 suite names (all TLS 1.3 suites
//! are always on, as in Go) and the P-521 curve. A configuration that would
//! leave nothing to negotiate is an error instead.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, SupportedKxGroup, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme, SupportedCipherSuite,
};

use super::config::{FileReader, TlsServerConfig};

/// A built TLS configuration and a one-line description for the log.
#[derive(Clone)]
pub struct TlsSettings {
    pub server_config: Arc<ServerConfig>,
    pub summary: String,
}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings").field("summary", &self.summary).finish_non_exhaustive()
    }
}

/// `client_auth_type`, as named by the Go toolkit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    NoClientCert,
    /// Ask for a certificate; accept none, and accept any without checking it.
    RequestClientCert,
    /// Require a certificate, but do not check who issued it.
    RequireAnyClientCert,
    /// Accept none; check one that is given against the client CA.
    VerifyClientCertIfGiven,
    /// Require a certificate issued by the client CA.
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    const NAMES: &'static str =
        "NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert";

    fn parse(text: &str) -> Result<ClientAuth, String> {
        Ok(match text {
            "" | "NoClientCert" => ClientAuth::NoClientCert,
            "RequestClientCert" => ClientAuth::RequestClientCert,
            // "RequireClientCert" is the Go toolkit's old name, kept there too.
            "RequireAnyClientCert" | "RequireClientCert" => ClientAuth::RequireAnyClientCert,
            "VerifyClientCertIfGiven" => ClientAuth::VerifyClientCertIfGiven,
            "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerifyClientCert,
            other => return Err(format!("tls_server_config.client_auth_type {other:?} is not one of {}", Self::NAMES)),
        })
    }
}

/// Go's cipher suite names that rustls (ring) implements, for TLS 1.2.
fn tls12_suite(name: &str) -> Option<SupportedCipherSuite> {
    use rustls::crypto::ring::cipher_suite as cs;
    Some(match name {
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        _ => return None,
    })
}

/// Names Go's `tls.CipherSuites()` knows that rustls does not implement
/// (CBC modes, RSA key exchange) or that only name TLS 1.3 suites (which Go
/// does not let a config restrict either).
const GO_ONLY_SUITES: &[&str] = &[
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
];
const TLS13_SUITES: &[&str] = &["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Version {
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

impl Version {
    fn parse(key: &str, text: &str) -> Result<Version, String> {
        Ok(match text {
            "TLS10" => Version::Tls10,
            "TLS11" => Version::Tls11,
            "TLS12" => Version::Tls12,
            "TLS13" => Version::Tls13,
            other => return Err(format!("tls_server_config.{key} {other:?} is not one of TLS10, TLS11, TLS12, TLS13")),
        })
    }
}

pub(super) fn build(
    config: &TlsServerConfig,
    http2: bool,
    reader: &mut FileReader,
    ignored: &mut Vec<String>,
) -> Result<TlsSettings, String> {
    let client_auth = ClientAuth::parse(config.client_auth_type.as_deref().unwrap_or(""))?;

    // Versions: rustls has 1.2 and 1.3.
    let min = Version::parse("min_version", config.min_version.as_deref().unwrap_or("TLS12"))?;
    let max = Version::parse("max_version", config.max_version.as_deref().unwrap_or("TLS13"))?;
    if max < Version::Tls12 {
        return Err("tls_server_config.max_version: rustls implements TLS 1.2 and 1.3 only; set TLS12 or TLS13".into());
    }
    if min > max {
        return Err(format!("tls_server_config.min_version {min:?} is above max_version {max:?}").replace("Tls", "TLS"));
    }
    if min < Version::Tls12 {
        ignored.push(format!(
            "tls_server_config.min_version {}: rustls does not implement TLS 1.0/1.1, TLS 1.2 is the lowest version offered",
            config.min_version.as_deref().unwrap_or_default()
        ));
    }
    let tls12 = min <= Version::Tls12;
    let tls13 = max == Version::Tls13;
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        [(tls12, &rustls::version::TLS12), (tls13, &rustls::version::TLS13)]
            .into_iter()
            .filter_map(|(on, v)| on.then_some(v))
            .collect();

    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(names) = &config.cipher_suites {
        let mut chosen: Vec<SupportedCipherSuite> =
            provider.cipher_suites.iter().copied().filter(|s| s.version() == &rustls::version::TLS13).collect();
        let mut any_tls12 = false;
        for name in names {
            if let Some(suite) = tls12_suite(name) {
                chosen.push(suite);
                any_tls12 = true;
            } else if TLS13_SUITES.contains(&name.as_str()) {
                ignored.push(format!(
                    "tls_server_config.cipher_suites {name}: TLS 1.3 suites are always all enabled (as in Go)"
                ));
            } else if GO_ONLY_SUITES.contains(&name.as_str()) {
                ignored.push(format!("tls_server_config.cipher_suites {name}: not implemented by rustls"));
            } else {
                return Err(format!("tls_server_config.cipher_suites: unknown cipher suite {name:?}"));
            }
        }
        if tls12 && !any_tls12 && !names.is_empty() {
            return Err(format!(
                "tls_server_config.cipher_suites: none of the listed suites can be used for TLS 1.2 here; add one of {} or set min_version: TLS13",
                rustls_tls12_names().join(", ")
            ));
        }
        if !names.is_empty() {
            provider.cipher_suites = chosen;
        }
    }
    if let Some(curves) = &config.curve_preferences {
        let mut groups: Vec<&'static dyn SupportedKxGroup> = Vec::new();
        for name in curves {
            use rustls::crypto::ring::kx_group;
            match name.as_str() {
                "X25519" => groups.push(kx_group::X25519),
                "CurveP256" => groups.push(kx_group::SECP256R1),
                "CurveP384" => groups.push(kx_group::SECP384R1),
                "CurveP521" => {
                    ignored.push("tls_server_config.curve_preferences CurveP521: not implemented by rustls (ring)".into())
                }
                other => {
                    return Err(format!(
                        "tls_server_config.curve_preferences: unknown curve {other:?} (known: CurveP256, CurveP384, CurveP521, X25519)"
                    ))
                }
            }
        }
        if groups.is_empty() && !curves.is_empty() {
            return Err("tls_server_config.curve_preferences: none of the listed curves is implemented by rustls; add X25519, CurveP256 or CurveP384".into());
        }
        if !groups.is_empty() {
            provider.kx_groups = groups;
        }
    }
    let provider = Arc::new(provider);

    let (chain, key) = certificate_and_key(config, reader)?;
    let client_roots = client_ca(config, reader)?;
    let verifier = client_verifier(config, client_auth, client_roots, &provider)?;

    let mut server_config = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_server_config: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => {
                "tls_server_config: the private key does not belong to the certificate (check key_file/key against cert_file/cert)".to_string()
            }
            other => format!("tls_server_config: cannot use the certificate and key: {other}"),
        })?;
    server_config.ignore_client_order = config.prefer_server_cipher_suites.unwrap_or(true);
    server_config.alpn_protocols =
        if http2 { vec![b"h2".to_vec(), b"http/1.1".to_vec()] } else { vec![b"http/1.1".to_vec()] };

    let summary = format!(
        "{}, client_auth_type {client_auth:?}{}",
        match (tls12, tls13) {
            (true, true) => "TLS 1.2-1.3",
            (true, false) => "TLS 1.2",
            _ => "TLS 1.3",
        },
        if config.client_allowed_sans.is_some() { " with client_allowed_sans" } else { "" }
    );
    Ok(TlsSettings { server_config: Arc::new(server_config), summary })
}

fn rustls_tls12_names() -> Vec<&'static str> {
    vec![
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    ]
}

fn certificate_and_key(
    config: &TlsServerConfig,
    reader: &mut FileReader,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let (cert_pem, cert_key) = match (&config.cert_file, &config.cert) {
        (Some(_), Some(_)) => return Err("tls_server_config: set cert_file or cert, not both".into()),
        (Some(path), None) => (reader.read("cert_file", path)?, "cert_file"),
        (None, Some(text)) => (text.clone().into_bytes(), "cert"),
        (None, None) => return Err("tls_server_config: missing one of cert or cert_file".into()),
    };
    let (key_pem, key_key) = match (&config.key_file, &config.key) {
        (Some(_), Some(_)) => return Err("tls_server_config: set key_file or key, not both".into()),
        (Some(path), None) => (reader.read("key_file", path)?, "key_file"),
        (None, Some(text)) => (text.clone().into_bytes(), "key"),
        (None, None) => return Err("tls_server_config: missing one of key or key_file".into()),
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tls_server_config.{cert_key}: not a valid PEM certificate: {e}"))?;
    if chain.is_empty() {
        return Err(format!("tls_server_config.{cert_key}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)"));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        format!("tls_server_config.{key_key}: holds no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {e}")
    })?;
    Ok((chain, key))
}

fn client_ca(config: &TlsServerConfig, reader: &mut FileReader) -> Result<Option<RootCertStore>, String> {
    let (pem, key) = match (&config.client_ca_file, &config.client_ca) {
        (Some(_), Some(_)) => return Err("tls_server_config: set client_ca_file or client_ca, not both".into()),
        (Some(path), None) => (reader.read("client_ca_file", path)?, "client_ca_file"),
        (None, Some(text)) => (text.clone().into_bytes(), "client_ca"),
        (None, None) => return Ok(None),
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("tls_server_config.{key}: not a valid PEM certificate: {e}"))?;
        roots.add(cert).map_err(|e| format!("tls_server_config.{key}: not a usable CA certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("tls_server_config.{key}: holds no PEM certificate"));
    }
    Ok(Some(roots))
}

fn client_verifier(
    config: &TlsServerConfig,
    auth: ClientAuth,
    roots: Option<RootCertStore>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let sans = match &config.client_allowed_sans {
        Some(sans) if sans.is_empty() => {
            return Err("tls_server_config.client_allowed_sans is empty, so no client could connect; remove it or list the allowed SANs".into())
        }
        Some(sans) => {
            if !matches!(auth, ClientAuth::RequireAnyClientCert | ClientAuth::RequireAndVerifyClientCert) {
                return Err("tls_server_config.client_allowed_sans requires client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert".into());
            }
            Some(sans.clone())
        }
        None => None,
    };
    if roots.is_some() && auth == ClientAuth::NoClientCert {
        return Err(
            "tls_server_config: a client CA is configured but client_auth_type is NoClientCert; set a client_auth_type"
                .into(),
        );
    }
    let algorithms = provider.signature_verification_algorithms;
    let hints: Vec<DistinguishedName> = roots.as_ref().map(|r| r.subjects()).unwrap_or_default();
    let inner: Arc<dyn ClientCertVerifier> = match auth {
        ClientAuth::NoClientCert => return Ok(WebPkiClientVerifier::no_client_auth()),
        ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert => {
            Arc::new(AnyClientCert { mandatory: auth == ClientAuth::RequireAnyClientCert, hints, algorithms })
        }
        ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert => {
            let Some(roots) = roots else {
                return Err(format!(
                    "tls_server_config.client_auth_type {auth:?} needs client_ca_file (or client_ca) to verify client certificates against"
                ));
            };
            let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider));
            let builder =
                if auth == ClientAuth::VerifyClientCertIfGiven { builder.allow_unauthenticated() } else { builder };
            builder.build().map_err(|e| format!("tls_server_config: cannot verify client certificates: {e}"))?
        }
    };
    Ok(match sans {
        Some(allowed) => Arc::new(AllowedSans { inner, allowed }),
        None => inner,
    })
}

/// `RequestClientCert` / `RequireAnyClientCert`: the certificate is not
/// checked against any CA (that is what these types mean in Go), but the
/// handshake signature still proves the client holds its key.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    hints: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        x509_parser::parse_x509_certificate(end_entity)
            .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `client_allowed_sans`: after the inner verifier, the client certificate
/// must carry one of these SANs (DNS name, e-mail address, IP address or
/// URI), compared as exact strings, as in the Go toolkit.
#[derive(Debug)]
struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

impl ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self.inner.verify_client_cert(end_entity, intermediates, now)?;
        let sans = subject_alt_names(end_entity)
            .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
        if sans.iter().any(|san| self.allowed.contains(san)) {
            Ok(verified)
        } else {
            tracing::debug!(sans = ?sans, "client certificate has none of the allowed SANs");
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The SANs of a certificate as strings, formatted as Go formats them.
fn subject_alt_names(der: &[u8]) -> Result<Vec<String>, ()> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|_| ())?;
    let Some(extension) = cert.subject_alternative_name().map_err(|_| ())? else {
        return Ok(Vec::new());
    };
    let mut names = Vec::new();
    for name in &extension.value.general_names {
        match name {
            GeneralName::DNSName(n) | GeneralName::RFC822Name(n) | GeneralName::URI(n) => names.push((*n).to_string()),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => names.push(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*bytes).map_err(|_| ())?).to_string()),
                16 => names.push(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*bytes).map_err(|_| ())?).to_string()),
                _ => {}
            },
            _ => {}
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::config::load;

    struct Pki {
        dir: tempfile::TempDir,
    }

    /// A CA, a server certificate for localhost and a client certificate
    /// with the SANs `prometheus` and `spiffe://cluster.local/prom`.
    fn pki() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let server_key = rcgen::KeyPair::generate().unwrap();
        let server = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&server_key, &issuer)
            .unwrap();
        let client_key = rcgen::KeyPair::generate().unwrap();
        let mut client_params = rcgen::CertificateParams::new(vec!["prometheus".to_string()]).unwrap();
        client_params.subject_alt_names.push(rcgen::SanType::URI("spiffe://cluster.local/prom".try_into().unwrap()));
        client_params.subject_alt_names.push(rcgen::SanType::IpAddress("10.1.2.3".parse().unwrap()));
        client_params.subject_alt_names.push(rcgen::SanType::Rfc822Name("prom@example.org".try_into().unwrap()));
        let client = client_params.signed_by(&client_key, &issuer).unwrap();
        std::fs::write(dir.path().join("ca.crt"), ca_cert.pem()).unwrap();
        std::fs::write(dir.path().join("server.crt"), server.pem()).unwrap();
        std::fs::write(dir.path().join("server.key"), server_key.serialize_pem()).unwrap();
        std::fs::write(dir.path().join("client.crt"), client.pem()).unwrap();
        std::fs::write(dir.path().join("other.key"), rcgen::KeyPair::generate().unwrap().serialize_pem()).unwrap();
        Pki { dir }
    }

    fn try_load(pki: &Pki, tls: &str) -> Result<super::super::config::WebConfig, String> {
        let path = pki.dir.path().join("web.yml");
        std::fs::write(&path, format!("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n{tls}"))
            .unwrap();
        load(&path).1.map_err(|e| e.message)
    }

    #[test]
    fn every_client_auth_type_loads() {
        let pki = pki();
        for auth in ["NoClientCert", "RequestClientCert", "RequireAnyClientCert"] {
            let config = try_load(&pki, &format!("  client_auth_type: {auth}\n")).unwrap();
            assert!(config.tls.unwrap().summary.contains(auth));
        }
        for auth in
            ["RequestClientCert", "RequireAnyClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"]
        {
            let config = try_load(&pki, &format!("  client_auth_type: {auth}\n  client_ca_file: ca.crt\n")).unwrap();
            assert!(config.tls.unwrap().summary.contains(auth));
        }
    }

    #[test]
    fn tls_mistakes_are_named() {
        let pki = pki();
        for (extra, needle) in [
            ("  client_auth_type: Sometimes\n", "is not one of NoClientCert"),
            ("  client_auth_type: RequireAndVerifyClientCert\n", "needs client_ca_file"),
            ("  client_ca_file: ca.crt\n", "client_auth_type is NoClientCert"),
            ("  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.crt\n  client_allowed_sans: [prometheus]\n", "client_allowed_sans requires"),
            ("  client_auth_type: RequireAnyClientCert\n  client_allowed_sans: []\n", "client_allowed_sans is empty"),
            ("  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: server.key\n", "client_ca_file: holds no PEM certificate"),
            ("  min_version: TLS13\n  max_version: TLS12\n", "min_version TLS13 is above max_version TLS12"),
            ("  max_version: TLS11\n", "TLS 1.2 and 1.3 only"),
            ("  min_version: SSL3\n", "\"SSL3\" is not one of"),
            ("  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n", "unknown cipher suite"),
            ("  cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\n", "none of the listed suites"),
            ("  curve_preferences: [CurveP521]\n", "none of the listed curves"),
            ("  curve_preferences: [Curve42]\n", "unknown curve"),
        ] {
            let err = try_load(&pki, extra).unwrap_err();
            assert!(err.contains(needle), "{extra:?}: {err}");
        }
        let path = pki.dir.path().join("web.yml");
        std::fs::write(&path, "tls_server_config:\n  cert_file: server.crt\n  key_file: other.key\n").unwrap();
        let err = load(&path).1.unwrap_err().message;
        assert!(err.contains("does not belong to the certificate"), "{err}");
        std::fs::write(&path, "tls_server_config:\n  cert_file: server.key\n  key_file: server.key\n").unwrap();
        let err = load(&path).1.unwrap_err().message;
        assert!(err.contains("cert_file: holds no PEM certificate"), "{err}");
    }

    #[test]
    fn what_rustls_cannot_do_is_listed_not_fatal() {
        let pki = pki();
        let config = try_load(
            &pki,
            "  min_version: TLS10\n  cipher_suites: [TLS_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n  curve_preferences: [CurveP521, X25519]\n",
        )
        .unwrap();
        assert_eq!(config.ignored.len(), 4, "{:#?}", config.ignored);
        let tls = config.tls.unwrap();
        let suites: Vec<String> =
            tls.server_config.crypto_provider().cipher_suites.iter().map(|s| format!("{:?}", s.suite())).collect();
        assert_eq!(
            suites,
            [
                "TLS13_AES_256_GCM_SHA384",
                "TLS13_AES_128_GCM_SHA256",
                "TLS13_CHACHA20_POLY1305_SHA256",
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
            ]
        );
        assert_eq!(tls.server_config.crypto_provider().kx_groups.len(), 1);
        assert!(tls.server_config.ignore_client_order);
    }

    #[test]
    fn inline_certificate_and_key() {
        let pki = pki();
        let indent = |text: String| text.lines().map(|l| format!("    {l}\n")).collect::<String>();
        let cert = indent(std::fs::read_to_string(pki.dir.path().join("server.crt")).unwrap());
        let key = indent(std::fs::read_to_string(pki.dir.path().join("server.key")).unwrap());
        let path = pki.dir.path().join("inline.yml");
        std::fs::write(
            &path,
            format!("tls_server_config:\n  cert: |\n{cert}  key: |\n{key}http_server_config:\n  http2: false\n"),
        )
        .unwrap();
        let config = load(&path).1.unwrap();
        assert_eq!(config.tls.unwrap().server_config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn sans_are_read_as_go_writes_them() {
        let pki = pki();
        let pem = std::fs::read(pki.dir.path().join("client.crt")).unwrap();
        let der = CertificateDer::from_pem_slice(&pem).unwrap();
        assert_eq!(
            subject_alt_names(&der).unwrap(),
            ["prometheus", "spiffe://cluster.local/prom", "10.1.2.3", "prom@example.org"]
        );
    }
}
