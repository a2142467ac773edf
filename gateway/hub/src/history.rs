//! Room history: the recent messages of each bridge, for history on join.
//!
//! XEP-0045 §7.2.15 ("Discussion History") has a room send a joining
//! occupant its recent messages, limited by the occupant's `maxstanzas`,
//! `seconds` or `since`; MSRP chat rooms and IRC bouncers offer the same.
//! In a bridge the history of a room is that of its whole conversation:
//! every room message the hub accepted from any room of the bridge, so
//! that someone joining the XMPP side also sees what was said on IRC.
//!
//! ```text
//!  router ── submit_with_history ──► queue writer: history row in the group's
//!                                    transaction (accepted, not private, not
//!                                    a duplicate); pruned in its prune step
//!                                              │ same SQLite file (WAL)
//!  adapter ── ctx.history.recent(room, query) ─► HistoryStore: own read-only
//!                                                 connections, never the writer's
//! ```
//!
//! The `[history]` config section sets how much is kept: `keep` messages
//! per bridge and at most `max_age_s` seconds. Messages are returned in the
//! order the bridge accepted (and relayed) them, oldest first; their `room`
//! is the room they were said in and `datetime` when (never later than the
//! gateway received them).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cpimgate_model::port::{BoxFuture, Failure, FailureKind, History, HistoryQuery};
use cpimgate_model::time::Timestamp;
use cpimgate_model::{Message, RoomRef};
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

use crate::config::HistorySection;
use crate::queue::codec;
use crate::routing::Routes;

/// How much history is kept and given out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistorySettings {
    /// Most messages per bridge.
    pub keep: usize,
    /// Oldest message given out.
    pub max_age: Duration,
}

impl From<&HistorySection> for HistorySettings {
    fn from(s: &HistorySection) -> Self {
        HistorySettings {
            keep: s.keep,
            max_age: s.max_age(),
        }
    }
}

/// Why history could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// Happens when SQLite fails the read (file gone, I/O error, lock
    /// timeout).
    #[error("reading the room history failed")]
    Store(#[from] sqlx::Error),
    /// Happens when a stored message cannot be read back (written by an
    /// unknown version, or damaged).
    #[error("cannot read history row {row}")]
    Decode {
        /// The row's id.
        row: i64,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The room history of the queue's file, read through its own read-only
/// connections (WAL mode: readers never wait for the writer, nor it for
/// them). Clones share the connections.
#[derive(Clone, Debug)]
pub struct HistoryStore {
    pool: SqlitePool,
    routes: Arc<Routes>,
    settings: HistorySettings,
}

impl HistoryStore {
    /// The history in the SQLite file at `path`, whose schema the queue
    /// created ([`crate::queue::Queue::open`]). Connects on first use.
    pub fn open(path: &Path, routes: Routes, settings: HistorySettings) -> HistoryStore {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .min_connections(0)
            .connect_lazy_with(options);
        HistoryStore {
            pool,
            routes: Arc::new(routes),
            settings,
        }
    }

    /// The newest messages of `bridge` that `query` and the settings allow,
    /// oldest first.
    pub async fn recent_of_bridge(
        &self,
        bridge: &str,
        query: &HistoryQuery,
    ) -> Result<Vec<Message>, HistoryError> {
        // XEP-0045 §7.2.15: `maxstanzas="0"` asks for no history at all.
        let limit = query.max_messages.min(self.settings.keep);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let max_age = i64::try_from(self.settings.max_age.as_micros()).unwrap_or(i64::MAX);
        let oldest = Timestamp::now().unix_micros.saturating_sub(max_age);
        let oldest = query.since.map_or(oldest, |s| s.unix_micros.max(oldest));
        let rows = sqlx::query(
            "SELECT id, message FROM \
             (SELECT id, message FROM history_message \
              WHERE bridge = ? AND said_at >= ? ORDER BY id DESC LIMIT ?) \
             ORDER BY id",
        )
        .bind(bridge)
        .bind(oldest)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.try_get("id")?;
            let blob: Vec<u8> = row.try_get("message")?;
            out.push(codec::decode(&blob).map_err(|e| HistoryError::Decode {
                row: id,
                source: Box::new(e),
            })?);
        }
        Ok(out)
    }

    /// Closes the read connections.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl History for HistoryStore {
    fn recent(
        &self,
        room: &RoomRef,
        query: HistoryQuery,
    ) -> BoxFuture<'static, Result<Vec<Message>, Failure>> {
        let bridge = self.routes.bridge_name(room).map(str::to_owned);
        let store = self.clone();
        Box::pin(async move {
            let Some(bridge) = bridge else {
                return Ok(Vec::new());
            };
            store.recent_of_bridge(&bridge, &query).await.map_err(|e| {
                tracing::error!(bridge, error = %e, "reading room history failed");
                Failure::new(
                    FailureKind::Internal,
                    "the gateway could not read the room history",
                )
            })
        })
    }
}
