//! Federation through both XMPP modes against a real Prosody: one gateway
//! with a component (`xc`, XEP-0114 on gw.localhost) and a client-mode
//! account (`xb`, bridge@b.localhost in lobby@conference.b.localhost), and
//! an embedded adapter `sip` that watches the bridge's room events and
//! plays another world.
//!
//! 1. A user of a.localhost joins the component room
//!    `lobby%conference.b.localhost@gw.localhost`, sees the occupants of
//!    the room on b.localhost (learnt by client mode from the room's
//!    presences), messages flow both ways, nick changes and leaves of the
//!    b.localhost room show in the component room (and a renamed occupant
//!    keeps speaking under the new nick). Client mode cannot show
//!    occupants of other rooms in its room (one account, one occupant):
//!    there, with `presence_notices` off (the default, as here), a nick
//!    change of the component user shows only as the name in front of the
//!    next message (`xmpp_client.rs` tests the notices).
//! 2. Bad input to the component: requests of unknown namespaces, unknown
//!    extension elements, JIDs that stand for nothing or do not unescape,
//!    oversize bodies; the gateway answers each and keeps serving.
//! 3. Text of another world is never markup: `<b>&amp;]]></b>` arrives as
//!    those characters, U+0000 as U+FFFD, in the component room, in the
//!    room on b.localhost (through client mode) and in a 1:1 chat.
//!
//! If Prosody cannot start, these tests fail and say why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use cpimgate_e2e::embedded::{
    EmbeddedHandle, Seen, direct_message, embedded_adapter, room_message,
};
use cpimgate_e2e::gateway::Gateway;
use cpimgate_e2e::prosody::{COMPONENT_DOMAIN, COMPONENT_SECRET, HOST_A, HOST_B, MUC_B, Prosody};
use cpimgate_e2e::xmpp_user::{WAIT, XmppUser, body, is_groupchat_from, muc_user, nick_of};
use cpimgate_model::World;
use cpimgate_model::event::RoomEventKind;
use cpimgate_model::port::DeliveryOutcome;
use minidom::Element;
use tokio_xmpp::Stanza;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::jid::Jid;
use tokio_xmpp::parsers::message::{Id as MessageId, Lang, Message, MessageType};
use tokio_xmpp::parsers::muc::user::Status as MucStatus;
use tokio_xmpp::parsers::presence::{Presence, Type as PresenceType};
use tokio_xmpp::parsers::stanza_error::{DefinedCondition, StanzaError};

/// The room on b.localhost that client mode joins.
const ROOM_B: &str = "lobby@conference.b.localhost";
/// The component room bridged with it.
const GW_ROOM: &str = "lobby%conference.b.localhost@gw.localhost";
/// The room of the embedded adapter in the same bridge.
const SIP_ROOM: &str = "sip:lobby@sip.example.com";
/// The component JID of `im:carol@sip.example.com`.
const CAROL: &str = r"carol\40sip.example.com@gw.localhost";
/// The component's `max_body`.
const MAX_BODY: usize = 1000;
/// What another world hands in: markup-like text and a character XML
/// cannot carry.
const NOT_MARKUP: &str = "<b>&amp;]]></b>\u{0}x";
/// The same, as an XMPP user must see it.
const NOT_MARKUP_SHOWN: &str = "<b>&amp;]]></b>\u{FFFD}x";

const NS_CLIENT: &str = "jabber:client";

fn config(server: &Prosody) -> String {
    format!(
        r#"
        [gateway]
        name = "gw-federation"
        [queue]
        retry_base_ms = 50
        retry_max_ms = 500
        [adapters.xc]
        kind = "xmpp"
        mode = "component"
        domain = "{COMPONENT_DOMAIN}"
        secret = "{COMPONENT_SECRET}"
        server = "{component}"
        max_body = {MAX_BODY}
        [adapters.xb]
        kind = "xmpp"
        mode = "client"
        jid = "bridge@{HOST_B}"
        password = "bridge-pw"
        server = "{c2s}"
        insecure_accept_any_certificate = true
        rooms = [ {{ room = "{ROOM_B}", nick = "bridge" }} ]
        [adapters.sip]
        kind = "embedded"
        [[bridge]]
        name = "lobby"
        rooms = [
          {{ adapter = "xc", address = "xmpp:lobby%25conference.b.localhost@{COMPONENT_DOMAIN}" }},
          {{ adapter = "xb", address = "xmpp:lobby@{MUC_B}" }},
          {{ adapter = "sip", address = "{SIP_ROOM}" }},
        ]
        [[route]]
        domain = "sip.example.com"
        adapter = "sip"
        [[route]]
        domain = "{HOST_A}"
        adapter = "xc"
        "#,
        component = server.component_addr(),
        c2s = server.c2s_addr(),
    )
}

