//! rustls configurations: the server's from the PEM files in `[sip.tls]`,
//! and a client one that trusts a given CA (private agent deployments,
//! tests).
//!
//! The crypto provider is named explicitly (ring) instead of relying on the
//! process default, which panics when a future dependency also enables
//! aws-lc-rs.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};

use super::{TlsClient, TlsListen, TransportError};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// The TLS server configuration for a listener, from its PEM files.
pub(super) fn server_config(listen: &TlsListen) -> Result<Arc<ServerConfig>, TransportError> {
    let certs = read_certs(&listen.cert_path)?;
    let key = PrivateKeyDer::from_pem_file(&listen.key_path).map_err(|error| {
        file_error(
            "private key",
            &listen.key_path,
            pem_reason(error, "PRIVATE KEY"),
        )
    })?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|error| {
            let reason = format!(
                "not usable with certificate {}: {error}",
                listen.cert_path.display()
            );
            file_error("private key", &listen.key_path, reason)
        })?;
    Ok(Arc::new(config))
}

/// The client configuration for `sips:` agents: the CAs in `ca_path`, or
/// the Mozilla root set.
pub fn client_config(settings: &TlsClient) -> Result<ClientConfig, TransportError> {
    let Some(path) = &settings.ca_path else {
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        return Ok(ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth());
    };
    let pem = std::fs::read(path).map_err(|e| file_error("CA certificate", path, e.to_string()))?;
    client_config_trusting(&pem).map_err(|e| match e {
        TransportError::TlsFile { what, reason, .. } => TransportError::TlsFile {
            what,
            path: path.clone(),
            reason,
        },
        other => other,
    })
}

/// A TLS client configuration that trusts the CA certificates in
/// `ca_pem` (PEM text) and nothing else, without a client certificate.
pub fn client_config_trusting(ca_pem: &[u8]) -> Result<ClientConfig, TransportError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|error| TransportError::TlsFile {
            what: "CA certificate",
            path: "<memory>".into(),
            reason: error.to_string(),
        })?;
        roots.add(cert)?;
    }
    if roots.is_empty() {
        return Err(TransportError::TlsFile {
            what: "CA certificate",
            path: "<memory>".into(),
            reason: "no CERTIFICATE section".into(),
        });
    }
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TransportError> {
    let iter = CertificateDer::pem_file_iter(path)
        .map_err(|error| file_error("certificate", path, pem_reason(error, "CERTIFICATE")))?;
    let certs = iter
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| file_error("certificate", path, pem_reason(error, "CERTIFICATE")))?;
    if certs.is_empty() {
        return Err(file_error(
            "certificate",
            path,
            "no CERTIFICATE section".into(),
        ));
    }
    Ok(certs)
}

fn pem_reason(error: rustls_pki_types::pem::Error, section: &str) -> String {
    match error {
        rustls_pki_types::pem::Error::NoItemsFound => format!("no {section} section"),
        rustls_pki_types::pem::Error::Io(error) => error.to_string(),
        other => format!("not valid PEM: {other}"),
    }
}

fn file_error(what: &'static str, path: &Path, reason: String) -> TransportError {
    TransportError::TlsFile {
        what,
        path: path.to_path_buf(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn listen(cert: &Path, key: &Path) -> TlsListen {
        TlsListen {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            cert_path: cert.to_path_buf(),
            key_path: key.to_path_buf(),
        }
    }

    #[test]
    fn the_agents_ca_file_is_read_or_named_in_the_error() {
        // Default: the Mozilla roots.
        assert!(client_config(&TlsClient::default()).is_ok());
        let dir = tempfile::tempdir().expect("temp dir");
        let pair = rcgen::generate_simple_self_signed(vec!["agent.example".into()]).expect("cert");
        let ca = dir.path().join("agents-ca.pem");
        std::fs::write(&ca, pair.cert.pem()).expect("write");
        let with = |path: &Path| TlsClient {
            ca_path: Some(path.to_path_buf()),
        };
        assert!(client_config(&with(&ca)).is_ok());
        for (path, says) in [
            (dir.path().join("missing.pem"), "missing.pem"),
            (ca.with_file_name("junk.pem"), "junk.pem"),
        ] {
            if says == "junk.pem" {
                std::fs::write(&path, "hello\n").expect("write");
            }
            let error = client_config(&with(&path))
                .expect_err("refused")
                .to_string();
            assert!(
                error.contains(says) && error.contains("CA certificate"),
                "{error}"
            );
        }
    }

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pair = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
        let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write");
            path
        };
        let cert = write("cert.pem", &pair.cert.pem());
        let key = write("key.pem", &pair.signing_key.serialize_pem());
        let other_key = write("other.pem", &other.signing_key.serialize_pem());
        let junk = write("junk.pem", "hello\n");
        let missing = dir.path().join("missing.pem");
        assert!(server_config(&listen(&cert, &key)).is_ok());
        let table = [
            (
                listen(&missing, &key),
                "TLS certificate file",
                "missing.pem",
            ),
            (listen(&junk, &key), "no CERTIFICATE section", "junk.pem"),
            (
                listen(&cert, &junk),
                "TLS private key file",
                "no PRIVATE KEY section",
            ),
            (listen(&cert, &cert), "TLS private key file", "cert.pem"),
            (
                listen(&cert, &other_key),
                "other.pem",
                "not usable with certificate",
            ),
        ];
        for (config, first, second) in table {
            let error = server_config(&config).expect_err(first).to_string();
            assert!(error.contains(first) && error.contains(second), "{error}");
        }
    }

    #[test]
    fn client_needs_a_ca() {
        let pair = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
        assert!(client_config_trusting(pair.cert.pem().as_bytes()).is_ok());
        let error = client_config_trusting(b"").expect_err("empty");
        assert!(error.to_string().contains("no CERTIFICATE"), "{error}");
    }
}
