//! One MSRP chat room of the gateway (RFC 7701) with many participants
//! and one sender, bridged with a MUC room and an IRC channel: how fast
//! the switch fans a message out, at what latency, what a participant
//! costs in memory, and how that compares with a raw TCP relay of the
//! same bytes.
//!
//! The gateway is the `cpimgate` binary as a process of its own
//! ([`GatewayProcess`]) with one MSRP room, bridged (unless
//! `MSRP_BENCH_BRIDGE=0`) through the XMPP component with a MUC room on a
//! private Prosody and through the IRC adapter (relay mode) with a channel
//! on a private InspIRCd: a message goes from the sender to the switch, to
//! every other participant, and through the hub to the MUC room (one XMPP
//! user, Alice) and the channel (one IRC user, ircbob). The participants
//! are the test UA of `cpimgate_e2e::msrp_ua` (SIP INVITE over UDP, MSRP
//! over TCP), all in this process, on one clock; every body is
//! `r<run> <seq> <send time µs>`. The bridged worlds' copies are counted
//! apart: the deliveries/s are the switch's.
//!
//! 1. RSS of the gateway idle, then with N participants joined (32 joins
//!    at a time): memory per participant = (joined − idle) / N.
//! 2. Every participant but the sender reads on a task of its own, which
//!    answers each SEND (200, the switch asks for it) and timestamps
//!    each message it completes.
//! 3. A warm-up of W messages, then K rounds of M messages written as
//!    fast as the sender's connection takes them (without waiting for
//!    responses); the round of median rate is the headline:
//!    deliveries/s = copies received / (last arrival − first send);
//!    latency of every copy (arrival − send) and of each message's last
//!    copy. CPU of the gateway process and of this process meanwhile.
//! 4. P messages paced at R msg/s: latencies where the switch keeps up.
//! 5. Unless `MSRP_BENCH_RAW=0`, the physical reference: K rounds of M
//!    SENDs of the same size fanned out to the same number of receivers
//!    by a loopback TCP relay that only copies bytes (`raw`); the switch's
//!    rate as a fraction of it.
//!
//! The receivers are in this process on the same cores as the gateway:
//! on a small machine they take a large share of the CPU, so the rate is
//! a floor of what the switch alone could do. A copy that never arrives
//! (15 s without any arrival ends a run) is reported as missing and the
//! benchmark exits with a failure: the room must not lose any. Figures
//! only: nothing here asserts a speed.
//!
//! Build the binary first: `cargo build --profile bench -p cpimgate`,
//! then `cargo bench -p cpimgate-e2e --bench msrp_room` (or
//! `tests/bench/run msrp_room`, which does both); `CPIMGATE_BIN` runs
//! another binary. Environment: `MSRP_BENCH_PARTICIPANTS` (N, default
//! 1000), `MSRP_BENCH_MESSAGES` (M, 200), `MSRP_BENCH_PACED` (P, 100),
//! `MSRP_BENCH_RATE` (R, 20), `MSRP_BENCH_WARMUP` (W, 10),
//! `MSRP_BENCH_ROUNDS` (K, 3). N participants take about 2N open files
//! here (a UDP and a TCP socket each) and N in the gateway: with a lower
//! `ulimit -n` the benchmark says so and stops.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use cpimgate_e2e::bench::{
    clock_ticks_per_second, env_u64, micros, open_files_limit, percentile_ms,
};
use cpimgate_e2e::bench_report::{BenchResult, Headline, Series};
use cpimgate_e2e::gateway_process::{GatewayProcess, cpu_ticks, rss_kib};
use cpimgate_e2e::inspircd::{Inspircd, SERVER_NAME};
use cpimgate_e2e::irc_user::IrcUser;
use cpimgate_e2e::msrp_ua::{JoinOptions, MsrpUa};
use cpimgate_e2e::prosody::{COMPONENT_DOMAIN, COMPONENT_SECRET, HOST_A, Prosody, free_port};
use cpimgate_e2e::xmpp_user::{XmppUser, body};
use futures::StreamExt as _;
use tokio::sync::mpsc;
use tokio_xmpp::Stanza;
use xmpp_parsers::message::MessageType;

const DOMAIN: &str = "chat.localhost";
const ROOM: &str = "sip:bench@chat.localhost";
/// How long a run waits for the next copy before counting the rest
/// missing.
const IDLE: Duration = Duration::from_secs(15);
const READY: Duration = Duration::from_secs(30);
/// How long the sender waits for the responses of a run.
const ANSWERS: Duration = Duration::from_secs(600);
/// Joins in flight at once.
const JOINING: usize = 32;
/// The issue's targets.
const DELIVERIES_TARGET: f64 = 50_000.0;
const KIB_PER_PARTICIPANT_TARGET: f64 = 8.0;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Settings {
    participants: usize,
    messages: usize,
    paced: usize,
    rate: u64,
    warmup: usize,
    rounds: usize,
    /// Bridge the room with a MUC room (XMPP component on Prosody) and an
    /// IRC channel (relay mode on InspIRCd), one receiver in each.
    bridge: bool,
    /// Also fan the same bytes out through a raw loopback TCP relay.
    raw: bool,
}

