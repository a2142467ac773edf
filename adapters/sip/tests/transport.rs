//! The transports over real loopback sockets: UDP and TCP, framing,
//! connection reuse, and the cuts (idle, slow message, oversize, limits,
//! a peer that does not read).
//! TLS is in transport_tls.rs.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use cpimgate_sip::codec::{ErrorKind, Limits};
use cpimgate_sip::transport::{
    CloseReason, Destination, ListenerConfig, SendError, Transport, TransportConfig,
    TransportEvent, TransportKind,
};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{sleep, timeout};

mod transport_support;
use transport_support::*;

#[tokio::test]
async fn udp_request_and_response() {
    logs();
    let (a, mut a_rx) = bind(config(&[TransportKind::Udp])).await;
    let (b, mut b_rx) = bind(config(&[TransportKind::Udp])).await;
    let b_addr = b.local_addr(TransportKind::Udp).expect("a UDP listener");
    let a_addr = a.local_addr(TransportKind::Udp).expect("a UDP listener");
    assert_ne!(b_addr.port(), 0, "the actual port is reported");

    let req = message("udp1", "hello");
    let sent = a
        .send(
            &Destination::new(TransportKind::Udp, b_addr),
            Bytes::from(req.clone()),
        )
        .await
        .expect("sent");
    assert_eq!(sent, None, "no connection for UDP");
    let (bytes, source) = next_message(&mut b_rx).await;
    assert_eq!(bytes, req);
    assert_eq!(source.transport, TransportKind::Udp);
    assert_eq!(source.peer, a_addr);
    assert_eq!(source.local, b_addr);
    assert_eq!(source.conn, None);

    b.send(&Destination::reply_to(&source), ok_for(&bytes))
        .await
        .expect("sent");
    let (resp, from) = next_message(&mut a_rx).await;
    assert!(resp.starts_with(b"SIP/2.0 200 OK\r\n"));
    assert_eq!(from.peer, b_addr);
}

// RFC 3261 §18.3: bytes after the body are dropped; a short body and
// garbage are reported; a CRLF keep-alive is not.
#[tokio::test]
async fn udp_datagram_framing() {
    logs();
    let (b, mut b_rx) = bind(config(&[TransportKind::Udp])).await;
    let b_addr = b.local_addr(TransportKind::Udp).expect("a UDP listener");
    let raw = UdpSocket::bind(localhost()).await.expect("a socket");

    raw.send_to(b"\r\n\r\n", b_addr).await.expect("sent");
    let mut req = message("udp2", "hello");
    let whole = req.clone();
    req.extend_from_slice(b"trailing junk");
    raw.send_to(&req, b_addr).await.expect("sent");
    let (bytes, _) = next_message(&mut b_rx).await;
    assert_eq!(bytes, whole, "bytes after Content-Length are dropped");

    let mut short = message("udp3", "hello");
    short.truncate(short.len() - 2);
    raw.send_to(&short, b_addr).await.expect("sent");
    match next(&mut b_rx).await {
        TransportEvent::Malformed {
            bytes,
            source,
            error,
        } => {
            assert_eq!(bytes, short);
            assert_eq!(source.peer, raw.local_addr().expect("an address"));
            assert_eq!(error.response_status().code, 400);
        }
        other => panic!("expected a malformed datagram, got {other:?}"),
    }
    nothing_more(&mut b_rx, Duration::from_millis(100)).await;
}

