#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use super::*;
use crate::codec::parse;

/// RFC 3261 §24.2 F5 as Bob's UA receives it, its SDP left out (the RFC
/// does not show it), with two Record-Routes added as proxies that
/// record-route would (§16.6 step 4).
const F5: &[u8] = b"INVITE sip:bob@192.0.2.4 SIP/2.0\r\n\
Via: SIP/2.0/UDP server10.biloxi.com;branch=z9hG4bK4b43c2ff8.1\r\n\
Via: SIP/2.0/UDP bigbox3.site3.atlanta.com;branch=z9hG4bK77ef4c2312983.1\r\n ;received=192.0.2.2\r\n\
Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8\r\n ;received=192.0.2.1\r\n\
Record-Route: <sip:server10.biloxi.com;lr>\r\n\
Record-Route: <sip:bigbox3.site3.atlanta.com;lr>\r\n\
Max-Forwards: 68\r\n\
To: Bob <sip:bob@biloxi.com>\r\n\
From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.com>\r\n\
Content-Length: 0\r\n\r\n";

const VIA: Via<'static> = Via {
    transport: "UDP",
    sent_by: "192.0.2.4",
    branch: "z9hG4bKnashds10",
};

fn bob() -> Dialog {
    Dialog::uas(&parse(F5).unwrap(), "a6c85cf", "sip:bob@192.0.2.4", 231).unwrap()
}

#[test]
fn a_uas_dialog_follows_12_1_1() {
    let d = bob();
    assert_eq!(d.call_id(), "a84b4c76e66710");
    assert_eq!(d.local_tag(), "a6c85cf");
    assert_eq!(d.remote_tag(), "1928301774");
    assert_eq!(d.remote_target(), "sip:alice@pc33.atlanta.com");
    // The UAS keeps the Record-Route order.
    assert_eq!(
        d.route_set(),
        [
            "<sip:server10.biloxi.com;lr>",
            "<sip:bigbox3.site3.atlanta.com;lr>"
        ]
    );
    assert_eq!(d.next_hop(), "sip:server10.biloxi.com;lr");
    assert!(!d.is_secure());
    assert_eq!(d.state(), DialogState::Confirmed);
}

/// F9 is Bob's 200: the To tag, the Contact, and (§12.1.1) the
/// Record-Route copied.
#[test]
fn the_uas_2xx_carries_tag_contact_and_record_route() {
    let d = bob();
    let invite = parse(F5).unwrap();
    let ok = d.response(&invite, 200, "OK").unwrap().to_bytes();
    let ok = parse(&ok).unwrap();
    assert_eq!(ok.status(), Some(200));
    assert_eq!(ok.to().unwrap().unwrap().tag(), Some("a6c85cf"));
    assert_eq!(ok.get("Contact"), Some("<sip:bob@192.0.2.4>"));
    assert_eq!(ok.record_route().unwrap().len(), 2);
    assert_eq!(ok.via().count(), 3);
}

/// F13, with the route set: BYE goes to Alice's Contact through the
/// recorded proxies (loose routing, §12.2.1.1).
#[test]
fn bye_within_the_dialog_is_f13_with_routes() {
    let mut d = bob();
    let bye = d.request("BYE", &VIA).unwrap().to_bytes();
    let bye = parse(&bye).unwrap();
    assert_eq!(bye.request_uri(), Some("sip:alice@pc33.atlanta.com"));
    assert_eq!(
        bye.get("Route"),
        Some("<sip:server10.biloxi.com;lr>, <sip:bigbox3.site3.atlanta.com;lr>")
    );
    let f13 = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/rfc3261-24.2-f13-bye.sip"
    ))
    .unwrap();
    let f13 = parse(&f13).unwrap();
    for name in [
        HeaderName::From,
        HeaderName::To,
        HeaderName::CallId,
        HeaderName::CSeq,
    ] {
        assert_eq!(
            bye.header(name).map(codec::Header::value),
            f13.header(name).map(codec::Header::value),
            "{name:?}"
        );
    }
    // The next one counts on.
    let again = d.request("INFO", &VIA).unwrap().to_bytes();
    assert_eq!(parse(&again).unwrap().get("CSeq"), Some("232 INFO"));
}

