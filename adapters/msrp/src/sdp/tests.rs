#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/sdp/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

const FIXTURES: [&str; 6] = [
    "rfc4975-8.2-figure7.sdp",
    "rfc4975-11.1-offer.sdp",
    "rfc4975-11.1-answer.sdp",
    "rfc7701-9.1-f1.sdp",
    "rfc7701-9.1-f2.sdp",
    "draft-simple-chat-00-9.1-figure7.sdp",
];

/// Every SDP example of RFC 4975 (§8.2 Figure 7, §11.1), RFC 7701 §9.1
/// and the draft's §9.1 reads, has one MSRP line, and what is written
/// back reads the same, byte for byte where the example is complete
/// (RFC 7701's leave out the `t=` line, written back as `t=0 0`, which
/// RFC 8866 §5.9 requires).
#[test]
fn the_specification_examples_parse_and_print() {
    for name in FIXTURES {
        let bytes = fixture(name);
        let sdp = parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(sdp.msrp.len(), 1, "{name}");
        let written = write(&sdp.session);
        let mut expected = sdp.clone();
        if expected.session.times.is_empty() {
            expected.session.times.push(sdp_types::Time {
                start_time: 0,
                stop_time: 0,
                repeats: Vec::new(),
            });
        } else {
            assert_eq!(
                String::from_utf8_lossy(&written),
                String::from_utf8_lossy(&bytes),
                "{name}"
            );
        }
        assert_eq!(parse(&written).unwrap(), expected, "{name}");
    }
}

#[test]
fn rfc7701_f2_is_typed() {
    let sdp = parse(&fixture("rfc7701-9.1-f2.sdp")).unwrap();
    let m = &sdp.msrp[0];
    assert_eq!(m.port, 12763);
    assert!(!m.secure);
    assert_eq!(m.connection.as_deref(), Some("chat.example.com"));
    assert_eq!(m.accept_types, ["message/cpim"]);
    assert_eq!(m.accept_wrapped_types, ["text/plain", "text/html", "*"]);
    assert_eq!(m.path, ["msrp://chat.example.com:12763/kjhd37s2s20w2a;tcp"]);
    assert!(m.accepts("Message/CPIM"));
    assert!(!m.accepts("text/plain"));
    assert!(m.accepts_private());
    assert!(m.uses_nicknames());
    assert_eq!(m.setup, None);
    assert_eq!(m.max_size, None);
    // RFC 4975's plain endpoint has no chatroom support at all.
    let plain = parse(&fixture("rfc4975-8.2-figure7.sdp")).unwrap();
    assert_eq!(plain.msrp[0].chatroom, None);
    assert!(!plain.msrp[0].accepts_private());
}

/// The focus answers F1 as RFC 7701 §9.1 F2 does (same attributes), and
/// RFC 4975 §5.4: without a=setup the offerer connects.
#[test]
fn the_room_answers_f1_like_f2() {
    let offer = parse(&fixture("rfc7701-9.1-f1.sdp")).unwrap();
    let local = Local::room(
        "chat.example.com",
        12763,
        "msrp://chat.example.com:12763/kjhd37s2s20w2a;tcp",
    );
    let (bytes, agreed) = answer(&offer, &local).unwrap();
    assert!(!agreed.we_connect);
    assert_eq!(
        agreed.remote_path,
        ["msrp://client.atlanta.example.com:7654/jshA7weztas;tcp"]
    );
    let ours = parse(&bytes).unwrap();
    let f2 = parse(&fixture("rfc7701-9.1-f2.sdp")).unwrap();
    let (a, b) = (&ours.msrp[0], &f2.msrp[0]);
    assert_eq!(
        (
            &a.accept_types,
            &a.accept_wrapped_types,
            &a.path,
            &a.chatroom,
            a.port
        ),
        (
            &b.accept_types,
            &b.accept_wrapped_types,
            &b.path,
            &b.chatroom,
            b.port
        )
    );
    assert_eq!(a.setup, None);
}

