//! The storage seam: every SQL statement of the crate, and the one place that
//! knows which database engine is behind the pool.
//!
//! The statements are portable (`$n` placeholders, which SQLite also reads;
//! `INSERT ... ON CONFLICT`, `RETURNING`, no engine-specific types) and the
//! bodies are written once inside [`with_pool!`]: adding PostgreSQL is adding
//! `Db::Postgres(PgPool)` and its arm to the macro, then `open_pg` in the
//! store. Nothing above this module sees a pool.

use sqlx::Row;
use sqlx::sqlite::SqlitePool;

/// The pool the store talks to.
#[derive(Debug, Clone)]
pub(crate) enum Db {
    Sqlite(SqlitePool),
}

/// Runs `$body` with `$p` bound to the concrete pool. The body must compile
/// for every engine (it does: `sqlx::query` and `Row::try_get` are generic).
macro_rules! with_pool {
    ($db:expr, $p:ident => $body:expr) => {
        match $db {
            Db::Sqlite($p) => $body,
        }
    };
}

/// The migrations of this crate, versions 100..199.
///
/// The hub's queue keeps its own (200..299) in the same `_sqlx_migrations`
/// table, so versions applied by the other migrator must not be an error.
fn migrator() -> sqlx::migrate::Migrator {
    crate::embedded_migrator(&[
        (
            "100_identities.sql",
            include_str!("../migrations/100_identities.sql"),
        ),
        ("101_rooms.sql", include_str!("../migrations/101_rooms.sql")),
        ("102_nicks.sql", include_str!("../migrations/102_nicks.sql")),
    ])
}

/// Everything the cache is built from.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub identities: Vec<(i64, Option<String>)>,
    /// (lookup key, compact alias, identity id)
    pub aliases: Vec<(String, String, i64)>,
    /// (lookup key, compact room, bridge)
    pub rooms: Vec<(String, String, String)>,
    pub reservations: Vec<StoredReservation>,
    pub irc_nicks: Vec<StoredIrcNick>,
}

#[derive(Debug, Clone)]
pub(crate) struct StoredReservation {
    pub scope_key: String,
    pub scope: String,
    pub nick_key: String,
    pub nick: String,
    pub owner: String,
}

#[derive(Debug, Clone)]
pub(crate) struct StoredIrcNick {
    pub network: String,
    pub who: String,
    pub nick: String,
    pub nick_key: String,
}

/// Whether `err` is a UNIQUE or PRIMARY KEY violation.
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

