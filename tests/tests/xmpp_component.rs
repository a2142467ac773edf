//! Component mode (XEP-0114) against a real Prosody: the hub runs in this
//! process with the XMPP adapter as a component of the harness's server and
//! an embedded test adapter named "sip" standing for another world.
//!
//! 1. 1:1: an XMPP user chats with `alice\40sip.example.com@gw.localhost`,
//!    the test adapter gets it and answers; errors for an unroutable
//!    recipient and an oversize body.
//! 2. Rooms: a bridge between the component room
//!    `room%test.example@gw.localhost` and a room of the test adapter; the
//!    XMPP user joins, sees a remote occupant, messages flow both ways, a
//!    nick change and a leave reach the test adapter.
//! 3. In the room and 1:1 again: private messages both ways (XEP-0045
//!    §7.5), a repeated origin-id relayed once (XEP-0359, the hub's
//!    de-duplication), a correction marked (XEP-0308), and a receipt from
//!    the XMPP user that reaches the other world as "delivered" (XEP-0184).
//!
//! If Prosody cannot start, these tests fail and say why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use cpimgate::config::{AdapterSection, Config};
use cpimgate::hub::RunningHub;
use cpimgate_e2e::embedded::{EmbeddedHandle, Seen, embedded_adapter};
use cpimgate_e2e::prosody::{COMPONENT_DOMAIN, COMPONENT_SECRET, HOST_A, Prosody};
use cpimgate_e2e::xmpp_user::{WAIT, XmppUser, body, nick_of};
use cpimgate_model::event::{Participant, RoomEventKind};
use cpimgate_model::port::{AdapterStatus, DeliveryOutcome};
use cpimgate_model::{Message, MessageId, NameAddr, Origin, RoomEvent, RoomRef, World};
use tokio_xmpp::parsers::message::MessageType;
use tokio_xmpp::parsers::presence::Type as PresenceType;
use tokio_xmpp::parsers::stanza_error::{DefinedCondition, StanzaError};

const ALICE_JID: &str = r"alice\40sip.example.com@gw.localhost";
const ROOM_JID: &str = "room%test.example@gw.localhost";
const SIP_ROOM: &str = "sip:room@test.example";

struct Gateway {
    hub: RunningHub,
    /// The embedded adapter standing in for SIP.
    sip: EmbeddedHandle,
    _dir: tempfile::TempDir,
}

impl Gateway {
    async fn start(server: &Prosody) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), server.component_port());
        let mappings = cpimgate::app::open_mappings(&cfg)
            .await
            .expect("opening the mapping table with the bridge rooms");
        let queue = cpimgate::app::open_queue(&cfg).await.unwrap();
        let Some(AdapterSection::Xmpp(x)) = cfg.adapters.get("xc") else {
            panic!("adapters.xc is not an xmpp section");
        };
        let xc = cpimgate_xmpp::XmppAdapter::new(x.clone(), mappings.clone());
        let (sip, handle) = embedded_adapter(World::Sip);
        let hub = RunningHub::start(
            &cfg,
            vec![("xc".into(), Box::new(xc)), ("sip".into(), sip)],
            queue,
        )
        .unwrap();
        // The component must have completed its handshake with Prosody.
        let ready = hub.readiness();
        let deadline = tokio::time::Instant::now() + WAIT;
        while ready.snapshot().get("xc") != Some(&AdapterStatus::Connected) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the component did not connect to Prosody on port {} within {WAIT:?}; prosody log:\n{}",
                server.component_port(),
                server.log_tail(30)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Gateway {
            hub,
            sip: handle,
            _dir: dir,
        }
    }

    /// The first thing seen that `f` picks; the rest is skipped.
    async fn expect<T>(&mut self, what: &str, mut f: impl FnMut(Seen) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let got = self.sip.next(left).await.unwrap_or_else(|e| {
                panic!("the test adapter did not see {what} within {WAIT:?}: {e}")
            });
            if let Some(t) = f(got) {
                return t;
            }
        }
    }

    async fn hand_in(&self, message: Message) -> DeliveryOutcome {
        self.sip.send(message).await.unwrap()
    }

    async fn stop(self) {
        self.hub
            .shutdown(Duration::from_secs(5))
            .await
            .expect("hub shutdown");
    }
}