/// RFC 6135 §4.1 roles: actpass or active → we are passive; passive → we
/// connect; holdconn stays.
#[test]
fn connection_roles() {
    let with = |setup: &str| {
        let text = String::from_utf8(fixture("rfc7701-9.1-f1.sdp"))
            .unwrap()
            .replace("a=chatroom", &format!("a=setup:{setup}\r\na=chatroom"));
        parse(text.as_bytes()).unwrap()
    };
    let local = Local::room("gw.example.com", 2855, "msrp://gw.example.com:2855/s1;tcp");
    for (offered, ours, connect) in [
        ("actpass", Setup::Passive, false),
        ("active", Setup::Passive, false),
        ("passive", Setup::Active, true),
        ("holdconn", Setup::HoldConn, false),
    ] {
        let (bytes, agreed) = answer(&with(offered), &local).unwrap();
        assert_eq!(agreed.we_connect, connect, "{offered}");
        assert_eq!(
            parse(&bytes).unwrap().msrp[0].setup,
            Some(ours),
            "{offered}"
        );
    }
    let sideways = String::from_utf8(fixture("rfc7701-9.1-f1.sdp"))
        .unwrap()
        .replace("a=chatroom", "a=setup:sideways\r\na=chatroom");
    assert!(matches!(
        parse(sideways.as_bytes()),
        Err(SdpError::Malformed {
            attribute: "setup",
            ..
        })
    ));
}

/// RFC 3264 §6: every offered line is answered in order; a stream that
/// is not taken gets port 0.
#[test]
fn other_streams_are_refused_with_port_0() {
    let text = "v=0\r\no=a 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=audio 49170 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n\
m=message 7654 TCP/MSRP *\r\na=accept-types:message/cpim\r\na=path:msrp://192.0.2.1:7654/x;tcp\r\n";
    let offer = parse(text.as_bytes()).unwrap();
    assert_eq!(offer.msrp[0].index, 1);
    let local = Local::room("192.0.2.9", 2855, "msrp://192.0.2.9:2855/y;tcp");
    let (bytes, _) = answer(&offer, &local).unwrap();
    let ans = parse(&bytes).unwrap();
    assert_eq!(ans.session.medias.len(), 2);
    assert_eq!(ans.session.medias[0].media, "audio");
    assert_eq!(ans.session.medias[0].port, 0);
    assert_eq!(ans.session.medias[1].port, 2855);
    assert_eq!(ans.msrp[0].index, 1);
    // Found by the sdp fuzz target: a second MSRP line is refused too, and
    // the answer, with its port-0 MSRP line, still reads (RFC 3264 §6:
    // such a line is no stream, attributes or not).
    let twice = format!(
        "{text}m=message 7655 TCP/MSRP *\r\na=accept-types:text/plain\r\na=path:msrp://192.0.2.1:7655/z;tcp\r\n"
    );
    let (bytes, agreed) = answer(&parse(twice.as_bytes()).unwrap(), &local).unwrap();
    assert_eq!(agreed.remote_path, ["msrp://192.0.2.1:7654/x;tcp"]);
    let ans = parse(&bytes).unwrap();
    assert_eq!(ans.session.medias.len(), 3);
    assert_eq!(ans.session.medias[2].port, 0);
    assert_eq!(ans.msrp.len(), 1);
}

