#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use super::*;
use crate::codec::parse;

const CONTACT: &str = "sip:chatroom22@192.0.2.5;transport=tcp";
const TAG: &str = "3kd9a";
const VIA: Via<'static> = Via {
    transport: "TCP",
    sent_by: "192.0.2.5",
    branch: "z9hG4bK776asdhds",
};
const DOC: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<conference-info/>\n";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/subscribe/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The fixture with one header line replaced (or removed, with "").
fn changed(name: &str, old: &str, new: &str) -> Vec<u8> {
    let text = String::from_utf8(fixture(name)).unwrap();
    let old = format!("{old}\r\n");
    assert!(text.contains(&old), "{old:?} not in {name}");
    let new = if new.is_empty() {
        String::new()
    } else {
        format!("{new}\r\n")
    };
    text.replacen(&old, &new, 1).into_bytes()
}

fn sub() -> Subscription {
    Subscription::new(Config::conference(CONTACT), TAG, 1)
}

/// A subscription after the first SUBSCRIBE at `t0`.
fn active(t0: Instant) -> Subscription {
    let mut s = sub();
    let bytes = fixture("conference-subscribe.sip");
    s.handle_subscribe(t0, &parse(&bytes).unwrap()).unwrap();
    s
}

fn refuse(bytes: &[u8]) -> (Refusal, Vec<u8>) {
    let m = parse(bytes).unwrap();
    let mut s = sub();
    let err = s.handle_subscribe(Instant::now(), &m).unwrap_err();
    let response = err.response(&m, TAG).unwrap().to_bytes();
    (err, response)
}

#[test]
fn the_first_subscribe_gets_a_200_that_makes_the_dialog() {
    let t0 = Instant::now();
    let mut s = sub();
    let bytes = fixture("conference-subscribe.sip");
    let req = parse(&bytes).unwrap();
    req.validate_request().unwrap();
    let ok = s.handle_subscribe(t0, &req).unwrap().to_bytes();
    let ok = parse(&ok).unwrap();
    assert_eq!(ok.status(), Some(200));
    assert_eq!(ok.to().unwrap().unwrap().tag(), Some(TAG));
    assert_eq!(ok.get("Expires"), Some("600"));
    assert_eq!(ok.get("Contact"), Some(format!("<{CONTACT}>").as_str()));
    assert_eq!(ok.call_id(), req.call_id());
    assert_eq!(ok.get("CSeq"), Some("1 SUBSCRIBE"));
    assert_eq!(
        ok.top_via().unwrap().unwrap().branch(),
        Some("z9hG4bKnashds7")
    );
    assert_eq!(s.state(), State::Active(t0 + Duration::from_secs(600)));
    assert_eq!(s.poll_notify(), Some(Due::FullState));
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(600)));
    assert_eq!(s.dialog().unwrap().remote_tag(), "ffd2");
}

/// RFC 6665 §4.2.2, §8.2.1: the NOTIFY goes to the subscriber's Contact
/// within the dialog, with Event, Subscription-State and the body.
#[test]
fn the_first_notify_carries_full_state_at_once() {
    let t0 = Instant::now();
    let mut s = active(t0);
    assert_eq!(s.next_version(), 1);
    let n = s.notify(t0, &VIA, DOC).unwrap().to_bytes();
    let n = parse(&n).unwrap();
    n.validate_request().unwrap();
    assert_eq!(n.method(), Some("NOTIFY"));
    assert_eq!(
        n.request_uri(),
        Some("sip:bob@bobpc.example.com;transport=tcp")
    );
    assert_eq!(
        n.get("From"),
        Some("<sip:chatroom22@chat.example.com>;tag=3kd9a")
    );
    assert_eq!(n.get("To"), Some("Bob <sip:bob@example.com>;tag=ffd2"));
    assert_eq!(n.get("Call-ID"), Some("4fd8e76a2d7@bobpc.example.com"));
    assert_eq!(n.get("CSeq"), Some("1 NOTIFY"));
    assert_eq!(n.get("Event"), Some("conference"));
    assert_eq!(n.get("Subscription-State"), Some("active;expires=600"));
    assert_eq!(
        n.get("Content-Type"),
        Some("application/conference-info+xml")
    );
    assert_eq!(n.get("Contact"), Some(format!("<{CONTACT}>").as_str()));
    assert_eq!(n.body(), DOC.as_bytes());
    assert_eq!(s.poll_notify(), None);
    assert_eq!(s.next_version(), 2);

    // A change later: CSeq up, the time left down.
    let n = s.notify(t0 + Duration::from_secs(100), &VIA, DOC).unwrap();
    assert_eq!(n.get("CSeq"), Some("2 NOTIFY"));
    assert_eq!(n.get("Subscription-State"), Some("active;expires=500"));
    assert_eq!(s.next_version(), 3);
    // RFC 4575 §3.9: the next change not before 5 s.
    assert_eq!(s.next_change_at(), Some(t0 + Duration::from_secs(105)));
}

