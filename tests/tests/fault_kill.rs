//! `kill -9` of the gateway with messages in flight: nothing acknowledged
//! is lost, and a message is repeated only as the one redelivery of what
//! was in flight at the crash.
//!
//! The gateway runs as a process of its own (the debug `cpimgate` binary,
//! built by the test if it is stale: [`GatewayProcess::build_debug`]) with a
//! private Prosody and a private InspIRCd, and four adapters:
//!
//! * `sip`: SIP pager mode on UDP;
//! * `xc`: the XMPP component; SIP addresses appear as its JIDs, and the
//!   IRC channel as its MUC room `#test%irc.localhost@gw.localhost`;
//!   `a.localhost` (the XMPP users) is routed through it;
//! * `irc`: relay mode in `#test`, bridged with that MUC room;
//! * `chat`: the gateway's MSRP room `sip:room22@chat.localhost`, in the
//!   same bridge.
//!
//! Senders push concurrently, 1,000 messages in all, each with a sequence
//! number in its text:
//!
//! * four SIP pagers ([`SipPager`]) send 120 MESSAGEs each to the XMPP user
//!   `user`, one at a time, retransmitting as RFC 3261 says (so a MESSAGE
//!   whose 202 died with the process reaches the restarted gateway again,
//!   and must not be delivered twice: the SIP adapter's message id is the
//!   From tag, Call-ID and CSeq, and the queue remembers ids on disk);
//! * the XMPP user `zoe` posts 320 messages in the component's MUC room, in
//!   bursts of 40, for the IRC channel (and the MSRP room);
//! * the MSRP participant `bob` sends 200 messages in the MSRP room, one
//!   SEND at a time, for the IRC channel (and the MUC room); when his
//!   session breaks with the crash he joins again once the gateway is
//!   back;
//! * the IRC user `carol` says a line in the channel every 15 ms, before,
//!   during and after the crash, until 60 lines after the restart, for
//!   the MUC room (and the MSRP room). The channel keeps its history
//!   (InspIRCd's chanhistory, mode `+H`).
//!
//! Once 330 are acknowledged, the gateway gets SIGKILL 2 ms after zoe's
//! next burst is written (so it dies while busy with it); the test reads
//! what the crash left in the store, and starts the gateway again on the
//! same SQLite file while the senders go on.
//!
//! # What "acknowledged" means here, per world
//!
//! * **SIP**: a final `202 Accepted` to the MESSAGE (the hub answers the
//!   adapter only once the message is committed to disk). A timeout or an
//!   error status is no acknowledgement.
//! * **MSRP**: the `200` to the SEND (RFC 4975 §7.1.1; the room answers
//!   it once the hub has the message on disk). A broken session or
//!   another status is no acknowledgement.
//! * **IRC**: the server took the line (the channel is the sender's only
//!   peer; IRC tells a sender nothing of who read a line). So every line
//!   carol said counts, also those said while the gateway was dead: the
//!   restarted gateway must read them from the channel's history replay
//!   on its join, and must not take again those it had stored before the
//!   crash (their ids come from the IRCv3 `msgid`).
//! * **XMPP MUC (component mode)**: the room's reflection of the message
//!   to its sender (XEP-0045 §7.4: the room took it). The gateway is the
//!   room, so its reflection is the only word the sender gets; an error
//!   stanza is a refusal, no answer is no acknowledgement. History on
//!   rejoin (with `<delay/>`) is not a reflection. This test found the
//!   room reflecting before the message was stored, so a crash lost
//!   reflected messages; the room now reflects to the sender once the hub
//!   has the message on disk.
//!
//! # What is checked
//!
//! After the senders are done, and once the receivers (`user` over XMPP
//! for the pagers, `alice` in the IRC channel for zoe and bob) have
//! everything acknowledged and 2 s have
//! passed without more:
//!
//! * every acknowledged message arrived;
//! * a message arrives at most twice, and twice only as an at-least-once
//!   redelivery. Delivery across a crash is at least once: no gateway can
//!   know whether a message it wrote to a socket just before dying was
//!   taken. Two ways lead there: an entry the crash left in the store
//!   (delivered, its confirmation not on disk yet) is delivered again;
//!   and a message delivered while its group's commit ran (delivery does
//!   not wait for the fsync), rolled back by the crash, is stored and
//!   delivered again when its sender retransmits. On XMPP both copies
//!   must carry the same stanza id, so the client drops the repeat
//!   (XEP-0359); on IRC, which has no such id, a repeat must be of an
//!   entry the crash left in the store (zoe and bob never send twice).
//!   Any other repeat fails the test;
//! * per SIP pager, for zoe and for bob, the messages arrived in the order
//!   sent;
//! * carol's lines: the bridge's record of what the gateway took (its
//!   room history in the store, `[history] keep` raised for it) holds every line carol said, once, in the order
//!   said; from there they are delivered like every other message of the
//!   room;
//! * the fault shows: the restarted gateway logs `queue opened` with as
//!   many entries `pending` as the crash left, and `/readyz` answers 200.
//!
//! Messages never acknowledged may be missing (the crash took them).
//! About 12 s.
//!
//! If Prosody, InspIRCd or the gateway binary cannot start, the test fails
//! and says why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cpimgate::history::{HistorySettings, HistoryStore};
use cpimgate::queue::{Queue, QueueConfig};
use cpimgate::routing::Routes;
use cpimgate_e2e::gateway_process::GatewayProcess;
use cpimgate_e2e::inspircd::{Inspircd, OPER_NAME, OPER_PASSWORD, SERVER_NAME};
use cpimgate_e2e::irc_user::IrcUser;
use cpimgate_e2e::msrp_ua::{JoinOptions, MsrpUa};
use cpimgate_e2e::prosody::{COMPONENT_DOMAIN, COMPONENT_SECRET, HOST_A, Prosody, free_port};
use cpimgate_e2e::sip_pager::SipPager;
use cpimgate_e2e::xmpp_user::{XmppUser, body, nick_of};
use cpimgate_model::port::HistoryQuery;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_xmpp::parsers::message::{Message, MessageType};

