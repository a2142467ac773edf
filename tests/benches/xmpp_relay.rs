//! MUC-to-MUC relay through the gateway beside MUC-to-MUC on Prosody alone,
//! on two Prosody servers, side by side in one run.
//!
//! Two private Prosody instances, A and B (each a process of its own, on
//! its own ports). Every path starts with Alice (`alice@a.localhost`, on A)
//! posting into `lobby@conference.a.localhost` on A:
//!
//! * direct: Bob (`bob@a.localhost`) is in the same room on A: one MUC
//!   broadcast on one server. The reference.
//! * relay: Bob (`bob@b.localhost`, on B) is in `lobby@conference.b.localhost`
//!   on B; a naive relay of two test clients (`bridge@a` in room A on A,
//!   `bridge@b` in room B on B) re-posts every message of A into B as
//!   `<nick> text`: no model, no queue, no fsync. What two rooms on two
//!   servers cost without the gateway.
//! * client: the same rooms federated by two client-mode adapters of an
//!   in-process gateway (the same accounts), with `TCP_NODELAY` (the
//!   default).
//! * client-nagle: the same with `tcp_nodelay = false` on both adapters.
//! * component: a client-mode adapter in room A on A, bridged with the
//!   component room `lobby%conference.a.localhost@gw.localhost` of a
//!   component-mode adapter (XEP-0114) on B, where Bob (`bob@b`) has
//!   joined: B routes the component's stanzas to Bob, with no MUC of its
//!   own in the path.
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
//! "Added" latency is a path's p50/p99 minus the direct path's; the ratio
//! is its saturating rate over the direct path's. Every c2s stream is
//! STARTTLS (the adapters always use TLS when offered, so the test users
//! do too), and every test client sets `TCP_NODELAY`. The gateway runs on
//! threads and a tokio runtime of its own (threads `gw-rt*`, plus sqlx's
//! `sqlx-sqlite-*`), the test users on another, so the CPU columns can
//! tell them apart (`/proc/<pid>/stat`, `/proc/self/task/*/stat`; 100 % is
//! one core). Each Prosody is one single-threaded process: at about 100 %
//! it is the bottleneck.
//!
//! Reading the µs/msg columns: at 200 msg/s each message wakes Prosody on
//! its own, so its per-message CPU there (~0.8 ms) is mostly the cost of a
//! wake-up; at saturation it reads several stanzas per wake-up (~0.25 ms).
//! A path that runs slower therefore also looks dearer per message. What
//! the client-mode adapter sends per relayed message is one groupchat
//! stanza (body and XEP-0359 origin-id, one TLS record, several per record
//! under load), and nothing else per message: no presence, receipt or
//! acknowledgement. Its only difference from the naive relay's stanza is
//! the origin-id and the longer ids (about 110 bytes), which the room
//! parses and copies to each occupant.
//!
//! Fairness on a small machine: in the direct path Prosody A can have a
//! core to itself. In the other paths two Prosody processes, the gateway
//! and the test clients all want CPU at once; on 2 cores they take turns,
//! so the bridged paths' figures include waiting for a core, and their
//! saturating rate is bounded by the machine rather than by any one
//! process. The printed core count says how much that applies.
//!
//! `cargo bench -p cpimgate-e2e --bench xmpp_relay`. Environment:
//! `XMPP_BENCH_N` (saturating messages, default 2000),
//! `XMPP_BENCH_PACED_N` (paced messages, default 1000), `XMPP_BENCH_RATE`
//! (paced rate in msg/s, default 200), `XMPP_BENCH_WARMUP` (default 200),
//! `XMPP_BENCH_ROUNDS` (default 3: every path is measured once per
//! round, in turn, and the rounds are pooled), `XMPP_BENCH_PATHS` (a
//! comma-separated subset of
//! `direct,relay,client,client-nagle,component`; default all),
//! `XMPP_BENCH_PROSODY_NODELAY=1` (Prosody's sockets without Nagle:
//! `network_settings = { nagle = false }`; its default is Nagle on, which
//! hits every path, the bridged ones once per hop),
//! `XMPP_BENCH_PROSODY_LOG` (Prosody's log level, default `info`; with
//! `debug` and `CPIMGATE_E2E_KEEP=1` the logs show every stanza),
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
use cpimgate_e2e::bench_report::{BenchResult, Headline, Series};
use cpimgate_e2e::gateway::Gateway;
use cpimgate_e2e::prosody::{
    COMPONENT_DOMAIN, COMPONENT_SECRET, HOST_A, HOST_B, MUC_A, MUC_B, Prosody, ProsodyOptions,
};
use cpimgate_e2e::xmpp_user::{XmppUser, body, is_groupchat_from, nick_of};
use futures::FutureExt as _;
use tokio::sync::oneshot;
use tokio_xmpp::Stanza;

