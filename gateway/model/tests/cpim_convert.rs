//! Message <-> message/cpim (convert.rs).
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use cpimgate_model::cpim::{Cpim, CpimError, IMDN_NS, Limits};
use cpimgate_model::message::Subject;
use cpimgate_model::time::Timestamp;
use cpimgate_model::{Message, MessageId, NameAddr, Origin, World};

fn origin() -> Origin {
    Origin {
        world: World::Msrp,
        adapter: "msrp0".into(),
        native_id: None,
    }
}

fn fixture(name: &str) -> Bytes {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cpim")
        .join(name);
    Bytes::from(std::fs::read(p).unwrap())
}

#[test]
fn from_cpim_fills_the_message_and_keeps_the_bytes() {
    let raw = fixture("rfc3862-5.1.cpim");
    let m = Message::from_cpim(raw.clone(), origin(), &Limits::default()).unwrap();
    assert_eq!(m.from.display.as_deref(), Some("MR SANDERS"));
    assert_eq!(m.from.address.to_string(), "im:piglet@100akerwood.com");
    assert_eq!(m.to.len(), 1);
    assert_eq!(
        m.datetime,
        Some(Timestamp::parse_rfc3339("2000-12-13T13:40:00-08:00").unwrap())
    );
    assert_eq!(m.subject.len(), 2);
    assert_eq!(m.subject[1].lang.as_deref(), Some("fr"));
    assert_eq!(m.content_type, "text/xml; charset=utf-8");
    assert_eq!(
        m.body.as_bytes(),
        b"<body>\r\nHere is the text of my message.\r\n</body>\r\n"
    );
    assert_eq!(m.cpim.as_ref().unwrap().0, raw);
    assert_eq!(m.origin, origin());
    // Byte for byte out again (RFC 3428 §11.5).
    assert_eq!(m.to_cpim(), raw);
}

#[test]
fn id_comes_from_imdn_message_id() {
    let m = Message::from_cpim(fixture("imdn.cpim"), origin(), &Limits::default()).unwrap();
    assert_eq!(m.id, MessageId::from("34jk324j"));
    assert_eq!(m.body.as_bytes(), b"Hello World");
    assert_eq!(m.content_type, "text/plain");

    // Any prefix bound to the IMDN name space will do.
    let raw = "From: <im:a@b.example>\r\nNS: x <urn:ietf:params:imdn>\r\nx.Message-ID: abc\r\n\r\nContent-Type: text/plain\r\n\r\nhi";
    let m = Message::from_cpim(Bytes::from(raw), origin(), &Limits::default()).unwrap();
    assert_eq!(m.id.as_str(), "abc");

    // A prefix bound elsewhere is not IMDN.
    let raw = "From: <im:a@b.example>\r\nNS: imdn <urn:example:other>\r\nimdn.Message-ID: abc\r\n\r\n\r\nhi";
    let m = Message::from_cpim(Bytes::from(raw), origin(), &Limits::default()).unwrap();
    assert_ne!(m.id.as_str(), "abc");
    assert_eq!(m.content_type, "text/plain");
}

#[test]
fn from_cpim_errors() {
    let l = Limits::default();
    let e = Message::from_cpim(fixture("rfc3862-3.3-lang.cpim"), origin(), &l).unwrap_err();
    assert_eq!(e, CpimError::MissingHeader { header: "From" });
    let e = Message::from_cpim(fixture("truncated.cpim.bad"), origin(), &l).unwrap_err();
    assert!(matches!(e, CpimError::Truncated { .. }));
    let raw = "From: <im:a@b.example>\r\nTo: nobody\r\n\r\n\r\n";
    let e = Message::from_cpim(Bytes::from(raw), origin(), &l).unwrap_err();
    assert!(matches!(e, CpimError::BadValue { ref header, offset: 28, .. } if header == "To"));
}

#[test]
fn every_fixture_converts_and_goes_out_unchanged() {
    for entry in std::fs::read_dir(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cpim"),
    )
    .unwrap()
    {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "cpim") {
            continue;
        }
        let raw = Bytes::from(std::fs::read(&path).unwrap());
        let Ok(m) = Message::from_cpim(raw.clone(), origin(), &Limits::default()) else {
            // Header-only examples without From cannot be a Message.
            assert!(
                Cpim::parse(raw, &Limits::default())
                    .unwrap()
                    .from()
                    .unwrap()
                    .is_none()
            );
            continue;
        };
        assert_eq!(m.to_cpim(), raw, "{}", path.display());
    }
}

#[test]
fn to_cpim_renders_a_new_message() {
    let from: NameAddr = "<im:alice@atlanta.example.com>".parse().unwrap();
    let to: NameAddr = "<sip:bob@biloxi.example.com>".parse().unwrap();
    let mut m = Message::text(origin(), from.clone(), to.clone(), "Hé \"you\"\r\nline 2");
    m.from.display = Some("Alice \"A\"".into());
    m.cc = vec!["<im:carol@example.com>".parse().unwrap()];
    m.subject = vec![Subject {
        lang: Some("en".into()),
        text: "greetings\\".into(),
    }];
    m.datetime = Some(Timestamp::parse_rfc3339("2009-03-02T15:02:31.5-03:00").unwrap());
    m.id = MessageId::from("id-1");
    let out = m.to_cpim();
    let text = std::str::from_utf8(&out).unwrap();
    assert_eq!(
        text,
        concat!(
            "From: \"Alice \\\"A\\\"\" <im:alice@atlanta.example.com>\r\n",
            "To: <sip:bob@biloxi.example.com>\r\n",
            "cc: <im:carol@example.com>\r\n",
            "DateTime: 2009-03-02T18:02:31.500Z\r\n",
            "Subject:;lang=en greetings\\\\\r\n",
            "NS: imdn <urn:ietf:params:imdn>\r\n",
            "imdn.Message-ID: id-1\r\n",
            "\r\n",
            "Content-Type: text/plain;charset=utf-8\r\n",
            "\r\n",
            "Hé \"you\"\r\nline 2",
        )
    );
    let back = Message::from_cpim(out.clone(), origin(), &Limits::default()).unwrap();
    assert_eq!(back.id, m.id);
    assert_eq!(back.from, m.from);
    assert_eq!(back.to, m.to);
    assert_eq!(back.cc, m.cc);
    assert_eq!(back.datetime, m.datetime);
    assert_eq!(back.subject, m.subject);
    assert_eq!(back.content_type, m.content_type);
    assert_eq!(back.body, m.body);
    assert_eq!(back.cpim.as_ref().unwrap().0, out);
    let c = Cpim::parse(out, &Limits::default()).unwrap();
    assert_eq!(c.get_ns(IMDN_NS, "Message-ID").unwrap().value(), "id-1");
}