#[tokio::test]
async fn udp_and_tcp_over_ipv6() {
    logs();
    let v6: SocketAddr = "[::1]:0".parse().expect("an address");
    let cfg = |_| TransportConfig {
        listeners: vec![
            ListenerConfig::new(TransportKind::Udp, v6),
            ListenerConfig::new(TransportKind::Tcp, v6),
        ],
        ..TransportConfig::default()
    };
    let (a, _a_rx) = bind(cfg(())).await;
    let (b, mut b_rx) = bind(cfg(())).await;
    let b_addr = b.local_addr(TransportKind::Udp).expect("a UDP listener");
    assert!(b_addr.is_ipv6());
    a.send(
        &Destination::new(TransportKind::Udp, b_addr),
        Bytes::from(message("v6", "x")),
    )
    .await
    .expect("sent");
    let (_, source) = next_message(&mut b_rx).await;
    assert_eq!(
        source.peer.ip(),
        "::1".parse::<std::net::IpAddr>().expect("an ip")
    );
    // No IPv4 socket: an IPv4 destination has nothing to send from.
    let err = a
        .send(
            &Destination::new(TransportKind::Udp, "127.0.0.1:5060".parse().expect("addr")),
            Bytes::new(),
        )
        .await;
    assert!(matches!(err, Err(SendError::NoUdpSocket(_))), "{err:?}");

    let b_tcp = b.local_addr(TransportKind::Tcp).expect("a TCP listener");
    let conn = a
        .send(
            &Destination::new(TransportKind::Tcp, b_tcp),
            Bytes::from(message("v6tcp", "x")),
        )
        .await
        .expect("sent");
    let (_, source) = next_message(&mut b_rx).await;
    assert_eq!(source.transport, TransportKind::Tcp);
    assert!(source.peer.is_ipv6() && source.local == b_tcp);
    assert!(conn.is_some());
}

// RFC 3261 §18.2.1: UDP and TCP on the same port, also when the port is
// picked by the system.
#[tokio::test]
async fn udp_and_tcp_share_a_picked_port() {
    let (t, _rx) = bind(config(&[TransportKind::Udp, TransportKind::Tcp])).await;
    let udp = t.local_addr(TransportKind::Udp).expect("UDP");
    let tcp = t.local_addr(TransportKind::Tcp).expect("TCP");
    assert_eq!(udp, tcp);
    assert_eq!(t.listeners().len(), 2);
}

#[tokio::test]
async fn tcp_several_messages_in_one_write() {
    logs();
    let (b, mut b_rx) = bind(config(&[TransportKind::Tcp])).await;
    let b_addr = b.local_addr(TransportKind::Tcp).expect("a TCP listener");
    let mut raw = TcpStream::connect(b_addr).await.expect("connected");
    let msgs: Vec<Vec<u8>> = (0..3)
        .map(|i| message(&format!("many{i}"), &"x".repeat(i * 10)))
        .collect();
    raw.write_all(&msgs.concat()).await.expect("written");
    let mut conns = Vec::new();
    for m in &msgs {
        let (bytes, source) = next_message(&mut b_rx).await;
        assert_eq!(&bytes[..], &m[..]);
        assert_eq!(source.transport, TransportKind::Tcp);
        assert_eq!(source.peer, raw.local_addr().expect("an address"));
        conns.push(source.conn.expect("a connection id"));
    }
    assert!(conns.windows(2).all(|w| w[0] == w[1]), "one connection");

    // The response goes back on that connection (RFC 3261 §18.2.2).
    let src = cpimgate_sip::transport::Source {
        transport: TransportKind::Tcp,
        peer: raw.local_addr().expect("an address"),
        local: b_addr,
        conn: Some(conns[0]),
    };
    let used = b
        .send(&Destination::reply_to(&src), ok_for(&msgs[0]))
        .await
        .expect("sent");
    assert_eq!(used, Some(conns[0]));
    let got = read_some(&mut raw).await;
    assert!(
        got.starts_with(b"SIP/2.0 200 OK\r\n"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert_eq!(b.connection_count(), 1);

    // The peer closes: the connection is reported gone (RFC 3261 §18.4).
    drop(raw);
    let (conn, reason) = next_closed(&mut b_rx).await;
    assert_eq!((conn, reason), (conns[0], CloseReason::Eof));
    assert_eq!(b.connection_count(), 0);
}

#[tokio::test]
async fn tcp_message_split_across_many_writes() {
    logs();
    let (b, mut b_rx) = bind(config(&[TransportKind::Tcp])).await;
    let b_addr = b.local_addr(TransportKind::Tcp).expect("a TCP listener");
    let mut raw = TcpStream::connect(b_addr).await.expect("connected");
    raw.set_nodelay(true).expect("nodelay");
    let msg = message("split", "Watson, come here.");
    // A keep-alive ping first (RFC 5626 §4.4.1): answered with one CRLF.
    raw.write_all(b"\r\n\r\n").await.expect("written");
    assert_eq!(read_some(&mut raw).await, b"\r\n");
    for piece in msg.chunks(7) {
        raw.write_all(piece).await.expect("written");
        sleep(Duration::from_millis(2)).await;
    }
    let (bytes, _) = next_message(&mut b_rx).await;
    assert_eq!(bytes, msg);
    nothing_more(&mut b_rx, Duration::from_millis(100)).await;
}

// A layer above that answers each request before it reads the next event
// keeps working when the event channel is full: the connection goes on
// writing while it waits to hand up what it read.
#[tokio::test]
async fn answering_before_reading_on_a_full_event_channel() {
    logs();
    let (b, mut b_rx) = bind(TransportConfig {
        event_capacity: 1,
        ..config(&[TransportKind::Tcp])
    })
    .await;
    let b_addr = b.local_addr(TransportKind::Tcp).expect("a TCP listener");
    let mut raw = TcpStream::connect(b_addr).await.expect("connected");
    let msgs: Vec<Vec<u8>> = (0..20).map(|i| message(&format!("full{i}"), "x")).collect();
    raw.write_all(&msgs.concat()).await.expect("written");
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        while got.windows(11).filter(|w| w == b"SIP/2.0 200").count() < 20 {
            let more = read_some(&mut raw).await;
            assert!(!more.is_empty(), "the connection stays open");
            got.extend_from_slice(&more);
        }
    });
    for m in &msgs {
        let (bytes, source) = next_message(&mut b_rx).await;
        assert_eq!(&bytes[..], &m[..]);
        timeout(
            WAIT,
            b.send(&Destination::reply_to(&source), ok_for(&bytes)),
        )
        .await
        .expect("the answer is written while the channel is full")
        .expect("sent");
    }
    reader.await.expect("every answer arrived");
}

