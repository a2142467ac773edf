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
//! History on join (XEP-0045 §7.2.14) is not served: the gateway keeps none.

use std::collections::HashMap;

use cpimgate_mappings::nick_key;
use cpimgate_model::address::{IrcAddress, XmppUri};
use cpimgate_model::event::{Participant, RoomEventKind};
use cpimgate_model::port::{Failure, FailureKind};
use cpimgate_model::time::Timestamp;
use cpimgate_model::{Address, Message, MessageId, NameAddr, RoomEvent, RoomRef};
use xmpp_parsers::jid::{BareJid, FullJid, Jid};
use xmpp_parsers::message::{Lang, Message as XMessage, MessageType};
use xmpp_parsers::muc::user::{MucUser, Status};
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

use super::core::{Core, Directory, Output, Pending, model_jid, origin_id};
use super::stanzas;
use crate::text::xml_safe;

/// An XMPP user in a room.
#[derive(Debug, Clone)]
struct Occupant {
    real: Jid,
    nick: String,
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
}

/// Every room the component knows, by lower-cased bare JID.
#[derive(Debug, Default)]
pub struct Rooms {
    map: HashMap<String, Room>,
}

fn key(j: &BareJid) -> String {
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
        // XEP-0045 §7.2.15: the subject (empty if none) ends the join.
        let mut m = XMessage::new_with_type(MessageType::Groupchat, Some(to));
        m.from = Some(from);
        m.subjects.insert(
            Lang::new(),
            xml_safe(self.subject.as_deref().unwrap_or("")).into_owned(),
        );
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

    fn participant(room: &Room, nick: &str) -> Participant {
        let address = room
            .occupant_jid(nick)
            .and_then(|j| model_jid(&Jid::from(j)).ok())
            .map(|j| Address::Xmpp(XmppUri::new(j)))
            .unwrap_or_else(|| room.room_ref.address.clone());
        Participant {
            address,
            nick: nick.to_owned(),
        }
    }

    /// Presence to `room@service/nick` (XEP-0045 §7.2 join, §7.6 nick
    /// change, §7.14 leave).
    pub(crate) fn on_room_presence(&mut self, p: Presence, from: Jid, to: Jid) {
        let bare = to.to_bare();
        let Some(nick) = to.resource().map(|r| r.as_str().to_owned()) else {
            return;
        };
        let owner = format!("xmpp:{}", from.to_bare());
        // Held by someone else anywhere in the bridge (mapping table)?
        let held_elsewhere = match self.room_mut(&bare) {
            Some(room) => {
                let bridge = room.bridge.clone();
                self_nick_owner(&self.dir, &bridge, &nick, &owner)
            }
            None => false,
        };
        let Some(room) = self.rooms.map.get_mut(&key(&bare)) else {
            if p.type_ == PresenceType::None {
                // XEP-0045 §7.2.? : the room does not exist and cannot be created here.
                self.transmit(stanzas::presence_error(
                    to,
                    from,
                    p.id,
                    stanzas::error(
                        ErrorType::Cancel,
                        DefinedCondition::ItemNotFound,
                        "no such room on this gateway",
                    ),
                ));
            }
            return;
        };
        let existing = room.occupants.iter().position(|o| o.real == from);
        let mut tx: Vec<xmpp_parsers::stanza::Stanza> = Vec::new();
        let mut out: Vec<Output> = Vec::new();
        let mut events: Vec<RoomEventKind> = Vec::new();
        match (&p.type_, existing) {
            (PresenceType::Unavailable | PresenceType::Error, Some(i)) => {
                // XEP-0045 §7.14: unavailable to everyone, 110 on the leaver's own.
                let o = room.occupants[i].clone();
                for s in room.presence_to_all(Some(&o.real), &o.nick, true, &[], None, None) {
                    tx.push(s.into());
                }
                room.occupants.remove(i);
                let reason = p.statuses.values().next().cloned();
                events.push(RoomEventKind::Leave {
                    who: Self::participant(room, &o.nick),
                    reason,
                });
                out.push(Output::Release {
                    bridge: room.bridge.clone(),
                    nick: o.nick,
                    owner,
                });
            }
            (PresenceType::None, Some(i)) if room.occupants[i].nick == nick => {
                // A change of availability: the room passes it on (§7.7).
                for s in room.presence_to_all(Some(&from), &nick, false, &[], None, None) {
                    tx.push(s.into());
                }
            }
            (PresenceType::None, Some(i)) => {
                // XEP-0045 §7.6: a nick change.
                if room.nick_in_use(&nick, Some(&from), None) || held_elsewhere {
                    tx.push(conflict(to, from, p.id).into());
                } else {
                    let old = room.occupants[i].nick.clone();
                    for s in room.presence_to_all(
                        Some(&from),
                        &old,
                        true,
                        &[Status::NewNick],
                        Some(&nick),
                        None,
                    ) {
                        tx.push(s.into());
                    }
                    room.occupants[i].nick = nick.clone();
                    for s in room.presence_to_all(Some(&from), &nick, false, &[], None, None) {
                        tx.push(s.into());
                    }
                    events.push(RoomEventKind::NickChange {
                        who: Self::participant(room, &old),
                        new_nick: nick.clone(),
                    });
                    out.push(Output::Release {
                        bridge: room.bridge.clone(),
                        nick: old,
                        owner: owner.clone(),
                    });
                    out.push(Output::Reserve {
                        bridge: room.bridge.clone(),
                        nick,
                        owner,
                    });
                }
            }
            (PresenceType::None, None) => {
                // XEP-0045 §7.2.9: a nick in use, here or in any bridged world.
                if room.nick_in_use(&nick, None, None) || held_elsewhere {
                    tx.push(conflict(to, from, p.id).into());
                } else if let Some(me) = room.occupant_jid(&nick) {
                    // §7.2.3: existing occupants first, then the newcomer to
                    // them, then the self-presence (110), then the subject.
                    for r in &room.remote {
                        if let Some(j) = room.occupant_jid(&r.shown) {
                            tx.push(
                                stanzas::occupant_presence(
                                    j,
                                    from.clone(),
                                    false,
                                    vec![],
                                    None,
                                    None,
                                )
                                .into(),
                            );
                        }
                    }
                    for o in &room.occupants {
                        if let Some(j) = room.occupant_jid(&o.nick) {
                            tx.push(
                                stanzas::occupant_presence(
                                    j,
                                    from.clone(),
                                    false,
                                    vec![],
                                    None,
                                    None,
                                )
                                .into(),
                            );
                        }
                    }
                    for s in room.presence_to_all(None, &nick, false, &[], None, None) {
                        tx.push(s.into());
                    }
                    tx.push(
                        stanzas::occupant_presence(
                            me,
                            from.clone(),
                            false,
                            vec![Status::SelfPresence],
                            None,
                            None,
                        )
                        .into(),
                    );
                    tx.push(
                        room.subject_message(Jid::from(room.jid.clone()), from.clone())
                            .into(),
                    );
                    room.occupants.push(Occupant {
                        real: from.clone(),
                        nick: nick.clone(),
                    });
                    events.push(RoomEventKind::Join {
                        who: Self::participant(room, &nick),
                    });
                    out.push(Output::Reserve {
                        bridge: room.bridge.clone(),
                        nick,
                        owner,
                    });
                }
            }
            _ => {}
        }
        let room_ref = room.room_ref.clone();
        for s in tx {
            self.out.push_back(Output::Transmit(Box::new(s)));
        }
        for k in events {
            self.event(&room_ref, k);
        }
        self.out.extend(out);
    }

    /// A message to a room JID (XEP-0045 §7.4: groupchat from an occupant).
    pub(crate) fn on_room_message(&mut self, m: XMessage, from: Jid, to: Jid, now: Timestamp) {
        let id = m.id.as_ref().map(|i| i.0.clone());
        let max_body = self.max_body;
        let bare = to.to_bare();
        let room_jid = Jid::from(bare.clone());
        let err = |c, t, text: &str| {
            stanzas::message_error(
                to.clone(),
                from.clone(),
                id.clone(),
                stanzas::error(t, c, text),
            )
        };
        if to.resource().is_some() || m.type_ != MessageType::Groupchat {
            // Private messages inside a room (§7.5) are not relayed yet.
            let e = err(
                DefinedCondition::FeatureNotImplemented,
                ErrorType::Cancel,
                "private messages in gateway rooms are not supported",
            );
            self.transmit(e);
            return;
        }
        let body = m.get_best_body_cloned(vec![]).map(|(_, b)| b);
        let subject = m.get_best_subject_cloned(vec![]).map(|(_, s)| s);
        let Some(room) = self.room_mut(&bare) else {
            return;
        };
        let Some(occupant) = room.occupants.iter().find(|o| o.real == from).cloned() else {
            // §7.4: only occupants may send to the room.
            let e = err(
                DefinedCondition::NotAcceptable,
                ErrorType::Modify,
                "only occupants may send messages to this room",
            );
            self.transmit(e);
            return;
        };
        let Some(me) = room.occupant_jid(&occupant.nick) else {
            return;
        };
        let room_ref = room.room_ref.clone();
        let mut tx = Vec::new();
        match (body, subject) {
            (None, Some(subject)) => {
                // §8.1: a subject change, passed to everyone.
                room.subject = Some(subject.clone());
                for o in &room.occupants {
                    let mut s = room.subject_message(Jid::from(me.clone()), o.real.clone());
                    s.id = m.id.clone();
                    tx.push(s);
                }
                let by = Some(occupant.nick.clone());
                for s in tx {
                    self.transmit(s);
                }
                self.event(&room_ref, RoomEventKind::Topic { by, topic: subject });
            }
            (Some(body), _) => {
                if body.len() > max_body {
                    let text = format!(
                        "the message body is {} bytes, the limit is {max_body}",
                        body.len()
                    );
                    let e = err(DefinedCondition::NotAcceptable, ErrorType::Modify, &text);
                    self.transmit(e);
                    return;
                }
                // §7.4: reflected to every occupant, the sender included.
                for o in &room.occupants {
                    let mut s = stanzas::text_message(
                        MessageType::Groupchat,
                        Jid::from(me.clone()),
                        o.real.clone(),
                        id.clone(),
                        &body,
                    );
                    s.payloads.extend(
                        m.payloads
                            .iter()
                            .filter(|p| p.is("origin-id", xmpp_parsers::ns::SID))
                            .cloned(),
                    );
                    tx.push(s);
                }
                for s in tx {
                    self.transmit(s);
                }
                let Ok(me_model) = model_jid(&Jid::from(me)) else {
                    return;
                };
                let mut msg = Message::text(
                    self.origin(id.clone()),
                    NameAddr::with_display(
                        occupant.nick.clone(),
                        Address::Xmpp(XmppUri::new(me_model)),
                    ),
                    NameAddr::new(room_ref.address.clone()),
                    &body,
                );
                msg.datetime = Some(now);
                msg.room = Some(room_ref);
                self.remember(
                    msg.id.clone(),
                    Pending {
                        user: from,
                        ours: room_jid,
                        stanza_id: id,
                        receipt: false,
                        room: true,
                    },
                );
                self.out.push_back(Output::ToHub(Box::new(msg)));
            }
            (None, None) => {}
        }
    }

    /// A message of another world's room, shown in ours.
    pub(crate) fn deliver_to_room(
        &mut self,
        room_ref: &RoomRef,
        message: &Message,
        text: &str,
    ) -> Result<(), Failure> {
        let bare = room_jid_of(room_ref).ok_or_else(|| {
            Failure::new(
                FailureKind::NotFound,
                format!("{} is not a room JID", room_ref.address),
            )
        })?;
        let Some(room) = self.room_mut(&bare) else {
            return Err(Failure::new(
                FailureKind::NotFound,
                format!("{bare} is in no bridge"),
            ));
        };
        room.room_ref = room_ref.clone();
        let shown = room
            .remote
            .iter()
            .find(|r| r.address == message.from.address)
            .map(|r| r.shown.clone())
            .unwrap_or_else(|| room.unique_nick(&nick_of(&message.from), &message.from.address));
        let from = room
            .occupant_jid(&shown)
            .ok_or_else(|| Failure::new(FailureKind::Rejected, "no usable nick for the sender"))?;
        let mut tx = Vec::new();
        if message.private {
            // A private message to one XMPP occupant (XEP-0045 §7.5).
            let target = message
                .to
                .first()
                .and_then(|t| match &t.address {
                    Address::Xmpp(u) => u.jid().resource().map(str::to_owned),
                    _ => None,
                })
                .and_then(|nick| room.occupants.iter().find(|o| o.nick == nick))
                .ok_or_else(|| Failure::new(FailureKind::NotFound, "no such occupant"))?;
            let mut s = stanzas::text_message(
                MessageType::Chat,
                Jid::from(from),
                target.real.clone(),
                Some(message.id.to_string()),
                text,
            );
            s.payloads.push(MucUser::new().into());
            tx.push(s);
        } else {
            for o in &room.occupants {
                let mut s = stanzas::text_message(
                    MessageType::Groupchat,
                    Jid::from(from.clone()),
                    o.real.clone(),
                    Some(message.id.to_string()),
                    text,
                );
                s.payloads.push(origin_id(message.id.as_str()));
                tx.push(s);
            }
        }
        for s in tx {
            self.transmit(s);
        }
        Ok(())
    }

    /// A room event of another world, shown to the XMPP occupants.
    pub(crate) fn room_event(&mut self, event: &RoomEvent) {
        let Some(bare) = room_jid_of(&event.room) else {
            return;
        };
        let Some(room) = self.room_mut(&bare) else {
            tracing::debug!(room = %bare, "event for a room in no bridge");
            return;
        };
        room.room_ref = event.room.clone();
        let mut tx: Vec<xmpp_parsers::stanza::Stanza> = Vec::new();
        let mut out = Vec::new();
        match &event.kind {
            RoomEventKind::Join { who } => remote_join(room, who, &mut tx),
            RoomEventKind::Leave { who, reason } => {
                remote_leave(room, who, &[], reason.as_deref(), &mut tx);
            }
            RoomEventKind::Kick { who, reason, .. } => {
                let ours = match &who.address {
                    Address::Xmpp(u)
                        if room_jid_of(&event.room).is_some_and(|b| {
                            BareJid::new(&u.jid().bare().to_string())
                                .is_ok_and(|j| key(&j) == key(&b))
                        }) =>
                    {
                        u.jid().resource().map(str::to_owned)
                    }
                    _ => None,
                };
                match ours.and_then(|n| room.occupants.iter().position(|o| o.nick == n)) {
                    Some(i) => {
                        // §9.1: the kicked occupant gets 307 + 110, the others 307.
                        let o = room.occupants[i].clone();
                        for s in room.presence_to_all(
                            Some(&o.real),
                            &o.nick,
                            true,
                            &[Status::Kicked],
                            None,
                            reason.as_deref(),
                        ) {
                            tx.push(s.into());
                        }
                        room.occupants.remove(i);
                        out.push(Output::Release {
                            bridge: room.bridge.clone(),
                            nick: o.nick,
                            owner: format!("xmpp:{}", o.real.to_bare()),
                        });
                    }
                    None => remote_leave(room, who, &[Status::Kicked], reason.as_deref(), &mut tx),
                }
            }
            RoomEventKind::NickChange { who, new_nick } => {
                if let Some(i) = room.remote.iter().position(|r| r.address == who.address) {
                    let old = room.remote[i].shown.clone();
                    let new = room.unique_nick(new_nick, &who.address);
                    for s in
                        room.presence_to_all(None, &old, true, &[Status::NewNick], Some(&new), None)
                    {
                        tx.push(s.into());
                    }
                    room.remote[i].shown = new.clone();
                    room.remote[i].address = renamed(&who.address, &who.nick, new_nick);
                    for s in room.presence_to_all(None, &new, false, &[], None, None) {
                        tx.push(s.into());
                    }
                } else {
                    let p = Participant {
                        address: who.address.clone(),
                        nick: new_nick.clone(),
                    };
                    remote_join(room, &p, &mut tx);
                }
            }
            RoomEventKind::Topic { topic, .. } => {
                room.subject = Some(topic.clone());
                for o in &room.occupants {
                    tx.push(
                        room.subject_message(Jid::from(room.jid.clone()), o.real.clone())
                            .into(),
                    );
                }
            }
            RoomEventKind::Roster { participants } => {
                let gone: Vec<Participant> = room
                    .remote
                    .iter()
                    .filter(|r| !participants.iter().any(|p| p.address == r.address))
                    .map(|r| Participant {
                        address: r.address.clone(),
                        nick: r.shown.clone(),
                    })
                    .collect();
                for p in &gone {
                    remote_leave(room, p, &[], None, &mut tx);
                }
                for p in participants {
                    remote_join(room, p, &mut tx);
                }
            }
            _ => {}
        }
        for s in tx {
            self.out.push_back(Output::Transmit(Box::new(s)));
        }
        self.out.extend(out);
    }

    /// The connection is gone: every XMPP occupant has left.
    pub(crate) fn rooms_disconnected(&mut self) {
        let mut left = Vec::new();
        for room in self.rooms.map.values_mut() {
            for o in room.occupants.drain(..) {
                left.push((
                    room.room_ref.clone(),
                    room.bridge.clone(),
                    room.jid.clone(),
                    o,
                ));
            }
        }
        for (room_ref, bridge, jid, o) in left {
            let address = jid
                .with_resource_str(&o.nick)
                .ok()
                .and_then(|j| model_jid(&Jid::from(j)).ok())
                .map(|j| Address::Xmpp(XmppUri::new(j)))
                .unwrap_or_else(|| room_ref.address.clone());
            self.event(
                &room_ref,
                RoomEventKind::Leave {
                    who: Participant {
                        address,
                        nick: o.nick.clone(),
                    },
                    reason: Some("the gateway lost its XMPP connection".into()),
                },
            );
            self.out.push_back(Output::Release {
                bridge,
                nick: o.nick,
                owner: format!("xmpp:{}", o.real.to_bare()),
            });
        }
    }

    /// Shutdown: every XMPP occupant is told the room is going away
    /// (XEP-0045 status 332).
    pub(crate) fn rooms_shutdown(&mut self) {
        let mut tx = Vec::new();
        let mut out = Vec::new();
        for room in self.rooms.map.values_mut() {
            for o in room.occupants.drain(..) {
                if let Ok(j) = room.jid.with_resource_str(&o.nick) {
                    tx.push(stanzas::occupant_presence(
                        j,
                        o.real.clone(),
                        true,
                        vec![Status::SelfPresence, Status::ServiceShutdown],
                        None,
                        Some("the gateway is shutting down"),
                    ));
                }
                out.push(Output::Release {
                    bridge: room.bridge.clone(),
                    nick: o.nick,
                    owner: format!("xmpp:{}", o.real.to_bare()),
                });
            }
        }
        for s in tx {
            self.transmit(s);
        }
        self.out.extend(out);
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

fn remote_join(room: &mut Room, who: &Participant, tx: &mut Vec<xmpp_parsers::stanza::Stanza>) {
    if room.remote.iter().any(|r| r.address == who.address) {
        return;
    }
    let shown = room.unique_nick(&who.nick, &who.address);
    room.remote.push(Remote {
        address: who.address.clone(),
        shown: shown.clone(),
    });
    for s in room.presence_to_all(None, &shown, false, &[], None, None) {
        tx.push(s.into());
    }
}

fn remote_leave(
    room: &mut Room,
    who: &Participant,
    statuses: &[Status],
    reason: Option<&str>,
    tx: &mut Vec<xmpp_parsers::stanza::Stanza>,
) {
    let pos = room
        .remote
        .iter()
        .position(|r| r.address == who.address)
        .or_else(|| {
            room.remote
                .iter()
                .position(|r| nick_key(&r.shown) == nick_key(&who.nick))
        });
    let Some(i) = pos else {
        return;
    };
    let r = room.remote.remove(i);
    // The leaver is gone from `remote`, so presence_to_all still reaches
    // every XMPP occupant.
    let mut list = room.presence_to_all(None, &r.shown, true, statuses, None, reason);
    if let Some(reason) = reason {
        for p in &mut list {
            p.statuses
                .insert(Lang::new(), xml_safe(reason).into_owned());
        }
    }
    tx.extend(list.into_iter().map(Into::into));
}
