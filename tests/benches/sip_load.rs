//! SIP pager mode under load: sipp sends MESSAGEs (RFC 3428) over UDP to
//! the gateway, which delivers each to an XMPP user (1:1 through the XMPP
//! component on Prosody) or to an IRC nick (relay mode on InspIRCd).
//!
//! The gateway is the `cpimgate` binary as a process of its own
//! ([`GatewayProcess`]) with its durable queue on (SQLite in the system
//! temp dir). For each target and each offered rate R of `SIP_BENCH_RATES`
//! (default 250,500,1000,2000,4000 msg/s), sipp offers R × `SIP_BENCH_SECONDS`
//! (default 5) MESSAGEs with up to 1,000 in flight
//! (tests/sipp/message_uac_load.xml: every body carries its number and
//! sipp's send time), and the receiver counts each once. A step is
//! *clean* when sipp saw a 202 for every MESSAGE, every one arrived
//! exactly once, and they came out at ≥ 95 % of the offered rate (first
//! send to last arrival); the headline is the highest clean rate, the
//! sustained rate with zero loss. Latency is sipp's send time to the receiver's
//! read, both on this machine's clock: an upper bound of what the
//! gateway adds, since it includes the XMPP or IRC server's hop.
//!
//! A step that is not clean is reported as such (how many were lost or
//! refused), and the steps above it still run: the table shows where the
//! gateway stops keeping up. Figures only: nothing here asserts a speed.
//!
//! `cargo build --profile bench -p cpimgate`, then `cargo bench -p
//! cpimgate-e2e --bench sip_load` (or `tests/bench/run sip_load`).

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use cpimgate_e2e::bench::percentile_ms;
use cpimgate_e2e::bench_report::{BenchResult, Headline, Series};
use cpimgate_e2e::gateway_process::{GatewayProcess, cpu_ticks, rss_kib};
use cpimgate_e2e::inspircd::{Inspircd, SERVER_NAME};
use cpimgate_e2e::irc_user::IrcUser;
use cpimgate_e2e::prosody::{COMPONENT_DOMAIN, COMPONENT_SECRET, HOST_A, Prosody, free_port};
use cpimgate_e2e::sipp::{Sipp, SippTransport};
use cpimgate_e2e::xmpp_user::{XmppUser, body};

const SIP_DOMAIN: &str = "sip.gw.localhost";
/// A step ends when nothing arrived this long.
const IDLE: Duration = Duration::from_secs(10);
const READY: Duration = Duration::from_secs(30);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One offered rate toward one target.
struct Step {
    target: &'static str,
    rate: u32,
    offered: u32,
    /// MESSAGEs that arrived, once each.
    received: u32,
    duplicates: u32,
    /// sipp's verdict: every MESSAGE got its 202.
    all_accepted: bool,
    sipp_error: Option<String>,
    /// First send to last arrival.
    wall: Duration,
    /// Send to arrival, µs.
    latencies: Vec<u64>,
    /// The gateway's CPU over the step, % of one core.
    gateway_cpu: f64,
}

impl Step {
    /// Every MESSAGE accepted and delivered once, and the receiver kept
    /// up: at least 95 % of the offered rate came out (a gateway that
    /// only queues what it cannot deliver yet loses nothing, but does not
    /// sustain that rate).
    fn clean(&self) -> bool {
        self.all_accepted
            && self.received == self.offered
            && self.duplicates == 0
            && self.achieved() >= 0.95 * f64::from(self.rate)
    }

    fn achieved(&self) -> f64 {
        f64::from(self.received) / self.wall.as_secs_f64().max(1e-9)
    }
}

/// Counts "Message N sent DATE TIME UNIX from sipp." texts, maybe after
/// a relay's "<nick> ".
struct Tally {
    seen: Vec<bool>,
    received: u32,
    duplicates: u32,
    latencies: Vec<u64>,
    last: Instant,
}

impl Tally {
    fn new(total: u32) -> Tally {
        Tally {
            seen: vec![false; total as usize + 1],
            received: 0,
            duplicates: 0,
            latencies: Vec::with_capacity(total as usize),
            last: Instant::now(),
        }
    }

    fn record(&mut self, text: &str) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let words: Vec<&str> = text.split_whitespace().collect();
        let Some(at) = words.iter().position(|w| *w == "Message") else {
            return;
        };
        let (Some(n), Some(sent)) = (words.get(at + 1), words.get(at + 5)) else {
            return;
        };
        let (Ok(n), Ok(sent)) = (n.parse::<usize>(), sent.parse::<f64>()) else {
            return;
        };
        let Some(slot) = self.seen.get_mut(n) else {
            return;
        };
        if std::mem::replace(slot, true) {
            self.duplicates += 1;
            return;
        }
        self.received += 1;
        self.last = Instant::now();
        self.latencies
            .push(((now - sent).max(0.0) * 1e6).round() as u64);
    }
}

