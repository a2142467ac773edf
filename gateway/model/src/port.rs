//! The adapter port: how an adapter and the hub exchange messages.
//!
//! An adapter is started with an [`AdapterContext`]. It hands what it
//! received to the hub through the bounded [`AdapterContext::inbound`]
//! sender, and it receives what it must send from
//! [`AdapterContext::outbound`]. Both channels are bounded: a slow network
//! slows only its own senders.
//!
//! Every message carries a reply channel, so delivery is tracked rather than
//! hoped for:
//!
//! * inbound ([`Inbound::Message`]): the hub answers with
//!   [`DeliveryOutcome::Accepted`] once the message is on disk in the durable
//!   queue (the adapter may now say SIP 202 / MSRP 200), or with
//!   [`DeliveryOutcome::Failed`] (the adapter answers with the protocol's
//!   error).
//! * outbound ([`Outbound::Deliver`]): the adapter answers with
//!   [`DeliveryOutcome::Delivered`] (SIP 200, XEP-0184 receipt, IRC
//!   echo-message), [`DeliveryOutcome::Accepted`] (SIP 202: the next hop has
//!   it), or [`DeliveryOutcome::Failed`]; a failure that
//!   [`Failure::is_transient`] is retried by the hub with backoff.
//!   Several messages are in flight at once (the hub's window), so an
//!   adapter must not fail one transiently and then send a later one to
//!   the same destination: the retry would arrive after it. While a
//!   destination is briefly unusable (a room being rejoined), hold its
//!   messages in order; while the adapter is disconnected, fail them all.
//!
//! The run loop of an adapter, in outline:
//!
//! ```no_run
//! # use cpimgate_model::port::*;
//! async fn run(mut ctx: AdapterContext) {
//!     loop {
//!         tokio::select! {
//!             _ = ctx.shutdown.changed() => break,
//!             out = ctx.outbound.recv() => match out {
//!                 Some(Outbound::Deliver { message, reply }) => {
//!                     // ... send it on the wire ...
//!                     let _ = reply.send(DeliveryOutcome::Delivered);
//!                 }
//!                 Some(_) => {}
//!                 None => break,
//!             },
//!         }
//!     }
//! }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

use crate::event::{RoomEvent, RoomRef};
use crate::message::{Message, World};
use crate::time::Timestamp;

/// What became of a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// The final recipient has it (SIP 200, XEP-0184 receipt, MSRP 200 from
    /// the endpoint, IRC echo-message).
    Delivered,
    /// Accepted for later delivery: by the hub's durable queue, or by a next
    /// hop that promises delivery (SIP 202).
    Accepted,
    /// It could not be delivered.
    Failed(Failure),
}

/// Why a message could not be delivered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The class of failure, which each protocol maps to its own error.
    pub kind: FailureKind,
    /// A human-readable reason, for logs and reason phrases.
    pub detail: String,
}

impl Failure {
    /// A failure of `kind` with `detail`.
    pub fn new(kind: FailureKind, detail: impl Into<String>) -> Self {
        Failure {
            kind,
            detail: detail.into(),
        }
    }

    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            FailureKind::Unreachable | FailureKind::Timeout | FailureKind::Overloaded
        )
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)
    }
}

/// Classes of delivery failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureKind {
    /// No such recipient or room (SIP 404, XMPP item-not-found, IRC 401/403).
    NotFound,
    /// The sender may not send this (SIP 403, XMPP forbidden).
    Forbidden,
    /// The recipient refused it for a reason of its own (SIP 4xx/6xx).
    Rejected,
    /// Too large for the destination (SIP 413, MSRP 413).
    TooLarge,
    /// A content type the destination does not take (SIP/MSRP 415).
    UnsupportedType,
    /// The destination is down or not connected; retried.
    Unreachable,
    /// No answer in time (SIP 408, MSRP 408); retried.
    Timeout,
    /// The destination asked us to slow down (SIP 503, IRC flood); retried.
    Overloaded,
    /// The message's Expires passed before it could be delivered.
    Expired,
    /// The gateway itself failed (store error).
    Internal,
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            FailureKind::NotFound => "not found",
            FailureKind::Forbidden => "forbidden",
            FailureKind::Rejected => "rejected",
            FailureKind::TooLarge => "too large",
            FailureKind::UnsupportedType => "unsupported type",
            FailureKind::Unreachable => "unreachable",
            FailureKind::Timeout => "timeout",
            FailureKind::Overloaded => "overloaded",
            FailureKind::Expired => "expired",
            FailureKind::Internal => "internal error",
        };
        f.write_str(s)
    }
}

/// The reply channel of one message.
pub type Reply = oneshot::Sender<DeliveryOutcome>;

