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
//! duplicated. The IRC server is killed and restarted under 100 messages
//! from XMPP. In puppet mode (the irc and xc adapters only), XMPP occupants
//! appear on IRC as nicks of their own.
//!
//! If a server cannot start, the test fails and says why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use cpimgate_e2e::gate::Gate;
use cpimgate_e2e::gateway::Gateway;
use cpimgate_e2e::inspircd::{Inspircd, OPER_NAME, OPER_PASSWORD, SERVER_NAME};
use cpimgate_e2e::irc_user::IrcUser;
use cpimgate_e2e::prosody::{COMPONENT_DOMAIN, COMPONENT_SECRET, HOST_A, MUC_A, Prosody};
use cpimgate_e2e::xmpp_user::{WAIT, XmppUser, body, muc_user, nick_of};
use tokio_xmpp::parsers::message::{Message, MessageType};
use tokio_xmpp::parsers::muc::user::Status;
use tokio_xmpp::parsers::presence::{Presence, Type as PresenceType};

/// How the IRC adapter runs: relay mode, with a Prosody MUC federated
/// through client mode in the bridge too; or puppet mode, bridged with the
/// component room alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Relay,
    Puppet,
}

impl Mode {
    /// The adapters of the configuration.
    fn adapters(self) -> &'static [&'static str] {
        match self {
            Mode::Relay => &["irc", "xc", "xa"],
            Mode::Puppet => &["irc", "xc"],
        }
    }
}

fn config(irc_addr: std::net::SocketAddr, xmpp: &Prosody, mode: Mode) -> String {
    let (irc_mode, client, client_room) = match mode {
        Mode::Relay => (
            String::new(),
            format!(
                r#"
[adapters.xa]
kind = "xmpp"
mode = "client"
jid = "bridge@{HOST_A}"
password = "bridge-pw"
server = "{c2s}"
insecure_accept_any_certificate = true
rooms = [ {{ room = "lobby@{MUC_A}", nick = "bridge" }} ]
"#,
                c2s = xmpp.c2s_addr()
            ),
            format!(r#"  {{ adapter = "xa", address = "xmpp:lobby@{MUC_A}" }},"#),
        ),
        Mode::Puppet => (
            "mode = \"puppet\"\npuppet_rate = 20.0\nflood_burst = 20".to_owned(),
            String::new(),
            String::new(),
        ),
    };
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
{irc_mode}

[adapters.xc]
kind = "xmpp"
mode = "component"
domain = "{COMPONENT_DOMAIN}"
secret = "{COMPONENT_SECRET}"
server = "127.0.0.1:{component_port}"
{client}
[[bridge]]
name = "test"
rooms = [
  {{ adapter = "irc", address = "irc://{SERVER_NAME}/%23test" }},
  {{ adapter = "xc", address = "xmpp:%23test%25{SERVER_NAME}@{COMPONENT_DOMAIN}" }},
{client_room}
]
"##,
        component_port = xmpp.component_port(),
    )
}

