//! `[adapters.NAME]` with `kind = "msrp"`: the chat rooms the gateway
//! hosts as a conference focus and MSRP switch (RFC 7701).
//!
//! ```toml
//! [adapters.chat]
//! kind = "msrp"
//! domain = "chat.example.com"        # rooms are sip:<name>@chat.example.com
//! sip_udp = ["0.0.0.0:5062"]         # where INVITEs to the rooms arrive
//! sip_tcp = ["0.0.0.0:5062"]
//! msrp = "0.0.0.0:2855"              # the MSRP listener (TCP)
//! msrps = "0.0.0.0:2856"             # MSRP over TLS (needs tls_cert, tls_key)
//! tls_cert = "/etc/cpimgate/chat.pem"
//! tls_key = "/etc/cpimgate/chat.key"
//! host = "chat.example.com"          # written in a=path, c= and Contact
//! create_rooms = false               # an INVITE to an unknown room gets 404
//! chunk_size = 2048                  # outgoing SEND chunks, octets
//! max_message_size = 1048576         # larger gets 413 (RFC 4975 §10.5), mid-chunk too
//! keepalive_ms = 0                   # an empty SEND after this much silence; 0: none
//! response_within_ms = 30000         # a SEND asking for a response fails (408) after it
//! connect_within_ms = 30000          # a new connection must send its first message by then
//! max_connections = 8192             # MSRP connections open at once (each listener)
//! max_connections_per_ip = 0         # from one address (each listener); 0: no cap
//! message_timeout_ms = 60000         # first byte to last of one chunk (slowloris)
//! chunk_timeout_ms = 540000          # between two chunks of one message (RFC 7701 §6.1)
//! write_timeout_ms = 30000           # a participant that reads nothing this long is cut off
//! write_queue = 1024                 # messages waiting per connection; more: cut off
//! sip_idle_timeout_ms = 120000       # the rooms' SIP TCP listener: a silent connection is closed
//! sip_message_timeout_ms = 10000     # first byte to last of a SIP message (slowloris)
//! sip_write_timeout_ms = 10000       # a SIP peer that does not read is cut off
//! notify_interval_ms = 5000          # conference-event NOTIFYs to one subscriber: at
//!                                    # most this often (RFC 4575 §3.9); 0: at once
//!
//! [[adapters.chat.rooms]]
//! name = "chatroom22"
//! nicknames = true
//! private_messages = true
//! welcome = "Welcome to room 22."
//! anonymous = false                  # true: shown by nickname URI only; a
//!                                    # nickname is needed before sending
//! ```
//!
//! A room's address, in `[[bridge]]` and everywhere else, is its SIP URI:
//! `sip:chatroom22@chat.example.com` (DESIGN.md "Addressing").
//!
//! The gateway can also join rooms hosted by another SIP chat server, as
//! one participant that relays for the bridged rooms (RFC 7701 §5.2),
//! and in puppet mode also as one participant per member of the bridged
//! rooms:
//!
//! ```toml
//! [[adapters.chat.remote_rooms]]
//! uri = "sip:chatroom22@chat.example.org"  # the room; its address in [[bridge]]
//! nickname = "gateway"             # tried, then gateway2, gateway3... on 425
//! from = "sip:gateway@chat.example.com"   # our SIP URI; sip:<nickname>@<domain> by default
//! proxy = "192.0.2.10:5060"        # outbound proxy; else the URI's host:port
//! credentials = { user = "gw", password = "secret" }  # for a 401/407, answered once
//! mode = "relay"                   # one participant for everyone; "puppet": one
//!                                  # more per bridged member, From
//!                                  # sip:<their nickname>@<domain>
//! max_puppets = 100                # puppet mode: the others are relayed
//! tls = false                      # true: MSRP over TLS to the room (msrps:)
//! format = "<{nick}> {text}"       # how a bridged message is written in the room
//! nickname_tries = 5               # how many nicknames before giving up
//! subscribe_expires = 600          # seconds asked for the conference events
//! rejoin_min_ms = 1000             # backoff after a BYE, a lost connection,
//! rejoin_max_ms = 60000            # a failed INVITE (exponential, jittered)
//! hold_ms = 20000                  # how long messages for the room wait, in
//!                                  # order, while it is (re)joined; then they
//!                                  # fail as unreachable and the hub retries
//! ```
//!
//! A private message from the room to the gateway is relayed when it
//! starts with the nickname of a member of the bridged rooms
//! (`zoe: hello`); otherwise the sender is told how to address one.

