//! XMPP client mode against a real Prosody: two rooms on two virtual hosts
//! federated through two client-mode adapters (one account on each host)
//! and an embedded adapter standing in for SIP. With `presence_notices`
//! on, joins, nick changes and leaves of one room (or of the SIP side) are
//! said in the other rooms as `* nick joined` lines; off (the default),
//! nothing is said. If Prosody cannot start, these tests fail and say why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use cpimgate::config::{AdapterSection, Config};
use cpimgate::hub::RunningHub;
use cpimgate_e2e::embedded::{EmbeddedHandle, Seen, embedded_adapter, room_message};
use cpimgate_e2e::gate::Gate;
use cpimgate_e2e::prosody::{HOST_A, HOST_B, MUC_A, MUC_B, Prosody};
use cpimgate_e2e::xmpp_user::{WAIT, XmppUser, body};
use cpimgate_model::event::{Participant, RoomEventKind};
use cpimgate_model::port::{Adapter, AdapterStatus, DeliveryOutcome};
use cpimgate_model::{Message, MessageId, Origin, RoomEvent, RoomRef, World};

const SIP_ROOM: &str = "sip:lobby@chat.example.com";

/// The embedded adapter standing in for SIP, with the room of the bridge.
struct Sip(EmbeddedHandle);

impl Sip {
    /// Hand a room message from "Carol" to the hub; the hub's answer.
    async fn say(&self, text: &str) -> DeliveryOutcome {
        let mut m =
            room_message(World::Sip, "sip", SIP_ROOM, "sip:carol@example.com", text).unwrap();
        m.from.display = Some("Carol".into());
        self.0.send(m).await.unwrap()
    }

    /// The first delivery to the SIP side whose body is `text`.
    async fn expect(&mut self, text: &str) -> Message {
        self.0
            .expect_text(text, WAIT)
            .await
            .unwrap_or_else(|e| panic!("the sip adapter never got {text:?}: {e}"))
    }
}

/// The gateway's configuration; the bridges connect to `addr`, with
/// `presence_notices = true` if `notices`, else with the default.
fn config(dir: &Path, addr: SocketAddr, notices: bool) -> Config {
    let notices = if notices {
        "presence_notices = true"
    } else {
        ""
    };
    let text = format!(
        r#"
        [gateway]
        name = "gw-e2e"
        domains = ["gw.example.com"]
        [store]
        path = "{store}"
        [queue]
        retry_base_ms = 100
        retry_max_ms = 1000
        [adapters.xa]
        kind = "xmpp"
        mode = "client"
        jid = "bridge@{HOST_A}"
        password = "bridge-a-pw"
        server = "{addr}"
        insecure_accept_any_certificate = true
        rooms = [ {{ room = "lobby@{MUC_A}", nick = "bridge" }} ]
        {notices}
        [adapters.xb]
        kind = "xmpp"
        mode = "client"
        jid = "bridge@{HOST_B}"
        password = "bridge-b-pw"
        server = "{addr}"
        insecure_accept_any_certificate = true
        rooms = [ {{ room = "lobby@{MUC_B}", nick = "bridge" }} ]
        {notices}
        notice_format = {{ leave = "* {{nick}} has left" }}
        [adapters.sip]
        kind = "embedded"
        [[bridge]]
        name = "lobby"
        rooms = [
          {{ adapter = "xa", address = "xmpp:lobby@{MUC_A}" }},
          {{ adapter = "xb", address = "xmpp:lobby@{MUC_B}" }},
          {{ adapter = "sip", address = "{SIP_ROOM}" }},
        ]
        "#,
        store = dir.join("gw.sqlite").display(),
    );
    let path = dir.join("gw.toml");
    std::fs::write(&path, text).unwrap();
    Config::load_with_env(&path, Vec::new()).unwrap()
}

async fn start_gateway(cfg: &Config) -> (RunningHub, Sip) {
    let mappings = cpimgate::app::open_mappings(cfg).await.unwrap();
    let queue = cpimgate::app::open_queue(cfg).await.unwrap();
    let mut adapters: Vec<(String, Box<dyn Adapter>)> = Vec::new();
    for (name, section) in &cfg.adapters {
        if let AdapterSection::Xmpp(x) = section {
            adapters.push((
                name.clone(),
                Box::new(cpimgate_xmpp::XmppAdapter::new(x.clone(), mappings.clone())),
            ));
        }
    }
    let (sip, handle) = embedded_adapter(World::Sip);
    adapters.push(("sip".into(), sip));
    let hub = RunningHub::start(cfg, adapters, queue).unwrap();
    (hub, Sip(handle))
}

