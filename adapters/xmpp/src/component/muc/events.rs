//! Room events of the other worlds (joins, leaves, kicks, nick changes,
//! topics, rosters) shown to the XMPP occupants as MUC presences
//! (XEP-0045 §7.2.3, §7.6, §7.14, §9.1) and subjects (§8.1).

use cpimgate_mappings::nick_key;
use cpimgate_model::event::{Participant, RoomEventKind};
use cpimgate_model::{Address, RoomEvent};
use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::message::Lang;
use xmpp_parsers::muc::user::Status;

use super::super::core::{Core, Directory, Output};
use super::{Remote, Room, key, renamed, room_jid_of};
use crate::text::xml_safe;

impl<D: Directory> Core<D> {
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
                let kicked = kicked_occupants(room, &event.room, &who.address);
                if kicked.is_empty() {
                    remote_leave(room, who, &[Status::Kicked], reason.as_deref(), &mut tx);
                }
                for i in kicked.into_iter().rev() {
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
                let jid = Jid::from(room.jid.clone());
                for o in &mut room.occupants {
                    // A joining occupant gets it after its history.
                    let s = Room::subject_for(Some(topic), jid.clone(), o.real.clone());
                    tx.extend(o.pass(s, None).map(Into::into));
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

/// Indexes (ascending) of the occupants of `room` a kick of `who` removes:
/// the occupant `room@gw/nick` when `who` is an occupant JID of this room,
/// or every occupant whose real bare JID is `who` (how occupants are known
/// to the other worlds, e.g. an IRC puppet kicked by an operator).
fn kicked_occupants(room: &Room, room_ref: &cpimgate_model::RoomRef, who: &Address) -> Vec<usize> {
    let Address::Xmpp(u) = who else {
        return Vec::new();
    };
    let jid = u.jid();
    let this_room = room_jid_of(room_ref)
        .is_some_and(|b| BareJid::new(&jid.bare().to_string()).is_ok_and(|j| key(&j) == key(&b)));
    if this_room {
        let Some(nick) = jid.resource() else {
            return Vec::new();
        };
        return room
            .occupants
            .iter()
            .position(|o| o.nick == nick)
            .into_iter()
            .collect();
    }
    let Ok(bare) = BareJid::new(&jid.bare().to_string()) else {
        return Vec::new();
    };
    room.occupants
        .iter()
        .enumerate()
        .filter(|(_, o)| key(&o.real.to_bare()) == key(&bare))
        .map(|(i, _)| i)
        .collect()
}
