//! IRC relay mode against a real InspIRCd: the hub runs in this process
//! with the IRC adapter and an embedded test adapter named "sip" standing
//! for another world, bridged `#test` ↔ `sip:room@test.example`; a plain
//! IRC client plays the human user.
//!
//! 1. Messages both ways (with `/me`, formatting, multi-line and over-long
//!    text), joins, nick changes and leaves reach the other world, and
//!    deliveries are confirmed by echo-message.
//! 2. Kill the IRC server, send messages into the bridge, start it again:
//!    all arrive once, in order, after the adapter reconnects and rejoins.
//!
//! If InspIRCd cannot start, these tests fail and say why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use cpimgate_e2e::embedded::{EmbeddedHandle, Seen, embedded_adapter, room_message};
use cpimgate_e2e::gate::Gate;
use cpimgate_e2e::gateway::Gateway;
use cpimgate_e2e::inspircd::{Inspircd, SERVER_NAME, bridge_config};
use cpimgate_e2e::irc_user::{IrcUser, WAIT};
use cpimgate_model::event::RoomEventKind;
use cpimgate_model::port::DeliveryOutcome;
use cpimgate_model::{Message, World};

const SIP_ROOM: &str = "sip:room@test.example";

/// The gateway's config; it connects to the IRC server at `addr`.
fn config(addr: std::net::SocketAddr) -> String {
    bridge_config(
        addr,
        SIP_ROOM,
        "max_lines = 4\nflood_burst = 10\nflood_rate = 50.0\nnetsplit_hold_secs = 2\nreconnect_max_secs = 2",
        "",
    )
}

async fn start() -> (Inspircd, Gate, Gateway, EmbeddedHandle) {
    cpimgate_e2e::init_logging();
    let server = Inspircd::start().await.unwrap_or_else(|e| panic!("{e}"));
    let gate = Gate::new(server.addr()).await.unwrap();
    let (gw, handle) = gateway(&config(gate.addr())).await;
    registered(&gw, &server).await;
    (server, gate, gw, handle)
}

/// The gateway of `config`, with the embedded adapter "sip".
async fn gateway(config: &str) -> (Gateway, EmbeddedHandle) {
    let (sip, handle) = embedded_adapter(World::Sip);
    let gw = Gateway::start(config, vec![("sip".into(), sip)])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (gw, handle)
}

/// Wait until the IRC adapter has registered; fail with the server's log.
async fn registered(gw: &Gateway, server: &Inspircd) {
    gw.wait_connected("irc", WAIT).await.unwrap_or_else(|e| {
        panic!(
            "the IRC adapter did not register: {e}\n{}",
            server.log_tail(30)
        )
    });
}

/// A room message from "Carol" of the other world.
fn from_carol(text: &str) -> Message {
    let mut m = room_message(World::Sip, "sip", SIP_ROOM, "sip:carol@example.com", text).unwrap();
    m.from.display = Some("Carol".into());
    m
}