impl Settings {
    fn from_env() -> Result<Settings, BoxError> {
        let var = |name: &str, default: u64| -> Result<usize, BoxError> {
            Ok(usize::try_from(env_u64(name, default)?)?)
        };
        let settings = Settings {
            participants: var("MSRP_BENCH_PARTICIPANTS", 1000)?,
            messages: var("MSRP_BENCH_MESSAGES", 200)?.max(1),
            paced: var("MSRP_BENCH_PACED", 100)?,
            rate: env_u64("MSRP_BENCH_RATE", 20)?.max(1),
            warmup: var("MSRP_BENCH_WARMUP", 10)?,
            rounds: var("MSRP_BENCH_ROUNDS", 3)?.max(1),
            bridge: env_u64("MSRP_BENCH_BRIDGE", 1)? != 0,
            raw: env_u64("MSRP_BENCH_RAW", 1)? != 0,
        };
        if settings.participants < 2 {
            return Err("MSRP_BENCH_PARTICIPANTS: a sender and at least one receiver".into());
        }
        Ok(settings)
    }
}

/// Fails early, saying what to do, when N participants cannot have their
/// sockets here (2 per participant) or in the gateway (1 each), which
/// inherits this limit.
fn check_open_files(participants: usize) -> Result<(), BoxError> {
    let Some((soft, hard)) = open_files_limit() else {
        eprintln!("msrp_room: the open-file limit is unknown (no /proc/self/limits)");
        return Ok(());
    };
    // The raw relay's 2 sockets per receiver come after the room closed.
    let needed = 2 * participants as u64 + 128;
    if soft >= needed {
        return Ok(());
    }
    Err(format!(
        "{participants} participants need about {needed} open files in this process \
         (a UDP and a TCP socket each) but `ulimit -n` is {soft} (hard limit {hard}): \
         run `ulimit -n {needed}` in this shell first (as root above the hard limit, \
         or in /etc/security/limits.conf), or lower MSRP_BENCH_PARTICIPANTS"
    )
    .into())
}

/// A copy of a message as one receiver completed it.
#[derive(Clone, Copy, Debug)]
struct Arrival {
    receiver: u32,
    run: u32,
    seq: u32,
    sent: u64,
    at: u64,
}

/// `r<run> <seq> <µs>`, maybe after a relay's `<nick> `.
fn parse_body(text: &str) -> Option<(u32, u32, u64)> {
    let words: Vec<&str> = text.split_whitespace().collect();
    words.windows(3).find_map(|w| {
        let run = w.first()?.strip_prefix('r')?.parse().ok()?;
        let seq = w.get(1)?.parse().ok()?;
        let sent = w.get(2)?.parse().ok()?;
        Some((run, seq, sent))
    })
}

/// Reads everything `ua` is sent until its connection ends; the copies
/// of benchmark messages go to `arrivals`.
fn spawn_receiver(receiver: u32, mut ua: MsrpUa, arrivals: mpsc::Sender<Arrival>) {
    tokio::spawn(async move {
        // Ends when the gateway closes the room (or the benchmark ends).
        while let Ok(m) = ua.next_message(Duration::from_secs(3600)).await {
            let at = micros();
            let Some((run, seq, sent)) = parse_body(&m.text) else {
                continue;
            };
            let arrival = Arrival {
                receiver,
                run,
                seq,
                sent,
                at,
            };
            if arrivals.send(arrival).await.is_err() {
                return;
            }
        }
    });
}

/// What one run saw.
#[derive(Debug, Default)]
struct Run {
    messages: usize,
    expected: usize,
    received: usize,
    duplicates: usize,
    /// Copies that came after a later message's copy to the same receiver.
    reordered: usize,
    /// SEND responses other than 200.
    refused: usize,
    first_send: u64,
    last_arrival: u64,
    /// Of the sender: the last SEND written and the last response in,
    /// µs after the first send.
    posted_in: u64,
    answered_in: u64,
    /// CPU, % of one core: the gateway, this process, every other
    /// process of the machine (work that competed for the same cores),
    /// and the time the hypervisor gave to other machines (steal).
    cpu: [f64; 4],
    /// Context switches of all threads per copy received: the gateway,
    /// this process (how often a task slept and was woken).
    switches_per_copy: [f64; 2],
    /// Every copy's latency, µs.
    latencies: Vec<u64>,
    /// Each message's last copy's latency, µs.
    last_copy: Vec<u64>,
    /// The copies of the bridged worlds' receivers (XMPP, IRC): how many
    /// arrived, and their latencies, µs.
    bridged: [(usize, Vec<u64>); 2],
    /// Copies expected by each bridged world's receiver (0: no bridge).
    bridged_expected: usize,
}

impl Run {
    fn deliveries_per_second(&self) -> f64 {
        let span = self.last_arrival.saturating_sub(self.first_send).max(1);
        self.received as f64 * 1e6 / span as f64
    }

    fn missing(&self) -> usize {
        self.expected.saturating_sub(self.received) + self.bridged_missing()
    }

    /// Copies the bridged worlds' receivers did not get.
    fn bridged_missing(&self) -> usize {
        self.bridged
            .iter()
            .map(|(received, _)| self.bridged_expected.saturating_sub(*received))
            .sum()
    }
}

