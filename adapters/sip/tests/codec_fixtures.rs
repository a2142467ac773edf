//! Byte fixtures of RFC 3428 §10 and RFC 3261 §24, plus malformed
//! messages with the status a UAS answers (see fixtures/README.md for the
//! provenance of each file).

use std::path::PathBuf;

use cpimgate_sip::codec::{
    Contact, HeaderName, Limits, OwnedMessage, StartLine, StreamEvent, StreamFramer, parse,
    parse_datagram,
};

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn fixture_names(bad: bool) -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("fixtures directory")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".sip") && n.ends_with(".bad.sip") == bad)
        .collect();
    names.sort();
    names
}

/// Transport, host, port, branch, received of one Via value.
type ViaExpect = (
    &'static str,
    &'static str,
    Option<u16>,
    &'static str,
    Option<&'static str>,
);

/// What the RFC shows of a message, checked through the typed accessors.
struct Expect {
    file: &'static str,
    start: &'static str,
    vias: &'static [ViaExpect],
    from: (&'static str, Option<&'static str>, Option<&'static str>),
    to: (&'static str, Option<&'static str>, Option<&'static str>),
    call_id: &'static str,
    cseq: (u32, &'static str),
    max_forwards: Option<u32>,
    content_length: Option<usize>,
    body: &'static [u8],
}

const F1_VIA: ViaExpect = ("TCP", "user1pc.domain.com", None, "z9hG4bK776sgdkse", None);
const F1_VIA_RECEIVED: ViaExpect = (
    "TCP",
    "user1pc.domain.com",
    None,
    "z9hG4bK776sgdkse",
    Some("1.2.3.4"),
);
const ATL_VIA: ViaExpect = (
    "UDP",
    "pc33.atlanta.com",
    None,
    "z9hG4bKnashds8",
    Some("192.0.2.1"),
);
const BIGBOX_VIA: ViaExpect = (
    "UDP",
    "bigbox3.site3.atlanta.com",
    None,
    "z9hG4bK77ef4c2312983.1",
    Some("192.0.2.2"),
);
const BILOXI_VIA: ViaExpect = (
    "UDP",
    "server10.biloxi.com",
    None,
    "z9hG4bK4b43c2ff8.1",
    Some("192.0.2.3"),
);
const ALICE: (&str, Option<&str>, Option<&str>) =
    ("sip:alice@atlanta.com", Some("Alice"), Some("1928301774"));
const BOB_TAGGED: (&str, Option<&str>, Option<&str>) =
    ("sip:bob@biloxi.com", Some("Bob"), Some("a6c85cf"));
const BOB: (&str, Option<&str>, Option<&str>) = ("sip:bob@biloxi.com", Some("Bob"), None);

const GOOD: &[Expect] = &[
    Expect {
        file: "rfc3428-10-f1.sip",
        start: "MESSAGE sip:user2@domain.com",
        vias: &[F1_VIA],
        from: ("sip:user1@domain.com", None, Some("49583")),
        to: ("sip:user2@domain.com", None, None),
        call_id: "asd88asd77a@1.2.3.4",
        cseq: (1, "MESSAGE"),
        max_forwards: Some(70),
        content_length: Some(18),
        body: b"Watson, come here.",
    },
    Expect {
        file: "rfc3428-10-f2.sip",
        start: "MESSAGE sip:user2@domain.com",
        vias: &[
            ("TCP", "proxy.domain.com", None, "z9hG4bK123dsghds", None),
            F1_VIA_RECEIVED,
        ],
        from: ("sip:user1@domain.com", None, Some("49394")),
        to: ("sip:user2@domain.com", None, None),
        call_id: "asd88asd77a@1.2.3.4",
        cseq: (1, "MESSAGE"),
        max_forwards: Some(69),
        content_length: Some(18),
        body: b"Watson, come here.",
    },
    Expect {
        file: "rfc3428-10-f3.sip",
        start: "200 OK",
        vias: &[
            (
                "TCP",
                "proxy.domain.com",
                None,
                "z9hG4bK123dsghds",
                Some("192.0.2.1"),
            ),
            F1_VIA_RECEIVED,
        ],
        from: ("sip:user1@domain.com", None, Some("49394")),
        to: ("sip:user2@domain.com", None, Some("ab8asdasd9")),
        call_id: "asd88asd77a@1.2.3.4",
        cseq: (1, "MESSAGE"),
        max_forwards: None,
        content_length: Some(0),
        body: b"",
    },
    Expect {
        file: "rfc3428-10-f4.sip",
        start: "200 OK",
        vias: &[F1_VIA_RECEIVED],
        from: ("sip:user1@domain.com", None, Some("49394")),
        to: ("sip:user2@domain.com", None, Some("ab8asdasd9")),
        call_id: "asd88asd77a@1.2.3.4",
        cseq: (1, "MESSAGE"),
        max_forwards: None,
        content_length: Some(0),
        body: b"",
    },
    Expect {
        file: "rfc3261-24.1-f1-register.sip",
        start: "REGISTER sip:registrar.biloxi.com",
        vias: &[(
            "UDP",
            "bobspc.biloxi.com",
            Some(5060),
            "z9hG4bKnashds7",
            None,
        )],
        from: ("sip:bob@biloxi.com", Some("Bob"), Some("456248")),
        to: BOB,
        call_id: "843817637684230@998sdasdh09",
        cseq: (1826, "REGISTER"),
        max_forwards: Some(70),
        content_length: Some(0),
        body: b"",
    },
    Expect {
        file: "rfc3261-24.1-f2-200.sip",
        start: "200 OK",
        vias: &[(
            "UDP",
            "bobspc.biloxi.com",
            Some(5060),
            "z9hG4bKnashds7",
            Some("192.0.2.4"),
        )],
        from: ("sip:bob@biloxi.com", Some("Bob"), Some("456248")),
        to: ("sip:bob@biloxi.com", Some("Bob"), Some("2493k59kd")),
        call_id: "843817637684230@998sdasdh09",
        cseq: (1826, "REGISTER"),
        max_forwards: None,
        content_length: Some(0),
        body: b"",
    },
    Expect {
        file: "rfc3261-24.2-f2-100.sip",
        start: "100 Trying",
        vias: &[ATL_VIA],
        from: ALICE,
        to: BOB,
        call_id: "a84b4c76e66710",
        cseq: (314159, "INVITE"),
        max_forwards: None,
        content_length: Some(0),
        body: b"",
    },
    Expect {
        file: "rfc3261-24.2-f4-100.sip",
        start: "100 Trying",
        vias: &[BIGBOX_VIA, ATL_VIA],
        from: ALICE,
        to: BOB,
        call_id: "a84b4c76e66710",
        cseq: (314159, "INVITE"),
        max_forwards: None,
        content_length: Some(0),
        body: b"",
    },
    Expect {
        file: "rfc3261-24.2-f6-180.sip",
        start: "180 Ringing",
        vias: &[BILOXI_VIA, BIGBOX_VIA, ATL_VIA],
        from: ALICE,
        to: BOB_TAGGED,
        call_id: "a84b4c76e66710",
        cseq: (314159, "INVITE"),
        max_forwards: None,
        content_length: Some(0),
        body: b"",
    },
    Expect {
        file: "rfc3261-24.2-f7-180.sip",
        start: "180 Ringing",
        vias: &[BIGBOX_VIA, ATL_VIA],
        from: ALICE,
        to: BOB_TAGGED,
        call_id: "a84b4c76e66710",
        cseq: (314159, "INVITE"),
        max_forwards: None,
        content_length: Some(0),
        body: b"",
    },
    Expect {
        file: "rfc3261-24.2-f8-180.sip",
        start: "180 Ringing",
        vias: &[ATL_VIA],
        from: ALICE,
        to: BOB_TAGGED,
        call_id: "a84b4c76e66710",
        cseq: (314159, "INVITE"),
        max_forwards: None,
        content_length: Some(0),
        body: b"",
    },
    Expect {
        file: "rfc3261-24.2-f12-ack.sip",
        start: "ACK sip:bob@192.0.2.4",
        vias: &[("UDP", "pc33.atlanta.com", None, "z9hG4bKnashds9", None)],
        from: ALICE,
        to: BOB_TAGGED,
        call_id: "a84b4c76e66710",
        cseq: (314159, "ACK"),
        max_forwards: Some(70),
        content_length: Some(0),
        body: b"",
    },
    Expect {
        file: "rfc3261-24.2-f13-bye.sip",
        start: "BYE sip:alice@pc33.atlanta.com",
        vias: &[("UDP", "192.0.2.4", None, "z9hG4bKnashds10", None)],
        from: BOB_TAGGED,
        to: ALICE,
        call_id: "a84b4c76e66710",
        cseq: (231, "BYE"),
        max_forwards: Some(70),
        content_length: Some(0),
        body: b"",
    },
    Expect {
        file: "rfc3261-24.2-f14-200.sip",
        start: "200 OK",
        vias: &[("UDP", "192.0.2.4", None, "z9hG4bKnashds10", None)],
        from: BOB_TAGGED,
        to: ALICE,
        call_id: "a84b4c76e66710",
        cseq: (231, "BYE"),
        max_forwards: None,
        content_length: Some(0),
        body: b"",
    },
    Expect {
        file: "extension-method.sip",
        start: "FROBNICATE sip:user2@domain.com",
        vias: &[F1_VIA],
        from: ("sip:user1@domain.com", None, Some("49583")),
        to: ("sip:user2@domain.com", None, None),
        call_id: "asd88asd77a@1.2.3.4",
        cseq: (1, "FROBNICATE"),
        max_forwards: Some(70),
        content_length: Some(18),
        body: b"Watson, come here.",
    },
    Expect {
        file: "compact-folded.sip",
        start: "MESSAGE sip:user2@domain.com",
        vias: &[
            ("UDP", "10.1.1.1", Some(4540), "z9hG4bKkjshdyff", None),
            (
                "TCP",
                "[2001:db8::9]",
                Some(5061),
                "z9hG4bK77asjd",
                Some("192.0.2.1"),
            ),
            (
                "UDP",
                "first.example.com",
                Some(4000),
                "z9hG4bKa7c6a8dlze.1",
                None,
            ),
        ],
        from: (
            "sip:john@domain.com;transport=tcp",
            Some("Doe, John \"JD\""),
            Some("8a1"),
        ),
        to: ("sip:user2@domain.com", Some("Watson"), None),
        call_id: "f81d4fae-7dec-11d0-a765-00a0c91e6bf6@foo.bar.com",
        cseq: (4711, "MESSAGE"),
        max_forwards: Some(70),
        content_length: Some(13),
        body: b"Hello, world!",
    },
];

fn start_text(start: StartLine<'_>) -> String {
    match start {
        StartLine::Request { method, uri } => format!("{method} {uri}"),
        StartLine::Response { code, reason } => format!("{code} {reason}"),
    }
}

#[test]
fn every_good_fixture_is_listed() {
    let listed: Vec<&str> = GOOD.iter().map(|e| e.file).collect();
    for name in fixture_names(false) {
        assert!(
            listed.contains(&name.as_str()),
            "{name} has no expectations"
        );
    }
}

#[test]
fn good_fixtures_parse_print_back_and_read_as_the_rfc_shows() {
    for e in GOOD {
        let bytes = fixture(e.file);
        let m = parse(&bytes).unwrap_or_else(|err| panic!("{}: {err}", e.file));
        assert_eq!(m.to_bytes(), bytes, "{}: not byte-exact", e.file);
        assert_eq!(m.as_bytes(), &bytes[..], "{}", e.file);
        assert_eq!(start_text(m.start_line()), e.start, "{}", e.file);
        m.validate_request()
            .unwrap_or_else(|err| panic!("{}: {err}", e.file));

        let vias: Vec<_> = m
            .via()
            .map(|v| v.unwrap_or_else(|err| panic!("{}: {err}", e.file)))
            .collect();
        assert_eq!(vias.len(), e.vias.len(), "{}: Via count", e.file);
        for (v, (transport, host, port, branch, received)) in vias.iter().zip(e.vias) {
            assert_eq!(v.protocol(), "SIP", "{}", e.file);
            assert_eq!(v.version(), "2.0", "{}", e.file);
            assert_eq!(v.transport(), *transport, "{}", e.file);
            assert_eq!(v.host(), *host, "{}", e.file);
            assert_eq!(v.port(), *port, "{}", e.file);
            assert_eq!(v.branch(), Some(*branch), "{}", e.file);
            assert_eq!(v.received(), *received, "{}", e.file);
        }
        for (name, got, (uri, display, tag)) in [("From", m.from(), e.from), ("To", m.to(), e.to)] {
            let a = got
                .unwrap_or_else(|err| panic!("{}: {err}", e.file))
                .unwrap_or_else(|| panic!("{}: no {name}", e.file));
            assert_eq!(a.uri(), uri, "{} {name}", e.file);
            assert_eq!(a.display().as_deref(), display, "{} {name}", e.file);
            assert_eq!(a.tag(), tag, "{} {name}", e.file);
            a.address()
                .unwrap_or_else(|err| panic!("{} {name} URI: {err}", e.file));
        }
        assert_eq!(m.call_id(), Ok(Some(e.call_id)), "{}", e.file);
        let cseq = m.cseq().expect("CSeq parses").expect("CSeq present");
        assert_eq!((cseq.seq, cseq.method), e.cseq, "{}", e.file);
        assert_eq!(m.max_forwards(), Ok(e.max_forwards), "{}", e.file);
        assert_eq!(m.content_length(), Ok(e.content_length), "{}", e.file);
        assert_eq!(m.body(), e.body, "{}", e.file);
    }
}

#[test]
fn rfc3428_f1_content_type_and_f3_empty_parameters() {
    let f1 = fixture("rfc3428-10-f1.sip");
    let m = parse(&f1).expect("F1");
    let ct = m.content_type().expect("parses").expect("present");
    assert!(ct.is("text", "plain"));
    // F3 writes "user1pc.domain.com;;branch=" and F4 "domain.com;;tag=": the
    // empty parameter is skipped, the next one still read.
    let f4 = fixture("rfc3428-10-f4.sip");
    let m = parse(&f4).expect("F4");
    let from = m.from().expect("From").expect("present");
    assert_eq!(
        from.params().iter().collect::<Vec<_>>(),
        [("tag", Some("49394"))]
    );
}

#[test]
fn rfc3261_24_1_register_contact_and_expires() {
    let bytes = fixture("rfc3261-24.1-f1-register.sip");
    let m = parse(&bytes).expect("F1");
    assert_eq!(m.expires(), Ok(Some(7200)));
    let Some(Contact::Addresses(c)) = m.contact().expect("Contact") else {
        panic!("no Contact addresses");
    };
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].uri(), "sip:bob@192.0.2.4");
    let r = m.request_uri().expect("request");
    assert_eq!(r, "sip:registrar.biloxi.com");
    let a = m
        .request_uri_address()
        .expect("a request")
        .expect("a SIP URI");
    assert_eq!(a.to_string(), "sip:registrar.biloxi.com");
}

#[test]
fn compact_folded_fixture_reads_every_header() {
    let bytes = fixture("compact-folded.sip");
    let m = parse(&bytes).expect("parses");
    let vias: Vec<_> = m.via().map(|v| v.expect("Via")).collect();
    assert_eq!(vias[0].rport(), Some(None));
    assert_eq!(vias[1].rport(), Some(Some(9988)));
    assert_eq!(vias[2].ttl(), Some(16));
    assert_eq!(vias[2].maddr(), Some("224.2.0.1"));
    let routes: Vec<_> = m.route().expect("Route").iter().map(|r| r.uri()).collect();
    assert_eq!(
        routes,
        [
            "sip:alice@atlanta.com",
            "sip:bob@biloxi.com;lr",
            "sip:carol@chicago.com"
        ]
    );
    // RFC 3261 §7.3.1: the folded Subject reads as one line.
    assert_eq!(
        m.get("subject"),
        Some("I know you're there, pick up the phone and talk to me!")
    );
    assert_eq!(m.get("x-extension"), Some("value with   spaces"));
    let Some(Contact::Addresses(c)) = m.contact().expect("Contact") else {
        panic!("no Contact");
    };
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].params().get("expires"), Some(Some("3600")));
    assert_eq!(c[1].display().as_deref(), Some("Mr. Watson"));
    assert_eq!(c[1].params().get("q"), Some(Some("0.7")));
    assert_eq!(m.supported().collect::<Vec<_>>(), ["100rel", "timer"]);
    assert_eq!(m.allow().collect::<Vec<_>>(), ["MESSAGE", "OPTIONS"]);
    assert_eq!(m.date(), Some("Sat, 13 Nov 2010 23:29:00 GMT"));
    let ct = m.content_type().expect("c").expect("present");
    assert_eq!(ct.params.get("charset"), Some(Some("UTF-8")));
    let canonical: Vec<_> = m.headers().iter().map(|h| h.canonical_name()).collect();
    assert_eq!(
        &canonical[..6],
        ["Via", "Via", "Max-Forwards", "From", "To", "Call-ID"]
    );
    assert_eq!(m.header(HeaderName::Contact).map(|h| h.name()), Some("m"));
}