fn config(dir: &Path, component_port: u16) -> Config {
    let text = format!(
        r#"
        [gateway]
        name = "gw-e2e"
        [store]
        path = "{store}"
        [queue]
        retry_base_ms = 20
        retry_max_ms = 200
        [adapters.xc]
        kind = "xmpp"
        mode = "component"
        domain = "{COMPONENT_DOMAIN}"
        secret = "{COMPONENT_SECRET}"
        server = "127.0.0.1:{component_port}"
        max_body = 1000
        [adapters.sip]
        kind = "embedded"
        [[bridge]]
        name = "lobby"
        rooms = [
          {{ adapter = "xc", address = "xmpp:room%25test.example@{COMPONENT_DOMAIN}" }},
          {{ adapter = "sip", address = "{SIP_ROOM}" }},
        ]
        [[route]]
        domain = "sip.example.com"
        adapter = "sip"
        [[route]]
        domain = "{HOST_A}"
        adapter = "xc"
        [[route]]
        domain = "{COMPONENT_DOMAIN}"
        adapter = "xc"
        "#,
        store = dir.join("gw.sqlite").display(),
    );
    let path = dir.join("gw.toml");
    std::fs::write(&path, text).unwrap();
    Config::load_with_env(&path, Vec::new()).expect("the test config is valid")
}

fn sip_origin() -> Origin {
    Origin {
        world: World::Sip,
        adapter: "sip".into(),
        native_id: None,
    }
}

fn error_condition(m: &tokio_xmpp::parsers::message::Message) -> Option<DefinedCondition> {
    m.payloads
        .iter()
        .find(|p| p.name() == "error")
        .and_then(|p| StanzaError::try_from(p.clone()).ok())
        .map(|e| e.defined_condition)
}

async fn server_with_user() -> Prosody {
    let server = Prosody::start()
        .await
        .expect("starting prosody (is it installed?)");
    server
        .register("user", HOST_A, "user-pw")
        .await
        .expect("registering user@a.localhost");
    server
}

#[tokio::test]
async fn one_to_one_chat_through_the_component() {
    let server = server_with_user().await;
    let mut gw = Gateway::start(&server).await;
    let mut user = XmppUser::connect(&server, "user@a.localhost", "user-pw")
        .await
        .expect("user@a.localhost logs in");

    // XMPP -> the other world: the escaped JID stands for im:alice@sip.example.com.
    user.send_chat(ALICE_JID, "hello, sip <&>").await.unwrap();
    let m = gw
        .expect("the chat message", |s| match s {
            Seen::Deliver(m) => Some(m),
            _ => None,
        })
        .await;
    assert_eq!(m.to[0].address.to_string(), "im:alice@sip.example.com");
    assert!(
        m.from
            .address
            .to_string()
            .starts_with("xmpp:user@a.localhost/"),
        "{}",
        m.from.address
    );
    assert_eq!(m.body.as_text(), Some("hello, sip <&>"));
    assert!(m.room.is_none());

    // The other world -> XMPP: the reply comes from the same JID.
    let reply = Message::text(
        sip_origin(),
        NameAddr::new("im:alice@sip.example.com".parse().unwrap()),
        NameAddr::new("xmpp:user@a.localhost".parse().unwrap()),
        "hello, xmpp <b>",
    );
    let reply_id = reply.id.clone();
    assert_eq!(gw.hand_in(reply).await, DeliveryOutcome::Accepted);
    // The component wrote it to the server: accepted by the next hop, no more.
    let outcome = gw
        .expect("the report of the reply", |s| match s {
            Seen::Report {
                message, outcome, ..
            } if message.id == reply_id => Some(outcome),
            _ => None,
        })
        .await;
    assert_eq!(outcome, DeliveryOutcome::Accepted);
    let got = user
        .expect_message(|m| m.type_ == MessageType::Chat, WAIT)
        .await
        .expect("the reply from alice");
    assert_eq!(body(&got), Some("hello, xmpp <b>"));
    assert_eq!(got.from.as_ref().unwrap().to_string(), ALICE_JID);

    // No route to nowhere.example: item-not-found, from the JID it was sent to.
    let nobody = r"nobody\40nowhere.example@gw.localhost";
    user.send_chat(nobody, "anyone?").await.unwrap();
    let err = user
        .expect_message(|m| m.type_ == MessageType::Error, WAIT)
        .await
        .expect("an error for the unroutable recipient");
    assert_eq!(err.from.as_ref().unwrap().to_string(), nobody);
    assert_eq!(error_condition(&err), Some(DefinedCondition::ItemNotFound));

    // Over max_body: not-acceptable.
    user.send_chat(ALICE_JID, &"x".repeat(2000)).await.unwrap();
    let err = user
        .expect_message(|m| m.type_ == MessageType::Error, WAIT)
        .await
        .expect("an error for the oversize body");
    assert_eq!(error_condition(&err), Some(DefinedCondition::NotAcceptable));

    user.disconnect().await.ok();
    gw.stop().await;
}

