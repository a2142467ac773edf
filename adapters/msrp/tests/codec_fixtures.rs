//! Byte fixtures: every MSRP message of RFC 4975 (§4, §5.1, §11), RFC 7701
//! §9, draft-ietf-simple-chat-00 §9 (the seed of RFC 7701) and RFC 4976
//! §5 and §7.1, plus malformed messages with the error each gets (see
//! fixtures/README.md for the provenance of each file).

// The helpers below are not #[test] functions to clippy.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use cpimgate_msrp::codec::{
    ByteRange, Chunk, Continuation, FailureReport, HeaderName, Limits, OwnedMessage, Reassembler,
    ReassemblyError, ReassemblyEvent, ReassemblyLimits, Scheme, StartLine, StreamFramer,
    SuccessReport, parse,
};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn fixture(name: &str) -> Vec<u8> {
    let p = dir().join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn fixture_names(bad: bool) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .expect("fixtures directory")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".msrp") && n.ends_with(".bad.msrp") == bad)
        .collect();
    names.sort();
    names
}

/// What the specification shows of a message, read back through the
/// typed accessors.
struct Expect {
    file: &'static str,
    /// The section the message is printed in.
    section: &'static str,
    tid: &'static str,
    start: StartLine<'static>,
    /// Session-id of each URI of To-Path, then of From-Path.
    to: &'static [&'static str],
    from: &'static [&'static str],
    message_id: Option<&'static str>,
    byte_range: Option<&'static str>,
    /// Status header: namespace, code, comment.
    status: Option<(u16, u16, &'static str)>,
    nickname: Option<&'static str>,
    /// None: no body; otherwise its first and last bytes.
    body: Option<(&'static str, &'static str)>,
    flag: Continuation,
    /// Whether [`Message::validate`] accepts it.
    valid: bool,
}

