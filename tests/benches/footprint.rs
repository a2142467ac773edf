//! What the gateway costs in memory when nothing happens: the `cpimgate`
//! binary as a process of its own ([`GatewayProcess`]), its RSS after
//! 3 s idle
//!
//! 1. on `examples/quickstart.toml` (the embedded defaults: SQLite, the
//!    admin listener, no adapter);
//! 2. with an MSRP adapter and the XMPP component on a private Prosody,
//!    no room;
//! 3. the same with R rooms (`FOOTPRINT_ROOMS`, default 200), each an
//!    MSRP room bridged with a MUC room of the component: RSS per bridged
//!    room = (3 − 2) / R.
//!
//! Memory per participant is the `msrp_room` benchmark's (a thousand
//! participants of one room). Figures only: nothing here asserts a size.
//!
//! `cargo build --profile bench -p cpimgate`, then `cargo bench -p
//! cpimgate-e2e --bench footprint` (or `tests/bench/run footprint`).

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use cpimgate_e2e::bench::env_u64;
use cpimgate_e2e::bench_report::{BenchResult, Headline};
use cpimgate_e2e::gateway_process::{GatewayProcess, rss_kib};
use cpimgate_e2e::prosody::{COMPONENT_DOMAIN, COMPONENT_SECRET, Prosody, free_port};

const READY: Duration = Duration::from_secs(60);
const SETTLE: Duration = Duration::from_secs(3);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The quickstart config with its store in the process's directory.
fn quickstart() -> Result<String, BoxError> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/quickstart.toml");
    let toml = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let replaced = toml.replace(
        "path = \"cpimgate.sqlite\"",
        "path = \"{dir}/cpimgate.sqlite\"",
    );
    if replaced == toml {
        return Err(format!("{path}: no `path = \"cpimgate.sqlite\"` to move").into());
    }
    Ok(replaced)
}

/// An MSRP adapter and the XMPP component with `rooms` bridged rooms.
fn rooms_toml(prosody: &Prosody, sip_port: u16, rooms: usize) -> String {
    let mut toml = format!(
        r#"
[gateway]
name = "gw-footprint"
domains = ["{COMPONENT_DOMAIN}"]

[store]
path = "{{dir}}/gateway.sqlite"

[log]
level = "warn"

[adapters.xc]
kind = "xmpp"
mode = "component"
domain = "{COMPONENT_DOMAIN}"
secret = "{COMPONENT_SECRET}"
server = "127.0.0.1:{component}"

[adapters.chat]
kind = "msrp"
domain = "chat.localhost"
sip_udp = ["127.0.0.1:{sip_port}"]
sip_tcp = ["127.0.0.1:{sip_port}"]
msrp = "127.0.0.1:0"
"#,
        component = prosody.component_port(),
    );
    for i in 0..rooms {
        let _ = write!(toml, "\n[[adapters.chat.rooms]]\nname = \"room{i:04}\"\n");
    }
    for i in 0..rooms {
        let _ = write!(
            toml,
            "\n[[bridge]]\nname = \"b{i:04}\"\nrooms = [\n  \
             {{ adapter = \"chat\", address = \"sip:room{i:04}@chat.localhost\" }},\n  \
             {{ adapter = \"xc\", address = \"xmpp:room{i:04}@{COMPONENT_DOMAIN}\" }},\n]\n"
        );
    }
    toml
}

/// RSS in MB of a gateway on `toml` after it settled.
async fn idle_rss(toml: &str) -> Result<f64, BoxError> {
    let gw = GatewayProcess::start(toml, READY).await?;
    let pid = gw.pid().ok_or("cpimgate is not running")?;
    tokio::time::sleep(SETTLE).await;
    let rss = rss_kib(pid).ok_or("no RSS for the gateway")? as f64 / 1024.0;
    for w in gw.warnings().iter().take(5) {
        eprintln!("footprint: gateway: {w}");
    }
    gw.stop().await?;
    Ok(rss)
}

async fn bench(rooms: usize) -> Result<[f64; 3], BoxError> {
    let quick = idle_rss(&quickstart()?).await?;
    let prosody = Prosody::start().await?;
    let none = idle_rss(&rooms_toml(&prosody, free_port()?, 0)).await?;
    let many = idle_rss(&rooms_toml(&prosody, free_port()?, rooms)).await?;
    Ok([quick, none, many])
}

fn main() -> ExitCode {
    let rooms = match env_u64("FOOTPRINT_ROOMS", 200) {
        Ok(r) => usize::try_from(r.max(1)).unwrap_or(200),
        Err(e) => {
            eprintln!("footprint: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(runtime) = cpimgate_e2e::bench::runtime("footprint") else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(bench(rooms)) {
        Ok([quick, none, many]) => {
            let per_room_kib = (many - none) * 1024.0 / rooms as f64;
            let details = format!(
                "\nGateway RSS after {} s idle (MB)\n\n| config | RSS MB |\n|---|---|\n\
                 | examples/quickstart.toml | {quick:.1} |\n\
                 | MSRP adapter + XMPP component, no room | {none:.1} |\n\
                 | the same with {rooms} MSRP rooms each bridged with a MUC room | {many:.1} |\n\n\
                 Per bridged room: {per_room_kib:.1} KiB.",
                SETTLE.as_secs()
            );
            println!("{details}");
            let mut r = BenchResult::new("footprint");
            r.details = details;
            r.headline = vec![
                Headline::alone("RSS idle, quickstart config, MB", quick),
                Headline::alone("RSS idle, MSRP + XMPP component, MB", none),
                Headline::alone(&format!("RSS idle with {rooms} bridged rooms, MB"), many),
                Headline::alone("RSS per bridged room, KiB", per_room_kib),
            ];
            r.save_and_say();
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("footprint failed: {e}");
            ExitCode::FAILURE
        }
    }
}
