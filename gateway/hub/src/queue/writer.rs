//! The writer task: the only user of the queue's SQLite connection.
//!
//! It takes every request waiting in the channel (up to `max_batch`),
//! writes them in one transaction, hands the new entries out (staged),
//! commits once, and only then answers the callers of the group. See the
//! module doc of [`crate::queue`].

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sqlx::sqlite::SqliteConnection;
use sqlx::{AssertSqlSafe, Connection, Row};
use tokio::sync::{mpsc, oneshot};

use cpimgate_model::MessageId;
use cpimgate_model::time::Timestamp;

use super::history::{self, HistoryRow};
use super::{CommitHook, EntryId, QueueError, Shared};

/// One destination's copy of a message, serialized by the caller so that
/// the encoding work is spread over the callers' tasks.
#[derive(Debug)]
pub(super) struct NewRow {
    pub adapter: String,
    pub expires: Option<Timestamp>,
    pub blob: Vec<u8>,
}

/// What an accepted enqueue learns: its rows got the ids
/// `first_id .. first_id + rows`, all stamped `at`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Accepted {
    pub first_id: i64,
    pub at: Timestamp,
}

pub(super) type Reply<T> = oneshot::Sender<Result<T, QueueError>>;

/// A backlog read waiting for its group's commit: adapter, after, limit.
type LoadRequest = (String, Option<EntryId>, usize, Reply<Vec<super::Entry>>);

#[derive(Debug)]
pub(super) enum Request {
    Enqueue {
        id: MessageId,
        rows: Vec<NewRow>,
        /// The room history row, written only if the message is new.
        history: Option<HistoryRow>,
        /// Told the entries once they are written, before the commit;
        /// dropped unsent for a duplicate or a group that failed first.
        staged: oneshot::Sender<Accepted>,
        reply: Reply<Accepted>,
    },
    Complete(EntryId),
    Reschedule {
        id: EntryId,
        attempts: u32,
        next_attempt: Timestamp,
    },
    /// Answered once everything sent before it is on disk.
    Flush(Reply<()>),
    /// Pending entries of one adapter after an id, oldest first: read after
    /// the group's commit, so it sees everything sent before it.
    Load {
        adapter: String,
        after: Option<EntryId>,
        limit: usize,
        reply: Reply<Vec<super::Entry>>,
    },
    /// Runs the prune step after the group's commit.
    Prune(Reply<()>),
    /// Like `Flush`, then the writer stops.
    Close(Reply<()>),
}

/// Rows per multi-row statement: a group is cut greedily into these sizes,
/// so that each size is prepared once and reused from the statement cache
/// (a free row count would prepare a new statement per group).
const CHUNKS: [usize; 8] = [128, 64, 32, 16, 8, 4, 2, 1];

pub(super) fn chunked(mut n: usize) -> impl Iterator<Item = (usize, usize)> {
    std::iter::from_fn(move || {
        if n == 0 {
            return None;
        }
        let i = CHUNKS.iter().position(|&c| c <= n)?;
        n -= CHUNKS[i];
        Some((i, CHUNKS[i]))
    })
}

pub(super) fn repeat_values(row: &str, n: usize) -> String {
    let mut s = String::with_capacity(n * (row.len() + 2));
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(row);
    }
    s
}

/// The multi-row statements, one per entry of [`CHUNKS`].
struct Statements {
    insert_entry: Vec<String>,
    insert_seen: Vec<String>,
    delete_entry: Vec<String>,
    insert_history: Vec<String>,
}

impl Statements {
    fn new() -> Self {
        let make = |f: &dyn Fn(usize) -> String| CHUNKS.iter().map(|&n| f(n)).collect();
        Statements {
            insert_entry: make(&|n| {
                format!(
                    "INSERT INTO queue_entry \
                     (id, message_id, adapter, enqueued_at, next_attempt, expires, message) \
                     VALUES {}",
                    repeat_values("(?, ?, ?, ?, ?, ?, ?)", n)
                )
            }),
            insert_seen: make(&|n| {
                format!(
                    "INSERT INTO queue_seen (message_id, first_seen) VALUES {} \
                     ON CONFLICT DO NOTHING RETURNING message_id",
                    repeat_values("(?, ?)", n)
                )
            }),
            delete_entry: make(&|n| {
                format!(
                    "DELETE FROM queue_entry WHERE id IN ({})",
                    repeat_values("?", n)
                )
            }),
            insert_history: make(&history::insert_statement),
        }
    }
}

