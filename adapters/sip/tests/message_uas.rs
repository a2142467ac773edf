//! The MESSAGE UAS rules (RFC 3428 §7, RFC 3261 §8.2) on byte fixtures:
//! RFC 3428 §10 F1 and F2 become model messages; each malformed or
//! refused request gets its named status, and every answer builds into a
//! response as RFC 3261 §8.2.6 says (no Contact and no body on 2xx).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use cpimgate_model::address::Address;
use cpimgate_model::port::{DeliveryOutcome, Failure, FailureKind};
use cpimgate_model::time::Timestamp;
use cpimgate_sip::SipConfig;
use cpimgate_sip::codec::parse;
use cpimgate_sip::message::{
    Answer, MergeGuard, UasContext, UasDecision, answer_for_outcome, handle_request, html_to_text,
};

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn config() -> SipConfig {
    let mut c = SipConfig::new("gw.example.com");
    c.max_message_size = 200;
    c
}

fn decide(bytes: &[u8]) -> UasDecision {
    let config = config();
    let ctx = UasContext {
        config: &config,
        adapter: "sip",
        now: Timestamp::parse_rfc3339("2010-11-13T23:29:00Z").unwrap(),
        own_hosts: &[],
    };
    handle_request(&parse(bytes).expect("the fixture parses"), &ctx)
}

fn answer(bytes: &[u8]) -> Answer {
    match decide(bytes) {
        UasDecision::Answer(a) => a,
        other => panic!("expected an answer, got {other:?}"),
    }
}

