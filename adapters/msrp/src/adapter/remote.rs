//! The gateway as a participant of rooms hosted elsewhere
//! (`remote_rooms`): one SIP dialog, one MSRP session and one
//! subscription to the conference events per room. In relay mode the
//! gateway is one participant and writes `<nick> text` for everyone of
//! the bridged rooms. In puppet mode each member of the bridged rooms
//! also gets a participant of its own (a puppet: its own INVITE, From
//! `sip:<nickname>@<domain>`, MSRP session and nickname), which says
//! what the member says, unchanged, and takes the private messages for
//! that member; the gateway's own participant still reads the room and
//! its events. The sans-IO parts are [`crate::participant`] and
//! [`crate::conference::read`].
//!
//! ```text
//!  join:    INVITE --> 200 --> ACK; TCP to the answer's path; empty SEND;
//!           NICKNAME (425: the next one); SUBSCRIBE Event: conference
//!  joined:  hub message  --> SEND message/cpim (chunked); 200 = Delivered
//!           SEND from the room (To the room)  --> hub room message
//!           SEND from the room (To us, "nick: text") --> hub private message
//!           NOTIFY (full, partial)  --> hub joins, leaves, nick changes
//!  fault:   BYE from the focus, the connection lost, the INVITE failed
//!           --> join again after a backoff with jitter
//! ```
//!
//! Delivery order: a hub message for the room waits, in order, while the
//! room is being (re)joined; messages sent but not answered when the
//! session is lost are sent again first after the rejoin (at least once:
//! the focus may have relayed one before the loss). None is failed
//! transiently while later ones could still go (the port's contract).
//!
//! The requests within the dialog and the subscription (ACK of the 2xx,
//! BYE, refreshes) go to the outbound proxy when one is configured (it
//! stays on the path), else to the dialog's next hop (RFC 3261
//! §12.2.1.1: its first Record-Route, else the focus's Contact) when that
//! names an IP address; a host name there is not resolved: they go where
//! the INVITE went.
//!
//! Puppets (puppet mode):
//!
//! ```text
//!  hub Join (or Roster, or a first message) --> a puppet joins: INVITE,
//!           MSRP, NICKNAME with the member's nickname (425: nick2...)
//!  hub message from the member  --> SEND from the puppet, the text as is
//!  SEND to the puppet (private) --> hub private message to the member
//!  hub NickChange --> NICKNAME;  hub Leave, Kick --> BYE (once what it
//!           sent is answered)
//!  refused, or more than max_puppets --> the member is relayed instead
//! ```
//!
//! Puppets are entries of the same list as the rooms (their `puppet` set);
//! a puppet that left leaves its slot for the next one. What the room
//! shows of a puppet (its SENDs, its roster entry) is never taken for a
//! member of the room, the URIs of puppets that left included.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cpimgate_mappings::nick_key;
use cpimgate_model::address::{Address, NameAddr, SipUri};
use cpimgate_model::body::Body;
use cpimgate_model::cpim::{self, CpimBuilder};
use cpimgate_model::display::{body_text, render, sender_name};
use cpimgate_model::event::{Participant as Member, RoomEvent, RoomEventKind, RoomRef};
use cpimgate_model::port::{DeliveryOutcome, Failure, FailureKind, Inbound, Reply};
use cpimgate_model::{Message, MessageId};
use cpimgate_sip::codec::{self as sip, HeaderName, OwnedMessage as SipMessage};
use cpimgate_sip::dialog::{Dialog, Via};
use cpimgate_sip::digest::{DigestClient, DigestRequest, RandomCnonce};
use cpimgate_sip::transaction::{self, Method, OutgoingRequest, TxId};
use cpimgate_sip::transport::Destination;
use tokio_rustls::rustls::pki_types::ServerName;

use super::{Driver, Incoming, Internal, token};
use crate::codec::{self, Chunker, MsrpUri, OwnedMessage, Reassembler, ReassemblyEvent};
use crate::conference::read::{Change, Known, Roster, read};
use crate::config::{RemoteMode, RemoteRoomConfig};
use crate::participant::{self, Nicknames};
use crate::sdp;

const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, NOTIFY";

/// How long a TCP connection to the focus may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most hub messages held for one room while it is rejoined; more
/// are refused as overloaded (the hub's window keeps far fewer in flight).
const MAX_HELD: usize = 10_000;

/// How many URIs of puppets that left are remembered (their roster
/// entries and messages may still come).
const FORMER_PUPPETS: usize = 256;

/// Where a remote room stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not in the room; `retry_at` says when to try again.
    Idle,
    /// The next hop's address is being looked up.
    Resolving,
    /// The INVITE is out.
    Inviting,
    /// The INVITE was answered; the MSRP connection is being opened.
    Connecting,
    /// Connected; the nickname is being asked for.
    Naming,
    /// In the room: messages flow.
    Joined,
}

/// What a client transaction of a remote room is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TxKind {
    Invite,
    Subscribe,
    Other,
}

/// The INVITE being answered.
#[derive(Debug)]
struct Invite {
    call_id: String,
    from_tag: String,
    cseq: u32,
    via: String,
    bytes: Bytes,
    /// The SDP offer (for digest auth-int and a second try).
    offer: Bytes,
    authorized: bool,
}

/// The subscription to the room's conference events (RFC 6665 §4.1).
#[derive(Debug)]
struct Sub {
    call_id: String,
    from_tag: String,
    cseq: u32,
    dialog: Option<Dialog>,
    /// Where the requests within its dialog go.
    dest: Option<Destination>,
    /// The last SUBSCRIBE sent (for the dialog of its 2xx).
    request: Bytes,
    refresh_at: Option<Instant>,
    /// The answer to the challenge of the first SUBSCRIBE, once.
    authorization: Option<(&'static str, String)>,
}

/// A message sent into the room, until every chunk is answered.
#[derive(Debug)]
struct InFlight {
    message: Box<Message>,
    reply: Reply,
    tids: HashSet<String>,
    /// When its chunks were written: RFC 4975 §7.1.1, the responses are
    /// due within `response_within_ms`.
    sent: Instant,
}

/// What makes an entry a puppet: whom it stands for, in which room.
#[derive(Debug)]
struct Puppet {
    /// The index of the room's own entry (the gateway's participant).
    main: usize,
    /// The member of the bridged rooms it stands for.
    member: Member,
    /// The member's key among the room's puppets (its address).
    key: String,
    /// Whether it was ever in the room.
    joined_once: bool,
    /// Its INVITE got a final refusal (4xx-6xx) before it was ever in
    /// the room: given up, its member relayed, rather than tried again.
    refused: bool,
    /// Its member left: it leaves once what it sent is answered.
    leaving: bool,
}

/// One room elsewhere, or (puppet mode) one puppet in it.
#[derive(Debug)]
pub(super) struct Remote {
    cfg: RemoteRoomConfig,
    room: Address,
    own: Address,
    phase: Phase,
    /// Since when the room is not joined (`None` while joined).
    down_since: Option<Instant>,
    attempt: u32,
    retry_at: Option<Instant>,
    dest: Option<Destination>,
    nicks: Nicknames,
    /// The nickname the focus granted.
    nick: Option<String>,
    invite: Option<Invite>,
    dialog: Option<Dialog>,
    /// Where the requests within the dialog go (see the module docs).
    dialog_dest: Option<Destination>,
    /// The ACK of the 2xx, sent again for each retransmitted 2xx.
    ack: Option<Bytes>,
    own_path: String,
    /// The session id of `own_path`: what frames on a shared connection
    /// are told apart by.
    own_session: String,
    to_path: String,
    conn: Option<u64>,
    /// Where the connection goes: host, port, TLS.
    target: Option<(String, u16, bool)>,
    bind_tid: Option<String>,
    nick_tid: Option<String>,
    /// When the first SEND or the NICKNAME being answered was written.
    asked_at: Option<Instant>,
    reassembler: Reassembler,
    held: VecDeque<(Box<Message>, Reply)>,
    inflight: VecDeque<InFlight>,
    sub: Option<Sub>,
    resubscribe_at: Option<Instant>,
    roster: Roster,
    /// The members of the bridged rooms, by nickname key: whom a private
    /// message to the gateway can name.
    members: HashMap<String, Member>,
    digest: Option<DigestClient>,
    /// A puppet's member and room; `None` for the gateway's participant.
    puppet: Option<Puppet>,
    /// The room's puppets by their member's key (puppet mode).
    puppets: HashMap<String, usize>,
    /// Members relayed through the gateway's participant: beyond
    /// `max_puppets`, or their puppet could not join.
    relayed: HashSet<String>,
    /// The URIs of the room's puppets that left, newest last.
    former: VecDeque<Address>,
    /// A puppet's slot no longer in use: the next puppet takes it.
    retired: bool,
}

impl Remote {
    /// A room from its configuration (validated: the URIs parse).
    pub(super) fn new(cfg: RemoteRoomConfig, config: &crate::config::MsrpConfig) -> Option<Remote> {
        let domain = config.domain.as_str();
        let room = Address::Sip(cfg.room_uri()?);
        let own = Address::Sip(cfg.own_uri(domain)?);
        Some(Remote {
            nicks: Nicknames::new(&cfg.nickname, cfg.nickname_tries),
            digest: cfg
                .credentials
                .as_ref()
                .map(|c| DigestClient::new(c.user.clone(), c.password.clone())),
            cfg,
            room,
            own,
            phase: Phase::Idle,
            down_since: Some(Instant::now()),
            attempt: 0,
            retry_at: Some(Instant::now()),
            dest: None,
            nick: None,
            invite: None,
            dialog: None,
            dialog_dest: None,
            ack: None,
            own_path: String::new(),
            own_session: String::new(),
            to_path: String::new(),
            conn: None,
            target: None,
            bind_tid: None,
            nick_tid: None,
            asked_at: None,
            reassembler: super::reassembler(config),
            held: VecDeque::new(),
            inflight: VecDeque::new(),
            sub: None,
            resubscribe_at: None,
            roster: Roster::new(),
            members: HashMap::new(),
            puppet: None,
            puppets: HashMap::new(),
            relayed: HashSet::new(),
            former: VecDeque::new(),
            retired: false,
        })
    }

