//! The session rules of RFC 4975 the room's switch keeps, over real
//! sockets: the adapter runs alone (a channel stands in for the hub);
//! each participant is written here by hand, raw SIP over UDP and raw
//! MSRP over TCP, so that a test can send what no well-behaved client
//! would.
//!
//! * a request for a session nobody has gets 481 (§7.3);
//! * a request naming a session bound to another connection gets 506
//!   (§5.4);
//! * an unknown method gets 501 (§12);
//! * a chunk larger than `max_message_size` gets 413 while it is still
//!   coming (§10.5), and the connection goes on;
//! * a message whose chunks pass `max_message_size` gets 413 at the
//!   chunk that passes it, and its copies are aborted (`#`, §7.1);
//! * a participant that answers a forwarded chunk 413 gets no more
//!   chunks of that message (§10.5);
//! * a late copy of an INVITE, after its ACK, does not join again
//!   (RFC 3261 §17.2.3: the transaction that would have absorbed it
//!   ends at the ACK);
//! * with `keepalive_ms`, a silent connection gets an empty SEND that
//!   asks for a response (§7.1.1); a participant that answers stays, one
//!   that does not is treated as failed (408) and gets a BYE;
//! * in a room elsewhere (`remote_rooms`), a focus that leaves the
//!   gateway's first SEND and NICKNAME without a response for
//!   `response_within_ms` (§7.1.1) gets a BYE and a new INVITE.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use cpimgate_mappings::MappingStore;
use cpimgate_model::port::{Adapter, AdapterContext, DeliveryOutcome, Inbound, NoHistory};
use cpimgate_msrp::adapter::MsrpAdapter;
use cpimgate_msrp::codec::{Continuation, Limits, StreamFramer, parse};
use cpimgate_msrp::config::MsrpConfig;
use cpimgate_msrp::sdp::{self, Local};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};

const DOMAIN: &str = "chat.localhost";
const ROOM: &str = "sip:room@chat.localhost";
const WAIT: Duration = Duration::from_secs(5);

fn token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The adapter with `extra` TOML lines; its SIP address. It stops when
/// the returned sender is dropped.
async fn gateway(extra: &str) -> (SocketAddr, watch::Sender<bool>) {
    let sip_port = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let toml = format!(
        r#"
        domain = "{DOMAIN}"
        sip_udp = ["127.0.0.1:{sip_port}"]
        msrp = "127.0.0.1:0"
        {extra}
        [[rooms]]
        name = "room"
        "#
    );
    let config: MsrpConfig = toml::from_str(&toml).unwrap();
    let db = std::env::temp_dir().join(format!("cpimgate-msrp-rules-{}.sqlite", token()));
    let mappings = MappingStore::open(&db).await.unwrap();
    let (inbound, mut from_adapter) = mpsc::channel(1024);
    let (_to_adapter, outbound) = mpsc::channel(16);
    let (stop, shutdown) = watch::channel(false);
    let ctx = AdapterContext {
        name: "chat".into(),
        inbound,
        outbound,
        shutdown,
        history: std::sync::Arc::new(NoHistory),
    };
    tokio::spawn(async move {
        let _keep = _to_adapter;
        let _ = Box::new(MsrpAdapter::new(config, mappings)).run(ctx).await;
    });
    // The hub: takes every message.
    tokio::spawn(async move {
        while let Some(i) = from_adapter.recv().await {
            if let Inbound::Message { reply, .. } = i {
                let _ = reply.send(DeliveryOutcome::Accepted);
            }
        }
    });
    // Ready when it answers OPTIONS.
    let probe = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let focus = SocketAddr::from(([127, 0, 0, 1], sip_port));
    for _ in 0..100 {
        let local = probe.local_addr().unwrap();
        let options = sip_request("OPTIONS", local, &token(), &token(), 1, "");
        probe.send_to(options.as_bytes(), focus).await.unwrap();
        let mut buf = vec![0u8; 4096];
        if let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(100), probe.recv_from(&mut buf)).await
        {
            return (focus, stop);
        }
    }
    panic!("the adapter did not start");
}

