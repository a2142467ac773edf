//! rustls configurations built from a [`TlsConfig`].
//!
//! The provider is always aws-lc-rs, passed to each builder: the workspace
//! links only that one, and relying on a process-wide default would make
//! the result depend on what else ran first.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use super::TlsConfig;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// Happens when a PEM file cannot be read or holds nothing usable.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// Happens when a TLS listener has no certificate or key configured.
    #[error("a TLS listener needs tls.cert_chain and tls.private_key")]
    NoCertificate,
    /// Happens when no trust anchor is configured (no system roots, no CA
    /// file) where one is needed.
    #[error("no trusted CA: enable use_system_roots or give a ca_file")]
    NoTrustAnchors,
    /// Happens when rustls refuses the configuration (a key that does not
    /// match its certificate, ...).
    #[error(transparent)]
    Rustls(#[from] rustls::Error),
    /// Happens when the client certificate verifier cannot be built.
    #[error("client certificate verifier: {0}")]
    Verifier(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn pem_err(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::Pem {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_err(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(path, e))?;
    if certs.is_empty() {
        return Err(pem_err(path, "no CERTIFICATE in the file"));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_err(path, e))
}

/// This element's certificate chain and key, when both are configured.
fn identity(
    cfg: &TlsConfig,
) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, TlsError> {
    match (&cfg.cert_chain, &cfg.private_key) {
        (Some(c), Some(k)) => Ok(Some((load_certs(c)?, load_key(k)?))),
        (None, None) => Ok(None),
        _ => Err(TlsError::NoCertificate),
    }
}

fn roots(cfg: &TlsConfig) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    if cfg.use_system_roots {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!(error = %e, "could not load a system root certificate");
        }
        let (added, ignored) = roots.add_parsable_certificates(found.certs);
        tracing::debug!(added, ignored, "system root certificates");
    }
    if let Some(ca) = &cfg.ca_file {
        for cert in load_certs(ca)? {
            roots.add(cert).map_err(|e| pem_err(ca, e))?;
        }
    }
    if roots.is_empty() {
        return Err(TlsError::NoTrustAnchors);
    }
    Ok(roots)
}

/// The server side: the configured certificate, and a client certificate
/// asked for and checked against the trust anchors unless
/// [`TlsConfig::require_client_cert`] is off.
pub fn server_config(cfg: &TlsConfig) -> Result<Arc<ServerConfig>, TlsError> {
    let (certs, key) = identity(cfg)?.ok_or(TlsError::NoCertificate)?;
    let builder =
        ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = if cfg.require_client_cert {
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots(cfg)?), provider())
                .build()
                .map_err(|e| TlsError::Verifier(e.to_string()))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    Ok(Arc::new(builder.with_single_cert(certs, key)?))
}

/// The client side: servers checked against the trust anchors; this
/// element's certificate shown when a server asks for one.
pub fn client_config(cfg: &TlsConfig) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(cfg)?);
    let config = match identity(cfg)? {
        Some((certs, key)) => builder.with_client_auth_cert(certs, key)?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}
