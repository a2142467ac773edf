//! The hub with in-process adapters: fan-out across a bridge, loop
//! prevention, de-duplication, 1:1 routing, refusals, retries, and a queued
//! message that survives a restart over the same SQLite file.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cpimgate::config::Config;
use cpimgate::hub::RunningHub;
use cpimgate::queue::{Queue, QueueConfig};
use cpimgate_model::event::{Participant, RoomEventKind};
use cpimgate_model::port::{
    Adapter, AdapterContext, AdapterError, AdapterStatus, BoxFuture, DeliveryOutcome, FailureKind,
    Inbound, Outbound,
};
use cpimgate_model::time::Timestamp;
use cpimgate_model::{Hop, Message, MessageId, NameAddr, Origin, RoomEvent, RoomRef, World};
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

/// What a test adapter saw coming out of the hub.
#[derive(Debug)]
enum Seen {
    Deliver(Box<Message>),
    Event(Box<RoomEvent>),
    Report(Box<Message>, String, DeliveryOutcome),
}

/// An adapter driven by the test: what the test sends goes into the hub;
/// what the hub delivers is recorded. While `fail` is set it answers every
/// delivery with a transient failure.
struct TestAdapter {
    world: World,
    cmds: mpsc::UnboundedReceiver<Inbound>,
    seen: mpsc::UnboundedSender<Seen>,
    fail: Arc<AtomicBool>,
    connected: bool,
}

struct Handle {
    cmds: mpsc::UnboundedSender<Inbound>,
    seen: mpsc::UnboundedReceiver<Seen>,
    fail: Arc<AtomicBool>,
}

fn test_adapter(world: World, connected: bool) -> (Box<dyn Adapter>, Handle) {
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (seen_tx, seen_rx) = mpsc::unbounded_channel();
    let fail = Arc::new(AtomicBool::new(false));
    (
        Box::new(TestAdapter {
            world,
            cmds: cmd_rx,
            seen: seen_tx,
            fail: fail.clone(),
            connected,
        }),
        Handle {
            cmds: cmd_tx,
            seen: seen_rx,
            fail,
        },
    )
}

impl Adapter for TestAdapter {
    fn world(&self) -> World {
        self.world
    }

    fn run(
        mut self: Box<Self>,
        mut ctx: AdapterContext,
    ) -> BoxFuture<'static, Result<(), AdapterError>> {
        Box::pin(async move {
            if self.connected {
                ctx.inbound
                    .send(Inbound::Status(AdapterStatus::Connected))
                    .await
                    .map_err(|_| AdapterError::HubGone)?;
            }
            loop {
                tokio::select! {
                    _ = ctx.shutdown.changed() => return Ok(()),
                    cmd = self.cmds.recv() => match cmd {
                        Some(c) => ctx.inbound.send(c).await.map_err(|_| AdapterError::HubGone)?,
                        None => return Ok(()),
                    },
                    out = ctx.outbound.recv() => match out {
                        Some(Outbound::Deliver { message, reply }) => {
                            let outcome = if self.fail.load(Ordering::SeqCst) {
                                DeliveryOutcome::Failed(cpimgate_model::port::Failure::new(
                                    FailureKind::Unreachable,
                                    "test says the network is down",
                                ))
                            } else {
                                DeliveryOutcome::Delivered
                            };
                            let _ = self.seen.send(Seen::Deliver(message));
                            let _ = reply.send(outcome);
                        }
                        Some(Outbound::RoomEvent(e)) => {
                            let _ = self.seen.send(Seen::Event(e));
                        }
                        Some(Outbound::Report { message, destination, outcome }) => {
                            let _ = self.seen.send(Seen::Report(message, destination, outcome));
                        }
                        Some(_) => {}
                        None => return Ok(()),
                    },
                }
            }
        })
    }
}