// An IPv4 peer reached from a dual-stack UDP socket on [::].
#[tokio::test]
async fn udp_dual_stack_socket_sends_to_ipv4() {
    logs();
    let any6: SocketAddr = "[::]:0".parse().expect("an address");
    let (a, mut a_rx) = bind(TransportConfig {
        listeners: vec![ListenerConfig::new(TransportKind::Udp, any6)],
        ..TransportConfig::default()
    })
    .await;
    let (b, mut b_rx) = bind(config(&[TransportKind::Udp])).await;
    let b_addr = b.local_addr(TransportKind::Udp).expect("a UDP listener");
    a.send(
        &Destination::new(TransportKind::Udp, b_addr),
        Bytes::from(message("ds", "x")),
    )
    .await
    .expect("sent");
    let (bytes, source) = next_message(&mut b_rx).await;
    assert!(source.peer.is_ipv4());
    // And b answers a, which sees b as an IPv4 peer and answers it back.
    b.send(&Destination::reply_to(&source), ok_for(&bytes))
        .await
        .expect("sent");
    let (_, from) = next_message(&mut a_rx).await;
    assert_eq!(from.peer, b_addr, "the peer shows as IPv4");
    a.send(
        &Destination::reply_to(&from),
        Bytes::from(message("ds2", "y")),
    )
    .await
    .expect("sent from the [::] socket to an IPv4 peer");
    next_message(&mut b_rx).await;
}

