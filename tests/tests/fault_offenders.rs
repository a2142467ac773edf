//! Peers that abuse the gateway's sockets: the gateway keeps serving
//! everyone else, its memory stays bounded, the offenders are cut off by
//! the timeouts and limits of its config, and its log says why.
//!
//! The gateway runs as a process of its own (the debug `cpimgate`
//! binary, built by the test if it is stale) beside a private Prosody,
//! with small limits:
//!
//! * `sip`: SIP pager mode on UDP and TCP; `max_connections = 200`,
//!   `max_connections_per_ip = 50`, `idle_timeout_ms = 3000`,
//!   `message_timeout_ms = 2000`, `write_timeout_ms = 6000`;
//! * `xc`: the XMPP component; the XMPP users of `a.localhost` are routed
//!   through it;
//! * `chat`: the MSRP room `sip:room22@chat.localhost`;
//!   `max_connections = 200`, `max_connections_per_ip = 50`,
//!   `connect_within_ms = 5000`, `message_timeout_ms = 2000`,
//!   `write_timeout_ms = 6000`, `write_queue = 4096`; its rooms' SIP
//!   listener on UDP and TCP with `sip_idle_timeout_ms = 3000`,
//!   `sip_message_timeout_ms = 2000`, `sip_write_timeout_ms = 6000`;
//! * the admin listener: `max_connections = 8`,
//!   `connection_timeout_ms = 3000`.
//!
//! The offenders all come from 127.0.0.2, the well-behaved users from
//! 127.0.0.1. What each offender gets:
//!
//! * **slow consumer on SIP TCP** (`slow_consumers_are_cut_off`): sends
//!   MESSAGEs whose responses are large (each carries long Via headers
//!   back) and never reads: once the gateway's write has been blocked for
//!   `write_timeout_ms` the connection is reset, with the warning
//!   "cutting connection: the peer does not read".
//! * **slow consumer in the MSRP room** (same test): joins, never reads
//!   while alice sends 5 MB to the room (2,500 chunks, fewer than
//!   `write_queue`): cut off (reset) when its writes have made no progress
//!   for `write_timeout_ms`, with "cutting MSRP connection: the peer does
//!   not read: nothing written for"; its session ends with a BYE. carol,
//!   who reads, gets every message meanwhile. (Past `write_queue` waiting
//!   chunks it would be cut at once: a unit test of `adapter/conn.rs`.)
//! * **slowloris on SIP TCP, MSRP and the rooms' SIP TCP**
//!   (`slowloris_is_cut_off`): one header byte a second, on three
//!   connections at a time, each replaced when cut, for as long as the
//!   well-behaved users talk: each is cut `message_timeout_ms` (on the
//!   rooms' SIP listener `sip_message_timeout_ms`) after its first byte,
//!   not more than 2.5 s later ("cutting connection:
//!   message not complete in time", "cutting MSRP connection: a message
//!   not complete within"). On the admin listener, a request a byte a
//!   second is cut `connection_timeout_ms` after connecting ("cutting
//!   admin connection") while `/readyz` answers.
//! * **10,000 connections at once** to the SIP TCP port, then to the MSRP
//!   port (`a_connection_flood_is_capped`), each writing the first bytes
//!   of a message: 50 at a time are taken (the cap per address) and cut
//!   off `message_timeout_ms` later; the others are reset at once
//!   ("refusing connection: per-address connection limit reached",
//!   logged once a second with the count of the others). The gateway's
//!   open file descriptors stay below its caps.
//! * **out of file descriptors** (`running_out_of_file_descriptors`): the
//!   gateway's `RLIMIT_NOFILE` is lowered under it (`prlimit`) to 30
//!   above what it has open, and 30 connections come to each of the SIP
//!   and MSRP ports: accept fails
//!   with EMFILE, the gateway logs "accept failed; accepting again after
//!   a pause", goes on serving UDP, and takes connections again once the
//!   held ones time out.
//!
//! In each: a SIP MESSAGE from a well-behaved user gets 202 and reaches
//! the XMPP user `user` through Prosody, an MSRP participant's message
//! reaches the others, every offending connection ends with EOF or a
//! reset from the gateway within a deadline, the log has the line that
//! says why, and the gateway's RSS stays under [`RSS_BOUND_KIB`] (a
//! memory bound; no assertion here is on speed). The times until the cut
//! and the largest RSS are printed.
//!
//! If Prosody or the gateway binary cannot start, the test fails and says
//! why. About 40 s in all.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use cpimgate_e2e::gateway_process::{GatewayProcess, rss_kib};
use cpimgate_e2e::msrp_ua::{JoinOptions, MsrpUa};
use cpimgate_e2e::prosody::{COMPONENT_DOMAIN, COMPONENT_SECRET, HOST_A, Prosody, free_port};
use cpimgate_e2e::sip_pager::SipPager;
use cpimgate_e2e::xmpp_user::{XmppUser, body};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

