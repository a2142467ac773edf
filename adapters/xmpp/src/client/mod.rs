//! Client mode: the gateway logs in as an ordinary account and joins
//! existing MUC rooms (XEP-0045) under a nickname.
//!
//! This is how a room on one XMPP server is federated with a room on
//! another server, or with IRC, SIP or MSRP, without any server-side
//! set-up:
//!
//! * the room's messages, and its joins, leaves, nick changes, kicks and
//!   subject changes, go to the hub;
//! * a message of another world is posted as one groupchat message in
//!   `format` (`<{nick}> {text}` by default); the text is character data,
//!   never markup, with what XML cannot carry replaced
//!   ([`crate::text::xml_safe`]).
//!
//! What client mode cannot do, by its nature:
//!
//! * joins and leaves of other worlds cannot appear as occupants: one
//!   account has one occupant per room and cannot create others (that is
//!   component mode). With `presence_notices` on, joins, leaves and nick
//!   changes are said as one groupchat line each (`* Alice joined`, see
//!   [`notices`]); otherwise, and for the other room events, they are
//!   dropped with a debug log;
//! * private and 1:1 messages (type `chat`) to the account are ignored:
//!   client mode federates rooms, it does not route people;
//! * delivery reports from the hub are dropped: MUC has no per-message
//!   report to send back.
//!
//! Delivery: a message posted into a room is [`DeliveryOutcome::Delivered`]
//! when the room reflects it back to us (XEP-0045 §7.4: the room sends
//! every message to all occupants, sender included; we match our XEP-0359
//! origin-id). Without a reflection within [`REFLECTION_TIMEOUT`] the
//! answer is [`DeliveryOutcome::Accepted`]: the server took the stanza but
//! we cannot tell more (a room may strip or rewrite the reflection). A room
//! error is a failure; a stream lost before the reflection is a transient
//! failure, so the hub sends it again (at least once rather than at most
//! once: a message may then appear twice in the room).
//!
//! Robustness:
//!
//! * the connection is re-established with exponential backoff and jitter
//!   (see [`connect`]); while it is down the adapter reports
//!   [`AdapterStatus::Disconnected`] and the hub holds its messages in the
//!   durable queue; rooms are rejoined after a reset, and `Connected` is
//!   reported once every room has answered its join;
//! * XEP-0410 self-ping every [`SELF_PING_INTERVAL`] detects a membership
//!   the room silently dropped (e.g. after a MUC service restart), and
//!   rejoins;
//! * everything toward the server goes through tokio-xmpp's bounded stanza
//!   queue ([`QUEUE_DEPTH`]); while it is full the adapter does not take
//!   more from the hub.
//!
//! The run loop in outline:
//!
//! ```text
//! loop select {
//!   shutdown              -> leave rooms, close the stream, return
//!   stream event          -> Reset: join rooms | Suspended: Disconnected
//!                            stanza: rooms.handle_* -> hub / replies
//!   hub outbound          -> post into the room, remember the origin-id
//!   tick (1 s)            -> reflection timeouts, self-pings, rejoins
//! }
//! ```

mod connect;
mod notices;
mod ns;
mod rooms;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::time::Duration;

use cpimgate_mappings::MappingStore;
use cpimgate_model::RoomEvent;
use cpimgate_model::port::{
    AdapterContext, AdapterError, AdapterStatus, DeliveryOutcome, Failure, FailureKind, Inbound,
    Outbound, Reply,
};
use cpimgate_model::time::Timestamp;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_xmpp::Stanza;
use tokio_xmpp::parsers::jid::BareJid;
use tokio_xmpp::stanzastream::{Event, StanzaStream, StreamEvent};
use tokio_xmpp::xmlstream::Timeouts;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::ping::Ping;
use xmpp_parsers::presence::Presence;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use self::connect::{Backoff, ConnectSettings};
use self::rooms::{Output, Rooms};
use crate::config::{ClientConfig, NoticeFormat};

