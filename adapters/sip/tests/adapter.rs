//! The SIP adapter over loopback, with the test playing the hub (the
//! adapter's context channels) and the SIP peer (a UDP socket, a TCP
//! listener, or our own TLS transport):
//!
//! * UAC: one transaction pending per Request-URI, in order (RFC 3428 §8);
//!   200 → delivered, 202 → accepted, 486 → failed; From is the sender's
//!   gateway address and there is no Contact (§4).
//! * UAC: a 401 is answered once with the configured credentials (RFC
//!   3261 §22.2); a second 401 fails the message.
//! * UAC: no answer → timer F → a transient failure for the message and
//!   every one queued behind it; a later message waits for the retry.
//! * UAC: a MESSAGE over 1300 bytes leaves UDP for TCP (RFC 3428 §8,
//!   RFC 3261 §18.1.1).
//! * UAS: `authenticate = true` challenges an untrusted sender with 401
//!   and takes its answer (RFC 3261 §22.1); 202 only once the hub said so.
//! * UAS over TLS, with a client of our own transport.
//! * UAC: an `im:` recipient goes to the SIP address the mapping table
//!   gives it (RFC 3428 §5); one with none is not found.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use cpimgate_mappings::{Alias, MappingStore};
use cpimgate_model::address::NameAddr;
use cpimgate_model::port::{
    Adapter, AdapterContext, AdapterStatus, DeliveryOutcome, FailureKind, Inbound, NoHistory,
    Outbound,
};
use cpimgate_model::{Message, Origin, World};
use cpimgate_sip::codec::parse;
use cpimgate_sip::config::{Account, Credentials};
use cpimgate_sip::digest::{Challenge, DigestClient, DigestRequest, DigestServer, Verdict};
use cpimgate_sip::transport::{
    Destination, ListenerConfig, TlsConfig, Transport, TransportConfig, TransportEvent,
    TransportKind,
};
use cpimgate_sip::{SipAdapter, SipConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot, watch};

const WAIT: Duration = Duration::from_secs(10);

/// The hub's side of a running adapter.
struct Hub {
    inbound: mpsc::Receiver<Inbound>,
    outbound: mpsc::Sender<Outbound>,
    _shutdown: watch::Sender<bool>,
    port: u16,
}

