//! A real SIP peer against the transports: sipp (Debian's `sip-tester`,
//! installed by scripts/install-test-deps) sends to a small responder made
//! of the transport and the codec, which answers every request but ACK
//! with 200; and the transport sends MESSAGEs to sipp as a UAS. sipp's
//! exit code 0 means every call succeeded. Debian's sipp is built without
//! TLS, so TLS is tested against rustls only (transport_tls.rs).
//!
//! These tests fail, never skip, when sipp is missing or cannot start.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cpimgate_sip::codec::{OwnedMessage, parse};
use cpimgate_sip::transport::{
    Destination, ListenerConfig, ResponseTarget, Source, Transport, TransportConfig,
    TransportEvent, TransportKind, response_destination,
};
use tokio::process::Command;
use tokio::sync::mpsc::Receiver;
use tokio::time::timeout;

const CALLS: u32 = 10;

/// Answers 200 to every request but ACK, sending each response where RFC
/// 3261 §18.2.2 says; counts the answers in `answered`.
async fn respond(
    transport: Transport,
    mut events: Receiver<TransportEvent>,
    answered: Arc<AtomicU32>,
) {
    while let Some(event) = events.recv().await {
        let TransportEvent::Message { bytes, source } = event else {
            continue;
        };
        match answer(&bytes, &source) {
            Some((dest, response)) => {
                if let Err(e) = transport.send(&dest, response).await {
                    eprintln!("responder: send failed: {e}");
                } else {
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            }
            None => continue,
        }
    }
}

fn answer(bytes: &[u8], source: &Source) -> Option<(Destination, Bytes)> {
    let request = parse(bytes).ok()?;
    if !request.is_request() || request.method() == Some("ACK") {
        return None;
    }
    let mut ok = OwnedMessage::response_to(&request, 200, "OK", Some("cpimgate")).ok()?;
    ok.push_header("Contact", &format!("<sip:gw@{}>", source.local))
        .ok()?;
    let via = request.top_via().ok()??;
    let d = response_destination(&via, Some(source)).ok()?;
    let ResponseTarget::Addr(addr) = d.target else {
        return None;
    };
    let dest = Destination {
        transport: d.transport,
        addr,
        conn: d.conn,
        local: Some(source.local),
        tls_name: None,
    };
    Some((dest, Bytes::from(ok.to_bytes())))
}

fn work_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cpimgate-sipp-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    dir
}

/// Runs sipp against a fresh responder on `kind`; panics with sipp's
/// output and error log unless it exits 0, or unless the responder
/// answered `answers` requests.
async fn run_sipp(name: &str, kind: TransportKind, scenario: &[&str], answers: u32) {
    let config = TransportConfig {
        listeners: vec![ListenerConfig::new(
            kind,
            "127.0.0.1:0".parse().expect("an address"),
        )],
        ..TransportConfig::default()
    };
    let (transport, events) = Transport::bind(config).await.expect("the responder binds");
    let addr = transport.local_addr(kind).expect("a listener");
    let answered = Arc::new(AtomicU32::new(0));
    let responder = tokio::spawn(respond(transport, events, Arc::clone(&answered)));

    let dir = work_dir(name);
    let errors = dir.join("errors.log");
    let mode = match kind {
        TransportKind::Udp => "u1",
        TransportKind::Tcp => "t1",
        TransportKind::Tls => "l1",
    };
    let mut cmd = Command::new("sipp");
    cmd.args(scenario)
        .arg(addr.to_string())
        .args(["-i", "127.0.0.1", "-t", mode])
        .args(["-m", &CALLS.to_string(), "-r", "50"])
        .args(["-nostdin", "-timeout", "10s", "-timeout_error"])
        .arg("-trace_err")
        .arg("-error_file")
        .arg(&errors)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => panic!(
            "sipp cannot start ({e}): install Debian's sip-tester \
             (scripts/install-test-deps does)"
        ),
    };
    let out = timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("sipp ends within 30 s")
        .expect("sipp's status");
    let log = std::fs::read_to_string(&errors).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "sipp {name} failed with {}: {}\nerror log:\n{log}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    responder.abort();
    assert!(
        answered.load(Ordering::Relaxed) >= answers,
        "the responder answered {} requests, expected {answers}",
        answered.load(Ordering::Relaxed)
    );
}

fn scenario(file: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(file)
        .to_string_lossy()
        .into_owned()
}

// sipp's built-in UAC: INVITE, 200, ACK, BYE, 200 over UDP.
#[tokio::test]
async fn sipp_builtin_uac_over_udp() {
    run_sipp("uac-udp", TransportKind::Udp, &["-sn", "uac"], 2 * CALLS).await;
}

// Pager-mode MESSAGE over UDP, with rport (RFC 3581).
#[tokio::test]
async fn sipp_message_over_udp() {
    let sf = scenario("message.xml");
    run_sipp("message-udp", TransportKind::Udp, &["-sf", &sf], CALLS).await;
}