/// How long Bob waits for the next message before counting the rest lost.
const IDLE: Duration = Duration::from_secs(10);
/// How long the gateway's adapters may take to log in and join.
const CONNECT: Duration = Duration::from_secs(30);

/// Every path, in the order they run.
const PATHS: [&str; 5] = ["direct", "relay", "client", "client-nagle", "component"];
/// The component room on B bridged with room A.
const COMPONENT_ROOM: &str = "lobby%conference.a.localhost@gw.localhost";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Settings {
    fn wants(&self, path: &str) -> bool {
        self.paths.iter().any(|p| p == path)
    }
}

struct Settings {
    saturating: usize,
    paced: usize,
    rate: u64,
    warmup: usize,
    rounds: usize,
    paths: Vec<String>,
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
            rounds: usize::try_from(var("XMPP_BENCH_ROUNDS", 3)?)?,
            paths: match std::env::var("XMPP_BENCH_PATHS") {
                Ok(v) => {
                    let paths: Vec<String> = v
                        .split(',')
                        .map(|p| p.trim().to_owned())
                        .filter(|p| !p.is_empty())
                        .collect();
                    if let Some(bad) = paths.iter().find(|p| !PATHS.contains(&p.as_str())) {
                        return Err(format!(
                            "XMPP_BENCH_PATHS: unknown path {bad:?} (known: {})",
                            PATHS.join(",")
                        )
                        .into());
                    }
                    paths
                }
                Err(_) => PATHS.iter().map(|p| (*p).to_owned()).collect(),
            },
        })
    }
}

/// Microseconds since the first call: the clock of send and arrival times.
fn micros() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    u64::try_from(EPOCH.get_or_init(Instant::now).elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// CPU time consumed, in clock ticks, by Prosody A and B, the gateway's
/// threads and the rest of this process (the test users).
#[derive(Clone, Copy, Default)]
struct Cpu {
    prosody: [u64; 2],
    gateway: u64,
    clients: u64,
}

impl Cpu {
    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            prosody: [
                self.prosody[0].saturating_sub(before.prosody[0]),
                self.prosody[1].saturating_sub(before.prosody[1]),
            ],
            gateway: self.gateway.saturating_sub(before.gateway),
            clients: self.clients.saturating_sub(before.clients),
        }
    }
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

/// The pids of Prosody A and B.
type Pids = [Option<u32>; 2];

fn cpu_now(pids: Pids) -> Cpu {
    let prosody = pids.map(|pid| {
        pid.and_then(|pid| stat_ticks(&format!("/proc/{pid}/stat")))
            .unwrap_or(0)
    });
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
    /// Several runs as one: counts, wall time and CPU added up, latencies
    /// together.
    fn pool(runs: Vec<Run>) -> Run {
        let mut out = Run {
            sent: 0,
            received: 0,
            duplicates: 0,
            wall: Duration::ZERO,
            latencies: Vec::new(),
            cpu: Cpu::default(),
        };
        for r in runs {
            out.sent += r.sent;
            out.received += r.received;
            out.duplicates += r.duplicates;
            out.wall += r.wall;
            out.latencies.extend(r.latencies);
            out.cpu.prosody[0] += r.cpu.prosody[0];
            out.cpu.prosody[1] += r.cpu.prosody[1];
            out.cpu.gateway += r.cpu.gateway;
            out.cpu.clients += r.cpu.clients;
        }
        out.latencies.sort_unstable();
        out
    }

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
#[allow(clippy::too_many_arguments)]
async fn run(
    alice: &mut XmppUser,
    bob: XmppUser,
    room: &str,
    tag: &str,
    n: usize,
    rate: Option<u64>,
    pids: Pids,
) -> Result<(XmppUser, Run), BoxError> {
    let receiver = tokio::spawn(receive(bob, tag.to_owned(), n));
    let cpu_before = cpu_now(pids);
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
    let cpu = cpu_now(pids).since(cpu_before);
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
        cpu,
    };
    Ok((bob, outcome))
}

