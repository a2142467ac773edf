//! The gateway as a participant of an MSRP chat room hosted elsewhere
//! (RFC 7701), all real: two gateways in this process and a private
//! Prosody.
//!
//! * gateway F is the focus: it hosts `sip:room22@chat.localhost`, where
//!   bob, the test UA of `cpimgate_e2e::msrp_ua`, is a participant;
//! * gateway P joins that room as a participant (`remote_rooms`, relay
//!   mode, nickname `gateway`) and bridges it with the MUC room
//!   `fed%chat.localhost@gw.localhost` of its XMPP component, where zoe
//!   is an occupant.
//!
//! F trusts the UAs' address and challenges P's (digest): P answers the
//! 401 of its INVITE and of its SUBSCRIBE with its credentials.
//!
//! P's INVITEs and SUBSCRIBEs go through a small UDP forwarder (its
//! outbound proxy), which the test can close: so that, when F restarts,
//! bob is in the room again before P rejoins it (else what P held would
//! be relayed to an empty room).
//!
//! Shown: bob's message reaches zoe once; zoe's reaches bob once as
//! `<zoe> text` from the gateway's nickname (a long one in chunks); bob
//! sees the gateway in the room's conference events, zoe sees bob as an
//! occupant (and not the gateway); a private message each way; F stopped
//! and started again on the same ports: P joins again (taking `gateway2`,
//! its nickname being held meanwhile) and what zoe said meanwhile reaches
//! bob once, in order.
//!
//! If a server cannot start, the test fails and says why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cpimgate_e2e::gateway::Gateway;
use cpimgate_e2e::msrp_ua::{JoinOptions, MsrpUa};
use cpimgate_e2e::prosody::{COMPONENT_DOMAIN, COMPONENT_SECRET, HOST_A, Prosody, free_port};
use cpimgate_e2e::xmpp_user::{WAIT, XmppUser, body, nick_of};
use tokio::net::UdpSocket;
use tokio_xmpp::parsers::presence::Type as PresenceType;

const DOMAIN: &str = "chat.localhost";
const ROOM: &str = "sip:room22@chat.localhost";
const P_DOMAIN: &str = "p.localhost";
const BOB: &str = "sip:bob@biloxi.example.com";

fn focus_config(sip_port: u16, msrp_port: u16) -> String {
    format!(
        r#"
[gateway]
name = "gw-focus"

[adapters.chat]
kind = "msrp"
domain = "{DOMAIN}"
sip_udp = ["127.0.0.1:{sip_port}"]
msrp = "127.0.0.1:{msrp_port}"
t1_ms = 100
# The room's events reach P and bob 200 ms apart at most, not 5 s.
notify_interval_ms = 200
rooms = [ {{ name = "room22" }} ]
# The test UAs are on 127.0.0.1; the other gateway, on 127.0.0.2, must
# authenticate (digest) as the user of its From.
authenticate = true
trusted = ["127.0.0.1"]
accounts = [ {{ user = "gateway", password = "gw-secret" }} ]
"#
    )
}

fn participant_config(sip_port: u16, proxy: SocketAddr, xmpp: &Prosody) -> String {
    format!(
        r##"
[gateway]
name = "gw-participant"
domains = ["{COMPONENT_DOMAIN}"]

[queue]
retry_base_ms = 50
retry_max_ms = 500

[adapters.chat]
kind = "msrp"
domain = "{P_DOMAIN}"
sip_udp = ["127.0.0.2:{sip_port}"]
msrp = "127.0.0.2:0"
t1_ms = 100
chunk_size = 256

[[adapters.chat.remote_rooms]]
uri = "{ROOM}"
nickname = "gateway"
proxy = "{proxy}"
credentials = {{ user = "gateway", password = "gw-secret" }}
rejoin_min_ms = 200
rejoin_max_ms = 1000

[adapters.xc]
kind = "xmpp"
mode = "component"
domain = "{COMPONENT_DOMAIN}"
secret = "{COMPONENT_SECRET}"
server = "127.0.0.1:{component_port}"

[[bridge]]
name = "fed"
rooms = [
  {{ adapter = "chat", address = "{ROOM}" }},
  {{ adapter = "xc", address = "xmpp:fed%25{DOMAIN}@{COMPONENT_DOMAIN}" }},
]
"##,
        component_port = xmpp.component_port(),
    )
}