/// The sender, the arrivals of every receiver, the gateway's pid.
struct Room {
    sender: Option<MsrpUa>,
    arrivals: mpsc::Receiver<Arrival>,
    receivers: usize,
    /// Receivers of bridged worlds (numbered after the MSRP ones).
    bridged: usize,
    pid: u32,
    hz: f64,
}

impl Room {
    /// Run `run`: `n` messages from the sender, paced at `rate` msg/s or
    /// as fast as its connection takes them; the copies collected until
    /// all are in or `IDLE` passes without one.
    async fn run(&mut self, run: u32, n: usize, rate: Option<u64>) -> Result<Run, BoxError> {
        let mut ua = self.sender.take().ok_or("the sender is gone")?;
        let cpu_before = Cpu::now(self.pid);
        let first_send = micros();
        let sending = tokio::spawn(async move {
            let start = Instant::now();
            let mut tids = Vec::with_capacity(n);
            for i in 0..n {
                if let Some(rate) = rate {
                    let at = start + Duration::from_micros(i as u64 * 1_000_000 / rate);
                    tokio::time::sleep_until(at.into()).await;
                }
                tids.push(ua.post(ROOM, &format!("r{run} {i} {}", micros())).await?);
            }
            let posted = micros();
            // A slow switch answers late; a lost answer fails the run.
            let statuses = ua.statuses(&tids, ANSWERS).await?;
            let answered = micros();
            Ok::<_, cpimgate_e2e::HarnessError>((ua, statuses, posted, answered))
        });

        let mut r = Run {
            messages: n,
            expected: n * self.receivers,
            bridged_expected: if self.bridged > 0 { n } else { 0 },
            first_send,
            ..Run::default()
        };
        let mut seen = vec![false; self.receivers * n];
        let mut highest: Vec<Option<u32>> = vec![None; self.receivers];
        let mut last_copy = vec![0u64; n];
        let mut bridged_seen = vec![false; self.bridged * n];
        let bridged_expected = self.bridged * n;
        let mut bridged_received = 0;
        while r.received < r.expected || bridged_received < bridged_expected {
            let a = match tokio::time::timeout(IDLE, self.arrivals.recv()).await {
                Ok(Some(a)) => a,
                Ok(None) | Err(_) => break,
            };
            if a.run != run {
                continue;
            }
            let (who, seq) = (a.receiver as usize, a.seq as usize);
            if let Some(world) = who.checked_sub(self.receivers) {
                // A bridged world's copy: tallied apart, so that the
                // switch's rate is its own.
                let fresh = bridged_seen
                    .get_mut(world * n + seq)
                    .filter(|_| seq < n)
                    .is_some_and(|slot| !std::mem::replace(slot, true));
                if let (true, Some(tally)) = (fresh, r.bridged.get_mut(world)) {
                    tally.0 += 1;
                    tally.1.push(a.at.saturating_sub(a.sent));
                    bridged_received += 1;
                }
                continue;
            }
            let Some(slot) = seen.get_mut(who * n + seq).filter(|_| seq < n) else {
                continue;
            };
            if *slot {
                r.duplicates += 1;
                continue;
            }
            *slot = true;
            if let Some(h) = highest.get_mut(who) {
                if h.is_some_and(|h| a.seq < h) {
                    r.reordered += 1;
                }
                *h = Some(h.map_or(a.seq, |h| h.max(a.seq)));
            }
            let latency = a.at.saturating_sub(a.sent);
            r.received += 1;
            r.last_arrival = r.last_arrival.max(a.at);
            r.latencies.push(latency);
            if let Some(l) = last_copy.get_mut(seq) {
                *l = (*l).max(latency);
            }
        }
        let cpu_after = Cpu::now(self.pid);
        r.cpu = cpu_before.until(&cpu_after, self.hz);
        let copies = r.received.max(1) as f64;
        r.switches_per_copy = [
            cpu_after
                .gateway_switches
                .saturating_sub(cpu_before.gateway_switches) as f64
                / copies,
            cpu_after
                .own_switches
                .saturating_sub(cpu_before.own_switches) as f64
                / copies,
        ];
        let (ua, statuses, posted, answered) = sending.await??;
        self.sender = Some(ua);
        r.refused = statuses.iter().filter(|s| **s != 200).count();
        r.posted_in = posted.saturating_sub(first_send);
        r.answered_in = answered.saturating_sub(first_send);
        r.last_copy = last_copy;
        Ok(r)
    }
}

/// CPU time so far, in clock ticks: the gateway, this process, the
/// whole machine (busy, steal).
struct Cpu {
    gateway: u64,
    own: u64,
    busy: u64,
    steal: u64,
    gateway_switches: u64,
    own_switches: u64,
    at: Instant,
}

impl Cpu {
    fn now(gateway: u32) -> Cpu {
        let (busy, steal) = machine_ticks().unwrap_or_default();
        Cpu {
            gateway: cpu_ticks(gateway).unwrap_or(0),
            own: cpu_ticks(std::process::id()).unwrap_or(0),
            busy,
            steal,
            gateway_switches: context_switches(gateway),
            own_switches: context_switches(std::process::id()),
            at: Instant::now(),
        }
    }