fn config(dir: &Path) -> Config {
    let text = format!(
        r#"
        [gateway]
        name = "gw-a"
        domains = ["gw.example.com"]
        [store]
        path = "{}"
        [queue]
        retry_base_ms = 20
        retry_max_ms = 100
        [adapters.xmpp]
        kind = "embedded"
        [adapters.irc]
        kind = "embedded"
        [adapters.sip]
        kind = "embedded"
        [[bridge]]
        name = "lobby"
        rooms = [
          {{ adapter = "xmpp", address = "xmpp:lobby@conference.example.org" }},
          {{ adapter = "irc", address = "irc://irc.example.org/%23lobby" }},
          {{ adapter = "sip", address = "sip:lobby@chat.example.com" }},
        ]
        [[route]]
        domain = "xmpp.example.org"
        adapter = "xmpp"
        [[route]]
        scheme = "sip"
        domain = "*"
        adapter = "sip"
        "#,
        dir.join("gw.sqlite").display()
    );
    let path = dir.join("gw.toml");
    std::fs::write(&path, text).unwrap();
    Config::load_with_env(&path, Vec::new()).unwrap()
}

async fn open_queue(cfg: &Config) -> Queue {
    let (queue, _pending) = Queue::open(QueueConfig {
        path: cfg.store.path.clone(),
        ..QueueConfig::default()
    })
    .await
    .unwrap();
    queue
}

struct Gateway {
    hub: RunningHub,
    xmpp: Handle,
    irc: Handle,
    sip: Handle,
}

async fn start(cfg: &Config, irc_connected: bool) -> Gateway {
    let (xa, xmpp) = test_adapter(World::Xmpp, true);
    let (ia, irc) = test_adapter(World::Irc, irc_connected);
    let (sa, sip) = test_adapter(World::Sip, true);
    let hub = RunningHub::start(
        cfg,
        vec![("xmpp".into(), xa), ("irc".into(), ia), ("sip".into(), sa)],
        open_queue(cfg).await,
    )
    .unwrap();
    Gateway {
        hub,
        xmpp,
        irc,
        sip,
    }
}

fn room(adapter: &str, address: &str) -> RoomRef {
    RoomRef {
        adapter: adapter.into(),
        address: address.parse().unwrap(),
    }
}

fn room_message(adapter: &str, room_addr: &str, from: &str, text: &str) -> Message {
    let origin = Origin {
        world: World::Irc,
        adapter: adapter.into(),
        native_id: None,
    };
    let mut m = Message::text(
        origin,
        NameAddr::new(from.parse().unwrap()),
        NameAddr::new(room_addr.parse().unwrap()),
        text,
    );
    m.room = Some(room(adapter, room_addr));
    m
}

/// Hand a message in through `h` and return the hub's answer.
async fn send(h: &Handle, m: Message) -> DeliveryOutcome {
    let (reply, answer) = oneshot::channel();
    h.cmds
        .send(Inbound::Message {
            message: Box::new(m),
            reply,
        })
        .unwrap();
    timeout(WAIT, answer).await.unwrap().unwrap()
}

async fn next(h: &mut Handle) -> Seen {
    timeout(WAIT, h.seen.recv())
        .await
        .expect("nothing arrived in time")
        .unwrap()
}

async fn next_delivery(h: &mut Handle) -> Message {
    loop {
        if let Seen::Deliver(m) = next(h).await {
            return *m;
        }
    }
}

/// Nothing more arrives at `h` within a short while.
async fn quiet(h: &mut Handle) {
    if let Ok(Some(s)) = timeout(Duration::from_millis(300), h.seen.recv()).await {
        panic!("unexpected: {s:?}");
    }
}