fn gateway_toml(sip_port: u16, prosody: &Prosody, ircd: &Inspircd) -> String {
    format!(
        r#"
[gateway]
name = "gw-sip-bench"
domains = ["{SIP_DOMAIN}"]

[store]
path = "{{dir}}/gateway.sqlite"

[log]
level = "warn"

[adapters.xmpp]
kind = "xmpp"
mode = "component"
domain = "{COMPONENT_DOMAIN}"
secret = "{COMPONENT_SECRET}"
server = "127.0.0.1:{component}"
receipt_wait = 0

[adapters.irc]
kind = "irc"
network = "{SERVER_NAME}"
server = "{irc}"
nick = "cpimgate"
flood_rate = 1000000.0
flood_burst = 1000000

[adapters.sip]
kind = "sip"
domains = ["{SIP_DOMAIN}"]
udp = ["127.0.0.1:{sip_port}"]
tcp = ["127.0.0.1:{sip_port}"]

[[route]]
domain = "{HOST_A}"
adapter = "xmpp"

[[route]]
domain = "{SERVER_NAME}"
adapter = "irc"
"#,
        component = prosody.component_port(),
        irc = ircd.addr(),
    )
}

/// Where the MESSAGEs go.
enum Receiver {
    Xmpp(Box<XmppUser>),
    Irc(IrcUser),
}

impl Receiver {
    /// The next text the receiver got, or None after `IDLE` without any.
    async fn next_text(&mut self) -> Option<String> {
        match self {
            Receiver::Xmpp(user) => {
                let m = user.next_message(IDLE).await.ok()?;
                Some(body(&m).unwrap_or_default().to_owned())
            }
            Receiver::Irc(user) => loop {
                let l = tokio::time::timeout(IDLE, user.next_line())
                    .await
                    .ok()?
                    .ok()?;
                if l.command == "PRIVMSG" {
                    return Some(l.param(1).to_owned());
                }
            },
        }
    }
}

/// The gateway under load: its SIP port and process.
struct Gw {
    sip_port: u16,
    pid: u32,
    hz: f64,
}

/// One receiver and the SIP user part that reaches it.
struct Target {
    name: &'static str,
    service: String,
    receiver: Receiver,
}

async fn step(t: &mut Target, gw: &Gw, rate: u32, seconds: u32) -> Result<Step, BoxError> {
    let (target, service, receiver) = (t.name, t.service.as_str(), &mut t.receiver);
    let (sip_port, pid, hz) = (gw.sip_port, gw.pid, gw.hz);
    let total = rate.saturating_mul(seconds).max(1);
    let cpu_before = cpu_ticks(pid).unwrap_or(0);
    let start = Instant::now();
    let sipp = Sipp::uac(
        "message_uac_load.xml",
        SippTransport::Udp,
        &format!("127.0.0.1:{sip_port}"),
        total,
        &[
            "-s",
            service,
            "-key",
            "domain",
            SIP_DOMAIN,
            "-r",
            &rate.to_string(),
            "-l",
            "1000",
        ],
    )?;
    let mut tally = Tally::new(total);
    while tally.received < total {
        let Some(text) = receiver.next_text().await else {
            break;
        };
        tally.record(&text);
    }
    let wall = tally.last.saturating_duration_since(start);
    let cpu = cpu_ticks(pid).unwrap_or(0).saturating_sub(cpu_before);
    let verdict = sipp.finish(Duration::from_secs(120)).await;
    let s = Step {
        target,
        rate,
        offered: total,
        received: tally.received,
        duplicates: tally.duplicates,
        all_accepted: verdict.is_ok(),
        sipp_error: verdict.err().map(|e| {
            let e = e.to_string();
            e.lines().take(3).collect::<Vec<_>>().join(" / ")
        }),
        wall,
        gateway_cpu: 100.0 * cpu as f64 / hz / wall.as_secs_f64().max(1e-9),
        latencies: tally.latencies,
    };
    eprintln!(
        "sip_load: {target} at {rate}/s: {} of {} arrived ({} dup), {}, p50 {:.2} ms, p99 {:.2} ms",
        s.received,
        s.offered,
        s.duplicates,
        if s.all_accepted {
            "all 202"
        } else {
            "sipp saw failures"
        },
        percentile_ms(&s.latencies, 0.5),
        percentile_ms(&s.latencies, 0.99),
    );
    // Let the queue drain before the next step.
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(s)
}