struct PendingEnqueue {
    id: MessageId,
    rows: Vec<NewRow>,
    history: Option<HistoryRow>,
    staged: Option<oneshot::Sender<Accepted>>,
    reply: Reply<Accepted>,
}

/// The parts of one group, sorted by kind.
#[derive(Default)]
struct Group {
    enqueues: Vec<PendingEnqueue>,
    /// The ids of `enqueues`.
    ids: HashSet<MessageId>,
    /// An id of `enqueues` is among the recently accepted ones as far as
    /// their fingerprints tell: the database decides which are new.
    maybe_seen: bool,
    /// Ids that appear earlier in this very group: duplicates only if the
    /// group commits.
    group_duplicates: Vec<Reply<Accepted>>,
    completes: Vec<i64>,
    reschedules: Vec<(i64, u32, i64)>,
    flushes: Vec<Reply<()>>,
    loads: Vec<LoadRequest>,
    prunes: Vec<Reply<()>>,
    requests: usize,
}

/// What a committed group did, for the answers and the counters.
struct Written {
    /// Per enqueue of the group: `Some(first_id)` if written, `None` if its
    /// id was found in `queue_seen` (accepted before: a duplicate).
    outcomes: Vec<Option<i64>>,
    rows: u64,
    deleted: u64,
    rescheduled: u64,
}

pub(super) struct Settings {
    pub max_batch: usize,
    pub batch_delay: Duration,
    pub dedup_horizon: Duration,
    pub prune_interval: Duration,
    pub seen_in_memory: usize,
    pub history_keep: usize,
    pub history_max_age: Duration,
    pub before_commit: Option<CommitHook>,
}

/// A bounded set of the fingerprints of recently accepted ids, in
/// acceptance order.
///
/// A fingerprint is a keyed 64-bit hash of the id. Measured for 100,000
/// ids of ~55 bytes (the default bound): 29 bytes an id in memory, 2.8 MB,
/// where the ids themselves (a copy in the set and one in the order) took
/// 224 bytes an id, 21.4 MB. An id whose fingerprint
/// is absent was not accepted recently; one whose fingerprint is present
/// probably was, and the database decides (`queue_seen`).
///
/// It is *complete* while it holds the fingerprint of every id of
/// `queue_seen` (it was loaded whole when the queue opened and none has
/// been pushed out by the bound since): an id whose fingerprint it lacks
/// is then new for certain, without asking the database, and a group's
/// entries can be staged before any SQL runs.
struct RecentIds {
    ids: HashSet<u64>,
    order: VecDeque<(i64, u64)>,
    cap: usize,
    complete: bool,
    keys: RandomState,
}

impl RecentIds {
    fn new(cap: usize) -> Self {
        RecentIds {
            ids: HashSet::new(),
            order: VecDeque::new(),
            cap,
            complete: false,
            keys: RandomState::new(),
        }
    }

    /// The set loaded with `loaded` (oldest first), complete when that
    /// was every id of `queue_seen` and it fits.
    fn loaded(cap: usize, loaded: Vec<(i64, MessageId)>, whole: bool) -> Self {
        let mut r = RecentIds::new(cap);
        r.complete = whole && cap > 0;
        for (at, id) in loaded {
            r.insert(&id, at);
        }
        r
    }

    fn fingerprint(&self, id: &MessageId) -> u64 {
        self.keys.hash_one(id.as_str())
    }

    /// Whether `id` was probably accepted recently (certainly not, when
    /// this is false).
    fn contains(&self, id: &MessageId) -> bool {
        self.ids.contains(&self.fingerprint(id))
    }

    fn insert(&mut self, id: &MessageId, at: i64) {
        if self.cap == 0 {
            return;
        }
        let f = self.fingerprint(id);
        if !self.ids.insert(f) {
            // Another id with the same fingerprint (the ids given here are
            // new ones): forgetting that one would forget this one too, so
            // from now on the database must be asked.
            self.complete = false;
            return;
        }
        self.order.push_back((at, f));
        if self.order.len() > self.cap {
            // An id still in `queue_seen` is forgotten here: from now on
            // the database must be asked.
            self.complete = false;
            self.pop();
        }
    }

    /// Forgets ids accepted before `cutoff`. Acceptance times grow along
    /// `order` (one clock, one writer), so the old ones are at the front.
    fn forget_before(&mut self, cutoff: i64) {
        while self.order.front().is_some_and(|(t, _)| *t < cutoff) {
            self.pop();
        }
    }

