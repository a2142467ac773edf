//! Reading conference-info documents (RFC 4575 §4, §5) as a subscriber:
//! the NOTIFY bodies of a room elsewhere that the gateway joined.
//!
//! Only what a chat room's roster needs is read: the document's entity,
//! state and version (§4.4, §5.2) and each `<user>` with its entity,
//! state, `<display-text>` and the `xcon:nickname` of RFC 7701 §9.6.
//! Everything else (endpoints, media, conference description) is
//! skipped. [`Roster`] applies the documents in order with the
//! procedure of §4.6 and says who came, went or took another nickname.
//!
//! The parser is minidom's (rxml): no DTD, no entity expansion beyond
//! XML's five, so a document cannot make it fetch or grow anything.
//! Comments, which rxml does not take, are cut before parsing (the RFCs'
//! own examples carry them).

use std::collections::BTreeMap;

use minidom::Element;

use super::{NAMESPACE, XCON_NAMESPACE};

/// The most users one document may list; more is refused (a roster is
/// kept per room, and a focus that sends a million users is broken or
/// hostile).
pub const MAX_USERS: usize = 10_000;

/// The largest document read, in octets.
pub const MAX_DOCUMENT: usize = 1024 * 1024;

/// Why a document cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// Happens when the body is not well-formed XML (or is a kind of
    /// XML refused here, with a DTD), or larger than [`MAX_DOCUMENT`].
    #[error("not a readable XML document: {0}")]
    Xml(String),
    /// Happens when the root is not `<conference-info>` in the namespace
    /// of RFC 4575 §4.2.
    #[error("the root is not conference-info of {NAMESPACE}")]
    NotConferenceInfo,
    /// Happens when a required attribute is missing or wrong (`entity` of
    /// the root or of a user, §5.1, §5.6).
    #[error("{0}")]
    Invalid(String),
    /// Happens when a document lists more than [`MAX_USERS`] users.
    #[error("more than {MAX_USERS} users")]
    TooManyUsers,
}

/// The `state` attribute (RFC 4575 §4.4): full, partial or deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// The element is whole; it replaces what was known.
    Full,
    /// Only the changes.
    Partial,
    /// The element is gone.
    Deleted,
}

impl State {
    fn read(e: &Element) -> Result<State, ReadError> {
        // §5.1: `full` is the default.
        match e.attr("state").map(str::trim) {
            None | Some("full") => Ok(State::Full),
            Some("partial") => Ok(State::Partial),
            Some("deleted") => Ok(State::Deleted),
            Some(other) => Err(ReadError::Invalid(format!(
                "{}: state {other:?} is not full, partial or deleted",
                e.name()
            ))),
        }
    }
}

/// One `<user>` of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadUser {
    /// Its URI (§5.6).
    pub entity: String,
    /// How the element applies.
    pub state: State,
    /// `<display-text>` (§5.6.1), when given.
    pub display_text: Option<String>,
    /// `xcon:nickname` (RFC 7701 §9.6), when given; empty when given up.
    pub nickname: Option<String>,
}

/// A document, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The conference URI (§5.1).
    pub entity: String,
    /// Full, partial, or deleted (the conference is gone).
    pub state: State,
    /// The version (§4.5), when given.
    pub version: Option<u32>,
    /// The users, in document order.
    pub users: Vec<ReadUser>,
}

/// Cuts XML comments out (`<!-- ... -->`); an unclosed one cuts to the
/// end. A `<!--` inside an attribute value cannot happen (`<` is not
/// allowed there), inside a CDATA section it would be cut wrongly, which
/// no conference document has a reason to carry.
fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("<!--") {
        out.push_str(&rest[..i]);
        match rest[i + 4..].find("-->") {
            Some(end) => rest = &rest[i + 4 + end + 3..],
            None => return out,
        }
    }
    out.push_str(rest);
    out
}