/// Each malformed fixture, whether the parser or the request check finds
/// the problem, and the status the UAS answers.
const BAD: &[(&str, u16, &str)] = &[
    (
        "bad-cseq.bad.sip",
        400,
        "Bad Request: malformed CSeq: not a decimal number",
    ),
    (
        "bad-from.bad.sip",
        400,
        "Bad Request: malformed From: unbalanced quotes in the display name",
    ),
    (
        "bad-method.bad.sip",
        400,
        "Bad Request: malformed start line: expected a Method (a token)",
    ),
    (
        "bad-via.bad.sip",
        400,
        "Bad Request: malformed Via: no transport in sent-protocol",
    ),
    (
        "bare-lf.bad.sip",
        400,
        "Bad Request: line not ended by CRLF",
    ),
    (
        "content-length-not-a-number.bad.sip",
        400,
        "Bad Request: malformed Content-Length: not a decimal number",
    ),
    (
        "content-length-too-large.bad.sip",
        400,
        "Bad Request: Content-Length 40 is larger than the body of 18 bytes",
    ),
    (
        "content-length-twice.bad.sip",
        400,
        "Bad Request: Content-Length appears more than once",
    ),
    (
        "continuation-first.bad.sip",
        400,
        "Bad Request: malformed header line: the header name is not a token",
    ),
    (
        "cseq-method-mismatch.bad.sip",
        400,
        "Bad Request: CSeq method INVITE does not match the request method MESSAGE",
    ),
    (
        "http-version.bad.sip",
        400,
        "Bad Request: malformed start line: expected SIP/2.0",
    ),
    (
        "missing-call-id.bad.sip",
        400,
        "Bad Request: missing Call-ID",
    ),
    (
        "missing-max-forwards.bad.sip",
        400,
        "Bad Request: missing Max-Forwards",
    ),
    ("missing-via.bad.sip", 400, "Bad Request: missing Via"),
    (
        "no-colon.bad.sip",
        400,
        "Bad Request: malformed header line: no colon after a header name",
    ),
    (
        "no-empty-line.bad.sip",
        400,
        "Bad Request: the header section is not closed by an empty line",
    ),
    (
        "not-utf8.bad.sip",
        400,
        "Bad Request: header value is not UTF-8",
    ),
    (
        "nul-byte.bad.sip",
        400,
        "Bad Request: control character 0x00 in the header section",
    ),
    ("sip-version-3.bad.sip", 505, "Version Not Supported"),
    (
        "status-code-999.bad.sip",
        400,
        "Bad Request: malformed start line: expected a Status-Code from 100 to 699",
    ),
];

