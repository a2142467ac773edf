use super::*;

fn via(s: &str) -> Via<'_> {
    Via::parse(s).expect("a valid Via")
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("a socket address")
}

fn source(kind: TransportKind, peer: &str, conn: Option<u64>) -> Source {
    Source {
        transport: kind,
        peer: addr(peer),
        local: addr("192.0.2.100:5060"),
        conn: conn.map(ConnId),
    }
}

// RFC 3261 §18.1.1: the 1300-byte rule when the path MTU is unknown.
#[test]
fn udp_request_over_1300_bytes_goes_over_tcp() {
    let udp = TransportKind::Udp;
    assert_eq!(
        request_transport(udp, 1300, None),
        TransportChoice {
            transport: udp,
            switched: false
        }
    );
    assert_eq!(
        request_transport(udp, 1301, None),
        TransportChoice {
            transport: TransportKind::Tcp,
            switched: true
        }
    );
}

// RFC 3261 §18.1.1: "within 200 bytes of the path MTU".
#[test]
fn udp_request_within_200_bytes_of_known_mtu_goes_over_tcp() {
    let udp = TransportKind::Udp;
    assert_eq!(request_transport(udp, 1300, Some(1500)).transport, udp);
    assert!(request_transport(udp, 1301, Some(1500)).switched);
    // A small MTU makes even a small request leave UDP.
    assert!(request_transport(udp, 400, Some(576)).switched);
    assert!(!request_transport(udp, 376, Some(576)).switched);
    // A large MTU (jumbo frames) lets a larger request stay on UDP.
    assert!(!request_transport(udp, 8000, Some(9000)).switched);
    // An MTU under 200 bytes sends everything over TCP.
    assert!(request_transport(udp, 1, Some(100)).switched);
}

#[test]
fn reliable_transports_never_change() {
    for kind in [TransportKind::Tcp, TransportKind::Tls] {
        let c = request_transport(kind, 60_000, Some(500));
        assert_eq!((c.transport, c.switched), (kind, false));
    }
}

// RFC 3261 §18.2.1 example: a domain name in sent-by gets received.
#[test]
fn domain_sent_by_gets_received() {
    let s = via_stamp(
        &via("SIP/2.0/UDP bobspc.biloxi.com:5060"),
        addr("192.0.2.4:5060"),
    );
    assert_eq!(s.received, Some("192.0.2.4".parse().expect("ip")));
    assert_eq!(s.rport, None);
    assert_eq!(s.to_string(), ";received=192.0.2.4");
}

#[test]
fn matching_ip_sent_by_gets_nothing() {
    let s = via_stamp(
        &via("SIP/2.0/UDP 192.0.2.4:5070;branch=z9hG4bK1"),
        addr("192.0.2.4:40000"),
    );
    assert!(s.is_empty());
    assert_eq!(s.to_string(), "");
}

#[test]
fn differing_ip_sent_by_gets_received() {
    let s = via_stamp(
        &via("SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK1"),
        addr("192.0.2.4:5060"),
    );
    assert_eq!(s.to_string(), ";received=192.0.2.4");
}

#[test]
fn ipv6_sent_by_compares_by_value() {
    let v = via("SIP/2.0/UDP [2001:db8::0:1]:5060;branch=z9hG4bK1");
    assert!(via_stamp(&v, addr("[2001:db8::1]:5060")).is_empty());
    let s = via_stamp(&v, addr("[2001:db8::2]:5060"));
    // received has no brackets (RFC 3261 §25: IPv6address).
    assert_eq!(s.to_string(), ";received=2001:db8::2");
}

#[test]
fn ipv4_mapped_source_compares_as_ipv4() {
    // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
    let v = via("SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bK1");
    assert!(via_stamp(&v, addr("[::ffff:192.0.2.4]:5060")).is_empty());
    let s = via_stamp(&v, addr("[::ffff:192.0.2.9]:5060"));
    assert_eq!(s.to_string(), ";received=192.0.2.9");
}

// RFC 3581 §4: rport asked for: received always, rport with the source
// port (the example of RFC 3581 §4).
#[test]
fn rport_asked_gets_received_even_when_same_and_the_port() {
    let v = via("SIP/2.0/UDP 10.1.1.1:4540;rport;branch=z9hG4bKkjshdyff");
    let s = via_stamp(&v, addr("192.0.2.1:9988"));
    assert_eq!(s.to_string(), ";received=192.0.2.1;rport=9988");
    let s = via_stamp(&v, addr("10.1.1.1:4540"));
    assert_eq!(s.to_string(), ";received=10.1.1.1;rport=4540");
}