/// Depth of tokio-xmpp's stanza queues (each direction).
pub const QUEUE_DEPTH: usize = 64;
/// How long a posted message waits for its reflection before it counts
/// as accepted.
pub const REFLECTION_TIMEOUT: Duration = Duration::from_secs(5);
/// How often each joined room is self-pinged (XEP-0410).
pub const SELF_PING_INTERVAL: Duration = Duration::from_secs(60);
/// How long a self-ping may stay unanswered before the room is rejoined.
const SELF_PING_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a join may stay unanswered before it is tried again.
const JOIN_TIMEOUT: Duration = Duration::from_secs(20);
/// How long to wait for room in the stanza queue before giving up on one
/// stanza.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Hub answers awaited at once; beyond this the stream is not read (the
/// hub is slow: slow the room down rather than buffer).
const MAX_HUB_PENDING: usize = 1024;
/// Prefix of the ids of our self-pings.
const PING_PREFIX: &str = "cpimgate-selfping-";
/// Prefix of the ids of our presence notices.
const NOTICE_PREFIX: &str = "cpimgate-notice-";

/// Run client mode until shutdown.
pub async fn run(
    config: ClientConfig,
    _mappings: MappingStore,
    ctx: AdapterContext,
) -> Result<(), AdapterError> {
    let jid: BareJid = config
        .jid
        .parse()
        .map_err(|e| AdapterError::Config(format!("jid {:?}: {e}", config.jid)))?;
    if jid.node().is_none() {
        return Err(AdapterError::Config(format!(
            "jid {:?}: an account JID needs a localpart",
            config.jid
        )));
    }
    let rooms = Rooms::new(&ctx.name, &config).map_err(|e| AdapterError::Config(e.to_string()))?;
    let backoff = Backoff::default();
    let settings = ConnectSettings {
        jid,
        password: config.password.clone(),
        server: config.server.clone(),
        insecure: config.insecure_accept_any_certificate,
        timeouts: Timeouts::tight(),
        nodelay: config.tcp_nodelay,
    };
    let stream = StanzaStream::new(connect::reconnector(settings, backoff.clone()), QUEUE_DEPTH);
    let n = rooms.rooms.len();
    let notices = config
        .presence_notices
        .then(|| (*config.notice_format).clone());
    Driver {
        ctx,
        rooms,
        stream,
        backoff,
        online: false,
        status: None,
        joins: vec![None; n],
        settled: vec![false; n],
        last_join: vec![None; n],
        last_ping: vec![None; n],
        pings: HashMap::new(),
        ping_counter: 0,
        pending: HashMap::new(),
        hub_answers: FuturesUnordered::new(),
        notices,
        notice_counter: 0,
    }
    .run()
    .await
}

/// A message posted into a room, waiting for its reflection.
struct Posted {
    reply: Reply,
    deadline: Instant,
}

struct Driver {
    ctx: AdapterContext,
    rooms: Rooms,
    stream: StanzaStream,
    backoff: Backoff,
    /// Whether a stream is up (between Reset/Resumed and Suspended).
    online: bool,
    /// The status last reported to the hub.
    status: Option<AdapterStatus>,
    /// Per room: when the last join was sent, while unanswered.
    joins: Vec<Option<Instant>>,
    /// Per room: whether its join has been answered (or timed out) since
    /// the stream was reset.
    settled: Vec<bool>,
    /// Per room: when the last join was sent.
    last_join: Vec<Option<Instant>>,
    /// Per room: when it was last self-pinged.
    last_ping: Vec<Option<Instant>>,
    /// Self-pings in flight: iq id -> (room, sent).
    pings: HashMap<String, (usize, Instant)>,
    ping_counter: u64,
    /// Posted messages by origin-id.
    pending: HashMap<String, Posted>,
    /// The hub's answers to messages handed in.
    hub_answers: FuturesUnordered<oneshot::Receiver<DeliveryOutcome>>,
    /// The lines for other worlds' joins, leaves and nick changes, when
    /// `presence_notices` is on.
    notices: Option<NoticeFormat>,
    notice_counter: u64,
}

