//! A chat room as its MSRP switch sees it (RFC 7701 §6, §7), sans-IO:
//! who is in it, under which nickname, and where each message goes.
//!
//! The room knows two kinds of members: **participants**, one per MSRP
//! session the gateway terminates (a user who joined from two devices has
//! two sessions under one URI), and **remote members**, the people of the
//! bridged rooms of other worlds (MUC occupants, IRC nicks) that the hub
//! announces. Both share one nickname space: a nickname taken on IRC is
//! taken here (425), as DESIGN.md's single nickname space per bridge asks.
//!
//! Inputs are the facts the driver learned (a session joined with its
//! SDP's capabilities, a NICKNAME request, a SEND's CPIM From and To); the
//! outputs are verdicts (the status to answer, the sessions to copy a
//! SEND to) and [`RosterChange`]s from [`Room::poll_change`], which feed
//! the conference event package (RFC 4575) and the hub. No sockets, no
//! clock.
//!
//! # Anonymous rooms
//!
//! With [`Policy::anonymous`] a participant's SIP URI is never shown to
//! the others (RFC 7701 §2 "Anonymous URI", §6.1): its nickname URI
//! `sip:<nickname>@<room domain>` stands for it everywhere. RFC 7701
//! leaves the allocation of anonymous URIs open and §7 has users reserve
//! a nickname before they use it, so a participant **must reserve a
//! nickname (NICKNAME) before it sends**; until then its SENDs get 403
//! and it is in no roster (it is announced, [`RosterChange::Joined`] with
//! its nickname URI, when it takes one). A new nickname shows as the old
//! nickname URI leaving and the new one joining: the URI is the only
//! identity the others have. The CPIM From of a SEND may still be the
//! real URI or the nickname URI (anything else: 403);
//! [`Room::shown_sender`] gives the From the copies carry. Private
//! messages reach a participant by its nickname URI only (its real URI
//! gets 404, as would a stranger's: nobody learns who is in the room).
//!
//! # Example
//!
//! ```
//! use cpimgate_model::address::Address;
//! use cpimgate_msrp::room::{Participant, Policy, Room, Route};
//!
//! let a = |s: &str| s.parse::<Address>().unwrap();
//! let mut room = Room::new(a("sip:chatroom22@chat.example.com"), Policy::default());
//! let alice = room.join(Participant::new(a("sip:alice@example.com"))).unwrap();
//! let bob = room.join(Participant::new(a("sip:bob@example.com"))).unwrap();
//! room.set_nickname(alice, "Alice").unwrap();
//! // RFC 7701 §6.1: To the room, From the sender: a copy to everyone else.
//! let route = room
//!     .route(alice, &a("sip:alice@example.com"), &[a("sip:chatroom22@chat.example.com")], "text/plain")
//!     .unwrap();
//! assert_eq!(route, Route::Room { sessions: vec![bob] });
//! // §6.2: a private message by nickname URI; an unknown one gets 404.
//! let to_alice = [a("sip:Alice@chat.example.com")];
//! assert_eq!(
//!     room.route(bob, &a("sip:bob@example.com"), &to_alice, "text/plain").unwrap(),
//!     Route::Private { sessions: vec![alice] }
//! );
//! let nobody = [a("sip:carol@chat.example.com")];
//! assert_eq!(room.route(bob, &a("sip:bob@example.com"), &nobody, "text/plain").unwrap_err().code, 404);
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};

use cpimgate_mappings::nick_key;
use cpimgate_model::address::{Address, NameAddr, SipUri};

/// A room's rules (RFC 7701 §4.1, §8: what its `a=chatroom` offers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Whether participants may reserve nicknames (`nicknames`).
    pub nicknames: bool,
    /// Whether private messages are relayed (`private-messages`).
    pub private_messages: bool,
    /// The most sessions at once; a join beyond gets refused.
    pub max_participants: usize,
    /// Whether participants are known to the others only by their
    /// nickname URI, their anonymous URI (RFC 7701 §2, §6.1). See
    /// "Anonymous rooms" in the [module docs](self).
    pub anonymous: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            nicknames: true,
            private_messages: true,
            max_participants: 10_000,
            anonymous: false,
        }
    }
}