#[test]
fn bad_fixtures_get_their_status() {
    let listed: Vec<&str> = BAD.iter().map(|b| b.0).collect();
    for name in fixture_names(true) {
        assert!(
            listed.contains(&name.as_str()),
            "{name} has no expected status"
        );
    }
    for (file, code, reason) in BAD {
        let bytes = fixture(file);
        let err = match parse(&bytes) {
            Err(e) => e,
            Ok(m) => m
                .validate_request()
                .expect_err(&format!("{file} passed the request check")),
        };
        let status = err.response_status();
        assert_eq!(
            (status.code, status.reason.as_str()),
            (*code, *reason),
            "{file}: {err}"
        );
        assert!(
            err.offset <= bytes.len(),
            "{file}: offset {} past the end",
            err.offset
        );
    }
}

#[test]
fn error_offsets_point_at_the_problem() {
    for (file, needle) in [
        ("nul-byte.bad.sip", &b"\x00"[..]),
        ("no-colon.bad.sip", b" 70\r\n"),
        ("not-utf8.bad.sip", b"\xe9"),
        ("bad-cseq.bad.sip", b"CSeq:"),
        ("content-length-too-large.bad.sip", b"Content-Length: 40"),
        ("bare-lf.bad.sip", b"\n"),
    ] {
        let bytes = fixture(file);
        let err = parse(&bytes)
            .and_then(|m| m.validate_request())
            .expect_err(file);
        let at = bytes
            .windows(needle.len())
            .position(|w| w == needle)
            .expect("needle in fixture");
        assert_eq!(err.offset, at, "{file}: {err}");
    }
}

