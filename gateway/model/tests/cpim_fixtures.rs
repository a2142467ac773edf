//! Every CPIM example of RFC 3862, RFC 7701 §9 and seed 003 §9, parsed from
//! the byte-exact files in `tests/fixtures/cpim/` (see its README for the
//! section each comes from).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use bytes::Bytes;
use cpimgate_model::cpim::{
    CPIM_HEADERS_NS, Cpim, CpimError, IMDN_NS, Limits, LineEnding, NsDecl, Separator,
};
use cpimgate_model::message::Subject;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cpim")
}

fn load(name: &str) -> Cpim {
    let raw = std::fs::read(dir().join(name)).unwrap();
    let c = Cpim::parse(Bytes::from(raw.clone()), &Limits::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(c.to_bytes(), raw, "{name}: to_bytes differs from the input");
    assert_eq!(c.as_bytes(), &raw[..]);
    c
}

fn addr(n: &cpimgate_model::NameAddr) -> (Option<&str>, String) {
    (n.display.as_deref(), n.address.to_string())
}

fn text(s: &str) -> Subject {
    Subject {
        lang: None,
        text: s.to_owned(),
    }
}

#[test]
fn every_fixture_round_trips_and_serializes() {
    let mut n = 0;
    for entry in std::fs::read_dir(dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "cpim") {
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            let c = load(&name);
            let json = serde_json::to_value(&c).unwrap();
            assert!(json["headers"].is_array(), "{name}");
            assert!(json["body"].is_string(), "{name}");
            n += 1;
        }
    }
    assert!(n >= 20, "only {n} fixtures");
}

#[test]
fn rfc3862_5_1() {
    let c = load("rfc3862-5.1.cpim");
    assert_eq!(
        addr(&c.from().unwrap().unwrap()),
        (Some("MR SANDERS"), "im:piglet@100akerwood.com".into())
    );
    let to = c.to().unwrap();
    assert_eq!(
        addr(&to[0]),
        (Some("Depressed Donkey"), "im:eeyore@100akerwood.com".into())
    );
    assert!(c.cc().unwrap().is_empty());
    assert_eq!(
        c.datetime().unwrap().unwrap().to_rfc3339(),
        "2000-12-13T21:40:00Z"
    );
    assert_eq!(
        c.subject(),
        vec![
            text("the weather will be fine today"),
            Subject {
                lang: Some("fr".into()),
                text: "beau temps prevu pour aujourd'hui".into()
            }
        ]
    );
    assert_eq!(
        c.ns().unwrap(),
        vec![NsDecl {
            prefix: Some("MyFeatures"),
            uri: "mid:MessageFeatures@id.foo.com"
        }]
    );
    assert_eq!(c.require(), vec!["MyFeatures.VitalMessageOption"]);
    assert_eq!(
        c.get("MyFeatures.VitalMessageOption").unwrap().value(),
        "Confirmation-requested"
    );
    assert_eq!(
        c.get_ns("mid:MessageFeatures@id.foo.com", "WackyMessageOption")
            .unwrap()
            .value(),
        "Use-silly-font"
    );
    assert_eq!(c.headers().len(), 9);
    let mime: Vec<_> = c
        .mime_headers()
        .map(|h| (h.name(), h.value_raw()))
        .collect();
    assert_eq!(
        mime,
        vec![
            ("Content-type", "text/xml; charset=utf-8"),
            ("Content-ID", "<1234567890@foo.com>")
        ]
    );
    assert_eq!(c.content_type().unwrap(), "text/xml; charset=utf-8");
    assert_eq!(
        &c.body()[..],
        b"<body>\r\nHere is the text of my message.\r\n</body>\r\n"
    );
    assert_eq!(c.line_ending(), Some(LineEnding::CrLf));
    assert_eq!(c.separator(), Separator::Blank(LineEnding::CrLf));
    // Spans point into the input.
    let h = c.headers().nth(4).unwrap();
    assert_eq!(h.params_raw(), ";lang=fr ");
    assert_eq!(h.lang().unwrap(), "fr");
    let sp = h.span();
    assert_eq!(
        &c.as_bytes()[sp.start..sp.end],
        b"Subject:;lang=fr beau temps prevu pour aujourd'hui"
    );
}

#[test]
fn rfc3862_5_1_with_lf() {
    let c = load("rfc3862-5.1-lf.cpim");
    let crlf = load("rfc3862-5.1.cpim");
    assert_eq!(c.line_ending(), Some(LineEnding::Lf));
    assert_eq!(c.from().unwrap(), crlf.from().unwrap());
    assert_eq!(c.subject(), crlf.subject());
    assert_eq!(
        &c.body()[..],
        b"<body>\nHere is the text of my message.\n</body>\n"
    );
}

