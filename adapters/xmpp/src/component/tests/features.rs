//! Fixtures for history on join (XEP-0045 §7.2.15), private messages
//! (§7.5), XEP-0359 stanza ids, XEP-0308 corrections, address translation
//! (XEP-0100 §6.3) and receipts on deliveries (XEP-0184).

use std::time::{Duration, Instant};

use cpimgate_model::port::HistoryQuery;

use super::*;

const SID: &str = "urn:xmpp:sid:0";
const CAROL_ROOM: &str = "sip:room@test.example";

fn with_history(n: usize) -> Core<FakeDir> {
    Core::new(GW, "xc", 100, FakeDir::default())
        .unwrap()
        .with_history_on_join(n)
}

fn join_with(c: &mut Core<FakeDir>, who: &str, nick: &str, x: &str) -> Out {
    feed(
        c,
        &format!(
            "<presence xmlns='{NS}' from='{who}' to='{ROOM}/{nick}'><x xmlns='http://jabber.org/protocol/muc'>{x}</x></presence>"
        ),
    );
    drain(c)
}

fn is_subject(el: &Element) -> bool {
    el.get_child("subject", NS).is_some()
}

/// A room message of the other world, said by `nick` at `secs` past the
/// epoch.
fn said(nick: &str, addr: &str, text: &str, secs: i64) -> Message {
    let mut m = Message::text(
        Origin {
            world: World::Sip,
            adapter: "sip".into(),
            native_id: None,
        },
        NameAddr::with_display(nick, addr.parse().unwrap()),
        NameAddr::new(CAROL_ROOM.parse().unwrap()),
        text,
    );
    m.room = Some(RoomRef {
        adapter: "sip".into(),
        address: CAROL_ROOM.parse().unwrap(),
    });
    m.datetime = Some(Timestamp {
        unix_micros: secs * 1_000_000,
    });
    m
}

/// The copy of a history message the hub delivers to this room.
fn live_copy(m: &Message) -> Message {
    let mut m = m.clone();
    m.room = Some(room_ref());
    m
}

/// [`said`] as the hub delivers it to this room.
fn live(nick: &str, addr: &str, text: &str, secs: i64) -> Message {
    let mut m = said(nick, addr, text, secs);
    m.room = Some(room_ref());
    m
}

// --- history on join ---------------------------------------------------------

