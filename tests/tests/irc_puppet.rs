//! IRC puppet mode against a real InspIRCd: the hub runs in this process
//! with the IRC adapter (`mode = "puppet"`) and an embedded test adapter
//! named "sip" standing for another world, bridged `#test` ↔
//! `sip:room@test.example`; a plain IRC client plays the human user.
//!
//! 1. A user of the other world joins: her puppet joins `#test` with her
//!    nick, speaks as herself (no `<Nick>` prefix), is not relayed back,
//!    takes and sends private messages, parts when she leaves, and comes
//!    back with the same nick (kept in the mapping table).
//! 2. With `puppet_max = 1`, a second user gets no puppet: her messages go
//!    through the gateway's connection as `<Nick> text`.
//! 3. The server restarts: the gateway's connection and the puppet come
//!    back each on its own, and she speaks through her puppet again.
//!
//! If InspIRCd cannot start, these tests fail and say why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use cpimgate_e2e::embedded::{
    EmbeddedHandle, Seen, direct_message, embedded_adapter, room_message,
};
use cpimgate_e2e::gateway::Gateway;
use cpimgate_e2e::inspircd::{Inspircd, SERVER_NAME, bridge_config};
use cpimgate_e2e::irc_user::{IrcUser, Line, WAIT};
use cpimgate_model::event::{Participant, RoomEventKind};
use cpimgate_model::port::DeliveryOutcome;
use cpimgate_model::{Message, MessageId, Origin, RoomEvent, RoomRef, World};

const SIP_ROOM: &str = "sip:room@test.example";
const ALICE: &str = "sip:alice@example.com";
const CAROL: &str = "sip:carol@example.com";

/// The gateway's config: puppet mode, at most `max` puppets; 1:1 messages
/// to `example.com` go to the embedded adapter, to IRC nicks to IRC.
fn config(addr: std::net::SocketAddr, max: usize) -> String {
    bridge_config(
        addr,
        SIP_ROOM,
        &format!(
            "mode = \"puppet\"\npuppet_max = {max}\npuppet_rate = 20.0\nflood_burst = 10\nflood_rate = 50.0\nreconnect_max_secs = 2"
        ),
        &format!(
            "[[route]]\ndomain = \"example.com\"\nadapter = \"sip\"\n\n[[route]]\nscheme = \"irc\"\ndomain = \"{SERVER_NAME}\"\nadapter = \"irc\""
        ),
    )
}

async fn start(max: usize) -> (Inspircd, Gateway, EmbeddedHandle) {
    cpimgate_e2e::init_logging();
    let server = Inspircd::start().await.unwrap_or_else(|e| panic!("{e}"));
    let (sip, handle) = embedded_adapter(World::Sip);
    let gw = Gateway::start(&config(server.addr(), max), vec![("sip".into(), sip)])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    gw.wait_connected("irc", WAIT).await.unwrap_or_else(|e| {
        panic!(
            "the IRC adapter did not register: {e}\n{}",
            server.log_tail(30)
        )
    });
    (server, gw, handle)
}

fn sip_room() -> RoomRef {
    RoomRef {
        adapter: "sip".into(),
        address: SIP_ROOM.parse().unwrap(),
    }
}

/// A room event of the other world's room.
fn event(kind: RoomEventKind) -> RoomEvent {
    RoomEvent {
        id: MessageId::random(),
        room: sip_room(),
        origin: Origin {
            world: World::Sip,
            adapter: "sip".into(),
            native_id: None,
        },
        trail: Vec::new(),
        kind,
    }
}

fn who(address: &str, nick: &str) -> Participant {
    Participant {
        address: address.parse().unwrap(),
        nick: nick.into(),
    }
}

/// A room message of the other world from `from`, named `name`.
fn said(from: &str, name: &str, text: &str) -> Message {
    let mut m = room_message(World::Sip, "sip", SIP_ROOM, from, text).unwrap();
    m.from.display = Some(name.into());
    m
}

/// Wait until `nicks` are all in `#test` (as `user`, who is in it, sees
/// it).
async fn wait_for_names(user: &mut IrcUser, nicks: &[&str]) {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut names = user.names("#test").await.unwrap();
    loop {
        if nicks.iter().all(|n| names.iter().any(|m| m == n)) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{nicks:?} never all in #test; names: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        names = user.names("#test").await.unwrap();
    }
}