/// §12.2.1.1's example of a strict router first in the route set.
#[test]
fn a_strict_router_first_takes_the_request_uri() {
    let mut d = bob();
    d.route_set = [
        "<sip:proxy1>",
        "<sip:proxy2>",
        "<sip:proxy3;lr>",
        "<sip:proxy4>",
    ]
    .map(String::from)
    .to_vec();
    d.remote_target = "sip:user@remoteua".into();
    let r = d.request("BYE", &VIA).unwrap().to_bytes();
    let r = parse(&r).unwrap();
    assert_eq!(r.request_uri(), Some("sip:proxy1"));
    assert_eq!(
        r.get("Route"),
        Some("<sip:proxy2>, <sip:proxy3;lr>, <sip:proxy4>, <sip:user@remoteua>")
    );
    assert_eq!(d.next_hop(), "sip:proxy1");
}

/// Alice's side (§12.1.2): the route set is the 2xx's Record-Route
/// reversed, the remote target its Contact; the ACK keeps the INVITE's
/// CSeq number (F12).
#[test]
fn a_uac_dialog_follows_12_1_2() {
    let invite = parse(
        b"INVITE sip:bob@biloxi.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8\r\n\
Max-Forwards: 70\r\nTo: Bob <sip:bob@biloxi.com>\r\n\
From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\nCall-ID: a84b4c76e66710\r\n\
CSeq: 314159 INVITE\r\nContact: <sip:alice@pc33.atlanta.com>\r\nContent-Length: 0\r\n\r\n",
    )
    .unwrap();
    let bob = bob();
    let ok = bob
        .response(&parse(F5).unwrap(), 200, "OK")
        .unwrap()
        .to_bytes();
    let ok = parse(&ok).unwrap();
    let alice = Dialog::uac(&invite, &ok).unwrap();
    assert_eq!(alice.local_tag(), "1928301774");
    assert_eq!(alice.remote_tag(), "a6c85cf");
    assert_eq!(alice.remote_target(), "sip:bob@192.0.2.4");
    assert_eq!(
        alice.route_set(),
        [
            "<sip:bigbox3.site3.atlanta.com;lr>",
            "<sip:server10.biloxi.com;lr>"
        ]
    );
    let via = Via {
        transport: "UDP",
        sent_by: "pc33.atlanta.com",
        branch: "z9hG4bKnashds9",
    };
    let ack = alice.ack(314159, &via).unwrap().to_bytes();
    let ack = parse(&ack).unwrap();
    assert_eq!(ack.get("CSeq"), Some("314159 ACK"));
    assert_eq!(ack.request_uri(), Some("sip:bob@192.0.2.4"));
    assert_eq!(ack.get("To"), Some("Bob <sip:bob@biloxi.com>;tag=a6c85cf"));
    // Bob's dialog takes Alice's BYE: same dialog, CSeq above the INVITE.
    let mut alice = alice;
    let bye = alice.request("BYE", &via).unwrap().to_bytes();
    let bye = parse(&bye).unwrap();
    assert_eq!(bye.get("CSeq"), Some("314160 BYE"));
    let mut bob = bob;
    assert_eq!(bob.handle_request(&bye), Ok(()));
    assert_eq!(bob.state(), DialogState::Terminated);
}

