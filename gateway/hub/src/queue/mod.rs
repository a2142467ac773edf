//! The hub's durable queue, with group commit.
//!
//! A message that an adapter accepted (SIP 202, MSRP 200) is written here,
//! one row per destination adapter, **before** the adapter acknowledges it
//! to its sender; the row is removed only when the message was delivered,
//! failed for good, or expired. After a restart (also after `kill -9` or a
//! power cut) [`Queue::open`] returns whatever is still pending, oldest
//! first.
//!
//! # Why group commit
//!
//! Durability means an fsync per commit (`journal_mode = WAL`,
//! `synchronous = FULL`), and an fsync takes from a few hundred microseconds
//! to several milliseconds. One commit per message therefore caps the
//! gateway at one to a few thousand messages per second however fast the
//! rest is (`benches/queue.rs` measures both). Instead:
//!
//! ```text
//!  enqueue() ──┐  bounded mpsc      ┌──────────── writer task ─────────────┐
//!  enqueue() ──┼──────────────────▶ │ take all waiting (≤ max_batch)       │
//!  complete() ─┘  (request +        │ BEGIN IMMEDIATE; multi-row INSERTs   │
//!                  oneshot replies) │ staged: hand out the entries ────────┼──▶ delivery starts
//!                                   │ COMMIT (one fsync for the group)     │
//!       ◀──────────── answers ───── │ answer every caller of the group     │
//!                                   └──────────────────────────────────────┘
//! ```
//!
//! One task owns the only connection. While one group's fsync runs, the
//! next requests pile up in the channel and become the next group, so the
//! group size follows the load by itself: one message alone is written at
//! once, a thousand concurrent ones share a handful of fsyncs. An optional
//! [`QueueConfig::batch_delay`] waits a little longer for more company
//! (tokio's timer resolution is about a millisecond, so small delays round
//! up). [`QueueConfig::max_batch`] = 1 gives one commit per message, for
//! comparison.
//!
//! An acknowledgement is never early: [`Queue::enqueue`] (and
//! [`Staged::committed`]) resolves only after the `COMMIT` of its group
//! returned. [`Queue::complete`] and [`Queue::reschedule`] do not wait for
//! the disk (the delivery path must not pay an fsync per message); they
//! ride the next group and are durable when it commits. If a completion is
//! lost to a crash the entry is delivered again after the restart: delivery
//! is at least once.
//!
//! # Staging: delivery does not wait for the fsync
//!
//! The fsync is most of a message's time in the gateway (about 1.5 ms on
//! ext4), and delivery need not wait for it. So the writer answers in two
//! steps ([`Pending::staged`]): once a group's rows are inserted inside the
//! open transaction — entry ids assigned, duplicates decided by
//! `queue_seen` and the in-memory ids — it hands each enqueue its entries
//! ("staged"), and the hub starts delivering them while the `COMMIT` runs.
//! Only the commit answers the sender (SIP 202, MSRP 200): *accepted* still
//! means *on disk*.
//!
//! Sooner still, while the writer's in-memory ids are complete (every id
//! of `queue_seen` is among them: read back whole when the queue opened
//! and none pushed out by [`QueueConfig::seen_in_memory`] since), an id
//! they lack is new for certain: the writer then assigns the entry ids
//! and stages the group *before* any SQL of it runs, so delivery waits
//! for neither the inserts nor the write lock. Once the accepted ids of
//! the horizon outgrow the bound, `queue_seen` decides again, inside the
//! transaction, and staging follows the inserts as above.
//!
//! What this changes:
//!
//! * A completion or reschedule may now name an entry whose insert is not
//!   committed yet. It is still written after the insert: the writer takes
//!   requests in channel order, the enqueue was taken into its group before
//!   the entry was staged, so the completion lands in a later group.
//! * A backlog read ([`Queue::load_pending`]) is answered after its group's
//!   commit, so it sees every entry staged before it was sent — committed —
//!   and a dispatcher skips an entry it already has by id: a staged entry
//!   left on disk because the dispatcher's channel was full is neither lost
//!   nor delivered twice.
//! * **If the commit fails, copies may already have been delivered.** The
//!   sender is answered with an error and will retry; the retry is a new
//!   enqueue (the failed group's ids were rolled back with it) and is
//!   delivered again. Receivers de-duplicate by message id (the CPIM
//!   `Message-ID`, XEP-0359 origin id, IRCv3 `msgid`). This is deliberate:
//!   a rare duplicate after a disk error, against an fsync on the path of
//!   every message. Ids handed out in a failed group are never handed out
//!   again by this process, so a late completion of such an entry cannot
//!   remove another one.
//!
//! # De-duplication
//!
//! The queue also remembers every accepted message id for
//! [`QueueConfig::dedup_horizon`], in table `queue_seen`, written in the same
//! transaction as the entries. Enqueueing an id seen before answers
//! [`QueueError::Duplicate`] — also after a restart. The writer checks the
//! latest accepted ids in memory first ([`QueueConfig::seen_in_memory`])
//! and lets the primary key of `queue_seen` answer for older ones. A `Duplicate` means an earlier copy is
//! already stored: an adapter acknowledges it to its sender as accepted
//! (the sender is retransmitting, or another gateway relayed it).
//!
//! # Metrics
//!
//! `cpimgate_queue_depth` (gauge, entries pending),
//! `cpimgate_queue_commits_total`, `cpimgate_queue_commit_failures_total`,
//! `cpimgate_queue_duplicates_total` (counters),
//! `cpimgate_queue_commit_seconds` (histogram, one group's transaction) and
//! `cpimgate_queue_batch_size` (histogram, requests per group).
//!
//! # Storage
//!
//! The queue lives in the same SQLite file as the mapping table. Its
//! migrations (`gateway/hub/migrations`, versions 200..299; the mapping
//! table owns 100..199) run with `ignore_missing`, so neither migrator
//! rejects the other's versions. Messages are stored as a format byte and
//! postcard (see `codec.rs` for why not the model's own serde layout). One
//! gateway process owns the queue tables: entry ids are handed out by the
//! writer.
//!
//! The writer also keeps the room history ([`crate::history`]): an enqueue
//! may carry a [`HistoryRecord`], written in the same transaction when the
//! message is new (`history_message`, migration 201), and pruned to
//! [`QueueConfig::history_keep`] per bridge and
//! [`QueueConfig::history_max_age`] with the de-duplication ids.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo(message: cpimgate_model::Message) -> Result<(), cpimgate::queue::QueueError> {
//! use std::time::Duration;
//! use cpimgate::queue::{Backoff, Queue, QueueConfig, QueueError};
//! use cpimgate_model::time::Timestamp;
//!
//! let (queue, pending) = Queue::open(QueueConfig::new("/var/lib/cpimgate/state.db")).await?;
//! for entry in pending {
//!     // Deliver (or report as failed if entry.message is expired) what the
//!     // previous run left.
//! #   let _ = entry;
//! }
//!
//! // An adapter received `message` for two destinations:
//! let id = message.id.clone();
//! match queue.enqueue(&id, vec![("xmpp0".into(), message.clone()), ("irc0".into(), message)]).await {
//!     Ok(entries) => {
//!         // On disk: acknowledge to the sender now, then deliver each entry.
//!         let backoff = Backoff::default();
//!         for e in entries {
//!             let delivered = false; // the adapter's answer
//!             if delivered {
//!                 queue.complete(e.id).await?;
//!             } else {
//!                 let attempts = e.attempts + 1;
//!                 queue.reschedule(e.id, attempts, backoff.next_attempt(Timestamp::now(), e.attempts)).await?;
//!             }
//!         }
//!     }
//!     Err(QueueError::Duplicate) => { /* stored before: acknowledge, relay nothing */ }
//!     Err(e) => return Err(e), // not stored: refuse (SIP 500, MSRP 481...)
//! }
//! queue.close().await?;
//! # Ok(()) }
//! ```

