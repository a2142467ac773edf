//! An MSRP chat room of the gateway bridged with XMPP and IRC, all real:
//! a private Prosody, a private InspIRCd, the hub in this process with
//! three adapters in one bridge:
//!
//! * `chat`: the MSRP room `sip:room22@chat.localhost`, its participants
//!   the test UA of `cpimgate_e2e::msrp_ua`;
//! * `xc`: the XMPP component, serving the MSRP room as the MUC room
//!   `room22%chat.localhost@gw.localhost`;
//! * `irc`: relay mode in `#test` on InspIRCd.
//!
//! Messages go each way between the three worlds, each arriving once and
//! never echoed to its sender; the MSRP participant shows in the MUC as an
//! occupant under its nickname; a nickname held in a bridged world gets
//! 425 in the MSRP room (one nickname space per bridge); private messages
//! between the MSRP participant and the MUC occupant reach only each
//! other; a 1 MB message arrives whole on MSRP and cut on XMPP and IRC;
//! the room's
//! conference events (RFC 4575) list the members of every world; leaving
//! the MSRP room shows as the occupant leaving.
//!
//! If a server cannot start, the test fails and says why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use cpimgate_e2e::gateway::Gateway;
use cpimgate_e2e::inspircd::{Inspircd, SERVER_NAME};
use cpimgate_e2e::irc_user::IrcUser;
use cpimgate_e2e::msrp_ua::{JoinOptions, MsrpUa};
use cpimgate_e2e::prosody::{COMPONENT_DOMAIN, COMPONENT_SECRET, HOST_A, Prosody, free_port};
use cpimgate_e2e::xmpp_user::{WAIT, XmppUser, body, nick_of};
use tokio_xmpp::parsers::presence::Type as PresenceType;

const DOMAIN: &str = "chat.localhost";
const ROOM: &str = "sip:room22@chat.localhost";

