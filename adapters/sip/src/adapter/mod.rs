//! The SIP MESSAGE adapter: the tokio driver that joins the transport, the
//! transaction layer, the MESSAGE rules of [`crate::message`] and the hub.
//!
//! One task owns everything but the sockets: the [`TransactionLayer`], the
//! server transactions waiting for the hub, the client transactions of
//! messages being delivered and their per-destination queues. It waits on
//! the transport's events, the hub's deliveries, its own helpers' answers
//! and the transaction timers, and after each input drains the layer's
//! outputs. Writes are spawned (a slow TCP peer must not stall the loop)
//! and report failures back as transport errors (RFC 3261 §18.4).
//!
//! ```text
//!  sipp/proxy --MESSAGE--> transport -> layer -> uas rules --Inbound--> hub
//!            <---202------ transport <- layer <- hub's Accepted (stored)
//!  hub --Outbound::Deliver--> queue per Request-URI -> layer -> transport
//!  hub <-- Delivered (200) / Accepted (202) / Failed (4xx-6xx, timer F)
//! ```
//!
//! This file holds the run loop and the UAS half; `uac` the UAC half,
//! `wire` the pure helpers (transport settings, request summaries,
//! response destinations).
//!
//! Next hops (RFC 3263 §4): the message pending for a Request-URI is sent
//! to the servers of that URI, or of the outbound proxy, as
//! [`crate::resolve`] orders them. A URI with a numeric IP address is
//! resolved on the spot; a name is resolved by a spawned task (DNS must
//! not stall the loop) that reports back as `Internal::Resolved`, and the
//! transaction starts then. A transport error, a timeout (timer F) or a
//! 503 from one server sends the same MESSAGE, with a new branch, to the
//! next one (§4.3); only when none is left does the message fail.
//!
//! Ordering (the port's contract): a transient failure (timeout, transport
//! error, 408/480/503, a DNS server that did not answer) of the message
//! pending for a Request-URI fails every message queued behind it the
//! same way, and later messages to that URI are refused as transient until
//! the hub sends the failed one again; so the hub's retries keep the
//! order. Resolution and failover happen while the message is the pending
//! one, so they keep it too.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use cpimgate_mappings::MappingStore;
use cpimgate_model::message::World;
use cpimgate_model::port::{
    Adapter, AdapterContext, AdapterError, AdapterStatus, BoxFuture, DeliveryOutcome, Failure,
    FailureKind, Inbound, Reply,
};
use cpimgate_model::time::Timestamp;
use cpimgate_model::{Message, MessageId};
use tokio::sync::mpsc;

use crate::codec;
use crate::config::Account;
use crate::config::SipConfig;
use crate::digest::{DigestClient, DigestRequest, DigestServer};
use crate::message::{
    Answer, DestinationQueues, MergeGuard, UasContext, UasDecision, answer_for_outcome,
    handle_request,
};
use crate::resolve::{ResolveError, Resolver, Target};
use crate::transaction::{
    self, Event, IncomingRequest, OutgoingResponse, Output, TransactionLayer, TxId,
};
use crate::transport::{ConnId, Destination, Source, Transport, TransportEvent, TransportKind};

/// How long a Request-URI refuses new messages after a transient failure,
/// at most, when the hub does not send the failed one again.
const POISON_FOR: Duration = Duration::from_secs(60);

/// The SIP MESSAGE adapter (RFC 3428); see the [module docs](self).
#[derive(Debug)]
pub struct SipAdapter {
    config: SipConfig,
    mappings: MappingStore,
}

impl SipAdapter {
    /// An adapter with `config`; `im:` recipients are resolved to SIP
    /// addresses of record through `mappings` (RFC 3428 §5).
    pub fn new(config: SipConfig, mappings: MappingStore) -> SipAdapter {
        SipAdapter { config, mappings }
    }
}

impl Adapter for SipAdapter {
    fn world(&self) -> World {
        World::Sip
    }

    fn run(self: Box<Self>, ctx: AdapterContext) -> BoxFuture<'static, Result<(), AdapterError>> {
        Box::pin(run(self.config, self.mappings, ctx))
    }
}

