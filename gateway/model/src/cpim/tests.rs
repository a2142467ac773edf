//! Unit tests of the scanner's edge cases; the RFC fixtures are in
//! `tests/cpim_fixtures.rs`.
#![allow(clippy::unwrap_used)]

use super::*;

fn p(s: &str) -> Result<Cpim, CpimError> {
    Cpim::parse_slice(s.as_bytes(), &Limits::default())
}

#[test]
fn minimal_round_trip() {
    let s = "From: <im:a@b>\r\n\r\nContent-Type: text/plain\r\n\r\nhi";
    let c = p(s).unwrap();
    assert_eq!(c.to_bytes(), s.as_bytes());
    assert_eq!(&c.body()[..], b"hi");
    assert_eq!(c.line_ending(), Some(LineEnding::CrLf));
}

#[test]
fn lf_and_mixed_endings_are_kept() {
    let s = "From: <im:a@b>\nTo: <im:c@d>\r\n\nContent-Type: text/plain\n\nhi\n";
    let c = p(s).unwrap();
    assert_eq!(c.to_bytes(), s.as_bytes());
    assert_eq!(c.line_ending(), None);
    assert_eq!(&c.body()[..], b"hi\n");
}

#[test]
fn truncation_is_reported_with_offset() {
    for (s, expected) in [
        ("", "blank line after the CPIM headers"),
        ("From: <im:a@b>\r\n", "blank line after the CPIM headers"),
        ("From: <im:a@b>", "blank line after the CPIM headers"),
        (
            "From: <im:a@b>\r\n\r\n",
            "blank line after the MIME headers of the encapsulated part",
        ),
        (
            "From: <im:a@b>\r\n\r\nContent-Type: text/plain\r\n",
            "blank line after the MIME headers of the encapsulated part",
        ),
        (
            "From: <im:a@b>\r\n\r\nContent-Length: 10\r\n\r\nshort",
            "as many body bytes as Content-Length announces",
        ),
    ] {
        assert_eq!(
            p(s).unwrap_err(),
            CpimError::Truncated {
                offset: s.len(),
                expected
            },
            "{s:?}"
        );
    }
}

#[test]
fn content_length_splits_body_and_trailer() {
    let s = "From: <im:a@b>\r\n\r\nContent-Length: 2\r\n\r\nhi\r\n";
    let c = p(s).unwrap();
    assert_eq!(&c.body()[..], b"hi");
    assert_eq!(c.trailer(), b"\r\n");
    assert_eq!(c.to_bytes(), s.as_bytes());
    let e = p("From: <im:a@b>\r\n\r\nContent-Length: x2\r\n\r\nhi").unwrap_err();
    assert!(
        matches!(e, CpimError::BadValue { ref header, offset: 34, .. } if header == "Content-Length")
    );
}

#[test]
fn bad_lines() {
    let e = p("From <im:a@b>\r\n\r\nContent-Type: a/b\r\n\r\n").unwrap_err();
    assert_eq!(
        e,
        CpimError::BadHeader {
            offset: 4,
            line: 1,
            reason: "invalid character in header name (RFC 3862 §3.1)"
        }
    );
    let e = p("From: <im:a@b>\r\nhello\r\n\r\n").unwrap_err();
    assert_eq!(e, CpimError::MissingBlankLine { offset: 16 });
    let e = p(" From: <im:a@b>\r\n\r\n").unwrap_err();
    assert!(matches!(e, CpimError::BadHeader { offset: 0, .. }));
    let e = p("From: <im:a\0@b>\r\n\r\n").unwrap_err();
    assert!(matches!(e, CpimError::BadHeader { offset: 11, .. }));
    let e = p("From: <im:a\r@b>\r\n\r\n").unwrap_err();
    assert!(matches!(e, CpimError::BadHeader { offset: 11, .. }));
    let e = Cpim::parse_slice(b"From: <im:\xffa@b>\r\n\r\n", &Limits::default()).unwrap_err();
    assert_eq!(e, CpimError::InvalidUtf8 { offset: 10 });
    let e = p("Subject:;lang <im:a@b>\r\n\r\n").unwrap_err();
    assert!(matches!(e, CpimError::BadHeader { offset: 13, .. }));
    let e = p("a.b.c: x\r\n\r\n").unwrap_err();
    assert!(matches!(e, CpimError::BadHeader { offset: 0, .. }));
    let e = p("From: <im:a@b>\r\n\r\n folded: no\r\n\r\n").unwrap_err();
    assert!(matches!(
        e,
        CpimError::BadHeader {
            offset: 18,
            line: 3,
            ..
        }
    ));
}