    /// % of one core from `self` to `later`: the gateway, this process,
    /// the other processes, steal.
    fn until(&self, later: &Cpu, hz: f64) -> [f64; 4] {
        let secs = later.at.duration_since(self.at).as_secs_f64().max(1e-9);
        let pct = |ticks: u64| ticks as f64 / hz / secs * 100.0;
        let gateway = later.gateway.saturating_sub(self.gateway);
        let own = later.own.saturating_sub(self.own);
        let others = later
            .busy
            .saturating_sub(self.busy)
            .saturating_sub(gateway + own);
        [
            pct(gateway),
            pct(own),
            pct(others),
            pct(later.steal.saturating_sub(self.steal)),
        ]
    }
}

/// Context switches (voluntary and not) of every thread of `pid`.
fn context_switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .flat_map(|status| {
            status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

/// Busy and steal ticks of all CPUs of the machine (`/proc/stat`).
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest is in user)
    let busy = [0, 1, 2, 5, 6]
        .iter()
        .map(|i| v.get(*i).copied().unwrap_or(0))
        .sum();
    Some((busy, v.get(7).copied().unwrap_or(0)))
}

/// What the whole benchmark measured.
struct Figures {
    binary: String,
    joined_in: Duration,
    rss_idle: u64,
    rss_joined: u64,
    rss_after: u64,
    warmup: Run,
    /// The saturating rounds, in order.
    saturating: Vec<Run>,
    paced: Option<Run>,
    warnings: Vec<String>,
    /// The raw TCP relay's rounds, same receivers and messages.
    raw: Vec<raw::RawRun>,
}

impl Figures {
    fn kib_per_participant(&self, participants: usize) -> f64 {
        self.rss_joined.saturating_sub(self.rss_idle) as f64 / participants as f64
    }

    fn missing(&self) -> usize {
        self.warmup.missing()
            + self.saturating_missing()
            + self.paced.as_ref().map_or(0, Run::missing)
    }

    fn saturating_missing(&self) -> usize {
        self.saturating.iter().map(Run::missing).sum()
    }

    /// The raw relay's round of median rate.
    fn raw_median(&self) -> Option<&raw::RawRun> {
        let mut rounds: Vec<&raw::RawRun> = self.raw.iter().collect();
        rounds.sort_by(|a, b| {
            a.deliveries_per_second()
                .total_cmp(&b.deliveries_per_second())
        });
        rounds.get(rounds.len().saturating_sub(1) / 2).copied()
    }

    /// The saturating round of median rate (the lower one of an even
    /// count).
    fn median_round(&self) -> Option<&Run> {
        let mut rounds: Vec<&Run> = self.saturating.iter().collect();
        rounds.sort_by(|a, b| {
            a.deliveries_per_second()
                .total_cmp(&b.deliveries_per_second())
        });
        rounds.get(rounds.len().saturating_sub(1) / 2).copied()
    }
}

/// A log line without its terminal colours.
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ parameters final-letter
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The gateway's config: the room, and with `peers` the XMPP component
/// and the IRC relay it is bridged with.
fn gateway_toml(sip_port: u16, peers: Option<(&Prosody, &Inspircd)>) -> String {
    let bridge = peers.map_or_else(String::new, |(prosody, ircd)| {
        format!(
            r##"
[adapters.irc]
kind = "irc"
network = "{SERVER_NAME}"
server = "{irc}"
nick = "bridge"
channels = ["#bench"]
flood_rate = 1000000.0
flood_burst = 1000000

[adapters.xc]
kind = "xmpp"
mode = "component"
domain = "{COMPONENT_DOMAIN}"
secret = "{COMPONENT_SECRET}"
server = "127.0.0.1:{component}"

[[bridge]]
name = "bench"
rooms = [
  {{ adapter = "chat", address = "{ROOM}" }},
  {{ adapter = "irc", address = "irc://{SERVER_NAME}/%23bench" }},
  {{ adapter = "xc", address = "{MUC}" }},
]
"##,
            irc = ircd.addr(),
            component = prosody.component_port(),
            MUC = muc_address(),
        )
    });
    format!(
        r#"
[gateway]
name = "gw-msrp-bench"
domains = ["{COMPONENT_DOMAIN}"]

[store]
path = "{{dir}}/gateway.sqlite"

[log]
level = "warn"

[adapters.chat]
kind = "msrp"
domain = "{DOMAIN}"
sip_udp = ["127.0.0.1:{sip_port}"]
sip_tcp = ["127.0.0.1:{sip_port}"]
msrp = "127.0.0.1:0"

[[adapters.chat.rooms]]
name = "bench"
{bridge}"#
    )
}

/// The bridged MUC room's JID.
fn muc_jid() -> String {
    format!("#bench%{SERVER_NAME}@{COMPONENT_DOMAIN}")
}

/// The bridged MUC room as a bridge address.
fn muc_address() -> String {
    format!("xmpp:%23bench%25{SERVER_NAME}@{COMPONENT_DOMAIN}")
}