    /// A puppet for `member` in the room of `main` (at index `main_index`):
    /// From `sip:<nickname>@<domain>`, asking for the member's nickname;
    /// `None` when no SIP URI can be made of it.
    fn puppet(
        main_index: usize,
        main: &Remote,
        member: &Member,
        config: &crate::config::MsrpConfig,
    ) -> Option<Remote> {
        let own = Address::Sip(SipUri::new(Some(&member.nick), &config.domain).ok()?);
        let mut cfg = main.cfg.clone();
        cfg.nickname = member.nick.clone();
        let mut r = Remote::new(cfg, config)?;
        r.own = own;
        r.dest = main.dest.clone();
        r.retry_at = None;
        r.puppet = Some(Puppet {
            main: main_index,
            member: member.clone(),
            key: member.address.to_string(),
            joined_once: false,
            refused: false,
            leaving: false,
        });
        Some(r)
    }

    fn is_puppet_mode(&self) -> bool {
        self.cfg.mode == RemoteMode::Puppet
    }

    /// Whether it is a puppet on its way out (or out).
    fn is_leaving(&self) -> bool {
        self.retired || self.puppet.as_ref().is_some_and(|p| p.leaving)
    }

    /// When the oldest request waiting for its response is due (the
    /// first SEND, NICKNAME, a message's chunks).
    fn response_due(&self, within: Duration) -> Option<Instant> {
        let oldest = match (self.asked_at, self.inflight.front().map(|f| f.sent)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        oldest.map(|t| t + within)
    }

    /// Until when hub messages wait for the room; `None` while joined.
    fn hold_until(&self) -> Option<Instant> {
        self.down_since
            .map(|t| t + Duration::from_millis(self.cfg.hold_ms))
    }

    fn room_ref(&self, adapter: &str) -> RoomRef {
        RoomRef {
            adapter: adapter.to_owned(),
            address: self.room.clone(),
        }
    }

    /// Whether `a` is the gateway itself: its URI, or its nickname URI
    /// in the room's domain.
    fn is_self(&self, a: &Address) -> bool {
        if a.same_user(&self.own) {
            return true;
        }
        match (a, &self.room, &self.nick) {
            (Address::Sip(u), Address::Sip(r), Some(n)) => {
                u.host() == r.host() && u.user().is_some_and(|x| x.eq_ignore_ascii_case(n))
            }
            _ => false,
        }
    }
}

/// The room cannot be reached (transient: the hub tries again).
fn unreachable() -> Failure {
    Failure::new(FailureKind::Unreachable, "not in the room; joining again")
}

/// The failure a status of the focus means (RFC 4975 §10, RFC 7701 §6).
fn failure_of(code: u16) -> Failure {
    let kind = match code {
        403 => FailureKind::Forbidden,
        404 => FailureKind::NotFound,
        413 => FailureKind::TooLarge,
        415 => FailureKind::UnsupportedType,
        408 => FailureKind::Timeout,
        _ => FailureKind::Rejected,
    };
    Failure::new(kind, format!("the room answered {code}"))
}

impl Driver {
    /// Makes the remote rooms of the configuration; each joins at once.
    pub(super) fn remote_start(&mut self) {
        for r in self.config.remote_rooms.clone() {
            if let Some(remote) = Remote::new(r, &self.config) {
                self.remotes.push(remote);
            }
        }
    }

    /// The room's own entry (not a puppet's).
    fn remote_index(&self, room: &Address) -> Option<usize> {
        self.remotes
            .iter()
            .position(|r| r.puppet.is_none() && !r.retired && &r.room == room)
    }

    /// The index of the room's own entry of entry `i` (itself, or its
    /// puppet's room).
    fn main_of(&self, i: usize) -> usize {
        self.remotes
            .get(i)
            .and_then(|r| r.puppet.as_ref())
            .map_or(i, |p| p.main)
    }

    /// Whether `a` is one of the gateway's participants in room `main`:
    /// its own, a puppet's, or a puppet's that left.
    fn is_ours(&self, main: usize, a: &Address) -> bool {
        let Some(r) = self.remotes.get(main) else {
            return false;
        };
        r.is_self(a)
            || r.puppets
                .values()
                .filter_map(|&p| self.remotes.get(p))
                .any(|p| p.is_self(a))
            || r.former.iter().any(|f| f.same_user(a))
    }

    pub(super) fn remote_of_conn(&self, conn: u64) -> Option<usize> {
        self.remotes.iter().position(|r| r.conn == Some(conn))
    }

    /// Whose session a frame on a shared connection is: the entry on
    /// `conn` whose path is the last URI of its To-Path (RFC 4975 §7.3;
    /// a response's To-Path ends with the request's sender's path too).
    fn remote_of_frame(&self, conn: u64, m: &codec::Message<'_>) -> Option<usize> {
        let session = m
            .to_path()
            .ok()
            .flatten()
            .and_then(|p| p.last().and_then(|u| u.session_id()).map(str::to_owned))?;
        self.remotes
            .iter()
            .position(|r| r.conn == Some(conn) && r.own_session == session)
    }

    /// An MSRP connection opened: every session waiting for it starts.
    pub(super) fn remote_conn_open(&mut self, conn: u64) {
        let waiting: Vec<usize> = (0..self.remotes.len())
            .filter(|&i| {
                let r = &self.remotes[i];
                r.conn == Some(conn) && r.phase == Phase::Connecting
            })
            .collect();
        for i in waiting {
            self.remote_connected(i, conn);
        }
    }

    /// An MSRP connection is gone: so is every session on it.
    pub(super) fn remote_conn_lost(&mut self, conn: u64, why: &str) {
        while let Some(i) = self.remote_of_conn(conn) {
            self.remote_down(i, &format!("the MSRP connection: {why}"), true);
        }
    }

    /// A connection of ours to `target` that a new session can share
    /// (RFC 4975 §8.1: sessions with the same peer may share one), with
    /// whether it is open yet.
    fn shared_conn(&self, target: &(String, u16, bool)) -> Option<(u64, bool)> {
        self.remotes
            .iter()
            .filter(|r| !r.is_leaving() && r.target.as_ref() == Some(target))
            .find_map(|r| {
                let open = matches!(r.phase, Phase::Naming | Phase::Joined);
                r.conn
                    .filter(|_| open || r.phase == Phase::Connecting)
                    .map(|c| (c, open))
            })
    }

    pub(super) fn remote_timeout(&self) -> Option<Instant> {
        self.remotes
            .iter()
            .flat_map(|r| {
                [
                    r.retry_at,
                    r.sub.as_ref().and_then(|s| s.refresh_at),
                    r.resubscribe_at,
                    r.hold_until().filter(|_| !r.held.is_empty()),
                    r.response_due(self.response_within()),
                ]
            })
            .flatten()
            .min()
    }