/// §12.2.2: a request of another dialog is not ours (481 by the caller);
/// a CSeq not above the last one is out of order (500); a re-INVITE with
/// a Contact moves the remote target; ACK keeps the INVITE's number.
#[test]
fn requests_from_the_peer_follow_12_2_2() {
    let mut d = bob();
    let req = |cseq: &str, to_tag: &str, contact: &str| {
        format!(
            "{m} sip:bob@192.0.2.4 SIP/2.0\r\nVia: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK{cseq}\r\n\
Max-Forwards: 70\r\nFrom: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
To: Bob <sip:bob@biloxi.com>;tag={to_tag}\r\nCall-ID: a84b4c76e66710\r\nCSeq: {cseq}\r\n{contact}Content-Length: 0\r\n\r\n",
            m = cseq.split(' ').nth(1).unwrap()
        )
    };
    let ack = req("314159 ACK", "a6c85cf", "");
    assert_eq!(d.handle_request(&parse(ack.as_bytes()).unwrap()), Ok(()));
    let other = req("314160 INFO", "other", "");
    assert_eq!(
        d.handle_request(&parse(other.as_bytes()).unwrap()),
        Err(DialogError::NotThisDialog)
    );
    let old = req("314159 INFO", "a6c85cf", "");
    assert_eq!(
        d.handle_request(&parse(old.as_bytes()).unwrap()),
        Err(DialogError::OutOfOrder {
            got: 314159,
            last: 314159
        })
    );
    let reinvite = req(
        "314160 INVITE",
        "a6c85cf",
        "Contact: <sip:alice@192.0.2.101:5070>\r\n",
    );
    assert_eq!(
        d.handle_request(&parse(reinvite.as_bytes()).unwrap()),
        Ok(())
    );
    assert_eq!(d.remote_target(), "sip:alice@192.0.2.101:5070");
    assert_eq!(d.state(), DialogState::Confirmed);
}

#[test]
fn a_dialog_needs_a_from_tag_and_one_contact() {
    let no_tag = String::from_utf8(F5.to_vec())
        .unwrap()
        .replace(";tag=1928301774", "");
    assert_eq!(
        Dialog::uas(&parse(no_tag.as_bytes()).unwrap(), "t", "sip:b@h", 1),
        Err(DialogError::Missing("From tag"))
    );
    let no_contact = String::from_utf8(F5.to_vec())
        .unwrap()
        .replace("Contact: <sip:alice@pc33.atlanta.com>\r\n", "");
    assert_eq!(
        Dialog::uas(&parse(no_contact.as_bytes()).unwrap(), "t", "sip:b@h", 1),
        Err(DialogError::Missing("Contact"))
    );
}

#[test]
fn tags_are_cut_from_header_values_and_the_rest_kept() {
    assert_eq!(
        without_tag("Alice <sip:alice@atlanta.com>;tag=1928301774"),
        "Alice <sip:alice@atlanta.com>"
    );
    assert_eq!(
        without_tag("\"A;b\" <sip:a@h;transport=tcp> ;tag=x;foo=bar"),
        "\"A;b\" <sip:a@h;transport=tcp>;foo=bar"
    );
    assert_eq!(without_tag("<sip:a@h>"), "<sip:a@h>");
}

/// §13.3.1.4: T1, 2T1, 4T1 ... capped at T2; BYE after 64*T1.
#[test]
fn an_unacked_2xx_is_sent_again_until_64_t1() {
    let t0 = Instant::now();
    let t1 = Duration::from_millis(500);
    let t2 = Duration::from_secs(4);
    let mut ok = Unacked2xx::new(t0, t1, t2);
    assert_eq!(ok.handle_timeout(t0), Retransmit::Wait);
    let mut sends = Vec::new();
    loop {
        let at = ok.poll_timeout();
        match ok.handle_timeout(at) {
            Retransmit::Send => sends.push((at - t0).as_millis()),
            Retransmit::GiveUp => {
                assert_eq!(at - t0, t1 * 64);
                break;
            }
            Retransmit::Wait => panic!("woken for nothing at {at:?}"),
        }
    }
    assert_eq!(
        sends,
        [
            500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ]
    );
}