impl Driver {
    async fn run(mut self) -> Result<(), AdapterError> {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.set_status(AdapterStatus::Disconnected).await?;
        loop {
            tokio::select! {
                _ = self.ctx.shutdown.changed() => break,
                ev = self.stream.next(), if self.hub_answers.len() < MAX_HUB_PENDING => match ev {
                    Some(ev) => self.on_stream(ev).await?,
                    None => {
                        return Err(AdapterError::Io(std::io::Error::other("the XMPP stream ended")));
                    }
                },
                out = self.ctx.outbound.recv() => match out {
                    Some(out) => self.on_outbound(out).await,
                    None => break,
                },
                Some(answer) = self.hub_answers.next(), if !self.hub_answers.is_empty() => {
                    if let Ok(DeliveryOutcome::Failed(f)) = answer {
                        tracing::warn!(adapter = %self.ctx.name, "xmpp: the hub refused a room message: {f}");
                    }
                }
                _ = tick.tick() => self.on_tick().await?,
            }
        }
        self.goodbye().await;
        Ok(())
    }

    /// XEP-0045 §7.14: leave each room, then close the stream; bounded in
    /// time.
    async fn goodbye(mut self) {
        if self.online {
            for i in 0..self.rooms.rooms.len() {
                if let Some(to) = self.rooms.rooms.get(i).and_then(|r| r.occupant_jid()) {
                    let p = Presence::unavailable().with_to(to);
                    self.send(p.into()).await;
                }
            }
        }
        for (_, p) in self.pending.drain() {
            let _ = p.reply.send(DeliveryOutcome::Accepted);
        }
        let _ = tokio::time::timeout(Duration::from_secs(3), self.stream.close()).await;
    }

    async fn set_status(&mut self, status: AdapterStatus) -> Result<(), AdapterError> {
        if self.status != Some(status) {
            self.status = Some(status);
            tracing::info!(adapter = %self.ctx.name, ?status, "xmpp client");
            self.ctx
                .inbound
                .send(Inbound::Status(status))
                .await
                .map_err(|_| AdapterError::HubGone)?;
        }
        Ok(())
    }

    /// Queue one stanza toward the server; false if the queue stayed full.
    async fn send(&mut self, stanza: Stanza) -> bool {
        match tokio::time::timeout(SEND_TIMEOUT, self.stream.send(Box::new(stanza))).await {
            Ok(_token) => true,
            Err(_) => {
                tracing::warn!(adapter = %self.ctx.name, "xmpp: the stanza queue stayed full; stanza dropped");
                false
            }
        }
    }

    async fn join(&mut self, i: usize) {
        if let Some(p) = self.rooms.join(i) {
            let now = Instant::now();
            if let Some(j) = self.joins.get_mut(i) {
                *j = Some(now);
            }
            if let Some(l) = self.last_join.get_mut(i) {
                *l = Some(now);
            }
            self.send(p.into()).await;
        }
    }

    async fn on_stream(&mut self, ev: Event) -> Result<(), AdapterError> {
        match ev {
            Event::Stream(StreamEvent::Reset { bound_jid, .. }) => {
                tracing::info!(adapter = %self.ctx.name, %bound_jid, "xmpp: online; joining rooms");
                self.online = true;
                self.backoff.reset();
                self.rooms.reset();
                self.pings.clear();
                self.settled.iter_mut().for_each(|s| *s = false);
                self.last_ping.iter_mut().for_each(|t| *t = None);
                for i in 0..self.rooms.rooms.len() {
                    self.join(i).await;
                }
                self.maybe_connected().await?;
            }
            Event::Stream(StreamEvent::Resumed) => {
                // XEP-0198 resumption: the session, and so the rooms, kept.
                // Not expected: the connector turns stream management off.
                self.online = true;
                self.backoff.reset();
                self.maybe_connected().await?;
            }
            Event::Stream(StreamEvent::Suspended) => {
                tracing::warn!(adapter = %self.ctx.name, "xmpp: connection lost");
                self.online = false;
                for (_, p) in self.pending.drain() {
                    let _ = p.reply.send(DeliveryOutcome::Failed(Failure::new(
                        FailureKind::Unreachable,
                        "the connection to the XMPP server was lost before the room confirmed the message",
                    )));
                }
                self.set_status(AdapterStatus::Disconnected).await?;
            }
            Event::Stanza(stanza) => self.on_stanza(stanza).await?,
        }
        Ok(())
    }