#[test]
fn rfc3862_5_2() {
    let c = load("rfc3862-5.2-signed-part.cpim");
    assert_eq!(c.to().unwrap()[0].display.as_deref(), Some("Dopey Donkey"));
    assert_eq!(
        &c.body()[..],
        b"<body>\r\nHere is the text of my message.\r\n</body>"
    );
}

#[test]
fn rfc3862_2_2_and_2_4() {
    let c = load("rfc3862-2.2-2.4.cpim");
    assert_eq!(
        addr(&c.to().unwrap()[0]),
        (Some("Pooh Bear"), "im:pooh@100akerwood.com".into())
    );
    assert_eq!(
        addr(&c.from().unwrap().unwrap()),
        (None, "im:piglet@100akerwood.com".into())
    );
    assert_eq!(
        c.datetime().unwrap().unwrap().to_rfc3339(),
        "2001-02-02T15:48:54Z"
    );
    assert_eq!(
        c.mime_header("content-id").unwrap().value_raw(),
        "<1234567890@foo.com>"
    );
    assert_eq!(
        &c.body()[..],
        b"This is my encapsulated text message content"
    );
}

#[test]
fn rfc3862_3_3() {
    let c = load("rfc3862-3.3-lang.cpim");
    assert_eq!(
        c.subject(),
        vec![Subject {
            lang: Some("fr".into()),
            text: "Objet de message".into()
        }]
    );
    assert_eq!(c.from().unwrap(), None);
}

#[test]
fn rfc3862_3_4_prefixes_are_local() {
    const ACME: &str = "http://id.acme.widgets/wily-headers/";
    for name in [
        "rfc3862-3.4-ns-acme.cpim",
        "rfc3862-3.4-ns-widget.cpim",
        "rfc3862-3.4-ns-default.cpim",
    ] {
        let c = load(name);
        let h = c.get_ns(ACME, "runner-trap").unwrap();
        assert_eq!(h.value(), "set", "{name}");
        assert_eq!(h.local_name(), "runner-trap");
        let (_, ns, local) = c.resolved().nth(1).unwrap();
        assert_eq!((ns, local), (Some(ACME), "runner-trap"));
    }
    let c = load("rfc3862-3.4-ns-default.cpim");
    assert_eq!(
        c.ns().unwrap(),
        vec![NsDecl {
            prefix: None,
            uri: ACME
        }]
    );
    // The NS header itself is in the CPIM name space.
    let (_, ns, _) = c.resolved().next().unwrap();
    assert_eq!(ns, Some(CPIM_HEADERS_NS));

    let c = load("rfc3862-3.4-ns-prefix.cpim");
    assert_eq!(
        c.get("MyFeatures.WackyMessageOption").unwrap().value(),
        "Use-silly-font"
    );
}

#[test]
fn rfc3862_3_5() {
    let c = load("rfc3862-3.5-require.cpim");
    assert_eq!(c.require(), vec!["MyFeatures.VitalMessageOption"]);
    // The prefix is never declared: the header is found by its name as written.
    let h = c.get("MyFeatures.VitalMessageOption").unwrap();
    assert_eq!(h.value(), "Confirmation-requested");
    let (_, ns, _) = c.resolved().nth(1).unwrap();
    assert_eq!(ns, None);
    let c = load("rfc3862-3.5-require-kanji.cpim");
    assert_eq!(c.require(), vec!["Locale.MustRenderKanji"]);
}

#[test]
fn rfc3862_4() {
    let c = load("rfc3862-4.cpim");
    let pooh = (
        Some("Winnie the Pooh"),
        "im:pooh@100akerwood.com".to_owned(),
    );
    let tigger = (None, "im:tigger@100akerwood.com".to_owned());
    assert_eq!(addr(&c.from().unwrap().unwrap()), pooh);
    let to = c.to().unwrap();
    assert_eq!(
        vec![addr(&to[0]), addr(&to[1])],
        vec![pooh.clone(), tigger.clone()]
    );
    let cc = c.cc().unwrap();
    assert_eq!(vec![addr(&cc[0]), addr(&cc[1])], vec![pooh, tigger]);
    assert_eq!(
        c.datetime().unwrap().unwrap().to_rfc3339(),
        "2001-02-01T17:16:49Z"
    );
    assert_eq!(
        c.subject(),
        vec![Subject {
            lang: Some("en".into()),
            text: "Eeyore's feeling very depressed today".into()
        }]
    );
    assert_eq!(
        c.get("MyAlias.MyHeader").unwrap().value(),
        "private-extension-data"
    );
    assert_eq!(c.require(), vec!["MyAlias.VitalHeader"]);
    assert_eq!(c.content_type().unwrap(), "text/plain; charset=utf-8");
    assert!(c.body().is_empty());

    let c = load("rfc3862-4.1-tigger.cpim");
    assert_eq!(
        addr(&c.from().unwrap().unwrap()),
        (None, "im:tigger@100akerwood.com".into())
    );
}

