//! MUC-to-MUC relay through the gateway, beside MUC-to-MUC on Prosody alone,
//! on one Prosody in one run.
//!
//! * direct: Alice (`alice@a.localhost`) and Bob (`bob@b.localhost`) in
//!   `lobby@conference.a.localhost`; Alice posts, Bob receives.
//! * relay: Bob moves to `lobby@conference.b.localhost`; a naive relay of
//!   test clients (`bridge@a` in room A, `bridge@b` in room B) re-posts
//!   every message of A into B as `<nick> text`, with no model, queue or
//!   fsync. Prosody does the same work as on the gateway's path (two room
//!   broadcasts, four streams per message), so this row is what two rooms
//!   cost on Prosody alone.
//! * gateway: the naive relay logs out; two client-mode adapters of an
//!   in-process gateway (the same accounts) federate the two rooms.
//!
//! Every body is `<tag> <seq> <send time in µs>`; Bob notes the arrival
//! time of each (sender and receiver share a clock: one process). Each
//! path gets a warm-up, then:
//!
//! * saturating: Alice sends N messages as fast as her stream takes them
//!   (taking the room's copies of her own messages as they come back);
//!   the rate is messages received / (last arrival - first send);
//! * paced: M messages at R msg/s; p50/p99 of arrival - send.
//!
//! "Added" latency is the gateway's p50/p99 minus the direct path's (and
//! minus the naive relay's). Every c2s stream is STARTTLS (the adapters
//! always use TLS when offered, so the test users do too). The gateway
//! runs on a thread and a tokio runtime of its own (threads `gw-rt*`, plus
//! sqlx's `sqlx-sqlite-*`), the test users on another, so the CPU columns
//! can tell them apart (`/proc/<pid>/stat`, `/proc/self/task/*/stat`;
//! 100 % is one core). Prosody is one single-threaded process: at about
//! 100 % it is the bottleneck.
//!
//! `cargo bench -p cpimgate-e2e --bench xmpp_relay`. Environment:
//! `XMPP_BENCH_N` (saturating messages, default 2000),
//! `XMPP_BENCH_PACED_N` (paced messages, default 1000), `XMPP_BENCH_RATE`
//! (paced rate in msg/s, default 200), `XMPP_BENCH_WARMUP` (default 200),
//! `RUST_LOG` (the gateway's log on stderr, default `info`: a few lines
//! per connection, none per message). The gateway's durable queue goes to
//! the system temp dir (`TMPDIR`): a real disk gives real fsync times;
//! `TMPDIR=/dev/shm` shows the gateway without them.
//!
//! Figures only: nothing here asserts a speed.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cpimgate_e2e::HarnessError;
use cpimgate_e2e::gateway::Gateway;
use cpimgate_e2e::prosody::{HOST_A, HOST_B, MUC_A, MUC_B, Prosody, ProsodyOptions};
use cpimgate_e2e::xmpp_user::{XmppUser, body, is_groupchat_from, nick_of};
use futures::FutureExt as _;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio_xmpp::Stanza;

/// How long Bob waits for the next message before counting the rest lost.
const IDLE: Duration = Duration::from_secs(10);
/// How long the gateway's adapters may take to log in and join.
const CONNECT: Duration = Duration::from_secs(30);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Settings {
    saturating: usize,
    paced: usize,
    rate: u64,
    warmup: usize,
}

impl Settings {
    fn from_env() -> Result<Settings, BoxError> {
        fn var(name: &str, default: u64) -> Result<u64, BoxError> {
            match std::env::var(name) {
                Ok(v) => match v.trim().parse::<u64>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err(format!("{name}={v:?}: a positive integer is needed").into()),
                },
                Err(_) => Ok(default),
            }
        }
        Ok(Settings {
            saturating: usize::try_from(var("XMPP_BENCH_N", 2000)?)?,
            paced: usize::try_from(var("XMPP_BENCH_PACED_N", 1000)?)?,
            rate: var("XMPP_BENCH_RATE", 200)?,
            warmup: usize::try_from(var("XMPP_BENCH_WARMUP", 200)?)?,
        })
    }
}