/// A participant joining over an MSRP session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// The identity the focus knows it by: its authenticated SIP AoR
    /// (RFC 7701 §6.1: the switch checks the CPIM From against it).
    pub uri: Address,
    /// Whether its SDP offered `private-messages` in `a=chatroom`
    /// (§6.2: else a private message to it gets 428).
    pub accepts_private: bool,
    /// Its `a=accept-wrapped-types` (§6.1: a copy it cannot take is not
    /// sent); empty or `*` takes anything.
    pub wrapped_types: Vec<String>,
}

impl Participant {
    /// A participant that takes private messages and any wrapped type.
    pub fn new(uri: Address) -> Participant {
        Participant {
            uri,
            accepts_private: true,
            wrapped_types: Vec::new(),
        }
    }

    fn accepts(&self, content_type: &str) -> bool {
        self.wrapped_types.is_empty() || crate::sdp::type_listed(&self.wrapped_types, content_type)
    }
}

/// The room's handle of one MSRP session.
pub type SessionId = u64;

/// Where a SEND goes (RFC 7701 §6.1, §6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A regular message: a copy to these sessions (everyone but the
    /// sending session who takes the wrapped type) and to the bridged
    /// rooms through the hub.
    Room {
        /// The sessions to copy it to.
        sessions: Vec<SessionId>,
    },
    /// A private message to a participant: every session of its URI.
    Private {
        /// The sessions to copy it to.
        sessions: Vec<SessionId>,
    },
    /// A private message to a member of a bridged world, through the hub.
    PrivateRemote {
        /// Its address in its world.
        address: Address,
    },
}

/// A refusal and the MSRP status it is answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 403, 404, 424, 425, 428 or 481.
    pub code: u16,
    /// The comment of the response line.
    pub reason: String,
}

impl Refusal {
    fn new(code: u16, reason: impl Into<String>) -> Refusal {
        Refusal {
            code,
            reason: reason.into(),
        }
    }
}

/// A change of who is in the room or under which name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RosterChange {
    /// Someone joined (a participant's first session, or a remote member).
    Joined {
        /// The member's URI or address.
        who: Address,
        /// Its nickname, if it has one.
        nick: Option<String>,
        /// Whether it is a member of a bridged world.
        remote: bool,
    },
    /// Someone left (a participant's last session, or a remote member).
    Left {
        /// The member.
        who: Address,
        /// The nickname it had.
        nick: Option<String>,
        /// Whether it is a member of a bridged world.
        remote: bool,
    },
    /// A nickname was taken, changed or dropped (RFC 7701 §7.2, §7.3).
    Nick {
        /// The member.
        who: Address,
        /// The nickname before.
        old: Option<String>,
        /// The nickname now.
        new: Option<String>,
        /// Whether it is a member of a bridged world.
        remote: bool,
    },
}

#[derive(Debug, Clone)]
struct Session {
    participant: Participant,
    nick: Option<String>,
}

#[derive(Debug, Clone)]
struct Remote {
    address: Address,
    nick: String,
    private_ok: bool,
}

/// A chat room; see the [module docs](self).
#[derive(Debug)]
pub struct Room {
    uri: Address,
    domain: String,
    policy: Policy,
    next_id: SessionId,
    sessions: BTreeMap<SessionId, Session>,
    /// Remote members by nickname key.
    remotes: HashMap<String, Remote>,
    changes: VecDeque<RosterChange>,
}

/// The longest nickname in octets (RFC 7701 §7.1).
pub const MAX_NICK_OCTETS: usize = 1023;

impl Room {
    /// An empty room at `uri` (`sip:chatroom22@chat.example.com`).
    pub fn new(uri: Address, policy: Policy) -> Room {
        let domain = match &uri {
            Address::Sip(u) => u.host().to_string(),
            _ => String::new(),
        };
        Room {
            uri,
            domain,
            policy,
            next_id: 1,
            sessions: BTreeMap::new(),
            remotes: HashMap::new(),
            changes: VecDeque::new(),
        }
    }

    /// The room's URI.
    pub fn uri(&self) -> &Address {
        &self.uri
    }

