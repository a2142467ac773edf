//! Bad input, world by world, against one gateway: each malformed or
//! hostile input gets the answer it must get, and nothing else breaks.
//!
//! The gateway runs as a process of its own (the debug `cpimgate` binary)
//! with a private Prosody and a private InspIRCd, and four adapters:
//!
//! * `sip`: SIP pager mode on UDP and TCP (one port), bodies up to
//!   2,000 bytes;
//! * `xc`: the XMPP component (bodies up to 2,000 bytes); SIP addresses
//!   appear as its JIDs, the IRC channel as its MUC room
//!   `#test%irc.localhost@gw.localhost`; `a.localhost` is routed
//!   through it;
//! * `irc`: relay mode in `#test`, bridged with that MUC room; SIP
//!   messages to `irc.localhost` addresses go to it;
//! * `chat`: the gateway's MSRP room `sip:room22@chat.localhost`, in the
//!   same bridge.
//!
//! The well-behaved side: the XMPP user `user` (1:1 from SIP), `zoe` in
//! the MUC room, `alice` on IRC in `#test` (the injected commands are
//! `QUIT`, `JOIN` and `PRIVMSG alice`: had one run on the gateway's
//! connection, alice would see the bridge quit or a private message from
//! it), and `bob`, an MSRP participant of the room. The hostile side: raw UDP
//! and TCP sockets for SIP, `mallory`, an MSRP participant whose requests
//! are written byte by byte (and fresh participants for the cases that
//! end a session), zoe and `user` sending odd stanzas, alice sending odd
//! lines, and a raw IRC client for bytes that are not UTF-8.
//!
//! [`cases`] is the table: each case has a name, the input, and the
//! answer it must get (a SIP status and reason, an MSRP status, an XMPP
//! error condition, what the other worlds see). The cases run in turn
//! against the same gateway; after every one a message crosses each way
//! that matters (SIP → XMPP 1:1, IRC → MUC and MSRP, MSRP → IRC) and
//! the gateway still answers `/readyz`, or the case broke something. All
//! cases run even when one fails; the test then fails with the table of
//! what each got (`--nocapture` shows it when all pass) and what the
//! gateway logged about them. About 40 s.
//!
//! If Prosody, InspIRCd or the gateway binary cannot start, the test
//! fails and says why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use cpimgate_e2e::gateway_process::GatewayProcess;
use cpimgate_e2e::inspircd::{Inspircd, SERVER_NAME};
use cpimgate_e2e::irc_user::{IrcUser, Line};
use cpimgate_e2e::msrp_ua::{JoinOptions, MsrpUa};
use cpimgate_e2e::prosody::{COMPONENT_DOMAIN, COMPONENT_SECRET, HOST_A, Prosody, free_port};
use cpimgate_e2e::sip_pager::SipPager;
use cpimgate_e2e::xmpp_user::{XmppUser, body, nick_of, stanza_xml};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;
use tokio_xmpp::Stanza;
use tokio_xmpp::parsers::message::{Message, MessageType};
use tokio_xmpp::parsers::minidom::Element;
use tokio_xmpp::parsers::presence::Type as PresenceType;
use tokio_xmpp::parsers::stanza_error::StanzaError;

const SIP_DOMAIN: &str = "sip.gw.localhost";
const MSRP_ROOM: &str = "sip:room22@chat.localhost";
const BOB: &str = "sip:bob@biloxi.example.com";
const MALLORY: &str = "sip:mallory@evil.example.com";
/// `max_message_size` of the SIP adapter, `max_body` of the component.
const MAX_BODY: usize = 2000;
/// `max_message_size` of the MSRP room.
const MSRP_MAX: usize = 4096;
/// How long a wanted answer may take: a bound for a stuck gateway, not a
/// speed (the suite shares a small machine with builds; an answer that
/// comes returns at once).
const WAIT: Duration = Duration::from_secs(15);
/// How long to wait for what must not come.
const QUIET: Duration = Duration::from_millis(700);
const NS_CLIENT: &str = "jabber:client";

fn config(sip_port: u16, msrp_sip_port: u16, irc: SocketAddr, xmpp: &Prosody) -> String {
    format!(
        r##"
[gateway]
name = "gw-bad-input"
domains = ["{SIP_DOMAIN}", "{COMPONENT_DOMAIN}"]

[store]
path = "{{dir}}/gateway.sqlite"

[queue]
retry_base_ms = 50
retry_max_ms = 500

[adapters.sip]
kind = "sip"
domains = ["{SIP_DOMAIN}"]
udp = ["127.0.0.1:{sip_port}"]
tcp = ["127.0.0.1:{sip_port}"]
max_message_size = {MAX_BODY}

[adapters.xc]
kind = "xmpp"
mode = "component"
domain = "{COMPONENT_DOMAIN}"
secret = "{COMPONENT_SECRET}"
server = "127.0.0.1:{component_port}"
receipt_wait = 0
max_body = {MAX_BODY}

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
max_message_size = {MSRP_MAX}
rooms = [ {{ name = "room22" }} ]

[[route]]
domain = "{HOST_A}"
adapter = "xc"

[[route]]
domain = "{SERVER_NAME}"
adapter = "irc"

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

/// Everything the cases act on.
struct World {
    gw: GatewayProcess,
    sip: SocketAddr,
    msrp_focus: SocketAddr,
    /// The MUC room of `#test`.
    room: String,
    /// Receives SIP messages 1:1.
    user: XmppUser,
    /// In the MUC room.
    zoe: XmppUser,
    /// On IRC, in `#test`.
    alice: IrcUser,
    /// A well-behaved MSRP participant.
    bob: MsrpUa,
    /// The MSRP participant whose requests are written raw.
    mallory: MsrpUa,
    /// For fresh ids.
    n: u64,
    irc: Inspircd,
    _xmpp: Prosody,
}

impl World {
    fn next(&mut self) -> u64 {
        self.n += 1;
        self.n
    }
}

/// What a case saw (the answer, for the table), or what was wrong.
type Outcome = Result<String, String>;
type Run = for<'a> fn(&'a mut World) -> Pin<Box<dyn Future<Output = Outcome> + 'a>>;

struct Case {
    name: &'static str,
    /// The answer it must get.
    expect: &'static str,
    run: Run,
}

macro_rules! case {
    ($name:expr, $expect:expr, |$w:ident| $body:expr) => {
        Case {
            name: $name,
            expect: $expect,
            run: |$w| Box::pin(async move { $body }),
        }
    };
}

/// Fails the case with `what` unless `ok`.
fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what()) }
}

// ---------------------------------------------------------------- SIP

/// A SIP request written by hand: the Via (with the sender's address, a
/// fresh branch and `rport`) is added when sent unless `via` is off, and
/// Content-Length is the body's unless set.
#[derive(Clone)]
struct Req {
    start: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    via: bool,
    content_length: Option<String>,
}

impl Req {
    /// A MESSAGE with text/plain `body` to `uri`, fresh Call-ID and tag.
    fn message(n: u64, uri: &str, body: &[u8]) -> Req {
        Req::new(n, "MESSAGE", uri)
            .header("Content-Type", "text/plain")
            .body(body)
    }

    fn new(n: u64, method: &str, uri: &str) -> Req {
        let h = |k: &str, v: String| (k.to_owned(), v.into_bytes());
        Req {
            start: format!("{method} {uri} SIP/2.0"),
            headers: vec![
                h("Max-Forwards", "70".into()),
                h("From", format!("<sip:raw@127.0.0.1>;tag=raw{n}")),
                h("To", format!("<{uri}>")),
                h("Call-ID", format!("bad-input-{n}@127.0.0.1")),
                h("CSeq", format!("1 {method}")),
            ],
            body: Vec::new(),
            via: true,
            content_length: None,
        }
    }

    fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Req {
        self.headers
            .push((name.to_owned(), value.as_ref().to_vec()));
        self
    }

    fn without(mut self, name: &str) -> Req {
        if name == "Via" {
            self.via = false;
        }
        self.headers.retain(|(n, _)| n != name);
        self
    }

    fn replace(self, name: &str, value: impl AsRef<[u8]>) -> Req {
        self.without(name).header(name, value)
    }

    fn body(mut self, body: &[u8]) -> Req {
        self.body = body.to_vec();
        self
    }

    fn content_length(mut self, value: &str) -> Req {
        self.content_length = Some(value.to_owned());
        self
    }