#[tokio::test]
async fn tcp_connection_is_reused() {
    logs();
    let (a, mut a_rx) = bind(config(&[TransportKind::Tcp])).await;
    let (b, mut b_rx) = bind(config(&[TransportKind::Tcp])).await;
    let b_addr = b.local_addr(TransportKind::Tcp).expect("a TCP listener");
    let dest = Destination::new(TransportKind::Tcp, b_addr);

    // Two sends at once open one connection.
    let (r1, r2) = tokio::join!(
        a.send(&dest, Bytes::from(message("reuse1", "one"))),
        a.send(&dest, Bytes::from(message("reuse2", "two"))),
    );
    let c1 = r1.expect("sent").expect("a connection");
    let c2 = r2.expect("sent").expect("a connection");
    assert_eq!(c1, c2);
    let c3 = a
        .send(&dest, Bytes::from(message("reuse3", "three")))
        .await
        .expect("sent");
    assert_eq!(c3, Some(c1));
    assert_eq!(a.connection_to(TransportKind::Tcp, b_addr), Some(c1));
    assert_eq!(a.connection_count(), 1);

    let mut b_conns = Vec::new();
    let mut last = None;
    for _ in 0..3 {
        let (bytes, source) = next_message(&mut b_rx).await;
        b_conns.push(source.conn.expect("a connection"));
        last = Some((bytes, source));
    }
    assert!(
        b_conns.windows(2).all(|w| w[0] == w[1]),
        "one connection accepted"
    );
    assert_eq!(b.connection_count(), 1);

    // The accepted connection carries the response, and a request from b
    // to a's address uses it too (RFC 3261 §18: the index of an accepted
    // connection is the source address).
    let (bytes, source) = last.expect("a message");
    b.send(&Destination::reply_to(&source), ok_for(&bytes))
        .await
        .expect("sent");
    let (resp, from) = next_message(&mut a_rx).await;
    assert!(resp.starts_with(b"SIP/2.0 200"));
    assert_eq!(from.conn, Some(c1));
    let back = b
        .send(
            &Destination::new(TransportKind::Tcp, source.peer),
            Bytes::from(message("back", "to a")),
        )
        .await
        .expect("sent");
    assert_eq!(back, source.conn);
    let (_, from) = next_message(&mut a_rx).await;
    assert_eq!(from.conn, Some(c1));
    assert_eq!((a.connection_count(), b.connection_count()), (1, 1));
}

// RFC 3261 §18.2.2: when the request's connection is gone, the response
// opens a new one to the address given.
#[tokio::test]
async fn closed_connection_falls_back_to_a_new_one() {
    logs();
    let (a, mut a_rx) = bind(config(&[TransportKind::Tcp])).await;
    let (b, _b_rx) = bind(config(&[TransportKind::Tcp])).await;
    let a_addr = a.local_addr(TransportKind::Tcp).expect("a TCP listener");
    let gone = b
        .send(
            &Destination::new(TransportKind::Tcp, a_addr),
            Bytes::from(message("fb1", "x")),
        )
        .await
        .expect("sent")
        .expect("a connection");
    let (_, src) = next_message(&mut a_rx).await;
    a.shutdown();
    drop(a);
    drop(a_rx);
    // The old listener's task ends soon after the shutdown: retry.
    let mut rebound = None;
    for _ in 0..100 {
        let cfg = TransportConfig {
            listeners: vec![ListenerConfig::new(TransportKind::Tcp, a_addr)],
            ..TransportConfig::default()
        };
        if let Ok(r) = Transport::bind(cfg).await {
            rebound = Some(r);
            break;
        }
        sleep(Duration::from_millis(20)).await;
    }
    let (a2, mut a2_rx) = rebound.expect("the address is free again");
    // Wait until b saw its connection go.
    for _ in 0..100 {
        if b.connection_count() == 0 {
            break;
        }
        sleep(Duration::from_millis(20)).await;
    }
    let mut dest = Destination::new(TransportKind::Tcp, a_addr);
    dest.conn = Some(gone);
    let used = b
        .send(&dest, Bytes::from(message("fb2", "y")))
        .await
        .expect("sent")
        .expect("a connection");
    assert_ne!(used, gone);
    let (_, src2) = next_message(&mut a2_rx).await;
    assert_ne!(src2.conn, None);
    let _ = (src, a2);
}

