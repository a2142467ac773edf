//! The harness of the hub tests: in-process adapters driven by the test,
//! a gateway config with one bridge and two routes, and a commit gate.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cpimgate::config::Config;
use cpimgate::hub::RunningHub;
use cpimgate::queue::{CommitHook, Queue, QueueConfig};
use cpimgate_model::port::{
    Adapter, AdapterContext, AdapterError, AdapterStatus, BoxFuture, DeliveryOutcome, FailureKind,
    History, Inbound, Outbound,
};
use cpimgate_model::{Message, NameAddr, Origin, RoomEvent, RoomRef, World};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::timeout;

pub const WAIT: Duration = Duration::from_secs(10);

/// What a test adapter saw coming out of the hub.
#[derive(Debug)]
pub enum Seen {
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
    history: Arc<Mutex<Option<Arc<dyn History>>>>,
    connected: bool,
}

pub struct Handle {
    pub cmds: mpsc::UnboundedSender<Inbound>,
    pub seen: mpsc::UnboundedReceiver<Seen>,
    pub fail: Arc<AtomicBool>,
    /// The history the hub gave the adapter, once it runs.
    pub history: Arc<Mutex<Option<Arc<dyn History>>>>,
}

pub fn test_adapter(world: World, connected: bool) -> (Box<dyn Adapter>, Handle) {
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (seen_tx, seen_rx) = mpsc::unbounded_channel();
    let fail = Arc::new(AtomicBool::new(false));
    let history = Arc::new(Mutex::new(None));
    (
        Box::new(TestAdapter {
            world,
            cmds: cmd_rx,
            seen: seen_tx,
            fail: fail.clone(),
            history: history.clone(),
            connected,
        }),
        Handle {
            cmds: cmd_tx,
            seen: seen_rx,
            fail,
            history,
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
            *self.history.lock().unwrap() = Some(ctx.history.clone());
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

pub fn config(dir: &Path) -> Config {
    config_with(dir, "", "")
}

/// [`config`] with `queue` added to its `[queue]` section and `extra` TOML
/// appended (more sections, more bridges).
pub fn config_with(dir: &Path, queue: &str, extra: &str) -> Config {
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
        {queue}
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
        {extra}
        "#,
        dir.join("gw.sqlite").display()
    );
    let path = dir.join("gw.toml");
    std::fs::write(&path, text).unwrap();
    Config::load_with_env(&path, Vec::new()).unwrap()
}

/// The queue settings of `cfg`, as `cpimgate run` opens it.
pub fn queue_config(cfg: &Config) -> QueueConfig {
    QueueConfig {
        path: cfg.store.path.clone(),
        history_keep: cfg.history.keep,
        history_max_age: cfg.history.max_age(),
        ..QueueConfig::default()
    }
}

pub async fn open_queue(cfg: &Config) -> Queue {
    let (queue, _pending) = Queue::open(queue_config(cfg)).await.unwrap();
    queue
}

pub struct Gateway {
    pub hub: RunningHub,
    pub xmpp: Handle,
    pub irc: Handle,
    pub sip: Handle,
}

pub async fn start(cfg: &Config, irc_connected: bool) -> Gateway {
    start_with(cfg, irc_connected, queue_config(cfg)).await
}

pub async fn start_with(cfg: &Config, irc_connected: bool, queue: QueueConfig) -> Gateway {
    let (xa, xmpp) = test_adapter(World::Xmpp, true);
    let (ia, irc) = test_adapter(World::Irc, irc_connected);
    let (sa, sip) = test_adapter(World::Sip, true);
    let (queue, _pending) = Queue::open(queue).await.unwrap();
    let hub = RunningHub::start(
        cfg,
        vec![("xmpp".into(), xa), ("irc".into(), ia), ("sip".into(), sa)],
        queue,
    )
    .unwrap();
    Gateway {
        hub,
        xmpp,
        irc,
        sip,
    }
}

pub fn room(adapter: &str, address: &str) -> RoomRef {
    RoomRef {
        adapter: adapter.into(),
        address: address.parse().unwrap(),
    }
}

pub fn room_message(adapter: &str, room_addr: &str, from: &str, text: &str) -> Message {
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
pub async fn send(h: &Handle, m: Message) -> DeliveryOutcome {
    let answer = submit(h, m);
    timeout(WAIT, answer).await.unwrap().unwrap()
}

/// Hand a message in through `h` without waiting for the answer.
pub fn submit(h: &Handle, m: Message) -> oneshot::Receiver<DeliveryOutcome> {
    let (reply, answer) = oneshot::channel();
    h.cmds
        .send(Inbound::Message {
            message: Box::new(m),
            reply,
        })
        .unwrap();
    answer
}

/// The history the hub gave the adapter behind `h`, once it runs.
pub async fn history_of(h: &Handle) -> Arc<dyn History> {
    timeout(WAIT, async {
        loop {
            if let Some(history) = h.history.lock().unwrap().clone() {
                return history;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the adapter did not start")
}

/// Holds the queue's commits back, or fails them, as the test says: while
/// the gate is closed every group's commit waits just before `COMMIT`
/// (after its entries were staged); while `fail` is set it fails.
#[derive(Clone)]
pub struct CommitGate {
    open: Arc<watch::Sender<bool>>,
    pub fail: Arc<AtomicBool>,
}

impl CommitGate {
    /// A closed gate: no commit goes through until [`CommitGate::open`].
    pub fn closed() -> Self {
        CommitGate {
            open: Arc::new(watch::Sender::new(false)),
            fail: Arc::new(AtomicBool::new(false)),
        }
    }

    /// An open gate.
    pub fn opened() -> Self {
        let gate = Self::closed();
        gate.open();
        gate
    }

    /// Lets commits through.
    pub fn open(&self) {
        self.open.send_replace(true);
    }

    /// Holds the next commits back.
    pub fn close(&self) {
        self.open.send_replace(false);
    }

    /// Fails commits (`true`) or not.
    pub fn set_failing(&self, fail: bool) {
        self.fail.store(fail, Ordering::SeqCst);
    }

    pub fn hook(&self) -> CommitHook {
        let gate = self.clone();
        CommitHook::new(move || {
            let gate = gate.clone();
            async move {
                let mut open = gate.open.subscribe();
                open.wait_for(|o| *o).await.map_err(|e| e.to_string())?;
                if gate.fail.load(Ordering::SeqCst) {
                    Err("the test fails this commit".to_owned())
                } else {
                    Ok(())
                }
            }
        })
    }
}

pub async fn next(h: &mut Handle) -> Seen {
    timeout(WAIT, h.seen.recv())
        .await
        .expect("nothing arrived in time")
        .unwrap()
}

pub async fn next_delivery(h: &mut Handle) -> Message {
    loop {
        if let Seen::Deliver(m) = next(h).await {
            return *m;
        }
    }
}

/// Nothing more arrives at `h` within a short while.
pub async fn quiet(h: &mut Handle) {
    if let Ok(Some(s)) = timeout(Duration::from_millis(300), h.seen.recv()).await {
        panic!("unexpected: {s:?}");
    }
}

/// A second connection to the database file that holds its write lock
/// (`BEGIN IMMEDIATE`) until dropped: the mapping table writing to the
/// same file, say.
pub async fn write_lock(path: &Path) -> sqlx::SqliteConnection {
    use sqlx::Connection as _;
    let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    other
}