    /// Its policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// How many sessions are in it.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// A new session of `participant` (after its INVITE was accepted);
    /// refused with 403 when the room is full.
    pub fn join(&mut self, participant: Participant) -> Result<SessionId, Refusal> {
        if self.sessions.len() >= self.policy.max_participants {
            return Err(Refusal::new(403, "the room is full"));
        }
        let id = self.next_id;
        self.next_id += 1;
        let first = !self.has_user(&participant.uri);
        // Anonymous: unlisted until it has a nickname (see module docs).
        if first && !self.policy.anonymous {
            self.changes.push_back(RosterChange::Joined {
                who: participant.uri.clone(),
                nick: None,
                remote: false,
            });
        }
        self.sessions.insert(
            id,
            Session {
                participant,
                nick: None,
            },
        );
        Ok(id)
    }

    /// A session ended (BYE, a lost connection); its nickname is released
    /// unless another session of the same URI uses it (§7.1).
    pub fn leave(&mut self, id: SessionId) -> Option<Participant> {
        if self.policy.anonymous {
            let uri = self.sessions.get(&id)?.participant.uri.clone();
            let before = self.user_nick(&uri);
            let s = self.sessions.remove(&id)?;
            let after = self.user_nick(&uri);
            self.anonymous_change(before, after);
            return Some(s.participant);
        }
        let s = self.sessions.remove(&id)?;
        if !self.has_user(&s.participant.uri) {
            self.changes.push_back(RosterChange::Left {
                who: s.participant.uri.clone(),
                nick: s.nick.clone(),
                remote: false,
            });
        }
        Some(s.participant)
    }

    fn has_user(&self, uri: &Address) -> bool {
        self.sessions
            .values()
            .any(|s| s.participant.uri.same_user(uri))
    }

    /// The nickname a user goes by: that of its first session that has
    /// one (as [`Room::roster`] lists it).
    fn user_nick(&self, uri: &Address) -> Option<String> {
        self.sessions
            .values()
            .filter(|s| s.participant.uri.same_user(uri))
            .find_map(|s| s.nick.clone())
    }

    /// In an anonymous room a user's identity is its nickname URI: a new
    /// one is the old one leaving and the new one joining.
    fn anonymous_change(&mut self, before: Option<String>, after: Option<String>) {
        if before == after {
            return;
        }
        if let Some(old) = before {
            if let Some(u) = self.nick_uri(&old) {
                self.changes.push_back(RosterChange::Left {
                    who: Address::Sip(u),
                    nick: Some(old),
                    remote: false,
                });
            }
        }
        if let Some(new) = after {
            if let Some(u) = self.nick_uri(&new) {
                self.changes.push_back(RosterChange::Joined {
                    who: Address::Sip(u),
                    nick: Some(new),
                    remote: false,
                });
            }
        }
    }

    /// The From that copies of session `id`'s messages carry, to the
    /// other participants and to the bridged worlds, when it is not what
    /// the sender wrote: in an anonymous room its nickname with its
    /// nickname URI (RFC 7701 §6.1: the anonymous URI in the CPIM From).
    /// `None`: the message goes as written.
    pub fn shown_sender(&self, id: SessionId) -> Option<NameAddr> {
        if !self.policy.anonymous {
            return None;
        }
        let s = self.sessions.get(&id)?;
        let nick = self.user_nick(&s.participant.uri)?;
        let uri = self.nick_uri(&nick)?;
        Some(NameAddr {
            display: Some(nick),
            address: Address::Sip(uri),
        })
    }

    /// The participant of a session.
    pub fn participant(&self, id: SessionId) -> Option<&Participant> {
        self.sessions.get(&id).map(|s| &s.participant)
    }

    /// The nickname of a session.
    pub fn nickname(&self, id: SessionId) -> Option<&str> {
        self.sessions.get(&id).and_then(|s| s.nick.as_deref())
    }