#[test]
fn rfc7701_9_as_printed() {
    for (name, to, from, body) in [
        (
            "rfc7701-9.3-f1.cpim",
            "sip:chatroom22@chat.example.com;transport=tcp",
            "sip:alice@atlanta.example.com",
            "Hello guys, how are you today?",
        ),
        (
            "rfc7701-9.4-f1.cpim",
            "sip:bob@example.com",
            "sip:alice@example.com",
            "Hello Bob.",
        ),
        (
            "rfc7701-9.4-f3.cpim",
            "sip:bob@example.com",
            "sip:alice@atlanta.example.com",
            "Hello Bob.",
        ),
    ] {
        let c = load(name);
        assert_eq!(c.separator(), Separator::Missing, "{name}");
        assert_eq!(c.headers().len(), 3);
        assert_eq!(c.to().unwrap()[0].address.to_string(), to);
        assert_eq!(c.from().unwrap().unwrap().address.to_string(), from);
        assert_eq!(
            c.datetime().unwrap().unwrap().to_rfc3339(),
            "2009-03-02T18:02:31Z"
        );
        assert_eq!(c.content_type().unwrap(), "text/plain");
        assert_eq!(&c.body()[..], body.as_bytes());
    }
    let printed = load("rfc7701-9.3-f1.cpim");
    let separated = load("rfc7701-9.3-f1-separated.cpim");
    assert_eq!(separated.separator(), Separator::Blank(LineEnding::CrLf));
    assert_eq!(printed.to().unwrap(), separated.to().unwrap());
    assert_eq!(printed.body(), separated.body());
}

#[test]
fn seed003_9() {
    let c = load("seed003-9.3.cpim");
    let from = c.from().unwrap().unwrap();
    assert!(
        from.address
            .to_string()
            .contains("Alice%20in%20wonderland@example.com")
    );
    assert_eq!(
        c.datetime().unwrap().unwrap().to_rfc3339(),
        "2007-03-02T18:02:31Z"
    );
    assert_eq!(&c.body()[..], b"Hello guys, how are you today?");
    let c = load("seed003-9.4.cpim");
    assert!(
        c.to().unwrap()[0]
            .address
            .to_string()
            .contains("Bob%20the%20great")
    );
    assert_eq!(&c.body()[..], b"Hello Bob.");
}

#[test]
fn imdn() {
    let c = load("imdn.cpim");
    assert_eq!(c.imdn_message_id().unwrap(), "34jk324j");
    assert_eq!(c.get("imdn.Message-ID").unwrap().value(), "34jk324j");
    assert_eq!(
        c.get_ns(IMDN_NS, "Disposition-Notification")
            .unwrap()
            .value(),
        "positive-delivery, display"
    );
    assert_eq!(&c.body()[..], b"Hello World");
    assert_eq!(c.trailer(), b"\r\n");
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["imdn_message_id"], "34jk324j");
    assert_eq!(json["trailer"], "\r\n");
    assert_eq!(json["ns"]["imdn"], IMDN_NS);
    assert_eq!(json["from"]["display"], "Alice");
    assert_eq!(json["datetime"], "2006-04-04T17:16:49Z");
    assert_eq!(json["problems"], serde_json::json!([]));
}

#[test]
fn truncated_fixture_fails_with_offset() {
    let raw = std::fs::read(dir().join("truncated.cpim.bad")).unwrap();
    let e = Cpim::parse_slice(&raw, &Limits::default()).unwrap_err();
    assert_eq!(
        e,
        CpimError::Truncated {
            offset: raw.len(),
            expected: "blank line after the MIME headers of the encapsulated part"
        }
    );
    assert!(e.to_string().contains(&raw.len().to_string()));
}

#[test]
fn every_prefix_of_a_fixture_is_an_error_or_a_shorter_body() {
    let raw = std::fs::read(dir().join("rfc3862-5.1.cpim")).unwrap();
    let body_start = raw.len() - b"<body>\r\nHere is the text of my message.\r\n</body>\r\n".len();
    for cut in 0..raw.len() {
        match Cpim::parse_slice(&raw[..cut], &Limits::default()) {
            Ok(c) => {
                assert!(cut >= body_start, "cut {cut} parsed");
                assert_eq!(c.to_bytes(), &raw[..cut]);
            }
            Err(CpimError::Truncated { offset, .. }) => assert_eq!(offset, cut),
            Err(e) => panic!("cut {cut}: {e}"),
        }
    }
}
