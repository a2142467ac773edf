#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant, SystemTime};

use super::*;
use crate::codec::parse;
use crate::digest::{DigestServer, Verdict};

const AOR: &str = "sip:bob@biloxi.com";
const REGISTRAR: &str = "sip:registrar.biloxi.com";
const CONTACT: &str = "sip:bob%40xmpp.example.org@192.0.2.4:5060;transport=udp";

fn hop(branch: &str) -> Hop<'_> {
    Hop {
        transport: TransportKind::Udp,
        sent_by: "192.0.2.4:5060",
        branch,
        route: None,
    }
}

fn binding(now: Instant, expires: u32, client: Option<DigestClient>) -> Binding {
    Binding::new(
        AOR.to_owned(),
        REGISTRAR.to_owned(),
        Address::from_gateway_user("bob@xmpp.example.org").unwrap(),
        expires,
        (
            "843817637684230@998sdasdh09".to_owned(),
            "456248".to_owned(),
        ),
        client.map(|c| (c, None)),
        now,
    )
}

/// The response `status` to `request`, with `extra` header lines.
fn answer(request: &OwnedMessage, status: u16, extra: &[(&str, &str)]) -> Vec<u8> {
    let bytes = request.to_bytes();
    let req = parse(&bytes).unwrap();
    let mut r = OwnedMessage::response_to(&req, status, "Reason", Some("2493k59kd")).unwrap();
    for (n, v) in extra {
        r.push_header(n, v).unwrap();
    }
    r.to_bytes()
}

/// RFC 3261 §24.1 F1 is what a registration looks like: the same headers
/// here, with the gateway's Contact for the user of another world.
#[test]
fn the_first_register_has_the_shape_of_rfc3261_24_1_f1() {
    let now = Instant::now();
    let mut b = binding(now, 7200, None);
    assert!(b.is_due(now));
    let r = b.request(&hop("z9hG4bKnashds7")).unwrap().to_bytes();
    let m = parse(&r).unwrap();
    let f1 = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/rfc3261-24.1-f1-register.sip"
    ))
    .unwrap();
    let f1 = parse(&f1).unwrap();
    assert_eq!(m.method(), f1.method());
    assert_eq!(m.request_uri(), f1.request_uri());
    assert_eq!(
        m.to().unwrap().unwrap().uri(),
        f1.to().unwrap().unwrap().uri()
    );
    assert_eq!(
        m.from().unwrap().unwrap().uri(),
        f1.from().unwrap().unwrap().uri()
    );
    assert_eq!(m.from().unwrap().unwrap().tag(), Some("456248"));
    assert_eq!(m.call_id(), f1.call_id());
    assert_eq!(m.cseq().unwrap().unwrap().method, "REGISTER");
    assert_eq!(m.cseq().unwrap().unwrap().seq, 1);
    assert_eq!(m.expires(), f1.expires());
    assert_eq!(m.max_forwards(), Ok(Some(70)));
    assert_eq!(m.get("Contact"), Some(format!("<{CONTACT}>").as_str()));
    assert!(m.validate_request().is_ok());
    assert_eq!(b.state(), State::Pending);
    assert_eq!(b.poll_timeout(), None);
}

#[test]
fn a_200_binds_for_the_granted_interval_and_the_refresh_keeps_the_call_id() {
    let now = Instant::now();
    let mut b = binding(now, 3600, None);
    let r = b.request(&hop("z9hG4bK1")).unwrap();
    // §10.2.4: the expires parameter of our Contact wins over Expires.
    let other = "<sip:bob@192.0.2.99>;expires=3600";
    let ours = format!("<{CONTACT}>;expires=120");
    let ok = answer(
        &r,
        200,
        &[("Contact", other), ("Contact", &ours), ("Expires", "3600")],
    );
    let outcome = b.handle_response(now, &parse(&ok).unwrap());
    assert_eq!(outcome, Outcome::Registered(Duration::from_secs(120)));
    assert!(b.is_registered(now + Duration::from_secs(119)));
    assert!(!b.is_registered(now + Duration::from_secs(120)));
    assert_eq!(b.poll_timeout(), Some(now + Duration::from_secs(60)));
    assert!(!b.is_due(now + Duration::from_secs(59)));
    assert!(b.is_due(now + Duration::from_secs(60)));

    let again = b.request(&hop("z9hG4bK2")).unwrap().to_bytes();
    let m = parse(&again).unwrap();
    assert_eq!(m.call_id(), Ok(Some("843817637684230@998sdasdh09")));
    assert_eq!(m.cseq().unwrap().unwrap().seq, 2);
    assert_eq!(m.from().unwrap().unwrap().tag(), Some("456248"));

    // Without an expires parameter, the Expires header.
    let ok = answer(
        &r,
        200,
        &[("Contact", &format!("<{CONTACT}>")), ("Expires", "90")],
    );
    let later = now + Duration::from_secs(60);
    assert_eq!(
        b.handle_response(later, &parse(&ok).unwrap()),
        Outcome::Registered(Duration::from_secs(90))
    );
}