/// The figures of one path in one round.
struct Path {
    saturating: Run,
    paced: Run,
}

/// The two servers.
struct Servers {
    a: Prosody,
    b: Prosody,
}

impl Servers {
    fn pids(&self) -> Pids {
        [self.a.pid(), self.b.pid()]
    }

    fn log_tails(&self) -> String {
        format!(
            "--- prosody A (tail) ---\n{}--- prosody B (tail) ---\n{}",
            self.a.log_tail(20),
            self.b.log_tail(20)
        )
    }
}

/// Warm-up, saturating run, paced run, from Alice in room A to Bob.
async fn measure(
    label: &'static str,
    alice: &mut XmppUser,
    bob: XmppUser,
    settings: &Settings,
    servers: &Servers,
) -> Result<(XmppUser, Path), BoxError> {
    let room_a = format!("lobby@{MUC_A}");
    let pids = servers.pids();
    settle(alice, Duration::from_millis(200)).await?;
    let mut bob = bob;
    settle(&mut bob, Duration::from_millis(200)).await?;
    eprintln!("{label}: warm-up ({} messages)", settings.warmup);
    let (bob, warm) = run(
        alice,
        bob,
        &room_a,
        &format!("{label}-warmup"),
        settings.warmup,
        None,
        pids,
    )
    .await?;
    if warm.received < warm.sent {
        return Err(format!(
            "{label}: only {} of {} warm-up messages arrived\n{}",
            warm.received,
            warm.sent,
            servers.log_tails()
        )
        .into());
    }
    eprintln!("{label}: saturating ({} messages)", settings.saturating);
    let (bob, saturating) = run(
        alice,
        bob,
        &room_a,
        &format!("{label}-saturating"),
        settings.saturating,
        None,
        pids,
    )
    .await?;
    eprintln!(
        "{label}: paced ({} messages at {} msg/s)",
        settings.paced, settings.rate
    );
    let (bob, paced) = run(
        alice,
        bob,
        &room_a,
        &format!("{label}-paced"),
        settings.paced,
        Some(settings.rate),
        pids,
    )
    .await?;
    Ok((bob, Path { saturating, paced }))
}

/// The client-mode adapter in room A on server A.
fn client_a(a: &Prosody, nodelay: bool) -> String {
    format!(
        r#"
        [adapters.xa]
        kind = "xmpp"
        mode = "client"
        jid = "bridge@{HOST_A}"
        password = "bridge-a-pw"
        server = "{addr}"
        insecure_accept_any_certificate = true
        tcp_nodelay = {nodelay}
        rooms = [ {{ room = "lobby@{MUC_A}", nick = "bridge" }} ]
        "#,
        addr = a.c2s_addr(),
    )
}

/// Room A on A and room B on B, federated by two client-mode adapters.
fn client_toml(servers: &Servers, nodelay: bool) -> String {
    format!(
        r#"
        [gateway]
        name = "gw-bench"
        {xa}
        [adapters.xb]
        kind = "xmpp"
        mode = "client"
        jid = "bridge@{HOST_B}"
        password = "bridge-b-pw"
        server = "{addr}"
        insecure_accept_any_certificate = true
        tcp_nodelay = {nodelay}
        rooms = [ {{ room = "lobby@{MUC_B}", nick = "bridge" }} ]
        [[bridge]]
        name = "lobby"
        rooms = [
          {{ adapter = "xa", address = "xmpp:lobby@{MUC_A}" }},
          {{ adapter = "xb", address = "xmpp:lobby@{MUC_B}" }},
        ]
        "#,
        xa = client_a(&servers.a, nodelay),
        addr = servers.b.c2s_addr(),
    )
}

