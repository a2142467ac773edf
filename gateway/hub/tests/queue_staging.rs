//! Staging: the queue hands out a group's entries once they are written,
//! before the commit, and answers only after it. Duplicates are never
//! handed out; a failed commit is answered with an error; a completion or
//! reschedule of an entry whose insert is not committed yet is written
//! after it; a backlog read sees a staged entry once it is committed.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{CommitGate, WAIT, write_lock};
use cpimgate::queue::{Queue, QueueConfig, QueueError};
use cpimgate_model::time::Timestamp;
use cpimgate_model::{Message, Origin, World};
use futures::FutureExt;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use tokio::time::timeout;

fn text(n: usize) -> Message {
    let origin = Origin {
        world: World::Irc,
        adapter: "irc0".into(),
        native_id: None,
    };
    Message::text(
        origin,
        "<irc://irc.example.org/alice,isnick>".parse().unwrap(),
        "<sip:bob@biloxi.example.com>".parse().unwrap(),
        &format!("message {n}"),
    )
}

fn two_copies(m: &Message) -> Vec<(String, Message)> {
    vec![("xmpp0".into(), m.clone()), ("sip0".into(), m.clone())]
}

async fn open(path: &Path, gate: &CommitGate) -> Queue {
    let (q, _) = Queue::open(QueueConfig {
        before_commit: Some(gate.hook()),
        ..QueueConfig::new(path)
    })
    .await
    .unwrap();
    q
}

/// A second connection: it sees only committed rows.
async fn reader(path: &Path) -> SqlitePool {
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(SqliteConnectOptions::new().filename(path).read_only(true))
        .await
        .unwrap()
}

async fn rows_on_disk(reader: &SqlitePool) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM queue_entry")
        .fetch_one(reader)
        .await
        .unwrap()
}

#[tokio::test]
async fn entries_are_staged_before_the_commit_and_answered_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let gate = CommitGate::closed();
    let q = open(&path, &gate).await;
    let reader = reader(&path).await;

    let m = text(0);
    let pending = q.submit(&m.id.clone(), two_copies(&m)).await.unwrap();
    // The commit is held: staging must not wait for it.
    let staged = timeout(WAIT, pending.staged())
        .await
        .expect("the entries were not handed out while the commit was held");
    assert_eq!(staged.entries.len(), 2);
    assert_eq!(staged.entries[0].adapter, "xmpp0");
    assert_eq!(staged.entries[1].adapter, "sip0");
    assert_eq!(staged.entries[1].id.0, staged.entries[0].id.0 + 1);
    assert_eq!(staged.entries[0].message.id, m.id);

    // Not on disk yet, so not answered yet.
    assert_eq!(rows_on_disk(&reader).await, 0);
    let mut committed = staged.committed;
    assert!((&mut committed).now_or_never().is_none());

    gate.open();
    timeout(WAIT, committed).await.unwrap().unwrap();
    assert_eq!(rows_on_disk(&reader).await, 2);
    reader.close().await;
    q.close().await.unwrap();
}

#[tokio::test]
async fn a_duplicate_is_never_staged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let gate = CommitGate::opened();
    let q = open(&path, &gate).await;

    // Seen in an earlier group (the in-memory ids answer).
    let m = text(0);
    q.enqueue(&m.id.clone(), two_copies(&m)).await.unwrap();
    let again = q.submit(&m.id.clone(), two_copies(&m)).await.unwrap();
    let staged = again.staged().await;
    assert!(staged.entries.is_empty());
    assert!(matches!(staged.committed.await, Err(QueueError::Duplicate)));

    // Twice while the first copy's commit is still to come (one group, or
    // the next one): only the first copy is handed out.
    gate.close();
    let d = text(1);
    let first = q.submit(&d.id.clone(), two_copies(&d)).await.unwrap();
    let second = q.submit(&d.id.clone(), two_copies(&d)).await.unwrap();
    let first = timeout(WAIT, first.staged()).await.unwrap();
    assert_eq!(first.entries.len(), 2);
    gate.open();
    let second = timeout(WAIT, second.staged()).await.unwrap();
    assert!(second.entries.is_empty());
    first.committed.await.unwrap();
    assert!(matches!(second.committed.await, Err(QueueError::Duplicate)));
    q.close().await.unwrap();

    // After a restart the id is read back from the table into memory:
    // still a duplicate.
    let q = open(&path, &gate).await;
    let staged = q
        .submit(&m.id.clone(), two_copies(&m))
        .await
        .unwrap()
        .staged()
        .await;
    assert!(staged.entries.is_empty());
    assert!(matches!(staged.committed.await, Err(QueueError::Duplicate)));
    assert_eq!(q.stats().duplicates, 1);
    q.close().await.unwrap();
}

#[tokio::test]
async fn a_failed_commit_is_answered_with_an_error_after_its_entries_were_staged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let gate = CommitGate::opened();
    gate.set_failing(true);
    let q = open(&path, &gate).await;

    let m = text(0);
    let staged = q
        .submit(&m.id.clone(), two_copies(&m))
        .await
        .unwrap()
        .staged()
        .await;
    // Handed out (a dispatcher may deliver these) ...
    assert_eq!(staged.entries.len(), 2);
    let failed: Vec<_> = staged.entries.iter().map(|e| e.id).collect();
    // ... and then the sender hears that it was not stored.
    assert!(matches!(staged.committed.await, Err(QueueError::Store(_))));
    assert_eq!(q.stats().failed_commits, 1);

    // The sender retries: accepted under new ids (the failed group's ids
    // are not handed out again), so a late completion of a failed entry
    // cannot remove the retried one.
    gate.set_failing(false);
    let retried = q.enqueue(&m.id.clone(), two_copies(&m)).await.unwrap();
    assert!(retried.iter().all(|e| !failed.contains(&e.id)));
    for id in failed {
        q.complete(id).await.unwrap();
    }
    q.flush().await.unwrap();
    assert_eq!(q.depth(), 2);
    q.close().await.unwrap();

    let (q, pending) = Queue::open(QueueConfig::new(&path)).await.unwrap();
    assert_eq!(pending, retried);
    q.close().await.unwrap();
}