mod backoff;
pub(crate) mod codec;
mod history;
mod pending;
mod writer;

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, Row};
use tokio::sync::{mpsc, oneshot};

use cpimgate_model::time::Timestamp;
use cpimgate_model::{Message, MessageId};

pub use backoff::Backoff;
pub use history::HistoryRecord;
pub use pending::{Committed, Pending, Staged};

use writer::{NewRow, Request, Settings, Writer};

/// How to open the queue: [`QueueConfig::new`] or a struct literal with
/// `..QueueConfig::default()`.
#[derive(Clone, Debug)]
pub struct QueueConfig {
    /// The SQLite file (shared with the mapping table); created if missing.
    pub path: PathBuf,
    /// Most requests written in one transaction. 1 commits every message on
    /// its own (for comparison only: it is disk-bound).
    pub max_batch: usize,
    /// How long the writer waits for more requests once it has one, when
    /// fewer than `max_batch` are waiting. Zero (the default) relies on the
    /// requests that arrive during the previous commit.
    pub batch_delay: Duration,
    /// How long an accepted message id is remembered for de-duplication.
    pub dedup_horizon: Duration,
    /// How often ids older than the horizon are forgotten.
    pub prune_interval: Duration,
    /// How many of the latest accepted ids are also kept in memory, to
    /// answer duplicates without a database write; older ones are still
    /// caught by the table. Bounded so that a busy day does not fill memory.
    pub seen_in_memory: usize,
    /// Requests that may wait for the writer; further callers wait for room.
    pub capacity: usize,
    /// How long a statement waits for a lock held by another connection to
    /// the same file (the mapping table) before failing.
    pub busy_timeout: Duration,
    /// Room messages kept per bridge in the history (see [`crate::history`]);
    /// older ones are removed at each prune.
    pub history_keep: usize,
    /// History older than this is removed at each prune.
    pub history_max_age: Duration,
    /// Fault injection and tests: runs in the writer after a group's rows
    /// are written and staged, just before `COMMIT`. It can hold the commit
    /// back (to observe what happens before it), and an error it returns
    /// fails the group as an I/O error of the commit would.
    pub before_commit: Option<CommitHook>,
}