const SIP_DOMAIN: &str = "sip.gw.localhost";
/// SIP pagers, and MESSAGEs each.
const PAGERS: usize = 4;
const PER_PAGER: usize = 120;
/// MUC messages from zoe, in bursts.
const MUC_MESSAGES: usize = 320;
/// Room messages from the MSRP participant.
const MSRP_MESSAGES: usize = 200;
/// The gateway's MSRP room, bridged with the MUC room and the channel.
const MSRP_ROOM: &str = "sip:room22@chat.localhost";
const BURST: usize = 40;
/// Acknowledgements (all worlds) before the kill.
const KILL_AFTER: usize = 330;
/// How long the gateway stays dead.
const DOWN: Duration = Duration::from_millis(700);
/// How long the gateway may take to be ready.
const READY: Duration = Duration::from_secs(30);
/// carol's lines after the restart, and the pause between two.
const IRC_AFTER_RESTART: usize = 60;
const IRC_PAUSE: Duration = Duration::from_millis(15);

fn config(sip_port: u16, msrp_sip_port: u16, irc: SocketAddr, xmpp: &Prosody) -> String {
    format!(
        r##"
[gateway]
name = "gw-fault-kill"
domains = ["{SIP_DOMAIN}", "{COMPONENT_DOMAIN}"]

[store]
path = "{{dir}}/gateway.sqlite"

[queue]
retry_base_ms = 50
retry_max_ms = 500

[history]
keep = 5000

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

[adapters.irc]
kind = "irc"
network = "{SERVER_NAME}"
server = "{irc}"
nick = "bridge"
channels = ["#test"]
flood_rate = 1000.0
flood_burst = 100

[adapters.chat]
kind = "msrp"
domain = "chat.localhost"
sip_udp = ["127.0.0.1:{msrp_sip_port}"]
msrp = "127.0.0.1:0"
rooms = [ {{ name = "room22" }} ]

[[route]]
domain = "{HOST_A}"
adapter = "xc"

[[bridge]]
name = "test"
rooms = [
  {{ adapter = "irc", address = "irc://{SERVER_NAME}/%23test" }},
  {{ adapter = "xc", address = "xmpp:%23test%25{SERVER_NAME}@{COMPONENT_DOMAIN}" }},
  {{ adapter = "chat", address = "{MSRP_ROOM}" }},
]
"##,
        component_port = xmpp.component_port(),
    )
}

