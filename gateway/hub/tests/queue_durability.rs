//! The durable queue across reopen: pending entries, completion,
//! rescheduling, de-duplication, schema coexistence, open errors.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use cpimgate::queue::{EntryId, Queue, QueueConfig, QueueError};
use cpimgate_model::body::Body;
use cpimgate_model::time::Timestamp;
use cpimgate_model::{Message, MessageId, Origin, World};
use sqlx::Connection;

fn text(n: usize) -> Message {
    let origin = Origin {
        world: World::Sip,
        adapter: "sip0".into(),
        native_id: None,
    };
    Message::text(
        origin,
        "\"Alice\" <sip:alice@atlanta.example.com>".parse().unwrap(),
        "<xmpp:bob@example.org>".parse().unwrap(),
        &format!("hello number {n}"),
    )
}

/// A message with a binary body and the original CPIM bytes kept.
fn binary_cpim(n: usize) -> Message {
    let mut m = text(n);
    m.content_type = "application/octet-stream".into();
    m.body = Body::from(vec![0u8, 0xff, 0xfe, b'\r', b'\n', 0x80, n as u8]);
    m.cpim = Some(Body::from(
        "From: Alice <im:alice@atlanta.example.com>\r\n\
         To: <im:bob@example.org>\r\n\
         DateTime: 2000-12-13T13:40:00-08:00\r\n\
         \r\n\
         Content-Type: application/octet-stream\r\n\
         \r\n\
         \u{0}\u{1}binary",
    ));
    m.expires = Some(Timestamp::now().plus(Duration::from_secs(3600)));
    m
}

fn config(path: &Path) -> QueueConfig {
    QueueConfig::new(path)
}

#[tokio::test]
async fn pending_entries_come_back_in_order_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let (q, pending) = Queue::open(config(&path)).await.unwrap();
    assert!(pending.is_empty());

    let mut written = Vec::new();
    for n in 0..5 {
        let m = if n % 2 == 0 { text(n) } else { binary_cpim(n) };
        let mut for_irc = m.clone();
        for_irc.to = vec!["<irc://irc.example.org/bob,isnick>".parse().unwrap()];
        let entries = q
            .enqueue(
                &m.id.clone(),
                vec![("xmpp0".into(), m), ("irc0".into(), for_irc)],
            )
            .await
            .unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].adapter, "xmpp0");
        assert_eq!(entries[1].adapter, "irc0");
        written.extend(entries);
    }
    assert_eq!(q.depth(), 10);
    q.close().await.unwrap();

    let (q, pending) = Queue::open(config(&path)).await.unwrap();
    assert_eq!(pending, written);
    assert!(pending.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(q.depth(), 10);
    q.close().await.unwrap();
}

#[tokio::test]
async fn complete_removes_and_reschedule_persists() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let (q, _) = Queue::open(config(&path)).await.unwrap();
    let mut ids = Vec::new();
    for n in 0..3 {
        let m = text(n);
        let e = q
            .enqueue(&m.id.clone(), vec![("xmpp0".into(), m)])
            .await
            .unwrap();
        ids.push(e[0].id);
    }
    let later = Timestamp::now().plus(Duration::from_secs(90));
    q.complete(ids[1]).await.unwrap();
    q.reschedule(ids[2], 4, later).await.unwrap();
    q.flush().await.unwrap();
    assert_eq!(q.depth(), 2);
    let stats = q.stats();
    assert_eq!((stats.completed, stats.rescheduled), (1, 1));
    // Unknown ids are no error: a completion may race a restart.
    q.complete(EntryId(9999)).await.unwrap();
    q.close().await.unwrap();

    let (q, pending) = Queue::open(config(&path)).await.unwrap();
    let got: Vec<_> = pending.iter().map(|e| (e.id, e.attempts)).collect();
    assert_eq!(got, vec![(ids[0], 0), (ids[2], 4)]);
    assert_eq!(pending[1].next_attempt, later);
    assert!(pending[0].next_attempt <= pending[1].next_attempt);

    // Ids keep growing after a reopen: new entries sort after the old.
    let m = text(7);
    let e = q
        .enqueue(&m.id.clone(), vec![("irc0".into(), m)])
        .await
        .unwrap();
    assert!(e[0].id > ids[2]);
    q.close().await.unwrap();
}

#[tokio::test]
async fn duplicates_are_refused_also_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let (q, _) = Queue::open(config(&path)).await.unwrap();
    let m = text(1);
    q.enqueue(&m.id, vec![("xmpp0".into(), m.clone())])
        .await
        .unwrap();
    let again = q.enqueue(&m.id, vec![("xmpp0".into(), m.clone())]).await;
    assert!(matches!(again, Err(QueueError::Duplicate)));

    // The same id twice in one group: one is accepted.
    let twin = text(2);
    let (a, b) = tokio::join!(
        q.enqueue(&twin.id, vec![("irc0".into(), twin.clone())]),
        q.enqueue(&twin.id, vec![("irc0".into(), twin.clone())]),
    );
    assert_eq!(
        [a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count(),
        1,
        "{a:?} {b:?}"
    );

    // An id recorded without destinations counts as seen too.
    let bare = MessageId::from("bare-id");
    assert!(q.enqueue(&bare, Vec::new()).await.unwrap().is_empty());
    assert_eq!(q.depth(), 2);
    assert_eq!(q.stats().duplicates, 2);
    q.close().await.unwrap();

    // After a restart the in-memory set is empty: the table answers.
    let (q, pending) = Queue::open(config(&path)).await.unwrap();
    assert_eq!(pending.len(), 2);
    for id in [&m.id, &twin.id, &bare] {
        let again = q.enqueue(id, vec![("xmpp0".into(), m.clone())]).await;
        assert!(matches!(again, Err(QueueError::Duplicate)), "{again:?}");
    }
    assert_eq!(q.depth(), 2);
    q.close().await.unwrap();
}

