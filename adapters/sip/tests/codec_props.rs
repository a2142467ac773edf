//! Property tests of the SIP codec: printing and parsing are inverse, the
//! stream framer does not depend on how the stream is cut into reads, and
//! no input makes the parser panic.

use cpimgate_sip::codec::{Limits, OwnedMessage, StreamEvent, StreamFramer, parse, parse_datagram};
use proptest::prelude::*;

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("MESSAGE".to_owned()),
        Just("INVITE".to_owned()),
        Just("REGISTER".to_owned()),
        "[A-Z][A-Za-z0-9.!%*_+`'~-]{0,11}",
    ]
}

fn uri() -> impl Strategy<Value = String> {
    "(sip|sips|tel|im):[a-z0-9]{1,8}(@[a-z]{1,8}\\.com)?(;[a-z]{1,4}(=[a-z0-9]{1,4})?)?"
}

/// Names long and compact, in any case, known and unknown (never
/// Content-Length, which the printer owns).
fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Via".to_owned()),
        Just("v".to_owned()),
        Just("From".to_owned()),
        Just("f".to_owned()),
        Just("t".to_owned()),
        Just("To".to_owned()),
        Just("i".to_owned()),
        Just("CALL-ID".to_owned()),
        Just("cseq".to_owned()),
        Just("Route".to_owned()),
        Just("m".to_owned()),
        Just("Subject".to_owned()),
        Just("WWW-Authenticate".to_owned()),
        "X-[A-Za-z0-9-]{1,10}",
    ]
}

/// One word of a value: printable text, quoted strings holding commas and
/// escaped quotes, angle-bracketed URIs with commas and semicolons, UTF-8.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        "[!-~&&[^\"<>]]{1,12}",
        "\"[ a-z,;<>]{0,8}(\\\\\")?[a-z, ]{0,4}\"",
        "<sip:[a-z]{1,6}@[a-z]{1,6}\\.com;[a-z]=[0-9,]{1,3}>",
        "[a-zé€🦀]{1,6}",
    ]
}

/// A value: words separated by single spaces, commas or semicolons (no
/// white space at either end, which the parser trims).
fn value() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (word(), prop_oneof![Just(" "), Just(", "), Just(";")]),
        1..5,
    )
    .prop_map(|parts| {
        let mut out = String::new();
        for (i, (w, sep)) in parts.iter().enumerate() {
            if i > 0 {
                out.push_str(sep);
            }
            out.push_str(w);
        }
        out
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        prop::collection::vec(any::<u8>(), 0..200),
        "[ -~\r\n]{0,100}".prop_map(String::into_bytes),
    ]
}

fn owned_message() -> impl Strategy<Value = OwnedMessage> {
    let start = prop_oneof![
        (method(), uri()).prop_map(
            |(m, u)| OwnedMessage::request(&m, &u).expect("generated request line is valid")
        ),
        (100u16..700, "[A-Za-z ]{0,12}").prop_map(
            |(c, r)| OwnedMessage::response(c, &r).expect("generated status line is valid")
        ),
    ];
    (
        start,
        prop::collection::vec((header_name(), value()), 0..12),
        body(),
    )
        .prop_map(|(mut m, headers, body)| {
            for (n, v) in headers {
                m.push_header(&n, &v).expect("generated header is valid");
            }
            m.set_body(body);
            m
        })
}

/// A raw header line with white space around the colon and the value
/// folded over several lines: the bytes, and the value as read.
fn raw_header() -> impl Strategy<Value = (Vec<u8>, String)> {
    (
        header_name(),
        "[ \t]{0,2}",
        "[ \t]{0,2}",
        prop::collection::vec((value(), "[ \t]{1,3}"), 1..4),
    )
        .prop_map(|(name, before, after, parts)| {
            let mut raw = format!("{name}{before}:{after}");
            let mut read = String::new();
            for (i, (v, ws)) in parts.iter().enumerate() {
                if i > 0 {
                    raw.push_str("\r\n");
                    raw.push_str(ws);
                    read.push(' ');
                }
                raw.push_str(v);
                read.push_str(v);
            }
            raw.push_str("\r\n");
            (raw.into_bytes(), read)
        })
}