#[test]
fn datagram_rules_of_rfc3261_18_3() {
    let f1 = fixture("rfc3428-10-f1.sip");
    // Bytes after the body are discarded.
    let mut longer = f1.clone();
    longer.extend_from_slice(b"trailing garbage");
    let m = parse_datagram(&longer, &Limits::default())
        .expect("parses")
        .expect("a message");
    assert_eq!(m.body(), b"Watson, come here.");
    assert_eq!(m.to_bytes(), f1);
    // Without Content-Length the body runs to the end.
    let without = String::from_utf8(f1.clone())
        .expect("UTF-8")
        .replace("Content-Length: 18\r\n", "");
    let m = parse(without.as_bytes()).expect("parses");
    assert_eq!(m.body(), b"Watson, come here.");
    // A keep-alive datagram.
    assert!(
        parse_datagram(b"\r\n\r\n", &Limits::default())
            .expect("ok")
            .is_none()
    );
    // Over the size limit: 513.
    let small = Limits {
        max_message: 100,
        ..Limits::default()
    };
    let err = parse_datagram(&f1, &small).expect_err("too large");
    assert_eq!(err.response_status().code, 513);
}

#[test]
fn stream_of_every_good_fixture_with_keepalives() {
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    for e in GOOD {
        stream.extend_from_slice(b"\r\n\r\n");
        expected.push(StreamEvent::Ping);
        let b = fixture(e.file);
        stream.extend_from_slice(&b);
        expected.push(StreamEvent::Message(b.into()));
    }
    for chunk in [1, 7, 64, stream.len()] {
        let mut f = StreamFramer::new(Limits::default());
        let mut got = Vec::new();
        for piece in stream.chunks(chunk) {
            f.handle_data(piece);
            while let Some(ev) = f.poll_event() {
                got.push(ev.expect("no framing error"));
            }
        }
        assert_eq!(got, expected, "reads of {chunk} bytes");
        assert!(f.buffered().is_empty());
    }
}

