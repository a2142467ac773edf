//! IRC bridged with XMPP, both real: a private InspIRCd and a private
//! Prosody, the hub in this process with three adapters in one bridge:
//!
//! * `irc`: relay mode in `#test` on InspIRCd;
//! * `xc`: the XMPP component, serving the IRC channel as the MUC room
//!   `#test%irc.localhost@gw.localhost` (the biboumi-style address);
//! * `xa`: XMPP client mode in the existing MUC `lobby@conference.a.localhost`.
//!
//! An IRC user, an XMPP user in the component room and an XMPP user in the
//! Prosody MUC talk to each other; the component room shows the IRC
//! channel's members as occupants, and no message is echoed back or
//! duplicated.
//!
//! If a server cannot start, the test fails and says why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use cpimgate_e2e::gate::Gate;
use cpimgate_e2e::gateway::Gateway;
use cpimgate_e2e::inspircd::{Inspircd, SERVER_NAME};
use cpimgate_e2e::irc_user::IrcUser;
use cpimgate_e2e::prosody::{COMPONENT_DOMAIN, COMPONENT_SECRET, HOST_A, MUC_A, Prosody};
use cpimgate_e2e::xmpp_user::{WAIT, XmppUser, body, nick_of};

fn config(irc_addr: std::net::SocketAddr, xmpp: &Prosody) -> String {
    format!(
        r##"
[gateway]
name = "gw-irc-xmpp"
domains = ["{COMPONENT_DOMAIN}"]

[store]
path = "{{dir}}/gateway.sqlite"

[queue]
retry_base_ms = 50
retry_max_ms = 500

[adapters.irc]
kind = "irc"
network = "{SERVER_NAME}"
server = "{irc_addr}"
nick = "bridge"
channels = ["#test"]
flood_rate = 50.0

[adapters.xc]
kind = "xmpp"
mode = "component"
domain = "{COMPONENT_DOMAIN}"
secret = "{COMPONENT_SECRET}"
server = "127.0.0.1:{component_port}"

[adapters.xa]
kind = "xmpp"
mode = "client"
jid = "bridge@{HOST_A}"
password = "bridge-pw"
server = "{c2s}"
insecure_accept_any_certificate = true
rooms = [ {{ room = "lobby@{MUC_A}", nick = "bridge" }} ]

[[bridge]]
name = "test"
rooms = [
  {{ adapter = "irc", address = "irc://{SERVER_NAME}/%23test" }},
  {{ adapter = "xc", address = "xmpp:%23test%25{SERVER_NAME}@{COMPONENT_DOMAIN}" }},
  {{ adapter = "xa", address = "xmpp:lobby@{MUC_A}" }},
]
"##,
        component_port = xmpp.component_port(),
        c2s = xmpp.c2s_addr(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn irc_channel_as_component_room_and_federated_muc() {
    cpimgate_e2e::init_logging();
    let irc = Inspircd::start().await.unwrap_or_else(|e| panic!("{e}"));
    let xmpp = Prosody::start().await.unwrap_or_else(|e| panic!("{e}"));
    for (user, pw) in [
        ("bridge", "bridge-pw"),
        ("zoe", "zoe-pw"),
        ("yan", "yan-pw"),
    ] {
        xmpp.register(user, HOST_A, pw).await.unwrap();
    }
    let gw = Gateway::start(&config(irc.addr(), &xmpp), Vec::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for a in ["irc", "xc", "xa"] {
        gw.wait_connected(a, WAIT)
            .await
            .unwrap_or_else(|e| panic!("adapter {a} did not connect: {e}"));
    }

    // The IRC user is in the channel before the XMPP users come.
    let mut alice = IrcUser::connect(irc.addr(), "alice").await.unwrap();
    alice
        .wait_for_member("#test", "bridge", false)
        .await
        .unwrap_or_else(|e| panic!("the gateway never joined #test: {e}"));

    // zoe joins the component room and sees the IRC channel's members.
    let room = format!("#test%{SERVER_NAME}@{COMPONENT_DOMAIN}");
    let mut zoe = XmppUser::connect(&xmpp, &format!("zoe@{HOST_A}"), "zoe-pw")
        .await
        .unwrap();
    zoe.join_muc(&room, "zoe").await.unwrap();
    let alice_there = zoe
        .expect_presence(|p| nick_of(p.from.as_ref()) == Some("alice"), WAIT)
        .await;
    assert!(
        alice_there.is_ok(),
        "alice is not an occupant: {alice_there:?}"
    );

    // yan is in the ordinary MUC the client-mode adapter sits in.
    let lobby = format!("lobby@{MUC_A}");
    let mut yan = XmppUser::connect(&xmpp, &format!("yan@{HOST_A}"), "yan-pw")
        .await
        .unwrap();
    yan.join_muc(&lobby, "yan").await.unwrap();
    zoe.clear();
    yan.clear();

    // IRC → both XMPP rooms.
    alice.say("#test", "hello xmpp").await.unwrap();
    let m = zoe
        .expect_message(|m| body(m) == Some("hello xmpp"), WAIT)
        .await
        .unwrap();
    assert_eq!(nick_of(m.from.as_ref()), Some("alice"));
    yan.expect_body("<alice> hello xmpp", WAIT).await.unwrap();

    // Component room → IRC and the MUC.
    zoe.send_groupchat(&room, "hi from the component & <co>")
        .await
        .unwrap();
    alice
        .expect_privmsg("#test", |t| t == "<zoe> hi from the component & <co>")
        .await
        .unwrap();
    yan.expect_body("<zoe> hi from the component & <co>", WAIT)
        .await
        .unwrap();

    // MUC → IRC and the component room.
    yan.send_groupchat(&lobby, "hi from the muc").await.unwrap();
    alice
        .expect_privmsg("#test", |t| t == "<yan> hi from the muc")
        .await
        .unwrap();
    let m = zoe
        .expect_message(|m| body(m) == Some("hi from the muc"), WAIT)
        .await
        .unwrap();
    assert_eq!(nick_of(m.from.as_ref()), Some("yan"));

    // Nothing was echoed back or doubled: each side got each message once.
    let again = tokio::time::timeout(
        Duration::from_millis(700),
        alice.expect_privmsg("#test", |t| {
            t.contains("hello xmpp") || t.contains("hi from")
        }),
    )
    .await;
    assert!(
        again.is_err(),
        "IRC saw a message twice or its own: {again:?}"
    );
    zoe.expect_no_message(
        |m| {
            nick_of(m.from.as_ref()) != Some("zoe")
                && body(m).is_some_and(|b| b.contains("hello xmpp") || b.contains("hi from"))
        },
        Duration::from_millis(300),
    )
    .await
    .unwrap();
    // (yan's own message comes back from the MUC as its reflection.)
    yan.expect_no_message(
        |m| {
            nick_of(m.from.as_ref()) == Some("bridge")
                && body(m).is_some_and(|b| b.contains("hello xmpp") || b.contains("hi from"))
        },
        Duration::from_millis(300),
    )
    .await
    .unwrap();

    // A new IRC user shows up as an occupant of the component room.
    let mut bob = IrcUser::connect(irc.addr(), "bob").await.unwrap();
    bob.join("#test").await.unwrap();
    let bob_there = zoe
        .expect_presence(|p| nick_of(p.from.as_ref()) == Some("bob"), WAIT)
        .await;
    assert!(bob_there.is_ok(), "bob's join did not show: {bob_there:?}");
    gw.shutdown().await.unwrap();
}

/// Kill the IRC server, send 100 messages from XMPP, start it again: all
/// arrive on IRC once, in order, after the gateway reconnects and rejoins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_from_xmpp_survive_a_restart_of_the_irc_server() {
    cpimgate_e2e::init_logging();
    let mut irc = Inspircd::start().await.unwrap_or_else(|e| panic!("{e}"));
    let xmpp = Prosody::start().await.unwrap_or_else(|e| panic!("{e}"));
    for (user, pw) in [("bridge", "bridge-pw"), ("zoe", "zoe-pw")] {
        xmpp.register(user, HOST_A, pw).await.unwrap();
    }
    // The gateway reaches IRC through a gate, so it stays away until the
    // IRC user is back in the channel.
    let gate = Gate::new(irc.addr()).await.unwrap();
    let gw = Gateway::start(&config(gate.addr(), &xmpp), Vec::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for a in ["irc", "xc"] {
        gw.wait_connected(a, WAIT)
            .await
            .unwrap_or_else(|e| panic!("adapter {a} did not connect: {e}"));
    }
    let room = format!("#test%{SERVER_NAME}@{COMPONENT_DOMAIN}");
    let mut zoe = XmppUser::connect(&xmpp, &format!("zoe@{HOST_A}"), "zoe-pw")
        .await
        .unwrap();
    zoe.join_muc(&room, "zoe").await.unwrap();

    gate.set_open(false);
    irc.kill().await;
    gw.wait_status(
        "irc",
        cpimgate_model::port::AdapterStatus::Disconnected,
        WAIT,
    )
    .await
    .unwrap();
    for i in 0..100 {
        zoe.send_groupchat(&room, &format!("m{i}")).await.unwrap();
    }
    // The room reflects each to zoe: all were taken.
    zoe.expect_message(|m| body(m) == Some("m99"), WAIT)
        .await
        .unwrap();

    irc.start_again().await.unwrap_or_else(|e| panic!("{e}"));
    let mut alice = IrcUser::connect(irc.addr(), "alice").await.unwrap();
    alice.join("#test").await.unwrap();
    gate.set_open(true);
    let mut got = Vec::new();
    while got.len() < 100 {
        let l = alice
            .expect_privmsg("#test", |t| t.starts_with("<zoe> m"))
            .await
            .unwrap_or_else(|e| panic!("after {} messages: {e}", got.len()));
        got.push(l.param(1).trim_start_matches("<zoe> ").to_owned());
    }
    let expected: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
    assert_eq!(got, expected, "all 100, once, in order");
    let extra = tokio::time::timeout(
        Duration::from_millis(700),
        alice.expect_privmsg("#test", |t| t.starts_with("<zoe> m")),
    )
    .await;
    assert!(extra.is_err(), "a duplicate arrived: {extra:?}");
    gw.shutdown().await.unwrap();
}