/// What the senders learnt: the texts acknowledged, and all sent.
#[derive(Default)]
struct Ledger {
    acked: BTreeSet<String>,
    sent: BTreeSet<String>,
}

type Shared = Arc<Mutex<Ledger>>;

/// The SIGKILL, sent once, by the MUC sender right after a burst.
#[derive(Clone)]
struct Crash {
    pid: u32,
    fired: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
}

impl Crash {
    async fn fire(&self) {
        if self.fired.swap(true, Ordering::SeqCst) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        let status = tokio::process::Command::new("kill")
            .args(["-KILL", &self.pid.to_string()])
            .status()
            .await
            .unwrap();
        assert!(status.success(), "kill -KILL {}: {status}", self.pid);
        self.done.store(true, Ordering::SeqCst);
    }
}

/// How many times the gateway was started again.
type Restarts = watch::Receiver<u32>;

async fn pager(
    k: usize,
    gateway: SocketAddr,
    ledger: Shared,
    acks: Arc<AtomicUsize>,
) -> BTreeMap<u16, usize> {
    let mut p = SipPager::bind(gateway, &format!("pager{k}")).await.unwrap();
    let uri = format!("sip:user%40{HOST_A}@{SIP_DOMAIN}");
    let mut statuses = BTreeMap::new();
    for i in 0..PER_PAGER {
        let text = format!("sip-{k}-{i:04}");
        ledger.lock().unwrap().sent.insert(text.clone());
        let status = p
            .message(&uri, &text, Duration::from_secs(3))
            .await
            .unwrap();
        *statuses.entry(status.unwrap_or(0)).or_default() += 1;
        if status == Some(202) {
            ledger.lock().unwrap().acked.insert(text);
            acks.fetch_add(1, Ordering::Relaxed);
        }
    }
    statuses
}

/// The texts starting with `prefix` that `next` gives, with the id the
/// protocol gave each copy, in arrival order, until every text of `acked`
/// with that prefix came and then 2 s passed without another (30 s at
/// most). `next` gives `None` when nothing came for a while, `Some(("",
/// _))` for something else.
async fn receive(
    acked: &BTreeSet<String>,
    prefix: &str,
    mut next: impl AsyncFnMut() -> Option<(String, String)>,
) -> Vec<(String, String)> {
    let mut want: BTreeSet<&String> = acked.iter().filter(|t| t.starts_with(prefix)).collect();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut quiet_since = Instant::now();
    loop {
        let now = Instant::now();
        if now >= deadline || (want.is_empty() && now - quiet_since >= Duration::from_secs(2)) {
            return got;
        }
        match next().await {
            Some((t, id)) if t.starts_with(prefix) => {
                want.remove(&t);
                got.push((t, id));
                quiet_since = Instant::now();
            }
            Some(_) => {}
            None => {}
        }
    }
}

