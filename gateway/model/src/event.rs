//! Room events: what happens in a room besides messages.

use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::message::{Hop, MessageId, Origin};
use crate::port::DeliveryOutcome;

/// A room in one world, as one adapter knows it.
///
/// `adapter` is the adapter instance name from config; `address` is the
/// room's address in that world (an MSRP room's SIP URI, a MUC's bare JID,
/// an IRC channel on a network).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RoomRef {
    /// The adapter instance that serves this room.
    pub adapter: String,
    /// The room's address in its world.
    pub address: Address,
}

/// A participant of a room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    /// The participant's own address in its world (may be the room-scoped
    /// address where the real one is hidden, e.g. a MUC occupant JID).
    pub address: Address,
    /// The nickname shown in the room.
    pub nick: String,
}

/// Something that happened in a room.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoomEvent {
    /// Id, for de-duplication like a message's.
    pub id: MessageId,
    /// The room where it happened.
    pub room: RoomRef,
    /// Where it entered the gateway.
    pub origin: Origin,
    /// Gateways it has passed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trail: Vec<Hop>,
    /// What happened.
    pub kind: RoomEventKind,
}

/// What happened in a room.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RoomEventKind {
    /// Someone joined.
    Join {
        /// Who.
        who: Participant,
    },
    /// Someone left (or quit, or was disconnected).
    Leave {
        /// Who.
        who: Participant,
        /// The reason they gave, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Someone was removed by a moderator.
    Kick {
        /// Who was removed.
        who: Participant,
        /// Who removed them, if known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
        /// The reason given, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Someone changed nickname: one event, never a leave and a join.
    NickChange {
        /// Who, with the old nickname.
        who: Participant,
        /// The new nickname.
        new_nick: String,
    },
    /// The topic (subject) changed.
    Topic {
        /// Who changed it, if known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
        /// The new topic.
        topic: String,
    },
    /// The full list of participants, e.g. after joining or reconnecting.
    Roster {
        /// Everyone present.
        participants: Vec<Participant>,
    },
    /// The outcome of a message sent earlier into this room.
    DeliveryReport {
        /// The message.
        message: MessageId,
        /// What happened to it.
        outcome: DeliveryOutcome,
    },
}