#[test]
fn stream_without_content_length_is_400() {
    let f1 = fixture("rfc3428-10-f1.sip");
    let without = String::from_utf8(f1)
        .expect("UTF-8")
        .replace("Content-Length: 18\r\n", "");
    let mut f = StreamFramer::new(Limits::default());
    f.handle_data(without.as_bytes());
    let err = f.poll_event().expect("an event").expect_err("an error");
    assert_eq!(
        err.response_status().reason,
        "Bad Request: Content-Length is mandatory on a stream transport"
    );
    assert!(f.is_failed());
    assert_eq!(f.poll_event(), None);
    // The head is still there for the driver to answer.
    assert!(f.buffered().starts_with(b"MESSAGE sip:user2@domain.com"));
}

#[test]
fn response_to_f1_follows_rfc3261_8_2_6() {
    let f2 = fixture("rfc3428-10-f2.sip");
    let req = parse(&f2).expect("F2");
    let resp = OwnedMessage::response_to(&req, 200, "OK", Some("ab8asdasd9")).expect("builds");
    let bytes = resp.to_bytes();
    let r = parse(&bytes).expect("the response parses");
    assert_eq!(r.status(), Some(200));
    let vias: Vec<_> = r.via().map(|v| v.expect("Via").branch()).collect();
    assert_eq!(vias, [Some("z9hG4bK123dsghds"), Some("z9hG4bK776sgdkse")]);
    assert_eq!(r.to().expect("To").expect("To").tag(), Some("ab8asdasd9"));
    assert_eq!(r.from().expect("From").expect("From").tag(), Some("49394"));
    assert_eq!(r.call_id(), req.call_id());
    assert_eq!(r.cseq(), req.cseq());
    assert_eq!(r.content_length(), Ok(Some(0)));
    // The response the RFC shows as F3 has the same header values, less
    // its received= (added by the proxy) and its empty ";;" parameter.
    let f3 = fixture("rfc3428-10-f3.sip");
    let f3 = parse(&f3).expect("F3");
    assert_eq!(r.to().expect("To"), f3.to().expect("To"));

    // 400 to a request missing Call-ID: what is there is copied.
    let bad = fixture("missing-call-id.bad.sip");
    let req = parse(&bad).expect("parses");
    let status = req
        .validate_request()
        .expect_err("missing")
        .response_status();
    let resp =
        OwnedMessage::response_to(&req, status.code, &status.reason, Some("x1")).expect("builds");
    let text = String::from_utf8(resp.to_bytes()).expect("UTF-8");
    assert!(text.starts_with("SIP/2.0 400 Bad Request: missing Call-ID\r\n"));
    assert!(!text.contains("\r\nCall-ID:"));
    // A 100 needs no To tag.
    let resp = OwnedMessage::response_to(&req, 100, "Trying", Some("x1")).expect("builds");
    assert_eq!(resp.get("To"), Some("sip:user2@domain.com"));
}

