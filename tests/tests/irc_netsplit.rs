//! Netsplits on a real network of two linked InspIRCd servers: the
//! gateway and alice are on `irc.localhost`, bob on `irc2.localhost`.
//! Killing the second server makes the first send QUITs with the netsplit
//! reason `irc.localhost irc2.localhost` for bob.
//!
//! 1. Split and back within the hold time: the other world sees neither a
//!    leave nor a join of bob.
//! 2. Split for good: bob's leave is shown once the hold time has passed.
//!
//! If InspIRCd cannot start, these tests fail and say why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use cpimgate_e2e::embedded::{EmbeddedHandle, Seen, embedded_adapter};
use cpimgate_e2e::gateway::Gateway;
use cpimgate_e2e::inspircd::{Inspircd, bridge_config};
use cpimgate_e2e::irc_user::{IrcUser, WAIT};
use cpimgate_model::World;
use cpimgate_model::event::RoomEventKind;

fn config(server: &Inspircd, hold_secs: u64) -> String {
    bridge_config(
        server.addr(),
        "sip:room@test.example",
        &format!("netsplit_hold_secs = {hold_secs}"),
        "",
    )
}

fn is_bob(s: &Seen) -> bool {
    match s {
        Seen::Event(e) => match &e.kind {
            RoomEventKind::Join { who } | RoomEventKind::Leave { who, .. } => who.nick == "bob",
            _ => false,
        },
        _ => false,
    }
}

/// Two linked servers, the gateway on the first, alice on the first and
/// bob on the second, all in #test, the link up.
async fn setup(hold_secs: u64) -> (Inspircd, Inspircd, Gateway, EmbeddedHandle, IrcUser) {
    cpimgate_e2e::init_logging();
    let (a, b) = Inspircd::start_pair()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (sip, handle) = embedded_adapter(World::Sip);
    let gw = Gateway::start(&config(&a, hold_secs), vec![("sip".into(), sip)])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    gw.wait_connected("irc", WAIT).await.unwrap();
    let mut alice = IrcUser::connect(a.addr(), "alice").await.unwrap();
    let mut bob = IrcUser::connect(b.addr(), "bob").await.unwrap();
    bob.join("#test").await.unwrap();
    // Both the gateway and bob are seen from the first server once the
    // link is up.
    let deadline = tokio::time::Instant::now() + WAIT;
    alice.join("#test").await.unwrap();
    loop {
        let names = alice.names("#test").await.unwrap();
        if names.iter().any(|n| n == "bob") && names.iter().any(|n| n == "bridge") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the servers did not link (names {names:?}):\n{}\n{}",
            a.log_tail(20),
            b.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (a, b, gw, handle, bob)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_healed_within_the_hold_time_is_not_shown() {
    let (_a, mut b, gw, mut sip, bob) = setup(20).await;
    // Let the gateway's own view (NAMES, bob's join) settle, then forget it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    sip.clear();
    // The server goes with bob still connected: a split, not a quit.
    b.kill().await;
    drop(bob);
    b.start_again().await.unwrap_or_else(|e| panic!("{e}"));
    let mut bob = IrcUser::connect(b.addr(), "bob").await.unwrap();
    bob.join("#test").await.unwrap();
    // bob is back on the network (the gateway sees him join again); the
    // other world saw nothing of it, not even a second later.
    sip.expect_none(is_bob, Duration::from_secs(3))
        .await
        .unwrap_or_else(|e| panic!("the split showed through: {e}"));
    gw.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lasting_split_is_shown_after_the_hold_time() {
    let (_a, mut b, gw, mut sip, bob) = setup(1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    sip.clear();
    b.kill().await;
    drop(bob);
    let seen = sip
        .expect(is_bob, "bob's leave", WAIT)
        .await
        .unwrap_or_else(|e| panic!("bob's leave never came: {e}"));
    let Seen::Event(e) = seen else { unreachable!() };
    match &e.kind {
        RoomEventKind::Leave { reason, .. } => assert_eq!(
            reason.as_deref(),
            Some("irc.localhost irc2.localhost"),
            "the netsplit reason"
        ),
        other => panic!("expected bob's leave, got {other:?}"),
    }
    gw.shutdown().await.unwrap();
}