    fn pop(&mut self) {
        if let Some((_, f)) = self.order.pop_front() {
            self.ids.remove(&f);
        }
    }
}

pub(super) struct Writer {
    conn: SqliteConnection,
    rx: mpsc::Receiver<Request>,
    shared: Arc<Shared>,
    settings: Settings,
    next_id: i64,
    /// The most recently accepted ids: answers most duplicates without
    /// touching the database; `queue_seen` answers the rest (ids accepted
    /// before a restart, or pushed out of this bounded set).
    seen: RecentIds,
    sql: Statements,
}

impl Writer {
    /// `seen`: the ids of `queue_seen`, oldest first, and whether that is
    /// all of them.
    pub(super) fn new(
        conn: SqliteConnection,
        rx: mpsc::Receiver<Request>,
        shared: Arc<Shared>,
        settings: Settings,
        next_id: i64,
        seen: (Vec<(i64, MessageId)>, bool),
    ) -> Self {
        Writer {
            seen: RecentIds::loaded(settings.seen_in_memory, seen.0, seen.1),
            conn,
            rx,
            shared,
            settings,
            next_id,
            sql: Statements::new(),
        }
    }

    pub(super) async fn run(mut self) {
        // The first prune one interval after the start, not at once: a
        // write of its own right at the start would wait behind whoever
        // holds the database's write lock then (the mapping table, a
        // second process), and the first messages with it.
        let every = self.settings.prune_interval;
        let mut prune = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let close = loop {
            let first = tokio::select! {
                biased;
                r = self.rx.recv() => r,
                _ = prune.tick() => {
                    // Failures are logged; the next tick tries again.
                    let _ = self.prune().await;
                    continue;
                }
            };
            let Some(first) = first else {
                // Every handle is gone and everything they sent is written.
                break None;
            };
            let (group, close) = self.gather(first).await;
            self.commit(group).await;
            if close.is_some() {
                break close;
            }
        };
        // Requests that raced with close() are refused: dropping their reply
        // senders answers `Closed`.
        self.rx.close();
        while self.rx.try_recv().is_ok() {}
        let result = self.conn.close().await.map_err(QueueError::from);
        if let Err(e) = &result {
            tracing::warn!(error = %e, "closing the queue database failed");
        }
        if let Some(reply) = close {
            let _ = reply.send(result);
        }
    }

