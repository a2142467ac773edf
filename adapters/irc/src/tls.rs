//! TLS to the IRC server with rustls: the system's roots plus an optional
//! CA file, and a client certificate for SASL EXTERNAL.

use std::io;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::config::{IrcConfig, SaslConfig};

/// A connector for `cfg`, built once per adapter.
pub fn connector(cfg: &IrcConfig) -> io::Result<TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A system certificate rustls cannot use is skipped, as browsers do.
        let _ = roots.add(cert);
    }
    if let Some(path) = &cfg.ca_file {
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(path, e))? {
            roots
                .add(cert.map_err(|e| bad(path, e))?)
                .map_err(|e| bad(path, e))?;
        }
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let config = match cfg.sasl.as_deref() {
        Some(SaslConfig::External {
            cert_file,
            key_file,
        }) => {
            let certs = CertificateDer::pem_file_iter(cert_file)
                .map_err(|e| bad(cert_file, e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(cert_file, e))?;
            let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| bad(key_file, e))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(TlsConnector::from(Arc::new(config)))
}

fn bad(path: &std::path::Path, e: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{}: {e}", path.display()),
    )
}

/// Wrap `tcp` in TLS for `host`, checking the certificate.
pub async fn connect(
    connector: &TlsConnector,
    host: &str,
    tcp: TcpStream,
) -> io::Result<TlsStream<TcpStream>> {
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    connector.connect(name, tcp).await
}