/// Reads a conference-info document.
///
/// ```
/// use cpimgate_msrp::conference::read::{read, State};
/// let doc = read(br#"<conference-info xmlns="urn:ietf:params:xml:ns:conference-info"
///   xmlns:xcon="urn:ietf:params:xml:ns:xcon-conference-info"
///   entity="sip:chatroom22@chat.example.com" state="partial" version="2">
///   <users state="partial"><user entity="sip:bob@example.com" state="deleted"/></users>
/// </conference-info>"#).unwrap();
/// assert_eq!(doc.state, State::Partial);
/// assert_eq!(doc.users[0].state, State::Deleted);
/// ```
pub fn read(body: &[u8]) -> Result<Document, ReadError> {
    if body.len() > MAX_DOCUMENT {
        return Err(ReadError::Xml(format!("{} octets", body.len())));
    }
    let text = std::str::from_utf8(body).map_err(|e| ReadError::Xml(e.to_string()))?;
    let text = strip_comments(text);
    let root: Element = text
        .trim()
        .parse()
        .map_err(|e: minidom::Error| ReadError::Xml(e.to_string()))?;
    if !root.is("conference-info", NAMESPACE) {
        return Err(ReadError::NotConferenceInfo);
    }
    let entity = root
        .attr("entity")
        .ok_or_else(|| ReadError::Invalid("conference-info has no entity".into()))?
        .to_owned();
    let state = State::read(&root)?;
    let version = root.attr("version").and_then(|v| v.trim().parse().ok());
    let mut users = Vec::new();
    for list in root.children().filter(|c| c.is("users", NAMESPACE)) {
        for u in list.children().filter(|c| c.is("user", NAMESPACE)) {
            if users.len() == MAX_USERS {
                return Err(ReadError::TooManyUsers);
            }
            let Some(entity) = u.attr("entity") else {
                return Err(ReadError::Invalid("a user has no entity".into()));
            };
            users.push(ReadUser {
                entity: entity.trim().to_owned(),
                state: State::read(u)?,
                display_text: u.get_child("display-text", NAMESPACE).map(Element::text),
                nickname: u.attr_ns(XCON_NAMESPACE, "nickname").map(str::to_owned),
            });
        }
    }
    Ok(Document {
        entity,
        state,
        version,
        users,
    })
}

/// A member as a subscriber knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    /// Its nickname (RFC 7701 §7.4), if it has one.
    pub nickname: Option<String>,
    /// Its display text, if any.
    pub display_text: Option<String>,
}

impl Known {
    /// The name to show: the nickname, else the display text.
    pub fn name(&self) -> Option<&str> {
        self.nickname
            .as_deref()
            .filter(|n| !n.is_empty())
            .or(self.display_text.as_deref().filter(|d| !d.is_empty()))
    }
}

/// A change of the roster a document made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A user came.
    Joined {
        /// Its entity.
        entity: String,
        /// What is known of it.
        known: Known,
    },
    /// A user left.
    Left {
        /// Its entity.
        entity: String,
        /// What was known of it.
        known: Known,
    },
    /// A user's name changed (its nickname, or its display text when it
    /// has no nickname).
    Renamed {
        /// Its entity.
        entity: String,
        /// Before.
        old: Known,
        /// Now.
        new: Known,
    },
}

/// A subscriber's view of a room's users, fed with documents in order
/// (RFC 4575 §4.6); see the [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct Roster {
    users: BTreeMap<String, Known>,
    version: Option<u32>,
}

impl Roster {
    /// An empty view.
    pub fn new() -> Roster {
        Roster::default()
    }

    /// The users known, by entity.
    pub fn users(&self) -> &BTreeMap<String, Known> {
        &self.users
    }

    /// What is known of `entity`.
    pub fn get(&self, entity: &str) -> Option<&Known> {
        self.users.get(entity)
    }

    /// A new subscription starts: its versions start again (§4.5 counts
    /// per subscription), the users stay until its full document.
    pub fn new_subscription(&mut self) {
        self.version = None;
    }

    /// Everyone leaves (the conference is gone, or the view is dropped).
    pub fn clear(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.users)
            .into_iter()
            .map(|(entity, known)| Change::Left { entity, known })
            .collect()
    }

    /// Applies a document and says what changed. §4.6: a partial document
    /// whose version is not one above the last is out of order (a NOTIFY
    /// lost or reordered): it is applied anyway, which is the best a
    /// subscriber can do until the next full document; a version not
    /// above the last is old and ignored.
    pub fn apply(&mut self, doc: &Document) -> Vec<Change> {
        if let (Some(last), Some(v)) = (self.version, doc.version) {
            if v <= last && doc.state != State::Full {
                return Vec::new();
            }
        }
        if doc.version.is_some() {
            self.version = doc.version;
        }
        match doc.state {
            State::Deleted => self.clear(),
            State::Full => {
                let mut next = BTreeMap::new();
                for u in &doc.users {
                    if u.state != State::Deleted {
                        next.insert(u.entity.clone(), known_of(u, None));
                    }
                }
                let mut changes = Vec::new();
                for (entity, known) in &self.users {
                    if !next.contains_key(entity) {
                        changes.push(Change::Left {
                            entity: entity.clone(),
                            known: known.clone(),
                        });
                    }
                }
                for (entity, known) in &next {
                    match self.users.get(entity) {
                        None => changes.push(Change::Joined {
                            entity: entity.clone(),
                            known: known.clone(),
                        }),
                        Some(old) if old.name() != known.name() => changes.push(Change::Renamed {
                            entity: entity.clone(),
                            old: old.clone(),
                            new: known.clone(),
                        }),
                        Some(_) => {}
                    }
                }
                self.users = next;
                changes
            }
            State::Partial => {
                let mut changes = Vec::new();
                for u in &doc.users {
                    match (u.state, self.users.get(&u.entity).cloned()) {
                        (State::Deleted, Some(known)) => {
                            self.users.remove(&u.entity);
                            changes.push(Change::Left {
                                entity: u.entity.clone(),
                                known,
                            });
                        }
                        (State::Deleted, None) => {}
                        (_, None) => {
                            let known = known_of(u, None);
                            self.users.insert(u.entity.clone(), known.clone());
                            changes.push(Change::Joined {
                                entity: u.entity.clone(),
                                known,
                            });
                        }
                        (state, Some(old)) => {
                            // A partial user keeps what it does not say; a
                            // full one is replaced (§4.4).
                            let base = (state == State::Partial).then_some(&old);
                            let new = known_of(u, base);
                            if old.name() != new.name() {
                                changes.push(Change::Renamed {
                                    entity: u.entity.clone(),
                                    old,
                                    new: new.clone(),
                                });
                            }
                            self.users.insert(u.entity.clone(), new);
                        }
                    }
                }
                changes
            }
        }
    }
}