    /// Takes `first` and whatever else is waiting, up to `max_batch`
    /// requests, waiting at most `batch_delay` for more.
    async fn gather(&mut self, first: Request) -> (Group, Option<Reply<()>>) {
        let mut group = Group::default();
        if let Some(close) = self.sort(&mut group, first) {
            return (group, Some(close));
        }
        let deadline = tokio::time::Instant::now() + self.settings.batch_delay;
        while group.requests < self.settings.max_batch {
            let next = match self.rx.try_recv() {
                Ok(r) => r,
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    if self.settings.batch_delay.is_zero() {
                        break;
                    }
                    match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                        Ok(Some(r)) => r,
                        Ok(None) | Err(_) => break,
                    }
                }
            };
            if let Some(close) = self.sort(&mut group, next) {
                return (group, Some(close));
            }
        }
        (group, None)
    }

    fn sort(&self, group: &mut Group, request: Request) -> Option<Reply<()>> {
        group.requests += 1;
        match request {
            // A duplicate's `staged` sender is dropped here: it is never
            // handed to a dispatcher.
            Request::Enqueue {
                id,
                rows,
                history,
                staged,
                reply,
            } => {
                if group.ids.contains(&id) {
                    group.group_duplicates.push(reply);
                } else {
                    group.maybe_seen |= self.seen.contains(&id);
                    group.ids.insert(id.clone());
                    group.enqueues.push(PendingEnqueue {
                        id,
                        rows,
                        history,
                        staged: Some(staged),
                        reply,
                    });
                }
            }
            Request::Complete(id) => group.completes.push(id.0),
            Request::Reschedule {
                id,
                attempts,
                next_attempt,
            } => group
                .reschedules
                .push((id.0, attempts, next_attempt.unix_micros)),
            Request::Flush(reply) => group.flushes.push(reply),
            Request::Load {
                adapter,
                after,
                limit,
                reply,
            } => group.loads.push((adapter, after, limit, reply)),
            Request::Prune(reply) => group.prunes.push(reply),
            Request::Close(reply) => return Some(reply),
        }
        None
    }

    async fn commit(&mut self, mut group: Group) {
        let now = Timestamp::now();
        let started = Instant::now();
        let result = self.write(&mut group, now).await;
        let elapsed = started.elapsed();
        let s = &self.shared.stats;
        let written = match result {
            Ok(w) => w,
            Err(e) => {
                // `next_id` stays where it is: the group's ids may have been
                // staged and be in a dispatcher's hands, and a late
                // completion of one of them must not remove a later entry.
                s.failed_commits.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("cpimgate_queue_commit_failures_total").increment(1);
                tracing::error!(error = %e, requests = group.requests, "queue group commit failed");
                let e = Arc::new(e);
                for p in group.enqueues {
                    let _ = p.reply.send(Err(QueueError::Store(e.clone())));
                }
                for reply in group.group_duplicates {
                    let _ = reply.send(Err(QueueError::Store(e.clone())));
                }
                for reply in group.flushes {
                    let _ = reply.send(Err(QueueError::Store(e.clone())));
                }
                self.answer_loads(group.loads).await;
                self.answer_prunes(group.prunes).await;
                return;
            }
        };

        s.commits.fetch_add(1, Ordering::Relaxed);
        s.rows_written.fetch_add(written.rows, Ordering::Relaxed);
        s.completed.fetch_add(written.deleted, Ordering::Relaxed);
        s.rescheduled
            .fetch_add(written.rescheduled, Ordering::Relaxed);
        // Only the writer changes the depth once the queue is open.
        let depth = self
            .shared
            .depth
            .load(Ordering::Relaxed)
            .saturating_add(written.rows)
            .saturating_sub(written.deleted);
        self.shared.depth.store(depth, Ordering::Relaxed);
        metrics::counter!("cpimgate_queue_commits_total").increment(1);
        metrics::histogram!("cpimgate_queue_commit_seconds").record(elapsed.as_secs_f64());
        metrics::histogram!("cpimgate_queue_batch_size").record(group.requests as f64);
        metrics::gauge!("cpimgate_queue_depth").set(depth as f64);

        let mut duplicates = 0u64;
        for (p, outcome) in group.enqueues.into_iter().zip(written.outcomes) {
            match outcome {
                Some(first_id) => {
                    self.seen.insert(&p.id, now.unix_micros);
                    let _ = p.reply.send(Ok(Accepted { first_id, at: now }));
                }
                None => {
                    duplicates += 1;
                    let _ = p.reply.send(Err(QueueError::Duplicate));
                }
            }
        }
        for reply in group.group_duplicates {
            duplicates += 1;
            let _ = reply.send(Err(QueueError::Duplicate));
        }
        if duplicates > 0 {
            s.duplicates.fetch_add(duplicates, Ordering::Relaxed);
            metrics::counter!("cpimgate_queue_duplicates_total").increment(duplicates);
        }
        for reply in group.flushes {
            let _ = reply.send(Ok(()));
        }
        self.answer_loads(group.loads).await;
        self.answer_prunes(group.prunes).await;
    }

    async fn answer_prunes(&mut self, prunes: Vec<Reply<()>>) {
        if prunes.is_empty() {
            return;
        }
        let result = self.prune().await;
        for reply in prunes {
            let _ = reply.send(result.clone().map_err(QueueError::Store));
        }
    }

    async fn answer_loads(&mut self, loads: Vec<LoadRequest>) {
        for (adapter, after, limit, reply) in loads {
            let result =
                super::load_pending(&mut self.conn, Some(&adapter), after, Some(limit)).await;
            let _ = reply.send(result);
        }
    }

    /// Writes the group in one transaction. On error nothing of the group
    /// is on disk (the transaction is rolled back when dropped).
    async fn write(&mut self, group: &mut Group, now: Timestamp) -> Result<Written, sqlx::Error> {
        let mut written = Written {
            outcomes: Vec::with_capacity(group.enqueues.len()),
            rows: 0,
            deleted: 0,
            rescheduled: 0,
        };
        if group.enqueues.is_empty() && group.completes.is_empty() && group.reschedules.is_empty() {
            // Only flushes: everything before them is already committed.
            return Ok(written);
        }
        // With every accepted id in memory, the group's new messages are
        // known before any SQL: their entries are staged at once, and the
        // delivery does not wait for the inserts either.
        let early = self.seen.complete && !group.maybe_seen;
        let mut rows = Vec::new();
        let mut history_rows = Vec::new();
        if early {
            assign(
                &mut self.next_id,
                group,
                |_| true,
                &mut written,
                &mut rows,
                &mut history_rows,
            );
            stage(group, &written, now);
        }

        // IMMEDIATE takes the write lock up front: a deferred transaction
        // that reads first could fail with SQLITE_BUSY on upgrade when the
        // mapping table writes to the same file.
        let mut tx = self.conn.begin_with("BEGIN IMMEDIATE").await?;

        // queue_seen first: its primary key decides which enqueues are new.
        let mut fresh: HashSet<String> = HashSet::with_capacity(group.enqueues.len());
        let mut ids = group.enqueues.iter().map(|e| e.id.0.clone());
        for (i, n) in chunked(group.enqueues.len()) {
            let mut q = sqlx::query(AssertSqlSafe(self.sql.insert_seen[i].as_str()));
            for id in ids.by_ref().take(n) {
                q = q.bind(id).bind(now.unix_micros);
            }
            for row in q.fetch_all(&mut *tx).await? {
                fresh.insert(row.try_get(0)?);
            }
        }

        if !early {
            assign(
                &mut self.next_id,
                group,
                |id| fresh.contains(id.as_str()),
                &mut written,
                &mut rows,
                &mut history_rows,
            );
        } else if fresh.len() != group.enqueues.len() {
            // Cannot happen while the in-memory ids are complete; if it
            // does, the entries are out already and are written anyway.
            tracing::warn!(
                new = fresh.len(),
                enqueues = group.enqueues.len(),
                "queue: ids taken as new were in queue_seen"
            );
        }
        written.rows = rows.len() as u64;
        let mut rows = rows.into_iter();
        for (i, n) in chunked(written.rows as usize) {
            let mut q = sqlx::query(AssertSqlSafe(self.sql.insert_entry[i].as_str()));
            for (id, message_id, r) in rows.by_ref().take(n) {
                q = q
                    .bind(id)
                    .bind(message_id)
                    .bind(r.adapter)
                    .bind(now.unix_micros)
                    .bind(now.unix_micros)
                    .bind(r.expires.map(|t| t.unix_micros))
                    .bind(r.blob);
            }
            q.execute(&mut *tx).await?;
        }

        // Staged (unless it was already): every new entry is written and
        // every duplicate decided, so the hub may deliver now, while the
        // rest of the group and the fsync run. Senders are answered only
        // after the commit.
        if !early {
            stage(group, &written, now);
        }

        history::insert(&mut tx, &self.sql.insert_history, history_rows).await?;

        // Reschedules before deletes: if both name one entry, it is gone.
        for &(id, attempts, next_attempt) in &group.reschedules {
            let done =
                sqlx::query("UPDATE queue_entry SET attempts = ?, next_attempt = ? WHERE id = ?")
                    .bind(i64::from(attempts))
                    .bind(next_attempt)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            written.rescheduled += done.rows_affected();
        }
        let mut deletes = group.completes.iter();
        for (i, n) in chunked(group.completes.len()) {
            let mut q = sqlx::query(AssertSqlSafe(self.sql.delete_entry[i].as_str()));
            for &id in deletes.by_ref().take(n) {
                q = q.bind(id);
            }
            written.deleted += q.execute(&mut *tx).await?.rows_affected();
        }

        if let Some(hook) = &self.settings.before_commit {
            hook.run()
                .await
                .map_err(|reason| sqlx::Error::Io(std::io::Error::other(reason)))?;
        }
        tx.commit().await?;
        Ok(written)
    }

    /// Forgets ids accepted longer ago than the de-duplication horizon, and
    /// room history beyond its limits.
    async fn prune(&mut self) -> Result<(), Arc<sqlx::Error>> {
        let now = Timestamp::now().unix_micros;
        let horizon = i64::try_from(self.settings.dedup_horizon.as_micros()).unwrap_or(i64::MAX);
        let cutoff = now.saturating_sub(horizon);
        self.seen.forget_before(cutoff);
        let mut result = Ok(());
        match sqlx::query("DELETE FROM queue_seen WHERE first_seen < ?")
            .bind(cutoff)
            .execute(&mut self.conn)
            .await
        {
            Ok(done) if done.rows_affected() > 0 => {
                tracing::debug!(pruned = done.rows_affected(), "pruned de-duplication ids");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "pruning de-duplication ids failed");
                result = Err(Arc::new(e));
            }
        }
        let max_age = i64::try_from(self.settings.history_max_age.as_micros()).unwrap_or(i64::MAX);
        match history::prune(
            &mut self.conn,
            self.settings.history_keep,
            now.saturating_sub(max_age),
        )
        .await
        {
            Ok(0) => {}
            Ok(n) => tracing::debug!(pruned = n, "pruned room history"),
            Err(e) => {
                tracing::warn!(error = %e, "pruning room history failed");
                result = result.and(Err(Arc::new(e)));
            }
        }
        result
    }
}

