//! The MSRP adapter: the gateway as the conference focus and MSRP switch
//! of its chat rooms (RFC 7701), joined to the hub.
//!
//! One task owns everything but the sockets: the SIP transaction layer of
//! `cpimgate-sip` (INVITE, ACK, BYE on the rooms' SIP URIs), the dialogs,
//! the rooms of [`crate::room`] and the MSRP sessions. Sockets live in
//! small tasks: the SIP transport's, and one per MSRP connection that
//! reads and writes ([`conn`]). Every input comes to the run loop as an event;
//! after each one the transaction layer's outputs are drained.
//!
//! ```text
//!  participant --INVITE (SDP offer)--> sip.rs: room.join, 200 (SDP answer, isfocus)
//!  participant ==TCP==> conn.rs --frames--> switch.rs: SEND, NICKNAME
//!       SEND (message/cpim, To the room)  -> copies to the other sessions
//!                                          -> hub (bridged rooms); 200 once stored
//!       SEND (To one participant)         -> that participant's sessions
//!  hub --Deliver (room message)--> switch.rs -> a SEND to every session
//!  hub --RoomEvent (join, leave, nick)--> room: members of the bridged worlds
//! ```
//!
//! MSRP runs over TCP and, with `msrps`, over TLS (an offer of
//! `TCP/TLS/MSRP` gets the TLS listener's `msrps:` path).
//!
//! A chunked message is copied chunk by chunk once its first chunk holds
//! the CPIM headers (RFC 7701 §6.1), to the recipients routed then; the
//! hub gets it whole. The copies ask for failure responses only
//! (`Failure-Report: partial`, RFC 4975 §7.1.1: no timer); the
//! keep-alives of `keepalive_ms` ask for a response and time out as 408
//! (`keepalive.rs`). A message larger than a participant's `a=max-size`
//! (RFC 4975 §8.6; for a chunked one, the total of its first chunk's
//! Byte-Range) is not copied to it, and the log says so. A chunked message ends with its last chunk, its
//! abort, a 413, its session, or the chunk reception timer of §6.1
//! (`chunk_timeout_ms`). The requests within a dialog go to where its INVITE came
//! from (the remote target is not resolved).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cpimgate_mappings::MappingStore;
use cpimgate_model::address::Address;
use cpimgate_model::event::{Participant as Member, RoomEvent, RoomEventKind, RoomRef};
use cpimgate_model::message::{Origin, World};
use cpimgate_model::port::{
    Adapter, AdapterContext, AdapterError, AdapterStatus, BoxFuture, DeliveryOutcome, Inbound,
};
use cpimgate_model::{Message, MessageId};
use cpimgate_sip::dialog::{Dialog, Unacked2xx};
use cpimgate_sip::transaction::{self, TransactionLayer};
use cpimgate_sip::transport::{
    Destination, ListenerConfig, TlsConfig, Transport, TransportConfig, TransportEvent,
    TransportKind, server_config,
};
use tokio::sync::mpsc;

use crate::codec::{self, Chunk, Limits, Reassembler, ReassemblyLimits};
use crate::config::MsrpConfig;
use crate::room::{Room, RosterChange, SessionId};

mod conn;
mod events;
mod keepalive;
mod remote;
mod sip;
mod switch;

/// The MSRP adapter; see the [module docs](self).
#[derive(Debug)]
pub struct MsrpAdapter {
    config: MsrpConfig,
    mappings: MappingStore,
}

impl MsrpAdapter {
    /// An adapter with `config`; nicknames are reserved in `mappings`
    /// (one nickname space per bridge).
    pub fn new(config: MsrpConfig, mappings: MappingStore) -> MsrpAdapter {
        MsrpAdapter { config, mappings }
    }
}

impl Adapter for MsrpAdapter {
    fn world(&self) -> World {
        World::Msrp
    }

    fn run(self: Box<Self>, ctx: AdapterContext) -> BoxFuture<'static, Result<(), AdapterError>> {
        Box::pin(run(self.config, self.mappings, ctx))
    }
}