#[test]
fn a_200_that_does_not_list_our_contact_is_a_failure() {
    let now = Instant::now();
    let mut b = binding(now, 3600, None);
    let r = b.request(&hop("z9hG4bK1")).unwrap();
    let ok = answer(&r, 200, &[("Contact", "<sip:bob@192.0.2.4>;expires=3600")]);
    let Outcome::Failed { why, retry_in } = b.handle_response(now, &parse(&ok).unwrap()) else {
        panic!("a failure")
    };
    assert!(why.contains("without our Contact"), "{why}");
    assert_eq!(retry_in, RETRY_BASE);
}

#[test]
fn refresh_times() {
    assert_eq!(
        refresh_after(Duration::from_secs(3600)),
        Duration::from_secs(3000)
    );
    assert_eq!(
        refresh_after(Duration::from_secs(120)),
        Duration::from_secs(60)
    );
    assert_eq!(
        refresh_after(Duration::from_secs(1)),
        Duration::from_secs(1)
    );
}

/// §22.2: a 401 is answered once with credentials the registrar accepts;
/// a second 401 is a refusal.
#[test]
fn a_challenge_is_answered_once() {
    let now = Instant::now();
    let wall = SystemTime::now();
    let server = DigestServer::new("biloxi.com", b"secret of the registrar".to_vec());
    let mut b = binding(now, 3600, Some(DigestClient::new("bob", "zanzibar")));
    let r = b.request(&hop("z9hG4bK1")).unwrap();
    let challenge = server.challenge(wall, false).to_header_value();
    let unauthorized = answer(&r, 401, &[("WWW-Authenticate", &challenge)]);
    assert_eq!(
        b.handle_response(now, &parse(&unauthorized).unwrap()),
        Outcome::SendAgain
    );
    assert!(b.is_due(now));
    let again = b.request(&hop("z9hG4bK2")).unwrap().to_bytes();
    let m = parse(&again).unwrap();
    assert_eq!(m.cseq().unwrap().unwrap().seq, 2);
    let value = m.authorization().next().expect("an Authorization");
    let request = DigestRequest {
        method: "REGISTER",
        uri: REGISTRAR,
        body: b"",
    };
    let lookup = |user: &str, _: &str| (user == "bob").then(|| "zanzibar".to_owned());
    assert_eq!(
        server.verify_header(wall, &request, value, &lookup),
        Verdict::Authenticated {
            username: "bob".into()
        }
    );
    let again_owned = parse(&again).unwrap().to_owned_message();
    let refused = answer(&again_owned, 401, &[("WWW-Authenticate", &challenge)]);
    assert!(matches!(
        b.handle_response(now, &parse(&refused).unwrap()),
        Outcome::Failed { .. }
    ));
    // Without credentials a challenge is a failure at once.
    let mut plain = binding(now, 3600, None);
    let r = plain.request(&hop("z9hG4bK3")).unwrap();
    let unauthorized = answer(&r, 401, &[("WWW-Authenticate", &challenge)]);
    let Outcome::Failed { why, .. } = plain.handle_response(now, &parse(&unauthorized).unwrap())
    else {
        panic!("a failure")
    };
    assert!(why.starts_with("401"), "{why}");
}