/// RFC 6665 §4.2.1.4: a refresh resets the timer and owes full state.
#[test]
fn a_refresh_resets_the_timer() {
    let t0 = Instant::now();
    let mut s = active(t0);
    s.notify(t0, &VIA, DOC).unwrap();
    let t1 = t0 + Duration::from_secs(500);
    s.handle_timeout(t1);
    assert_eq!(s.poll_notify(), None);
    let bytes = fixture("conference-refresh.sip");
    let ok = s.handle_subscribe(t1, &parse(&bytes).unwrap()).unwrap();
    assert_eq!(ok.get("Expires"), Some("600"));
    assert_eq!(
        ok.get("To"),
        Some("<sip:chatroom22@chat.example.com>;tag=3kd9a")
    );
    assert_eq!(s.poll_timeout(), Some(t1 + Duration::from_secs(600)));
    assert_eq!(s.poll_notify(), Some(Due::FullState));
    s.handle_timeout(t0 + Duration::from_secs(700));
    assert!(matches!(s.state(), State::Active(_)));
    let n = s.notify(t1, &VIA, DOC).unwrap();
    assert_eq!(n.get("Subscription-State"), Some("active;expires=600"));
    // The same refresh again is out of order.
    let again = s.handle_subscribe(t1, &parse(&bytes).unwrap()).unwrap_err();
    assert_eq!(again, Refusal::OutOfOrder);
    assert_eq!(again.code(), 500);
}

/// RFC 6665 §4.2.1.4: `Expires: 0` ends it with one last NOTIFY.
#[test]
fn an_unsubscribe_gets_a_last_notify() {
    let t0 = Instant::now();
    let mut s = active(t0);
    s.notify(t0, &VIA, DOC).unwrap();
    let bytes = fixture("conference-unsubscribe.sip");
    let ok = s.handle_subscribe(t0, &parse(&bytes).unwrap()).unwrap();
    assert_eq!(ok.get("Expires"), Some("0"));
    assert_eq!(s.poll_notify(), Some(Due::Final(Reason::Timeout)));
    assert_eq!(s.poll_timeout(), None);
    let n = s.notify(t0, &VIA, DOC).unwrap();
    assert_eq!(
        n.get("Subscription-State"),
        Some("terminated;reason=timeout")
    );
    assert_eq!(s.state(), State::Terminated(Some(Reason::Timeout)));
    assert!(s.is_terminated());
    assert_eq!(s.poll_notify(), None);
    assert_eq!(s.notify(t0, &VIA, DOC).unwrap_err(), NotifyError::NotActive);
    // Anything after it is of no subscription.
    let refresh = fixture("conference-refresh.sip");
    assert_eq!(
        s.handle_subscribe(t0, &parse(&refresh).unwrap())
            .unwrap_err(),
        Refusal::NoSuchSubscription
    );
}

/// A first SUBSCRIBE with `Expires: 0` is a fetch: 200, then the state
/// in a NOTIFY that ends it (RFC 6665 §4.4.3).
#[test]
fn a_fetch_gets_one_notify() {
    let bytes = changed("conference-subscribe.sip", "Expires: 600", "Expires: 0");
    let mut s = sub();
    let t0 = Instant::now();
    let ok = s.handle_subscribe(t0, &parse(&bytes).unwrap()).unwrap();
    assert_eq!(ok.get("Expires"), Some("0"));
    assert_eq!(s.poll_notify(), Some(Due::Final(Reason::Timeout)));
    let n = s.notify(t0, &VIA, DOC).unwrap();
    assert_eq!(
        n.get("Subscription-State"),
        Some("terminated;reason=timeout")
    );
    assert_eq!(n.body(), DOC.as_bytes());
}

#[test]
fn expiry_ends_it_with_reason_timeout() {
    let t0 = Instant::now();
    let mut s = active(t0);
    s.notify(t0, &VIA, DOC).unwrap();
    s.handle_timeout(t0 + Duration::from_secs(599));
    assert_eq!(s.poll_notify(), None);
    s.handle_timeout(t0 + Duration::from_secs(600));
    assert_eq!(s.poll_notify(), Some(Due::Final(Reason::Timeout)));
    let n = s.notify(t0 + Duration::from_secs(601), &VIA, "").unwrap();
    assert_eq!(
        n.get("Subscription-State"),
        Some("terminated;reason=timeout")
    );
    assert_eq!(n.get("Content-Type"), None);
    assert!(s.is_terminated());
}