fn free_port() -> u16 {
    // A port free on both UDP and TCP now.
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

async fn start(config: SipConfig) -> Hub {
    start_with(config, MappingStore::open_in_memory().await.unwrap()).await
}

async fn start_with(mut config: SipConfig, mappings: MappingStore) -> Hub {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    if config.tls.is_empty() {
        config.udp = vec![addr];
        config.tcp = vec![addr];
    } else {
        config.tls = vec![addr];
    }
    let (in_tx, mut inbound) = mpsc::channel(64);
    let (outbound, out_rx) = mpsc::channel(64);
    let (shutdown, shutdown_rx) = watch::channel(false);
    let ctx = AdapterContext {
        name: "sip".into(),
        inbound: in_tx,
        outbound: out_rx,
        shutdown: shutdown_rx,
        history: Arc::new(NoHistory),
    };
    let adapter = Box::new(SipAdapter::new(config, mappings));
    assert_eq!(adapter.world(), World::Sip);
    tokio::spawn(async move {
        if let Err(e) = adapter.run(ctx).await {
            panic!("the adapter stopped: {e}");
        }
    });
    match tokio::time::timeout(WAIT, inbound.recv()).await {
        Ok(Some(Inbound::Status(AdapterStatus::Connected))) => {}
        other => panic!("the adapter did not come up: {other:?}"),
    }
    Hub {
        inbound,
        outbound,
        _shutdown: shutdown,
        port,
    }
}

fn config() -> SipConfig {
    SipConfig::new("gw.example.com")
}

fn message(to: &str, text: &str) -> Message {
    let origin = Origin {
        world: World::Xmpp,
        adapter: "xmpp".into(),
        native_id: None,
    };
    Message::text(
        origin,
        NameAddr::new("im:alice@xmpp.example.org".parse().unwrap()),
        NameAddr::new(to.parse().unwrap()),
        text,
    )
}

impl Hub {
    async fn deliver(&self, m: Message) -> oneshot::Receiver<DeliveryOutcome> {
        let (reply, rx) = oneshot::channel();
        self.outbound
            .send(Outbound::Deliver {
                message: Box::new(m),
                reply,
            })
            .await
            .unwrap();
        rx
    }
}

async fn outcome(rx: oneshot::Receiver<DeliveryOutcome>) -> DeliveryOutcome {
    tokio::time::timeout(WAIT, rx)
        .await
        .expect("an outcome in time")
        .expect("the adapter answers")
}

/// A SIP peer on UDP.
struct Peer {
    sock: UdpSocket,
}

impl Peer {
    async fn new() -> Peer {
        Peer {
            sock: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        }
    }

    fn uri(&self) -> String {
        format!("sip:bob@{}", self.sock.local_addr().unwrap())
    }

    /// The next request, skipping retransmissions of `seen` branches.
    async fn recv(&self, within: Duration) -> Option<(Vec<u8>, SocketAddr)> {
        let mut buf = vec![0; 65_536];
        let (n, from) = tokio::time::timeout(within, self.sock.recv_from(&mut buf))
            .await
            .ok()?
            .unwrap();
        buf.truncate(n);
        Some((buf, from))
    }

    async fn answer(&self, request: &[u8], from: SocketAddr, code: u16, extra: &[(&str, &str)]) {
        let req = parse(request).unwrap();
        let mut r =
            cpimgate_sip::codec::OwnedMessage::response_to(&req, code, "Answer", Some("peer"))
                .unwrap();
        for (n, v) in extra {
            r.push_header(n, v).unwrap();
        }
        self.sock.send_to(&r.to_bytes(), from).await.unwrap();
    }
}

fn branch(request: &[u8]) -> String {
    parse(request)
        .unwrap()
        .top_via()
        .unwrap()
        .unwrap()
        .branch()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn one_pending_message_per_uri_in_order() {
    let hub = start(config()).await;
    let peer = Peer::new().await;
    let uri = peer.uri();
    let first = hub.deliver(message(&uri, "one")).await;
    let second = hub.deliver(message(&uri, "two")).await;
    let third = hub.deliver(message(&uri, "three")).await;

    let (req, from) = peer.recv(WAIT).await.expect("the first MESSAGE");
    let m = parse(&req).unwrap();
    m.validate_request().unwrap();
    assert_eq!(m.method(), Some("MESSAGE"));
    assert_eq!(m.body(), b"one");
    assert!(m.contact().unwrap().is_none(), "RFC 3428 §4: no Contact");
    assert_eq!(
        m.from().unwrap().unwrap().uri(),
        "sip:alice%40xmpp.example.org@gw.example.com"
    );
    assert_eq!(m.request_uri(), Some(uri.as_str()));
    // RFC 3428 §8: nothing else to that URI while the first is pending
    // (only retransmissions of the first, timer E).
    let b1 = branch(&req);
    while let Some((again, _)) = peer.recv(Duration::from_millis(700)).await {
        assert_eq!(
            branch(&again),
            b1,
            "a second transaction while one is pending"
        );
    }
    peer.answer(&req, from, 200, &[]).await;
    assert_eq!(outcome(first).await, DeliveryOutcome::Delivered);

    let (req, from) = peer.recv(WAIT).await.expect("the second MESSAGE");
    assert_eq!(parse(&req).unwrap().body(), b"two");
    peer.answer(&req, from, 202, &[]).await;
    assert_eq!(outcome(second).await, DeliveryOutcome::Accepted);

    let (req, from) = peer.recv(WAIT).await.expect("the third MESSAGE");
    assert_eq!(parse(&req).unwrap().body(), b"three");
    peer.answer(&req, from, 486, &[]).await;
    match outcome(third).await {
        DeliveryOutcome::Failed(f) => {
            assert_eq!(f.kind, FailureKind::Rejected);
            assert!(f.detail.contains("486"), "{f}");
        }
        other => panic!("486 is a failure, not {other:?}"),
    }
}

#[tokio::test]
async fn a_challenge_is_answered_once() {
    let mut c = config();
    c.credentials = Some(Credentials {
        user: "gw".into(),
        password: "secret".into(),
        realm: None,
    });
    let hub = start(c).await;
    let peer = Peer::new().await;
    let server = DigestServer::new("peer.example.com", b"peer secret".to_vec());
    let challenge = server.challenge(SystemTime::now(), false).to_header_value();

    let done = hub.deliver(message(&peer.uri(), "let me in")).await;
    let (req, from) = peer.recv(WAIT).await.unwrap();
    peer.answer(&req, from, 401, &[("WWW-Authenticate", &challenge)])
        .await;
    let (again, from) = loop {
        let (r, f) = peer.recv(WAIT).await.expect("the MESSAGE again");
        if branch(&r) != branch(&req) {
            break (r, f);
        }
    };
    let m = parse(&again).unwrap();
    assert_eq!(
        m.cseq().unwrap().unwrap().seq,
        2,
        "RFC 3261 §22.2: CSeq grows"
    );
    let auth = m.authorization().next().expect("Authorization");
    let lookup = |user: &str, _: &str| (user == "gw").then(|| "secret".to_owned());
    let request = DigestRequest {
        method: "MESSAGE",
        uri: m.request_uri().unwrap(),
        body: m.body(),
    };
    assert!(matches!(
        server.verify_header(SystemTime::now(), &request, auth, &lookup),
        Verdict::Authenticated { .. }
    ));
    peer.answer(&again, from, 200, &[]).await;
    assert_eq!(outcome(done).await, DeliveryOutcome::Delivered);

    // A second challenge for the answered one is a refusal.
    let done = hub.deliver(message(&peer.uri(), "again")).await;
    let (req, from) = peer.recv(WAIT).await.unwrap();
    peer.answer(&req, from, 401, &[("WWW-Authenticate", &challenge)])
        .await;
    let (again, from) = loop {
        let (r, f) = peer.recv(WAIT).await.expect("the MESSAGE again");
        if branch(&r) != branch(&req) {
            break (r, f);
        }
    };
    peer.answer(&again, from, 401, &[("WWW-Authenticate", &challenge)])
        .await;
    match outcome(done).await {
        DeliveryOutcome::Failed(f) => assert_eq!(f.kind, FailureKind::Forbidden),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_timeout_fails_the_queue_behind_it_transiently() {
    let mut c = config();
    c.t1_ms = 10;
    c.t2_ms = 40;
    let hub = start(c).await;
    let peer = Peer::new().await;
    let uri = peer.uri();
    let first = message(&uri, "one");
    let first_again = first.clone();
    let one = hub.deliver(first).await;
    let two = hub.deliver(message(&uri, "two")).await;
    // Nobody answers: timer F (64*T1 = 640 ms).
    for rx in [one, two] {
        match outcome(rx).await {
            DeliveryOutcome::Failed(f) => assert!(f.is_transient(), "{f}"),
            other => panic!("{other:?}"),
        }
    }
    // A newer message may not overtake the one to be retried...
    match outcome(hub.deliver(message(&uri, "three")).await).await {
        DeliveryOutcome::Failed(f) => assert!(f.is_transient(), "{f}"),
        other => panic!("{other:?}"),
    }
    // ...which goes out when the hub sends it again.
    while peer.recv(Duration::from_millis(100)).await.is_some() {}
    let retry = hub.deliver(first_again).await;
    let (req, from) = peer.recv(WAIT).await.expect("the retry");
    assert_eq!(parse(&req).unwrap().body(), b"one");
    peer.answer(&req, from, 200, &[]).await;
    assert_eq!(outcome(retry).await, DeliveryOutcome::Delivered);
}

#[tokio::test]
async fn a_large_message_leaves_udp_for_tcp() {
    let hub = start(config()).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let text = "x".repeat(1400);
    let done = hub
        .deliver(message(&format!("sip:bob@{addr}"), &text))
        .await;
    let (mut conn, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .expect("a TCP connection for a MESSAGE over 1300 bytes")
        .unwrap();
    let mut buf = Vec::new();
    let request = loop {
        let mut chunk = [0; 4096];
        let n = conn.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection closed early");
        buf.extend_from_slice(&chunk[..n]);
        if let Ok(m) = parse(&buf) {
            if m.body().len() == 1400 {
                break m.to_owned_message();
            }
        }
    };
    let bytes = request.to_bytes();
    let m = parse(&bytes).unwrap();
    assert_eq!(m.top_via().unwrap().unwrap().transport(), "TCP");
    let ok = cpimgate_sip::codec::OwnedMessage::response_to(&m, 200, "OK", Some("p")).unwrap();
    conn.write_all(&ok.to_bytes()).await.unwrap();
    assert_eq!(outcome(done).await, DeliveryOutcome::Delivered);
}

/// A MESSAGE from `from` to `user` of the gateway's domain.
fn request_to(user: &str, from: SocketAddr, n: u32, auth: Option<&str>) -> Vec<u8> {
    let uri = format!("sip:{user}@gw.example.com");
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!(
        "MESSAGE {uri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {from};branch=z9hG4bKt{n}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:carol@127.0.0.1>;tag=c{n}\r\n\
         To: <{uri}>\r\n\
         Call-ID: call{n}@127.0.0.1\r\n\
         CSeq: {n} MESSAGE\r\n\
         {auth}\
         Content-Type: text/plain\r\n\
         Content-Length: 5\r\n\r\nhello"
    )
    .into_bytes()
}

async fn response(sock: &UdpSocket) -> Vec<u8> {
    let mut buf = vec![0; 65_536];
    loop {
        let (n, _) = tokio::time::timeout(WAIT, sock.recv_from(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        if !buf.starts_with(b"SIP/2.0 1") {
            return buf[..n].to_vec();
        }
    }
}

#[tokio::test]
async fn untrusted_senders_are_challenged() {
    let mut c = config();
    c.authenticate = true;
    c.accounts = vec![Account {
        user: "carol".into(),
        password: "pw".into(),
    }];
    let mut hub = start(c).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = sock.local_addr().unwrap();
    let gw: SocketAddr = format!("127.0.0.1:{}", hub.port).parse().unwrap();
    let user = "dave%40xmpp.example.org";

    sock.send_to(&request_to(user, me, 1, None), gw)
        .await
        .unwrap();
    let r = response(&sock).await;
    let m = parse(&r).unwrap();
    assert_eq!(m.status(), Some(401));
    let challenge = Challenge::parse(m.www_authenticate().next().expect("a challenge")).unwrap();
    let mut client = DigestClient::new("carol", "pw");
    let uri = format!("sip:{user}@gw.example.com");
    let creds = client
        .authorize(
            &challenge,
            &DigestRequest {
                method: "MESSAGE",
                uri: &uri,
                body: b"hello",
            },
            &mut || "abcdef".to_owned(),
        )
        .unwrap()
        .to_header_value()
        .unwrap();
    sock.send_to(&request_to(user, me, 2, Some(&creds)), gw)
        .await
        .unwrap();
    // The hub gets it and stores it; only then 202.
    let (message, reply) = match tokio::time::timeout(WAIT, hub.inbound.recv()).await {
        Ok(Some(Inbound::Message { message, reply })) => (message, reply),
        other => panic!("the hub gets the message: {other:?}"),
    };
    assert_eq!(
        message.to[0].address.to_string(),
        "im:dave@xmpp.example.org"
    );
    assert_eq!(message.body.as_text(), Some("hello"));
    reply.send(DeliveryOutcome::Accepted).unwrap();
    let r = response(&sock).await;
    assert!(
        r.starts_with(b"SIP/2.0 202 Accepted\r\n"),
        "{}",
        String::from_utf8_lossy(&r)
    );

    // A wrong password is challenged again, and nothing reaches the hub.
    let mut wrong = DigestClient::new("carol", "not it");
    let creds = wrong
        .authorize(
            &challenge,
            &DigestRequest {
                method: "MESSAGE",
                uri: &uri,
                body: b"hello",
            },
            &mut || "abcdef".to_owned(),
        )
        .unwrap()
        .to_header_value()
        .unwrap();
    sock.send_to(&request_to(user, me, 3, Some(&creds)), gw)
        .await
        .unwrap();
    assert_eq!(parse(&response(&sock).await).unwrap().status(), Some(401));
    assert!(hub.inbound.try_recv().is_err());
}

struct Pki {
    dir: tempfile_dir::Dir,
    ca: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

mod tempfile_dir {
    use std::path::{Path, PathBuf};

    /// A directory removed on drop.
    pub struct Dir(pub PathBuf);

    impl Dir {
        pub fn new(name: &str) -> Dir {
            let p = std::env::temp_dir().join(format!(
                "cpimgate-sip-adapter-{}-{name}",
                std::process::id()
            ));
            std::fs::create_dir_all(&p).expect("a temp dir");
            Dir(p)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = tempfile_dir::Dir::new(name);
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "cpimgate test CA");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().expect("a key");
        let ca = rcgen::CertifiedIssuer::self_signed(params, key).expect("a CA");
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).expect("written");
        Pki { dir, ca }
    }

    fn issue(&self, names: &[&str]) -> (std::path::PathBuf, std::path::PathBuf) {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .expect("params");
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = rcgen::KeyPair::generate().expect("a key");
        let cert = params.signed_by(&key, &self.ca).expect("signed");
        let chain = self.dir.path().join("gw.pem");
        let key_file = self.dir.path().join("gw.key");
        std::fs::write(&chain, cert.pem()).expect("written");
        std::fs::write(&key_file, key.serialize_pem()).expect("written");
        (chain, key_file)
    }
}

#[tokio::test]
async fn a_message_over_tls_is_accepted() {
    let pki = Pki::new("tls");
    let (cert, key) = pki.issue(&["127.0.0.1"]);
    let mut c = config();
    c.tls = vec!["127.0.0.1:0".parse().unwrap()];
    c.tls_cert = Some(cert);
    c.tls_key = Some(key);
    c.tls_ca = Some(pki.dir.path().join("ca.pem"));
    c.tls_require_client_cert = false;
    let mut hub = start(c).await;
    let gw: SocketAddr = format!("127.0.0.1:{}", hub.port).parse().unwrap();

    let (client, mut events) = Transport::bind(TransportConfig {
        listeners: vec![ListenerConfig::new(
            TransportKind::Tcp,
            "127.0.0.1:0".parse().unwrap(),
        )],
        tls: Some(TlsConfig {
            ca_file: Some(pki.dir.path().join("ca.pem")),
            use_system_roots: false,
            ..TlsConfig::default()
        }),
        ..TransportConfig::default()
    })
    .await
    .unwrap();
    let request = String::from_utf8(request_to("dave%40xmpp.example.org", gw, 1, None))
        .unwrap()
        .replace("SIP/2.0/UDP", "SIP/2.0/TLS");
    client
        .send(
            &Destination::new(TransportKind::Tls, gw),
            Bytes::from(request),
        )
        .await
        .expect("the TLS handshake against the gateway's certificate");
    let reply = match tokio::time::timeout(WAIT, hub.inbound.recv()).await {
        Ok(Some(Inbound::Message { reply, .. })) => reply,
        other => panic!("the hub gets the message: {other:?}"),
    };
    reply.send(DeliveryOutcome::Accepted).unwrap();
    loop {
        match tokio::time::timeout(WAIT, events.recv()).await {
            Ok(Some(TransportEvent::Message { bytes, source })) => {
                assert_eq!(source.transport, TransportKind::Tls);
                assert!(bytes.starts_with(b"SIP/2.0 202 Accepted\r\n"));
                break;
            }
            Ok(Some(_)) => {}
            other => panic!("a 202 over TLS: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_closed_connection_fails_the_message_at_once() {
    let hub = start(config()).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let done = hub
        .deliver(message(&format!("sip:bob@{addr};transport=tcp"), "hello"))
        .await;
    let (mut conn, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .expect("a TCP connection")
        .unwrap();
    let mut chunk = [0; 4096];
    assert!(conn.read(&mut chunk).await.unwrap() > 0);
    drop(conn);
    // RFC 3261 §18.4: long before timer F (32 s), a transient failure.
    match tokio::time::timeout(Duration::from_secs(5), done).await {
        Ok(Ok(DeliveryOutcome::Failed(f))) => assert!(f.is_transient(), "{f}"),
        other => panic!("a closed connection fails the MESSAGE: {other:?}"),
    }
}

#[tokio::test]
async fn an_im_recipient_is_resolved_through_the_mapping_table() {
    let peer = Peer::new().await;
    let mappings = MappingStore::open_in_memory().await.unwrap();
    mappings
        .upsert_identity(
            Some("Bob"),
            &[
                Alias::Im("im:bob@biloxi.example.com".into()),
                Alias::Sip(peer.uri()),
            ],
        )
        .await
        .unwrap();
    let hub = start_with(config(), mappings).await;
    let done = hub
        .deliver(message("im:bob@biloxi.example.com", "via im"))
        .await;
    let (req, from) = peer.recv(WAIT).await.expect("the MESSAGE");
    let m = parse(&req).unwrap();
    assert_eq!(m.request_uri(), Some(peer.uri().as_str()));
    peer.answer(&req, from, 200, &[]).await;
    assert_eq!(outcome(done).await, DeliveryOutcome::Delivered);

    match outcome(
        hub.deliver(message("im:nobody@biloxi.example.com", "x"))
            .await,
    )
    .await
    {
        DeliveryOutcome::Failed(f) => assert_eq!(f.kind, FailureKind::NotFound),
        other => panic!("{other:?}"),
    }
}

/// RFC 3261 §18.3: a datagram whose Content-Length is larger than its body
/// is a bad request; RFC 3261 §8.2 wants an answer, sent to the top Via
/// (§18.2.2) though the message as a whole cannot be read.
#[tokio::test]
async fn a_datagram_with_a_lying_content_length_gets_400() {
    let hub = start(config()).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = sock.local_addr().unwrap();
    let gw: SocketAddr = format!("127.0.0.1:{}", hub.port).parse().unwrap();
    let request = String::from_utf8(request_to("dave%40xmpp.example.org", me, 7, None))
        .unwrap()
        .replace("Content-Length: 5", "Content-Length: 999");
    sock.send_to(request.as_bytes(), gw).await.unwrap();
    let r = response(&sock).await;
    let m = parse(&r).unwrap();
    assert_eq!(m.status(), Some(400), "{}", String::from_utf8_lossy(&r));
    assert_eq!(m.cseq().unwrap().unwrap().seq, 7);
    assert_eq!(m.call_id().unwrap(), Some("call7@127.0.0.1"));
}
