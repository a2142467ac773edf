//! XMPP users joining, changing nick in and leaving a room (XEP-0045 §7.2,
//! §7.6, §7.14), and what a lost connection or a shutdown does to them.

use cpimgate_model::Address;
use cpimgate_model::address::XmppUri;
use cpimgate_model::event::{Participant, RoomEventKind};
use cpimgate_model::time::Timestamp;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::muc::Muc;
use xmpp_parsers::muc::user::Status;
use xmpp_parsers::ns;
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

use super::super::core::{Core, Directory, Output, model_jid};
use super::super::stanzas;
use super::{Joining, Occupant, conflict, history, key, self_nick_owner};

impl<D: Directory> Core<D> {
    /// Presence to `room@service/nick` (XEP-0045 §7.2 join, §7.6 nick
    /// change, §7.14 leave).
    pub(crate) fn on_room_presence(&mut self, p: Presence, from: Jid, to: Jid, now: Timestamp) {
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
        // §7.2.15: the history the newcomer asks for, if this is a join.
        let asked = p
            .payloads
            .iter()
            .find(|e| e.is("x", ns::MUC))
            .and_then(|e| Muc::try_from(e.clone()).ok());
        let wanted = history::wanted(
            self.history_on_join,
            asked.as_ref().and_then(|m| m.history.as_ref()),
            now,
        );
        self.next_token += 1;
        let token = self.next_token;
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
                    who: Self::participant(room, &o.real, &o.nick),
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
                        who: Self::participant(room, &from, &old),
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
                    let mut newcomer = Occupant::new(from.clone(), nick.clone());
                    match wanted {
                        // The history, then the subject, come when the
                        // driver has fetched it (`handle_history`).
                        Some((query, max_chars)) => {
                            newcomer.joining = Some(Joining {
                                token,
                                max_chars,
                                held: Vec::new(),
                            });
                            out.push(Output::FetchHistory {
                                token,
                                room: room.room_ref.clone(),
                                query,
                            });
                        }
                        None => tx.push(
                            room.subject_message(Jid::from(room.jid.clone()), from.clone())
                                .into(),
                        ),
                    }
                    room.occupants.push(newcomer);
                    events.push(RoomEventKind::Join {
                        who: Self::participant(room, &from, &nick),
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

    /// The connection is gone: every XMPP occupant has left.
    pub(crate) fn rooms_disconnected(&mut self) {
        let mut left = Vec::new();
        for room in self.rooms.map.values_mut() {
            for o in room.occupants.drain(..) {
                left.push((room.room_ref.clone(), room.bridge.clone(), o));
            }
        }
        for (room_ref, bridge, o) in left {
            // The occupant as the other worlds know them (see `participant`).
            let address = model_jid(&Jid::from(o.real.to_bare()))
                .map(|j| Address::Xmpp(XmppUri::new(j)))
                .unwrap_or_else(|_| room_ref.address.clone());
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
}
