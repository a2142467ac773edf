//! Conference information documents (RFC 4575 §4, §5) for the chat
//! rooms, with the nicknames of RFC 7701 §7.4, sans-IO: what the focus
//! puts in the NOTIFYs of the conference event package.
//!
//! A subscriber gets one **full** document first (`state="full"`: the
//! room's description and every member), then **partial** documents
//! (`state="partial"`: only the users that came, went or changed), and
//! builds its view with the procedure of RFC 4575 §4.6. A focus that
//! spaces its notifications (§3.9) holds the changes meanwhile and
//! sends them in one partial document: [`coalesce`] makes their updates,
//! each user once.
//! The `version` attribute counts up by one per NOTIFY *of one
//! subscription* (§5.2), so it is an argument here: the subscription
//! (`cpimgate_sip::subscribe`) knows it.
//!
//! Every member of the [`Room`] is a `<user>` (§5.6): the participants
//! of MSRP sessions under their SIP AoR, with one `<endpoint>` per
//! session (§5.7, the entity being the session's Contact URI or another
//! key the driver picks), and the members of bridged worlds under their
//! address there (`xmpp:alice@example.org`), with one endpoint that is
//! that address, so that a SIP participant sees the whole bridged room.
//! An endpoint is `connected` with one `message` medium (§5.7.3, §5.8.2).
//! Nicknames are the `nickname` attribute in the namespace of RFC 6501
//! ([`XCON_NAMESPACE`], prefix `xcon`), as RFC 7701 §9.6 shows. A
//! nickname given up (RFC 7701 §7.3) is written as an empty one, the same
//! convention as the MSRP `Use-Nickname` header's.
//!
//! The other side, reading these documents as a subscriber (the gateway
//! as a participant of a room elsewhere), is [`read`].
//!
//! ```
//! use cpimgate_model::address::Address;
//! use cpimgate_msrp::conference::{Conference, Endpoint, Update, users_of};
//! use cpimgate_msrp::room::{Participant, Policy, Room};
//!
//! let a = |s: &str| s.parse::<Address>().unwrap();
//! let mut room = Room::new(a("sip:chatroom22@chat.example.com"), Policy::default());
//! let bob = room.join(Participant::new(a("sip:bob@example.com"))).unwrap();
//! room.set_nickname(bob, "Dopey Donkey").unwrap();
//! room.remote_join(a("xmpp:alice@example.org"), "Alice <3", true);
//!
//! let conf = Conference::new(room.uri()).with_subject("MSRP nickname example");
//! // The driver knows the Contact of each session.
//! let users = users_of(&room, |_| vec![Endpoint::new("sip:bob@pc33.example.com")]);
//! let full = conf.full(&users, 1);
//! assert!(full.contains(r#"<user entity="sip:bob@example.com" state="full" xcon:nickname="Dopey Donkey">"#));
//! assert!(full.contains(r#"xcon:nickname="Alice &lt;3""#));
//!
//! // Then one partial document per roster change.
//! room.poll_change(); room.poll_change(); room.poll_change();
//! room.remote_leave(&a("xmpp:alice@example.org"));
//! let change = room.poll_change().unwrap();
//! let partial = conf.partial(&[Update::from_change(&change, Vec::new())], 2);
//! assert!(partial.contains(r#"<user entity="xmpp:alice@example.org" state="deleted"/>"#));
//! ```

mod coalesce;
pub mod read;
mod xml;

pub use coalesce::coalesce;

use cpimgate_model::address::Address;

use crate::room::{Room, RosterChange};
use xml::Writer;

/// The namespace of conference-info documents (RFC 4575 §4.2).
pub const NAMESPACE: &str = "urn:ietf:params:xml:ns:conference-info";
/// The namespace of the `nickname` attribute of `<user>` (RFC 6501, as
/// RFC 7701 §9.6 uses it).
pub const XCON_NAMESPACE: &str = "urn:ietf:params:xml:ns:xcon-conference-info";
/// The MIME type of the documents (RFC 4575 §3.4, §9).
pub const CONTENT_TYPE: &str = "application/conference-info+xml";
/// The name of the event package (RFC 4575 §3.1).
pub const EVENT_PACKAGE: &str = "conference";

/// One device or session of a user (RFC 4575 §5.7): connected, with one
/// medium of type `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Unique among the user's endpoints (§5.7): the session's Contact
    /// URI, a GRUU, or for a bridged member its address.
    pub entity: String,
    /// A name for humans (§5.7.1), if any.
    pub display_text: Option<String>,
}

impl Endpoint {
    /// An endpoint without display text.
    pub fn new(entity: impl Into<String>) -> Endpoint {
        Endpoint {
            entity: entity.into(),
            display_text: None,
        }
    }
}