#[test]
fn limits_hold() {
    let l = Limits {
        max_headers: 2,
        max_line_len: 20,
        max_body: 4,
    };
    let e = Cpim::parse_slice(b"A: 1\r\nB: 2\r\nC: 3\r\n\r\n", &l).unwrap_err();
    assert_eq!(
        e,
        CpimError::TooManyHeaders {
            offset: 12,
            limit: 2
        }
    );
    let e = Cpim::parse_slice(b"A: 1\r\n\r\nX: 1\r\n y\r\n z\r\n\r\n", &l).unwrap_err();
    assert_eq!(
        e,
        CpimError::TooManyHeaders {
            offset: 18,
            limit: 2
        }
    );
    let e = Cpim::parse_slice(b"A: 123456789012345678901234567890", &l).unwrap_err();
    assert_eq!(
        e,
        CpimError::LineTooLong {
            offset: 0,
            limit: 20
        }
    );
    let e = Cpim::parse_slice(b"A: 123456789012345678\r\n\r\n", &l).unwrap_err();
    assert_eq!(
        e,
        CpimError::LineTooLong {
            offset: 0,
            limit: 20
        }
    );
    assert!(Cpim::parse_slice(b"A: 12345678901234567\r\n\r\n\r\n", &l).is_ok());
    let e = Cpim::parse_slice(b"A: 1\r\n\r\n\r\nhello", &l).unwrap_err();
    assert_eq!(
        e,
        CpimError::BodyTooLarge {
            offset: 10,
            size: 5,
            limit: 4
        }
    );
    let e = Cpim::parse_slice(b"A: 1\r\n\r\nContent-Length: 99\r\n\r\nhi", &l).unwrap_err();
    assert!(matches!(e, CpimError::BodyTooLarge { size: 99, .. }));
}

#[test]
fn folded_mime_header() {
    let s = "From: <im:a@b>\r\n\r\nContent-Type: text/plain;\r\n charset=utf-8\r\n\r\nx";
    let c = p(s).unwrap();
    assert_eq!(c.content_type().unwrap(), "text/plain; charset=utf-8");
    assert_eq!(c.to_bytes(), s.as_bytes());
}

#[test]
fn missing_separator_is_recovered() {
    let s = "To: <sip:r@x>\r\nFrom: <sip:a@x>\r\nContent-Type: text/plain\r\n\r\nHello";
    let c = p(s).unwrap();
    assert_eq!(c.separator(), Separator::Missing);
    assert_eq!(c.headers().len(), 2);
    assert_eq!(c.content_type().unwrap(), "text/plain");
    assert_eq!(c.to_bytes(), s.as_bytes());
}

#[test]
fn typed_accessors() {
    let s = concat!(
        "From: \"Alice \\\"A\\\" \\u00e9\" <sip:alice@example.com>\r\n",
        "To: Bob B <sip:bob@example.com>\r\n",
        "To: sip:carol@example.com\r\n",
        "cc: <im:dave@example.com>\r\n",
        "DateTime: 2000-12-13T13:40:00-08:00\r\n",
        "Subject:;lang=fr Objet\\tde message \r\n",
        "NS: i <urn:ietf:params:imdn>\r\n",
        "i.Message-ID: 34jk324j\r\n",
        "Require: i.Message-ID, Locale.MustRenderKanji\r\n",
        "\r\n",
        "Content-Type: text/plain\r\n\r\nx",
    );
    let c = p(s).unwrap();
    let from = c.from().unwrap().unwrap();
    assert_eq!(from.display.as_deref(), Some("Alice \"A\" é"));
    assert_eq!(from.address.to_string(), "sip:alice@example.com");
    let to = c.to().unwrap();
    assert_eq!(to.len(), 2);
    assert_eq!(to[0].display.as_deref(), Some("Bob B"));
    assert_eq!(to[1].display, None);
    assert_eq!(
        c.cc().unwrap()[0].address.to_string(),
        "im:dave@example.com"
    );
    assert_eq!(
        c.datetime().unwrap().unwrap().to_rfc3339(),
        "2000-12-13T21:40:00Z"
    );
    assert_eq!(
        c.subject(),
        vec![Subject {
            lang: Some("fr".into()),
            text: "Objet\tde message ".into()
        }]
    );
    assert_eq!(c.imdn_message_id().unwrap(), "34jk324j");
    assert_eq!(c.get("imdn.Message-ID").unwrap().name(), "i.Message-ID");
    assert_eq!(c.get("i.Message-ID").unwrap().value(), "34jk324j");
    assert_eq!(c.require(), vec!["i.Message-ID", "Locale.MustRenderKanji"]);
    assert_eq!(
        c.ns().unwrap(),
        vec![NsDecl {
            prefix: Some("i"),
            uri: IMDN_NS
        }]
    );
}

#[test]
fn default_namespace_changes_what_unprefixed_names_mean() {
    let s = "From: <im:a@b>\r\nNS: <http://id.acme.widgets/wily-headers/>\r\nFrom: <im:spoof@b>\r\nrunner-trap: set\r\n\r\n\r\n";
    let c = p(s).unwrap();
    // The second From is in the acme name space, not a duplicate sender.
    assert_eq!(c.from().unwrap().unwrap().address.to_string(), "im:a@b");
    let h = c
        .get_ns("http://id.acme.widgets/wily-headers/", "runner-trap")
        .unwrap();
    assert_eq!(h.value(), "set");
    assert!(c.get("runner-trap").is_none());
}

#[test]
fn typed_errors_name_the_header() {
    let c = p("From: Pooh Bear\r\nDateTime: yesterday\r\n\r\n\r\n").unwrap();
    assert!(
        matches!(c.from(), Err(CpimError::BadValue { ref header, offset: 6, .. }) if header == "From")
    );
    assert!(
        matches!(c.datetime(), Err(CpimError::BadValue { ref header, offset: 27, .. }) if header == "DateTime")
    );
    let c = p("From: <im:a@b>\r\nFrom: <im:c@d>\r\n\r\n\r\n").unwrap();
    assert!(matches!(
        c.from(),
        Err(CpimError::BadValue { offset: 22, .. })
    ));
    let c = p("NS: \"q\" <urn:x>\r\n\r\n\r\n").unwrap();
    assert!(c.ns().is_err());
}