    /// `Connected` once online and every room has answered its join.
    async fn maybe_connected(&mut self) -> Result<(), AdapterError> {
        if self.online && self.settled.iter().all(|s| *s) {
            self.set_status(AdapterStatus::Connected).await?;
        }
        Ok(())
    }

    async fn on_stanza(&mut self, stanza: Stanza) -> Result<(), AdapterError> {
        let outputs = match stanza {
            Stanza::Message(m) => self.rooms.handle_message(m, Timestamp::now()),
            Stanza::Presence(p) => self.rooms.handle_presence(p),
            Stanza::Iq(iq) => {
                self.on_iq(iq).await;
                Vec::new()
            }
        };
        for out in outputs {
            self.on_output(out).await?;
        }
        Ok(())
    }

    async fn on_output(&mut self, out: Output) -> Result<(), AdapterError> {
        match out {
            Output::Message(message) => {
                let (reply, answer) = oneshot::channel();
                self.ctx
                    .inbound
                    .send(Inbound::Message { message, reply })
                    .await
                    .map_err(|_| AdapterError::HubGone)?;
                self.hub_answers.push(answer);
            }
            Output::Event(event) => {
                self.ctx
                    .inbound
                    .send(Inbound::RoomEvent(event))
                    .await
                    .map_err(|_| AdapterError::HubGone)?;
            }
            Output::Reflected(id) => {
                if let Some(p) = self.pending.remove(&id) {
                    let _ = p.reply.send(DeliveryOutcome::Delivered);
                }
            }
            Output::Refused(id, cond) => {
                if let Some(p) = self.pending.remove(&id) {
                    let _ = p.reply.send(DeliveryOutcome::Failed(refusal(&cond)));
                }
            }
            Output::Joined(i) => {
                if let Some(s) = self.settled.get_mut(i) {
                    *s = true;
                }
                if let Some(j) = self.joins.get_mut(i) {
                    *j = None;
                }
                if let Some(r) = self.rooms.rooms.get(i) {
                    tracing::info!(adapter = %self.ctx.name, room = %r.jid, nick = %r.nick, "xmpp: joined");
                }
                self.maybe_connected().await?;
            }
            Output::NotJoined(i) => {
                if let Some(s) = self.settled.get_mut(i) {
                    *s = true;
                }
                // Tried again from the tick; meanwhile the others may go on.
                if let Some(j) = self.joins.get_mut(i) {
                    *j = None;
                }
                self.maybe_connected().await?;
            }
        }
        Ok(())
    }

    async fn on_iq(&mut self, iq: Iq) {
        match iq {
            Iq::Result { id, .. } => {
                self.pings.remove(&id);
            }
            Iq::Error { id, error, .. } => {
                let Some((i, _)) = self.pings.remove(&id) else {
                    return;
                };
                // XEP-0410 §4: these errors come from the occupant's client,
                // so we are still joined; any other means we are not.
                let still_joined = matches!(
                    error.defined_condition,
                    DefinedCondition::ServiceUnavailable
                        | DefinedCondition::FeatureNotImplemented
                        | DefinedCondition::ItemNotFound
                        | DefinedCondition::RemoteServerNotFound
                        | DefinedCondition::RemoteServerTimeout
                );
                if !still_joined {
                    self.lost(i, &format!("{:?}", error.defined_condition))
                        .await;
                }
            }
            Iq::Get {
                from, id, payload, ..
            } => {
                // XEP-0199 ping is answered; anything else gets
                // service-unavailable (RFC 6120 §8.4).
                let reply = if payload.is("ping", xmpp_parsers::ns::PING) {
                    Iq::Result {
                        from: None,
                        to: from,
                        id,
                        payload: None,
                    }
                } else {
                    unsupported(from, id)
                };
                self.send(reply.into()).await;
            }
            Iq::Set { from, id, .. } => {
                let reply = unsupported(from, id);
                self.send(reply.into()).await;
            }
        }
    }

