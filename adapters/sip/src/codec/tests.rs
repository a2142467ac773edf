//! Unit tests of the codec's pieces: limits, names, lists, parameters.

use super::*;

const F1: &[u8] = include_bytes!("../../tests/fixtures/rfc3428-10-f1.sip");

fn kind(input: &[u8], limits: &Limits) -> ErrorKind {
    match parse_with(input, limits) {
        Err(e) => e.kind,
        Ok(m) => panic!("parsed: {m:?}"),
    }
}

#[test]
fn limits_are_enforced_with_513() {
    let few = Limits {
        max_headers: 3,
        ..Limits::default()
    };
    assert_eq!(kind(F1, &few), ErrorKind::TooManyHeaders { max: 3 });
    let short = Limits {
        max_line: 20,
        ..Limits::default()
    };
    assert_eq!(kind(F1, &short), ErrorKind::LineTooLong { max: 20 });
    let small = Limits {
        max_message: 10,
        ..Limits::default()
    };
    assert_eq!(
        kind(F1, &small),
        ErrorKind::TooLarge {
            len: F1.len(),
            max: 10
        }
    );
    for l in [few, short, small] {
        let e = parse_with(F1, &l).expect_err("over a limit");
        assert_eq!(e.response_status().code, 513);
        assert_eq!(e.response_status().reason, "Message Too Large");
    }
    // The limits hold exactly: the longest line of F1 passes at its length.
    let longest = F1
        .split(|&b| b == b'\n')
        .map(|l| l.len().saturating_sub(1))
        .max()
        .expect("lines");
    let exact = Limits {
        max_line: longest,
        max_headers: 8,
        max_message: F1.len(),
    };
    assert!(parse_with(F1, &exact).is_ok());
}

#[test]
fn framer_refuses_an_oversize_message_before_it_is_whole() {
    let mut f = StreamFramer::new(Limits {
        max_message: 100,
        ..Limits::default()
    });
    // A header section that never ends.
    f.handle_data(&[b'a'; 60]);
    assert_eq!(f.poll_event(), None);
    f.handle_data(&[b'a'; 60]);
    let e = f.poll_event().expect("event").expect_err("too large");
    assert_eq!(e.response_status().code, 513);
    // A Content-Length over the limit is refused from the header alone.
    let mut f = StreamFramer::new(Limits {
        max_message: 100,
        ..Limits::default()
    });
    f.handle_data(b"MESSAGE sip:a@b SIP/2.0\r\nl: 1000\r\n\r\n");
    let e = f.poll_event().expect("event").expect_err("too large");
    assert!(matches!(e.kind, ErrorKind::TooLarge { len, .. } if len > 1000));
}

#[test]
fn every_compact_form_of_rfc3261_section_20() {
    for (c, long) in [
        ("i", "Call-ID"),
        ("m", "Contact"),
        ("e", "Content-Encoding"),
        ("l", "Content-Length"),
        ("c", "Content-Type"),
        ("f", "From"),
        ("s", "Subject"),
        ("k", "Supported"),
        ("t", "To"),
        ("v", "Via"),
    ] {
        let h = HeaderName::parse(c);
        assert_eq!(h, HeaderName::parse(long), "{c}");
        assert_eq!(h, HeaderName::parse(&c.to_uppercase()), "{c}");
        assert_eq!(h.as_str(), long);
        assert_eq!(h.compact().map(String::from).as_deref(), Some(c));
        assert_eq!(HeaderName::parse(&long.to_lowercase()), h);
        assert_eq!(HeaderName::parse(&long.to_uppercase()), h);
    }
    assert_eq!(HeaderName::parse("Via-"), HeaderName::Other);
    assert_eq!(HeaderName::parse("V\ria"), HeaderName::Other);
    assert_eq!(HeaderName::parse(""), HeaderName::Other);
    assert_eq!(HeaderName::parse("\r"), HeaderName::Other);
}

