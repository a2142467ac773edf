//! The rooms of client mode: MUC (XEP-0045) stanzas in, model events out,
//! and the stanzas to send. No I/O: the driver feeds stanzas with
//! `handle_*` and sends what these return.
//!
//! What the rooms know per room: whether we are joined (our own presence,
//! status 110, XEP-0045 §7.2.3), who is present (so a presence update is
//! not taken for a join), whether the subject of the join has been seen
//! (XEP-0045 §7.2.15: it ends the join, and is not a change of topic).

use std::collections::{HashMap, HashSet};

use cpimgate_model::address::{Address, Jid, XmppUri};
use cpimgate_model::event::{Participant, RoomEventKind};
use cpimgate_model::time::Timestamp;
use cpimgate_model::{Message, MessageId, NameAddr, Origin, RoomEvent, RoomRef, World};
use xmpp_parsers::delay::Delay;
use xmpp_parsers::jid::{BareJid, FullJid, Jid as XJid};
use xmpp_parsers::message::{Lang, Message as XMessage, MessageType};
use xmpp_parsers::muc::user::{MucUser, Status};
use xmpp_parsers::muc::{Muc, muc::History};
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::stanza_error::DefinedCondition;
use xmpp_parsers::stanza_id::{OriginId, StanzaId};

use crate::config::ClientConfig;
use crate::convert;

/// What the driver must do after a stanza was handled.
#[derive(Debug)]
pub(crate) enum Output {
    /// Hand this message to the hub.
    Message(Box<Message>),
    /// Hand this room event to the hub.
    Event(Box<RoomEvent>),
    /// The room reflected our message with this origin-id: delivered.
    Reflected(String),
    /// The room refused our message with this id.
    Refused(String, DefinedCondition),
    /// We are now joined to the room with this index.
    Joined(usize),
    /// We are not (or no longer) in the room with this index.
    NotJoined(usize),
}

/// One configured room.
#[derive(Debug)]
pub(crate) struct Room {
    pub jid: BareJid,
    pub nick: String,
    pub address: Address,
    pub joined: bool,
    occupants: HashSet<String>,
    subject_seen: bool,
}

impl Room {
    /// Our occupant JID, `room@service/nick`.
    pub fn occupant_jid(&self) -> Option<FullJid> {
        self.jid.with_resource_str(&self.nick).ok()
    }
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RoomsError {
    /// Happens when a configured room or nick is not a valid JID part.
    #[error("room {room:?} / nick {nick:?}: {reason}")]
    BadRoom {
        room: String,
        nick: String,
        reason: String,
    },
}

/// All rooms of one client-mode adapter.
#[derive(Debug)]
pub(crate) struct Rooms {
    adapter: String,
    format: String,
    max_body: usize,
    pub rooms: Vec<Room>,
    by_jid: HashMap<BareJid, usize>,
}

impl Rooms {
    /// The rooms of `config`, none joined.
    pub fn new(adapter: &str, config: &ClientConfig) -> Result<Rooms, RoomsError> {
        let mut rooms = Vec::new();
        let mut by_jid = HashMap::new();
        for r in &config.rooms {
            let bad = |reason: String| RoomsError::BadRoom {
                room: r.room.clone(),
                nick: r.nick.clone(),
                reason,
            };
            let jid: BareJid = r.room.parse().map_err(|e| bad(format!("{e}")))?;
            jid.with_resource_str(&r.nick)
                .map_err(|e| bad(format!("{e}")))?;
            let model: Jid = jid.to_string().parse().map_err(|e| bad(format!("{e}")))?;
            by_jid.insert(jid.clone(), rooms.len());
            rooms.push(Room {
                jid,
                nick: r.nick.clone(),
                address: Address::Xmpp(XmppUri::new(model)),
                joined: false,
                occupants: HashSet::new(),
                subject_seen: false,
            });
        }
        Ok(Rooms {
            adapter: adapter.to_owned(),
            format: config.format.clone(),
            max_body: config.max_body,
            rooms,
            by_jid,
        })
    }