/// A NOTIFY written after the expiry without a timer call is the last.
#[test]
fn a_late_notify_is_the_last() {
    let t0 = Instant::now();
    let mut s = active(t0);
    let n = s.notify(t0 + Duration::from_secs(900), &VIA, DOC).unwrap();
    assert_eq!(
        n.get("Subscription-State"),
        Some("terminated;reason=timeout")
    );
    assert!(s.is_terminated());
}

/// RFC 4575 §3.3: the room is gone, `noresource`; the gateway stops,
/// `deactivated`.
#[test]
fn the_room_going_away_ends_it_with_noresource() {
    let t0 = Instant::now();
    let mut s = active(t0);
    s.notify(t0, &VIA, DOC).unwrap();
    s.terminate(Reason::NoResource);
    assert_eq!(s.poll_notify(), Some(Due::Final(Reason::NoResource)));
    let n = s.notify(t0, &VIA, DOC).unwrap();
    assert_eq!(
        n.get("Subscription-State"),
        Some("terminated;reason=noresource")
    );
    assert!(s.is_terminated());

    let mut s = active(t0);
    s.terminate(Reason::Deactivated);
    let n = s.notify(t0, &VIA, "").unwrap();
    assert_eq!(
        n.get("Subscription-State"),
        Some("terminated;reason=deactivated")
    );

    let mut idle = sub();
    idle.terminate(Reason::NoResource);
    assert_eq!(idle.poll_notify(), None);
    assert!(idle.is_terminated());
}

/// RFC 6665 §4.2.2: 481 or a timeout to a NOTIFY removes the
/// subscription; another error leaves it.
#[test]
fn notify_responses() {
    let t0 = Instant::now();
    let mut s = active(t0);
    s.notify(t0, &VIA, DOC).unwrap();
    assert_eq!(s.handle_notify_response(200), NotifyOutcome::Delivered);
    assert_eq!(s.handle_notify_response(500), NotifyOutcome::Failed);
    assert!(matches!(s.state(), State::Active(_)));
    assert_eq!(s.handle_notify_response(481), NotifyOutcome::Ended);
    assert_eq!(s.state(), State::Terminated(None));
    assert_eq!(s.poll_notify(), None);
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(s.notify(t0, &VIA, DOC).unwrap_err(), NotifyError::NotActive);

    let mut s = active(t0);
    s.notify(t0, &VIA, DOC).unwrap();
    assert_eq!(s.handle_notify_response(408), NotifyOutcome::Ended);
    assert!(s.is_terminated());
}

#[test]
fn another_package_gets_489_with_allow_events() {
    let bytes = changed(
        "conference-subscribe.sip",
        "Event: conference",
        "Event: presence",
    );
    let (err, response) = refuse(&bytes);
    assert_eq!(
        err,
        Refusal::BadEvent {
            got: "presence".into(),
            ours: "conference".into()
        }
    );
    let r = parse(&response).unwrap();
    assert_eq!(r.status(), Some(489));
    assert_eq!(r.reason(), Some("Bad Event"));
    assert_eq!(r.get("Allow-Events"), Some("conference"));
    assert_eq!(r.to().unwrap().unwrap().tag(), Some(TAG));
    // Compared as written: no case folding, no templates.
    for other in ["Event: Conference", "Event: conference.winfo"] {
        let bytes = changed("conference-subscribe.sip", "Event: conference", other);
        assert_eq!(refuse(&bytes).0.code(), 489, "{other}");
    }
}

#[test]
fn no_event_is_a_bad_request() {
    let bytes = changed("conference-subscribe.sip", "Event: conference", "");
    let (err, response) = refuse(&bytes);
    assert_eq!(err, Refusal::BadRequest("Missing Event"));
    assert!(response.starts_with(b"SIP/2.0 400 Missing Event\r\n"));
}

/// RFC 4575 §3.4: Accept, when present, must allow the package's type.
#[test]
fn accept_must_allow_conference_info() {
    let bytes = changed(
        "conference-subscribe.sip",
        "Accept: application/conference-info+xml",
        "Accept: application/pidf+xml",
    );
    let (err, response) = refuse(&bytes);
    assert_eq!(err.code(), 406);
    let r = parse(&response).unwrap();
    assert_eq!(r.get("Accept"), Some("application/conference-info+xml"));

    let accepted = [
        "",
        "Accept: application/*",
        "Accept: */*",
        "Accept: application/pidf+xml, Application/Conference-Info+XML;q=0.5",
    ];
    for line in accepted {
        let bytes = changed(
            "conference-subscribe.sip",
            "Accept: application/conference-info+xml",
            line,
        );
        let mut s = sub();
        assert!(
            s.handle_subscribe(Instant::now(), &parse(&bytes).unwrap())
                .is_ok(),
            "{line}"
        );
    }
    for line in ["Accept: application/conference-info+xml;q=0", "Accept: "] {
        let bytes = changed(
            "conference-subscribe.sip",
            "Accept: application/conference-info+xml",
            line,
        );
        assert_eq!(refuse(&bytes).0.code(), 406, "{line}");
    }
}

