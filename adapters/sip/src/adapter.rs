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
//! Ordering (the port's contract): a transient failure (timeout, transport
//! error, 408/480/503) of the message pending for a Request-URI fails every
//! message queued behind it the same way, and later messages to that URI
//! are refused as transient until the hub sends the failed one again; so
//! the hub's retries keep the order.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use cpimgate_mappings::{Alias, MappingStore};
use cpimgate_model::address::Address;
use cpimgate_model::message::World;
use cpimgate_model::port::{
    Adapter, AdapterContext, AdapterError, AdapterStatus, BoxFuture, DeliveryOutcome, Failure,
    FailureKind, Inbound, Outbound, Reply,
};
use cpimgate_model::time::Timestamp;
use cpimgate_model::{Message, MessageId};
use tokio::sync::mpsc;

use crate::codec::{self, HeaderName};
use crate::config::SipConfig;
use crate::digest::{DigestClient, DigestRequest, DigestServer, RandomCnonce, Verdict};
use crate::message::{
    Answer, DestinationQueues, MergeGuard, RequestParts, UasContext, UasDecision,
    answer_for_outcome, build_request, from_value, handle_request, outcome_of,
};
use crate::transaction::{
    self, Event, IncomingRequest, Method, OutgoingRequest, OutgoingResponse, Output,
    RequestSummary, ResponseSummary, TransactionLayer, TxId,
};
use crate::transport::{
    ConnId, Destination, ListenerConfig, ResponseTarget, Source, TlsConfig, Transport,
    TransportConfig, TransportEvent, TransportKind, request_transport, response_destination,
};

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
    /// The connection its request went out on (TCP, TLS).
    conn: Option<ConnId>,
}

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
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver").field("name", &self.name).finish()
    }
}

fn random_token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn transport_config(config: &SipConfig) -> TransportConfig {
    let mut listeners = Vec::new();
    for (kind, addrs) in [
        (TransportKind::Udp, &config.udp),
        (TransportKind::Tcp, &config.tcp),
        (TransportKind::Tls, &config.tls),
    ] {
        listeners.extend(addrs.iter().map(|a| ListenerConfig::new(kind, *a)));
    }
    let tls = (!config.tls.is_empty() || config.tls_ca.is_some() || config.tls_cert.is_some())
        .then(|| TlsConfig {
            cert_chain: config.tls_cert.clone(),
            private_key: config.tls_key.clone(),
            ca_file: config.tls_ca.clone(),
            use_system_roots: true,
            require_client_cert: config.tls_require_client_cert,
        });
    let mut limits = codec::Limits::default();
    // Room for the headers around the largest body taken, so that an
    // oversize body is answered 413 rather than cut by the transport.
    limits.max_message = limits.max_message.max(config.max_message_size + 16 * 1024);
    TransportConfig {
        listeners,
        tls,
        limits,
        ..TransportConfig::default()
    }
}

