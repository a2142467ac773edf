//! Fixtures for the pure parts of client mode: stanzas in, model out.
//! The stanzas are the examples of XEP-0045 (sections named at each).
#![allow(clippy::unwrap_used)]

use cpimgate_model::event::RoomEventKind;
use cpimgate_model::time::Timestamp;
use cpimgate_model::{Address, Message, NameAddr, Origin, RoomRef, World};
use minidom::Element;
use xmpp_parsers::message::Message as XMessage;
use xmpp_parsers::presence::Presence;
use xmpp_parsers::stanza_id::OriginId;

use super::rooms::{Output, Rooms};
use crate::config::{ClientConfig, ClientRoom};

/// The namespace xmpp-parsers parses stanzas in, in this build (see `ns`).
const NS: &str = xmpp_parsers::ns::DEFAULT_NS;
const ROOM: &str = "coven@chat.shakespeare.lit";

fn rooms() -> Rooms {
    let config = ClientConfig {
        jid: "crone1@shakespeare.lit".into(),
        password: "x".into(),
        server: None,
        insecure_accept_any_certificate: false,
        rooms: vec![ClientRoom {
            room: ROOM.into(),
            nick: "crone".into(),
        }],
        format: "<{nick}> {text}".into(),
        max_body: 1000,
        tcp_nodelay: true,
        presence_notices: false,
        notice_format: Default::default(),
    };
    Rooms::new("xa", &config).unwrap()
}

fn el(xml: &str) -> Element {
    let xml = xml
        .trim()
        .replacen("<message ", &format!("<message xmlns='{NS}' "), 1)
        .replacen("<presence ", &format!("<presence xmlns='{NS}' "), 1);
    xml.parse().unwrap()
}

fn msg(xml: &str) -> XMessage {
    XMessage::try_from(el(xml)).unwrap()
}

fn pres(xml: &str) -> Presence {
    Presence::try_from(el(xml)).unwrap()
}

fn now() -> Timestamp {
    Timestamp { unix_micros: 1 }
}

/// XEP-0045 §7.2.3, example 24: our own presence, status 110.
const SELF_PRESENCE: &str =
    "<presence from='coven@chat.shakespeare.lit/crone' to='crone1@shakespeare.lit/pda'>
  <x xmlns='http://jabber.org/protocol/muc#user'>
    <item affiliation='member' role='participant'/>
    <status code='110'/>
    <status code='210'/>
  </x>
</presence>";

/// XEP-0045 §7.2.3, example 22: an occupant's presence.
const FIRSTWITCH: &str =
    "<presence from='coven@chat.shakespeare.lit/firstwitch' to='crone1@shakespeare.lit/pda'>
  <x xmlns='http://jabber.org/protocol/muc#user'>
    <item affiliation='owner' role='moderator'/>
  </x>
</presence>";

/// XEP-0045 §7.2.15, example 40: the subject that ends the join.
const SUBJECT: &str = "<message from='coven@chat.shakespeare.lit/secondwitch' id='F437C672-D438-4BD3-9BFF-091050D32EE2' to='crone1@shakespeare.lit/desktop' type='groupchat'>
  <subject>Fire Burn and Cauldron Bubble!</subject>
</message>";

/// Joined, with firstwitch present and the subject seen.
fn joined() -> Rooms {
    let mut r = rooms();
    assert!(r.join(0).is_some());
    assert!(r.handle_presence(pres(FIRSTWITCH)).is_empty());
    let out = r.handle_presence(pres(SELF_PRESENCE));
    assert!(matches!(out[0], Output::Joined(0)));
    match &out[1] {
        Output::Event(e) => match &e.kind {
            RoomEventKind::Roster { participants } => {
                assert_eq!(participants.len(), 1);
                assert_eq!(participants[0].nick, "firstwitch");
            }
            k => panic!("{k:?}"),
        },
        o => panic!("{o:?}"),
    }
    assert!(r.handle_message(msg(SUBJECT), now()).is_empty());
    r
}

