//! Room history, the writer's side: the rows written with a group, and the
//! pruning. The read side, and the adapters' [`History`] port, are in
//! [`crate::history`].
//!
//! [`History`]: cpimgate_model::port::History

use sqlx::sqlite::SqliteConnection;
use sqlx::{AssertSqlSafe, Connection};

use cpimgate_model::Message;
use cpimgate_model::time::Timestamp;

use super::writer::{chunked, repeat_values};
use super::{QueueError, codec};

/// A room message to keep in its bridge's history, written in the same
/// transaction as its queue entries (see [`super::Queue::submit_with_history`]).
#[derive(Clone, Debug)]
pub struct HistoryRecord {
    /// The bridge of the room it was said in.
    pub bridge: String,
    /// The message as received: its `room` is the room it was said in.
    /// A private message, or one without a room, is not recorded.
    pub message: Message,
    /// When the gateway received it: the message's time when it carries
    /// none, and the latest time it is recorded at.
    pub received: Timestamp,
}

/// A history row, serialized by the submitting task.
#[derive(Debug)]
pub(super) struct HistoryRow {
    bridge: String,
    adapter: String,
    room: String,
    said_at: i64,
    blob: Vec<u8>,
}

impl HistoryRecord {
    pub(super) fn into_row(self) -> Result<Option<HistoryRow>, QueueError> {
        let Some(room) = self.message.room.as_ref().filter(|_| !self.message.private) else {
            return Ok(None);
        };
        // A sender's clock running ahead must not keep its message past
        // `max_age`, nor let a `since` filter take it for a newer one.
        let said_at = self
            .message
            .datetime
            .map_or(self.received, |d| d.min(self.received));
        Ok(Some(HistoryRow {
            bridge: self.bridge,
            adapter: room.adapter.clone(),
            room: room.address.to_string(),
            said_at: said_at.unix_micros,
            blob: codec::encode(&self.message)?,
        }))
    }
}

/// The multi-row insert for `n` rows.
pub(super) fn insert_statement(n: usize) -> String {
    format!(
        "INSERT INTO history_message (bridge, adapter, room, message_id, said_at, message) \
         VALUES {}",
        repeat_values("(?, ?, ?, ?, ?, ?)", n)
    )
}

/// Writes `rows` (message id, row) inside the writer's open transaction.
/// `statements` holds [`insert_statement`] for each chunk size.
pub(super) async fn insert(
    conn: &mut SqliteConnection,
    statements: &[String],
    rows: Vec<(String, HistoryRow)>,
) -> Result<(), sqlx::Error> {
    let n = rows.len();
    let mut rows = rows.into_iter();
    for (i, k) in chunked(n) {
        let mut q = sqlx::query(AssertSqlSafe(statements[i].as_str()));
        for (message_id, r) in rows.by_ref().take(k) {
            q = q
                .bind(r.bridge)
                .bind(r.adapter)
                .bind(r.room)
                .bind(message_id)
                .bind(r.said_at)
                .bind(r.blob);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Removes history said before `cutoff` (microseconds), then all but the
/// newest `keep` rows of each bridge, in one transaction. Returns how many
/// rows went.
pub(super) async fn prune(
    conn: &mut SqliteConnection,
    keep: usize,
    cutoff: i64,
) -> Result<u64, sqlx::Error> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let mut pruned = sqlx::query("DELETE FROM history_message WHERE said_at < ?")
        .bind(cutoff)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let keep = i64::try_from(keep).unwrap_or(i64::MAX);
    let bridges: Vec<String> = sqlx::query_scalar("SELECT DISTINCT bridge FROM history_message")
        .fetch_all(&mut *tx)
        .await?;
    for bridge in bridges {
        // The (keep + 1)-th newest row and everything older; none when the
        // bridge has at most `keep` (the subquery is NULL).
        pruned += sqlx::query(
            "DELETE FROM history_message WHERE bridge = ?1 AND id <= \
             (SELECT id FROM history_message WHERE bridge = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
        )
        .bind(&bridge)
        .bind(keep)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    tx.commit().await?;
    Ok(pruned)
}