fn config(sip_port: u16, irc: SocketAddr, xmpp: &Prosody) -> String {
    format!(
        r##"
[gateway]
name = "gw-msrp-bridge"
domains = ["{COMPONENT_DOMAIN}"]

[queue]
retry_base_ms = 50
retry_max_ms = 500

[adapters.chat]
kind = "msrp"
domain = "{DOMAIN}"
sip_udp = ["127.0.0.1:{sip_port}"]
msrp = "127.0.0.1:0"
rooms = [ {{ name = "room22" }} ]

[adapters.xc]
kind = "xmpp"
mode = "component"
domain = "{COMPONENT_DOMAIN}"
secret = "{COMPONENT_SECRET}"
server = "127.0.0.1:{component_port}"

[adapters.irc]
kind = "irc"
network = "{SERVER_NAME}"
server = "{irc}"
nick = "bridge"
channels = ["#test"]
flood_rate = 50.0

[[bridge]]
name = "room22"
rooms = [
  {{ adapter = "chat", address = "{ROOM}" }},
  {{ adapter = "xc", address = "xmpp:room22%25{DOMAIN}@{COMPONENT_DOMAIN}" }},
  {{ adapter = "irc", address = "irc://{SERVER_NAME}/%23test" }},
]
"##,
        component_port = xmpp.component_port(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_msrp_room_bridged_with_a_muc_and_an_irc_channel() {
    cpimgate_e2e::init_logging();
    let irc = Inspircd::start().await.unwrap_or_else(|e| panic!("{e}"));
    let xmpp = Prosody::start().await.unwrap_or_else(|e| panic!("{e}"));
    xmpp.register("zoe", HOST_A, "zoe-pw").await.unwrap();
    let sip_port = free_port().unwrap();
    let gw = Gateway::start(&config(sip_port, irc.addr(), &xmpp), Vec::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for a in ["chat", "xc", "irc"] {
        gw.wait_connected(a, WAIT)
            .await
            .unwrap_or_else(|e| panic!("adapter {a} did not connect: {e}"));
    }
    let mut alice = IrcUser::connect(irc.addr(), "alice").await.unwrap();
    alice
        .wait_for_member("#test", "bridge", false)
        .await
        .unwrap_or_else(|e| panic!("the gateway never joined #test: {e}"));

    // zoe joins the MSRP room as a MUC room of the component.
    let muc = format!("room22%{DOMAIN}@{COMPONENT_DOMAIN}");
    let mut zoe = XmppUser::connect(&xmpp, &format!("zoe@{HOST_A}"), "zoe-pw")
        .await
        .unwrap();
    zoe.join_muc(&muc, "zoe").await.unwrap();

    // bob joins over SIP and MSRP, and takes a nickname.
    let focus = SocketAddr::from(([127, 0, 0, 1], sip_port));
    let mut bob = MsrpUa::join(
        focus,
        ROOM,
        "sip:bob@biloxi.example.com",
        JoinOptions::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("bob joins: {e}"));
    assert_eq!(bob.nickname("Bob").await.unwrap(), 200);
    let bob_there = zoe
        .expect_presence(
            |p| nick_of(p.from.as_ref()) == Some("Bob") && p.type_ != PresenceType::Unavailable,
            WAIT,
        )
        .await;
    assert!(bob_there.is_ok(), "Bob is not an occupant: {bob_there:?}");

    // One nickname space per bridge: zoe's nickname is taken.
    let mut carol = MsrpUa::join(
        focus,
        ROOM,
        "sip:carol@chicago.example.com",
        JoinOptions::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("carol joins: {e}"));
    let taken = carol.nickname("Zoe").await.unwrap();
    assert_eq!(taken, 425, "a nickname held in the MUC");
    // The conference events list the bridged worlds' members too.
    assert_eq!(carol.subscribe().await.unwrap(), 200);
    let full = carol.next_notify(WAIT).await.unwrap();
    for nick in ["Bob", "zoe", "alice"] {
        assert!(
            full.contains(&format!("nickname=\"{nick}\"")),
            "{nick}: {full}"
        );
    }

    // MSRP → XMPP and IRC.
    assert_eq!(bob.send(ROOM, "hello from msrp").await.unwrap(), 200);
    let m = zoe
        .expect_message(|m| body(m) == Some("hello from msrp"), WAIT)
        .await
        .unwrap();
    assert_eq!(nick_of(m.from.as_ref()), Some("Bob"));
    alice
        .expect_privmsg("#test", |t| t == "<Bob> hello from msrp")
        .await
        .unwrap();
    carol.expect_text("hello from msrp").await.unwrap();

    // XMPP → MSRP (From zoe's nickname URI in the room's domain) and IRC.
    zoe.send_groupchat(&muc, "hi from xmpp & <co>")
        .await
        .unwrap();
    let r = bob.expect_text("hi from xmpp & <co>").await.unwrap();
    assert_eq!(r.from.address.to_string(), format!("sip:zoe@{DOMAIN}"));
    assert_eq!(r.from.display.as_deref(), Some("zoe"));
    assert_eq!(r.to[0].address.to_string(), ROOM);
    alice
        .expect_privmsg("#test", |t| t == "<zoe> hi from xmpp & <co>")
        .await
        .unwrap();

    // IRC → MSRP and XMPP.
    alice.say("#test", "hi from irc").await.unwrap();
    let r = bob.expect_text("hi from irc").await.unwrap();
    assert_eq!(r.from.display.as_deref(), Some("alice"));
    zoe.expect_message(|m| body(m) == Some("hi from irc"), WAIT)
        .await
        .unwrap();

    // Nothing came back to its sender or twice.
    bob.expect_no_text("hello from msrp", Duration::from_millis(500))
        .await
        .unwrap();
    let again = tokio::time::timeout(
        Duration::from_millis(500),
        alice.expect_privmsg("#test", |t| {
            t.contains("hi from irc") || t.contains("hello from msrp")
        }),
    )
    .await;
    assert!(
        again.is_err(),
        "IRC saw a message twice or its own: {again:?}"
    );

    // Private messages across worlds reach only their recipient: MSRP →
    // the MUC occupant (by its nickname URI in the room's domain), and the
    // occupant → the MSRP participant (to its occupant JID).
    let to_zoe = format!("sip:zoe@{DOMAIN}");
    assert_eq!(bob.send(&to_zoe, "psst zoe").await.unwrap(), 200);
    let m = zoe
        .expect_message(|m| body(m) == Some("psst zoe"), WAIT)
        .await
        .unwrap();
    assert_eq!(nick_of(m.from.as_ref()), Some("Bob"));
    zoe.send_chat(&format!("{muc}/Bob"), "psst bob")
        .await
        .unwrap();
    let r = bob.expect_text("psst bob").await.unwrap();
    assert_eq!(r.from.display.as_deref(), Some("zoe"));
    carol
        .expect_no_text("psst bob", Duration::from_millis(300))
        .await
        .unwrap();
    carol
        .expect_no_text("psst zoe", Duration::from_millis(300))
        .await
        .unwrap();
    let leaked = tokio::time::timeout(
        Duration::from_millis(300),
        alice.expect_privmsg("#test", |t| t.contains("psst")),
    )
    .await;
    assert!(leaked.is_err(), "a private message reached IRC: {leaked:?}");

    // MSRP → the IRC user privately, by her nickname URI: a PRIVMSG to her
    // nick (relay mode: from the gateway's nick, saying who it is from).
    let to_alice = format!("sip:alice@{DOMAIN}");
    assert_eq!(bob.send(&to_alice, "psst alice").await.unwrap(), 200);
    let line = alice
        .expect_privmsg("alice", |t| t.contains("psst alice"))
        .await
        .unwrap();
    assert!(line.param(1).contains("Bob"), "{line:?}");

    // A 1 MB message in 2 KB chunks: whole for the other MSRP participant,
    // cut for XMPP (to the component's max_body, with a note: a stanza
    // past the server's limit would close the stream) and for IRC (to
    // max_lines).
    let big = "0123456789".repeat(100_000);
    assert_eq!(
        bob.send_as("sip:bob@biloxi.example.com", ROOM, &big, 2048)
            .await
            .unwrap(),
        200
    );
    assert_eq!(carol.expect_text(&big).await.unwrap().text.len(), big.len());
    let m = zoe
        .expect_message(
            |m| body(m).is_some_and(|b| b.starts_with("0123456789")),
            WAIT,
        )
        .await
        .unwrap();
    let shown = body(&m).unwrap();
    assert!(shown.len() <= 64 * 1024, "{} bytes", shown.len());
    assert!(
        shown.ends_with("bytes cut]"),
        "{}",
        &shown[shown.len() - 40..]
    );
    alice
        .expect_privmsg("#test", |t| t.starts_with("<Bob> 0123456789"))
        .await
        .unwrap();

    // bob leaves: the occupant leaves the MUC.
    assert_eq!(bob.leave().await.unwrap(), 200);
    let gone = zoe
        .expect_presence(
            |p| nick_of(p.from.as_ref()) == Some("Bob") && p.type_ == PresenceType::Unavailable,
            WAIT,
        )
        .await;
    assert!(gone.is_ok(), "Bob's leave did not show: {gone:?}");
    gw.shutdown().await.unwrap();
}