/// One member of the room (RFC 4575 §5.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Its URI, unique in the room (§5.6): a participant's SIP AoR, or
    /// the address of a member of a bridged world.
    pub entity: String,
    /// The name shown for it (§5.6.1).
    pub display_text: Option<String>,
    /// Its nickname in the room (RFC 7701 §7.4), if it has one.
    pub nickname: Option<String>,
    /// Its sessions (§5.6.6).
    pub endpoints: Vec<Endpoint>,
}

impl User {
    /// A member as the room's roster has it: shown by its nickname, else
    /// by its URI; a member of a bridged world gets one endpoint, its
    /// address, when `endpoints` is empty.
    pub fn member(
        who: &Address,
        nick: Option<&str>,
        remote: bool,
        mut endpoints: Vec<Endpoint>,
    ) -> User {
        let entity = who.to_string();
        if remote && endpoints.is_empty() {
            endpoints.push(Endpoint::new(entity.clone()));
        }
        User {
            display_text: Some(default_display(&entity, nick)),
            nickname: nick.map(str::to_owned),
            entity,
            endpoints,
        }
    }
}

fn default_display(entity: &str, nick: Option<&str>) -> String {
    match nick {
        Some(n) if !n.is_empty() => n.to_owned(),
        _ => entity.to_owned(),
    }
}

/// Every member of `room` as a [`User`], in the order of
/// [`Room::roster`]; `endpoints_of` gives the endpoints of a participant
/// (the driver knows its sessions' Contacts), members of bridged worlds
/// get their address.
pub fn users_of(room: &Room, mut endpoints_of: impl FnMut(&Address) -> Vec<Endpoint>) -> Vec<User> {
    room.roster()
        .into_iter()
        .map(|(who, nick, remote)| {
            let endpoints = if remote {
                Vec::new()
            } else {
                endpoints_of(&who)
            };
            User::member(&who, nick.as_deref(), remote, endpoints)
        })
        .collect()
}

/// One change in a partial document (RFC 4575 §4.4, §4.6).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Update {
    /// A user came: written whole (`state="full"`).
    Added(User),
    /// A user left (`state="deleted"`).
    Deleted {
        /// The user's entity.
        entity: String,
    },
    /// A user's nickname changed or was given up (`state="partial"`
    /// with the new `xcon:nickname`, empty when there is none, and the
    /// new display text).
    Nickname {
        /// The user's entity.
        entity: String,
        /// The nickname now.
        nickname: Option<String>,
        /// What the user is shown as now.
        display_text: String,
    },
    /// A user opened another session (a second device).
    EndpointAdded {
        /// The user's entity.
        user: String,
        /// The new endpoint.
        endpoint: Endpoint,
    },
    /// A session of a user that stays in the room ended.
    EndpointDeleted {
        /// The user's entity.
        user: String,
        /// The endpoint's entity.
        endpoint: String,
    },
}

impl Update {
    /// The update for a [`RosterChange`] of the room; `endpoints` are
    /// those of a participant that joined (ignored otherwise).
    pub fn from_change(change: &RosterChange, endpoints: Vec<Endpoint>) -> Update {
        match change {
            RosterChange::Joined { who, nick, remote } => {
                Update::Added(User::member(who, nick.as_deref(), *remote, endpoints))
            }
            RosterChange::Left { who, .. } => Update::Deleted {
                entity: who.to_string(),
            },
            RosterChange::Nick { who, new, .. } => {
                let entity = who.to_string();
                Update::Nickname {
                    display_text: default_display(&entity, new.as_deref()),
                    nickname: new.clone(),
                    entity,
                }
            }
        }
    }
}

/// What the room says of itself (RFC 4575 §5.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conference {
    entity: String,
    display_text: Option<String>,
    subject: Option<String>,
}

impl Conference {
    /// The conference of the room at `uri` (§5.2: the URI one subscribes
    /// to).
    pub fn new(uri: &Address) -> Conference {
        Conference {
            entity: uri.to_string(),
            display_text: None,
            subject: None,
        }
    }

    /// With a subject (§5.3 `<subject>`).
    pub fn with_subject(mut self, subject: impl Into<String>) -> Conference {
        self.subject = Some(subject.into());
        self
    }

    /// With a name for directories (§5.3 `<display-text>`).
    pub fn with_display_text(mut self, text: impl Into<String>) -> Conference {
        self.display_text = Some(text.into());
        self
    }

    /// The room's URI, the documents' `entity`.
    pub fn entity(&self) -> &str {
        &self.entity
    }

    fn root(&self, w: &mut Writer, state: &str, version: u32) {
        let version = version.to_string();
        w.start(
            "conference-info",
            &[
                ("xmlns", NAMESPACE),
                ("xmlns:xcon", XCON_NAMESPACE),
                ("entity", &self.entity),
                ("state", state),
                ("version", &version),
            ],
        );
    }