async fn run(
    config: SipConfig,
    mappings: MappingStore,
    mut ctx: AdapterContext,
) -> Result<(), AdapterError> {
    config.validate().map_err(AdapterError::Config)?;
    let (transport, mut events) = Transport::bind(transport_config(&config))
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
        poisoned: HashMap::new(),
        closed: std::collections::VecDeque::new(),
        current_peer: None,
        to_tag: random_token(),
        digest,
        client,
        sent_by,
        config,
    };
    let _ = ctx
        .inbound
        .send(Inbound::Status(AdapterStatus::Connected))
        .await;
    loop {
        let deadline = d.layer.poll_timeout();
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
            () = sleep => d.layer.handle_timeout(Instant::now()),
        }
        d.drain();
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
            TransportEvent::Malformed { source, error, .. } => {
                // Without a readable Via there is nowhere to answer
                // (RFC 3261 §18.2.2); the stream closes by itself.
                tracing::info!(adapter = %self.name, "malformed SIP from {}: {error}", source.peer);
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
        let Ok(m) = codec::parse(&bytes) else {
            tracing::info!(adapter = %self.name, "unreadable SIP message from {}", source.peer);
            return;
        };
        if let Some(status) = m.status() {
            // RFC 3261 §18.1.2 / §17.1.3: match by the top Via's branch.
            let Ok(Some(via)) = m.top_via() else {
                return;
            };
            let Ok(Some(cseq)) = m.cseq() else {
                return;
            };
            let summary = ResponseSummary {
                status,
                branch: via.branch().map(str::to_owned),
                cseq_method: Method::from(cseq.method),
                to_tag: m
                    .to()
                    .ok()
                    .flatten()
                    .and_then(|t| t.tag())
                    .map(str::to_owned),
            };
            self.layer.handle_response(now, summary, bytes.clone());
            return;
        }
        let Ok(Some(via)) = m.top_via() else {
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

    fn handle_event(&mut self, event: Event<Destination>) {
        match event {
            Event::Request { tx, bytes, .. } => self.handle_request(tx, bytes),
            Event::Response {
                tx,
                response,
                bytes,
            } if response.status >= 200 => self.handle_final(tx, &response, &bytes),
            Event::Timeout { tx, .. } => {
                if let Some(out) = self.sending.remove(&tx) {
                    let f = Failure::new(
                        FailureKind::Timeout,
                        format!("no final response from {} (timer F)", out.uri),
                    );
                    self.fail_transient(out, f);
                }
            }
            Event::TransportError { tx } => {
                if let Some(out) = self.sending.remove(&tx) {
                    let f = Failure::new(
                        FailureKind::Unreachable,
                        format!("cannot send to {}", out.uri),
                    );
                    self.fail_transient(out, f);
                }
            }
            Event::Terminated { tx } => {
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
        let accounts = &self.config.accounts;
        let lookup = |user: &str, _realm: &str| {
            accounts
                .iter()
                .find(|a| a.user == user)
                .map(|a| a.password.clone())
        };
        let mut stale = false;
        for value in req.authorization() {
            match server.verify_header(now, &request, value, &lookup) {
                Verdict::Authenticated { .. } => return None,
                Verdict::Stale => stale = true,
                other => {
                    tracing::debug!(adapter = %self.name, "digest refused from {peer}: {other:?}");
                }
            }
        }
        // RFC 8760 §2.4: one challenge per algorithm, the preferred first.
        let mut answer = Answer::new(401, "Unauthorized");
        for c in server.challenges(now, stale) {
            answer = answer.with("WWW-Authenticate", c.to_header_value());
        }
        Some(answer)
    }

    fn respond(&mut self, tx: TxId, req: &codec::Message<'_>, answer: &Answer) {
        let Some(r) = answer.build(req, &self.to_tag) else {
            return;
        };
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
        }
    }

    fn handle_outbound(&mut self, out: Outbound) {
        let (message, reply) = match out {
            Outbound::Deliver { message, reply } => (message, reply),
            // A room event or a report has no place in pager mode (a
            // report after 202 has nobody to go to, RFC 3428 §7).
            _ => return,
        };
        if message.is_expired(Timestamp::now()) {
            let _ = reply.send(DeliveryOutcome::Failed(Failure::new(
                FailureKind::Expired,
                "expired before it could be sent",
            )));
            return;
        }
        let uri = match self.request_uri(&message) {
            Ok(u) => u,
            Err(f) => {
                let _ = reply.send(DeliveryOutcome::Failed(f));
                return;
            }
        };
        if let Some((id, until)) = self.poisoned.get(&uri) {
            if *id == message.id || Instant::now() >= *until {
                self.poisoned.remove(&uri);
            } else {
                let _ = reply.send(DeliveryOutcome::Failed(Failure::new(
                    FailureKind::Unreachable,
                    format!("an earlier message to {uri} waits to be sent again"),
                )));
                return;
            }
        }
        let out = Outgoing {
            message,
            reply,
            uri: uri.clone(),
            call_id: format!("{}@{}", random_token(), self.config.primary_domain()),
            from_tag: random_token(),
            cseq: 1,
            authorized: false,
            conn: None,
        };
        if let Some(out) = self.queues.push(&uri, out) {
            self.start(out, None);
        }
    }

    /// The Request-URI of a message: its SIP recipient, or the SIP address
    /// of record the mapping table gives an `im:` one (RFC 3428 §5).
    fn request_uri(&self, message: &Message) -> Result<String, Failure> {
        let to = message
            .to
            .first()
            .ok_or_else(|| Failure::new(FailureKind::NotFound, "no recipient"))?;
        match &to.address {
            Address::Sip(u) => Ok(u.to_string()),
            Address::Im(u) => {
                let alias = Alias::Im(u.to_string());
                self.mappings
                    .find(&alias)
                    .and_then(|id| {
                        id.aliases.iter().find_map(|a| match a {
                            Alias::Sip(s) => Some(s.clone()),
                            _ => None,
                        })
                    })
                    .ok_or_else(|| {
                        Failure::new(FailureKind::NotFound, format!("{u} has no SIP address"))
                    })
            }
            other => Err(Failure::new(
                FailureKind::NotFound,
                format!("{other} is not a SIP address"),
            )),
        }
    }

    /// Sends `out` in a new client transaction, with `authorization` when
    /// answering a challenge.
    fn start(&mut self, out: Outgoing, authorization: Option<(&'static str, String)>) {
        match self.try_start(&out, authorization) {
            Ok(tx) => {
                self.sending.insert(tx, out);
            }
            Err(f) => {
                let uri = out.uri.clone();
                let _ = out.reply.send(DeliveryOutcome::Failed(f));
                if let Some(next) = self.queues.finish(&uri) {
                    self.start(next, None);
                }
            }
        }
    }

    fn try_start(
        &mut self,
        out: &Outgoing,
        authorization: Option<(&'static str, String)>,
    ) -> Result<TxId, Failure> {
        let hop = match &self.config.outbound_proxy {
            Some(p) => p.as_str(),
            None => out.uri.as_str(),
        };
        let (mut kind, addr, host) = next_hop(hop)?;
        let route = self
            .config
            .outbound_proxy
            .as_ref()
            .map(|p| format!("<{};lr>", p.split(';').next().unwrap_or(p)));
        let from = from_value(&out.message, self.config.primary_domain())?;
        let now = Timestamp::now();
        let mut bytes = Vec::new();
        let mut branch = String::new();
        // RFC 3428 §8 with RFC 3261 §18.1.1: a MESSAGE over 1300 bytes
        // leaves UDP for TCP; the Via names the transport it takes.
        for _ in 0..2 {
            branch = format!("{}{}", transaction::MAGIC_COOKIE, random_token());
            let sent_by = self
                .sent_by
                .get(&kind)
                .or_else(|| self.sent_by.values().next())
                .cloned()
                .unwrap_or_else(|| "127.0.0.1".to_owned());
            let parts = RequestParts {
                uri: &out.uri,
                from: &from,
                from_tag: &out.from_tag,
                call_id: &out.call_id,
                cseq: out.cseq,
                transport: kind,
                sent_by: &sent_by,
                branch: &branch,
                route: route.as_deref(),
                authorization: authorization.as_ref().map(|(n, v)| (*n, v.as_str())),
                now,
            };
            let request = build_request(&out.message, &parts).map_err(|e| {
                Failure::new(
                    FailureKind::Rejected,
                    format!("cannot write the MESSAGE: {e}"),
                )
            })?;
            bytes = request.to_bytes();
            let choice = request_transport(kind, bytes.len(), None);
            if !choice.switched {
                break;
            }
            kind = choice.transport;
        }
        let mut dest = Destination::new(kind, addr);
        if kind == TransportKind::Tls {
            dest = dest.with_tls_name(host);
        }
        self.layer
            .send_request(
                Instant::now(),
                OutgoingRequest {
                    method: Method::Message,
                    branch,
                    bytes: Bytes::from(bytes),
                    dest,
                    reliable: kind.is_reliable(),
                },
            )
            .map_err(|e| Failure::new(FailureKind::Internal, e.to_string()))
    }

    fn handle_final(&mut self, tx: TxId, response: &ResponseSummary, bytes: &Bytes) {
        let Some(mut out) = self.sending.remove(&tx) else {
            return;
        };
        let parsed = codec::parse(bytes).ok();
        let reason = parsed
            .as_ref()
            .and_then(codec::Message::reason)
            .unwrap_or_default()
            .to_owned();
        // RFC 3261 §22.2, §22.3: answer one challenge with the configured
        // credentials; a second one is a refusal.
        if matches!(response.status, 401 | 407) && !out.authorized {
            if let (Some(p), Some(client)) = (parsed.as_ref(), self.client.as_mut()) {
                let (challenge_header, answer_header) = if response.status == 401 {
                    (HeaderName::WwwAuthenticate, "Authorization")
                } else {
                    (HeaderName::ProxyAuthenticate, "Proxy-Authorization")
                };
                let realm_ok = |r: &str| {
                    self.config
                        .credentials
                        .as_ref()
                        .and_then(|c| c.realm.as_deref())
                        .is_none_or(|want| want == r)
                };
                let challenge = DigestClient::choose_header_values(
                    p.headers_named(challenge_header).map(codec::Header::value),
                )
                .filter(|c| realm_ok(&c.realm));
                let credentials = challenge.and_then(|c| {
                    let body = match &out.message.cpim {
                        Some(c) => c.0.clone(),
                        None => out.message.body.0.clone(),
                    };
                    let request = DigestRequest {
                        method: "MESSAGE",
                        uri: &out.uri,
                        body: &body,
                    };
                    client
                        .authorize(&c, &request, &mut RandomCnonce)
                        .ok()
                        .and_then(|cr| cr.to_header_value().ok())
                });
                if let Some(value) = credentials {
                    out.authorized = true;
                    out.cseq += 1;
                    out.conn = None;
                    self.start(out, Some((answer_header, value)));
                    return;
                }
            }
        }
        let outcome = outcome_of(response.status, &reason);
        match outcome {
            DeliveryOutcome::Failed(f) if f.is_transient() => self.fail_transient(out, f),
            outcome => {
                let uri = out.uri.clone();
                let _ = out.reply.send(outcome);
                if let Some(next) = self.queues.finish(&uri) {
                    self.start(next, None);
                }
            }
        }
    }

    /// A transient failure of the pending message for a URI: it and every
    /// message behind it fail the same way, and the URI waits for the
    /// hub's retry of the first (the port's ordering contract).
    fn fail_transient(&mut self, out: Outgoing, failure: Failure) {
        for behind in self.queues.fail_all(&out.uri) {
            let _ = behind.reply.send(DeliveryOutcome::Failed(failure.clone()));
        }
        self.poisoned.insert(
            out.uri.clone(),
            (out.message.id.clone(), Instant::now() + POISON_FOR),
        );
        let _ = out.reply.send(DeliveryOutcome::Failed(failure));
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
        for out in self.queues.drain() {
            let _ = out.reply.send(gone());
        }
        self.transport.shutdown();
    }
}

/// Where the responses of a request go (RFC 3261 §18.2.2), as a
/// transport destination; the packet's source when the Via names a host
/// to resolve.
fn reply_destination(via: &codec::Via<'_>, source: &Source) -> Destination {
    match response_destination(via, Some(source)) {
        Ok(d) => match d.target {
            ResponseTarget::Addr(addr) => Destination {
                transport: d.transport,
                addr,
                conn: d.conn,
                local: Some(source.local),
                tls_name: None,
            },
            _ => Destination::reply_to(source),
        },
        Err(_) => Destination::reply_to(source),
    }
}

/// What the transaction layer needs of a request (its matching keys).
fn request_summary(m: &codec::Message<'_>) -> Option<RequestSummary> {
    let via = m.top_via().ok()??;
    let sent_by = match via.port() {
        Some(p) => format!("{}:{p}", via.host()),
        None => via.host().to_owned(),
    };
    let top_via = m.header(HeaderName::Via)?.value();
    let top_via = codec::split_list(top_via).next().unwrap_or(top_via);
    Some(RequestSummary {
        method: Method::from(m.method()?),
        request_uri: m.request_uri()?.to_owned(),
        branch: via.branch().map(str::to_owned),
        sent_by,
        top_via: top_via.to_owned(),
        call_id: m.call_id().ok()??.to_owned(),
        from_tag: m.from().ok()??.tag().map(str::to_owned),
        to_tag: m.to().ok()??.tag().map(str::to_owned),
        cseq: m.cseq().ok()??.seq,
    })
}

/// The transport, address and host of the next hop a SIP URI names
/// (RFC 3263 §4 without DNS: a literal IP address or `localhost`, the
/// `transport` parameter, `sips:` for TLS, the transport's default port).
fn next_hop(uri: &str) -> Result<(TransportKind, SocketAddr, String), Failure> {
    let bad = |why: String| Failure::new(FailureKind::NotFound, why);
    let Ok(Address::Sip(u)) = uri.parse::<Address>() else {
        return Err(bad(format!("{uri} is not a SIP URI")));
    };
    let kind = if u.is_secure() {
        TransportKind::Tls
    } else {
        match u.param("transport").flatten() {
            Some(t) if t.eq_ignore_ascii_case("tcp") => TransportKind::Tcp,
            Some(t) if t.eq_ignore_ascii_case("tls") => TransportKind::Tls,
            Some(t) if t.eq_ignore_ascii_case("udp") => TransportKind::Udp,
            Some(t) => return Err(bad(format!("{uri}: transport {t} is not supported"))),
            None => TransportKind::Udp,
        }
    };
    let host = u.host().to_string();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let ip = if bare.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        bare.parse::<IpAddr>().map_err(|_| {
            bad(format!(
                "{uri}: {host} is not an IP address (configure outbound_proxy to reach names)"
            ))
        })?
    };
    let port = u.port().unwrap_or(kind.default_port());
    Ok((kind, SocketAddr::new(ip, port), host))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn next_hops() {
        let (k, a, _) = next_hop("sip:bob@127.0.0.1:5070;transport=tcp").unwrap();
        assert_eq!(
            (k, a),
            (TransportKind::Tcp, "127.0.0.1:5070".parse().unwrap())
        );
        let (k, a, _) = next_hop("sip:bob@localhost").unwrap();
        assert_eq!(
            (k, a),
            (TransportKind::Udp, "127.0.0.1:5060".parse().unwrap())
        );
        let (k, a, h) = next_hop("sips:bob@[::1]").unwrap();
        assert_eq!((k, a), (TransportKind::Tls, "[::1]:5061".parse().unwrap()));
        assert_eq!(h, "[::1]");
        assert!(next_hop("sip:bob@example.com").is_err());
        assert!(next_hop("im:bob@example.com").is_err());
    }
}