#[test]
fn history_comes_after_the_presences_and_before_the_subject() {
    let mut c = with_history(20);
    // XEP-0045 §7.2.2 example 18 (no <history/>): the configured default.
    let o = join_with(&mut c, "hag66@shakespeare.lit/pda", "thirdwitch", "");
    assert!(statuses(o.sent.last().unwrap()).contains(&"110".to_owned()));
    assert!(
        !o.sent.iter().any(is_subject),
        "the subject waits for the history"
    );
    let (token, query) = o.fetches[0].clone();
    assert_eq!(
        query,
        HistoryQuery {
            max_messages: 20,
            since: None
        }
    );

    // Live traffic while the history is fetched waits behind it.
    let now_said = live("carol", "sip:carol@test.example", "live one", 300);
    let early = said("carol", "sip:carol@test.example", "said before", 100);
    c.handle_deliver(&now_said, Instant::now()).unwrap();
    c.handle_deliver(&live_copy(&early), Instant::now())
        .unwrap();
    assert!(drain(&mut c).sent.is_empty());

    let mut private = said("dave", "sip:dave@test.example", "psst", 150);
    private.private = true;
    let from_xmpp = {
        let mut m = said("secondwitch", "sip:x@test.example", "from xmpp", 200);
        m.from = NameAddr::with_display(
            "secondwitch",
            Address::Xmpp(cpimgate_model::address::XmppUri::new(
                format!("{ROOM}/secondwitch").parse().unwrap(),
            )),
        );
        m
    };
    c.handle_history(
        token,
        Ok(vec![early.clone(), private, from_xmpp]),
        Timestamp::now(),
    );
    let o = drain(&mut c);
    let bodies: Vec<_> = o.sent.iter().map(body).collect();
    assert_eq!(
        bodies,
        vec![
            Some("said before".to_owned()),
            Some("from xmpp".to_owned()),
            None,
            Some("live one".to_owned()),
        ],
        "history (no private message), the subject, then the held live message once"
    );
    assert!(is_subject(&o.sent[2]));
    // §7.2.15 example 37: from the occupant JID, delayed by the room.
    let h = &o.sent[0];
    assert_eq!(h.attr("type"), Some("groupchat"));
    assert_eq!(h.attr("from"), Some(&*format!("{ROOM}/carol")));
    assert_eq!(h.attr("to"), Some("hag66@shakespeare.lit/pda"));
    let delay = h.get_child("delay", "urn:xmpp:delay").unwrap();
    assert_eq!(delay.attr("from"), Some(ROOM));
    // XEP-0082: `Z` or `+00:00`, either is UTC.
    let stamp: xmpp_parsers::date::DateTime = delay.attr("stamp").unwrap().parse().unwrap();
    assert_eq!(crate::convert::timestamp(&stamp).unix_micros, 100_000_000);
    let sid = h.get_child("stanza-id", SID).unwrap();
    assert_eq!(sid.attr("by"), Some(ROOM));
    assert_eq!(sid.attr("id"), Some(early.id.as_str()));
    assert_eq!(
        o.sent[1].attr("from"),
        Some(&*format!("{ROOM}/secondwitch"))
    );

    // A live copy of a message already had as history is not shown again.
    c.handle_deliver(&live_copy(&early), Instant::now())
        .unwrap();
    assert!(drain(&mut c).sent.is_empty());
    c.handle_deliver(
        &live("carol", "sip:carol@test.example", "new", 400),
        Instant::now(),
    )
    .unwrap();
    assert_eq!(body(&drain(&mut c).sent[0]).as_deref(), Some("new"));
}

#[test]
fn history_limits_follow_the_request() {
    let now = Timestamp {
        unix_micros: 1_000 * 1_000_000,
    };
    let ask = |x: &str| {
        let el: Element = format!("<history xmlns='http://jabber.org/protocol/muc' {x}/>")
            .parse()
            .unwrap();
        xmpp_parsers::muc::muc::History::try_from(el).unwrap()
    };
    use crate::component::muc::history_wanted as wanted;
    // §7.2.15 example 39: maxstanzas='20'.
    let (q, chars) = wanted(5, Some(&ask("maxstanzas='20'")), now).unwrap();
    assert_eq!((q.max_messages, q.since, chars), (20, None, None));
    // Example 38: maxchars='65000'; the count of messages is the default.
    let (q, chars) = wanted(5, Some(&ask("maxchars='65000'")), now).unwrap();
    assert_eq!((q.max_messages, chars), (5, Some(65000)));
    // Example 40: seconds='180'.
    let (q, _) = wanted(5, Some(&ask("seconds='180'")), now).unwrap();
    assert_eq!(q.since.unwrap().unix_micros, 820 * 1_000_000);
    // Example 41: since='1970-01-01T00:00:00Z'; the later of the two wins.
    let (q, _) = wanted(
        5,
        Some(&ask("seconds='180' since='1970-01-01T00:00:00Z'")),
        now,
    )
    .unwrap();
    assert_eq!(q.since.unwrap().unix_micros, 820 * 1_000_000);
    // Example 42: maxstanzas='0' is none; so is maxchars='0'.
    assert!(wanted(5, Some(&ask("maxstanzas='0'")), now).is_none());
    assert!(wanted(5, Some(&ask("maxchars='0'")), now).is_none());
    // No <history/>: the default; a default of 0 is none.
    assert_eq!(wanted(5, None, now).unwrap().0.max_messages, 5);
    assert!(wanted(0, None, now).is_none());
    // A huge request is capped.
    let (q, _) = wanted(5, Some(&ask("maxstanzas='4000000000'")), now).unwrap();
    assert!(q.max_messages <= 500);
}