    /// Whether a nickname could go to session `id` as far as this room
    /// knows (RFC 7701 §7.1): 403 when the policy has no nicknames, 424
    /// when it is malformed (more than 1023 octets, a control character,
    /// nothing but spaces), 425 when another user holds it here or in a
    /// bridged world. An empty nickname asks to drop the current one
    /// (§7.3): `Ok(None)`. The driver then reserves it in the mapping
    /// table (other gateway instances, other rooms of the bridge) and
    /// calls [`Room::set_nickname`].
    pub fn check_nickname(&self, id: SessionId, nick: &str) -> Result<Option<String>, Refusal> {
        let s = self
            .sessions
            .get(&id)
            .ok_or_else(|| Refusal::new(481, "no such session"))?;
        if !self.policy.nicknames {
            return Err(Refusal::new(403, "this room has no nicknames"));
        }
        if nick.is_empty() {
            return Ok(None);
        }
        if nick.len() > MAX_NICK_OCTETS {
            return Err(Refusal::new(424, "nickname longer than 1023 octets"));
        }
        if nick.chars().any(char::is_control) {
            return Err(Refusal::new(424, "control character in the nickname"));
        }
        let key = nick_key(nick);
        if key.is_empty() {
            return Err(Refusal::new(424, "empty nickname"));
        }
        if let Some(r) = self.remotes.get(&key) {
            return Err(Refusal::new(
                425,
                format!("nickname in use by {}", r.address),
            ));
        }
        let uri = &s.participant.uri;
        let taken = self.sessions.values().any(|o| {
            !o.participant.uri.same_user(uri)
                && o.nick.as_deref().map(nick_key) == Some(key.clone())
        });
        if taken {
            return Err(Refusal::new(425, "nickname in use"));
        }
        Ok(Some(nick.trim().to_owned()))
    }

    /// Gives session `id` the nickname (or drops it with an empty one),
    /// after [`Room::check_nickname`]; the old one is released only now
    /// (§7.2). Returns the nickname in effect.
    pub fn set_nickname(&mut self, id: SessionId, nick: &str) -> Result<Option<String>, Refusal> {
        let new = self.check_nickname(id, nick)?;
        let before = self
            .sessions
            .get(&id)
            .and_then(|s| self.user_nick(&s.participant.uri));
        let Some(s) = self.sessions.get_mut(&id) else {
            return Err(Refusal::new(481, "no such session"));
        };
        let old = std::mem::replace(&mut s.nick, new.clone());
        if self.policy.anonymous {
            let uri = s.participant.uri.clone();
            let after = self.user_nick(&uri);
            self.anonymous_change(before, after);
        } else if old != new {
            self.changes.push_back(RosterChange::Nick {
                who: s.participant.uri.clone(),
                old,
                new: new.clone(),
                remote: false,
            });
        }
        Ok(new)
    }

    /// A member of a bridged world came in under `nick` (its name there:
    /// an IRC nick, a MUC nickname). `private_ok` says whether its world
    /// takes private messages. Returns false when someone else here holds
    /// that nickname already, a participant or another bridged member
    /// (the hub decides who yields; nobody is replaced unseen). A member
    /// already in under another nickname is renamed.
    pub fn remote_join(&mut self, address: Address, nick: &str, private_ok: bool) -> bool {
        let key = nick_key(nick);
        if key.is_empty() || self.local_nick_owner(&key).is_some() {
            return false;
        }
        if let Some(r) = self.remotes.get(&key) {
            return r.address.same_user(&address);
        }
        if self.remotes.values().any(|r| r.address.same_user(&address)) {
            return self.remote_rename(&address, nick);
        }
        self.remotes.insert(
            key,
            Remote {
                address: address.clone(),
                nick: nick.to_owned(),
                private_ok,
            },
        );
        self.changes.push_back(RosterChange::Joined {
            who: address,
            nick: Some(nick.to_owned()),
            remote: true,
        });
        true
    }

    /// A member of a bridged world left.
    pub fn remote_leave(&mut self, address: &Address) {
        let gone: Vec<String> = self
            .remotes
            .iter()
            .filter(|(_, r)| r.address.same_user(address))
            .map(|(k, _)| k.clone())
            .collect();
        for k in gone {
            if let Some(r) = self.remotes.remove(&k) {
                self.changes.push_back(RosterChange::Left {
                    who: r.address,
                    nick: Some(r.nick),
                    remote: true,
                });
            }
        }
    }