/// The receivers of the bridged worlds: Alice in the MUC room (receiver
/// `first`), ircbob in the channel (`first + 1`); their arrivals go to
/// `arrivals`.
async fn spawn_bridged_receivers(
    prosody: &Prosody,
    ircd: &Inspircd,
    first: u32,
    arrivals: &mpsc::Sender<Arrival>,
) -> Result<(), BoxError> {
    let room = muc_jid();
    let mut alice = XmppUser::connect(prosody, &format!("alice@{HOST_A}"), "alice-pw").await?;
    alice.join_muc(&room, "alice").await?;
    let mut bob = IrcUser::connect(ircd.addr(), "ircbob").await?;
    bob.join("#bench").await?;
    let tx = arrivals.clone();
    tokio::spawn(async move {
        loop {
            let stanza = match alice.next_stanza(Duration::from_secs(3600)).await {
                Ok(s) => s,
                Err(_) => return,
            };
            let Stanza::Message(m) = stanza else { continue };
            if m.type_ != MessageType::Groupchat {
                continue;
            }
            let at = micros();
            let Some((run, seq, sent)) = body(&m).and_then(parse_body) else {
                continue;
            };
            let a = Arrival {
                receiver: first,
                run,
                seq,
                sent,
                at,
            };
            if tx.send(a).await.is_err() {
                return;
            }
        }
    });
    let tx = arrivals.clone();
    tokio::spawn(async move {
        while let Ok(l) = bob.next_line().await {
            if l.command != "PRIVMSG" || !l.param(0).eq_ignore_ascii_case("#bench") {
                continue;
            }
            let at = micros();
            let Some((run, seq, sent)) = parse_body(l.param(1)) else {
                continue;
            };
            let a = Arrival {
                receiver: first + 1,
                run,
                seq,
                sent,
                at,
            };
            if tx.send(a).await.is_err() {
                return;
            }
        }
    });
    Ok(())
}

async fn bench(settings: &Settings) -> Result<Figures, BoxError> {
    check_open_files(settings.participants)?;
    let _ = micros();
    let sip_port = free_port()?;
    let binary = GatewayProcess::binary()?.display().to_string();
    let peers = if settings.bridge {
        let prosody = Prosody::start().await?;
        prosody.register("alice", HOST_A, "alice-pw").await?;
        let ircd = Inspircd::start().await?;
        Some((prosody, ircd))
    } else {
        None
    };
    let gw = GatewayProcess::start(
        &gateway_toml(sip_port, peers.as_ref().map(|(p, i)| (p, i))),
        READY,
    )
    .await?;
    let pid = gw.pid().ok_or("cpimgate is not running")?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle = rss_kib(pid).unwrap_or(0);

    let focus = SocketAddr::from(([127, 0, 0, 1], sip_port));
    let started = Instant::now();
    let joined = futures::stream::iter(0..settings.participants)
        .map(|i| async move {
            let aor = format!("sip:p{i:05}@bench.example.com");
            MsrpUa::join(focus, ROOM, &aor, JoinOptions::default()).await
        })
        .buffered(JOINING)
        .collect::<Vec<_>>()
        .await;
    let joined_in = started.elapsed();
    eprintln!(
        "msrp_room: {} participants joined in {:.2} s",
        settings.participants,
        joined_in.as_secs_f64()
    );
    let mut participants = Vec::with_capacity(joined.len());
    for p in joined {
        participants.push(p?);
    }
    // Let the gateway settle (allocator, tasks) before reading its RSS.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_joined = rss_kib(pid).unwrap_or(0);

    let (tx, arrivals) = mpsc::channel(64 * 1024);
    let mut everyone = participants.into_iter();
    let sender = everyone.next().ok_or("no participant")?;
    let mut receivers = 0;
    for (i, ua) in everyone.enumerate() {
        spawn_receiver(u32::try_from(i)?, ua, tx.clone());
        receivers += 1;
    }
    let bridged = if let Some((prosody, ircd)) = &peers {
        spawn_bridged_receivers(prosody, ircd, u32::try_from(receivers)?, &tx).await?;
        2
    } else {
        0
    };
    drop(tx);
    let mut room = Room {
        sender: Some(sender),
        arrivals,
        receivers,
        bridged,
        pid,
        hz: clock_ticks_per_second(),
    };
    let warmup = room.run(0, settings.warmup, None).await?;
    let mut saturating = Vec::with_capacity(settings.rounds);
    for round in 0..settings.rounds {
        let r = room
            .run(1 + u32::try_from(round)?, settings.messages, None)
            .await?;
        eprintln!(
            "msrp_room: saturating round {}: {:.0} deliveries/s, copy latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            round + 1,
            r.deliveries_per_second(),
            percentile_ms(&r.latencies, 0.5),
            percentile_ms(&r.latencies, 0.99),
            percentile_ms(&r.latencies, 1.0),
        );
        saturating.push(r);
    }
    let paced = if settings.paced > 0 {
        let run = 1 + u32::try_from(settings.rounds)?;
        Some(room.run(run, settings.paced, Some(settings.rate)).await?)
    } else {
        None
    };
    let rss_after = rss_kib(pid).unwrap_or(0);
    let warnings = gw.warnings().iter().map(|w| plain(w)).collect();
    gw.stop().await?;
    drop(room);
    drop(peers);
    let raw = if settings.raw {
        let runs = raw::run(receivers, settings.messages, settings.rounds).await?;
        for (i, r) in runs.iter().enumerate() {
            eprintln!(
                "msrp_room: raw relay round {}: {:.0} deliveries/s, p99 {:.1} ms",
                i + 1,
                r.deliveries_per_second(),
                percentile_ms(&r.latencies, 0.99)
            );
        }
        runs
    } else {
        Vec::new()
    };
    Ok(Figures {
        binary,
        joined_in,
        rss_idle,
        rss_joined,
        rss_after,
        warmup,
        saturating,
        paced,
        warnings,
        raw,
    })
}

