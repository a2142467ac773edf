//! One instant message in flight through the gateway.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::address::NameAddr;
use crate::body::Body;
use crate::event::RoomRef;
use crate::time::Timestamp;

/// The gateway-wide id of a message.
///
/// Assigned once, by the adapter that received the message (from the
/// protocol's own id where it has one: CPIM `imdn.Message-ID`, MSRP
/// Message-ID, XEP-0359 origin-id, IRCv3 msgid; else generated). It follows
/// the message through every hop, so a gateway that sees it twice drops it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(pub String);

impl MessageId {
    /// A new random id (128 bits, hex).
    pub fn random() -> Self {
        use std::collections::hash_map::RandomState;
        use std::hash::{BuildHasher, Hasher};
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut a = RandomState::new().build_hasher();
        a.write_u64(n);
        let mut b = RandomState::new().build_hasher();
        b.write_u64(n ^ 0x9e37_79b9_7f4a_7c15);
        MessageId(format!("{:016x}{:016x}", a.finish(), b.finish()))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for MessageId {
    fn from(s: &str) -> Self {
        MessageId(s.to_owned())
    }
}

/// The chat world a message or event comes from or goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum World {
    /// SIP pager mode (RFC 3428).
    Sip,
    /// SIP session mode: MSRP sessions and chat rooms (RFC 4975, RFC 7701).
    Msrp,
    /// XMPP (RFC 6120/6121, XEP-0045).
    Xmpp,
    /// IRC (RFC 1459/2812, IRCv3).
    Irc,
    /// Produced by the gateway itself (notices, tests).
    Local,
}

impl World {
    /// Lower-case name, as used in config and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            World::Sip => "sip",
            World::Msrp => "msrp",
            World::Xmpp => "xmpp",
            World::Irc => "irc",
            World::Local => "local",
        }
    }
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a message entered the gateway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The world it came from.
    pub world: World,
    /// The name of the adapter instance (from config) that received it.
    pub adapter: String,
    /// The protocol's own id of the message, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native_id: Option<String>,
}

/// One gateway hop a message has passed, for loop prevention.
///
/// When two gateways federate the same rooms, each one appends itself; a
/// gateway that finds its own name in the trail does not relay again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hop {
    /// The gateway instance name (config `gateway.name`).
    pub gateway: String,
    /// The adapter the message came in through.
    pub adapter: String,
}

/// A CPIM `Subject` header value with its optional `;lang=` parameter
/// (RFC 3862 §5.3.7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// Language tag, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// The subject text, unescaped.
    pub text: String,
}

/// One instant message in flight.
///
/// A message of a room has [`Message::room`] set and its `to` is the room's
/// address; a 1:1 message has no room and `to` names the recipient(s). A
/// private message inside a room (RFC 7701 §7, XMPP MUC private message, an
/// IRC PRIVMSG to a nick met in a channel) has both: the room it was sent in
/// and the one recipient in `to`, with [`Message::private`] set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Gateway-wide id.
    pub id: MessageId,
    /// The sender.
    pub from: NameAddr,
    /// The recipients (CPIM `To`).
    pub to: Vec<NameAddr>,
    /// Copy recipients (CPIM `cc`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cc: Vec<NameAddr>,
    /// When the sender sent it (CPIM `DateTime`, IRCv3 `server-time`, XEP-0203 delay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datetime: Option<Timestamp>,
    /// CPIM `Subject`s.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject: Vec<Subject>,
    /// MIME type of the content (`text/plain;charset=utf-8`).
    pub content_type: String,
    /// The content.
    pub body: Body,
    /// The original `message/cpim` bytes, when the message arrived as CPIM.
    /// Adapters that can carry CPIM send these unchanged (RFC 3428 §11.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpim: Option<Body>,
    /// The room this message belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<RoomRef>,
    /// A private message to one occupant of `room`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub private: bool,
    /// Where the message entered this gateway.
    pub origin: Origin,
    /// Gateways the message has passed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trail: Vec<Hop>,
    /// After this instant the message is not delivered any more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Timestamp>,
}

impl Message {
    /// A plain-text message with a fresh id and no room.
    pub fn text(origin: Origin, from: NameAddr, to: NameAddr, text: &str) -> Self {
        Message {
            id: MessageId::random(),
            from,
            to: vec![to],
            cc: Vec::new(),
            datetime: Some(Timestamp::now()),
            subject: Vec::new(),
            content_type: "text/plain;charset=utf-8".to_owned(),
            body: Body::from(text),
            cpim: None,
            room: None,
            private: false,
            origin,
            trail: Vec::new(),
            expires: None,
        }
    }

    /// Whether `now` is past [`Message::expires`].
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires.is_some_and(|e| now >= e)
    }

    /// Whether the gateway named `gateway` has already relayed this message.
    pub fn passed(&self, gateway: &str) -> bool {
        self.trail.iter().any(|h| h.gateway == gateway)
    }
}
