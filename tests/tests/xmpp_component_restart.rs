//! Component mode (XEP-0114) across a crash of the XMPP server.
//!
//! An XMPP user is in the component room `room%test.example@gw.localhost`,
//! bridged to a room of the embedded test adapter. Prosody is killed; the
//! other world says 100 things meanwhile; Prosody comes back on the same
//! ports, the component reconnects (with backoff), the user logs in again
//! and rejoins. Every message reaches the user exactly once, in order.
//!
//! What carries them: the hub's durable queue holds the messages while the
//! component is down and delivers them when it is back. The user is not in
//! the room at that moment (occupants are gone with the server), so the
//! component answers those deliveries "accepted" and the user gets them as
//! the room's history on rejoining (XEP-0045 §7.2.15); any that the hub
//! delivers after the rejoin and that the user already had as history are
//! not shown twice (see the module doc of `cpimgate_xmpp::component::muc`).
//!
//! The history is the hub's own store (`[history]`, on by default): every
//! room message the hub accepted, in order.
//!
//! If Prosody cannot start, the test fails and says why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cpimgate_e2e::embedded::{EmbeddedHandle, embedded_adapter, room_message};
use cpimgate_e2e::gateway::Gateway;
use cpimgate_e2e::prosody::{COMPONENT_DOMAIN, COMPONENT_SECRET, HOST_A, Prosody};
use cpimgate_e2e::xmpp_user::{WAIT, XmppUser, body, is_groupchat_from};
use cpimgate_model::port::{AdapterStatus, DeliveryOutcome};
use cpimgate_model::{Message, World};
use tokio_xmpp::parsers::muc::Muc;
use tokio_xmpp::parsers::muc::muc::History as HistoryRequest;

const ROOM_JID: &str = "room%test.example@gw.localhost";
const SIP_ROOM: &str = "sip:room@test.example";

fn config(component_port: u16) -> String {
    format!(
        r#"
        [gateway]
        name = "gw-e2e"
        [store]
        path = "{{dir}}/gw.sqlite"
        [queue]
        retry_base_ms = 20
        retry_max_ms = 200
        [history]
        # More than the 102 messages of the test: the user gets them all.
        keep = 500
        [adapters.xc]
        kind = "xmpp"
        mode = "component"
        domain = "{COMPONENT_DOMAIN}"
        secret = "{COMPONENT_SECRET}"
        server = "127.0.0.1:{component_port}"
        [adapters.sip]
        kind = "embedded"
        [[bridge]]
        name = "lobby"
        rooms = [
          {{ adapter = "xc", address = "xmpp:room%25test.example@{COMPONENT_DOMAIN}" }},
          {{ adapter = "sip", address = "{SIP_ROOM}" }},
        ]
        [[route]]
        domain = "{HOST_A}"
        adapter = "xc"
        "#
    )
}

async fn wait_status(gw: &Gateway, want: AdapterStatus, server: &Prosody) {
    gw.wait_status("xc", want, WAIT).await.unwrap_or_else(|e| {
        panic!(
            "the component was not {want:?}: {e}; prosody log:\n{}",
            server.log_tail(30)
        )
    });
}

fn from_sip(n: &str, text: &str) -> Message {
    let mut m = room_message(
        World::Sip,
        "sip",
        SIP_ROOM,
        &format!("sip:{n}@test.example"),
        text,
    )
    .unwrap();
    m.from.display = Some(n.to_owned());
    m
}

async fn hand_in(sip: &EmbeddedHandle, m: Message) {
    assert_eq!(sip.send(m).await.unwrap(), DeliveryOutcome::Accepted);
}

#[tokio::test]
async fn room_messages_survive_a_crash_of_the_xmpp_server() {
    let mut server = Prosody::start()
        .await
        .expect("starting prosody (is it installed?)");
    server
        .register("user", HOST_A, "user-pw")
        .await
        .expect("registering user@a.localhost");
    let (sip, sip_handle) = embedded_adapter(World::Sip);
    let hub = Gateway::start(&config(server.component_port()), vec![("sip".into(), sip)])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_status(&hub, AdapterStatus::Connected, &server).await;

    let mut user = XmppUser::connect(&server, "user@a.localhost", "user-pw")
        .await
        .expect("user@a.localhost logs in");
    user.join_muc(ROOM_JID, "tester").await.expect("joining");
    hand_in(&sip_handle, from_sip("carol", "before")).await;
    user.expect_body("before", WAIT)
        .await
        .expect("the message before the crash");

    // The crash: no stream is closed; the component finds out by itself.
    server.kill().await.expect("killing prosody");
    wait_status(&hub, AdapterStatus::Disconnected, &server).await;
    let texts: Vec<String> = (0..100).map(|i| format!("m{i:03}")).collect();
    for t in &texts {
        hand_in(&sip_handle, from_sip("carol", t)).await;
    }
    // None of them was lost as delivered: the hub still holds them (the
    // component refuses deliveries while it is not connected).
    server.start_again().await.expect("starting prosody again");
    wait_status(&hub, AdapterStatus::Connected, &server).await;

    user.reconnect().await.expect("logging in again");
    user.join_muc_with(
        ROOM_JID,
        "tester",
        Muc::new().with_history(HistoryRequest::new().with_maxstanzas(200)),
    )
    .await
    .expect("joining again");
    // A last message after the rejoin: everything before it has arrived by
    // the time it does (one room, one order).
    hand_in(&sip_handle, from_sip("carol", "after")).await;

    let mut got = Vec::new();
    loop {
        let m = user
            .expect_message(
                |m| is_groupchat_from(m, ROOM_JID) && body(m).is_some(),
                WAIT,
            )
            .await
            .unwrap_or_else(|e| panic!("after {} messages ({got:?}): {e}", got.len()));
        let text = body(&m).unwrap().to_owned();
        if text.starts_with('m') {
            // Said while the user was away: history (XEP-0045 §7.2.15),
            // delayed by the room (XEP-0203).
            let delay = m
                .payloads
                .iter()
                .find(|p| p.is("delay", "urn:xmpp:delay"))
                .unwrap_or_else(|| panic!("{text} came without <delay/>"));
            assert_eq!(delay.attr("from"), Some(ROOM_JID));
        }
        got.push(text.clone());
        if text == "after" {
            break;
        }
    }
    let mut want = vec!["before".to_owned()];
    want.extend(texts);
    want.push("after".to_owned());
    assert_eq!(got, want, "each message once, in order");

    user.disconnect().await.ok();
    hub.shutdown().await.expect("hub shutdown");
}