/// Wait until the gateway's nick is in `#test` (as `alice` sees it).
async fn wait_for_bridge(alice: &mut IrcUser) {
    alice
        .wait_for_member("#test", "bridge", false)
        .await
        .unwrap_or_else(|e| panic!("the gateway never joined #test: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_and_presence_both_ways() {
    let (server, _gate, gw, mut sip) = start().await;
    let mut alice = IrcUser::connect(server.addr(), "alice").await.unwrap();
    wait_for_bridge(&mut alice).await;

    // IRC → other world: formatting removed, the sender's nick as name.
    alice.say("#test", "\x02hello\x02 from irc").await.unwrap();
    let m = sip.expect_text("hello from irc", WAIT).await.unwrap();
    assert_eq!(m.from.display.as_deref(), Some("alice"));
    assert_eq!(
        m.from.address.to_string(),
        format!("irc://{SERVER_NAME}/alice,isnick")
    );
    assert!(m.datetime.is_some(), "server-time fills the date");
    // CTCP ACTION is /me.
    alice.say("#test", "\x01ACTION waves\x01").await.unwrap();
    sip.expect_text("/me waves", WAIT).await.unwrap();

    // Other world → IRC: `<Carol> text`, delivered as confirmed by the echo.
    let outcome = sip.send(from_carol("hi <b>irc</b>")).await.unwrap();
    assert_eq!(outcome, DeliveryOutcome::Accepted, "the hub queued it");
    let l = alice
        .expect_privmsg("#test", |t| t == "<Carol> hi <b>irc</b>")
        .await
        .unwrap();
    assert_eq!(l.source.as_deref(), Some("bridge"));
    let report = sip
        .expect(|s| matches!(s, Seen::Report { .. }), "a report", WAIT)
        .await
        .unwrap();
    assert!(
        matches!(
            report,
            Seen::Report {
                outcome: DeliveryOutcome::Delivered,
                ..
            }
        ),
        "echo-message confirms the delivery: {report:?}"
    );

    // An action, and text that tries to be a command: each line is text.
    sip.send(from_carol("/me dances")).await.unwrap();
    alice
        .expect_privmsg("#test", |t| t == "* Carol dances")
        .await
        .unwrap();
    sip.send(from_carol("one\r\nQUIT :bye\ntwo")).await.unwrap();
    for want in ["<Carol> one", "<Carol> QUIT :bye", "<Carol> two"] {
        alice.expect_privmsg("#test", |t| t == want).await.unwrap();
    }
    // Beyond max_lines (4): three lines and a note.
    sip.send(from_carol("1\n2\n3\n4\n5\n6")).await.unwrap();
    for want in [
        "<Carol> 1",
        "<Carol> 2",
        "<Carol> 3",
        "[3 more lines from Carol not shown]",
    ] {
        alice.expect_privmsg("#test", |t| t == want).await.unwrap();
    }
    // An over-long line arrives whole, split at word boundaries.
    let long: String = (0..200).map(|i| format!("w{i} ")).collect();
    sip.send(from_carol(long.trim_end())).await.unwrap();
    let mut words = Vec::new();
    while words.len() < 200 {
        let l = alice
            .expect_privmsg("#test", |t| t.starts_with("<Carol> w"))
            .await
            .unwrap();
        assert!(l.raw.len() + 2 <= 512, "a line of {} bytes", l.raw.len());
        words.extend(
            l.param(1)
                .trim_start_matches("<Carol> ")
                .split(' ')
                .map(str::to_owned),
        );
    }
    let expected: Vec<String> = (0..200).map(|i| format!("w{i}")).collect();
    assert_eq!(words, expected);

    // Presence: a join, a nick change and a part reach the other world.
    sip.clear();
    let mut bob = IrcUser::connect(server.addr(), "bob").await.unwrap();
    bob.join("#test").await.unwrap();
    let ev = sip
        .expect(|s| matches!(s, Seen::Event(e) if matches!(&e.kind, RoomEventKind::Join { who } if who.nick == "bob")), "bob's join", WAIT)
        .await;
    assert!(ev.is_ok(), "bob's join: {ev:?}");
    bob.send("NICK bobby").await.unwrap();
    let ev = sip
        .expect(|s| matches!(s, Seen::Event(e) if matches!(&e.kind, RoomEventKind::NickChange { who, new_nick } if who.nick == "bob" && new_nick == "bobby")), "bob's nick change", WAIT)
        .await;
    assert!(ev.is_ok(), "bob's nick change: {ev:?}");
    bob.send("PART #test :later").await.unwrap();
    let ev = sip
        .expect(|s| matches!(s, Seen::Event(e) if matches!(&e.kind, RoomEventKind::Leave { who, reason } if who.nick == "bobby" && reason.as_deref() == Some("later"))), "bob's part", WAIT)
        .await;
    assert!(ev.is_ok(), "bob's part: {ev:?}");

    // A private message to the gateway is answered with a notice, not relayed.
    alice.say("bridge", "psst").await.unwrap();
    let n = alice
        .expect("a notice from the gateway", |l| {
            l.command == "NOTICE" && l.source.as_deref() == Some("bridge")
        })
        .await
        .unwrap();
    assert!(n.param(1).contains("not relayed"), "{n:?}");
    sip.expect_none(
        |s| matches!(s, Seen::Deliver(m) if m.body.as_text() == Some("psst")),
        Duration::from_millis(500),
    )
    .await
    .unwrap();

    // A CTCP query in the channel is answered by the gateway (Modern IRC
    // CTCP) and never relayed.
    alice.say("#test", "\x01VERSION\x01").await.unwrap();
    let v = alice
        .expect("the gateway's VERSION reply", |l| {
            l.command == "NOTICE"
                && l.source.as_deref() == Some("bridge")
                && l.param(1).starts_with("\x01VERSION cpimgate ")
        })
        .await;
    assert!(v.is_ok(), "{v:?}");
    alice.say("#test", "after the query").await.unwrap();
    sip.expect_text("after the query", WAIT).await.unwrap();
    sip.expect_none(
        |s| matches!(s, Seen::Deliver(m) if m.body.as_text().is_some_and(|t| t.contains("VERSION"))),
        Duration::from_millis(100),
    )
    .await
    .unwrap();
    gw.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_sent_while_the_server_is_down_arrive_once_in_order() {
    let (mut server, gate, gw, sip) = start().await;
    let mut alice = IrcUser::connect(server.addr(), "alice").await.unwrap();
    wait_for_bridge(&mut alice).await;
    sip.send(from_carol("before")).await.unwrap();
    alice
        .expect_privmsg("#test", |t| t == "<Carol> before")
        .await
        .unwrap();

    // The gateway stays away until alice is back in the channel.
    gate.set_open(false);
    server.kill().await;
    for i in 0..100 {
        let outcome = sip.send(from_carol(&format!("m{i}"))).await.unwrap();
        assert_eq!(outcome, DeliveryOutcome::Accepted, "m{i} was not queued");
    }
    server
        .start_again()
        .await
        .unwrap_or_else(|e| panic!("restarting inspircd: {e}"));
    let mut alice = IrcUser::connect(server.addr(), "alice").await.unwrap();
    alice.join("#test").await.unwrap();
    gate.set_open(true);
    let mut got = Vec::new();
    while got.len() < 100 {
        let l = alice
            .expect_privmsg("#test", |t| t.starts_with("<Carol> m"))
            .await
            .unwrap_or_else(|e| panic!("after {} messages: {e}", got.len()));
        got.push(l.param(1).trim_start_matches("<Carol> ").to_owned());
    }
    let expected: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
    assert_eq!(got, expected, "all 100, once, in order");
    // Nothing more: no duplicates.
    let extra = tokio::time::timeout(
        Duration::from_millis(700),
        alice.expect_privmsg("#test", |t| t.starts_with("<Carol> m")),
    )
    .await;
    assert!(extra.is_err(), "a duplicate arrived: {extra:?}");
    gw.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_certificate_checks() {
    cpimgate_e2e::init_logging();
    let server = Inspircd::start_tls()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], server.tls_port().unwrap()));
    let irc = |ca: &str| bridge_config(addr, SIP_ROOM, &format!("tls = true\n{ca}"), "");
    // Trusting the test CA: registered over TLS, messages flow.
    let ca = format!("ca_file = \"{}\"", server.ca_cert_path().display());
    let (gw, mut handle) = gateway(&irc(&ca)).await;
    registered(&gw, &server).await;
    let mut alice = IrcUser::connect(server.addr(), "alice").await.unwrap();
    wait_for_bridge(&mut alice).await;
    alice.say("#test", "over tls").await.unwrap();
    handle.expect_text("over tls", WAIT).await.unwrap();
    gw.shutdown().await.unwrap();

    // Without the CA the certificate does not verify: never connected.
    let (gw, _handle) = gateway(&irc("")).await;
    let connected = gw.wait_connected("irc", Duration::from_secs(3)).await;
    assert!(
        connected.is_err(),
        "connected to a server whose certificate no trusted CA signed"
    );
    gw.shutdown().await.unwrap();
}

/// ngIRCd speaks no IRCv3 beyond multi-prefix: no echo-message, so a
/// delivery is "accepted" (the server took it) rather than "delivered";
/// no server-time, so the gateway dates messages itself. Messages flow
/// both ways all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_ircv3() {
    cpimgate_e2e::init_logging();
    let server = Inspircd::start_ngircd()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (gw, mut handle) = gateway(&config(server.addr())).await;
    registered(&gw, &server).await;
    let mut alice = IrcUser::connect(server.addr(), "alice").await.unwrap();
    wait_for_bridge(&mut alice).await;
    alice.say("#test", "plain irc").await.unwrap();
    let m = handle.expect_text("plain irc", WAIT).await.unwrap();
    assert!(m.datetime.is_some());
    handle.send(from_carol("to plain irc")).await.unwrap();
    alice
        .expect_privmsg("#test", |t| t == "<Carol> to plain irc")
        .await
        .unwrap();
    let report = handle
        .expect(|s| matches!(s, Seen::Report { .. }), "a report", WAIT)
        .await
        .unwrap();
    assert!(
        matches!(
            report,
            Seen::Report {
                outcome: DeliveryOutcome::Accepted,
                ..
            }
        ),
        "without echo-message the server's acceptance is all there is: {report:?}"
    );
    gw.shutdown().await.unwrap();
}

