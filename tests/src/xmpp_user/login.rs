//! Opening a c2s stream: STARTTLS (RFC 6120 §5), SASL PLAIN (RFC 6120 §6,
//! RFC 4616), resource binding (RFC 6120 §7).

use std::borrow::Cow;
use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use minidom::Element;
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_xmpp::connect::AsyncReadAndWrite;
use tokio_xmpp::xmlstream::{ReadError, StreamHeader, Timeouts, XmlStream, initiate_stream};
use xmpp_parsers::jid::{BareJid, FullJid};

use super::wire::JABBER_CLIENT;
use crate::HarnessError;

const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";

const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";

pub(super) type Io = Box<dyn AsyncReadAndWrite + Send>;
pub(super) type Stream = XmlStream<Io, Element>;

/// Open a c2s stream, authenticate with SASL PLAIN, bind a resource.
pub(super) async fn login(
    addr: SocketAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
    jid: &BareJid,
    password: &str,
) -> Result<(Stream, FullJid), HarnessError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        HarnessError::Xmpp(format!("logging in as {jid} at {addr}: {what}: {e}"))
    };
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| fail("connecting", &e))?;
    // Each stanza leaves at once, as with the gateway's client mode: the
    // benchmark's latencies must not include Nagle's wait for an ACK.
    tcp.set_nodelay(true)
        .map_err(|e| fail("setting TCP_NODELAY", &e))?;
    // No read timeouts to speak of: a test's own waits bound everything.
    let timeouts = Timeouts {
        read_timeout: Duration::from_secs(3600),
        response_timeout: Duration::from_secs(3600),
    };
    let header = || StreamHeader {
        from: None,
        to: Some(Cow::Owned(jid.domain().to_string())),
        id: None,
    };
    let io: Io = match tls {
        None => Box::new(BufStream::new(tcp)),
        Some(config) => {
            let tls = starttls(tcp, config, jid, timeouts)
                .await
                .map_err(|e| fail("STARTTLS", &e))?;
            Box::new(BufStream::new(tls))
        }
    };
    let (_features, mut stream) = initiate_stream(io, JABBER_CLIENT, header(), timeouts)
        .await
        .map_err(|e| fail("opening the stream", &e))?
        .recv_features::<Element>()
        .await
        .map_err(|e| fail("stream features", &e))?;

    let node = jid.node().map(|n| n.as_str()).unwrap_or_default();
    let mut credentials = vec![0u8];
    credentials.extend_from_slice(node.as_bytes());
    credentials.push(0);
    credentials.extend_from_slice(password.as_bytes());
    let auth = Element::builder("auth", NS_SASL)
        .attr(rxml_name("mechanism"), "PLAIN")
        .append(base64(&credentials))
        .build();
    stream
        .send(&auth)
        .await
        .map_err(|e| fail("sending auth", &e))?;
    let answer = next_element(&mut stream)
        .await
        .map_err(|e| fail("waiting for the SASL answer", &e))?;
    if !answer.is("success", NS_SASL) {
        return Err(fail("authentication refused", &String::from(&answer)));
    }

    let (_features, mut stream) = stream
        .initiate_reset()
        .send_header(header())
        .await
        .map_err(|e| fail("restarting the stream", &e))?
        .recv_features::<Element>()
        .await
        .map_err(|e| fail("stream features after SASL", &e))?;

    let bind = Element::builder("iq", JABBER_CLIENT)
        .attr(rxml_name("type"), "set")
        .attr(rxml_name("id"), "bind-1")
        .append(Element::builder("bind", NS_BIND).build())
        .build();
    stream
        .send(&bind)
        .await
        .map_err(|e| fail("sending bind", &e))?;
    let answer = next_element(&mut stream)
        .await
        .map_err(|e| fail("waiting for the bind answer", &e))?;
    let bound = answer
        .get_child("bind", NS_BIND)
        .and_then(|b| b.get_child("jid", NS_BIND))
        .map(Element::text)
        .filter(|_| answer.attr("type") == Some("result"))
        .ok_or_else(|| fail("resource binding refused", &String::from(&answer)))?;
    let full = FullJid::from_str(&bound).map_err(|e| fail("the bound JID", &e))?;
    Ok((stream, full))
}

/// Negotiate STARTTLS (RFC 6120 §5) on a fresh connection and return the
/// TLS stream, on which the caller opens a new XML stream.
async fn starttls(
    tcp: TcpStream,
    config: Arc<rustls::ClientConfig>,
    jid: &BareJid,
    timeouts: Timeouts,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let domain = jid.domain().to_string();
    let header = StreamHeader {
        from: None,
        to: Some(Cow::Owned(domain.clone())),
        id: None,
    };
    let (features, mut stream) =
        initiate_stream(BufStream::new(tcp), JABBER_CLIENT, header, timeouts)
            .await
            .map_err(|e| e.to_string())?
            .recv_features::<Element>()
            .await
            .map_err(|e| e.to_string())?;
    if !features.can_starttls() {
        return Err("the server does not offer STARTTLS".into());
    }
    stream
        .send(&Element::builder("starttls", NS_TLS).build())
        .await
        .map_err(|e| e.to_string())?;
    let answer = next_element(&mut stream).await?;
    if !answer.is("proceed", NS_TLS) {
        return Err(format!("refused: {}", String::from(&answer)));
    }
    let tcp = stream.into_inner().into_inner();
    let name = rustls::pki_types::ServerName::try_from(domain.clone())
        .map_err(|e| format!("{domain}: {e}"))?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake: {e}"))
}

/// A TLS client configuration that trusts only the CA in `ca_file` (PEM).
pub fn tls_config(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>, HarnessError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let fail = |e: &dyn std::fmt::Display| {
        HarnessError::Xmpp(format!("the test CA {}: {e}", ca_file.display()))
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).map_err(|e| fail(&e))? {
        roots
            .add(cert.map_err(|e| fail(&e))?)
            .map_err(|e| fail(&e))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| fail(&e))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

async fn next_element<T: tokio::io::AsyncBufRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut XmlStream<T, Element>,
) -> Result<Element, String> {
    loop {
        match stream.next().await {
            Some(Ok(e)) => return Ok(e),
            Some(Err(ReadError::SoftTimeout)) => continue,
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("the server closed the connection".into()),
        }
    }
}

fn rxml_name(name: &'static str) -> minidom::rxml::NcName {
    minidom::rxml::NcName::try_from(name).unwrap_or_else(|_| unreachable!("a valid XML name"))
}

/// Standard base64 with padding (RFC 4648 §4), for SASL.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }
}