/// A hook run before each group's `COMMIT` (see
/// [`QueueConfig::before_commit`]).
#[derive(Clone)]
pub struct CommitHook(Arc<HookFn>);

type HookFn = dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync;

impl CommitHook {
    /// Wraps `f`, called once per group; `Err(reason)` fails the group.
    pub fn new<F, Fut>(f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        CommitHook(Arc::new(move || Box::pin(f())))
    }

    pub(crate) async fn run(&self) -> Result<(), String> {
        (self.0)().await
    }
}

impl fmt::Debug for CommitHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CommitHook")
    }
}

impl QueueConfig {
    /// Defaults for the file at `path`: groups of up to 512, no added delay,
    /// a 24 h de-duplication horizon pruned every 10 minutes.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        QueueConfig {
            path: path.into(),
            ..QueueConfig::default()
        }
    }
}

impl Default for QueueConfig {
    /// The defaults of [`QueueConfig::new`], for `cpimgate.db` in the
    /// working directory.
    fn default() -> Self {
        QueueConfig {
            path: PathBuf::from("cpimgate.db"),
            max_batch: 512,
            batch_delay: Duration::ZERO,
            dedup_horizon: Duration::from_secs(24 * 3600),
            prune_interval: Duration::from_secs(600),
            seen_in_memory: 100_000,
            capacity: 4096,
            busy_timeout: Duration::from_secs(5),
            history_keep: 100,
            history_max_age: Duration::from_secs(7 * 24 * 3600),
            before_commit: None,
        }
    }
}

/// The id of one queue entry (one message for one destination).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryId(pub i64);

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One message waiting for one destination adapter.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The entry's id; ids grow in acceptance order.
    pub id: EntryId,
    /// The destination adapter instance (config name).
    pub adapter: String,
    /// The message, as addressed for that destination.
    pub message: Message,
    /// Failed delivery attempts so far.
    pub attempts: u32,
    /// When the next delivery attempt is due.
    pub next_attempt: Timestamp,
    /// When the queue accepted the message.
    pub enqueued_at: Timestamp,
}