/// What the small tasks tell the driver.
#[derive(Debug)]
pub(crate) enum Internal {
    /// A participant connected to the MSRP listener.
    Accepted {
        conn: u64,
        writer: conn::Writer,
        peer: std::net::SocketAddr,
    },
    /// One MSRP message, framed.
    Frame { conn: u64, frame: Bytes },
    /// The head of a chunk larger than `max_message_size`, whose body
    /// is being skipped (answered 413, RFC 4975 §10.5).
    Oversized { conn: u64, head: Bytes },
    /// A connection ended.
    Closed { conn: u64, why: String },
    /// The hub's verdict on a message a participant sent; `answer` is the
    /// SEND to answer (its connection and bytes), if one waits.
    HubAnswer {
        answer: Option<(u64, Bytes)>,
        private: bool,
        outcome: DeliveryOutcome,
    },
    /// A nickname reservation in the mapping table ended.
    Nick {
        session: String,
        conn: u64,
        request: Bytes,
        nick: String,
        taken: Option<String>,
    },
    /// The next hop of a remote room was looked up.
    RemoteHop {
        room: usize,
        addr: Option<std::net::SocketAddr>,
    },
}

/// One MSRP session: a participant's place in a room.
#[derive(Debug)]
struct Session {
    room: String,
    id: SessionId,
    /// This side's URI (the `a=path` of the answer).
    own_path: String,
    /// The participant's path, from its offer.
    remote_path: Vec<String>,
    conn: Option<u64>,
    /// Messages for the participant written before its connection came.
    waiting: Vec<Bytes>,
    /// Chunked messages coming in: made at the first chunk, dropped when
    /// none is left (most sessions send whole messages only).
    chunks: Option<Box<Chunks>>,
    call: CallKey,
    welcomed: bool,
    /// Until when the participant may connect (RFC 4975 §5.4); after it,
    /// a session with no connection ends with a BYE.
    connect_by: Instant,
    /// When the participant last sent anything on the session.
    heard: Instant,
    /// The keep-alive waiting for its response: its transaction id and
    /// when it was sent.
    keepalive: Option<(String, Instant)>,
    /// The largest message the participant takes (its `a=max-size`, RFC
    /// 4975 §8.6): larger ones are not copied to it.
    max_size: Option<u64>,
}

/// What a session holds while chunked messages come in.
#[derive(Debug)]
struct Chunks {
    reassembler: Reassembler,
    /// Chunked messages being forwarded as they come, by Message-ID.
    forwards: HashMap<String, Forward>,
    /// When each message coming in chunks is taken as aborted unless
    /// another chunk comes (RFC 7701 §6.1), by Message-ID.
    deadlines: HashMap<String, Instant>,
}

impl Session {
    /// The chunked messages' state, made if there is none.
    fn chunks(&mut self, config: &MsrpConfig) -> &mut Chunks {
        self.chunks.get_or_insert_with(|| {
            Box::new(Chunks {
                reassembler: reassembler(config),
                forwards: HashMap::new(),
                deadlines: HashMap::new(),
            })
        })
    }

    /// The forward of a chunked message.
    fn forward(&self, message_id: &str) -> Option<&Forward> {
        self.chunks.as_ref()?.forwards.get(message_id)
    }

    /// Drops the chunked messages' state when nothing is in it.
    fn tidy(&mut self) {
        if self
            .chunks
            .as_ref()
            .is_some_and(|c| c.forwards.is_empty() && c.reassembler.partial_count() == 0)
        {
            self.chunks = None;
        }
    }
}

/// A chunked message forwarded chunk by chunk (RFC 7701 §6.1).
#[derive(Debug, Clone)]
pub(crate) struct Forward {
    /// The sessions it goes to, each with the Message-ID of its copy.
    targets: Vec<(String, String)>,
    /// The status every chunk of a refused message gets.
    refused: Option<u16>,
}

/// A dialog by Call-ID and local tag.
type CallKey = (String, String);

/// One INVITE dialog with a participant.
#[derive(Debug)]
struct Call {
    dialog: Dialog,
    session: String,
    /// Where its requests and responses go: where the INVITE came from.
    peer: Destination,
    /// The 2xx until its ACK (RFC 3261 §13.3.1.4).
    unacked: Option<(Unacked2xx, Bytes)>,
    /// The INVITE's server transaction, until the ACK ends it.
    invite_tx: Option<cpimgate_sip::transaction::TxId>,
}