    fn bytes(&self, transport: &str, local: SocketAddr, branch: &str) -> Vec<u8> {
        let mut out = format!("{}\r\n", self.start).into_bytes();
        if self.via {
            out.extend_from_slice(
                format!("Via: SIP/2.0/{transport} {local};branch=z9hG4bK{branch};rport\r\n")
                    .as_bytes(),
            );
        }
        for (n, v) in &self.headers {
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
        let cl = self
            .content_length
            .clone()
            .unwrap_or_else(|| self.body.len().to_string());
        out.extend_from_slice(format!("Content-Length: {cl}\r\n\r\n").as_bytes());
        out.extend_from_slice(&self.body);
        out
    }
}

/// The status line of a response (without CR LF).
fn status_line(response: &str) -> &str {
    response.lines().next().unwrap_or_default()
}

fn status_of(response: &str) -> u16 {
    response
        .get(8..11)
        .and_then(|s| s.parse().ok())
        .unwrap_or_default()
}

fn header_of<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    response.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Sends what `build` writes for the socket's address as one datagram
/// from a fresh socket; the first final response within `wait`, or
/// `None`.
async fn udp_ask(
    w: &World,
    build: impl FnOnce(SocketAddr) -> Vec<u8>,
    wait: Duration,
) -> Option<String> {
    udp_ask_at(w.sip, build, wait).await
}

/// [`udp_ask`] to `to`.
async fn udp_ask_at(
    to: SocketAddr,
    build: impl FnOnce(SocketAddr) -> Vec<u8>,
    wait: Duration,
) -> Option<String> {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let bytes = build(sock.local_addr().unwrap());
    sock.send_to(&bytes, to).await.unwrap();
    let deadline = Instant::now() + wait;
    let mut buf = vec![0; 65_536];
    loop {
        let (n, _) = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf))
            .await
            .ok()?
            .ok()?;
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if !text.starts_with("SIP/2.0 1") {
            return Some(text);
        }
    }
}

/// A request over UDP from a fresh socket.
async fn udp_send(w: &World, req: &Req, wait: Duration) -> Option<String> {
    udp_ask(
        w,
        |local| req.bytes("UDP", local, &format!("u{}", local.port())),
        wait,
    )
    .await
}

/// A TCP connection to the SIP port.
struct Tcp {
    stream: TcpStream,
    local: SocketAddr,
    read: Vec<u8>,
    closed: bool,
}

impl Tcp {
    async fn connect(w: &World) -> Tcp {
        let stream = TcpStream::connect(w.sip).await.unwrap();
        let local = stream.local_addr().unwrap();
        Tcp {
            stream,
            local,
            read: Vec::new(),
            closed: false,
        }
    }

    async fn write(&mut self, bytes: &[u8]) {
        // A peer that closed may refuse the write: that shows in `closed`.
        let _ = self.stream.write_all(bytes).await;
    }

    async fn send(&mut self, req: &Req) {
        let bytes = req.bytes("TCP", self.local, &format!("t{}", self.local.port()));
        self.write(&bytes).await;
    }

    /// Reads for `wait` (less if the gateway closes): the final
    /// responses read so far, whole.
    async fn responses(&mut self, wait: Duration) -> Vec<String> {
        let deadline = Instant::now() + wait;
        let mut buf = vec![0; 65_536];
        while !self.closed {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Err(_) => break,
                Ok(Ok(0) | Err(_)) => self.closed = true,
                Ok(Ok(n)) => self.read.extend_from_slice(&buf[..n]),
            }
        }
        let text = String::from_utf8_lossy(&self.read);
        text.split("SIP/2.0 ")
            .filter(|r| !r.is_empty())
            .map(|r| format!("SIP/2.0 {r}"))
            .filter(|r| !r.starts_with("SIP/2.0 1"))
            .collect()
    }

    /// The first response, waiting at most `wait`.
    async fn first(&mut self, wait: Duration) -> Option<String> {
        let deadline = Instant::now() + wait;
        let mut buf = vec![0; 65_536];
        loop {
            let text = String::from_utf8_lossy(&self.read).into_owned();
            if let Some(r) = text
                .split("SIP/2.0 ")
                .filter(|r| r.contains("\r\n\r\n"))
                .map(|r| format!("SIP/2.0 {r}"))
                .find(|r| !r.starts_with("SIP/2.0 1"))
            {
                return Some(r);
            }
            if self.closed {
                return None;
            }
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Err(_) => return None,
                Ok(Ok(0) | Err(_)) => self.closed = true,
                Ok(Ok(n)) => self.read.extend_from_slice(&buf[..n]),
            }
        }
    }
}

/// The gateway's SIP URI of the XMPP user.
fn to_user() -> String {
    format!("sip:user%40{HOST_A}@{SIP_DOMAIN}")
}

/// The gateway's SIP URI of the IRC channel.
fn to_channel() -> String {
    format!("sip:%23test%25{SERVER_NAME}@{SIP_DOMAIN}")
}

/// Expects a final response with `code` whose reason starts with
/// `reason`; the status line.
fn expect_status(answer: Option<String>, code: u16, reason: &str) -> Outcome {
    let Some(a) = answer else {
        return Err(format!("no answer; {code} {reason} wanted"));
    };
    let line = status_line(&a).to_owned();
    check(
        status_of(&a) == code && line.get(12..).unwrap_or_default().starts_with(reason),
        || format!("got `{line}`; {code} {reason}... wanted"),
    )?;
    Ok(line)
}

/// `user` gets exactly `text` (and nothing else with its marker).
async fn user_gets(w: &mut World, text: &str) -> Result<(), String> {
    w.user
        .expect_body(text, WAIT)
        .await
        .map(|_| ())
        .map_err(|e| format!("the XMPP user did not get {text:?}: {e}"))
}

/// Nothing with `marker` in its body reaches `user`, `zoe`, or IRC
/// `#test`, within [`QUIET`].
async fn nowhere(w: &mut World, marker: &str) -> Result<(), String> {
    let has = |m: &Message| body(m).is_some_and(|b| b.contains(marker));
    w.user
        .expect_no_message(has, Duration::from_millis(100))
        .await
        .map_err(|e| e.to_string())?;
    w.zoe
        .expect_no_message(has, Duration::from_millis(100))
        .await
        .map_err(|e| e.to_string())?;
    let lines = irc_lines(&mut w.alice, QUIET).await;
    check(!lines.iter().any(|l| l.raw.contains(marker)), || {
        format!("IRC got it: {lines:?}")
    })
}