use std::net::SocketAddr;
use std::path::PathBuf;

use cpimgate_model::address::{Address, SipUri};
use serde::{Deserialize, Serialize};

use crate::room::Policy;

/// The MSRP adapter's configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MsrpConfig {
    /// The domain of the rooms' SIP URIs.
    pub domain: String,
    /// SIP UDP listen addresses (INVITE, ACK, BYE, NICKNAME's session).
    #[serde(default)]
    pub sip_udp: Vec<SocketAddr>,
    /// SIP TCP listen addresses.
    #[serde(default)]
    pub sip_tcp: Vec<SocketAddr>,
    /// The MSRP listener (RFC 4975 §6: participants connect to the path
    /// the focus gives them).
    pub msrp: SocketAddr,
    /// The MSRP over TLS listener (`msrps:` paths, `TCP/TLS/MSRP` media
    /// lines, RFC 4975 §6, §14.2); an offer over TLS is refused without it.
    #[serde(default)]
    pub msrps: Option<SocketAddr>,
    /// PEM certificate chain of the TLS listener.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// PEM file of CA certificates that sign participants' client
    /// certificates, when `tls_require_client_cert` is on, and (with the
    /// system's roots) the certificates of rooms elsewhere joined over
    /// TLS.
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
    /// Whether participants must show a client certificate (off by
    /// default: chat clients seldom have one; their SIP identity is
    /// checked by the proxy in front).
    #[serde(default)]
    pub tls_require_client_cert: bool,
    /// The host written in `a=path`, `c=`, `o=` and Contact; the MSRP
    /// listener's address when absent (`127.0.0.1` for a wildcard one).
    #[serde(default)]
    pub host: Option<String>,
    /// The rooms, created when the adapter starts.
    #[serde(default)]
    pub rooms: Vec<RoomConfig>,
    /// Whether an INVITE to an unknown room creates it (with the default
    /// policy); else it gets 404.
    #[serde(default)]
    pub create_rooms: bool,
    /// The largest chunk the switch sends, in octets of body.
    #[serde(default = "default_chunk_size")]
    pub chunk_size: usize,
    /// The largest message taken, in octets; a larger one is stopped with
    /// 413 (RFC 4975 §7.3.1).
    #[serde(default = "default_max_message_size")]
    pub max_message_size: usize,
    /// How long, in milliseconds, a participant may take to connect after
    /// its INVITE was answered, and a new connection to send its first
    /// message (RFC 4975 §5.4); then the session ends with a BYE, the
    /// connection is closed.
    #[serde(default = "default_connect_within")]
    pub connect_within_ms: u64,
    /// Most MSRP connections open at once on each listener; past it new
    /// ones are closed at once (with a log line). The cap of connections
    /// on the rooms' SIP listeners too.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Most connections accepted from one IP address at once on each
    /// listener (0, the default: no cap per address; participants behind
    /// one NAT or relay share an address). The SIP listeners' too.
    #[serde(default)]
    pub max_connections_per_ip: usize,
    /// The longest one MSRP message (a chunk) may take to arrive, from
    /// its first byte to its end-line, milliseconds: a slower sender
    /// (slowloris) is cut off and its sessions end with a BYE.
    #[serde(default = "default_message_timeout")]
    pub message_timeout_ms: u64,
    /// The chunk reception timer of RFC 7701 §6.1, milliseconds: a
    /// chunked message whose next chunk does not come within it counts as
    /// aborted. What arrived of it is dropped and its copies end with an
    /// abort chunk (`#`); the session goes on. The RFC suggests the order
    /// of a TCP timeout (540 s), not a few seconds.
    #[serde(default = "default_chunk_timeout")]
    pub chunk_timeout_ms: u64,
    /// How long, in milliseconds, a connection with something to write
    /// may make no progress: a participant that does not read while the
    /// room talks is cut off (reset), its session ends with a BYE, and
    /// the others are not held up.
    #[serde(default = "default_write_timeout")]
    pub write_timeout_ms: u64,
    /// How many messages (chunks) may wait to be written to one
    /// connection; one more cuts it off like `write_timeout_ms` (RFC 7701
    /// §6.4, congestion).
    #[serde(default = "default_write_queue")]
    pub write_queue: usize,
    /// The rooms' SIP listeners (INVITE, SUBSCRIBE, BYE): a TCP connection
    /// without traffic this long, in milliseconds, is closed.
    #[serde(default = "default_sip_idle_timeout")]
    pub sip_idle_timeout_ms: u64,
    /// The rooms' SIP listeners: the longest one SIP message may take from
    /// its first byte to its last, in milliseconds (slowloris).
    #[serde(default = "default_sip_message_timeout")]
    pub sip_message_timeout_ms: u64,
    /// The rooms' SIP listeners: how long a write may make no progress, in
    /// milliseconds, before the connection is reset (a peer that does not
    /// read).
    #[serde(default = "default_sip_write_timeout")]
    pub sip_write_timeout_ms: u64,
    /// RFC 3261 timer T1, milliseconds.
    #[serde(default = "default_t1")]
    pub t1_ms: u64,
    /// How long, in milliseconds, a participant's connection may stay
    /// silent before the room sends it an empty SEND that asks for a
    /// response (RFC 4975 §5.4, §7.1.1); 0 (the default) sends none.
    /// One left without a response for `response_within_ms` ends the
    /// session with a BYE, like a lost connection: it finds connections
    /// that died without a word (a NAT that forgot them).
    #[serde(default)]
    pub keepalive_ms: u64,
    /// How long, in milliseconds, a SEND of the gateway that asks for a
    /// response waits for it (RFC 4975 §7.1.1: 30 seconds); then it
    /// counts as failed (408): a keep-alive ends its session, a message
    /// sent into a room elsewhere makes the gateway join it again and
    /// send the message again.
    #[serde(default = "default_response_within")]
    pub response_within_ms: u64,
    /// The shortest time between two NOTIFYs of the conference events
    /// to one subscriber, milliseconds (RFC 4575 §3.9 recommends 5
    /// seconds, the default). Changes that come sooner are held and go
    /// out together in one partial NOTIFY, each user once in its latest
    /// state; 0 sends each change at once. The first NOTIFY of a
    /// subscription (full state) and its last are never held. At most
    /// 60000: the shortest subscription lasts a minute.
    #[serde(default = "default_notify_interval")]
    pub notify_interval_ms: u64,
    /// Whether INVITEs and SUBSCRIBEs from outside `trusted` must
    /// authenticate with digest (RFC 3261 §22): their From is then the
    /// identity the room checks CPIM From against (RFC 7701 §6.1).
    #[serde(default)]
    pub authenticate: bool,
    /// Source addresses never challenged (the proxy in front, which
    /// authenticated its users).
    #[serde(default)]
    pub trusted: Vec<std::net::IpAddr>,
    /// The accounts participants authenticate as; the From of an
    /// authenticated INVITE must name the account's user.
    #[serde(default)]
    pub accounts: Vec<cpimgate_sip::config::Account>,
    /// Rooms elsewhere that the gateway joins as a participant.
    #[serde(default)]
    pub remote_rooms: Vec<RemoteRoomConfig>,
}