#[test]
fn maxchars_keeps_the_newest_whole_stanzas() {
    let mut c = with_history(20);
    let o = join_with(
        &mut c,
        "hag66@shakespeare.lit/pda",
        "thirdwitch",
        "<history maxchars='800'/>",
    );
    let (token, _) = o.fetches[0].clone();
    let old = said("carol", "sip:carol@test.example", &"a".repeat(1000), 1);
    let new = said("carol", "sip:carol@test.example", "short", 2);
    c.handle_history(token, Ok(vec![old, new]), Timestamp::now());
    let o = drain(&mut c);
    let bodies: Vec<_> = o.sent.iter().map(body).collect();
    assert_eq!(bodies, vec![Some("short".to_owned()), None]);
    assert!(String::from(&o.sent[0]).chars().count() <= 800);
}

#[test]
fn no_history_asked_means_the_subject_at_once_and_a_failed_fetch_still_ends_the_join() {
    let mut c = with_history(20);
    // §7.2.15 example 42.
    let o = join_with(
        &mut c,
        "hag66@shakespeare.lit/pda",
        "thirdwitch",
        "<history maxstanzas='0'/>",
    );
    assert!(o.fetches.is_empty());
    assert!(is_subject(o.sent.last().unwrap()));

    let o = join_with(&mut c, "crone1@shakespeare.lit/desktop", "firstwitch", "");
    let (token, _) = o.fetches[0].clone();
    c.handle_history(
        token,
        Err(Failure::new(FailureKind::Timeout, "slow")),
        Timestamp::now(),
    );
    let o = drain(&mut c);
    assert_eq!(o.sent.len(), 1);
    assert!(is_subject(&o.sent[0]));
    // A second answer for the same token does nothing.
    c.handle_history(token, Ok(vec![]), Timestamp::now());
    assert!(drain(&mut c).sent.is_empty());
}

// --- XEP-0308 ----------------------------------------------------------------

#[test]
fn corrections_become_marked_messages() {
    let mut c = core();
    // XEP-0308 §4 example 2, as a 1:1 message to a contact.
    feed(
        &mut c,
        &format!(
            "<message xmlns='{NS}' type='chat' from='user@a.example/res' to='{ALICE}' id='good1'><body>But soft, what light through yonder window breaks?</body><replace id='bad1' xmlns='urn:xmpp:message-correct:0'/></message>"
        ),
    );
    let o = drain(&mut c);
    assert_eq!(
        o.hub[0].body.as_text(),
        Some("* correction: But soft, what light through yonder window breaks?")
    );
    // In a room, the reflection keeps what the user wrote; the hub gets the marker.
    join(&mut c, "hag66@shakespeare.lit/pda", "thirdwitch");
    feed(
        &mut c,
        &format!(
            "<message xmlns='{NS}' from='hag66@shakespeare.lit/pda' id='good2' to='{ROOM}' type='groupchat'><body>fixed</body><replace id='bad2' xmlns='urn:xmpp:message-correct:0'/></message>"
        ),
    );
    let o = drain(&mut c);
    assert_eq!(o.hub[0].body.as_text(), Some("* correction: fixed"));
}

// --- XEP-0359 ----------------------------------------------------------------

