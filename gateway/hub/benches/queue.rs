//! Enqueue → acknowledgement throughput of the durable queue, with group
//! commit beside one commit per message, on a real file.
//!
//! Each of P producers sends 200-byte text messages one after the other and
//! waits for each acknowledgement (as an adapter does before answering its
//! sender), for a fixed time. Prints messages per second and the p50/p99
//! wait for an acknowledgement.
//!
//! `cargo bench -p cpimgate --bench queue`. Environment:
//! `QUEUE_BENCH_SECS` (seconds per row, default 4), `QUEUE_BENCH_DIR`
//! (where the database goes; default the system temp dir, which must be a
//! real disk for the figures to mean anything).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cpimgate::queue::{Queue, QueueConfig};
use cpimgate_model::{Message, MessageId, Origin, World};

#[derive(Clone, Copy)]
struct Row {
    name: &'static str,
    producers: usize,
    max_batch: usize,
    complete: bool,
}

struct Outcome {
    messages: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
    commits: u64,
}

/// The message every producer sends, under a fresh id each time (parsing
/// addresses per message would measure the parser, not the queue).
fn template() -> Message {
    let origin = Origin {
        world: World::Sip,
        adapter: "sip0".into(),
        native_id: None,
    };
    #[allow(clippy::unwrap_used)] // constant, valid addresses
    Message::text(
        origin,
        "\"Alice\" <sip:alice@atlanta.example.com>".parse().unwrap(),
        "<xmpp:bob@example.org>".parse().unwrap(),
        &"0123456789".repeat(20),
    )
}

async fn run(
    row: Row,
    dir: &std::path::Path,
    secs: f64,
) -> Result<Outcome, Box<dyn std::error::Error>> {
    let path = dir.join(format!("queue-{}-{}.db", row.max_batch, row.producers));
    let mut cfg = QueueConfig::new(&path);
    cfg.max_batch = row.max_batch;
    let (queue, _) = Queue::open(cfg).await?;
    let template = template();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..row.producers {
        let queue = queue.clone();
        let stop = stop.clone();
        let template = template.clone();
        tasks.push(tokio::spawn(async move {
            let mut waits = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let mut m = template.clone();
                m.id = MessageId::random();
                let id = m.id.clone();
                let t0 = Instant::now();
                let entries = queue.enqueue(&id, vec![("xmpp0".into(), m)]).await?;
                waits.push(t0.elapsed());
                if row.complete {
                    for e in entries {
                        queue.complete(e.id).await?;
                    }
                }
            }
            Ok::<_, cpimgate::queue::QueueError>(waits)
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut waits = Vec::new();
    for t in tasks {
        waits.extend(t.await??);
    }
    let elapsed = started.elapsed();
    let commits = queue.stats().commits;
    queue.close().await?;
    waits.sort_unstable();
    let pct = |p: f64| {
        waits
            .get(((waits.len() as f64 * p) as usize).min(waits.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Ok(Outcome {
        messages: waits.len(),
        elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
        max: waits.last().copied().unwrap_or_default(),
        commits,
    })
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let secs: f64 = std::env::var("QUEUE_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4.0);
    let base = std::env::var_os("QUEUE_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(base)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;

    let rows = [
        Row {
            name: "group commit",
            producers: 64,
            max_batch: 512,
            complete: false,
        },
        Row {
            name: "group commit",
            producers: 256,
            max_batch: 512,
            complete: false,
        },
        Row {
            name: "group commit + complete",
            producers: 256,
            max_batch: 512,
            complete: true,
        },
        Row {
            name: "commit per message",
            producers: 64,
            max_batch: 1,
            complete: false,
        },
        Row {
            name: "commit per message",
            producers: 256,
            max_batch: 1,
            complete: false,
        },
    ];
    println!(
        "durable queue, 200-byte messages, {secs} s per row, database in {}",
        dir.path().display()
    );
    println!(
        "{:<24} {:>9} {:>9} {:>10} {:>10} {:>10} {:>10} {:>8} {:>11}",
        "mode",
        "producers",
        "messages",
        "msg/s",
        "p50 ack",
        "p99 ack",
        "max ack",
        "commits",
        "msgs/commit"
    );
    let mut best = [0.0f64; 2];
    for row in rows {
        let o = rt.block_on(run(row, dir.path(), secs))?;
        let rate = o.messages as f64 / o.elapsed.as_secs_f64();
        if !row.complete {
            let slot = usize::from(row.max_batch == 1);
            best[slot] = best[slot].max(rate);
        }
        println!(
            "{:<24} {:>9} {:>9} {:>10.0} {:>10} {:>10} {:>10} {:>8} {:>11.1}",
            row.name,
            row.producers,
            o.messages,
            rate,
            ms(o.p50),
            ms(o.p99),
            ms(o.max),
            o.commits,
            o.messages as f64 / o.commits.max(1) as f64,
        );
    }
    if best[1] > 0.0 {
        println!(
            "best group commit / best commit per message: {:.1}x",
            best[0] / best[1]
        );
    }
    Ok(())
}
