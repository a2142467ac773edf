//! XMPP MUC ↔ IRC through cpimgate beside biboumi, the reference XMPP↔IRC
//! gateway, on the same Prosody and InspIRCd, side by side in one run.
//!
//! One private Prosody (biboumi's component `biboumi.localhost` and
//! cpimgate's `gw.localhost` on it) and one private InspIRCd. Each
//! gateway bridges an IRC channel of its own into a MUC room of its
//! component:
//!
//! * biboumi: `#bib` as `#bib%127.0.0.1@biboumi.localhost`. biboumi opens
//!   one IRC connection per XMPP user; each user first turns its flood
//!   throttle off and points it at the test server's port (ad-hoc
//!   `configure`, `throttle_limit` -1). Its history store is on (its
//!   default), one SQLite commit per message.
//! * relay: cpimgate (the release binary, a process of its own) in relay
//!   mode, `#rel` as `#rel%irc.localhost@gw.localhost`: XMPP users speak on
//!   IRC through the gateway's one connection as `<nick> text`.
//! * puppet: cpimgate in puppet mode, `#pup`: one IRC connection per XMPP
//!   user, as biboumi does.
//!
//! cpimgate's durable queue is on (SQLite in the system temp dir, one
//! fsync per group of messages). Alice (`alice@a.localhost`) is the XMPP
//! user, `ircbob` a raw-socket IRC user in every channel. Every body is
//! `<tag> <seq> <send time µs>`; both users are in this process, one clock.
//! For every path, after a warm-up:
//!
//! * XMPP→IRC: Alice sends N messages as fast as her stream takes them;
//!   rate = messages ircbob received / (last arrival − first send); then
//!   M paced at R msg/s, p50/p99 latency.
//! * IRC→XMPP: the same from ircbob to Alice.
//! * puppets (biboumi and puppet only): P more XMPP users join (P IRC
//!   connections), then N messages from them in turn go XMPP→IRC; RSS of
//!   the gateway process with one user joined, with P joined, right after
//!   the load, and after 10 s idle (memory returned?).
//!
//! First, the two legs without any gateway, measured the same way: IRC to
//! IRC (ircbob to irccarol) and MUC to MUC on Prosody (Alice to Bob). A
//! gateway path crosses both servers, so it cannot beat the slower leg:
//! "added" latency is a path's paced p50 minus the slower leg's, an upper
//! bound of what the gateway itself adds (it still holds the faster leg's
//! server hop). Ratios are cpimgate's rates over biboumi's. "Missing" is
//! what had not arrived when 15 s passed without any arrival (a slow
//! gateway's backlog counts as missing, not as lost). CPU columns: the
//! gateway process, Prosody, InspIRCd and this process's test users
//! during the saturating runs (100 % = one core).
//!
//! Then the ceiling of the XMPP side: a bare component (XEP-0114,
//! `cpimgate_e2e::bare_component`, no gateway and no XML library) as the
//! service of a room on the same Prosody: it writes to Alice as fast as
//! Prosody reads, answers each of Alice's messages to her as a MUC
//! reflects it, and answers each message of the crowd (P members writing
//! in turn) to every member. Every gateway path crosses Prosody the same
//! way and does more, so "x ceiling" is its share of what this Prosody on
//! this machine carries; the ceiling over biboumi is the most any target
//! over biboumi can be met by. The to-Alice and crowd runs are made again
//! with each message as a XEP-0359 room writes it (an `id` and a
//! `<stanza-id/>`, which cost Prosody more per copy): the most a room
//! that gives its messages stable ids can carry.
//!
//! Build the binary first: `cargo build --release -p cpimgate`, then
//! `cargo bench -p cpimgate-e2e --bench irc_bridge` (or `tests/bench/run`,
//! which does both). Environment: `IRC_BENCH_N` (default 2000),
//! `IRC_BENCH_PACED_N` (500), `IRC_BENCH_RATE` (200), `IRC_BENCH_WARMUP`
//! (100), `IRC_BENCH_PUPPETS` (200; 0 skips that part), `IRC_BENCH_PATHS`
//! (subset of `biboumi,relay,puppet`), `IRC_BENCH_WINDOW` (the gateway's
//! `[queue] window`).
//!
//! Figures only: nothing here asserts a speed.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use cpimgate_e2e::HarnessError;
use cpimgate_e2e::bare_component::{self, BareComponent};
use cpimgate_e2e::bench::{clock_ticks_per_second, env_u64, micros, percentile_ms};
use cpimgate_e2e::bench_report::{BenchResult, Headline, Series};
use cpimgate_e2e::biboumi::{self, Biboumi, configure_irc_server};
use cpimgate_e2e::gateway_process::{GatewayProcess, cpu_ticks, rss_kib, rss_split_kib};
use cpimgate_e2e::inspircd::{Inspircd, SERVER_NAME};
use cpimgate_e2e::irc_user::IrcUser;
use cpimgate_e2e::prosody::{
    COMPONENT_DOMAIN, COMPONENT_SECRET, HOST_A, MUC_A, Prosody, ProsodyOptions,
};
use cpimgate_e2e::xmpp_user::{XmppUser, body, nick_of};
use futures::StreamExt as _;
use tokio::sync::mpsc;
use tokio_xmpp::Stanza;
use xmpp_parsers::message::MessageType;

/// How long a receiver waits for the next message before counting the
/// rest lost.
const IDLE: Duration = Duration::from_secs(15);
const READY: Duration = Duration::from_secs(30);
const PATHS: [&str; 3] = ["biboumi", "relay", "puppet"];
/// The bare component of the ceiling runs, and its room.
const BARE_DOMAIN: &str = "bare.localhost";
const BARE_SECRET: &str = "bare-secret";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Settings {
    saturating: usize,
    paced: usize,
    rate: u64,
    warmup: usize,
    puppets: usize,
    paths: Vec<String>,
}

impl Settings {
    fn from_env() -> Result<Settings, BoxError> {
        let var = |name: &str, default: u64| env_u64(name, default).map_err(BoxError::from);
        let paths = match std::env::var("IRC_BENCH_PATHS") {
            Ok(v) => v.split(',').map(|s| s.trim().to_owned()).collect(),
            Err(_) => PATHS.iter().map(|p| (*p).to_owned()).collect(),
        };
        for p in &paths {
            if !PATHS.iter().any(|known| known == p) {
                return Err(format!("IRC_BENCH_PATHS: unknown path {p:?}").into());
            }
        }
        Ok(Settings {
            saturating: usize::try_from(var("IRC_BENCH_N", 2000)?.max(1))?,
            paced: usize::try_from(var("IRC_BENCH_PACED_N", 500)?.max(1))?,
            rate: var("IRC_BENCH_RATE", 200)?.max(1),
            warmup: usize::try_from(var("IRC_BENCH_WARMUP", 100)?)?,
            puppets: usize::try_from(var("IRC_BENCH_PUPPETS", 200)?)?,
            paths,
        })
    }
}

