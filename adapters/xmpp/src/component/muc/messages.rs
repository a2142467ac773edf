//! Messages in a room: groupchat (XEP-0045 §7.4) and private messages
//! (§7.5), both ways.
//!
//! * An occupant's groupchat message is reflected to every occupant, the
//!   sender included, with the room's XEP-0359 `<stanza-id/>` (its model
//!   id) and the sender's `<origin-id/>` kept (XEP-0359 §3), and handed to
//!   the hub. The sender's own reflection waits for the hub's answer: it
//!   is the sender's only sign that the room took the message, so it is
//!   sent once the message is on disk (a crash before that must not leave
//!   a reflected message lost), and replaced by an error if the hub
//!   refuses it. An acceptable origin-id makes the model id
//!   (`xmpp:<sender>#<origin-id>`), so a message the client sends again
//!   (after a stream resumption, say) is the same message to the hub, which
//!   relays it once; the room reflects the repeat to its sender only.
//! * A private message to `room@service/nick` goes to an XMPP occupant
//!   directly (from the sender's occupant JID, §7.5) or, for a participant
//!   of another world, to the hub as a private message of the room.
//! * Messages of the other worlds are shown from `room@service/nick`; a
//!   private one goes to the one occupant it names.

use std::collections::{HashSet, VecDeque};

use cpimgate_model::address::XmppUri;
use cpimgate_model::event::RoomEventKind;
use cpimgate_model::port::{Failure, FailureKind};
use cpimgate_model::time::Timestamp;
use cpimgate_model::{Address, Message, NameAddr, RoomRef};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::{Message as XMessage, MessageType};
use xmpp_parsers::muc::MucUser;
use xmpp_parsers::ns;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

use super::super::core::{Core, Directory, Output, Pending, model_id, model_jid};
use super::super::stanzas;
use super::{Room, nick_of, room_jid_of, stanza_id};
use crate::convert::incoming_body;

/// How many model ids of its own messages a room remembers, to reflect a
/// repeated origin-id to its sender only.
const RECENT_IDS: usize = 256;

/// The model ids a room saw last from its XMPP occupants.
#[derive(Debug, Default)]
pub(crate) struct RecentIds {
    order: VecDeque<String>,
    set: HashSet<String>,
}

impl RecentIds {
    /// Remembers `id`; whether it was already there.
    fn seen(&mut self, id: &str) -> bool {
        if self.set.contains(id) {
            return true;
        }
        if self.order.len() >= RECENT_IDS
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        self.order.push_back(id.to_owned());
        self.set.insert(id.to_owned());
        false
    }
}