/// Both servers with the test accounts, and the gateway connected to them
/// (to IRC through a [`Gate`] when `gate`), every adapter up.
async fn start(mode: Mode, gate: bool) -> (Inspircd, Prosody, Option<Gate>, Gateway) {
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
    let gate = if gate {
        Some(Gate::new(irc.addr()).await.unwrap())
    } else {
        None
    };
    let irc_addr = gate.as_ref().map_or(irc.addr(), Gate::addr);
    let gw = Gateway::start(&config(irc_addr, &xmpp, mode), Vec::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for a in mode.adapters() {
        gw.wait_connected(a, WAIT)
            .await
            .unwrap_or_else(|e| panic!("adapter {a} did not connect: {e}"));
    }
    (irc, xmpp, gate, gw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn irc_channel_as_component_room_and_federated_muc() {
    let (irc, xmpp, _, gw) = start(Mode::Relay, false).await;

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
    restart_case(Mode::Relay).await;
}

/// The same in puppet mode: zoe's puppet (or, while it is not back yet,
/// the gateway's connection as `<zoe> text`) says all 100, once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn puppet_messages_from_xmpp_survive_a_restart_of_the_irc_server() {
    restart_case(Mode::Puppet).await;
}

async fn restart_case(mode: Mode) {
    // The gateway reaches IRC through a gate, so it stays away until the
    // IRC user is back in the channel.
    let (mut irc, xmpp, gate, gw) = start(mode, true).await;
    let gate = gate.expect("a gate was asked for");
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
    let mut sources = std::collections::BTreeSet::new();
    while got.len() < 100 {
        let l = alice
            .expect_privmsg("#test", |t| t.starts_with("<zoe> m") || t.starts_with('m'))
            .await
            .unwrap_or_else(|e| panic!("after {} messages: {e}", got.len()));
        sources.insert(l.source.clone().unwrap_or_default());
        got.push(l.param(1).trim_start_matches("<zoe> ").to_owned());
    }
    // Relay mode: all through the gateway's connection; puppet mode: by
    // zoe's puppet (here all 100), the gateway's connection only for what
    // a puppet could not say in time.
    let allowed: &[&str] = match mode {
        Mode::Relay => &["bridge"],
        Mode::Puppet => &["zoe", "bridge"],
    };
    assert!(
        sources.iter().all(|s| allowed.contains(&s.as_str())),
        "said by {sources:?}"
    );
    let expected: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
    assert_eq!(got, expected, "all 100, once, in order");
    let extra = tokio::time::timeout(
        Duration::from_millis(700),
        alice.expect_privmsg("#test", |t| t.starts_with("<zoe> m") || t.starts_with('m')),
    )
    .await;
    assert!(extra.is_err(), "a duplicate arrived: {extra:?}");
    gw.shutdown().await.unwrap();
}

/// Puppet mode: an XMPP occupant of the component room appears on IRC as
/// a nick of its own (a puppet), IRC users appear in the room as
/// occupants, and messages, `/me`, nick changes, the topic and leaves go
/// both ways; a 2,000-byte message from XMPP arrives on IRC complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xmpp_occupants_as_irc_nicks_and_irc_users_as_occupants() {
    let (irc, xmpp, _, gw) = start(Mode::Puppet, false).await;
    let mut alice = IrcUser::connect(irc.addr(), "alice").await.unwrap();
    alice
        .wait_for_member("#test", "bridge", false)
        .await
        .unwrap_or_else(|e| panic!("the gateway never joined #test: {e}"));

    // zoe joins the component room: alice is an occupant, and zoe appears
    // on IRC as a nick of her own.
    let room = format!("#test%{SERVER_NAME}@{COMPONENT_DOMAIN}");
    let mut zoe = XmppUser::connect(&xmpp, &format!("zoe@{HOST_A}"), "zoe-pw")
        .await
        .unwrap();
    zoe.join_muc(&room, "zoe").await.unwrap();
    zoe.expect_presence(|p| nick_of(p.from.as_ref()) == Some("alice"), WAIT)
        .await
        .unwrap_or_else(|e| panic!("alice is not an occupant: {e}"));
    alice
        .expect("zoe's puppet joining", |l| {
            l.command == "JOIN" && l.source.as_deref() == Some("zoe")
        })
        .await
        .unwrap();

    // Messages both ways, without `<nick>` prefixes.
    zoe.send_groupchat(&room, "hello irc").await.unwrap();
    let l = alice
        .expect_privmsg("#test", |t| t == "hello irc")
        .await
        .unwrap();
    assert_eq!(l.source.as_deref(), Some("zoe"));
    alice.say("#test", "hello zoe").await.unwrap();
    let m = zoe
        .expect_message(|m| body(m) == Some("hello zoe"), WAIT)
        .await
        .unwrap();
    assert_eq!(nick_of(m.from.as_ref()), Some("alice"));

    // /me both ways.
    zoe.send_groupchat(&room, "/me waves").await.unwrap();
    alice
        .expect_privmsg("#test", |t| t == "\x01ACTION waves\x01")
        .await
        .unwrap();
    alice.say("#test", "\x01ACTION bows\x01").await.unwrap();
    zoe.expect_message(|m| body(m) == Some("/me bows"), WAIT)
        .await
        .unwrap();

    // A 2,000-byte message from XMPP arrives on IRC complete, in lines
    // that fit, split between words.
    let words: Vec<String> = (0..400).map(|i| format!("w{i:03}")).collect();
    let long = words.join(" ");
    assert!(long.len() >= 1999, "{}", long.len());
    zoe.send_groupchat(&room, &long).await.unwrap();
    let mut got: Vec<String> = Vec::new();
    while got.len() < words.len() {
        let l = alice
            .expect_privmsg("#test", |t| t.starts_with('w'))
            .await
            .unwrap_or_else(|e| panic!("after {} words: {e}", got.len()));
        assert_eq!(l.source.as_deref(), Some("zoe"));
        assert!(l.raw.len() + 2 <= 512, "a line of {} bytes", l.raw.len());
        got.extend(l.param(1).split(' ').map(str::to_owned));
    }
    assert_eq!(got, words);

    // The topic, from IRC to the room.
    alice.send("TOPIC #test :bridged topic").await.unwrap();
    zoe.expect_message(
        |m: &Message| {
            m.type_ == MessageType::Groupchat && m.subjects.values().any(|s| s == "bridged topic")
        },
        WAIT,
    )
    .await
    .unwrap_or_else(|e| panic!("the topic did not reach the room: {e}"));

    // Nick changes: zoe's puppet follows; alice's is one presence change.
    zoe.change_nick(&room, "zed").await.unwrap();
    alice
        .expect("the puppet's nick change", |l| {
            l.command == "NICK" && l.source.as_deref() == Some("zoe") && l.param(0) == "zed"
        })
        .await
        .unwrap();
    alice.send("NICK alicia").await.unwrap();
    zoe.expect_presence(|p| nick_of(p.from.as_ref()) == Some("alicia"), WAIT)
        .await
        .unwrap_or_else(|e| panic!("alice's new nick did not show: {e}"));

    // zoe leaves: her puppet leaves the channel.
    zoe.leave_muc(&room, "zed").await.unwrap();
    alice
        .expect("the puppet leaving", |l| {
            matches!(l.command.as_str(), "PART" | "QUIT") && l.source.as_deref() == Some("zed")
        })
        .await
        .unwrap();
    gw.shutdown().await.unwrap();
}

/// Whether `p` is the room's word to its receiver that they were kicked
/// (XEP-0045 §9.1: unavailable, 307 and 110).
fn kicked_self(p: &Presence) -> bool {
    p.type_ == PresenceType::Unavailable
        && muc_user(p).is_some_and(|u| {
            u.status.contains(&Status::Kicked) && u.status.contains(&Status::SelfPresence)
        })
}

/// Puppet mode: an IRC operator who kicks a puppet kicks its XMPP user
/// from the bridged room (307); after a rejoin the puppet is back in the
/// channel. A banned puppet cannot rejoin: its user's messages then come
/// through the gateway's own connection as `<nick> text`, not lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_kicking_a_puppet_kicks_its_user_and_a_ban_falls_back_to_relay() {
    let (irc, xmpp, _, gw) = start(Mode::Puppet, false).await;
    let mut alice = IrcUser::connect(irc.addr(), "alice").await.unwrap();
    alice
        .wait_for_member("#test", "bridge", false)
        .await
        .unwrap_or_else(|e| panic!("the gateway never joined #test: {e}"));
    alice
        .send(&format!("OPER {OPER_NAME} {OPER_PASSWORD}"))
        .await
        .unwrap();
    alice
        .expect("RPL_YOUREOPER", |l| l.command == "381")
        .await
        .unwrap();
    alice.send("SAMODE #test +o alice").await.unwrap();
    alice
        .expect("alice made a channel operator", |l| {
            l.command == "MODE" && l.param(1) == "+o" && l.param(2) == "alice"
        })
        .await
        .unwrap();

    let room = format!("#test%{SERVER_NAME}@{COMPONENT_DOMAIN}");
    let mut zoe = XmppUser::connect(&xmpp, &format!("zoe@{HOST_A}"), "zoe-pw")
        .await
        .unwrap();
    zoe.join_muc(&room, "zoe").await.unwrap();
    alice
        .expect("zoe's puppet joining", |l| {
            l.command == "JOIN" && l.source.as_deref() == Some("zoe")
        })
        .await
        .unwrap();

    // The kick: zoe is kicked from the room, with the operator's reason.
    alice.send("KICK #test zoe :behave").await.unwrap();
    let p = zoe
        .expect_presence(kicked_self, WAIT)
        .await
        .unwrap_or_else(|e| panic!("zoe was not kicked from the room: {e}"));
    assert!(
        format!("{p:?}").contains("behave"),
        "the reason is not in the kick: {p:?}"
    );

    // She comes back: so does her puppet, and it speaks for her again.
    zoe.join_muc(&room, "zoe").await.unwrap();
    alice
        .expect("zoe's puppet rejoining", |l| {
            l.command == "JOIN" && l.source.as_deref() == Some("zoe")
        })
        .await
        .unwrap();
    zoe.send_groupchat(&room, "back again").await.unwrap();
    let l = alice
        .expect_privmsg("#test", |t| t == "back again")
        .await
        .unwrap();
    assert_eq!(l.source.as_deref(), Some("zoe"));

    // Banned and kicked: the room lets her back in, the channel does not
    // let her puppet in; what she says arrives through the gateway.
    alice.send("MODE #test +b zoe!*@*").await.unwrap();
    alice.send("KICK #test zoe :out").await.unwrap();
    zoe.expect_presence(kicked_self, WAIT)
        .await
        .unwrap_or_else(|e| panic!("zoe was not kicked the second time: {e}"));
    zoe.join_muc(&room, "zoe").await.unwrap();
    zoe.send_groupchat(&room, "still here").await.unwrap();
    let l = alice
        .expect_privmsg("#test", |t| t.ends_with("still here"))
        .await
        .unwrap_or_else(|e| panic!("zoe's message after the ban was lost: {e}"));
    assert_eq!(l.source.as_deref(), Some("bridge"));
    assert_eq!(l.param(1), "<zoe> still here");
    gw.shutdown().await.unwrap();
}