#[tokio::test]
async fn a_room_message_fans_out_to_every_other_room_and_never_back() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let mut gw = start(&cfg, true).await;

    let m = room_message(
        "irc",
        "irc://irc.example.org/%23lobby",
        "irc://irc.example.org/alice,isnick",
        "hello",
    );
    let id = m.id.clone();
    assert_eq!(send(&gw.irc, m).await, DeliveryOutcome::Accepted);

    let to_xmpp = next_delivery(&mut gw.xmpp).await;
    assert_eq!(to_xmpp.id, id);
    assert_eq!(
        to_xmpp.room,
        Some(room("xmpp", "xmpp:lobby@conference.example.org"))
    );
    assert_eq!(
        to_xmpp.to[0].address.to_string(),
        "xmpp:lobby@conference.example.org"
    );
    assert_eq!(to_xmpp.body.as_text(), Some("hello"));
    assert_eq!(
        to_xmpp.trail,
        vec![Hop {
            gateway: "gw-a".into(),
            adapter: "irc".into()
        }]
    );
    let to_sip = next_delivery(&mut gw.sip).await;
    assert_eq!(to_sip.room, Some(room("sip", "sip:lobby@chat.example.com")));

    // The origin gets one report per destination, and no copy of its own message.
    let mut reported = Vec::new();
    for _ in 0..2 {
        match next(&mut gw.irc).await {
            Seen::Report(m, dest, outcome) => {
                assert_eq!(m.id, id);
                assert_eq!(outcome, DeliveryOutcome::Delivered);
                reported.push(dest);
            }
            other => panic!("expected a report, got {other:?}"),
        }
    }
    reported.sort();
    assert_eq!(reported, vec!["sip".to_owned(), "xmpp".to_owned()]);
    quiet(&mut gw.irc).await;
    quiet(&mut gw.xmpp).await;
    gw.hub.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn loops_and_duplicates_are_not_relayed() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let mut gw = start(&cfg, true).await;

    // Came back through another gateway after this one relayed it.
    let mut looped = room_message(
        "xmpp",
        "xmpp:lobby@conference.example.org",
        "xmpp:bob@example.org",
        "loop",
    );
    looped.trail = vec![
        Hop {
            gateway: "gw-a".into(),
            adapter: "irc".into(),
        },
        Hop {
            gateway: "gw-b".into(),
            adapter: "xmpp".into(),
        },
    ];
    assert_eq!(send(&gw.xmpp, looped).await, DeliveryOutcome::Accepted);

    // Relayed by another gateway only: goes on.
    let mut foreign = room_message(
        "xmpp",
        "xmpp:lobby@conference.example.org",
        "xmpp:bob@example.org",
        "via b",
    );
    foreign.trail = vec![Hop {
        gateway: "gw-b".into(),
        adapter: "irc".into(),
    }];
    let foreign_id = foreign.id.clone();
    // The same message handed in twice (a retransmission): relayed once.
    assert_eq!(
        send(&gw.xmpp, foreign.clone()).await,
        DeliveryOutcome::Accepted
    );
    assert_eq!(send(&gw.xmpp, foreign).await, DeliveryOutcome::Accepted);

    let got = next_delivery(&mut gw.irc).await;
    assert_eq!(got.id, foreign_id);
    assert_eq!(got.trail.len(), 2);
    quiet(&mut gw.irc).await;
    let got = next_delivery(&mut gw.sip).await;
    assert_eq!(got.id, foreign_id);
    quiet(&mut gw.sip).await;
    gw.hub.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn one_to_one_messages_follow_the_routes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let mut gw = start(&cfg, true).await;

    // A SIP user writes to an XMPP user through the gateway's domain.
    let origin = Origin {
        world: World::Sip,
        adapter: "sip".into(),
        native_id: None,
    };
    let m = Message::text(
        origin.clone(),
        NameAddr::new("sip:alice@atlanta.example.com".parse().unwrap()),
        NameAddr::new(
            "sip:juliet%40xmpp.example.org@gw.example.com"
                .parse()
                .unwrap(),
        ),
        "hi juliet",
    );
    assert_eq!(send(&gw.sip, m).await, DeliveryOutcome::Accepted);
    let got = next_delivery(&mut gw.xmpp).await;
    assert_eq!(got.to[0].address.to_string(), "im:juliet@xmpp.example.org");
    assert_eq!(got.room, None);

    // Nowhere to go: refused at once, nothing queued.
    let m = Message::text(
        origin.clone(),
        NameAddr::new("sip:alice@atlanta.example.com".parse().unwrap()),
        NameAddr::new("im:nobody@unknown.example".parse().unwrap()),
        "lost?",
    );
    match send(&gw.sip, m).await {
        DeliveryOutcome::Failed(f) => assert_eq!(f.kind, FailureKind::NotFound),
        other => panic!("expected not found, got {other:?}"),
    }

    // Already expired: refused, not queued.
    let mut m = Message::text(
        origin,
        NameAddr::new("sip:alice@atlanta.example.com".parse().unwrap()),
        NameAddr::new("im:juliet@xmpp.example.org".parse().unwrap()),
        "too late",
    );
    m.expires = Some(Timestamp {
        unix_micros: Timestamp::now().unix_micros - 1_000_000,
    });
    match send(&gw.sip, m).await {
        DeliveryOutcome::Failed(f) => assert_eq!(f.kind, FailureKind::Expired),
        other => panic!("expected expired, got {other:?}"),
    }
    quiet(&mut gw.xmpp).await;
    gw.hub.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn room_events_fan_out_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let mut gw = start(&cfg, true).await;
    let event = RoomEvent {
        id: MessageId::random(),
        room: room("xmpp", "xmpp:lobby@conference.example.org"),
        origin: Origin {
            world: World::Xmpp,
            adapter: "xmpp".into(),
            native_id: None,
        },
        trail: Vec::new(),
        kind: RoomEventKind::Join {
            who: Participant {
                address: "xmpp:lobby@conference.example.org/juliet".parse().unwrap(),
                nick: "juliet".into(),
            },
        },
    };
    gw.xmpp
        .cmds
        .send(Inbound::RoomEvent(Box::new(event.clone())))
        .unwrap();
    gw.xmpp
        .cmds
        .send(Inbound::RoomEvent(Box::new(event)))
        .unwrap();
    for h in [&mut gw.irc, &mut gw.sip] {
        match next(h).await {
            Seen::Event(e) => assert!(matches!(e.kind, RoomEventKind::Join { .. })),
            other => panic!("expected a join, got {other:?}"),
        }
        quiet(h).await;
    }
    quiet(&mut gw.xmpp).await;
    gw.hub.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn transient_failures_are_retried_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let mut gw = start(&cfg, true).await;
    gw.irc.fail.store(true, Ordering::SeqCst);
    let mut ids = Vec::new();
    for i in 0..3 {
        let m = room_message(
            "xmpp",
            "xmpp:lobby@conference.example.org",
            "xmpp:bob@example.org",
            &format!("m{i}"),
        );
        ids.push(m.id.clone());
        assert_eq!(send(&gw.xmpp, m).await, DeliveryOutcome::Accepted);
    }
    // At least one failed attempt, then the network comes back.
    let first = next_delivery(&mut gw.irc).await;
    assert_eq!(first.id, ids[0]);
    gw.irc.fail.store(false, Ordering::SeqCst);
    let mut delivered = Vec::new();
    while delivered.len() < 3 {
        let m = next_delivery(&mut gw.irc).await;
        if !delivered.contains(&m.id) {
            delivered.push(m.id);
        }
    }
    assert_eq!(delivered, ids, "delivered out of order");
    gw.hub.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn a_queued_message_survives_a_restart_over_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());

    // IRC is down: the message is accepted (on disk) but cannot go out.
    let mut gw = start(&cfg, false).await;
    let m = room_message(
        "xmpp",
        "xmpp:lobby@conference.example.org",
        "xmpp:bob@example.org",
        "while you were out",
    );
    let id = m.id.clone();
    assert_eq!(send(&gw.xmpp, m).await, DeliveryOutcome::Accepted);
    assert_eq!(next_delivery(&mut gw.sip).await.id, id);
    quiet(&mut gw.irc).await;
    gw.hub.shutdown(Duration::from_secs(2)).await.unwrap();

    // A new hub over the same file, IRC up: the message goes out, once.
    let mut gw = start(&cfg, true).await;
    let got = next_delivery(&mut gw.irc).await;
    assert_eq!(got.id, id);
    assert_eq!(got.body.as_text(), Some("while you were out"));
    quiet(&mut gw.irc).await;
    quiet(&mut gw.sip).await;
    gw.hub.shutdown(Duration::from_secs(2)).await.unwrap();

    // And it is gone from the queue: a third start delivers nothing.
    let mut gw = start(&cfg, true).await;
    quiet(&mut gw.irc).await;
    assert_eq!(gw.hub.queue().depth(), 0);
    gw.hub.shutdown(Duration::from_secs(2)).await.unwrap();
}