/// RFC 6665 §4.2.1.1: too short gets 423 with Min-Expires; too long is
/// shortened; none is the package's default (RFC 4575 §3.3: an hour).
#[test]
fn expires_is_clamped() {
    let bytes = changed("conference-subscribe.sip", "Expires: 600", "Expires: 10");
    let (err, response) = refuse(&bytes);
    assert_eq!(err, Refusal::IntervalTooBrief { asked: 10, min: 60 });
    let r = parse(&response).unwrap();
    assert_eq!(r.status(), Some(423));
    assert_eq!(r.get("Min-Expires"), Some("60"));

    for (line, granted) in [
        ("Expires: 86400", "3600"),
        ("", "3600"),
        ("Expires: 60", "60"),
    ] {
        let bytes = changed("conference-subscribe.sip", "Expires: 600", line);
        let ok = sub()
            .handle_subscribe(Instant::now(), &parse(&bytes).unwrap())
            .unwrap();
        assert_eq!(ok.get("Expires"), Some(granted), "{line}");
    }
    let bytes = changed("conference-subscribe.sip", "Expires: 600", "Expires: soon");
    assert_eq!(refuse(&bytes).0, Refusal::BadRequest("Malformed Expires"));
}

/// A refused refresh leaves the subscription as it was.
#[test]
fn a_refused_refresh_changes_nothing() {
    let t0 = Instant::now();
    let mut s = active(t0);
    s.notify(t0, &VIA, DOC).unwrap();
    let bytes = changed("conference-refresh.sip", "Expires: 600", "Expires: 5");
    let err = s
        .handle_subscribe(t0 + Duration::from_secs(10), &parse(&bytes).unwrap())
        .unwrap_err();
    assert_eq!(err.code(), 423);
    assert_eq!(s.state(), State::Active(t0 + Duration::from_secs(600)));
    assert_eq!(s.poll_notify(), None);
}

#[test]
fn requests_of_no_subscription_get_481() {
    // A To tag on the first SUBSCRIBE names a dialog we do not have.
    let (err, _) = refuse(&fixture("conference-refresh.sip"));
    assert_eq!(err, Refusal::NoSuchSubscription);
    // A refresh with a tag not ours.
    let t0 = Instant::now();
    let mut s = active(t0);
    let bytes = changed(
        "conference-refresh.sip",
        "To: <sip:chatroom22@chat.example.com>;tag=3kd9a",
        "To: <sip:chatroom22@chat.example.com>;tag=other",
    );
    let err = s.handle_subscribe(t0, &parse(&bytes).unwrap()).unwrap_err();
    assert_eq!(err.code(), 481);
}

#[test]
fn a_subscribe_without_contact_is_refused() {
    let bytes = changed(
        "conference-subscribe.sip",
        "Contact: <sip:bob@bobpc.example.com;transport=tcp>",
        "",
    );
    let (err, response) = refuse(&bytes);
    assert_eq!(err, Refusal::BadRequest("Missing Contact"));
    assert!(response.starts_with(b"SIP/2.0 400 Missing Contact\r\n"));
}

/// RFC 6665 §8.2.1: the NOTIFY's Event carries the subscription's id; a
/// SUBSCRIBE for another id in the dialog is not this subscription.
#[test]
fn the_event_id_is_echoed() {
    let t0 = Instant::now();
    let bytes = changed(
        "conference-subscribe.sip",
        "Event: conference",
        "o: conference ; id=7",
    );
    let mut s = sub();
    s.handle_subscribe(t0, &parse(&bytes).unwrap()).unwrap();
    let n = s.notify(t0, &VIA, DOC).unwrap();
    assert_eq!(n.get("Event"), Some("conference;id=7"));

    let same = changed(
        "conference-refresh.sip",
        "Event: conference",
        "Event: conference;id=7",
    );
    assert!(s.handle_subscribe(t0, &parse(&same).unwrap()).is_ok());
    let other = changed(
        "conference-unsubscribe.sip",
        "Event: conference",
        "Event: conference;id=8",
    );
    let err = s.handle_subscribe(t0, &parse(&other).unwrap()).unwrap_err();
    assert_eq!(err, Refusal::OtherSubscription);
    assert_eq!(err.code(), 403);
}

#[test]
fn notify_before_subscribe_is_refused() {
    assert_eq!(
        sub().notify(Instant::now(), &VIA, DOC).unwrap_err(),
        NotifyError::NotActive
    );
}
