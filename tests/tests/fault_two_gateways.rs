//! Two gateways federating the same rooms, all real: gateways F and P in
//! this process, one private Prosody serving two components
//! (`gw.localhost` for F, `gw2.localhost` for P).
//!
//! * gateway F hosts the MSRP room `sip:room22@chat.localhost`, where bob,
//!   the test UA of `cpimgate_e2e::msrp_ua`, is a participant, and bridges
//!   it with the MUC room `room22%chat.localhost@gw.localhost` of its
//!   component, where zoe is an occupant;
//! * gateway P joins F's room as a participant (`remote_rooms`, relay
//!   mode) and bridges it with the MUC room `fed%chat.localhost@gw2.localhost`
//!   of its own component, where yan is an occupant.
//!
//! So a message crosses both gateways and the one MSRP room they share,
//! and each gateway sees the other's relays come back in that room.
//!
//! Shown: zoe's message reaches yan once and bob once; yan's reaches zoe
//! once and bob once; bob's reaches zoe once and yan once; nothing comes
//! back to its sender (the only copy a sender's MUC gives it is the MUC's
//! own reflection, under its own nickname); and in a quiet 2 s after all
//! three, no participant gets a further copy of any of them (no loop
//! between the gateways).
//!
//! If a server cannot start, the test fails and says why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use cpimgate_e2e::HarnessError;
use cpimgate_e2e::gateway::Gateway;
use cpimgate_e2e::msrp_ua::{JoinOptions, MsrpUa};
use cpimgate_e2e::prosody::{
    COMPONENT_DOMAIN, COMPONENT_SECRET, HOST_A, Prosody, ProsodyOptions, free_port,
};
use cpimgate_e2e::xmpp_user::{WAIT, XmppUser, body, nick_of};
use tokio::net::UdpSocket;
use tokio_xmpp::parsers::presence::Type as PresenceType;

const DOMAIN: &str = "chat.localhost";
const ROOM: &str = "sip:room22@chat.localhost";
const P_DOMAIN: &str = "p.localhost";
/// P's component, the second one of the shared Prosody.
const P_COMPONENT: &str = "gw2.localhost";
const BOB: &str = "sip:bob@biloxi.example.com";
/// How long nothing more may come once every copy has arrived.
const QUIET: Duration = Duration::from_secs(2);

fn focus_config(sip_port: u16, msrp_port: u16, xmpp: &Prosody) -> String {
    format!(
        r##"
[gateway]
name = "gw-focus"
domains = ["{COMPONENT_DOMAIN}"]

[queue]
retry_base_ms = 50
retry_max_ms = 500

[adapters.chat]
kind = "msrp"
domain = "{DOMAIN}"
sip_udp = ["127.0.0.1:{sip_port}"]
msrp = "127.0.0.1:{msrp_port}"
t1_ms = 100
# The room's events reach P and bob 200 ms apart at most, not 5 s.
notify_interval_ms = 200
rooms = [ {{ name = "room22" }} ]
# The test UA is on 127.0.0.1; the other gateway, on 127.0.0.2, must
# authenticate (digest) as the user of its From.
authenticate = true
trusted = ["127.0.0.1"]
accounts = [ {{ user = "gateway", password = "gw-secret" }} ]

[adapters.xc]
kind = "xmpp"
mode = "component"
domain = "{COMPONENT_DOMAIN}"
secret = "{COMPONENT_SECRET}"
server = "127.0.0.1:{component_port}"

[[bridge]]
name = "room22"
rooms = [
  {{ adapter = "chat", address = "{ROOM}" }},
  {{ adapter = "xc", address = "xmpp:room22%25{DOMAIN}@{COMPONENT_DOMAIN}" }},
]
"##,
        component_port = xmpp.component_port(),
    )
}

fn participant_config(sip_port: u16, proxy: SocketAddr, xmpp: &Prosody) -> String {
    format!(
        r##"
[gateway]
name = "gw-participant"
domains = ["{P_COMPONENT}"]

[queue]
retry_base_ms = 50
retry_max_ms = 500

[adapters.chat]
kind = "msrp"
domain = "{P_DOMAIN}"
sip_udp = ["127.0.0.2:{sip_port}"]
msrp = "127.0.0.2:0"
t1_ms = 100

[[adapters.chat.remote_rooms]]
uri = "{ROOM}"
nickname = "gateway"
proxy = "{proxy}"
credentials = {{ user = "gateway", password = "gw-secret" }}

[adapters.xc]
kind = "xmpp"
mode = "component"
domain = "{P_COMPONENT}"
secret = "{COMPONENT_SECRET}"
server = "127.0.0.1:{component_port}"

[[bridge]]
name = "fed"
rooms = [
  {{ adapter = "chat", address = "{ROOM}" }},
  {{ adapter = "xc", address = "xmpp:fed%25{DOMAIN}@{P_COMPONENT}" }},
]
"##,
        component_port = xmpp.component_port(),
    )
}