/// What the helper tasks tell the driver.
#[derive(Debug)]
enum Internal {
    /// The hub's verdict on a received MESSAGE.
    HubAnswer { tx: TxId, outcome: DeliveryOutcome },
    /// A write failed.
    SendFailed { tx: TxId },
    /// A request of a client transaction went out on this connection.
    SentOn { tx: TxId, conn: ConnId },
    /// The servers of a message's next hop were looked up (RFC 3263).
    Resolved {
        id: u64,
        result: Result<Vec<Target>, ResolveError>,
    },
    /// The servers of a binding's next hop (registrar or outbound proxy)
    /// were looked up.
    RegistrarResolved {
        binding: usize,
        result: Result<Vec<Target>, ResolveError>,
    },
}

/// One message being delivered.
#[derive(Debug)]
struct Outgoing {
    message: Box<Message>,
    reply: Reply,
    /// The Request-URI, the key of its queue.
    uri: String,
    call_id: String,
    from_tag: String,
    cseq: u32,
    /// Whether a challenge was answered already (once only).
    authorized: bool,
    /// The credentials header sent, sent again to the next server.
    authorization: Option<(&'static str, String)>,
    /// The connection its request went out on (TCP, TLS).
    conn: Option<ConnId>,
    /// The server its request goes to; `None` until resolved.
    target: Option<Target>,
    /// The servers to try next (RFC 3263 §4.3), in order.
    fallbacks: std::collections::VecDeque<Target>,
}

mod register;
mod uac;
pub mod wire;

use self::wire::{reply_destination, request_summary, transport_config, usable_transports};

struct Driver {
    config: SipConfig,
    name: String,
    mappings: MappingStore,
    transport: Arc<Transport>,
    layer: TransactionLayer<Destination>,
    internal: mpsc::Sender<Internal>,
    inbound: mpsc::Sender<Inbound>,
    /// Server transactions waiting for the hub, with their request.
    waiting: HashMap<TxId, Bytes>,
    merge: MergeGuard,
    /// Client transactions of messages being delivered.
    sending: HashMap<TxId, Outgoing>,
    queues: DestinationQueues<Outgoing>,
    /// Locates next hops (RFC 3263).
    resolver: Resolver,
    /// Messages whose next hop is being looked up, by lookup id.
    resolving: HashMap<u64, Outgoing>,
    next_lookup: u64,
    /// Request-URIs whose pending message failed transiently: the id of
    /// that message, and until when to wait for it.
    poisoned: HashMap<String, (MessageId, Instant)>,
    /// Connections closed lately: a write reported after its connection
    /// closed must still fail its transaction.
    closed: std::collections::VecDeque<ConnId>,
    /// The packet source of the request being handed to the layer.
    current_peer: Option<SocketAddr>,
    to_tag: String,
    digest: Option<DigestServer>,
    client: Option<DigestClient>,
    sent_by: HashMap<TransportKind, String>,
    /// Addresses of record registered with a registrar.
    bindings: Vec<crate::register::Binding>,
    /// REGISTER client transactions, with their binding.
    register_txs: HashMap<TxId, usize>,
    /// Bindings whose next hop is being looked up, and whether their
    /// REGISTER is the removal.
    register_lookups: HashMap<usize, bool>,
    /// The servers left to try for a binding's REGISTER (RFC 3263 §4.3).
    register_fallbacks: HashMap<usize, std::collections::VecDeque<Target>>,
    /// The server of a binding's last REGISTER.
    register_servers: HashMap<usize, Target>,
    /// The `host:port` of every listener, as the Via and Contacts name
    /// them: a Request-URI there is the gateway's (a registered Contact).
    own_hosts: Vec<String>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver").field("name", &self.name).finish()
    }
}

/// A method name for a metric label: the ones the gateway knows, or
/// `other` (a label's values must stay few).
fn method_label(method: Option<&str>) -> &'static str {
    match method {
        Some("MESSAGE") => "MESSAGE",
        Some("OPTIONS") => "OPTIONS",
        Some("INVITE") => "INVITE",
        Some("CANCEL") => "CANCEL",
        Some("BYE") => "BYE",
        Some("REGISTER") => "REGISTER",
        _ => "other",
    }
}

fn random_token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