/// Microseconds since the first call: the clock of send and arrival times.
fn micros() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    u64::try_from(EPOCH.get_or_init(Instant::now).elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// CPU time consumed, in clock ticks, by Prosody, the gateway's threads
/// and the rest of this process (the test users).
#[derive(Clone, Copy, Default)]
struct Cpu {
    prosody: u64,
    gateway: u64,
    clients: u64,
}

/// `utime + stime` of a `/proc/.../stat` line, in ticks.
fn stat_ticks(path: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    // The fields after the command name, which is in parentheses and may
    // hold anything: state is field 3, utime 14, stime 15.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn is_gateway_thread(comm: &str) -> bool {
    comm.starts_with("gw-rt") || comm.starts_with("sqlx")
}

fn cpu_now(prosody_pid: Option<u32>) -> Cpu {
    let prosody = prosody_pid
        .and_then(|pid| stat_ticks(&format!("/proc/{pid}/stat")))
        .unwrap_or(0);
    let total = stat_ticks("/proc/self/stat").unwrap_or(0);
    let mut gateway = 0;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let dir = task.path();
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            if is_gateway_thread(comm.trim()) {
                gateway += stat_ticks(&dir.join("stat").display().to_string()).unwrap_or(0);
            }
        }
    }
    Cpu {
        prosody,
        gateway,
        clients: total.saturating_sub(gateway),
    }
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// One measured run.
struct Run {
    sent: usize,
    received: usize,
    duplicates: usize,
    /// First send to last arrival.
    wall: Duration,
    /// Arrival - send of each message received, sorted, in µs.
    latencies: Vec<u64>,
    /// CPU ticks used during the run.
    cpu: Cpu,
}