struct Setup {
    server: Prosody,
    gw: Gateway,
    sip: EmbeddedHandle,
    alice: XmppUser,
    bob: XmppUser,
}

/// Prosody with alice@a.localhost, bob@b.localhost and the bridge's
/// account; the gateway with every adapter connected; alice and bob
/// logged in.
async fn setup() -> Setup {
    cpimgate_e2e::init_logging();
    let server = Prosody::start()
        .await
        .expect("starting prosody (is it installed?)");
    server.register("alice", HOST_A, "alice-pw").await.unwrap();
    server.register("bob", HOST_B, "bob-pw").await.unwrap();
    server
        .register("bridge", HOST_B, "bridge-pw")
        .await
        .unwrap();
    let (sip_adapter, sip) = embedded_adapter(World::Sip);
    let gw = Gateway::start(&config(&server), vec![("sip".into(), sip_adapter)])
        .await
        .expect("starting the gateway");
    for adapter in ["xc", "xb", "sip"] {
        if let Err(e) = gw.wait_connected(adapter, Duration::from_secs(30)).await {
            panic!("{e}\nprosody log:\n{}", server.log_tail(40));
        }
    }
    let alice = XmppUser::connect(&server, "alice@a.localhost", "alice-pw")
        .await
        .expect("alice logs in");
    let bob = XmppUser::connect(&server, "bob@b.localhost", "bob-pw")
        .await
        .expect("bob logs in");
    Setup {
        server,
        gw,
        sip,
        alice,
        bob,
    }
}

fn occupant(room: &str, nick: &str) -> String {
    format!("{room}/{nick}")
}

fn from_is(p: &Presence, jid: &str) -> bool {
    p.from.as_ref().is_some_and(|f| f.to_string() == jid)
}

/// The stanza error of an error message or IQ.
fn stanza_error(stanza: &Stanza) -> Option<StanzaError> {
    match stanza {
        Stanza::Message(m) => m
            .payloads
            .iter()
            .find(|p| p.name() == "error")
            .and_then(|p| StanzaError::try_from(p.clone()).ok()),
        Stanza::Iq(Iq::Error { error, .. }) => Some(error.clone()),
        _ => None,
    }
}

fn error_text(e: &StanzaError) -> String {
    e.texts.values().cloned().collect::<Vec<_>>().join(" ")
}

/// A message of `type_` to `to` with `id` and a body.
fn text_message(
    type_: MessageType,
    to: Jid,
    id: impl Into<String>,
    text: impl Into<String>,
) -> Message {
    let mut m = Message::new_with_type(type_, Some(to)).with_body(Lang::new(), text.into());
    m.id = Some(MessageId(id.into()));
    m
}

/// The error message answering the message with `id`.
async fn error_reply(user: &mut XmppUser, id: &str) -> (Message, StanzaError) {
    let m = user
        .expect_message(
            |m| m.type_ == MessageType::Error && m.id.as_ref().is_some_and(|i| i.0 == id),
            WAIT,
        )
        .await
        .unwrap_or_else(|e| panic!("an error answering message {id}: {e}"));
    let e = stanza_error(&Stanza::Message(m.clone()))
        .unwrap_or_else(|| panic!("message {id}: an error without <error/>: {m:?}"));
    (m, e)
}

/// The IQ answering the request with `id`.
async fn iq_reply(user: &mut XmppUser, id: &str) -> Iq {
    let s = user
        .expect_stanza(
            |s| match s {
                Stanza::Iq(Iq::Result { id: i, .. } | Iq::Error { id: i, .. }) => i == id,
                _ => false,
            },
            &format!("the answer to iq {id}"),
            WAIT,
        )
        .await
        .unwrap();
    match s {
        Stanza::Iq(iq) => iq,
        _ => unreachable!(),
    }
}

/// An element in `jabber:client`, sent as it is.
fn iq_element(type_: &str, id: &str, to: &str, child: Element) -> Element {
    Element::builder("iq", NS_CLIENT)
        .attr(minidom::rxml::NcName::try_from("type").unwrap(), type_)
        .attr(minidom::rxml::NcName::try_from("id").unwrap(), id)
        .attr(minidom::rxml::NcName::try_from("to").unwrap(), to)
        .append(child)
        .build()
}