/// Counters since [`Queue::open`], for tests and diagnostics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueStats {
    /// Transactions committed (each one fsync).
    pub commits: u64,
    /// Transactions that failed and were rolled back.
    pub failed_commits: u64,
    /// Entries written.
    pub rows_written: u64,
    /// Entries removed by [`Queue::complete`].
    pub completed: u64,
    /// Entries updated by [`Queue::reschedule`].
    pub rescheduled: u64,
    /// Enqueues answered [`QueueError::Duplicate`].
    pub duplicates: u64,
}

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// Happens when a message id was accepted before, within the
    /// de-duplication horizon (also before a restart). The earlier copy is
    /// stored; nothing was written.
    #[error("the message was already accepted")]
    Duplicate,
    /// Happens when the queue was closed (or its writer stopped) before the
    /// request was written.
    #[error("the queue is closed")]
    Closed,
    /// Happens when the database file cannot be opened or created (missing
    /// directory, permissions, not a database).
    #[error("cannot open the queue database {}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: sqlx::Error,
    },
    /// Happens when the queue's schema migrations fail or the file holds a
    /// changed version of one of them.
    #[error("queue schema migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Happens when SQLite fails a read or a write (disk full, I/O error,
    /// lock timeout). For a group commit, every request of the group gets
    /// this error and none of it was written.
    #[error("queue database error")]
    Store(#[source] Arc<sqlx::Error>),
    /// Happens when a message cannot be serialized for storage.
    #[error("cannot serialize a message for the queue")]
    Encode(#[from] postcard::Error),
    /// Happens when a stored entry cannot be read back (written by an
    /// unknown version, or damaged). The row is left in place.
    #[error("cannot read queue entry {id}")]
    Decode {
        /// The entry.
        id: EntryId,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Happens when a [`QueueConfig`] value is out of range.
    #[error("invalid queue configuration: {0}")]
    Config(&'static str),
}

impl From<sqlx::Error> for QueueError {
    fn from(e: sqlx::Error) -> Self {
        QueueError::Store(Arc::new(e))
    }
}

#[derive(Debug, Default)]
struct Stats {
    commits: AtomicU64,
    failed_commits: AtomicU64,
    rows_written: AtomicU64,
    completed: AtomicU64,
    rescheduled: AtomicU64,
    duplicates: AtomicU64,
}

/// State shared by the handles and the writer.
#[derive(Debug, Default)]
struct Shared {
    depth: AtomicU64,
    stats: Stats,
    path: PathBuf,
}

/// A handle to the durable queue; clones share one writer.
#[derive(Clone, Debug)]
pub struct Queue {
    tx: mpsc::Sender<Request>,
    shared: Arc<Shared>,
}

impl Queue {
    /// Opens the file (creating it), runs the queue's migrations, starts
    /// the writer task, and returns the entries still pending from earlier
    /// runs, oldest first.
    ///
    /// Must be called within a tokio runtime.
    pub async fn open(cfg: QueueConfig) -> Result<(Queue, Vec<Entry>), QueueError> {
        if cfg.max_batch == 0 {
            return Err(QueueError::Config("max_batch must be at least 1"));
        }
        if cfg.capacity == 0 {
            return Err(QueueError::Config("capacity must be at least 1"));
        }
        if cfg.prune_interval.is_zero() {
            return Err(QueueError::Config("prune_interval must not be zero"));
        }
        let options = SqliteConnectOptions::new()
            .filename(&cfg.path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(cfg.busy_timeout);
        let mut conn = SqliteConnection::connect_with(&options)
            .await
            .map_err(|source| QueueError::Open {
                path: cfg.path.clone(),
                source,
            })?;

        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut conn)
            .await?;
        if !mode.eq_ignore_ascii_case("wal") {
            // Still durable with synchronous=FULL, but readers block the writer.
            tracing::warn!(path = %cfg.path.display(), %mode, "queue database is not in WAL mode");
        }

        // Versions 200..299; the mapping table's share the file's
        // `_sqlx_migrations` table.
        let migrator = cpimgate_mappings::embedded_migrator(&[
            (
                "200_queue.sql",
                include_str!("../../migrations/200_queue.sql"),
            ),
            (
                "201_history.sql",
                include_str!("../../migrations/201_history.sql"),
            ),
        ]);
        migrator.run(&mut conn).await?;

        let pending = load_pending(&mut conn, None, None, None).await?;
        let next_id: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM queue_entry")
            .fetch_one(&mut conn)
            .await?;

        let seen = load_seen(&mut conn, cfg.dedup_horizon, cfg.seen_in_memory).await?;

        let shared = Arc::new(Shared {
            path: cfg.path.clone(),
            ..Shared::default()
        });
        shared.depth.store(pending.len() as u64, Ordering::Relaxed);
        metrics::gauge!("cpimgate_queue_depth").set(pending.len() as f64);
        tracing::info!(
            path = %cfg.path.display(),
            pending = pending.len(),
            max_batch = cfg.max_batch,
            "queue opened"
        );

        let (tx, rx) = mpsc::channel(cfg.capacity);
        let settings = Settings {
            max_batch: cfg.max_batch,
            batch_delay: cfg.batch_delay,
            dedup_horizon: cfg.dedup_horizon,
            prune_interval: cfg.prune_interval,
            seen_in_memory: cfg.seen_in_memory,
            history_keep: cfg.history_keep,
            history_max_age: cfg.history_max_age,
            before_commit: cfg.before_commit.clone(),
        };
        tokio::spawn(Writer::new(conn, rx, shared.clone(), settings, next_id, seen).run());
        Ok((Queue { tx, shared }, pending))
    }

    /// Durably records one received message: one entry per destination
    /// (each with its own copy of the message, as addressed for that world),
    /// and `id` as seen. Resolves once the group holding it is committed;
    /// returns the new entries, in the order of `deliveries`.
    ///
    /// An empty `deliveries` only records the id. Same as
    /// `self.submit(id, deliveries).await?.await`.
    pub async fn enqueue(
        &self,
        id: &MessageId,
        deliveries: Vec<(String, Message)>,
    ) -> Result<Vec<Entry>, QueueError> {
        self.submit(id, deliveries).await?.await
    }

    /// The two halves of [`Queue::enqueue`]: resolves once the writer has
    /// the request (waiting only for room in the channel, so requests
    /// submitted one after the other are written in that order), and gives
    /// a [`Pending`] that resolves once it is on disk. A router can so keep
    /// accepting messages while earlier ones commit.
    ///
    /// The request is written whether or not the [`Pending`] is awaited.
    pub async fn submit(
        &self,
        id: &MessageId,
        deliveries: Vec<(String, Message)>,
    ) -> Result<Pending, QueueError> {
        self.submit_with_history(id, deliveries, None).await
    }

    /// [`Queue::submit`] for a room message that also goes into its
    /// bridge's history: the history row is written in the same
    /// transaction, and only if the message is not a duplicate.
    pub async fn submit_with_history(
        &self,
        id: &MessageId,
        deliveries: Vec<(String, Message)>,
        history: Option<HistoryRecord>,
    ) -> Result<Pending, QueueError> {
        let history = match history {
            Some(h) => h.into_row()?,
            None => None,
        };
        let mut rows = Vec::with_capacity(deliveries.len());
        for (adapter, message) in &deliveries {
            rows.push(NewRow {
                adapter: adapter.clone(),
                expires: message.expires,
                blob: codec::encode(message)?,
            });
        }
        let (reply, answer) = oneshot::channel();
        let (staged_tx, staged) = oneshot::channel();
        self.send(Request::Enqueue {
            id: id.clone(),
            rows,
            history,
            staged: staged_tx,
            reply,
        })
        .await?;
        Ok(Pending::new(staged, answer, deliveries))
    }

    /// Removes an entry: delivered, failed for good, or expired. Returns
    /// once the writer has the request; it is durable when the next group
    /// commits (see [`Queue::flush`]).
    pub async fn complete(&self, id: EntryId) -> Result<(), QueueError> {
        self.send(Request::Complete(id)).await
    }

    /// Records a transient delivery failure: `attempts` so far and when to
    /// try again. Durable like [`Queue::complete`].
    pub async fn reschedule(
        &self,
        id: EntryId,
        attempts: u32,
        next_attempt: Timestamp,
    ) -> Result<(), QueueError> {
        self.send(Request::Reschedule {
            id,
            attempts,
            next_attempt,
        })
        .await
    }

    /// Pending entries of `adapter` with an id above `after`, oldest first,
    /// at most `limit`: how a dispatcher reads a backlog that did not fit in
    /// memory. Sees everything committed before the call.
    pub async fn load_pending(
        &self,
        adapter: &str,
        after: Option<EntryId>,
        limit: usize,
    ) -> Result<Vec<Entry>, QueueError> {
        let (reply, answer) = oneshot::channel();
        self.send(Request::Load {
            adapter: adapter.to_owned(),
            after,
            limit,
            reply,
        })
        .await?;
        answer.await.map_err(|_| QueueError::Closed)?
    }

    /// Runs the periodic pruning now (de-duplication ids past the horizon,
    /// room history past `history_keep` and `history_max_age`), after every
    /// request sent before it is on disk.
    pub async fn prune(&self) -> Result<(), QueueError> {
        let (reply, answer) = oneshot::channel();
        self.send(Request::Prune(reply)).await?;
        answer.await.map_err(|_| QueueError::Closed)?
    }

    /// The SQLite file of the queue.
    pub fn path(&self) -> &std::path::Path {
        &self.shared.path
    }

    /// Resolves once every request sent before it is on disk.
    pub async fn flush(&self) -> Result<(), QueueError> {
        let (reply, answer) = oneshot::channel();
        self.send(Request::Flush(reply)).await?;
        answer.await.map_err(|_| QueueError::Closed)?
    }

    /// Entries pending (written and not completed).
    pub fn depth(&self) -> u64 {
        self.shared.depth.load(Ordering::Relaxed)
    }

    /// Counters since open.
    pub fn stats(&self) -> QueueStats {
        let s = &self.shared.stats;
        QueueStats {
            commits: s.commits.load(Ordering::Relaxed),
            failed_commits: s.failed_commits.load(Ordering::Relaxed),
            rows_written: s.rows_written.load(Ordering::Relaxed),
            completed: s.completed.load(Ordering::Relaxed),
            rescheduled: s.rescheduled.load(Ordering::Relaxed),
            duplicates: s.duplicates.load(Ordering::Relaxed),
        }
    }

    /// Writes everything sent before, stops the writer and closes the
    /// database. Requests from other clones after this answer
    /// [`QueueError::Closed`].
    pub async fn close(self) -> Result<(), QueueError> {
        let (reply, answer) = oneshot::channel();
        self.send(Request::Close(reply)).await?;
        answer.await.map_err(|_| QueueError::Closed)?
    }

    async fn send(&self, request: Request) -> Result<(), QueueError> {
        self.tx.send(request).await.map_err(|_| QueueError::Closed)
    }
}

/// The ids of `queue_seen` within `horizon` (older ones are pruned
/// first), oldest first, at most `cap` of them, and whether that is all:
/// the writer's in-memory ids, which then answer every duplicate without
/// the database.
async fn load_seen(
    conn: &mut SqliteConnection,
    horizon: Duration,
    cap: usize,
) -> Result<(Vec<(i64, MessageId)>, bool), sqlx::Error> {
    let now = Timestamp::now().unix_micros;
    let cutoff = now.saturating_sub(i64::try_from(horizon.as_micros()).unwrap_or(i64::MAX));
    sqlx::query("DELETE FROM queue_seen WHERE first_seen < ?")
        .bind(cutoff)
        .execute(&mut *conn)
        .await?;
    let limit = i64::try_from(cap).unwrap_or(i64::MAX).saturating_add(1);
    let rows = sqlx::query(
        "SELECT message_id, first_seen FROM queue_seen ORDER BY first_seen DESC LIMIT ?",
    )
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let whole = rows.len() <= cap;
    let mut seen = Vec::with_capacity(rows.len().min(cap));
    for row in rows.into_iter().take(cap) {
        let id: String = row.try_get("message_id")?;
        seen.push((row.try_get("first_seen")?, MessageId::from(id.as_str())));
    }
    seen.reverse();
    Ok((seen, whole))
}

/// Pending entries, oldest first: all of them, or those of one adapter
/// after an id, at most `limit`.
async fn load_pending(
    conn: &mut SqliteConnection,
    adapter: Option<&str>,
    after: Option<EntryId>,
    limit: Option<usize>,
) -> Result<Vec<Entry>, QueueError> {
    let limit = limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let after = after.map_or(0, |a| a.0);
    let rows = match adapter {
        Some(adapter) => {
            sqlx::query(
                "SELECT id, adapter, attempts, next_attempt, enqueued_at, message \
                 FROM queue_entry WHERE id > $1 AND adapter = $2 ORDER BY id LIMIT $3",
            )
            .bind(after)
            .bind(adapter)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?
        }
        None => {
            sqlx::query(
                "SELECT id, adapter, attempts, next_attempt, enqueued_at, message \
                 FROM queue_entry WHERE id > $1 ORDER BY id LIMIT $2",
            )
            .bind(after)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id = EntryId(row.try_get("id")?);
        let blob: Vec<u8> = row.try_get("message")?;
        let message = codec::decode(&blob).map_err(|e| QueueError::Decode {
            id,
            source: Box::new(e),
        })?;
        let attempts: i64 = row.try_get("attempts")?;
        out.push(Entry {
            id,
            adapter: row.try_get("adapter")?,
            message,
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            next_attempt: Timestamp {
                unix_micros: row.try_get("next_attempt")?,
            },
            enqueued_at: Timestamp {
                unix_micros: row.try_get("enqueued_at")?,
            },
        });
    }
    Ok(out)
}
