//! The TLS transport over loopback, with a test CA made by rcgen: both
//! directions on one connection, server certificate checks, client
//! certificates required by default, and bad input on the TLS port.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cpimgate_sip::codec::{ErrorKind, Limits};
use cpimgate_sip::transport::{
    CloseReason, Destination, ListenerConfig, SendError, TlsConfig, Transport, TransportConfig,
    TransportEvent, TransportKind,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

mod transport_support;
use transport_support::*;

/// A test CA and certificates it signs, written as PEM files.
struct Pki {
    dir: PathBuf,
    ca: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

static DIRS: AtomicU32 = AtomicU32::new(0);

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!(
            "cpimgate-sip-tls-{}-{}-{name}",
            std::process::id(),
            DIRS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("cpimgate test CA {name}"),
        );
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().expect("a key");
        let ca = rcgen::CertifiedIssuer::self_signed(params, key).expect("a CA");
        std::fs::write(dir.join("ca.pem"), ca.pem()).expect("written");
        Pki { dir, ca }
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A certificate for `names` (DNS names or IP addresses) usable as
    /// server and client; returns (chain file, key file).
    fn issue(&self, file: &str, names: &[&str]) -> (PathBuf, PathBuf) {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .expect("params");
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            names.first().copied().unwrap_or("x"),
        );
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = rcgen::KeyPair::generate().expect("a key");
        let cert = params.signed_by(&key, &self.ca).expect("signed");
        let chain = self.dir.join(format!("{file}.pem"));
        let key_file = self.dir.join(format!("{file}.key"));
        std::fs::write(&chain, cert.pem()).expect("written");
        std::fs::write(&key_file, key.serialize_pem()).expect("written");
        (chain, key_file)
    }

    fn tls(&self, identity: Option<(PathBuf, PathBuf)>) -> TlsConfig {
        let (cert_chain, private_key) = identity.unzip();
        TlsConfig {
            cert_chain,
            private_key,
            ca_file: Some(self.ca_file()),
            use_system_roots: false,
            ..TlsConfig::default()
        }
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn tls_config(listen: bool, tls: TlsConfig) -> TransportConfig {
    TransportConfig {
        listeners: if listen {
            vec![ListenerConfig::new(TransportKind::Tls, localhost())]
        } else {
            Vec::new()
        },
        tls: Some(tls),
        ..TransportConfig::default()
    }
}

#[tokio::test]
async fn tls_both_ways_with_client_certificates() {
    logs();
    let pki = Pki::new("both");
    let (server, mut s_rx) = bind(tls_config(
        true,
        pki.tls(Some(
            pki.issue("server", &["sip.example.test", "127.0.0.1"]),
        )),
    ))
    .await;
    let (client, mut c_rx) = bind(tls_config(
        false,
        pki.tls(Some(pki.issue("client", &["client.example.test"]))),
    ))
    .await;
    let s_addr = server
        .local_addr(TransportKind::Tls)
        .expect("a TLS listener");

    // Checked by IP address, then by name.
    let req = message("tls1", "over TLS");
    let conn = client
        .send(
            &Destination::new(TransportKind::Tls, s_addr),
            Bytes::from(req.clone()),
        )
        .await
        .expect("sent")
        .expect("a connection");
    let (bytes, source) = next_message(&mut s_rx).await;
    assert_eq!(bytes, req);
    assert_eq!(source.transport, TransportKind::Tls);

    // The response, and then a request from the server, on the same
    // connection.
    server
        .send(&Destination::reply_to(&source), ok_for(&bytes))
        .await
        .expect("sent");
    let (resp, from) = next_message(&mut c_rx).await;
    assert!(resp.starts_with(b"SIP/2.0 200 OK"));
    assert_eq!(from.conn, Some(conn));
    server
        .send(
            &Destination::new(TransportKind::Tls, source.peer),
            Bytes::from(message("tls2", "from the server")),
        )
        .await
        .expect("sent");
    let (req2, from) = next_message(&mut c_rx).await;
    assert!(req2.starts_with(b"MESSAGE "));
    assert_eq!(from.conn, Some(conn));

    // A name the certificate carries: a second connection (another key).
    let by_name = client
        .send(
            &Destination::new(TransportKind::Tls, s_addr).with_tls_name("sip.example.test"),
            Bytes::from(message("tls3", "by name")),
        )
        .await
        .expect("sent")
        .expect("a connection");
    assert_eq!(
        by_name, conn,
        "same far end: the table reuses the connection"
    );
    next_message(&mut s_rx).await;
    assert_eq!(server.connection_count(), 1);
}

#[tokio::test]
async fn tls_client_checks_the_server_certificate() {
    logs();
    let pki = Pki::new("server-check");
    let rogue = Pki::new("rogue");
    let (server, mut s_rx) = bind(tls_config(
        true,
        TlsConfig {
            require_client_cert: false,
            ..rogue.tls(Some(rogue.issue("server", &["127.0.0.1"])))
        },
    ))
    .await;
    let s_addr = server
        .local_addr(TransportKind::Tls)
        .expect("a TLS listener");
    let (client, _c_rx) = bind(tls_config(false, pki.tls(None))).await;
    let err = client
        .send(
            &Destination::new(TransportKind::Tls, s_addr),
            Bytes::from(message("rogue", "x")),
        )
        .await;
    assert!(matches!(err, Err(SendError::Connect { .. })), "{err:?}");
    assert_eq!(client.connection_count(), 0);

    // A certificate of the right CA but for another name is refused too.
    let (server2, _s2_rx) = bind(tls_config(
        true,
        TlsConfig {
            require_client_cert: false,
            ..pki.tls(Some(pki.issue("other", &["other.example.test"])))
        },
    ))
    .await;
    let err = client
        .send(
            &Destination::new(
                TransportKind::Tls,
                server2.local_addr(TransportKind::Tls).expect("TLS"),
            ),
            Bytes::from(message("wrongname", "x")),
        )
        .await;
    assert!(matches!(err, Err(SendError::Connect { .. })), "{err:?}");
    nothing_more(&mut s_rx, Duration::from_millis(100)).await;
}

// Client certificates are required by default: a client without one is
// refused, one with a certificate of the trusted CA is accepted.
#[tokio::test]
async fn tls_server_requires_a_client_certificate_by_default() {
    logs();
    let pki = Pki::new("mutual");
    assert!(TlsConfig::default().require_client_cert);
    let (server, mut s_rx) = bind(tls_config(
        true,
        pki.tls(Some(pki.issue("server", &["127.0.0.1"]))),
    ))
    .await;
    let s_addr = server
        .local_addr(TransportKind::Tls)
        .expect("a TLS listener");
    let dest = Destination::new(TransportKind::Tls, s_addr);

    // Without a certificate: with TLS 1.3 the client finishes its side of
    // the handshake before the server refuses, so the refusal arrives as
    // an alert that closes the connection.
    let (anonymous, mut a_rx) = bind(tls_config(false, pki.tls(None))).await;
    match anonymous
        .send(&dest, Bytes::from(message("anon", "x")))
        .await
    {
        Err(_) => {}
        Ok(conn) => {
            let (closed, reason) = next_closed(&mut a_rx).await;
            assert_eq!(Some(closed), conn);
            assert!(
                matches!(reason, CloseReason::ReadError(_) | CloseReason::Eof),
                "{reason:?}"
            );
        }
    }
    nothing_more(&mut s_rx, Duration::from_millis(200)).await;
    assert_eq!(server.connection_count(), 0);

    // A certificate of another CA is refused as well.
    let rogue = Pki::new("mutual-rogue");
    let (stranger, mut r_rx) = bind(tls_config(
        false,
        TlsConfig {
            ca_file: Some(pki.ca_file()),
            ..rogue.tls(Some(rogue.issue("client", &["client.example.test"])))
        },
    ))
    .await;
    if let Ok(conn) = stranger
        .send(&dest, Bytes::from(message("rogue", "x")))
        .await
    {
        assert_eq!(Some(next_closed(&mut r_rx).await.0), conn);
    }
    nothing_more(&mut s_rx, Duration::from_millis(200)).await;

    // With a certificate of the test CA: accepted.
    let (member, _m_rx) = bind(tls_config(
        false,
        pki.tls(Some(pki.issue("client", &["client.example.test"]))),
    ))
    .await;
    member
        .send(&dest, Bytes::from(message("member", "x")))
        .await
        .expect("sent");
    let (_, source) = next_message(&mut s_rx).await;
    assert_eq!(source.transport, TransportKind::Tls);
}

#[tokio::test]
async fn tls_without_client_certificate_checks_when_turned_off() {
    logs();
    let pki = Pki::new("optional");
    let (server, mut s_rx) = bind(tls_config(
        true,
        TlsConfig {
            require_client_cert: false,
            ..pki.tls(Some(pki.issue("server", &["127.0.0.1"])))
        },
    ))
    .await;
    let (anonymous, _a_rx) = bind(tls_config(false, pki.tls(None))).await;
    anonymous
        .send(
            &Destination::new(
                TransportKind::Tls,
                server.local_addr(TransportKind::Tls).expect("TLS"),
            ),
            Bytes::from(message("anon", "x")),
        )
        .await
        .expect("sent");
    next_message(&mut s_rx).await;
}

#[tokio::test]
async fn tls_configuration_errors() {
    let pki = Pki::new("errors");
    // A TLS listener without a certificate.
    let err = Transport::bind(tls_config(true, pki.tls(None))).await;
    assert!(err.is_err());
    // Without any TLS configuration.
    let err = Transport::bind(config(&[TransportKind::Tls])).await;
    assert!(err.is_err());
    // A missing file names itself.
    let mut tls = pki.tls(None);
    tls.ca_file = Some(pki.dir.join("nope.pem"));
    let err = Transport::bind(tls_config(false, tls))
        .await
        .map(|_| ())
        .expect_err("fails");
    assert!(err.to_string().contains("nope.pem"), "{err}");
    // No trust anchors at all.
    let tls = TlsConfig {
        use_system_roots: false,
        ..TlsConfig::default()
    };
    assert!(Transport::bind(tls_config(false, tls)).await.is_err());
    // A TLS send without TLS configured.
    let (plain, _rx) = bind(config(&[])).await;
    let err = plain
        .send(
            &Destination::new(TransportKind::Tls, "127.0.0.1:5061".parse().expect("addr")),
            Bytes::new(),
        )
        .await;
    assert!(matches!(err, Err(SendError::NoTlsConfig)), "{err:?}");
}

#[tokio::test]
async fn tls_handshake_that_never_starts_is_cut() {
    logs();
    let pki = Pki::new("slow-hs");
    let (server, _s_rx) = bind(TransportConfig {
        message_timeout: Duration::from_millis(300),
        ..tls_config(true, pki.tls(Some(pki.issue("server", &["127.0.0.1"]))))
    })
    .await;
    let mut raw = TcpStream::connect(server.local_addr(TransportKind::Tls).expect("TLS"))
        .await
        .expect("connected");
    let started = tokio::time::Instant::now();
    assert!(closed_by_server(&mut raw).await);
    assert!(started.elapsed() >= Duration::from_millis(250));
}

/// Bad input on the TLS port gets what it gets over TCP, and plain text
/// gets no TLS:
/// * SIP sent without a handshake: the connection is closed at once (a
///   TLS error, long before `message_timeout`) and nothing is delivered;
/// * over an established connection, a message without Content-Length is
///   unframeable (reported, the connection closed), and one over the size
///   limit is reported as too large (513) and cut;
/// * the listener then serves the next message.
#[tokio::test]
async fn bad_input_over_tls_is_refused_as_over_tcp() {
    logs();
    let pki = Pki::new("bad-input");
    let (server, mut s_rx) = bind(TransportConfig {
        message_timeout: Duration::from_secs(30),
        error_linger: Duration::ZERO,
        limits: Limits {
            max_message: 2000,
            ..Limits::default()
        },
        ..tls_config(
            true,
            TlsConfig {
                require_client_cert: false,
                ..pki.tls(Some(pki.issue("server", &["127.0.0.1"])))
            },
        )
    })
    .await;
    let s_addr = server.local_addr(TransportKind::Tls).expect("TLS");

    let mut raw = TcpStream::connect(s_addr).await.expect("connected");
    raw.write_all(&message("plain", "no TLS"))
        .await
        .expect("written");
    let started = tokio::time::Instant::now();
    assert!(closed_by_server(&mut raw).await);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "closed at once, not by the 30 s message timeout"
    );
    nothing_more(&mut s_rx, Duration::from_millis(200)).await;

    let dest = Destination::new(TransportKind::Tls, s_addr);
    let (client, mut c_rx) = bind(tls_config(false, pki.tls(None))).await;
    client
        .send(
            &dest,
            Bytes::from_static(b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n"),
        )
        .await
        .expect("sent");
    match next(&mut s_rx).await {
        TransportEvent::Malformed { error, source, .. } => {
            assert_eq!(error.kind, ErrorKind::MissingContentLength);
            assert_eq!(source.transport, TransportKind::Tls);
        }
        other => panic!("expected a malformed stream, got {other:?}"),
    }
    assert_eq!(next_closed(&mut s_rx).await.1, CloseReason::Unframeable);
    next_closed(&mut c_rx).await;

    client
        .send(&dest, Bytes::from(message("big", &"z".repeat(5000))))
        .await
        .expect("sent");
    match next(&mut s_rx).await {
        TransportEvent::Malformed { error, .. } => {
            assert!(matches!(error.kind, ErrorKind::TooLarge { .. }), "{error}");
            assert_eq!(error.response_status().code, 513);
        }
        other => panic!("expected a malformed stream, got {other:?}"),
    }
    assert_eq!(next_closed(&mut s_rx).await.1, CloseReason::Unframeable);
    next_closed(&mut c_rx).await;

    client
        .send(&dest, Bytes::from(message("good", "after all that")))
        .await
        .expect("sent");
    let (bytes, source) = next_message(&mut s_rx).await;
    assert!(bytes.ends_with(b"after all that"));
    assert_eq!(source.transport, TransportKind::Tls);
}