struct Driver {
    config: MsrpConfig,
    name: String,
    mappings: MappingStore,
    host: String,
    msrp_port: u16,
    /// The MSRP over TLS listener's port, if there is one.
    msrps_port: Option<u16>,
    sip: Arc<Transport>,
    sip_addr: std::net::SocketAddr,
    sip_transport: TransportKind,
    layer: TransactionLayer<Destination>,
    rooms: HashMap<String, Room>,
    /// Boxed, like `calls`: a table of 1,000 has room for 2,048, which
    /// inline would be most of the sessions' memory.
    sessions: HashMap<String, Box<Session>>,
    calls: HashMap<CallKey, Box<Call>>,
    conns: HashMap<u64, conn::Writer>,
    /// Subscriptions to the rooms' conference events, by dialog.
    watchers: HashMap<CallKey, events::Watcher>,
    /// NOTIFY client transactions, with their subscription.
    notify_txs: HashMap<cpimgate_sip::transaction::TxId, CallKey>,
    /// The roster changes of each room that some watcher has not had
    /// yet (RFC 4575 §3.9: held until its interval has passed).
    room_changes: HashMap<String, events::Log>,
    internal: mpsc::Sender<Internal>,
    inbound: mpsc::Sender<Inbound>,
    t1: Duration,
    /// Challenges INVITEs when `authenticate` is on (RFC 3261 §22).
    digest: Option<cpimgate_sip::digest::DigestServer>,
    /// The rooms elsewhere the gateway takes part in.
    remotes: Vec<remote::Remote>,
    /// TLS toward the rooms elsewhere joined over TLS (`tls = true`).
    remote_tls: Option<tokio_rustls::TlsConnector>,
    /// Their client transactions.
    remote_txs: HashMap<cpimgate_sip::transaction::TxId, (usize, remote::TxKind)>,
    /// The INVITEs of their transactions, until a non-2xx is ACKed.
    remote_invites: HashMap<cpimgate_sip::transaction::TxId, Bytes>,
    /// When the sessions are next looked at for keep-alives and their
    /// responses (`keepalive_ms`).
    keepalive_at: Option<Instant>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver").field("name", &self.name).finish()
    }
}

/// A random token for tags, session ids and transaction ids (64 bits or
/// more of randomness, RFC 4975 §7.1, §14.1).
pub(crate) fn token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