#[tokio::test]
async fn idle_connections_close() {
    logs();
    let (a, mut a_rx) = bind(config(&[TransportKind::Tcp])).await;
    let (b, mut b_rx) = bind(TransportConfig {
        idle_timeout: Duration::from_millis(300),
        ..config(&[TransportKind::Tcp])
    })
    .await;
    let b_addr = b.local_addr(TransportKind::Tcp).expect("a TCP listener");
    let conn = a
        .send(
            &Destination::new(TransportKind::Tcp, b_addr),
            Bytes::from(message("idle", "x")),
        )
        .await
        .expect("sent")
        .expect("a connection");
    let (_, src) = next_message(&mut b_rx).await;
    let started = tokio::time::Instant::now();
    let (b_conn, reason) = next_closed(&mut b_rx).await;
    assert_eq!((Some(b_conn), reason), (src.conn, CloseReason::Idle));
    assert!(started.elapsed() >= Duration::from_millis(250));
    // The other side sees the end of the stream.
    let (a_conn, reason) = next_closed(&mut a_rx).await;
    assert_eq!((a_conn, reason), (conn, CloseReason::Eof));
    assert_eq!((a.connection_count(), b.connection_count()), (0, 0));
}

#[tokio::test]
async fn slow_message_is_cut() {
    logs();
    let (b, mut b_rx) = bind(TransportConfig {
        message_timeout: Duration::from_millis(400),
        ..config(&[TransportKind::Tcp])
    })
    .await;
    let b_addr = b.local_addr(TransportKind::Tcp).expect("a TCP listener");
    let mut raw = TcpStream::connect(b_addr).await.expect("connected");
    raw.set_nodelay(true).expect("nodelay");
    // A whole message first: the timer runs per message.
    raw.write_all(&message("fast", "x")).await.expect("written");
    let (_, src) = next_message(&mut b_rx).await;
    // Then one that trickles in, a byte every 50 ms, so the connection is
    // never idle but the message never completes.
    let msg = message("slow", "y");
    let started = tokio::time::Instant::now();
    let trickle = async {
        for b in msg.iter() {
            if raw.write_all(std::slice::from_ref(b)).await.is_err() {
                break;
            }
            sleep(Duration::from_millis(50)).await;
        }
    };
    let ((conn, reason), ()) = tokio::join!(next_closed(&mut b_rx), trickle);
    assert_eq!((Some(conn), reason), (src.conn, CloseReason::TooSlow));
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(350), "{elapsed:?}");
    assert!(closed_by_server(&mut raw).await);
}