/// `<tag> <seq> <µs>` anywhere in `text` (relay mode prefixes `<nick> `).
fn parse_body(text: &str, tag: &str) -> Option<(usize, u64)> {
    let at = text.find(tag)?;
    let mut parts = text[at + tag.len()..].split_whitespace();
    let seq = parts.next()?.parse().ok()?;
    let sent = parts.next()?.parse().ok()?;
    Some((seq, sent))
}

/// What one measured run saw.
#[derive(Clone, Debug, Default)]
struct Run {
    sent: usize,
    received: usize,
    duplicates: usize,
    out_of_order: usize,
    first_send: u64,
    last_arrival: u64,
    latencies: Vec<u64>,
}

impl Run {
    fn rate(&self) -> f64 {
        let span = self.last_arrival.saturating_sub(self.first_send).max(1);
        self.received as f64 * 1e6 / span as f64
    }

    fn percentile(&self, p: f64) -> f64 {
        percentile_ms(&self.latencies, p)
    }
}

/// Where a receiver reads: ircbob in a channel, or Alice in a room (not
/// her own messages).
enum Source<'a> {
    Irc(&'a mut IrcUser, &'a str),
    Xmpp(&'a mut XmppUser, &'a str, &'a str),
    /// The bare component as the service of room `.1`: it answers every
    /// message as a MUC service would, to the sender alone (`.2` empty)
    /// or to each full JID of `.2`.
    Bare(&'a mut BareComponent, &'a str, &'a [String]),
}

impl Source<'_> {
    async fn next(&mut self) -> Result<Option<String>, HarnessError> {
        match self {
            Source::Irc(user, channel) => irc_text(user, channel).await,
            Source::Xmpp(user, room, own) => xmpp_text(user, room, own).await,
            Source::Bare(bare, room, members) => {
                let got = bare.next_body().await?;
                let nick = got.from.split(['@', '/']).next().unwrap_or("someone");
                let from = format!("{room}/{nick}");
                if members.is_empty() {
                    bare.groupchat(&from, &got.from, &got.body).await?;
                } else {
                    for to in members.iter() {
                        bare.groupchat(&from, to, &got.body).await?;
                    }
                }
                Ok(Some(got.body))
            }
        }
    }
}

/// Collect `n` bodies tagged `tag` from `source`, until `IDLE` passes with
/// nothing new.
async fn collect(tag: &str, n: usize, mut source: Source<'_>) -> Result<Run, BoxError> {
    let mut run = Run {
        first_send: u64::MAX,
        ..Run::default()
    };
    let mut seen = vec![false; n];
    let mut highest: Option<usize> = None;
    while run.received < n {
        let text = match tokio::time::timeout(IDLE, source.next()).await {
            Err(_) => break,
            Ok(Err(e)) => return Err(e.into()),
            Ok(Ok(None)) => continue,
            Ok(Ok(Some(t))) => t,
        };
        let now = micros();
        let Some((seq, sent)) = parse_body(&text, tag) else {
            continue;
        };
        let Some(slot) = seen.get_mut(seq) else {
            continue;
        };
        if *slot {
            run.duplicates += 1;
            continue;
        }
        *slot = true;
        if highest.is_some_and(|h| seq < h) {
            run.out_of_order += 1;
        }
        highest = Some(highest.map_or(seq, |h| h.max(seq)));
        run.received += 1;
        run.first_send = run.first_send.min(sent);
        run.last_arrival = now;
        run.latencies.push(now.saturating_sub(sent));
    }
    run.sent = n;
    Ok(run)
}

/// The next PRIVMSG text to `channel` that ircbob reads (None for any
/// other line).
async fn irc_text(user: &mut IrcUser, channel: &str) -> Result<Option<String>, HarnessError> {
    let l = user.next_line().await?;
    if l.command == "PRIVMSG" && l.param(0).eq_ignore_ascii_case(channel) {
        Ok(Some(l.param(1).to_owned()))
    } else {
        Ok(None)
    }
}

/// The next groupchat body from `room` that Alice receives, not her own.
async fn xmpp_text(
    user: &mut XmppUser,
    room: &str,
    own_nick: &str,
) -> Result<Option<String>, HarnessError> {
    match user.next_stanza(IDLE).await? {
        Stanza::Message(m)
            if m.type_ == MessageType::Groupchat
                && m.from
                    .as_ref()
                    .is_some_and(|f| f.to_bare().to_string() == room)
                && nick_of(m.from.as_ref()) != Some(own_nick) =>
        {
            Ok(body(&m).map(str::to_owned))
        }
        _ => Ok(None),
    }
}

/// How a path is reached: the room, the channel, the gateway's process.
struct Path {
    name: &'static str,
    room: String,
    channel: String,
    pid: u32,
}

struct Cpu {
    gateway: u64,
    prosody: u64,
    ircd: u64,
    clients: u64,
    at: Instant,
}

/// CPU readings of the gateway process `gateway` (none: 0), Prosody,
/// InspIRCd and this process.
fn cpu_now(gateway: Option<u32>, prosody: &Prosody, ircd: &Inspircd) -> Cpu {
    Cpu {
        gateway: gateway.and_then(cpu_ticks).unwrap_or(0),
        prosody: prosody.pid().and_then(cpu_ticks).unwrap_or(0),
        ircd: ircd.pid().and_then(cpu_ticks).unwrap_or(0),
        clients: cpu_ticks(std::process::id()).unwrap_or(0),
        at: Instant::now(),
    }
}

/// Percent of one core used by each (gateway, Prosody, InspIRCd, the test
/// users of this process) between two readings.
fn cpu_between(a: &Cpu, b: &Cpu, hz: f64) -> [f64; 4] {
    let secs = b.at.duration_since(a.at).as_secs_f64().max(1e-9);
    let pct = |x: u64, y: u64| (y.saturating_sub(x)) as f64 / hz / secs * 100.0;
    [
        pct(a.gateway, b.gateway),
        pct(a.prosody, b.prosody),
        pct(a.ircd, b.ircd),
        pct(a.clients, b.clients),
    ]
}