/// Found by the `sip` fuzz target: a C1 control (U+0085, UTF-8 C2 85) is
/// UTF8-NONASCII, which RFC 3261 §25.1 allows in a header value, so the
/// parser takes it; the builder used to refuse it, and such a request got
/// no answer at all. Now what parses can be answered, while an ASCII
/// control is still refused by both.
#[test]
fn a_parsed_request_with_a_c1_control_in_via_is_answered() {
    let bytes = "MESSAGE sip:user2@domain.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1\u{85}\r\n\
        From: <sip:user1@domain.com>;tag=1\r\n\
        To: <sip:user2@domain.com>\r\n\
        CSeq: 1 MESSAGE\r\n\
        Max-Forwards: 70\r\n\
        Content-Length: 0\r\n\r\n";
    let req = parse(bytes.as_bytes()).expect("parses");
    let status = req
        .validate_request()
        .expect_err("missing Call-ID")
        .response_status();
    let resp =
        OwnedMessage::response_to(&req, status.code, &status.reason, Some("x1")).expect("builds");
    let back = resp.to_bytes();
    let r = parse(&back).expect("the answer parses");
    assert_eq!(r.status(), Some(400));
    assert_eq!(
        resp.get("Via"),
        Some("SIP/2.0/UDP a.example.com;branch=z9hG4bK1\u{85}")
    );
    let mut m = OwnedMessage::response(200, "OK").expect("builds");
    assert!(m.push_header("Subject", "a\u{7f}b").is_err());
    assert!(m.push_header("Subject", "a\u{0}b").is_err());
    assert!(m.push_header("Subject", "a\tb\u{85}").is_ok());
}