    /// The full document (§4.4, §5.2: at least `<conference-description>`
    /// and `<users>`), with the user count (§5.5.1).
    pub fn full(&self, users: &[User], version: u32) -> String {
        let mut w = Writer::new();
        self.root(&mut w, "full", version);
        w.start("conference-description", &[]);
        // §6: display-text comes before subject.
        if let Some(t) = &self.display_text {
            w.text("display-text", t);
        }
        if let Some(s) = &self.subject {
            w.text("subject", s);
        }
        w.end("conference-description");
        w.start("conference-state", &[]);
        w.text("user-count", &users.len().to_string());
        w.end("conference-state");
        w.start("users", &[("state", "full")]);
        for u in users {
            write_user(&mut w, u);
        }
        w.end("users");
        w.end("conference-info");
        w.finish()
    }

    /// A partial document with these changes (§4.4: `<users
    /// state="partial">`, each user full, deleted or partial). Partial
    /// changes of one user that follow each other go in one `<user>`
    /// (§4.5: a user's entity is unique in a document); [`coalesce`]
    /// gives one update per user otherwise.
    pub fn partial(&self, updates: &[Update], version: u32) -> String {
        let mut w = Writer::new();
        self.root(&mut w, "partial", version);
        w.start("users", &[("state", "partial")]);
        let mut rest = updates;
        while let Some(u) = rest.first() {
            let run = if u.is_partial() {
                rest.iter()
                    .take_while(|p| p.is_partial() && p.entity() == u.entity())
                    .count()
            } else {
                1
            };
            let (these, after) = rest.split_at(run);
            match u {
                Update::Added(user) => write_user(&mut w, user),
                Update::Deleted { entity } => {
                    w.empty("user", &[("entity", entity), ("state", "deleted")]);
                }
                _ => write_partial_user(&mut w, u.entity(), these),
            }
            rest = after;
        }
        w.end("users");
        w.end("conference-info");
        w.finish()
    }

    /// The document that says the room is gone (§4.6: `state="deleted"`
    /// on `<conference-info>`; the subscriber ends its subscription).
    pub fn deleted(&self, version: u32) -> String {
        let mut w = Writer::new();
        let version = version.to_string();
        w.empty(
            "conference-info",
            &[
                ("xmlns", NAMESPACE),
                ("entity", &self.entity),
                ("state", "deleted"),
                ("version", &version),
            ],
        );
        w.finish()
    }
}

fn write_user(w: &mut Writer, u: &User) {
    let mut attrs = vec![("entity", u.entity.as_str()), ("state", "full")];
    if let Some(n) = &u.nickname {
        attrs.push(("xcon:nickname", n.as_str()));
    }
    w.start("user", &attrs);
    if let Some(t) = &u.display_text {
        w.text("display-text", t);
    }
    for e in &u.endpoints {
        write_endpoint(w, e);
    }
    w.end("user");
}

/// One `<user state="partial">` with the parts that changed: the
/// nickname (the last one given) and display text first, then the
/// endpoints (§5.6: `display-text` comes before `endpoint`).
fn write_partial_user(w: &mut Writer, entity: &str, parts: &[Update]) {
    let nick = parts.iter().rev().find_map(|p| match p {
        Update::Nickname {
            nickname,
            display_text,
            ..
        } => Some((nickname.as_deref().unwrap_or(""), display_text)),
        _ => None,
    });
    let mut attrs = vec![("entity", entity), ("state", "partial")];
    if let Some((n, _)) = nick {
        attrs.push(("xcon:nickname", n));
    }
    w.start("user", &attrs);
    if let Some((_, text)) = nick {
        w.text("display-text", text);
    }
    for p in parts {
        match p {
            Update::EndpointAdded { endpoint, .. } => write_endpoint(w, endpoint),
            Update::EndpointDeleted { endpoint, .. } => {
                w.empty("endpoint", &[("entity", endpoint), ("state", "deleted")]);
            }
            _ => {}
        }
    }
    w.end("user");
}

/// §5.7: connected, with one `message` medium (§5.8; its `id` is unique
/// within the endpoint, RFC 4575 §5.8).
fn write_endpoint(w: &mut Writer, e: &Endpoint) {
    w.start("endpoint", &[("entity", &e.entity), ("state", "full")]);
    if let Some(t) = &e.display_text {
        w.text("display-text", t);
    }
    w.text("status", "connected");
    w.start("media", &[("id", "1")]);
    w.text("type", "message");
    w.text("status", "sendrecv");
    w.end("media");
    w.end("endpoint");
}

#[cfg(test)]
mod tests;