    /// A member of a bridged world changed its nickname; false when a
    /// participant here holds the new one.
    pub fn remote_rename(&mut self, address: &Address, nick: &str) -> bool {
        let key = nick_key(nick);
        if key.is_empty() || self.local_nick_owner(&key).is_some() {
            return false;
        }
        let Some(old_key) = self
            .remotes
            .iter()
            .find(|(_, r)| r.address.same_user(address))
            .map(|(k, _)| k.clone())
        else {
            return false;
        };
        let Some(mut r) = self.remotes.remove(&old_key) else {
            return false;
        };
        let old = std::mem::replace(&mut r.nick, nick.to_owned());
        self.changes.push_back(RosterChange::Nick {
            who: r.address.clone(),
            old: Some(old),
            new: Some(nick.to_owned()),
            remote: true,
        });
        self.remotes.insert(key, r);
        true
    }

    fn local_nick_owner(&self, key: &str) -> Option<&Address> {
        self.sessions
            .values()
            .find(|s| s.nick.as_deref().map(nick_key).as_deref() == Some(key))
            .map(|s| &s.participant.uri)
    }

    /// Where a SEND of session `id` goes, from its CPIM From and To and
    /// the type of its wrapped content (RFC 7701 §6.1-§6.3): 481 for an
    /// unknown session; 403 when From is not the sender's URI or its
    /// nickname URI, when there is not exactly one To, or when the policy
    /// has no private messages; 404 when a private To resolves to nobody;
    /// 428 when its recipient takes no private messages.
    pub fn route(
        &self,
        id: SessionId,
        from: &Address,
        to: &[Address],
        wrapped_type: &str,
    ) -> Result<Route, Refusal> {
        let s = self
            .sessions
            .get(&id)
            .ok_or_else(|| Refusal::new(481, "no such session"))?;
        if !self.is_sender(s, from) {
            return Err(Refusal::new(
                403,
                format!("CPIM From {from} is not the sender"),
            ));
        }
        if self.policy.anonymous && self.user_nick(&s.participant.uri).is_none() {
            return Err(Refusal::new(
                403,
                "this room is anonymous: reserve a nickname (NICKNAME) first",
            ));
        }
        let [to] = to else {
            return Err(Refusal::new(403, "a message needs exactly one CPIM To"));
        };
        if self.is_room(to) {
            let sessions = self
                .sessions
                .iter()
                .filter(|(other, o)| **other != id && o.participant.accepts(wrapped_type))
                .map(|(other, _)| *other)
                .collect();
            return Ok(Route::Room { sessions });
        }
        if !self.policy.private_messages {
            return Err(Refusal::new(403, "this room has no private messages"));
        }
        if let Some(r) = self.nick_in_uri(to).and_then(|k| self.remotes.get(&k)) {
            return remote_route(r);
        }
        let target = self
            .nick_in_uri(to)
            .and_then(|k| self.local_nick_owner(&k).cloned())
            .or_else(|| {
                // Anonymous: a real URI names nobody (module docs).
                self.sessions
                    .values()
                    .filter(|_| !self.policy.anonymous)
                    .find(|o| o.participant.uri.same_user(to))
                    .map(|o| o.participant.uri.clone())
            });
        if let Some(uri) = target {
            let mine: Vec<(&SessionId, &Session)> = self
                .sessions
                .iter()
                .filter(|(_, o)| o.participant.uri.same_user(&uri))
                .collect();
            if !mine.iter().any(|(_, o)| o.participant.accepts_private) {
                return Err(Refusal::new(428, "the recipient takes no private messages"));
            }
            let sessions = mine
                .into_iter()
                .filter(|(_, o)| o.participant.accepts_private)
                .map(|(k, _)| *k)
                .collect();
            return Ok(Route::Private { sessions });
        }
        if let Some(r) = self.remotes.values().find(|r| r.address.same_user(to)) {
            return remote_route(r);
        }
        Err(Refusal::new(404, format!("{to} is not in the room")))
    }

