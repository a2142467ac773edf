//! RFC 3263 server location through the gateway, against real peers: an
//! XMPP user of a private Prosody writes to SIP addresses whose domains
//! only a private dnsmasq knows; the gateway (in this process, SIP on UDP
//! and TCP, XMPP as a component) asks dnsmasq and sends to sipp as a UAS.
//!
//! 1. NAPTR → SRV → A: `sip:bob@sip.test` reaches sipp on the port its SRV
//!    record gives, and the user's receipt request is answered after
//!    sipp's 200.
//! 2. Failover (§4.3): the NAPTR records prefer UDP, whose only SRV target
//!    never answers (timer F), then TCP, whose first SRV priority is a
//!    closed port (connection refused); every message still reaches sipp
//!    at the TCP target of the second priority, in order.
//! 3. An outbound proxy named by SRV records only (no NAPTR): the first
//!    answers 503, the MESSAGE goes to the second, with the Request-URI
//!    unchanged and a Route naming the proxy.
//! 4. A registrar named by SRV records (Kamailio): the REGISTER of an
//!    XMPP user's address of record gets past a refused connection to
//!    the registrar's next server.
//! 5. A name DNS does not know: the user gets an error stanza
//!    (item-not-found) that says no SIP server was found for it.
//!
//! If Prosody, dnsmasq, sipp or Kamailio cannot start, these tests fail and
//! say why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use cpimgate_e2e::dnsmasq::{Dnsmasq, Zone};
use cpimgate_e2e::gateway::Gateway;
use cpimgate_e2e::kamailio::{Kamailio, Registrar};
use cpimgate_e2e::prosody::{COMPONENT_DOMAIN, COMPONENT_SECRET, HOST_A, Prosody, free_port};
use cpimgate_e2e::sipp::{Sipp, SippTransport};
use cpimgate_e2e::xmpp_user::{WAIT, XmppUser};
use cpimgate_model::address::Address;
use tokio::net::UdpSocket;
use tokio_xmpp::parsers::message::{Lang, Message as XMessage, MessageType};
use tokio_xmpp::parsers::minidom::Element;
use tokio_xmpp::parsers::stanza_error::{DefinedCondition, StanzaError};

/// The gateway's SIP domain (sipp's scenario checks the From).
const SIP_DOMAIN: &str = "sip.gw.localhost";
const USER: &str = "user";
const PASSWORD: &str = "user-password";
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

struct Setup {
    prosody: Prosody,
    gw: Gateway,
    user: XmppUser,
    dns: Dnsmasq,
}

/// dnsmasq with `zone`, Prosody with a user, and the gateway asking that
/// dnsmasq, with `extra` lines in its SIP section.
async fn setup(zone: &Zone, extra: &str) -> Setup {
    setup_on(zone, free_port().unwrap(), extra).await
}

/// [`setup`] with the gateway's SIP on `sip_port` (UDP and TCP).
async fn setup_on(zone: &Zone, sip_port: u16, extra: &str) -> Setup {
    cpimgate_e2e::init_logging();
    let dns = Dnsmasq::start(zone)
        .await
        .unwrap_or_else(|e| panic!("dnsmasq must start: {e}"));
    let prosody = Prosody::start()
        .await
        .unwrap_or_else(|e| panic!("Prosody must start: {e}"));
    prosody
        .register(USER, HOST_A, PASSWORD)
        .await
        .expect("registering the XMPP user");
    let toml = format!(
        r#"
        [gateway]
        name = "gw-sip-dns"
        domains = ["{SIP_DOMAIN}"]
        [queue]
        retry_base_ms = 20
        retry_max_ms = 200
        [adapters.xmpp]
        kind = "xmpp"
        mode = "component"
        domain = "{COMPONENT_DOMAIN}"
        secret = "{COMPONENT_SECRET}"
        server = "{component}"
        receipt_wait = 0
        [adapters.sip]
        kind = "sip"
        domains = ["{SIP_DOMAIN}"]
        udp = ["127.0.0.1:{sip_port}"]
        tcp = ["127.0.0.1:{sip_port}"]
        dns_servers = ["{dns}"]
        {extra}
        [[route]]
        domain = "{HOST_A}"
        adapter = "xmpp"
        [[route]]
        scheme = "sip"
        domain = "*.test"
        adapter = "sip"
        "#,
        component = prosody.component_addr(),
        dns = dns.addr(),
    );
    let gw = Gateway::start(&toml, Vec::new())
        .await
        .unwrap_or_else(|e| panic!("the gateway must start: {e}"));
    gw.wait_connected("sip", WAIT)
        .await
        .expect("the SIP adapter listens");
    if let Err(e) = gw.wait_connected("xmpp", WAIT).await {
        panic!("{e}; prosody log:\n{}", prosody.log_tail(30));
    }
    let user = XmppUser::connect(&prosody, &format!("{USER}@{HOST_A}"), PASSWORD)
        .await
        .expect("the XMPP user logs in");
    Setup {
        prosody,
        gw,
        user,
        dns,
    }
}

