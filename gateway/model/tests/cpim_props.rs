//! Property tests of the message/cpim codec: losslessness, no panics,
//! builder output reads back.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use cpimgate_model::NameAddr;
use cpimgate_model::cpim::{Cpim, CpimBuilder, Limits};
use cpimgate_model::message::Subject;
use cpimgate_model::time::Timestamp;
use proptest::prelude::*;

fn eol() -> impl Strategy<Value = &'static str> {
    prop_oneof![3 => Just("\r\n"), 1 => Just("\n")]
}

/// A CPIM header line (without its ending) that the parser must accept.
fn cpim_line() -> impl Strategy<Value = String> {
    let name = "[A-Za-z][A-Za-z0-9_-]{0,12}(\\.[A-Za-z][A-Za-z0-9-]{0,12})?";
    // Any printable text, non-ASCII included, no control characters.
    let value = "[ -~\u{a0}-\u{2fff}😀]{0,40}";
    prop_oneof![
        (name, value).prop_map(|(n, v)| format!("{n}: {v}")),
        ("[a-z]{2}(-[A-Z]{2})?", value).prop_map(|(l, v)| format!("Subject:;lang={l} {v}")),
        "[a-z]{1,8}@[a-z]{1,8}\\.example"
            .prop_map(|a| format!("From: \"Some \\\"one\\\"\" <im:{a}>")),
        Just("DateTime: 2000-12-13T13:40:00-08:00".to_owned()),
        Just("NS: MyFeatures <mid:MessageFeatures@id.foo.com>".to_owned()),
        // No space after the colon: tolerated, as long as no ';' follows.
        (name, "[!-:<-~][ -~]{0,20}").prop_map(|(n, v)| format!("{n}:{v}")),
    ]
}

fn mime_line() -> impl Strategy<Value = String> {
    prop_oneof![
        ("[A-Za-z][A-Za-z0-9-]{0,12}", "[ -~]{0,30}").prop_map(|(n, v)| format!("{n}: {v}")),
        Just("Content-Type: text/plain; charset=utf-8".to_owned()),
        Just("Content-ID: <1234567890@foo.com>".to_owned()),
    ]
}

/// A valid message/cpim body, with line endings mixed at random.
fn message() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec((cpim_line(), eol()), 0..12),
        eol(),
        prop::collection::vec((mime_line(), eol()), 0..5),
        prop::option::of(("[ \t][ -~]{0,20}", eol())),
        eol(),
        prop::collection::vec(any::<u8>(), 0..200),
        prop::option::of(0usize..300),
    )
        .prop_map(|(cpim, sep, mime, fold, sep2, body, cl)| {
            let mut out = Vec::new();
            for (l, e) in &cpim {
                out.extend_from_slice(l.as_bytes());
                out.extend_from_slice(e.as_bytes());
            }
            out.extend_from_slice(sep.as_bytes());
            for (l, e) in &mime {
                out.extend_from_slice(l.as_bytes());
                out.extend_from_slice(e.as_bytes());
            }
            if let (Some((f, e)), false) = (&fold, mime.is_empty()) {
                out.extend_from_slice(f.as_bytes());
                out.extend_from_slice(e.as_bytes());
            }
            if let Some(n) = cl {
                let n = n.min(body.len());
                out.extend_from_slice(format!("Content-Length: {n}\r\n").as_bytes());
            }
            out.extend_from_slice(sep2.as_bytes());
            out.extend_from_slice(&body);
            out
        })
}