// MESSAGE over one TCP connection: framing of a real peer's stream, and
// responses on the connection of their request (RFC 3261 §18.2.2).
#[tokio::test]
async fn sipp_message_over_tcp() {
    let sf = scenario("message.xml");
    run_sipp("message-tcp", TransportKind::Tcp, &["-sf", &sf], CALLS).await;
}

/// A free port on 127.0.0.1 (for sipp's `-p`), found by binding both
/// protocols and letting go.
fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("a free TCP port");
        let port = tcp.local_addr().expect("an address").port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The transport as a client of sipp's UAS: `CALLS` MESSAGEs, each
/// answered 200; over TCP all on one connection.
async fn send_to_sipp(name: &str, kind: TransportKind) {
    let port = free_port();
    let dir = work_dir(name);
    let errors = dir.join("errors.log");
    let mode = if kind == TransportKind::Udp {
        "u1"
    } else {
        "t1"
    };
    let child = Command::new("sipp")
        .args(["-sf", &scenario("message_uas.xml")])
        .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-t", mode])
        .args(["-m", &CALLS.to_string()])
        .args(["-nostdin", "-timeout", "10s", "-timeout_error"])
        .arg("-trace_err")
        .arg("-error_file")
        .arg(&errors)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => panic!(
            "sipp cannot start ({e}): install Debian's sip-tester \
             (scripts/install-test-deps does)"
        ),
    };

    let config = TransportConfig {
        listeners: vec![ListenerConfig::new(
            kind,
            "127.0.0.1:0".parse().expect("an address"),
        )],
        ..TransportConfig::default()
    };
    let (transport, mut events) = Transport::bind(config).await.expect("the client binds");
    let local = transport.local_addr(kind).expect("a listener");
    let sipp: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let dest = Destination::new(kind, sipp);
    let mut conns = Vec::new();
    for call in 0..CALLS {
        let request = format!(
            "MESSAGE sip:service@{sipp} SIP/2.0\r\n\
             Via: SIP/2.0/{kind} {local};branch=z9hG4bK{name}{call}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:gw@{local}>;tag=f{call}\r\n\
             To: <sip:service@{sipp}>\r\n\
             Call-ID: {name}-{call}@cpimgate.test\r\n\
             CSeq: 1 MESSAGE\r\n\
             Content-Type: text/plain\r\n\
             Content-Length: 5\r\n\
             \r\nhello"
        );
        let request = Bytes::from(request);
        // sipp may not listen yet: send again (the first call) until it
        // answers, as a client transaction would.
        let call_id = format!("{name}-{call}@cpimgate.test");
        let mut attempts = 0;
        let response = 'call: loop {
            attempts += 1;
            match transport.send(&dest, request.clone()).await {
                Ok(conn) => conns.push(conn),
                Err(e) if call == 0 => eprintln!("sipp not ready yet: {e}"),
                Err(e) => panic!("send {call} failed: {e}"),
            }
            let wait = if call == 0 { 500 } else { 5_000 };
            let deadline = tokio::time::Instant::now() + Duration::from_millis(wait);
            loop {
                match tokio::time::timeout_at(deadline, events.recv()).await {
                    Ok(Some(TransportEvent::Message { bytes, source })) => {
                        let ours = parse(&bytes)
                            .ok()
                            .and_then(|m| m.call_id().ok().flatten().map(|c| c == call_id));
                        if ours == Some(true) {
                            break 'call (bytes, source);
                        }
                        // A late answer to a resent first request.
                    }
                    Ok(other) => panic!("expected sipp's response, got {other:?}"),
                    Err(_) if call == 0 && attempts < 20 => continue 'call,
                    Err(_) => panic!("no response to call {call}"),
                }
            }
        };
        let (bytes, source) = response;
        let m = parse(&bytes).expect("sipp's response parses");
        assert_eq!(m.status(), Some(200));
        assert_eq!(source.peer, sipp);
        if kind.is_reliable() {
            assert_eq!(
                Some(source.conn),
                conns.last().copied(),
                "the response comes on the request's connection"
            );
        }
    }
    if kind.is_reliable() {
        conns.dedup();
        assert_eq!(conns.len(), 1, "every MESSAGE on one connection: {conns:?}");
    }
    let out = timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("sipp ends within 30 s")
        .expect("sipp's status");
    let log = std::fs::read_to_string(&errors).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "sipp {name} failed with {}: {}\nerror log:\n{log}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

// The transport as a UAC over UDP, sipp as the UAS.
#[tokio::test]
async fn message_to_sipp_over_udp() {
    send_to_sipp("uas-udp", TransportKind::Udp).await;
}

// The transport as a UAC over TCP: one connection, reused for every
// MESSAGE, responses on it.
#[tokio::test]
async fn message_to_sipp_over_tcp() {
    send_to_sipp("uas-tcp", TransportKind::Tcp).await;
}