#[tokio::test]
async fn completion_and_reschedule_of_an_uncommitted_entry_are_written_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let gate = CommitGate::closed();
    let q = open(&path, &gate).await;

    let m = text(0);
    let staged = q
        .submit(&m.id.clone(), two_copies(&m))
        .await
        .unwrap()
        .staged()
        .await;
    let [delivered, retried] = [staged.entries[0].clone(), staged.entries[1].clone()];
    // The insert is not committed: a dispatcher that delivered one copy and
    // failed the other sends these now.
    let next_attempt = Timestamp::now().plus(Duration::from_secs(60));
    q.complete(delivered.id).await.unwrap();
    q.reschedule(retried.id, 3, next_attempt).await.unwrap();

    gate.open();
    staged.committed.await.unwrap();
    q.flush().await.unwrap();
    assert_eq!(q.depth(), 1);
    assert_eq!(q.stats().completed, 1);
    assert_eq!(q.stats().rescheduled, 1);
    q.close().await.unwrap();

    let (q, pending) = Queue::open(QueueConfig::new(&path)).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, retried.id);
    assert_eq!(pending[0].attempts, 3);
    assert_eq!(pending[0].next_attempt, next_attempt);
    q.close().await.unwrap();
}

#[tokio::test]
async fn a_backlog_read_sees_a_staged_entry_once_it_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let gate = CommitGate::closed();
    let q = open(&path, &gate).await;

    let m = text(0);
    let staged = q
        .submit(&m.id.clone(), two_copies(&m))
        .await
        .unwrap()
        .staged()
        .await;
    // A dispatcher whose channel was full reads the backlog while the
    // entry's commit is held: the read comes after the insert, so it
    // answers after the commit, with the entry.
    let mut load = Box::pin(q.load_pending("sip0", None, 10));
    // The first poll hands the request to the writer; no answer yet.
    assert!((&mut load).now_or_never().is_none());
    gate.open();
    let loaded = timeout(WAIT, load).await.unwrap().unwrap();
    staged.committed.await.unwrap();
    assert_eq!(loaded, vec![staged.entries[1].clone()]);
    q.close().await.unwrap();
}

#[tokio::test]
async fn with_every_seen_id_in_memory_entries_are_staged_before_any_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let gate = CommitGate::opened();
    let q = open(&path, &gate).await;
    let first = text(0);
    q.enqueue(&first.id.clone(), two_copies(&first))
        .await
        .unwrap();
    q.close().await.unwrap();
    // Reopened: the one id seen is read back, the set is whole.
    let q = open(&path, &gate).await;

    let lock = write_lock(&path).await;
    let m = text(1);
    let pending = q.submit(&m.id.clone(), two_copies(&m)).await.unwrap();
    let staged = timeout(WAIT, pending.staged())
        .await
        .expect("the entries waited for the database's write lock");
    assert_eq!(staged.entries.len(), 2);
    let mut committed = staged.committed;
    assert!(
        (&mut committed).now_or_never().is_none(),
        "answered before it was written"
    );
    drop(lock);
    timeout(WAIT, committed).await.unwrap().unwrap();

    // The id seen before the restart is still refused, from memory.
    let again = q
        .submit(&first.id.clone(), two_copies(&first))
        .await
        .unwrap();
    let again = timeout(WAIT, again.staged()).await.unwrap();
    assert!(again.entries.is_empty());
    assert!(matches!(again.committed.await, Err(QueueError::Duplicate)));
    q.close().await.unwrap();
}

#[tokio::test]
async fn when_seen_ids_outgrow_memory_staging_waits_for_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let (q, _) = Queue::open(QueueConfig {
        seen_in_memory: 1,
        ..QueueConfig::new(&path)
    })
    .await
    .unwrap();
    let (a, b) = (text(0), text(1));
    q.enqueue(&a.id.clone(), two_copies(&a)).await.unwrap();
    // `a` is pushed out of memory by `b` while still in queue_seen.
    q.enqueue(&b.id.clone(), two_copies(&b)).await.unwrap();

    let lock = write_lock(&path).await;
    let m = text(2);
    let pending = q.submit(&m.id.clone(), two_copies(&m)).await.unwrap();
    let mut staged = Box::pin(pending.staged());
    assert!(
        timeout(Duration::from_millis(300), &mut staged)
            .await
            .is_err(),
        "staged before the table could say whether the id is new"
    );
    drop(lock);
    let staged = timeout(WAIT, staged).await.unwrap();
    assert_eq!(staged.entries.len(), 2);
    staged.committed.await.unwrap();

    // Only the table remembers `a`: still a duplicate.
    let again = q.submit(&a.id.clone(), two_copies(&a)).await.unwrap();
    let again = again.staged().await;
    assert!(again.entries.is_empty());
    assert!(matches!(again.committed.await, Err(QueueError::Duplicate)));
    q.close().await.unwrap();
}