fn report(settings: &Settings, f: &Figures) -> String {
    let mut out = String::new();
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let n = settings.participants;
    let _ = writeln!(
        out,
        "\nMSRP chat room, one sender: N={n} participants ({} receivers); M={} messages \
         saturating x {} rounds, {} paced at {} msg/s, after {} warm-up\n\
         gateway: {}\nthis benchmark: {} build; {cores} cores shared by the gateway and the \
         {n} participants of this process (the column \"this process\": the switch had \
         less than the machine; \"others\" is every other process on the machine meanwhile, \
         \"steal\" the hypervisor's share: both make figures of a shared machine vary)",
        n - 1,
        settings.messages,
        settings.rounds,
        settings.paced,
        settings.rate,
        settings.warmup,
        f.binary,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "optimised"
        },
    );
    let median = f.median_round();
    let rate = median.map_or(f64::NAN, Run::deliveries_per_second);
    let p99 = median.map_or(f64::NAN, |r| percentile_ms(&r.latencies, 0.99));
    let paced_p99 = f
        .paced
        .as_ref()
        .map_or(f64::NAN, |r| percentile_ms(&r.latencies, 0.99));
    let kib = f.kib_per_participant(n);
    let _ = writeln!(
        out,
        "\n| figure | measured | target | measured / target |\n|---|---|---|---|\n\
         | fan-out deliveries/s (saturating, median round) | {rate:.0} | >= {DELIVERIES_TARGET:.0} | {:.2}x |\n\
         | copy latency p99, saturating (median round) | {p99:.1} ms | - | - |\n\
         | copy latency p99, paced {} msg/s | {paced_p99:.1} ms | - | - |\n\
         | gateway memory per participant, KiB | {kib:.1} | <= {KIB_PER_PARTICIPANT_TARGET:.0} | {:.2}x |",
        rate / DELIVERIES_TARGET,
        settings.rate,
        kib / KIB_PER_PARTICIPANT_TARGET,
    );
    let _ = writeln!(
        out,
        "\n| run | messages | copies expected | received | missing | dup | reordered | refused | deliveries/s | sent in ms | answered in ms | copy p50 ms | p99 ms | max ms | last copy p50 ms | p99 ms | gateway CPU % | this process CPU % | others CPU % | steal % | gateway switches per copy | this process switches per copy |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    let mut runs: Vec<(String, &Run)> = f
        .saturating
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("saturating {}", i + 1), r))
        .collect();
    if let Some(p) = &f.paced {
        runs.push((format!("paced {} msg/s", settings.rate), p));
    }
    for (label, r) in runs {
        let _ = writeln!(
            out,
            "| {label} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {:.1} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} |",
            r.messages,
            r.expected,
            r.received,
            r.missing(),
            r.duplicates,
            r.reordered,
            r.refused,
            r.deliveries_per_second(),
            r.posted_in as f64 / 1000.0,
            r.answered_in as f64 / 1000.0,
            percentile_ms(&r.latencies, 0.5),
            percentile_ms(&r.latencies, 0.99),
            percentile_ms(&r.latencies, 1.0),
            percentile_ms(&r.last_copy, 0.5),
            percentile_ms(&r.last_copy, 0.99),
            r.cpu[0],
            r.cpu[1],
            r.cpu[2],
            r.cpu[3],
            r.switches_per_copy[0],
            r.switches_per_copy[1],
        );
    }
    if !f.raw.is_empty() {
        let raw = f
            .raw_median()
            .map_or(f64::NAN, raw::RawRun::deliveries_per_second);
        let _ = writeln!(
            out,
            "\nThe physical reference: the same number of copies of a SEND of {} bytes fanned out \
             by a loopback TCP relay that only copies (no parsing, no store), same receivers.\n\n\
             | run | deliveries/s | copy p50 ms | p99 ms |\n|---|---|---|---|",
            raw::send_bytes(0).len()
        );
        for (i, r) in f.raw.iter().enumerate() {
            let _ = writeln!(
                out,
                "| raw relay {} | {:.0} | {:.2} | {:.2} |",
                i + 1,
                r.deliveries_per_second(),
                percentile_ms(&r.latencies, 0.5),
                percentile_ms(&r.latencies, 0.99),
            );
        }
        let _ = writeln!(
            out,
            "\nThe switch reached {:.2}x the raw relay's rate (median rounds).",
            rate / raw
        );
    }
    if settings.bridge {
        let _ = writeln!(
            out,
            "\nThe bridged worlds (the room bridged with a MUC room through the XMPP component \
             and an IRC channel in relay mode; one receiver in each):\n\n\
             | run | world | copies | missing | p50 ms | p99 ms |\n|---|---|---|---|---|---|"
        );
        let runs = f
            .saturating
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("saturating {}", i + 1), r))
            .chain(
                f.paced
                    .iter()
                    .map(|r| (format!("paced {} msg/s", settings.rate), r)),
            );
        for (label, r) in runs {
            for (world, (received, lat)) in ["XMPP MUC", "IRC"].iter().zip(&r.bridged) {
                let _ = writeln!(
                    out,
                    "| {label} | {world} | {received} | {} | {:.2} | {:.2} |",
                    r.bridged_expected.saturating_sub(*received),
                    percentile_ms(lat, 0.5),
                    percentile_ms(lat, 0.99),
                );
            }
        }
    }
    let mb = |k: u64| k as f64 / 1024.0;
    let _ = writeln!(
        out,
        "\n| gateway RSS | MB |\n|---|---|\n| idle | {:.1} |\n| {n} joined (in {:.2} s) | {:.1} |\n| after the runs | {:.1} |",
        mb(f.rss_idle),
        f.joined_in.as_secs_f64(),
        mb(f.rss_joined),
        mb(f.rss_after),
    );
    let missing = f.missing();
    if missing > 0 {
        let _ = writeln!(
            out,
            "\n**LOST: {missing} copies never arrived** (warm-up {}, saturating {}, paced {}): \
             the room must not lose any.",
            f.warmup.missing(),
            f.saturating_missing(),
            f.paced.as_ref().map_or(0, Run::missing),
        );
    }
    if !f.warnings.is_empty() {
        let _ = writeln!(out, "\nGateway warnings ({}):", f.warnings.len());
        for w in f.warnings.iter().take(10) {
            let _ = writeln!(out, "    {w}");
        }
    }
    out
}