#[test]
fn filled_rport_is_not_a_request_for_one() {
    let v = via("SIP/2.0/UDP 10.1.1.1:4540;rport=4540;branch=z9hG4bK1");
    assert!(via_stamp(&v, addr("10.1.1.1:4540")).is_empty());
}

// RFC 3261 §18.2.2, first bullet: the request's connection.
#[test]
fn reliable_response_goes_on_the_request_connection() {
    let v = via("SIP/2.0/TCP client.atlanta.example.com:5080;branch=z9hG4bK1");
    let src = source(TransportKind::Tcp, "192.0.2.7:40001", Some(9));
    let d = response_destination(&v, Some(&src)).expect("a destination");
    assert_eq!(d.transport, TransportKind::Tcp);
    assert_eq!(d.conn, Some(ConnId(9)));
    // If it closed: received (the source) at the sent-by port.
    assert_eq!(d.target, ResponseTarget::Addr(addr("192.0.2.7:5080")));
}

#[test]
fn reliable_response_without_source_uses_received_or_sent_by() {
    let v = via("SIP/2.0/TLS client.example.com;received=192.0.2.7;branch=z9hG4bK1");
    let d = response_destination(&v, None).expect("a destination");
    assert_eq!(d.conn, None);
    // TLS default port 5061 (RFC 3261 §18.1.1).
    assert_eq!(d.target, ResponseTarget::Addr(addr("192.0.2.7:5061")));
    let v = via("SIP/2.0/TCP client.example.com;branch=z9hG4bK1");
    let d = response_destination(&v, None).expect("a destination");
    assert_eq!(
        d.target,
        ResponseTarget::Resolve {
            host: "client.example.com".into(),
            port: 5060
        }
    );
}

#[test]
fn reliable_response_ignores_rport() {
    // RFC 3581 §4 applies rport to unreliable transports only.
    let v = via("SIP/2.0/TCP 10.0.0.1:5070;rport;branch=z9hG4bK1");
    let src = source(TransportKind::Tcp, "192.0.2.7:40001", Some(1));
    let d = response_destination(&v, Some(&src)).expect("a destination");
    assert_eq!(d.target, ResponseTarget::Addr(addr("192.0.2.7:5070")));
}

// Second bullet: maddr.
#[test]
fn maddr_response() {
    let v = via("SIP/2.0/UDP first.example.com:4000;ttl=16;maddr=224.2.0.1;branch=z9hG4bK1");
    let src = source(TransportKind::Udp, "192.0.2.7:4000", None);
    let d = response_destination(&v, Some(&src)).expect("a destination");
    assert_eq!(d.target, ResponseTarget::Addr(addr("224.2.0.1:4000")));
    assert_eq!(d.multicast_ttl, Some(16));
    let v = via("SIP/2.0/UDP first.example.com;maddr=224.2.0.1;branch=z9hG4bK1");
    let d = response_destination(&v, None).expect("a destination");
    assert_eq!(d.target, ResponseTarget::Addr(addr("224.2.0.1:5060")));
    assert_eq!(d.multicast_ttl, Some(1));
    let v = via("SIP/2.0/UDP first.example.com;maddr=192.0.2.50;branch=z9hG4bK1");
    let d = response_destination(&v, None).expect("a destination");
    assert_eq!(d.multicast_ttl, None);
}

// Third bullet: received at the sent-by port (or 5060).
#[test]
fn udp_response_goes_to_received_at_sent_by_port() {
    let v = via("SIP/2.0/UDP bobspc.biloxi.com:5070;received=192.0.2.4;branch=z9hG4bK1");
    let d = response_destination(&v, None).expect("a destination");
    assert_eq!(d.target, ResponseTarget::Addr(addr("192.0.2.4:5070")));
    assert_eq!(d.conn, None);
    let v = via("SIP/2.0/UDP bobspc.biloxi.com;branch=z9hG4bK1");
    let src = source(TransportKind::Udp, "192.0.2.4:33333", None);
    let d = response_destination(&v, Some(&src)).expect("a destination");
    assert_eq!(d.target, ResponseTarget::Addr(addr("192.0.2.4:5060")));
}

