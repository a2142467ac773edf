//! XMPP client mode against a real Prosody: two rooms on two virtual hosts
//! federated through two client-mode adapters (one account on each host)
//! and an embedded adapter standing in for SIP. If Prosody cannot start,
//! these tests fail and say why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cpimgate::config::{AdapterSection, Config};
use cpimgate::hub::RunningHub;
use cpimgate_e2e::embedded::{EmbeddedHandle, embedded_adapter, room_message};
use cpimgate_e2e::prosody::{HOST_A, HOST_B, MUC_A, MUC_B, Prosody};
use cpimgate_e2e::xmpp_user::{WAIT, XmppUser, body};
use cpimgate_model::port::{Adapter, AdapterStatus, DeliveryOutcome};
use cpimgate_model::{Message, World};
use tokio::net::{TcpListener, TcpStream};

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

/// A TCP forwarder between the bridges and Prosody's c2s port that the
/// test can close: while closed, connections are dropped as soon as they
/// are accepted, so the bridges stay away (and keep backing off) while the
/// test's own users are already back.
struct Gate {
    addr: SocketAddr,
    open: Arc<AtomicBool>,
}

impl Gate {
    async fn new(to: SocketAddr) -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let is_open = open.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !is_open.load(Ordering::SeqCst) {
                    continue;
                }
                tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Gate { addr, open }
    }

    fn set_open(&self, open: bool) {
        self.open.store(open, Ordering::SeqCst);
    }
}

/// The gateway's configuration; the bridges connect to `addr`.
fn config(dir: &Path, addr: SocketAddr) -> Config {
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
        [adapters.xb]
        kind = "xmpp"
        mode = "client"
        jid = "bridge@{HOST_B}"
        password = "bridge-b-pw"
        server = "{addr}"
        insecure_accept_any_certificate = true
        rooms = [ {{ room = "lobby@{MUC_B}", nick = "bridge" }} ]
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

async fn setup() -> (
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
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::new(server.c2s_addr()).await;
    let cfg = config(dir.path(), gate.addr);
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
    let (server, _dir, hub, mut sip, mut alice, mut bob, _gate) = setup().await;
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
    let (mut server, _dir, hub, sip, _alice, mut bob, gate) = setup().await;
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
