//! HTTPS for `serve` and `proxy` (`https_enabled`): rustls over each accepted socket, with
//! the certificate chain and key read from PEM files at start-up and again on SIGHUP. A
//! reload that fails (a file half-written by a renewal, a key that does not match) keeps
//! the certificate in use, so a node never stops serving for it.

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How long a client may take over its TLS handshake before its connection is closed.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    #[error("https_certificate {path}: {reason}")]
    Certificate { path: PathBuf, reason: String },
    #[error("https_private_key {path}: {reason}")]
    PrivateKey { path: PathBuf, reason: String },
    #[error("TLS: {0}")]
    Config(#[from] rustls::Error),
}

/// The certificate in use, replaced whole by [`Certificates::reload`]; handshakes under way
/// keep the one they started with.
#[derive(Debug)]
pub(crate) struct Certificates {
    certificate: PathBuf,
    private_key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certificates {
    /// Reads the files; an empty `private_key` means the key is in the certificate file
    /// (as InfluxDB's `https-private-key`).
    pub(crate) fn load(
        certificate: &Path,
        private_key: &Path,
    ) -> Result<Arc<Certificates>, TlsError> {
        let private_key = match private_key.as_os_str().is_empty() {
            true => certificate,
            false => private_key,
        };
        // ring, as the client's reqwest uses: rustls deprecates it for its lack of
        // post-quantum key exchange, but aws-lc-rs would add a C build (cmake, nasm).
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let current = read_pair(&provider, certificate, private_key)?;
        Ok(Arc::new(Certificates {
            certificate: certificate.to_owned(),
            private_key: private_key.to_owned(),
            provider,
            current: RwLock::new(Arc::new(current)),
        }))
    }

    /// Reads the files again; on failure the certificate in use stays.
    pub(crate) fn reload(&self) -> Result<(), TlsError> {
        let fresh = read_pair(&self.provider, &self.certificate, &self.private_key)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(fresh);
        Ok(())
    }

    /// The acceptor of the server's connections, which asks this store at each handshake.
    pub(crate) fn acceptor(self: &Arc<Self>) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

fn read_pair(
    provider: &CryptoProvider,
    certificate: &Path,
    private_key: &Path,
) -> Result<CertifiedKey, TlsError> {
    let cert_error = |reason: String| TlsError::Certificate {
        path: certificate.to_owned(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(certificate)
        .map_err(|e| cert_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_error(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_error("no PEM certificate in the file".into()));
    }
    let key_error = |reason: String| TlsError::PrivateKey {
        path: private_key.to_owned(),
        reason,
    };
    let key = PrivateKeyDer::from_pem_file(private_key).map_err(|e| key_error(e.to_string()))?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| key_error(e.to_string()))?;
    let pair = CertifiedKey::new(chain, signing);
    pair.keys_match()
        .map_err(|e| key_error(format!("does not match the certificate: {e}")))?;
    Ok(pair)
}