/// How the gateway takes part in a room elsewhere.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoteMode {
    /// One participant, the gateway, writes every bridged message as
    /// `format` (`<nick> text`).
    #[default]
    Relay,
    /// Besides the gateway's own participant, one participant per member
    /// of the bridged rooms (its own INVITE, MSRP session and nickname),
    /// so that the room sees real participants; beyond `max_puppets`,
    /// members are relayed as in `relay`.
    Puppet,
}

/// One room elsewhere (`[[adapters.NAME.remote_rooms]]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteRoomConfig {
    /// The room's SIP URI; its address in `[[bridge]]`.
    pub uri: String,
    /// The nickname asked for (RFC 7701 §7.1); on 425 a number is added.
    pub nickname: String,
    /// The gateway's SIP URI in the room (INVITE From, CPIM From);
    /// `sip:<nickname>@<domain>` when absent.
    #[serde(default)]
    pub from: Option<String>,
    /// The outbound proxy, `host:port`; the URI's host and port (5060)
    /// when absent.
    #[serde(default)]
    pub proxy: Option<String>,
    /// What a digest challenge (401, 407) is answered with, once.
    #[serde(default)]
    pub credentials: Option<cpimgate_sip::config::Credentials>,
    /// How the gateway takes part.
    #[serde(default)]
    pub mode: RemoteMode,
    /// The text of a bridged message in the room: `{nick}` and `{text}`.
    #[serde(default = "default_format")]
    pub format: String,
    /// How many nicknames are tried (`nickname`, `nickname2`, ...).
    #[serde(default = "default_nickname_tries")]
    pub nickname_tries: u32,
    /// The subscription's duration asked for, seconds (RFC 6665 §4.1.2.1).
    #[serde(default = "default_subscribe_expires")]
    pub subscribe_expires: u32,
    /// The first wait before joining again, milliseconds.
    #[serde(default = "default_rejoin_min")]
    pub rejoin_min_ms: u64,
    /// The longest wait before joining again, milliseconds.
    #[serde(default = "default_rejoin_max")]
    pub rejoin_max_ms: u64,
    /// How long messages for the room are held, in order, while it is
    /// being joined, milliseconds; after that they fail as unreachable
    /// (the hub keeps and retries them). Keep it below the hub's
    /// `delivery_timeout_ms`.
    #[serde(default = "default_hold")]
    pub hold_ms: u64,
    /// Puppet mode: the most members with a participant of their own in
    /// the room; the others are relayed through the gateway's.
    #[serde(default = "default_max_puppets")]
    pub max_puppets: usize,
    /// MSRP over TLS to the room (`TCP/TLS/MSRP`, an `msrps:` path; RFC
    /// 4975 §14.1): the focus's certificate is checked against the
    /// system's roots and `tls_ca`, for the host of its path.
    #[serde(default)]
    pub tls: bool,
}