/// Wait until every adapter reports Connected.
async fn ready(hub: &RunningHub, server: &Prosody) {
    let readiness = hub.readiness();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !readiness.is_ready() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the client-mode adapters did not connect: {:?}\n{}",
            readiness.snapshot(),
            server.log_tail(40)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn setup(
    notices: bool,
) -> (
    Prosody,
    tempfile::TempDir,
    RunningHub,
    Sip,
    XmppUser,
    XmppUser,
    Gate,
) {
    let server = Prosody::start().await.expect("starting prosody");
    server
        .register("bridge", HOST_A, "bridge-a-pw")
        .await
        .unwrap();
    server
        .register("bridge", HOST_B, "bridge-b-pw")
        .await
        .unwrap();
    server.register("alice", HOST_A, "alice-pw").await.unwrap();
    server.register("bob", HOST_B, "bob-pw").await.unwrap();
    server.register("carol", HOST_B, "carol-pw").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::new(server.c2s_addr()).await.unwrap();
    let cfg = config(dir.path(), gate.addr(), notices);
    let (hub, sip) = start_gateway(&cfg).await;
    ready(&hub, &server).await;
    let mut alice = XmppUser::connect(&server, "alice@a.localhost", "alice-pw")
        .await
        .unwrap();
    let mut bob = XmppUser::connect(&server, "bob@b.localhost", "bob-pw")
        .await
        .unwrap();
    alice
        .join_muc(&format!("lobby@{MUC_A}"), "alice")
        .await
        .unwrap();
    bob.join_muc(&format!("lobby@{MUC_B}"), "bob")
        .await
        .unwrap();
    alice.clear();
    bob.clear();
    (server, dir, hub, sip, alice, bob, gate)
}

#[tokio::test]
async fn two_rooms_on_two_hosts_are_federated_both_ways() {
    let (server, _dir, hub, mut sip, mut alice, mut bob, _gate) = setup(false).await;
    let room_a = format!("lobby@{MUC_A}");
    let room_b = format!("lobby@{MUC_B}");

    alice.send_groupchat(&room_a, "hello from a").await.unwrap();
    let got = bob.expect_body("<alice> hello from a", WAIT).await.unwrap();
    assert_eq!(
        got.from.as_ref().map(|j| j.to_string()),
        Some(format!("{room_b}/bridge"))
    );
    let m = sip.expect("hello from a").await;
    assert_eq!(m.from.display.as_deref(), Some("alice"));

    bob.send_groupchat(&room_b, "hello from b & <b>")
        .await
        .unwrap();
    alice
        .expect_body("<bob> hello from b & <b>", WAIT)
        .await
        .unwrap();
    sip.expect("hello from b & <b>").await;

    // No echo into the room a message came from, no duplicates.
    alice
        .expect_no_message(
            |m| body(m).is_some_and(|b| b.contains("hello from a") && b != "hello from a"),
            Duration::from_secs(2),
        )
        .await
        .unwrap();
    bob.expect_no_message(
        |m| body(m) == Some("<alice> hello from a"),
        Duration::from_millis(500),
    )
    .await
    .unwrap();
    bob.expect_no_message(
        |m| body(m).is_some_and(|b| b.contains("hello from b") && b != "hello from b & <b>"),
        Duration::from_millis(500),
    )
    .await
    .unwrap();
    // Notices are off by default: Bob joined room B after Alice was in
    // room A (see `setup`), and nothing said so in room A.
    alice
        .expect_no_message(
            |m| body(m).is_some_and(|b| b.contains("bob joined")),
            Duration::from_millis(500),
        )
        .await
        .unwrap();

    // From the embedded adapter into both rooms, as `<Carol> text`.
    assert_eq!(sip.say("hi from sip").await, DeliveryOutcome::Accepted);
    alice
        .expect_body("<Carol> hi from sip", WAIT)
        .await
        .unwrap();
    bob.expect_body("<Carol> hi from sip", WAIT).await.unwrap();

    hub.shutdown(Duration::from_secs(5)).await.unwrap();
    drop(server);
}

/// Prosody crashes; what the embedded adapter hands in meanwhile is held
/// by the hub (the bridges report Disconnected) and, once Prosody is back
/// and the bridges have rejoined their rooms (Connected), posted once each,
/// in order. Prosody forgets the bridges' sessions and rooms in the crash,
/// so this also checks that the bridges start new sessions rather than try
/// to resume the old ones forever.
#[tokio::test]
async fn messages_queued_during_an_outage_arrive_once_in_order() {
    cpimgate_e2e::init_logging();
    let (mut server, _dir, hub, sip, _alice, mut bob, gate) = setup(false).await;
    let room_b = format!("lobby@{MUC_B}");
    let readiness = hub.readiness();
    let wait_for = |adapter: &'static str, status: AdapterStatus, why: &'static str| {
        let readiness = readiness.clone();
        async move {
            let deadline = tokio::time::Instant::now() + WAIT;
            while readiness.snapshot().get(adapter) != Some(&status) {
                assert!(tokio::time::Instant::now() < deadline, "{why}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };

    gate.set_open(false);
    server.kill().await.unwrap();
    wait_for(
        "xa",
        AdapterStatus::Disconnected,
        "xa never noticed the outage",
    )
    .await;
    wait_for(
        "xb",
        AdapterStatus::Disconnected,
        "xb never noticed the outage",
    )
    .await;
    for i in 0..100 {
        assert_eq!(
            sip.say(&format!("queued {i:03}")).await,
            DeliveryOutcome::Accepted
        );
    }
    server.restart().await.unwrap();
    // Bob is back in the (new) room before the bridges may come back and
    // post what was queued.
    bob.reconnect().await.unwrap();
    bob.join_muc(&room_b, "bob").await.unwrap();
    assert_eq!(
        readiness.snapshot().get("xb"),
        Some(&AdapterStatus::Disconnected)
    );
    gate.set_open(true);
    wait_for(
        "xb",
        AdapterStatus::Connected,
        "xb did not come back after the restart",
    )
    .await;
    wait_for(
        "xa",
        AdapterStatus::Connected,
        "xa did not come back after the restart",
    )
    .await;

    for i in 0..100 {
        let want = format!("<Carol> queued {i:03}");
        let m = bob
            .expect_message(
                |m| body(m).is_some_and(|b| b.starts_with("<Carol> queued ")),
                WAIT,
            )
            .await
            .unwrap_or_else(|e| panic!("waiting for {want:?}: {e}\n{}", server.log_tail(30)));
        assert_eq!(body(&m), Some(want.as_str()), "out of order or duplicated");
    }
    bob.expect_no_message(
        |m| body(m).is_some_and(|b| b.starts_with("<Carol> queued ")),
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    hub.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// With `presence_notices` on, Carol joining room B, changing her nick and
/// leaving are said in room A by its bridge (xa in the default format; xb
/// has its own leave format), and a participant of the SIP side joining is
/// said in both rooms. The room's copies of those lines come back to the
/// bridge that posted them and go no further: not into the other room,
/// not to the SIP side.
#[tokio::test]
async fn with_notices_on_joins_nick_changes_and_leaves_are_said_in_the_other_rooms() {
    let (server, _dir, hub, mut sip, mut alice, mut bob, _gate) = setup(true).await;
    let room_b = format!("lobby@{MUC_B}");
    let mut carol = XmppUser::connect(&server, "carol@b.localhost", "carol-pw")
        .await
        .unwrap();

    carol.join_muc(&room_b, "carol").await.unwrap();
    let notice = alice.expect_body("* carol joined", WAIT).await.unwrap();
    assert_eq!(
        notice.from.as_ref().map(|j| j.to_string()),
        Some(format!("lobby@{MUC_A}/bridge"))
    );
    carol.change_nick(&room_b, "caroline").await.unwrap();
    alice
        .expect_body("* carol is now caroline", WAIT)
        .await
        .unwrap();
    carol.leave_muc(&room_b, "caroline").await.unwrap();
    alice.expect_body("* caroline left", WAIT).await.unwrap();

    // Another world's participant, said by both bridges.
    let sip_room = RoomRef {
        adapter: "sip".into(),
        address: SIP_ROOM.parse().unwrap(),
    };
    sip.0
        .send_event(RoomEvent {
            id: MessageId::random(),
            room: sip_room.clone(),
            origin: Origin {
                world: World::Sip,
                adapter: "sip".into(),
                native_id: None,
            },
            trail: Vec::new(),
            kind: RoomEventKind::Join {
                who: Participant {
                    address: "sip:dave@example.com".parse().unwrap(),
                    nick: "Dave".into(),
                },
            },
        })
        .unwrap();
    alice.expect_body("* Dave joined", WAIT).await.unwrap();
    bob.expect_body("* Dave joined", WAIT).await.unwrap();
    // xb says leaves in its own format; Alice's leave from room A shows it.
    alice
        .leave_muc(&format!("lobby@{MUC_A}"), "alice")
        .await
        .unwrap();
    bob.expect_body("* alice has left", WAIT).await.unwrap();

    // The reflections of the notices were not relayed: room B got no
    // `<bridge> * carol ...` line (room B saw Carol's own presences only),
    // and the SIP side got no notice as a message.
    bob.expect_no_message(
        |m| body(m).is_some_and(|b| b.contains("carol") || b.contains("<bridge>")),
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    sip.0
        .expect_none(
            |s| matches!(s, Seen::Deliver(m) if m.body.as_text().is_some_and(|b| b.starts_with("* "))),
            Duration::from_millis(500),
        )
        .await
        .unwrap();
    hub.shutdown(Duration::from_secs(5)).await.unwrap();
    drop(server);
}