const SIP_DOMAIN: &str = "sip.gw.localhost";
const MSRP_ROOM: &str = "sip:room22@chat.localhost";
/// How long the gateway may take to be ready.
const READY: Duration = Duration::from_secs(30);
/// The gateway's resident memory must stay below this, whatever the
/// offence (it idles at about 20 MB).
const RSS_BOUND_KIB: u64 = 200 * 1024;
/// Where the offenders come from; the well-behaved users are on
/// 127.0.0.1.
const OFFENDER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// The caps and timeouts of the config below.
const PER_IP: usize = 50;
const MAX_CONNECTIONS: usize = 200;
const SIP_IDLE: Duration = Duration::from_millis(3000);
const MESSAGE_TIMEOUT: Duration = Duration::from_millis(2000);
const WRITE_TIMEOUT: Duration = Duration::from_millis(6000);
const CONNECT_WITHIN: Duration = Duration::from_millis(5000);
const ADMIN_TIMEOUT: Duration = Duration::from_millis(3000);
/// How long an offender may stay connected before the test calls the
/// gateway's limits broken (far above every timeout of the config).
const CUT_WITHIN: Duration = Duration::from_secs(30);
/// Connections of the flood.
const FLOOD: usize = 10_000;
/// Connections to each of the SIP and MSRP ports once the gateway has
/// room for 30 more descriptors.
const FD_FLOOD: usize = 30;

fn config(sip_port: u16, msrp_sip_port: u16, msrp_port: u16, xmpp: &Prosody) -> String {
    format!(
        r##"
[gateway]
name = "gw-offenders"
domains = ["{SIP_DOMAIN}", "{COMPONENT_DOMAIN}"]

[store]
path = "{{dir}}/gateway.sqlite"

[queue]
retry_base_ms = 50
retry_max_ms = 500

[admin]
max_connections = 8
connection_timeout_ms = {admin_timeout}

[adapters.sip]
kind = "sip"
domains = ["{SIP_DOMAIN}"]
udp = ["127.0.0.1:{sip_port}"]
tcp = ["127.0.0.1:{sip_port}"]
max_connections = {MAX_CONNECTIONS}
max_connections_per_ip = {PER_IP}
idle_timeout_ms = {idle}
message_timeout_ms = {message}
write_timeout_ms = {write}
send_queue = 8

[adapters.xc]
kind = "xmpp"
mode = "component"
domain = "{COMPONENT_DOMAIN}"
secret = "{COMPONENT_SECRET}"
server = "{component}"
receipt_wait = 0

[adapters.chat]
kind = "msrp"
domain = "chat.localhost"
sip_udp = ["127.0.0.1:{msrp_sip_port}"]
sip_tcp = ["127.0.0.1:{msrp_sip_port}"]
msrp = "127.0.0.1:{msrp_port}"
rooms = [ {{ name = "room22" }} ]
max_connections = {MAX_CONNECTIONS}
max_connections_per_ip = {PER_IP}
connect_within_ms = {connect}
message_timeout_ms = {message}
write_timeout_ms = {write}
write_queue = 4096
sip_idle_timeout_ms = {idle}
sip_message_timeout_ms = {message}
sip_write_timeout_ms = {write}

[[route]]
domain = "{HOST_A}"
adapter = "xc"
"##,
        component = xmpp.component_addr(),
        idle = SIP_IDLE.as_millis(),
        message = MESSAGE_TIMEOUT.as_millis(),
        write = WRITE_TIMEOUT.as_millis(),
        connect = CONNECT_WITHIN.as_millis(),
        admin_timeout = ADMIN_TIMEOUT.as_millis(),
    )
}

/// A private Prosody with the XMPP user `user`, the gateway, and `user`
/// logged in.
struct Setup {
    _xmpp: Prosody,
    gw: GatewayProcess,
    user: XmppUser,
    sip: SocketAddr,
    msrp_sip: SocketAddr,
    msrp: SocketAddr,
    rss: RssWatch,
}