fn known_of(u: &ReadUser, base: Option<&Known>) -> Known {
    // An empty nickname is one given up (the convention of this crate's
    // writer, and of Use-Nickname).
    let nickname = match &u.nickname {
        Some(n) if n.is_empty() => None,
        Some(n) => Some(n.clone()),
        None => base.and_then(|b| b.nickname.clone()),
    };
    Known {
        nickname,
        display_text: u
            .display_text
            .clone()
            .or_else(|| base.and_then(|b| b.display_text.clone())),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::conference::{Conference, Endpoint, Update, User};
    use cpimgate_model::address::Address;
    use proptest::prelude::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/conference/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    /// RFC 7701 §9.6 Figure 7 (comments and all): two users with their
    /// nicknames.
    #[test]
    fn the_nickname_document_of_rfc7701_9_6_reads() {
        let doc = read(&fixture("rfc7701-9.6-nickname.xml")).unwrap();
        assert_eq!(doc.entity, "sip:chatroom22@chat.example.com");
        assert_eq!((doc.state, doc.version), (State::Full, Some(1)));
        let users: Vec<(&str, Option<&str>, Option<&str>)> = doc
            .users
            .iter()
            .map(|u| {
                (
                    u.entity.as_str(),
                    u.nickname.as_deref(),
                    u.display_text.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            users,
            [
                (
                    "sip:bob@example.com",
                    Some("Dopey Donkey"),
                    Some("Bob Hoskins")
                ),
                (
                    "sip:alice@atlanta.example.com",
                    Some("Alice the great"),
                    Some("Alice Kay")
                ),
            ]
        );
        let mut roster = Roster::new();
        let changes = roster.apply(&doc);
        assert_eq!(changes.len(), 2);
        assert!(matches!(&changes[0], Change::Joined { entity, known }
            if entity == "sip:alice@atlanta.example.com" && known.name() == Some("Alice the great")));
    }

    /// RFC 4575 §7.1 and §7.2: the users of both examples read (the rich
    /// one has users without nicknames, with endpoints and media).
    #[test]
    fn the_rfc4575_examples_read() {
        let basic = read(&fixture("rfc4575-7.1-basic.xml")).unwrap();
        assert_eq!(basic.entity, "sips:conf233@example.com");
        assert!(basic.users.iter().all(|u| u.nickname.is_none()));
        assert!(!basic.users.is_empty());
        let rich = read(&fixture("rfc4575-7.2-rich.xml")).unwrap();
        assert!(!rich.users.is_empty());
    }

    fn a(s: &str) -> Address {
        s.parse().unwrap()
    }

    /// What this crate's focus writes reads back: full, then partial
    /// documents (join, nickname, leave), then the room deleted.
    #[test]
    fn full_then_partial_documents_give_joins_renames_and_leaves() {
        let conf = Conference::new(&a("sip:room22@chat.example.com"));
        let bob = User::member(&a("sip:bob@example.com"), Some("Bob"), false, Vec::new());
        let zoe = User::member(&a("xmpp:zoe@example.org"), Some("zoe"), true, Vec::new());
        let mut roster = Roster::new();
        let c = roster.apply(&read(conf.full(std::slice::from_ref(&bob), 1).as_bytes()).unwrap());
        assert_eq!(
            c,
            [Change::Joined {
                entity: "sip:bob@example.com".into(),
                known: Known {
                    nickname: Some("Bob".into()),
                    display_text: Some("Bob".into())
                }
            }]
        );
        let c = roster.apply(&read(conf.partial(&[Update::Added(zoe)], 2).as_bytes()).unwrap());
        assert!(
            matches!(&c[..], [Change::Joined { entity, .. }] if entity == "xmpp:zoe@example.org")
        );
        let rename = Update::Nickname {
            entity: "sip:bob@example.com".into(),
            nickname: Some("Bobby".into()),
            display_text: "Bobby".into(),
        };
        let c = roster.apply(&read(conf.partial(&[rename], 3).as_bytes()).unwrap());
        assert!(matches!(&c[..], [Change::Renamed { old, new, .. }]
            if old.name() == Some("Bob") && new.name() == Some("Bobby")));
        // An old version is ignored.
        let stale = Update::Deleted {
            entity: "sip:bob@example.com".into(),
        };
        assert!(
            roster
                .apply(&read(conf.partial(std::slice::from_ref(&stale), 3).as_bytes()).unwrap())
                .is_empty()
        );
        let c = roster.apply(&read(conf.partial(&[stale], 4).as_bytes()).unwrap());
        assert!(matches!(&c[..], [Change::Left { entity, .. }] if entity == "sip:bob@example.com"));
        // An endpoint change is no roster change.
        let ep = Update::EndpointAdded {
            user: "xmpp:zoe@example.org".into(),
            endpoint: Endpoint::new("x"),
        };
        assert!(
            roster
                .apply(&read(conf.partial(&[ep], 5).as_bytes()).unwrap())
                .is_empty()
        );
        let c = roster.apply(&read(conf.deleted(6).as_bytes()).unwrap());
        assert!(
            matches!(&c[..], [Change::Left { entity, .. }] if entity == "xmpp:zoe@example.org")
        );
        assert!(roster.users().is_empty());
    }

    /// A new full document after a resubscription leaves out who left in
    /// between and keeps who stayed.
    #[test]
    fn a_full_document_is_compared_with_the_view() {
        let conf = Conference::new(&a("sip:room22@chat.example.com"));
        let u = |s: &str| User::member(&a(s), None, false, Vec::new());
        let mut roster = Roster::new();
        roster.apply(&read(conf.full(&[u("sip:a@x"), u("sip:b@x")], 7).as_bytes()).unwrap());
        roster.new_subscription();
        let c =
            roster.apply(&read(conf.full(&[u("sip:b@x"), u("sip:c@x")], 1).as_bytes()).unwrap());
        assert_eq!(c.len(), 2);
        assert!(matches!(&c[0], Change::Left { entity, .. } if entity == "sip:a@x"));
        assert!(matches!(&c[1], Change::Joined { entity, .. } if entity == "sip:c@x"));
    }

    #[test]
    fn bad_documents_are_errors() {
        assert!(matches!(read(b"not xml"), Err(ReadError::Xml(_))));
        assert_eq!(
            read(b"<a xmlns='urn:x'/>"),
            Err(ReadError::NotConferenceInfo)
        );
        let no_entity = br#"<conference-info xmlns="urn:ietf:params:xml:ns:conference-info"/>"#;
        assert!(matches!(read(no_entity), Err(ReadError::Invalid(_))));
        let dtd = br#"<!DOCTYPE x [<!ENTITY a "aaaa">]><conference-info xmlns="urn:ietf:params:xml:ns:conference-info" entity="&a;"/>"#;
        assert!(read(dtd).is_err());
        assert!(read(b"<!-- never closed").is_err());
    }

    proptest! {
        /// No input makes the reader or the roster panic.
        #[test]
        fn any_bytes_read_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(doc) = read(&bytes) {
                Roster::new().apply(&doc);
            }
        }

        /// Documents near the real ones, with odd states, names and
        /// versions, do not panic either.
        #[test]
        fn near_documents_read_without_panic(
            state in "(full|partial|deleted|x)?",
            users in proptest::collection::vec(("[a-z@:<&]{0,6}", "(full|partial|deleted|)", "[a-z &<]{0,5}"), 0..6),
            version in "[0-9-]{0,11}",
        ) {
            let mut doc = format!(
                "<conference-info xmlns=\"{NAMESPACE}\" xmlns:xcon=\"{XCON_NAMESPACE}\" entity=\"sip:r@x\" state=\"{state}\" version=\"{version}\"><users>"
            );
            for (e, s, n) in &users {
                doc.push_str(&format!("<user entity=\"{e}\" state=\"{s}\" xcon:nickname=\"{n}\"/>"));
            }
            doc.push_str("</users></conference-info>");
            let mut roster = Roster::new();
            if let Ok(d) = read(doc.as_bytes()) {
                roster.apply(&d);
                roster.apply(&d);
            }
        }
    }
}