/// bob, an MSRP participant of the room, sends [`MSRP_MESSAGES`], one at
/// a time, each acknowledged by the 200 to its SEND. When the session
/// breaks (the crash), he waits for the gateway to be started again (10 s
/// at most) and joins again. The statuses other than 200, and how many
/// SENDs broke.
async fn msrp_sender(
    focus: SocketAddr,
    ledger: Shared,
    acks: Arc<AtomicUsize>,
    mut restarts: Restarts,
) -> (BTreeMap<u16, usize>, usize) {
    let aor = "sip:bob@biloxi.example.com";
    let mut bob = Some(
        MsrpUa::join(focus, MSRP_ROOM, aor, JoinOptions::default())
            .await
            .unwrap_or_else(|e| panic!("bob joins the MSRP room: {e}")),
    );
    let mut joined_in = 0;
    let mut refused = BTreeMap::new();
    let mut broke = 0;
    for i in 0..MSRP_MESSAGES {
        if bob.is_none() {
            let _ = tokio::time::timeout(
                Duration::from_secs(10),
                restarts.wait_for(|r| *r > joined_in),
            )
            .await;
            joined_in = *restarts.borrow();
            bob = MsrpUa::join(focus, MSRP_ROOM, aor, JoinOptions::default())
                .await
                .ok();
        }
        let text = format!("msrp-{i:04}");
        ledger.lock().unwrap().sent.insert(text.clone());
        let Some(ua) = bob.as_mut() else {
            broke += 1;
            continue;
        };
        match ua.send(MSRP_ROOM, &text).await {
            Ok(200) => {
                ledger.lock().unwrap().acked.insert(text);
                acks.fetch_add(1, Ordering::Relaxed);
            }
            Ok(status) => *refused.entry(status).or_default() += 1,
            Err(_) => {
                broke += 1;
                bob = None;
            }
        }
    }
    (refused, broke)
}

/// carol says `irc-NNNN` in the channel every [`IRC_PAUSE`] until
/// [`IRC_AFTER_RESTART`] lines after the gateway was started again. Each
/// line the server took is acknowledged (see the module doc). How many
/// she said, and carol, still connected (closing a connection with unread
/// input resets it, and the server could lose her last lines).
async fn irc_sender(mut carol: IrcUser, ledger: Shared, restarts: Restarts) -> (usize, IrcUser) {
    let mut restart_at = None;
    let mut i = 0;
    while i < 5000 {
        let text = format!("irc-{i:04}");
        ledger.lock().unwrap().sent.insert(text.clone());
        carol
            .say("#test", &text)
            .await
            .unwrap_or_else(|e| panic!("the IRC server takes carol's line: {e}"));
        ledger.lock().unwrap().acked.insert(text);
        i += 1;
        if *restarts.borrow() > 0 && i >= *restart_at.get_or_insert(i) + IRC_AFTER_RESTART {
            break;
        }
        tokio::time::sleep(IRC_PAUSE).await;
    }
    (i, carol)
}

/// `text` without ANSI colour escapes (the gateway's human log format).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
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

/// zoe's groupchat in the room, live (not history).
fn live_groupchat(m: &Message, room: &str) -> bool {
    m.type_ == MessageType::Groupchat
        && m.from
            .as_ref()
            .is_some_and(|f| f.to_bare().as_str() == room)
        && !m.payloads.iter().any(|p| p.is("delay", "urn:xmpp:delay"))
}