/// The component JID that stands for a SIP address.
fn jid_of(sip: &str) -> String {
    sip.parse::<Address>()
        .unwrap()
        .to_component_jid(COMPONENT_DOMAIN)
        .unwrap()
        .to_string()
}

/// A chat with a receipt request (XEP-0184 §5.1).
fn chat_with_receipt_request(to: &str, text: &str) -> XMessage {
    let mut m = XMessage::chat(Some(to.parse().unwrap())).with_body(Lang::new(), text.into());
    m.payloads
        .push(Element::builder("request", "urn:xmpp:receipts").build());
    m
}

/// Whether `m` is a receipt for the message with `id`.
fn is_receipt_for(m: &XMessage, id: &str) -> bool {
    m.payloads
        .iter()
        .any(|p| p.is("received", "urn:xmpp:receipts") && p.attr("id").is_none_or(|i| i == id))
}

/// sipp as a UAS on `port`, for `calls` MESSAGEs, logging them.
async fn uas(transport: SippTransport, port: u16, calls: u32) -> Sipp {
    let mut uas = Sipp::uas("message_uas.xml", transport, port, calls, &["-trace_msg"]).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !uas.has_exited(),
        "sipp as a UAS on port {port} exited at once"
    );
    uas
}

#[tokio::test]
async fn a_domain_is_located_by_naptr_srv_and_a_records() {
    let port = free_port().unwrap();
    let zone = Zone::new("test")
        .naptr("sip.test", 10, 50, "s", "SIP+D2U", "_sip._udp.sip.test")
        .srv("_sip._udp.sip.test", "uas.sip.test", port, 10, 1)
        .host("uas.sip.test", LOCALHOST);
    let mut s = setup(&zone, "").await;
    let sipp = uas(SippTransport::Udp, port, 1).await;
    let id = s
        .user
        .send_message(chat_with_receipt_request(
            &jid_of("sip:bob@sip.test"),
            "hello sipp from xmpp, by name",
        ))
        .await
        .unwrap();
    s.user
        .expect_message(|m| is_receipt_for(m, &id), WAIT)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "no receipt, so no 200 from sipp: {e}\ndnsmasq log:\n{}",
                s.dns.log_tail(30)
            )
        });
    let log = sipp
        .finish_with_messages(Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("sipp got the MESSAGE it expects: {e}"));
    assert!(
        log.contains("MESSAGE sip:bob@sip.test SIP/2.0"),
        "the Request-URI keeps the name (RFC 3263 §4: the URI is not rewritten):\n{log}"
    );
    // The path of §4.1 and §4.2, in dnsmasq's own words.
    let dns_log = s.dns.log_tail(200);
    for query in [
        "query[NAPTR] sip.test",
        "query[SRV] _sip._udp.sip.test",
        "query[A] uas.sip.test",
    ] {
        assert!(dns_log.contains(query), "{query} asked:\n{dns_log}");
    }
    s.gw.shutdown().await.unwrap();
    drop(s.prosody);
}