/// What an adapter hands to the hub.
#[derive(Debug)]
#[non_exhaustive]
pub enum Inbound {
    /// A message received from the adapter's world. The hub answers on
    /// `reply` once it is durably queued (or refused).
    Message {
        /// The message.
        message: Box<Message>,
        /// Where the hub's answer goes.
        reply: Reply,
    },
    /// Something happened in a room.
    RoomEvent(Box<RoomEvent>),
    /// The adapter's connection state changed (for `/readyz`).
    Status(AdapterStatus),
}

/// What the hub hands to an adapter.
#[derive(Debug)]
#[non_exhaustive]
pub enum Outbound {
    /// Send this message; answer on `reply`.
    Deliver {
        /// The message, already addressed for this adapter's world.
        message: Box<Message>,
        /// Where the adapter's answer goes.
        reply: Reply,
    },
    /// Show this room event in the adapter's world.
    RoomEvent(Box<RoomEvent>),
    /// The final outcome of a message this adapter handed in earlier, when
    /// it went to another world: the adapter tells its sender where the
    /// protocol allows (MSRP REPORT, XMPP error stanza or receipt, an IRC
    /// notice). Sent for failures after acceptance, and for deliveries.
    Report {
        /// The copy of the message that was (or was not) delivered; its
        /// `origin` names this adapter and the protocol's own id.
        message: Box<Message>,
        /// The adapter it was to be delivered by.
        destination: String,
        /// What happened.
        outcome: DeliveryOutcome,
    },
}

/// Connection state of an adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdapterStatus {
    /// Connected and able to deliver.
    Connected,
    /// Not connected (starting, or reconnecting).
    Disconnected,
}

/// Everything an adapter is given when it starts.
#[derive(Debug)]
pub struct AdapterContext {
    /// The adapter instance name from config.
    pub name: String,
    /// Messages and events for the hub. Bounded.
    pub inbound: mpsc::Sender<Inbound>,
    /// Messages and events from the hub. Bounded.
    pub outbound: mpsc::Receiver<Outbound>,
    /// Changes to `true` when the gateway shuts down: send the protocol's
    /// goodbye and return.
    pub shutdown: watch::Receiver<bool>,
    /// The recent messages of bridged rooms, for history on join
    /// (XEP-0045 §7.2.15). [`NoHistory`] where the gateway keeps none.
    pub history: Arc<dyn History>,
}

/// Which part of a room's history is asked for. Both limits apply; the
/// newest messages are kept when there are more.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    /// At most this many messages (XEP-0045 `maxstanzas`).
    pub max_messages: usize,
    /// None older than this (XEP-0045 `seconds` / `since`).
    pub since: Option<Timestamp>,
}

/// The gateway's record of what was said in bridged rooms.
///
/// A room's history is that of its bridge: every room message the hub
/// accepted from any room of the bridge, as it was received (its `room` is
/// the room it was said in, its `datetime` when it was said), oldest first.
pub trait History: Send + Sync + fmt::Debug {
    /// The newest messages of the bridge of `room` that `query` allows,
    /// oldest first. A room in no bridge has no history (an empty list).
    fn recent(
        &self,
        room: &RoomRef,
        query: HistoryQuery,
    ) -> BoxFuture<'static, Result<Vec<Message>, Failure>>;
}

/// A history that is always empty: for adapters run without a hub, and
/// for a gateway configured to keep no history.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHistory;

impl History for NoHistory {
    fn recent(
        &self,
        _room: &RoomRef,
        _query: HistoryQuery,
    ) -> BoxFuture<'static, Result<Vec<Message>, Failure>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// An error that stopped an adapter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdapterError {
    /// Happens when the adapter's configuration cannot be used.
    #[error("configuration: {0}")]
    Config(String),
    /// Happens when an I/O operation fails for good (e.g. a listen address
    /// cannot be bound).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Happens when the hub went away.
    #[error("the hub is gone")]
    HubGone,
}

/// A boxed future, as returned by [`Adapter::run`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The contract every adapter fulfils.
pub trait Adapter: Send + 'static {
    /// The world this adapter speaks to.
    fn world(&self) -> World;

    /// Run until `ctx.shutdown` turns true or a fatal error.
    fn run(self: Box<Self>, ctx: AdapterContext) -> BoxFuture<'static, Result<(), AdapterError>>;
}

/// Make the bounded channel pair of one adapter: the hub keeps the
/// `Sender<Outbound>`, the adapter gets the receiver in its context.
pub fn outbound_channel(capacity: usize) -> (mpsc::Sender<Outbound>, mpsc::Receiver<Outbound>) {
    mpsc::channel(capacity)
}