#[derive(Default)]
struct Figures {
    x2i: Run,
    x2i_cpu: [f64; 4],
    x2i_paced: Run,
    i2x: Run,
    i2x_cpu: [f64; 4],
    i2x_paced: Run,
    puppets: Option<PuppetFigures>,
    rss_one: u64,
}

struct PuppetFigures {
    users: usize,
    joined_in: Duration,
    load: Run,
    cpu: [f64; 4],
    rss_joined: u64,
    rss_after: u64,
    rss_idle: u64,
}

/// Alice → ircbob, saturating then paced; ircbob → Alice, the same.
async fn measure(
    settings: &Settings,
    path: &Path,
    alice: &mut XmppUser,
    bob: &mut IrcUser,
    prosody: &Prosody,
    ircd: &Inspircd,
    hz: f64,
) -> Result<Figures, BoxError> {
    log_rss_split(path.name, "with one user", path.pid);
    let mut f = Figures {
        rss_one: rss_kib(path.pid).unwrap_or(0),
        ..Figures::default()
    };
    let room = path.room.clone();
    let channel = path.channel.clone();

    for way in [Way::X2i, Way::I2x] {
        let tag = |phase: &str| format!("{}-{}{phase}", path.name, way.tag());
        let ends = (&room[..], &channel[..]);
        one_way(way, alice, bob, ends, &tag("-warm"), settings.warmup, None).await?;
        let before = cpu_now(Some(path.pid), prosody, ircd);
        let saturating =
            one_way(way, alice, bob, ends, &tag(""), settings.saturating, None).await?;
        let cpu = cpu_between(&before, &cpu_now(Some(path.pid), prosody, ircd), hz);
        eprintln!(
            "{}: {} saturating latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            path.name,
            way.label(),
            saturating.percentile(0.5),
            saturating.percentile(0.99),
            saturating.percentile(1.0)
        );
        let rate = Some(settings.rate);
        let paced = one_way(way, alice, bob, ends, &tag("-paced"), settings.paced, rate).await?;
        match way {
            Way::X2i => {
                settle_xmpp(alice).await?;
                (f.x2i, f.x2i_cpu, f.x2i_paced) = (saturating, cpu, paced);
            }
            Way::I2x => (f.i2x, f.i2x_cpu, f.i2x_paced) = (saturating, cpu, paced),
        }
    }
    Ok(f)
}

/// Which way a run goes.
#[derive(Clone, Copy)]
enum Way {
    X2i,
    I2x,
}

impl Way {
    fn tag(self) -> &'static str {
        match self {
            Way::X2i => "x2i",
            Way::I2x => "i2x",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Way::X2i => "XMPP->IRC",
            Way::I2x => "IRC->XMPP",
        }
    }
}

/// `n` messages `way` between Alice in `room` and ircbob in `channel`.
async fn one_way(
    way: Way,
    alice: &mut XmppUser,
    bob: &mut IrcUser,
    (room, channel): (&str, &str),
    tag: &str,
    n: usize,
    rate: Option<u64>,
) -> Result<Run, BoxError> {
    match way {
        Way::X2i => x2i(alice, bob, room, channel, tag, n, rate).await,
        Way::I2x => i2x(alice, bob, room, channel, tag, n, rate).await,
    }
}

/// Sleep until `start + i / rate`.
async fn pace(start: Instant, i: usize, rate: Option<u64>) {
    if let Some(rate) = rate {
        let at = start + Duration::from_micros(i as u64 * 1_000_000 / rate);
        tokio::time::sleep_until(at.into()).await;
    }
}

async fn x2i(
    alice: &mut XmppUser,
    bob: &mut IrcUser,
    room: &str,
    channel: &str,
    tag: &str,
    n: usize,
    rate: Option<u64>,
) -> Result<Run, BoxError> {
    let sender = async {
        let start = Instant::now();
        for i in 0..n {
            pace(start, i, rate).await;
            alice
                .send_groupchat(room, &format!("{tag} {i} {}", micros()))
                .await?;
        }
        // Alice's own reflections and everything else she was sent.
        settle_xmpp(alice).await?;
        Ok::<_, BoxError>(())
    };
    let receiver = collect(tag, n, Source::Irc(bob, channel));
    let (sent, run) = tokio::join!(sender, receiver);
    sent?;
    run
}

async fn i2x(
    alice: &mut XmppUser,
    bob: &mut IrcUser,
    room: &str,
    channel: &str,
    tag: &str,
    n: usize,
    rate: Option<u64>,
) -> Result<Run, BoxError> {
    let own = "alice";
    let sender = async {
        let start = Instant::now();
        for i in 0..n {
            pace(start, i, rate).await;
            bob.say(channel, &format!("{tag} {i} {}", micros())).await?;
        }
        Ok::<_, BoxError>(())
    };
    let receiver = collect(tag, n, Source::Xmpp(alice, room, own));
    let (sent, run) = tokio::join!(sender, receiver);
    sent?;
    let run = run?;
    bob.clear();
    Ok(run)
}

/// The two legs without a gateway, the floor of every path: IRC to IRC
/// (ircbob to irccarol through InspIRCd) and XMPP MUC to MUC (Alice to Bob
/// in a room of Prosody's own MUC service), saturating then paced.
struct Direct {
    irc: (Run, Run),
    xmpp: (Run, Run),
}