fn sip_request(
    method: &str,
    local: SocketAddr,
    call_id: &str,
    from_tag: &str,
    cseq: u32,
    to_tag: &str,
) -> String {
    let to_tag = if to_tag.is_empty() {
        String::new()
    } else {
        format!(";tag={to_tag}")
    };
    format!(
        "{method} {ROOM} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK{}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{from_tag}@example.com>;tag={from_tag}\r\n\
         To: <{ROOM}>{to_tag}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:ua@{local}>\r\n\
         Content-Length: 0\r\n\r\n",
        token()
    )
}

/// A participant: its SIP socket and its MSRP connection.
struct Ua {
    sip: UdpSocket,
    /// The user part of its SIP URI (`sip:<user>@example.com`).
    user: String,
    tcp: TcpStream,
    framer: StreamFramer,
    own_path: String,
    focus_path: String,
    /// The INVITE as sent, and where to.
    invite: (Vec<u8>, SocketAddr),
}

impl Ua {
    /// INVITE, 200, ACK, TCP to the answer's path, bound by an empty
    /// SEND answered 200.
    async fn join(focus: SocketAddr) -> Ua {
        let sip = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let local = sip.local_addr().unwrap();
        let own_path = format!("msrp://127.0.0.1:9/{};tcp", token());
        let offer = sdp::offer(&Local {
            host: "127.0.0.1".into(),
            port: 9,
            secure: false,
            path: own_path.clone(),
            accept_types: vec!["message/cpim".into()],
            accept_wrapped_types: vec!["*".into()],
            max_size: None,
            chatroom: Some(Vec::new()),
            session_id: 1,
        });
        let (call_id, user) = (token(), format!("u{}", token()));
        let invite = sip_request("INVITE", local, &call_id, &user, 1, "").replace(
            "Content-Length: 0\r\n\r\n",
            &format!(
                "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n",
                offer.len()
            ),
        );
        let mut bytes = invite.into_bytes();
        bytes.extend_from_slice(&offer);
        sip.send_to(&bytes, focus).await.unwrap();
        let ok = loop {
            let m = recv_sip(&sip).await;
            let parsed = cpimgate_sip::codec::parse(&m).unwrap();
            match parsed.status() {
                Some(s) if s >= 200 => {
                    assert_eq!(s, 200, "the INVITE got {s}");
                    break m;
                }
                _ => {}
            }
        };
        let parsed = cpimgate_sip::codec::parse(&ok).unwrap();
        let to_tag = parsed
            .to()
            .unwrap()
            .unwrap()
            .tag()
            .unwrap_or_default()
            .to_owned();
        let answer = sdp::parse(parsed.body()).unwrap();
        let focus_path = answer.msrp[0].path.last().unwrap().clone();
        let ack = sip_request("ACK", local, &call_id, &user, 1, &to_tag);
        sip.send_to(ack.as_bytes(), focus).await.unwrap();
        let uri = cpimgate_msrp::codec::MsrpUri::parse(&focus_path).unwrap();
        let tcp = TcpStream::connect((uri.host(), uri.port().unwrap()))
            .await
            .unwrap();
        let mut ua = Ua {
            sip,
            user,
            tcp,
            framer: StreamFramer::new(Limits::default()),
            own_path,
            focus_path,
            invite: (bytes, focus),
        };
        let tid = token();
        ua.write(&ua.request(&tid, "SEND", &format!("Message-ID: {}\r\n", token()), None))
            .await;
        assert_eq!(ua.response(&tid).await, 200, "the binding SEND");
        ua
    }

    /// A request on the session: `headers` after the paths, a body if
    /// given (with its Content-Type in `headers`), and end-line `$`.
    fn request(&self, tid: &str, method: &str, headers: &str, body: Option<&[u8]>) -> Vec<u8> {
        request_to(&self.focus_path, &self.own_path, tid, method, headers, body)
    }