fn message_element(type_: &str, id: &str, to: &str, text: &str, extra: Element) -> Element {
    Element::builder("message", NS_CLIENT)
        .attr(minidom::rxml::NcName::try_from("type").unwrap(), type_)
        .attr(minidom::rxml::NcName::try_from("id").unwrap(), id)
        .attr(minidom::rxml::NcName::try_from("to").unwrap(), to)
        .append(Element::builder("body", NS_CLIENT).append(text).build())
        .append(extra)
        .build()
}

fn unknown_element() -> Element {
    Element::builder("frobnicate", "urn:example:unknown")
        .append(
            Element::builder("nested", "urn:example:unknown")
                .append("<not> markup &")
                .build(),
        )
        .build()
}

/// A chat to carol: the gateway still serves 1:1 messages.
async fn still_serving(alice: &mut XmppUser, sip: &mut EmbeddedHandle, after: &str) {
    let text = format!("still serving after {after}");
    alice.send_chat(CAROL, &text).await.unwrap();
    let m = sip
        .expect_text(&text, WAIT)
        .await
        .unwrap_or_else(|e| panic!("the gateway stopped serving after {after}: {e}"));
    assert_eq!(m.to[0].address.to_string(), "im:carol@sip.example.com");
}

#[tokio::test]
async fn a_component_room_federates_a_room_of_another_server_through_client_mode() {
    let Setup {
        server,
        gw,
        mut sip,
        mut alice,
        mut bob,
    } = setup().await;

    // bob is in the room on b.localhost; client mode tells the hub.
    bob.join_muc(ROOM_B, "bob").await.unwrap();
    let joined = sip
        .expect(
            |s| {
                matches!(s, Seen::Event(e) if matches!(&e.kind,
                RoomEventKind::Join { who } if who.nick == "bob"))
            },
            "bob's join, from client mode",
            WAIT,
        )
        .await
        .unwrap();
    let Seen::Event(joined) = joined else {
        unreachable!()
    };
    assert_eq!(joined.origin.adapter, "xb");
    assert_eq!(joined.room.address.to_string(), SIP_ROOM);

    // alice joins the component room and sees bob there, not the bridge.
    alice.join_muc(GW_ROOM, "alice").await.unwrap();
    let bob_there = alice
        .expect_presence(
            |p| from_is(p, &occupant(GW_ROOM, "bob")) && p.type_ == PresenceType::None,
            WAIT,
        )
        .await
        .unwrap_or_else(|e| panic!("bob as an occupant of the component room: {e}"));
    assert!(muc_user(&bob_there).is_some(), "{bob_there:?}");
    assert!(
        !alice.mailbox().iter().any(|s| matches!(s,
            Stanza::Presence(p) if nick_of(p.from.as_ref()) == Some("bridge"))),
        "the bridge's own occupant must not be shown: {:?}",
        alice.mailbox()
    );
    sip.expect(
        |s| {
            matches!(s, Seen::Event(e) if matches!(&e.kind,
            RoomEventKind::Join { who } if who.nick == "alice"))
        },
        "alice's join, from the component",
        WAIT,
    )
    .await
    .unwrap();

    // alice -> bob: posted by the bridge as `<alice> text`.
    alice
        .send_groupchat(GW_ROOM, "hello from the component")
        .await
        .unwrap();
    let got = bob
        .expect_body("<alice> hello from the component", WAIT)
        .await
        .unwrap();
    assert_eq!(got.type_, MessageType::Groupchat);
    assert_eq!(
        got.from.as_ref().map(ToString::to_string),
        Some(occupant(ROOM_B, "bridge"))
    );
    // The component room reflects it to alice, once, as herself.
    let echo = alice
        .expect_body("hello from the component", WAIT)
        .await
        .unwrap();
    assert_eq!(nick_of(echo.from.as_ref()), Some("alice"));

    // bob -> alice: from the component room, under bob's nick.
    bob.send_groupchat(ROOM_B, "hello from b & <i>")
        .await
        .unwrap();
    let got = alice.expect_body("hello from b & <i>", WAIT).await.unwrap();
    assert!(is_groupchat_from(&got, GW_ROOM), "{got:?}");
    assert_eq!(
        got.from.as_ref().map(ToString::to_string),
        Some(occupant(GW_ROOM, "bob"))
    );
    // Not echoed back into the room it came from.
    bob.expect_no_message(
        |m| body(m).is_some_and(|b| b.contains("hello from b") && b != "hello from b & <i>"),
        Duration::from_secs(1),
    )
    .await
    .unwrap();

    // alice changes nick: one event for the hub; client mode cannot show
    // it as a presence (it has one occupant, its own), so on b.localhost
    // it shows only as the new name in front of her next message.
    alice.change_nick(GW_ROOM, "alice2").await.unwrap();
    let nick = sip
        .expect(
            |s| matches!(s, Seen::Event(e) if matches!(&e.kind, RoomEventKind::NickChange { .. })),
            "alice's nick change",
            WAIT,
        )
        .await
        .unwrap();
    let Seen::Event(nick) = nick else {
        unreachable!()
    };
    let RoomEventKind::NickChange { who, new_nick } = &nick.kind else {
        unreachable!()
    };
    assert_eq!((who.nick.as_str(), new_nick.as_str()), ("alice", "alice2"));
    assert_eq!(nick.origin.adapter, "xc");
    alice
        .send_groupchat(GW_ROOM, "after my nick change")
        .await
        .unwrap();
    bob.expect_body("<alice2> after my nick change", WAIT)
        .await
        .unwrap();
    assert!(
        !bob.mailbox().iter().any(|s| matches!(s,
            Stanza::Presence(p) if nick_of(p.from.as_ref()).is_some_and(|n| n.starts_with("alice")))),
        "client mode cannot show occupants of other rooms: {:?}",
        bob.mailbox()
    );

    // bob changes nick: alice sees the 303 pair from the component room.
    bob.change_nick(ROOM_B, "bobby").await.unwrap();
    let gone = alice
        .expect_presence(
            |p| from_is(p, &occupant(GW_ROOM, "bob")) && p.type_ == PresenceType::Unavailable,
            WAIT,
        )
        .await
        .unwrap_or_else(|e| panic!("bob's unavailable presence with 303: {e}"));
    let user = muc_user(&gone).expect("a muc#user element");
    assert!(user.status.contains(&MucStatus::NewNick), "{gone:?}");
    assert_eq!(
        user.items.first().and_then(|i| i.nick.as_deref()),
        Some("bobby")
    );
    alice
        .expect_presence(
            |p| from_is(p, &occupant(GW_ROOM, "bobby")) && p.type_ == PresenceType::None,
            WAIT,
        )
        .await
        .unwrap_or_else(|e| panic!("bob's presence under the new nick: {e}"));
    // His messages now come from the new nick.
    bob.send_groupchat(ROOM_B, "as bobby").await.unwrap();
    let got = alice.expect_body("as bobby", WAIT).await.unwrap();
    assert_eq!(
        got.from.as_ref().map(ToString::to_string),
        Some(occupant(GW_ROOM, "bobby"))
    );

    // bob leaves: unavailable (no 303) from the component room.
    bob.leave_muc(ROOM_B, "bobby").await.unwrap();
    let left = alice
        .expect_presence(
            |p| from_is(p, &occupant(GW_ROOM, "bobby")) && p.type_ == PresenceType::Unavailable,
            WAIT,
        )
        .await
        .unwrap_or_else(|e| panic!("bob's leave: {e}"));
    assert!(
        !muc_user(&left).is_some_and(|u| u.status.contains(&MucStatus::NewNick)),
        "{left:?}"
    );

    // alice leaves: the hub gets a Leave from the component.
    alice.leave_muc(GW_ROOM, "alice2").await.unwrap();
    let left = sip
        .expect(
            |s| {
                matches!(s, Seen::Event(e) if e.origin.adapter == "xc"
                && matches!(&e.kind, RoomEventKind::Leave { .. }))
            },
            "alice's leave",
            WAIT,
        )
        .await
        .unwrap();
    let Seen::Event(left) = left else {
        unreachable!()
    };
    let RoomEventKind::Leave { who, .. } = &left.kind else {
        unreachable!()
    };
    assert_eq!(who.nick, "alice2");
    assert_eq!(left.origin.adapter, "xc");

    alice.disconnect().await.ok();
    bob.disconnect().await.ok();
    gw.shutdown().await.unwrap();
    drop(server);
}