async fn direct(
    settings: &Settings,
    prosody: &Prosody,
    ircd: &Inspircd,
    bob: &mut IrcUser,
) -> Result<Direct, BoxError> {
    let channel = "#dir";
    let mut carol = IrcUser::connect(ircd.addr(), "irccarol").await?;
    carol.join(channel).await?;
    bob.wait_for_member(channel, "irccarol", false).await?;
    carol.clear();
    let mut irc = Vec::new();
    for (tag, n, rate) in [
        ("dir-irc-warm", settings.warmup, None),
        ("dir-irc", settings.saturating, None),
        ("dir-irc-paced", settings.paced, Some(settings.rate)),
    ] {
        let sender = async {
            let start = Instant::now();
            for i in 0..n {
                pace(start, i, rate).await;
                bob.say(channel, &format!("{tag} {i} {}", micros())).await?;
            }
            Ok::<_, BoxError>(())
        };
        let receiver = collect(tag, n, Source::Irc(&mut carol, channel));
        let (sent, run) = tokio::join!(sender, receiver);
        sent?;
        irc.push(run?);
    }
    bob.send(&format!("PART {channel}")).await?;
    bob.clear();

    let room = format!("bench@{MUC_A}");
    let mut alice = XmppUser::connect(prosody, &format!("alice@{HOST_A}"), "alice-pw").await?;
    let mut xbob = XmppUser::connect(prosody, &format!("bob@{HOST_A}"), "bob-pw").await?;
    xbob.join_muc(&room, "bob").await?;
    alice.join_muc(&room, "alice").await?;
    settle_xmpp(&mut xbob).await?;
    let mut xmpp = Vec::new();
    for (tag, n, rate) in [
        ("dir-xmpp-warm", settings.warmup, None),
        ("dir-xmpp", settings.saturating, None),
        ("dir-xmpp-paced", settings.paced, Some(settings.rate)),
    ] {
        let sender = async {
            let start = Instant::now();
            for i in 0..n {
                pace(start, i, rate).await;
                alice
                    .send_groupchat(&room, &format!("{tag} {i} {}", micros()))
                    .await?;
            }
            settle_xmpp(&mut alice).await?;
            Ok::<_, BoxError>(())
        };
        let receiver = collect(tag, n, Source::Xmpp(&mut xbob, &room, "bob"));
        let (sent, run) = tokio::join!(sender, receiver);
        sent?;
        xmpp.push(run?);
    }
    alice.disconnect().await?;
    xbob.disconnect().await?;
    let mut irc = irc.into_iter().skip(1);
    let mut xmpp = xmpp.into_iter().skip(1);
    Ok(Direct {
        irc: (
            irc.next().unwrap_or_default(),
            irc.next().unwrap_or_default(),
        ),
        xmpp: (
            xmpp.next().unwrap_or_default(),
            xmpp.next().unwrap_or_default(),
        ),
    })
}

/// The ceiling of the paths through Prosody, measured as they are but with
/// no gateway: the bare component (XEP-0114, stanzas written from
/// strings, no XML library) as the service of a room on the same Prosody.
///
/// * IRC→XMPP side: it writes to Alice what a gateway would write.
/// * XMPP→IRC side: Alice writes to the room and it answers each message
///   to her, as a MUC service reflects it.
/// * crowd: the members write to the room in turn and it answers each
///   message to every member.
///
/// A gateway's path crosses Prosody the same way and does more besides,
/// so none can pass these on this machine.
///
/// Each is measured twice: with the least a message can be (a body), and
/// as a room that supports XEP-0359 writes its messages (an `id` and a
/// `<stanza-id/>` as well, `_sid`), which is what a gateway's room
/// writes; the crowd's second run is a quarter as long.
///
/// Each run with Prosody's CPU during it (% of one core).
struct Ceiling {
    i2x: (Run, f64),
    i2x_sid: (Run, f64),
    x2i: (Run, f64),
    crowd: Option<(Run, f64)>,
    crowd_sid: Option<(Run, f64)>,
}

async fn ceiling(
    settings: &Settings,
    prosody: &Prosody,
    ircd: &Inspircd,
    hz: f64,
) -> Result<Ceiling, BoxError> {
    let room = format!("ceiling@{BARE_DOMAIN}");
    let mut bare =
        BareComponent::connect(prosody.component_addr(), BARE_DOMAIN, BARE_SECRET).await?;
    let mut alice = XmppUser::connect(prosody, &format!("alice@{HOST_A}"), "alice-pw").await?;
    let alice_jid = alice.jid().to_string();
    let prosody_cpu = || cpu_now(None, prosody, ircd);
    let percent = |before: Cpu| cpu_between(&before, &prosody_cpu(), hz)[1];

    let (mut i2x, mut i2x_sid) = ((Run::default(), 0.0), (Run::default(), 0.0));
    for (tag, n, sid) in [
        ("ceil-i2x-warm", settings.warmup, false),
        ("ceil-i2x", settings.saturating, false),
        ("ceil-i2x-sid", settings.saturating, true),
    ] {
        bare.stanza_ids(sid.then_some(room.as_str()));
        let before = prosody_cpu();
        let sender = async {
            let from = format!("{room}/ircbob");
            for i in 0..n {
                let text = format!("{tag} {i} {}", micros());
                bare.groupchat(&from, &alice_jid, &text).await?;
            }
            bare.flush().await?;
            Ok::<_, BoxError>(())
        };
        let receiver = collect(tag, n, Source::Xmpp(&mut alice, &room, "alice"));
        let (sent, run) = tokio::join!(sender, receiver);
        sent?;
        let got = (run?, percent(before));
        if sid {
            i2x_sid = got;
        } else {
            i2x = got;
        }
    }
    bare.stanza_ids(None);

    let mut x2i = (Run::default(), 0.0);
    for (tag, n) in [
        ("ceil-x2i-warm", settings.warmup),
        ("ceil-x2i", settings.saturating),
    ] {
        let before = prosody_cpu();
        let sender = async {
            for i in 0..n {
                alice
                    .send_groupchat(&room, &format!("{tag} {i} {}", micros()))
                    .await?;
            }
            Ok::<_, BoxError>(())
        };
        let receiver = async {
            let run = collect(tag, n, Source::Bare(&mut bare, &room, &[])).await?;
            bare.flush().await?;
            Ok::<_, BoxError>(run)
        };
        let (sent, run) = tokio::join!(sender, receiver);
        sent?;
        x2i = (run?, percent(before));
        settle_xmpp(&mut alice).await?;
    }
    alice.disconnect().await?;

    let (mut crowd_run, mut crowd_sid) = (None, None);
    if settings.puppets > 0 {
        let crowd = Crowd::join(prosody, settings.puppets, &room, false, None).await?;
        for (tag, n, sid) in [
            ("ceil-crowd", settings.saturating, false),
            ("ceil-crowd-sid", settings.saturating.div_ceil(4), true),
        ] {
            bare.stanza_ids(sid.then_some(room.as_str()));
            let before = prosody_cpu();
            let send = crowd.say_in_turn(tag, n);
            let run = collect(tag, n, Source::Bare(&mut bare, &room, &crowd.jids)).await?;
            bare.flush().await?;
            send.await??;
            let got = Some((run, percent(before)));
            if sid {
                crowd_sid = got;
            } else {
                crowd_run = got;
            }
        }
        bare.stanza_ids(None);
        crowd.leave().await?;
    }
    Ok(Ceiling {
        i2x,
        i2x_sid,
        x2i,
        crowd: crowd_run,
        crowd_sid,
    })
}

