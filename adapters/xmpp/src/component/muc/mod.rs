//! Rooms of other worlds as MUC rooms on the component (XEP-0045).
//!
//! A room JID of the component, `#chan%irc.example.org@gw.example.com` or
//! `chatroom22%chat.example.com@gw.example.com` (DESIGN.md "Addressing",
//! [`Address::to_room_jid`](cpimgate_model::Address::to_room_jid)), is
//! served when it is a room of a bridge: the bridge's config names it as
//! `{ adapter = "<this adapter>", address = "xmpp:%23chan%25irc.example.org@gw.example.com" }`
//! (the JID percent-encoded as an `xmpp:` URI, RFC 5122; write it in lower
//! case, as the mapping table keeps it). The hub's [`RoomRef`] for the room
//! is `{ adapter, Address::Xmpp(room bare JID) }`.
//!
//! The room keeps two kinds of occupants: XMPP users who joined through the
//! server, and participants of the other worlds, learnt from the hub's room
//! events. Each XMPP occupant is shown the others as `room@service/nick`.
//!
//! The module by concern:
//!
//! * `presence`: joins, nick changes and leaves of XMPP users (§7.2,
//!   §7.6, §7.14), and what a lost connection or a shutdown does to them.
//! * `history`: the room's history sent on join (§7.2.15), fetched from
//!   the hub by the driver.
//! * `messages`: room messages (§7.4) and private messages (§7.5) both
//!   ways, with XEP-0359 stanza ids.
//! * `events`: joins, leaves, nick changes and topics of the other
//!   worlds, shown as MUC presences and subjects.
//!
//! # A room with no XMPP user in it
//!
//! The hub delivers a bridge's messages to this room whether or not an XMPP
//! user is in it, and after the component reconnects to its server nobody
//! is (occupants are gone with the connection until they join again). Such
//! a message is answered *accepted*, never *delivered*: no one has it yet,
//! but it is not lost either, because the hub's history keeps every message
//! of the bridge and a user who joins is sent it as history (§7.2.15). The
//! reverse race is handled too: a message the joining user was already sent
//! as history is not shown again when its live copy arrives afterwards, so
//! every occupant sees each message once, in order.
//!
//! Refusing such deliveries with a transient failure instead would hold the
//! hub's queue for this adapter (it keeps order by pausing the adapter)
//! until someone joins, which for most rooms is never.

mod events;
mod history;
#[cfg(test)]
pub(crate) use history::wanted as history_wanted;
mod messages;
mod presence;

use std::collections::{HashMap, HashSet};

use cpimgate_mappings::nick_key;
use cpimgate_model::address::{IrcAddress, XmppUri};
use cpimgate_model::event::{Participant, RoomEventKind};
use cpimgate_model::{Address, MessageId, NameAddr, RoomEvent, RoomRef};
use xmpp_parsers::jid::{BareJid, FullJid, Jid};
use xmpp_parsers::message::{Lang, Message as XMessage, MessageType};
use xmpp_parsers::muc::user::Status;
use xmpp_parsers::presence::Presence;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

use super::core::{Core, Directory, Output, model_jid};
use super::stanzas;
use crate::text::xml_safe;

/// How many live stanzas wait for one occupant while the history of its
/// join is fetched; past it they are sent at once, before the history,
/// rather than dropped.
const MAX_HELD: usize = 1024;

/// An XMPP user in a room.
#[derive(Debug, Clone)]
struct Occupant {
    real: Jid,
    nick: String,
    /// Set while the join waits for its history (§7.2.15).
    joining: Option<Joining>,
    /// Ids of the messages this occupant was sent as history: a live copy
    /// of one of them that arrives later is not shown again. At most one
    /// history's worth ([`history::HISTORY_CAP`]).
    had_in_history: HashSet<String>,
}

/// A join waiting for its history.
#[derive(Debug, Clone)]
struct Joining {
    /// The token of the [`Output::FetchHistory`](super::core::Output::FetchHistory).
    token: u64,
    /// XEP-0045 `maxchars`, counted on the history stanzas.
    max_chars: Option<usize>,
    /// Room traffic that came meanwhile: it follows the history and the
    /// subject.
    held: Vec<XMessage>,
}

impl Occupant {
    fn new(real: Jid, nick: String) -> Self {
        Occupant {
            real,
            nick,
            joining: None,
            had_in_history: HashSet::new(),
        }
    }