/// SASL PLAIN against real services (InspIRCd linked with Atheme): with
/// the account's password the gateway registers logged in; with a wrong
/// one it never registers (it does not go on unauthenticated).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_plain_against_atheme() {
    cpimgate_e2e::init_logging();
    let server = Inspircd::start_with_services()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // An account, registered the way a person does it.
    let mut owner = IrcUser::connect(server.addr(), "gwacct").await.unwrap();
    owner
        .say("NickServ", "REGISTER acct-pw-1 gwacct@example.com")
        .await
        .unwrap();
    owner
        .expect("NickServ's confirmation", |l| {
            l.command == "NOTICE" && l.param(1).contains("is now registered")
        })
        .await
        .unwrap();
    owner.send("QUIT").await.unwrap();

    let with = |password: &str| {
        bridge_config(
            server.addr(),
            SIP_ROOM,
            &format!(
                "sasl = {{ mechanism = \"plain\", user = \"gwacct\", password = \"{password}\" }}"
            ),
            "",
        )
    };
    let (gw, _h) = gateway(&with("acct-pw-1")).await;
    registered(&gw, &server).await;
    // The server says the gateway is logged in (WHOIS 330).
    let mut alice = IrcUser::connect(server.addr(), "alice").await.unwrap();
    alice.send("WHOIS bridge").await.unwrap();
    let l = alice
        .expect("WHOIS 330 (logged in as)", |l| {
            l.command == "330" || l.command == "318"
        })
        .await
        .unwrap();
    assert_eq!(l.command, "330", "the gateway is not logged in: {l:?}");
    assert_eq!(l.param(2), "gwacct");
    gw.shutdown().await.unwrap();

    let (gw, _h) = gateway(&with("wrong")).await;
    let connected = gw.wait_connected("irc", Duration::from_secs(3)).await;
    assert!(connected.is_err(), "registered with a wrong SASL password");
    gw.shutdown().await.unwrap();
}

