//! A server that stops reading: the gateway's writes toward it stop making
//! progress, and without a limit its adapter would wait in a write
//! forever, reading nothing (so it would not even notice pings going
//! unanswered). Each test freezes one server with SIGSTOP while the
//! gateway has much to write to it, and checks that:
//!
//! * the adapter gives the connection up `write_timeout_ms` (2 s here)
//!   after a write stalled, with a warning that says why: "cutting the
//!   component connection (reset): the server does not read" (XMPP), "irc:
//!   connection lost: write: ... the server does not read" (IRC);
//! * everyone else is served meanwhile: a SIP MESSAGE to the other
//!   world arrives while the server is frozen;
//! * once the server runs again (SIGCONT), the adapter connects again and
//!   every message acknowledged to its SIP sender (202) arrives. Copies
//!   the frozen server had already taken into its socket buffer before the
//!   cut are read by it when it wakes up, and are sent again after the
//!   reconnect (at least once): on XMPP with the same stanza id. Repeats
//!   are counted and shown, not failed.
//!
//! The gateway runs as a process of its own (the debug `cpimgate`
//! binary) beside a private Prosody and a private InspIRCd, with SIP on
//! UDP, the XMPP component and IRC in relay mode. Its delivery window is
//! raised, and 600 MESSAGEs are sent (30 KB each toward XMPP, 10 KB
//! toward IRC, whole there: `max_lines` raised; `flood_rate` 5,000 lines
//! a second), so that enough is written to fill the socket buffers
//! (several MB on loopback). About 20 s each.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use cpimgate_e2e::gateway_process::GatewayProcess;
use cpimgate_e2e::inspircd::{Inspircd, SERVER_NAME};
use cpimgate_e2e::irc_user::IrcUser;
use cpimgate_e2e::prosody::{COMPONENT_DOMAIN, COMPONENT_SECRET, HOST_A, Prosody, free_port};
use cpimgate_e2e::sip_pager::SipPager;
use cpimgate_e2e::xmpp_user::{XmppUser, body};
use tokio::time::Instant;

const SIP_DOMAIN: &str = "sip.gw.localhost";
const READY: Duration = Duration::from_secs(30);
/// MESSAGEs sent while the server is frozen, and their size: together
/// well beyond what the sockets between the gateway and the server hold.
const FROZEN_MESSAGES: usize = 600;
/// The size of each toward XMPP, and toward IRC (where it becomes ~23
/// lines, paced at `flood_rate`).
const XMPP_BODY: usize = 30_000;
const IRC_BODY: usize = 10_000;
/// How long the cut may take to show in the log (2 s of stalled write,
/// after the buffers filled).
const CUT_WITHIN: Duration = Duration::from_secs(30);

fn config(sip_port: u16, xmpp: &Prosody, irc: SocketAddr) -> String {
    format!(
        r#"
[gateway]
name = "gw-fault-frozen"
domains = ["{SIP_DOMAIN}"]

[store]
path = "{{dir}}/gateway.sqlite"

[queue]
window = 2000
retry_base_ms = 100
retry_max_ms = 1000

[adapters.sip]
kind = "sip"
domains = ["{SIP_DOMAIN}"]
udp = ["127.0.0.1:{sip_port}"]

[adapters.xc]
kind = "xmpp"
mode = "component"
domain = "{COMPONENT_DOMAIN}"
secret = "{COMPONENT_SECRET}"
server = "127.0.0.1:{component_port}"
receipt_wait = 0
write_timeout_ms = 2000

[adapters.irc]
kind = "irc"
network = "{SERVER_NAME}"
server = "{irc}"
nick = "bridge"
flood_rate = 5000.0
flood_burst = 500
reconnect_max_secs = 1
max_lines = 100
write_timeout_ms = 2000

[[route]]
domain = "{HOST_A}"
adapter = "xc"

[[route]]
domain = "{SERVER_NAME}"
adapter = "irc"
"#,
        component_port = xmpp.component_port(),
    )
}

struct World {
    xmpp: Prosody,
    irc: Inspircd,
    gw: GatewayProcess,
    user: XmppUser,
    bob: IrcUser,
    sip: SocketAddr,
}

