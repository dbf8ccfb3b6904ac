//! Certificates and TLS servers for the tests' own peers (a `sips:` SIP
//! agent, a `wss://` WebSocket agent): self-signed for 127.0.0.1, made by
//! rcgen, trusted by pointing the gateway's `ca_path` at them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{ServerConfig, crypto::ring};

/// A self-signed certificate for 127.0.0.1, with its PEM files.
pub struct Cert {
    der: CertificateDer<'static>,
    key: Vec<u8>,
    /// The certificate (PEM): also what a gateway trusting it points at.
    pub cert_pem: PathBuf,
    /// Its private key (PEM).
    pub key_pem: PathBuf,
}

impl Cert {
    /// A new certificate, its files `NAME.crt` and `NAME.key` in `dir`.
    pub fn new(dir: &Path, name: &str) -> Cert {
        let pair = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let (cert_pem, key_pem) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&cert_pem, pair.cert.pem()).unwrap();
        std::fs::write(&key_pem, pair.signing_key.serialize_pem()).unwrap();
        Cert {
            der: pair.cert.der().clone(),
            key: pair.signing_key.serialize_der(),
            cert_pem,
            key_pem,
        }
    }

    /// A TLS server configuration presenting this certificate.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        let provider = Arc::new(ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![self.der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone())),
            )
            .unwrap();
        Arc::new(config)
    }
}