    /// The index of the room with this model address.
    pub fn find(&self, address: &Address) -> Option<usize> {
        self.rooms.iter().position(|r| &r.address == address)
    }

    /// Forget every membership (the stream was reset: XEP-0045 occupancy
    /// is bound to the session).
    pub fn reset(&mut self) {
        for r in &mut self.rooms {
            r.joined = false;
            r.occupants.clear();
            r.subject_seen = false;
        }
    }

    /// The presence that joins room `i` (XEP-0045 §7.2.1), asking for no
    /// history (§7.2.13, `maxstanzas='0'`): old messages are not relayed.
    pub fn join(&mut self, i: usize) -> Option<Presence> {
        let room = self.rooms.get_mut(i)?;
        room.occupants.clear();
        room.subject_seen = false;
        let to = room.occupant_jid()?;
        let muc = Muc {
            password: None,
            history: Some(History {
                maxchars: None,
                maxstanzas: Some(0),
                seconds: None,
                since: None,
            }),
        };
        Some(
            Presence::available()
                .with_to(to)
                .with_payloads(vec![muc.into()]),
        )
    }

    /// The groupchat message that posts `message` into its room, rendered
    /// with the format, carrying `origin_id` (XEP-0359 §3) as id and
    /// origin-id so that its reflection can be recognised.
    pub fn post(&self, i: usize, message: &Message, origin_id: &str) -> Option<XMessage> {
        let room = self.rooms.get(i)?;
        let nick = convert::sender_nick(&message.from);
        let text = convert::body_text(message);
        let body = convert::render(&self.format, &nick, &text);
        let mut m = XMessage::groupchat(XJid::from(room.jid.clone()))
            .with_body(Lang::new(), body)
            .with_payload(OriginId {
                id: origin_id.to_owned(),
            });
        m.id = Some(xmpp_parsers::message::Id(origin_id.to_owned()));
        Some(m)
    }