#[test]
fn lists_split_outside_quotes_and_brackets_only() {
    // RFC 3261 §7.3.1: the three forms of the same Route set.
    let one = b"OPTIONS sip:a@b SIP/2.0\r\nRoute: <sip:alice@atlanta.com>\r\nSubject: Lunch\r\nRoute: <sip:bob@biloxi.com>\r\nRoute: <sip:carol@chicago.com>\r\n\r\n";
    let two = b"OPTIONS sip:a@b SIP/2.0\r\nRoute: <sip:alice@atlanta.com>, <sip:bob@biloxi.com>\r\nRoute: <sip:carol@chicago.com>\r\nSubject: Lunch\r\n\r\n";
    let three = b"OPTIONS sip:a@b SIP/2.0\r\nSubject: Lunch\r\nRoute: <sip:alice@atlanta.com>, <sip:bob@biloxi.com>,\r\n       <sip:carol@chicago.com>\r\n\r\n";
    let routes = |b: &[u8]| -> Vec<String> {
        let m = parse(b).expect("parses");
        m.route()
            .expect("Route")
            .iter()
            .map(|r| r.uri().to_owned())
            .collect()
    };
    assert_eq!(routes(one), routes(two));
    assert_eq!(routes(two), routes(three));
    assert_eq!(routes(one).len(), 3);
    let v: Vec<_> = split_list(r#"a, "b, \"c\", d", <e,f>;x="1,2" , ,g"#).collect();
    assert_eq!(v, ["a", r#""b, \"c\", d""#, r#"<e,f>;x="1,2""#, "g"]);
}

#[test]
fn parameters() {
    let p = Params::new(" ;branch=z9hG4bK1 ; received = 1.2.3.4;;rport;x=\"a;b\"");
    assert_eq!(
        p.iter().collect::<Vec<_>>(),
        [
            ("branch", Some("z9hG4bK1")),
            ("received", Some("1.2.3.4")),
            ("rport", None),
            ("x", Some("\"a;b\"")),
        ]
    );
    assert_eq!(p.get("BRANCH"), Some(Some("z9hG4bK1")));
    assert_eq!(p.get("ttl"), None);
    assert_eq!(unquote("\"a \\\"b\\\" c\""), "a \"b\" c");
    assert_eq!(unquote("plain"), "plain");
}

#[test]
fn folding_reads_as_one_space() {
    let m = parse(b"OPTIONS sip:a@b SIP/2.0\r\nSubject: I know you're there,\r\n         pick up the phone   \r\n\t and talk to me!\r\n\r\n")
        .expect("parses");
    let h = &m.headers()[0];
    assert_eq!(
        h.value(),
        "I know you're there, pick up the phone and talk to me!"
    );
    assert!(matches!(h.value_cow(), std::borrow::Cow::Owned(_)));
    let m = parse(b"OPTIONS sip:a@b SIP/2.0\r\nSubject:   lunch  \r\n\r\n").expect("parses");
    assert!(matches!(
        m.headers()[0].value_cow(),
        std::borrow::Cow::Borrowed("lunch")
    ));
}

#[test]
fn start_lines() {
    let m = parse(b"SIP/2.0 200 \r\n\r\n").expect("empty reason");
    assert_eq!(m.reason(), Some(""));
    let m = parse(b"sip/2.0 486 Busy Here\r\n\r\n").expect("lower-case SIP");
    assert_eq!(m.status(), Some(486));
    for (bad, code) in [
        (&b"SIP/2.0 20 OK\r\n\r\n"[..], 400),
        (b"SIP/2.00 200 OK\r\n\r\n", 200),
        (b"INVITE sip:a@b SIP/2.1\r\n\r\n", 505),
        (b"INVITE sip:a@b SIP/1.0\r\n\r\n", 505),
        (b"INVITE sip:a@b\r\n\r\n", 400),
        (b"INVITE  sip:a@b SIP/2.0\r\n\r\n", 400),
        (b"INVITE nocolon SIP/2.0\r\n\r\n", 400),
        (b"", 400),
    ] {
        let got = parse(bad)
            .map(|_| 200)
            .unwrap_or_else(|e| e.response_status().code);
        assert_eq!(got, code, "{:?}", String::from_utf8_lossy(bad));
    }
}