impl Run {
    fn rate(&self) -> f64 {
        self.received as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// Nearest-rank percentile, in ms.
    fn percentile(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let rank = (p * self.latencies.len() as f64).ceil() as usize;
        let i = rank.clamp(1, self.latencies.len()) - 1;
        self.latencies[i] as f64 / 1000.0
    }

    /// CPU share over the run's wall time, in % of one core.
    fn share(&self, ticks: u64, hz: f64) -> f64 {
        100.0 * ticks as f64 / hz / self.wall.as_secs_f64().max(1e-9)
    }
}

/// Take every stanza that has already arrived, without waiting.
///
/// One poll each, not `next_stanza(Duration::ZERO)`: a zero timeout still
/// waits for tokio's next timer tick (up to 1 ms) when nothing is there.
async fn drain(user: &mut XmppUser) -> Result<(), HarnessError> {
    loop {
        match user.next_stanza(IDLE).now_or_never() {
            Some(Ok(_)) => {}
            None | Some(Err(HarnessError::Timeout { .. })) => return Ok(()),
            Some(Err(e)) => return Err(e),
        }
    }
}

/// Take stanzas until none has come for `quiet`.
async fn settle(user: &mut XmppUser, quiet: Duration) -> Result<(), HarnessError> {
    loop {
        match user.next_stanza(quiet).await {
            Ok(_) => {}
            Err(HarnessError::Timeout { .. }) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// Bob's side: receive the `n` messages of run `tag` (from any sender, with
/// any prefix) and note (send, arrival) per sequence number, until all
/// have come or none for [`IDLE`].
async fn receive(
    mut user: XmppUser,
    tag: String,
    n: usize,
) -> Result<(XmppUser, Vec<Option<(u64, u64)>>, usize), HarnessError> {
    let mut got: Vec<Option<(u64, u64)>> = vec![None; n];
    let mut count = 0;
    let mut duplicates = 0;
    while count < n {
        let stanza = match user.next_stanza(IDLE).await {
            Ok(s) => s,
            Err(HarnessError::Timeout { .. }) => break,
            Err(e) => return Err(e),
        };
        let arrived = micros();
        let Stanza::Message(m) = stanza else { continue };
        let Some((seq, sent)) = body(&m).and_then(|b| parse_body(b, &tag)) else {
            continue;
        };
        match got.get_mut(seq) {
            Some(slot @ None) => {
                *slot = Some((sent, arrived));
                count += 1;
            }
            Some(Some(_)) => duplicates += 1,
            None => {}
        }
    }
    Ok((user, got, duplicates))
}

/// `[<nick> ]<tag> <seq> <sent>` -> (seq, sent).
fn parse_body(text: &str, tag: &str) -> Option<(usize, u64)> {
    let mut words = text.rsplitn(4, ' ');
    let sent = words.next()?.parse().ok()?;
    let seq = words.next()?.parse().ok()?;
    let t = words.next()?;
    (t == tag).then_some((seq, sent))
}

/// One run: Bob listens, Alice sends `n` messages into `room` (paced at
/// `rate` msg/s, or as fast as her stream takes them), Bob's arrivals are
/// collected.
async fn run(
    alice: &mut XmppUser,
    bob: XmppUser,
    room: &str,
    tag: &str,
    n: usize,
    rate: Option<u64>,
    prosody_pid: Option<u32>,
) -> Result<(XmppUser, Run), BoxError> {
    let receiver = tokio::spawn(receive(bob, tag.to_owned(), n));
    let cpu_before = cpu_now(prosody_pid);
    let gap_us = rate.map(|r| 1_000_000 / r.max(1));
    let start = tokio::time::Instant::now();
    let first = micros();
    let mut text = String::with_capacity(64);
    for seq in 0..n {
        if let Some(gap) = gap_us {
            let at = start + Duration::from_micros(gap * seq as u64);
            tokio::time::sleep_until(at).await;
        }
        text.clear();
        write!(text, "{tag} {seq} {}", micros())?;
        alice.send_groupchat(room, &text).await?;
        // Alice's own copies come back from the room: take them as a real
        // client would, so no buffer anywhere fills up.
        drain(alice).await?;
    }
    let (bob, got, duplicates) = receiver.await??;
    let cpu_after = cpu_now(prosody_pid);
    settle(alice, Duration::from_millis(300)).await?;

    let mut latencies = Vec::with_capacity(n);
    let mut last = first;
    for (sent, arrived) in got.iter().flatten() {
        latencies.push(arrived.saturating_sub(*sent));
        last = last.max(*arrived);
    }
    latencies.sort_unstable();
    let outcome = Run {
        sent: n,
        received: latencies.len(),
        duplicates,
        wall: Duration::from_micros(last.saturating_sub(first)),
        latencies,
        cpu: Cpu {
            prosody: cpu_after.prosody.saturating_sub(cpu_before.prosody),
            gateway: cpu_after.gateway.saturating_sub(cpu_before.gateway),
            clients: cpu_after.clients.saturating_sub(cpu_before.clients),
        },
    };
    Ok((bob, outcome))
}

/// The figures of one path.
struct Path {
    saturating: Run,
    paced: Run,
}

/// Warm-up, saturating run, paced run, from Alice in `room_a` to Bob.
async fn measure(
    label: &str,
    alice: &mut XmppUser,
    bob: XmppUser,
    room_a: &str,
    settings: &Settings,
    server: &Prosody,
) -> Result<(XmppUser, Path), BoxError> {
    let pid = server.pid();
    eprintln!("{label}: warm-up ({} messages)", settings.warmup);
    let (bob, warm) = run(
        alice,
        bob,
        room_a,
        &format!("{label}-warmup"),
        settings.warmup,
        None,
        pid,
    )
    .await?;
    if warm.received < warm.sent {
        return Err(format!(
            "{label}: only {} of {} warm-up messages arrived\n--- prosody log (tail) ---\n{}",
            warm.received,
            warm.sent,
            server.log_tail(30)
        )
        .into());
    }
    eprintln!("{label}: saturating ({} messages)", settings.saturating);
    let (bob, saturating) = run(
        alice,
        bob,
        room_a,
        &format!("{label}-saturating"),
        settings.saturating,
        None,
        pid,
    )
    .await?;
    eprintln!(
        "{label}: paced ({} messages at {} msg/s)",
        settings.paced, settings.rate
    );
    let (bob, paced) = run(
        alice,
        bob,
        room_a,
        &format!("{label}-paced"),
        settings.paced,
        Some(settings.rate),
        pid,
    )
    .await?;
    Ok((bob, Path { saturating, paced }))
}

fn gateway_toml(server: &Prosody) -> String {
    let addr = server.c2s_addr();
    format!(
        r#"
        [gateway]
        name = "gw-bench"
        [adapters.xa]
        kind = "xmpp"
        mode = "client"
        jid = "bridge@{HOST_A}"
        password = "bridge-a-pw"
        server = "{addr}"
        insecure_accept_any_certificate = true
        rooms = [ {{ room = "lobby@{MUC_A}", nick = "bridge" }} ]
        [adapters.xb]
        kind = "xmpp"
        mode = "client"
        jid = "bridge@{HOST_B}"
        password = "bridge-b-pw"
        server = "{addr}"
        insecure_accept_any_certificate = true
        rooms = [ {{ room = "lobby@{MUC_B}", nick = "bridge" }} ]
        [[bridge]]
        name = "lobby"
        rooms = [
          {{ adapter = "xa", address = "xmpp:lobby@{MUC_A}" }},
          {{ adapter = "xb", address = "xmpp:lobby@{MUC_B}" }},
        ]
        "#
    )
}

/// The gateway on a thread and a runtime of its own (the hub's futures
/// are not all `Send`, and its threads are told apart by name for the CPU
/// columns).
struct GatewayThread {
    stop: oneshot::Sender<()>,
    done: oneshot::Receiver<Result<(), String>>,
}

impl GatewayThread {
    /// Start the gateway and wait until both adapters have joined their
    /// rooms.
    async fn start(runtime: Runtime, toml: String) -> Result<GatewayThread, BoxError> {
        let (ready_tx, ready_rx) = oneshot::channel::<Result<(), String>>();
        let (stop, stop_rx) = oneshot::channel::<()>();
        let (done_tx, done) = oneshot::channel();
        std::thread::Builder::new()
            .name("gw-rt-main".into())
            .spawn(move || {
                let outcome = runtime.block_on(async move {
                    let started = async {
                        let gateway = Gateway::start(&toml, Vec::new()).await?;
                        gateway.wait_connected("xa", CONNECT).await?;
                        gateway.wait_connected("xb", CONNECT).await?;
                        Ok::<_, HarnessError>(gateway)
                    }
                    .await;
                    let gateway = match started {
                        Ok(g) => {
                            let _ = ready_tx.send(Ok(()));
                            g
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return Ok(());
                        }
                    };
                    let _ = stop_rx.await;
                    gateway.shutdown().await.map_err(|e| e.to_string())
                });
                runtime.shutdown_timeout(Duration::from_secs(2));
                let _ = done_tx.send(outcome);
            })?;
        ready_rx
            .await
            .map_err(|_| "the gateway thread ended".to_owned())??;
        Ok(GatewayThread { stop, done })
    }

    /// Shut the gateway down and wait for it.
    async fn stop(self) -> Result<(), BoxError> {
        let _ = self.stop.send(());
        self.done
            .await
            .map_err(|_| "the gateway thread ended".to_owned())??;
        Ok(())
    }
}

/// The naive relay: a test client in each room (the `bridge` accounts,
/// before the gateway uses them) that re-posts every message of room A
/// into room B as `<nick> text` the moment it arrives: no model, no queue,
/// no fsync, no delivery tracking. The same work on Prosody's side as the
/// gateway's path, so its figures are Prosody's own ceiling for two rooms.
struct NaiveRelay {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), HarnessError>>,
}

impl NaiveRelay {
    async fn start(server: &Prosody, room_a: &str, room_b: &str) -> Result<NaiveRelay, BoxError> {
        let mut from =
            XmppUser::connect_starttls(server, &format!("bridge@{HOST_A}"), "bridge-a-pw").await?;
        let mut to =
            XmppUser::connect_starttls(server, &format!("bridge@{HOST_B}"), "bridge-b-pw").await?;
        from.join_muc(room_a, "bridge").await?;
        to.join_muc(room_b, "bridge").await?;
        settle(&mut from, Duration::from_millis(200)).await?;
        settle(&mut to, Duration::from_millis(200)).await?;
        let (stop, mut stopped) = oneshot::channel::<()>();
        let (room_a, room_b) = (room_a.to_owned(), room_b.to_owned());
        let task = tokio::spawn(async move {
            let mut text = String::with_capacity(96);
            loop {
                let stanza = tokio::select! {
                    _ = &mut stopped => break,
                    s = from.next_stanza(IDLE) => s,
                };
                let m = match stanza {
                    Ok(Stanza::Message(m)) => m,
                    Ok(_) | Err(HarnessError::Timeout { .. }) => continue,
                    Err(e) => return Err(e),
                };
                if !is_groupchat_from(&m, &room_a) {
                    continue;
                }
                let (Some(nick), Some(b)) = (nick_of(m.from.as_ref()), body(&m)) else {
                    continue;
                };
                if nick == "bridge" {
                    continue;
                }
                text.clear();
                let _ = write!(text, "<{nick}> {b}");
                to.send_groupchat(&room_b, &text).await?;
                drain(&mut to).await?;
            }
            from.disconnect().await?;
            to.disconnect().await
        });
        Ok(NaiveRelay { stop, task })
    }

    /// Stop relaying; both users log out (and so leave their rooms).
    async fn stop(self) -> Result<(), BoxError> {
        let _ = self.stop.send(());
        self.task.await??;
        Ok(())
    }
}

async fn bench(gw_runtime: Runtime, settings: Settings) -> Result<String, BoxError> {
    let hz = clock_ticks_per_second();
    let _ = micros();
    // Info in Prosody's log is a few lines per connection, not per stanza.
    let server = Prosody::start_with(ProsodyOptions::default().log_level("info")).await?;
    for (user, host, pw) in [
        ("alice", HOST_A, "alice-pw"),
        ("bob", HOST_B, "bob-pw"),
        ("bridge", HOST_A, "bridge-a-pw"),
        ("bridge", HOST_B, "bridge-b-pw"),
    ] {
        server.register(user, host, pw).await?;
    }
    let room_a = format!("lobby@{MUC_A}");
    let room_b = format!("lobby@{MUC_B}");

    let mut alice = XmppUser::connect_starttls(&server, "alice@a.localhost", "alice-pw").await?;
    let mut bob = XmppUser::connect_starttls(&server, "bob@b.localhost", "bob-pw").await?;
    alice.join_muc(&room_a, "alice").await?;
    bob.join_muc(&room_a, "bob").await?;
    settle(&mut alice, Duration::from_millis(200)).await?;
    settle(&mut bob, Duration::from_millis(200)).await?;

    // 1. Alice and Bob in room A.
    let (mut bob, direct) = measure("direct", &mut alice, bob, &room_a, &settings, &server).await?;

    // 2. Bob in room B, the naive relay between A and B.
    bob.leave_muc(&room_a, "bob").await?;
    bob.join_muc(&room_b, "bob").await?;
    let relay = NaiveRelay::start(&server, &room_a, &room_b).await?;
    settle(&mut alice, Duration::from_millis(200)).await?;
    settle(&mut bob, Duration::from_millis(200)).await?;
    let result = measure("relay", &mut alice, bob, &room_a, &settings, &server).await;
    let stopped = relay.stop().await;
    let (mut bob, naive) = result?;
    stopped?;

    // 3. The gateway between A and B.
    let gateway = GatewayThread::start(gw_runtime, gateway_toml(&server)).await?;
    settle(&mut alice, Duration::from_millis(200)).await?;
    settle(&mut bob, Duration::from_millis(200)).await?;
    let result = measure("gateway", &mut alice, bob, &room_a, &settings, &server).await;
    let stopped = gateway.stop().await;
    let (_bob, through) = result?;
    stopped?;
    Ok(report(&settings, &direct, &naive, &through, hz))
}

fn report(settings: &Settings, direct: &Path, naive: &Path, gw: &Path, hz: f64) -> String {
    let rows = [("direct", direct), ("relay", naive), ("gateway", gw)];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nXMPP MUC -> MUC, one Prosody, STARTTLS on every stream, {} cores; gateway store under {}",
        std::thread::available_parallelism().map_or(0, usize::from),
        std::env::temp_dir().display()
    );
    let _ = writeln!(
        out,
        "direct:  Alice and Bob in lobby@{MUC_A}\n\
         relay:   Alice in lobby@{MUC_A}, Bob in lobby@{MUC_B}, a naive test-client relay between them\n\
         gateway: the same rooms federated by two client-mode adapters of the in-process gateway\n\
         CPU: % of one core over the run's wall time; clients = the test users (and the naive relay)\n"
    );
    let _ = writeln!(
        out,
        "saturating: {} messages as fast as the sender's stream takes them",
        settings.saturating
    );
    let _ = writeln!(
        out,
        "{:<8} {:>6} {:>5} {:>4} {:>8} {:>9} {:>9} {:>15} {:>9} {:>9}",
        "path",
        "recv",
        "lost",
        "dup",
        "wall s",
        "msg/s",
        "prosody",
        "prosody µs/msg",
        "gateway",
        "clients"
    );
    for (label, path) in rows {
        let p = &path.saturating;
        let _ = writeln!(
            out,
            "{:<8} {:>6} {:>5} {:>4} {:>8.3} {:>9.0} {:>8.0}% {:>15.0} {:>8.0}% {:>8.0}%",
            label,
            p.received,
            p.sent - p.received,
            p.duplicates,
            p.wall.as_secs_f64(),
            p.rate(),
            p.share(p.cpu.prosody, hz),
            1e6 * p.cpu.prosody as f64 / hz / p.received.max(1) as f64,
            p.share(p.cpu.gateway, hz),
            p.share(p.cpu.clients, hz),
        );
    }
    let _ = writeln!(
        out,
        "\npaced: {} messages at {} msg/s; latency = arrival - send, in ms",
        settings.paced, settings.rate
    );
    let _ = writeln!(
        out,
        "{:<8} {:>6} {:>5} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9}",
        "path", "recv", "lost", "p50", "p90", "p99", "max", "prosody", "gateway", "clients"
    );
    for (label, path) in rows {
        let p = &path.paced;
        let _ = writeln!(
            out,
            "{:<8} {:>6} {:>5} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.0}% {:>8.0}% {:>8.0}%",
            label,
            p.received,
            p.sent - p.received,
            p.percentile(0.50),
            p.percentile(0.90),
            p.percentile(0.99),
            p.percentile(1.0),
            p.share(p.cpu.prosody, hz),
            p.share(p.cpu.gateway, hz),
            p.share(p.cpu.clients, hz),
        );
    }
    let rate = |p: &Path| p.saturating.rate().max(1e-9);
    let added = |q: f64, base: &Path| gw.paced.percentile(q) - base.paced.percentile(q);
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    let ratio = rate(gw) / rate(direct);
    let (added50, added99) = (added(0.50, direct), added(0.99, direct));
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "throughput gateway/direct: {ratio:.2}x (target >= 0.90x: {}); gateway/relay: {:.2}x; relay/direct: {:.2}x",
        verdict(ratio >= 0.9),
        rate(gw) / rate(naive),
        rate(naive) / rate(direct),
    );
    let _ = writeln!(
        out,
        "added latency over direct: p50 {added50:+.3} ms (target <= +0.5: {}), p99 {added99:+.3} ms (target <= +2: {})",
        verdict(added50 <= 0.5),
        verdict(added99 <= 2.0),
    );
    let _ = writeln!(
        out,
        "added latency over relay:  p50 {:+.3} ms, p99 {:+.3} ms",
        added(0.50, naive),
        added(0.99, naive),
    );
    out
}

fn main() -> ExitCode {
    // Arguments (`cargo bench` passes `--bench`) are ignored.
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("xmpp_relay: {e}");
            return ExitCode::FAILURE;
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    let runtimes = tokio::runtime::Builder::new_multi_thread()
        .thread_name("gw-rt")
        .enable_all()
        .build()
        .and_then(|gw| {
            tokio::runtime::Builder::new_multi_thread()
                .thread_name("bench-users")
                .enable_all()
                .build()
                .map(|users| (gw, users))
        });
    let (gw_runtime, users_runtime) = match runtimes {
        Ok(r) => r,
        Err(e) => {
            eprintln!("xmpp_relay: starting the runtimes: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = users_runtime.block_on(bench(gw_runtime, settings));
    users_runtime.shutdown_timeout(Duration::from_secs(2));
    match outcome {
        Ok(table) => {
            println!("{table}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xmpp_relay: {e}");
            ExitCode::FAILURE
        }
    }
}