    /// Room traffic for this occupant: returned to be sent now, held while
    /// the join waits for its history, or dropped when the occupant was
    /// already sent message `id` as history.
    fn pass(&mut self, s: XMessage, id: Option<&str>) -> Option<XMessage> {
        if let Some(id) = id
            && self.had_in_history.remove(id)
        {
            return None;
        }
        match &mut self.joining {
            Some(j) if j.held.len() < MAX_HELD => {
                j.held.push(s);
                None
            }
            _ => Some(s),
        }
    }
}

/// A participant of another world, as the hub announced them.
#[derive(Debug, Clone)]
struct Remote {
    address: Address,
    /// The nick shown in the MUC (made unique against the XMPP occupants).
    shown: String,
}

/// One room.
#[derive(Debug)]
pub(crate) struct Room {
    jid: BareJid,
    bridge: String,
    room_ref: RoomRef,
    occupants: Vec<Occupant>,
    remote: Vec<Remote>,
    subject: Option<String>,
    /// Model ids of the last messages of XMPP occupants.
    recent: messages::RecentIds,
}

/// Every room the component knows, by lower-cased bare JID.
#[derive(Debug, Default)]
pub struct Rooms {
    map: HashMap<String, Room>,
}

pub(crate) fn key(j: &BareJid) -> String {
    j.as_str().to_lowercase()
}

impl Room {
    fn occupant_jid(&self, nick: &str) -> Option<FullJid> {
        self.jid.with_resource_str(nick).ok()
    }

    fn nick_in_use(
        &self,
        nick: &str,
        except_real: Option<&Jid>,
        except_remote: Option<&Address>,
    ) -> bool {
        let k = nick_key(nick);
        self.occupants
            .iter()
            .any(|o| Some(&o.real) != except_real && nick_key(&o.nick) == k)
            || self
                .remote
                .iter()
                .any(|r| Some(&r.address) != except_remote && nick_key(&r.shown) == k)
    }

    /// A nick for a participant of another world that no one else shows:
    /// XML-safe, a valid resourcepart, `_` appended until free.
    fn unique_nick(&self, wanted: &str, who: &Address) -> String {
        let mut n: String = xml_safe(wanted.trim()).into_owned();
        if n.is_empty() || self.jid.with_resource_str(&n).is_err() {
            n = "guest".to_owned();
        }
        while self.nick_in_use(&n, None, Some(who)) {
            n.push('_');
        }
        n
    }

    /// The presence of `nick` to every XMPP occupant; `me` (the occupant
    /// whose own presence it is) also gets status 110 (§7.2.3).
    fn presence_to_all(
        &self,
        me: Option<&Jid>,
        nick: &str,
        unavailable: bool,
        statuses: &[Status],
        new_nick: Option<&str>,
        reason: Option<&str>,
    ) -> Vec<Presence> {
        let Some(from) = self.occupant_jid(nick) else {
            return Vec::new();
        };
        self.occupants
            .iter()
            .map(|o| {
                let mut st = statuses.to_vec();
                if me == Some(&o.real) {
                    st.push(Status::SelfPresence);
                }
                stanzas::occupant_presence(
                    from.clone(),
                    o.real.clone(),
                    unavailable,
                    st,
                    new_nick,
                    reason,
                )
            })
            .collect()
    }

    fn subject_message(&self, from: Jid, to: Jid) -> XMessage {
        Room::subject_for(self.subject.as_deref(), from, to)
    }

    fn subject_for(subject: Option<&str>, from: Jid, to: Jid) -> XMessage {
        // XEP-0045 §7.2.15: the subject (empty if none) ends the join.
        let mut m = XMessage::new_with_type(MessageType::Groupchat, Some(to));
        m.from = Some(from);
        m.subjects
            .insert(Lang::new(), xml_safe(subject.unwrap_or("")).into_owned());
        m
    }
}

/// The nick a sender of another world shows: the display name, else the
/// user part of the address.
fn nick_of(a: &NameAddr) -> String {
    if let Some(d) = a.display.as_deref().filter(|d| !d.trim().is_empty()) {
        return d.to_owned();
    }
    match &a.address {
        Address::Irc(i) => match i.target() {
            cpimgate_model::address::IrcTarget::Nick(n)
            | cpimgate_model::address::IrcTarget::Channel(n) => n.to_string(),
        },
        Address::Xmpp(u) => u
            .jid()
            .resource()
            .or(u.jid().node())
            .unwrap_or(u.jid().domain())
            .to_owned(),
        Address::Im(u) => u.user().to_owned(),
        Address::Sip(u) => u
            .user()
            .map(str::to_owned)
            .unwrap_or_else(|| u.host().to_string()),
        other => other.to_string(),
    }
}

