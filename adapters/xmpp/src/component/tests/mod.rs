//! Fixtures for the component's core: stanzas in, stanzas and hub traffic
//! out. MUC stanzas follow the examples of XEP-0045 (sections named at
//! each), with the room and service names of this gateway.
#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::collections::HashMap;

use cpimgate_model::event::{Participant, RoomEventKind};
use cpimgate_model::port::{DeliveryOutcome, Failure, FailureKind};
use cpimgate_model::time::Timestamp;
use cpimgate_model::{Address, Message, MessageId, NameAddr, Origin, RoomEvent, RoomRef, World};
use minidom::Element;
use xmpp_parsers::jid::BareJid;
use xmpp_parsers::stanza::Stanza;

use super::core::{Core, Directory, Output};

const GW: &str = "gw.example.com";
const ROOM: &str = "#chan%irc.example.org@gw.example.com";
const NS: &str = "jabber:component:accept";
const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
const MUC_USER: &str = "http://jabber.org/protocol/muc#user";

#[derive(Default)]
struct FakeDir {
    owners: RefCell<HashMap<String, String>>,
}

impl Directory for FakeDir {
    fn bridge_of_room(&self, room: &BareJid) -> Option<String> {
        (room.as_str() == ROOM).then(|| "lobby".to_owned())
    }
    fn nick_owner(&self, _bridge: &str, nick: &str) -> Option<String> {
        self.owners.borrow().get(&nick.to_lowercase()).cloned()
    }
    fn rooms(&self, _domain: &str) -> Vec<BareJid> {
        vec![BareJid::new(ROOM).unwrap()]
    }
}

fn core() -> Core<FakeDir> {
    Core::new(GW, "xc", 100, FakeDir::default()).unwrap()
}

fn feed(c: &mut Core<FakeDir>, xml: &str) {
    let el: Element = xml.parse().unwrap();
    let s = Stanza::try_from(el).unwrap();
    c.handle_stanza(s, Timestamp::now());
}

#[derive(Default, Debug)]
struct Out {
    sent: Vec<Element>,
    hub: Vec<Message>,
    events: Vec<RoomEvent>,
    reserved: Vec<String>,
    released: Vec<String>,
    fetches: Vec<(u64, cpimgate_model::port::HistoryQuery)>,
    answers: Vec<(u64, DeliveryOutcome)>,
}

fn drain(c: &mut Core<FakeDir>) -> Out {
    let mut o = Out::default();
    while let Some(x) = c.poll_output() {
        match x {
            Output::Transmit(s) => o.sent.push(Element::from(*s)),
            Output::ToHub(m) => o.hub.push(*m),
            Output::Event(e) => o.events.push(*e),
            Output::Reserve { nick, .. } => o.reserved.push(nick),
            Output::Release { nick, .. } => o.released.push(nick),
            Output::FetchHistory { token, query, .. } => o.fetches.push((token, query)),
            Output::Answer { token, outcome } => o.answers.push((token, outcome)),
        }
    }
    o
}

fn condition(el: &Element) -> String {
    let e = el
        .get_child("error", NS)
        .unwrap_or_else(|| panic!("no error in {}", String::from(el)));
    e.children()
        .find(|c| c.ns() == STANZAS && c.name() != "text")
        .unwrap()
        .name()
        .to_owned()
}