impl<D: Directory> Core<D> {
    /// A message to a room JID or an occupant JID of one.
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
        if let Some(nick) = to.resource().map(|r| r.as_str().to_owned()) {
            if m.type_ == MessageType::Groupchat {
                // §7.5: groupchat to one occupant is refused.
                let e = err(
                    DefinedCondition::BadRequest,
                    ErrorType::Modify,
                    "a private message must not be of type groupchat",
                );
                self.transmit(e);
                return;
            }
            self.on_private_message(m, from, to.clone(), &nick, now);
            return;
        }
        if m.type_ != MessageType::Groupchat {
            // §7.4 is groupchat; a chat to the bare room JID has no meaning.
            let e = err(
                DefinedCondition::BadRequest,
                ErrorType::Modify,
                "messages to the room must be of type groupchat",
            );
            self.transmit(e);
            return;
        }
        let body = m
            .get_best_body_cloned(vec![])
            .map(|(_, b)| incoming_body(&m, b));
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
                for o in &mut room.occupants {
                    let mut s =
                        Room::subject_for(Some(&subject), Jid::from(me.clone()), o.real.clone());
                    s.id = m.id.clone();
                    tx.extend(o.pass(s, None));
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
                let msg_id = model_id(&from, &m);
                let repeat = room.recent.seen(msg_id.as_str());
                // §7.4: reflected to every occupant, the sender included
                // (to the sender once the hub has it on disk: see the
                // module doc); XEP-0359 §3: the room's stanza-id, the
                // origin-id kept.
                let mut reflection = None;
                for o in &mut room.occupants {
                    if repeat && o.real != from {
                        continue;
                    }
                    let mut s = stanzas::text_message(
                        MessageType::Groupchat,
                        Jid::from(me.clone()),
                        o.real.clone(),
                        id.clone(),
                        &body,
                    );
                    s.payloads.push(stanza_id(msg_id.as_str(), &room.jid));
                    s.payloads.extend(
                        m.payloads
                            .iter()
                            .filter(|p| p.is("origin-id", ns::SID))
                            .cloned(),
                    );
                    if o.real == from {
                        reflection = o.pass(s, None);
                    } else {
                        tx.extend(o.pass(s, None));
                    }
                }
                for s in tx {
                    self.transmit(s);
                }
                let Ok(me_model) = model_jid(&Jid::from(occupant.real.to_bare())) else {
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
                msg.id = msg_id;
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
                        reflection,
                    },
                );
                self.out.push_back(Output::ToHub(Box::new(msg)));
            }
            (None, None) => {}
        }
    }

    /// XEP-0045 §7.5: a private message from an occupant to `room/nick`.
    fn on_private_message(&mut self, m: XMessage, from: Jid, to: Jid, nick: &str, now: Timestamp) {
        let id = m.id.as_ref().map(|i| i.0.clone());
        let max_body = self.max_body;
        let bare = to.to_bare();
        let err = |c, t, text: &str| {
            stanzas::message_error(
                to.clone(),
                from.clone(),
                id.clone(),
                stanzas::error(t, c, text),
            )
        };
        let Some((_, body)) = m.get_best_body_cloned(vec![]) else {
            // Chat states and the like: nothing to pass on.
            return;
        };
        let body = incoming_body(&m, body);
        let Some(room) = self.room_mut(&bare) else {
            return;
        };
        let Some(sender) = room.occupants.iter().find(|o| o.real == from).cloned() else {
            let e = err(
                DefinedCondition::NotAcceptable,
                ErrorType::Modify,
                "only occupants may send private messages in this room",
            );
            self.transmit(e);
            return;
        };
        if body.len() > max_body {
            let text = format!(
                "the message body is {} bytes, the limit is {max_body}",
                body.len()
            );
            let e = err(DefinedCondition::NotAcceptable, ErrorType::Modify, &text);
            self.transmit(e);
            return;
        }
        let Some(me) = room.occupant_jid(&sender.nick) else {
            return;
        };
        let key = cpimgate_mappings::nick_key(nick);
        if let Some(target) = room
            .occupants
            .iter()
            .find(|o| cpimgate_mappings::nick_key(&o.nick) == key)
        {
            // Another XMPP user: delivered by the room itself, from the
            // sender's occupant JID to the recipient's real JID (§7.5).
            let mut s = stanzas::text_message(
                MessageType::Chat,
                Jid::from(me),
                target.real.clone(),
                id,
                &body,
            );
            s.payloads.push(MucUser::new().into());
            self.transmit(s);
            return;
        }
        let Some(remote) = room
            .remote
            .iter()
            .find(|r| cpimgate_mappings::nick_key(&r.shown) == key)
            .cloned()
        else {
            let e = err(
                DefinedCondition::ItemNotFound,
                ErrorType::Cancel,
                "no occupant of this room has that nickname",
            );
            self.transmit(e);
            return;
        };
        let room_ref = room.room_ref.clone();
        let Ok(me_model) = model_jid(&Jid::from(sender.real.to_bare())) else {
            return;
        };
        let receipt = m.payloads.iter().any(|p| p.is("request", ns::RECEIPTS));
        let mut msg = Message::text(
            self.origin(id.clone()),
            NameAddr::with_display(sender.nick.clone(), Address::Xmpp(XmppUri::new(me_model))),
            NameAddr::with_display(remote.shown.clone(), remote.address.clone()),
            &body,
        );
        msg.id = model_id(&from, &m);
        msg.datetime = Some(now);
        msg.room = Some(room_ref);
        msg.private = true;
        // Like a 1:1 message: a failure comes back as an error from
        // `room/nick`, a delivery as a receipt if one was asked for.
        self.remember(
            msg.id.clone(),
            Pending {
                user: from,
                ours: to,
                stanza_id: id,
                receipt,
                room: false,
                reflection: None,
            },
        );
        self.out.push_back(Output::ToHub(Box::new(msg)));
    }

    /// A message of another world's room, shown in ours. With no XMPP user
    /// in the room it is shown to no one and stays in the hub's history for
    /// those who join (see the module doc).
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
            // Named by its occupant JID (`room@gw/nick`), or by its real
            // JID as the other worlds know an XMPP member of the bridge.
            let target = message
                .to
                .first()
                .and_then(|t| match &t.address {
                    Address::Xmpp(u) => {
                        let by_nick = u
                            .jid()
                            .resource()
                            .and_then(|nick| room.occupants.iter().find(|o| o.nick == nick));
                        let bare = u.jid().bare().to_string();
                        by_nick.or_else(|| {
                            room.occupants
                                .iter()
                                .find(|o| o.real.to_bare().to_string().eq_ignore_ascii_case(&bare))
                        })
                    }
                    _ => None,
                })
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
            let jid = room.jid.clone();
            for o in &mut room.occupants {
                let mut s = stanzas::text_message(
                    MessageType::Groupchat,
                    Jid::from(from.clone()),
                    o.real.clone(),
                    Some(message.id.to_string()),
                    text,
                );
                // XEP-0359 §2: the room's stanza-id is the gateway-wide
                // id. No origin-id: that element is the originating
                // XMPP entity's (§2.2), and here the room itself writes
                // the stanza, whose `id` is the same id already. Every
                // element more costs the server on each copy, one per
                // occupant (Prosody, measured: ~10 % more of its CPU per
                // stanza with both ids than with the stanza-id only).
                s.payloads.push(stanza_id(message.id.as_str(), &jid));
                tx.extend(o.pass(s, Some(message.id.as_str())));
            }
        }
        for s in tx {
            self.transmit(s);
        }
        Ok(())
    }
}