async fn setup() -> Setup {
    cpimgate_e2e::init_logging();
    GatewayProcess::build_debug()
        .await
        .unwrap_or_else(|e| panic!("the gateway binary must build: {e}"));
    let xmpp = Prosody::start()
        .await
        .unwrap_or_else(|e| panic!("Prosody must start: {e}"));
    xmpp.register("user", HOST_A, "user-pw").await.unwrap();
    let (sip_port, msrp_sip_port, msrp_port) = (
        free_port().unwrap(),
        free_port().unwrap(),
        free_port().unwrap(),
    );
    let gw = GatewayProcess::start(&config(sip_port, msrp_sip_port, msrp_port, &xmpp), READY)
        .await
        .unwrap_or_else(|e| panic!("the gateway must start: {e}"));
    let user = XmppUser::connect(&xmpp, &format!("user@{HOST_A}"), "user-pw")
        .await
        .unwrap_or_else(|e| panic!("user logs in: {e}"));
    let rss = RssWatch::start(gw.pid().expect("the gateway runs"));
    let local = |port| SocketAddr::from(([127, 0, 0, 1], port));
    Setup {
        _xmpp: xmpp,
        gw,
        user,
        sip: local(sip_port),
        msrp_sip: local(msrp_sip_port),
        msrp: local(msrp_port),
        rss,
    }
}

impl Setup {
    /// The admin listener's address, from the gateway's log.
    async fn admin(&self) -> SocketAddr {
        let line = self.expect_log(&["admin listener up"]).await;
        line.split_whitespace()
            .find_map(|w| w.strip_prefix("local="))
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no admin address in {line:?}"))
    }

    /// The gateway's log without colours.
    fn log(&self) -> String {
        strip_ansi(&self.gw.log())
    }

    /// The log lines that contain every one of `parts`.
    fn log_lines(&self, parts: &[&str]) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| parts.iter().all(|p| l.contains(p)))
            .map(str::to_owned)
            .collect()
    }

    /// Waits (up to [`CUT_WITHIN`]) for a log line with every one of
    /// `parts`; fails with the log's tail.
    async fn expect_log(&self, parts: &[&str]) -> String {
        let deadline = Instant::now() + CUT_WITHIN;
        loop {
            if let Some(l) = self.log_lines(parts).into_iter().next() {
                return l;
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {parts:?}; the log ends with:\n{}",
                strip_ansi(&self.gw.log_tail(40))
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A MESSAGE over TCP from 127.0.0.1 gets 202 and reaches `user`
    /// over XMPP.
    async fn sip_tcp_user_is_served(&mut self, text: &str) {
        let status = tcp_message(self.sip, &user_uri(), text).await;
        assert_eq!(status, 202, "the well-behaved TCP MESSAGE {text:?}");
        self.user_gets(text).await;
    }

    /// A MESSAGE over UDP gets 202 and reaches `user`.
    async fn sip_udp_user_is_served(&mut self, text: &str) {
        let mut pager = SipPager::bind(self.sip, "pager").await.unwrap();
        let status = pager
            .message(&user_uri(), text, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(status, Some(202), "the well-behaved UDP MESSAGE {text:?}");
        self.user_gets(text).await;
    }

    async fn user_gets(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = self
                .user
                .next_message(left)
                .await
                .unwrap_or_else(|e| panic!("user waits for {text:?} over XMPP: {e}"));
            if body(&m) == Some(text) {
                return;
            }
        }
    }

    /// The largest RSS seen so far, checked against the bound.
    fn check_rss(&self, during: &str) -> u64 {
        let max = self.rss.max_kib();
        println!("gateway RSS at most {max} KiB {during}");
        assert!(max > 0, "the gateway's RSS could not be read");
        assert!(
            max < RSS_BOUND_KIB,
            "gateway RSS {max} KiB {during}, above the bound of {RSS_BOUND_KIB} KiB"
        );
        max
    }
}

fn user_uri() -> String {
    format!("sip:user%40{HOST_A}@{SIP_DOMAIN}")
}

/// The gateway's largest resident memory, sampled every 100 ms.
struct RssWatch {
    max: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RssWatch {
    fn start(pid: u32) -> RssWatch {
        let max = Arc::new(AtomicU64::new(rss_kib(pid).unwrap_or(0)));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s) = (Arc::clone(&max), Arc::clone(&stop));
        tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                if let Some(kib) = rss_kib(pid) {
                    m.fetch_max(kib, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        RssWatch { max, stop }
    }

    fn max_kib(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }
}

impl Drop for RssWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Makes sure this process may open `needed` files: raises its soft
/// `RLIMIT_NOFILE` to the hard one (`prlimit`) when lower; fails with the
/// reason when even the hard limit is too low.
fn allow_open_files(needed: u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a line for open files in /proc/self/limits");
    let mut numbers = line
        .split_whitespace()
        .filter_map(|w| w.parse::<u64>().ok());
    let (soft, hard) = (numbers.next().unwrap(), numbers.next().unwrap_or(u64::MAX));
    if soft >= needed {
        return;
    }
    assert!(
        hard >= needed,
        "the flood needs {needed} open files; RLIMIT_NOFILE allows {hard} at most"
    );
    let pid = std::process::id().to_string();
    let status = std::process::Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={hard}:{hard}")])
        .status()
        .unwrap_or_else(|e| panic!("prlimit must run: {e}"));
    assert!(status.success(), "prlimit --nofile={hard}: {status}");
}

/// Open file descriptors of process `pid`.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// A TCP connection from the offenders' address to `to`.
async fn offender_connect(to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(OFFENDER_IP), 0))?;
    socket.connect(to).await
}

/// How a connection the test holds ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The gateway closed it (FIN).
    Eof,
    /// The gateway reset it.
    Reset,
    /// Still open at the deadline.
    Open,
    /// Not connected by the deadline.
    NoConnect,
}

/// Reads (and drops) what `stream` gets until the gateway ends it, or
/// until `within`; how it ended, and how many octets came.
async fn until_closed(stream: &mut TcpStream, within: Duration) -> (End, usize) {
    let deadline = Instant::now() + within;
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (End::Open, got),
            Ok(Ok(0)) => return (End::Eof, got),
            Ok(Ok(n)) => got += n,
            Ok(Err(_)) => return (End::Reset, got),
        }
    }
}

