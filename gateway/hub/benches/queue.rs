//! Enqueue → acknowledgement throughput of the durable queue, with group
//! commit beside one commit per message, on a real file; then submit →
//! dispatch latency, with the entries handed out when written (staged)
//! beside when committed.
//!
//! Throughput: each of P producers sends 200-byte text messages one after
//! the other and waits for each acknowledgement (as an adapter does before
//! answering its sender), for a fixed time. Prints messages per second and
//! the p50/p99 wait for an acknowledgement.
//!
//! Latency: the same, but each producer notes when its entries were staged
//! (when the hub now hands them to the dispatchers) and when they were
//! committed (when it handed them over before staging existed), for the
//! same messages in the same run.
//!
//! `cargo bench -p cpimgate --bench queue`. Environment:
//! `QUEUE_BENCH_SECS` (seconds per row, default 4), `QUEUE_BENCH_DIR`
//! (where the database goes; default the system temp dir, which must be a
//! real disk for the figures to mean anything), `QUEUE_BENCH_ONLY`
//! (`throughput` or `latency`: one half only).

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

/// Submit → staged and submit → committed, per message.
struct Latencies {
    staged: Vec<Duration>,
    committed: Vec<Duration>,
}

async fn run_latency(
    producers: usize,
    dir: &std::path::Path,
    secs: f64,
) -> Result<Latencies, Box<dyn std::error::Error>> {
    let path = dir.join(format!("latency-{producers}.db"));
    let (queue, _) = Queue::open(QueueConfig::new(&path)).await?;
    let template = template();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..producers {
        let queue = queue.clone();
        let stop = stop.clone();
        let template = template.clone();
        tasks.push(tokio::spawn(async move {
            let mut staged = Vec::new();
            let mut committed = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let mut m = template.clone();
                m.id = MessageId::random();
                let id = m.id.clone();
                let t0 = Instant::now();
                let s = queue
                    .submit(&id, vec![("xmpp0".into(), m)])
                    .await?
                    .staged()
                    .await;
                staged.push(t0.elapsed());
                s.committed.await?;
                committed.push(t0.elapsed());
                // Delivered: the completion rides the next group, as in
                // the gateway.
                for e in s.entries {
                    queue.complete(e.id).await?;
                }
            }
            Ok::<_, cpimgate::queue::QueueError>((staged, committed))
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut out = Latencies {
        staged: Vec::new(),
        committed: Vec::new(),
    };
    for t in tasks {
        let (s, c) = t.await??;
        out.staged.extend(s);
        out.committed.extend(c);
    }
    queue.close().await?;
    out.staged.sort_unstable();
    out.committed.sort_unstable();
    Ok(out)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

fn latency_table(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    secs: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    println!();
    println!("submit -> dispatch: at commit (before) vs when written (staged, now), same messages");
    println!(
        "{:>9} {:>9} {:>12} {:>12} {:>7} {:>12} {:>12} {:>7}",
        "producers",
        "messages",
        "p50 commit",
        "p50 staged",
        "ratio",
        "p99 commit",
        "p99 staged",
        "ratio"
    );
    for producers in [1, 8, 64] {
        let l = rt.block_on(run_latency(producers, dir, secs))?;
        let (c50, s50) = (percentile(&l.committed, 0.5), percentile(&l.staged, 0.5));
        let (c99, s99) = (percentile(&l.committed, 0.99), percentile(&l.staged, 0.99));
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
        println!(
            "{:>9} {:>9} {:>12} {:>12} {:>6.1}x {:>12} {:>12} {:>6.1}x",
            producers,
            l.staged.len(),
            ms(c50),
            ms(s50),
            ratio(c50, s50),
            ms(c99),
            ms(s99),
            ratio(c99, s99),
        );
    }
    Ok(())
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
    let only = std::env::var("QUEUE_BENCH_ONLY").unwrap_or_default();
    if only == "latency" {
        return latency_table(&rt, dir.path(), secs);
    }

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
    if only == "throughput" {
        return Ok(());
    }
    latency_table(&rt, dir.path(), secs)
}