    /// The room no longer has us: join again.
    async fn lost(&mut self, i: usize, why: &str) {
        if let Some(r) = self.rooms.rooms.get_mut(i) {
            tracing::warn!(adapter = %self.ctx.name, room = %r.jid, why, "xmpp: not in the room any more; rejoining");
            r.joined = false;
        }
        self.join(i).await;
    }

    async fn on_outbound(&mut self, out: Outbound) {
        match out {
            Outbound::Deliver { message, reply } => {
                let room = match &message.room {
                    Some(r) if !message.private => self.rooms.find(&r.address),
                    _ => None,
                };
                let Some(i) = room else {
                    let _ = reply.send(DeliveryOutcome::Failed(Failure::new(
                        FailureKind::NotFound,
                        "xmpp client mode delivers only into its configured rooms",
                    )));
                    return;
                };
                let joined = self.rooms.rooms.get(i).is_some_and(|r| r.joined);
                if !self.online || !joined {
                    let _ = reply.send(DeliveryOutcome::Failed(Failure::new(
                        FailureKind::Unreachable,
                        if self.online {
                            "not joined to the room"
                        } else {
                            "not connected to the XMPP server"
                        },
                    )));
                    return;
                }
                let origin_id = format!("cpimgate-{}", cpimgate_model::MessageId::random());
                let Some(stanza) = self.rooms.post(i, &message, &origin_id) else {
                    let _ = reply.send(DeliveryOutcome::Failed(Failure::new(
                        FailureKind::Internal,
                        "the room vanished",
                    )));
                    return;
                };
                if self.send(stanza.into()).await {
                    self.pending.insert(
                        origin_id,
                        Posted {
                            reply,
                            deadline: Instant::now() + REFLECTION_TIMEOUT,
                        },
                    );
                } else {
                    let _ = reply.send(DeliveryOutcome::Failed(Failure::new(
                        FailureKind::Overloaded,
                        "the queue toward the XMPP server is full",
                    )));
                }
            }
            Outbound::RoomEvent(e) => self.on_room_event(&e).await,
            Outbound::Report { .. } => {
                tracing::debug!(adapter = %self.ctx.name, "xmpp client mode has no delivery reports to send; dropped");
            }
            _ => {}
        }
    }

    /// A room event of another world: said in the room as a line when
    /// notices are on ([`notices`]), else dropped. Room events are not
    /// queued: one that comes while the room is not joined is dropped.
    async fn on_room_event(&mut self, e: &RoomEvent) {
        let text = self
            .notices
            .as_ref()
            .and_then(|f| notices::notice_text(f, &e.kind));
        let Some(text) = text else {
            tracing::debug!(adapter = %self.ctx.name, kind = ?e.kind, "xmpp client mode does not show this room event of another world; dropped");
            return;
        };
        let room = self
            .rooms
            .find(&e.room.address)
            .and_then(|i| self.rooms.rooms.get(i))
            .filter(|r| r.joined)
            .map(|r| r.jid.clone());
        let Some(room) = room.filter(|_| self.online) else {
            tracing::debug!(adapter = %self.ctx.name, room = %e.room.address, "xmpp: not in the room; notice dropped");
            return;
        };
        self.notice_counter += 1;
        let id = format!("{NOTICE_PREFIX}{}", self.notice_counter);
        self.send(notices::notice_stanza(&room, text, id).into())
            .await;
    }