async fn run(
    config: SipConfig,
    mappings: MappingStore,
    mut ctx: AdapterContext,
) -> Result<(), AdapterError> {
    config.validate().map_err(AdapterError::Config)?;
    let transport_settings = transport_config(&config);
    let resolver = Resolver::new(&config.dns_servers, usable_transports(&transport_settings));
    let (transport, mut events) = Transport::bind(transport_settings)
        .await
        .map_err(|e| AdapterError::Config(format!("listen: {e}")))?;
    let mut sent_by = HashMap::new();
    for l in transport.listeners() {
        let host = match &config.via_host {
            Some(h) => h.clone(),
            None if l.addr.ip().is_unspecified() => Ipv4Addr::LOCALHOST.to_string(),
            None => match l.addr.ip() {
                IpAddr::V6(v6) => format!("[{v6}]"),
                v4 => v4.to_string(),
            },
        };
        sent_by
            .entry(l.transport)
            .or_insert(format!("{host}:{}", l.addr.port()));
        tracing::info!(adapter = %ctx.name, "SIP listening on {} {}", l.transport, l.addr);
    }
    let layer_config = transaction::Config {
        t1: config.t1(),
        t2: config.t2(),
        ..transaction::Config::default()
    };
    let digest = config.authenticate.then(|| {
        let realm = config
            .realm
            .clone()
            .unwrap_or_else(|| config.primary_domain().to_owned());
        let secret: [u8; 32] = rand::random();
        DigestServer::new(realm, secret.to_vec())
            .with_algorithms(config.algorithms())
            .with_uri_check(config.auth_check_uri)
    });
    let client = config
        .credentials
        .as_ref()
        .map(|c| DigestClient::new(c.user.clone(), c.password.clone()));
    let (internal, mut internal_rx) = mpsc::channel(1024);
    let bindings = register::bindings(&config, &ctx.name, Instant::now());
    let own_hosts = sent_by.values().cloned().collect();
    let mut d = Driver {
        name: ctx.name.clone(),
        mappings,
        transport: Arc::new(transport),
        layer: TransactionLayer::new(layer_config),
        internal,
        inbound: ctx.inbound.clone(),
        waiting: HashMap::new(),
        merge: MergeGuard::default(),
        sending: HashMap::new(),
        queues: DestinationQueues::default(),
        resolver,
        resolving: HashMap::new(),
        next_lookup: 0,
        poisoned: HashMap::new(),
        closed: std::collections::VecDeque::new(),
        current_peer: None,
        to_tag: random_token(),
        digest,
        client,
        sent_by,
        bindings,
        register_txs: HashMap::new(),
        register_lookups: HashMap::new(),
        register_fallbacks: HashMap::new(),
        register_servers: HashMap::new(),
        own_hosts,
        config,
    };
    let _ = ctx
        .inbound
        .send(Inbound::Status(AdapterStatus::Connected))
        .await;
    d.register_due(Instant::now());
    d.drain();
    loop {
        let deadline = match (d.layer.poll_timeout(), d.register_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = ctx.shutdown.changed() => break,
            event = events.recv() => match event {
                Some(e) => d.handle_transport(e),
                None => break,
            },
            out = ctx.outbound.recv() => match out {
                Some(o) => d.handle_outbound(o),
                None => break,
            },
            Some(i) = internal_rx.recv() => d.handle_internal(i),
            () = sleep => {
                let now = Instant::now();
                d.layer.handle_timeout(now);
                d.register_due(now);
            }
        }
        d.drain();
    }
    // RFC 3261 §10.2.2: remove the bindings, and give the registrar a
    // moment to confirm before the sockets close.
    if d.unregister_all() {
        d.drain();
        let until = tokio::time::Instant::now() + register::UNREGISTER_WAIT;
        while d.unregistering() {
            let deadline = d.layer.poll_timeout().map(tokio::time::Instant::from_std);
            let next = deadline.map_or(until, |t| t.min(until));
            tokio::select! {
                event = events.recv() => match event {
                    Some(e) => d.handle_transport(e),
                    None => break,
                },
                Some(i) = internal_rx.recv() => d.handle_internal(i),
                () = tokio::time::sleep_until(next) => {
                    if tokio::time::Instant::now() >= until {
                        break;
                    }
                    d.layer.handle_timeout(Instant::now());
                }
            }
            d.drain();
        }
    }
    d.shutdown();
    let _ = ctx
        .inbound
        .send(Inbound::Status(AdapterStatus::Disconnected))
        .await;
    Ok(())
}