/// Read and drop whatever Alice has been sent until 300 ms pass quietly.
async fn settle_xmpp(user: &mut XmppUser) -> Result<(), BoxError> {
    loop {
        match user.next_stanza(Duration::from_millis(300)).await {
            Ok(_) => {}
            Err(HarnessError::Timeout { .. }) => {
                user.clear();
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// A crowd of XMPP users in one room, each on a task of its own that
/// sends what it is told and reads (and drops) everything it is sent.
struct Crowd {
    /// The members' full JIDs.
    jids: Vec<String>,
    senders: Vec<mpsc::Sender<String>>,
    tasks: Vec<tokio::task::JoinHandle<Result<(), HarnessError>>>,
    /// Error stanzas the members were sent, and the first one.
    errors: std::sync::Arc<std::sync::Mutex<(usize, Option<String>)>>,
}

impl Crowd {
    /// `users` members of `room`; with `enter` false they only log in (a
    /// room of the bare component has no presence to enter by).
    async fn join(
        prosody: &Prosody,
        users: usize,
        room: &str,
        enter: bool,
        biboumi_port: Option<u16>,
    ) -> Result<Crowd, BoxError> {
        let room = room.to_owned();
        let joined = futures::stream::iter(0..users)
            .map(|i| {
                let room = room.clone();
                async move {
                    let name = format!("u{i:03}");
                    let mut user =
                        XmppUser::connect(prosody, &format!("{name}@{HOST_A}"), "crowd-pw").await?;
                    if let Some(port) = biboumi_port {
                        configure_irc_server(&mut user, "127.0.0.1", port).await?;
                    }
                    if enter {
                        user.join_muc(&room, &name).await?;
                    }
                    Ok::<_, HarnessError>(user)
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await;
        let mut crowd = Crowd {
            jids: Vec::new(),
            senders: Vec::new(),
            tasks: Vec::new(),
            errors: Default::default(),
        };
        for user in joined {
            let mut user = user?;
            crowd.jids.push(user.jid().to_string());
            let (tx, mut rx) = mpsc::channel::<String>(64);
            let room = room.clone();
            let errors = crowd.errors.clone();
            crowd.senders.push(tx);
            crowd.tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        text = rx.recv() => match text {
                            Some(t) => { user.send_groupchat(&room, &t).await?; }
                            None => break,
                        },
                        s = user.next_stanza(Duration::from_secs(3600)) => match s {
                            Ok(stanza) => {
                                let xml = String::from(&minidom::Element::from(stanza));
                                if xml.contains("type=\"error\"") || xml.contains("type='error'") {
                                    let mut e = errors.lock().unwrap_or_else(|p| p.into_inner());
                                    e.0 += 1;
                                    e.1.get_or_insert(xml);
                                }
                                user.clear();
                            }
                            Err(HarnessError::Timeout { .. }) => {}
                            Err(e) => return Err(e),
                        },
                    }
                }
                user.disconnect().await
            }));
        }
        Ok(crowd)
    }

    /// `n` messages `<tag> <seq> <µs>`, from the members in turn.
    fn say_in_turn(&self, tag: &str, n: usize) -> tokio::task::JoinHandle<Result<(), String>> {
        let senders = self.senders.clone();
        let tag = tag.to_owned();
        tokio::spawn(async move {
            for i in 0..n {
                let who = &senders[i % senders.len()];
                if who.send(format!("{tag} {i} {}", micros())).await.is_err() {
                    return Err("a crowd member stopped".into());
                }
            }
            Ok(())
        })
    }

    async fn leave(self) -> Result<(), BoxError> {
        drop(self.senders);
        for t in self.tasks {
            t.await??;
        }
        Ok(())
    }
}

async fn puppets(
    settings: &Settings,
    path: &Path,
    bob: &mut IrcUser,
    prosody: &Prosody,
    ircd: &Inspircd,
    hz: f64,
    biboumi_port: Option<u16>,
) -> Result<PuppetFigures, BoxError> {
    let started = Instant::now();
    let crowd = Crowd::join(prosody, settings.puppets, &path.room, true, biboumi_port).await?;
    // Every crowd member is on IRC (a connection of its own).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let names = bob.names(&path.channel).await?;
        let on_irc = names.iter().filter(|n| n.starts_with('u')).count();
        if on_irc >= settings.puppets {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{}: only {on_irc} of {} users on IRC after 120 s",
                path.name, settings.puppets
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let joined_in = started.elapsed();
    bob.clear();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_joined = rss_kib(path.pid).unwrap_or(0);
    log_rss_split(path.name, "joined", path.pid);

    let tag = format!("{}-crowd", path.name);
    let n = settings.saturating;
    let before = cpu_now(Some(path.pid), prosody, ircd);
    let send = crowd.say_in_turn(&tag, n);
    let channel = path.channel.clone();
    let load = collect(&tag, n, Source::Irc(bob, &channel)).await?;
    send.await??;
    let cpu = cpu_between(&before, &cpu_now(Some(path.pid), prosody, ircd), hz);
    let rss_after = rss_kib(path.pid).unwrap_or(0);
    log_rss_split(path.name, "after", path.pid);
    {
        let e = crowd.errors.lock().unwrap_or_else(|p| p.into_inner());
        if e.0 > 0 {
            eprintln!(
                "{}: the crowd was sent {} error stanzas; the first: {}",
                path.name,
                e.0,
                e.1.as_deref().unwrap_or("")
            );
        }
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let rss_idle = rss_kib(path.pid).unwrap_or(0);
    log_rss_split(path.name, "idle", path.pid);
    crowd.leave().await?;
    Ok(PuppetFigures {
        users: settings.puppets,
        joined_in,
        load,
        cpu,
        rss_joined,
        rss_after,
        rss_idle,
    })
}

fn gateway_toml(irc: &Inspircd, prosody: &Prosody, channel: &str, puppet: bool) -> String {
    let mode = if puppet {
        "mode = \"puppet\"\npuppet_rate = 1000.0\npuppet_max = 1000\n"
    } else {
        ""
    };
    let chan = channel.trim_start_matches('#');
    format!(
        r##"
[gateway]
name = "gw-bench"
domains = ["{COMPONENT_DOMAIN}"]

[store]
path = "{{dir}}/gateway.sqlite"
{queue}
[log]
level = "warn"

[adapters.irc]
kind = "irc"
network = "{SERVER_NAME}"
server = "{irc}"
nick = "bridge"
channels = ["{channel}"]
flood_rate = 1000000.0
flood_burst = 1000000
{mode}
[adapters.xc]
kind = "xmpp"
mode = "component"
domain = "{COMPONENT_DOMAIN}"
secret = "{COMPONENT_SECRET}"
server = "127.0.0.1:{component}"

[[bridge]]
name = "bench"
rooms = [
  {{ adapter = "irc", address = "irc://{SERVER_NAME}/%23{chan}" }},
  {{ adapter = "xc", address = "xmpp:%23{chan}%25{SERVER_NAME}@{COMPONENT_DOMAIN}" }},
]
"##,
        irc = irc.addr(),
        component = prosody.component_port(),
        queue = std::env::var("IRC_BENCH_WINDOW")
            .map(|w| format!("\n[queue]\nwindow = {w}\n"))
            .unwrap_or_default(),
    )
}

async fn bench(settings: Settings) -> Result<String, BoxError> {
    let hz = clock_ticks_per_second();
    let _ = micros();
    let options = ProsodyOptions::default()
        .log_level("info")
        .hosts(&biboumi::prosody_lua())
        .hosts(&bare_component::prosody_lua(BARE_DOMAIN, BARE_SECRET));
    let prosody = Prosody::start_with(options).await?;
    prosody.register("alice", HOST_A, "alice-pw").await?;
    prosody.register("bob", HOST_A, "bob-pw").await?;
    let registered = futures::stream::iter(0..settings.puppets)
        .map(|i| {
            let prosody = &prosody;
            async move {
                prosody
                    .register(&format!("u{i:03}"), HOST_A, "crowd-pw")
                    .await
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    for r in registered {
        r?;
    }
    let ircd = Inspircd::start().await?;
    let mut bob = IrcUser::connect(ircd.addr(), "ircbob").await?;
    let mut results: Vec<(&'static str, Figures)> = Vec::new();
    eprintln!("direct legs");
    let floor = direct(&settings, &prosody, &ircd, &mut bob).await?;
    eprintln!("ceiling: the bare component");
    let top = ceiling(&settings, &prosody, &ircd, hz).await?;

    for name in PATHS {
        if !settings.paths.iter().any(|p| p == name) {
            continue;
        }
        eprintln!("path {name}");
        let mut alice = XmppUser::connect(&prosody, &format!("alice@{HOST_A}"), "alice-pw").await?;
        let figures = match name {
            "biboumi" => {
                let b = Biboumi::start(&prosody).await?;
                let channel = "#bib".to_owned();
                bob.join(&channel).await?;
                configure_irc_server(&mut alice, "127.0.0.1", ircd.port()).await?;
                let room = biboumi::room(&channel, "127.0.0.1");
                alice.join_muc(&room, "alice").await?;
                bob.wait_for_member(&channel, "alice", true).await?;
                settle_xmpp(&mut alice).await?;
                bob.clear();
                let path = Path {
                    name,
                    room,
                    channel,
                    pid: b.pid().ok_or("biboumi is not running")?,
                };
                let mut f =
                    measure(&settings, &path, &mut alice, &mut bob, &prosody, &ircd, hz).await?;
                if settings.puppets > 0 {
                    f.puppets = Some(
                        puppets(
                            &settings,
                            &path,
                            &mut bob,
                            &prosody,
                            &ircd,
                            hz,
                            Some(ircd.port()),
                        )
                        .await?,
                    );
                }
                if f.puppets
                    .as_ref()
                    .is_some_and(|p| p.load.received < p.load.sent)
                {
                    // What biboumi and the server said about the messages
                    // that never arrived.
                    eprintln!("biboumi: log tail\n{}", b.log_tail(40));
                    eprintln!("biboumi: server log tail\n{}", ircd.log_tail(40));
                }
                alice.disconnect().await?;
                drop(b);
                f
            }
            _ => {
                let puppet = name == "puppet";
                let channel = if puppet { "#pup" } else { "#rel" }.to_owned();
                bob.join(&channel).await?;
                let gw =
                    GatewayProcess::start(&gateway_toml(&ircd, &prosody, &channel, puppet), READY)
                        .await?;
                bob.wait_for_member(&channel, "bridge", true).await?;
                let room = format!("{channel}%{SERVER_NAME}@{COMPONENT_DOMAIN}");
                alice.join_muc(&room, "alice").await?;
                if puppet {
                    bob.wait_for_member(&channel, "alice", true).await?;
                }
                settle_xmpp(&mut alice).await?;
                bob.clear();
                let path = Path {
                    name,
                    room,
                    channel,
                    pid: gw.pid().ok_or("cpimgate is not running")?,
                };
                let mut f =
                    measure(&settings, &path, &mut alice, &mut bob, &prosody, &ircd, hz).await?;
                if puppet && settings.puppets > 0 {
                    f.puppets =
                        Some(puppets(&settings, &path, &mut bob, &prosody, &ircd, hz, None).await?);
                }
                alice.disconnect().await?;
                for w in gw.warnings() {
                    eprintln!("{name}: gateway: {w}");
                }
                for m in gw.metrics().await.lines() {
                    if (m.contains("retries_total") || m.contains("failed_total"))
                        && !m.starts_with('#')
                    {
                        eprintln!("{name}: gateway metric: {m}");
                    }
                }
                gw.stop().await?;
                f
            }
        };
        results.push((name, figures));
    }
    let details = report(&settings, &floor, &top, &results);
    result(&floor, &top, &results, &details).save_and_say();
    Ok(details)
}

fn report(
    settings: &Settings,
    floor: &Direct,
    top: &Ceiling,
    results: &[(&'static str, Figures)],
) -> String {
    let mut out = String::new();
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let _ = writeln!(
        out,
        "\nXMPP MUC <-> IRC, one run, {cores} cores; N={} saturating, {} paced at {} msg/s",
        settings.saturating, settings.paced, settings.rate
    );
    let by_name: HashMap<&str, &Figures> = results.iter().map(|(n, f)| (*n, f)).collect();
    // The slower leg alone: what a gateway path cannot go below. "Added"
    // is an upper bound of the gateway's own share (it includes the
    // faster leg's server hop).
    let base = floor
        .irc
        .1
        .percentile(0.5)
        .max(floor.xmpp.1.percentile(0.5));
    let _ = writeln!(
        out,
        "\nDirect legs, no gateway: IRC->IRC {:.0} msg/s, paced p50 {:.2} / p99 {:.2} ms; XMPP MUC->MUC {:.0} msg/s, paced p50 {:.2} / p99 {:.2} ms. \"added p50\" = a path's paced p50 - {base:.2} ms (the slower leg).",
        floor.irc.0.rate(),
        floor.irc.1.percentile(0.5),
        floor.irc.1.percentile(0.99),
        floor.xmpp.0.rate(),
        floor.xmpp.1.percentile(0.5),
        floor.xmpp.1.percentile(0.99),
    );
    let _ = writeln!(
        out,
        "\nCeiling, no gateway: a bare component (XEP-0114, stanzas from strings) as the room's service on the same Prosody. To Alice {:.0} msg/s (Prosody {:.0} %); from Alice, each answered to her as a MUC reflects it, {:.0} msg/s (Prosody {:.0} %){}. A gateway's path crosses Prosody the same way: \"x ceiling\" is a path's share of it.",
        top.i2x.0.rate(),
        top.i2x.1,
        top.x2i.0.rate(),
        top.x2i.1,
        top.crowd.as_ref().map_or(String::new(), |(run, cpu)| format!(
            "; {} members writing in turn, each message answered to every member, {:.0} msg/s (Prosody {cpu:.0} %)",
            settings.puppets,
            run.rate()
        )),
    );
    let _ = writeln!(
        out,
        "\nThe same with each message as a XEP-0359 room writes it (an id and a <stanza-id/> besides the body, as a gateway's room writes them): to Alice {:.0} msg/s (Prosody {:.0} %){}.",
        top.i2x_sid.0.rate(),
        top.i2x_sid.1,
        top.crowd_sid
            .as_ref()
            .map_or(String::new(), |(run, cpu)| format!(
                "; the crowd {:.0} msg/s (Prosody {cpu:.0} %)",
                run.rate()
            )),
    );
    for (label, pick_sat, pick_paced, cpu, top_rate) in [
        (
            "XMPP->IRC",
            (|f: &Figures| &f.x2i) as fn(&Figures) -> &Run,
            (|f: &Figures| &f.x2i_paced) as fn(&Figures) -> &Run,
            (|f: &Figures| f.x2i_cpu) as fn(&Figures) -> [f64; 4],
            top.x2i.0.rate(),
        ),
        (
            "IRC->XMPP",
            |f: &Figures| &f.i2x,
            |f: &Figures| &f.i2x_paced,
            |f: &Figures| f.i2x_cpu,
            top.i2x.0.rate(),
        ),
    ] {
        let _ = writeln!(
            out,
            "\n{label}\n| path | msg/s | x biboumi | x ceiling | missing | dup | reordered | paced p50 ms | p99 ms | added p50 | gateway CPU % | Prosody % | InspIRCd % | test users % |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
        );
        let bib = by_name.get("biboumi").map(|f| pick_sat(f).rate());
        for (name, f) in results {
            let sat = pick_sat(f);
            let paced = pick_paced(f);
            let c = cpu(f);
            let ratio = bib.map_or("-".to_owned(), |b| format!("{:.2}x", sat.rate() / b));
            let _ = writeln!(
                out,
                "| {name} | {:.0} | {ratio} | {:.2}x | {} | {} | {} | {:.2} | {:.2} | {:+.2} | {:.0} | {:.0} | {:.0} | {:.0} |",
                sat.rate(),
                sat.rate() / top_rate,
                sat.sent - sat.received + (paced.sent - paced.received),
                sat.duplicates + paced.duplicates,
                sat.out_of_order + paced.out_of_order,
                paced.percentile(0.5),
                paced.percentile(0.99),
                paced.percentile(0.5) - base,
                c[0],
                c[1],
                c[2],
                c[3],
            );
        }
    }
    let _ = writeln!(
        out,
        "\nCrowd: XMPP users joined (one IRC connection each), N messages from them in turn, XMPP->IRC\n| path | users | joined in s | msg/s | x biboumi | x ceiling | missing | gateway CPU % | Prosody % | InspIRCd % | test users % | RSS 1 user MB | RSS joined MB | after load MB | after 10 s idle MB |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    let top_crowd = top.crowd.as_ref().map_or(f64::NAN, |(run, _)| run.rate());
    let bib = by_name
        .get("biboumi")
        .and_then(|f| f.puppets.as_ref())
        .map(|p| p.load.rate());
    for (name, f) in results {
        let Some(p) = &f.puppets else { continue };
        let ratio = bib.map_or("-".to_owned(), |b| format!("{:.2}x", p.load.rate() / b));
        let mb = |k: u64| k as f64 / 1024.0;
        let _ = writeln!(
            out,
            "| {name} | {} | {:.1} | {:.0} | {ratio} | {:.2}x | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} |",
            p.users,
            p.joined_in.as_secs_f64(),
            p.load.rate(),
            p.load.rate() / top_crowd,
            p.load.sent - p.load.received,
            p.cpu[0],
            p.cpu[1],
            p.cpu[2],
            p.cpu[3],
            mb(f.rss_one),
            mb(p.rss_joined),
            mb(p.rss_after),
            mb(p.rss_idle),
        );
    }
    out
}

/// The headline figures of the report (`tests/benches/report.rs`): each
/// path of cpimgate beside biboumi, and the paced latencies.
fn result(
    floor: &Direct,
    top: &Ceiling,
    results: &[(&'static str, Figures)],
    details: &str,
) -> BenchResult {
    let mut r = BenchResult::new("irc_bridge");
    r.details = details.to_owned();
    let by_name: HashMap<&str, &Figures> = results.iter().map(|(n, f)| (*n, f)).collect();
    let bib = by_name.get("biboumi").copied();
    // The ceiling beside biboumi: the most a target over biboumi can
    // ask of any gateway on this Prosody and machine.
    let top_crowd = top.crowd.as_ref().map_or(f64::NAN, |(run, _)| run.rate());
    let crowd = |f: &Figures| f.puppets.as_ref().map_or(f64::NAN, |p| p.load.rate());
    r.headline.extend([
        Headline::new(
            "ceiling (bare component, no gateway): XMPP MUC → component, msg/s",
            top.x2i.0.rate(),
            "biboumi",
            bib.map_or(f64::NAN, |b| b.x2i.rate()),
        ),
        Headline::new(
            "ceiling (bare component, no gateway): component → XMPP MUC, msg/s",
            top.i2x.0.rate(),
            "biboumi",
            bib.map_or(f64::NAN, |b| b.i2x.rate()),
        ),
        Headline::new(
            "ceiling (bare component, no gateway): crowd, msg/s",
            top_crowd,
            "biboumi",
            bib.map_or(f64::NAN, crowd),
        ),
        Headline::new(
            "ceiling with XEP-0359 stanza-ids: component → XMPP MUC, msg/s",
            top.i2x_sid.0.rate(),
            "biboumi",
            bib.map_or(f64::NAN, |b| b.i2x.rate()),
        ),
        Headline::new(
            "ceiling with XEP-0359 stanza-ids: crowd, msg/s",
            top.crowd_sid
                .as_ref()
                .map_or(f64::NAN, |(run, _)| run.rate()),
            "biboumi",
            bib.map_or(f64::NAN, crowd),
        ),
    ]);
    let base = floor
        .irc
        .1
        .percentile(0.5)
        .max(floor.xmpp.1.percentile(0.5));
    let of = |f: Option<&Figures>, pick: fn(&Figures) -> f64| f.map_or(f64::NAN, pick);
    let mb = |k: u64| k as f64 / 1024.0;
    let rss = |f: &Figures, pick: fn(&PuppetFigures) -> u64| {
        f.puppets.as_ref().map_or(f64::NAN, |p| mb(pick(p)))
    };
    for (name, f) in results {
        if *name == "biboumi" {
            continue;
        }
        let h = |figure: &str, pick: fn(&Figures) -> f64, target: &str| {
            Headline::new(
                &format!("{name}: {figure}"),
                pick(f),
                "biboumi",
                of(bib, pick),
            )
            .target(target)
        };
        r.headline.extend([
            h("XMPP MUC → IRC, msg/s", |f| f.x2i.rate(), "≥ 3×"),
            h("IRC → XMPP MUC, msg/s", |f| f.i2x.rate(), "≥ 7×"),
        ]);
        r.headline.extend([
            Headline::new(
                &format!("{name}: XMPP MUC → IRC, msg/s, of the ceiling"),
                f.x2i.rate(),
                "ceiling",
                top.x2i.0.rate(),
            ),
            Headline::new(
                &format!("{name}: IRC → XMPP MUC, msg/s, of the ceiling"),
                f.i2x.rate(),
                "ceiling",
                top.i2x.0.rate(),
            ),
        ]);
        let added = |run: &Run| run.percentile(0.5) - base;
        r.headline.push(
            Headline::new(
                &format!("{name}: XMPP → IRC paced, added p50 ms"),
                added(&f.x2i_paced),
                "biboumi",
                bib.map_or(f64::NAN, |b| added(&b.x2i_paced)),
            )
            .target("≤ +0.5 ms"),
        );
        r.headline.push(Headline::new(
            &format!("{name}: IRC → XMPP paced, added p50 ms"),
            added(&f.i2x_paced),
            "biboumi",
            bib.map_or(f64::NAN, |b| added(&b.i2x_paced)),
        ));
        if f.puppets.is_some() {
            let users = f.puppets.as_ref().map_or(0, |p| p.users);
            r.headline.push(
                Headline::new(
                    &format!("{name}: {users} puppeted users, msg/s"),
                    crowd(f),
                    "biboumi",
                    bib.map_or(f64::NAN, crowd),
                )
                .target("≥ 4×"),
            );
            // A rate counts only what arrived: beside a gateway that
            // delivered a few messages and then nothing, it says little
            // without how many arrived.
            let sent = f.puppets.as_ref().map_or(0, |p| p.load.sent);
            let delivered = |f: &Figures| {
                f.puppets
                    .as_ref()
                    .map_or(f64::NAN, |p| p.load.received as f64)
            };
            r.headline.push(Headline::new(
                &format!("{name}: {users} puppeted users, messages delivered of {sent}"),
                delivered(f),
                "biboumi",
                bib.map_or(f64::NAN, delivered),
            ));
            r.headline.push(Headline::new(
                &format!("{name}: {users} puppeted users, msg/s, of the ceiling"),
                crowd(f),
                "ceiling",
                top_crowd,
            ));
            r.headline.push(
                Headline::new(
                    &format!("{name}: RSS with 1 user, MB"),
                    mb(f.rss_one),
                    "biboumi",
                    bib.map_or(f64::NAN, |b| mb(b.rss_one)),
                )
                .target("≤ 0.5×"),
            );
            for (what, pick) in [
                (
                    "RSS with the users joined, MB",
                    (|p: &PuppetFigures| p.rss_joined) as fn(&PuppetFigures) -> u64,
                ),
                ("RSS after the load, MB", |p: &PuppetFigures| p.rss_after),
                ("RSS after 10 s idle, MB", |p: &PuppetFigures| p.rss_idle),
            ] {
                r.headline.push(
                    Headline::new(
                        &format!("{name}: {what}"),
                        rss(f, pick),
                        "biboumi",
                        bib.map_or(f64::NAN, |b| rss(b, pick)),
                    )
                    .target("≤ 0.5×"),
                );
            }
        }
    }
    r.latencies.push(Series::of_micros(
        "IRC → IRC, no gateway",
        &floor.irc.1.latencies,
    ));
    r.latencies.push(Series::of_micros(
        "XMPP MUC → MUC, no gateway",
        &floor.xmpp.1.latencies,
    ));
    for (name, f) in results {
        r.latencies.push(Series::of_micros(
            &format!("{name} XMPP → IRC"),
            &f.x2i_paced.latencies,
        ));
        r.latencies.push(Series::of_micros(
            &format!("{name} IRC → XMPP"),
            &f.i2x_paced.latencies,
        ));
    }
    r
}

/// Where a gateway's resident memory is, on stderr: anonymous (heap,
/// stacks) against file-backed (the binary and libraries).
fn log_rss_split(name: &str, when: &str, pid: u32) {
    if let Some((anon, file)) = rss_split_kib(pid) {
        eprintln!(
            "{name}: RSS {when}: anonymous {:.1} MB, file-backed {:.1} MB",
            anon as f64 / 1024.0,
            file as f64 / 1024.0
        );
    }
}

fn main() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("irc_bridge: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(runtime) = cpimgate_e2e::bench::runtime("irc_bridge") else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(bench(settings)) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("irc_bridge failed: {e}");
            ExitCode::FAILURE
        }
    }
}