fn default_hold() -> u64 {
    20_000
}

fn default_max_puppets() -> usize {
    100
}

fn default_format() -> String {
    "<{nick}> {text}".to_owned()
}

fn default_nickname_tries() -> u32 {
    5
}

fn default_subscribe_expires() -> u32 {
    600
}

fn default_rejoin_min() -> u64 {
    1000
}

fn default_rejoin_max() -> u64 {
    60_000
}

impl RemoteRoomConfig {
    /// A remote room at `uri` joined as `nickname`, defaults elsewhere.
    pub fn new(uri: &str, nickname: &str) -> RemoteRoomConfig {
        RemoteRoomConfig {
            uri: uri.to_owned(),
            nickname: nickname.to_owned(),
            from: None,
            proxy: None,
            credentials: None,
            mode: RemoteMode::Relay,
            format: default_format(),
            nickname_tries: default_nickname_tries(),
            subscribe_expires: default_subscribe_expires(),
            rejoin_min_ms: default_rejoin_min(),
            rejoin_max_ms: default_rejoin_max(),
            hold_ms: default_hold(),
            max_puppets: default_max_puppets(),
            tls: false,
        }
    }

    /// The room's URI.
    pub fn room_uri(&self) -> Option<SipUri> {
        match self.uri.parse::<Address>() {
            Ok(Address::Sip(u)) if u.user().is_some() => Some(u),
            _ => None,
        }
    }

    /// The gateway's URI in the room.
    pub fn own_uri(&self, domain: &str) -> Option<SipUri> {
        match &self.from {
            Some(f) => match f.parse::<Address>() {
                Ok(Address::Sip(u)) => Some(u),
                _ => None,
            },
            None => SipUri::new(Some(&self.nickname), domain).ok(),
        }
    }