/// A UDP forwarder from P to F's SIP port: P's outbound proxy. F answers
/// P straight (P's Via has no rport). While closed, it drops what comes.
async fn forwarder(to: SocketAddr) -> (SocketAddr, Arc<AtomicBool>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let open = Arc::new(AtomicBool::new(true));
    let gate = Arc::clone(&open);
    tokio::spawn(async move {
        // From P's address, so that F challenges what comes through.
        let out = UdpSocket::bind("127.0.0.2:0").await.unwrap();
        let mut buf = vec![0u8; 65536];
        while let Ok((n, _)) = socket.recv_from(&mut buf).await {
            if gate.load(Ordering::SeqCst) {
                let _ = out.send_to(&buf[..n], to).await;
            }
        }
    });
    (addr, open)
}

/// Reads bob's room events until the gateway shows in one under `nick`.
async fn wait_for_gateway_in_notify(bob: &mut MsrpUa, nick: &str) {
    let deadline = tokio::time::Instant::now() + WAIT * 2;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let doc = bob
            .next_notify(left)
            .await
            .unwrap_or_else(|e| panic!("the gateway never showed in the room's events: {e}"));
        if doc.contains(&format!("nickname=\"{nick}\"")) {
            assert!(doc.contains(&format!("sip:gateway@{P_DOMAIN}")), "{doc}");
            return;
        }
    }
}