/// Room A on A (client mode) federated with a component room on B.
fn component_toml(servers: &Servers) -> String {
    format!(
        r#"
        [gateway]
        name = "gw-bench"
        {xa}
        [adapters.xc]
        kind = "xmpp"
        mode = "component"
        domain = "{COMPONENT_DOMAIN}"
        secret = "{COMPONENT_SECRET}"
        server = "{addr}"
        [[bridge]]
        name = "lobby"
        rooms = [
          {{ adapter = "xa", address = "xmpp:lobby@{MUC_A}" }},
          {{ adapter = "xc", address = "xmpp:{room}" }},
        ]
        "#,
        xa = client_a(&servers.a, true),
        addr = servers.b.component_addr(),
        room = COMPONENT_ROOM.replace('%', "%25"),
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
    /// Start the gateway and wait until every adapter in `adapters` is
    /// connected (client mode: joined its rooms).
    async fn start(toml: String, adapters: &[&str]) -> Result<GatewayThread, BoxError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name("gw-rt")
            .enable_all()
            .build()?;
        let adapters: Vec<String> = adapters.iter().map(|a| (*a).to_owned()).collect();
        let (ready_tx, ready_rx) = oneshot::channel::<Result<(), String>>();
        let (stop, stop_rx) = oneshot::channel::<()>();
        let (done_tx, done) = oneshot::channel();
        std::thread::Builder::new()
            .name("gw-rt-main".into())
            .spawn(move || {
                let outcome = runtime.block_on(async move {
                    let started = async {
                        let gateway = Gateway::start(&toml, Vec::new()).await?;
                        for a in &adapters {
                            gateway.wait_connected(a, CONNECT).await?;
                        }
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
/// no fsync, no delivery tracking.
struct NaiveRelay {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), HarnessError>>,
}

impl NaiveRelay {
    async fn start(servers: &Servers, room_a: &str, room_b: &str) -> Result<NaiveRelay, BoxError> {
        let mut from =
            XmppUser::connect_starttls(&servers.a, &format!("bridge@{HOST_A}"), "bridge-a-pw")
                .await?;
        let mut to =
            XmppUser::connect_starttls(&servers.b, &format!("bridge@{HOST_B}"), "bridge-b-pw")
                .await?;
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

async fn bench(settings: Settings) -> Result<String, BoxError> {
    let hz = clock_ticks_per_second();
    let _ = micros();
    // Info in Prosody's log is a few lines per connection, not per stanza;
    // debug (every stanza's opening tag) is for looking, not measuring.
    let level = std::env::var("XMPP_BENCH_PROSODY_LOG").unwrap_or_else(|_| "info".to_owned());
    let mut options = ProsodyOptions::default().log_level(&level);
    let prosody_nodelay = std::env::var_os("XMPP_BENCH_PROSODY_NODELAY").is_some();
    if prosody_nodelay {
        // server_epoll's default is `nagle = true`: Prosody's own small
        // writes to the clients may wait for their delayed ACKs.
        options = options.global("network_settings = { nagle = false }");
    }
    let servers = Servers {
        a: Prosody::start_with(options.clone()).await?,
        b: Prosody::start_with(options).await?,
    };
    for (user, host, pw) in [
        ("alice", HOST_A, "alice-pw"),
        ("bob", HOST_A, "bob-pw"),
        ("bridge", HOST_A, "bridge-a-pw"),
    ] {
        servers.a.register(user, host, pw).await?;
    }
    for (user, host, pw) in [("bob", HOST_B, "bob-pw"), ("bridge", HOST_B, "bridge-b-pw")] {
        servers.b.register(user, host, pw).await?;
    }
    let room_a = format!("lobby@{MUC_A}");
    let room_b = format!("lobby@{MUC_B}");

    let mut alice = XmppUser::connect_starttls(&servers.a, "alice@a.localhost", "alice-pw").await?;
    alice.join_muc(&room_a, "alice").await?;
    let mut bob_a = XmppUser::connect_starttls(&servers.a, "bob@a.localhost", "bob-pw").await?;
    let mut bob_b = XmppUser::connect_starttls(&servers.b, "bob@b.localhost", "bob-pw").await?;

    // Rounds of every path in turn, so that a burst of other load on the
    // machine is spread over the paths rather than landing on one.
    let mut rounds: Vec<(&'static str, Vec<Path>)> = PATHS
        .iter()
        .filter(|p| settings.wants(p))
        .map(|p| (*p, Vec::new()))
        .collect();
    for round in 1..=settings.rounds {
        eprintln!("round {round} of {}", settings.rounds);
        for (label, runs) in &mut rounds {
            let label: &'static str = label;
            let path = match label {
                // Bob on A in room A.
                "direct" => {
                    bob_a.join_muc(&room_a, "bob").await?;
                    let (b, path) = measure(label, &mut alice, bob_a, &settings, &servers).await?;
                    bob_a = b;
                    bob_a.leave_muc(&room_a, "bob").await?;
                    path
                }
                // Bob on B in room B, the naive relay between the rooms.
                "relay" => {
                    bob_b.join_muc(&room_b, "bob").await?;
                    let relay = NaiveRelay::start(&servers, &room_a, &room_b).await?;
                    let result = measure(label, &mut alice, bob_b, &settings, &servers).await;
                    let stopped = relay.stop().await;
                    let (b, path) = result?;
                    stopped?;
                    bob_b = b;
                    bob_b.leave_muc(&room_b, "bob").await?;
                    path
                }
                // Bob on B in room B, the gateway's client mode between.
                "client" | "client-nagle" => {
                    bob_b.join_muc(&room_b, "bob").await?;
                    let gateway = GatewayThread::start(
                        client_toml(&servers, label == "client"),
                        &["xa", "xb"],
                    )
                    .await?;
                    let result = measure(label, &mut alice, bob_b, &settings, &servers).await;
                    let stopped = gateway.stop().await;
                    let (b, path) = result?;
                    stopped?;
                    bob_b = b;
                    bob_b.leave_muc(&room_b, "bob").await?;
                    path
                }
                // Bob on B in the component room, once the component is
                // there.
                _ => {
                    let gateway =
                        GatewayThread::start(component_toml(&servers), &["xa", "xc"]).await?;
                    let result = async {
                        bob_b.join_muc(COMPONENT_ROOM, "bob").await?;
                        let (mut b, path) =
                            measure(label, &mut alice, bob_b, &settings, &servers).await?;
                        b.leave_muc(COMPONENT_ROOM, "bob").await?;
                        Ok::<_, BoxError>((b, path))
                    }
                    .await;
                    let stopped = gateway.stop().await;
                    let (b, path) = result?;
                    stopped?;
                    bob_b = b;
                    path
                }
            };
            runs.push(path);
        }
    }
    let paths: Vec<Pooled> = rounds
        .into_iter()
        .map(|(label, runs)| Pooled::new(label, runs))
        .collect();
    let table = report(&settings, &paths, hz, prosody_nodelay);
    result(&paths, &table).save_and_say();
    Ok(table)
}

/// The headline figures of the report (`tests/benches/report.rs`): the
/// bridged paths beside Prosody's own MUC→MUC and the naive relay.
fn result(paths: &[Pooled], table: &str) -> BenchResult {
    let mut r = BenchResult::new("xmpp_relay");
    r.details = format!("```\n{}\n```", table.trim());
    let find = |label: &str| paths.iter().find(|p| p.label == label);
    let rate = |p: Option<&Pooled>| p.map_or(f64::NAN, |p| p.saturating.rate());
    let direct = find("direct");
    let relay = find("relay");
    let added = |p: Option<&Pooled>, q: f64| match (p, direct) {
        (Some(p), Some(d)) => p.paced.percentile(q) - d.paced.percentile(q),
        _ => f64::NAN,
    };
    for label in ["component", "client"] {
        let path = find(label);
        if path.is_none() {
            continue;
        }
        r.headline.push(
            Headline::new(
                &format!("{label}: MUC → MUC, msg/s"),
                rate(path),
                "Prosody alone (direct)",
                rate(direct),
            )
            .target("≥ 0.9×"),
        );
        r.headline.push(Headline::new(
            &format!("{label}: MUC → MUC, msg/s"),
            rate(path),
            "naive relay, no gateway",
            rate(relay),
        ));
        r.headline.push(
            Headline::new(
                &format!("{label}: paced, added p50 ms"),
                added(path, 0.5),
                "naive relay",
                added(relay, 0.5),
            )
            .target("≤ +0.5 ms"),
        );
        r.headline.push(
            Headline::new(
                &format!("{label}: paced, added p99 ms"),
                added(path, 0.99),
                "naive relay",
                added(relay, 0.99),
            )
            .target("≤ +2 ms"),
        );
    }
    for p in paths {
        r.latencies
            .push(Series::of_micros(p.label, &p.paced.latencies));
    }
    r
}

/// The rounds of one path, pooled: messages, wall time, CPU and latencies
/// added up, so rates and shares are over all rounds together.
struct Pooled {
    label: &'static str,
    saturating: Run,
    paced: Run,
    /// The saturating rate of each round.
    rates: Vec<f64>,
}

impl Pooled {
    fn new(label: &'static str, runs: Vec<Path>) -> Pooled {
        let rates = runs.iter().map(|p| p.saturating.rate()).collect();
        let (saturating, paced): (Vec<Run>, Vec<Run>) =
            runs.into_iter().map(|p| (p.saturating, p.paced)).unzip();
        Pooled {
            label,
            saturating: Run::pool(saturating),
            paced: Run::pool(paced),
            rates,
        }
    }
}

fn report(settings: &Settings, paths: &[Pooled], hz: f64, prosody_nodelay: bool) -> String {
    let mut out = String::new();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let _ = writeln!(
        out,
        "\nXMPP MUC -> MUC on two Prosody servers (A, B), STARTTLS on every c2s stream, \
         {cores} cores; gateway store under {}; Prosody's own sockets: {}",
        std::env::temp_dir().display(),
        if prosody_nodelay {
            "TCP_NODELAY"
        } else {
            "Nagle (its default)"
        }
    );
    let _ = writeln!(
        out,
        "direct:       Alice and Bob in lobby@{MUC_A} on A\n\
         relay:        Alice in lobby@{MUC_A} on A, Bob in lobby@{MUC_B} on B, a naive test-client relay\n\
         client:       the same rooms federated by two client-mode adapters (TCP_NODELAY)\n\
         client-nagle: the same, tcp_nodelay = false\n\
         component:    room A (client mode on A) federated with the component room {COMPONENT_ROOM} on B\n\
         CPU: % of one core over the run's wall time; clients = the test users (and the naive relay)"
    );
    if cores <= 2 {
        let _ = writeln!(
            out,
            "NOTE: {cores} cores for two Prosody processes, the gateway and the clients: the \
             bridged paths wait for a core; direct does not."
        );
    }
    let _ = writeln!(
        out,
        "\n{} rounds, pooled. saturating: {} messages per round as fast as the sender's stream \
         takes them; msg/s over all rounds, and the slowest and fastest round",
        settings.rounds, settings.saturating
    );
    let _ = writeln!(
        out,
        "{:<13} {:>5} {:>4} {:>3} {:>6} {:>6} {:>11} {:>6} {:>6} {:>6} {:>8} {:>8} {:>6} {:>6}",
        "path",
        "recv",
        "lost",
        "dup",
        "wall s",
        "msg/s",
        "min-max",
        "ratio",
        "pros A",
        "pros B",
        "A µs/msg",
        "B µs/msg",
        "gw",
        "client"
    );
    let direct = paths.iter().find(|p| p.label == "direct");
    let rate = |p: &Pooled| p.saturating.rate().max(1e-9);
    for path in paths {
        let p = &path.saturating;
        let per_msg = |ticks: u64| 1e6 * ticks as f64 / hz / p.received.max(1) as f64;
        let _ = writeln!(
            out,
            "{:<13} {:>5} {:>4} {:>3} {:>6.2} {:>6.0} {:>11} {:>5.2}x {:>5.0}% {:>5.0}% {:>8.0} {:>8.0} {:>5.0}% {:>5.0}%",
            path.label,
            p.received,
            p.sent - p.received,
            p.duplicates,
            p.wall.as_secs_f64(),
            p.rate(),
            format!(
                "{:.0}-{:.0}",
                path.rates.iter().copied().fold(f64::INFINITY, f64::min),
                path.rates.iter().copied().fold(0.0, f64::max)
            ),
            direct.map_or(f64::NAN, |d| rate(path) / rate(d)),
            p.share(p.cpu.prosody[0], hz),
            p.share(p.cpu.prosody[1], hz),
            per_msg(p.cpu.prosody[0]),
            per_msg(p.cpu.prosody[1]),
            p.share(p.cpu.gateway, hz),
            p.share(p.cpu.clients, hz),
        );
    }
    let _ = writeln!(
        out,
        "\npaced: {} messages per round at {} msg/s; latency = arrival - send, in ms; +p50/+p99 = added over direct",
        settings.paced, settings.rate
    );
    let _ = writeln!(
        out,
        "{:<13} {:>5} {:>4} {:>6} {:>6} {:>6} {:>6} {:>7} {:>7} {:>6} {:>6} {:>8} {:>8} {:>6} {:>6}",
        "path",
        "recv",
        "lost",
        "p50",
        "p90",
        "p99",
        "max",
        "+p50",
        "+p99",
        "pros A",
        "pros B",
        "A µs/msg",
        "B µs/msg",
        "gw",
        "client"
    );
    let added = |path: &Pooled, q: f64| {
        direct.map_or(f64::NAN, |d| {
            path.paced.percentile(q) - d.paced.percentile(q)
        })
    };
    for path in paths {
        let p = &path.paced;
        let per_msg = |ticks: u64| 1e6 * ticks as f64 / hz / p.received.max(1) as f64;
        let _ = writeln!(
            out,
            "{:<13} {:>5} {:>4} {:>6.3} {:>6.3} {:>6.3} {:>6.3} {:>+7.3} {:>+7.3} {:>5.0}% {:>5.0}% {:>8.0} {:>8.0} {:>5.0}% {:>5.0}%",
            path.label,
            p.received,
            p.sent - p.received,
            p.percentile(0.50),
            p.percentile(0.90),
            p.percentile(0.99),
            p.percentile(1.0),
            added(path, 0.50),
            added(path, 0.99),
            p.share(p.cpu.prosody[0], hz),
            p.share(p.cpu.prosody[1], hz),
            per_msg(p.cpu.prosody[0]),
            per_msg(p.cpu.prosody[1]),
            p.share(p.cpu.gateway, hz),
            p.share(p.cpu.clients, hz),
        );
    }
    if direct.is_some() {
        let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
        let _ = writeln!(
            out,
            "\ntargets: throughput >= 0.90x direct; added latency <= +0.5 ms p50, <= +2 ms p99"
        );
        for path in paths.iter().filter(|p| p.label != "direct") {
            let ratio = direct.map_or(f64::NAN, |d| rate(path) / rate(d));
            let (a50, a99) = (added(path, 0.50), added(path, 0.99));
            let _ = writeln!(
                out,
                "{:<13} {ratio:.2}x ({}), p50 {a50:+.3} ms ({}), p99 {a99:+.3} ms ({})",
                path.label,
                verdict(ratio >= 0.9),
                verdict(a50 <= 0.5),
                verdict(a99 <= 2.0),
            );
        }
    }
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

    let users_runtime = match tokio::runtime::Builder::new_multi_thread()
        .thread_name("bench-users")
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("xmpp_relay: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = users_runtime.block_on(bench(settings));
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