#[test]
fn room_messages_carry_stanza_ids_and_a_repeated_origin_id_is_one_message() {
    let mut c = core();
    join(&mut c, "hag66@shakespeare.lit/pda", "thirdwitch");
    join(&mut c, "crone1@shakespeare.lit/desktop", "firstwitch");
    // XEP-0359 §3 example 2, sent to our room by an occupant.
    let msg = format!(
        "<message xmlns='{NS}' from='hag66@shakespeare.lit/pda' to='{ROOM}' type='groupchat'><body>Typical body text</body><origin-id xmlns='{SID}' id='de305d54-75b4-431b-adb2-eb6b9e546013'/></message>"
    );
    feed(&mut c, &msg);
    let o = drain(&mut c);
    let id = o.hub[0].id.clone();
    assert_eq!(
        id.as_str(),
        "xmpp:hag66@shakespeare.lit#de305d54-75b4-431b-adb2-eb6b9e546013"
    );
    assert_eq!(o.sent.len(), 1, "to the other occupant");
    c.handle_hub_answer(&id, DeliveryOutcome::Accepted);
    let own = drain(&mut c);
    assert_eq!(own.sent.len(), 1, "to the sender, once accepted");
    for s in o.sent.iter().chain(&own.sent) {
        // Example 3: the room's stanza-id, the origin-id kept.
        let sid = s.get_child("stanza-id", SID).unwrap();
        assert_eq!(
            (sid.attr("by"), sid.attr("id")),
            (Some(ROOM), Some(id.as_str()))
        );
        assert_eq!(
            s.get_child("origin-id", SID).unwrap().attr("id"),
            Some("de305d54-75b4-431b-adb2-eb6b9e546013")
        );
    }
    // The same again: the same model id (the hub drops it), reflected to
    // the sender only.
    feed(&mut c, &msg);
    let o = drain(&mut c);
    assert_eq!(o.hub[0].id, id);
    assert!(o.sent.is_empty(), "{:?}", o.sent);
    // The hub's Duplicate is answered as accepted.
    c.handle_hub_answer(&id, DeliveryOutcome::Accepted);
    let o = drain(&mut c);
    assert_eq!(o.sent.len(), 1);
    assert_eq!(o.sent[0].attr("to"), Some("hag66@shakespeare.lit/pda"));
    // Another sender with the same origin-id is another message.
    feed(
        &mut c,
        &msg.replace(
            "hag66@shakespeare.lit/pda",
            "crone1@shakespeare.lit/desktop",
        ),
    );
    let o = drain(&mut c);
    assert_ne!(o.hub[0].id, id);
    assert_eq!(o.sent.len(), 1, "to the other occupant");
    c.handle_hub_answer(&o.hub[0].id, DeliveryOutcome::Accepted);
    assert_eq!(drain(&mut c).sent.len(), 1, "to the sender, once accepted");
    // An unusable origin-id gives a fresh id.
    feed(
        &mut c,
        &format!(
            "<message xmlns='{NS}' from='hag66@shakespeare.lit/pda' to='{ROOM}' type='groupchat'><body>x</body><origin-id xmlns='{SID}' id='{}'/></message>",
            "z".repeat(300)
        ),
    );
    assert!(!drain(&mut c).hub[0].id.as_str().starts_with("xmpp:"));

    // XEP-0359 §6: the room says it adds stanza-ids.
    feed(
        &mut c,
        &format!(
            "<iq xmlns='{NS}' type='get' from='hag66@shakespeare.lit/pda' to='{ROOM}' id='d2'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
        ),
    );
    let r = &drain(&mut c).sent[0];
    assert!(
        r.get_child("query", "http://jabber.org/protocol/disco#info")
            .unwrap()
            .children()
            .any(|f| f.name() == "feature" && f.attr("var") == Some(SID))
    );

    // Other worlds' messages get the stanza-id too.
    c.handle_deliver(
        &live("carol", "sip:carol@test.example", "hi", 5),
        Instant::now(),
    )
    .unwrap();
    let o = drain(&mut c);
    assert!(
        o.sent
            .iter()
            .all(|s| s.get_child("stanza-id", SID).is_some())
    );
}

// --- private messages (XEP-0045 §7.5) -----------------------------------------