async fn run(
    config: MsrpConfig,
    mappings: MappingStore,
    mut ctx: AdapterContext,
) -> Result<(), AdapterError> {
    config.validate().map_err(AdapterError::Config)?;
    let mut listeners = Vec::new();
    for (kind, addrs) in [
        (TransportKind::Udp, &config.sip_udp),
        (TransportKind::Tcp, &config.sip_tcp),
    ] {
        listeners.extend(addrs.iter().map(|a| ListenerConfig::new(kind, *a)));
    }
    let (transport, mut sip_events) = Transport::bind(TransportConfig {
        listeners,
        max_connections: config.max_connections,
        max_connections_per_ip: config.max_connections_per_ip,
        idle_timeout: Duration::from_millis(config.sip_idle_timeout_ms),
        message_timeout: Duration::from_millis(config.sip_message_timeout_ms),
        write_timeout: Duration::from_millis(config.sip_write_timeout_ms),
        ..TransportConfig::default()
    })
    .await
    .map_err(|e| AdapterError::Config(format!("SIP listen: {e}")))?;
    let first = transport
        .listeners()
        .first()
        .map(|l| (l.transport, l.addr))
        .ok_or_else(|| AdapterError::Config("no SIP listener".into()))?;
    let msrp = tokio::net::TcpListener::bind(config.msrp)
        .await
        .map_err(|e| AdapterError::Config(format!("MSRP listen on {}: {e}", config.msrp)))?;
    let msrp_port = msrp
        .local_addr()
        .map_err(|e| AdapterError::Config(e.to_string()))?
        .port();
    let host = config.host();
    tracing::info!(
        adapter = %ctx.name,
        "chat rooms of {}: SIP on {} {}, MSRP on {host}:{msrp_port}",
        config.domain, first.0, first.1
    );
    let (internal, mut internal_rx) = mpsc::channel(4096);
    let limits = Limits {
        max_chunk: config.max_message_size,
        ..Limits::default()
    };
    let bounds = conn::Bounds {
        first_within: Some(Duration::from_millis(config.connect_within_ms)),
        message: Duration::from_millis(config.message_timeout_ms),
        write: Duration::from_millis(config.write_timeout_ms),
        queue: config.write_queue,
    };
    let admission = || {
        cpimgate_sip::transport::Admission::new(
            config.max_connections,
            config.max_connections_per_ip,
        )
    };
    tokio::spawn(conn::accept_loop(
        msrp,
        None,
        internal.clone(),
        limits,
        bounds,
        admission(),
    ));
    let msrps_port = match config.msrps {
        Some(addr) => {
            let tls = TlsConfig {
                cert_chain: config.tls_cert.clone(),
                private_key: config.tls_key.clone(),
                ca_file: config.tls_ca.clone(),
                use_system_roots: false,
                require_client_cert: config.tls_require_client_cert,
            };
            let acceptor = server_config(&tls)
                .map(tokio_rustls::TlsAcceptor::from)
                .map_err(|e| AdapterError::Config(format!("msrps: {e}")))?;
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| AdapterError::Config(format!("MSRP TLS listen on {addr}: {e}")))?;
            let port = listener
                .local_addr()
                .map_err(|e| AdapterError::Config(e.to_string()))?
                .port();
            tokio::spawn(conn::accept_loop(
                listener,
                Some(acceptor),
                internal.clone(),
                limits,
                bounds,
                admission(),
            ));
            tracing::info!(adapter = %ctx.name, "MSRP over TLS on {host}:{port}");
            Some(port)
        }
        None => None,
    };
    // RFC 4975 §14.1: the focus's certificate, checked for its path's host.
    let remote_tls = if config.remote_rooms.iter().any(|r| r.tls) {
        let tls = TlsConfig {
            cert_chain: config.tls_cert.clone(),
            private_key: config.tls_key.clone(),
            ca_file: config.tls_ca.clone(),
            use_system_roots: true,
            require_client_cert: false,
        };
        let client = cpimgate_sip::transport::client_config(&tls)
            .map_err(|e| AdapterError::Config(format!("remote_rooms, TLS: {e}")))?;
        Some(tokio_rustls::TlsConnector::from(client))
    } else {
        None
    };
    let t1 = Duration::from_millis(config.t1_ms);
    let mut d = Driver {
        name: ctx.name.clone(),
        mappings,
        host,
        msrp_port,
        msrps_port,
        sip: Arc::new(transport),
        sip_addr: first.1,
        sip_transport: first.0,
        layer: TransactionLayer::new(transaction::Config {
            t1,
            ..transaction::Config::default()
        }),
        rooms: HashMap::new(),
        sessions: HashMap::new(),
        calls: HashMap::new(),
        conns: HashMap::new(),
        watchers: HashMap::new(),
        notify_txs: HashMap::new(),
        room_changes: HashMap::new(),
        internal,
        inbound: ctx.inbound.clone(),
        t1,
        digest: config.authenticate.then(|| {
            let secret: [u8; 32] = rand::random();
            cpimgate_sip::digest::DigestServer::new(config.domain.clone(), secret.to_vec())
        }),
        config,
        remotes: Vec::new(),
        remote_tls,
        remote_txs: HashMap::new(),
        remote_invites: HashMap::new(),
        keepalive_at: None,
    };
    d.keepalive_at = d.keepalive_tick().map(|t| Instant::now() + t);
    d.remote_start();
    for r in d.config.rooms.clone() {
        if let Some(uri) = d.config.room_uri(&r.name) {
            d.rooms
                .insert(r.name.to_ascii_lowercase(), Room::new(uri, r.policy()));
        }
    }
    let _ = ctx
        .inbound
        .send(Inbound::Status(AdapterStatus::Connected))
        .await;
    loop {
        let deadline = d.next_deadline();
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = ctx.shutdown.changed() => break,
            event = sip_events.recv() => match event {
                Some(TransportEvent::Message { bytes, source }) => d.handle_sip(bytes, &source),
                Some(_) => {}
                None => break,
            },
            out = ctx.outbound.recv() => match out {
                Some(o) => d.handle_outbound(o),
                None => break,
            },
            Some(i) = internal_rx.recv() => d.handle_internal(i),
            () = sleep => d.handle_timeout(Instant::now()),
        }
        d.drain();
    }
    d.shutdown();
    // Give the BYEs a moment to leave.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = ctx
        .inbound
        .send(Inbound::Status(AdapterStatus::Disconnected))
        .await;
    Ok(())
}

