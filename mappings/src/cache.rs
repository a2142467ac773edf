//! The in-memory copy of the table that every lookup reads. It is built from
//! a [`Snapshot`] at open and updated by the store after each successful
//! write, under the store's write lock, so it never runs ahead of the
//! database.

use std::collections::{BTreeMap, HashMap};

use crate::db::{StoredIrcNick, StoredReservation};
use crate::{Alias, Identity, IdentityId, NickScope, RoomAlias};

#[derive(Debug, Default)]
pub(crate) struct Cache {
    pub identities: BTreeMap<i64, IdentityEntry>,
    /// alias lookup key -> identity id
    pub alias_owner: HashMap<String, i64>,
    /// room lookup key -> (room, bridge)
    pub rooms: HashMap<String, (RoomAlias, String)>,
    /// bridge -> room lookup key -> room
    pub bridges: BTreeMap<String, BTreeMap<String, RoomAlias>>,
    /// nick key -> reservations of that nick, in any scope
    pub reservations: HashMap<String, Vec<StoredReservation>>,
    /// (network, who) -> (nick, folded nick)
    pub irc_by_who: HashMap<(String, String), (String, String)>,
    /// (network, folded nick) -> who
    pub irc_by_nick: HashMap<(String, String), String>,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct IdentityEntry {
    pub display_name: Option<String>,
    /// alias lookup key -> alias
    pub aliases: BTreeMap<String, Alias>,
}

impl Cache {
    pub fn identity(&self, id: i64) -> Option<Identity> {
        let entry = self.identities.get(&id)?;
        let mut aliases: Vec<Alias> = entry.aliases.values().cloned().collect();
        aliases.sort();
        Some(Identity {
            id: IdentityId(id),
            display_name: entry.display_name.clone(),
            aliases,
        })
    }

    pub fn put_identity(&mut self, id: i64, display_name: Option<String>) {
        self.identities.entry(id).or_default().display_name = display_name;
    }

    pub fn put_alias(&mut self, id: i64, key: String, alias: Alias) {
        self.identities
            .entry(id)
            .or_default()
            .aliases
            .insert(key.clone(), alias);
        self.alias_owner.insert(key, id);
    }

    pub fn remove_alias(&mut self, key: &str) {
        if let Some(id) = self.alias_owner.remove(key)
            && let Some(entry) = self.identities.get_mut(&id)
        {
            entry.aliases.remove(key);
        }
    }

    pub fn remove_identity(&mut self, id: i64) {
        if let Some(entry) = self.identities.remove(&id) {
            for key in entry.aliases.keys() {
                self.alias_owner.remove(key);
            }
        }
    }

    pub fn put_room(&mut self, key: String, room: RoomAlias, bridge: String) {
        self.remove_room(&key);
        self.bridges
            .entry(bridge.clone())
            .or_default()
            .insert(key.clone(), room.clone());
        self.rooms.insert(key, (room, bridge));
    }

    pub fn remove_room(&mut self, key: &str) {
        if let Some((_, bridge)) = self.rooms.remove(key)
            && let Some(rooms) = self.bridges.get_mut(&bridge)
        {
            rooms.remove(key);
            if rooms.is_empty() {
                self.bridges.remove(&bridge);
            }
        }
    }

    /// The scope keys a reservation in `scope` (whose own key is
    /// `scope_key`) competes with: the scope itself and, when it is a bridge
    /// or a bridged room, the bridge and every room of the bridge.
    pub fn related_scope_keys(&self, scope: &NickScope, scope_key: &str) -> Vec<String> {
        let mut keys = vec![scope_key.to_owned()];
        let bridge = match scope {
            NickScope::Bridge(b) => Some(b.as_str()),
            NickScope::Room(_) => self.rooms.get(scope_key).map(|(_, b)| b.as_str()),
        };
        if let Some(bridge) = bridge {
            keys.push(bridge_scope_key(bridge));
            if let Some(rooms) = self.bridges.get(bridge) {
                keys.extend(rooms.keys().cloned());
            }
        }
        keys.sort();
        keys.dedup();
        keys
    }

    /// The reservations of `nick_key` in any of `scope_keys`.
    pub fn reservations_in<'a>(
        &'a self,
        nick_key: &str,
        scope_keys: &'a [String],
    ) -> impl Iterator<Item = &'a StoredReservation> + 'a {
        self.reservations
            .get(nick_key)
            .into_iter()
            .flatten()
            .filter(move |r| scope_keys.contains(&r.scope_key))
    }

    pub fn put_reservation(&mut self, r: StoredReservation) {
        let list = self.reservations.entry(r.nick_key.clone()).or_default();
        list.retain(|x| x.scope_key != r.scope_key);
        list.push(r);
    }

    pub fn remove_reservation(&mut self, scope_key: &str, nick_key: &str) {
        if let Some(list) = self.reservations.get_mut(nick_key) {
            list.retain(|x| x.scope_key != scope_key);
            if list.is_empty() {
                self.reservations.remove(nick_key);
            }
        }
    }

    pub fn put_irc_nick(&mut self, n: StoredIrcNick) {
        self.remove_irc_nick(&n.network, &n.who);
        self.irc_by_nick
            .insert((n.network.clone(), n.nick_key.clone()), n.who.clone());
        self.irc_by_who
            .insert((n.network, n.who), (n.nick, n.nick_key));
    }

    pub fn remove_irc_nick(&mut self, network: &str, who: &str) {
        if let Some((_, nick_key)) = self
            .irc_by_who
            .remove(&(network.to_owned(), who.to_owned()))
        {
            self.irc_by_nick.remove(&(network.to_owned(), nick_key));
        }
    }
}

/// The scope key of a whole bridge.
pub(crate) fn bridge_scope_key(bridge: &str) -> String {
    format!("bridge:{bridge}")
}