#[tokio::test]
async fn a_bridged_room_through_the_component() {
    let server = server_with_user().await;
    let mut gw = Gateway::start(&server).await;
    let mut user = XmppUser::connect(&server, "user@a.localhost", "user-pw")
        .await
        .expect("user@a.localhost logs in");
    let sip_room = RoomRef {
        adapter: "sip".into(),
        address: SIP_ROOM.parse().unwrap(),
    };

    // Join: the self-presence (110) comes back, the other world hears of it.
    user.join_muc(ROOM_JID, "tester")
        .await
        .expect("joining the component room");
    let who = gw
        .expect("the join event", |s| match s {
            Seen::Event(e) => match e.kind {
                RoomEventKind::Join { who } => Some((e.room, who)),
                _ => None,
            },
            _ => None,
        })
        .await;
    assert_eq!(who.0, sip_room);
    assert_eq!(who.1.nick, "tester");

    // A participant of the other world appears as an occupant.
    gw.sip
        .send_event(RoomEvent {
            id: MessageId::random(),
            room: sip_room.clone(),
            origin: sip_origin(),
            trail: Vec::new(),
            kind: RoomEventKind::Join {
                who: Participant {
                    address: "sip:carol@test.example".parse().unwrap(),
                    nick: "carol".into(),
                },
            },
        })
        .unwrap();
    user.expect_presence(
        |p| nick_of(p.from.as_ref()) == Some("carol") && p.type_ == PresenceType::None,
        WAIT,
    )
    .await
    .expect("carol's presence in the room");

    // XMPP -> the other world.
    user.send_groupchat(ROOM_JID, "hello, room").await.unwrap();
    let m = gw
        .expect("the room message", |s| match s {
            Seen::Deliver(m) if m.room.is_some() => Some(m),
            _ => None,
        })
        .await;
    assert_eq!(m.room.as_ref(), Some(&sip_room));
    assert_eq!(m.body.as_text(), Some("hello, room"));
    assert_eq!(m.from.display.as_deref(), Some("tester"));
    // The room reflects it to its sender.
    user.expect_body("hello, room", WAIT).await.unwrap();

    // The other world -> XMPP, from room/carol.
    let mut from_carol = Message::text(
        sip_origin(),
        NameAddr::with_display("carol", "sip:carol@test.example".parse().unwrap()),
        NameAddr::new(SIP_ROOM.parse().unwrap()),
        "hello, tester",
    );
    from_carol.room = Some(sip_room.clone());
    assert_eq!(gw.hand_in(from_carol).await, DeliveryOutcome::Accepted);
    let got = user.expect_body("hello, tester", WAIT).await.unwrap();
    assert_eq!(got.type_, MessageType::Groupchat);
    assert_eq!(
        got.from.as_ref().unwrap().to_string(),
        format!("{ROOM_JID}/carol")
    );

    // A nick change is one event; so is the leave.
    user.change_nick(ROOM_JID, "tester2").await.unwrap();
    let (old, new) = gw
        .expect("the nick change", |s| match s {
            Seen::Event(e) => match e.kind {
                RoomEventKind::NickChange { who, new_nick } => Some((who.nick, new_nick)),
                _ => None,
            },
            _ => None,
        })
        .await;
    assert_eq!((old.as_str(), new.as_str()), ("tester", "tester2"));
    user.leave_muc(ROOM_JID, "tester2").await.unwrap();
    let left = gw
        .expect("the leave", |s| match s {
            Seen::Event(e) => match e.kind {
                RoomEventKind::Leave { who, .. } => Some(who.nick),
                _ => None,
            },
            _ => None,
        })
        .await;
    assert_eq!(left, "tester2");

    // A room that is in no bridge does not exist.
    let err = user
        .join_muc("nothing%nowhere.example@gw.localhost", "tester")
        .await;
    assert!(err.is_err(), "joining an unbridged room must fail");

    user.disconnect().await.ok();
    gw.stop().await;
}

