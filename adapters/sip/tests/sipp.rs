//! A real SIP peer against the transports: sipp (Debian's `sip-tester`,
//! installed by scripts/install-test-deps) sends to a small responder made
//! of the transport and the codec, which answers every request but ACK
//! with 200. sipp's exit code 0 means every call succeeded.
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
