//! Nothing acknowledged is lost when the process is killed with SIGKILL.
//!
//! The test binary runs itself as the child: `crash_child` does nothing
//! unless `QUEUE_CRASH_CHILD` names a database file; then it enqueues from
//! many tasks and prints `ACK <id>` after each acknowledgement, until the
//! parent kills it.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cpimgate::queue::{Queue, QueueConfig};
use cpimgate_model::{Message, Origin, World};

const CHILD_ENV: &str = "QUEUE_CRASH_CHILD";

fn text(n: usize) -> Message {
    let origin = Origin {
        world: World::Xmpp,
        adapter: "xmpp0".into(),
        native_id: None,
    };
    Message::text(
        origin,
        "<xmpp:alice@example.org>".parse().unwrap(),
        "<sip:bob@biloxi.example.com>".parse().unwrap(),
        &format!("crash test message {n}"),
    )
}

#[test]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let (q, _) = Queue::open(QueueConfig::new(path)).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut tasks = Vec::new();
        for t in 0..32 {
            let q = q.clone();
            tasks.push(tokio::spawn(async move {
                let mut n = t * 1_000_000;
                // Bounded, in case the parent died without killing us.
                while Instant::now() < deadline {
                    let m = text(n);
                    n += 1;
                    let id = m.id.clone();
                    q.enqueue(&id, vec![("sip0".into(), m)]).await.unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {id}").unwrap();
                    out.flush().unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}

#[test]
fn acknowledged_messages_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = HashSet::new();
    while acked.len() < 2_000 {
        let Some(line) = lines.next() else {
            panic!("child ended after {} acknowledgements", acked.len());
        };
        if let Some(id) = line.unwrap().strip_prefix("ACK ") {
            acked.insert(id.to_owned());
        }
    }
    // Child::kill is SIGKILL on Unix: no destructor, no close(), no flush.
    child.kill().unwrap();
    child.wait().unwrap();
    // Lines already in the pipe were printed after their acknowledgement.
    for line in lines {
        if let Some(id) = line.unwrap().strip_prefix("ACK ") {
            acked.insert(id.to_owned());
        }
    }

    let rt = tokio::runtime::Runtime::new().unwrap();
    let pending = rt.block_on(async {
        let (q, pending) = Queue::open(QueueConfig::new(&path)).await.unwrap();
        q.close().await.unwrap();
        pending
    });
    let stored: HashSet<String> = pending
        .iter()
        .map(|e| e.message.id.as_str().to_owned())
        .collect();
    let lost: Vec<_> = acked.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged messages lost, e.g. {:?}",
        lost.len(),
        acked.len(),
        lost.first()
    );
    assert!(pending.windows(2).all(|w| w[0].id < w[1].id));
}