#[test]
fn private_messages_inside_a_room() {
    let mut c = core();
    join(&mut c, "wiccarocks@shakespeare.lit/laptop", "secondwitch");
    join(&mut c, "crone1@shakespeare.lit/desktop", "firstwitch");
    c.handle_room_event(&remote_event(RoomEventKind::Join { who: bob() }));
    drain(&mut c);

    // §7.5 example 49, to another XMPP occupant: delivered by the room.
    feed(
        &mut c,
        &format!(
            "<message xmlns='{NS}' from='wiccarocks@shakespeare.lit/laptop' id='hgn27af1' to='{ROOM}/firstwitch' type='chat'><body>I'll give thee a wind.</body><x xmlns='{MUC_USER}'/></message>"
        ),
    );
    let o = drain(&mut c);
    assert!(o.hub.is_empty());
    // Example 50.
    let s = &o.sent[0];
    assert_eq!(s.attr("from"), Some(&*format!("{ROOM}/secondwitch")));
    assert_eq!(s.attr("to"), Some("crone1@shakespeare.lit/desktop"));
    assert_eq!(s.attr("type"), Some("chat"));
    assert_eq!(s.attr("id"), Some("hgn27af1"));
    assert!(s.get_child("x", MUC_USER).is_some());

    // To the participant of another world: a private message of the room.
    feed(
        &mut c,
        &format!(
            "<message xmlns='{NS}' from='wiccarocks@shakespeare.lit/laptop' id='p2' to='{ROOM}/bob' type='chat'><body>psst</body></message>"
        ),
    );
    let o = drain(&mut c);
    assert!(o.sent.is_empty());
    let m = &o.hub[0];
    assert!(m.private);
    assert_eq!(m.room.as_ref(), Some(&room_ref()));
    assert_eq!(m.to[0].address, bob().address);
    assert_eq!(m.from.display.as_deref(), Some("secondwitch"));
    // The sender as the other worlds know them: by real bare JID.
    assert_eq!(
        m.from.address.to_string(),
        "xmpp:wiccarocks@shakespeare.lit"
    );
    // A failure comes back from room/bob.
    c.handle_hub_answer(
        &m.id,
        DeliveryOutcome::Failed(Failure::new(FailureKind::NotFound, "gone")),
    );
    let e = &drain(&mut c).sent[0];
    assert_eq!(e.attr("from"), Some(&*format!("{ROOM}/bob")));
    assert_eq!(condition(e), "item-not-found");

    // Example 51: groupchat to one occupant is a bad request.
    feed(
        &mut c,
        &format!(
            "<message xmlns='{NS}' from='wiccarocks@shakespeare.lit/laptop' id='bx71f29k' to='{ROOM}/firstwitch' type='groupchat'><body>I'll give thee a wind.</body></message>"
        ),
    );
    assert_eq!(condition(&drain(&mut c).sent[0]), "bad-request");
    // No such nick: item-not-found; not an occupant: not-acceptable.
    feed(
        &mut c,
        &format!(
            "<message xmlns='{NS}' from='wiccarocks@shakespeare.lit/laptop' id='p3' to='{ROOM}/nobody' type='chat'><body>?</body></message>"
        ),
    );
    assert_eq!(condition(&drain(&mut c).sent[0]), "item-not-found");
    feed(
        &mut c,
        &format!(
            "<message xmlns='{NS}' from='stranger@example.org/x' id='p4' to='{ROOM}/bob' type='chat'><body>?</body></message>"
        ),
    );
    assert_eq!(condition(&drain(&mut c).sent[0]), "not-acceptable");
}

#[test]
fn a_private_message_of_another_world_reaches_one_occupant() {
    let mut c = core();
    join(&mut c, "wiccarocks@shakespeare.lit/laptop", "secondwitch");
    join(&mut c, "crone1@shakespeare.lit/desktop", "firstwitch");
    let mut m = said("bob", "irc://irc.example.org/bob,isnick", "just you", 1);
    m.room = Some(room_ref());
    m.private = true;
    m.to = vec![NameAddr::new(
        format!(
            "xmpp:{}/firstwitch",
            "%23chan%25irc.example.org@gw.example.com"
        )
        .parse()
        .unwrap(),
    )];
    c.handle_deliver(&m, Instant::now()).unwrap();
    let o = drain(&mut c);
    assert_eq!(o.sent.len(), 1);
    let s = &o.sent[0];
    assert_eq!(s.attr("type"), Some("chat"));
    assert_eq!(s.attr("to"), Some("crone1@shakespeare.lit/desktop"));
    assert_eq!(s.attr("from"), Some(&*format!("{ROOM}/bob")));
    assert!(s.get_child("x", MUC_USER).is_some());
    // To a nick nobody has: not found, for the hub to report.
    m.to = vec![NameAddr::new(
        format!("xmpp:{}/nobody", "%23chan%25irc.example.org@gw.example.com")
            .parse()
            .unwrap(),
    )];
    assert_eq!(
        c.handle_deliver(&m, Instant::now()).unwrap_err().kind,
        FailureKind::NotFound
    );
}