async fn bench(rates: &[u32], seconds: u32) -> Result<(Vec<Step>, f64), BoxError> {
    let hz = cpimgate_e2e::bench::clock_ticks_per_second();
    let prosody = Prosody::start().await?;
    prosody.register("user", HOST_A, "user-pw").await?;
    let ircd = Inspircd::start().await?;
    let sip_port = free_port()?;
    let gw = GatewayProcess::start(&gateway_toml(sip_port, &prosody, &ircd), READY).await?;
    let pid = gw.pid().ok_or("cpimgate is not running")?;
    let rss_idle = rss_kib(pid).unwrap_or(0) as f64 / 1024.0;
    let user = XmppUser::connect(&prosody, &format!("user@{HOST_A}"), "user-pw").await?;
    let bob = IrcUser::connect(ircd.addr(), "bob").await?;
    let mut targets = [
        Target {
            name: "XMPP 1:1",
            service: format!("user%40{HOST_A}"),
            receiver: Receiver::Xmpp(Box::new(user)),
        },
        Target {
            name: "IRC nick",
            service: format!("bob%25{SERVER_NAME}"),
            receiver: Receiver::Irc(bob),
        },
    ];
    let under_load = Gw { sip_port, pid, hz };
    let mut steps = Vec::new();
    for t in &mut targets {
        for &rate in rates {
            steps.push(step(t, &under_load, rate, seconds).await?);
        }
    }
    for w in gw.warnings().iter().take(10) {
        eprintln!("sip_load: gateway: {w}");
    }
    gw.stop().await?;
    Ok((steps, rss_idle))
}

fn report(steps: &[Step], seconds: u32) -> String {
    let mut out = String::new();
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let _ = writeln!(
        out,
        "\nSIP MESSAGE over UDP from sipp → the gateway (durable queue on) → an XMPP user \
         (component, Prosody) or an IRC nick (relay, InspIRCd); {seconds} s per step, up to \
         1,000 MESSAGEs in flight; {cores} cores shared by sipp, the servers, the gateway and \
         the receiver. Latency: sipp's send time to the receiver's read (includes the XMPP or \
         IRC server's hop).\n\n\
         | target | offered msg/s | MESSAGEs | arrived | lost | dup | all 202 | clean | achieved msg/s | p50 ms | p99 ms | max ms | gateway CPU % |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for s in steps {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.0} |",
            s.target,
            s.rate,
            s.offered,
            s.received,
            s.offered.saturating_sub(s.received),
            s.duplicates,
            if s.all_accepted { "yes" } else { "no" },
            if s.clean() { "yes" } else { "no" },
            s.achieved(),
            percentile_ms(&s.latencies, 0.5),
            percentile_ms(&s.latencies, 0.99),
            percentile_ms(&s.latencies, 1.0),
            s.gateway_cpu,
        );
    }
    for s in steps.iter().filter(|s| s.sipp_error.is_some()) {
        let _ = writeln!(
            out,
            "\n{} at {}/s, sipp: {}",
            s.target,
            s.rate,
            s.sipp_error.as_deref().unwrap_or_default()
        );
    }
    out
}

fn result(steps: &[Step], details: &str, rss_idle: f64) -> BenchResult {
    let mut r = BenchResult::new("sip_load");
    r.details = details.to_owned();
    for target in ["XMPP 1:1", "IRC nick"] {
        let best = steps
            .iter()
            .filter(|s| s.target == target && s.clean())
            .max_by_key(|s| s.rate);
        r.headline.push(Headline::alone(
            &format!("SIP MESSAGE → {target}: highest offered rate with zero loss, msg/s"),
            best.map_or(f64::NAN, |s| f64::from(s.rate)),
        ));
        if let Some(s) = best {
            for (q, name) in [(0.5, "p50"), (0.99, "p99")] {
                r.headline.push(Headline::alone(
                    &format!(
                        "SIP → {target} at {}/s: end-to-end {name} ms (bounds the added latency)",
                        s.rate
                    ),
                    percentile_ms(&s.latencies, q),
                ));
            }
        }
        // The lowest rate's run is the paced one of the plot.
        if let Some(s) = steps
            .iter()
            .filter(|s| s.target == target)
            .min_by_key(|s| s.rate)
        {
            r.latencies.push(Series::of_micros(
                &format!("SIP → {target} at {}/s", s.rate),
                &s.latencies,
            ));
        }
    }
    r.headline.push(Headline::alone(
        "gateway RSS with SIP, XMPP and IRC, idle, MB",
        rss_idle,
    ));
    r
}

fn main() -> ExitCode {
    let rates: Result<Vec<u32>, _> = std::env::var("SIP_BENCH_RATES")
        .unwrap_or_else(|_| "250,500,1000,2000,4000".to_owned())
        .split(',')
        .map(|r| r.trim().parse::<u32>())
        .collect();
    let Ok(rates) = rates else {
        eprintln!("sip_load: SIP_BENCH_RATES must be a comma-separated list of integers");
        return ExitCode::FAILURE;
    };
    let seconds = match cpimgate_e2e::bench::env_u64("SIP_BENCH_SECONDS", 5) {
        Ok(s) => u32::try_from(s.max(1)).unwrap_or(5),
        Err(e) => {
            eprintln!("sip_load: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(runtime) = cpimgate_e2e::bench::runtime("sip_load") else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(bench(&rates, seconds)) {
        Ok((steps, rss_idle)) => {
            let details = report(&steps, seconds);
            println!("{details}");
            result(&steps, &details, rss_idle).save_and_say();
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sip_load failed: {e}");
            ExitCode::FAILURE
        }
    }
}