/// Join `#test` and wait until the gateway's nick is in it.
async fn wait_for_bridge(user: &mut IrcUser) {
    user.join("#test").await.unwrap();
    wait_for_names(user, &["bridge"]).await;
}

fn from(l: &Line) -> &str {
    l.source.as_deref().unwrap_or("")
}

fn is_text(s: &Seen, text: &str) -> bool {
    matches!(s, Seen::Deliver(m) if m.body.as_text() == Some(text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_users_appear_as_themselves() {
    let (server, gw, mut sip) = start(50).await;
    let mut bob = IrcUser::connect(server.addr(), "bob").await.unwrap();
    wait_for_bridge(&mut bob).await;

    // Alice joins the other world's room: her puppet joins #test.
    sip.send_event(event(RoomEventKind::Join {
        who: who(ALICE, "Alice in wonderland"),
    }))
    .unwrap();
    bob.expect("Alice's puppet joining #test", |l| {
        l.command == "JOIN" && from(l) == "Alice_in_wonderland" && l.param(0) == "#test"
    })
    .await
    .unwrap();

    // Her message comes from her puppet, as it is; the echo confirms it.
    sip.send(said(ALICE, "Alice in wonderland", "hello"))
        .await
        .unwrap();
    let l = bob.expect_privmsg("#test", |t| t == "hello").await.unwrap();
    assert_eq!(from(&l), "Alice_in_wonderland");
    let (_, _, outcome) = sip.next_report(WAIT).await.unwrap();
    assert_eq!(outcome, DeliveryOutcome::Delivered, "echo-message confirms");
    sip.send(said(ALICE, "Alice in wonderland", "/me waves"))
        .await
        .unwrap();
    let l = bob
        .expect_privmsg("#test", |t| t == "\x01ACTION waves\x01")
        .await
        .unwrap();
    assert_eq!(from(&l), "Alice_in_wonderland");

    // Bob's answer reaches the other world once; the puppet's own words
    // and its join do not come back. The marker comes after all of them
    // on the gateway's connection, so once it is in, they would be too.
    bob.say("#test", "hi alice").await.unwrap();
    bob.say("#test", "marker 1").await.unwrap();
    let m = sip.expect_text("hi alice", WAIT).await.unwrap();
    assert_eq!(m.from.display.as_deref(), Some("bob"));
    sip.expect_text("marker 1", WAIT).await.unwrap();
    sip.expect_none(
        |s| {
            is_text(s, "hi alice")
                || is_text(s, "hello")
                || is_text(s, "/me waves")
                || matches!(s, Seen::Event(e) if matches!(&e.kind, RoomEventKind::Join { who } if who.nick.starts_with("Alice")))
        },
        Duration::ZERO,
    )
    .await
    .unwrap();

    // Bob writes to Alice's puppet: a private message to Alice, in the
    // room where bob met her.
    bob.say("Alice_in_wonderland", "psst").await.unwrap();
    let m = sip.expect_text("psst", WAIT).await.unwrap();
    assert_eq!(m.to[0].address.to_string(), ALICE);
    assert_eq!(
        m.from.address.to_string(),
        format!("irc://{SERVER_NAME}/bob,isnick")
    );
    assert_eq!(m.from.display.as_deref(), Some("bob"));
    assert!(m.private, "met in #test: private in the room");
    assert_eq!(m.room, Some(sip_room()));

    // Alice answers bob privately: from her puppet.
    let dm = direct_message(
        World::Sip,
        "sip",
        ALICE,
        &format!("irc://{SERVER_NAME}/bob,isnick"),
        "psst yourself",
    )
    .unwrap();
    sip.send(dm).await.unwrap();
    let l = bob
        .expect_privmsg("bob", |t| t == "psst yourself")
        .await
        .unwrap();
    assert_eq!(from(&l), "Alice_in_wonderland");

    // The nick is kept for her.
    assert_eq!(
        gw.mappings().irc_nick_for(SERVER_NAME, ALICE).as_deref(),
        Some("Alice_in_wonderland")
    );

    // She leaves: the puppet parts (and quits, being in no channel).
    sip.send_event(event(RoomEventKind::Leave {
        who: who(ALICE, "Alice in wonderland"),
        reason: None,
    }))
    .unwrap();
    bob.expect("Alice's puppet leaving #test", |l| {
        l.command == "PART" && from(l) == "Alice_in_wonderland"
    })
    .await
    .unwrap();
    // In no channel, the puppet quits: bob no longer shares a channel
    // with it, so he asks the server until the nick is gone.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        bob.send("ISON Alice_in_wonderland").await.unwrap();
        let ison = bob
            .expect("the ISON answer (303)", |l| l.command == "303")
            .await
            .unwrap();
        if ison.param(1).trim().is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the puppet stayed on the network: {ison:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bob.say("#test", "marker 2").await.unwrap();
    sip.expect_text("marker 2", WAIT).await.unwrap();
    sip.expect_none(
        |s| matches!(s, Seen::Event(e) if matches!(&e.kind, RoomEventKind::Leave { who, .. } if who.nick.starts_with("Alice"))),
        Duration::ZERO,
    )
    .await
    .unwrap();

    // She comes back under another name: the kept nick is used.
    sip.send_event(event(RoomEventKind::Join {
        who: who(ALICE, "Alice"),
    }))
    .unwrap();
    bob.expect("Alice's puppet joining again", |l| {
        l.command == "JOIN" && l.param(0) == "#test" && from(l).starts_with("Alice")
    })
    .await
    .map(|l| assert_eq!(from(&l), "Alice_in_wonderland", "the kept nick"))
    .unwrap();
    gw.shutdown().await.unwrap();
    // Shutdown: the puppet says goodbye too.
    bob.expect("the puppet's QUIT at shutdown", |l| {
        l.command == "QUIT" && from(l) == "Alice_in_wonderland"
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_puppet_max_users_are_relayed() {
    let (server, gw, sip) = start(1).await;
    let mut bob = IrcUser::connect(server.addr(), "bob").await.unwrap();
    wait_for_bridge(&mut bob).await;
    sip.send_event(event(RoomEventKind::Join {
        who: who(ALICE, "Alice"),
    }))
    .unwrap();
    bob.expect("Alice's puppet joining #test", |l| {
        l.command == "JOIN" && from(l) == "Alice"
    })
    .await
    .unwrap();
    sip.send_event(event(RoomEventKind::Join {
        who: who(CAROL, "Carol"),
    }))
    .unwrap();
    sip.send(said(CAROL, "Carol", "no puppet for me"))
        .await
        .unwrap();
    let l = bob
        .expect_privmsg("#test", |t| t.ends_with("no puppet for me"))
        .await
        .unwrap();
    assert_eq!(from(&l), "bridge");
    assert_eq!(l.param(1), "<Carol> no puppet for me");
    sip.send(said(ALICE, "Alice", "but one for me"))
        .await
        .unwrap();
    let l = bob
        .expect_privmsg("#test", |t| t.ends_with("but one for me"))
        .await
        .unwrap();
    assert_eq!(from(&l), "Alice");
    assert_eq!(l.param(1), "but one for me");
    // Carol never joined as a puppet.
    bob.say("#test", "marker").await.unwrap();
    let mut sip = sip;
    sip.expect_text("marker", WAIT).await.unwrap();
    let names = bob.names("#test").await.unwrap();
    assert!(names.iter().any(|n| n == "Alice"), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("Carol")), "{names:?}");
    gw.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn puppets_come_back_after_a_server_restart() {
    let (mut server, gw, sip) = start(50).await;
    let mut bob = IrcUser::connect(server.addr(), "bob").await.unwrap();
    wait_for_bridge(&mut bob).await;
    sip.send_event(event(RoomEventKind::Join {
        who: who(ALICE, "Alice in wonderland"),
    }))
    .unwrap();
    wait_for_names(&mut bob, &["bridge", "Alice_in_wonderland"]).await;

    server.kill().await;
    server
        .start_again()
        .await
        .unwrap_or_else(|e| panic!("restarting inspircd: {e}"));
    // Nobody tells the puppet to come back: it reconnects and rejoins by
    // itself, like the gateway's connection.
    let mut bob = IrcUser::connect(server.addr(), "bob").await.unwrap();
    wait_for_bridge(&mut bob).await;
    wait_for_names(&mut bob, &["Alice_in_wonderland"]).await;
    sip.send(said(ALICE, "Alice in wonderland", "back again"))
        .await
        .unwrap();
    let l = bob
        .expect_privmsg("#test", |t| t.ends_with("back again"))
        .await
        .unwrap();
    assert_eq!(from(&l), "Alice_in_wonderland");
    assert_eq!(l.param(1), "back again");
    gw.shutdown().await.unwrap();
}