impl Driver {
    /// Drains the layer's outputs: writes are spawned, events handled.
    fn drain(&mut self) {
        while let Some(output) = self.layer.poll_output() {
            match output {
                Output::Transmit(t) => {
                    let transport = Arc::clone(&self.transport);
                    let internal = self.internal.clone();
                    tokio::spawn(async move {
                        let report = match transport.send(&t.dest, t.bytes).await {
                            Ok(Some(conn)) => Internal::SentOn { tx: t.tx, conn },
                            Ok(None) => return,
                            Err(e) => {
                                tracing::debug!("SIP send to {} failed: {e}", t.dest.addr);
                                Internal::SendFailed { tx: t.tx }
                            }
                        };
                        let _ = internal.send(report).await;
                    });
                }
                Output::Event(e) => self.handle_event(e),
                // Only INVITE transactions ask for these; the MESSAGE
                // gateway starts none and answers INVITE with 405.
                Output::BuildAck { .. } | Output::SendTrying { .. } => {}
            }
        }
    }

    fn handle_transport(&mut self, event: TransportEvent) {
        match event {
            TransportEvent::Message { bytes, source } => self.handle_bytes(bytes, source),
            TransportEvent::Malformed {
                bytes,
                source,
                error,
            } => {
                tracing::info!(adapter = %self.name, "malformed SIP from {}: {error}", source.peer);
                let s = error.response_status();
                self.answer_unreadable(&bytes, &source, s.code, &s.reason);
            }
            TransportEvent::Closed { conn, .. } => {
                if self.closed.len() >= 256 {
                    self.closed.pop_front();
                }
                self.closed.push_back(conn);
                // A response cannot come on another connection: the client
                // transactions waiting on this one failed (RFC 3261 §18.4).
                let waiting: Vec<TxId> = self
                    .sending
                    .iter()
                    .filter(|(_, o)| o.conn == Some(conn))
                    .map(|(tx, _)| *tx)
                    .collect();
                for tx in waiting {
                    self.layer.handle_transport_error(Instant::now(), tx);
                }
            }
        }
    }

    fn handle_bytes(&mut self, bytes: Bytes, source: Source) {
        let now = Instant::now();
        let m = match codec::parse(&bytes) {
            Ok(m) => m,
            Err(e) => {
                tracing::info!(adapter = %self.name, "unreadable SIP message from {}: {e}", source.peer);
                let s = e.response_status();
                self.answer_unreadable(&bytes, &source, s.code, &s.reason);
                return;
            }
        };
        if m.status().is_some() {
            // RFC 3261 §18.1.2 / §17.1.3: match by the top Via's branch.
            if let Some(summary) = wire::response_summary(&m) {
                self.layer.handle_response(now, summary, bytes.clone());
            }
            return;
        }
        let Ok(Some(via)) = m.top_via() else {
            // RFC 3261 §8.1.1: Via is mandatory, and §18.2.2: a response
            // goes where the top Via says; without a readable one there is
            // nowhere to answer.
            tracing::info!(adapter = %self.name, "SIP request from {} without a readable Via: dropped", source.peer);
            return;
        };
        let dest = reply_destination(&via, &source);
        if let Err(e) = m.validate_request() {
            // Not enough for a transaction: answer once, statelessly.
            if m.method() != Some("ACK") {
                let s = e.response_status();
                if let Some(r) = Answer::new(s.code, s.reason).build(&m, &self.to_tag) {
                    let transport = Arc::clone(&self.transport);
                    let out = Bytes::from(r.to_bytes());
                    tokio::spawn(async move {
                        let _ = transport.send(&dest, out).await;
                    });
                }
            }
            return;
        }
        let Some(summary) = request_summary(&m) else {
            return;
        };
        self.current_peer = Some(source.peer);
        self.layer.handle_request(
            now,
            IncomingRequest {
                summary,
                bytes: bytes.clone(),
                source: dest,
                reliable: source.transport.is_reliable(),
            },
        );
        self.drain();
        self.current_peer = None;
    }