/// F started with `config`, and bob (the test UA) in its room `room`.
async fn focus_with_bob(config: &str, focus: SocketAddr, room: &str) -> (Gateway, MsrpUa) {
    let f = Gateway::start(config, Vec::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    f.wait_connected("chat", WAIT).await.unwrap();
    let bob = MsrpUa::join(focus, room, BOB, JoinOptions::default())
        .await
        .unwrap_or_else(|e| panic!("bob joins: {e}"));
    (f, bob)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_joins_a_room_elsewhere_and_bridges_it_with_a_muc() {
    cpimgate_e2e::init_logging();
    let xmpp = Prosody::start().await.unwrap_or_else(|e| panic!("{e}"));
    xmpp.register("zoe", HOST_A, "zoe-pw").await.unwrap();

    // F, the focus, with bob in its room.
    let (f_sip, f_msrp, p_sip) = (
        free_port().unwrap(),
        free_port().unwrap(),
        free_port().unwrap(),
    );
    let focus = SocketAddr::from(([127, 0, 0, 1], f_sip));
    let (f, mut bob) = focus_with_bob(&focus_config(f_sip, f_msrp), focus, ROOM).await;
    assert_eq!(bob.nickname("Bob").await.unwrap(), 200);
    assert_eq!(bob.subscribe().await.unwrap(), 200);

    // zoe in the MUC of P's component.
    let muc = format!("fed%{DOMAIN}@{COMPONENT_DOMAIN}");
    let mut zoe = XmppUser::connect(&xmpp, &format!("zoe@{HOST_A}"), "zoe-pw")
        .await
        .unwrap();

    // P joins F's room through its proxy.
    let (proxy, gate) = forwarder(focus).await;
    let p = Gateway::start(&participant_config(p_sip, proxy, &xmpp), Vec::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for a in ["chat", "xc"] {
        p.wait_connected(a, WAIT)
            .await
            .unwrap_or_else(|e| panic!("adapter {a} did not connect: {e}"));
    }
    wait_for_gateway_in_notify(&mut bob, "gateway").await;
    zoe.join_muc(&muc, "zoe").await.unwrap();

    // zoe sees bob (a participant of the room elsewhere) as an occupant.
    let bob_there = zoe
        .expect_presence(
            |p| nick_of(p.from.as_ref()) == Some("Bob") && p.type_ != PresenceType::Unavailable,
            WAIT,
        )
        .await;
    assert!(bob_there.is_ok(), "Bob is not an occupant: {bob_there:?}");
    // The gateway itself is no occupant: it is the bridge.
    let itself = zoe
        .expect_presence(
            |p| nick_of(p.from.as_ref()) == Some("gateway"),
            Duration::from_millis(300),
        )
        .await;
    assert!(
        itself.is_err(),
        "the gateway shows as an occupant: {itself:?}"
    );

    // The room → XMPP, once.
    assert_eq!(
        bob.send(ROOM, "hello from the sip room").await.unwrap(),
        200
    );
    let m = zoe
        .expect_message(|m| body(m) == Some("hello from the sip room"), WAIT)
        .await
        .unwrap();
    assert_eq!(nick_of(m.from.as_ref()), Some("Bob"));
    let twice = zoe
        .expect_message(
            |m| body(m) == Some("hello from the sip room"),
            Duration::from_millis(500),
        )
        .await;
    assert!(twice.is_err(), "zoe got it twice: {twice:?}");

    // XMPP → the room, once, as `<zoe> text` from the gateway.
    zoe.send_groupchat(&muc, "hi from xmpp & <co>")
        .await
        .unwrap();
    let r = bob.expect_text("<zoe> hi from xmpp & <co>").await.unwrap();
    assert_eq!(
        r.from.address.to_string(),
        format!("sip:gateway@{P_DOMAIN}")
    );
    assert_eq!(r.from.display.as_deref(), Some("gateway"));
    assert_eq!(r.to[0].address.to_string(), ROOM);
    bob.expect_no_text("<zoe> hi from xmpp & <co>", Duration::from_millis(500))
        .await
        .unwrap();
    // A long one goes in 256-octet chunks (`chunk_size`), whole for bob.
    let long = "0123456789".repeat(150);
    zoe.send_groupchat(&muc, &long).await.unwrap();
    bob.expect_text(&format!("<zoe> {long}")).await.unwrap();
    // Nothing came back to the room from itself.
    bob.expect_no_text("hello from the sip room", Duration::from_millis(300))
        .await
        .unwrap();

    // Private, zoe → bob: to bob's occupant; bob gets it from the gateway.
    zoe.send_chat(&format!("{muc}/Bob"), "psst bob")
        .await
        .unwrap();
    let r = bob.expect_text("<zoe> psst bob").await.unwrap();
    assert_eq!(r.to[0].address.to_string(), BOB);
    // Private, bob → zoe: to the gateway's nickname URI, naming zoe.
    let to_gateway = format!("sip:gateway@{DOMAIN}");
    assert_eq!(bob.send(&to_gateway, "zoe: psst zoe").await.unwrap(), 200);
    let m = zoe
        .expect_message(|m| body(m) == Some("psst zoe"), WAIT)
        .await
        .unwrap();
    assert_eq!(nick_of(m.from.as_ref()), Some("Bob"));
    // One that names nobody gets the gateway's explanation, not relayed.
    assert_eq!(bob.send(&to_gateway, "hello?").await.unwrap(), 200);
    loop {
        let r = bob
            .next_message(WAIT)
            .await
            .unwrap_or_else(|e| panic!("no explanation from the gateway: {e}"));
        if r.text.contains("start with their nickname") {
            assert_eq!(
                r.from.address.to_string(),
                format!("sip:gateway@{P_DOMAIN}")
            );
            break;
        }
    }
    let leaked = zoe
        .expect_message(
            |m| body(m).is_some_and(|b| b.contains("hello?")),
            Duration::from_millis(300),
        )
        .await;
    assert!(leaked.is_err(), "{leaked:?}");

    // F stops: P is sent away (BYE). While F is down, zoe talks.
    gate.store(false, Ordering::SeqCst);
    f.shutdown().await.unwrap();
    bob.expect_bye(WAIT).await.unwrap();
    for i in 1..=3 {
        zoe.send_groupchat(&muc, &format!("while away {i}"))
            .await
            .unwrap();
    }
    // F again, on the same ports; bob first, then P through its proxy.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (f, mut bob) = focus_with_bob(&focus_config(f_sip, f_msrp), focus, ROOM).await;
    assert_eq!(bob.nickname("Bob").await.unwrap(), 200);
    assert_eq!(bob.subscribe().await.unwrap(), 200);
    // carol takes the gateway's nickname meanwhile: it gets 425 and
    // takes the next one (RFC 7701 §7.1).
    let mut carol = MsrpUa::join(
        focus,
        ROOM,
        "sip:carol@chicago.example.com",
        JoinOptions::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("carol joins: {e}"));
    assert_eq!(carol.nickname("gateway").await.unwrap(), 200);
    gate.store(true, Ordering::SeqCst);
    wait_for_gateway_in_notify(&mut bob, "gateway2").await;
    let mut got = Vec::new();
    while got.len() < 3 {
        let r = bob
            .next_message(WAIT * 2)
            .await
            .unwrap_or_else(|e| panic!("after the restart, got only {got:?}: {e}"));
        if r.text.contains("while away") {
            got.push(r.text);
        }
    }
    assert_eq!(
        got,
        [
            "<zoe> while away 1",
            "<zoe> while away 2",
            "<zoe> while away 3"
        ]
    );
    bob.expect_no_text("<zoe> while away 1", Duration::from_millis(500))
        .await
        .unwrap();
    carol.expect_text("<zoe> while away 3").await.unwrap();
    // And the room works again both ways.
    assert_eq!(bob.send(ROOM, "back again").await.unwrap(), 200);
    zoe.expect_message(|m| body(m) == Some("back again"), WAIT)
        .await
        .unwrap();

    p.shutdown().await.unwrap();
    f.shutdown().await.unwrap();
}

/// F for the puppet test: no digest (the participants' From is taken as
/// it comes, as behind a proxy that authenticated them), and MSRP over
/// TLS with the certificates in `certs`.
fn open_focus_config(sip_port: u16, msrp_port: u16, certs: &Path) -> String {
    format!(
        r#"
[gateway]
name = "gw-focus"

[adapters.chat]
kind = "msrp"
domain = "{DOMAIN}"
sip_udp = ["127.0.0.1:{sip_port}"]
msrp = "127.0.0.1:{msrp_port}"
msrps = "127.0.0.1:0"
tls_cert = "{cert}"
tls_key = "{key}"
t1_ms = 100
notify_interval_ms = 200
rooms = [ {{ name = "room22" }} ]
"#,
        cert = certs.join("gateway.crt").display(),
        key = certs.join("gateway.key").display(),
    )
}

/// P in puppet mode, at most one puppet, MSRP over TLS to the room (the
/// focus's certificate checked against the test CA).
fn puppet_config(sip_port: u16, focus: SocketAddr, xmpp: &Prosody, certs: &Path) -> String {
    participant_config(sip_port, focus, xmpp)
        .replace(
            "credentials = { user = \"gateway\", password = \"gw-secret\" }",
            "mode = \"puppet\"\nmax_puppets = 1\ntls = true",
        )
        .replace(
            "chunk_size = 256",
            &format!(
                "chunk_size = 256\ntls_ca = \"{}\"",
                certs.join("ca.crt").display()
            ),
        )
}

/// Reads bob's room events until one satisfies `what`; that document.
async fn notify_where(bob: &mut MsrpUa, what: &str, wanted: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + WAIT * 2;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let doc = bob
            .next_notify(left)
            .await
            .unwrap_or_else(|e| panic!("no room event shows {what}: {e}"));
        if wanted(&doc) {
            return doc;
        }
    }
}

/// Puppet mode, MSRP over TLS to the room: zoe of the MUC has a
/// participant of her own in the room elsewhere (From
/// `sip:zoe@p.localhost`, nickname `zoe`): bob sees her
/// join, her messages as hers, her nickname change and her leaving, and
/// can write to her privately by her nickname; yan, beyond
/// `max_puppets = 1`, is relayed as `<yan> text` by the gateway's own
/// participant. Nothing arrives twice, and the puppet never shows as a
/// member of the room on the XMPP side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_puppet_mode_each_occupant_is_a_participant_of_the_room_elsewhere() {
    cpimgate_e2e::init_logging();
    let xmpp = Prosody::start().await.unwrap_or_else(|e| panic!("{e}"));
    xmpp.register("zoe", HOST_A, "zoe-pw").await.unwrap();
    xmpp.register("yan", HOST_A, "yan-pw").await.unwrap();
    let certs = tempfile::tempdir().unwrap();
    cpimgate_e2e::kamailio::make_certificates(certs.path())
        .await
        .unwrap_or_else(|e| panic!("test certificates: {e}"));

    let (f_sip, f_msrp, p_sip) = (
        free_port().unwrap(),
        free_port().unwrap(),
        free_port().unwrap(),
    );
    let focus = SocketAddr::from(([127, 0, 0, 1], f_sip));
    let (f, mut bob) =
        focus_with_bob(&open_focus_config(f_sip, f_msrp, certs.path()), focus, ROOM).await;
    assert_eq!(bob.nickname("Bob").await.unwrap(), 200);
    assert_eq!(bob.subscribe().await.unwrap(), 200);

    let p = Gateway::start(
        &puppet_config(p_sip, focus, &xmpp, certs.path()),
        Vec::new(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    for a in ["chat", "xc"] {
        p.wait_connected(a, WAIT)
            .await
            .unwrap_or_else(|e| panic!("adapter {a} did not connect: {e}"));
    }
    wait_for_gateway_in_notify(&mut bob, "gateway").await;

    // zoe joins the MUC: her puppet joins the room.
    let muc = format!("fed%{DOMAIN}@{COMPONENT_DOMAIN}");
    let mut zoe = XmppUser::connect(&xmpp, &format!("zoe@{HOST_A}"), "zoe-pw")
        .await
        .unwrap();
    zoe.join_muc(&muc, "zoe").await.unwrap();
    let zoe_uri = format!("sip:zoe@{P_DOMAIN}");
    notify_where(&mut bob, "zoe's puppet", |d| {
        d.contains(&format!("entity=\"{zoe_uri}\"")) && d.contains("nickname=\"zoe\"")
    })
    .await;

    // zoe → the room: from her puppet, the text as it is, once.
    zoe.send_groupchat(&muc, "hello as myself").await.unwrap();
    let r = bob.expect_text("hello as myself").await.unwrap();
    assert_eq!(r.from.address.to_string(), zoe_uri);
    assert_eq!(r.from.display.as_deref(), Some("zoe"));
    assert_eq!(r.to[0].address.to_string(), ROOM);
    bob.expect_no_text("hello as myself", Duration::from_millis(500))
        .await
        .unwrap();

    // bob → the room: zoe gets it once (her puppet got it too, and kept
    // it to itself).
    assert_eq!(bob.send(ROOM, "hi zoe").await.unwrap(), 200);
    let m = zoe
        .expect_message(|m| body(m) == Some("hi zoe"), WAIT)
        .await
        .unwrap();
    assert_eq!(nick_of(m.from.as_ref()), Some("Bob"));
    let twice = zoe
        .expect_message(|m| body(m) == Some("hi zoe"), Duration::from_millis(500))
        .await;
    assert!(twice.is_err(), "zoe got it twice: {twice:?}");

    // bob → zoe privately, by her nickname in the room: no prefix needed.
    let zoe_nick_uri = format!("sip:zoe@{DOMAIN}");
    assert_eq!(bob.send(&zoe_nick_uri, "psst zoe").await.unwrap(), 200);
    let m = zoe
        .expect_message(|m| body(m) == Some("psst zoe"), WAIT)
        .await
        .unwrap();
    assert_eq!(nick_of(m.from.as_ref()), Some("Bob"));
    // zoe → bob privately: from her puppet, to bob.
    zoe.send_chat(&format!("{muc}/Bob"), "psst bob")
        .await
        .unwrap();
    let r = bob.expect_text("psst bob").await.unwrap();
    assert_eq!(r.from.address.to_string(), zoe_uri);
    assert_eq!(r.to[0].address.to_string(), BOB);

    // yan joins: max_puppets is 1, so the gateway relays for him.
    let mut yan = XmppUser::connect(&xmpp, &format!("yan@{HOST_A}"), "yan-pw")
        .await
        .unwrap();
    yan.join_muc(&muc, "yan").await.unwrap();
    // Whom yan sees in the MUC besides himself: zoe and Bob, no echo of
    // zoe's puppet and nobody for the gateway.
    let in_muc = |p: &tokio_xmpp::parsers::presence::Presence| {
        p.from
            .as_ref()
            .is_some_and(|f| f.to_bare().to_string() == muc)
    };
    let mut seen = std::collections::BTreeSet::new();
    while let Ok(pr) = yan
        .expect_presence(in_muc, Duration::from_millis(700))
        .await
    {
        if let Some(n) = nick_of(pr.from.as_ref()) {
            seen.insert(n.to_owned());
        }
    }
    let seen: Vec<&str> = seen.iter().map(String::as_str).collect();
    assert_eq!(seen, ["Bob", "zoe"]);
    yan.send_groupchat(&muc, "from yan").await.unwrap();
    let r = bob.expect_text("<yan> from yan").await.unwrap();
    assert_eq!(
        r.from.address.to_string(),
        format!("sip:gateway@{P_DOMAIN}")
    );

    // zoe changes nickname: her puppet does too (NICKNAME).
    zoe.change_nick(&muc, "zed").await.unwrap();
    notify_where(&mut bob, "zoe's new nickname", |d| {
        d.contains(&format!("entity=\"{zoe_uri}\"")) && d.contains("nickname=\"zed\"")
    })
    .await;
    zoe.send_groupchat(&muc, "now zed").await.unwrap();
    let r = bob.expect_text("now zed").await.unwrap();
    assert_eq!(r.from.address.to_string(), zoe_uri);
    assert_eq!(r.from.display.as_deref(), Some("zed"));

    // What yan saw so far (the nick change came before this message).
    yan.expect_message(|m| body(m) == Some("now zed"), WAIT)
        .await
        .unwrap();
    yan.clear();

    // zoe leaves: her puppet leaves the room (BYE).
    zoe.leave_muc(&muc, "zed").await.unwrap();
    notify_where(&mut bob, "zoe's puppet leaving", |d| {
        d.contains(&format!("entity=\"{zoe_uri}\"")) && d.contains("state=\"deleted\"")
    })
    .await;
    // yan saw zoe leave once, and no one came back in her place.
    let back = yan
        .expect_presence(
            |p| {
                in_muc(p)
                    && nick_of(p.from.as_ref()).is_some_and(|n| n != "yan" && n != "Bob")
                    && p.type_ != PresenceType::Unavailable
            },
            Duration::from_millis(700),
        )
        .await;
    assert!(back.is_err(), "someone came back: {back:?}");

    p.shutdown().await.unwrap();
    f.shutdown().await.unwrap();
}

/// Puppet mode with a room that takes only the gateway's own account
/// (digest; the From of an authenticated INVITE must be its user): zoe's
/// puppet is refused, so zoe is relayed as `<zoe> text` by the gateway's
/// participant, and what she said while her puppet was being refused
/// is not lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_puppet_the_room_refuses_leaves_its_member_relayed() {
    cpimgate_e2e::init_logging();
    let xmpp = Prosody::start().await.unwrap_or_else(|e| panic!("{e}"));
    xmpp.register("zoe", HOST_A, "zoe-pw").await.unwrap();
    let (f_sip, f_msrp, p_sip) = (
        free_port().unwrap(),
        free_port().unwrap(),
        free_port().unwrap(),
    );
    let focus = SocketAddr::from(([127, 0, 0, 1], f_sip));
    let (f, mut bob) = focus_with_bob(&focus_config(f_sip, f_msrp), focus, ROOM).await;
    assert_eq!(bob.subscribe().await.unwrap(), 200);
    let (proxy, _gate) = forwarder(focus).await;
    let config = participant_config(p_sip, proxy, &xmpp).replace(
        "rejoin_min_ms = 200",
        "mode = \"puppet\"\nrejoin_min_ms = 200",
    );
    let p = Gateway::start(&config, Vec::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for a in ["chat", "xc"] {
        p.wait_connected(a, WAIT)
            .await
            .unwrap_or_else(|e| panic!("adapter {a} did not connect: {e}"));
    }
    wait_for_gateway_in_notify(&mut bob, "gateway").await;

    let muc = format!("fed%{DOMAIN}@{COMPONENT_DOMAIN}");
    let mut zoe = XmppUser::connect(&xmpp, &format!("zoe@{HOST_A}"), "zoe-pw")
        .await
        .unwrap();
    zoe.join_muc(&muc, "zoe").await.unwrap();
    zoe.send_groupchat(&muc, "first words").await.unwrap();
    let r = bob.expect_text("<zoe> first words").await.unwrap();
    assert_eq!(
        r.from.address.to_string(),
        format!("sip:gateway@{P_DOMAIN}")
    );
    zoe.send_groupchat(&muc, "second words").await.unwrap();
    bob.expect_text("<zoe> second words").await.unwrap();
    bob.expect_no_text("first words", Duration::from_millis(300))
        .await
        .unwrap();

    p.shutdown().await.unwrap();
    f.shutdown().await.unwrap();
}

/// A UDP forwarder to `to` that keeps the first line of every datagram
/// it passes (from 127.0.0.2, like `forwarder`).
async fn recording_forwarder(to: SocketAddr) -> (SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        let out = UdpSocket::bind("127.0.0.2:0").await.unwrap();
        let mut buf = vec![0u8; 65536];
        while let Ok((n, _)) = socket.recv_from(&mut buf).await {
            let text = String::from_utf8_lossy(&buf[..n]);
            let first = text.lines().next().unwrap_or_default().to_owned();
            log.lock().unwrap().push(first);
            let _ = out.send_to(&buf[..n], to).await;
        }
    });
    (addr, seen)
}

/// Without an outbound proxy, the requests within the dialog go to the
/// focus's Contact (RFC 3261 §12.2.1.1), not to where the INVITE went:
/// the room's URI names a UDP forwarder in front of F (it could be a
/// front end that does not record-route); the INVITE and the first
/// SUBSCRIBE go through it, the ACK and the BYE straight to F's Contact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_proxy_requests_within_the_dialog_go_to_the_focus_contact() {
    cpimgate_e2e::init_logging();
    let xmpp = Prosody::start().await.unwrap_or_else(|e| panic!("{e}"));
    let (f_sip, f_msrp, p_sip) = (
        free_port().unwrap(),
        free_port().unwrap(),
        free_port().unwrap(),
    );
    let focus = SocketAddr::from(([127, 0, 0, 1], f_sip));
    // F's domain is its address, so that the room's URI can name the
    // forwarder's port and still be the room F sends from.
    let f_config = format!(
        r#"
[gateway]
name = "gw-focus"

[adapters.chat]
kind = "msrp"
domain = "127.0.0.1"
sip_udp = ["127.0.0.1:{f_sip}"]
msrp = "127.0.0.1:{f_msrp}"
t1_ms = 100
notify_interval_ms = 0
rooms = [ {{ name = "room22" }} ]
"#
    );
    let (f, mut bob) = focus_with_bob(&f_config, focus, "sip:room22@127.0.0.1").await;
    assert_eq!(bob.subscribe().await.unwrap(), 200);

    let (front, seen) = recording_forwarder(focus).await;
    let room = format!("sip:room22@127.0.0.1:{}", front.port());
    let p_config = format!(
        r##"
[gateway]
name = "gw-participant"
domains = ["{COMPONENT_DOMAIN}"]

[adapters.chat]
kind = "msrp"
domain = "{P_DOMAIN}"
sip_udp = ["127.0.0.2:{p_sip}"]
msrp = "127.0.0.2:0"
t1_ms = 100

[[adapters.chat.remote_rooms]]
uri = "{room}"
nickname = "gateway"

[adapters.xc]
kind = "xmpp"
mode = "component"
domain = "{COMPONENT_DOMAIN}"
secret = "{COMPONENT_SECRET}"
server = "127.0.0.1:{component_port}"

[[bridge]]
name = "fed"
rooms = [
  {{ adapter = "chat", address = "{room}" }},
  {{ adapter = "xc", address = "xmpp:fed%25chat.localhost@{COMPONENT_DOMAIN}" }},
]
"##,
        component_port = xmpp.component_port(),
    );
    let p = Gateway::start(&p_config, Vec::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    p.wait_connected("chat", WAIT).await.unwrap();
    notify_where(&mut bob, "the gateway joining", |d| {
        d.contains(&format!("entity=\"sip:gateway@{P_DOMAIN}\"")) && !d.contains("deleted")
    })
    .await;
    p.shutdown().await.unwrap();
    notify_where(&mut bob, "the gateway leaving", |d| {
        d.contains(&format!("entity=\"sip:gateway@{P_DOMAIN}\"")) && d.contains("deleted")
    })
    .await;
    // What went through the front: the dialog-creating requests only.
    let methods: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| l.split(' ').next().map(str::to_owned))
        .collect();
    assert!(methods.iter().any(|m| m == "INVITE"), "{methods:?}");
    assert!(
        !methods.iter().any(|m| m == "ACK" || m == "BYE"),
        "requests within the dialog went through the front: {methods:?}"
    );
    f.shutdown().await.unwrap();
}
