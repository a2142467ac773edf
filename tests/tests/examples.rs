//! The example deployments of `examples/*/`, each run as it ships: the
//! test reads the example's `cpimgate.toml` (and, for the SIP sidecar,
//! its `kamailio.cfg`) from disk, changes only what differs on a test
//! machine — addresses and ports to the private servers started here, the
//! store to a temporary directory, secrets to the test ones, the example's
//! XMPP and IRC server names to the private servers' — and runs the
//! `cpimgate` binary on it as a process of its own. Every change names the
//! key or text it replaces and fails when the example no longer has it, so
//! an example that changes shape breaks its test.
//!
//! 1. `sip-sidecar`: the example's Kamailio routes a MESSAGE for
//!    `*@im.example.com` to the gateway beside it, which hands it to the
//!    XMPP user the user part names; her answer comes back through
//!    Kamailio to the SIP phone where it registered, the phone's 200 comes
//!    back to her as a receipt (XEP-0184), and the phone's reply to her
//!    From reaches her. The phones reach Kamailio on another loopback
//!    address than the gateway's side, so the gateway trusting the right
//!    socket is part of what is tested.
//! 2. `irc-muc-puppet`: an XMPP user joins the IRC channel as a MUC room
//!    of the component and shows on IRC as a nick of her own (a puppet);
//!    the IRC user is an occupant of the room; messages go both ways, once.
//! 3. `federated-room`: one room across the gateway's MSRP chat room, an
//!    XMPP MUC and an IRC channel; what is said in each world arrives in
//!    the other two, once.
//!
//! About 2, 6 and 7 s, run in parallel. If Prosody, InspIRCd, Kamailio or
//! the gateway cannot start, the test fails and says why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use cpimgate_e2e::gateway_process::GatewayProcess;
use cpimgate_e2e::kamailio_config::KamailioConfig;
use cpimgate_e2e::prosody::{COMPONENT_DOMAIN, COMPONENT_SECRET, HOST_A, Prosody, free_port};
use cpimgate_e2e::xmpp_user::{WAIT, XmppUser, body};
use cpimgate_model::address::Address;
use tokio::net::UdpSocket;
use tokio_xmpp::parsers::message::{Lang, Message as XMessage};
use tokio_xmpp::parsers::minidom::Element;

/// How long the gateway process may take to be ready.
const READY: Duration = Duration::from_secs(30);

/// The text of `examples/<example>/<file>`.
fn example_file(example: &str, file: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(example)
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `text` with every `from` replaced by `to`; fails if there is none.
fn replaced(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the example has no {from:?}");
    text.replace(from, to)
}

/// Sets the key at `path` (`adapters.sip.udp`) of `table`; fails if the
/// example does not have it.
fn set(table: &mut toml::Table, path: &str, value: impl Into<toml::Value>) {
    let mut keys: Vec<&str> = path.split('.').collect();
    let last = keys.pop().expect("a key");
    let mut t = table;
    for k in keys {
        t = t
            .get_mut(k)
            .and_then(toml::Value::as_table_mut)
            .unwrap_or_else(|| panic!("the example has no [{k}] on the way to {path}"));
    }
    let slot = t
        .get_mut(last)
        .unwrap_or_else(|| panic!("the example has no key {path}"));
    *slot = value.into();
}

fn parse(text: &str) -> toml::Table {
    text.parse()
        .unwrap_or_else(|e| panic!("the example is not TOML: {e}"))
}

fn addr_list(addr: SocketAddr) -> toml::Value {
    toml::Value::Array(vec![toml::Value::String(addr.to_string())])
}

fn localhost(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

async fn start_gateway(table: &toml::Table) -> GatewayProcess {
    GatewayProcess::build_debug()
        .await
        .unwrap_or_else(|e| panic!("building cpimgate: {e}"));
    let text = toml::to_string(table).expect("the table serializes");
    GatewayProcess::start(&text, READY)
        .await
        .unwrap_or_else(|e| panic!("the gateway must start on the example: {e}"))
}

// ---------------------------------------------------------------------------
// 1. sip-sidecar

/// T1 of RFC 3261 §17.1.2.2: the phone retransmits over UDP this often.
const T1: Duration = Duration::from_millis(500);

/// A SIP phone on UDP, registered with the example's Kamailio: REGISTER,
/// MESSAGE, and the MESSAGEs it is sent, each answered 200.
struct Phone {
    sock: UdpSocket,
    proxy: SocketAddr,
    aor: String,
    n: u32,
}

/// The value of header `name` (or its compact form) in `msg`.
fn header<'a>(msg: &'a str, name: &str, compact: &str) -> Option<&'a str> {
    msg.split("\r\n\r\n").next()?.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        let n = n.trim();
        (n.eq_ignore_ascii_case(name) || n.eq_ignore_ascii_case(compact)).then_some(v.trim())
    })
}