    /// Where the INVITE and SUBSCRIBE go: the proxy, else the URI's host
    /// and port.
    pub fn next_hop(&self) -> Option<(String, u16)> {
        match &self.proxy {
            Some(p) => {
                let (host, port) = p.rsplit_once(':')?;
                let host = host.trim_start_matches('[').trim_end_matches(']');
                Some((host.to_owned(), port.parse().ok()?))
            }
            None => {
                let u = self.room_uri()?;
                let host = u.host().to_string();
                let host = host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned();
                Some((host, u.port().unwrap_or(5060)))
            }
        }
    }
}

/// One room (`[[adapters.NAME.rooms]]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomConfig {
    /// The user part of the room URI.
    pub name: String,
    /// Whether nicknames may be reserved (RFC 7701 §7).
    #[serde(default = "yes")]
    pub nicknames: bool,
    /// Whether private messages are relayed (RFC 7701 §6.2).
    #[serde(default = "yes")]
    pub private_messages: bool,
    /// The most sessions at once.
    #[serde(default = "default_max_participants")]
    pub max_participants: usize,
    /// A text sent from the room to each participant who joins (REQ-10).
    #[serde(default)]
    pub welcome: Option<String>,
    /// Whether participants are shown to the others, in the room, in the
    /// conference events and in the bridged worlds, by their nickname URI
    /// only, never their SIP URI (RFC 7701 §2 "Anonymous URI", §6.1). A
    /// participant must reserve a nickname before it sends (403 until
    /// then). Needs `nicknames = true`.
    #[serde(default)]
    pub anonymous: bool,
}

fn yes() -> bool {
    true
}

fn default_chunk_size() -> usize {
    2048
}

fn default_max_message_size() -> usize {
    1_048_576
}

fn default_max_participants() -> usize {
    10_000
}

fn default_connect_within() -> u64 {
    30_000
}

fn default_t1() -> u64 {
    500
}

fn default_max_connections() -> usize {
    8192
}

fn default_message_timeout() -> u64 {
    60_000
}

fn default_chunk_timeout() -> u64 {
    540_000
}

fn default_write_timeout() -> u64 {
    30_000
}

fn default_sip_idle_timeout() -> u64 {
    120_000
}

fn default_sip_message_timeout() -> u64 {
    10_000
}

fn default_sip_write_timeout() -> u64 {
    10_000
}

fn default_write_queue() -> usize {
    1024
}

fn default_response_within() -> u64 {
    30_000
}

/// RFC 4575 §3.9: not more than one notification every 5 seconds.
fn default_notify_interval() -> u64 {
    5000
}

/// The longest `notify_interval_ms`: the shortest subscription granted
/// (one minute, the conference package's Min-Expires here).
const MAX_NOTIFY_INTERVAL_MS: u64 = 60_000;

impl RoomConfig {
    /// The room's policy.
    pub fn policy(&self) -> Policy {
        Policy {
            nicknames: self.nicknames,
            private_messages: self.private_messages,
            max_participants: self.max_participants,
            anonymous: self.anonymous,
        }
    }
}

impl MsrpConfig {
    /// A configuration for rooms of `domain` with the MSRP listener on
    /// `msrp` and defaults elsewhere.
    pub fn new(domain: &str, msrp: SocketAddr) -> MsrpConfig {
        MsrpConfig {
            domain: domain.to_owned(),
            sip_udp: Vec::new(),
            sip_tcp: Vec::new(),
            msrp,
            msrps: None,
            tls_cert: None,
            tls_key: None,
            tls_ca: None,
            tls_require_client_cert: false,
            host: None,
            rooms: Vec::new(),
            create_rooms: false,
            chunk_size: default_chunk_size(),
            max_message_size: default_max_message_size(),
            connect_within_ms: default_connect_within(),
            max_connections: default_max_connections(),
            max_connections_per_ip: 0,
            message_timeout_ms: default_message_timeout(),
            chunk_timeout_ms: default_chunk_timeout(),
            write_timeout_ms: default_write_timeout(),
            write_queue: default_write_queue(),
            sip_idle_timeout_ms: default_sip_idle_timeout(),
            sip_message_timeout_ms: default_sip_message_timeout(),
            sip_write_timeout_ms: default_sip_write_timeout(),
            t1_ms: default_t1(),
            keepalive_ms: 0,
            response_within_ms: default_response_within(),
            notify_interval_ms: default_notify_interval(),
            authenticate: false,
            trusted: Vec::new(),
            accounts: Vec::new(),
            remote_rooms: Vec::new(),
        }
    }