fn room_address() -> Address {
    format!("xmpp:{ROOM}").parse().unwrap()
}

#[test]
fn join_asks_for_no_history() {
    let mut r = rooms();
    let p = r.join(0).unwrap();
    let xml = String::from(&Element::from(p));
    assert!(
        xml.contains("to='coven@chat.shakespeare.lit/crone'"),
        "{xml}"
    );
    assert!(xml.contains("maxstanzas='0'"), "{xml}");
    assert_eq!(r.find(&room_address()), Some(0));
}

#[test]
fn groupchat_message_goes_to_the_hub() {
    let mut r = joined();
    // XEP-0045 §7.4, example 49, with a stanza-id (XEP-0359 §3).
    let out = r.handle_message(
        msg("<message from='coven@chat.shakespeare.lit/thirdwitch' id='hysf1v37' to='crone1@shakespeare.lit/desktop' type='groupchat'>
  <body>Harpier cries: 'tis time, 'tis time.</body>
  <stanza-id xmlns='urn:xmpp:sid:0' id='5f3dbc5e' by='coven@chat.shakespeare.lit'/>
</message>"),
        now(),
    );
    let [Output::Message(m)] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(
        m.body.as_text(),
        Some("Harpier cries: 'tis time, 'tis time.")
    );
    assert_eq!(m.from.display.as_deref(), Some("thirdwitch"));
    assert_eq!(
        m.from.address.to_string(),
        "xmpp:coven@chat.shakespeare.lit/thirdwitch"
    );
    assert_eq!(m.to, vec![NameAddr::new(room_address())]);
    assert_eq!(
        m.room,
        Some(RoomRef {
            adapter: "xa".into(),
            address: room_address()
        })
    );
    assert_eq!(m.id.as_str(), "xmpp:coven@chat.shakespeare.lit#5f3dbc5e");
    assert_eq!(m.origin.world, World::Xmpp);
    assert_eq!(m.datetime, Some(now()));
}

#[test]
fn history_and_own_reflection_are_not_relayed() {
    let mut r = joined();
    // XEP-0045 §7.2.14, example 37: history carries the room's delay.
    let out = r.handle_message(
        msg("<message from='coven@chat.shakespeare.lit/firstwitch' id='162BEBB1-F6DB-4D9A-9BD8-CFDCC801A0B2' to='hecate@shakespeare.lit/broom' type='groupchat'>
  <body>Thrice the brinded cat hath mew'd.</body>
  <delay xmlns='urn:xmpp:delay' from='coven@chat.shakespeare.lit' stamp='2002-10-13T23:58:37Z'/>
</message>"),
        now(),
    );
    assert!(out.is_empty(), "{out:?}");
    // Our own message comes back with our origin-id: delivered, not relayed.
    let out = r.handle_message(
        msg(
            "<message from='coven@chat.shakespeare.lit/crone' id='x1' type='groupchat'>
  <body>&lt;alice&gt; hi</body>
  <origin-id xmlns='urn:xmpp:sid:0' id='cpimgate-1'/>
</message>",
        ),
        now(),
    );
    assert!(
        matches!(out.as_slice(), [Output::Reflected(id)] if id == "cpimgate-1"),
        "{out:?}"
    );
}

#[test]
fn a_delay_from_elsewhere_sets_the_time() {
    let mut r = joined();
    let out = r.handle_message(
        msg(
            "<message from='coven@chat.shakespeare.lit/firstwitch' type='groupchat'>
  <body>late</body>
  <origin-id xmlns='urn:xmpp:sid:0' id='abc'/>
  <delay xmlns='urn:xmpp:delay' from='shakespeare.lit' stamp='2002-10-13T23:58:37Z'/>
</message>",
        ),
        now(),
    );
    let [Output::Message(m)] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(m.id.as_str(), "xmpp:abc");
    assert_eq!(
        m.datetime.map(|t| t.to_rfc3339()).as_deref(),
        Some("2002-10-13T23:58:37Z")
    );
}

#[test]
fn chat_messages_are_ignored() {
    let mut r = joined();
    let out = r.handle_message(
        msg("<message from='coven@chat.shakespeare.lit/firstwitch' type='chat'><body>psst</body></message>"),
        now(),
    );
    assert!(out.is_empty());
}

#[test]
fn subject_change_is_a_topic() {
    let mut r = joined();
    let out = r.handle_message(msg(SUBJECT), now());
    let [Output::Event(e)] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(
        e.kind,
        RoomEventKind::Topic {
            by: Some("secondwitch".into()),
            topic: "Fire Burn and Cauldron Bubble!".into()
        }
    );
}

fn kind(out: &[Output]) -> &RoomEventKind {
    match out {
        [Output::Event(e)] => &e.kind,
        o => panic!("{o:?}"),
    }
}

#[test]
fn presence_becomes_join_leave_nick_change_kick() {
    let mut r = joined();
    // XEP-0045 §7.2.3 after we joined: a new occupant.
    let out = r.handle_presence(pres(
        "<presence from='coven@chat.shakespeare.lit/thirdwitch'>
  <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='member' role='participant'/></x>
</presence>",
    ));
    assert!(matches!(kind(&out), RoomEventKind::Join { who } if who.nick == "thirdwitch"));
    // A presence update (away) of someone present: nothing.
    let out = r.handle_presence(pres(
        "<presence from='coven@chat.shakespeare.lit/thirdwitch'><show>away</show>
  <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='member' role='participant'/></x>
</presence>",
    ));
    assert!(out.is_empty());
    // §7.6.3, example 66: a nick change is one event.
    let out = r.handle_presence(pres(
        "<presence from='coven@chat.shakespeare.lit/thirdwitch' type='unavailable'>
  <x xmlns='http://jabber.org/protocol/muc#user'>
    <item affiliation='member' jid='hag66@shakespeare.lit/pda' nick='oldhag' role='participant'/>
    <status code='303'/>
  </x>
</presence>",
    ));
    assert!(
        matches!(kind(&out), RoomEventKind::NickChange { who, new_nick } if who.nick == "thirdwitch" && new_nick == "oldhag")
    );
    let out = r.handle_presence(pres(
        "<presence from='coven@chat.shakespeare.lit/oldhag'>
  <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='member' role='participant'/></x>
</presence>",
    ));
    assert!(
        out.is_empty(),
        "the new nick's presence is not a join: {out:?}"
    );
    // §8.2, example 91: a kick.
    let out = r.handle_presence(pres(
        "<presence from='coven@chat.shakespeare.lit/oldhag' type='unavailable'>
  <x xmlns='http://jabber.org/protocol/muc#user'>
    <item affiliation='none' role='none'>
      <actor nick='Fluellen'/>
      <reason>Avaunt, you cullion!</reason>
    </item>
    <status code='307'/>
  </x>
</presence>",
    ));
    assert_eq!(
        kind(&out),
        &RoomEventKind::Kick {
            who: cpimgate_model::event::Participant {
                address: "xmpp:coven@chat.shakespeare.lit/oldhag".parse().unwrap(),
                nick: "oldhag".into()
            },
            by: Some("Fluellen".into()),
            reason: Some("Avaunt, you cullion!".into())
        }
    );
    // §7.14, example 82: leaving.
    let out = r.handle_presence(pres(
        "<presence from='coven@chat.shakespeare.lit/firstwitch' type='unavailable'>
  <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='owner' role='none'/></x>
</presence>",
    ));
    assert!(matches!(kind(&out), RoomEventKind::Leave { who, .. } if who.nick == "firstwitch"));
}

#[test]
fn our_own_removal_means_not_joined() {
    let mut r = joined();
    let out = r.handle_presence(pres(
        "<presence from='coven@chat.shakespeare.lit/crone' type='unavailable'>
  <x xmlns='http://jabber.org/protocol/muc#user'>
    <item affiliation='none' role='none'/>
    <status code='307'/><status code='110'/>
  </x>
</presence>",
    ));
    assert!(matches!(out.as_slice(), [Output::NotJoined(0)]), "{out:?}");
    assert!(!r.rooms[0].joined);
}

#[test]
fn posting_renders_the_format_as_character_data() {
    let r = joined();
    let origin = Origin {
        world: World::Sip,
        adapter: "sip".into(),
        native_id: None,
    };
    let mut m = Message::text(
        origin,
        "\"<b>alice</b>\" <sip:alice@example.com>".parse().unwrap(),
        NameAddr::new(room_address()),
        "1 < 2 & </body><evil/>\u{0}",
    );
    m.room = Some(RoomRef {
        adapter: "xa".into(),
        address: room_address(),
    });
    let mut stanza = r.post(0, &m, "cpimgate-42").unwrap();
    assert_eq!(
        stanza.bodies.values().next().map(String::as_str),
        Some("<<b>alice</b>> 1 < 2 & </body><evil/>\u{FFFD}")
    );
    assert_eq!(
        stanza.extract_payload::<OriginId>().unwrap().map(|o| o.id),
        Some("cpimgate-42".into())
    );
    let xml = String::from(&Element::from(stanza));
    assert!(xml.contains("&lt;/body&gt;&lt;evil/&gt;"), "{xml}");
    assert!(xml.contains("type='groupchat'"), "{xml}");
}

/// A presence notice (`presence_notices`) comes back from the room under
/// our nick and without an origin-id (XEP-0045 §7.4): it is taken for our
/// own reflection, never handed to the hub as a message of the room.
#[test]
fn the_reflection_of_a_presence_notice_is_not_relayed() {
    let mut r = joined();
    let room: xmpp_parsers::jid::BareJid = ROOM.parse().unwrap();
    let sent =
        super::notices::notice_stanza(&room, "* Alice joined".into(), "cpimgate-notice-1".into());
    // The room's copy: from our occupant JID, the same id and body, plus
    // the room's stanza-id (XEP-0359), as Prosody sends it.
    let mut reflected = sent.with_payload(xmpp_parsers::stanza_id::StanzaId {
        id: "5f3dbc5e".into(),
        by: ROOM.parse().unwrap(),
    });
    reflected.to = Some("crone1@shakespeare.lit/pda".parse().unwrap());
    reflected.from = Some(format!("{ROOM}/crone").parse().unwrap());
    let out = r.handle_message(reflected, now());
    assert!(
        matches!(out.as_slice(), [Output::Reflected(id)] if id == "cpimgate-notice-1"),
        "{out:?}"
    );
}

/// What the server gets per relayed message: one groupchat stanza with a
/// body and an XEP-0359 origin-id, nothing else (no XHTML-IM, no receipt
/// request, no chat state). The room parses every element and copies it
/// to every occupant, so each extra payload costs the server per message
/// and per occupant.
#[test]
fn a_posted_message_carries_a_body_and_an_origin_id_only() {
    let r = joined();
    let origin = Origin {
        world: World::Xmpp,
        adapter: "xb".into(),
        native_id: Some("abc".into()),
    };
    let mut m = Message::text(
        origin,
        "\"alice\" <xmpp:lobby@conference.b.example/alice>"
            .parse()
            .unwrap(),
        NameAddr::new(room_address()),
        "hello",
    );
    m.room = Some(RoomRef {
        adapter: "xa".into(),
        address: room_address(),
    });
    let el = Element::from(r.post(0, &m, "cpimgate-7").unwrap());
    let children: Vec<(&str, String)> = el.children().map(|c| (c.name(), c.ns())).collect();
    assert_eq!(
        children,
        vec![
            ("body", NS.to_owned()),
            ("origin-id", "urn:xmpp:sid:0".to_owned())
        ],
        "{}",
        String::from(&el)
    );
    assert_eq!(el.attr("id"), Some("cpimgate-7"));
    assert_eq!(el.attr("type"), Some("groupchat"));
    assert_eq!(el.attr("to"), Some(ROOM));
}