#[tokio::test]
async fn oversize_message_is_reported_and_cut() {
    logs();
    let (b, mut b_rx) = bind(TransportConfig {
        limits: Limits {
            max_message: 2000,
            ..Limits::default()
        },
        error_linger: Duration::from_secs(1),
        ..config(&[TransportKind::Tcp])
    })
    .await;
    let b_addr = b.local_addr(TransportKind::Tcp).expect("a TCP listener");
    let mut raw = TcpStream::connect(b_addr).await.expect("connected");
    let big = message("big", &"z".repeat(5000));
    raw.write_all(&big[..1000]).await.expect("written");
    let (bytes, source) = match next(&mut b_rx).await {
        TransportEvent::Malformed {
            bytes,
            source,
            error,
        } => {
            assert!(matches!(error.kind, ErrorKind::TooLarge { .. }), "{error}");
            assert_eq!(error.response_status().code, 513);
            (bytes, source)
        }
        other => panic!("expected a malformed stream, got {other:?}"),
    };
    assert!(bytes.starts_with(b"MESSAGE sip:user2@domain.com SIP/2.0\r\n"));
    // The connection lingers long enough for an answer (the TU builds it
    // from the head; written by hand here).
    let too_large = Bytes::from_static(
        b"SIP/2.0 513 Message Too Large\r\n\
          Via: SIP/2.0/TCP user1pc.domain.com;branch=z9hG4bKbig\r\n\
          Content-Length: 0\r\n\r\n",
    );
    b.send(&Destination::reply_to(&source), too_large)
        .await
        .expect("sent during the linger");
    let got = read_some(&mut raw).await;
    assert!(got.starts_with(b"SIP/2.0 513 Message Too Large\r\n"));
    let (conn, reason) = next_closed(&mut b_rx).await;
    assert_eq!(
        (Some(conn), reason),
        (source.conn, CloseReason::Unframeable)
    );
    assert!(closed_by_server(&mut raw).await);

    // A header section that never ends is cut at the limit too.
    let mut raw = TcpStream::connect(b_addr).await.expect("connected");
    let mut endless = b"OPTIONS sip:a@b SIP/2.0\r\n".to_vec();
    while endless.len() < 3000 {
        endless.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    raw.write_all(&endless).await.expect("written");
    assert!(matches!(
        next(&mut b_rx).await,
        TransportEvent::Malformed { .. }
    ));
    assert_eq!(next_closed(&mut b_rx).await.1, CloseReason::Unframeable);
    assert!(closed_by_server(&mut raw).await);
}

#[tokio::test]
async fn missing_content_length_on_a_stream_is_unframeable() {
    logs();
    let (b, mut b_rx) = bind(TransportConfig {
        error_linger: Duration::ZERO,
        ..config(&[TransportKind::Tcp])
    })
    .await;
    let b_addr = b.local_addr(TransportKind::Tcp).expect("a TCP listener");
    let mut raw = TcpStream::connect(b_addr).await.expect("connected");
    raw.write_all(b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n")
        .await
        .expect("written");
    match next(&mut b_rx).await {
        TransportEvent::Malformed { error, .. } => {
            assert_eq!(error.kind, ErrorKind::MissingContentLength)
        }
        other => panic!("expected a malformed stream, got {other:?}"),
    }
    assert_eq!(next_closed(&mut b_rx).await.1, CloseReason::Unframeable);
    assert!(closed_by_server(&mut raw).await);
}

#[tokio::test]
async fn connection_limit() {
    logs();
    let (b, mut b_rx) = bind(TransportConfig {
        max_connections: 1,
        ..config(&[TransportKind::Tcp])
    })
    .await;
    let b_addr = b.local_addr(TransportKind::Tcp).expect("a TCP listener");
    let mut first = TcpStream::connect(b_addr).await.expect("connected");
    first
        .write_all(&message("lim1", "x"))
        .await
        .expect("written");
    next_message(&mut b_rx).await;
    let mut second = TcpStream::connect(b_addr)
        .await
        .expect("the kernel accepts");
    assert!(closed_by_server(&mut second).await, "the second is refused");
    // Outgoing connections count too.
    let (other, _rx) = bind(config(&[TransportKind::Tcp])).await;
    let err = b
        .send(
            &Destination::new(
                TransportKind::Tcp,
                other.local_addr(TransportKind::Tcp).expect("TCP"),
            ),
            Bytes::from(message("lim2", "x")),
        )
        .await;
    assert!(matches!(err, Err(SendError::TooManyConnections)), "{err:?}");
    // The first still works.
    first
        .write_all(&message("lim3", "y"))
        .await
        .expect("written");
    next_message(&mut b_rx).await;
}

/// A connection from `from` (any port) to `to`.
async fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind(SocketAddr::from((from, 0)))
        .expect("bound to a loopback address");
    socket.connect(to).await.expect("connected")
}

#[tokio::test]
async fn connection_limit_per_address() {
    logs();
    let (b, mut b_rx) = bind(TransportConfig {
        max_connections: 10,
        max_connections_per_ip: 1,
        ..config(&[TransportKind::Tcp])
    })
    .await;
    let b_addr = b.local_addr(TransportKind::Tcp).expect("a TCP listener");
    let mut first = connect_from([127, 0, 0, 1], b_addr).await;
    first
        .write_all(&message("ip1", "x"))
        .await
        .expect("written");
    next_message(&mut b_rx).await;
    let mut second = connect_from([127, 0, 0, 1], b_addr).await;
    assert!(
        closed_by_server(&mut second).await,
        "a second from the same address is refused"
    );
    // Another address still gets in.
    let mut other = connect_from([127, 0, 0, 2], b_addr).await;
    other
        .write_all(&message("ip2", "x"))
        .await
        .expect("written");
    let (_, source) = next_message(&mut b_rx).await;
    assert_eq!(source.peer.ip().to_string(), "127.0.0.2");
    // Once the first is gone, its address has a place again.
    drop(first);
    next_closed(&mut b_rx).await;
    let mut third = connect_from([127, 0, 0, 1], b_addr).await;
    third
        .write_all(&message("ip3", "x"))
        .await
        .expect("written");
    next_message(&mut b_rx).await;
    assert_eq!(b.connection_count(), 2);
}

#[tokio::test]
async fn a_peer_that_does_not_read_is_cut_off() {
    logs();
    let (b, mut b_rx) = bind(TransportConfig {
        write_timeout: Duration::from_millis(300),
        ..config(&[TransportKind::Tcp])
    })
    .await;
    let b_addr = b.local_addr(TransportKind::Tcp).expect("a TCP listener");
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket.set_recv_buffer_size(4096).expect("a small window");
    let mut peer = socket.connect(b_addr).await.expect("connected");
    peer.write_all(&message("nr1", "x")).await.expect("written");
    let (_, source) = next_message(&mut b_rx).await;
    // Answers it never reads: once the buffers are full, a write times
    // out and the connection ends.
    let big = Bytes::from(vec![b'x'; 256 * 1024]);
    let mut failed = None;
    for _ in 0..64 {
        if let Err(e) = b.send(&Destination::reply_to(&source), big.clone()).await {
            failed = Some(e);
            break;
        }
    }
    let failed = failed.expect("a write fails");
    assert!(failed.to_string().contains("timed out"), "{failed}");
    let (_, reason) = next_closed(&mut b_rx).await;
    assert!(matches!(reason, CloseReason::WriteError(_)), "{reason:?}");
    assert!(closed_by_server(&mut peer).await, "the peer is cut off");
    assert_eq!(b.connection_count(), 0);
}

#[tokio::test]
async fn connect_failure_is_a_send_error() {
    let (a, _rx) = bind(config(&[])).await;
    // A port nobody listens on: bind one and drop it.
    let free = std::net::TcpListener::bind(localhost())
        .expect("bound")
        .local_addr()
        .expect("an address");
    let err = a
        .send(
            &Destination::new(TransportKind::Tcp, free),
            Bytes::from_static(b"x"),
        )
        .await;
    assert!(matches!(err, Err(SendError::Connect { .. })), "{err:?}");
    let err = a
        .send(
            &Destination::new(TransportKind::Tls, free),
            Bytes::from_static(b"x"),
        )
        .await;
    assert!(err.is_err());
}

// Dropping the transport frees its sockets even when nobody reads its
// events any more (a task blocked on a full channel would hold them).
#[tokio::test]
async fn drop_frees_sockets_with_a_full_event_channel() {
    logs();
    let cfg = |addr| TransportConfig {
        event_capacity: 1,
        listeners: vec![
            ListenerConfig::new(TransportKind::Udp, addr),
            ListenerConfig::new(TransportKind::Tcp, addr),
        ],
        ..TransportConfig::default()
    };
    let (b, b_rx) = bind(cfg(localhost())).await;
    let b_addr = b.local_addr(TransportKind::Udp).expect("a UDP listener");
    let raw = UdpSocket::bind(localhost()).await.expect("a socket");
    for i in 0..3 {
        raw.send_to(&message(&format!("full{i}"), "x"), b_addr)
            .await
            .expect("sent");
    }
    let mut tcp = TcpStream::connect(b_addr).await.expect("connected");
    tcp.write_all(&message("fulltcp", "x"))
        .await
        .expect("written");
    sleep(Duration::from_millis(100)).await;
    drop(b);
    let mut rebound = false;
    for _ in 0..100 {
        if Transport::bind(cfg(b_addr)).await.is_ok() {
            rebound = true;
            break;
        }
        sleep(Duration::from_millis(20)).await;
    }
    assert!(rebound, "the address is free again");
    assert!(closed_by_server(&mut tcp).await);
    drop(b_rx);
}