/// A UDP forwarder from P to F's SIP port (P's outbound proxy), sending
/// from P's address so that F challenges what comes through.
async fn forwarder(to: SocketAddr) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let out = UdpSocket::bind("127.0.0.2:0").await.unwrap();
        let mut buf = vec![0u8; 65536];
        while let Ok((n, _)) = socket.recv_from(&mut buf).await {
            let _ = out.send_to(&buf[..n], to).await;
        }
    });
    addr
}

/// Every message `user` gets within `window` whose body contains `marker`,
/// as `(nickname, body)`.
async fn xmpp_copies(user: &mut XmppUser, marker: &str, window: Duration) -> Vec<(String, String)> {
    let deadline = tokio::time::Instant::now() + window;
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return got;
        }
        match user
            .expect_message(|m| body(m).is_some_and(|b| b.contains(marker)), left)
            .await
        {
            Ok(m) => got.push((
                nick_of(m.from.as_ref()).unwrap_or("").to_owned(),
                body(&m).unwrap_or("").to_owned(),
            )),
            Err(HarnessError::Timeout { .. }) => return got,
            Err(e) => panic!("{e}"),
        }
    }
}

/// Every room message bob gets within `window` whose text contains one of
/// `markers`, as `(marker index, text)`.
async fn msrp_copies(bob: &mut MsrpUa, markers: &[&str], window: Duration) -> Vec<(usize, String)> {
    let deadline = tokio::time::Instant::now() + window;
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return got;
        }
        match bob.next_message(left).await {
            Ok(r) => {
                if let Some(i) = markers.iter().position(|m| r.text.contains(m)) {
                    got.push((i, r.text));
                }
            }
            Err(_) => return got,
        }
    }
}