    pub(super) fn remote_handle_timeout(&mut self, now: Instant) {
        let within = self.response_within();
        for i in 0..self.remotes.len() {
            if self.remotes[i].retired {
                continue;
            }
            // RFC 4975 §7.1.1: no response in time, the request probably
            // failed (§10.4: a 408); the session is taken as failed: the
            // room is joined again and what was in flight sent again.
            if self.remotes[i]
                .response_due(within)
                .is_some_and(|t| t <= now)
            {
                self.remote_down(
                    i,
                    &format!("a request got no response within {within:?} (408)"),
                    true,
                );
            }
            let r = &mut self.remotes[i];
            if r.hold_until().is_some_and(|t| t <= now) && !r.held.is_empty() {
                tracing::warn!(adapter = %self.name, room = %r.room, "{} messages waited too long for the room: failed for the hub to retry", r.held.len());
                for (_, reply) in r.held.drain(..) {
                    let _ = reply.send(DeliveryOutcome::Failed(unreachable()));
                }
            }
            let r = &mut self.remotes[i];
            if r.retry_at.is_some_and(|t| t <= now) {
                r.retry_at = None;
                self.remote_join(i);
            }
            let r = &mut self.remotes[i];
            if r.resubscribe_at.is_some_and(|t| t <= now) {
                r.resubscribe_at = None;
                if r.phase == Phase::Joined {
                    r.sub = None;
                    self.send_subscribe(i, None);
                }
            }
            let r = &mut self.remotes[i];
            if r.sub
                .as_ref()
                .and_then(|s| s.refresh_at)
                .is_some_and(|t| t <= now)
            {
                if let Some(s) = r.sub.as_mut() {
                    s.refresh_at = None;
                }
                self.send_subscribe(i, None);
            }
        }
    }

    /// Where the requests within `dialog` of entry `i` go: the outbound
    /// proxy when one is configured, else the dialog's next hop (RFC 3261
    /// §12.2.1.1: the first route, else the remote target) when it names
    /// an IP address, else where the INVITE went.
    fn in_dialog_dest(&self, i: usize, dialog: &Dialog) -> Option<Destination> {
        let r = self.remotes.get(i)?;
        if r.cfg.proxy.is_some() {
            return r.dest.clone();
        }
        let hop = match dialog.next_hop().parse::<Address>() {
            Ok(Address::Sip(u)) => {
                let host = u.host().to_string();
                let host = host.trim_start_matches('[').trim_end_matches(']');
                host.parse::<IpAddr>()
                    .ok()
                    .map(|ip| SocketAddr::new(ip, u.port().unwrap_or(5060)))
            }
            _ => None,
        };
        match hop {
            Some(addr) => Some(Destination::new(self.sip_transport, addr)),
            None => r.dest.clone(),
        }
    }

    fn sent_by(&self) -> (String, &'static str) {
        (self.sip_addr.to_string(), self.sip_transport.as_via_str())
    }

    fn own_contact(&self, r: &Remote) -> String {
        let user = match &r.own {
            Address::Sip(u) => u.user().unwrap_or("gateway").to_owned(),
            _ => "gateway".to_owned(),
        };
        format!(
            "<sip:{user}@{}:{};transport={}>",
            self.host,
            self.sip_addr.port(),
            self.sip_transport.as_via_str().to_ascii_lowercase()
        )
    }

    /// Starts a join: the next hop's address, then the INVITE.
    fn remote_join(&mut self, i: usize) {
        let Some(r) = self.remotes.get_mut(i) else {
            return;
        };
        if r.phase != Phase::Idle {
            return;
        }
        if r.dest.is_some() {
            return self.send_invite(i);
        }
        let Some((host, port)) = r.cfg.next_hop() else {
            return;
        };
        if let Ok(ip) = host.parse::<IpAddr>() {
            r.dest = Some(Destination::new(
                self.sip_transport,
                SocketAddr::new(ip, port),
            ));
            return self.send_invite(i);
        }
        r.phase = Phase::Resolving;
        let internal = self.internal.clone();
        tokio::spawn(async move {
            let addr = tokio::net::lookup_host((host.as_str(), port))
                .await
                .ok()
                .and_then(|mut a| a.next());
            let _ = internal.send(Internal::RemoteHop { room: i, addr }).await;
        });
    }

    pub(super) fn remote_hop(&mut self, i: usize, addr: Option<SocketAddr>) {
        let kind = self.sip_transport;
        let Some(r) = self.remotes.get_mut(i) else {
            return;
        };
        if r.phase != Phase::Resolving {
            return;
        }
        r.phase = Phase::Idle;
        match addr {
            Some(a) => {
                r.dest = Some(Destination::new(kind, a));
                self.send_invite(i);
            }
            None => {
                tracing::warn!(adapter = %self.name, room = %r.room, "cannot resolve the next hop {:?}", r.cfg.next_hop());
                self.remote_down(i, "the next hop does not resolve", false);
            }
        }
    }

    /// The digest answer to a 401 or 407 (RFC 3261 §22.2), once.
    fn authorization(
        &mut self,
        i: usize,
        response: &sip::Message<'_>,
        method: &str,
        body: &[u8],
    ) -> Option<(&'static str, String)> {
        let r = self.remotes.get_mut(i)?;
        let realm_ok = |realm: &str| {
            r.cfg
                .credentials
                .as_ref()
                .and_then(|c| c.realm.as_deref())
                .is_none_or(|w| w == realm)
        };
        let (challenge_header, answer_header) = match response.status() {
            Some(401) => (HeaderName::WwwAuthenticate, "Authorization"),
            Some(407) => (HeaderName::ProxyAuthenticate, "Proxy-Authorization"),
            _ => return None,
        };
        let challenge = DigestClient::choose_header_values(
            response
                .headers_named(challenge_header)
                .map(sip::Header::value),
        )
        .filter(|c| realm_ok(&c.realm))?;
        let uri = r.room.to_string();
        let request = DigestRequest {
            method,
            uri: &uri,
            body,
        };
        let value = r
            .digest
            .as_mut()?
            .authorize(&challenge, &request, &mut RandomCnonce)
            .ok()?
            .to_header_value()
            .ok()?;
        Some((answer_header, value))
    }

    /// RFC 7701 §5.2: INVITE the room with our offer.
    fn send_invite(&mut self, i: usize) {
        let session = token();
        // RFC 4975 §6: we connect, so the path's port is only named.
        let (scheme, port) = match self.remotes.get(i) {
            Some(r) if r.cfg.tls => ("msrps", self.msrps_port.unwrap_or(self.msrp_port)),
            _ => ("msrp", self.msrp_port),
        };
        let own_path = format!("{scheme}://{}:{port}/{session};tcp", self.host);
        let offer = Bytes::from(participant::offer(&self.host, port, &own_path));
        let Some(r) = self.remotes.get_mut(i) else {
            return;
        };
        r.own_path = own_path;
        r.own_session = session;
        r.invite = Some(Invite {
            call_id: token(),
            from_tag: token(),
            cseq: 1,
            via: String::new(),
            bytes: Bytes::new(),
            offer,
            authorized: false,
        });
        self.write_invite(i, None);
    }

    fn write_invite(&mut self, i: usize, authorization: Option<(&str, String)>) {
        let (sent_by, transport) = self.sent_by();
        let branch = format!("{}{}", transaction::MAGIC_COOKIE, token());
        let Some(contact) = self.remotes.get(i).map(|r| self.own_contact(r)) else {
            return;
        };
        let Some(r) = self.remotes.get_mut(i) else {
            return;
        };
        let (Some(inv), Some(dest)) = (r.invite.as_mut(), r.dest.clone()) else {
            return;
        };
        inv.via = format!("SIP/2.0/{transport} {sent_by};branch={branch}");
        let build = || -> Result<SipMessage, sip::BuildError> {
            let mut m = SipMessage::request("INVITE", &r.room.to_string())?;
            m.push_header("Via", &inv.via)?;
            m.push_header("Max-Forwards", "70")?;
            m.push_header("From", &format!("<{}>;tag={}", r.own, inv.from_tag))?;
            m.push_header("To", &format!("<{}>", r.room))?;
            m.push_header("Call-ID", &inv.call_id)?;
            m.push_header("CSeq", &format!("{} INVITE", inv.cseq))?;
            m.push_header("Contact", &contact)?;
            m.push_header("Allow", ALLOW)?;
            if let Some((name, value)) = &authorization {
                m.push_header(name, value)?;
            }
            m.push_header("Content-Type", "application/sdp")?;
            m.set_body(inv.offer.clone());
            Ok(m)
        };
        let Ok(m) = build() else {
            return;
        };
        inv.bytes = Bytes::from(m.to_bytes());
        let bytes = inv.bytes.clone();
        r.phase = Phase::Inviting;
        tracing::info!(adapter = %self.name, room = %r.room, "joining the room as {}", r.own);
        let sent = self.layer.send_request(
            Instant::now(),
            OutgoingRequest {
                method: Method::Invite,
                branch,
                bytes: bytes.clone(),
                reliable: dest.transport.is_reliable(),
                dest,
            },
        );
        match sent {
            Ok(tx) => {
                self.remote_txs.insert(tx, (i, TxKind::Invite));
                self.remote_invites.insert(tx, bytes);
            }
            Err(e) => self.remote_down(i, &format!("the INVITE: {e}"), false),
        }
    }

    /// Whether a transaction is a remote room's.
    pub(super) fn is_remote_tx(&self, tx: TxId) -> bool {
        self.remote_txs.contains_key(&tx)
    }

