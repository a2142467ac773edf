//! Several changes of the roster in one partial document: what a focus
//! that spaces its notifications (RFC 4575 §3.9: not more than one every
//! five seconds per subscriber) sends for the changes it held meanwhile.
//!
//! A partial document is applied with the procedure of RFC 4575 §4.6: a
//! `<user>` with `state="full"` replaces what the subscriber knew of that
//! user, `state="deleted"` removes it, `state="partial"` changes the parts
//! it lists. A user's key is its `entity` (§4.5), which is unique among
//! the users of one document, so every user comes out once, in the state
//! it is in after the last of its changes:
//!
//! * a user who came is written whole, with the nickname and endpoints
//!   that changed after it came;
//! * a user who left is deleted, whatever changed before; one that came
//!   and left while the changes were held is left out (the subscriber
//!   never knew it);
//! * a user who left and came back is written whole;
//! * otherwise the user is partial: its latest nickname, and the latest
//!   change of each endpoint.

use std::collections::HashMap;

use super::{Endpoint, Update, User};

/// What one user's changes come to.
#[derive(Debug)]
enum Held {
    /// Written whole (`state="full"`).
    Full(User),
    /// Gone (`state="deleted"`).
    Deleted,
    /// Came and went: nothing to say.
    Nothing,
    /// Parts changed: at most one nickname, one change per endpoint.
    Partial(Vec<Update>),
}

/// One user's changes so far.
#[derive(Debug)]
struct Entry {
    held: Held,
    /// Whether the subscriber knew the user before the first change: a
    /// room announces a user as added only when it was not in the room.
    known: bool,
}

impl Update {
    /// The entity of the user it is about.
    pub fn entity(&self) -> &str {
        match self {
            Update::Added(u) => &u.entity,
            Update::Deleted { entity } | Update::Nickname { entity, .. } => entity,
            Update::EndpointAdded { user, .. } | Update::EndpointDeleted { user, .. } => user,
        }
    }

    /// Whether it is written `state="partial"`: it changes a part of a
    /// user the subscriber knows.
    pub(super) fn is_partial(&self) -> bool {
        matches!(
            self,
            Update::Nickname { .. } | Update::EndpointAdded { .. } | Update::EndpointDeleted { .. }
        )
    }

    /// Whether `later` says again what `self` said (the same part of the
    /// same user), so that only `later` stays.
    fn replaced_by(&self, later: &Update) -> bool {
        let endpoint = |u: &Update| match u {
            Update::EndpointAdded { endpoint, .. } => Some(endpoint.entity.clone()),
            Update::EndpointDeleted { endpoint, .. } => Some(endpoint.clone()),
            _ => None,
        };
        match (self, later) {
            (Update::Nickname { .. }, Update::Nickname { .. }) => true,
            _ => endpoint(self).is_some() && endpoint(self) == endpoint(later),
        }
    }
}

/// One user's state after `next`.
fn fold(held: Held, known: bool, next: &Update) -> Held {
    match (held, next) {
        // §4.6 step 1: a full user replaces whatever came before.
        (_, Update::Added(user)) => Held::Full(user.clone()),
        // §4.6 step 2; a user the subscriber never saw needs no deleting.
        (_, Update::Deleted { .. }) if known => Held::Deleted,
        (_, Update::Deleted { .. }) => Held::Nothing,
        (
            Held::Full(mut user),
            Update::Nickname {
                nickname,
                display_text,
                ..
            },
        ) => {
            user.nickname.clone_from(nickname);
            user.display_text = Some(display_text.clone());
            Held::Full(user)
        }
        (Held::Full(mut user), Update::EndpointAdded { endpoint, .. }) => {
            user.endpoints.retain(|e| e.entity != endpoint.entity);
            user.endpoints.push(endpoint.clone());
            Held::Full(user)
        }
        (Held::Full(mut user), Update::EndpointDeleted { endpoint, .. }) => {
            user.endpoints.retain(|e: &Endpoint| &e.entity != endpoint);
            Held::Full(user)
        }
        (Held::Partial(mut parts), next) => {
            parts.retain(|p| !p.replaced_by(next));
            parts.push(next.clone());
            Held::Partial(parts)
        }
        // A change to a user that is gone: a room makes none; there is
        // nothing to apply it to.
        (gone @ (Held::Deleted | Held::Nothing), _) => gone,
    }
}

/// The changes `updates`, in the order they happened, as the updates of
/// one partial document ([`super::Conference::partial`]): each user once,
/// in the state its last change left it in (see the [module
/// docs](self)), in the order the users first changed. Empty when the
/// changes undo each other (a user came and went).
///
/// ```
/// use cpimgate_model::address::Address;
/// use cpimgate_msrp::conference::{Conference, Update, User, coalesce};
///
/// let bob: Address = "sip:bob@example.com".parse().unwrap();
/// let came = Update::Added(User::member(&bob, None, false, Vec::new()));
/// let renamed = |n: &str| Update::Nickname {
///     entity: bob.to_string(),
///     nickname: Some(n.to_owned()),
///     display_text: n.to_owned(),
/// };
/// // Bob came and was renamed twice while the changes were held: he is
/// // written whole, under his last nickname.
/// let held = coalesce(&[came, renamed("B"), renamed("Bob")]);
/// let doc = Conference::new(&"sip:chatroom22@chat.example.com".parse().unwrap())
///     .partial(&held, 2);
/// assert_eq!(doc.matches("<user ").count(), 1);
/// assert!(doc.contains(r#"<user entity="sip:bob@example.com" state="full" xcon:nickname="Bob">"#));
/// ```
pub fn coalesce<'a>(updates: impl IntoIterator<Item = &'a Update>) -> Vec<Update> {
    let mut order: Vec<(&'a str, Entry)> = Vec::new();
    let mut index: HashMap<&'a str, usize> = HashMap::new();
    for u in updates {
        let entity = u.entity();
        let i = *index.entry(entity).or_insert_with(|| {
            order.push((
                entity,
                Entry {
                    held: Held::Partial(Vec::new()),
                    known: !matches!(u, Update::Added(_)),
                },
            ));
            order.len() - 1
        });
        if let Some((_, e)) = order.get_mut(i) {
            let held = std::mem::replace(&mut e.held, Held::Nothing);
            e.held = fold(held, e.known, u);
        }
    }
    let mut out = Vec::with_capacity(order.len());
    for (entity, e) in order {
        match e.held {
            Held::Full(user) => out.push(Update::Added(user)),
            Held::Deleted => out.push(Update::Deleted {
                entity: entity.to_owned(),
            }),
            Held::Nothing => {}
            Held::Partial(parts) => out.extend(parts),
        }
    }
    out
}