/// Waits until `user` has a copy of `marker` from someone else than
/// `own_nick` (the one expected copy), then for `settle` more; returns
/// every copy seen, the MUC's reflection under `own_nick` included.
async fn first_copy_then_settle(
    user: &mut XmppUser,
    marker: &str,
    own_nick: &str,
    settle: Duration,
) -> Vec<(String, String)> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut got = Vec::new();
    while !got.iter().any(|(n, _): &(String, String)| n != own_nick) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let more = xmpp_copies(user, marker, left.min(Duration::from_millis(200))).await;
        got.extend(more);
        assert!(
            !left.is_zero(),
            "{marker:?} never reached the occupant {own_nick:?}; got only {got:?}"
        );
    }
    got.extend(xmpp_copies(user, marker, settle).await);
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_federating_one_room_pass_messages_once_without_a_loop() {
    cpimgate_e2e::init_logging();
    let xmpp = Prosody::start_with(ProsodyOptions::default().hosts(&format!(
        "Component \"{P_COMPONENT}\"\n    component_secret = \"{COMPONENT_SECRET}\""
    )))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    xmpp.register("zoe", HOST_A, "zoe-pw").await.unwrap();
    xmpp.register("yan", HOST_A, "yan-pw").await.unwrap();

    // F, the focus, bridged with its MUC; bob in its room.
    let (f_sip, f_msrp, p_sip) = (
        free_port().unwrap(),
        free_port().unwrap(),
        free_port().unwrap(),
    );
    let focus = SocketAddr::from(([127, 0, 0, 1], f_sip));
    let f = Gateway::start(&focus_config(f_sip, f_msrp, &xmpp), Vec::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for a in ["chat", "xc"] {
        f.wait_connected(a, WAIT)
            .await
            .unwrap_or_else(|e| panic!("F: adapter {a} did not connect: {e}"));
    }
    let mut bob = MsrpUa::join(focus, ROOM, BOB, JoinOptions::default())
        .await
        .unwrap_or_else(|e| panic!("bob joins: {e}"));
    assert_eq!(bob.nickname("Bob").await.unwrap(), 200);
    assert_eq!(bob.subscribe().await.unwrap(), 200);

    // zoe in F's MUC.
    let zoe_muc = format!("room22%{DOMAIN}@{COMPONENT_DOMAIN}");
    let mut zoe = XmppUser::connect(&xmpp, &format!("zoe@{HOST_A}"), "zoe-pw")
        .await
        .unwrap();
    zoe.join_muc(&zoe_muc, "zoe").await.unwrap();

    // P joins F's room and bridges it with its own MUC.
    let proxy = forwarder(focus).await;
    let p = Gateway::start(&participant_config(p_sip, proxy, &xmpp), Vec::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for a in ["chat", "xc"] {
        p.wait_connected(a, WAIT)
            .await
            .unwrap_or_else(|e| panic!("P: adapter {a} did not connect: {e}"));
    }
    let deadline = tokio::time::Instant::now() + WAIT * 2;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let doc = bob
            .next_notify(left)
            .await
            .unwrap_or_else(|e| panic!("P never showed in the room's events: {e}"));
        if doc.contains(&format!("sip:gateway@{P_DOMAIN}")) {
            break;
        }
    }

    // yan in P's MUC: bob, of F's room, is an occupant there.
    let yan_muc = format!("fed%{DOMAIN}@{P_COMPONENT}");
    let mut yan = XmppUser::connect(&xmpp, &format!("yan@{HOST_A}"), "yan-pw")
        .await
        .unwrap();
    yan.join_muc(&yan_muc, "yan").await.unwrap();
    let bob_there = yan
        .expect_presence(
            |p| nick_of(p.from.as_ref()) == Some("Bob") && p.type_ != PresenceType::Unavailable,
            WAIT,
        )
        .await;
    assert!(
        bob_there.is_ok(),
        "Bob is not an occupant for yan: {bob_there:?}"
    );

    let settle = Duration::from_millis(500);

    // zoe → yan (through F, the room and P) and bob, once each.
    let z = "zoe-says-z1";
    zoe.send_groupchat(&zoe_muc, &format!("{z} hello"))
        .await
        .unwrap();
    let at_yan = first_copy_then_settle(&mut yan, z, "yan", settle).await;
    assert_eq!(
        at_yan.len(),
        1,
        "yan got zoe's message {} times: {at_yan:?}",
        at_yan.len()
    );
    // One zoe in yan's room: the room's copy of her message (From her
    // nickname URI) and its roster (her own URI) name one member.
    assert_eq!(at_yan[0].0, "zoe", "zoe shown to yan as {:?}", at_yan[0].0);
    let at_bob = msrp_copies(&mut bob, &[z], settle).await;
    assert_eq!(
        at_bob.len(),
        1,
        "bob got zoe's message {} times: {at_bob:?}",
        at_bob.len()
    );
    let at_zoe = xmpp_copies(&mut zoe, z, Duration::from_millis(100)).await;
    assert!(
        at_zoe.len() <= 1 && at_zoe.iter().all(|(n, _)| n == "zoe"),
        "zoe's message came back to her: {at_zoe:?}"
    );

    // yan → zoe (through P, the room and F) and bob, once each.
    let y = "yan-says-y1";
    yan.send_groupchat(&yan_muc, &format!("{y} hi"))
        .await
        .unwrap();
    let at_zoe = first_copy_then_settle(&mut zoe, y, "zoe", settle).await;
    assert_eq!(
        at_zoe.len(),
        1,
        "zoe got yan's message {} times: {at_zoe:?}",
        at_zoe.len()
    );
    let at_bob = msrp_copies(&mut bob, &[y], settle).await;
    assert_eq!(
        at_bob.len(),
        1,
        "bob got yan's message {} times: {at_bob:?}",
        at_bob.len()
    );
    let at_yan = xmpp_copies(&mut yan, y, Duration::from_millis(100)).await;
    assert!(
        at_yan.len() <= 1 && at_yan.iter().all(|(n, _)| n == "yan"),
        "yan's message came back to him: {at_yan:?}"
    );

    // bob → zoe and yan, once each, and not back to bob.
    let b = "bob-says-b1";
    assert_eq!(bob.send(ROOM, &format!("{b} hey")).await.unwrap(), 200);
    let at_zoe = first_copy_then_settle(&mut zoe, b, "zoe", settle).await;
    assert_eq!(
        at_zoe.len(),
        1,
        "zoe got bob's message {} times: {at_zoe:?}",
        at_zoe.len()
    );
    let at_yan = first_copy_then_settle(&mut yan, b, "yan", settle).await;
    assert_eq!(
        at_yan.len(),
        1,
        "yan got bob's message {} times: {at_yan:?}",
        at_yan.len()
    );

    // A quiet 2 s: no further copy of any of the three, anywhere.
    let markers = [z, y, b];
    // bob listens through the 2 s; whatever reached zoe and yan meanwhile
    // waits for them.
    let later_bob = msrp_copies(&mut bob, &markers, QUIET).await;
    let mut later_zoe = Vec::new();
    let mut later_yan = Vec::new();
    for m in markers {
        later_zoe.extend(xmpp_copies(&mut zoe, m, Duration::from_millis(50)).await);
        later_yan.extend(xmpp_copies(&mut yan, m, Duration::from_millis(50)).await);
    }
    assert!(
        later_bob.is_empty(),
        "loop: bob got more copies: {later_bob:?}"
    );
    assert!(
        later_zoe.is_empty(),
        "loop: zoe got more copies: {later_zoe:?}"
    );
    assert!(
        later_yan.is_empty(),
        "loop: yan got more copies: {later_yan:?}"
    );

    p.shutdown().await.unwrap();
    f.shutdown().await.unwrap();
}