/// The headline figures of the report (`tests/benches/report.rs`).
fn result(settings: &Settings, f: &Figures, details: &str) -> BenchResult {
    let mut r = BenchResult::new("msrp_room");
    r.details = details.to_owned();
    let n = settings.participants;
    let median = f.median_round();
    let rate = median.map_or(f64::NAN, Run::deliveries_per_second);
    let raw = f
        .raw_median()
        .map_or(f64::NAN, raw::RawRun::deliveries_per_second);
    r.headline.push(Headline::new(
        &format!("room of {n}, fan-out copies/s"),
        rate,
        "raw TCP fan-out relay",
        raw,
    ));
    r.headline.push(
        Headline::new(
            &format!("room of {n}, fan-out copies/s"),
            rate,
            "target",
            DELIVERIES_TARGET,
        )
        .target("≥ 1×"),
    );
    r.headline.push(Headline::alone(
        "copy latency p99, saturating, ms",
        median.map_or(f64::NAN, |m| percentile_ms(&m.latencies, 0.99)),
    ));
    if let Some(p) = &f.paced {
        r.headline.push(Headline::alone(
            &format!("copy latency p99, paced {} msg/s, ms", settings.rate),
            percentile_ms(&p.latencies, 0.99),
        ));
        r.latencies.push(Series::of_micros(
            &format!("MSRP copies, paced {} msg/s", settings.rate),
            &p.latencies,
        ));
        for (world, (_, lat)) in ["XMPP MUC", "IRC"].iter().zip(&p.bridged) {
            if !lat.is_empty() {
                r.latencies.push(Series::of_micros(
                    &format!("bridged to {world}, paced"),
                    lat,
                ));
                r.headline.push(Headline::alone(
                    &format!("bridged to {world}, paced p99, ms"),
                    percentile_ms(lat, 0.99),
                ));
            }
        }
    }
    if let Some(m) = median {
        r.latencies.push(Series::of_micros(
            "MSRP copies, saturating (median round)",
            &m.latencies,
        ));
    }
    if let Some(raw) = f.raw_median() {
        r.latencies.push(Series::of_micros(
            "raw TCP relay, saturating",
            &raw.latencies,
        ));
    }
    r.headline.push(
        Headline::new(
            "gateway memory per participant, KiB",
            f.kib_per_participant(n),
            "target",
            KIB_PER_PARTICIPANT_TARGET,
        )
        .target("≤ 1×"),
    );
    let mb = |k: u64| k as f64 / 1024.0;
    r.headline
        .push(Headline::alone("gateway RSS idle, MB", mb(f.rss_idle)));
    r.headline.push(Headline::alone(
        &format!("gateway RSS with {n} joined, MB"),
        mb(f.rss_joined),
    ));
    r
}

