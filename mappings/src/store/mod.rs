//! [`MappingStore`]: the table, its cache and its write paths (nicknames
//! in [`nicks`]).

mod nicks;

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::alias::{check_bridge, normalize_network};
use crate::cache::{Cache, bridge_scope_key};
use crate::db::{Db, is_unique_violation};
use crate::{
    Alias, CaseMapping, IdentityId, MappingError, NickScope, RoomAlias, casefold, nick_key,
};

/// One person and every address they have in the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The table's number for the person.
    pub id: IdentityId,
    /// The name to show, if one is known.
    pub display_name: Option<String>,
    /// Every alias, sorted (`im:` first, then SIP, JID, IRC, MSRP).
    pub aliases: Vec<Alias>,
}

/// A nickname held by an owner in a scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// Where it was reserved.
    pub scope: NickScope,
    /// The nickname as first reserved (a same-owner request with another
    /// spelling keeps this one).
    pub nick: String,
    /// Who holds it (a canonical address string).
    pub owner: String,
}

/// An IRC nick learned for a remote user on a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IrcNick {
    /// The network's config name.
    pub network: String,
    /// The remote user's canonical address string.
    pub who: String,
    /// The nick chosen for them there.
    pub nick: String,
}

/// How to compare names on each IRC network.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// Network config name -> its CASEMAPPING. Networks not listed use
    /// `rfc1459`. Every gateway instance sharing a database must use the same
    /// values: lookup keys are stored folded, and re-folded at open if this
    /// changes.
    pub casemappings: HashMap<String, CaseMapping>,
}

/// The identity and room mapping table: a database behind an in-memory
/// cache. Cheap to clone; clones share everything.
#[derive(Debug, Clone)]
pub struct MappingStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Db,
    casemappings: HashMap<String, CaseMapping>,
    cache: RwLock<Cache>,
    /// Held across "check the cache, write the database, update the cache",
    /// so that two writers of this process cannot interleave.
    write: tokio::sync::Mutex<()>,
}

/// How many times a write that lost a race with another gateway instance
/// sharing the database (PostgreSQL) is retried.
const RACE_RETRIES: usize = 3;

impl MappingStore {
    /// Opens (creating it if needed) the SQLite file at `path`, in WAL mode,
    /// applies the migrations and loads the cache.
    pub async fn open(path: &Path) -> Result<Self, MappingError> {
        Self::open_with(path, StoreOptions::default()).await
    }

    /// [`open`](Self::open) with per-network case mappings.
    pub async fn open_with(path: &Path, options: StoreOptions) -> Result<Self, MappingError> {
        let connect = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(connect)
            .await
            .map_err(|source| MappingError::Open {
                path: path.to_owned(),
                source,
            })?;
        Self::open_pool_with(pool, options).await
    }

    /// Uses a pool opened elsewhere (the hub shares one file between the
    /// mapping table and its queue): applies the migrations, loads the cache.
    pub async fn open_pool(pool: SqlitePool) -> Result<Self, MappingError> {
        Self::open_pool_with(pool, StoreOptions::default()).await
    }

    /// [`open_pool`](Self::open_pool) with per-network case mappings.
    pub async fn open_pool_with(
        pool: SqlitePool,
        options: StoreOptions,
    ) -> Result<Self, MappingError> {
        Self::open_db(Db::Sqlite(pool), options).await
    }