    /// A response (provisional or final) to a remote room's request.
    pub(super) fn remote_response(&mut self, tx: TxId, status: u16, bytes: &Bytes) {
        if status < 200 {
            return;
        }
        let Some((i, kind)) = self.remote_txs.remove(&tx) else {
            return;
        };
        if (200..300).contains(&status) {
            // The ACK of a 2xx is the core's (no BuildAck comes).
            self.remote_invites.remove(&tx);
        }
        match kind {
            TxKind::Invite => self.invite_answered(i, status, bytes),
            TxKind::Subscribe => self.subscribe_answered(i, status, bytes),
            TxKind::Other => {}
        }
    }

    /// A remote room's transaction got no answer (RFC 3261 §8.1.3.1: a
    /// 408).
    pub(super) fn remote_tx_failed(&mut self, tx: TxId) {
        self.remote_invites.remove(&tx);
        if let Some((i, kind)) = self.remote_txs.remove(&tx) {
            match kind {
                TxKind::Invite => self.remote_down(i, "no answer to the INVITE", false),
                TxKind::Subscribe => self.subscribe_answered(i, 408, &Bytes::new()),
                TxKind::Other => {}
            }
        }
    }

    /// RFC 3261 §17.1.1.3: the ACK of a non-2xx final response to our
    /// INVITE: the INVITE's Request-URI, Call-ID, From and top Via, the
    /// response's To, CSeq with method ACK. The INVITE is the one the
    /// transaction sent (kept by its id: the response is reported to the
    /// TU first, which may already have sent another INVITE).
    pub(super) fn remote_build_ack(&mut self, tx: TxId, response: &Bytes) -> bool {
        let Some(invite) = self.remote_invites.remove(&tx) else {
            return false;
        };
        let (Ok(req), Ok(resp)) = (sip::parse(&invite), sip::parse(response)) else {
            return true;
        };
        let build = || -> Option<SipMessage> {
            let seq = req.cseq().ok().flatten()?.seq;
            let mut m = SipMessage::request("ACK", req.request_uri()?).ok()?;
            for (name, value) in [
                ("Via", req.get("Via")?),
                ("Max-Forwards", "70"),
                ("From", req.get("From")?),
                ("To", resp.get("To")?),
                ("Call-ID", req.get("Call-ID")?),
            ] {
                m.push_header(name, value).ok()?;
            }
            m.push_header("CSeq", &format!("{seq} ACK")).ok()?;
            Some(m)
        };
        if let Some(ack) = build() {
            let _ = self
                .layer
                .ack_built(Instant::now(), tx, Bytes::from(ack.to_bytes()));
        }
        true
    }

    /// A retransmitted 2xx of our INVITE: the ACK again (RFC 3261
    /// §13.2.2.4).
    pub(super) fn remote_accepted_again(&mut self, tx: TxId) -> bool {
        let Some((i, _)) = self.remote_txs.get(&tx).copied() else {
            return false;
        };
        if let Some((ack, dest)) = self
            .remotes
            .get(i)
            .and_then(|r| Some((r.ack.clone()?, r.dialog_dest.clone()?)))
        {
            self.transmit(dest, ack);
        }
        true
    }

