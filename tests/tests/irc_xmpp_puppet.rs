//! IRC puppet mode bridged with the XMPP component, both servers real
//! (InspIRCd and Prosody): the IRC channel `#test` is the component room
//! `#test%irc.localhost@gw.localhost`. An XMPP occupant appears on IRC as
//! a nick of its own (a puppet), IRC users appear in the room as
//! occupants, and messages, `/me`, nick changes, the topic and leaves go
//! both ways; a 2,000-byte message from XMPP arrives on IRC complete.
//!
//! If a server cannot start, the test fails and says why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cpimgate_e2e::gateway::Gateway;
use cpimgate_e2e::inspircd::{Inspircd, SERVER_NAME};
use cpimgate_e2e::irc_user::IrcUser;
use cpimgate_e2e::prosody::{COMPONENT_DOMAIN, COMPONENT_SECRET, HOST_A, Prosody};
use cpimgate_e2e::xmpp_user::{WAIT, XmppUser, body, nick_of};
use tokio_xmpp::parsers::message::{Message, MessageType};

fn config(irc: &Inspircd, xmpp: &Prosody) -> String {
    format!(
        r##"
[gateway]
name = "gw-irc-xmpp-puppet"
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
mode = "puppet"
puppet_rate = 20.0
flood_burst = 20
flood_rate = 50.0

[adapters.xc]
kind = "xmpp"
mode = "component"
domain = "{COMPONENT_DOMAIN}"
secret = "{COMPONENT_SECRET}"
server = "127.0.0.1:{component_port}"

[[bridge]]
name = "test"
rooms = [
  {{ adapter = "irc", address = "irc://{SERVER_NAME}/%23test" }},
  {{ adapter = "xc", address = "xmpp:%23test%25{SERVER_NAME}@{COMPONENT_DOMAIN}" }},
]
"##,
        irc_addr = irc.addr(),
        component_port = xmpp.component_port(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xmpp_occupants_as_irc_nicks_and_irc_users_as_occupants() {
    cpimgate_e2e::init_logging();
    let irc = Inspircd::start().await.unwrap_or_else(|e| panic!("{e}"));
    let xmpp = Prosody::start().await.unwrap_or_else(|e| panic!("{e}"));
    xmpp.register("zoe", HOST_A, "zoe-pw").await.unwrap();
    let gw = Gateway::start(&config(&irc, &xmpp), Vec::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for a in ["irc", "xc"] {
        gw.wait_connected(a, WAIT)
            .await
            .unwrap_or_else(|e| panic!("adapter {a} did not connect: {e}"));
    }
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