#[tokio::test]
async fn the_table_catches_duplicates_the_memory_set_no_longer_holds() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&dir.path().join("state.db"));
    cfg.seen_in_memory = 0;
    let (q, _) = Queue::open(cfg).await.unwrap();
    let m = text(1);
    q.enqueue(&m.id, Vec::new()).await.unwrap();
    assert!(matches!(
        q.enqueue(&m.id, Vec::new()).await,
        Err(QueueError::Duplicate)
    ));
    q.close().await.unwrap();
}

#[tokio::test]
async fn seen_ids_are_forgotten_after_the_horizon() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let mut cfg = config(&path);
    cfg.dedup_horizon = Duration::from_millis(100);
    cfg.prune_interval = Duration::from_millis(50);
    let (q, _) = Queue::open(cfg.clone()).await.unwrap();
    let m = text(1);
    q.enqueue(&m.id, Vec::new()).await.unwrap();
    assert!(matches!(
        q.enqueue(&m.id, Vec::new()).await,
        Err(QueueError::Duplicate)
    ));
    // Taken again once a prune ran after the horizon passed; asked until
    // then, so a slow machine only makes it wait.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let retaken_from = loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let before = Timestamp::now().unix_micros;
        match q.enqueue(&m.id, Vec::new()).await {
            Ok(_) => break before,
            Err(QueueError::Duplicate) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the id is still a duplicate 20 s after a 100 ms horizon"
                );
            }
            Err(e) => panic!("enqueue failed: {e}"),
        }
    };
    q.close().await.unwrap();

    // Pruned on disk as well, not only in memory: the first acceptance's
    // row is gone. The second's may be there, or pruned in turn if the
    // machine was slow to close.
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let rows: Vec<(String, i64)> = sqlx::query_as("SELECT message_id, first_seen FROM queue_seen")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert!(rows.len() <= 1, "rows left: {rows:?}");
    for (id, first_seen) in &rows {
        assert_eq!(id, &m.id.to_string());
        assert!(
            *first_seen >= retaken_from,
            "the first acceptance's row was never pruned: {rows:?}"
        );
    }
}

#[tokio::test]
async fn other_migrators_versions_in_the_same_file_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let (q, _) = Queue::open(config(&path)).await.unwrap();
    q.close().await.unwrap();

    // What the mapping table's migrator (versions 100..199) leaves behind.
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (100, 'mappings', TRUE, X'00', 0)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();

    let (q, _) = Queue::open(config(&path)).await.unwrap();
    q.close().await.unwrap();
}

#[tokio::test]
async fn open_error_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("state.db");
    let err = Queue::open(config(&path)).await.unwrap_err();
    assert!(matches!(err, QueueError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-dir"), "{err}");
}

#[tokio::test]
async fn requests_after_close_answer_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (q, _) = Queue::open(config(&dir.path().join("state.db")))
        .await
        .unwrap();
    let other = q.clone();
    q.close().await.unwrap();
    let m = text(1);
    assert!(matches!(
        other
            .enqueue(&m.id, vec![("xmpp0".into(), m.clone())])
            .await,
        Err(QueueError::Closed)
    ));
    assert!(matches!(
        other.complete(EntryId(1)).await,
        Err(QueueError::Closed)
    ));
}

#[tokio::test]
async fn mapping_table_and_queue_share_one_file_in_either_order() {
    for queue_first in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        if queue_first {
            let (q, _) = Queue::open(config(&path)).await.unwrap();
            q.close().await.unwrap();
            drop(cpimgate_mappings::MappingStore::open(&path).await.unwrap());
        } else {
            drop(cpimgate_mappings::MappingStore::open(&path).await.unwrap());
            let (q, _) = Queue::open(config(&path)).await.unwrap();
            q.close().await.unwrap();
        }
        // Both open again with the other's versions applied.
        let store = cpimgate_mappings::MappingStore::open(&path).await.unwrap();
        let (q, _) = Queue::open(config(&path)).await.unwrap();
        let m = text(1);
        q.enqueue(&m.id.clone(), vec![("xmpp0".into(), m)])
            .await
            .unwrap();
        q.close().await.unwrap();
        drop(store);
    }
}

#[tokio::test]
async fn a_failed_group_answers_every_caller_and_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let mut cfg = config(&path);
    cfg.busy_timeout = Duration::from_millis(50);
    let (q, _) = Queue::open(cfg).await.unwrap();

    // Another connection to the file (the mapping table) holds the write
    // lock longer than the busy timeout.
    let mut lock = common::write_lock(&path).await;
    let (a, b) = (text(1), text(2));
    let (ra, rb) = tokio::join!(
        q.enqueue(&a.id, vec![("xmpp0".into(), a.clone())]),
        q.enqueue(&b.id, vec![("xmpp0".into(), b.clone())]),
    );
    assert!(matches!(ra, Err(QueueError::Store(_))), "{ra:?}");
    assert!(matches!(rb, Err(QueueError::Store(_))), "{rb:?}");
    assert!(q.stats().failed_commits >= 1);
    assert_eq!(q.depth(), 0);
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();

    // Nothing of the failed group was kept: not even its ids as seen (the
    // retry is no duplicate). Its entry ids may have been handed out
    // (staged) and are not given again.
    let e = q
        .enqueue(&a.id, vec![("xmpp0".into(), a.clone())])
        .await
        .unwrap();
    assert_eq!(q.depth(), 1);
    assert!(e[0].id > EntryId(0));
    q.close().await.unwrap();
}