    fn invite_answered(&mut self, i: usize, status: u16, bytes: &Bytes) {
        let Ok(resp) = sip::parse(bytes) else {
            return self.remote_down(i, "an unreadable answer to the INVITE", false);
        };
        if matches!(status, 401 | 407) {
            let offer = self.remotes[i]
                .invite
                .as_ref()
                .map(|v| v.offer.clone())
                .unwrap_or_default();
            let first = self.remotes[i]
                .invite
                .as_ref()
                .is_some_and(|v| !v.authorized);
            if first {
                if let Some(auth) = self.authorization(i, &resp, "INVITE", &offer) {
                    if let Some(inv) = self.remotes[i].invite.as_mut() {
                        inv.authorized = true;
                        inv.cseq += 1;
                    }
                    return self.write_invite(i, Some(auth));
                }
            }
        }
        if !(200..300).contains(&status) {
            if let Some(p) = self.remotes[i].puppet.as_mut() {
                p.refused = true;
            }
            let reason = resp.reason().unwrap_or_default().to_owned();
            return self.remote_down(i, &format!("the INVITE got {status} {reason}"), false);
        }
        let (sent_by, transport) = self.sent_by();
        let r = &mut self.remotes[i];
        let Some(inv) = r.invite.as_ref() else {
            return;
        };
        let Ok(req) = sip::parse(&inv.bytes) else {
            return;
        };
        let dialog = match Dialog::uac(&req, &resp) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(adapter = %self.name, room = %r.room, "the 200 of the INVITE: {e}");
                return self.remote_down(i, "the 200 of the INVITE makes no dialog", false);
            }
        };
        // RFC 3261 §13.2.2.4: the ACK of a 2xx is the UAC core's, sent
        // straight to the transport, a new branch.
        let branch = format!("{}{}", transaction::MAGIC_COOKIE, token());
        let via = Via {
            transport,
            sent_by: &sent_by,
            branch: &branch,
        };
        let ack = dialog
            .ack(inv.cseq, &via)
            .ok()
            .map(|a| Bytes::from(a.to_bytes()));
        let dest = self.in_dialog_dest(i, &dialog);
        let r = &mut self.remotes[i];
        r.dialog = Some(dialog);
        r.dialog_dest = dest.clone();
        r.ack = ack.clone();
        if let (Some(ack), Some(dest)) = (ack, dest) {
            self.transmit(dest, ack);
        }
        let answer = sdp::parse(resp.body()).and_then(|a| sdp::agreed_by_answer(&a));
        let agreed = match answer {
            Ok(a) => a,
            Err(e) => return self.remote_down(i, &format!("the SDP answer: {e}"), true),
        };
        // RFC 6135 §4.1: we offered active; an answer that makes the
        // focus connect is not what we can do.
        if !agreed.we_connect {
            return self.remote_down(i, "the answer wants the focus to connect", true);
        }
        let Some(first) = agreed.remote_path.first().cloned() else {
            return self.remote_down(i, "the answer has no a=path", true);
        };
        let tls = self.remotes[i].cfg.tls;
        let target = match MsrpUri::parse(&first) {
            Ok(u) if u.is_tls() == tls => (u.host().to_owned(), u.port().unwrap_or(2855)),
            Ok(_) => {
                let why = if tls {
                    "the answer's path is msrp:, but TLS was offered"
                } else {
                    "the answer's path is msrps:, not offered"
                };
                return self.remote_down(i, why, true);
            }
            Err(e) => return self.remote_down(i, &format!("the answer's path: {e}"), true),
        };
        let connector = if tls {
            match self.remote_tls.clone() {
                Some(c) => Some(c),
                None => return self.remote_down(i, "no TLS client", true),
            }
        } else {
            None
        };
        let key = (target.0.clone(), target.1, tls);
        let shared = self.shared_conn(&key);
        let r = &mut self.remotes[i];
        r.to_path = agreed.remote_path.join(" ");
        r.phase = Phase::Connecting;
        r.target = Some(key);
        if let Some((conn, open)) = shared {
            r.conn = Some(conn);
            if open {
                self.remote_connected(i, conn);
            }
            return;
        }
        let conn = super::conn::next_id();
        r.conn = Some(conn);
        let internal = self.internal.clone();
        let bounds = super::conn::Bounds {
            first_within: None,
            message: Duration::from_millis(self.config.message_timeout_ms),
            write: Duration::from_millis(self.config.write_timeout_ms),
            queue: self.config.write_queue,
        };
        let limits = crate::codec::Limits {
            max_chunk: self.config.max_message_size,
            ..crate::codec::Limits::default()
        };
        tokio::spawn(async move {
            let host = target
                .0
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let tcp = tokio::time::timeout(
                CONNECT_TIMEOUT,
                tokio::net::TcpStream::connect((host.as_str(), target.1)),
            )
            .await;
            let stream = match tcp {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    let why = format!("connecting to {host}:{}: {e}", target.1);
                    let _ = internal.send(Internal::Closed { conn, why }).await;
                    return;
                }
                Err(_) => {
                    let why = format!("connecting to {host}:{} took too long", target.1);
                    let _ = internal.send(Internal::Closed { conn, why }).await;
                    return;
                }
            };
            let _ = stream.set_nodelay(true);
            let peer = stream
                .peer_addr()
                .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
            let Some(connector) = connector else {
                super::conn::start(conn, stream, peer, internal, limits, bounds, None).await;
                return;
            };
            // RFC 4975 §14.1: the certificate must be the path's host's.
            let why = match ServerName::try_from(host.clone()) {
                Ok(name) => {
                    match tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, stream))
                        .await
                    {
                        Ok(Ok(tls)) => {
                            super::conn::start(conn, tls, peer, internal, limits, bounds, None)
                                .await;
                            return;
                        }
                        Ok(Err(e)) => format!("TLS with {host}:{}: {e}", target.1),
                        Err(_) => format!("TLS with {host}:{} took too long", target.1),
                    }
                }
                Err(e) => format!("{host} is no TLS server name: {e}"),
            };
            let _ = internal.send(Internal::Closed { conn, why }).await;
        });
    }

    /// The MSRP connection to the focus is open: RFC 4975 §5.4, we send
    /// first (an empty SEND), then NICKNAME (RFC 7701 §7.1).
    pub(super) fn remote_connected(&mut self, i: usize, conn: u64) {
        let Some(r) = self.remotes.get_mut(i) else {
            return;
        };
        let tid = token();
        let Ok(bind) = participant::bind_send(&tid, &r.to_path, &r.own_path, &token()) else {
            return;
        };
        r.bind_tid = Some(tid);
        r.phase = Phase::Naming;
        r.nicks.reset();
        self.write(conn, bind);
        self.send_nickname(i);
    }

    fn send_nickname(&mut self, i: usize) {
        let Some(r) = self.remotes.get_mut(i) else {
            return;
        };
        let Some(conn) = r.conn else {
            return;
        };
        let tid = token();
        let Ok(req) = participant::nickname(&tid, &r.to_path, &r.own_path, &r.nicks.current())
        else {
            return;
        };
        r.nick_tid = Some(tid);
        r.asked_at = Some(Instant::now());
        self.write(conn, req);
    }

    /// A frame on a remote room's connection.
    pub(super) fn remote_frame(&mut self, i: usize, conn: u64, frame: &Bytes) {
        let m = match codec::parse(frame) {
            Ok(m) => m,
            Err(e) => {
                tracing::info!(adapter = %self.name, "unreadable MSRP from the room: {e}");
                return;
            }
        };
        let i = self.remote_of_frame(conn, &m).unwrap_or(i);
        if !m.is_request() {
            let status = m.status_code().unwrap_or(0);
            return self.remote_msrp_response(i, m.transaction_id(), status);
        }
        let own = self.remotes[i].own_path.clone();
        if let Err(e) = m.validate() {
            return self.remote_answer(conn, &m, e.response_code(), &own);
        }
        match m.method() {
            Some("SEND") => self.remote_send(i, conn, &m, frame, &own),
            Some("REPORT") => {}
            _ => self.remote_answer(conn, &m, 501, &own),
        }
    }

    /// A chunk from the room larger than `max_message_size`: 413 (RFC
    /// 4975 §10.5), and what arrived of its message is dropped.
    pub(super) fn remote_oversized(&mut self, i: usize, conn: u64, head: &Bytes) {
        let Ok(m) = codec::parse(head) else {
            return;
        };
        if !m.is_request() {
            return;
        }
        let i = self.remote_of_frame(conn, &m).unwrap_or(i);
        if let Ok(Some(id)) = m.message_id() {
            self.remotes[i].reassembler.forget(id);
        }
        let own = self.remotes[i].own_path.clone();
        self.remote_answer(conn, &m, 413, &own);
    }

    fn remote_answer(&mut self, conn: u64, m: &codec::Message<'_>, code: u16, own: &str) {
        if !m.wants_response(code) {
            return;
        }
        if let Ok(r) = OwnedMessage::response_to(m, code, Some(codec::reason_phrase(code)), own) {
            self.write(conn, r.to_bytes());
        }
    }

    fn remote_msrp_response(&mut self, i: usize, tid: &str, status: u16) {
        let r = &mut self.remotes[i];
        if r.bind_tid.as_deref() == Some(tid) {
            r.bind_tid = None;
            if status != 200 {
                return self.remote_down(i, &format!("the first SEND got {status}"), true);
            }
            return;
        }
        if r.nick_tid.as_deref() == Some(tid) {
            r.nick_tid = None;
            r.asked_at = None;
            match status {
                200 => r.nick = Some(r.nicks.current()),
                // RFC 7701 §7.1: 425, the nickname is taken.
                425 => {
                    let taken = r.nicks.current();
                    if let Some(next) = r.nicks.next_after_taken() {
                        tracing::info!(adapter = %self.name, room = %r.room, "nickname {taken:?} is taken; trying {next:?}");
                        return self.send_nickname(i);
                    }
                    tracing::warn!(adapter = %self.name, room = %r.room, "nickname {taken:?} is taken and no other is left to try: in the room without one");
                }
                s => {
                    tracing::info!(adapter = %self.name, room = %r.room, "NICKNAME got {s}: in the room without a nickname");
                }
            }
            // A puppet's nickname change is answered once in the room.
            if r.phase == Phase::Joined {
                return;
            }
            return self.remote_joined(i);
        }
        // A chunk of a message sent.
        let Some(pos) = r.inflight.iter().position(|f| f.tids.contains(tid)) else {
            return;
        };
        if status == 481 {
            // RFC 4975 §7.3.1: the session is gone on the focus.
            return self.remote_down(i, "the room does not know the session (481)", true);
        }
        if status == 200 {
            if let Some(f) = r.inflight.get_mut(pos) {
                f.tids.remove(tid);
                if !f.tids.is_empty() {
                    return;
                }
            }
            if let Some(f) = r.inflight.remove(pos) {
                let _ = f.reply.send(DeliveryOutcome::Delivered);
            }
            return self.puppet_leave_if_done(i);
        }
        if let Some(f) = r.inflight.remove(pos) {
            tracing::info!(adapter = %self.name, room = %r.room, "message {} refused: {status}", f.message.id.as_str());
            let _ = f.reply.send(DeliveryOutcome::Failed(failure_of(status)));
        }
        self.puppet_leave_if_done(i);
    }

    /// In the room: held messages go, the conference events are asked
    /// for.
    fn remote_joined(&mut self, i: usize) {
        let r = &mut self.remotes[i];
        r.phase = Phase::Joined;
        r.down_since = None;
        r.attempt = 0;
        if let Some(p) = r.puppet.as_mut() {
            p.joined_once = true;
        }
        tracing::info!(adapter = %self.name, room = %r.room, "in the room as {:?} ({})", r.nick.as_deref().unwrap_or("(no nickname)"), r.own);
        let held: Vec<(Box<Message>, Reply)> = r.held.drain(..).collect();
        for (m, reply) in held {
            self.remote_write_message(i, m, reply);
        }
        // The room's events are the gateway's participant's to follow.
        if self.remotes[i].puppet.is_some() {
            return self.puppet_leave_if_done(i);
        }
        self.remotes[i].roster.new_subscription();
        self.send_subscribe(i, None);
    }

    /// SEND from the focus: a room message or a private one.
    fn remote_send(
        &mut self,
        i: usize,
        conn: u64,
        m: &codec::Message<'_>,
        frame: &Bytes,
        own: &str,
    ) {
        let chunk = match Incoming::of(m) {
            Incoming::Empty => return self.remote_answer(conn, m, 200, own),
            Incoming::Refused(code) => return self.remote_answer(conn, m, code, own),
            Incoming::Whole(chunk) => {
                let body = Bytes::copy_from_slice(chunk.body);
                let id = chunk.message_id.to_owned();
                return self.remote_message(i, body, id, Some((conn, frame.clone())));
            }
            Incoming::Part(chunk) => chunk,
        };
        let r = &mut self.remotes[i];
        let code = match r.reassembler.handle_chunk(&chunk) {
            Ok(()) => 200,
            Err(e) => e.response_code(),
        };
        let events: Vec<ReassemblyEvent> =
            std::iter::from_fn(|| r.reassembler.poll_event()).collect();
        self.remote_answer(conn, m, code, own);
        for e in events {
            if let ReassemblyEvent::Complete {
                message_id, body, ..
            } = e
            {
                self.remote_message(i, body, message_id, None);
            }
        }
    }

    /// A whole message from the room; `answer` is the SEND to answer once
    /// the hub has it.
    fn remote_message(
        &mut self,
        i: usize,
        body: Bytes,
        msg_id: String,
        answer: Option<(u64, Bytes)>,
    ) {
        let ok = |d: &mut Driver, answer: &Option<(u64, Bytes)>| {
            if let Some((conn, req)) = answer {
                d.answer_bytes(*conn, req, 200);
            }
        };
        let origin = self.origin(Some(msg_id.clone()));
        let mut message = match Message::from_cpim(body, origin, &cpim::Limits::default()) {
            Ok(m) => m,
            Err(e) => {
                tracing::info!(adapter = %self.name, "a message from the room is not CPIM: {e}");
                if let Some((conn, req)) = &answer {
                    self.answer_bytes(*conn, req, 400);
                }
                return;
            }
        };
        let main = self.main_of(i);
        // Our own messages coming back (a focus should not echo them),
        // and the puppets' (the room sends them to every participant).
        if self.is_ours(main, &message.from.address) {
            return ok(self, &answer);
        }
        let (r, m) = (&self.remotes[i], &self.remotes[main]);
        // The room's own notices (welcome, shutting down) are for us.
        if message.from.address.same_user(&r.room) {
            tracing::debug!(adapter = %self.name, room = %r.room, "a notice of the room: {}", body_text(&message));
            return ok(self, &answer);
        }
        // One member, not two, when the room sends its messages From its
        // nickname URI and lists it by its own URI.
        if let Some(entity) = participant::entity_of(&m.roster, &message.from.address, &r.room)
            && let Ok(address) = entity.parse::<Address>()
        {
            message.from.address = address;
        }
        let name = m
            .roster
            .get(&message.from.address.to_string())
            .and_then(Known::name)
            .map(str::to_owned)
            .unwrap_or_else(|| sender_name(&message.from));
        message.from.display = Some(name);
        let room_ref = r.room_ref(&self.name);
        let to_room =
            message.to.is_empty() || message.to.iter().any(|t| t.address.same_user(&r.room));
        if to_room && r.puppet.is_some() {
            // The gateway's own participant passes it on, once.
            return ok(self, &answer);
        }
        if to_room {
            message.room = Some(room_ref);
            return self.submit(message, answer);
        }
        if !message.to.iter().any(|t| r.is_self(&t.address)) {
            tracing::debug!(adapter = %self.name, "a message from the room to someone else: dropped");
            return ok(self, &answer);
        }
        // RFC 7701 §6.2: a private message to a puppet is for its member.
        if let Some(p) = &r.puppet {
            message.to = vec![NameAddr {
                display: Some(p.member.nick.clone()),
                address: p.member.address.clone(),
            }];
            message.cpim = None;
            message.private = true;
            message.room = Some(room_ref);
            return self.submit(message, answer);
        }
        // A private message to the gateway: `nick: text` names whom of
        // the bridged rooms it is for.
        let text = body_text(&message).into_owned();
        let target = participant::private_target(&text, |n| {
            r.members.get(&nick_key(n)).map(|m| m.nick.clone())
        });
        let Some((nick, rest)) = target else {
            ok(self, &answer);
            let from = message.from.address.clone();
            return self.remote_private_notice(
                i,
                &from,
                "This is a gateway. To write privately to someone in the bridged rooms, start with their nickname: \"nick: text\".",
            );
        };
        let Some(member) = r.members.get(&nick_key(&nick)).cloned() else {
            return ok(self, &answer);
        };
        message.to = vec![NameAddr {
            display: Some(member.nick.clone()),
            address: member.address.clone(),
        }];
        message.body = Body(Bytes::copy_from_slice(rest.as_bytes()));
        message.content_type = "text/plain;charset=utf-8".to_owned();
        message.cpim = None;
        message.private = true;
        message.room = Some(room_ref);
        self.submit(message, answer);
    }

    /// A private text from the gateway to a participant of the room.
    fn remote_private_notice(&mut self, i: usize, to: &Address, text: &str) {
        let Some(conn) = self.remotes[i].conn else {
            return;
        };
        let cpim = self.remote_cpim(i, to, text.to_owned());
        // Its outcome is of no interest: kept out of the in-flight list.
        self.remote_chunks(i, conn, cpim);
    }

    fn remote_cpim(&self, i: usize, to: &Address, text: String) -> Bytes {
        let r = &self.remotes[i];
        let from = NameAddr {
            display: r.nick.clone(),
            address: r.own.clone(),
        };
        CpimBuilder::new()
            .from(&from)
            .to(&NameAddr::new(to.clone()))
            .datetime(cpimgate_model::time::Timestamp::now())
            .content_type("text/plain;charset=utf-8")
            .body(Bytes::from(text))
            .build()
    }

    /// Writes a message/cpim body as SEND chunks of `chunk_size`; their
    /// transaction ids.
    fn remote_chunks(&mut self, i: usize, conn: u64, cpim: Bytes) -> HashSet<String> {
        let r = &self.remotes[i];
        let mut tids = HashSet::new();
        let Ok(m) = participant::cpim_send(&token(), &r.to_path, &r.own_path, &token(), cpim)
        else {
            return tids;
        };
        let Ok(mut chunker) = Chunker::new(&m, self.config.chunk_size) else {
            return tids;
        };
        let mut out = Vec::new();
        while !chunker.is_done() {
            // A transaction id whose end-line is in the body is refused:
            // another one is drawn.
            let chunk = (0..4).find_map(|_| {
                let tid = token();
                chunker.next_chunk(&tid).ok().flatten().map(|c| (tid, c))
            });
            match chunk {
                Some((tid, c)) => {
                    tids.insert(tid);
                    out.push(c);
                }
                None => break,
            }
        }
        for c in out {
            self.write(conn, c);
        }
        tids
    }

    /// A hub message for a remote room: sent, or held while the room is
    /// being joined. Returns false when the room is not a remote one.
    pub(super) fn remote_deliver(
        &mut self,
        message: Box<Message>,
        reply: Reply,
    ) -> Result<(), (Box<Message>, Reply)> {
        let Some(main) = message
            .room
            .as_ref()
            .and_then(|r| self.remote_index(&r.address))
        else {
            return Err((message, reply));
        };
        let i = self.route(main, &message);
        self.remote_deliver_via(i, message, reply);
        Ok(())
    }

    /// Which entry says a hub message in room `main`: the sender's
    /// puppet (made now if the sender has none yet, in puppet mode), else
    /// the gateway's participant.
    fn route(&mut self, main: usize, message: &Message) -> usize {
        let r = &self.remotes[main];
        if !r.is_puppet_mode() {
            return main;
        }
        // Most messages come from a member with a puppet already.
        if let Some(&p) = r.puppets.get(&message.from.address.to_string()) {
            return p;
        }
        let member = Member {
            address: message.from.address.clone(),
            nick: sender_name(&message.from),
        };
        self.puppet_open(main, &member).unwrap_or(main)
    }

    /// A hub message sent by entry `i`, or held while it joins.
    fn remote_deliver_via(&mut self, i: usize, message: Box<Message>, reply: Reply) {
        let r = &mut self.remotes[i];
        if r.phase == Phase::Joined {
            self.remote_write_message(i, message, reply);
        } else if r.hold_until().is_some_and(|t| t <= Instant::now()) {
            // Down for longer than a rejoin: the hub keeps it and retries.
            let _ = reply.send(DeliveryOutcome::Failed(unreachable()));
        } else if r.held.len() >= MAX_HELD {
            let _ = reply.send(DeliveryOutcome::Failed(Failure::new(
                FailureKind::Overloaded,
                "too many messages wait for the room",
            )));
        } else {
            r.held.push_back((message, reply));
        }
    }

    /// Relay mode: `<nick> text` from the gateway, to the room or, for a
    /// private message, to the participant it names.
    fn remote_write_message(&mut self, i: usize, message: Box<Message>, reply: Reply) {
        let r = &self.remotes[i];
        let Some(conn) = r.conn else {
            self.remotes[i].held.push_back((message, reply));
            return;
        };
        let to = if message.private {
            match message.to.first() {
                Some(t) => t.address.clone(),
                None => {
                    let _ = reply.send(DeliveryOutcome::Failed(Failure::new(
                        FailureKind::NotFound,
                        "no recipient",
                    )));
                    return;
                }
            }
        } else {
            r.room.clone()
        };
        // A puppet says the text as it is: the room sees who says it.
        let line = if r.puppet.is_some() {
            body_text(&message).into_owned()
        } else {
            render(
                &r.cfg.format,
                &sender_name(&message.from),
                &body_text(&message),
            )
        };
        let cpim = self.remote_cpim(i, &to, line);
        let tids = self.remote_chunks(i, conn, cpim);
        if tids.is_empty() {
            let _ = reply.send(DeliveryOutcome::Failed(Failure::new(
                FailureKind::Internal,
                "the SEND could not be written",
            )));
            return;
        }
        self.remotes[i].inflight.push_back(InFlight {
            message,
            reply,
            tids,
            sent: Instant::now(),
        });
    }

    /// The hub's room events of the bridged rooms: who can be named in a
    /// private message. Returns false when the room is not a remote one.
    pub(super) fn remote_room_event(&mut self, event: &RoomEvent) -> bool {
        let Some(i) = self.remote_index(&event.room.address) else {
            return false;
        };
        let members = &mut self.remotes[i].members;
        match &event.kind {
            RoomEventKind::Join { who } => {
                members.insert(nick_key(&who.nick), who.clone());
            }
            RoomEventKind::Leave { who, .. } | RoomEventKind::Kick { who, .. } => {
                members.retain(|_, m| !m.address.same_user(&who.address));
            }
            RoomEventKind::NickChange { who, new_nick } => {
                members.retain(|_, m| !m.address.same_user(&who.address));
                members.insert(
                    nick_key(new_nick),
                    Member {
                        address: who.address.clone(),
                        nick: new_nick.clone(),
                    },
                );
            }
            RoomEventKind::Roster { participants } => {
                for p in participants {
                    members.insert(nick_key(&p.nick), p.clone());
                }
            }
            _ => {}
        }
        if self.remotes[i].is_puppet_mode() {
            self.puppet_event(i, &event.kind);
        }
        true
    }

    /// Puppet mode: a member of the bridged rooms came, went or changed
    /// nickname.
    fn puppet_event(&mut self, main: usize, kind: &RoomEventKind) {
        match kind {
            RoomEventKind::Join { who } => {
                self.puppet_open(main, who);
            }
            RoomEventKind::Roster { participants } => {
                for p in participants {
                    self.puppet_open(main, p);
                }
            }
            RoomEventKind::Leave { who, .. } | RoomEventKind::Kick { who, .. } => {
                let key = who.address.to_string();
                self.remotes[main].relayed.remove(&key);
                self.puppet_close(main, &key);
            }
            RoomEventKind::NickChange { who, new_nick } => {
                self.puppet_rename(main, &who.address.to_string(), new_nick);
            }
            _ => {}
        }
    }

    /// The puppet of `member` in room `main`, opened (joining) if it has
    /// none; `None` when the member is relayed instead.
    fn puppet_open(&mut self, main: usize, member: &Member) -> Option<usize> {
        let key = member.address.to_string();
        let r = &self.remotes[main];
        if let Some(&p) = r.puppets.get(&key) {
            return Some(p);
        }
        if r.relayed.contains(&key) {
            return None;
        }
        let relay = |d: &mut Driver, why: &str| {
            tracing::info!(adapter = %d.name, room = %d.remotes[main].room, member = %key, "no participant of its own ({why}): relayed through the gateway's");
            d.remotes[main].relayed.insert(key.clone());
            None
        };
        if r.puppets.len() >= r.cfg.max_puppets {
            return relay(self, "max_puppets reached");
        }
        let Some(puppet) = Remote::puppet(main, r, member, &self.config) else {
            return relay(self, "its nickname makes no SIP URI");
        };
        // Two participants of ours with one URI would be one for the room.
        let clash = self.remotes.iter().enumerate().any(|(j, e)| {
            (j == main || e.puppet.as_ref().is_some_and(|p| p.main == main))
                && !e.is_leaving()
                && e.own.same_user(&puppet.own)
        });
        if clash {
            return relay(self, "its URI is one of ours already");
        }
        let slot = match self.remotes.iter().position(|e| e.retired) {
            Some(j) => {
                self.remotes[j] = puppet;
                j
            }
            None => {
                self.remotes.push(puppet);
                self.remotes.len() - 1
            }
        };
        self.remotes[main].puppets.insert(key, slot);
        self.remote_join(slot);
        Some(slot)
    }

    /// The member left: its puppet leaves the room once what it sent is
    /// answered; what it still holds goes through the gateway's
    /// participant.
    fn puppet_close(&mut self, main: usize, key: &str) {
        let Some(p) = self.remotes[main].puppets.remove(key) else {
            return;
        };
        if let Some(pp) = self.remotes[p].puppet.as_mut() {
            pp.leaving = true;
        }
        let held: Vec<(Box<Message>, Reply)> = self.remotes[p].held.drain(..).collect();
        for (m, reply) in held {
            self.remote_deliver_via(main, m, reply);
        }
        self.puppet_leave_if_done(p);
    }

    /// A leaving puppet with nothing in flight leaves (BYE).
    fn puppet_leave_if_done(&mut self, i: usize) {
        let r = &self.remotes[i];
        let leaving = r.puppet.as_ref().is_some_and(|p| p.leaving);
        if leaving && !r.retired && r.inflight.is_empty() && r.held.is_empty() {
            self.puppet_retire(i);
        }
    }

    /// A puppet is out of the room for good: BYE if it is in, its slot
    /// free, its URI remembered, what it holds relayed.
    fn puppet_retire(&mut self, i: usize) {
        let Some(main) = self.remotes[i].puppet.as_ref().map(|p| p.main) else {
            return;
        };
        let joined = self.remotes[i].dialog.is_some();
        self.remote_leave(i, joined);
        let r = &mut self.remotes[i];
        r.retry_at = None;
        r.retired = true;
        let own = r.own.clone();
        let key = r.puppet.as_ref().map(|p| p.key.clone()).unwrap_or_default();
        let held: Vec<(Box<Message>, Reply)> = r.held.drain(..).collect();
        tracing::info!(adapter = %self.name, room = %r.room, "the participant of {key} ({own}) is out of the room");
        let m = &mut self.remotes[main];
        if m.puppets.get(&key) == Some(&i) {
            m.puppets.remove(&key);
        }
        m.former.push_back(own);
        if m.former.len() > FORMER_PUPPETS {
            m.former.pop_front();
        }
        for (message, reply) in held {
            self.remote_deliver_via(main, message, reply);
        }
    }

    /// The member changed nickname: its puppet asks for the new one
    /// (RFC 7701 §7.1; on 425, the next of its tries).
    fn puppet_rename(&mut self, main: usize, key: &str, new_nick: &str) {
        let Some(&p) = self.remotes[main].puppets.get(key) else {
            return;
        };
        let r = &mut self.remotes[p];
        let tries = r.cfg.nickname_tries;
        r.nicks = Nicknames::new(new_nick, tries);
        if let Some(pp) = r.puppet.as_mut() {
            pp.member.nick = new_nick.to_owned();
        }
        if r.phase == Phase::Joined {
            self.send_nickname(p);
        }
    }

    /// A SIP request for a remote room (BYE of its dialog, NOTIFY of its
    /// subscription); false when it is not one.
    pub(super) fn remote_request(&mut self, tx: TxId, req: &sip::Message<'_>) -> bool {
        let call_id = req.call_id().ok().flatten().unwrap_or_default();
        let method = req.method().unwrap_or_default();
        let in_dialog = self
            .remotes
            .iter()
            .position(|r| r.dialog.as_ref().is_some_and(|d| d.call_id() == call_id));
        let in_sub = self
            .remotes
            .iter()
            .position(|r| r.sub.as_ref().is_some_and(|s| s.call_id == call_id));
        match (method, in_dialog, in_sub) {
            ("BYE", Some(i), _) => {
                self.respond(tx, req, 200, "OK", &[], None);
                if let Some(d) = self.remotes[i].dialog.as_mut() {
                    d.terminate();
                }
                self.remotes[i].dialog = None;
                self.remote_down(i, "the room ended the session (BYE)", false);
                true
            }
            ("NOTIFY", _, Some(i)) => {
                self.respond(tx, req, 200, "OK", &[], None);
                self.remote_notify(i, req);
                true
            }
            ("INVITE", Some(_), _) => {
                // A re-INVITE: the session does not move.
                self.respond(tx, req, 488, "Not Acceptable Here", &[], None);
                true
            }
            (_, Some(_), _) | (_, _, Some(_)) => {
                self.respond(
                    tx,
                    req,
                    405,
                    "Method Not Allowed",
                    &[("Allow", ALLOW)],
                    None,
                );
                true
            }
            _ => false,
        }
    }

    /// RFC 6665 §4.1.3: a NOTIFY of the subscription; RFC 4575 §4.6: its
    /// document applied to the roster.
    fn remote_notify(&mut self, i: usize, req: &sip::Message<'_>) {
        let terminated = req
            .get("Subscription-State")
            .is_some_and(|s| s.trim().to_ascii_lowercase().starts_with("terminated"));
        if !req.body().is_empty() {
            match read(req.body()) {
                Ok(doc) => {
                    let changes = self.remotes[i].roster.apply(&doc);
                    self.remote_roster_changes(i, changes);
                }
                Err(e) => {
                    tracing::info!(adapter = %self.name, room = %self.remotes[i].room, "a conference document: {e}");
                }
            }
        }
        if terminated {
            let r = &mut self.remotes[i];
            r.sub = None;
            // RFC 6665 §4.1.3: the subscriber may subscribe again.
            if r.phase == Phase::Joined {
                r.resubscribe_at = Some(Instant::now() + Duration::from_secs(2));
            }
        }
    }

    fn remote_roster_changes(&mut self, i: usize, changes: Vec<Change>) {
        let r = &self.remotes[i];
        let room = r.room_ref(&self.name);
        let events: Vec<RoomEvent> = participant::room_events(changes, |a| self.is_ours(i, a))
            .into_iter()
            .map(|kind| RoomEvent {
                id: MessageId::random(),
                room: room.clone(),
                origin: self.origin(None),
                trail: Vec::new(),
                kind,
            })
            .collect();
        for event in events {
            if self
                .inbound
                .try_send(Inbound::RoomEvent(Box::new(event)))
                .is_err()
            {
                tracing::warn!(adapter = %self.name, "the hub is busy: a room event of {} is dropped", room.address);
            }
        }
    }

    /// SUBSCRIBE to the room's conference events (RFC 4575 §3, RFC 6665
    /// §4.1.2): a new subscription, or a refresh within its dialog;
    /// `expires` 0 ends it.
    fn send_subscribe(&mut self, i: usize, expires: Option<u32>) {
        let (sent_by, transport) = self.sent_by();
        let branch = format!("{}{}", transaction::MAGIC_COOKIE, token());
        let Some(contact) = self.remotes.get(i).map(|r| self.own_contact(r)) else {
            return;
        };
        let r = &mut self.remotes[i];
        let within = r.sub.as_ref().and_then(|s| s.dest.clone());
        let Some(dest) = within.or_else(|| r.dest.clone()) else {
            return;
        };
        let expires = expires.unwrap_or(r.cfg.subscribe_expires).to_string();
        let via = Via {
            transport,
            sent_by: &sent_by,
            branch: &branch,
        };
        let sub = r.sub.get_or_insert_with(|| Sub {
            call_id: token(),
            from_tag: token(),
            cseq: 0,
            dialog: None,
            dest: None,
            request: Bytes::new(),
            refresh_at: None,
            authorization: None,
        });
        let base = match sub.dialog.as_mut() {
            Some(d) => d.request("SUBSCRIBE", &via),
            None => {
                sub.cseq += 1;
                SipMessage::request("SUBSCRIBE", &r.room.to_string()).and_then(|mut m| {
                    m.push_header(
                        "Via",
                        &format!("SIP/2.0/{transport} {sent_by};branch={branch}"),
                    )?;
                    m.push_header("Max-Forwards", "70")?;
                    m.push_header("From", &format!("<{}>;tag={}", r.own, sub.from_tag))?;
                    m.push_header("To", &format!("<{}>", r.room))?;
                    m.push_header("Call-ID", &sub.call_id)?;
                    m.push_header("CSeq", &format!("{} SUBSCRIBE", sub.cseq))?;
                    if let Some((name, value)) = &sub.authorization {
                        m.push_header(name, value)?;
                    }
                    Ok(m)
                })
            }
        };
        let Ok(mut m) = base else {
            return;
        };
        let _ = m.push_header("Contact", &contact);
        let _ = m.push_header("Event", crate::conference::EVENT_PACKAGE);
        let _ = m.push_header("Accept", crate::conference::CONTENT_TYPE);
        let _ = m.push_header("Expires", &expires);
        let bytes = Bytes::from(m.to_bytes());
        sub.request = bytes.clone();
        let sent = self.layer.send_request(
            Instant::now(),
            OutgoingRequest {
                method: Method::Subscribe,
                branch,
                bytes,
                reliable: dest.transport.is_reliable(),
                dest,
            },
        );
        if let Ok(tx) = sent {
            self.remote_txs.insert(tx, (i, TxKind::Subscribe));
        }
    }

    fn subscribe_answered(&mut self, i: usize, status: u16, bytes: &Bytes) {
        let name = self.name.clone();
        let r = &mut self.remotes[i];
        let Some(sub) = r.sub.as_mut() else {
            return;
        };
        let resp = sip::parse(bytes).ok();
        if (200..300).contains(&status) {
            let request = sub.dialog.is_none().then(|| sub.request.clone());
            if let (Some(request), Some(resp)) = (request, &resp) {
                let dialog = sip::parse(&request)
                    .ok()
                    .and_then(|req| Dialog::uac(&req, resp).ok());
                let dest = dialog.as_ref().and_then(|d| self.in_dialog_dest(i, d));
                if let Some(sub) = self.remotes[i].sub.as_mut() {
                    sub.dialog = dialog;
                    sub.dest = dest;
                }
            }
            let r = &mut self.remotes[i];
            let Some(sub) = r.sub.as_mut() else {
                return;
            };
            let granted = resp
                .as_ref()
                .and_then(|m| m.expires().ok().flatten())
                .unwrap_or(r.cfg.subscribe_expires);
            // RFC 6665 §4.1.2.1: refresh before it runs out.
            let refresh = Duration::from_secs(u64::from(granted.max(30)) * 4 / 5);
            sub.refresh_at = Some(Instant::now() + refresh);
            return;
        }
        // RFC 3261 §22.2: one challenge is answered (a new SUBSCRIBE,
        // the next CSeq).
        if matches!(status, 401 | 407) && sub.authorization.is_none() && sub.dialog.is_none() {
            let auth = resp
                .as_ref()
                .and_then(|resp| self.authorization(i, resp, "SUBSCRIBE", b""));
            if let Some(auth) = auth {
                if let Some(sub) = self.remotes[i].sub.as_mut() {
                    sub.authorization = Some(auth);
                }
                return self.send_subscribe(i, None);
            }
        }
        let r = &mut self.remotes[i];
        tracing::info!(adapter = %name, room = %r.room, "SUBSCRIBE got {status}");
        // 481 to a refresh: the subscription is gone; a new one later.
        r.sub = None;
        if r.phase == Phase::Joined {
            r.resubscribe_at = Some(Instant::now() + Duration::from_secs(30));
        }
    }

    /// Out of the room (a fault, or `bye` from our side): the session and
    /// connection end, unanswered messages wait in order for the next
    /// join, which comes after a backoff.
    pub(super) fn remote_down(&mut self, i: usize, why: &str, bye: bool) {
        if self.remotes[i].retired {
            return;
        }
        tracing::warn!(adapter = %self.name, room = %self.remotes[i].room, "not in the room as {}: {why}", self.remotes[i].own);
        self.remote_leave(i, bye);
        // A puppet the room refused, or whose member left: given up, its
        // member relayed. Other faults: joined again, as the room is.
        if let Some(p) = &self.remotes[i].puppet
            && (p.leaving || (p.refused && !p.joined_once))
        {
            let (main, key) = (p.main, p.key.clone());
            if !p.leaving {
                self.remotes[main].relayed.insert(key);
            }
            return self.puppet_retire(i);
        }
        let r = &mut self.remotes[i];
        let min = Duration::from_millis(r.cfg.rejoin_min_ms);
        let max = Duration::from_millis(r.cfg.rejoin_max_ms);
        let wait = participant::backoff(r.attempt, min, max, rand::random::<f64>());
        r.attempt = r.attempt.saturating_add(1);
        r.retry_at = Some(Instant::now() + wait);
        tracing::info!(adapter = %self.name, room = %r.room, "joining again in {wait:?}");
    }

    fn remote_leave(&mut self, i: usize, bye: bool) {
        if bye {
            self.remote_bye(i);
        }
        let r = &mut self.remotes[i];
        if r.phase == Phase::Joined {
            r.down_since = Some(Instant::now());
        }
        r.phase = Phase::Idle;
        r.invite = None;
        r.dialog = None;
        r.dialog_dest = None;
        r.ack = None;
        r.sub = None;
        r.resubscribe_at = None;
        r.bind_tid = None;
        r.nick_tid = None;
        r.asked_at = None;
        r.nick = None;
        r.reassembler = super::reassembler(&self.config);
        // Sent but not answered: first in line for the next join.
        while let Some(f) = r.inflight.pop_back() {
            r.held.push_front((f.message, f.reply));
        }
        r.target = None;
        if let Some(conn) = r.conn.take()
            && self.remote_of_conn(conn).is_none()
        {
            // The last session on it: the writer ends, which closes the
            // connection.
            self.conns.remove(&conn);
        }
        self.remote_txs
            .retain(|_, (room, kind)| *room != i || *kind == TxKind::Other);
    }

    /// BYE (RFC 3261 §15.1.1) and the subscription's end (Expires: 0).
    fn remote_bye(&mut self, i: usize) {
        if self.remotes[i]
            .sub
            .as_ref()
            .is_some_and(|s| s.dialog.is_some())
        {
            self.send_subscribe(i, Some(0));
        }
        let (sent_by, transport) = self.sent_by();
        let branch = format!("{}{}", transaction::MAGIC_COOKIE, token());
        let r = &mut self.remotes[i];
        let (Some(dialog), Some(dest)) = (r.dialog.as_mut(), r.dialog_dest.clone()) else {
            return;
        };
        let via = Via {
            transport,
            sent_by: &sent_by,
            branch: &branch,
        };
        let Ok(bye) = dialog.request("BYE", &via) else {
            return;
        };
        dialog.terminate();
        let sent = self.layer.send_request(
            Instant::now(),
            OutgoingRequest {
                method: Method::Bye,
                branch,
                bytes: Bytes::from(bye.to_bytes()),
                reliable: dest.transport.is_reliable(),
                dest,
            },
        );
        if let Ok(tx) = sent {
            self.remote_txs.insert(tx, (i, TxKind::Other));
        }
    }

    /// The adapter stops: BYE to every room; what waits is failed as
    /// unreachable (the hub keeps it and tries again after a restart).
    pub(super) fn remote_shutdown(&mut self) {
        for i in 0..self.remotes.len() {
            if self.remotes[i].retired {
                continue;
            }
            let joined = self.remotes[i].dialog.is_some();
            self.remote_leave(i, joined);
            let r = &mut self.remotes[i];
            r.retry_at = None;
            for (_, reply) in r.held.drain(..) {
                let _ = reply.send(DeliveryOutcome::Failed(Failure::new(
                    FailureKind::Unreachable,
                    "the gateway is stopping",
                )));
            }
        }
    }
}