impl Driver {
    fn next_deadline(&mut self) -> Option<Instant> {
        let calls = self
            .calls
            .values()
            .filter_map(|c| c.unacked.as_ref().map(|(u, _)| u.poll_timeout()))
            .min();
        let unconnected = self
            .sessions
            .values()
            .filter(|s| s.conn.is_none())
            .map(|s| s.connect_by)
            .min();
        [
            self.layer.poll_timeout(),
            calls,
            self.watchers_timeout(),
            unconnected,
            self.remote_timeout(),
            self.keepalive_at,
            self.chunks_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn handle_internal(&mut self, i: Internal) {
        match i {
            Internal::Accepted { conn, writer, peer } => {
                tracing::debug!(adapter = %self.name, "MSRP connection {conn} from {peer}");
                self.conns.insert(conn, writer);
                self.remote_conn_open(conn);
            }
            Internal::RemoteHop { room, addr } => self.remote_hop(room, addr),
            Internal::Frame { conn, frame } => self.handle_frame(conn, &frame),
            Internal::Oversized { conn, head } => self.handle_oversized(conn, &head),
            Internal::Closed { conn, why } => self.connection_closed(conn, &why),
            Internal::HubAnswer {
                answer,
                private,
                outcome,
            } => self.hub_answered(answer, private, &outcome),
            Internal::Nick {
                session,
                conn,
                request,
                nick,
                taken,
            } => self.nick_reserved(&session, conn, &request, &nick, taken),
        }
    }

    /// Queues bytes on a connection; a connection whose queue is full is
    /// cut off (its reader reports it closed).
    fn write(&mut self, conn: u64, bytes: Bytes) {
        let Some(w) = self.conns.get(&conn) else {
            return;
        };
        match w.send(bytes) {
            Ok(()) => {}
            Err(conn::WriteError::Full) => {
                tracing::warn!(
                    adapter = %self.name, peer = %w.peer,
                    "MSRP connection {conn} does not read, its queue is full: cut off"
                );
                if let Some(w) = self.conns.remove(&conn) {
                    w.cut_off();
                }
            }
            // Its task ends and tells so: its sessions end then.
            Err(conn::WriteError::Closed) => {
                self.conns.remove(&conn);
            }
        }
    }

    /// Sends bytes to a session: on its connection, or kept until the
    /// participant connects.
    fn send_to_session(&mut self, session: &str, bytes: Bytes) {
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        match s.conn {
            Some(c) => self.write(c, bytes),
            None => {
                if s.waiting.len() < 256 {
                    s.waiting.push(bytes);
                }
            }
        }
    }

    fn connection_closed(&mut self, conn: u64, why: &str) {
        self.remote_conn_lost(conn, why);
        self.conns.remove(&conn);
        let gone: Vec<String> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.conn == Some(conn))
            .map(|(k, _)| k.clone())
            .collect();
        for session in gone {
            tracing::info!(adapter = %self.name, "MSRP session {session} lost its connection: {why}");
            self.end_session(&session, true);
        }
    }

    /// A participant leaves: out of its room, its call ended (with a BYE
    /// from here when `bye`).
    fn end_session(&mut self, session: &str, bye: bool) {
        let Some(s) = self.sessions.remove(session) else {
            return;
        };
        if let Some(room) = self.rooms.get_mut(&s.room) {
            room.leave(s.id);
        }
        self.flush_roster(&s.room);
        if let Some(call) = self.calls.remove(&s.call) {
            if bye {
                self.send_bye(*call);
            }
        }
    }

    /// Tells the hub what changed among the room's own participants.
    fn flush_roster(&mut self, room_key: &str) {
        let Some(room) = self.rooms.get_mut(room_key) else {
            return;
        };
        let uri = room.uri().clone();
        let changes: Vec<RosterChange> = std::iter::from_fn(|| room.poll_change()).collect();
        self.notify_changes(room_key, &changes);
        for change in changes {
            let kind = match change {
                RosterChange::Joined {
                    who,
                    nick,
                    remote: false,
                } => RoomEventKind::Join {
                    who: member(who, nick),
                },
                RosterChange::Left {
                    who,
                    nick,
                    remote: false,
                } => RoomEventKind::Leave {
                    who: member(who, nick),
                    reason: None,
                },
                RosterChange::Nick {
                    who,
                    old,
                    new,
                    remote: false,
                } => {
                    let new_nick = new.unwrap_or_else(|| user_part(&who));
                    RoomEventKind::NickChange {
                        who: member(who, old),
                        new_nick,
                    }
                }
                _ => continue,
            };
            let event = RoomEvent {
                id: MessageId::random(),
                room: RoomRef {
                    adapter: self.name.clone(),
                    address: uri.clone(),
                },
                origin: self.origin(None),
                trail: Vec::new(),
                kind,
            };
            if self
                .inbound
                .try_send(Inbound::RoomEvent(Box::new(event)))
                .is_err()
            {
                tracing::warn!(adapter = %self.name, "the hub is busy: a room event of {uri} is dropped");
            }
        }
    }

    fn origin(&self, native_id: Option<String>) -> Origin {
        Origin {
            world: World::Msrp,
            adapter: self.name.clone(),
            native_id,
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.layer.handle_timeout(now);
        self.retransmit_2xx(now);
        self.watchers_expire(now);
        self.remote_handle_timeout(now);
        self.keepalive_timeout(now);
        self.chunks_expire(now);
        let late: Vec<String> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.conn.is_none() && s.connect_by <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for session in late {
            tracing::info!(adapter = %self.name, "MSRP session {session}: the participant never connected");
            self.end_session(&session, true);
        }
    }

    fn shutdown(&mut self) {
        self.remote_shutdown();
        self.watchers_end();
        // A notice before the rooms close (RFC 7701 REQ-10), then BYE.
        let sessions: Vec<String> = self.sessions.keys().cloned().collect();
        for s in &sessions {
            self.room_notice(s, "The gateway is shutting down; this room closes now.");
        }
        for s in sessions {
            self.end_session(&s, true);
        }
        self.drain();
    }
}

/// The hub's participant for a room member.
fn member(who: Address, nick: Option<String>) -> Member {
    let nick = nick.unwrap_or_else(|| user_part(&who));
    Member { address: who, nick }
}

/// The user part of an address (a nickname when there is none).
fn user_part(a: &Address) -> String {
    match a {
        Address::Sip(u) => u.user().unwrap_or("someone").to_owned(),
        Address::Im(u) => u.user().to_owned(),
        other => other.to_string(),
    }
}

/// A new reassembler for a session.
fn reassembler(config: &MsrpConfig) -> Reassembler {
    Reassembler::new(ReassemblyLimits {
        max_message: config.max_message_size,
        max_partial: 16,
    })
}

/// Whether a message's outcome means the hub took it.
fn accepted(outcome: &DeliveryOutcome) -> bool {
    matches!(
        outcome,
        DeliveryOutcome::Accepted | DeliveryOutcome::Delivered
    )
}

/// A model message's From as shown in a room: the nickname URI in the
/// room's domain with the nickname as display name.
fn shown_from(m: &Message, room: &Room) -> cpimgate_model::address::NameAddr {
    let nick = m
        .from
        .display
        .clone()
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| user_part(&m.from.address));
    match room.nick_uri(&nick) {
        Some(uri) => cpimgate_model::address::NameAddr {
            display: Some(nick),
            address: Address::Sip(uri),
        },
        None => m.from.clone(),
    }
}

/// What a SEND that came in is, before a room or a room elsewhere takes
/// it.
enum Incoming<'a> {
    /// No body and no type: it binds a connection or keeps it alive
    /// (RFC 4975 §5.4); answered 200.
    Empty,
    /// To be answered with this status: a chunk that cannot be read, or
    /// a body that is not `message/cpim` (415, RFC 7701 §6.3).
    Refused(u16),
    /// A whole `message/cpim` message.
    Whole(Chunk<'a>),
    /// One chunk of a `message/cpim` message.
    Part(Chunk<'a>),
}

impl<'a> Incoming<'a> {
    fn of(m: &codec::Message<'a>) -> Incoming<'a> {
        let chunk = match Chunk::from_message(m) {
            Ok(c) => c,
            Err(e) => return Incoming::Refused(e.response_code()),
        };
        if chunk.body.is_empty() && chunk.content_type.is_none() {
            return Incoming::Empty;
        }
        let cpim = chunk
            .content_type
            .and_then(|c| c.split(';').next())
            .is_some_and(|c| c.trim().eq_ignore_ascii_case("message/cpim"));
        if !cpim {
            return Incoming::Refused(415);
        }
        if m.is_whole_message().unwrap_or(false) {
            Incoming::Whole(chunk)
        } else {
            Incoming::Part(chunk)
        }
    }
}