    async fn write(&mut self, bytes: &[u8]) {
        self.tcp.write_all(bytes).await.unwrap();
    }

    /// The next MSRP message from the room.
    async fn next(&mut self) -> Bytes {
        self.try_next(WAIT).await.expect("nothing from the room")
    }

    async fn try_next(&mut self, within: Duration) -> Option<Bytes> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(m) = self.framer.poll_event() {
                return Some(m.unwrap());
            }
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout_at(deadline, self.tcp.read(&mut buf))
                .await
                .ok()?
                .unwrap();
            if n == 0 {
                return None;
            }
            self.framer.handle_data(&buf[..n]);
        }
    }

    /// The status of the response to transaction `tid` (requests from
    /// the room before it are skipped).
    async fn response(&mut self, tid: &str) -> u16 {
        loop {
            let m = self.next().await;
            let m = parse(&m).unwrap();
            if !m.is_request() && m.transaction_id() == tid {
                return m.status_code().unwrap();
            }
        }
    }

    /// Whether the focus sends a BYE within `within` (answered 200).
    async fn bye(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let mut buf = vec![0u8; 65536];
            let Ok(r) = tokio::time::timeout_at(deadline, self.sip.recv_from(&mut buf)).await
            else {
                return false;
            };
            let (n, from) = r.unwrap();
            let m = cpimgate_sip::codec::parse(&buf[..n]).unwrap();
            if m.method() == Some("BYE") {
                let ok =
                    cpimgate_sip::codec::OwnedMessage::response_to(&m, 200, "OK", None).unwrap();
                self.sip.send_to(&ok.to_bytes(), from).await.unwrap();
                return true;
            }
        }
    }
}

fn request_to(
    to: &str,
    from: &str,
    tid: &str,
    method: &str,
    headers: &str,
    body: Option<&[u8]>,
) -> Vec<u8> {
    let mut m = format!("MSRP {tid} {method}\r\nTo-Path: {to}\r\nFrom-Path: {from}\r\n{headers}")
        .into_bytes();
    if let Some(b) = body {
        m.extend_from_slice(b"\r\n");
        m.extend_from_slice(b);
        m.extend_from_slice(b"\r\n");
    }
    m.extend_from_slice(format!("-------{tid}$\r\n").as_bytes());
    m
}

async fn recv_sip(sock: &UdpSocket) -> Vec<u8> {
    let mut buf = vec![0u8; 65536];
    let (n, _) = tokio::time::timeout(WAIT, sock.recv_from(&mut buf))
        .await
        .expect("no SIP message")
        .unwrap();
    buf.truncate(n);
    buf
}

/// A CPIM message from `user` to the room, `text` as its body.
fn cpim(user: &str, text: &str) -> Vec<u8> {
    format!(
        "From: <sip:{user}@example.com>\r\nTo: <{ROOM}>\r\n\r\n\
         Content-Type: text/plain\r\n\r\n{text}"
    )
    .into_bytes()
}