#[test]
fn what_cannot_be_used_is_named() {
    assert!(matches!(parse(b"hello"), Err(SdpError::Syntax(_))));
    let no_path = String::from_utf8(fixture("rfc4975-8.2-figure7.sdp"))
        .unwrap()
        .replace(
            "a=path:msrp://alice.example.com:7394/2s93i9ek2a;tcp\r\n",
            "",
        );
    assert_eq!(parse(no_path.as_bytes()), Err(SdpError::Missing("path")));
    let no_types = String::from_utf8(fixture("rfc4975-8.2-figure7.sdp"))
        .unwrap()
        .replace("a=accept-types:text/plain\r\n", "");
    assert_eq!(
        parse(no_types.as_bytes()),
        Err(SdpError::Missing("accept-types"))
    );
    let bad_size = String::from_utf8(fixture("rfc4975-8.2-figure7.sdp"))
        .unwrap()
        .replace("a=accept-types", "a=max-size:lots\r\na=accept-types");
    assert!(matches!(
        parse(bad_size.as_bytes()),
        Err(SdpError::Malformed {
            attribute: "max-size",
            ..
        })
    ));
    let audio =
        parse(b"v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\n").unwrap();
    let local = Local::room("h", 1, "msrp://h:1/x;tcp");
    assert_eq!(answer(&audio, &local).unwrap_err(), SdpError::NoMsrp);
    // TLS offered, only TCP here (and the reverse).
    let tls = String::from_utf8(fixture("rfc4975-8.2-figure7.sdp"))
        .unwrap()
        .replace("TCP/MSRP", "TCP/TLS/MSRP")
        .replace("msrp://", "msrps://");
    let tls = parse(tls.as_bytes()).unwrap();
    assert!(tls.msrp[0].secure);
    assert!(matches!(
        answer(&tls, &local),
        Err(SdpError::Transport { .. })
    ));
}

/// The gateway joining a room elsewhere offers actpass and connects
/// unless the answer says active.
#[test]
fn our_offer_and_its_answer() {
    let mut local = Local::room("gw.example.com", 2855, "msrp://gw.example.com:2855/s1;tcp");
    local.max_size = Some(1_048_576);
    let o = parse(&offer(&local)).unwrap();
    assert_eq!(o.msrp[0].setup, Some(Setup::ActPass));
    assert_eq!(o.msrp[0].max_size, Some(1_048_576));
    let f2 = parse(&fixture("rfc7701-9.1-f2.sdp")).unwrap();
    assert!(agreed_by_answer(&f2).unwrap().we_connect);
    let active = String::from_utf8(fixture("rfc7701-9.1-f2.sdp"))
        .unwrap()
        .replace("a=chatroom", "a=setup:active\r\na=chatroom");
    assert!(
        !agreed_by_answer(&parse(active.as_bytes()).unwrap())
            .unwrap()
            .we_connect
    );
}

proptest::proptest! {
    /// What this side writes, it reads back as written: offer∘parse keeps
    /// every MSRP attribute, and the answer to that offer reads too.
    #[test]
    fn offers_read_back(
        host in "[a-z]{1,12}(\\.[a-z]{1,8}){0,2}",
        port in 1u16..,
        secure in proptest::bool::ANY,
        types in proptest::collection::vec("(text|message|image)/[a-z]{1,8}", 1..4),
        wrapped in proptest::collection::vec("(text|image)/[a-z*]{1,8}", 0..3),
        max_size in proptest::option::of(0u64..1 << 40),
        tokens in proptest::option::of(proptest::collection::vec("[a-z-]{1,16}", 0..3)),
        session in proptest::num::u64::ANY,
    ) {
        let scheme = if secure { "msrps" } else { "msrp" };
        let local = Local {
            path: format!("{scheme}://{host}:{port}/s1;tcp"),
            host,
            port,
            secure,
            accept_types: types,
            accept_wrapped_types: wrapped,
            max_size,
            chatroom: tokens.clone(),
            session_id: session,
        };
        let o = parse(&offer(&local)).unwrap();
        let m = &o.msrp[0];
        proptest::prop_assert_eq!(m.port, local.port);
        proptest::prop_assert_eq!(m.secure, local.secure);
        proptest::prop_assert_eq!(&m.accept_types, &local.accept_types);
        proptest::prop_assert_eq!(&m.accept_wrapped_types, &local.accept_wrapped_types);
        proptest::prop_assert_eq!(&m.path, &vec![local.path.clone()]);
        proptest::prop_assert_eq!(m.max_size, local.max_size);
        proptest::prop_assert_eq!(&m.chatroom, &tokens);
        let (bytes, agreed) = answer(&o, &local).unwrap();
        proptest::prop_assert!(parse(&bytes).is_ok());
        proptest::prop_assert!(!agreed.we_connect);
    }
}