    /// A message stanza from the server.
    pub fn handle_message(&mut self, mut m: XMessage, now: Timestamp) -> Vec<Output> {
        let Some(from) = m.from.clone() else {
            return Vec::new();
        };
        let Some(&i) = self.by_jid.get(&from.to_bare()) else {
            return Vec::new();
        };
        if m.type_ == MessageType::Error {
            // RFC 6120 §8.3: the error carries the id of our message.
            let cond = m
                .extract_payload::<xmpp_parsers::stanza_error::StanzaError>()
                .ok()
                .flatten()
                .map(|e| e.defined_condition)
                .unwrap_or(DefinedCondition::UndefinedCondition);
            if cond == DefinedCondition::NotAcceptable {
                // XEP-0045 §7.4: not an occupant (any more).
                if let Some(r) = self.rooms.get_mut(i) {
                    r.joined = false;
                }
            }
            return match m.id {
                Some(id) => vec![Output::Refused(id.0, cond)],
                None => Vec::new(),
            };
        }
        if m.type_ != MessageType::Groupchat {
            // A private message through the room, or an invitation: client
            // mode relays room traffic only.
            return Vec::new();
        }
        let Some(room) = self.rooms.get_mut(i) else {
            return Vec::new();
        };
        let nick = from.resource().map(|r| r.as_str().to_owned());
        let origin_id = m.extract_payload::<OriginId>().ok().flatten().map(|o| o.id);
        if nick.as_deref() == Some(room.nick.as_str()) {
            // Our own message, reflected (XEP-0045 §7.2.14 / §7.4).
            return origin_id
                .or(m.id.map(|i| i.0))
                .map(Output::Reflected)
                .into_iter()
                .collect();
        }
        let delay = m.extract_payload::<Delay>().ok().flatten();
        // XEP-0045 §7.2.15: the subject is a message with <subject/> and no
        // body. The first after joining is the current one, not a change.
        if m.bodies.is_empty()
            && let Some((_, subject)) = m.get_best_subject_cloned(vec![])
        {
            if !room.subject_seen {
                room.subject_seen = true;
                return Vec::new();
            }
            let event = self.event(
                i,
                RoomEventKind::Topic {
                    by: nick,
                    topic: subject,
                },
            );
            return event.into_iter().collect();
        }
        // XEP-0045 §7.2.14: history is sent with <delay/> from the room.
        // We asked for none; whatever comes before the subject or with the
        // room's delay stamp is old and not relayed.
        if !room.subject_seen && delay.is_some() {
            return Vec::new();
        }
        if delay
            .as_ref()
            .and_then(|d| d.from.as_ref())
            .is_some_and(|f| f.to_bare() == room.jid)
        {
            return Vec::new();
        }
        let Some(nick) = nick else {
            // A message of the room itself (XEP-0045 §10.2.1 notices).
            return Vec::new();
        };
        let Some((_, body)) = m.get_best_body_cloned(vec![]) else {
            return Vec::new();
        };
        if body.len() > self.max_body {
            tracing::warn!(room = %room.jid, %nick, len = body.len(), "xmpp: message too large; not relayed");
            return Vec::new();
        }
        // XEP-0308: a correction goes on as a new message, marked.
        let body = convert::incoming_body(&m, body);
        let stanza_id = m
            .extract_payload::<StanzaId>()
            .ok()
            .flatten()
            .filter(|s| s.by.to_bare() == room.jid)
            .map(|s| s.id);
        let (id, native) = match (stanza_id, origin_id) {
            // XEP-0359 §3: a stanza-id is unique within its `by` (the room).
            (Some(s), _) => (MessageId(format!("xmpp:{}#{s}", room.jid)), Some(s)),
            (None, Some(o)) => (MessageId(format!("xmpp:{o}")), Some(o)),
            (None, None) => (MessageId::random(), m.id.map(|i| i.0)),
        };
        let Some(from_addr) = occupant_address(&room.jid, &nick) else {
            return Vec::new();
        };
        let message = Message {
            id,
            from: NameAddr::with_display(nick, from_addr),
            to: vec![NameAddr::new(room.address.clone())],
            cc: Vec::new(),
            datetime: Some(delay.as_ref().map_or(now, |d| convert::timestamp(&d.stamp))),
            subject: Vec::new(),
            content_type: "text/plain;charset=utf-8".to_owned(),
            body: body.into(),
            cpim: None,
            room: Some(RoomRef {
                adapter: self.adapter.clone(),
                address: room.address.clone(),
            }),
            private: false,
            origin: Origin {
                world: World::Xmpp,
                adapter: self.adapter.clone(),
                native_id: native,
            },
            trail: Vec::new(),
            expires: None,
        };
        vec![Output::Message(Box::new(message))]
    }