fn body_of(msg: &str) -> &str {
    msg.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

impl Phone {
    async fn new(proxy: SocketAddr, aor: &str) -> Phone {
        Phone {
            sock: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            proxy,
            aor: aor.to_owned(),
            n: 0,
        }
    }

    fn local(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    /// Sends a request and retransmits it until its final response (10 s
    /// at most); the status, 0 for none.
    async fn request(&mut self, method: &str, uri: &str, to: &str, extra: &str, text: &str) -> u16 {
        self.n += 1;
        let (n, local, aor) = (self.n, self.local(), &self.aor);
        let branch = format!("z9hG4bKphone{n}x{}", local.port());
        let content_type = if text.is_empty() {
            String::new()
        } else {
            "Content-Type: text/plain;charset=utf-8\r\n".to_owned()
        };
        let request = format!(
            "{method} {uri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch={branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <{aor}>;tag=phone{n}\r\n\
             To: <{to}>\r\n\
             Call-ID: phone-{n}-{}@127.0.0.1\r\n\
             CSeq: {n} {method}\r\n\
             {extra}{content_type}\
             Content-Length: {}\r\n\r\n{text}",
            local.port(),
            text.len()
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut buf = vec![0; 65_536];
        while tokio::time::Instant::now() < deadline {
            self.sock
                .send_to(request.as_bytes(), self.proxy)
                .await
                .unwrap();
            let resend = tokio::time::Instant::now() + T1;
            while let Ok(Ok((len, _))) =
                tokio::time::timeout_at(resend, self.sock.recv_from(&mut buf)).await
            {
                let answer = String::from_utf8_lossy(&buf[..len]).into_owned();
                if !answer.starts_with("SIP/2.0 ") || !answer.contains(&branch) {
                    continue;
                }
                let status: u16 = answer.get(8..11).and_then(|s| s.parse().ok()).unwrap_or(0);
                if status >= 200 {
                    return status;
                }
            }
        }
        0
    }

    async fn register(&mut self, domain: &str) -> u16 {
        let contact = format!("Contact: <sip:phone@{}>\r\nExpires: 600\r\n", self.local());
        let aor = self.aor.clone();
        self.request("REGISTER", &format!("sip:{domain}"), &aor, &contact, "")
            .await
    }

    async fn message(&mut self, uri: &str, text: &str) -> u16 {
        self.request("MESSAGE", uri, uri, "", text).await
    }

    /// The next MESSAGE sent to the phone, answered 200 (its
    /// retransmissions too); fails after `within`.
    async fn next_message(&mut self, within: Duration) -> String {
        let mut buf = vec![0; 65_536];
        loop {
            let (len, from) = tokio::time::timeout(within, self.sock.recv_from(&mut buf))
                .await
                .expect("a MESSAGE for the phone")
                .unwrap();
            let request = String::from_utf8_lossy(&buf[..len]).into_owned();
            if !request.starts_with("MESSAGE ") {
                continue;
            }
            let vias: String = request
                .split("\r\n\r\n")
                .next()
                .unwrap_or_default()
                .lines()
                .filter(|l| {
                    let n = l.split(':').next().unwrap_or_default().trim();
                    n.eq_ignore_ascii_case("via") || n.eq_ignore_ascii_case("v")
                })
                .map(|l| format!("{l}\r\n"))
                .collect();
            let to = header(&request, "To", "t").expect("a To");
            let to = if to.contains(";tag=") {
                to.to_owned()
            } else {
                format!("{to};tag=phone")
            };
            let ok = format!(
                "SIP/2.0 200 OK\r\n{vias}From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
                header(&request, "From", "f").expect("a From"),
                header(&request, "Call-ID", "i").expect("a Call-ID"),
                header(&request, "CSeq", "").expect("a CSeq"),
            );
            self.sock.send_to(ok.as_bytes(), from).await.unwrap();
            return request;
        }
    }
}

fn chat_with_receipt_request(to: &str, text: &str) -> XMessage {
    let mut m = XMessage::chat(Some(to.parse().unwrap())).with_body(Lang::new(), text.into());
    m.payloads
        .push(Element::builder("request", "urn:xmpp:receipts").build());
    m
}

fn is_receipt(m: &XMessage) -> bool {
    m.payloads
        .iter()
        .any(|p| p.is("received", "urn:xmpp:receipts"))
}

/// `examples/sip-sidecar`: a SIP phone of example.com registers with the
/// example's Kamailio and writes to `sip:juliet%40<xmpp domain>@<im
/// domain>`; Kamailio sends it to the gateway (the 202 comes back), and
/// the XMPP user juliet gets it from the component JID of the phone's
/// address of record. Her answer to that JID leaves the gateway through
/// Kamailio (its outbound proxy), which finds the phone by its
/// registration: the phone gets a MESSAGE From juliet's gateway address
/// with her text, and its 200 comes back to her as a receipt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_sidecar_behind_kamailio_reaches_xmpp_and_back() {
    cpimgate_e2e::init_logging();
    let started = std::time::Instant::now();
    let prosody = Prosody::start()
        .await
        .unwrap_or_else(|e| panic!("Prosody must start: {e}"));
    prosody
        .register("juliet", HOST_A, "juliet-pw")
        .await
        .expect("registering juliet");

    // The example's domains become the private Prosody's: its component
    // and its users' host. The SIP domain example.com stays: nothing
    // resolves it, Kamailio is its server.
    let (phones, loopback, gateway_sip) = (
        free_port().unwrap(),
        free_port().unwrap(),
        free_port().unwrap(),
    );
    let toml = example_file("sip-sidecar", "cpimgate.toml");
    let toml = replaced(
        &toml,
        "\"im.example.com\"",
        &format!("\"{COMPONENT_DOMAIN}\""),
    );
    let toml = replaced(&toml, "\"xmpp.example.com\"", &format!("\"{HOST_A}\""));
    let mut t = parse(&toml);
    set(&mut t, "store.path", "{dir}/cpimgate.sqlite");
    set(
        &mut t,
        "adapters.sip.udp",
        addr_list(localhost(gateway_sip)),
    );
    set(
        &mut t,
        "adapters.sip.tcp",
        addr_list(localhost(gateway_sip)),
    );
    set(
        &mut t,
        "adapters.sip.outbound_proxy",
        format!("sip:{}", localhost(loopback)),
    );
    set(&mut t, "adapters.xmpp.secret", COMPONENT_SECRET);
    set(
        &mut t,
        "adapters.xmpp.server",
        prosody.component_addr().to_string(),
    );
    let gw = start_gateway(&t).await;

    let cfg = example_file("sip-sidecar", "kamailio.cfg");
    let cfg = replaced(&cfg, "127.0.0.1:5060", &localhost(loopback).to_string());
    // The phones' side on another loopback address, so that what reaches
    // the gateway from Kamailio's other socket is not trusted.
    let public = SocketAddr::from(([127, 0, 0, 2], phones));
    let cfg = replaced(&cfg, "203.0.113.10:5060", &public.to_string());
    let cfg = replaced(&cfg, "127.0.0.1:5080", &localhost(gateway_sip).to_string());
    let cfg = replaced(
        &cfg,
        "\"im.example.com\"",
        &format!("\"{COMPONENT_DOMAIN}\""),
    );
    let kamailio = KamailioConfig::start(&cfg, public)
        .await
        .unwrap_or_else(|e| panic!("the example's Kamailio must start: {e}"));

    let mut juliet = XmppUser::connect(&prosody, &format!("juliet@{HOST_A}"), "juliet-pw")
        .await
        .expect("juliet logs in");
    let mut alice = Phone::new(public, "sip:alice@example.com").await;
    assert_eq!(
        alice.register("example.com").await,
        200,
        "REGISTER; kamailio log:\n{}",
        kamailio.log_tail(30)
    );

    // SIP → Kamailio → gateway → XMPP.
    let to_juliet = format!("sip:juliet%40{HOST_A}@{COMPONENT_DOMAIN}");
    let status = alice.message(&to_juliet, "Art thou not Romeo?").await;
    assert_eq!(
        status,
        202,
        "the MESSAGE through Kamailio; kamailio log:\n{}\ngateway log:\n{}",
        kamailio.log_tail(30),
        gw.log_tail(30)
    );
    let alice_jid = "sip:alice@example.com"
        .parse::<Address>()
        .unwrap()
        .to_component_jid(COMPONENT_DOMAIN)
        .unwrap()
        .to_string();
    let m = juliet
        .expect_message(|m| body(m) == Some("Art thou not Romeo?"), WAIT)
        .await
        .unwrap_or_else(|e| panic!("juliet gets alice's MESSAGE: {e}\n{}", gw.log_tail(30)));
    assert_eq!(
        m.from.as_ref().map(|j| j.to_bare().to_string()),
        Some(alice_jid.clone()),
        "from the component JID of alice's address of record"
    );

    // XMPP → gateway → Kamailio → the phone, where it registered.
    juliet
        .send_message(chat_with_receipt_request(
            &alice_jid,
            "Neither, fair saint.",
        ))
        .await
        .unwrap();
    let request = alice.next_message(WAIT).await;
    assert!(
        request.starts_with(&format!("MESSAGE sip:phone@{} ", alice.local())),
        "Kamailio sent it to the registered contact: {request}"
    );
    assert_eq!(body_of(&request), "Neither, fair saint.");
    // From juliet's address at the gateway: her XMPP address (with her
    // resource) in the user part, of the gateway's domain.
    let from = header(&request, "From", "f").unwrap_or_default();
    let juliet_sip = from
        .split_once('<')
        .and_then(|(_, r)| r.split_once('>'))
        .map(|(uri, _)| uri.to_owned())
        .unwrap_or_else(|| panic!("a From with a URI: {from}"));
    assert!(
        juliet_sip.contains(&format!("juliet%40{HOST_A}"))
            && juliet_sip.ends_with(&format!("@{COMPONENT_DOMAIN}")),
        "From juliet's gateway address: {from}"
    );
    assert!(
        header(&request, "To", "t").is_some_and(|t| t.contains("sip:alice@example.com")),
        "To alice's address of record: {request}"
    );
    // The phone's 200 is the delivery: juliet gets her receipt.
    juliet
        .expect_message(is_receipt, WAIT)
        .await
        .unwrap_or_else(|e| panic!("juliet's receipt after the phone's 200: {e}"));
    // A reply to that From reaches her too, through Kamailio again.
    assert_eq!(alice.message(&juliet_sip, "Wherefore?").await, 202);
    juliet
        .expect_message(|m| body(m) == Some("Wherefore?"), WAIT)
        .await
        .unwrap_or_else(|e| panic!("juliet gets the reply to her From: {e}"));
    // Each once.
    juliet
        .expect_no_message(
            |m| matches!(body(m), Some("Art thou not Romeo?" | "Wherefore?")),
            Duration::from_millis(300),
        )
        .await
        .unwrap();

    gw.stop().await.expect("the gateway stops on SIGTERM");
    drop(kamailio);
    tracing::info!("sip-sidecar took {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------
// 2. irc-muc-puppet

/// The address of `adapter`'s room in the first bridge of `table`.
fn bridge_room(table: &toml::Table, adapter: &str) -> String {
    table["bridge"][0]["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .find(|r| r["adapter"].as_str() == Some(adapter))
        .and_then(|r| r["address"].as_str())
        .unwrap_or_else(|| panic!("the example's bridge has no room of {adapter}"))
        .to_owned()
}

/// `#lobby` of `irc://irc.example.org/%23lobby`.
fn channel_of(irc_address: &str) -> String {
    let (_, chan) = irc_address.rsplit_once('/').expect("irc://network/channel");
    chan.replace("%23", "#")
}

/// `#lobby%irc.example.org@irc.example.com` of
/// `xmpp:%23lobby%25irc.example.org@irc.example.com`.
fn muc_of(xmpp_address: &str) -> String {
    xmpp_address
        .trim_start_matches("xmpp:")
        .replace("%23", "#")
        .replace("%25", "%")
}

/// Sets a key the example leaves out (the test's own CA file); fails if
/// the example has it, or lacks the section.
fn add(table: &mut toml::Table, section: &str, key: &str, value: impl Into<toml::Value>) {
    let mut t = &mut *table;
    for k in section.split('.') {
        t = t
            .get_mut(k)
            .and_then(toml::Value::as_table_mut)
            .unwrap_or_else(|| panic!("the example has no [{section}]"));
    }
    assert!(
        t.insert(key.to_owned(), value.into()).is_none(),
        "the example sets {section}.{key} already"
    );
}

/// `examples/irc-muc-puppet`: the gateway reaches the IRC server over TLS
/// (the test's CA added) and serves the channel as a MUC room of its
/// component. zoe (XMPP) joins the room: alice, in the channel, is an
/// occupant, and zoe's puppet joins the channel under her nick. What zoe
/// says reaches IRC from that puppet with no prefix; what alice says
/// reaches the room from the occupant alice; each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn irc_channel_as_muc_room_with_puppets() {
    use cpimgate_e2e::inspircd::Inspircd;
    use cpimgate_e2e::irc_user::IrcUser;
    use cpimgate_e2e::xmpp_user::nick_of;

    cpimgate_e2e::init_logging();
    let started = std::time::Instant::now();
    let irc = Inspircd::start_tls()
        .await
        .unwrap_or_else(|e| panic!("InspIRCd must start: {e}"));
    let prosody = Prosody::start()
        .await
        .unwrap_or_else(|e| panic!("Prosody must start: {e}"));
    prosody
        .register("zoe", HOST_A, "zoe-pw")
        .await
        .expect("registering zoe");

    // The component's domain becomes the private Prosody's; the IRC
    // network keeps its name (a name only: `server` says where it is).
    let toml = example_file("irc-muc-puppet", "cpimgate.toml");
    let toml = replaced(&toml, "irc.example.com\"", &format!("{COMPONENT_DOMAIN}\""));
    let toml = replaced(&toml, "\"xmpp.example.com\"", &format!("\"{HOST_A}\""));
    let mut t = parse(&toml);
    set(&mut t, "store.path", "{dir}/cpimgate.sqlite");
    let tls_port = irc.tls_port().expect("a TLS listener");
    set(
        &mut t,
        "adapters.irc.server",
        localhost(tls_port).to_string(),
    );
    add(
        &mut t,
        "adapters.irc",
        "ca_file",
        irc.ca_cert_path().display().to_string(),
    );
    set(&mut t, "adapters.xmpp.secret", COMPONENT_SECRET);
    set(
        &mut t,
        "adapters.xmpp.server",
        prosody.component_addr().to_string(),
    );
    let gateway_nick = t["adapters"]["irc"]["nick"]
        .as_str()
        .expect("a nick")
        .to_owned();
    let channel = channel_of(&bridge_room(&t, "irc"));
    let room = muc_of(&bridge_room(&t, "xmpp"));
    assert!(room.ends_with(&format!("@{COMPONENT_DOMAIN}")), "{room}");
    let gw = start_gateway(&t).await;

    let mut alice = IrcUser::connect(irc.addr(), "alice").await.unwrap();
    alice
        .wait_for_member(&channel, &gateway_nick, false)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "the gateway never joined {channel}: {e}\n{}",
                gw.log_tail(30)
            )
        });

    let mut zoe = XmppUser::connect(&prosody, &format!("zoe@{HOST_A}"), "zoe-pw")
        .await
        .expect("zoe logs in");
    zoe.join_muc(&room, "zoe")
        .await
        .unwrap_or_else(|e| panic!("zoe joins {room}: {e}\n{}", gw.log_tail(30)));
    zoe.expect_presence(|p| nick_of(p.from.as_ref()) == Some("alice"), WAIT)
        .await
        .unwrap_or_else(|e| panic!("alice is not an occupant: {e}"));
    alice
        .expect("zoe's puppet joining", |l| {
            l.command == "JOIN" && l.source.as_deref() == Some("zoe")
        })
        .await
        .unwrap_or_else(|e| panic!("no puppet for zoe: {e}\n{}", gw.log_tail(30)));

    // XMPP → IRC, from the puppet, as said.
    zoe.send_groupchat(&room, "hello from xmpp").await.unwrap();
    let l = alice
        .expect_privmsg(&channel, |t| t == "hello from xmpp")
        .await
        .unwrap_or_else(|e| panic!("zoe's message on IRC: {e}"));
    assert_eq!(l.source.as_deref(), Some("zoe"), "said by zoe's puppet");

    // IRC → XMPP, from the occupant alice.
    alice.say(&channel, "hello from irc").await.unwrap();
    let m = zoe
        .expect_message(|m| body(m) == Some("hello from irc"), WAIT)
        .await
        .unwrap_or_else(|e| panic!("alice's message in the room: {e}"));
    assert_eq!(nick_of(m.from.as_ref()), Some("alice"));

    // Each once: no second copy either way, and neither comes back to
    // where it was said (the room's reflection to zoe aside).
    zoe.expect_message(|m| body(m) == Some("hello from xmpp"), WAIT)
        .await
        .expect("the room reflects zoe's message to her");
    zoe.expect_no_message(
        |m| matches!(body(m), Some("hello from irc" | "hello from xmpp")),
        Duration::from_millis(500),
    )
    .await
    .unwrap();
    let again = tokio::time::timeout(
        Duration::from_millis(300),
        alice.expect_privmsg(&channel, |t| t.contains("hello from")),
    )
    .await;
    assert!(again.is_err(), "a second copy on IRC: {again:?}");

    gw.stop().await.expect("the gateway stops on SIGTERM");
    tracing::info!("irc-muc-puppet took {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------
// 3. federated-room

/// `examples/federated-room`: the gateway hosts the MSRP room, sits in the
/// MUC as an ordinary account (client mode, the test's Prosody and its
/// self-signed certificate) and in the IRC channel (TLS, the test's CA).
/// bob joins the MSRP room with his digest account and a nickname, zoe is
/// in the MUC, alice in the channel. Each says one thing; it reaches the
/// other two, as `<nick> text` where the world has one occupant for the
/// others, and nowhere twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_room_across_msrp_xmpp_and_irc() {
    use cpimgate_e2e::inspircd::Inspircd;
    use cpimgate_e2e::irc_user::IrcUser;
    use cpimgate_e2e::msrp_ua::{JoinOptions, MsrpUa};
    use cpimgate_e2e::prosody::MUC_A;
    use cpimgate_e2e::xmpp_user::nick_of;

    cpimgate_e2e::init_logging();
    let started = std::time::Instant::now();
    let irc = Inspircd::start_tls()
        .await
        .unwrap_or_else(|e| panic!("InspIRCd must start: {e}"));
    let prosody = Prosody::start()
        .await
        .unwrap_or_else(|e| panic!("Prosody must start: {e}"));
    for (user, pw) in [("bridge", "bridge-pw"), ("zoe", "zoe-pw")] {
        prosody
            .register(user, HOST_A, pw)
            .await
            .expect("registering");
    }

    // The MUC service becomes the private Prosody's; the MSRP domain and
    // the IRC network keep their names (nothing resolves them here).
    let toml = example_file("federated-room", "cpimgate.toml");
    let toml = replaced(&toml, "@conference.example.com\"", &format!("@{MUC_A}\""));
    let mut t = parse(&toml);
    set(&mut t, "store.path", "{dir}/cpimgate.sqlite");
    let focus = localhost(free_port().unwrap());
    set(&mut t, "adapters.chat.sip_udp", addr_list(focus));
    set(&mut t, "adapters.chat.sip_tcp", addr_list(focus));
    set(&mut t, "adapters.chat.msrp", "127.0.0.1:0");
    set(&mut t, "adapters.chat.host", "127.0.0.1");
    let account = t["adapters"]["chat"]["accounts"][0]["user"]
        .as_str()
        .expect("an account")
        .to_owned();
    match t["adapters"]["chat"]["accounts"][0].get_mut("password") {
        Some(p) => *p = "bob-pw".into(),
        None => panic!("the example's account has no password"),
    }
    set(&mut t, "adapters.xmpp.jid", format!("bridge@{HOST_A}"));
    set(&mut t, "adapters.xmpp.password", "bridge-pw");
    add(
        &mut t,
        "adapters.xmpp",
        "server",
        prosody.c2s_addr().to_string(),
    );
    add(
        &mut t,
        "adapters.xmpp",
        "insecure_accept_any_certificate",
        true,
    );
    let tls_port = irc.tls_port().expect("a TLS listener");
    set(
        &mut t,
        "adapters.irc.server",
        localhost(tls_port).to_string(),
    );
    add(
        &mut t,
        "adapters.irc",
        "ca_file",
        irc.ca_cert_path().display().to_string(),
    );
    let irc_nick = t["adapters"]["irc"]["nick"]
        .as_str()
        .expect("a nick")
        .to_owned();
    let muc_nick = t["adapters"]["xmpp"]["rooms"][0]["nick"]
        .as_str()
        .expect("a nick in the MUC")
        .to_owned();
    let channel = channel_of(&bridge_room(&t, "irc"));
    let muc = bridge_room(&t, "xmpp")
        .trim_start_matches("xmpp:")
        .to_owned();
    let msrp_room = bridge_room(&t, "chat");
    let gw = start_gateway(&t).await;

    let mut alice = IrcUser::connect(irc.addr(), "alice").await.unwrap();
    alice
        .wait_for_member(&channel, &irc_nick, false)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "the gateway never joined {channel}: {e}\n{}",
                gw.log_tail(30)
            )
        });
    let mut zoe = XmppUser::connect(&prosody, &format!("zoe@{HOST_A}"), "zoe-pw")
        .await
        .expect("zoe logs in");
    zoe.join_muc(&muc, "zoe").await.unwrap();
    zoe.expect_presence(
        |p| nick_of(p.from.as_ref()) == Some(muc_nick.as_str()),
        WAIT,
    )
    .await
    .unwrap_or_else(|e| panic!("the gateway is not in {muc}: {e}\n{}", gw.log_tail(30)));
    let mut bob = MsrpUa::join(
        focus,
        &msrp_room,
        &format!("sip:{account}@example.com"),
        JoinOptions {
            credentials: Some((account.clone(), "bob-pw".into())),
            ..JoinOptions::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("bob joins {msrp_room}: {e}\n{}", gw.log_tail(30)));
    assert_eq!(bob.nickname("Bob").await.unwrap(), 200, "NICKNAME Bob");
    zoe.clear();

    // MSRP → XMPP and IRC.
    assert_eq!(bob.send(&msrp_room, "from msrp").await.unwrap(), 200);
    zoe.expect_message(|m| body(m) == Some("<Bob> from msrp"), WAIT)
        .await
        .unwrap_or_else(|e| panic!("bob's message in the MUC: {e}\n{}", gw.log_tail(30)));
    alice
        .expect_privmsg(&channel, |t| t == "<Bob> from msrp")
        .await
        .unwrap_or_else(|e| panic!("bob's message on IRC: {e}\n{}", gw.log_tail(30)));

    // XMPP → MSRP and IRC.
    zoe.send_groupchat(&muc, "from xmpp").await.unwrap();
    let r = bob
        .expect_text("from xmpp")
        .await
        .unwrap_or_else(|e| panic!("zoe's message in the MSRP room: {e}"));
    assert!(
        r.from.to_string().contains("zoe"),
        "from zoe's nickname URI: {}",
        r.from
    );
    alice
        .expect_privmsg(&channel, |t| t == "<zoe> from xmpp")
        .await
        .unwrap_or_else(|e| panic!("zoe's message on IRC: {e}"));

    // IRC → MSRP and XMPP.
    alice.say(&channel, "from irc").await.unwrap();
    let r = bob
        .expect_text("from irc")
        .await
        .unwrap_or_else(|e| panic!("alice's message in the MSRP room: {e}"));
    assert!(
        r.from.to_string().contains("alice"),
        "from alice's nickname URI: {}",
        r.from
    );
    zoe.expect_message(|m| body(m) == Some("<alice> from irc"), WAIT)
        .await
        .unwrap_or_else(|e| panic!("alice's message in the MUC: {e}"));

    // Once each, and nothing back where it was said: zoe has her own
    // message once (the MUC's reflection), no "<zoe> ..." copy; bob none
    // of his own; alice nothing more.
    zoe.expect_message(|m| body(m) == Some("from xmpp"), WAIT)
        .await
        .expect("the MUC reflects zoe's message");
    zoe.expect_no_message(
        |m| body(m).is_some_and(|b| b.contains("from ")),
        Duration::from_millis(700),
    )
    .await
    .unwrap();
    for text in ["from msrp", "from xmpp", "from irc"] {
        bob.expect_no_text(text, Duration::from_millis(100))
            .await
            .unwrap();
    }
    let again = tokio::time::timeout(
        Duration::from_millis(200),
        alice.expect_privmsg(&channel, |t| t.contains("from ")),
    )
    .await;
    assert!(again.is_err(), "a second copy on IRC: {again:?}");

    gw.stop().await.expect("the gateway stops on SIGTERM");
    tracing::info!("federated-room took {:?}", started.elapsed());
}