#[tokio::test]
async fn a_request_for_an_unknown_session_gets_481() {
    let (focus, _stop) = gateway("").await;
    let ua = Ua::join(focus).await;
    // On a connection of its own: the first request names no session.
    let mut other = TcpStream::connect(ua.tcp.peer_addr().unwrap())
        .await
        .unwrap();
    let nowhere = ua.focus_path.replace(
        ua.focus_path.rsplit('/').next().unwrap(),
        "nosuchsession;tcp",
    );
    let req = request_to(
        &nowhere,
        &ua.own_path,
        "t481",
        "SEND",
        &format!("Message-ID: {}\r\n", token()),
        None,
    );
    other.write_all(&req).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(WAIT, other.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let m = parse(&buf[..n]).unwrap();
    assert_eq!((m.transaction_id(), m.status_code()), ("t481", Some(481)));
}

#[tokio::test]
async fn a_second_connection_for_a_bound_session_gets_506() {
    let (focus, _stop) = gateway("").await;
    let mut ua = Ua::join(focus).await;
    let mut other = TcpStream::connect(ua.tcp.peer_addr().unwrap())
        .await
        .unwrap();
    let req = ua.request(
        "t506",
        "SEND",
        &format!("Message-ID: {}\r\n", token()),
        None,
    );
    other.write_all(&req).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(WAIT, other.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let m = parse(&buf[..n]).unwrap();
    assert_eq!((m.transaction_id(), m.status_code()), ("t506", Some(506)));
    // The session's own connection still works.
    let tid = token();
    let req = ua.request(&tid, "SEND", &format!("Message-ID: {}\r\n", token()), None);
    ua.write(&req).await;
    assert_eq!(ua.response(&tid).await, 200);
}

#[tokio::test]
async fn an_unknown_method_gets_501() {
    let (focus, _stop) = gateway("").await;
    let mut ua = Ua::join(focus).await;
    let req = ua.request("t501", "FROBNICATE", "", None);
    ua.write(&req).await;
    assert_eq!(ua.response("t501").await, 501);
}

#[tokio::test]
async fn a_chunk_too_large_gets_413_while_it_comes_and_the_connection_goes_on() {
    let (focus, _stop) = gateway("max_message_size = 1000").await;
    let mut ua = Ua::join(focus).await;
    let head = format!(
        "MSRP t413 SEND\r\nTo-Path: {}\r\nFrom-Path: {}\r\nMessage-ID: bigmessage\r\n\
         Byte-Range: 1-*/*\r\nContent-Type: message/cpim\r\n\r\n",
        ua.focus_path, ua.own_path
    );
    let mut body = cpim(&ua.user, "");
    body.resize(4000, b'x');
    ua.write(head.as_bytes()).await;
    ua.write(&body).await;
    // The chunk is not ended: the 413 comes while it is being sent.
    assert_eq!(ua.response("t413").await, 413);
    // RFC 4975 §10.5: the sender interrupts the chunk.
    ua.write(b"xxxx\r\n-------t413+\r\n").await;
    let tid = token();
    let req = ua.request(&tid, "SEND", &format!("Message-ID: {}\r\n", token()), None);
    ua.write(&req).await;
    assert_eq!(ua.response(&tid).await, 200, "the connection goes on");
}

#[tokio::test]
async fn a_message_whose_chunks_pass_the_limit_gets_413_and_its_copies_are_aborted() {
    let (focus, _stop) = gateway("max_message_size = 1000").await;
    let mut alice = Ua::join(focus).await;
    let mut bob = Ua::join(focus).await;
    let mut first = cpim(&alice.user, "");
    first.resize(800, b'a');
    let chunk = |tid: &str, range: &str, body: &[u8], flag: char| {
        let mut m = alice.request(
            tid,
            "SEND",
            &format!("Message-ID: long\r\nByte-Range: {range}\r\nContent-Type: message/cpim\r\n"),
            Some(body),
        );
        let end = m.len() - 3;
        m[end] = flag as u8;
        m
    };
    let c1 = chunk("chunk1", "1-800/*", &first, '+');
    let c2 = chunk("chunk2", "801-1600/*", &[b'b'; 800], '+');
    alice.write(&c1).await;
    assert_eq!(alice.response("chunk1").await, 200);
    alice.write(&c2).await;
    assert_eq!(alice.response("chunk2").await, 413);
    // Bob had the first chunk, then the message's end: aborted.
    let copy = bob.next().await;
    let copy = parse(&copy).unwrap();
    assert_eq!(copy.body().map(<[u8]>::len), Some(800));
    assert_eq!(copy.continuation(), Continuation::More);
    let abort = bob.next().await;
    let abort = parse(&abort).unwrap();
    assert_eq!(abort.message_id().unwrap(), copy.message_id().unwrap());
    assert_eq!(abort.continuation(), Continuation::Aborted);
}

#[tokio::test]
async fn keepalives_are_sent_and_a_participant_that_does_not_answer_them_is_dropped() {
    let (focus, _stop) = gateway("keepalive_ms = 200\nresponse_within_ms = 400").await;
    let mut answers = Ua::join(focus).await;
    let mut silent = Ua::join(focus).await;
    // RFC 4975 §7.1.1: an empty SEND without Failure-Report asks for a
    // response.
    let keepalive = silent.next().await;
    let m = parse(&keepalive).unwrap();
    assert_eq!(m.method(), Some("SEND"));
    assert!(m.body().unwrap_or_default().is_empty());
    assert!(m.wants_response(200));
    // Two keep-alives answered: the session stays.
    for _ in 0..2 {
        let k = answers.next().await;
        let k = parse(&k).unwrap();
        assert_eq!(k.method(), Some("SEND"));
        let ok =
            cpimgate_msrp::codec::OwnedMessage::response_to(&k, 200, Some("OK"), &answers.own_path)
                .unwrap();
        answers.write(&ok.to_bytes()).await;
    }
    // The silent one's keep-alive times out (408): its session ends.
    assert!(silent.bye(WAIT).await, "no BYE for the silent participant");
    assert!(
        !answers.bye(Duration::from_millis(300)).await,
        "the answering participant got a BYE"
    );
}

#[tokio::test]
async fn a_copy_of_the_invite_after_its_ack_joins_nobody() {
    let (focus, _stop) = gateway("").await;
    let ua = Ua::join(focus).await;
    let (invite, to) = &ua.invite;
    ua.sip.send_to(invite, *to).await.unwrap();
    let mut buf = vec![0u8; 65536];
    let answered =
        tokio::time::timeout(Duration::from_millis(700), ua.sip.recv_from(&mut buf)).await;
    if let Ok(r) = answered {
        let (n, _) = r.unwrap();
        let m = cpimgate_sip::codec::parse(&buf[..n]).unwrap();
        panic!("the copy got {:?}", m.status());
    }
}

/// A focus written here: answers the gateway's INVITE, takes its MSRP
/// connection, and answers nothing on it.
#[tokio::test]
async fn a_room_elsewhere_that_does_not_answer_is_left_and_joined_again() {
    let focus_sip = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let focus_addr = focus_sip.local_addr().unwrap();
    let msrp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let msrp_port = msrp.local_addr().unwrap().port();
    let (_gw, _stop) = gateway(&format!(
        "response_within_ms = 300\n\
         [[remote_rooms]]\n\
         uri = \"sip:elsewhere@127.0.0.1:{port}\"\n\
         nickname = \"gw\"\n\
         proxy = \"127.0.0.1:{port}\"\n\
         rejoin_min_ms = 50\n\
         rejoin_max_ms = 100\n",
        port = focus_addr.port()
    ))
    .await;
    // The INVITE (OPTIONS probes of `gateway` do not come here).
    let (invite, from) = loop {
        let mut buf = vec![0u8; 65536];
        let (n, from) = tokio::time::timeout(WAIT, focus_sip.recv_from(&mut buf))
            .await
            .expect("no INVITE")
            .unwrap();
        buf.truncate(n);
        if cpimgate_sip::codec::parse(&buf).unwrap().method() == Some("INVITE") {
            break (buf, from);
        }
    };
    let req = cpimgate_sip::codec::parse(&invite).unwrap();
    let offer = sdp::parse(req.body()).unwrap();
    let path = format!("msrp://127.0.0.1:{msrp_port}/{};tcp", token());
    let (answer, _) = sdp::answer(&offer, &Local::room("127.0.0.1", msrp_port, &path)).unwrap();
    let mut ok =
        cpimgate_sip::codec::OwnedMessage::response_to(&req, 200, "OK", Some(&token())).unwrap();
    ok.push_header("Contact", &format!("<sip:elsewhere@{focus_addr}>;isfocus"))
        .unwrap();
    ok.push_header("Content-Type", "application/sdp").unwrap();
    ok.set_body(answer);
    focus_sip.send_to(&ok.to_bytes(), from).await.unwrap();
    // The gateway connects and sends first; nothing is answered.
    let (mut conn, _) = tokio::time::timeout(WAIT, msrp.accept())
        .await
        .expect("no MSRP connection")
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(WAIT, conn.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(buf[..n].starts_with(b"MSRP "), "the first SEND");
    // RFC 4975 §7.1.1: no response in time is a failure (408): the
    // gateway leaves (BYE) and joins again (a new INVITE).
    let mut seen = Vec::new();
    while !(seen.contains(&"BYE".to_owned()) && seen.contains(&"INVITE".to_owned())) {
        let mut buf = vec![0u8; 65536];
        let (n, from) = tokio::time::timeout(WAIT, focus_sip.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("after the silence the focus saw only {seen:?}"))
            .unwrap();
        let m = cpimgate_sip::codec::parse(&buf[..n]).unwrap();
        if let Some(method) = m.method() {
            if method == "BYE" {
                let ok =
                    cpimgate_sip::codec::OwnedMessage::response_to(&m, 200, "OK", None).unwrap();
                focus_sip.send_to(&ok.to_bytes(), from).await.unwrap();
            }
            seen.push(method.to_owned());
        }
    }
}

#[tokio::test]
async fn a_participant_that_refuses_a_chunk_gets_no_more_of_its_message() {
    let (focus, _stop) = gateway("").await;
    let mut alice = Ua::join(focus).await;
    let mut bob = Ua::join(focus).await;
    let send = |ua: &Ua, tid: &str, id: &str, range: &str, body: &[u8], flag: u8| {
        let mut m = ua.request(
            tid,
            "SEND",
            &format!("Message-ID: {id}\r\nByte-Range: {range}\r\nContent-Type: message/cpim\r\n"),
            Some(body),
        );
        let end = m.len() - 3;
        m[end] = flag;
        m
    };
    let first = cpim(&alice.user, "first half, ");
    let n = first.len();
    let c1 = send(&alice, "part1", "halves", &format!("1-{n}/*"), &first, b'+');
    alice.write(&c1).await;
    assert_eq!(alice.response("part1").await, 200);
    // Bob refuses the copy (RFC 4975 §10.5: stop sending it).
    let copy = bob.next().await;
    let copy = parse(&copy).unwrap();
    assert_eq!(copy.continuation(), Continuation::More);
    let refusal = cpimgate_msrp::codec::OwnedMessage::response_to(
        &copy,
        413,
        Some("Too large"),
        &bob.own_path,
    )
    .unwrap();
    bob.write(&refusal.to_bytes()).await;
    // The switch reads the 413 before alice's next chunk: a round trip
    // of bob's on the same connection after it.
    let tid = token();
    let req = bob.request(&tid, "SEND", &format!("Message-ID: {}\r\n", token()), None);
    bob.write(&req).await;
    assert_eq!(bob.response(&tid).await, 200);
    let c2 = send(
        &alice,
        "part2",
        "halves",
        &format!("{}-{}/*", n + 1, n + 11),
        b"second half",
        b'$',
    );
    alice.write(&c2).await;
    assert_eq!(alice.response("part2").await, 200);
    // Then a whole message: the next thing bob gets.
    let whole = send(
        &alice,
        "whole1",
        "another",
        "1-*/*",
        &cpim(&alice.user, "next"),
        b'$',
    );
    alice.write(&whole).await;
    let next = bob.next().await;
    let next = parse(&next).unwrap();
    assert!(
        next.body().unwrap_or_default().ends_with(b"next"),
        "bob got {:?}",
        String::from_utf8_lossy(next.body().unwrap_or_default())
    );
}