fn main() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("msrp_room: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(runtime) = cpimgate_e2e::bench::runtime("msrp_room") else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(bench(&settings)) {
        Ok(figures) => {
            let details = report(&settings, &figures);
            println!("{details}");
            result(&settings, &figures, &details).save_and_say();
            let missing = figures.missing();
            if missing > 0 {
                eprintln!("msrp_room: {missing} copies were lost");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("msrp_room failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The physical reference: the bytes of the room's copies fanned out by
/// a loopback TCP relay that does nothing but copy (one task reads the
/// sender, one task per receiver writes; every message a SEND of the
/// same size, [`raw::send_bytes`]). What it reaches is what the machine's
/// loopback and scheduler allow; the switch's rate is a fraction of it.
mod raw {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use bytes::Bytes;
    use cpimgate_e2e::bench::micros;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::mpsc;

    use super::{BoxError, IDLE};

    /// One SEND like the switch writes to a participant: To-Path and
    /// From-Path, Message-ID, Byte-Range, a CPIM body with a short text.
    pub fn send_bytes(seq: u32) -> Vec<u8> {
        let body = format!(
            "From: <sip:p00000@bench.example.com>\r\nTo: <sip:bench@chat.localhost>\r\n\
             DateTime: 2026-12-04T00:00:00.000Z\r\n\r\nContent-Type: text/plain;charset=UTF-8\r\n\r\n\
             r1 {seq:06} 000000000000"
        );
        let tid = format!("t{seq:09}");
        format!(
            "MSRP {tid} SEND\r\nTo-Path: msrp://127.0.0.1:40000/rcv0000000000;tcp\r\n\
             From-Path: msrp://127.0.0.1:40001/focus000000000;tcp\r\nMessage-ID: m{seq:09}\r\n\
             Byte-Range: 1-{len}/{len}\r\nContent-Type: message/cpim\r\n\r\n{body}\r\n-------{tid}$\r\n",
            len = body.len()
        )
        .into_bytes()
    }

    /// What one round of the relay saw.
    #[derive(Debug, Default)]
    pub struct RawRun {
        pub expected: usize,
        pub received: usize,
        pub first_send: u64,
        pub last_arrival: u64,
        pub latencies: Vec<u64>,
    }

    impl RawRun {
        pub fn deliveries_per_second(&self) -> f64 {
            let span = self.last_arrival.saturating_sub(self.first_send).max(1);
            self.received as f64 * 1e6 / span as f64
        }
    }

    /// `rounds` rounds of `n` messages fanned out to `receivers`.
    pub async fn run(receivers: usize, n: usize, rounds: usize) -> Result<Vec<RawRun>, BoxError> {
        let len = send_bytes(0).len();
        let inbound = TcpListener::bind("127.0.0.1:0").await?;
        let outbound = TcpListener::bind("127.0.0.1:0").await?;
        let (in_addr, out_addr) = (inbound.local_addr()?, outbound.local_addr()?);

        // The receivers: each counts whole messages by their fixed size.
        let sent: Arc<Vec<AtomicU64>> =
            Arc::new((0..n * rounds).map(|_| AtomicU64::new(0)).collect());
        let (arrived_tx, mut arrived) = mpsc::channel::<(usize, u64, u64)>(64 * 1024);
        // Accepted while the receivers connect: a listen queue is not
        // meant to hold a thousand connections.
        let accepting = tokio::spawn(async move {
            let mut accepted = Vec::with_capacity(receivers);
            for _ in 0..receivers {
                accepted.push(outbound.accept().await?.0);
            }
            Ok::<_, std::io::Error>(accepted)
        });
        let mut readers = Vec::with_capacity(receivers);
        for _ in 0..receivers {
            readers.push(TcpStream::connect(out_addr).await?);
        }
        let mut writers = Vec::with_capacity(receivers);
        for stream in accepting.await?? {
            stream.set_nodelay(true)?;
            let (tx, mut rx) = mpsc::channel::<Bytes>(1024);
            tokio::spawn(async move {
                let mut stream = stream;
                while let Some(b) = rx.recv().await {
                    if stream.write_all(&b).await.is_err() {
                        return;
                    }
                }
            });
            writers.push(tx);
        }
        for mut stream in readers {
            let tx = arrived_tx.clone();
            let sent = Arc::clone(&sent);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut total = 0usize;
                loop {
                    let Ok(k) = stream.read(&mut buf).await else {
                        return;
                    };
                    if k == 0 {
                        return;
                    }
                    let before = total / len;
                    total += k;
                    let at = micros();
                    for i in before..total / len {
                        let s = sent.get(i).map_or(0, |s| s.load(Ordering::Acquire));
                        if tx.send((i, at, at.saturating_sub(s))).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
        drop(arrived_tx);

        // The relay: read whatever came, hand the same bytes to every writer.
        let mut sender = TcpStream::connect(in_addr).await?;
        sender.set_nodelay(true)?;
        let (mut relay_in, _) = inbound.accept().await?;
        tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let Ok(k) = relay_in.read(&mut buf).await else {
                    return;
                };
                if k == 0 {
                    return;
                }
                let b = Bytes::copy_from_slice(buf.get(..k).unwrap_or_default());
                for w in &writers {
                    if w.send(b.clone()).await.is_err() {
                        return;
                    }
                }
            }
        });

        let mut runs = Vec::with_capacity(rounds);
        for round in 0..rounds {
            let first = round * n;
            let mut r = RawRun {
                expected: n * receivers,
                first_send: micros(),
                ..RawRun::default()
            };
            for i in first..first + n {
                let bytes = send_bytes(u32::try_from(i)?);
                if let Some(s) = sent.get(i) {
                    s.store(micros(), Ordering::Release);
                }
                sender.write_all(&bytes).await?;
            }
            while r.received < r.expected {
                match tokio::time::timeout(IDLE, arrived.recv()).await {
                    Ok(Some((i, at, latency))) if (first..first + n).contains(&i) => {
                        r.received += 1;
                        r.last_arrival = r.last_arrival.max(at);
                        r.latencies.push(latency);
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
            runs.push(r);
        }
        Ok(runs)
    }
}