fn sip_cases() -> Vec<Case> {
    vec![
        case!(
            "SIP/UDP truncated in the headers",
            "400 (no end of the header section; the Via is readable)",
            |w| {
                let n = w.next();
                let build = |local| {
                    let full =
                        Req::message(n, &to_user(), b"cut").bytes("UDP", local, &format!("cut{n}"));
                    // Up to the middle of the Call-ID line.
                    let at = String::from_utf8_lossy(&full).find("Call-ID").unwrap() + 12;
                    full[..at].to_vec()
                };
                let a = udp_ask(w, build, WAIT).await;
                expect_status(a, 400, "Bad Request")
            }
        ),
        case!(
            "SIP/TCP truncated, then the sender closes",
            "no answer; the gateway closes the connection",
            |w| {
                let n = w.next();
                let mut t = Tcp::connect(w).await;
                let bytes = Req::message(n, &to_user(), b"cut").bytes("TCP", t.local, "c");
                t.write(&bytes[..bytes.len() / 2]).await;
                t.stream.shutdown().await.unwrap();
                let rs = t.responses(WAIT).await;
                check(rs.is_empty() && t.closed, || {
                    format!("responses {rs:?}, closed {}", t.closed)
                })?;
                Ok("nothing; closed".into())
            }
        ),
        case!(
            "SIP/UDP body over max_message_size",
            "413 Request Entity Too Large (RFC 3261 §21.4.11)",
            |w| {
                let n = w.next();
                let big = vec![b'x'; MAX_BODY + 1000];
                let a = udp_send(w, &Req::message(n, &to_user(), &big), WAIT).await;
                expect_status(a, 413, "Request Entity Too Large")
            }
        ),
        case!(
            "SIP/UDP datagram of 60,000 bytes",
            "413 (RFC 3261 §18.1.1 wants such a request on TCP; the gateway still answers)",
            |w| {
                let n = w.next();
                let big = vec![b'x'; 60_000];
                let a = udp_send(w, &Req::message(n, &to_user(), &big), WAIT).await;
                expect_status(a, 413, "Request Entity Too Large")
            }
        ),
        case!(
            "SIP/TCP Content-Length 10,000,000",
            "513 Message Too Large before the body is read (RFC 3261 §21.5.9: the message, not just its body, is too long), then the connection is closed (§18.3: the stream cannot be framed on)",
            |w| {
                let n = w.next();
                let mut t = Tcp::connect(w).await;
                t.send(&Req::message(n, &to_user(), b"").content_length("10000000"))
                    .await;
                let a = t.first(WAIT).await;
                let line = expect_status(a, 513, "Message Too Large")?;
                let _ = t.responses(WAIT).await;
                check(t.closed, || "the connection stays open".into())?;
                Ok(format!("{line}; closed"))
            }
        ),
        case!(
            "SIP/UDP Content-Length larger than the body",
            "400 (RFC 3261 §18.3: the packet ends before the body)",
            |w| {
                let n = w.next();
                let r = Req::message(n, &to_user(), b"short").content_length("50");
                let a = udp_send(w, &r, WAIT).await;
                expect_status(a, 400, "Bad Request")
            }
        ),
        case!(
            "SIP/UDP Content-Length smaller than the body",
            "202; the extra bytes are dropped (RFC 3261 §18.3): the user gets `hello`",
            |w| {
                let n = w.next();
                let r = Req::message(n, &to_user(), b"hello -- never seen").content_length("5");
                let a = udp_send(w, &r, WAIT).await;
                let line = expect_status(a, 202, "Accepted")?;
                user_gets(w, "hello").await?;
                nowhere(w, "never seen").await?;
                Ok(format!("{line}; `hello` delivered"))
            }
        ),
        case!(
            "SIP/TCP Content-Length larger than the body",
            "nothing until the rest comes (RFC 3261 §18.3), then 202",
            |w| {
                let n = w.next();
                let text = format!("tcp-long-{n}");
                let mut t = Tcp::connect(w).await;
                let bytes = Req::message(n, &to_user(), text.as_bytes()).bytes("TCP", t.local, "l");
                let (head, tail) = bytes.split_at(bytes.len() - 4);
                t.write(head).await;
                let early = t.first(QUIET).await;
                check(early.is_none() && !t.closed, || {
                    format!("answered {early:?} before the body was whole")
                })?;
                t.write(tail).await;
                let line = expect_status(t.first(WAIT).await, 202, "Accepted")?;
                user_gets(w, &text).await?;
                Ok(format!("nothing, then {line}"))
            }
        ),
        case!(
            "SIP/TCP Content-Length smaller than the body",
            "202 for the first 5 bytes (RFC 3261 §18.3); the rest starts the next message, whose start line is then not SIP: no answer (nothing to build one on), log line `unreadable SIP message`",
            |w| {
                let n = w.next();
                let mut t = Tcp::connect(w).await;
                t.send(&Req::message(n, &to_user(), b"world and more").content_length("5"))
                    .await;
                let first = expect_status(t.first(WAIT).await, 202, "Accepted")?;
                user_gets(w, "world").await?;
                // What follows `world` is taken as the next message.
                let n = w.next();
                t.send(&Req::message(n, &to_user(), b"after")).await;
                let rs = t.responses(QUIET).await;
                check(rs.len() == 1, || format!("then {rs:?}"))?;
                let logged =
                    w.gw.log()
                        .contains(&format!("unreadable SIP message from {}", t.local));
                check(logged, || "no log line".into())?;
                nowhere(w, "and more").await?;
                Ok(format!("{first}; then nothing; logged"))
            }
        ),
        case!("SIP/UDP Content-Length not a number", "400", |w| {
            let n = w.next();
            let r = Req::message(n, &to_user(), b"x").content_length("abc");
            expect_status(udp_send(w, &r, WAIT).await, 400, "Bad Request")
        }),
        case!(
            "SIP/TCP Content-Length not a number",
            "400, then the connection is closed (RFC 3261 §18.3: no framing without it)",
            |w| {
                let n = w.next();
                let mut t = Tcp::connect(w).await;
                t.send(&Req::message(n, &to_user(), b"x").content_length("abc"))
                    .await;
                let line = expect_status(t.first(WAIT).await, 400, "Bad Request")?;
                let _ = t.responses(WAIT).await;
                check(t.closed, || "the connection stays open".into())?;
                Ok(format!("{line}; closed"))
            }
        ),
        case!("SIP/UDP two Call-IDs", "400", |w| {
            let n = w.next();
            let r = Req::message(n, &to_user(), b"x").header("Call-ID", "second@127.0.0.1");
            expect_status(udp_send(w, &r, WAIT).await, 400, "Bad Request")
        }),
        case!("SIP/UDP two CSeqs", "400", |w| {
            let n = w.next();
            let r = Req::message(n, &to_user(), b"x").header("CSeq", "2 MESSAGE");
            expect_status(udp_send(w, &r, WAIT).await, 400, "Bad Request")
        }),
        case!("SIP/UDP two Froms", "400", |w| {
            let n = w.next();
            let r = Req::message(n, &to_user(), b"x").header("From", "<sip:other@127.0.0.1>;tag=x");
            expect_status(udp_send(w, &r, WAIT).await, 400, "Bad Request")
        }),
        case!("SIP/TCP two Tos", "400", |w| {
            let n = w.next();
            let mut t = Tcp::connect(w).await;
            t.send(&Req::message(n, &to_user(), b"x").header("To", "<sip:x@127.0.0.1>"))
                .await;
            expect_status(t.first(WAIT).await, 400, "Bad Request")
        }),
        case!(
            "SIP/UDP no Via",
            "dropped: no Via to send a response by (RFC 3261 §18.2.2); log line `without a readable Via: dropped`",
            |w| {
                let n = w.next();
                let r = Req::message(n, &to_user(), b"novia").without("Via");
                let a = udp_send(w, &r, QUIET).await;
                check(a.is_none(), || format!("answered {a:?}"))?;
                nowhere(w, "novia").await?;
                let logged = w.gw.log().contains("without a readable Via: dropped");
                check(logged, || "no log line".into())?;
                Ok("nothing; logged `... without a readable Via: dropped`".into())
            }
        ),
        case!("SIP/UDP no From", "400 (RFC 3261 §8.1.1)", |w| {
            let n = w.next();
            let r = Req::message(n, &to_user(), b"x").without("From");
            expect_status(udp_send(w, &r, WAIT).await, 400, "Bad Request")
        }),
        case!("SIP/UDP no To", "400 (RFC 3261 §8.1.1)", |w| {
            let n = w.next();
            let r = Req::message(n, &to_user(), b"x").without("To");
            expect_status(udp_send(w, &r, WAIT).await, 400, "Bad Request")
        }),
        case!("SIP/UDP no Call-ID", "400 (RFC 3261 §8.1.1)", |w| {
            let n = w.next();
            let r = Req::message(n, &to_user(), b"x").without("Call-ID");
            expect_status(udp_send(w, &r, WAIT).await, 400, "Bad Request")
        }),
        case!("SIP/TCP no CSeq", "400 (RFC 3261 §8.1.1)", |w| {
            let n = w.next();
            let mut t = Tcp::connect(w).await;
            t.send(&Req::message(n, &to_user(), b"x").without("CSeq"))
                .await;
            expect_status(t.first(WAIT).await, 400, "Bad Request")
        }),
        case!(
            "SIP/UDP invalid UTF-8 in the From display name",
            "400",
            |w| {
                let n = w.next();
                let r = Req::message(n, &to_user(), b"utf8-head").replace(
                    "From",
                    [
                        &b"\"caf\xc3\x28\xff\" <sip:raw@127.0.0.1>;tag=u"[..],
                        n.to_string().as_bytes(),
                    ]
                    .concat(),
                );
                let line = expect_status(udp_send(w, &r, WAIT).await, 400, "Bad Request")?;
                nowhere(w, "utf8-head").await?;
                Ok(line)
            }
        ),
        case!(
            "SIP/UDP invalid UTF-8 in a text/plain body",
            "400 Bad Request: the text is not UTF-8",
            |w| {
                let n = w.next();
                let r = Req::message(n, &to_user(), b"bad \xff\xfe text");
                expect_status(
                    udp_send(w, &r, WAIT).await,
                    400,
                    "Bad Request: the text is not UTF-8",
                )
            }
        ),
        case!("SIP/UDP NUL in a header", "400", |w| {
            let n = w.next();
            let r = Req::message(n, &to_user(), b"nul-head").header("Subject", b"a\0b");
            let line = expect_status(udp_send(w, &r, WAIT).await, 400, "Bad Request")?;
            nowhere(w, "nul-head").await?;
            Ok(line)
        }),
        case!(
            "SIP/UDP unknown method FOO",
            "501 Not Implemented with Allow (RFC 3261 §21.5.2: a method the server does not recognise)",
            |w| {
                let n = w.next();
                let a = udp_send(w, &Req::new(n, "FOO", &to_user()), WAIT).await;
                let line = expect_status(a.clone(), 501, "Not Implemented")?;
                let allow = a.as_deref().and_then(|a| header_of(a, "Allow"));
                check(allow == Some("MESSAGE, OPTIONS"), || {
                    format!("Allow: {allow:?}")
                })?;
                Ok(format!("{line}; Allow: MESSAGE, OPTIONS"))
            }
        ),
        case!(
            "SIP/UDP unknown method FOO to the MSRP room's SIP side",
            "501 Not Implemented with Allow, as above",
            |w| {
                let n = w.next();
                let r = Req::new(n, "FOO", MSRP_ROOM);
                let a = udp_ask_at(
                    w.msrp_focus,
                    |local| r.bytes("UDP", local, &format!("f{}", local.port())),
                    WAIT,
                )
                .await;
                let line = expect_status(a.clone(), 501, "Not Implemented")?;
                let allow = a.as_deref().and_then(|a| header_of(a, "Allow"));
                check(allow.is_some(), || "no Allow".into())?;
                Ok(format!("{line}; Allow: {}", allow.unwrap_or_default()))
            }
        ),
        case!(
            "SIP/TCP known method not served here (PUBLISH)",
            "405 Method Not Allowed with Allow (RFC 3261 §8.2.1, §21.4.6)",
            |w| {
                let n = w.next();
                let mut t = Tcp::connect(w).await;
                t.send(&Req::new(n, "PUBLISH", &to_user()).header("Event", "presence"))
                    .await;
                let a = t.first(WAIT).await;
                let line = expect_status(a.clone(), 405, "Method Not Allowed")?;
                let allow = a.as_deref().and_then(|a| header_of(a, "Allow"));
                check(allow == Some("MESSAGE, OPTIONS"), || {
                    format!("Allow: {allow:?}")
                })?;
                Ok(format!("{line}; Allow: MESSAGE, OPTIONS"))
            }
        ),
        case!(
            "SIP/UDP body with CR LF + IRC commands, to the channel",
            "202; #test gets each line as the text of a PRIVMSG from the bridge; alice gets no private message; the bridge stays",
            |w| {
                let n = w.next();
                let text =
                    format!("inj{n} hi\r\nQUIT :inj{n}\r\nPRIVMSG alice :inj{n}\nJOIN #inj{n}");
                let r = Req::message(n, &to_channel(), text.as_bytes());
                let line = expect_status(udp_send(w, &r, WAIT).await, 202, "Accepted")?;
                let got = irc_injection_check(w, &format!("inj{n}"), 4).await?;
                Ok(format!("{line}; #test: {got:?}"))
            }
        ),
        case!(
            "SIP/TCP From URI with %0D%0A + QUIT, to the channel",
            "202; the sender's name arrives without the CR LF, in one PRIVMSG on #test only",
            |w| {
                let n = w.next();
                let mut t = Tcp::connect(w).await;
                let r = Req::message(n, &to_channel(), format!("uri{n} text").as_bytes()).replace(
                    "From",
                    format!("<sip:evil%0D%0AQUIT%20:uri{n}@127.0.0.1>;tag=f{n}"),
                );
                t.send(&r).await;
                let line = expect_status(t.first(WAIT).await, 202, "Accepted")?;
                let got = irc_injection_check(w, &format!("uri{n}"), 1).await?;
                Ok(format!("{line}; #test: {got:?}"))
            }
        ),
        case!(
            "SIP/UDP folded From display name with QUIT, to the channel",
            "202; folding is whitespace (RFC 3261 §7.3.1): one PRIVMSG on #test",
            |w| {
                let n = w.next();
                let r = Req::message(n, &to_channel(), format!("fold{n} text").as_bytes()).replace(
                    "From",
                    format!("\"evil\r\n QUIT :fold{n}\" <sip:raw@127.0.0.1>;tag=f{n}"),
                );
                let line = expect_status(udp_send(w, &r, WAIT).await, 202, "Accepted")?;
                let got = irc_injection_check(w, &format!("fold{n}"), 1).await?;
                Ok(format!("{line}; #test: {got:?}"))
            }
        ),
        case!(
            "SIP/UDP XML markup in the body, to an XMPP user",
            "202; the user's <body> holds the markup as text",
            |w| {
                let n = w.next();
                let text = format!("x{n}</body></message><message to='x'><body>y]]>&amp;");
                let r = Req::message(n, &to_user(), text.as_bytes());
                let line = expect_status(udp_send(w, &r, WAIT).await, 202, "Accepted")?;
                user_gets(w, &text).await?;
                Ok(format!("{line}; body arrived as text"))
            }
        ),
    ]
}

