//! Multi-User Chat (XEP-0045): joining, leaving, changing nick, and the
//! helpers that read room stanzas.

use std::str::FromStr;

use xmpp_parsers::jid::{BareJid, FullJid, Jid};
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::muc::muc::History;
use xmpp_parsers::muc::user::Status as MucStatus;
use xmpp_parsers::muc::{Muc, MucUser};
use xmpp_parsers::presence::{Presence, Type as PresenceType};

use super::{WAIT, XmppUser, parse_bare, stanza_xml, with_what};
use crate::HarnessError;
use tokio_xmpp::Stanza;

impl XmppUser {
    /// Join `room` (a bare JID) as `nick`, asking for no history, and wait
    /// for the room's self-presence (status 110), which is returned. A
    /// presence error from the room (nickname taken, ...) is an error.
    pub async fn join_muc(&mut self, room: &str, nick: &str) -> Result<Presence, HarnessError> {
        self.join_muc_with(
            room,
            nick,
            Muc::new().with_history(History::new().with_maxstanzas(0)),
        )
        .await
    }

    /// [`XmppUser::join_muc`] with the `<x xmlns='http://jabber.org/protocol/muc'/>`
    /// element given (history, password).
    pub async fn join_muc_with(
        &mut self,
        room: &str,
        nick: &str,
        muc: Muc,
    ) -> Result<Presence, HarnessError> {
        let occupant = occupant(room, nick)?;
        let room = occupant.to_bare();
        self.send(
            Presence::available()
                .with_to(occupant.clone())
                .with_payload(muc),
        )
        .await?;
        let what = format!("the self-presence of {occupant}");
        let presence = self
            .expect_presence(
                |p| {
                    from_bare(p.from.as_ref(), &room)
                        && (p.type_ == PresenceType::Error || is_self_presence(p))
                },
                WAIT,
            )
            .await
            .map_err(|e| with_what(e, &what))?;
        if presence.type_ == PresenceType::Error {
            return Err(HarnessError::Xmpp(format!(
                "joining {occupant}: the room answered with an error: {}",
                stanza_xml(&Stanza::Presence(presence))
            )));
        }
        Ok(presence)
    }

    /// Leave `room` (sent to `room/nick`) and wait for the room's
    /// unavailable self-presence.
    pub async fn leave_muc(&mut self, room: &str, nick: &str) -> Result<Presence, HarnessError> {
        let occupant = occupant(room, nick)?;
        let room = occupant.to_bare();
        self.send(Presence::unavailable().with_to(occupant.clone()))
            .await?;
        self.expect_presence(
            |p| {
                from_bare(p.from.as_ref(), &room)
                    && p.type_ == PresenceType::Unavailable
                    && is_self_presence(p)
            },
            WAIT,
        )
        .await
        .map_err(|e| with_what(e, &format!("the unavailable self-presence of {occupant}")))
    }

    /// Change the nickname in `room` to `new_nick` and wait for the room's
    /// self-presence under the new nick.
    pub async fn change_nick(
        &mut self,
        room: &str,
        new_nick: &str,
    ) -> Result<Presence, HarnessError> {
        let occupant = occupant(room, new_nick)?;
        self.send(Presence::available().with_to(occupant.clone()))
            .await?;
        let target = Jid::from(occupant.clone());
        let presence = self
            .expect_presence(
                |p| {
                    p.from.as_ref() == Some(&target)
                        && (p.type_ == PresenceType::Error
                            || (p.type_ == PresenceType::None && is_self_presence(p)))
                },
                WAIT,
            )
            .await
            .map_err(|e| with_what(e, &format!("the self-presence of {occupant}")))?;
        if presence.type_ == PresenceType::Error {
            return Err(HarnessError::Xmpp(format!(
                "changing nick to {occupant}: error: {}",
                stanza_xml(&Stanza::Presence(presence))
            )));
        }
        Ok(presence)
    }
}

/// Whether a message is a `groupchat` from `room` (any occupant).
pub fn is_groupchat_from(message: &Message, room: &str) -> bool {
    message.type_ == MessageType::Groupchat
        && BareJid::from_str(room).is_ok_and(|r| from_bare(message.from.as_ref(), &r))
}

/// The occupant nick of a stanza from a MUC (`room@service/nick`).
pub fn nick_of(from: Option<&Jid>) -> Option<&str> {
    from.and_then(Jid::resource).map(|r| r.as_str())
}

/// Whether a presence from a room is about the receiver itself (MUC
/// status 110).
pub fn is_self_presence(presence: &Presence) -> bool {
    muc_user(presence).is_some_and(|u| u.status.contains(&MucStatus::SelfPresence))
}

/// The MUC `<x xmlns='http://jabber.org/protocol/muc#user'/>` of a presence.
pub fn muc_user(presence: &Presence) -> Option<MucUser> {
    presence
        .payloads
        .iter()
        .find(|p| p.is("x", "http://jabber.org/protocol/muc#user"))
        .and_then(|p| MucUser::try_from(p.clone()).ok())
}

fn from_bare(from: Option<&Jid>, bare: &BareJid) -> bool {
    from.is_some_and(|f| f.to_bare() == *bare)
}

fn occupant(room: &str, nick: &str) -> Result<FullJid, HarnessError> {
    parse_bare(room)?
        .with_resource_str(nick)
        .map_err(|e| HarnessError::Xmpp(format!("{room}/{nick}: {e}")))
}