/// A MESSAGE to `uri` with extra header lines and a body.
fn request(method: &str, uri: &str, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} {uri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKnashds8\r\n\
         Max-Forwards: 70\r\n\
         From: \"Bob\" <sip:bob@biloxi.example.com>;tag=a73kszlfl\r\n\
         To: <{uri}>\r\n\
         Call-ID: 1j9FpLxk3uxtm8tn@biloxi.example.com\r\n\
         CSeq: 1 {method}\r\n\
         {extra}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

const GW_ALICE: &str = "sip:alice%40xmpp.example.org@gw.example.com";

#[test]
fn rfc3428_f1_becomes_a_message_for_the_hub() {
    // RFC 3428 §10 F1: text/plain to a SIP user elsewhere; the hub's
    // routes decide where it goes.
    let UasDecision::Deliver(m) = decide(&fixture("rfc3428-10-f1.sip")) else {
        panic!("F1 is delivered");
    };
    assert_eq!(m.from.address.to_string(), "sip:user1@domain.com");
    assert_eq!(m.to[0].address.to_string(), "sip:user2@domain.com");
    assert_eq!(m.body.as_text(), Some("Watson, come here."));
    assert_eq!(m.content_type, "text/plain;charset=utf-8");
    assert_eq!(m.origin.native_id.as_deref(), Some("asd88asd77a@1.2.3.4"));
    assert_eq!(m.id.as_str(), "sip:49583:asd88asd77a@1.2.3.4:1");
    assert_eq!(m.expires, None);
    // F2, the same after the proxy (its From tag as printed differs).
    let UasDecision::Deliver(m2) = decide(&fixture("rfc3428-10-f2.sip")) else {
        panic!("F2 is delivered");
    };
    assert_eq!(m2.body, m.body);
    assert_eq!(m2.to, m.to);
}

#[test]
fn a_gateway_address_is_unwrapped() {
    let UasDecision::Deliver(m) = decide(&request(
        "MESSAGE",
        GW_ALICE,
        "Content-Type: text/plain\r\n",
        "hi",
    )) else {
        panic!("delivered");
    };
    assert_eq!(m.to[0].address.to_string(), "im:alice@xmpp.example.org");
    assert_eq!(m.from.display.as_deref(), Some("Bob"));
}

#[test]
fn accepted_is_202_without_contact_or_body() {
    // RFC 3428 §7.
    let a = answer_for_outcome(&DeliveryOutcome::Accepted);
    assert_eq!((a.code, a.reason.as_str()), (202, "Accepted"));
    let bytes = fixture("rfc3428-10-f1.sip");
    let req = parse(&bytes).unwrap();
    let r = a.build(&req, "gwtag").unwrap();
    let out = r.to_bytes();
    let resp = parse(&out).unwrap();
    assert_eq!(resp.status(), Some(202));
    assert!(resp.contact().unwrap().is_none());
    assert!(resp.body().is_empty());
    assert_eq!(resp.to().unwrap().unwrap().tag(), Some("gwtag"));
    assert_eq!(resp.call_id().unwrap(), Some("asd88asd77a@1.2.3.4"));
}

#[test]
fn no_route_is_404_with_a_reason() {
    let a = answer_for_outcome(&DeliveryOutcome::Failed(Failure::new(
        FailureKind::NotFound,
        "no route to im:x@nowhere",
    )));
    assert_eq!(a.code, 404);
    assert_eq!(a.reason, "Not Found: no route to im:x@nowhere");
    // A gateway address whose user part names nothing.
    let a = answer(&request(
        "MESSAGE",
        "sip:gw.example.com",
        "Content-Type: text/plain\r\n",
        "hi",
    ));
    assert_eq!(a.code, 404, "{a:?}");
}

#[test]
fn other_types_get_415_with_accept() {
    let a = answer(&request(
        "MESSAGE",
        GW_ALICE,
        "Content-Type: application/octet-stream\r\n",
        "hi",
    ));
    assert_eq!(a.code, 415);
    assert!(
        a.headers
            .iter()
            .any(|(n, v)| *n == "Accept" && v.contains("text/plain"))
    );
    let a = answer(&request(
        "MESSAGE",
        GW_ALICE,
        "Content-Type: text/plain; charset=iso-8859-1\r\n",
        "hi",
    ));
    assert_eq!(a.code, 415);
    let a = answer(&request(
        "MESSAGE",
        GW_ALICE,
        "Content-Type: text/plain\r\nContent-Encoding: gzip\r\n",
        "hi",
    ));
    assert_eq!(a.code, 415);
    assert!(a.headers.iter().any(|(n, _)| *n == "Accept-Encoding"));
}

#[test]
fn over_the_size_is_413() {
    let a = answer(&request(
        "MESSAGE",
        GW_ALICE,
        "Content-Type: text/plain\r\n",
        &"x".repeat(201),
    ));
    assert_eq!(a.code, 413);
}

#[test]
fn methods_not_served_get_405_and_unknown_ones_501_with_allow() {
    // RFC 3261 §8.2.1: recognised but not supported, 405; §21.5.2: not
    // recognised, 501. Methods are case-sensitive (§7.1).
    for (method, code) in [
        ("INVITE", 405),
        ("SUBSCRIBE", 405),
        ("PUBLISH", 405),
        ("FOO", 501),
        ("invite", 501),
    ] {
        let a = answer(&request(method, GW_ALICE, "", ""));
        assert_eq!(a.code, code, "{method}");
        assert!(
            a.headers
                .contains(&("Allow", "MESSAGE, OPTIONS".to_owned()))
        );
    }
}

#[test]
fn cancel_and_bye_outside_any_transaction_or_dialog_get_481() {
    // RFC 3261 §9.2 (CANCEL matching no transaction), §12.2.2 (BYE).
    for method in ["CANCEL", "BYE"] {
        let a = answer(&request(method, GW_ALICE, "", ""));
        assert_eq!(a.code, 481, "{method}");
    }
}

#[test]
fn options_lists_what_is_supported() {
    let a = answer(&request("OPTIONS", GW_ALICE, "", ""));
    assert_eq!(a.code, 200);
    let names: Vec<&str> = a.headers.iter().map(|(n, _)| *n).collect();
    for h in ["Allow", "Accept", "Supported"] {
        assert!(names.contains(&h), "{h} in {names:?}");
    }
}

#[test]
fn max_forwards_zero_is_483() {
    let bytes = String::from_utf8(request(
        "MESSAGE",
        GW_ALICE,
        "Content-Type: text/plain\r\n",
        "hi",
    ))
    .unwrap()
    .replace("Max-Forwards: 70", "Max-Forwards: 0");
    assert_eq!(answer(bytes.as_bytes()).code, 483);
}

#[test]
fn malformed_requests_get_400_with_the_problem_named() {
    let bytes = String::from_utf8(request(
        "MESSAGE",
        GW_ALICE,
        "Content-Type: text/plain\r\n",
        "hi",
    ))
    .unwrap()
    .replace("Call-ID: 1j9FpLxk3uxtm8tn@biloxi.example.com\r\n", "");
    let a = answer(bytes.as_bytes());
    assert_eq!(
        (a.code, a.reason.as_str()),
        (400, "Bad Request: missing Call-ID")
    );
    let a = answer(&request("MESSAGE", GW_ALICE, "", "a body and no type"));
    assert_eq!(a.code, 400);
    let mut bytes = request("MESSAGE", GW_ALICE, "Content-Type: text/plain\r\n", "hi");
    let n = bytes.len();
    bytes[n - 2..].copy_from_slice(&[0xff, 0xfe]);
    let a = answer(&bytes);
    assert_eq!(
        (a.code, a.reason.as_str()),
        (400, "Bad Request: the text is not UTF-8")
    );
}

#[test]
fn other_schemes_dialogs_and_extensions_are_refused() {
    assert_eq!(
        answer(&request("MESSAGE", "mailto:a@b.c", "", "")).code,
        416
    );
    let bytes = String::from_utf8(request(
        "MESSAGE",
        GW_ALICE,
        "Content-Type: text/plain\r\n",
        "hi",
    ))
    .unwrap()
    .replace(
        &format!("To: <{GW_ALICE}>"),
        &format!("To: <{GW_ALICE}>;tag=x"),
    );
    assert_eq!(answer(bytes.as_bytes()).code, 481);
    let a = answer(&request("MESSAGE", GW_ALICE, "Require: 100rel\r\n", ""));
    assert_eq!(a.code, 420);
    assert!(a.headers.contains(&("Unsupported", "100rel".to_owned())));
}

#[test]
fn cpim_from_must_be_the_sender() {
    let cpim = "From: Bob <sip:bob@biloxi.example.com>\r\nTo: <im:alice@xmpp.example.org>\r\n\r\nContent-Type: text/plain\r\n\r\nhello";
    let got = decide(&request(
        "MESSAGE",
        GW_ALICE,
        "Content-Type: message/cpim\r\n",
        cpim,
    ));
    let UasDecision::Deliver(m) = got else {
        panic!("a CPIM message from its sender is delivered: {got:?}");
    };
    assert_eq!(m.cpim.as_ref().unwrap().as_bytes(), cpim.as_bytes());
    assert_eq!(m.body.as_text(), Some("hello"));
    assert_eq!(m.to[0].address.to_string(), "im:alice@xmpp.example.org");
    let spoof = cpim.replace("sip:bob@biloxi", "sip:mallory@biloxi");
    let a = answer(&request(
        "MESSAGE",
        GW_ALICE,
        "Content-Type: message/cpim\r\n",
        &spoof,
    ));
    assert_eq!(a.code, 403, "{a:?}");
    let a = answer(&request(
        "MESSAGE",
        GW_ALICE,
        "Content-Type: message/cpim\r\n",
        "garbage",
    ));
    assert_eq!(a.code, 400);
}

#[test]
fn html_is_reduced_to_text() {
    let UasDecision::Deliver(m) = decide(&request(
        "MESSAGE",
        GW_ALICE,
        "Content-Type: text/html\r\n",
        "<p>a &lt;b&gt;</p><b>bold</b>",
    )) else {
        panic!("delivered");
    };
    assert_eq!(m.body.as_text(), Some("a <b>\nbold"));
    assert_eq!(html_to_text("x<br/>y &amp; z"), "x\ny & z");
}

#[test]
fn expires_counts_from_date() {
    // RFC 3428 §7: Expires is a delta from Date when there is one.
    let UasDecision::Deliver(m) = decide(&request(
        "MESSAGE",
        GW_ALICE,
        "Content-Type: text/plain\r\nDate: Sat, 13 Nov 2010 23:28:00 GMT\r\nExpires: 120\r\n",
        "hi",
    )) else {
        panic!("delivered");
    };
    assert_eq!(
        m.expires,
        Some(Timestamp::parse_rfc3339("2010-11-13T23:30:00Z").unwrap())
    );
    // Without Date, from receipt.
    let UasDecision::Deliver(m) = decide(&request(
        "MESSAGE",
        GW_ALICE,
        "Content-Type: text/plain\r\nExpires: 30\r\n",
        "hi",
    )) else {
        panic!("delivered");
    };
    assert_eq!(
        m.expires,
        Some(Timestamp::parse_rfc3339("2010-11-13T23:29:30Z").unwrap())
    );
    // Expired on arrival: not delivered.
    let a = answer(&request(
        "MESSAGE",
        GW_ALICE,
        "Content-Type: text/plain\r\nDate: Sat, 13 Nov 2010 23:00:00 GMT\r\nExpires: 60\r\n",
        "hi",
    ));
    assert_eq!(a.code, 400);
}

#[test]
fn ack_gets_no_answer() {
    assert_eq!(
        decide(&request("ACK", GW_ALICE, "", "")),
        UasDecision::Ignore
    );
}

#[test]
fn merged_requests_are_loops() {
    // RFC 3261 §8.2.2.2: same From tag, Call-ID and CSeq, another branch.
    let a = request("MESSAGE", GW_ALICE, "Content-Type: text/plain\r\n", "hi");
    let b = String::from_utf8(a.clone())
        .unwrap()
        .replace("z9hG4bKnashds8", "z9hG4bKother");
    let mut guard = MergeGuard::default();
    let ids = tx_ids();
    assert!(guard.admit(ids.0, &parse(&a).unwrap()));
    assert!(!guard.admit(ids.1, &parse(b.as_bytes()).unwrap()));
    guard.terminated(ids.0);
    assert!(guard.admit(ids.1, &parse(b.as_bytes()).unwrap()));
    assert_eq!(guard.len(), 1);
}

/// Two transaction ids, made by a transaction layer.
fn tx_ids() -> (
    cpimgate_sip::transaction::TxId,
    cpimgate_sip::transaction::TxId,
) {
    use cpimgate_sip::transaction::{Config, Method, OutgoingRequest, TransactionLayer};
    let mut layer = TransactionLayer::<u8>::new(Config::default());
    let mut id = |branch: &str| {
        layer
            .send_request(
                std::time::Instant::now(),
                OutgoingRequest {
                    method: Method::Message,
                    branch: branch.into(),
                    bytes: bytes::Bytes::new(),
                    dest: 0,
                    reliable: true,
                },
            )
            .unwrap()
    };
    (id("z9hG4bK1"), id("z9hG4bK2"))
}

#[test]
fn the_sender_address_is_kept() {
    let UasDecision::Deliver(m) = decide(&request(
        "MESSAGE",
        GW_ALICE,
        "Content-Type: text/plain\r\n",
        "hi",
    )) else {
        panic!("delivered");
    };
    assert!(matches!(m.from.address, Address::Sip(_)));
}

#[test]
fn a_signed_message_with_a_stale_date_is_a_replay() {
    // RFC 3428 §11.4; the test's now is 2010-11-13T23:29:00Z.
    let signed =
        "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; boundary=b\r\n";
    let stale = format!("{signed}Date: Sat, 13 Nov 2010 22:00:00 GMT\r\n");
    let a = answer(&request("MESSAGE", GW_ALICE, &stale, "--b--"));
    assert_eq!((a.code, a.reason.as_str()), (400, "Incorrect Date or Time"));
    let a = answer(&request("MESSAGE", GW_ALICE, signed, "--b--"));
    assert_eq!((a.code, a.reason.as_str()), (400, "Incorrect Date or Time"));
    // A fresh one cannot be carried into another world with its
    // signature: 415.
    let fresh = format!("{signed}Date: Sat, 13 Nov 2010 23:28:00 GMT\r\n");
    assert_eq!(
        answer(&request("MESSAGE", GW_ALICE, &fresh, "--b--")).code,
        415
    );
}

proptest::proptest! {
    /// Whatever a request holds, the UAS rules answer or deliver, and
    /// never panic: bytes of a valid MESSAGE with a few replaced, and
    /// header values of arbitrary text.
    #[test]
    fn the_rules_never_panic(
        edits in proptest::collection::vec((0usize..400, proptest::num::u8::ANY), 0..8),
        ct in "[ -~]{0,40}",
        expires in "[ -~]{0,12}",
        body in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
    ) {
        let extra = format!("Content-Type: {ct}\r\nExpires: {expires}\r\nDate: {expires}\r\n");
        let mut bytes = request("MESSAGE", GW_ALICE, &extra, "");
        let n = bytes.len();
        for (at, b) in edits {
            if at < n {
                bytes[at] = b;
            }
        }
        bytes.extend_from_slice(&body);
        if let Ok(req) = parse(&bytes) {
            let config = config();
            let ctx = UasContext { config: &config, adapter: "sip", now: Timestamp::now(), own_hosts: &[] };
            if let UasDecision::Answer(a) = handle_request(&req, &ctx) {
                proptest::prop_assert!((100..=699).contains(&a.code));
                proptest::prop_assert!(!a.reason.chars().any(char::is_control));
                // Every answer can be written as a response.
                if req.is_request() {
                    let _ = a.build(&req, "t");
                }
            }
        }
    }
}