// RFC 3581 §4: received and rport.
#[test]
fn udp_response_goes_to_received_and_rport() {
    let v = via("SIP/2.0/UDP 10.1.1.1:4540;rport;branch=z9hG4bK1");
    let src = source(TransportKind::Udp, "192.0.2.1:9988", None);
    let d = response_destination(&v, Some(&src)).expect("a destination");
    assert_eq!(d.target, ResponseTarget::Addr(addr("192.0.2.1:9988")));
    // Already stamped by the TU: the same answer without the source.
    let v = via("SIP/2.0/UDP 10.1.1.1:4540;rport=9988;received=192.0.2.1;branch=z9hG4bK1");
    let d = response_destination(&v, None).expect("a destination");
    assert_eq!(d.target, ResponseTarget::Addr(addr("192.0.2.1:9988")));
}

// Fourth bullet: sent-by.
#[test]
fn udp_response_to_sent_by() {
    let v = via("SIP/2.0/UDP 192.0.2.4:5070;branch=z9hG4bK1");
    let src = source(TransportKind::Udp, "192.0.2.4:5070", None);
    let d = response_destination(&v, Some(&src)).expect("a destination");
    assert_eq!(d.target, ResponseTarget::Addr(addr("192.0.2.4:5070")));
    let v = via("SIP/2.0/UDP [2001:db8::9];branch=z9hG4bK1");
    let d = response_destination(&v, None).expect("a destination");
    assert_eq!(d.target, ResponseTarget::Addr(addr("[2001:db8::9]:5060")));
}

#[test]
fn response_destination_errors() {
    let v = via("SIP/2.0/SCTP 192.0.2.4;branch=z9hG4bK1");
    assert_eq!(
        response_destination(&v, None),
        Err(DestinationError::UnsupportedTransport("SCTP".into()))
    );
    let v = via("SIP/2.0/UDP 192.0.2.4;received=nowhere;branch=z9hG4bK1");
    assert_eq!(
        response_destination(&v, None),
        Err(DestinationError::BadReceived("nowhere".into()))
    );
}

#[test]
fn transport_tokens() {
    assert_eq!(TransportKind::from_via("udp"), Some(TransportKind::Udp));
    assert_eq!(TransportKind::from_via("Tls"), Some(TransportKind::Tls));
    assert_eq!(TransportKind::from_via("WS"), None);
    assert_eq!(TransportKind::Tls.default_port(), 5061);
    assert!(!TransportKind::Udp.is_reliable());
}

// RFC 3261 §18.1.2.
#[test]
fn sent_by_check() {
    let ours = [("gw.example.com", None), ("192.0.2.1", Some(5070))];
    assert!(sent_by_is_ours(
        &via("SIP/2.0/UDP GW.example.com;branch=z9hG4bK1"),
        &ours
    ));
    assert!(sent_by_is_ours(
        &via("SIP/2.0/UDP gw.example.com:5060;branch=z9hG4bK1"),
        &ours
    ));
    assert!(!sent_by_is_ours(
        &via("SIP/2.0/UDP gw.example.com:5070;branch=z9hG4bK1"),
        &ours
    ));
    // TLS's default port is 5061.
    assert!(!sent_by_is_ours(
        &via("SIP/2.0/TLS gw.example.com:5060;branch=z9hG4bK1"),
        &ours
    ));
    assert!(sent_by_is_ours(
        &via("SIP/2.0/TLS gw.example.com;branch=z9hG4bK1"),
        &ours
    ));
    assert!(sent_by_is_ours(
        &via("SIP/2.0/TCP 192.0.2.1:5070;branch=z9hG4bK1"),
        &ours
    ));
    assert!(!sent_by_is_ours(
        &via("SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK1"),
        &ours
    ));
    assert!(!sent_by_is_ours(
        &via("SIP/2.0/UDP evil.example.com;branch=z9hG4bK1"),
        &ours
    ));
}

proptest::proptest! {
    // No Via that parses, from no source, makes the rules panic.
    #[test]
    fn rules_never_panic(
        via in "SIP/2\\.0/(UDP|TCP|TLS|udp|SCTP) [a-z0-9.:\\[\\]]{1,20}(;[a-z]{1,8}(=[a-z0-9.:\\[\\]]{0,12})?){0,4}",
        ip in proptest::prelude::any::<[u8; 4]>(),
        port in proptest::prelude::any::<u16>(),
        conn in proptest::option::of(proptest::prelude::any::<u64>()),
    ) {
        if let Ok(v) = Via::parse(&via) {
            let peer = SocketAddr::from((ip, port));
            let src = Source { transport: TransportKind::Udp, peer, local: peer, conn: conn.map(ConnId) };
            let stamp = via_stamp(&v, peer);
            let _ = stamp.to_string();
            let _ = response_destination(&v, Some(&src));
            let _ = response_destination(&v, None);
            let _ = sent_by_is_ours(&v, &[("a", None)]);
        }
    }
}