proptest! {
    #[test]
    fn parse_of_print_is_the_message(m in owned_message()) {
        let bytes = m.to_bytes();
        let parsed = parse(&bytes).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(parsed.to_owned_message(), m.finalized());
        prop_assert_eq!(parsed.to_bytes(), bytes);
    }

    #[test]
    fn print_of_parse_is_the_bytes(
        start in prop_oneof![
            (method(), uri()).prop_map(|(m, u)| format!("{m} {u} SIP/2.0\r\n")),
            (100u16..700, "[A-Za-z ]{0,12}").prop_map(|(c, r)| format!("SIP/2.0 {c} {r}\r\n")),
        ],
        headers in prop::collection::vec(raw_header(), 0..10),
        body in body(),
        with_length in any::<bool>(),
    ) {
        let mut bytes = start.into_bytes();
        for (raw, _) in &headers {
            bytes.extend_from_slice(raw);
        }
        if with_length {
            bytes.extend_from_slice(format!("l: {}\r\n", body.len()).as_bytes());
        }
        bytes.extend_from_slice(b"\r\n");
        bytes.extend_from_slice(&body);
        let m = parse(&bytes).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(m.to_bytes(), bytes.clone());
        prop_assert_eq!(m.body(), &body[..]);
        for (h, (_, read)) in m.headers().iter().zip(&headers) {
            prop_assert_eq!(h.value(), read.as_str());
        }
    }

    #[test]
    fn framer_output_does_not_depend_on_reads(
        messages in prop::collection::vec((owned_message(), 0usize..3), 1..5),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
    ) {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for (m, pings) in &messages {
            for _ in 0..*pings {
                stream.extend_from_slice(b"\r\n\r\n");
                expected.push(StreamEvent::Ping);
            }
            let b = m.to_bytes();
            stream.extend_from_slice(&b);
            expected.push(StreamEvent::Message(b.into()));
        }
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        let mut f = StreamFramer::new(Limits::default());
        let mut got = Vec::new();
        for w in points.windows(2) {
            f.handle_data(&stream[w[0]..w[1]]);
            while let Some(ev) = f.poll_event() {
                got.push(ev.map_err(|e| TestCaseError::fail(format!("{e}")))?);
            }
        }
        prop_assert_eq!(got, expected);
        prop_assert!(f.buffered().is_empty());
    }

    #[test]
    fn no_panic_on_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..600)) {
        exercise(&data);
    }

    #[test]
    fn no_panic_on_mutated_messages(
        m in owned_message(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut bytes = m.to_bytes();
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        exercise(&bytes);
    }
}

/// Runs every entry point on `data`; whatever parses prints back exactly.
fn exercise(data: &[u8]) {
    let limits = Limits {
        max_message: 4096,
        max_headers: 16,
        max_line: 256,
    };
    if let Ok(Some(m)) = parse_datagram(data, &limits) {
        assert_eq!(m.to_bytes(), m.as_bytes());
        let _ = m.validate_request();
        let _ = (m.from(), m.to(), m.cseq(), m.call_id(), m.contact());
        let _ = (m.max_forwards(), m.content_length(), m.content_type());
        let _ = (m.route(), m.record_route(), m.expires(), m.date());
        for v in m.via().flatten() {
            let _ = (v.branch(), v.rport(), v.received(), v.ttl());
        }
        if let Ok(Some(f)) = m.from() {
            let _ = (f.name_addr(), f.tag(), f.display());
        }
        let status = m.validate_request().err().map(|e| e.response_status());
        if let Some(s) = status {
            if m.is_request() {
                let r = OwnedMessage::response_to(&m, s.code, &s.reason, Some("t"))
                    .expect("a response to a parsed request builds");
                assert!(parse(&r.to_bytes()).is_ok());
            }
        }
    } else if let Err(e) = parse_datagram(data, &limits) {
        let s = e.response_status();
        assert!(!s.reason.contains(['\r', '\n']));
    }
    let mut f = StreamFramer::new(limits);
    f.handle_data(data);
    while let Some(Ok(StreamEvent::Message(b))) = f.poll_event() {
        let _ = parse(&b);
    }
}