/// Sends a MESSAGE over a new TCP connection from 127.0.0.1 and reads
/// its final response; the status (0 when there was none).
async fn tcp_message(server: SocketAddr, uri: &str, text: &str) -> u16 {
    let mut s = TcpStream::connect(server)
        .await
        .unwrap_or_else(|e| panic!("the well-behaved user connects to SIP TCP: {e}"));
    let local = s.local_addr().unwrap();
    let tag = format!("{}{}", local.port(), text.len());
    let request = format!(
        "MESSAGE {uri} SIP/2.0\r\n\
         Via: SIP/2.0/TCP {local};branch=z9hG4bKgood{tag}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:good@{local}>;tag=g{tag}\r\n\
         To: <{uri}>\r\n\
         Call-ID: good-{tag}@127.0.0.1\r\n\
         CSeq: 1 MESSAGE\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{text}",
        text.len()
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // Responses in order: skip provisional ones.
        while let Some(end) = find(&got, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).into_owned();
            let status: u16 = head.get(8..11).and_then(|s| s.parse().ok()).unwrap_or(0);
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    (name.eq_ignore_ascii_case("content-length") || name == "l")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            if status >= 200 {
                return status;
            }
            got.drain(..(end + 4 + length).min(got.len()));
        }
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => return 0,
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
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

/// alice and carol in the MSRP room, carol reading in a task of her own:
/// she collects every text until told to stop.
struct Room {
    alice: MsrpUa,
    carol: JoinHandle<()>,
    carol_got: Arc<std::sync::Mutex<Vec<String>>>,
    stop_carol: Arc<AtomicBool>,
}

impl Room {
    async fn join(focus: SocketAddr) -> Room {
        let alice = MsrpUa::join(
            focus,
            MSRP_ROOM,
            "sip:alice@atlanta.example.com",
            JoinOptions::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("alice joins the room: {e}"));
        let mut carol = MsrpUa::join(
            focus,
            MSRP_ROOM,
            "sip:carol@chicago.example.com",
            JoinOptions::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("carol joins the room: {e}"));
        let stop_carol = Arc::new(AtomicBool::new(false));
        let carol_got = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (stop, texts) = (Arc::clone(&stop_carol), Arc::clone(&carol_got));
        let carol = tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match carol.next_message(Duration::from_millis(200)).await {
                    Ok(m) => texts.lock().unwrap().push(m.text),
                    Err(e) if e.to_string().contains("nothing from the room in time") => {}
                    Err(e) => panic!("carol's session broke: {e}"),
                }
            }
        });
        Room {
            alice,
            carol,
            carol_got,
            stop_carol,
        }
    }

    /// alice says `text`; the room takes it (200).
    async fn say(&mut self, text: &str) {
        let status = self
            .alice
            .send(MSRP_ROOM, text)
            .await
            .unwrap_or_else(|e| panic!("alice sends to the room: {e}"));
        assert_eq!(status, 200, "the room takes alice's message");
    }

    /// What carol got, once she has every one of `expected` (or
    /// [`CUT_WITHIN`] has passed).
    async fn carol_got(self, expected: &[String]) -> Vec<String> {
        let deadline = Instant::now() + CUT_WITHIN;
        while Instant::now() < deadline {
            let has_all = {
                let got = self.carol_got.lock().unwrap();
                expected.iter().all(|e| got.contains(e))
            };
            if has_all {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.stop_carol.store(true, Ordering::Relaxed);
        self.carol.await.expect("carol's task");
        std::mem::take(&mut *self.carol_got.lock().unwrap())
    }
}

/// Writes `line` one byte a second to a new connection to `to` until the
/// gateway cuts it off; how long it took from the first byte, how the
/// connection ended, and its local address.
async fn slowloris(to: SocketAddr, line: String) -> (Duration, End, SocketAddr) {
    let mut s = offender_connect(to)
        .await
        .unwrap_or_else(|e| panic!("the slowloris connects to {to}: {e}"));
    let local = s.local_addr().unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    for byte in line.bytes().cycle() {
        if s.write_all(&[byte]).await.is_err() {
            return (started.elapsed(), End::Reset, local);
        }
        // A second, unless the gateway ends the connection first.
        match tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await {
            Err(_) => {}
            Ok(Ok(0)) => return (started.elapsed(), End::Eof, local),
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return (started.elapsed(), End::Reset, local),
        }
        if started.elapsed() > CUT_WITHIN {
            return (started.elapsed(), End::Open, local);
        }
    }
    unreachable!("cycle() does not end")
}

/// Keeps three slowloris connections going against `to` (each replaced
/// when cut) until `stop`; what each got.
fn slowloris_attack(
    to: SocketAddr,
    line: &'static str,
    stop: Arc<AtomicBool>,
) -> JoinHandle<Vec<(Duration, End, SocketAddr)>> {
    tokio::spawn(async move {
        let mut attackers = tokio::task::JoinSet::new();
        let mut done = Vec::new();
        for k in 0..3u64 {
            // Staggered, so that one is always mid-message.
            tokio::time::sleep(Duration::from_millis(300 * k)).await;
            attackers.spawn(slowloris(to, line.to_owned()));
        }
        while let Some(r) = attackers.join_next().await {
            done.push(r.expect("a slowloris task"));
            if !stop.load(Ordering::Relaxed) {
                attackers.spawn(slowloris(to, line.to_owned()));
            }
        }
        done
    })
}

/// A SIP TCP peer that sends MESSAGEs with long Via headers (so that each
/// response is about 40 kB) and never reads: up to `count` of them,
/// written while the gateway reads. The read half of its connection (to
/// look at, once the offence is over), the local address, and how many
/// MESSAGEs went out so far.
async fn sip_slow_consumer(
    to: SocketAddr,
    count: usize,
) -> (
    tokio::net::tcp::OwnedReadHalf,
    SocketAddr,
    Arc<AtomicU64>,
    JoinHandle<()>,
) {
    let socket = TcpSocket::new_v4().unwrap();
    // A small receive window: the gateway's writes block sooner.
    socket.set_recv_buffer_size(4096).unwrap();
    socket
        .bind(SocketAddr::new(IpAddr::V4(OFFENDER_IP), 0))
        .unwrap();
    let stream = socket
        .connect(to)
        .await
        .unwrap_or_else(|e| panic!("the slow consumer connects: {e}"));
    let local = stream.local_addr().unwrap();
    let (read, mut write) = stream.into_split();
    let written = Arc::new(AtomicU64::new(0));
    let w = Arc::clone(&written);
    let pad = "p".repeat(7000);
    let writer = tokio::spawn(async move {
        for i in 0..count {
            let mut vias = String::new();
            for k in 0..6 {
                vias.push_str(&format!(
                    "Via: SIP/2.0/TCP 192.0.2.{k}:5060;branch=z9hG4bKpad{k}{pad}\r\n"
                ));
            }
            let request = format!(
                "MESSAGE {uri} SIP/2.0\r\n\
                 Via: SIP/2.0/TCP {local};branch=z9hG4bKslow{i}\r\n\
                 {vias}\
                 Max-Forwards: 70\r\n\
                 From: <sip:slow@{local}>;tag=slow{i}\r\n\
                 To: <{uri}>\r\n\
                 Call-ID: slow-{i}@127.0.0.2\r\n\
                 CSeq: 1 MESSAGE\r\n\
                 Content-Type: text/plain\r\n\
                 Content-Length: 4\r\n\r\nslow",
                uri = format!("sip:nobody%40nowhere.invalid@{SIP_DOMAIN}"),
            );
            if write.write_all(request.as_bytes()).await.is_err() {
                return;
            }
            w.fetch_add(1, Ordering::Relaxed);
        }
        // Keeps the connection open: it is the gateway that ends it.
        std::future::pending::<()>().await;
        drop(write);
    });
    (read, local, written, writer)
}

/// Waits until `count` stops growing for half a second: the peer's
/// writes are blocked (the gateway reads no more).
async fn until_stalled(count: &AtomicU64) -> u64 {
    let deadline = Instant::now() + CUT_WITHIN;
    let mut last = count.load(Ordering::Relaxed);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = count.load(Ordering::Relaxed);
        if now == last && now > 0 {
            return now;
        }
        assert!(Instant::now() < deadline, "the offender never stalled");
        last = now;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumers_are_cut_off() {
    let mut t = setup().await;
    t.sip_udp_user_is_served("before the slow consumers").await;

    // SIP TCP: MESSAGEs whose responses it never reads.
    let started = Instant::now();
    let (mut read, local, written, writer) = sip_slow_consumer(t.sip, 400).await;
    let sent = until_stalled(&written).await;
    let port = format!("peer={local}");
    let cut_line = ["cutting connection: the peer does not read", port.as_str()];
    // While it is stuck, the others are served, over TCP and UDP.
    t.sip_tcp_user_is_served("while a SIP peer does not read (tcp)")
        .await;
    t.sip_udp_user_is_served("while a SIP peer does not read (udp)")
        .await;
    let served_during = t.log_lines(&cut_line).is_empty();
    let line = t.expect_log(&cut_line).await;
    let cut_after = started.elapsed();
    let (end, octets) = until_closed_half(&mut read, CUT_WITHIN).await;
    writer.abort();
    println!(
        "SIP slow consumer: {sent} MESSAGEs taken, {octets} octets of responses left to \
         read, {end:?} after {cut_after:?}; served meanwhile: {served_during}\n  {line}"
    );
    assert!(
        served_during,
        "the well-behaved users were served while the offence went on"
    );
    assert_ne!(
        end,
        End::Open,
        "the gateway ended the slow consumer's connection"
    );
    assert!(
        cut_after >= WRITE_TIMEOUT,
        "cut off after {cut_after:?}, before write_timeout_ms"
    );
    t.check_rss("with a SIP slow consumer");

    // MSRP: mallory joins and never reads while alice talks.
    let mut room = Room::join(t.msrp_sip).await;
    let mut mallory = MsrpUa::join(
        t.msrp_sip,
        MSRP_ROOM,
        "sip:mallory@evil.example.com",
        JoinOptions::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("mallory joins the room: {e}"));
    let started = Instant::now();
    let chunk = "x".repeat(50_000);
    let mut said = Vec::new();
    for i in 0..100 {
        let text = format!("big {i:03} {chunk}");
        room.say(&text).await;
        said.push(text);
    }
    let line = t
        .expect_log(&[
            "cutting MSRP connection",
            "the peer does not read: nothing written for",
        ])
        .await;
    let cut_after = started.elapsed();
    mallory
        .expect_bye(CUT_WITHIN)
        .await
        .unwrap_or_else(|e| panic!("mallory's session ends with a BYE: {e}"));
    // What was sent before the cut is there to read, then the end.
    let deadline = Instant::now() + CUT_WITHIN;
    let ended = loop {
        match mallory.next_message(Duration::from_secs(1)).await {
            Ok(_) => assert!(Instant::now() < deadline, "mallory's connection stays open"),
            Err(e) if e.to_string().contains("nothing from the room in time") => {
                panic!("mallory's connection stays open: {e}")
            }
            Err(e) => break e.to_string(),
        }
    };
    room.say("after mallory").await;
    said.push("after mallory".to_owned());
    let got = room.carol_got(&said).await;
    println!(
        "MSRP slow consumer: cut off {cut_after:?} after alice started (5 MB to the room); \
         mallory's connection: {ended}\n  {line}"
    );
    for text in &said {
        assert!(
            got.iter().any(|g| g == text),
            "carol got {:.20}... while mallory did not read",
            text
        );
    }
    assert!(
        !t.log_lines(&["MSRP session", "lost its connection"])
            .is_empty(),
        "the log says mallory's session ended"
    );
    t.check_rss("with an MSRP slow consumer");
    t.sip_tcp_user_is_served("after the slow consumers").await;
}

/// [`until_closed`] for a read half.
async fn until_closed_half(
    stream: &mut tokio::net::tcp::OwnedReadHalf,
    within: Duration,
) -> (End, usize) {
    let deadline = Instant::now() + within;
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (End::Open, got),
            Ok(Ok(0)) => return (End::Eof, got),
            Ok(Ok(n)) => got += n,
            Ok(Err(_)) => return (End::Reset, got),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_is_cut_off() {
    let mut t = setup().await;
    let mut room = Room::join(t.msrp_sip).await;
    let stop = Arc::new(AtomicBool::new(false));
    let sip_attack = slowloris_attack(
        t.sip,
        "MESSAGE sip:user%40a.localhost@sip.gw.localhost SIP/2.0\r\nVia: SIP/2.0/TCP ",
        Arc::clone(&stop),
    );
    let msrp_attack = slowloris_attack(
        t.msrp,
        "MSRP a786hjs2 SEND\r\nTo-Path: msrp://127.0.0.1:2855/iau39soe2843z;tcp\r\n",
        Arc::clone(&stop),
    );
    let rooms_sip_attack = slowloris_attack(
        t.msrp_sip,
        "INVITE sip:room22@chat.localhost SIP/2.0\r\nVia: SIP/2.0/TCP ",
        Arc::clone(&stop),
    );
    let admin_attack = slowloris_attack(
        t.admin().await,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Slow: ",
        Arc::clone(&stop),
    );
    // The others are served for as long as the offence goes on (about
    // two rounds of cut-offs).
    for i in 0..6 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        t.sip_tcp_user_is_served(&format!("during slowloris {i} (tcp)"))
            .await;
        t.sip_udp_user_is_served(&format!("during slowloris {i} (udp)"))
            .await;
        room.say(&format!("during slowloris {i}")).await;
        assert!(t.gw.ready().await, "/readyz answers during slowloris {i}");
    }
    stop.store(true, Ordering::Relaxed);
    let sip = sip_attack.await.unwrap();
    let msrp = msrp_attack.await.unwrap();
    let rooms_sip = rooms_sip_attack.await.unwrap();
    let admin = admin_attack.await.unwrap();
    let said: Vec<String> = (0..6).map(|i| format!("during slowloris {i}")).collect();
    let got = room.carol_got(&said).await;
    for text in &said {
        assert!(got.contains(text), "carol got {text:?}");
    }
    for (name, done, reason, timeout) in [
        (
            "SIP",
            &sip,
            "cutting connection: message not complete in time",
            MESSAGE_TIMEOUT,
        ),
        (
            "MSRP",
            &msrp,
            "cutting MSRP connection: a message not complete within",
            MESSAGE_TIMEOUT,
        ),
        (
            "rooms' SIP",
            &rooms_sip,
            "cutting connection: message not complete in time",
            MESSAGE_TIMEOUT,
        ),
        (
            "admin",
            &admin,
            "cutting admin connection: open longer than",
            ADMIN_TIMEOUT,
        ),
    ] {
        assert!(done.len() >= 3, "{name}: the slowloris connections ran");
        for (took, end, local) in done {
            println!("{name} slowloris from {local}: {end:?} after {took:?}");
            assert_ne!(*end, End::Open, "{name}: the gateway cut {local} off");
            assert!(
                *took + Duration::from_millis(100) >= timeout,
                "{name}: {local} cut off after {took:?}, before its timeout {timeout:?}"
            );
            // By the configured timeout, not a default: the slowloris
            // looks once a second.
            assert!(
                *took <= timeout + Duration::from_millis(2500),
                "{name}: {local} cut off after {took:?}, long after its timeout {timeout:?}"
            );
            let peer = format!("{local}");
            let line = t.expect_log(&[reason, peer.as_str()]).await;
            assert!(line.contains("WARN"), "a warning: {line}");
        }
    }
    t.check_rss("with slowloris on SIP and MSRP");
}

/// Opens [`FLOOD`] connections to `to` at once from the offenders'
/// address, holds each until the gateway ends it, and counts how they
/// ended (connections refused outright count as resets); the gateway's
/// largest number of open file descriptors meanwhile.
///
/// Each writes `first` once connected (the start of a message): a
/// connection whose handshake the kernel finished with a SYN cookie while
/// the listen queue was full exists on the client's side only, until
/// data comes.
async fn flood(to: SocketAddr, pid: u32, first: &'static [u8]) -> ([usize; 4], usize, usize) {
    let base = open_fds(pid);
    let sampling = Arc::new(AtomicBool::new(true));
    let max_fds = Arc::new(AtomicU64::new(base as u64));
    let sampler = {
        let (on, max) = (Arc::clone(&sampling), Arc::clone(&max_fds));
        tokio::spawn(async move {
            while on.load(Ordering::Relaxed) {
                max.fetch_max(open_fds(pid) as u64, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..FLOOD {
        tasks.spawn(async move {
            match tokio::time::timeout(CUT_WITHIN, offender_connect(to)).await {
                Ok(Ok(mut s)) => {
                    if s.write_all(first).await.is_err() {
                        return End::Reset;
                    }
                    until_closed(&mut s, CUT_WITHIN).await.0
                }
                Ok(Err(_)) => End::Reset,
                Err(_) => End::NoConnect,
            }
        });
    }
    // Eof, Reset, Open, NoConnect.
    let mut ends = [0; 4];
    while let Some(end) = tasks.join_next().await {
        ends[end.expect("a flood task") as usize] += 1;
    }
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.await;
    let max = max_fds.load(Ordering::Relaxed) as usize;
    (ends, base, max)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_is_capped() {
    // The flood's sockets, and those of the tests that run beside it.
    allow_open_files(FLOOD as u64 + 2_000);
    let mut t = setup().await;
    let pid = t.gw.pid().unwrap();
    for (name, to, first) in [
        ("SIP", t.sip, &b"MESSAGE "[..]),
        ("MSRP", t.msrp, &b"MSRP "[..]),
    ] {
        let started = Instant::now();
        let flooding = tokio::spawn(flood(to, pid, first));
        // The others are served while the flood goes on.
        tokio::time::sleep(Duration::from_millis(500)).await;
        t.sip_tcp_user_is_served(&format!("during the {name} flood (tcp)"))
            .await;
        let mut room = Room::join(t.msrp_sip).await;
        let text = format!("during the {name} flood");
        room.say(&text).await;
        let got = room.carol_got(std::slice::from_ref(&text)).await;
        assert!(
            got.contains(&text),
            "carol got alice's message during the {name} flood"
        );
        let ([eof, reset, open, no_connect], base, max_fds) = flooding.await.unwrap();
        println!(
            "{name} flood of {FLOOD}: {eof} closed, {reset} reset or refused, {open} left \
             open, {no_connect} not connected in {CUT_WITHIN:?}, in {:?}; gateway file \
             descriptors {base} before, {max_fds} at most",
            started.elapsed()
        );
        assert_eq!(open, 0, "{name}: every connection of the flood ended");
        assert_eq!(
            no_connect, 0,
            "{name}: every connection of the flood was answered"
        );
        assert_eq!(eof + reset, FLOOD);
        // The cap per address holds: the gateway held 50 of them, and a
        // few in the moment between accept and refusal.
        assert!(
            max_fds <= base + PER_IP + 20,
            "{name}: the gateway held {max_fds} descriptors, {base} before the flood"
        );
        let line = t
            .expect_log(&[
                "per-address connection limit reached",
                &format!("peer={OFFENDER_IP}:"),
            ])
            .await;
        assert!(line.contains("WARN"), "a warning: {line}");
        t.check_rss(&format!("with a flood of {FLOOD} connections to {name}"));
    }
    let line = t
        .expect_log(&["refusing MSRP connection", "per-address connection limit"])
        .await;
    println!("  {line}");
    // The connections that were taken never finished their message.
    t.expect_log(&[
        "cutting connection: message not complete in time",
        &format!("peer={OFFENDER_IP}:"),
    ])
    .await;
    t.expect_log(&[
        "cutting MSRP connection: a message not complete within",
        &format!("peer={OFFENDER_IP}:"),
    ])
    .await;
    t.sip_udp_user_is_served("after the floods").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_file_descriptors() {
    let mut t = setup().await;
    let pid = t.gw.pid().unwrap();
    // Room for 30 more descriptors, below the caps of the config.
    let limit = open_fds(pid) + 30;
    let status = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &pid.to_string(),
            &format!("--nofile={limit}:{limit}"),
        ])
        .status()
        .unwrap_or_else(|e| panic!("prlimit must run: {e}"));
    assert!(status.success(), "prlimit --nofile={limit}: {status}");
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..2 * FD_FLOOD {
        let to = if k % 2 == 0 { t.sip } else { t.msrp };
        tasks.spawn(async move {
            match tokio::time::timeout(CUT_WITHIN, offender_connect(to)).await {
                Ok(Ok(mut s)) => until_closed(&mut s, CUT_WITHIN).await.0,
                Ok(Err(_)) => End::Reset,
                Err(_) => End::NoConnect,
            }
        });
    }
    t.expect_log(&["accept failed; accepting again after a pause"])
        .await;
    // Out of descriptors, the gateway still serves what needs none.
    t.sip_udp_user_is_served("while out of file descriptors")
        .await;
    let mut open = 0;
    while let Some(end) = tasks.join_next().await {
        open += usize::from(matches!(
            end.expect("a connection task"),
            End::Open | End::NoConnect
        ));
    }
    println!(
        "out of descriptors (limit {limit}): {} connections ended in {:?}",
        2 * FD_FLOOD,
        started.elapsed()
    );
    assert_eq!(open, 0, "the gateway took and ended every connection");
    let warnings = t.log_lines(&["accept failed", "Too many open files"]);
    assert!(!warnings.is_empty(), "the log names the error");
    println!("  {}", warnings[0]);
    assert!(t.gw.ready().await, "the gateway is still up");
    t.sip_tcp_user_is_served("after running out of file descriptors")
        .await;
    t.check_rss("out of file descriptors");
}