    /// Answer a request that could not be parsed whole (a bad body, a
    /// Content-Length lie, too large) with `code`, statelessly, when its
    /// header section is still readable: RFC 3261 §8.2 wants a response,
    /// and §18.2.2 needs the top Via to know where. Nothing is sent when
    /// even the headers are unreadable (or it is an ACK or a response).
    fn answer_unreadable(&self, bytes: &[u8], source: &Source, code: u16, reason: &str) {
        let Some(head) = wire::readable_head(bytes) else {
            return;
        };
        let fallback;
        let m = match codec::parse(&head) {
            Ok(m) => m,
            Err(_) => {
                // A NUL or bytes that are not UTF-8 in a header the
                // response does not need: answer from those it does.
                let Some(h) = wire::answerable_head(bytes) else {
                    return;
                };
                fallback = h;
                let Ok(m) = codec::parse(&fallback) else {
                    return;
                };
                m
            }
        };
        if !m.is_request() || m.method() == Some("ACK") {
            return;
        }
        let Ok(Some(via)) = m.top_via() else {
            return;
        };
        let dest = reply_destination(&via, source);
        if let Some(r) = Answer::new(code, reason).build(&m, &self.to_tag) {
            let transport = Arc::clone(&self.transport);
            let out = Bytes::from(r.to_bytes());
            tokio::spawn(async move {
                let _ = transport.send(&dest, out).await;
            });
        }
    }

    fn handle_event(&mut self, event: Event<Destination>) {
        match event {
            Event::Request { tx, bytes, .. } => self.handle_request(tx, bytes),
            Event::Response {
                tx,
                response,
                bytes,
                // A REGISTER's response is taken by its binding; the rest
                // are MESSAGE outcomes.
            } if response.status >= 200 && !self.register_response(tx, &bytes) => {
                self.handle_final(tx, &response, &bytes);
            }
            // RFC 3263 §4.3: both are failures of one server; the next
            // one is tried.
            Event::Timeout { tx, .. } => {
                if self.register_lost(tx, "no final response (timer F)") {
                    return;
                }
                if let Some(out) = self.sending.remove(&tx) {
                    let f = Failure::new(
                        FailureKind::Timeout,
                        format!("no final response from {} (timer F)", out.uri),
                    );
                    self.fail_over(out, f);
                }
            }
            Event::TransportError { tx } => {
                if self.register_lost(tx, "cannot send the REGISTER") {
                    return;
                }
                if let Some(out) = self.sending.remove(&tx) {
                    let f = Failure::new(
                        FailureKind::Unreachable,
                        format!("cannot send to {}", out.uri),
                    );
                    self.fail_over(out, f);
                }
            }
            Event::Terminated { tx } => {
                self.register_lost(tx, "transaction ended");
                self.merge.terminated(tx);
                self.waiting.remove(&tx);
                if let Some(out) = self.sending.remove(&tx) {
                    // Ended without a final outcome reported: treat as lost.
                    let f = Failure::new(FailureKind::Timeout, "transaction ended");
                    self.fail_transient(out, f);
                }
            }
            _ => {}
        }
    }

    /// A new server transaction: answer, or hand to the hub.
    fn handle_request(&mut self, tx: TxId, bytes: Bytes) {
        let Ok(req) = codec::parse(&bytes) else {
            return;
        };
        if !self.merge.admit(tx, &req) {
            // RFC 3261 §8.2.2.2: the same request by another path.
            self.respond(tx, &req, &Answer::new(482, "Loop Detected"));
            return;
        }
        if let Some(challenge) = self.challenge(&req) {
            self.respond(tx, &req, &challenge);
            return;
        }
        let ctx = UasContext {
            config: &self.config,
            adapter: &self.name,
            now: Timestamp::now(),
            own_hosts: &self.own_hosts,
        };
        match handle_request(&req, &ctx) {
            UasDecision::Ignore => {}
            UasDecision::Answer(a) => self.respond(tx, &req, &a),
            UasDecision::Deliver(message) => {
                let (reply, answer) = tokio::sync::oneshot::channel();
                match self.inbound.try_send(Inbound::Message { message, reply }) {
                    Ok(()) => {
                        self.waiting.insert(tx, bytes.clone());
                        let internal = self.internal.clone();
                        tokio::spawn(async move {
                            let outcome = answer.await.unwrap_or_else(|_| {
                                DeliveryOutcome::Failed(Failure::new(
                                    FailureKind::Internal,
                                    "the gateway is stopping",
                                ))
                            });
                            let _ = internal.send(Internal::HubAnswer { tx, outcome }).await;
                        });
                    }
                    Err(_) => {
                        let busy = Answer::new(503, "Service Unavailable: the gateway is busy")
                            .with("Retry-After", "1");
                        self.respond(tx, &req, &busy);
                    }
                }
            }
        }
    }