#[tokio::test]
async fn the_component_reconnects_after_a_server_restart() {
    let mut server = server_with_user().await;
    let mut gw = Gateway::start(&server).await;
    let ready = gw.hub.readiness();

    server.restart().await.expect("restarting prosody");
    // The hub hears of the outage, then of the new connection.
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut saw_down = false;
    loop {
        match ready.snapshot().get("xc") {
            Some(AdapterStatus::Disconnected) => saw_down = true,
            Some(AdapterStatus::Connected) if saw_down => break,
            _ => {}
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the component did not reconnect within {WAIT:?} (saw it down: {saw_down}); prosody log:\n{}",
            server.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let mut user = XmppUser::connect(&server, "user@a.localhost", "user-pw")
        .await
        .expect("user@a.localhost logs in after the restart");
    user.send_chat(ALICE_JID, "still there?").await.unwrap();
    let m = gw
        .expect("the chat message after the restart", |s| match s {
            Seen::Deliver(m) => Some(m),
            _ => None,
        })
        .await;
    assert_eq!(m.body.as_text(), Some("still there?"));
    user.disconnect().await.ok();
    gw.stop().await;
}

/// Waits for the room's delivery to the test adapter that `f` picks,
/// skipping everything else that is not a room message.
async fn next_room_text(gw: &mut Gateway, what: &str) -> String {
    gw.expect(what, |s| match s {
        Seen::Deliver(m) if m.room.is_some() && !m.private => {
            Some(m.body.as_text().unwrap_or_default().to_owned())
        }
        _ => None,
    })
    .await
}

#[tokio::test]
async fn private_messages_duplicates_corrections_and_receipts() {
    use tokio_xmpp::parsers::message::{Id, Lang, Message as XMessage};
    use tokio_xmpp::parsers::minidom::Element;

    let server = server_with_user().await;
    let mut gw = Gateway::start(&server).await;
    let mut user = XmppUser::connect(&server, "user@a.localhost", "user-pw")
        .await
        .expect("user@a.localhost logs in");
    let sip_room = RoomRef {
        adapter: "sip".into(),
        address: SIP_ROOM.parse().unwrap(),
    };
    user.join_muc(ROOM_JID, "tester")
        .await
        .expect("joining the component room");
    // carol, of the other world, is routable ([[route]] sip.example.com).
    let carol: cpimgate_model::Address = "sip:carol@sip.example.com".parse().unwrap();
    gw.sip
        .send_event(RoomEvent {
            id: MessageId::random(),
            room: sip_room.clone(),
            origin: sip_origin(),
            trail: Vec::new(),
            kind: RoomEventKind::Join {
                who: Participant {
                    address: carol.clone(),
                    nick: "carol".into(),
                },
            },
        })
        .unwrap();
    user.expect_presence(
        |p| nick_of(p.from.as_ref()) == Some("carol") && p.type_ == PresenceType::None,
        WAIT,
    )
    .await
    .expect("carol's presence in the room");

    // XEP-0045 §7.5: a private message to room/carol reaches carol, private,
    // in the bridge's room of her world.
    user.send_chat(&format!("{ROOM_JID}/carol"), "just for carol")
        .await
        .unwrap();
    let m = gw
        .expect("the private message", |s| match s {
            Seen::Deliver(m) if m.private => Some(m),
            _ => None,
        })
        .await;
    assert_eq!(m.body.as_text(), Some("just for carol"));
    assert_eq!(m.to[0].address, carol);
    assert_eq!(m.room.as_ref(), Some(&sip_room));
    assert_eq!(m.from.display.as_deref(), Some("tester"));
    // An unknown nick: item-not-found.
    user.send_chat(&format!("{ROOM_JID}/nobody"), "anyone?")
        .await
        .unwrap();
    let err = user
        .expect_message(|m| m.type_ == MessageType::Error, WAIT)
        .await
        .expect("an error for the unknown nick");
    assert_eq!(error_condition(&err), Some(DefinedCondition::ItemNotFound));

    // The reverse: carol's private message reaches tester alone.
    let mut back = Message::text(
        sip_origin(),
        NameAddr::with_display("carol", carol.clone()),
        NameAddr::new(
            format!("xmpp:room%25test.example@{COMPONENT_DOMAIN}/tester")
                .parse()
                .unwrap(),
        ),
        "just for tester",
    );
    back.room = Some(sip_room.clone());
    back.private = true;
    assert_eq!(gw.hand_in(back).await, DeliveryOutcome::Accepted);
    let got = user.expect_body("just for tester", WAIT).await.unwrap();
    assert_eq!(got.type_, MessageType::Chat);
    assert_eq!(
        got.from.as_ref().unwrap().to_string(),
        format!("{ROOM_JID}/carol")
    );

    // XEP-0359: the same origin-id twice is one message for the hub; the
    // next message shows the repeat was not relayed.
    let origin = "e2e-origin-1";
    for _ in 0..2 {
        let mut m = XMessage::groupchat(ROOM_JID.parse::<tokio_xmpp::parsers::jid::Jid>().unwrap())
            .with_body(Lang::new(), "said once".into());
        m.payloads.push(
            Element::builder("origin-id", "urn:xmpp:sid:0")
                .attr(
                    tokio_xmpp::parsers::minidom::rxml::xml_ncname!("id").into(),
                    origin,
                )
                .build(),
        );
        user.send_message(m).await.unwrap();
        // The room reflects each to its sender, with the room's stanza-id.
        let echo = user.expect_body("said once", WAIT).await.unwrap();
        assert!(
            echo.payloads
                .iter()
                .any(|p| p.is("stanza-id", "urn:xmpp:sid:0")),
            "no stanza-id on the reflection"
        );
    }
    // XEP-0308: a correction is a new, marked message.
    let mut fix = XMessage::groupchat(ROOM_JID.parse::<tokio_xmpp::parsers::jid::Jid>().unwrap())
        .with_body(Lang::new(), "said twice".into());
    fix.payloads.push(
        Element::builder("replace", "urn:xmpp:message-correct:0")
            .attr(
                tokio_xmpp::parsers::minidom::rxml::xml_ncname!("id").into(),
                "whatever",
            )
            .build(),
    );
    user.send_message(fix).await.unwrap();
    assert_eq!(next_room_text(&mut gw, "the first copy").await, "said once");
    assert_eq!(
        next_room_text(&mut gw, "the correction").await,
        "* correction: said twice",
        "the repeated origin-id was relayed twice"
    );

    // XEP-0184: a 1:1 message to the XMPP user asks for a receipt; the
    // user's receipt makes it delivered for the other world.
    let dm = Message::text(
        sip_origin(),
        NameAddr::new("im:alice@sip.example.com".parse().unwrap()),
        NameAddr::new("xmpp:user@a.localhost".parse().unwrap()),
        "tell me you got it",
    );
    let dm_id = dm.id.clone();
    assert_eq!(gw.hand_in(dm).await, DeliveryOutcome::Accepted);
    let got = user.expect_body("tell me you got it", WAIT).await.unwrap();
    assert!(
        got.payloads
            .iter()
            .any(|p| p.is("request", "urn:xmpp:receipts")),
        "no receipt request"
    );
    let id = got.id.clone().expect("a stanza id to answer").0;
    // The test client does not answer receipts by itself: answer here
    // (XEP-0184 §5.1 example 2).
    let mut receipt = XMessage::new(Some(ALICE_JID.parse().unwrap()));
    receipt.id = Some(Id("receipt-1".into()));
    receipt.payloads.push(
        Element::builder("received", "urn:xmpp:receipts")
            .attr(
                tokio_xmpp::parsers::minidom::rxml::xml_ncname!("id").into(),
                id,
            )
            .build(),
    );
    user.send_message(receipt).await.unwrap();
    let outcome = gw
        .expect("the report of the 1:1 message", |s| match s {
            Seen::Report {
                message, outcome, ..
            } if message.id == dm_id => Some(outcome),
            _ => None,
        })
        .await;
    assert_eq!(outcome, DeliveryOutcome::Delivered);

    user.disconnect().await.ok();
    gw.stop().await;
}