    /// The URI of the room `name`.
    pub fn room_uri(&self, name: &str) -> Option<Address> {
        SipUri::new(Some(name), &self.domain).ok().map(Address::Sip)
    }

    /// The host written in paths and Contacts.
    pub fn host(&self) -> String {
        match &self.host {
            Some(h) => h.clone(),
            None if self.msrp.ip().is_unspecified() => "127.0.0.1".to_owned(),
            None => match self.msrp.ip() {
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                v4 => v4.to_string(),
            },
        }
    }

    /// Checks what serde cannot; the error starts with the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.domain.is_empty() || self.domain.contains(['@', ':', ';', '/', ' ']) {
            return Err(format!("domain: {:?} is not a host name", self.domain));
        }
        if self.sip_udp.is_empty() && self.sip_tcp.is_empty() {
            return Err(
                "sip_udp: give at least one SIP listen address (sip_udp or sip_tcp)".into(),
            );
        }
        if self.msrps.is_some() && (self.tls_cert.is_none() || self.tls_key.is_none()) {
            return Err("msrps: a TLS listener needs tls_cert and tls_key".into());
        }
        if self.chunk_size < 64 {
            return Err("chunk_size: must be at least 64".into());
        }
        if self.max_message_size == 0 {
            return Err("max_message_size: must be at least 1".into());
        }
        if self.authenticate && self.accounts.is_empty() {
            return Err("accounts: authenticate = true needs at least one account".into());
        }
        if self.connect_within_ms == 0 {
            return Err("connect_within_ms: must be at least 1".into());
        }
        if self.t1_ms == 0 {
            return Err("t1_ms: must be at least 1".into());
        }
        for (key, n) in [
            ("max_connections", self.max_connections as u64),
            ("message_timeout_ms", self.message_timeout_ms),
            ("chunk_timeout_ms", self.chunk_timeout_ms),
            ("write_timeout_ms", self.write_timeout_ms),
            ("sip_idle_timeout_ms", self.sip_idle_timeout_ms),
            ("sip_message_timeout_ms", self.sip_message_timeout_ms),
            ("sip_write_timeout_ms", self.sip_write_timeout_ms),
            ("write_queue", self.write_queue as u64),
        ] {
            if n == 0 {
                return Err(format!("{key}: must be at least 1"));
            }
        }
        if self.response_within_ms == 0 {
            return Err("response_within_ms: must be at least 1".into());
        }
        if self.notify_interval_ms > MAX_NOTIFY_INTERVAL_MS {
            return Err(format!(
                "notify_interval_ms: must be at most {MAX_NOTIFY_INTERVAL_MS} (0: no spacing)"
            ));
        }
        for (i, r) in self.rooms.iter().enumerate() {
            if self.room_uri(&r.name).is_none() || r.name.is_empty() {
                return Err(format!(
                    "rooms[{i}].name: {:?} is not a SIP user part",
                    r.name
                ));
            }
            // The nickname URI is an anonymous participant's only identity.
            if r.anonymous && !r.nicknames {
                return Err(format!(
                    "rooms[{i}].anonymous: an anonymous room needs nicknames = true"
                ));
            }
            if self.rooms[..i]
                .iter()
                .any(|o| o.name.eq_ignore_ascii_case(&r.name))
            {
                return Err(format!("rooms[{i}].name: {:?} is named twice", r.name));
            }
            if r.max_participants == 0 {
                return Err(format!("rooms[{i}].max_participants: must be at least 1"));
            }
        }
        for (i, r) in self.remote_rooms.iter().enumerate() {
            let key = |k: &str| format!("remote_rooms[{i}].{k}");
            if r.room_uri().is_none() {
                return Err(format!(
                    "{}: {:?} is not a SIP URI with a user part",
                    key("uri"),
                    r.uri
                ));
            }
            if self.remote_rooms[..i]
                .iter()
                .any(|o| o.room_uri() == r.room_uri())
            {
                return Err(format!("{}: {:?} is named twice", key("uri"), r.uri));
            }
            if r.nickname.is_empty() || r.nickname.chars().any(char::is_control) {
                return Err(format!(
                    "{}: {:?} is not a nickname",
                    key("nickname"),
                    r.nickname
                ));
            }
            if r.own_uri(&self.domain).is_none() {
                return Err(format!("{}: not a SIP URI", key("from")));
            }
            if r.next_hop().is_none() {
                return Err(format!("{}: give host:port", key("proxy")));
            }
            if r.nickname_tries == 0 {
                return Err(format!("{}: must be at least 1", key("nickname_tries")));
            }
            if r.subscribe_expires < 60 {
                return Err(format!("{}: must be at least 60", key("subscribe_expires")));
            }
            if r.rejoin_min_ms == 0 || r.rejoin_max_ms < r.rejoin_min_ms {
                return Err(format!(
                    "{}: must be at least 1 and at most rejoin_max_ms",
                    key("rejoin_min_ms")
                ));
            }
            if r.mode == RemoteMode::Puppet && r.max_puppets == 0 {
                return Err(format!(
                    "{}: must be at least 1 in puppet mode (or mode = \"relay\")",
                    key("max_puppets")
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_documented_example_reads_and_validates() {
        let text = r#"
            domain = "chat.example.com"
            sip_udp = ["0.0.0.0:5062"]
            sip_tcp = ["0.0.0.0:5062"]
            msrp = "0.0.0.0:2855"
            host = "chat.example.com"
            [[rooms]]
            name = "chatroom22"
            welcome = "Welcome to room 22."
        "#;
        let c: MsrpConfig = toml::from_str(text).unwrap();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.chunk_size, 2048);
        assert!(c.rooms[0].nicknames && c.rooms[0].private_messages);
        assert_eq!(
            c.room_uri("chatroom22").unwrap().to_string(),
            "sip:chatroom22@chat.example.com"
        );
        assert_eq!(c.host(), "chat.example.com");
        assert!(toml::from_str::<MsrpConfig>(&format!("{text}\nbogus = 1")).is_err());
    }

    #[test]
    fn limits_on_peers_read_and_validate() {
        let base = "domain = \"chat.example.com\"\nsip_udp = [\"127.0.0.1:5062\"]\nmsrp = \"127.0.0.1:2855\"\n";
        let c: MsrpConfig = toml::from_str(base).unwrap();
        assert_eq!((c.max_connections, c.max_connections_per_ip), (8192, 0));
        assert_eq!((c.message_timeout_ms, c.write_timeout_ms), (60_000, 30_000));
        assert_eq!(c.write_queue, 1024);
        let c: MsrpConfig = toml::from_str(&format!(
            "{base}max_connections = 200\nmax_connections_per_ip = 50\n\
             message_timeout_ms = 2000\nwrite_timeout_ms = 4000\nwrite_queue = 256\n"
        ))
        .unwrap();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!((c.max_connections, c.max_connections_per_ip), (200, 50));
        assert_eq!(
            (c.message_timeout_ms, c.write_timeout_ms, c.write_queue),
            (2000, 4000, 256)
        );
        for key in [
            "max_connections",
            "message_timeout_ms",
            "write_timeout_ms",
            "write_queue",
        ] {
            let bad: MsrpConfig = toml::from_str(&format!("{base}{key} = 0\n")).unwrap();
            assert!(bad.validate().unwrap_err().starts_with(key), "{key}");
        }
    }

    /// RFC 4575 §3.9: 5 s by default, 0 for none, at most a minute.
    #[test]
    fn the_notify_interval_reads_and_validates() {
        let base = "domain = \"chat.example.com\"\nsip_udp = [\"127.0.0.1:5062\"]\nmsrp = \"127.0.0.1:2855\"\n";
        let c: MsrpConfig = toml::from_str(base).unwrap();
        assert_eq!(c.notify_interval_ms, 5000);
        for ok in [0, 200, 60_000] {
            let c: MsrpConfig =
                toml::from_str(&format!("{base}notify_interval_ms = {ok}\n")).unwrap();
            assert_eq!(c.validate(), Ok(()), "{ok}");
        }
        let c: MsrpConfig = toml::from_str(&format!("{base}notify_interval_ms = 60001\n")).unwrap();
        assert!(c.validate().unwrap_err().starts_with("notify_interval_ms:"));
    }

    #[test]
    fn bad_settings_name_their_key() {
        let mut c = MsrpConfig::new("chat.example.com", "127.0.0.1:2855".parse().unwrap());
        assert!(c.validate().unwrap_err().starts_with("sip_udp:"));
        c.sip_udp = vec!["127.0.0.1:5062".parse().unwrap()];
        assert_eq!(c.host(), "127.0.0.1");
        let room = RoomConfig {
            name: "r".into(),
            nicknames: true,
            private_messages: true,
            max_participants: 10,
            welcome: None,
            anonymous: false,
        };
        c.rooms = vec![RoomConfig {
            anonymous: true,
            nicknames: false,
            ..room.clone()
        }];
        assert!(c.validate().unwrap_err().starts_with("rooms[0].anonymous:"));
        c.rooms = vec![
            room.clone(),
            RoomConfig {
                name: "R".into(),
                ..room
            },
        ];
        assert!(c.validate().unwrap_err().starts_with("rooms[1].name:"));
        c.rooms.pop();
        c.chunk_size = 10;
        assert!(c.validate().unwrap_err().starts_with("chunk_size:"));
        c.chunk_size = 2048;
        c.remote_rooms = vec![RemoteRoomConfig::new("sip:chat.example.org", "gw")];
        assert!(
            c.validate()
                .unwrap_err()
                .starts_with("remote_rooms[0].uri:")
        );
        c.remote_rooms = vec![RemoteRoomConfig::new("sip:r@chat.example.org", "")];
        assert!(
            c.validate()
                .unwrap_err()
                .starts_with("remote_rooms[0].nickname:")
        );
        let mut r = RemoteRoomConfig::new("sip:r@chat.example.org", "gw");
        r.proxy = Some("nowhere".into());
        c.remote_rooms = vec![r];
        assert!(
            c.validate()
                .unwrap_err()
                .starts_with("remote_rooms[0].proxy:")
        );
        let mut r = RemoteRoomConfig::new("sip:r@chat.example.org", "gw");
        r.mode = RemoteMode::Puppet;
        r.max_puppets = 0;
        c.remote_rooms = vec![r];
        assert!(
            c.validate()
                .unwrap_err()
                .starts_with("remote_rooms[0].max_puppets:")
        );
    }

    #[test]
    fn the_documented_remote_room_reads() {
        let text = r#"
            domain = "chat.example.com"
            sip_udp = ["0.0.0.0:5062"]
            msrp = "0.0.0.0:2855"
            [[remote_rooms]]
            uri = "sip:chatroom22@chat.example.org"
            nickname = "gateway"
            proxy = "192.0.2.10:5060"
            credentials = { user = "gw", password = "secret" }
            mode = "relay"
        "#;
        let c: MsrpConfig = toml::from_str(text).unwrap();
        assert_eq!(c.validate(), Ok(()));
        let r = &c.remote_rooms[0];
        assert_eq!(r.format, "<{nick}> {text}");
        assert_eq!(r.next_hop(), Some(("192.0.2.10".into(), 5060)));
        assert_eq!(
            r.own_uri(&c.domain).unwrap().to_string(),
            "sip:gateway@chat.example.com"
        );
        assert_eq!((r.mode, r.max_puppets), (RemoteMode::Relay, 100));
        let puppets: MsrpConfig =
            toml::from_str(&text.replace("\"relay\"", "\"puppet\"\nmax_puppets = 20")).unwrap();
        assert_eq!(puppets.remote_rooms[0].mode, RemoteMode::Puppet);
        assert_eq!(puppets.remote_rooms[0].max_puppets, 20);
        let no_proxy = RemoteRoomConfig::new("sip:r@chat.example.org:5070", "gw");
        assert_eq!(no_proxy.next_hop(), Some(("chat.example.org".into(), 5070)));
        assert!(toml::from_str::<MsrpConfig>(&format!("{text}\nbogus = 1")).is_err());
    }
}