fn name_addr() -> impl Strategy<Value = NameAddr> {
    (
        "[a-z][a-z0-9]{0,8}",
        "[a-z][a-z0-9]{0,8}\\.example",
        prop::option::of(any::<String>()),
    )
        .prop_map(|(user, host, display)| {
            let mut n: NameAddr = format!("<im:{user}@{host}>").parse().unwrap();
            n.display = display;
            n
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn valid_messages_round_trip(raw in message()) {
        let c = Cpim::parse_slice(&raw, &Limits::default())
            .map_err(|e| TestCaseError::fail(format!("{e}: {:?}", String::from_utf8_lossy(&raw))))?;
        prop_assert_eq!(&c.to_bytes()[..], &raw[..]);
        // Typed accessors and JSON never panic, whatever they find, and the
        // one-pass reader agrees with the single accessors.
        let _ = (c.ns(), c.require());
        match (c.from(), c.to(), c.cc(), c.datetime(), c.fields()) {
            (Ok(from), Ok(to), Ok(cc), Ok(datetime), Ok(f)) => {
                prop_assert_eq!(f.from, from);
                prop_assert_eq!(f.to, to);
                prop_assert_eq!(f.cc, cc);
                prop_assert_eq!(f.datetime, datetime);
                prop_assert_eq!(f.subject, c.subject());
            }
            (.., f) => prop_assert!(f.is_err()),
        }
        let _ = serde_json::to_string(&c).unwrap();
    }

    #[test]
    fn arbitrary_bytes_never_panic(raw in prop::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(c) = Cpim::parse_slice(&raw, &Limits::default()) {
            prop_assert_eq!(&c.to_bytes()[..], &raw[..]);
            let _ = (c.from(), c.to(), c.cc(), c.datetime(), c.subject(), c.ns(), c.require());
            let _ = serde_json::to_string(&c).unwrap();
        }
    }

    #[test]
    fn mutated_messages_never_panic(
        raw in message(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut raw = raw;
        for (i, b) in edits {
            if !raw.is_empty() {
                let at = i.index(raw.len());
                raw[at] = b;
            }
        }
        let limits = Limits { max_headers: 8, max_line_len: 64, max_body: 128 };
        if let Ok(c) = Cpim::parse_slice(&raw, &limits) {
            prop_assert_eq!(&c.to_bytes()[..], &raw[..]);
            let _ = (c.from(), c.to(), c.cc(), c.datetime(), c.subject(), c.ns(), c.require());
        }
    }

    #[test]
    fn builder_output_reads_back(
        from in name_addr(),
        to in prop::collection::vec(name_addr(), 0..3),
        cc in prop::collection::vec(name_addr(), 0..2),
        micros in -62_000_000_000_000_000i64..253_000_000_000_000_000,
        subjects in prop::collection::vec((any::<String>(), prop::option::of("[a-z]{2}(-[A-Z]{2})?")), 0..3),
        ext in any::<String>(),
        body in prop::collection::vec(any::<u8>(), 0..100),
    ) {
        let dt = Timestamp { unix_micros: micros };
        let mut b = CpimBuilder::new().from(&from);
        for t in &to { b = b.to(t); }
        for t in &cc { b = b.cc(t); }
        b = b.datetime(dt);
        for (text, lang) in &subjects { b = b.subject(text, lang.as_deref()); }
        b = b.ns(Some("X"), "urn:example:x").unwrap().header("X.Ext", &ext).unwrap();
        let out = b.content_type("application/octet-stream").body(Bytes::from(body.clone())).build();

        let c = Cpim::parse(out.clone(), &Limits::default())
            .map_err(|e| TestCaseError::fail(format!("{e}: {:?}", String::from_utf8_lossy(&out))))?;
        prop_assert_eq!(c.line_ending(), Some(cpimgate_model::cpim::LineEnding::CrLf));
        let norm = |n: &NameAddr| NameAddr {
            display: n.display.clone().filter(|d| !d.is_empty()),
            address: n.address.clone(),
        };
        prop_assert_eq!(c.from().unwrap(), Some(norm(&from)));
        prop_assert_eq!(c.to().unwrap(), to.iter().map(norm).collect::<Vec<_>>());
        prop_assert_eq!(c.cc().unwrap(), cc.iter().map(norm).collect::<Vec<_>>());
        prop_assert_eq!(c.datetime().unwrap(), Some(dt));
        let want: Vec<Subject> = subjects
            .iter()
            .map(|(t, l)| Subject { lang: l.clone(), text: t.trim_end_matches(' ').to_owned() })
            .collect();
        prop_assert_eq!(c.subject(), want);
        let got_ext = c.get_ns("urn:example:x", "Ext").unwrap().value().into_owned();
        prop_assert_eq!(got_ext, ext.trim_end_matches(' '));
        prop_assert_eq!(c.content_type().unwrap(), "application/octet-stream");
        prop_assert_eq!(&c.body()[..], &body[..]);
    }
}