#[tokio::test]
async fn the_next_server_is_tried_after_a_timeout_and_a_refused_connection() {
    let live = free_port().unwrap();
    // Never bound: connecting is refused.
    let closed = free_port().unwrap();
    // Bound and never read: a UDP server that does not answer.
    let silent = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let zone = Zone::new("test")
        .naptr(
            "failover.test",
            10,
            50,
            "s",
            "SIP+D2U",
            "_sip._udp.failover.test",
        )
        .naptr(
            "failover.test",
            20,
            50,
            "s",
            "SIP+D2T",
            "_sip._tcp.failover.test",
        )
        .srv(
            "_sip._udp.failover.test",
            "silent.failover.test",
            silent_port,
            10,
            1,
        )
        .srv(
            "_sip._tcp.failover.test",
            "closed.failover.test",
            closed,
            10,
            1,
        )
        .srv("_sip._tcp.failover.test", "live.failover.test", live, 20, 1)
        .host("silent.failover.test", LOCALHOST)
        .host("closed.failover.test", LOCALHOST)
        .host("live.failover.test", LOCALHOST);
    // A short T1, so that timer F (64*T1) fires after 1.6 s.
    let mut s = setup(&zone, "t1_ms = 25\n        t2_ms = 400").await;
    const N: usize = 3;
    let sipp = uas(SippTransport::Tcp, live, N as u32).await;
    let jid = jid_of("sip:bob@failover.test");
    let mut ids = Vec::new();
    for n in 1..=N {
        let text = format!("hello sipp from xmpp #{n}");
        ids.push(
            s.user
                .send_message(chat_with_receipt_request(&jid, &text))
                .await
                .unwrap(),
        );
    }
    for id in &ids {
        s.user
            .expect_message(|m| is_receipt_for(m, id), WAIT)
            .await
            .unwrap_or_else(|e| panic!("no receipt for {id}, so no 200 from sipp: {e}"));
    }
    assert!(
        !s.user.mailbox().iter().any(
            |st| matches!(st, tokio_xmpp::Stanza::Message(m) if m.type_ == MessageType::Error)
        ),
        "no error on the way: {:?}",
        s.user.mailbox()
    );
    let log = sipp
        .finish_with_messages(Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("sipp got every MESSAGE: {e}"));
    let got: Vec<&str> = log
        .match_indices("hello sipp from xmpp #")
        .map(|(i, m)| &log[i + m.len()..i + m.len() + 1])
        .collect();
    assert_eq!(got, ["1", "2", "3"], "each once, in order:\n{log}");
    drop(silent);
    s.gw.shutdown().await.unwrap();
    drop(s.prosody);
}

#[tokio::test]
async fn an_outbound_proxy_named_in_dns_and_a_503_from_the_first() {
    let (first, second) = (free_port().unwrap(), free_port().unwrap());
    // No NAPTR: the SRV names of the gateway's transports are asked.
    let zone = Zone::new("test")
        .srv("_sip._udp.proxy.test", "p1.proxy.test", first, 10, 1)
        .srv("_sip._udp.proxy.test", "p2.proxy.test", second, 20, 1)
        .host("p1.proxy.test", LOCALHOST)
        .host("p2.proxy.test", LOCALHOST);
    let mut s = setup(&zone, "outbound_proxy = \"sip:proxy.test\"").await;
    let out_of_service =
        Sipp::uas("message_uas_503.xml", SippTransport::Udp, first, 1, &[]).unwrap();
    let sipp = uas(SippTransport::Udp, second, 1).await;
    // The Request-URI's domain has no records: only the proxy is located.
    let id = s
        .user
        .send_message(chat_with_receipt_request(
            &jid_of("sip:bob@elsewhere.test"),
            "hello sipp from xmpp, through the proxy",
        ))
        .await
        .unwrap();
    s.user
        .expect_message(|m| is_receipt_for(m, &id), WAIT)
        .await
        .unwrap_or_else(|e| panic!("no receipt, so no 200 from the second proxy: {e}"));
    out_of_service
        .finish(Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("the first proxy got the MESSAGE and said 503: {e}"));
    let log = sipp
        .finish_with_messages(Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("the second proxy got the MESSAGE: {e}"));
    assert!(
        log.contains("MESSAGE sip:bob@elsewhere.test SIP/2.0")
            && log.contains("Route: <sip:proxy.test;lr>"),
        "the Request-URI unchanged, the proxy in a Route:\n{log}"
    );
    s.gw.shutdown().await.unwrap();
    drop(s.prosody);
}

