//! The hub: receives from adapters, queues durably, fans out.
//!
//! ```text
//!  adapter ──inbound (bounded, per adapter)──► router ──► durable queue (group commit)
//!                                                │               │ committed, in order
//!                                                │               ▼
//!                                                └──► dispatcher per adapter ──outbound (bounded)──► adapter
//! ```
//!
//! The router is one task. For each message it decides the destinations
//! (the other rooms of the bridge, or the 1:1 route), appends this gateway to
//! the hop trail, and submits the copies to the queue; it does not wait for
//! the commit before taking the next message, so messages arriving together
//! share one fsync.
//!
//! Each submission then resolves twice. *Staged*: the queue's writer has
//! written the entries in its open transaction (ids assigned, duplicates
//! decided) and the router hands them to the dispatchers at once, so
//! delivery overlaps the fsync instead of following it. *Committed*: the
//! group is on disk, and only now is the sender answered
//! ([`DeliveryOutcome::Accepted`]): what an adapter acknowledged is on disk.
//! Both steps are awaited in submission order ([`FuturesOrdered`]), so every
//! dispatcher sees its entries in acceptance order. If the commit fails, the
//! sender is answered `Failed(Internal)` although copies may already have
//! been delivered; its retry delivers them again and receivers drop the
//! repeat by message id (see "Staging" in [`crate::queue`]).
//!
//! A room message that is not private is also recorded in its bridge's
//! history (for history on join, [`crate::history`]), in the same
//! transaction and only if it is accepted and not a duplicate.
//!
//! Loops: a message whose trail already names this gateway is not relayed
//! again; a message id seen before is dropped (the queue keeps the seen ids
//! on disk, so this holds across restarts). Room events are de-duplicated
//! in memory only: they are not durable.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use cpimgate_model::address::Address;
use cpimgate_model::event::{RoomEventKind, RoomRef};
use cpimgate_model::port::{
    Adapter, AdapterContext, AdapterError, AdapterStatus, DeliveryOutcome, Failure, FailureKind,
    History, Inbound, NoHistory, Reply,
};
use cpimgate_model::time::Timestamp;
use cpimgate_model::{Hop, Message, MessageId, NameAddr, RoomEvent};
use futures::stream::{FuturesOrdered, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::dispatch::{DispatchInput, DispatchSettings, Dispatcher, Work};
use crate::history::{HistorySettings, HistoryStore};
use crate::queue::{Backoff, Entry, HistoryRecord, Queue, QueueError, Staged};
use crate::routing::Routes;

/// Capacity of each adapter's inbound channel.
const INBOUND_CAPACITY: usize = 1024;
/// Capacity of each adapter's outbound channel.
const OUTBOUND_CAPACITY: usize = 256;
/// Capacity of each dispatcher's input channel.
const DISPATCH_CAPACITY: usize = 4096;
/// Room event ids remembered for de-duplication.
const EVENT_MEMORY: usize = 16 * 1024;

/// Why the hub could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// Happens when config names an adapter that was not supplied, or an
    /// adapter is supplied twice.
    #[error("adapters.{name}: {reason}")]
    Adapter {
        /// Adapter instance name.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

/// Which adapters are connected, for `/readyz`.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<RwLock<BTreeMap<String, AdapterStatus>>>);

impl Readiness {
    /// Every adapter with its state.
    pub fn snapshot(&self) -> BTreeMap<String, AdapterStatus> {
        self.0.read().map(|m| m.clone()).unwrap_or_default()
    }

    /// Ready when every configured adapter is connected.
    pub fn is_ready(&self) -> bool {
        self.snapshot()
            .values()
            .all(|s| *s == AdapterStatus::Connected)
    }

    fn set(&self, adapter: &str, status: AdapterStatus) {
        if let Ok(mut m) = self.0.write() {
            m.insert(adapter.to_owned(), status);
        }
    }
}

/// A running hub with its adapters.
#[derive(Debug)]
pub struct RunningHub {
    shutdown: watch::Sender<bool>,
    readiness: Readiness,
    queue: Queue,
    history: Option<HistoryStore>,
    router: JoinHandle<()>,
    dispatchers: Vec<JoinHandle<()>>,
    adapters: Vec<(String, JoinHandle<Result<(), AdapterError>>)>,
    forwarders: Vec<JoinHandle<()>>,
}

/// A submitted message until its entries are written (not yet committed).
type Staging = Pin<Box<dyn Future<Output = (Staged, Reply, MessageId)> + Send>>;
/// A staged message until its group is committed.
type Committing = Pin<Box<dyn Future<Output = (Result<(), QueueError>, Reply, MessageId)> + Send>>;

struct Router {
    gateway: String,
    routes: Routes,
    /// Whether room messages are recorded for history on join.
    history: bool,
    queue: Queue,
    inputs: Arc<HashMap<String, DispatchInput>>,
    statuses: HashMap<String, watch::Sender<AdapterStatus>>,
    readiness: Readiness,
    default_expiry: Duration,
    seen_events: HashSet<MessageId>,
    seen_order: VecDeque<MessageId>,
    /// Who is in each room, as its adapter's events told: a private
    /// message in a bridge goes to the room its recipient is in.
    members: HashMap<RoomRef, Vec<Address>>,
}

impl RunningHub {
    /// Start the hub with the given adapters (by instance name). Every
    /// adapter named in config must be supplied.
    pub fn start(
        cfg: &Config,
        adapters: Vec<(String, Box<dyn Adapter>)>,
        queue: Queue,
    ) -> Result<RunningHub, HubError> {
        let mut names = HashSet::new();
        for (name, _) in &adapters {
            if !names.insert(name.clone()) {
                return Err(HubError::Adapter {
                    name: name.clone(),
                    reason: "supplied twice".into(),
                });
            }
        }
        if let Some(missing) = cfg.adapters.keys().find(|n| !names.contains(*n)) {
            return Err(HubError::Adapter {
                name: missing.clone(),
                reason: "configured but not started".into(),
            });
        }

        let (shutdown, shutdown_rx) = watch::channel(false);
        let readiness = Readiness::default();
        let (router_tx, router_rx) = mpsc::channel::<(String, Inbound)>(INBOUND_CAPACITY);

        // Every channel first, then every task: dispatchers need each
        // other's inputs for reports.
        let mut inputs = HashMap::new();
        let mut dispatch_rx = HashMap::new();
        for (name, _) in &adapters {
            let (tx, rx) = mpsc::channel(DISPATCH_CAPACITY);
            // Start in backlog mode: what is on disk from before goes first.
            let overflow = Arc::new(AtomicBool::new(true));
            inputs.insert(name.clone(), DispatchInput { tx, overflow });
            dispatch_rx.insert(name.clone(), rx);
        }
        let inputs = Arc::new(inputs);

        let settings = DispatchSettings {
            window: cfg.queue.window,
            delivery_timeout: Duration::from_millis(cfg.queue.delivery_timeout_ms),
            backoff: Backoff::new(
                Duration::from_millis(cfg.queue.retry_base_ms),
                Duration::from_millis(cfg.queue.retry_max_ms),
            ),
            backlog_batch: 1024,
            drain: Duration::from_millis(cfg.queue.drain_ms),
        };

        let routes = Routes::from_config(cfg);
        let history_store = cfg.history.enabled.then(|| {
            HistoryStore::open(
                queue.path(),
                routes.clone(),
                HistorySettings::from(&cfg.history),
            )
        });
        let history: Arc<dyn History> = match &history_store {
            Some(store) => Arc::new(store.clone()),
            None => Arc::new(NoHistory),
        };

        let mut statuses = HashMap::new();
        let mut dispatchers = Vec::new();
        let mut adapter_tasks = Vec::new();
        let mut forwarders = Vec::new();
        for (name, adapter) in adapters {
            readiness.set(&name, AdapterStatus::Disconnected);
            // Every per-adapter series exists from the start, at zero.
            metrics::counter!("cpimgate_messages_in_total", "adapter" => name.clone()).absolute(0);
            metrics::counter!("cpimgate_messages_out_total", "adapter" => name.clone()).absolute(0);
            metrics::gauge!("cpimgate_adapter_connected", "adapter" => name.clone()).set(0.0);
            let (status_tx, status_rx) = watch::channel(AdapterStatus::Disconnected);
            statuses.insert(name.clone(), status_tx);
            let (out_tx, out_rx) = mpsc::channel(OUTBOUND_CAPACITY);
            let (in_tx, mut in_rx) = mpsc::channel(INBOUND_CAPACITY);
            let Some(rx) = dispatch_rx.remove(&name) else {
                continue;
            };
            let Some(input) = inputs.get(&name) else {
                continue;
            };
            dispatchers.push(tokio::spawn(
                Dispatcher {
                    adapter: name.clone(),
                    outbound: out_tx,
                    rx,
                    overflow: input.overflow.clone(),
                    status: status_rx,
                    peers: inputs.clone(),
                    queue: queue.clone(),
                    settings: settings.clone(),
                    shutdown: shutdown_rx.clone(),
                }
                .run(),
            ));
            // Tag what the adapter hands in with its name; one channel per
            // adapter, so a flooding adapter fills only its own.
            let router_tx = router_tx.clone();
            let tag = name.clone();
            forwarders.push(tokio::spawn(async move {
                while let Some(item) = in_rx.recv().await {
                    if router_tx.send((tag.clone(), item)).await.is_err() {
                        break;
                    }
                }
            }));
            let ctx = AdapterContext {
                name: name.clone(),
                inbound: in_tx,
                outbound: out_rx,
                shutdown: shutdown_rx.clone(),
                history: history.clone(),
            };
            let stopping = shutdown_rx.clone();
            let task_name = name.clone();
            adapter_tasks.push((
                name,
                tokio::spawn(async move {
                    let outcome = adapter.run(ctx).await;
                    match outcome {
                        // Said now, not at shutdown: an adapter that gave up
                        // (e.g. a certificate it cannot use) is news.
                        Err(e) if !*stopping.borrow() => {
                            tracing::error!(adapter = %task_name, "adapter stopped: {e}; messages for it wait in the queue until the gateway is restarted");
                            Ok(())
                        }
                        other => other,
                    }
                }),
            ));
        }
        drop(router_tx);

        let router = Router {
            gateway: cfg.gateway.name.clone(),
            routes,
            history: cfg.history.enabled,
            queue: queue.clone(),
            inputs,
            statuses,
            readiness: readiness.clone(),
            default_expiry: cfg.queue.default_expiry(),
            seen_events: HashSet::new(),
            seen_order: VecDeque::new(),
            members: HashMap::new(),
        };
        let router = tokio::spawn(router.run(router_rx, shutdown_rx));

        Ok(RunningHub {
            shutdown,
            readiness,
            queue,
            history: history_store,
            router,
            dispatchers,
            adapters: adapter_tasks,
            forwarders,
        })
    }

    /// Which adapters are connected.
    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// The durable queue.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// Two-phase shutdown: tell everyone to stop (adapters send their
    /// protocol's goodbye), let in-flight deliveries finish up to the drain
    /// deadline, then flush and close the queue. What was not delivered
    /// stays queued for the next start.
    pub async fn shutdown(self, deadline: Duration) -> Result<(), QueueError> {
        let _ = self.shutdown.send(true);
        let _ = self.router.await;
        for d in self.dispatchers {
            let _ = d.await;
        }
        for (name, task) in self.adapters {
            match tokio::time::timeout(deadline, task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::warn!(adapter = %name, "adapter stopped with: {e}"),
                Ok(Err(e)) => tracing::error!(adapter = %name, "adapter task failed: {e}"),
                Err(_) => tracing::warn!(adapter = %name, "adapter did not stop in time"),
            }
        }
        for f in self.forwarders {
            f.abort();
        }
        if let Some(history) = &self.history {
            history.close().await;
        }
        self.queue.close().await
    }
}

impl Router {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<(String, Inbound)>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut staging: FuturesOrdered<Staging> = FuturesOrdered::new();
        let mut committing: FuturesOrdered<Committing> = FuturesOrdered::new();
        loop {
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                Some((staged, reply, id)) = staging.next(), if !staging.is_empty() => {
                    committing.push_back(self.staged(staged, reply, id));
                }
                Some((result, reply, id)) = committing.next(), if !committing.is_empty() => {
                    self.committed(result, reply, &id);
                }
                item = rx.recv() => match item {
                    Some((adapter, Inbound::Message { message, reply })) => {
                        if let Some(fut) = self.on_message(&adapter, *message, reply).await {
                            staging.push_back(fut);
                        }
                    }
                    Some((adapter, Inbound::RoomEvent(event))) => self.on_event(&adapter, *event),
                    Some((adapter, Inbound::Status(status))) => self.on_status(&adapter, status),
                    Some(_) => {}
                    None => break,
                },
            }
        }
        // Messages already submitted are on their way to disk: answer them.
        // (What is handed to a stopping dispatcher stays queued on disk.)
        while let Some((staged, reply, id)) = staging.next().await {
            committing.push_back(self.staged(staged, reply, id));
        }
        while let Some((result, reply, id)) = committing.next().await {
            self.committed(result, reply, &id);
        }
    }

    async fn on_message(
        &mut self,
        adapter: &str,
        mut message: Message,
        reply: Reply,
    ) -> Option<Staging> {
        metrics::counter!("cpimgate_messages_in_total", "adapter" => adapter.to_owned())
            .increment(1);
        if message.passed(&self.gateway) {
            metrics::counter!("cpimgate_messages_dropped_total", "reason" => "loop").increment(1);
            tracing::debug!(adapter, id = %message.id, "already relayed by this gateway; not again");
            let _ = reply.send(DeliveryOutcome::Accepted);
            return None;
        }
        message.origin.adapter = adapter.to_owned();
        let now = Timestamp::now();
        // Recorded as received (before the default expiry is added: history
        // outlives delivery).
        let record = self.history_record(&message, now);
        if message.expires.is_none() {
            message.expires = Some(now.plus(self.default_expiry));
        }
        if message.is_expired(now) {
            let _ = reply.send(DeliveryOutcome::Failed(Failure::new(
                FailureKind::Expired,
                "the message has already expired",
            )));
            return None;
        }
        let deliveries = match self.destinations(adapter, &message) {
            Ok(d) => d,
            Err(failure) => {
                metrics::counter!("cpimgate_messages_failed_total", "adapter" => adapter.to_owned(), "kind" => failure.kind.to_string())
                    .increment(1);
                tracing::info!(adapter, id = %message.id, "refused: {failure}");
                let _ = reply.send(DeliveryOutcome::Failed(failure));
                return None;
            }
        };
        let id = message.id.clone();
        match self
            .queue
            .submit_with_history(&id, deliveries, record)
            .await
        {
            Ok(pending) => Some(Box::pin(async move { (pending.staged().await, reply, id) })),
            Err(e) => {
                tracing::error!(adapter, %id, "queue refused the message: {e}");
                let _ = reply.send(DeliveryOutcome::Failed(Failure::new(
                    FailureKind::Internal,
                    "the gateway could not store the message",
                )));
                None
            }
        }
    }

    /// Each destination with its own copy, addressed for it.
    fn destinations(
        &self,
        adapter: &str,
        message: &Message,
    ) -> Result<Vec<(String, Message)>, Failure> {
        let hop = Hop {
            gateway: self.gateway.clone(),
            adapter: adapter.to_owned(),
        };
        let copy = |dest_adapter: &str, edit: &dyn Fn(&mut Message)| {
            let mut m = message.clone();
            m.trail.push(hop.clone());
            edit(&mut m);
            (dest_adapter.to_owned(), m)
        };
        match &message.room {
            Some(room) if !message.private => {
                let rooms = self.routes.fan_out(room);
                if rooms.is_empty() {
                    return Err(Failure::new(
                        FailureKind::NotFound,
                        format!("room {} is not in any bridge", room.address),
                    ));
                }
                Ok(rooms
                    .iter()
                    .map(|dest| {
                        copy(&dest.adapter, &|m: &mut Message| {
                            m.room = Some(dest.clone());
                            m.to = vec![NameAddr::new(dest.address.clone())];
                        })
                    })
                    .collect())
            }
            _ => {
                let Some(to) = message.to.first() else {
                    return Err(Failure::new(
                        FailureKind::NotFound,
                        "the message has no recipient",
                    ));
                };
                // A private message in a bridged room goes to the room of
                // the bridge its recipient is a member of, whatever the
                // 1:1 routes say.
                if let Some(dest) = message
                    .room
                    .as_ref()
                    .and_then(|r| self.room_of_member(r, &to.address))
                {
                    return Ok(vec![copy(&dest.adapter, &|m: &mut Message| {
                        m.private = true;
                        m.room = Some(dest.clone());
                    })]);
                }
                let Some((dest_adapter, address)) = self.routes.route(&to.address) else {
                    return Err(Failure::new(
                        FailureKind::NotFound,
                        format!("no route to {}", to.address),
                    ));
                };
                if dest_adapter == adapter {
                    return Err(Failure::new(
                        FailureKind::NotFound,
                        format!("the route to {} leads back where it came from", to.address),
                    ));
                }
                // A private message in a bridged room stays private in the
                // destination's room of the same bridge.
                let dest_room = message.room.as_ref().and_then(|r| {
                    self.routes
                        .fan_out(r)
                        .into_iter()
                        .find(|d| d.adapter == dest_adapter)
                });
                let display = to.display.clone();
                Ok(vec![copy(&dest_adapter, &|m: &mut Message| {
                    m.to = vec![NameAddr {
                        display: display.clone(),
                        address: address.clone(),
                    }];
                    m.private = dest_room.is_some();
                    m.room = dest_room.clone();
                })])
            }
        }
    }

    /// The history record of a room message that is not private, when the
    /// gateway keeps history and the room is in a bridge.
    fn history_record(&self, message: &Message, received: Timestamp) -> Option<HistoryRecord> {
        if !self.history || message.private {
            return None;
        }
        let bridge = self.routes.bridge_name(message.room.as_ref()?)?;
        Some(HistoryRecord {
            bridge: bridge.to_owned(),
            message: message.clone(),
            received,
        })
    }

    /// Hands the written (not yet committed) entries to the dispatchers, in
    /// acceptance order, and gives what waits for the commit.
    fn staged(&self, staged: Staged, reply: Reply, id: MessageId) -> Committing {
        let Staged { entries, committed } = staged;
        self.dispatch(entries);
        Box::pin(async move { (committed.await, reply, id) })
    }

    fn dispatch(&self, entries: Vec<Entry>) {
        for entry in entries {
            match self.inputs.get(&entry.adapter) {
                Some(input) => input.offer_entry(entry),
                None => {
                    tracing::error!(adapter = %entry.adapter, "entry for an adapter that is not running")
                }
            }
        }
    }

    fn committed(&self, result: Result<(), QueueError>, reply: Reply, id: &MessageId) {
        match result {
            Ok(()) => {
                let _ = reply.send(DeliveryOutcome::Accepted);
            }
            Err(QueueError::Duplicate) => {
                metrics::counter!("cpimgate_messages_dropped_total", "reason" => "duplicate")
                    .increment(1);
                tracing::debug!(%id, "seen before; not relayed again");
                let _ = reply.send(DeliveryOutcome::Accepted);
            }
            Err(e) => {
                // Its copies may be out already (they were handed on when
                // staged): the sender's retry repeats them, receivers drop
                // the repeat by message id.
                tracing::error!(%id, "storing the message failed: {e}");
                let _ = reply.send(DeliveryOutcome::Failed(Failure::new(
                    FailureKind::Internal,
                    "the gateway could not store the message",
                )));
            }
        }
    }

    fn on_event(&mut self, adapter: &str, mut event: RoomEvent) {
        if event.trail.iter().any(|h| h.gateway == self.gateway) {
            return;
        }
        if !self.seen_events.insert(event.id.clone()) {
            return;
        }
        self.seen_order.push_back(event.id.clone());
        if self.seen_order.len() > EVENT_MEMORY
            && let Some(old) = self.seen_order.pop_front()
        {
            self.seen_events.remove(&old);
        }
        self.track_members(&event);
        event.origin.adapter = adapter.to_owned();
        event.trail.push(Hop {
            gateway: self.gateway.clone(),
            adapter: adapter.to_owned(),
        });
        for dest in self.routes.fan_out(&event.room) {
            if let Some(input) = self.inputs.get(&dest.adapter) {
                let mut e = event.clone();
                e.room = dest.clone();
                input.offer(Work::Event(Box::new(e)), &dest.adapter);
            }
        }
    }

    /// Keeps [`Router::members`] up to date with a room's own event.
    fn track_members(&mut self, event: &RoomEvent) {
        let members = self.members.entry(event.room.clone()).or_default();
        match &event.kind {
            RoomEventKind::Join { who } if !members.iter().any(|a| a.same_user(&who.address)) => {
                members.push(who.address.clone());
            }
            RoomEventKind::Leave { who, .. } | RoomEventKind::Kick { who, .. } => {
                members.retain(|a| !a.same_user(&who.address));
            }
            RoomEventKind::Roster { participants } => {
                *members = participants.iter().map(|p| p.address.clone()).collect();
            }
            _ => {}
        }
    }

    /// The room of `room`'s bridge that `to` is a member of.
    fn room_of_member(&self, room: &RoomRef, to: &Address) -> Option<RoomRef> {
        self.routes.fan_out(room).into_iter().find(|r| {
            self.members
                .get(r)
                .is_some_and(|m| m.iter().any(|a| a.same_user(to)))
        })
    }

    fn on_status(&self, adapter: &str, status: AdapterStatus) {
        tracing::info!(adapter, ?status, "adapter status");
        self.readiness.set(adapter, status);
        metrics::gauge!("cpimgate_adapter_connected", "adapter" => adapter.to_owned()).set(
            if status == AdapterStatus::Connected {
                1.0
            } else {
                0.0
            },
        );
        if let Some(tx) = self.statuses.get(adapter) {
            let _ = tx.send(status);
        }
    }
}