/// §10.2.8: 423 with Min-Expires → again at once, asking for that much.
#[test]
fn interval_too_brief_asks_again_with_min_expires() {
    let now = Instant::now();
    let mut b = binding(now, 60, None);
    let r = b.request(&hop("z9hG4bK1")).unwrap();
    let brief = answer(&r, 423, &[("Min-Expires", "600")]);
    assert_eq!(
        b.handle_response(now, &parse(&brief).unwrap()),
        Outcome::SendAgain
    );
    let again = b.request(&hop("z9hG4bK2")).unwrap().to_bytes();
    assert_eq!(parse(&again).unwrap().expires(), Ok(Some(600)));
    // A 423 without a usable Min-Expires is a failure.
    let again = parse(&again).unwrap().to_owned_message();
    let brief = answer(&again, 423, &[("Min-Expires", "30")]);
    assert!(matches!(
        b.handle_response(now, &parse(&brief).unwrap()),
        Outcome::Failed { .. }
    ));
}

#[test]
fn failures_wait_longer_each_time_and_retry_after_is_honoured() {
    let now = Instant::now();
    let mut b = binding(now, 3600, None);
    let mut waits = Vec::new();
    for _ in 0..10 {
        let _ = b.request(&hop("z9hG4bK1")).unwrap();
        let Outcome::Failed { retry_in, .. } = b.handle_failure(now, "timer F") else {
            panic!("a failure")
        };
        assert_eq!(b.poll_timeout(), Some(now + retry_in));
        waits.push(retry_in.as_secs());
    }
    assert_eq!(waits, [5, 10, 20, 40, 80, 160, 320, 600, 600, 600]);
    let r = b.request(&hop("z9hG4bK1")).unwrap();
    let busy = answer(&r, 503, &[("Retry-After", "30 (maintenance)")]);
    let Outcome::Failed { why, retry_in } = b.handle_response(now, &parse(&busy).unwrap()) else {
        panic!("a failure")
    };
    assert_eq!(retry_in, Duration::from_secs(30));
    assert!(why.starts_with("503"), "{why}");
}

/// A refresh that fails while the binding still holds is tried again
/// before the binding runs out.
#[test]
fn a_failed_refresh_retries_within_the_binding() {
    let now = Instant::now();
    let mut b = binding(now, 6, None);
    let r = b.request(&hop("z9hG4bK1")).unwrap();
    let ok = answer(&r, 200, &[("Contact", &format!("<{CONTACT}>;expires=6"))]);
    b.handle_response(now, &parse(&ok).unwrap());
    // Bound until now + 6 s; a refresh failing at now + 2 s tries again
    // after 2 s (half of what is left), not after the 5 s backoff.
    let Outcome::Failed { retry_in, .. } = b.fail(now + Duration::from_secs(2), "x".into(), None)
    else {
        panic!("a failure")
    };
    assert_eq!(retry_in, Duration::from_secs(2));
}

/// §10.2.2: Expires 0 removes the binding; nothing to remove when nothing
/// was sent.
#[test]
fn unregister_removes_the_binding() {
    let now = Instant::now();
    let mut b = binding(now, 3600, None);
    assert!(b.unregister(&hop("z9hG4bK0")).is_none());
    let r = b.request(&hop("z9hG4bK1")).unwrap();
    let ok = answer(
        &r,
        200,
        &[("Contact", &format!("<{CONTACT}>;expires=3600"))],
    );
    b.handle_response(now, &parse(&ok).unwrap());
    let bye = b.unregister(&hop("z9hG4bK2")).unwrap().unwrap();
    let bytes = bye.to_bytes();
    let m = parse(&bytes).unwrap();
    assert_eq!(m.expires(), Ok(Some(0)));
    assert_eq!(m.get("Contact"), Some(format!("<{CONTACT}>").as_str()));
    let ok = answer(&bye, 200, &[]);
    assert_eq!(
        b.handle_response(now, &parse(&ok).unwrap()),
        Outcome::Unregistered
    );
    assert_eq!(b.state(), State::Stopped);
    assert_eq!(b.poll_timeout(), None);
    assert!(b.unregister(&hop("z9hG4bK3")).is_none());
}