#[tokio::test]
async fn the_registrar_is_located_by_srv_records_too() {
    const AOR: &str = "sip:user@reg.localhost";
    let sip_port = free_port().unwrap();
    let registrar = Registrar {
        domain: "reg.localhost".into(),
        user: "user".into(),
        password: "reg-secret".into(),
    };
    let kamailio = Kamailio::start_registrar(
        SIP_DOMAIN,
        SocketAddr::from((Ipv4Addr::LOCALHOST, sip_port)),
        registrar,
    )
    .await
    .unwrap_or_else(|e| panic!("Kamailio as a registrar must start: {e}"));
    // No NAPTR: "_sip._tcp" comes first in the gateway's order, and its
    // only server refuses connections; "_sip._udp" names Kamailio.
    let closed = free_port().unwrap();
    let zone = Zone::new("test")
        .srv(
            "_sip._tcp.registrar.test",
            "down.registrar.test",
            closed,
            10,
            1,
        )
        .srv(
            "_sip._udp.registrar.test",
            "kamailio.registrar.test",
            kamailio.addr().port(),
            10,
            1,
        )
        .host("down.registrar.test", LOCALHOST)
        .host("kamailio.registrar.test", LOCALHOST);
    let extra = format!(
        r#"[[adapters.sip.register]]
        aor = "{AOR}"
        address = "{USER}@{HOST_A}"
        registrar = "sip:registrar.test"
        credentials = {{ user = "user", password = "reg-secret" }}"#
    );
    let s = setup_on(&zone, sip_port, &extra).await;
    let saved = format!("saved {AOR} <sip:{USER}%40{HOST_A}@127.0.0.1:{sip_port}");
    if let Err(e) = kamailio.wait_log(&saved, 1, WAIT).await {
        panic!(
            "the gateway registers at the registrar DNS names: {e}\ndnsmasq log:\n{}",
            s.dns.log_tail(30)
        );
    }
    s.gw.shutdown().await.unwrap();
    drop(s.prosody);
}

#[tokio::test]
async fn a_domain_without_records_fails_with_a_reason() {
    let zone = Zone::new("test");
    let mut s = setup(&zone, "").await;
    let jid = jid_of("sip:bob@nobody.test");
    let id = s.user.send_chat(&jid, "anyone there?").await.unwrap();
    let m = s
        .user
        .expect_message(
            |m| m.type_ == MessageType::Error && m.id.as_ref().is_some_and(|i| i.0 == id),
            WAIT,
        )
        .await
        .unwrap_or_else(|e| panic!("an error for the unknown domain: {e}"));
    assert_eq!(
        m.from.as_ref().map(ToString::to_string).as_deref(),
        Some(jid.as_str()),
        "from the JID written to"
    );
    let e = m
        .payloads
        .iter()
        .find(|p| p.name() == "error")
        .and_then(|p| StanzaError::try_from(p.clone()).ok())
        .unwrap_or_else(|| panic!("an <error/>: {m:?}"));
    assert_eq!(e.defined_condition, DefinedCondition::ItemNotFound);
    let text = e.texts.values().cloned().collect::<Vec<_>>().join(" ");
    assert!(
        text.contains("nobody.test") && text.contains("no SIP server found"),
        "the reason: {text:?}"
    );
    s.gw.shutdown().await.unwrap();
    drop(s.prosody);
}