/// Reads the lines alice gets for `wait` (PINGs answered).
async fn irc_lines(alice: &mut IrcUser, wait: Duration) -> Vec<Line> {
    let deadline = Instant::now() + wait;
    let mut lines = Vec::new();
    while let Ok(Ok(l)) = tokio::time::timeout_at(deadline, alice.next_line()).await {
        lines.push(l);
    }
    lines
}

/// After text marked `marker` went to `#test` through the gateway: alice
/// sees at least `min` PRIVMSGs from the bridge on `#test` that carry
/// it, nothing else that does (a private PRIVMSG to alice), nothing but
/// PRIVMSGs from the bridge (a QUIT), and the bridge is still in
/// `#test`. The texts seen.
async fn irc_injection_check(
    w: &mut World,
    marker: &str,
    min: usize,
) -> Result<Vec<String>, String> {
    let first = w
        .alice
        .expect(&format!("{marker} on #test"), |l| {
            l.command == "PRIVMSG" && l.param(0) == "#test" && l.param(1).contains(marker)
        })
        .await
        .map_err(|e| e.to_string())?;
    let mut lines = vec![first];
    lines.extend(irc_lines(&mut w.alice, QUIET).await);
    let mine: Vec<&Line> = lines.iter().filter(|l| l.raw.contains(marker)).collect();
    let on_test: Vec<String> = mine
        .iter()
        .filter(|l| l.command == "PRIVMSG" && l.param(0) == "#test")
        .map(|l| l.param(1).to_owned())
        .collect();
    check(
        mine.iter().all(|l| {
            l.command == "PRIVMSG" && l.param(0) == "#test" && l.source.as_deref() == Some("bridge")
        }) && on_test.len() >= min,
        || format!("lines with {marker}: {mine:?}"),
    )?;
    check(
        !lines
            .iter()
            .any(|l| l.source.as_deref() == Some("bridge") && l.command != "PRIVMSG"),
        || format!("the bridge did something else: {lines:?}"),
    )?;
    let names = w.alice.names("#test").await.map_err(|e| e.to_string())?;
    check(names.iter().any(|n| n == "bridge"), || {
        format!("the bridge left #test: {names:?}")
    })?;
    Ok(on_test)
}

// --------------------------------------------------------------- MSRP