// --- jabber:iq:gateway (XEP-0100 §6.3) ---------------------------------------

#[test]
fn address_translation() {
    let mut c = core();
    // Example 41 (get) and 42 (the answer).
    feed(
        &mut c,
        &format!(
            "<iq xmlns='{NS}' type='get' from='romeo@montague.lit/orchard' to='{GW}' id='gate1'><query xmlns='jabber:iq:gateway'/></iq>"
        ),
    );
    let r = &drain(&mut c).sent[0];
    assert_eq!(r.attr("type"), Some("result"));
    let q = r.get_child("query", "jabber:iq:gateway").unwrap();
    assert!(q.get_child("desc", "jabber:iq:gateway").is_some());
    assert!(q.get_child("prompt", "jabber:iq:gateway").is_some());
    // Examples 43 and 44.
    feed(
        &mut c,
        &format!(
            "<iq xmlns='{NS}' type='set' from='romeo@montague.lit/orchard' to='{GW}' id='gate2'><query xmlns='jabber:iq:gateway'><prompt>sip:alice@atlanta.example.com</prompt></query></iq>"
        ),
    );
    let r = &drain(&mut c).sent[0];
    assert_eq!(r.attr("type"), Some("result"));
    assert_eq!(
        r.get_child("query", "jabber:iq:gateway")
            .and_then(|q| q.get_child("jid", "jabber:iq:gateway"))
            .map(Element::text)
            .as_deref(),
        Some(r"alice\40atlanta.example.com@gw.example.com")
    );
    for (prompt, cond) in [
        ("<prompt>no address here</prompt>", "not-acceptable"),
        ("", "bad-request"),
    ] {
        feed(
            &mut c,
            &format!(
                "<iq xmlns='{NS}' type='set' from='romeo@montague.lit/orchard' to='{GW}' id='gate3'><query xmlns='jabber:iq:gateway'>{prompt}</query></iq>"
            ),
        );
        let r = &drain(&mut c).sent[0];
        assert_eq!(r.attr("type"), Some("error"));
        assert_eq!(condition(r), cond);
    }
    // Advertised on the service (XEP-0100 §6.1: the gateway identity).
    feed(
        &mut c,
        &format!(
            "<iq xmlns='{NS}' type='get' from='romeo@montague.lit/orchard' to='{GW}' id='d1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
        ),
    );
    let r = &drain(&mut c).sent[0];
    let q = r
        .get_child("query", "http://jabber.org/protocol/disco#info")
        .unwrap();
    assert!(
        q.children()
            .any(|f| f.name() == "feature" && f.attr("var") == Some("jabber:iq:gateway"))
    );
    assert!(
        q.children()
            .any(|i| i.name() == "identity" && i.attr("category") == Some("gateway"))
    );
}

// --- receipts (XEP-0184) ------------------------------------------------------

fn with_receipts() -> Core<FakeDir> {
    Core::new(GW, "xc", 100, FakeDir::default())
        .unwrap()
        .with_receipt_wait(Duration::from_secs(5))
}

fn received(from: &str, id: &str) -> String {
    // XEP-0184 §5.1 example 2.
    format!(
        "<message xmlns='{NS}' from='{from}' to='{ALICE}' id='r-{id}'><received xmlns='urn:xmpp:receipts' id='{id}'/></message>"
    )
}