const SEND: StartLine<'static> = StartLine::Request { method: "SEND" };
const REPORT: StartLine<'static> = StartLine::Request { method: "REPORT" };
const NICKNAME: StartLine<'static> = StartLine::Request { method: "NICKNAME" };
const AUTH: StartLine<'static> = StartLine::Request { method: "AUTH" };
const fn resp(code: u16, comment: &'static str) -> StartLine<'static> {
    StartLine::Response {
        code,
        comment: Some(comment),
    }
}
const OK: StartLine<'static> = resp(200, "OK");

const E: Expect = Expect {
    file: "",
    section: "",
    tid: "",
    start: SEND,
    to: &[],
    from: &[],
    message_id: None,
    byte_range: None,
    status: None,
    nickname: None,
    body: None,
    flag: Continuation::Complete,
    valid: true,
};

// Session-ids of RFC 4975 §11 and RFC 7701 §9.
const BOB: &[&str] = &["9di4eae923wzd"];
const ALICE: &[&str] = &["iau39soe2843z"];
const SWITCH: &[&str] = &["kjhd37s2s20w2a"];
const CLIENT: &[&str] = &["jshA7weztas"];
const BOB_CLIENT: &[&str] = &["49dufdje2"];
const SWITCH_BOB: &[&str] = &["jofofo3"];

const GOOD: &[Expect] = &[
    Expect {
        file: "rfc4975-4-fig2-send.msrp",
        section: "RFC 4975 §4, Figure 2",
        tid: "a786hjs2",
        to: SWITCH,
        from: CLIENT,
        message_id: Some("87652491"),
        byte_range: Some("1-25/25"),
        body: Some(("Hey", "there?")),
        ..E
    },
    Expect {
        file: "rfc4975-4-fig2-200.msrp",
        section: "RFC 4975 §4, Figure 2",
        tid: "a786hjs2",
        start: OK,
        to: CLIENT,
        from: SWITCH,
        ..E
    },
    Expect {
        file: "rfc4975-5.1-fig3-chunk1.msrp",
        section: "RFC 4975 §5.1, Figure 3 (a snippet: no To-Path or From-Path)",
        tid: "dkei38sd",
        message_id: Some("4564dpWd"),
        byte_range: Some("1-*/8"),
        body: Some(("abcd", "abcd")),
        flag: Continuation::More,
        valid: false,
        ..E
    },
    Expect {
        file: "rfc4975-5.1-fig3-chunk2.msrp",
        section: "RFC 4975 §5.1, Figure 3 (a snippet: no To-Path or From-Path)",
        tid: "dkei38ia",
        message_id: Some("4564dpWd"),
        byte_range: Some("5-8/8"),
        body: Some(("EFGH", "EFGH")),
        valid: false,
        ..E
    },
    Expect {
        file: "rfc4975-11.1-m4-send.msrp",
        section: "RFC 4975 §11.1, message 4",
        tid: "d93kswow",
        to: BOB,
        from: ALICE,
        message_id: Some("12339sdqwer"),
        byte_range: Some("1-16/16"),
        body: Some(("Hi,", "Alice!")),
        ..E
    },
    Expect {
        file: "rfc4975-11.1-m5-200.msrp",
        section: "RFC 4975 §11.1, message 5",
        tid: "d93kswow",
        start: OK,
        to: ALICE,
        from: BOB,
        ..E
    },
    Expect {
        file: "rfc4975-11.1-m6-send.msrp",
        section: "RFC 4975 §11.1, message 6",
        tid: "dkei38sd",
        to: ALICE,
        from: BOB,
        message_id: Some("456s9wlk3"),
        byte_range: Some("1-21/21"),
        body: Some(("Hi, Alice!  ", "Bob!")),
        ..E
    },
    Expect {
        file: "rfc4975-11.1-m7-200.msrp",
        section: "RFC 4975 §11.1, message 7",
        tid: "dkei38sd",
        start: OK,
        to: BOB,
        from: ALICE,
        ..E
    },
    Expect {
        file: "rfc4975-11.2-fig13-xhtml.msrp",
        section: "RFC 4975 §11.2, Figure 13",
        tid: "dsdfoe38sd",
        to: ALICE,
        from: BOB,
        message_id: Some("456so39s"),
        byte_range: Some("1-374/374"),
        body: Some(("<?xml", "</html>")),
        ..E
    },
    Expect {
        file: "rfc4975-11.4-fig14-chunk1.msrp",
        section: "RFC 4975 §11.4, Figure 14",
        tid: "d93kswow",
        to: BOB,
        from: ALICE,
        message_id: Some("12339sdqwer"),
        byte_range: Some("1-137/148"),
        body: Some(("To: Bob", "ABCD")),
        flag: Continuation::More,
        ..E
    },
    Expect {
        file: "rfc4975-11.4-fig15-chunk2.msrp",
        section: "RFC 4975 §11.4, Figure 15",
        tid: "op2nc9a",
        to: BOB,
        from: ALICE,
        message_id: Some("12339sdqwer"),
        byte_range: Some("138-148/148"),
        body: Some(("1234567890", "1234567890")),
        ..E
    },
    Expect {
        file: "rfc4975-11.5-system.msrp",
        section: "RFC 4975 §11.5",
        tid: "d93kswow",
        to: BOB,
        from: ALICE,
        message_id: Some("12339sdqwer"),
        byte_range: Some("1-38/38"),
        body: Some(("This conference", "minutes")),
        ..E
    },
    Expect {
        file: "rfc4975-11.6-fig16-send.msrp",
        section: "RFC 4975 §11.6, Figure 16",
        tid: "d93kswow",
        to: BOB,
        from: ALICE,
        message_id: Some("12339sdqwer"),
        byte_range: Some("1-106/106"),
        body: Some(("<html>", "</html>")),
        ..E
    },
    Expect {
        file: "rfc4975-11.6-fig17-report.msrp",
        section: "RFC 4975 §11.6, Figure 17",
        tid: "dkei38sd",
        start: REPORT,
        to: ALICE,
        from: BOB,
        message_id: Some("12339sdqwer"),
        byte_range: Some("1-106/106"),
        status: Some((0, 200, "OK")),
        ..E
    },
    Expect {
        file: "rfc7701-9.2-f1-nickname.msrp",
        section: "RFC 7701 §9.2, F1",
        tid: "d93kswow",
        start: NICKNAME,
        to: SWITCH,
        from: CLIENT,
        nickname: Some("Alice the great"),
        ..E
    },
    Expect {
        file: "rfc7701-9.2-f2-425.msrp",
        section: "RFC 7701 §9.2, F2",
        tid: "d93kswow",
        start: resp(425, "Nickname reserved or already in use"),
        to: CLIENT,
        from: SWITCH,
        ..E
    },
    Expect {
        file: "rfc7701-9.2-f3-nickname.msrp",
        section: "RFC 7701 §9.2, F3",
        tid: "09swk2d",
        start: NICKNAME,
        to: SWITCH,
        from: CLIENT,
        nickname: Some("Alice in Wonderland"),
        ..E
    },
    Expect {
        file: "rfc7701-9.2-f4-200.msrp",
        section: "RFC 7701 §9.2, F4",
        tid: "09swk2d",
        start: OK,
        to: CLIENT,
        from: SWITCH,
        ..E
    },
    Expect {
        file: "rfc7701-9.3-f1-send.msrp",
        section: "RFC 7701 §9.3, F1",
        tid: "3490visdm",
        to: SWITCH,
        from: CLIENT,
        message_id: Some("99s9s2"),
        byte_range: Some("1-*/*"),
        body: Some(("To: <sip:chatroom22", "today?")),
        ..E
    },
    Expect {
        file: "rfc7701-9.3-f2-200.msrp",
        section: "RFC 7701 §9.3, F2",
        tid: "3490visdm",
        start: OK,
        to: CLIENT,
        from: SWITCH,
        message_id: Some("99s9s2"),
        ..E
    },
    Expect {
        file: "rfc7701-9.3-f3-send.msrp",
        section: "RFC 7701 §9.3, F3",
        tid: "490ej23",
        to: BOB_CLIENT,
        from: SWITCH_BOB,
        message_id: Some("304sse2"),
        byte_range: Some("1-*/*"),
        body: Some(("To: <sip:chatroom22", "today?")),
        ..E
    },
    Expect {
        file: "rfc7701-9.4-f1-send.msrp",
        section: "RFC 7701 §9.4, F1",
        tid: "6959ssdf",
        to: SWITCH,
        from: CLIENT,
        message_id: Some("okj3kw"),
        byte_range: Some("1-*/*"),
        body: Some(("To: <sip:bob@example.com>", "Hello Bob.")),
        ..E
    },
    Expect {
        file: "rfc7701-9.4-f2-200.msrp",
        section: "RFC 7701 §9.4, F2 (its transaction id differs from F1's, as printed)",
        tid: "6959ssdfm",
        start: OK,
        to: CLIENT,
        from: SWITCH,
        message_id: Some("okj3kw"),
        ..E
    },
    Expect {
        file: "rfc7701-9.4-f3-send.msrp",
        section: "RFC 7701 §9.4, F3",
        tid: "9v9s2",
        to: BOB_CLIENT,
        from: SWITCH_BOB,
        message_id: Some("d9fghe982"),
        byte_range: Some("1-*/*"),
        body: Some(("To: <sip:bob@example.com>", "Hello Bob.")),
        ..E
    },
    Expect {
        file: "rfc7701-9.4-f4-200.msrp",
        section: "RFC 7701 §9.4, F4",
        tid: "9v9s2",
        start: OK,
        to: SWITCH_BOB,
        from: BOB_CLIENT,
        message_id: Some("d9fghe982"),
        ..E
    },
    Expect {
        file: "rfc7701-9.5-chunk1.msrp",
        section: "RFC 7701 §9.5, first chunk (ended by $ as printed)",
        tid: "7443ruls",
        to: SWITCH,
        from: CLIENT,
        message_id: Some("aft4to"),
        byte_range: Some("1-*/174"),
        body: Some(("To: <sip:bob@example.com>", "<sip:alice@example.com>")),
        ..E
    },
    Expect {
        file: "rfc7701-9.5-chunk2.msrp",
        section: "RFC 7701 §9.5, second chunk",
        tid: "7443ruls",
        to: SWITCH,
        from: CLIENT,
        message_id: Some("aft4to"),
        byte_range: Some("68-174/174"),
        body: Some(("DateTime:", "Hello Bob")),
        ..E
    },
    Expect {
        file: "draft-simple-chat-00-9.2-f1-nickname.msrp",
        section: "draft-ietf-simple-chat-00 §9.2, Figure 10",
        tid: "d93kswow",
        start: NICKNAME,
        to: SWITCH,
        from: CLIENT,
        nickname: Some("sip:Alice%20the%great@example.com"),
        ..E
    },
    Expect {
        file: "draft-simple-chat-00-9.2-f2-423.msrp",
        section: "draft-ietf-simple-chat-00 §9.2, Figure 11",
        tid: "d93kswow",
        start: resp(423, "Nickname usage failed"),
        to: CLIENT,
        from: SWITCH,
        ..E
    },
    Expect {
        file: "draft-simple-chat-00-9.2-f3-nickname.msrp",
        section: "draft-ietf-simple-chat-00 §9.2, Figure 12",
        tid: "09swk2d",
        start: NICKNAME,
        to: SWITCH,
        from: CLIENT,
        nickname: Some("sip:Alice%20in%20wonderland@example.com"),
        ..E
    },
    Expect {
        file: "draft-simple-chat-00-9.2-f4-200.msrp",
        section: "draft-ietf-simple-chat-00 §9.2, Figure 13",
        tid: "09swk2d",
        start: OK,
        to: CLIENT,
        from: SWITCH,
        ..E
    },
    Expect {
        file: "draft-simple-chat-00-9.3-f1-send.msrp",
        section: "draft-ietf-simple-chat-00 §9.3, Figure 15",
        tid: "3490visdm",
        to: SWITCH,
        from: CLIENT,
        message_id: Some("99s9s2"),
        byte_range: Some("1-*/*"),
        body: Some(("To: <sip:chatroom22", "today?")),
        ..E
    },
    Expect {
        file: "draft-simple-chat-00-9.3-f2-200.msrp",
        section: "draft-ietf-simple-chat-00 §9.3, Figure 16",
        tid: "3490visdm",
        start: OK,
        to: CLIENT,
        from: SWITCH,
        message_id: Some("99s9s2"),
        byte_range: Some("1-*/*"),
        ..E
    },
    Expect {
        file: "draft-simple-chat-00-9.3-f3-send.msrp",
        section: "draft-ietf-simple-chat-00 §9.3, Figure 17",
        tid: "490ej23",
        to: BOB_CLIENT,
        from: SWITCH_BOB,
        message_id: Some("304sse2"),
        byte_range: Some("1-*/*"),
        body: Some(("To: <sip:chatroom22", "today?")),
        ..E
    },
    Expect {
        file: "draft-simple-chat-00-9.4-f1-send.msrp",
        section: "draft-ietf-simple-chat-00 §9.4, Figure 19",
        tid: "6959ssdf",
        to: SWITCH,
        from: CLIENT,
        message_id: Some("okj3kw"),
        byte_range: Some("1-*/*"),
        body: Some(("To: <sip:Bob%20the%20great", "Hello Bob.")),
        ..E
    },
    Expect {
        file: "draft-simple-chat-00-9.4-f2-200.msrp",
        section: "draft-ietf-simple-chat-00 §9.4, Figure 20",
        tid: "6959ssdfm",
        start: OK,
        to: CLIENT,
        from: SWITCH,
        message_id: Some("okj3kw"),
        byte_range: Some("1-*/*"),
        ..E
    },
    Expect {
        file: "draft-simple-chat-00-9.4-f3-send.msrp",
        section: "draft-ietf-simple-chat-00 §9.4, Figure 21",
        tid: "9v9s2",
        to: BOB_CLIENT,
        from: SWITCH_BOB,
        message_id: Some("d9fghe982"),
        byte_range: Some("1-*/*"),
        body: Some(("To: <sip:Bob%20the%20great", "Hello Bob.")),
        ..E
    },
    Expect {
        file: "rfc4976-5-send-alice-a.msrp",
        section: "RFC 4976 §5, SEND Alice -> relay A",
        tid: "6aef",
        to: &["kjfjan", "aeiug", "foo"],
        from: &["bar"],
        message_id: Some("87652"),
        byte_range: Some("1-*/*"),
        body: Some(("Hi Bob", "file.mpeg")),
        ..E
    },
    Expect {
        file: "rfc4976-5-200-a-alice.msrp",
        section: "RFC 4976 §5, 200 relay A -> Alice",
        tid: "6aef",
        start: OK,
        to: &["bar"],
        from: &["kjfjan"],
        message_id: Some("87652"),
        ..E
    },
    Expect {
        file: "rfc4976-5-send-a-b.msrp",
        section: "RFC 4976 §5, SEND relay A -> relay B",
        tid: "juh76",
        to: &["aeiug", "foo"],
        from: &["kjfjan", "bar"],
        message_id: Some("87652"),
        byte_range: Some("1-*/*"),
        body: Some(("Hi Bob", "file.mpeg")),
        ..E
    },
    Expect {
        file: "rfc4976-5-200-b-a.msrp",
        section: "RFC 4976 §5, 200 relay B -> relay A",
        tid: "juh76",
        start: OK,
        to: &["kjfjan"],
        from: &["aeiug"],
        message_id: Some("87652"),
        ..E
    },
    Expect {
        file: "rfc4976-5-send-b-bob.msrp",
        section: "RFC 4976 §5, SEND relay B -> Bob",
        tid: "xght6",
        to: &["foo"],
        from: &["aeiug", "kjfjan", "bar"],
        message_id: Some("87652"),
        byte_range: Some("1-*/*"),
        body: Some(("Hi Bob", "file.mpeg")),
        ..E
    },
    Expect {
        file: "rfc4976-5-report-bob-b.msrp",
        section: "RFC 4976 §5, REPORT Bob -> relay B",
        tid: "yh67",
        start: REPORT,
        to: &["aeiug", "kjfjan", "bar"],
        from: &["foo"],
        message_id: Some("87652"),
        byte_range: Some("1-39/39"),
        status: Some((0, 200, "OK")),
        ..E
    },
    Expect {
        file: "rfc4976-5-report-b-a.msrp",
        section: "RFC 4976 §5, REPORT relay B -> relay A",
        tid: "yh67",
        start: REPORT,
        to: &["kjfjan", "bar"],
        from: &["aeiug", "foo"],
        message_id: Some("87652"),
        byte_range: Some("1-39/39"),
        status: Some((0, 200, "OK")),
        ..E
    },
    Expect {
        file: "rfc4976-5-report-a-alice.msrp",
        section: "RFC 4976 §5, REPORT relay A -> Alice",
        tid: "yh67",
        start: REPORT,
        to: &["bar"],
        from: &["kjfjan", "aeiug", "foo"],
        message_id: Some("87652"),
        byte_range: Some("1-39/39"),
        status: Some((0, 200, "OK")),
        ..E
    },
    Expect {
        file: "rfc4976-7.1-auth.msrp",
        section: "RFC 4976 §7.1, AUTH (a relay URI has no session-id)",
        tid: "49fh",
        start: AUTH,
        to: &[""],
        from: &["98cjs"],
        ..E
    },
    Expect {
        file: "rfc4976-7.1-401.msrp",
        section: "RFC 4976 §7.1, 401",
        tid: "49fh",
        start: resp(401, "Unauthorized"),
        to: &["98cjs"],
        from: &[""],
        ..E
    },
];

#[test]
fn every_fixture_is_listed() {
    let listed: Vec<&str> = GOOD.iter().map(|e| e.file).collect();
    for name in fixture_names(false) {
        assert!(listed.contains(&name.as_str()), "{name} has no expectation");
    }
    for e in GOOD {
        assert!(!e.section.is_empty(), "{}", e.file);
    }
}

fn session_ids(path: Option<Vec<cpimgate_msrp::codec::MsrpUri<'_>>>) -> Vec<String> {
    path.unwrap_or_default()
        .iter()
        .map(|u| u.session_id().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn good_fixtures_parse_and_print_back() {
    for e in GOOD {
        let bytes = fixture(e.file);
        let ctx = format!("{} ({})", e.file, e.section);
        let m = parse(&bytes).unwrap_or_else(|err| panic!("{ctx}: {err}"));
        assert_eq!(m.to_bytes(), bytes, "{ctx}: printed from its parts");
        assert_eq!(
            m.to_owned_message().to_bytes(),
            bytes,
            "{ctx}: printed from the owned copy"
        );
        assert_eq!(m.transaction_id(), e.tid, "{ctx}");
        assert_eq!(m.start_line(), e.start, "{ctx}");
        assert_eq!(session_ids(m.to_path().unwrap()), e.to, "{ctx}: To-Path");
        assert_eq!(
            session_ids(m.from_path().unwrap()),
            e.from,
            "{ctx}: From-Path"
        );
        assert_eq!(m.message_id().unwrap(), e.message_id, "{ctx}");
        assert_eq!(
            m.byte_range().unwrap().map(|r| r.to_string()),
            e.byte_range.map(str::to_owned),
            "{ctx}"
        );
        let status = m.status().unwrap();
        assert_eq!(
            status.map(|s| (s.namespace, s.code, s.comment.unwrap_or_default())),
            e.status,
            "{ctx}"
        );
        assert_eq!(m.use_nickname().unwrap().as_deref(), e.nickname, "{ctx}");
        match (m.body(), e.body) {
            (None, None) => {}
            (Some(b), Some((first, last))) => {
                assert!(b.starts_with(first.as_bytes()), "{ctx}: body start");
                assert!(b.ends_with(last.as_bytes()), "{ctx}: body end");
                assert_eq!(m.body_len(), b.len());
            }
            (got, want) => panic!("{ctx}: body {got:?}, expected {want:?}"),
        }
        assert_eq!(m.continuation(), e.flag, "{ctx}");
        assert_eq!(m.validate().is_ok(), e.valid, "{ctx}: {:?}", m.validate());
        // Every URI of the fixtures is TCP; RFC 4976 uses msrps.
        for u in m.to_path().unwrap().unwrap_or_default() {
            assert_eq!(u.transport(), "tcp", "{ctx}");
            assert_eq!(u.is_tls(), e.file.starts_with("rfc4976"), "{ctx}");
        }
    }
}

#[test]
fn typed_headers_of_rfc4975_11_5_and_11_6() {
    let m_bytes = fixture("rfc4975-11.5-system.msrp");
    let m = parse(&m_bytes).unwrap();
    assert_eq!(m.failure_report().unwrap(), FailureReport::No);
    assert_eq!(m.success_report().unwrap(), SuccessReport::No);
    assert!(!m.wants_response(200) && !m.wants_response(400));
    let ct = m.content_type().unwrap().unwrap();
    assert!(ct.is("text/plain"));
    let m_bytes = fixture("rfc4975-11.6-fig16-send.msrp");
    let m = parse(&m_bytes).unwrap();
    assert_eq!(m.success_report().unwrap(), SuccessReport::Yes);
    assert_eq!(m.header(HeaderName::ToPath).unwrap().name(), "To-Path");
    let to = m.to_path().unwrap().unwrap();
    assert_eq!(to[0].scheme(), Scheme::Msrp);
    assert_eq!(
        (to[0].host(), to[0].port()),
        ("bob.example.com", Some(8888))
    );
}

/// RFC 4975 §11.6: Bob's success REPORT (Figure 17) is what the builder
/// makes from Alice's SEND (Figure 16), byte for byte.
#[test]
fn success_report_of_rfc4975_11_6() {
    let send_bytes = fixture("rfc4975-11.6-fig16-send.msrp");
    let send = parse(&send_bytes).unwrap();
    let own = "msrp://bob.example.com:8888/9di4eae923wzd;tcp";
    let report = OwnedMessage::success_report(&send, "dkei38sd", own)
        .unwrap()
        .expect("Success-Report: yes");
    assert_eq!(report.to_bytes(), fixture("rfc4975-11.6-fig17-report.msrp"));
    // Failure-Report: no, so neither a response nor a failure REPORT.
    assert!(!send.wants_response(200));
    assert!(
        OwnedMessage::failure_report(&send, "x9d8e7f6", own, 500, None)
            .unwrap()
            .is_none()
    );
}

/// RFC 4975 §11.1 and RFC 7701 §9.2: the responses are what the builder
/// makes from the requests (§7.2), byte for byte.
#[test]
fn responses_of_rfc4975_11_1_and_rfc7701_9_2() {
    let cases = [
        (
            "rfc4975-11.1-m4-send.msrp",
            "rfc4975-11.1-m5-200.msrp",
            200,
            "OK",
            "msrp://bob.example.com:8888/9di4eae923wzd;tcp",
        ),
        (
            "rfc4975-11.1-m6-send.msrp",
            "rfc4975-11.1-m7-200.msrp",
            200,
            "OK",
            "msrp://alicepc.example.com:7777/iau39soe2843z;tcp",
        ),
        (
            "rfc7701-9.2-f1-nickname.msrp",
            "rfc7701-9.2-f2-425.msrp",
            425,
            "Nickname reserved or already in use",
            "msrp://chat.example.com:12763/kjhd37s2s20w2a;tcp",
        ),
        (
            "rfc7701-9.2-f3-nickname.msrp",
            "rfc7701-9.2-f4-200.msrp",
            200,
            "OK",
            "msrp://chat.example.com:12763/kjhd37s2s20w2a;tcp",
        ),
        (
            "rfc4975-4-fig2-send.msrp",
            "rfc4975-4-fig2-200.msrp",
            200,
            "OK",
            "msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp",
        ),
    ];
    for (req, resp, code, comment, own) in cases {
        let req_bytes = fixture(req);
        let m = parse(&req_bytes).unwrap();
        assert!(m.wants_response(code), "{req}");
        let r = OwnedMessage::response_to(&m, code, Some(comment), own).unwrap();
        assert_eq!(r.to_bytes(), fixture(resp), "{req} -> {resp}");
    }
    // §7.1.2: REPORT requests get no response.
    let report_bytes = fixture("rfc4975-11.6-fig17-report.msrp");
    let report = parse(&report_bytes).unwrap();
    assert!(!report.wants_response(200));
    assert!(OwnedMessage::response_to(&report, 200, None, "msrp://a.example.com:1/s;tcp").is_err());
}

/// Malformed messages and the error each gets, from [`parse`] or, when it
/// parses, from [`Message::validate`].
const BAD: &[(&str, &str)] = &[
    ("bare-lf.bad.msrp", "line not ended by CRLF"),
    ("body-without-content-type.bad.msrp", "missing Content-Type"),
    (
        "byte-range-end-after-total.bad.msrp",
        "malformed Byte-Range: range-end is after total",
    ),
    (
        "byte-range-zero.bad.msrp",
        "malformed Byte-Range: range-start is 0 (the first byte is 1)",
    ),
    (
        "end-line-no-crlf.bad.msrp",
        "the message is not closed by its end-line",
    ),
    (
        "failure-report-maybe.bad.msrp",
        "malformed Failure-Report: not yes, no or partial",
    ),
    (
        "lowercase-method.bad.msrp",
        "malformed start line: expected a method (upper-case letters) or a status-code",
    ),
    (
        "message-id-too-short.bad.msrp",
        "malformed Message-ID: not an ident (4 to 32 characters)",
    ),
    (
        "mime-header-without-body.bad.msrp",
        "Content-Type not allowed here",
    ),
    ("missing-from-path.bad.msrp", "missing From-Path"),
    (
        "nickname-not-quoted.bad.msrp",
        "malformed Use-Nickname: not a quoted string of 1 to 1023 bytes",
    ),
    (
        "no-colon.bad.msrp",
        "malformed header line: no colon after the header name",
    ),
    (
        "no-end-line.bad.msrp",
        "the message is not closed by its end-line",
    ),
    (
        "not-msrp.bad.msrp",
        "malformed start line: expected \"MSRP\" SP transact-id",
    ),
    ("not-utf8.bad.msrp", "text is not UTF-8"),
    (
        "nul-byte.bad.msrp",
        "control character 0x00 in the header section",
    ),
    (
        "other-end-line.bad.msrp",
        "the message is not closed by its end-line",
    ),
    (
        "report-bad-status.bad.msrp",
        "malformed Status: not namespace SP status-code [SP comment]",
    ),
    (
        "report-with-success-report.bad.msrp",
        "Success-Report not allowed here",
    ),
    ("response-continued.bad.msrp", "a response not ended by $"),
    ("response-with-body.bad.msrp", "a response has no body"),
    (
        "short-transaction-id.bad.msrp",
        "malformed start line: expected a transact-id (4 to 32 ident characters)",
    ),
    (
        "status-two-digits.bad.msrp",
        "malformed start line: expected a three-digit status-code",
    ),
    (
        "to-path-no-transport.bad.msrp",
        "malformed To-Path: no transport parameter",
    ),
    (
        "to-path-not-msrp.bad.msrp",
        "malformed To-Path: the scheme is not msrp or msrps",
    ),
    ("trailing-bytes.bad.msrp", "bytes after the end-line"),
    (
        "two-message-ids.bad.msrp",
        "Message-ID appears more than once",
    ),
];

#[test]
fn bad_fixtures_get_their_error() {
    let listed: Vec<&str> = BAD.iter().map(|(f, _)| *f).collect();
    assert_eq!(
        listed,
        fixture_names(true),
        "every bad fixture is listed, in order"
    );
    for (file, want) in BAD {
        let bytes = fixture(file);
        let err = match parse(&bytes) {
            Err(e) => e,
            Ok(m) => m
                .validate()
                .expect_err(&format!("{file} parses and validates")),
        };
        assert_eq!(err.kind.to_string(), *want, "{file}");
        assert!(err.offset <= bytes.len(), "{file}: offset {}", err.offset);
        assert_eq!(err.response_code(), 400, "{file}");
    }
}

#[test]
fn error_offsets_point_at_the_problem() {
    let cases: &[(&str, &[u8])] = &[
        ("nul-byte.bad.msrp", b"\x00"),
        ("no-colon.bad.msrp", b" 87652491"),
        ("byte-range-zero.bad.msrp", b"Byte-Range"),
        ("trailing-bytes.bad.msrp", b"MSRP"),
    ];
    for (file, at) in cases {
        let bytes = fixture(file);
        let err = match parse(&bytes) {
            Err(e) => e,
            Ok(m) => m.validate().unwrap_err(),
        };
        let rest = bytes.get(err.offset..).unwrap_or_default();
        assert!(
            rest.starts_with(at),
            "{file}: offset {} at {:?}",
            err.offset,
            String::from_utf8_lossy(rest)
        );
    }
}

/// Every good fixture, back to back, framed from reads cut at every
/// position and from one-byte reads, gives the fixtures back.
#[test]
fn framer_cuts_the_fixtures_whatever_the_reads() {
    let files: Vec<Vec<u8>> = fixture_names(false).iter().map(|n| fixture(n)).collect();
    let stream: Vec<u8> = files.concat();
    let frame = |cuts: &[usize]| -> Vec<Vec<u8>> {
        let mut f = StreamFramer::new(Limits::default());
        let mut out = Vec::new();
        let mut last = 0;
        for &c in cuts.iter().chain(std::iter::once(&stream.len())) {
            f.handle_data(&stream[last..c]);
            last = c;
            while let Some(m) = f.poll_event() {
                out.push(m.expect("fixtures frame").to_vec());
            }
        }
        assert!(f.buffered().is_empty());
        out
    };
    assert_eq!(frame(&[]), files);
    let ones: Vec<usize> = (1..stream.len()).collect();
    assert_eq!(frame(&ones), files);
    for cut in (1..stream.len()).step_by(7) {
        assert_eq!(frame(&[cut]), files, "cut at {cut}");
    }
}

/// Every SEND of the fixtures that holds a whole message (range-start 1
/// and `$`, RFC 4975 §7.3.1) is delivered as it is, even where the RFC's
/// Byte-Range counts other sizes than it prints (§4: 25 for 23 bytes,
/// §11.2: 374 for 384).
#[test]
fn whole_messages_of_the_fixtures_are_delivered() {
    let mut n = 0;
    for e in GOOD {
        let bytes = fixture(e.file);
        let m = parse(&bytes).unwrap();
        if m.method() != Some("SEND") || !m.is_whole_message().unwrap() {
            continue;
        }
        let mut r = Reassembler::new(ReassemblyLimits::default());
        r.handle_chunk(&Chunk::from_message(&m).unwrap())
            .unwrap_or_else(|err| panic!("{}: {err}", e.file));
        let Some(ReassemblyEvent::Complete { body, .. }) = r.poll_event() else {
            panic!("{}: not complete", e.file)
        };
        assert_eq!(Some(&body[..]), m.body(), "{}", e.file);
        n += 1;
    }
    assert_eq!(n, 18);
}

/// RFC 4975 §5.1, Figure 3: the two chunks, in either order, give
/// "abcdEFGH"; the first one again changes nothing (§7.3.1).
#[test]
fn reassembly_of_rfc4975_5_1() {
    let a = fixture("rfc4975-5.1-fig3-chunk1.msrp");
    let b = fixture("rfc4975-5.1-fig3-chunk2.msrp");
    for order in [[&a, &b, &a], [&b, &a, &a]] {
        let mut r = Reassembler::new(ReassemblyLimits::default());
        for bytes in order {
            let m = parse(bytes).unwrap();
            r.handle_chunk(&Chunk::from_message(&m).unwrap()).unwrap();
        }
        match r.poll_event() {
            Some(ReassemblyEvent::Complete {
                message_id,
                content_type,
                body,
            }) => {
                assert_eq!(message_id, "4564dpWd");
                assert_eq!(content_type.as_deref(), Some("text/plain"));
                assert_eq!(&body[..], b"abcdEFGH");
            }
            other => panic!("{other:?}"),
        }
        // The duplicate after completion starts a new partial message.
        assert_eq!(r.poll_event(), None);
    }
}

/// RFC 4975 §11.4: the two chunks of a message/cpim. The first carries 137
/// bytes as its Byte-Range says; the second carries 10 bytes where its
/// Byte-Range says 11 (138-148): the `$` chunk fixes the size at 147
/// bytes (§7.3.1).
#[test]
fn reassembly_of_rfc4975_11_4() {
    let first = fixture("rfc4975-11.4-fig14-chunk1.msrp");
    let second = fixture("rfc4975-11.4-fig15-chunk2.msrp");
    let m1 = parse(&first).unwrap();
    assert_eq!(m1.body_len(), 137);
    let m2 = parse(&second).unwrap();
    let mut r = Reassembler::new(ReassemblyLimits::default());
    r.handle_chunk(&Chunk::from_message(&m2).unwrap()).unwrap();
    r.handle_chunk(&Chunk::from_message(&m1).unwrap()).unwrap();
    let Some(ReassemblyEvent::Complete {
        body, content_type, ..
    }) = r.poll_event()
    else {
        panic!("not complete")
    };
    assert_eq!(content_type.as_deref(), Some("message/cpim"));
    assert_eq!(body.len(), 147);
    assert!(body.starts_with(b"To: Bob <sip:bob@example.com>\r\n"));
    assert!(body.ends_with(b"\r\n\r\nABCD1234567890"));
}

/// RFC 7701 §9.5 prints its first chunk ended by `$` with range-end `*`:
/// by §7.3.1 that chunk ends the message, at 56 bytes of the 174 its
/// Byte-Range announces, and it is delivered whole; the second chunk,
/// ended by `$` too, then starts a message that cannot end (bytes 1 to
/// 67 never come).
#[test]
fn reassembly_of_rfc7701_9_5_as_printed() {
    let first = fixture("rfc7701-9.5-chunk1.msrp");
    let second = fixture("rfc7701-9.5-chunk2.msrp");
    let m1 = parse(&first).unwrap();
    let m2 = parse(&second).unwrap();
    let mut r = Reassembler::new(ReassemblyLimits::default());
    r.handle_chunk(&Chunk::from_message(&m1).unwrap()).unwrap();
    let Some(ReassemblyEvent::Complete { body, .. }) = r.poll_event() else {
        panic!("not complete")
    };
    assert_eq!(body.len(), m1.body_len());
    r.handle_chunk(&Chunk::from_message(&m2).unwrap()).unwrap();
    assert_eq!(r.poll_event(), None);
    assert_eq!(r.partial_count(), 1);
}

#[test]
fn reassembly_errors_and_limits() {
    let limits = ReassemblyLimits {
        max_message: 100,
        max_partial: 2,
    };
    let mut r = Reassembler::new(limits);
    let chunk = |id, range: &str, c, body: &'static [u8]| Chunk {
        message_id: id,
        byte_range: Some(range.parse::<ByteRange>().unwrap()),
        continuation: c,
        content_type: None,
        body,
    };
    use Continuation::{Aborted, Complete, More};
    // A total over the limit: 413.
    let e = r
        .handle_chunk(&chunk("m1aa", "1-*/101", More, b"abc"))
        .unwrap_err();
    assert!(matches!(e, ReassemblyError::TooLarge { max: 100, .. }));
    assert_eq!(e.response_code(), 413);
    // An end over the limit with `*` totals.
    r.handle_chunk(&chunk("m2aa", "1-*/*", More, &[b'x'; 60]))
        .unwrap();
    let e = r
        .handle_chunk(&chunk("m2aa", "61-*/*", More, &[b'y'; 60]))
        .unwrap_err();
    assert!(matches!(e, ReassemblyError::TooLarge { .. }));
    assert_eq!(r.partial_count(), 0, "a refused chunk drops its message");
    // Too many partial messages.
    r.handle_chunk(&chunk("m3aa", "1-*/10", More, b"a"))
        .unwrap();
    r.handle_chunk(&chunk("m4aa", "1-*/10", More, b"a"))
        .unwrap();
    let e = r
        .handle_chunk(&chunk("m5aa", "1-*/10", More, b"a"))
        .unwrap_err();
    assert_eq!(e, ReassemblyError::TooManyPartial { max: 2 });
    // Totals that disagree: 400.
    let e = r
        .handle_chunk(&chunk("m3aa", "2-*/11", More, b"b"))
        .unwrap_err();
    assert!(matches!(e, ReassemblyError::Inconsistent { .. }));
    assert_eq!(e.response_code(), 400);
    // A body longer than its range-end.
    let e = r
        .handle_chunk(&chunk("m4aa", "2-3/10", More, b"bcd"))
        .unwrap_err();
    assert!(matches!(e, ReassemblyError::Inconsistent { .. }));
    // An aborted message is reported with what had arrived.
    r.handle_chunk(&chunk("m6aa", "1-*/*", More, b"hello"))
        .unwrap();
    r.handle_chunk(&chunk("m6aa", "6-*/*", Aborted, b" wor"))
        .unwrap();
    assert_eq!(
        r.poll_event(),
        Some(ReassemblyEvent::Aborted {
            message_id: "m6aa".to_owned(),
            received: 5
        })
    );
    assert_eq!(r.partial_count(), 0);
    // An empty message (§7.1.1: "1-0/0").
    r.handle_chunk(&chunk("m7aa", "1-0/0", Complete, b""))
        .unwrap();
    assert!(matches!(
        r.poll_event(),
        Some(ReassemblyEvent::Complete { body, .. }) if body.is_empty()
    ));
    // Overlaps: the last received wins (§7.3.1).
    r.handle_chunk(&chunk("m8aa", "1-6/10", More, b"aaaaaa"))
        .unwrap();
    r.handle_chunk(&chunk("m8aa", "7-10/10", More, b"cccc"))
        .unwrap();
    assert!(matches!(
        r.poll_event(),
        Some(ReassemblyEvent::Complete { body, .. }) if &body[..] == b"aaaaaacccc"
    ));
    r.handle_chunk(&chunk("m9aa", "7-10/10", More, b"cccc"))
        .unwrap();
    r.handle_chunk(&chunk("m9aa", "4-8/10", More, b"bbbbb"))
        .unwrap();
    r.handle_chunk(&chunk("m9aa", "1-3/10", More, b"aaa"))
        .unwrap();
    assert!(matches!(
        r.poll_event(),
        Some(ReassemblyEvent::Complete { body, .. }) if &body[..] == b"aaabbbbbcc"
    ));
}