/// Gives each new enqueue of `group` (by `is_new`) its entry ids, counted
/// on from `next_id`, and rows; an enqueue seen before gets none and is
/// never staged.
fn assign(
    next_id: &mut i64,
    group: &mut Group,
    is_new: impl Fn(&MessageId) -> bool,
    written: &mut Written,
    rows: &mut Vec<(i64, String, NewRow)>,
    history_rows: &mut Vec<(String, HistoryRow)>,
) {
    for e in &mut group.enqueues {
        if is_new(&e.id) {
            written.outcomes.push(Some(*next_id));
            for r in std::mem::take(&mut e.rows) {
                rows.push((*next_id, e.id.0.clone(), r));
                *next_id += 1;
            }
            if let Some(h) = e.history.take() {
                history_rows.push((e.id.0.clone(), h));
            }
        } else {
            e.staged = None;
            written.outcomes.push(None);
        }
    }
}

/// Hands each new enqueue of `group` its entries: the hub delivers them
/// from now on.
fn stage(group: &mut Group, written: &Written, now: Timestamp) {
    for (e, outcome) in group.enqueues.iter_mut().zip(&written.outcomes) {
        if let (Some(first_id), Some(staged)) = (outcome, e.staged.take()) {
            let _ = staged.send(Accepted {
                first_id: *first_id,
                at: now,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_ids_are_bounded_and_forget_the_oldest() {
        let mut r = RecentIds::new(3);
        for (i, id) in ["a", "b", "c", "d"].into_iter().enumerate() {
            r.insert(&MessageId::from(id), i as i64);
        }
        assert!(!r.contains(&MessageId::from("a")));
        assert!(r.contains(&MessageId::from("b")));
        assert!(!r.complete, "never loaded whole");
        r.forget_before(3);
        assert!(!r.contains(&MessageId::from("c")));
        assert!(r.contains(&MessageId::from("d")));
    }

    #[test]
    fn loaded_ids_are_complete_until_the_bound_pushes_one_out() {
        let ids = |names: &[&str]| {
            names
                .iter()
                .enumerate()
                .map(|(i, n)| (i as i64, MessageId::from(*n)))
                .collect::<Vec<_>>()
        };
        let mut r = RecentIds::loaded(3, ids(&["a", "b"]), true);
        assert!(r.complete);
        r.insert(&MessageId::from("c"), 5);
        r.forget_before(1);
        assert!(r.complete, "forgetting by age keeps it whole");
        assert!(!r.contains(&MessageId::from("a")));
        r.insert(&MessageId::from("d"), 6);
        r.insert(&MessageId::from("e"), 7);
        assert!(!r.complete, "b was pushed out while still in queue_seen");
        assert!(!RecentIds::loaded(3, ids(&["a"]), false).complete);
        assert!(!RecentIds::loaded(0, Vec::new(), true).complete);
    }

    #[test]
    fn a_fingerprint_met_twice_makes_the_set_incomplete() {
        // Two ids with one fingerprint cannot be made on purpose (the
        // hash is keyed); inserting one id twice takes the same branch.
        let mut r = RecentIds::loaded(8, Vec::new(), true);
        assert!(r.complete);
        r.insert(&MessageId::from("a"), 1);
        assert!(r.complete);
        r.insert(&MessageId::from("a"), 2);
        assert!(!r.complete, "forgetting one would forget the other");
        assert_eq!(r.order.len(), 1);
    }

    #[test]
    fn chunks_cover_any_count_with_few_statements() {
        for n in 0..1000 {
            let parts: Vec<_> = chunked(n).collect();
            assert_eq!(parts.iter().map(|p| p.1).sum::<usize>(), n);
            assert!(parts.len() <= n / 128 + CHUNKS.len());
        }
    }
}