/// SASL EXTERNAL against real services: over TLS, with a client
/// certificate whose fingerprint NickServ has on the account, the gateway
/// registers logged in; with a certificate NickServ does not know it
/// never registers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_external_against_atheme() {
    cpimgate_e2e::init_logging();
    let server = Inspircd::start_tls_with_services()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let known = server.client_certificate("gw-known").await.unwrap();
    let unknown = server.client_certificate("gw-unknown").await.unwrap();
    // The account, with the known certificate's fingerprint on it.
    let mut owner = IrcUser::connect(server.addr(), "gwacct").await.unwrap();
    owner
        .say("NickServ", "REGISTER acct-pw-2 gwacct@example.com")
        .await
        .unwrap();
    owner
        .expect("NickServ's confirmation", |l| {
            l.command == "NOTICE" && l.param(1).contains("is now registered")
        })
        .await
        .unwrap();
    owner
        .say("NickServ", &format!("CERT ADD {}", known.fingerprint))
        .await
        .unwrap();
    owner
        .expect("NickServ adding the fingerprint", |l| {
            l.command == "NOTICE" && l.param(1).contains(&known.fingerprint)
        })
        .await
        .unwrap();
    owner.send("QUIT").await.unwrap();

    let tls_addr = std::net::SocketAddr::from(([127, 0, 0, 1], server.tls_port().unwrap()));
    let with = |cert: &cpimgate_e2e::inspircd::ClientCertificate| {
        bridge_config(
            tls_addr,
            SIP_ROOM,
            &format!(
                "tls = true\nca_file = \"{}\"\nsasl = {{ mechanism = \"external\", cert_file = \"{}\", key_file = \"{}\" }}",
                server.ca_cert_path().display(),
                cert.cert_file.display(),
                cert.key_file.display()
            ),
            "",
        )
    };
    let (gw, _h) = gateway(&with(&known)).await;
    registered(&gw, &server).await;
    let mut alice = IrcUser::connect(server.addr(), "alice").await.unwrap();
    alice.send("WHOIS bridge").await.unwrap();
    let l = alice
        .expect("WHOIS 330 (logged in as)", |l| {
            l.command == "330" || l.command == "318"
        })
        .await
        .unwrap();
    assert_eq!(l.command, "330", "the gateway is not logged in: {l:?}");
    assert_eq!(l.param(2), "gwacct");
    gw.shutdown().await.unwrap();

    let (gw, _h) = gateway(&with(&unknown)).await;
    let connected = gw.wait_connected("irc", Duration::from_secs(3)).await;
    assert!(
        connected.is_err(),
        "registered with a certificate NickServ does not know"
    );
    gw.shutdown().await.unwrap();
}