impl Db {
    pub(crate) async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        with_pool!(self, p => migrator().run(p).await)
    }

    pub(crate) async fn load(&self) -> Result<Snapshot, sqlx::Error> {
        with_pool!(self, p => {
            let mut tx = p.begin().await?;
            let mut snap = Snapshot::default();
            for row in sqlx::query("SELECT id, display_name FROM mapping_identities ORDER BY id")
                .fetch_all(&mut *tx)
                .await?
            {
                snap.identities.push((row.try_get("id")?, row.try_get("display_name")?));
            }
            for row in sqlx::query("SELECT lookup_key, alias, identity_id FROM mapping_aliases ORDER BY lookup_key")
                .fetch_all(&mut *tx)
                .await?
            {
                snap.aliases.push((row.try_get("lookup_key")?, row.try_get("alias")?, row.try_get("identity_id")?));
            }
            for row in sqlx::query("SELECT lookup_key, room, bridge FROM mapping_rooms ORDER BY bridge, lookup_key")
                .fetch_all(&mut *tx)
                .await?
            {
                snap.rooms.push((row.try_get("lookup_key")?, row.try_get("room")?, row.try_get("bridge")?));
            }
            for row in sqlx::query(
                "SELECT scope_key, scope, nick_key, nick, owner FROM mapping_nick_reservations \
                 ORDER BY scope_key, nick_key",
            )
            .fetch_all(&mut *tx)
            .await?
            {
                snap.reservations.push(StoredReservation {
                    scope_key: row.try_get("scope_key")?,
                    scope: row.try_get("scope")?,
                    nick_key: row.try_get("nick_key")?,
                    nick: row.try_get("nick")?,
                    owner: row.try_get("owner")?,
                });
            }
            for row in sqlx::query("SELECT network, who, nick, nick_key FROM mapping_irc_nicks ORDER BY network, who")
                .fetch_all(&mut *tx)
                .await?
            {
                snap.irc_nicks.push(StoredIrcNick {
                    network: row.try_get("network")?,
                    who: row.try_get("who")?,
                    nick: row.try_get("nick")?,
                    nick_key: row.try_get("nick_key")?,
                });
            }
            tx.commit().await?;
            Ok(snap)
        })
    }

    /// Rewrites lookup keys that a changed CASEMAPPING made stale, in one
    /// transaction: `(old key, new key)` pairs per table.
    pub(crate) async fn rekey(
        &self,
        aliases: &[(String, String)],
        rooms: &[(String, String)],
        reservations: &[(String, String, String)],
        irc_nicks: &[(String, String, String)],
    ) -> Result<(), sqlx::Error> {
        with_pool!(self, p => {
            let mut tx = p.begin().await?;
            for (old, new) in aliases {
                sqlx::query("UPDATE mapping_aliases SET lookup_key = $1 WHERE lookup_key = $2")
                    .bind(new).bind(old).execute(&mut *tx).await?;
            }
            for (old, new) in rooms {
                sqlx::query("UPDATE mapping_rooms SET lookup_key = $1 WHERE lookup_key = $2")
                    .bind(new).bind(old).execute(&mut *tx).await?;
            }
            for (old_scope, new_scope, nick_key) in reservations {
                sqlx::query(
                    "UPDATE mapping_nick_reservations SET scope_key = $1 WHERE scope_key = $2 AND nick_key = $3",
                )
                .bind(new_scope).bind(old_scope).bind(nick_key).execute(&mut *tx).await?;
            }
            for (network, who, nick_key) in irc_nicks {
                sqlx::query("UPDATE mapping_irc_nicks SET nick_key = $1 WHERE network = $2 AND who = $3")
                    .bind(nick_key).bind(network).bind(who).execute(&mut *tx).await?;
            }
            tx.commit().await
        })
    }

    /// Creates an identity (when `id` is `None`) or updates its display name
    /// (when `set_display`), and inserts `new_aliases` (lookup key, compact
    /// form), all in one transaction. Returns the identity's id.
    pub(crate) async fn save_identity(
        &self,
        id: Option<i64>,
        display_name: Option<&str>,
        set_display: bool,
        new_aliases: &[(String, String)],
    ) -> Result<i64, sqlx::Error> {
        with_pool!(self, p => {
            let mut tx = p.begin().await?;
            let id = match id {
                Some(id) => {
                    if set_display {
                        sqlx::query("UPDATE mapping_identities SET display_name = $1 WHERE id = $2")
                            .bind(display_name).bind(id).execute(&mut *tx).await?;
                    }
                    id
                }
                // Portable id allocation: writers are serialised by SQLite's
                // write lock; on PostgreSQL a concurrent writer gets a
                // unique violation and the caller retries.
                None => sqlx::query(
                    "INSERT INTO mapping_identities (id, display_name) \
                     SELECT COALESCE(MAX(id), 0) + 1, $1 FROM mapping_identities RETURNING id",
                )
                .bind(display_name)
                .fetch_one(&mut *tx)
                .await?
                .try_get("id")?,
            };
            for (key, alias) in new_aliases {
                sqlx::query("INSERT INTO mapping_aliases (lookup_key, alias, identity_id) VALUES ($1, $2, $3)")
                    .bind(key).bind(alias).bind(id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(id)
        })
    }

    pub(crate) async fn alias_owner(&self, key: &str) -> Result<Option<i64>, sqlx::Error> {
        with_pool!(self, p => {
            let row = sqlx::query("SELECT identity_id FROM mapping_aliases WHERE lookup_key = $1")
                .bind(key).fetch_optional(p).await?;
            row.map(|r| r.try_get("identity_id")).transpose()
        })
    }

    pub(crate) async fn delete_alias(&self, key: &str) -> Result<bool, sqlx::Error> {
        with_pool!(self, p => {
            let done = sqlx::query("DELETE FROM mapping_aliases WHERE lookup_key = $1")
                .bind(key).execute(p).await?;
            Ok(done.rows_affected() > 0)
        })
    }

    pub(crate) async fn delete_identity(&self, id: i64) -> Result<bool, sqlx::Error> {
        with_pool!(self, p => {
            let mut tx = p.begin().await?;
            // Explicit, so that it does not depend on foreign_keys being on.
            sqlx::query("DELETE FROM mapping_aliases WHERE identity_id = $1").bind(id).execute(&mut *tx).await?;
            let done = sqlx::query("DELETE FROM mapping_identities WHERE id = $1").bind(id).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Puts a room in a bridge unless it is in one; returns the bridge it is
    /// in afterwards.
    pub(crate) async fn insert_room(
        &self,
        key: &str,
        room: &str,
        bridge: &str,
    ) -> Result<String, sqlx::Error> {
        with_pool!(self, p => {
            let mut tx = p.begin().await?;
            sqlx::query(
                "INSERT INTO mapping_rooms (lookup_key, room, bridge) VALUES ($1, $2, $3) \
                 ON CONFLICT (lookup_key) DO NOTHING",
            )
            .bind(key).bind(room).bind(bridge).execute(&mut *tx).await?;
            let holder: String = sqlx::query("SELECT bridge FROM mapping_rooms WHERE lookup_key = $1")
                .bind(key).fetch_one(&mut *tx).await?.try_get("bridge")?;
            tx.commit().await?;
            Ok(holder)
        })
    }

    pub(crate) async fn delete_room(&self, key: &str) -> Result<bool, sqlx::Error> {
        with_pool!(self, p => {
            let done = sqlx::query("DELETE FROM mapping_rooms WHERE lookup_key = $1").bind(key).execute(p).await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Inserts a reservation unless the (scope, nick) is held; returns the
    /// owner that holds it afterwards (the new one if the insert took).
    pub(crate) async fn insert_reservation(
        &self,
        r: &StoredReservation,
    ) -> Result<String, sqlx::Error> {
        with_pool!(self, p => {
            let mut tx = p.begin().await?;
            sqlx::query(
                "INSERT INTO mapping_nick_reservations (scope_key, scope, nick_key, nick, owner) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (scope_key, nick_key) DO NOTHING",
            )
            .bind(&r.scope_key).bind(&r.scope).bind(&r.nick_key).bind(&r.nick).bind(&r.owner)
            .execute(&mut *tx)
            .await?;
            let owner: String = sqlx::query(
                "SELECT owner FROM mapping_nick_reservations WHERE scope_key = $1 AND nick_key = $2",
            )
            .bind(&r.scope_key).bind(&r.nick_key)
            .fetch_one(&mut *tx)
            .await?
            .try_get("owner")?;
            tx.commit().await?;
            Ok(owner)
        })
    }

    pub(crate) async fn delete_reservation(
        &self,
        scope_key: &str,
        nick_key: &str,
        owner: &str,
    ) -> Result<bool, sqlx::Error> {
        with_pool!(self, p => {
            let done = sqlx::query(
                "DELETE FROM mapping_nick_reservations WHERE scope_key = $1 AND nick_key = $2 AND owner = $3",
            )
            .bind(scope_key).bind(nick_key).bind(owner).execute(p).await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Sets `who`'s nick on `network` (replacing a previous one).
    pub(crate) async fn upsert_irc_nick(&self, n: &StoredIrcNick) -> Result<(), sqlx::Error> {
        with_pool!(self, p => {
            sqlx::query(
                "INSERT INTO mapping_irc_nicks (network, who, nick, nick_key) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (network, who) DO UPDATE SET nick = excluded.nick, nick_key = excluded.nick_key",
            )
            .bind(&n.network).bind(&n.who).bind(&n.nick).bind(&n.nick_key).execute(p).await?;
            Ok(())
        })
    }

    pub(crate) async fn irc_nick_holder(
        &self,
        network: &str,
        nick_key: &str,
    ) -> Result<Option<String>, sqlx::Error> {
        with_pool!(self, p => {
            let row = sqlx::query("SELECT who FROM mapping_irc_nicks WHERE network = $1 AND nick_key = $2")
                .bind(network).bind(nick_key).fetch_optional(p).await?;
            row.map(|r| r.try_get("who")).transpose()
        })
    }

    pub(crate) async fn delete_irc_nick(
        &self,
        network: &str,
        who: &str,
    ) -> Result<bool, sqlx::Error> {
        with_pool!(self, p => {
            let done = sqlx::query("DELETE FROM mapping_irc_nicks WHERE network = $1 AND who = $2")
                .bind(network).bind(who).execute(p).await?;
            Ok(done.rows_affected() > 0)
        })
    }
}