/// zoe posts [`MUC_MESSAGES`] in bursts; after each burst she collects
/// the reflections (acknowledgements) and errors. When a burst had errors
/// or went unanswered, she waits for the gateway to be started again (10 s
/// at most) and joins again.
async fn muc_sender(
    mut zoe: XmppUser,
    room: String,
    ledger: Shared,
    acks: Arc<AtomicUsize>,
    mut restarts: Restarts,
    crash: Crash,
) -> (usize, usize) {
    let mut joined_in = 0;
    let mut errors = 0;
    let mut silent = 0;
    let mut i = 0;
    while i < MUC_MESSAGES {
        let mut waiting = BTreeSet::new();
        for _ in 0..BURST.min(MUC_MESSAGES - i) {
            let text = format!("muc-{i:04}");
            ledger.lock().unwrap().sent.insert(text.clone());
            zoe.send_groupchat(&room, &text).await.unwrap();
            waiting.insert(text);
            i += 1;
        }
        // The crash comes while the gateway is busy with a burst: some of
        // it reflected, some stored, some neither.
        if acks.load(Ordering::Relaxed) >= KILL_AFTER {
            crash.fire().await;
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut troubled = false;
        while !waiting.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(m) = zoe.next_message(left).await else {
                silent += waiting.len();
                troubled = true;
                break;
            };
            let Some(text) = body(&m).map(str::to_owned) else {
                if m.type_ == MessageType::Error {
                    // An error names no body; count it against the burst.
                    errors += 1;
                    troubled = true;
                }
                continue;
            };
            if m.type_ == MessageType::Error {
                errors += 1;
                troubled = true;
                waiting.remove(&text);
            } else if live_groupchat(&m, &room)
                && nick_of(m.from.as_ref()) == Some("zoe")
                && waiting.remove(&text)
            {
                ledger.lock().unwrap().acked.insert(text);
                acks.fetch_add(1, Ordering::Relaxed);
            }
        }
        if troubled {
            // The gateway is being restarted: wait until it is up, then
            // join the room again (occupants are gone with the old
            // process).
            let _ = tokio::time::timeout(
                Duration::from_secs(10),
                restarts.wait_for(|r| *r > joined_in),
            )
            .await;
            joined_in = *restarts.borrow();
            zoe.clear();
            zoe.join_muc(&room, "zoe").await.unwrap();
            zoe.clear();
        }
    }
    (errors, silent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_kill_9() {
    cpimgate_e2e::init_logging();
    GatewayProcess::build_debug()
        .await
        .unwrap_or_else(|e| panic!("the gateway binary must build: {e}"));
    let irc = Inspircd::start().await.unwrap_or_else(|e| panic!("{e}"));
    let xmpp = Prosody::start().await.unwrap_or_else(|e| panic!("{e}"));
    for (u, pw) in [("user", "user-pw"), ("zoe", "zoe-pw")] {
        xmpp.register(u, HOST_A, pw).await.unwrap();
    }
    let sip_port = free_port().unwrap();
    let msrp_sip_port = free_port().unwrap();
    let mut gw = GatewayProcess::start(&config(sip_port, msrp_sip_port, irc.addr(), &xmpp), READY)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let mut user = XmppUser::connect(&xmpp, &format!("user@{HOST_A}"), "user-pw")
        .await
        .unwrap();
    let mut alice = IrcUser::connect(irc.addr(), "alice").await.unwrap();
    alice
        .wait_for_member("#test", "bridge", false)
        .await
        .unwrap_or_else(|e| panic!("the gateway never joined #test: {e}"));
    let room = format!("#test%{SERVER_NAME}@{COMPONENT_DOMAIN}");
    let mut zoe = XmppUser::connect(&xmpp, &format!("zoe@{HOST_A}"), "zoe-pw")
        .await
        .unwrap();
    zoe.join_muc(&room, "zoe").await.unwrap();
    zoe.clear();
    // carol keeps the channel's history: +H, set as an operator.
    let mut carol = IrcUser::connect(irc.addr(), "carol").await.unwrap();
    carol.join("#test").await.unwrap();
    carol
        .send(&format!("OPER {OPER_NAME} {OPER_PASSWORD}"))
        .await
        .unwrap();
    carol
        .expect("the oper reply (381)", |l| l.command == "381")
        .await
        .unwrap();
    carol.send("SAMODE #test +H 2000:1h").await.unwrap();
    carol
        .expect("mode +H on #test", |l| {
            l.command == "MODE" && l.param(0) == "#test" && l.param(1).starts_with("+H")
        })
        .await
        .unwrap_or_else(|e| panic!("the channel must keep its history: {e}"));
    carol.clear();

    let ledger = Shared::default();
    let acks = Arc::new(AtomicUsize::new(0));
    let (restarted, restarts) = watch::channel(0);
    let gateway = SocketAddr::from(([127, 0, 0, 1], sip_port));
    let pagers: Vec<_> = (0..PAGERS)
        .map(|k| tokio::spawn(pager(k, gateway, ledger.clone(), acks.clone())))
        .collect();
    let msrp = tokio::spawn(msrp_sender(
        SocketAddr::from(([127, 0, 0, 1], msrp_sip_port)),
        ledger.clone(),
        acks.clone(),
        restarts.clone(),
    ));
    let irc_said = tokio::spawn(irc_sender(carol, ledger.clone(), restarts.clone()));
    let crash = Crash {
        pid: gw.pid().expect("the gateway runs"),
        fired: Arc::new(AtomicBool::new(false)),
        done: Arc::new(AtomicBool::new(false)),
    };
    let muc = tokio::spawn(muc_sender(
        zoe,
        room.clone(),
        ledger.clone(),
        acks.clone(),
        restarts,
        crash.clone(),
    ));

    // The crash, with messages in flight from every sender.
    let started = Instant::now();
    while !crash.done.load(Ordering::SeqCst) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "only {} acknowledgements in a minute",
            acks.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    gw.kill().await;
    let acked_before = acks.load(Ordering::Relaxed);
    // What the crash left in the store: the restarted gateway delivers
    // these (again, for those already delivered whose confirmation was
    // not on disk yet).
    let (queue, pending) = Queue::open(QueueConfig::new(gw.dir().join("gateway.sqlite")))
        .await
        .unwrap_or_else(|e| panic!("the store opens after the crash: {e}"));
    queue.close().await.unwrap();
    let in_flight: BTreeSet<String> = pending
        .iter()
        .filter_map(|e| e.message.body.as_text().map(str::to_owned))
        .collect();
    tokio::time::sleep(DOWN).await;
    gw.start_again(READY)
        .await
        .unwrap_or_else(|e| panic!("the gateway must start again on its store: {e}"));
    restarted.send_replace(1);
    assert!(gw.ready().await, "/readyz answers 200 after the restart");

    let mut statuses = BTreeMap::new();
    for p in pagers {
        for (s, n) in p.await.unwrap() {
            *statuses.entry(s).or_insert(0) += n;
        }
    }
    let (muc_errors, muc_silent) = muc.await.unwrap();
    let (msrp_refused, msrp_broke) = msrp.await.unwrap();
    let (irc_said, _carol) = irc_said.await.unwrap();
    let ledger = std::mem::take(&mut *ledger.lock().unwrap());

    // What arrived: all the XMPP user got, then all the IRC user got.
    let sip = receive(&ledger.acked, "sip-", async || {
        let m = user.next_message(Duration::from_millis(300)).await.ok()?;
        let id = m.id.as_ref().map(|i| i.0.clone()).unwrap_or_default();
        Some((body(&m).unwrap_or_default().to_owned(), id))
    })
    .await;
    let irc = receive(&ledger.acked, "m", async || {
        let l = tokio::time::timeout(Duration::from_millis(300), alice.next_line())
            .await
            .ok()?
            .ok()?;
        // Relay mode: `<nick> text`.
        let text = if l.command == "PRIVMSG" && l.param(0) == "#test" {
            l.param(1).split_once("> ").map_or("", |(_, t)| t)
        } else {
            ""
        };
        Some((text.to_owned(), String::new()))
    })
    .await;
    // carol's lines, from the bridge's record of what the gateway took
    // (its history, in the store; read through read-only connections
    // beside the running gateway, as its own readers do).
    let record = HistoryStore::open(
        &gw.dir().join("gateway.sqlite"),
        Routes::default(),
        HistorySettings {
            keep: 5000,
            max_age: Duration::from_secs(3600),
        },
    );
    let irc_history: Vec<(String, String)> = record
        .recent_of_bridge(
            "test",
            &HistoryQuery {
                max_messages: 5000,
                since: None,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("the bridge's history reads: {e}"))
        .into_iter()
        .filter_map(|m| {
            let text = m.body.as_text()?.to_owned();
            text.starts_with("irc-").then(|| (text, m.id.to_string()))
        })
        .collect();
    record.close().await;
    let irc_repeats: Vec<String> = {
        let mut count: BTreeMap<&String, usize> = BTreeMap::new();
        for (t, _) in &irc_history {
            *count.entry(t).or_default() += 1;
        }
        count
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(t, n)| format!("{t} ×{n}"))
            .collect()
    };
    let irc_arrived = irc_history
        .iter()
        .map(|(t, _)| t)
        .collect::<BTreeSet<_>>()
        .len();

    // Text → the ids of its copies, in arrival order.
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for (t, id) in sip.into_iter().chain(irc).chain(irc_history) {
        got.entry(t.clone()).or_default().push(id);
        order.push(t);
    }

    let missing: Vec<&String> = ledger
        .acked
        .iter()
        .filter(|t| !got.contains_key(*t))
        .collect();
    let again: Vec<(&String, &Vec<String>)> = got.iter().filter(|(_, c)| c.len() > 1).collect();
    // A repeat is allowed only as one at-least-once redelivery: on XMPP
    // with the first copy's id, so that the client drops it; on IRC, which
    // has no such id, only of an entry the crash left in the store.
    let bad_repeats: Vec<String> = again
        .iter()
        .filter(|(t, copies)| {
            copies.len() > 2
                || if t.starts_with("sip-") {
                    copies[0].is_empty() || copies[0] != copies[1]
                } else {
                    !in_flight.contains(*t)
                }
        })
        .map(|(t, copies)| format!("{t}: {copies:?}"))
        .collect();
    let unacked_arrived = got.keys().filter(|t| !ledger.acked.contains(*t)).count();
    let unknown: Vec<&String> = got.keys().filter(|t| !ledger.sent.contains(*t)).collect();
    // Order per sender: the first copy of each, by sender prefix.
    let mut out_of_order = Vec::new();
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for t in &order {
        if !seen.insert(t.clone()) {
            continue;
        }
        let sender = t.rsplit_once('-').map_or("", |(s, _)| s).to_owned();
        if let Some(prev) = last.get(&sender)
            && prev > t
        {
            out_of_order.push(format!("{t} after {prev}"));
        }
        last.insert(sender, t.clone());
    }
    let log = gw.log();
    let log = strip_ansi(&log);
    let opened: Vec<&str> = log.lines().filter(|l| l.contains("queue opened")).collect();
    let pending_logged: Vec<String> = opened
        .iter()
        .filter_map(|l| l.split("pending=").nth(1))
        .filter_map(|r| r.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    let summary = format!(
        "sent {}, acknowledged {} ({} before the kill), arrived {} distinct ({} of them \
         never acknowledged); {} entries in the store after the crash, {} of them \
         delivered again after the restart; SIP statuses {statuses:?} (0 = no answer); \
         MUC errors {muc_errors}, unanswered {muc_silent}; MSRP statuses other than 200 \
         {msrp_refused:?}, broken SENDs {msrp_broke}; IRC lines said {irc_said}, in the \
         room's history {irc_arrived}; `queue opened` pending = {pending_logged:?}",
        ledger.sent.len(),
        ledger.acked.len(),
        acked_before,
        got.len(),
        unacked_arrived,
        pending.len(),
        again.len(),
    );
    eprintln!("{summary}");
    assert!(
        missing.is_empty(),
        "{} acknowledged messages were lost: {:?}\n{summary}",
        missing.len(),
        missing.iter().take(20).collect::<Vec<_>>()
    );
    assert!(
        bad_repeats.is_empty(),
        "messages arrived more than once, and not as one redelivery of what the crash \
         left in flight: {:?}\n{summary}",
        bad_repeats.iter().take(20).collect::<Vec<_>>()
    );
    assert!(
        irc_repeats.is_empty(),
        "lines of carol the gateway took more than once: {irc_repeats:?}\n{summary}"
    );
    assert!(unknown.is_empty(), "never sent: {unknown:?}");
    assert!(
        out_of_order.is_empty(),
        "out of order: {:?}\n{summary}",
        out_of_order.iter().take(20).collect::<Vec<_>>()
    );
    assert_eq!(
        pending_logged,
        vec!["0".to_owned(), pending.len().to_string()],
        "the queue opened once per run, the second time with what the crash left:\n{summary}"
    );
    assert!(
        ledger.acked.len() > acked_before,
        "messages were acknowledged after the restart too:\n{summary}"
    );
    gw.stop().await.unwrap();
}