    async fn on_tick(&mut self) -> Result<(), AdapterError> {
        let now = Instant::now();
        let expired: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            if let Some(p) = self.pending.remove(&id) {
                tracing::debug!(adapter = %self.ctx.name, %id, "xmpp: no reflection in time; counted as accepted");
                let _ = p.reply.send(DeliveryOutcome::Accepted);
            }
        }
        if !self.online {
            return Ok(());
        }
        let mut changed = false;
        for i in 0..self.rooms.rooms.len() {
            // An unanswered join counts as answered (so the other rooms can
            // report Connected) and is tried again.
            if self
                .joins
                .get(i)
                .copied()
                .flatten()
                .is_some_and(|t| now.duration_since(t) >= JOIN_TIMEOUT)
            {
                if let Some(j) = self.joins.get_mut(i) {
                    *j = None;
                }
                if let Some(s) = self.settled.get_mut(i) {
                    changed |= !*s;
                    *s = true;
                }
            }
            let joined = self.rooms.rooms.get(i).is_some_and(|r| r.joined);
            let waiting = self.joins.get(i).copied().flatten().is_some();
            if !joined {
                if !waiting
                    && self
                        .last_join
                        .get(i)
                        .copied()
                        .flatten()
                        .is_none_or(|t| now.duration_since(t) >= JOIN_TIMEOUT)
                {
                    self.join(i).await;
                }
                continue;
            }
            // XEP-0410 §3: self-ping our occupant JID.
            if self
                .last_ping
                .get(i)
                .copied()
                .flatten()
                .is_none_or(|t| now.duration_since(t) >= SELF_PING_INTERVAL)
            {
                if let Some(l) = self.last_ping.get_mut(i) {
                    *l = Some(now);
                }
                if let Some(to) = self.rooms.rooms.get(i).and_then(|r| r.occupant_jid()) {
                    self.ping_counter += 1;
                    let id = format!("{PING_PREFIX}{i}-{}", self.ping_counter);
                    self.pings.insert(id.clone(), (i, now));
                    let iq = Iq::from_get(id, Ping).with_to(to.into());
                    self.send(iq.into()).await;
                }
            }
        }
        let late: Vec<(String, usize)> = self
            .pings
            .iter()
            .filter(|(_, (_, t))| now.duration_since(*t) >= SELF_PING_TIMEOUT)
            .map(|(id, (i, _))| (id.clone(), *i))
            .collect();
        for (id, i) in late {
            self.pings.remove(&id);
            self.lost(i, "self-ping unanswered").await;
        }
        if changed {
            self.maybe_connected().await?;
        }
        Ok(())
    }
}

/// RFC 6120 §8.3.3.19.
fn unsupported(to: Option<xmpp_parsers::jid::Jid>, id: String) -> Iq {
    Iq::Error {
        from: None,
        to,
        id,
        error: StanzaError::new(
            ErrorType::Cancel,
            DefinedCondition::ServiceUnavailable,
            "en",
            "not supported by this gateway",
        ),
        payload: None,
    }
}

/// A room's error to one of our messages, as a failure (RFC 6120 §8.3.3).
fn refusal(cond: &DefinedCondition) -> Failure {
    let kind = match cond {
        DefinedCondition::Forbidden | DefinedCondition::NotAllowed => FailureKind::Forbidden,
        DefinedCondition::ItemNotFound | DefinedCondition::RecipientUnavailable => {
            FailureKind::NotFound
        }
        // XEP-0045 §7.4: not an occupant; we rejoin, so try again.
        DefinedCondition::NotAcceptable
        | DefinedCondition::RemoteServerNotFound
        | DefinedCondition::RemoteServerTimeout
        | DefinedCondition::ServiceUnavailable => FailureKind::Unreachable,
        DefinedCondition::ResourceConstraint => FailureKind::Overloaded,
        _ => FailureKind::Rejected,
    };
    Failure::new(kind, format!("the room refused the message: {cond:?}"))
}