    /// RFC 3261 §22.1: senders outside `trusted` authenticate when the
    /// config says so; the answer to send instead, if any.
    fn challenge(&self, req: &codec::Message<'_>) -> Option<Answer> {
        let server = self.digest.as_ref()?;
        if req.method() != Some("MESSAGE") {
            return None;
        }
        let peer = self.current_peer?;
        if self
            .config
            .trusted
            .iter()
            .any(|t| t.to_canonical() == peer.ip().to_canonical())
        {
            return None;
        }
        let now = SystemTime::now();
        let request = DigestRequest {
            method: "MESSAGE",
            uri: req.request_uri().unwrap_or_default(),
            body: req.body(),
        };
        let challenges = server
            .authenticate(
                now,
                &request,
                req.authorization(),
                &Account::lookup(&self.config.accounts),
                |_| true,
                |other| tracing::debug!(adapter = %self.name, "digest refused from {peer}: {other:?}"),
            )
            .err()?;
        // RFC 8760 §2.4: one challenge per algorithm, the preferred first.
        let mut answer = Answer::new(401, "Unauthorized");
        for c in challenges {
            answer = answer.with("WWW-Authenticate", c.to_header_value());
        }
        Some(answer)
    }

    fn respond(&mut self, tx: TxId, req: &codec::Message<'_>, answer: &Answer) {
        let Some(r) = answer.build(req, &self.to_tag) else {
            return;
        };
        metrics::counter!(
            "cpimgate_sip_requests_answered_total",
            "adapter" => self.name.clone(),
            "method" => method_label(req.method()),
            "status" => answer.code.to_string(),
        )
        .increment(1);
        let has_tag = req.to().ok().flatten().and_then(|t| t.tag()).is_some();
        let response = OutgoingResponse {
            status: answer.code,
            to_tag: (!has_tag).then(|| self.to_tag.clone()),
            bytes: Bytes::from(r.to_bytes()),
        };
        if let Err(e) = self.layer.respond(Instant::now(), tx, response) {
            tracing::debug!(adapter = %self.name, "cannot answer {tx}: {e}");
        }
    }

    fn handle_internal(&mut self, internal: Internal) {
        match internal {
            Internal::HubAnswer { tx, outcome } => {
                let Some(bytes) = self.waiting.remove(&tx) else {
                    return;
                };
                if let Ok(req) = codec::parse(&bytes) {
                    self.respond(tx, &req, &answer_for_outcome(&outcome));
                }
            }
            Internal::SendFailed { tx } => {
                self.layer.handle_transport_error(Instant::now(), tx);
            }
            Internal::SentOn { tx, conn } => {
                if let Some(out) = self.sending.get_mut(&tx) {
                    out.conn = Some(conn);
                    if self.closed.contains(&conn) {
                        self.layer.handle_transport_error(Instant::now(), tx);
                    }
                }
            }
            Internal::Resolved { id, result } => {
                if let Some(out) = self.resolving.remove(&id) {
                    self.resolved(out, result);
                }
            }
            Internal::RegistrarResolved { binding, result } => {
                if let Some(remove) = self.register_lookups.remove(&binding) {
                    self.register_resolved(binding, remove, result);
                }
            }
        }
    }

    fn shutdown(&mut self) {
        let gone = || {
            DeliveryOutcome::Failed(Failure::new(
                FailureKind::Unreachable,
                "the SIP adapter is stopping",
            ))
        };
        for (_, out) in self.sending.drain() {
            let _ = out.reply.send(gone());
        }
        for (_, out) in self.resolving.drain() {
            let _ = out.reply.send(gone());
        }
        for out in self.queues.drain() {
            let _ = out.reply.send(gone());
        }
        self.transport.shutdown();
    }
}