#[test]
fn a_receipt_makes_a_delivery_delivered() {
    let mut c = with_receipts();
    let t0 = Instant::now();
    let m = other_world("hello", "xmpp:user@a.example");
    let super::super::core::Delivery::AwaitingReceipt(token) = c.handle_deliver(&m, t0).unwrap()
    else {
        panic!("a receipt is awaited");
    };
    let o = drain(&mut c);
    // XEP-0184 §5.1 example 1: the request, and an id to answer.
    let s = &o.sent[0];
    assert!(s.get_child("request", "urn:xmpp:receipts").is_some());
    assert_eq!(s.attr("id"), Some(m.id.as_str()));
    assert!(o.answers.is_empty());
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(5)));

    // Someone else cannot answer for the recipient.
    feed(&mut c, &received("mallory@evil.example/x", m.id.as_str()));
    assert!(drain(&mut c).answers.is_empty());
    feed(&mut c, &received("user@a.example/phone", m.id.as_str()));
    assert_eq!(
        drain(&mut c).answers,
        vec![(token, DeliveryOutcome::Delivered)]
    );
    assert_eq!(c.poll_timeout(), None);
    // A second receipt is nothing.
    feed(&mut c, &received("user@a.example/phone", m.id.as_str()));
    assert!(drain(&mut c).answers.is_empty());
}

#[test]
fn an_error_fails_a_delivery_and_silence_only_accepts_it() {
    let mut c = with_receipts();
    let t0 = Instant::now();
    let m1 = other_world("one", "xmpp:user@a.example");
    let m2 = other_world("two", "xmpp:user@a.example");
    c.handle_deliver(&m1, t0).unwrap();
    c.handle_deliver(&m2, t0 + Duration::from_secs(1)).unwrap();
    drain(&mut c);
    // RFC 6121 §8.5.2: no such user.
    feed(
        &mut c,
        &format!(
            "<message xmlns='{NS}' type='error' from='user@a.example' to='{ALICE}' id='{}'><error type='cancel'><service-unavailable xmlns='{STANZAS}'/></error></message>",
            m1.id
        ),
    );
    let o = drain(&mut c);
    assert!(matches!(
        &o.answers[0].1,
        DeliveryOutcome::Failed(f) if f.kind == FailureKind::NotFound
    ));
    // Fake time: nothing before the deadline, accepted at it.
    c.handle_timeout(t0 + Duration::from_secs(5));
    assert!(drain(&mut c).answers.is_empty());
    c.handle_timeout(t0 + Duration::from_secs(6));
    assert!(matches!(
        drain(&mut c).answers.as_slice(),
        [(_, DeliveryOutcome::Accepted)]
    ));
    assert_eq!(c.poll_timeout(), None);

    // recipient-unavailable is worth a retry.
    let m3 = other_world("three", "xmpp:user@a.example");
    c.handle_deliver(&m3, t0).unwrap();
    drain(&mut c);
    feed(
        &mut c,
        &format!(
            "<message xmlns='{NS}' type='error' from='user@a.example/x' to='{ALICE}' id='{}'><error type='wait'><recipient-unavailable xmlns='{STANZAS}'/></error></message>",
            m3.id
        ),
    );
    assert!(matches!(
        &drain(&mut c).answers[0].1,
        DeliveryOutcome::Failed(f) if f.is_transient()
    ));

    // A lost connection answers what still waits: the server had it.
    let m4 = other_world("four", "xmpp:user@a.example");
    c.handle_deliver(&m4, t0).unwrap();
    drain(&mut c);
    c.handle_disconnect();
    assert!(matches!(
        drain(&mut c).answers.as_slice(),
        [(_, DeliveryOutcome::Accepted)]
    ));
}

#[test]
fn no_wait_means_no_request() {
    let mut c = core();
    let m = other_world("hello", "xmpp:user@a.example");
    assert_eq!(
        c.handle_deliver(&m, Instant::now()).unwrap(),
        super::super::core::Delivery::Sent
    );
    let s = &drain(&mut c).sent[0];
    assert!(s.get_child("request", "urn:xmpp:receipts").is_none());
}