async fn start() -> World {
    cpimgate_e2e::init_logging();
    GatewayProcess::build_debug()
        .await
        .unwrap_or_else(|e| panic!("the gateway binary must build: {e}"));
    let xmpp = Prosody::start()
        .await
        .unwrap_or_else(|e| panic!("Prosody must start: {e}"));
    xmpp.register("user", HOST_A, "user-pw").await.unwrap();
    let irc = Inspircd::start()
        .await
        .unwrap_or_else(|e| panic!("InspIRCd must start: {e}"));
    let sip_port = free_port().unwrap();
    let gw = GatewayProcess::start(&config(sip_port, &xmpp, irc.addr()), READY)
        .await
        .unwrap_or_else(|e| panic!("the gateway must start: {e}"));
    let user = XmppUser::connect(&xmpp, &format!("user@{HOST_A}"), "user-pw")
        .await
        .unwrap();
    let bob = IrcUser::connect(irc.addr(), "bob").await.unwrap();
    World {
        xmpp,
        irc,
        gw,
        user,
        bob,
        sip: SocketAddr::from(([127, 0, 0, 1], sip_port)),
    }
}

fn to_user() -> String {
    format!("sip:user%40{HOST_A}@{SIP_DOMAIN}")
}

fn to_bob() -> String {
    format!("sip:bob%25{SERVER_NAME}@{SIP_DOMAIN}")
}

/// SIGSTOP or SIGCONT to `pid`.
async fn signal(pid: u32, sig: &str) {
    let status = tokio::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .await
        .unwrap();
    assert!(status.success(), "kill {sig} {pid}: {status}");
}

/// `FROZEN_MESSAGES` MESSAGEs of `body` bytes to `uri`, from four pagers
/// at once; the texts that got a 202.
async fn flood(sip: SocketAddr, uri: &str, tag: &str, body: usize) -> BTreeSet<String> {
    let tasks: Vec<_> = (0..4)
        .map(|k| {
            let uri = uri.to_owned();
            let tag = tag.to_owned();
            tokio::spawn(async move {
                let mut p = SipPager::bind(sip, &format!("{tag}{k}")).await.unwrap();
                let mut acked = BTreeSet::new();
                for i in (k..FROZEN_MESSAGES).step_by(4) {
                    let head = format!("{tag}-{i:04} ");
                    let text = format!("{head}{}", "x".repeat(body - head.len()));
                    if p.message(&uri, &text, Duration::from_secs(5))
                        .await
                        .unwrap()
                        == Some(202)
                    {
                        acked.insert(head.trim_end().to_owned());
                    }
                }
                acked
            })
        })
        .collect();
    let mut acked = BTreeSet::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    acked
}