#[test]
fn contacts_name_the_transport_and_the_user_of_another_world() {
    let now = Instant::now();
    let b = binding(now, 3600, None);
    assert_eq!(b.contact_uri(&hop("x")).unwrap(), CONTACT);
    let tcp = Hop {
        transport: TransportKind::Tcp,
        sent_by: "[2001:db8::1]:5070",
        branch: "x",
        route: None,
    };
    assert_eq!(
        b.contact_uri(&tcp).unwrap(),
        "sip:bob%40xmpp.example.org@[2001:db8::1]:5070;transport=tcp"
    );
    assert_eq!(split_host_port("gw.example.com"), ("gw.example.com", None));
    assert_eq!(split_host_port("[::1]"), ("[::1]", None));
}

#[test]
fn one_user_in_several_forms() {
    let im = Address::from_gateway_user("bob@xmpp.example.org").unwrap();
    let xmpp: Address = "xmpp:Bob@XMPP.example.org/phone".parse().unwrap();
    let other: Address = "xmpp:alice@xmpp.example.org".parse().unwrap();
    assert!(im.same_user(&xmpp));
    assert!(!im.same_user(&other));
}

/// Removal while a refresh is out, challenged: the answer to the challenge
/// is again a removal; a refusal stops the binding all the same.
#[test]
fn a_challenged_removal_stays_a_removal() {
    let now = Instant::now();
    let wall = SystemTime::now();
    let server = DigestServer::new("biloxi.com", b"secret of the registrar".to_vec());
    let mut b = binding(now, 3600, Some(DigestClient::new("bob", "zanzibar")));
    let _refresh = b.request(&hop("z9hG4bK1")).unwrap();
    assert_eq!(b.state(), State::Pending);
    let bye = b.unregister(&hop("z9hG4bK2")).unwrap().unwrap();
    let challenge = server.challenge(wall, false).to_header_value();
    let unauthorized = answer(&bye, 401, &[("WWW-Authenticate", &challenge)]);
    assert_eq!(
        b.handle_response(now, &parse(&unauthorized).unwrap()),
        Outcome::SendAgain
    );
    let again = b.request(&hop("z9hG4bK3")).unwrap();
    let bytes = again.to_bytes();
    let m = parse(&bytes).unwrap();
    assert_eq!(m.expires(), Ok(Some(0)));
    assert!(m.authorization().next().is_some());
    let refused = answer(&again, 403, &[]);
    assert!(matches!(
        b.handle_response(now, &parse(&refused).unwrap()),
        Outcome::Failed { .. }
    ));
    assert_eq!(b.state(), State::Stopped);
    assert_eq!(b.poll_timeout(), None);
}

/// RFC 3263 §4.3: a REGISTER with credentials that could not reach its
/// server is sent again (to the next one) with them; a final response
/// ends their use.
#[test]
fn credentials_outlive_a_resend_until_a_final_response() {
    let now = Instant::now();
    let wall = SystemTime::now();
    let server = DigestServer::new("biloxi.com", b"secret of the registrar".to_vec());
    let mut b = binding(now, 3600, Some(DigestClient::new("bob", "zanzibar")));
    let r = b.request(&hop("z9hG4bK1")).unwrap();
    let challenge = server.challenge(wall, false).to_header_value();
    let unauthorized = answer(&r, 401, &[("WWW-Authenticate", &challenge)]);
    assert_eq!(
        b.handle_response(now, &parse(&unauthorized).unwrap()),
        Outcome::SendAgain
    );
    let _lost = b.request(&hop("z9hG4bK2")).unwrap();
    let resent = b.request(&hop("z9hG4bK3")).unwrap().to_bytes();
    assert!(parse(&resent).unwrap().authorization().next().is_some());
    let ok = answer(
        &parse(&resent).unwrap().to_owned_message(),
        200,
        &[("Contact", &format!("<{CONTACT}>;expires=3600"))],
    );
    assert!(matches!(
        b.handle_response(now, &parse(&ok).unwrap()),
        Outcome::Registered(_)
    ));
    let refresh = b.request(&hop("z9hG4bK4")).unwrap().to_bytes();
    assert!(parse(&refresh).unwrap().authorization().next().is_none());
}