    fn is_room(&self, a: &Address) -> bool {
        match (a, &self.uri) {
            (Address::Sip(x), Address::Sip(room)) => x.sip_equivalent(room),
            _ => a == &self.uri,
        }
    }

    /// The nickname key of a nickname URI: a SIP URI in the room's domain
    /// whose user part is a nickname (DESIGN.md "Addressing").
    fn nick_in_uri(&self, a: &Address) -> Option<String> {
        let Address::Sip(u) = a else {
            return None;
        };
        if !u.host().to_string().eq_ignore_ascii_case(&self.domain) {
            return None;
        }
        u.user().map(nick_key)
    }

    fn is_sender(&self, s: &Session, from: &Address) -> bool {
        if s.participant.uri.same_user(from) {
            return true;
        }
        match (&s.nick, self.nick_in_uri(from)) {
            (Some(n), Some(k)) => nick_key(n) == k,
            _ => false,
        }
    }

    /// Every session that takes `wrapped_type` (a message from a bridged
    /// world: RFC 7701 §6.1, no sender to leave out).
    pub fn all_sessions(&self, wrapped_type: &str) -> Vec<SessionId> {
        self.sessions
            .iter()
            .filter(|(_, s)| s.participant.accepts(wrapped_type))
            .map(|(id, _)| *id)
            .collect()
    }

    /// The sessions a private message from a bridged world goes to: the
    /// participant named by its nickname URI or its own URI, if it takes
    /// private messages (RFC 7701 §6.2).
    pub fn sessions_of(&self, to: &Address) -> Vec<SessionId> {
        let by_nick = self
            .nick_in_uri(to)
            .and_then(|k| self.local_nick_owner(&k).cloned());
        let owner = match by_nick {
            Some(o) => o,
            // Anonymous: a real URI names nobody (module docs).
            None if self.policy.anonymous => return Vec::new(),
            None => to.clone(),
        };
        self.sessions
            .iter()
            .filter(|(_, s)| s.participant.uri.same_user(&owner) && s.participant.accepts_private)
            .map(|(id, _)| *id)
            .collect()
    }

    /// The URI that stands for a nickname in this room:
    /// `sip:<nickname>@<room domain>`.
    pub fn nick_uri(&self, nick: &str) -> Option<SipUri> {
        SipUri::new(Some(nick), &self.domain).ok()
    }

    /// Everyone in the room: participants (one entry per URI, the
    /// nickname of its first session that has one) and remote members,
    /// for a full conference-info document (RFC 4575 §4.1).
    pub fn roster(&self) -> Vec<(Address, Option<String>, bool)> {
        let mut out: Vec<(Address, Option<String>, bool)> = Vec::new();
        for s in self.sessions.values() {
            if self.policy.anonymous {
                // Listed by nickname URI only, once it has a nickname.
                let shown = self
                    .user_nick(&s.participant.uri)
                    .and_then(|n| Some((Address::Sip(self.nick_uri(&n)?), n)));
                if let Some((who, nick)) = shown {
                    if !out.iter().any(|(a, _, _)| a == &who) {
                        out.push((who, Some(nick), false));
                    }
                }
                continue;
            }
            match out
                .iter_mut()
                .find(|(a, _, _)| a.same_user(&s.participant.uri))
            {
                Some(entry) => {
                    if entry.1.is_none() {
                        entry.1.clone_from(&s.nick);
                    }
                }
                None => out.push((s.participant.uri.clone(), s.nick.clone(), false)),
            }
        }
        let mut remotes: Vec<&Remote> = self.remotes.values().collect();
        remotes.sort_by(|a, b| a.nick.cmp(&b.nick));
        out.extend(
            remotes
                .into_iter()
                .map(|r| (r.address.clone(), Some(r.nick.clone()), true)),
        );
        out
    }

    /// The next roster change, oldest first.
    pub fn poll_change(&mut self) -> Option<RosterChange> {
        self.changes.pop_front()
    }
}

fn remote_route(r: &Remote) -> Result<Route, Refusal> {
    if !r.private_ok {
        return Err(Refusal::new(428, "the recipient takes no private messages"));
    }
    Ok(Route::PrivateRemote {
        address: r.address.clone(),
    })
}

#[cfg(test)]
mod tests;