/// A request of mallory's, written by hand: `headers` after the start
/// line, then the body and the end-line of `end_tid` with `flag`.
fn msrp_bytes(
    tid: &str,
    method: &str,
    headers: &[(&str, String)],
    body: &[u8],
    end: (&str, char),
) -> Vec<u8> {
    let mut out = format!("MSRP {tid} {method}\r\n").into_bytes();
    for (n, v) in headers {
        out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    if !body.is_empty() {
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("-------{}{}\r\n", end.0, end.1).as_bytes());
    out
}

/// A message/cpim body from mallory to the room.
fn cpim_body(from: &str, text: &str) -> Vec<u8> {
    format!(
        "From: <{from}>\r\nTo: <{MSRP_ROOM}>\r\n\r\nContent-Type: text/plain;charset=utf-8\r\n\r\n{text}"
    )
    .into_bytes()
}

/// The usual headers of a SEND of mallory's with `byte_range`.
fn send_headers(w: &World, msg_id: &str, byte_range: &str) -> Vec<(&'static str, String)> {
    vec![
        ("To-Path", w.mallory.focus_path().to_owned()),
        ("From-Path", w.mallory.own_path().to_owned()),
        // RFC 4975 §9: an ident of 4 to 32 characters.
        ("Message-ID", format!("msgid-{msg_id}")),
        ("Byte-Range", byte_range.to_owned()),
        ("Content-Type", "message/cpim".to_owned()),
    ]
}

/// Writes a request of mallory's; the status of its response within
/// `wait`, or `None`.
async fn mallory_raw(
    w: &mut World,
    bytes: &[u8],
    tid: &str,
    wait: Duration,
) -> Result<Option<u16>, String> {
    w.mallory
        .raw(bytes, tid, wait)
        .await
        .map_err(|e| format!("mallory's connection: {e}"))
}

fn expect_msrp(got: Option<u16>, want: u16) -> Outcome {
    check(got == Some(want), || format!("got {got:?}; {want} wanted"))?;
    Ok(format!("{want}"))
}

/// Mallory's session still carries a room message: 200, and bob gets it.
async fn mallory_still_sends(w: &mut World) -> Result<(), String> {
    let n = w.next();
    let text = format!("mallory-ok-{n}");
    let s = w
        .mallory
        .send(MSRP_ROOM, &text)
        .await
        .map_err(|e| e.to_string())?;
    check(s == 200, || format!("mallory's next SEND got {s}"))?;
    w.bob.expect_text(&text).await.map_err(|e| e.to_string())?;
    Ok(())
}

fn msrp_cases() -> Vec<Case> {
    vec![
        case!(
            "MSRP Byte-Range end beyond its total",
            "400 (RFC 4975 §7.1.1: the range does not fit the total)",
            |w| {
                let n = w.next();
                let tid = format!("br{n}");
                let body = cpim_body(MALLORY, &format!("range{n}"));
                let h = send_headers(
                    w,
                    &format!("m{n}"),
                    &format!("1-{}/{}", body.len() + 50, body.len()),
                );
                let got = mallory_raw(
                    w,
                    &msrp_bytes(&tid, "SEND", &h, &body, (&tid, '$')),
                    &tid,
                    WAIT,
                )
                .await?;
                let r = expect_msrp(got, 400)?;
                nowhere(w, &format!("range{n}")).await?;
                mallory_still_sends(w).await?;
                Ok(r)
            }
        ),
        case!(
            "MSRP second chunk starts past what was received",
            "200 (RFC 4975 §7.3.1: chunks may come out of order); nothing delivered while a gap is left; 200 for the missing chunk, then the whole message arrives",
            |w| {
                let n = w.next();
                let text = format!("gap{n} {}", "g".repeat(40));
                let body = cpim_body(MALLORY, &text);
                let total = body.len();
                let (a, b) = (total - 30, total - 20);
                let chunk = async |w: &mut World, t: &str, from: usize, to: usize, flag: char| {
                    let h =
                        send_headers(w, &format!("m{n}"), &format!("{}-{to}/{total}", from + 1));
                    mallory_raw(
                        w,
                        &msrp_bytes(t, "SEND", &h, &body[from..to], (t, flag)),
                        t,
                        WAIT,
                    )
                    .await
                };
                let got1 = chunk(w, &format!("ga{n}"), 0, a, '+').await?;
                let got3 = chunk(w, &format!("gc{n}"), b, total, '$').await?;
                check(got1 == Some(200) && got3 == Some(200), || {
                    format!("the first and last chunks got {got1:?}, {got3:?}")
                })?;
                nowhere(w, &format!("gap{n}")).await?;
                let got2 = chunk(w, &format!("gb{n}"), a, b, '+').await?;
                check(got2 == Some(200), || {
                    format!("the missing chunk got {got2:?}")
                })?;
                w.bob.expect_text(&text).await.map_err(|e| e.to_string())?;
                w.alice
                    .expect_privmsg("#test", |t| t.contains(&text))
                    .await
                    .map_err(|e| e.to_string())?;
                mallory_still_sends(w).await?;
                Ok("200, 200, nothing; 200, then the whole text in every world".into())
            }
        ),
        case!(
            "MSRP total changes between chunks",
            "400 for the chunk with the other total; the message is not delivered",
            |w| {
                let n = w.next();
                let body = cpim_body(MALLORY, &format!("total{n} {}", "t".repeat(40)));
                let total = body.len();
                let mid = 30;
                let t1 = format!("ta{n}");
                let h = send_headers(w, &format!("m{n}"), &format!("1-{mid}/{total}"));
                let got1 = mallory_raw(
                    w,
                    &msrp_bytes(&t1, "SEND", &h, &body[..mid], (&t1, '+')),
                    &t1,
                    WAIT,
                )
                .await?;
                check(got1 == Some(200), || {
                    format!("the first chunk got {got1:?}")
                })?;
                let t2 = format!("tb{n}");
                let h = send_headers(
                    w,
                    &format!("m{n}"),
                    &format!("{}-{total}/{}", mid + 1, total + 9),
                );
                let got2 = mallory_raw(
                    w,
                    &msrp_bytes(&t2, "SEND", &h, &body[mid..], (&t2, '$')),
                    &t2,
                    WAIT,
                )
                .await?;
                let r = expect_msrp(got2, 400)?;
                nowhere(w, &format!("total{n}")).await?;
                mallory_still_sends(w).await?;
                Ok(format!("200, then {r}"))
            }
        ),
        case!(
            "MSRP SEND without To-Path",
            "no response (it has no path to answer on, RFC 4975 §7.2); log line `without a readable To-Path`",
            |w| {
                let n = w.next();
                let tid = format!("nt{n}");
                let body = cpim_body(MALLORY, &format!("notopath{n}"));
                let mut h = send_headers(w, &format!("m{n}"), "1-*/*");
                h.retain(|(k, _)| *k != "To-Path");
                let got = mallory_raw(
                    w,
                    &msrp_bytes(&tid, "SEND", &h, &body, (&tid, '$')),
                    &tid,
                    QUIET,
                )
                .await?;
                check(got.is_none(), || format!("answered {got:?}"))?;
                nowhere(w, &format!("notopath{n}")).await?;
                let logged = w.gw.log().contains("without a readable To-Path");
                check(logged, || "no log line".into())?;
                mallory_still_sends(w).await?;
                Ok("nothing; logged `... without a readable To-Path ...: dropped`".into())
            }
        ),
        case!(
            "MSRP SEND without From-Path",
            "no response: it would go to the From-Path (RFC 4975 §7.2); log line `refused with 400: missing From-Path`",
            |w| {
                let n = w.next();
                let tid = format!("nf{n}");
                let body = cpim_body(MALLORY, &format!("nofrompath{n}"));
                let mut h = send_headers(w, &format!("m{n}"), "1-*/*");
                h.retain(|(k, _)| *k != "From-Path");
                let got = mallory_raw(
                    w,
                    &msrp_bytes(&tid, "SEND", &h, &body, (&tid, '$')),
                    &tid,
                    QUIET,
                )
                .await?;
                check(got.is_none(), || format!("answered {got:?}"))?;
                nowhere(w, &format!("nofrompath{n}")).await?;
                let logged = w.gw.log().lines().any(|l| {
                    l.contains(&format!("request {tid} on connection"))
                        && l.contains("refused with 400: missing From-Path")
                });
                check(logged, || "no log line".into())?;
                mallory_still_sends(w).await?;
                Ok("nothing; logged".into())
            }
        ),
        case!(
            "MSRP SEND without Message-ID",
            "400 (RFC 4975 §7.1.1)",
            |w| {
                let n = w.next();
                let tid = format!("nm{n}");
                let body = cpim_body(MALLORY, &format!("nomsgid{n}"));
                let mut h = send_headers(w, "x", "1-*/*");
                h.retain(|(k, _)| *k != "Message-ID");
                let got = mallory_raw(
                    w,
                    &msrp_bytes(&tid, "SEND", &h, &body, (&tid, '$')),
                    &tid,
                    WAIT,
                )
                .await?;
                let r = expect_msrp(got, 400)?;
                nowhere(w, &format!("nomsgid{n}")).await?;
                mallory_still_sends(w).await?;
                Ok(r)
            }
        ),
        case!(
            "MSRP To-Path of an unknown session",
            "481 (RFC 4975 §7.3)",
            |w| {
                let n = w.next();
                let tid = format!("us{n}");
                let body = cpim_body(MALLORY, &format!("unknownsession{n}"));
                let mut h = send_headers(w, &format!("m{n}"), "1-*/*");
                let focus = w.mallory.focus_path().to_owned();
                let (base, _) = focus.rsplit_once('/').unwrap();
                h[0].1 = format!("{base}/nosuchsession{n};tcp");
                let got = mallory_raw(
                    w,
                    &msrp_bytes(&tid, "SEND", &h, &body, (&tid, '$')),
                    &tid,
                    WAIT,
                )
                .await?;
                let r = expect_msrp(got, 481)?;
                nowhere(w, &format!("unknownsession{n}")).await?;
                mallory_still_sends(w).await?;
                Ok(r)
            }
        ),
        case!(
            "MSRP SEND with Success-Report: yes",
            "200, then a REPORT with Status 000 200 OK over the whole message (RFC 4975 §7.1.3, RFC 7701 §6.3)",
            |w| {
                let n = w.next();
                let tid = format!("sr{n}");
                let text = format!("report{n}");
                let body = cpim_body(MALLORY, &text);
                let mut h = send_headers(w, &format!("m{n}"), &format!("1-{0}/{0}", body.len()));
                h.push(("Success-Report", "yes".to_owned()));
                let got = mallory_raw(
                    w,
                    &msrp_bytes(&tid, "SEND", &h, &body, (&tid, '$')),
                    &tid,
                    WAIT,
                )
                .await?;
                check(got == Some(200), || format!("got {got:?}"))?;
                let deadline = Instant::now() + WAIT;
                let mut reports = Vec::new();
                while reports.is_empty() && Instant::now() < deadline {
                    mallory_raw(w, b"", "none", Duration::from_millis(100)).await?;
                    reports = w.mallory.take_reports();
                }
                let want = (
                    format!("msgid-m{n}"),
                    format!("1-{0}/{0}", body.len()),
                    "000 200 OK".to_owned(),
                );
                check(reports == vec![want.clone()], || {
                    format!("REPORTs {reports:?}; {want:?} wanted")
                })?;
                w.bob.expect_text(&text).await.map_err(|e| e.to_string())?;
                Ok(format!("200; REPORT {} {}", want.1, want.2))
            }
        ),
        case!("MSRP unknown method FOO", "501 (RFC 4975 §12)", |w| {
            let n = w.next();
            let tid = format!("fo{n}");
            let h = vec![
                ("To-Path", w.mallory.focus_path().to_owned()),
                ("From-Path", w.mallory.own_path().to_owned()),
            ];
            let got = mallory_raw(
                w,
                &msrp_bytes(&tid, "FOO", &h, b"", (&tid, '$')),
                &tid,
                WAIT,
            )
            .await?;
            let r = expect_msrp(got, 501)?;
            mallory_still_sends(w).await?;
            Ok(r)
        }),
        case!(
            "MSRP spoofed CPIM From (bob's address)",
            "403 (RFC 7701 §9); nobody gets it",
            |w| {
                let n = w.next();
                let text = format!("spoof{n}");
                let s = w
                    .mallory
                    .send_as(BOB, MSRP_ROOM, &text, usize::MAX)
                    .await
                    .map_err(|e| e.to_string())?;
                check(s == 403, || format!("got {s}"))?;
                w.bob
                    .expect_no_text(&text, Duration::from_millis(200))
                    .await
                    .map_err(|e| e.to_string())?;
                nowhere(w, &text).await?;
                mallory_still_sends(w).await?;
                Ok("403; not fanned out".into())
            }
        ),
        case!(
            "MSRP NICKNAME of an XMPP occupant of the bridged room (zoe)",
            "425 (RFC 7701 §7.1: one nickname space per bridge)",
            |w| {
                let s = w.mallory.nickname("zoe").await.map_err(|e| e.to_string())?;
                expect_msrp(Some(s), 425)
            }
        ),
        case!(
            "MSRP NICKNAME of an IRC user of the bridged channel (alice)",
            "425",
            |w| {
                let s = w
                    .mallory
                    .nickname("alice")
                    .await
                    .map_err(|e| e.to_string())?;
                expect_msrp(Some(s), 425)
            }
        ),
        case!(
            "MSRP NICKNAME with a control character",
            "400 (RFC 4975 §9: no control characters in a header; §10.2)",
            |w| {
                let n = w.next();
                let tid = format!("nk{n}");
                let h = vec![
                    ("To-Path", w.mallory.focus_path().to_owned()),
                    ("From-Path", w.mallory.own_path().to_owned()),
                    ("Use-Nickname", "\"bell\x07\"".to_owned()),
                ];
                let got = mallory_raw(
                    w,
                    &msrp_bytes(&tid, "NICKNAME", &h, b"", (&tid, '$')),
                    &tid,
                    WAIT,
                )
                .await?;
                let r = expect_msrp(got, 400)?;
                mallory_still_sends(w).await?;
                Ok(r)
            }
        ),
        case!(
            "MSRP NICKNAME of spaces only",
            "424 (RFC 7701 §7.1: a nickname the focus does not accept)",
            |w| {
                let s = w.mallory.nickname("   ").await.map_err(|e| e.to_string())?;
                expect_msrp(Some(s), 424)
            }
        ),
        case!(
            "MSRP SEND cut off by the sender closing its connection (a fresh participant)",
            "nothing delivered; the session ends (log line `lost its connection`)",
            |w| {
                let n = w.next();
                let aor = format!("sip:cut{n}@evil.example.com");
                let mut cut = MsrpUa::join(w.msrp_focus, MSRP_ROOM, &aor, JoinOptions::default())
                    .await
                    .map_err(|e| e.to_string())?;
                let tid = format!("ct{n}");
                let body = cpim_body(&aor, &format!("cutoff{n} {}", "c".repeat(200)));
                let h = vec![
                    ("To-Path", cut.focus_path().to_owned()),
                    ("From-Path", cut.own_path().to_owned()),
                    ("Message-ID", format!("msgid-{n}")),
                    ("Byte-Range", format!("1-{0}/{0}", body.len())),
                    ("Content-Type", "message/cpim".to_owned()),
                ];
                let bytes = msrp_bytes(&tid, "SEND", &h, &body, (&tid, '$'));
                let early = cut
                    .raw(&bytes[..bytes.len() / 2], &tid, Duration::from_millis(200))
                    .await
                    .map_err(|e| e.to_string())?;
                check(early.is_none(), || format!("answered {early:?}"))?;
                let before = w.gw.log().matches("lost its connection").count();
                drop(cut);
                nowhere(w, &format!("cutoff{n}")).await?;
                let after = w.gw.log().matches("lost its connection").count();
                check(after > before, || "no log line".into())?;
                Ok("nothing; the session ended".into())
            }
        ),
        case!(
            "MSRP text with CR LF + IRC commands, to the room",
            "200; #test gets each line as the text of a PRIVMSG from the bridge; alice gets no private message; the bridge stays",
            |w| {
                let n = w.next();
                let text = format!("minj{n} a\r\nQUIT :minj{n}\r\nPRIVMSG alice :minj{n}");
                let st = w
                    .bob
                    .send(MSRP_ROOM, &text)
                    .await
                    .map_err(|e| e.to_string())?;
                check(st == 200, || format!("got {st}"))?;
                let got = irc_injection_check(w, &format!("minj{n}"), 3).await?;
                Ok(format!("200; #test: {got:?}"))
            }
        ),
        case!(
            "MSRP end-line with another transaction id (a fresh participant)",
            "nothing while the end-line is missing (RFC 4975 §7.1: the message goes on); once the chunk passes max_message_size: 413",
            |w| {
                let n = w.next();
                let mut eve = MsrpUa::join(
                    w.msrp_focus,
                    MSRP_ROOM,
                    &format!("sip:eve{n}@evil.example.com"),
                    JoinOptions::default(),
                )
                .await
                .map_err(|e| e.to_string())?;
                let tid = format!("el{n}");
                let body = cpim_body(
                    &format!("sip:eve{n}@evil.example.com"),
                    &format!("endline{n}"),
                );
                let h = vec![
                    ("To-Path", eve.focus_path().to_owned()),
                    ("From-Path", eve.own_path().to_owned()),
                    ("Message-ID", format!("msgid-{n}")),
                    ("Byte-Range", "1-*/*".to_owned()),
                    ("Content-Type", "message/cpim".to_owned()),
                ];
                let bytes = msrp_bytes(&tid, "SEND", &h, &body, ("someoneelse", '$'));
                let early = eve
                    .raw(&bytes, &tid, QUIET)
                    .await
                    .map_err(|e| e.to_string())?;
                check(early.is_none(), || {
                    format!("answered {early:?} before its end-line")
                })?;
                let pad = vec![b'p'; MSRP_MAX + 100];
                let late = eve.raw(&pad, &tid, WAIT).await.map_err(|e| e.to_string())?;
                let r = expect_msrp(late, 413)?;
                nowhere(w, &format!("endline{n}")).await?;
                Ok(format!("nothing, then {r}"))
            }
        ),
    ]
}

// --------------------------------------------------------------- XMPP

fn attr(name: &str) -> minidom::rxml::NcName {
    minidom::rxml::NcName::try_from(name).unwrap()
}

fn message_element(type_: &str, id: &str, to: &str, text: &str, extra: Option<Element>) -> Element {
    let mut b = Element::builder("message", NS_CLIENT)
        .attr(attr("type"), type_)
        .attr(attr("id"), id)
        .attr(attr("to"), to)
        .append(Element::builder("body", NS_CLIENT).append(text).build());
    if let Some(e) = extra {
        b = b.append(e);
    }
    b.build()
}

/// The error condition of an error stanza, and its text.
fn condition(payloads: &[Element]) -> Option<(String, Option<String>)> {
    let e = payloads.iter().find(|p| p.name() == "error")?;
    let e = StanzaError::try_from(e.clone()).ok()?;
    let cond = format!("{:?}", e.defined_condition);
    let text = e.texts.values().next().cloned();
    Some((cond, text))
}

/// The next error message answering `id`, with its condition and text.
async fn error_for(u: &mut XmppUser, id: &str) -> Result<(String, Option<String>), String> {
    let m = u
        .expect_message(
            |m| m.type_ == MessageType::Error && m.id.as_ref().is_some_and(|i| i.0 == id),
            WAIT,
        )
        .await
        .map_err(|e| format!("no error for {id}: {e}"))?;
    condition(&m.payloads)
        .ok_or_else(|| format!("no condition in {}", stanza_xml(&Stanza::Message(m))))
}

fn xmpp_cases() -> Vec<Case> {
    vec![
        case!(
            "XMPP groupchat with a child of an unknown namespace",
            "ignored (RFC 6120 §8.4): reflected, and the text reaches IRC",
            |w| {
                let n = w.next();
                let text = format!("unknownns{n}");
                let extra = Element::builder("frobnicate", "urn:example:unknown")
                    .append("<not> markup &")
                    .build();
                let room = w.room.clone();
                w.zoe
                    .send_element(&message_element(
                        "groupchat",
                        &format!("u{n}"),
                        &room,
                        &text,
                        Some(extra),
                    ))
                    .await
                    .map_err(|e| e.to_string())?;
                w.zoe
                    .expect_body(&text, WAIT)
                    .await
                    .map_err(|e| e.to_string())?;
                w.alice
                    .expect_privmsg("#test", |t| t.contains(&text))
                    .await
                    .map_err(|e| e.to_string())?;
                Ok("reflected; on IRC".into())
            }
        ),
        case!(
            "XMPP groupchat with line breaks + IRC commands",
            "reflected; #test gets each line as the text of a PRIVMSG from the bridge; alice gets no private message; the bridge stays",
            |w| {
                let n = w.next();
                let text = format!("xinj{n} a\nQUIT :xinj{n}\r\nPRIVMSG alice :xinj{n}\nJOIN 0");
                let room = w.room.clone();
                w.zoe
                    .send_groupchat(&room, &text)
                    .await
                    .map_err(|e| e.to_string())?;
                let got = irc_injection_check(w, &format!("xinj{n}"), 3).await?;
                Ok(format!("#test: {got:?}"))
            }
        ),
        case!(
            "XMPP IQ get with an unknown namespace to the component",
            "service-unavailable (RFC 6120 §8.4)",
            |w| {
                let n = w.next();
                let id = format!("iq{n}");
                let iq = Element::builder("iq", NS_CLIENT)
                    .attr(attr("type"), "get")
                    .attr(attr("id"), id.as_str())
                    .attr(attr("to"), COMPONENT_DOMAIN)
                    .append(Element::builder("query", "urn:example:unknown").build())
                    .build();
                w.user.send_element(&iq).await.map_err(|e| e.to_string())?;
                let s = w
                    .user
                    .expect_stanza(
                        |s| matches!(s, Stanza::Iq(i) if i.id() == id),
                        "the IQ's answer",
                        WAIT,
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                let xml = stanza_xml(&s);
                check(
                    xml.contains("type=\"error\"") || xml.contains("type='error'"),
                    || xml.clone(),
                )?;
                check(xml.contains("service-unavailable"), || xml.clone())?;
                Ok("error: service-unavailable".into())
            }
        ),
        case!(
            "XMPP chat to a component JID that maps to nothing",
            "item-not-found",
            |w| {
                let n = w.next();
                let id = format!("nf{n}");
                let to = format!("nobody@{COMPONENT_DOMAIN}");
                w.user
                    .send_element(&message_element("chat", &id, &to, "x", None))
                    .await
                    .map_err(|e| e.to_string())?;
                let (cond, text) = error_for(&mut w.user, &id).await?;
                check(cond == "ItemNotFound", || format!("{cond} {text:?}"))?;
                Ok(format!("item-not-found ({})", text.unwrap_or_default()))
            }
        ),
        case!(
            "XMPP groupchat body over max_body",
            "not-acceptable with a text; not relayed",
            |w| {
                let n = w.next();
                let id = format!("big{n}");
                let text = format!("big{n}{}", "b".repeat(MAX_BODY + 10));
                let room = w.room.clone();
                w.zoe
                    .send_element(&message_element("groupchat", &id, &room, &text, None))
                    .await
                    .map_err(|e| e.to_string())?;
                let (cond, t) = error_for(&mut w.zoe, &id).await?;
                check(cond == "NotAcceptable" && t.is_some(), || {
                    format!("{cond} {t:?}")
                })?;
                nowhere(w, &format!("big{n}")).await?;
                Ok(format!("not-acceptable ({})", t.unwrap_or_default()))
            }
        ),
        case!(
            "XMPP chat to a JID with broken XEP-0106 escaping (`alice\\40@`)",
            "jid-malformed (RFC 6120 §8.3.3.8): the unescaped localpart `alice@` is no address; a well-formed address with no route gets item-not-found (the case above)",
            |w| {
                let n = w.next();
                let id = format!("esc{n}");
                let to = format!("alice\\40@{COMPONENT_DOMAIN}");
                w.user
                    .send_element(&message_element("chat", &id, &to, "x", None))
                    .await
                    .map_err(|e| e.to_string())?;
                let (cond, text) = error_for(&mut w.user, &id).await?;
                check(cond == "JidMalformed", || format!("{cond} {text:?}"))?;
                Ok(format!("jid-malformed ({})", text.unwrap_or_default()))
            }
        ),
        case!(
            "XMPP chat to a JID with a lone backslash escape (`\\5c\\zz`)",
            "item-not-found: it unescapes to an IRC nick no one has (the IRC server's 401), no crash on the broken escapes",
            |w| {
                let n = w.next();
                let id = format!("esc2{n}");
                let to = format!("a\\5c\\zz\\2%{SERVER_NAME}@{COMPONENT_DOMAIN}");
                w.user
                    .send_element(&message_element(
                        "chat",
                        &id,
                        &to,
                        &format!("esc2{n}"),
                        None,
                    ))
                    .await
                    .map_err(|e| e.to_string())?;
                let (cond, text) = error_for(&mut w.user, &id).await?;
                check(cond == "ItemNotFound", || format!("{cond} {text:?}"))?;
                Ok(format!("item-not-found ({})", text.unwrap_or_default()))
            }
        ),
        case!(
            "XMPP join of the MUC room as an IRC user's nick (alice)",
            "presence error conflict (XEP-0045 §7.2.9: 409)",
            |w| {
                let room = w.room.clone();
                let e = w.user.join_muc(&room, "alice").await;
                let msg = match e {
                    Ok(_) => return Err("joined as alice".into()),
                    Err(e) => e.to_string(),
                };
                check(msg.contains("conflict"), || msg.clone())?;
                // The answer may come with presences of the room: drop them.
                let _ = w
                    .user
                    .expect_presence(
                        |p| p.type_ == PresenceType::Error,
                        Duration::from_millis(50),
                    )
                    .await;
                w.user.clear();
                Ok("presence error: conflict".into())
            }
        ),
        case!(
            "IRC text with XML special characters and `]]>`",
            "the MUC occupant alice's <body> holds them as text",
            |w| {
                let n = w.next();
                let text = format!("xml{n} <b>&amp;</b> ]]> \"quoted\" 'single' <![CDATA[x]]>");
                w.alice
                    .say("#test", &text)
                    .await
                    .map_err(|e| e.to_string())?;
                let m = w
                    .zoe
                    .expect_message(
                        |m| body(m).is_some_and(|b| b.contains(&format!("xml{n}"))),
                        WAIT,
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                check(body(&m) == Some(text.as_str()), || {
                    format!("got {:?}", body(&m))
                })?;
                Ok("the same text".into())
            }
        ),
    ]
}

// ---------------------------------------------------------------- IRC

/// The body of the next groupchat zoe gets with `marker`.
async fn zoe_gets(w: &mut World, marker: &str) -> Result<String, String> {
    let room = w.room.clone();
    let m = w
        .zoe
        .expect_message(
            |m| {
                m.type_ == MessageType::Groupchat
                    && m.from
                        .as_ref()
                        .is_some_and(|f| f.to_bare().as_str() == room)
                    && body(m).is_some_and(|b| b.contains(marker))
            },
            WAIT,
        )
        .await
        .map_err(|e| e.to_string())?;
    check(nick_of(m.from.as_ref()) == Some("alice"), || {
        format!("from {:?}", m.from)
    })?;
    Ok(body(&m).unwrap_or_default().to_owned())
}

/// A raw IRC client registered as `nick` and in `#test`.
async fn raw_irc(w: &World, nick: &str) -> Result<TcpStream, String> {
    let mut s = TcpStream::connect(w.irc.addr())
        .await
        .map_err(|e| e.to_string())?;
    s.write_all(format!("NICK {nick}\r\nUSER {nick} 0 * :raw\r\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    let mut joined = false;
    let mut buf = vec![0; 4096];
    loop {
        let n = tokio::time::timeout_at(deadline, s.read(&mut buf))
            .await
            .map_err(|_| format!("{nick} not in #test: {}", String::from_utf8_lossy(&seen)))?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!(
                "{nick}: closed: {}",
                String::from_utf8_lossy(&seen)
            ));
        }
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen).into_owned();
        for l in text.lines().filter(|l| l.starts_with("PING")) {
            let pong = format!("PONG{}\r\n", l.trim_end().trim_start_matches("PING"));
            s.write_all(pong.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
        }
        if !joined && text.contains(&format!(" 001 {nick} ")) {
            s.write_all(b"JOIN #test\r\n")
                .await
                .map_err(|e| e.to_string())?;
            joined = true;
        }
        if text.contains(&format!(" 366 {nick} #test ")) {
            return Ok(s);
        }
        if text.contains("PING") {
            seen.clear();
        }
    }
}

fn irc_cases() -> Vec<Case> {
    vec![
        case!(
            "IRC PRIVMSG with a NUL",
            "InspIRCd passes the NUL as a space: XMPP gets `before after`",
            |w| {
                let n = w.next();
                w.alice
                    .send(&format!("PRIVMSG #test :nul{n} before\0after"))
                    .await
                    .map_err(|e| e.to_string())?;
                let b = zoe_gets(w, &format!("nul{n}")).await?;
                check(b == format!("nul{n} before after"), || format!("{b:?}"))?;
                Ok(format!("{b:?}"))
            }
        ),
        case!(
            "IRC PRIVMSG with a bare CR",
            "the CR is dropped on the way (InspIRCd): XMPP gets `onetwo`, one message, no CR",
            |w| {
                let n = w.next();
                w.alice
                    .send(&format!("PRIVMSG #test :cr{n} one\rtwo"))
                    .await
                    .map_err(|e| e.to_string())?;
                let b = zoe_gets(w, &format!("cr{n}")).await?;
                check(b == format!("cr{n} onetwo"), || format!("{b:?}"))?;
                Ok(format!("{b:?}"))
            }
        ),
        case!(
            "IRC PRIVMSG in Latin-1 (not UTF-8), from a raw client",
            "read as Latin-1: XMPP gets `café naïve` as UTF-8",
            |w| {
                let n = w.next();
                let nick = format!("raw{n}");
                let mut raw = raw_irc(w, &nick).await?;
                let mut line = format!("PRIVMSG #test :latin{n} caf").into_bytes();
                line.extend_from_slice(b"\xe9 na\xefve\r\nQUIT :bye\r\n");
                raw.write_all(&line).await.map_err(|e| e.to_string())?;
                let room = w.room.clone();
                let m = w
                    .zoe
                    .expect_message(
                        |m| {
                            m.from
                                .as_ref()
                                .is_some_and(|f| f.to_bare().as_str() == room)
                                && body(m).is_some_and(|b| b.contains(&format!("latin{n}")))
                        },
                        WAIT,
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                let b = body(&m).unwrap_or_default().to_owned();
                check(b == format!("latin{n} café naïve"), || format!("{b:?}"))?;
                Ok(format!("{b:?}"))
            }
        ),
        case!(
            "IRC PRIVMSG with mIRC formatting codes",
            "the codes are removed: `bold red italic under plain`",
            |w| {
                let n = w.next();
                w.alice
                    .say("#test", &format!("fmt{n} \x02bold\x02 \x0304,01red\x03 \x1ditalic\x1d \x1funder\x1f \x0fplain"))
                    .await
                    .map_err(|e| e.to_string())?;
                let b = zoe_gets(w, &format!("fmt{n}")).await?;
                check(b == format!("fmt{n} bold red italic under plain"), || {
                    format!("{b:?}")
                })?;
                Ok(format!("{b:?}"))
            }
        ),
        case!(
            "IRC CTCP VERSION to the channel",
            "not relayed as text (XMPP sees nothing)",
            |w| {
                let n = w.next();
                w.alice
                    .say("#test", &format!("\x01VERSION ctcp{n}\x01"))
                    .await
                    .map_err(|e| e.to_string())?;
                nowhere(w, &format!("ctcp{n}")).await?;
                Ok("nothing".into())
            }
        ),
        case!(
            "IRC CTCP ACTION (the one CTCP relayed)",
            "XMPP gets `/me waves`",
            |w| {
                let n = w.next();
                w.alice
                    .say("#test", &format!("\x01ACTION waves{n}\x01"))
                    .await
                    .map_err(|e| e.to_string())?;
                let b = zoe_gets(w, &format!("waves{n}")).await?;
                check(b == format!("/me waves{n}"), || format!("{b:?}"))?;
                Ok(format!("{b:?}"))
            }
        ),
        case!(
            "IRC line of 700 bytes",
            "InspIRCd cuts it to 512 with CR LF; XMPP gets the cut text",
            |w| {
                let n = w.next();
                let text = format!("long{n} {}", "l".repeat(700));
                w.alice
                    .say("#test", &text)
                    .await
                    .map_err(|e| e.to_string())?;
                let b = zoe_gets(w, &format!("long{n}")).await?;
                check(b.len() < 512 && text.starts_with(&b), || {
                    format!("{} bytes", b.len())
                })?;
                Ok(format!("{} of {} bytes", b.len(), text.len()))
            }
        ),
    ]
}

fn cases() -> Vec<Case> {
    let mut all = sip_cases();
    all.extend(msrp_cases());
    all.extend(xmpp_cases());
    all.extend(irc_cases());
    all
}

/// After a case: SIP → XMPP 1:1, IRC → MUC and MSRP, MSRP → IRC still
/// work, and the gateway is ready.
async fn still_working(w: &mut World) -> Result<(), String> {
    let n = w.next();
    let mut pager = SipPager::bind(w.sip, "canary")
        .await
        .map_err(|e| e.to_string())?;
    let text = format!("canary-sip-{n}");
    let s = pager
        .message(&to_user(), &text, WAIT)
        .await
        .map_err(|e| e.to_string())?;
    check(s == Some(202), || format!("a good MESSAGE got {s:?}"))?;
    user_gets(w, &text).await?;

    let text = format!("canary-irc-{n}");
    w.alice
        .say("#test", &text)
        .await
        .map_err(|e| e.to_string())?;
    zoe_gets(w, &text).await?;
    w.bob
        .expect_text(&text)
        .await
        .map_err(|e| format!("bob: {e}"))?;

    let text = format!("canary-msrp-{n}");
    let s = w
        .bob
        .send(MSRP_ROOM, &text)
        .await
        .map_err(|e| e.to_string())?;
    check(s == 200, || format!("bob's SEND got {s}"))?;
    w.alice
        .expect_privmsg("#test", |t| t.contains(&text))
        .await
        .map_err(|e| e.to_string())?;
    check(w.gw.ready().await, || "/readyz is not 200".into())?;
    // What the canaries left behind is not for the next case.
    w.user.clear();
    w.zoe.clear();
    w.alice.clear();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_gets_its_answer_and_breaks_nothing() {
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
    let gw = GatewayProcess::start(
        &config(sip_port, msrp_sip_port, irc.addr(), &xmpp),
        Duration::from_secs(30),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    let user = XmppUser::connect(&xmpp, &format!("user@{HOST_A}"), "user-pw")
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
    let focus = SocketAddr::from(([127, 0, 0, 1], msrp_sip_port));
    let bob = MsrpUa::join(focus, MSRP_ROOM, BOB, JoinOptions::default())
        .await
        .unwrap_or_else(|e| panic!("bob joins the MSRP room: {e}"));
    let mallory = MsrpUa::join(focus, MSRP_ROOM, MALLORY, JoinOptions::default())
        .await
        .unwrap_or_else(|e| panic!("mallory joins the MSRP room: {e}"));
    let mut w = World {
        sip: SocketAddr::from(([127, 0, 0, 1], sip_port)),
        msrp_focus: focus,
        room,
        gw,
        user,
        zoe,
        alice,
        bob,
        mallory,
        n: 0,
        irc,
        _xmpp: xmpp,
    };
    if let Err(e) = still_working(&mut w).await {
        panic!("the well-behaved messages do not pass before any case: {e}");
    }

    let started = Instant::now();
    let mut table = Vec::new();
    let mut failed = 0;
    for c in cases() {
        let t = Instant::now();
        let outcome = (c.run)(&mut w).await;
        let after = still_working(&mut w).await;
        let (mark, got) = match (&outcome, &after) {
            (Ok(got), Ok(())) => ("ok", got.clone()),
            (Err(e), Ok(())) => ("WRONG", e.clone()),
            (Ok(got), Err(e)) => ("BROKE", format!("{got}; afterwards: {e}")),
            (Err(e), Err(a)) => ("WRONG+BROKE", format!("{e}; afterwards: {a}")),
        };
        if mark != "ok" {
            failed += 1;
        }
        table.push(format!(
            "{mark:<11} {:<62} | {} | got: {} ({} ms)",
            c.name,
            c.expect,
            got.replace(['\r', '\n'], " "),
            t.elapsed().as_millis()
        ));
    }
    let table = table.join("\n");
    eprintln!("{table}\n({} s)", started.elapsed().as_secs());
    let log = w.gw.log();
    let said: Vec<&str> = log
        .lines()
        .filter(|l| {
            [
                "WARN",
                "ERROR",
                "unreadable",
                "malformed",
                "MSRP",
                "dropped",
            ]
            .iter()
            .any(|k| l.contains(k))
        })
        .collect();
    assert_eq!(
        failed,
        0,
        "{failed} cases did not get their answer, or broke something:\n{table}\n\
         what the gateway logged about them:\n{}",
        said.join("\n")
    );
    w.gw.stop().await.unwrap();
}