fn statuses(el: &Element) -> Vec<String> {
    el.get_child("x", MUC_USER)
        .map(|x| {
            x.children()
                .filter(|c| c.name() == "status")
                .filter_map(|c| c.attr("code").map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn body(el: &Element) -> Option<String> {
    el.get_child("body", NS).map(|b| b.text())
}

const ALICE: &str = r"alice\40sip.example.com@gw.example.com";

fn chat(id: &str, to: &str, text: &str, receipt: bool) -> String {
    let r = if receipt {
        "<request xmlns='urn:xmpp:receipts'/>"
    } else {
        ""
    };
    format!(
        "<message xmlns='{NS}' type='chat' id='{id}' from='user@a.example/res' to='{to}'><body>{text}</body>{r}</message>"
    )
}

// --- 1:1 -------------------------------------------------------------------

#[test]
fn chat_to_a_contact_jid_goes_to_the_hub_unescaped() {
    let mut c = core();
    feed(&mut c, &chat("m1", ALICE, "hi &amp; bye", true));
    let o = drain(&mut c);
    assert!(o.sent.is_empty());
    let m = &o.hub[0];
    assert_eq!(m.to[0].address.to_string(), "im:alice@sip.example.com");
    assert_eq!(m.from.address.to_string(), "xmpp:user@a.example/res");
    assert_eq!(m.body.as_text(), Some("hi & bye"));
    assert_eq!(m.origin.native_id.as_deref(), Some("m1"));
    assert!(m.room.is_none());

    // Accepted by the hub: no receipt yet (XEP-0184 §5.1).
    c.handle_hub_answer(&m.id, DeliveryOutcome::Accepted);
    assert!(drain(&mut c).sent.is_empty());
    // The other world says delivered: the receipt, from the contact.
    c.handle_report(m, &DeliveryOutcome::Delivered);
    let o = drain(&mut c);
    let r = &o.sent[0];
    assert_eq!(r.attr("from"), Some(ALICE));
    assert_eq!(r.attr("to"), Some("user@a.example/res"));
    assert_eq!(
        r.get_child("received", "urn:xmpp:receipts")
            .unwrap()
            .attr("id"),
        Some("m1")
    );
}

#[test]
fn accepted_only_gives_no_receipt_and_failure_gives_an_error() {
    let mut c = core();
    feed(&mut c, &chat("m2", ALICE, "x", true));
    let m = drain(&mut c).hub.remove(0);
    c.handle_hub_answer(&m.id, DeliveryOutcome::Accepted);
    c.handle_report(&m, &DeliveryOutcome::Accepted);
    assert!(drain(&mut c).sent.is_empty());

    feed(&mut c, &chat("m3", ALICE, "x", true));
    let m = drain(&mut c).hub.remove(0);
    c.handle_hub_answer(&m.id, DeliveryOutcome::Accepted);
    c.handle_report(
        &m,
        &DeliveryOutcome::Failed(Failure::new(FailureKind::Rejected, "busy")),
    );
    let e = &drain(&mut c).sent[0];
    assert_eq!(e.attr("type"), Some("error"));
    assert_eq!(e.attr("id"), Some("m3"));
    assert_eq!(condition(e), "not-acceptable");
}

#[test]
fn unroutable_recipient_gets_item_not_found() {
    let mut c = core();
    feed(
        &mut c,
        &chat("m4", r"nobody\40nowhere.example@gw.example.com", "x", false),
    );
    let m = drain(&mut c).hub.remove(0);
    c.handle_hub_answer(
        &m.id,
        DeliveryOutcome::Failed(Failure::new(FailureKind::NotFound, "no route")),
    );
    let e = &drain(&mut c).sent[0];
    assert_eq!(
        e.attr("from"),
        Some(r"nobody\40nowhere.example@gw.example.com")
    );
    assert_eq!(e.attr("to"), Some("user@a.example/res"));
    assert_eq!(condition(e), "item-not-found");
}

#[test]
fn oversize_and_malformed_are_refused_at_once() {
    let mut c = core();
    feed(&mut c, &chat("big", ALICE, &"a".repeat(101), false));
    let o = drain(&mut c);
    assert!(o.hub.is_empty());
    assert_eq!(condition(&o.sent[0]), "not-acceptable");

    // XEP-0106: `\40` at the end leaves an empty domain: nothing it stands for.
    feed(&mut c, &chat("bad", r"alice\40@gw.example.com", "x", false));
    let o = drain(&mut c);
    assert!(o.hub.is_empty());
    let cond = condition(&o.sent[0]);
    assert!(
        cond == "jid-malformed" || cond == "item-not-found",
        "{cond}"
    );

    // No escaped address at all.
    feed(&mut c, &chat("plain", "alice@gw.example.com", "x", false));
    let o = drain(&mut c);
    assert_eq!(condition(&o.sent[0]), "item-not-found");
}

fn other_world(text: &str, to: &str) -> Message {
    Message::text(
        Origin {
            world: World::Sip,
            adapter: "sip".into(),
            native_id: None,
        },
        NameAddr::new("im:alice@sip.example.com".parse().unwrap()),
        NameAddr::new(to.parse().unwrap()),
        text,
    )
}

#[test]
fn deliver_comes_from_the_senders_component_jid() {
    let mut c = core();
    let m = other_world("<b>hi</b>\u{1}", "xmpp:user@a.example");
    c.handle_deliver(&m, std::time::Instant::now()).unwrap();
    let s = &drain(&mut c).sent[0];
    assert_eq!(s.attr("type"), Some("chat"));
    assert_eq!(s.attr("from"), Some(ALICE));
    assert_eq!(s.attr("to"), Some("user@a.example"));
    // Markup stays text; a control character becomes U+FFFD.
    assert_eq!(body(s).as_deref(), Some("<b>hi</b>\u{FFFD}"));
    assert!(s.get_child("origin-id", "urn:xmpp:sid:0").is_some());

    let m = other_world("x", "sip:bob@biloxi.example");
    assert_eq!(
        c.handle_deliver(&m, std::time::Instant::now())
            .unwrap_err()
            .kind,
        FailureKind::NotFound
    );
}

#[test]
fn subscriptions_to_contacts_are_granted() {
    let mut c = core();
    feed(
        &mut c,
        &format!("<presence xmlns='{NS}' type='subscribe' from='user@a.example' to='{ALICE}'/>"),
    );
    let o = drain(&mut c);
    assert_eq!(o.sent[0].attr("type"), Some("subscribed"));
    assert_eq!(o.sent[1].attr("type"), None);
    c.handle_shutdown();
    let o = drain(&mut c);
    assert_eq!(o.sent[0].attr("type"), Some("unavailable"));
}

// --- MUC -------------------------------------------------------------------

fn join(c: &mut Core<FakeDir>, who: &str, nick: &str) -> Out {
    // XEP-0045 §7.2.2 example 18.
    feed(
        c,
        &format!(
            "<presence xmlns='{NS}' from='{who}' to='{ROOM}/{nick}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
        ),
    );
    drain(c)
}

fn room_ref() -> RoomRef {
    RoomRef {
        adapter: "xc".into(),
        address: Address::Xmpp(cpimgate_model::address::XmppUri::new(ROOM.parse().unwrap())),
    }
}

fn remote_event(kind: RoomEventKind) -> RoomEvent {
    RoomEvent {
        id: MessageId::random(),
        room: room_ref(),
        origin: Origin {
            world: World::Irc,
            adapter: "irc".into(),
            native_id: None,
        },
        trail: Vec::new(),
        kind,
    }
}

fn bob() -> Participant {
    Participant {
        address: "irc://irc.example.org/bob,isnick".parse().unwrap(),
        nick: "bob".into(),
    }
}

#[test]
fn join_shows_remote_occupants_then_self_then_subject() {
    let mut c = core();
    c.handle_room_event(&remote_event(RoomEventKind::Join { who: bob() }));
    c.handle_room_event(&remote_event(RoomEventKind::Topic {
        by: None,
        topic: "Fire Burn and Cauldron Bubble!".into(),
    }));
    assert!(drain(&mut c).sent.is_empty(), "no XMPP occupant yet");

    let o = join(&mut c, "hag66@shakespeare.lit/pda", "thirdwitch");
    // §7.2.3 example 21..24: others first, then self with 110.
    assert_eq!(o.sent[0].attr("from"), Some(&*format!("{ROOM}/bob")));
    assert!(statuses(&o.sent[0]).is_empty());
    let me = &o.sent[1];
    assert_eq!(me.attr("from"), Some(&*format!("{ROOM}/thirdwitch")));
    assert_eq!(statuses(me), vec!["110"]);
    // §7.2.15 example 34: the subject, from the room.
    let subj = &o.sent[2];
    assert_eq!(subj.attr("type"), Some("groupchat"));
    assert_eq!(subj.attr("from"), Some(ROOM));
    assert_eq!(
        subj.get_child("subject", NS).unwrap().text(),
        "Fire Burn and Cauldron Bubble!"
    );
    assert_eq!(o.reserved, vec!["thirdwitch"]);
    match &o.events[0].kind {
        RoomEventKind::Join { who } => {
            assert_eq!(who.nick, "thirdwitch");
            // By real bare JID, stable across nick changes.
            assert_eq!(who.address.to_string(), "xmpp:hag66@shakespeare.lit");
        }
        k => panic!("{k:?}"),
    }
    assert_eq!(o.events[0].room, room_ref());
}

#[test]
fn join_errors() {
    let mut c = core();
    c.handle_room_event(&remote_event(RoomEventKind::Join { who: bob() }));
    drain(&mut c);
    // §7.2.9 example 29: the nick of a remote participant.
    let o = join(&mut c, "hag66@shakespeare.lit/pda", "bob");
    assert_eq!(o.sent[0].attr("type"), Some("error"));
    assert_eq!(condition(&o.sent[0]), "conflict");
    assert!(o.events.is_empty());
    // A nick reserved elsewhere in the bridge.
    c.dir
        .owners
        .borrow_mut()
        .insert("carol".into(), "irc:libera/carol".into());
    let o = join(&mut c, "hag66@shakespeare.lit/pda", "carol");
    assert_eq!(condition(&o.sent[0]), "conflict");
    // A room that is in no bridge.
    feed(
        &mut c,
        &format!(
            "<presence xmlns='{NS}' from='hag66@shakespeare.lit/pda' to='nothing%x.example@{GW}/n'/>"
        ),
    );
    assert_eq!(condition(&drain(&mut c).sent[0]), "item-not-found");
}

#[test]
fn groupchat_is_reflected_and_handed_to_the_hub() {
    let mut c = core();
    join(&mut c, "hag66@shakespeare.lit/pda", "thirdwitch");
    join(&mut c, "crone1@shakespeare.lit/desktop", "firstwitch");
    // §7.4 example 48.
    feed(
        &mut c,
        &format!(
            "<message xmlns='{NS}' from='hag66@shakespeare.lit/pda' id='hysf1v37' to='{ROOM}' type='groupchat'><body>Harpier cries: 'tis time, 'tis time.</body></message>"
        ),
    );
    let o = drain(&mut c);
    // Reflected to the other occupant at once; to the sender only once the
    // hub has it on disk: the sender's reflection says the room took it.
    assert_eq!(o.sent.len(), 1, "reflected to the other occupant");
    assert_eq!(o.sent[0].attr("to"), Some("crone1@shakespeare.lit/desktop"));
    let m = &o.hub[0];
    assert_eq!(m.room.as_ref(), Some(&room_ref()));
    assert_eq!(m.from.display.as_deref(), Some("thirdwitch"));
    assert_eq!(m.to[0].address, room_ref().address);
    c.handle_hub_answer(&m.id, DeliveryOutcome::Accepted);
    let own = drain(&mut c);
    assert_eq!(
        own.sent.len(),
        1,
        "reflected to the sender after acceptance"
    );
    assert_eq!(own.sent[0].attr("to"), Some("hag66@shakespeare.lit/pda"));
    for s in o.sent.iter().chain(&own.sent) {
        assert_eq!(s.attr("from"), Some(&*format!("{ROOM}/thirdwitch")));
        assert_eq!(s.attr("id"), Some("hysf1v37"));
        assert_eq!(s.attr("type"), Some("groupchat"));
    }

    // Delivery starts before the commit: a bridged room's delivery may be
    // reported before the hub's answer; the reflection still waits for it.
    feed(
        &mut c,
        &format!(
            "<message xmlns='{NS}' from='hag66@shakespeare.lit/pda' id='early1' to='{ROOM}' type='groupchat'><body>reported early</body></message>"
        ),
    );
    let o = drain(&mut c);
    assert_eq!(o.sent.len(), 1, "reflected to the other occupant only");
    let early = o.hub[0].clone();
    c.handle_report(&early, &DeliveryOutcome::Delivered);
    assert!(drain(&mut c).sent.is_empty(), "not reflected on the report");
    c.handle_hub_answer(&early.id, DeliveryOutcome::Accepted);
    let own = drain(&mut c);
    assert_eq!(own.sent.len(), 1, "reflected on the hub's answer");
    assert_eq!(own.sent[0].attr("to"), Some("hag66@shakespeare.lit/pda"));
    assert_eq!(own.sent[0].attr("type"), Some("groupchat"));

    // Refused by the hub (the store failed): an error, never a reflection.
    feed(
        &mut c,
        &format!(
            "<message xmlns='{NS}' from='hag66@shakespeare.lit/pda' id='lost1' to='{ROOM}' type='groupchat'><body>not stored</body></message>"
        ),
    );
    let o = drain(&mut c);
    assert_eq!(o.sent.len(), 1, "reflected to the other occupant only");
    c.handle_hub_answer(
        &o.hub[0].id,
        DeliveryOutcome::Failed(Failure::new(FailureKind::Internal, "disk full")),
    );
    let own = drain(&mut c);
    assert_eq!(own.sent.len(), 1);
    assert_eq!(own.sent[0].attr("to"), Some("hag66@shakespeare.lit/pda"));
    assert_eq!(own.sent[0].attr("type"), Some("error"));

    // §7.4: a non-occupant is refused.
    feed(
        &mut c,
        &format!(
            "<message xmlns='{NS}' from='wiccarocks@shakespeare.lit/laptop' id='x' to='{ROOM}' type='groupchat'><body>hi</body></message>"
        ),
    );
    let o = drain(&mut c);
    assert!(o.hub.is_empty());
    assert_eq!(condition(&o.sent[0]), "not-acceptable");
}

#[test]
fn nick_change_and_leave() {
    let mut c = core();
    join(&mut c, "hag66@shakespeare.lit/pda", "thirdwitch");
    join(&mut c, "crone1@shakespeare.lit/desktop", "firstwitch");
    // §7.6 example 53..55.
    feed(
        &mut c,
        &format!("<presence xmlns='{NS}' from='hag66@shakespeare.lit/pda' to='{ROOM}/oldhag'/>"),
    );
    let o = drain(&mut c);
    let unav: Vec<_> = o
        .sent
        .iter()
        .filter(|s| s.attr("type") == Some("unavailable"))
        .collect();
    assert_eq!(unav.len(), 2);
    for s in &unav {
        assert!(statuses(s).contains(&"303".to_owned()));
        let item = s
            .get_child("x", MUC_USER)
            .unwrap()
            .get_child("item", MUC_USER)
            .unwrap();
        assert_eq!(item.attr("nick"), Some("oldhag"));
    }
    let own = o
        .sent
        .iter()
        .find(|s| s.attr("to") == Some("hag66@shakespeare.lit/pda") && s.attr("type").is_none())
        .unwrap();
    assert_eq!(statuses(own), vec!["110"]);
    assert!(
        matches!(&o.events[0].kind, RoomEventKind::NickChange { who, new_nick } if who.nick == "thirdwitch" && new_nick == "oldhag")
    );
    assert_eq!(o.released, vec!["thirdwitch"]);
    assert_eq!(o.reserved, vec!["oldhag"]);

    // §7.14 example 80..81.
    feed(
        &mut c,
        &format!(
            "<presence xmlns='{NS}' from='hag66@shakespeare.lit/pda' to='{ROOM}/oldhag' type='unavailable'/>"
        ),
    );
    let o = drain(&mut c);
    assert_eq!(o.sent.len(), 2);
    let own = o
        .sent
        .iter()
        .find(|s| s.attr("to") == Some("hag66@shakespeare.lit/pda"))
        .unwrap();
    assert_eq!(statuses(own), vec!["110"]);
    assert!(matches!(&o.events[0].kind, RoomEventKind::Leave { who, .. } if who.nick == "oldhag"));
}

#[test]
fn remote_traffic_reaches_every_occupant() {
    let mut c = core();
    join(&mut c, "hag66@shakespeare.lit/pda", "thirdwitch");
    c.handle_room_event(&remote_event(RoomEventKind::Join { who: bob() }));
    let o = drain(&mut c);
    assert_eq!(o.sent[0].attr("from"), Some(&*format!("{ROOM}/bob")));

    let mut m = other_world("hello <room>", ROOM_URI);
    m.from = NameAddr::with_display("bob", bob().address);
    m.room = Some(room_ref());
    c.handle_deliver(&m, std::time::Instant::now()).unwrap();
    let s = &drain(&mut c).sent[0];
    assert_eq!(s.attr("type"), Some("groupchat"));
    assert_eq!(s.attr("from"), Some(&*format!("{ROOM}/bob")));
    assert_eq!(body(s).as_deref(), Some("hello <room>"));
    // XEP-0359 §2: the room's stanza-id, by the room, with the model id
    // (also the stanza's id); no origin-id, which is an XMPP sender's.
    let sid = s.get_child("stanza-id", "urn:xmpp:sid:0").unwrap();
    assert_eq!(sid.attr("by"), Some(ROOM));
    assert_eq!(sid.attr("id"), Some(m.id.as_str()));
    assert_eq!(s.attr("id"), Some(m.id.as_str()));
    assert!(s.get_child("origin-id", "urn:xmpp:sid:0").is_none());

    // The other side kicks our occupant: 307 and 110 (§9.1 example 113).
    c.handle_room_event(&remote_event(RoomEventKind::Kick {
        who: Participant {
            address: format!("{ROOM_URI}/thirdwitch").parse().unwrap(),
            nick: "thirdwitch".into(),
        },
        by: None,
        reason: Some("Avaunt, you cullion!".into()),
    }));
    let o = drain(&mut c);
    assert_eq!(o.sent[0].attr("type"), Some("unavailable"));
    assert_eq!(statuses(&o.sent[0]), vec!["307", "110"]);
    assert_eq!(o.released, vec!["thirdwitch"]);
}

const ROOM_URI: &str = "xmpp:%23chan%25irc.example.org@gw.example.com";

#[test]
fn a_kick_of_an_occupants_real_jid_removes_every_session_of_it() {
    // How occupants are known to the other worlds: by their real bare JID
    // (an IRC operator kicks the puppet of hag66@shakespeare.lit).
    let mut c = core();
    join(&mut c, "hag66@shakespeare.lit/pda", "thirdwitch");
    join(&mut c, "crone1@shakespeare.lit/desktop", "firstwitch");
    let _ = drain(&mut c);
    c.handle_room_event(&remote_event(RoomEventKind::Kick {
        who: Participant {
            address: "xmpp:hag66@shakespeare.lit".parse().unwrap(),
            nick: "thirdwitch".into(),
        },
        by: Some("op".into()),
        reason: Some("behave".into()),
    }));
    let o = drain(&mut c);
    let own = o
        .sent
        .iter()
        .find(|s| s.attr("to") == Some("hag66@shakespeare.lit/pda"))
        .expect("the kicked occupant is told");
    assert_eq!(own.attr("type"), Some("unavailable"));
    assert_eq!(statuses(own), vec!["307", "110"]);
    let other = o
        .sent
        .iter()
        .find(|s| s.attr("to") == Some("crone1@shakespeare.lit/desktop"))
        .expect("the other occupant is told");
    assert_eq!(statuses(other), vec!["307"]);
    assert_eq!(o.released, vec!["thirdwitch"]);

    // A kick of someone who is not here changes nothing for firstwitch.
    c.handle_room_event(&remote_event(RoomEventKind::Kick {
        who: Participant {
            address: "xmpp:nobody@shakespeare.lit".parse().unwrap(),
            nick: "nobody".into(),
        },
        by: None,
        reason: None,
    }));
    let o = drain(&mut c);
    assert!(o.released.is_empty());
}

#[test]
fn a_remote_nick_change_keeps_the_occupant_for_later_messages() {
    // An occupant of a room on another XMPP server (client mode): the
    // address is the occupant JID, which changes with the nick.
    for (old, new) in [
        (
            "xmpp:lobby@conference.b.example/bob",
            "xmpp:lobby@conference.b.example/bobby",
        ),
        (
            "irc://irc.example.org/bob,isnick",
            "irc://irc.example.org/bobby,isnick",
        ),
    ] {
        let mut c = core();
        join(&mut c, "hag66@shakespeare.lit/pda", "thirdwitch");
        let who = Participant {
            address: old.parse().unwrap(),
            nick: "bob".into(),
        };
        c.handle_room_event(&remote_event(RoomEventKind::Join { who: who.clone() }));
        c.handle_room_event(&remote_event(RoomEventKind::NickChange {
            who,
            new_nick: "bobby".into(),
        }));
        let o = drain(&mut c);
        assert_eq!(
            o.sent.last().unwrap().attr("from"),
            Some(&*format!("{ROOM}/bobby"))
        );

        // A message from the new address comes from the same occupant.
        let mut m = other_world("as bobby", ROOM_URI);
        m.from = NameAddr::with_display("bobby", new.parse().unwrap());
        m.room = Some(room_ref());
        c.handle_deliver(&m, std::time::Instant::now()).unwrap();
        let s = &drain(&mut c).sent[0];
        assert_eq!(s.attr("from"), Some(&*format!("{ROOM}/bobby")), "{old}");

        // So does the leave under the new address: no one is left behind.
        c.handle_room_event(&remote_event(RoomEventKind::Leave {
            who: Participant {
                address: new.parse().unwrap(),
                nick: "bobby".into(),
            },
            reason: None,
        }));
        let o = drain(&mut c);
        assert_eq!(o.sent[0].attr("type"), Some("unavailable"));
        assert_eq!(o.sent[0].attr("from"), Some(&*format!("{ROOM}/bobby")));
        join(&mut c, "crone1@shakespeare.lit/desktop", "firstwitch");
        let o = drain(&mut c);
        assert!(
            !o.sent
                .iter()
                .any(|s| s.attr("from") == Some(&*format!("{ROOM}/bobby"))),
            "{old}"
        );
    }
}

#[test]
fn disco_of_room_and_service() {
    let mut c = core();
    feed(
        &mut c,
        &format!(
            "<iq xmlns='{NS}' from='hag66@shakespeare.lit/pda' id='ik3vs715' to='{ROOM}' type='get'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
        ),
    );
    let r = &drain(&mut c).sent[0];
    assert_eq!(r.attr("type"), Some("result"));
    let q = r
        .get_child("query", "http://jabber.org/protocol/disco#info")
        .unwrap();
    let id = q
        .get_child("identity", "http://jabber.org/protocol/disco#info")
        .unwrap();
    assert_eq!(
        (id.attr("category"), id.attr("type")),
        (Some("conference"), Some("text"))
    );
    assert!(
        q.children()
            .any(|f| f.attr("var") == Some("http://jabber.org/protocol/muc"))
    );

    feed(
        &mut c,
        &format!(
            "<iq xmlns='{NS}' from='hag66@shakespeare.lit/pda' id='i2' to='{GW}' type='get'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>"
        ),
    );
    let r = &drain(&mut c).sent[0];
    let q = r
        .get_child("query", "http://jabber.org/protocol/disco#items")
        .unwrap();
    assert_eq!(q.children().next().unwrap().attr("jid"), Some(ROOM));

    feed(
        &mut c,
        &format!(
            "<iq xmlns='{NS}' from='hag66@shakespeare.lit/pda' id='i3' to='{GW}' type='get'><query xmlns='jabber:iq:version'/></iq>"
        ),
    );
    assert_eq!(condition(&drain(&mut c).sent[0]), "service-unavailable");
}

#[test]
fn disconnect_empties_rooms_and_tells_the_hub() {
    let mut c = core();
    join(&mut c, "hag66@shakespeare.lit/pda", "thirdwitch");
    c.handle_disconnect();
    let o = drain(&mut c);
    assert!(o.sent.is_empty());
    assert!(matches!(&o.events[0].kind, RoomEventKind::Leave { .. }));
    assert_eq!(o.released, vec!["thirdwitch"]);
}

mod features;