    /// A private in-memory database, for tests.
    pub async fn open_in_memory() -> Result<Self, MappingError> {
        // Every connection to `:memory:` is a database of its own: keep
        // exactly one, forever.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(
                SqliteConnectOptions::new()
                    .in_memory(true)
                    .foreign_keys(true),
            )
            .await?;
        Self::open_pool(pool).await
    }

    async fn open_db(db: Db, options: StoreOptions) -> Result<Self, MappingError> {
        db.migrate().await?;
        let casemappings = options
            .casemappings
            .into_iter()
            .map(|(network, mapping)| Ok((normalize_network(&network)?, mapping)))
            .collect::<Result<_, MappingError>>()?;
        let store = MappingStore {
            inner: Arc::new(Inner {
                db,
                casemappings,
                cache: RwLock::new(Cache::default()),
                write: tokio::sync::Mutex::new(()),
            }),
        };
        store.reload().await?;
        Ok(store)
    }

    /// The SQLite pool, to share the file with another component.
    pub fn sqlite_pool(&self) -> Option<&SqlitePool> {
        match &self.inner.db {
            Db::Sqlite(p) => Some(p),
        }
    }

    /// Reads the whole table from the database again (after another
    /// instance or the CLI changed it), and re-folds stored lookup keys
    /// if a network's CASEMAPPING changed.
    pub async fn reload(&self) -> Result<(), MappingError> {
        let _write = self.inner.write.lock().await;
        let snap = self.inner.db.load().await?;
        let mut cache = Cache::default();
        let (mut stale_aliases, mut stale_rooms, mut stale_res, mut stale_irc) =
            (vec![], vec![], vec![], vec![]);
        for (id, display_name) in snap.identities {
            cache.put_identity(id, display_name);
        }
        for (stored_key, text, id) in snap.aliases {
            let Some(alias) = parse_stored::<Alias>("alias", &text) else {
                continue;
            };
            let key = self.alias_key(&alias);
            if cache.alias_owner.contains_key(&key) {
                return Err(refold_collision(&text, &key));
            }
            if key != stored_key {
                stale_aliases.push((stored_key, key.clone()));
            }
            cache.put_alias(id, key, alias);
        }
        for (stored_key, text, bridge) in snap.rooms {
            let Some(room) = parse_stored::<RoomAlias>("room", &text) else {
                continue;
            };
            let key = self.room_key(&room);
            if cache.rooms.contains_key(&key) {
                return Err(refold_collision(&text, &key));
            }
            if key != stored_key {
                stale_rooms.push((stored_key, key.clone()));
            }
            cache.put_room(key, room, bridge);
        }
        for mut r in snap.reservations {
            let Some(scope) = parse_stored::<NickScope>("reservation scope", &r.scope) else {
                continue;
            };
            let key = self.scope_key(&scope);
            if key != r.scope_key {
                stale_res.push((r.scope_key.clone(), key.clone(), r.nick_key.clone()));
                r.scope_key = key;
            }
            cache.put_reservation(r);
        }
        for mut n in snap.irc_nicks {
            let key = casefold(self.casemapping(&n.network), &n.nick);
            if cache
                .irc_by_nick
                .contains_key(&(n.network.clone(), key.clone()))
            {
                return Err(refold_collision(
                    &format!("irc:{}/{}", n.network, n.nick),
                    &key,
                ));
            }
            if key != n.nick_key {
                stale_irc.push((n.network.clone(), n.who.clone(), key.clone()));
                n.nick_key = key;
            }
            cache.put_irc_nick(n);
        }
        if !(stale_aliases.is_empty()
            && stale_rooms.is_empty()
            && stale_res.is_empty()
            && stale_irc.is_empty())
        {
            tracing::info!(
                aliases = stale_aliases.len(),
                rooms = stale_rooms.len(),
                reservations = stale_res.len(),
                irc_nicks = stale_irc.len(),
                "re-folding mapping keys after a CASEMAPPING change"
            );
            self.inner
                .db
                .rekey(&stale_aliases, &stale_rooms, &stale_res, &stale_irc)
                .await?;
        }
        *self.write_cache() = cache;
        Ok(())
    }

    /// The CASEMAPPING used for `network` (`rfc1459` unless configured).
    pub fn casemapping(&self, network: &str) -> CaseMapping {
        self.inner
            .casemappings
            .get(&network.to_lowercase())
            .copied()
            .unwrap_or_default()
    }

    // -- identities ---------------------------------------------------------

    /// Makes sure one person has `aliases` (and `display_name`, when given):
    /// the person who already has any of them is completed, or a new one is
    /// created. Aliases already there are kept (this only adds). Fails with
    /// [`MappingError::AliasTaken`] when the aliases belong to two people.
    pub async fn upsert_identity(
        &self,
        display_name: Option<&str>,
        aliases: &[Alias],
    ) -> Result<IdentityId, MappingError> {
        let mut wanted: Vec<(String, Alias)> = Vec::new();
        for alias in aliases {
            let alias = alias.normalized()?;
            let key = self.alias_key(&alias);
            if !wanted.iter().any(|(k, _)| *k == key) {
                wanted.push((key, alias));
            }
        }
        if wanted.is_empty() {
            return Err(MappingError::invalid(
                "identity",
                display_name.unwrap_or_default(),
                "needs at least one alias",
            ));
        }
        let _write = self.inner.write.lock().await;
        for _ in 0..RACE_RETRIES {
            let (target, new, set_display) = {
                let cache = self.read_cache();
                let mut target: Option<i64> = None;
                for (key, alias) in &wanted {
                    if let Some(&owner) = cache.alias_owner.get(key) {
                        match target {
                            Some(t) if t != owner => {
                                return Err(MappingError::AliasTaken {
                                    alias: alias.clone(),
                                    owner: IdentityId(owner),
                                });
                            }
                            _ => target = Some(owner),
                        }
                    }
                }
                let new: Vec<(String, Alias)> = wanted
                    .iter()
                    .filter(|(k, _)| !cache.alias_owner.contains_key(k))
                    .cloned()
                    .collect();
                let set_display = match (target, display_name) {
                    (Some(t), Some(d)) => cache
                        .identities
                        .get(&t)
                        .is_none_or(|e| e.display_name.as_deref() != Some(d)),
                    _ => false,
                };
                (target, new, set_display)
            };
            if let Some(t) = target
                && new.is_empty()
                && !set_display
            {
                return Ok(IdentityId(t));
            }
            let rows: Vec<(String, String)> = new
                .iter()
                .map(|(k, a)| (k.clone(), a.to_string()))
                .collect();
            match self
                .inner
                .db
                .save_identity(target, display_name, set_display, &rows)
                .await
            {
                Ok(id) => {
                    let mut cache = self.write_cache();
                    if target.is_none() || set_display {
                        cache.put_identity(id, display_name.map(str::to_owned));
                    }
                    for (key, alias) in new {
                        cache.put_alias(id, key, alias);
                    }
                    return Ok(IdentityId(id));
                }
                Err(e) if is_unique_violation(&e) => {
                    // Another instance wrote first: learn what it wrote.
                    self.learn_alias_owners(&new).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(MappingError::Store(sqlx::Error::Protocol(
            "identity write kept losing races with another writer".into(),
        )))
    }

    /// Gives `alias` to `person`. Doing it twice is fine; giving it while
    /// someone else has it fails with [`MappingError::AliasTaken`].
    pub async fn add_alias(&self, person: IdentityId, alias: Alias) -> Result<(), MappingError> {
        let alias = alias.normalized()?;
        let key = self.alias_key(&alias);
        let _write = self.inner.write.lock().await;
        {
            let cache = self.read_cache();
            if !cache.identities.contains_key(&person.0) {
                return Err(MappingError::UnknownIdentity(person));
            }
            match cache.alias_owner.get(&key) {
                Some(&owner) if owner == person.0 => return Ok(()),
                Some(&owner) => {
                    return Err(MappingError::AliasTaken {
                        alias,
                        owner: IdentityId(owner),
                    });
                }
                None => {}
            }
        }
        let rows = [(key.clone(), alias.to_string())];
        match self
            .inner
            .db
            .save_identity(Some(person.0), None, false, &rows)
            .await
        {
            Ok(_) => {
                self.write_cache().put_alias(person.0, key, alias);
                Ok(())
            }
            Err(e) if is_unique_violation(&e) => match self.inner.db.alias_owner(&key).await? {
                Some(owner) if owner == person.0 => {
                    self.write_cache().put_alias(person.0, key, alias);
                    Ok(())
                }
                Some(owner) => Err(MappingError::AliasTaken {
                    alias,
                    owner: IdentityId(owner),
                }),
                None => Err(e.into()),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Takes `alias` away from whoever has it; `false` if nobody had it.
    /// The person stays (see [`remove_identity`](Self::remove_identity)).
    pub async fn remove_alias(&self, alias: &Alias) -> Result<bool, MappingError> {
        let key = self.alias_key(&alias.normalized()?);
        let _write = self.inner.write.lock().await;
        let removed = self.inner.db.delete_alias(&key).await?;
        self.write_cache().remove_alias(&key);
        Ok(removed)
    }

    /// Sets or clears a person's display name.
    pub async fn set_display_name(
        &self,
        person: IdentityId,
        display_name: Option<&str>,
    ) -> Result<(), MappingError> {
        let _write = self.inner.write.lock().await;
        if !self.read_cache().identities.contains_key(&person.0) {
            return Err(MappingError::UnknownIdentity(person));
        }
        self.inner
            .db
            .save_identity(Some(person.0), display_name, true, &[])
            .await?;
        self.write_cache()
            .put_identity(person.0, display_name.map(str::to_owned));
        Ok(())
    }

    /// Removes a person and all their aliases; `false` if there was none.
    pub async fn remove_identity(&self, person: IdentityId) -> Result<bool, MappingError> {
        let _write = self.inner.write.lock().await;
        let removed = self.inner.db.delete_identity(person.0).await?;
        self.write_cache().remove_identity(person.0);
        Ok(removed)
    }

    /// The person who has `alias`, with all their aliases: from any world's
    /// address to every other. `None` if nobody has it or it is malformed.
    pub fn find(&self, alias: &Alias) -> Option<Identity> {
        let key = self.alias_key(&alias.normalized().ok()?);
        let cache = self.read_cache();
        let id = *cache.alias_owner.get(&key)?;
        cache.identity(id)
    }

    /// One person by number.
    pub fn identity(&self, person: IdentityId) -> Option<Identity> {
        self.read_cache().identity(person.0)
    }

    /// Everyone, by number.
    pub fn identities(&self) -> Vec<Identity> {
        let cache = self.read_cache();
        cache
            .identities
            .keys()
            .filter_map(|&id| cache.identity(id))
            .collect()
    }

    // -- rooms and bridges ---------------------------------------------------

    /// Puts `room` into `bridge` (created by its first room). Doing it twice
    /// is fine; a room already in another bridge fails with
    /// [`MappingError::RoomBridged`]: remove it first.
    pub async fn add_room(&self, bridge: &str, room: RoomAlias) -> Result<(), MappingError> {
        let bridge = check_bridge(bridge)?;
        let room = room.normalized()?;
        let key = self.room_key(&room);
        let _write = self.inner.write.lock().await;
        if let Some((_, current)) = self.read_cache().rooms.get(&key) {
            return if current == bridge {
                Ok(())
            } else {
                Err(MappingError::RoomBridged {
                    room,
                    bridge: current.clone(),
                })
            };
        }
        let holder = self
            .inner
            .db
            .insert_room(&key, &room.to_string(), bridge)
            .await?;
        self.write_cache()
            .put_room(key, room.clone(), holder.clone());
        if holder != bridge {
            return Err(MappingError::RoomBridged {
                room,
                bridge: holder,
            });
        }
        Ok(())
    }

    /// Takes `room` out of its bridge; `false` if it was in none.
    pub async fn remove_room(&self, room: &RoomAlias) -> Result<bool, MappingError> {
        let key = self.room_key(&room.normalized()?);
        let _write = self.inner.write.lock().await;
        let removed = self.inner.db.delete_room(&key).await?;
        self.write_cache().remove_room(&key);
        Ok(removed)
    }

    /// The bridge `room` belongs to.
    pub fn bridge_of(&self, room: &RoomAlias) -> Option<String> {
        let key = self.room_key(&room.normalized().ok()?);
        self.read_cache().rooms.get(&key).map(|(_, b)| b.clone())
    }

    /// The rooms of `bridge` (empty if there is no such bridge).
    pub fn rooms_of(&self, bridge: &str) -> Vec<RoomAlias> {
        let cache = self.read_cache();
        let mut rooms: Vec<RoomAlias> = cache
            .bridges
            .get(bridge)
            .into_iter()
            .flat_map(|r| r.values().cloned())
            .collect();
        rooms.sort();
        rooms
    }

    /// Every bridge with its rooms, by name.
    pub fn bridges(&self) -> Vec<(String, Vec<RoomAlias>)> {
        let cache = self.read_cache();
        cache
            .bridges
            .iter()
            .map(|(name, rooms)| {
                let mut rooms: Vec<RoomAlias> = rooms.values().cloned().collect();
                rooms.sort();
                (name.clone(), rooms)
            })
            .collect()
    }

    // -- internals ------------------------------------------------------------

    /// After losing a race on an alias insert, copies the winners' aliases
    /// into the cache so that the retry sees them.
    async fn learn_alias_owners(&self, aliases: &[(String, Alias)]) -> Result<(), MappingError> {
        for (key, alias) in aliases {
            if let Some(owner) = self.inner.db.alias_owner(key).await? {
                self.write_cache()
                    .put_alias(owner, key.clone(), alias.clone());
            }
        }
        Ok(())
    }

    /// The unique lookup key of a normalised alias. Addresses are their own
    /// key; nicks are folded (IRC: the network's CASEMAPPING; MSRP:
    /// [`nick_key`]).
    fn alias_key(&self, alias: &Alias) -> String {
        match alias {
            Alias::Im(_) | Alias::Sip(_) | Alias::Jid(_) => alias.to_string(),
            Alias::IrcNick { network, nick } => {
                format!(
                    "irc:{network}/{}",
                    casefold(self.casemapping(network), nick)
                )
            }
            Alias::MsrpNick { room, nick } => format!("msrp:{room}/{}", nick_key(nick)),
        }
    }

    /// The unique lookup key of a normalised room.
    fn room_key(&self, room: &RoomAlias) -> String {
        match room {
            RoomAlias::Msrp(_) | RoomAlias::Muc(_) => room.to_string(),
            RoomAlias::Irc { network, channel } => {
                format!(
                    "irc:{network}/{}",
                    casefold(self.casemapping(network), channel)
                )
            }
        }
    }

    fn scope_key(&self, scope: &NickScope) -> String {
        match scope {
            NickScope::Bridge(b) => bridge_scope_key(b),
            NickScope::Room(r) => self.room_key(r),
        }
    }

    fn read_cache(&self) -> RwLockReadGuard<'_, Cache> {
        // A panic while holding the lock cannot leave the cache half-written
        // in a way that matters more than stopping every lookup would.
        self.inner
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write_cache(&self) -> RwLockWriteGuard<'_, Cache> {
        self.inner
            .cache
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Two stored names that a changed CASEMAPPING makes equal: the table cannot
/// hold both, and choosing which one goes is the operator's call.
fn refold_collision(text: &str, key: &str) -> MappingError {
    MappingError::invalid(
        "CASEMAPPING",
        text,
        format!(
            "under the configured mapping it folds to {key:?}, which another stored entry already has; \
             remove one of them or configure the network's previous mapping"
        ),
    )
}

/// Parses a compact form read from the database; a row that no longer parses
/// (written by a newer version, edited by hand) is skipped with a warning
/// rather than keeping the gateway from starting.
fn parse_stored<T: FromStr<Err = MappingError>>(what: &str, text: &str) -> Option<T> {
    match text.parse() {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(what, text, error = %e, "skipping a mapping row that does not parse");
            None
        }
    }
}