    /// A presence stanza from the server.
    pub fn handle_presence(&mut self, p: Presence) -> Vec<Output> {
        let Some(from) = p.from.clone() else {
            return Vec::new();
        };
        let Some(&i) = self.by_jid.get(&from.to_bare()) else {
            return Vec::new();
        };
        let Some(nick) = from.resource().map(|r| r.as_str().to_owned()) else {
            return Vec::new();
        };
        let user = p
            .payloads
            .iter()
            .find(|e| e.is("x", xmpp_parsers::ns::MUC_USER))
            .and_then(|e| MucUser::try_from(e.clone()).ok());
        let status = |s: Status| user.as_ref().is_some_and(|u| u.status.contains(&s));
        let item = user.as_ref().and_then(|u| u.items.first());
        let Some(room) = self.rooms.get_mut(i) else {
            return Vec::new();
        };
        let own = status(Status::SelfPresence) || nick == room.nick;

        if p.type_ == PresenceType::Error {
            if own {
                // XEP-0045 §7.2.6–§7.2.11: the join was refused.
                tracing::warn!(room = %room.jid, nick = %room.nick, "xmpp: joining the room failed");
                room.joined = false;
                return vec![Output::NotJoined(i)];
            }
            return Vec::new();
        }
        if own {
            if p.type_ == PresenceType::Unavailable {
                // Kicked, banned, the room destroyed, or the service shut
                // down (XEP-0045 §9.1, §10.9, §7.14 status 332).
                if status(Status::NewNick)
                    && let Some(new) = item.and_then(|it| it.nick.clone())
                {
                    // §7.6 / status 303 applied by the service: keep it.
                    room.nick = new;
                    return Vec::new();
                }
                room.joined = false;
                return vec![Output::NotJoined(i)];
            }
            let was = room.joined;
            room.joined = true;
            if was {
                return Vec::new();
            }
            // §7.2.3: the occupants' presences came before ours.
            let mut participants: Vec<Participant> = room
                .occupants
                .iter()
                .filter_map(|n| participant(&room.jid, n))
                .collect();
            participants.sort_by(|a, b| a.nick.cmp(&b.nick));
            let mut out = vec![Output::Joined(i)];
            out.extend(self.event(i, RoomEventKind::Roster { participants }));
            return out;
        }

        let Some(who) = participant(&room.jid, &nick) else {
            return Vec::new();
        };
        if p.type_ == PresenceType::Unavailable {
            room.occupants.remove(&nick);
            let reason = item
                .and_then(|it| it.reason.as_ref())
                .map(|r| r.0.clone())
                .or_else(|| p.statuses.values().next().cloned());
            // §7.6.3: a nick change is unavailable + 303 with the new nick,
            // then available under the new one: one event, not two.
            if status(Status::NewNick)
                && let Some(new) = item.and_then(|it| it.nick.clone())
            {
                room.occupants.insert(new.clone());
                return self
                    .event(i, RoomEventKind::NickChange { who, new_nick: new })
                    .into_iter()
                    .collect();
            }
            let kind = if status(Status::Kicked) || status(Status::Banned) {
                // §8.2 (kick), §9.1 (ban).
                RoomEventKind::Kick {
                    who,
                    by: item.and_then(|it| it.actor.as_ref()).and_then(actor_name),
                    reason,
                }
            } else {
                RoomEventKind::Leave { who, reason }
            };
            return self.event(i, kind).into_iter().collect();
        }
        if !room.occupants.insert(nick) || !room.joined {
            // A presence update of someone present, or the occupant list
            // of the join (§7.2.3): not a join.
            return Vec::new();
        }
        self.event(i, RoomEventKind::Join { who })
            .into_iter()
            .collect()
    }

    fn event(&self, i: usize, kind: RoomEventKind) -> Option<Output> {
        let room = self.rooms.get(i)?;
        Some(Output::Event(Box::new(RoomEvent {
            id: MessageId::random(),
            room: RoomRef {
                adapter: self.adapter.clone(),
                address: room.address.clone(),
            },
            origin: Origin {
                world: World::Xmpp,
                adapter: self.adapter.clone(),
                native_id: None,
            },
            trail: Vec::new(),
            kind,
        })))
    }
}

fn actor_name(a: &xmpp_parsers::muc::user::Actor) -> Option<String> {
    // The fields of `Actor` are private in xmpp-parsers 0.23.
    let e = minidom::Element::from(a.clone());
    e.attr("nick").or(e.attr("jid")).map(str::to_owned)
}

/// `xmpp:room@service/nick`.
fn occupant_address(room: &BareJid, nick: &str) -> Option<Address> {
    let jid = Jid::new(
        room.node().map(|n| n.as_str()),
        room.domain().as_str(),
        Some(nick),
    )
    .ok()?;
    Some(Address::Xmpp(XmppUri::new(jid)))
}

fn participant(room: &BareJid, nick: &str) -> Option<Participant> {
    Some(Participant {
        address: occupant_address(room, nick)?,
        nick: nick.to_owned(),
    })
}