/// Waits for a warning that holds every one of `parts`.
async fn expect_warning(gw: &GatewayProcess, parts: &[&str]) -> String {
    let deadline = Instant::now() + CUT_WITHIN;
    loop {
        if let Some(l) = gw
            .warnings()
            .into_iter()
            .find(|l| parts.iter().all(|p| l.contains(p)))
        {
            return l;
        }
        assert!(
            Instant::now() < deadline,
            "no warning with {parts:?} in {CUT_WITHIN:?}; the log ends with:\n{}",
            gw.log_tail(40)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The head (`tag-NNNN`) of a flood text.
fn head_of(text: &str) -> &str {
    text.split_once(' ').map_or(text, |(h, _)| h)
}

/// The copies of each of `want` that `next` brings, until all came and 2
/// s passed without more (60 s at most): text → ids of its copies.
async fn collect(
    want: &BTreeSet<String>,
    mut next: impl AsyncFnMut() -> Option<(String, String)>,
) -> BTreeMap<String, Vec<String>> {
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut quiet_since = Instant::now();
    loop {
        let now = Instant::now();
        let all = want.iter().all(|t| got.contains_key(t));
        if now >= deadline || (all && now - quiet_since >= Duration::from_secs(2)) {
            return got;
        }
        if let Some((text, id)) = next().await
            && want.contains(&text)
        {
            got.entry(text).or_default().push(id);
            quiet_since = Instant::now();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_xmpp_server_is_cut_off_and_caught_up() {
    let mut w = start().await;
    let mut pager = SipPager::bind(w.sip, "warm").await.unwrap();
    assert_eq!(
        pager
            .message(&to_user(), "warm", Duration::from_secs(5))
            .await
            .unwrap(),
        Some(202)
    );
    w.user
        .expect_body("warm", Duration::from_secs(10))
        .await
        .unwrap();

    let prosody = w.xmpp.pid().expect("Prosody runs");
    signal(prosody, "-STOP").await;
    let frozen_at = Instant::now();
    let acked = flood(w.sip, &to_user(), "x", XMPP_BODY).await;
    let cut = expect_warning(
        &w.gw,
        &[
            "cutting the component connection (reset)",
            "the server does not read",
        ],
    )
    .await;
    let cut_after = frozen_at.elapsed();
    // The other world is served while Prosody sleeps.
    assert_eq!(
        pager
            .message(&to_bob(), "while frozen", Duration::from_secs(5))
            .await
            .unwrap(),
        Some(202)
    );
    w.bob
        .expect_privmsg("bob", |t| t.ends_with("while frozen"))
        .await
        .unwrap_or_else(|e| panic!("IRC is served while Prosody is frozen: {e}"));
    signal(prosody, "-CONT").await;

    let got = collect(&acked, async || {
        let m = w.user.next_message(Duration::from_millis(500)).await.ok()?;
        let id = m.id.as_ref().map(|i| i.0.clone()).unwrap_or_default();
        Some((head_of(body(&m)?).to_owned(), id))
    })
    .await;
    let missing: Vec<&String> = acked.iter().filter(|t| !got.contains_key(*t)).collect();
    let repeats: Vec<(&String, &Vec<String>)> = got.iter().filter(|(_, c)| c.len() > 1).collect();
    let other_ids: Vec<&String> = repeats
        .iter()
        .filter(|(_, c)| c.iter().any(|id| id.is_empty() || *id != c[0]))
        .map(|(t, _)| *t)
        .collect();
    let connected =
        w.gw.log()
            .lines()
            .filter(|l| l.contains("component connected"))
            .count();
    eprintln!(
        "XMPP frozen: {} of {FROZEN_MESSAGES} acknowledged; cut {cut_after:?} after the \
         freeze: {cut}; {} arrived, {} more than once (at least once across the cut), \
         component connected {connected} times",
        acked.len(),
        got.len(),
        repeats.len()
    );
    assert_eq!(acked.len(), FROZEN_MESSAGES, "every MESSAGE gets its 202");
    assert!(missing.is_empty(), "acknowledged and lost: {missing:?}");
    assert!(
        other_ids.is_empty(),
        "repeated with another stanza id (the client cannot drop them): {other_ids:?}"
    );
    assert!(
        connected >= 2,
        "the component connected again after the cut"
    );
    w.gw.stop().await.unwrap();
    drop(w.irc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_irc_server_is_cut_off_and_caught_up() {
    let mut w = start().await;
    let mut pager = SipPager::bind(w.sip, "warm").await.unwrap();
    assert_eq!(
        pager
            .message(&to_bob(), "warm", Duration::from_secs(5))
            .await
            .unwrap(),
        Some(202)
    );
    w.bob
        .expect_privmsg("bob", |t| t.ends_with("warm"))
        .await
        .unwrap();

    let ircd = w.irc.pid().expect("InspIRCd runs");
    signal(ircd, "-STOP").await;
    let frozen_at = Instant::now();
    let acked = flood(w.sip, &to_bob(), "i", IRC_BODY).await;
    let cut = expect_warning(
        &w.gw,
        &["irc: connection lost: write", "the server does not read"],
    )
    .await;
    let cut_after = frozen_at.elapsed();
    // The other world is served while InspIRCd sleeps.
    assert_eq!(
        pager
            .message(&to_user(), "while frozen", Duration::from_secs(5))
            .await
            .unwrap(),
        Some(202)
    );
    w.user
        .expect_body("while frozen", Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("XMPP is served while InspIRCd is frozen: {e}"));
    signal(ircd, "-CONT").await;

    // The flood's texts are long: IRC splits each into lines; the first
    // line starts with the head.
    let got = collect(&acked, async || {
        let l = tokio::time::timeout(Duration::from_millis(500), w.bob.next_line())
            .await
            .ok()?
            .ok()?;
        if l.command != "PRIVMSG" {
            return Some((String::new(), String::new()));
        }
        let text = l.param(1);
        // Relay mode to a nick: "<sender> text".
        let text = text.split_once("> ").map_or(text, |(_, t)| t);
        Some((head_of(text).to_owned(), String::new()))
    })
    .await;
    let missing: Vec<&String> = acked.iter().filter(|t| !got.contains_key(*t)).collect();
    let repeats = got.values().filter(|c| c.len() > 1).count();
    let registered =
        w.gw.log()
            .lines()
            .filter(|l| l.contains("irc: registered"))
            .count();
    eprintln!(
        "IRC frozen: {} of {FROZEN_MESSAGES} acknowledged; cut {cut_after:?} after the \
         freeze: {cut}; {} arrived, {repeats} more than once (at least once across the \
         cut), registered {registered} times",
        acked.len(),
        got.len(),
    );
    assert_eq!(acked.len(), FROZEN_MESSAGES, "every MESSAGE gets its 202");
    assert!(missing.is_empty(), "acknowledged and lost: {missing:?}");
    assert!(
        registered >= 2,
        "the IRC connection was made again after the cut"
    );
    w.gw.stop().await.unwrap();
}