#[tokio::test]
async fn bad_input_is_answered_and_the_gateway_keeps_serving() {
    let Setup {
        server,
        gw,
        mut sip,
        mut alice,
        bob,
    } = setup().await;
    still_serving(&mut alice, &mut sip, "nothing").await;

    // Requests of an unknown namespace, to the service, a contact and a
    // room: service-unavailable (RFC 6120 §8.4), get or set.
    let unknown = || Element::builder("query", "urn:example:unknown").build();
    for (i, (type_, to)) in [
        ("get", COMPONENT_DOMAIN),
        ("get", CAROL),
        ("get", GW_ROOM),
        ("set", COMPONENT_DOMAIN),
        ("set", CAROL),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("unknown-{i}");
        alice
            .send_element(&iq_element(type_, &id, to, unknown()))
            .await
            .unwrap();
        let iq = iq_reply(&mut alice, &id).await;
        let Iq::Error { from, error, .. } = &iq else {
            panic!("an iq {type_} of an unknown namespace to {to} got {iq:?}");
        };
        assert_eq!(from.as_ref().map(ToString::to_string).as_deref(), Some(to));
        assert_eq!(
            error.defined_condition,
            DefinedCondition::ServiceUnavailable,
            "iq {type_} to {to}"
        );
    }
    still_serving(&mut alice, &mut sip, "iqs of an unknown namespace").await;

    // A chat with an unknown extension element: the body is relayed.
    alice
        .send_element(&message_element(
            "chat",
            "ext-1",
            CAROL,
            "with an extension",
            unknown_element(),
        ))
        .await
        .unwrap();
    let m = sip.expect_text("with an extension", WAIT).await.unwrap();
    assert_eq!(m.to[0].address.to_string(), "im:carol@sip.example.com");

    // A groupchat with one too, in the component room.
    alice.join_muc(GW_ROOM, "alice").await.unwrap();
    alice
        .send_element(&message_element(
            "groupchat",
            "ext-2",
            GW_ROOM,
            "room text with an extension",
            unknown_element(),
        ))
        .await
        .unwrap();
    let m = sip
        .expect_text("room text with an extension", WAIT)
        .await
        .unwrap();
    assert_eq!(m.from.display.as_deref(), Some("alice"));

    // JIDs that stand for nothing: item-not-found at once, from that JID.
    for (i, to) in [
        // No escaped address at all.
        "plainname@gw.localhost".to_owned(),
        // A room that is in no bridge.
        "nothing%nowhere.example@gw.localhost".to_owned(),
    ]
    .iter()
    .enumerate()
    {
        let id = format!("nothing-{i}");
        let m = text_message(
            MessageType::Chat,
            to.parse().unwrap(),
            id.clone(),
            "anyone?",
        );
        alice.send_message(m).await.unwrap();
        let (err, e) = error_reply(&mut alice, &id).await;
        assert_eq!(
            err.from.as_ref().map(ToString::to_string).as_deref(),
            Some(to.as_str())
        );
        assert_eq!(e.defined_condition, DefinedCondition::ItemNotFound, "{to}");
    }
    // A groupchat to a room that is in no bridge.
    let id = "nothing-room";
    let m = text_message(
        MessageType::Groupchat,
        "nothing%nowhere.example@gw.localhost".parse().unwrap(),
        id,
        "anyone?",
    );
    alice.send_message(m).await.unwrap();
    let (_, e) = error_reply(&mut alice, id).await;
    assert_eq!(e.defined_condition, DefinedCondition::ItemNotFound);
    still_serving(&mut alice, &mut sip, "JIDs that stand for nothing").await;

    // Local parts that do not unescape to an address (XEP-0106): the
    // component answers (the error comes from the JID it was sent to),
    // and nothing reaches the hub.
    for (i, (to, condition)) in [
        // `\zz` is no escape: the local part is `foo\zz`, no address.
        (r"foo\zz@gw.localhost", DefinedCondition::ItemNotFound),
        // `\40` at the end: an empty domain.
        (r"alice\40@gw.localhost", DefinedCondition::JidMalformed),
        // `\40` at the start: an empty user.
        (
            r"\40sip.example.com@gw.localhost",
            DefinedCondition::JidMalformed,
        ),
        // A stray backslash: the domain would be `sip.example.com\`.
        (
            r"carol\40sip.example.com\@gw.localhost",
            DefinedCondition::JidMalformed,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("escape-{i}");
        let text = format!("malformed escape {i}");
        let m = text_message(
            MessageType::Chat,
            to.parse().unwrap(),
            id.clone(),
            text.clone(),
        );
        alice.send_message(m).await.unwrap();
        let (err, e) = error_reply(&mut alice, &id).await;
        assert_eq!(
            err.from.as_ref().map(ToString::to_string).as_deref(),
            Some(to)
        );
        assert_eq!(e.defined_condition, condition, "{to}: {:?}", e.texts);
        assert!(!error_text(&e).is_empty(), "{to}: an error without text");
        sip.expect_none(
            |s| matches!(s, Seen::Deliver(m) if m.body.as_text() == Some(text.as_str())),
            Duration::from_millis(200),
        )
        .await
        .unwrap();
    }
    still_serving(&mut alice, &mut sip, "malformed escapes").await;

    // Oversize bodies, to a contact and in the room: not-acceptable, with
    // a text that gives the limit; nothing reaches the hub.
    let big = "x".repeat(MAX_BODY + 1);
    let m = text_message(
        MessageType::Chat,
        CAROL.parse().unwrap(),
        "big-chat",
        big.clone(),
    );
    alice.send_message(m).await.unwrap();
    let (_, e) = error_reply(&mut alice, "big-chat").await;
    assert_eq!(e.defined_condition, DefinedCondition::NotAcceptable);
    assert!(
        error_text(&e).contains(&MAX_BODY.to_string()),
        "{:?}",
        e.texts
    );
    let m = text_message(
        MessageType::Groupchat,
        GW_ROOM.parse().unwrap(),
        "big-room",
        big.clone(),
    );
    alice.send_message(m).await.unwrap();
    let (err, e) = error_reply(&mut alice, "big-room").await;
    assert_eq!(
        err.from
            .as_ref()
            .map(|f| f.to_bare().to_string())
            .as_deref(),
        Some(GW_ROOM)
    );
    assert_eq!(e.defined_condition, DefinedCondition::NotAcceptable);
    assert!(
        error_text(&e).contains(&MAX_BODY.to_string()),
        "{:?}",
        e.texts
    );
    sip.expect_none(
        |s| matches!(s, Seen::Deliver(m) if m.body.as_text() == Some(big.as_str())),
        Duration::from_millis(300),
    )
    .await
    .unwrap();
    // Just at the limit: relayed.
    let at_limit = "y".repeat(MAX_BODY);
    alice.send_groupchat(GW_ROOM, &at_limit).await.unwrap();
    sip.expect_text(&at_limit, WAIT).await.unwrap();
    still_serving(&mut alice, &mut sip, "oversize bodies").await;

    alice.disconnect().await.ok();
    bob.disconnect().await.ok();
    gw.shutdown().await.unwrap();
    drop(server);
}

#[tokio::test]
async fn text_of_another_world_is_never_markup() {
    let Setup {
        server,
        gw,
        sip,
        mut alice,
        mut bob,
    } = setup().await;
    bob.join_muc(ROOM_B, "bob").await.unwrap();
    alice.join_muc(GW_ROOM, "alice").await.unwrap();

    // Into the rooms: the component room (from room/carol) and, through
    // client mode, the room on b.localhost (as `<carol> text`).
    let m = room_message(
        World::Sip,
        "sip",
        SIP_ROOM,
        "sip:carol@sip.example.com",
        NOT_MARKUP,
    )
    .unwrap();
    assert_eq!(sip.send(m).await.unwrap(), DeliveryOutcome::Accepted);
    let got = alice
        .expect_message(
            |m| is_groupchat_from(m, GW_ROOM) && nick_of(m.from.as_ref()) == Some("carol"),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(body(&got), Some(NOT_MARKUP_SHOWN));
    assert!(got.payloads.iter().all(|p| p.name() != "b"), "{got:?}");
    let got = bob
        .expect_message(|m| is_groupchat_from(m, ROOM_B) && body(m).is_some(), WAIT)
        .await
        .unwrap();
    assert_eq!(
        body(&got),
        Some(format!("<carol> {NOT_MARKUP_SHOWN}").as_str())
    );

    // 1:1 through the component, from carol's component JID.
    let m = direct_message(
        World::Sip,
        "sip",
        "sip:carol@sip.example.com",
        "xmpp:alice@a.localhost",
        NOT_MARKUP,
    )
    .unwrap();
    assert_eq!(sip.send(m).await.unwrap(), DeliveryOutcome::Accepted);
    let got = alice
        .expect_message(|m| m.type_ == MessageType::Chat, WAIT)
        .await
        .unwrap();
    assert_eq!(body(&got), Some(NOT_MARKUP_SHOWN));
    assert!(
        got.from
            .as_ref()
            .is_some_and(|f| f.domain().as_str() == COMPONENT_DOMAIN),
        "{got:?}"
    );

    alice.disconnect().await.ok();
    bob.disconnect().await.ok();
    gw.shutdown().await.unwrap();
    drop(server);
}
