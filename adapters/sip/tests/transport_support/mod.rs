//! Helpers shared by the transport tests.
// Each test crate that includes this module uses a part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use cpimgate_sip::codec::{OwnedMessage, parse};
use cpimgate_sip::transport::{
    CloseReason, ConnId, ListenerConfig, Source, Transport, TransportConfig, TransportEvent,
    TransportKind,
};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc::Receiver;
use tokio::time::timeout;

pub const WAIT: Duration = Duration::from_secs(5);

pub fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("cpimgate_sip=debug")
        .try_init();
}

pub fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().expect("an address")
}

/// A request of RFC 3428 §10 shape, with a distinct branch.
pub fn message(branch: &str, body: &str) -> Vec<u8> {
    format!(
        "MESSAGE sip:user2@domain.com SIP/2.0\r\n\
         Via: SIP/2.0/TCP user1pc.domain.com;branch=z9hG4bK{branch}\r\n\
         Max-Forwards: 70\r\n\
         From: sip:user1@domain.com;tag=49583\r\n\
         To: sip:user2@domain.com\r\n\
         Call-ID: {branch}@1.2.3.4\r\n\
         CSeq: 1 MESSAGE\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: {}\r\n\
         \r\n{body}",
        body.len()
    )
    .into_bytes()
}

pub fn ok_for(request: &[u8]) -> Bytes {
    let m = parse(request).expect("the request parses");
    let ok = OwnedMessage::response_to(&m, 200, "OK", Some("t1")).expect("a response");
    Bytes::from(ok.to_bytes())
}

pub async fn bind(config: TransportConfig) -> (Transport, Receiver<TransportEvent>) {
    Transport::bind(config).await.expect("listeners bind")
}

pub fn config(kinds: &[TransportKind]) -> TransportConfig {
    TransportConfig {
        listeners: kinds
            .iter()
            .map(|&k| ListenerConfig::new(k, localhost()))
            .collect(),
        ..TransportConfig::default()
    }
}

pub async fn next(rx: &mut Receiver<TransportEvent>) -> TransportEvent {
    timeout(WAIT, rx.recv())
        .await
        .expect("an event in time")
        .expect("the transport is alive")
}

/// The next message event, skipping nothing: anything else fails.
pub async fn next_message(rx: &mut Receiver<TransportEvent>) -> (Bytes, Source) {
    match next(rx).await {
        TransportEvent::Message { bytes, source } => (bytes, source),
        other => panic!("expected a message, got {other:?}"),
    }
}

pub async fn next_closed(rx: &mut Receiver<TransportEvent>) -> (ConnId, CloseReason) {
    loop {
        match next(rx).await {
            TransportEvent::Closed { conn, reason, .. } => return (conn, reason),
            TransportEvent::Malformed { .. } => continue,
            other => panic!("expected a close, got {other:?}"),
        }
    }
}

pub async fn nothing_more(rx: &mut Receiver<TransportEvent>, within: Duration) {
    if let Ok(Some(ev)) = timeout(within, rx.recv()).await {
        panic!("expected no event, got {ev:?}");
    }
}

/// Reads from a raw socket until `n` bytes or end of stream.
pub async fn read_some(sock: &mut TcpStream) -> Vec<u8> {
    let mut buf = vec![0u8; 65_536];
    let n = timeout(WAIT, sock.read(&mut buf))
        .await
        .expect("a read in time")
        .unwrap_or(0);
    buf.truncate(n);
    buf
}

/// Whether the server closed the raw socket (EOF or reset) in time.
pub async fn closed_by_server(sock: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match timeout(WAIT, sock.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}