/// The XEP-0359 `<stanza-id/>` a room puts on its messages (§3: `by` is
/// the room).
fn stanza_id(id: &str, room: &BareJid) -> xmpp_parsers::minidom::Element {
    xmpp_parsers::stanza_id::StanzaId {
        id: id.to_owned(),
        by: Jid::from(room.clone()),
    }
    .into()
}

fn room_jid_of(r: &RoomRef) -> Option<BareJid> {
    match &r.address {
        Address::Xmpp(u) => BareJid::new(&u.jid().bare().to_string()).ok(),
        _ => None,
    }
}

impl<D: Directory> Core<D> {
    /// Whether `bare` is a room this component serves (one of a bridge).
    pub(crate) fn is_room(&mut self, bare: &BareJid) -> bool {
        self.room_mut(bare).is_some()
    }

    fn room_mut(&mut self, bare: &BareJid) -> Option<&mut Room> {
        let k = key(bare);
        if !self.rooms.map.contains_key(&k) {
            let bridge = self.dir.bridge_of_room(bare)?;
            let room_ref = super::core::room_ref(&self.adapter, bare)?;
            self.rooms.map.insert(
                k.clone(),
                Room {
                    jid: bare.clone(),
                    bridge,
                    room_ref,
                    occupants: Vec::new(),
                    remote: Vec::new(),
                    subject: None,
                    recent: messages::RecentIds::default(),
                },
            );
        }
        self.rooms.map.get_mut(&k)
    }

    fn event(&mut self, room: &RoomRef, kind: RoomEventKind) {
        let e = RoomEvent {
            id: MessageId::random(),
            room: room.clone(),
            origin: self.origin(None),
            trail: Vec::new(),
            kind,
        };
        self.out.push_back(Output::Event(Box::new(e)));
    }

    /// An XMPP occupant as the other worlds know them: by their real bare
    /// JID, which stays the same across nick changes and rejoins (so an
    /// IRC puppet or a mapped nick follows the person, not the nick), with
    /// their nick in this room.
    fn participant(room: &Room, real: &Jid, nick: &str) -> Participant {
        let address = model_jid(&Jid::from(real.to_bare()))
            .map(|j| Address::Xmpp(XmppUri::new(j)))
            .unwrap_or_else(|_| room.room_ref.address.clone());
        Participant {
            address,
            nick: nick.to_owned(),
        }
    }

    /// Whether `real` is in the room as `nick`.
    pub(crate) fn is_occupant(&self, bare: &BareJid, real: &Jid, nick: &str) -> bool {
        self.rooms.map.get(&key(bare)).is_some_and(|r| {
            r.occupants
                .iter()
                .any(|o| &o.real == real && o.nick == nick)
        })
    }

    /// Disco#items of the service: the rooms it serves.
    pub(crate) fn served_rooms(&self) -> Vec<BareJid> {
        self.dir.rooms(&self.domain)
    }
}

fn self_nick_owner<D: Directory>(dir: &D, bridge: &str, nick: &str, owner: &str) -> bool {
    dir.nick_owner(bridge, nick).is_some_and(|o| o != owner)
}

/// XEP-0045 §7.2.9: `<conflict/>`, the nick is taken.
fn conflict(to: Jid, from: Jid, id: Option<String>) -> Presence {
    stanzas::presence_error(
        to,
        from,
        id,
        stanzas::error(
            ErrorType::Cancel,
            DefinedCondition::Conflict,
            "that nickname is already in use",
        ),
    )
}

/// A participant's address after a nick change, where the address is made
/// of the nick: a MUC occupant JID `room@service/nick` (XEP-0045 §7.6: the
/// occupant JID changes with the nick) or an IRC nick. Their later messages
/// come from the new address and must find the same occupant. Any other
/// address stays as it is.
fn renamed(address: &Address, old: &str, new: &str) -> Address {
    let changed = match address {
        Address::Xmpp(u) if u.jid().resource() == Some(old) => u
            .jid()
            .with_resource(Some(new))
            .ok()
            .map(|j| Address::Xmpp(XmppUri::new(j))),
        Address::Irc(i) if i.as_nick() == Some(old) => {
            IrcAddress::nick(&i.network().to_string(), new)
                .ok()
                .map(|n| Address::Irc(n.with_secure(i.is_secure()).with_port(i.port())))
        }
        _ => None,
    };
    changed.unwrap_or_else(|| address.clone())
}
