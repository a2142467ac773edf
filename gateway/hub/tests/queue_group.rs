//! Group commit: concurrent enqueues share commits, and nobody is answered
//! before the commit that holds their message.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use cpimgate::queue::{Queue, QueueConfig};
use cpimgate_model::{Message, Origin, World};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

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

async fn enqueue_concurrently(q: &Queue, path: &Path, n: usize) {
    // A second connection sees only committed data: an acknowledged entry
    // must already be there.
    let reader = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(SqliteConnectOptions::new().filename(path).read_only(true))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..n {
        let q = q.clone();
        let reader = reader.clone();
        tasks.push(tokio::spawn(async move {
            let m = text(i);
            let entries = q
                .enqueue(&m.id.clone(), vec![("sip0".into(), m)])
                .await
                .unwrap();
            let found: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM queue_entry WHERE id = ?")
                .bind(entries[0].id.0)
                .fetch_one(&reader)
                .await
                .unwrap();
            assert_eq!(found, 1, "answered before its group was committed");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    reader.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_enqueues_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let (q, _) = Queue::open(QueueConfig::new(&path)).await.unwrap();
    let n = 1000;
    enqueue_concurrently(&q, &path, n).await;
    let stats = q.stats();
    assert_eq!(stats.rows_written, n as u64);
    assert_eq!(q.depth(), n as u64);
    assert!(
        stats.commits * 4 < n as u64,
        "{} commits for {n} messages",
        stats.commits
    );
    q.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_delay_gathers_more() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let mut cfg = QueueConfig::new(&path);
    cfg.batch_delay = Duration::from_millis(20);
    let (q, _) = Queue::open(cfg).await.unwrap();
    let n = 200;
    enqueue_concurrently(&q, &path, n).await;
    let stats = q.stats();
    assert_eq!(stats.rows_written, n as u64);
    assert!(stats.commits <= 20, "{} commits for {n}", stats.commits);
    q.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_batch_one_commits_every_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let mut cfg = QueueConfig::new(&path);
    cfg.max_batch = 1;
    let (q, _) = Queue::open(cfg).await.unwrap();
    let n = 50;
    enqueue_concurrently(&q, &path, n).await;
    assert_eq!(q.stats().commits, n as u64);
    q.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_ride_along_and_depth_follows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let (q, _) = Queue::open(QueueConfig::new(&path)).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..300 {
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            let m = text(i);
            let e = q
                .enqueue(&m.id.clone(), vec![("sip0".into(), m)])
                .await
                .unwrap();
            if i % 3 != 0 {
                q.complete(e[0].id).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    q.flush().await.unwrap();
    assert_eq!(q.depth(), 100);
    assert_eq!(q.stats().completed, 200);
    q.close().await.unwrap();
    let (q, pending) = Queue::open(QueueConfig::new(&path)).await.unwrap();
    assert_eq!(pending.len(), 100);
    assert_eq!(q.depth(), 100);
    q.close().await.unwrap();
}

#[tokio::test]
async fn submit_keeps_order_and_lets_the_caller_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let (q, _) = Queue::open(QueueConfig::new(&path)).await.unwrap();
    let mut pending = Vec::new();
    for i in 0..100 {
        let m = text(i);
        pending.push(
            q.submit(&m.id.clone(), vec![("sip0".into(), m)])
                .await
                .unwrap(),
        );
    }
    let mut ids = Vec::new();
    // Awaited in reverse: each resolves on its own commit, not in await order.
    while let Some(p) = pending.pop() {
        ids.push(p.await.unwrap()[0].id);
    }
    ids.reverse();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    q.close().await.unwrap();
}
