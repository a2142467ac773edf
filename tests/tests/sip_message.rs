//! SIP pager mode (RFC 3428) through the gateway, against real peers: the
//! hub runs in this process with the SIP adapter (on UDP and TCP) and the
//! XMPP adapter as a component of a private Prosody.
//!
//! 1. sipp as a UAC sends MESSAGEs to `sip:user%40a.localhost@sip.gw.localhost`
//!    over UDP, then over TCP: each gets 202 without Contact, and the XMPP
//!    user gets them, in order, from the component JID of the SIP sender.
//! 2. The XMPP user writes to the component JID of a SIP address where
//!    sipp waits as a UAS (UDP, then TCP): sipp gets a MESSAGE with the
//!    text, From the user's gateway address and no Contact; the user's
//!    XEP-0184 request is answered only after sipp's 200.
//! 3. Bad input from a raw UDP socket gets its status: 415 with Accept,
//!    413, 405 with Allow, 483, 404 with a reason, 400 with a reason, 403
//!    for a spoofed CPIM From, 200 to OPTIONS; a retransmission gets the
//!    same 202 and is delivered once.
//!
//! 4. With `authenticate = true`, sipp answers the gateway's 401 with
//!    digest credentials and gets 202 (RFC 3261 §22.2).
//! 5. sipp → gateway → a nick on InspIRCd (relay mode, PRIVMSG), then
//!    the same through Kamailio.
//! 6. Kamailio in front of the gateway: sipp → Kamailio → gateway → XMPP
//!    user, and XMPP user → gateway → Kamailio (the outbound proxy, named
//!    in a Route) → sipp as a UAS; sipp over UDP, then TCP.
//! 7. The same with TLS between Kamailio and the gateway, both ways and
//!    mutual (the gateway checks client certificates by default); sipp,
//!    built without TLS in Debian, stays on UDP.
//! 8. Kamailio as the registrar: the gateway registers an address of
//!    record for the XMPP user (digest challenge, refreshes), sipp reaches
//!    the user there, the user's messages leave From it, and the binding
//!    is removed when the gateway stops.
//!
//! If Prosody, InspIRCd, sipp or Kamailio cannot start, these tests fail and say why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use cpimgate_e2e::gateway::Gateway;
use cpimgate_e2e::inspircd::{Inspircd, SERVER_NAME as IRC_NETWORK};
use cpimgate_e2e::irc_user::IrcUser;
use cpimgate_e2e::kamailio::{Kamailio, Registrar};
use cpimgate_e2e::prosody::{COMPONENT_DOMAIN, COMPONENT_SECRET, HOST_A, Prosody, free_port};
use cpimgate_e2e::sipp::{Sipp, SippTransport};
use cpimgate_e2e::xmpp_user::{WAIT, XmppUser, body};
use cpimgate_model::address::Address;
use tokio::net::UdpSocket;
use tokio_xmpp::parsers::message::{Lang, Message as XMessage};
use tokio_xmpp::parsers::minidom::Element;

const SIP_DOMAIN: &str = "sip.gw.localhost";
const USER: &str = "user";
const PASSWORD: &str = "user-password";

struct Setup {
    prosody: Prosody,
    gw: Gateway,
    user: XmppUser,
    /// The gateway's SIP port, UDP and TCP.
    sip_port: u16,
}

async fn setup() -> Setup {
    setup_with(free_port().unwrap(), "").await
}

/// The gateway on `sip_port`, with `extra` lines in its SIP section.
async fn setup_with(sip_port: u16, extra: &str) -> Setup {
    cpimgate_e2e::init_logging();
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
        name = "gw-sip"
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
        max_message_size = 1000
        {extra}
        [[route]]
        domain = "{HOST_A}"
        adapter = "xmpp"
        [[route]]
        scheme = "sip"
        domain = "127.0.0.1"
        adapter = "sip"
        "#,
        component = prosody.component_addr(),
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
        sip_port,
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

fn from_of(m: &XMessage) -> String {
    m.from.as_ref().map(|j| j.to_string()).unwrap_or_default()
}

#[tokio::test]
async fn sipp_messages_reach_an_xmpp_user_over_udp_and_tcp() {
    let mut s = setup().await;
    let sender = jid_of("sip:sipp@127.0.0.1");
    let target = format!("127.0.0.1:{}", s.sip_port);
    let service = format!("{USER}%40{HOST_A}");
    for transport in [SippTransport::Udp, SippTransport::Tcp] {
        let sipp = Sipp::uac(
            "message_uac.xml",
            transport,
            &target,
            5,
            &["-s", &service, "-key", "domain", SIP_DOMAIN],
        )
        .unwrap();
        sipp.finish(Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("sipp over {transport:?} got 202 for every MESSAGE: {e}"));
        let mut got = Vec::new();
        for _ in 0..5 {
            let m = s
                .user
                .expect_message(
                    |m| body(m).is_some_and(|b| b.trim_end().ends_with("from sipp.")),
                    WAIT,
                )
                .await
                .unwrap_or_else(|e| panic!("over {transport:?}, after {got:?}: {e}"));
            assert_eq!(
                from_of(&m),
                sender,
                "the chat comes from the SIP sender's JID"
            );
            // sipp ends its body with a line break.
            got.push(body(&m).unwrap_or_default().trim_end().to_owned());
        }
        let want: Vec<String> = (1..=5).map(|n| format!("Message {n} from sipp.")).collect();
        assert_eq!(got, want, "over {transport:?}, in order");
        s.user.clear();
    }
    s.gw.shutdown().await.unwrap();
    drop(s.prosody);
}

/// A chat with a receipt request (XEP-0184 §5.1).
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

#[tokio::test]
async fn an_xmpp_user_reaches_sipp_and_the_receipt_waits_for_200() {
    let mut s = setup().await;
    for transport in [SippTransport::Udp, SippTransport::Tcp] {
        let port = free_port().unwrap();
        // sipp answers 200 two seconds after the MESSAGE arrives.
        let mut uas = Sipp::uas("message_uas.xml", transport, port, 1, &["-d", "2000"]).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !uas.has_exited(),
            "sipp as a UAS on port {port} exited at once"
        );
        let sip = format!(
            "sip:bob@127.0.0.1:{port};transport={}",
            transport.uri_param()
        );
        let jid = jid_of(&sip);
        s.user
            .send_message(chat_with_receipt_request(&jid, "hello sipp from xmpp"))
            .await
            .unwrap();
        // No receipt while sipp holds its 200 back...
        s.user
            .expect_no_message(is_receipt, Duration::from_millis(1200))
            .await
            .unwrap_or_else(|e| panic!("over {transport:?}, a receipt before sipp's 200: {e}"));
        // ...then one, from the JID written to.
        let receipt = s
            .user
            .expect_message(is_receipt, WAIT)
            .await
            .unwrap_or_else(|e| panic!("over {transport:?}, no receipt after sipp's 200: {e}"));
        assert_eq!(from_of(&receipt), jid);
        uas.finish(Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("sipp over {transport:?} got the MESSAGE it expects: {e}"));
    }
    s.gw.shutdown().await.unwrap();
    drop(s.prosody);
}

/// A raw SIP client on UDP.
struct Raw {
    sock: UdpSocket,
    gw: SocketAddr,
    n: u32,
}

impl Raw {
    async fn new(port: u16) -> Raw {
        Raw {
            sock: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            gw: format!("127.0.0.1:{port}").parse().unwrap(),
            n: 0,
        }
    }

    /// A request with a fresh branch, Call-ID and From tag.
    fn request(&mut self, method: &str, uri: &str, extra: &str, body: &str) -> String {
        self.n += 1;
        let n = self.n;
        let local = self.sock.local_addr().unwrap();
        format!(
            "{method} {uri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bKraw{n};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:raw@127.0.0.1>;tag=raw{n}\r\n\
             To: <{uri}>\r\n\
             Call-ID: raw{n}@127.0.0.1\r\n\
             CSeq: 1 {method}\r\n\
             {extra}\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    /// Sends `request` and gives the first final response.
    async fn ask(&self, request: &str) -> String {
        self.sock
            .send_to(request.as_bytes(), self.gw)
            .await
            .unwrap();
        let mut buf = vec![0; 65_536];
        loop {
            let (n, _) = tokio::time::timeout(WAIT, self.sock.recv_from(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("no answer to:\n{request}"))
                .unwrap();
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if !text.starts_with("SIP/2.0 1") {
                return text;
            }
        }
    }
}

fn status(response: &str) -> u16 {
    response
        .get(8..11)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a response: {response}"))
}

fn has_header(response: &str, prefix: &str) -> bool {
    response.lines().any(|l| l.starts_with(prefix))
}

#[tokio::test]
async fn bad_input_gets_its_status_from_a_raw_socket() {
    let mut s = setup().await;
    let mut raw = Raw::new(s.sip_port).await;
    let to_user = format!("sip:{USER}%40{HOST_A}@{SIP_DOMAIN}");
    let text = "Content-Type: text/plain\r\n";

    let r = raw.request(
        "MESSAGE",
        &to_user,
        "Content-Type: application/pdf\r\n",
        "%PDF",
    );
    let a = raw.ask(&r).await;
    assert_eq!(status(&a), 415, "{a}");
    assert!(
        has_header(&a, "Accept: text/plain"),
        "415 names what it takes: {a}"
    );

    let r = raw.request("MESSAGE", &to_user, text, &"x".repeat(1001));
    let a = raw.ask(&r).await;
    assert_eq!(status(&a), 413, "{a}");

    let r = raw.request("SUBSCRIBE", &to_user, "Event: presence\r\n", "");
    let a = raw.ask(&r).await;
    assert_eq!(status(&a), 405, "{a}");
    assert!(has_header(&a, "Allow: MESSAGE, OPTIONS"), "{a}");

    let r = raw
        .request("MESSAGE", &to_user, text, "hi")
        .replace("Max-Forwards: 70", "Max-Forwards: 0");
    let a = raw.ask(&r).await;
    assert_eq!(status(&a), 483, "{a}");

    let nowhere = format!("sip:nobody%40nowhere.example@{SIP_DOMAIN}");
    let r = raw.request("MESSAGE", &nowhere, text, "hi");
    let a = raw.ask(&r).await;
    assert_eq!(status(&a), 404, "{a}");
    assert!(
        a.starts_with("SIP/2.0 404 Not Found: no route to im:nobody@nowhere.example"),
        "{a}"
    );

    let r = raw
        .request("MESSAGE", &to_user, text, "hi")
        .replace("CSeq: 1 MESSAGE", "CSeq: 1 INVITE");
    let a = raw.ask(&r).await;
    assert_eq!(status(&a), 400, "{a}");
    assert!(a.starts_with("SIP/2.0 400 Bad Request: CSeq method"), "{a}");

    let cpim = "From: <sip:mallory@127.0.0.1>\r\nTo: <im:user@a.localhost>\r\n\r\nContent-Type: text/plain\r\n\r\nspoof";
    let r = raw.request("MESSAGE", &to_user, "Content-Type: message/cpim\r\n", cpim);
    let a = raw.ask(&r).await;
    assert_eq!(status(&a), 403, "{a}");

    let r = raw.request("OPTIONS", &to_user, "", "");
    let a = raw.ask(&r).await;
    assert_eq!(status(&a), 200, "{a}");
    for h in ["Allow:", "Accept:", "Supported:"] {
        assert!(has_header(&a, h), "OPTIONS answer has {h}: {a}");
    }

    // A retransmission is absorbed: the same 202, one delivery.
    let r = raw.request("MESSAGE", &to_user, text, "only once");
    let first = raw.ask(&r).await;
    assert_eq!(status(&first), 202, "{first}");
    assert!(!has_header(&first, "Contact:"), "RFC 3428 §7: {first}");
    let again = raw.ask(&r).await;
    assert_eq!(again, first, "the retransmission gets the same response");
    s.user.expect_body("only once", WAIT).await.unwrap();
    s.user
        .expect_no_message(|m| body(m) == Some("only once"), Duration::from_secs(1))
        .await
        .unwrap();
    // Nothing refused above reached the user.
    s.user
        .expect_no_message(|m| body(m).is_some(), Duration::from_millis(200))
        .await
        .unwrap();

    s.gw.shutdown().await.unwrap();
    drop(s.prosody);
}

#[tokio::test]
async fn kamailio_in_front_of_the_gateway_both_ways() {
    let sip_port = free_port().unwrap();
    let kamailio = Kamailio::start(SIP_DOMAIN, SocketAddr::from(([127, 0, 0, 1], sip_port)))
        .await
        .unwrap_or_else(|e| panic!("Kamailio must start: {e}"));
    let extra = format!(
        "outbound_proxy = \"sip:{}\"\n        trusted = [\"127.0.0.1\"]",
        kamailio.addr()
    );
    let mut s = setup_with(sip_port, &extra).await;

    for transport in [SippTransport::Udp, SippTransport::Tcp] {
        // sipp → Kamailio → gateway → XMPP user; Kamailio relays the 202.
        let service = format!("{USER}%40{HOST_A}");
        let sipp = Sipp::uac(
            "message_uac.xml",
            transport,
            &kamailio.addr().to_string(),
            3,
            &["-s", &service, "-key", "domain", SIP_DOMAIN],
        )
        .unwrap();
        if let Err(e) = sipp.finish(Duration::from_secs(60)).await {
            panic!(
                "sipp over {transport:?} through Kamailio: {e}\nkamailio log:\n{}",
                kamailio.log_tail(30)
            );
        }
        let sender = jid_of("sip:sipp@127.0.0.1");
        for n in 1..=3 {
            let text = format!("Message {n} from sipp.");
            let m = s
                .user
                .expect_message(|m| body(m).map(str::trim_end) == Some(text.as_str()), WAIT)
                .await
                .unwrap_or_else(|e| panic!("{text} through Kamailio: {e}"));
            assert_eq!(from_of(&m), sender);
        }

        // XMPP user → gateway → Kamailio (outbound proxy) → sipp UAS.
        let port = free_port().unwrap();
        let mut uas = Sipp::uas("message_uas.xml", transport, port, 1, &["-d", "500"]).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !uas.has_exited(),
            "sipp as a UAS on port {port} exited at once"
        );
        let jid = jid_of(&format!(
            "sip:bob@127.0.0.1:{port};transport={}",
            transport.uri_param()
        ));
        s.user
            .send_message(chat_with_receipt_request(&jid, "hello sipp from xmpp"))
            .await
            .unwrap();
        if let Err(e) = s.user.expect_message(is_receipt, WAIT).await {
            panic!(
                "no receipt through Kamailio: {e}\nkamailio log:\n{}",
                kamailio.log_tail(30)
            );
        }
        if let Err(e) = uas.finish(Duration::from_secs(30)).await {
            panic!(
                "sipp UAS behind Kamailio: {e}\nkamailio log:\n{}",
                kamailio.log_tail(30)
            );
        }
        s.user.clear();
    }
    s.gw.shutdown().await.unwrap();
    drop(s.prosody);
    drop(kamailio);
}

/// TLS: sipp → Kamailio (UDP) → gateway over TLS → XMPP user, and XMPP
/// user → gateway → Kamailio over TLS (the outbound proxy) → sipp UAS
/// (UDP). Both TLS hops are mutual: the gateway checks Kamailio's client
/// certificate (on by default) and Kamailio checks the gateway's. Debian's
/// sipp has no TLS, so Kamailio carries it.
#[tokio::test]
async fn kamailio_and_the_gateway_speak_tls_both_ways() {
    let sip_port = free_port().unwrap();
    let tls_port = free_port().unwrap();
    let kamailio = Kamailio::start_tls(SIP_DOMAIN, SocketAddr::from(([127, 0, 0, 1], tls_port)))
        .await
        .unwrap_or_else(|e| panic!("Kamailio with TLS must start: {e}"));
    let extra = format!(
        "tls = [\"127.0.0.1:{tls_port}\"]\n        tls_cert = \"{}\"\n        tls_key = \"{}\"\n        tls_ca = \"{}\"\n        outbound_proxy = \"sip:{};transport=tls\"\n        trusted = [\"127.0.0.1\"]",
        kamailio.gateway_cert().display(),
        kamailio.gateway_key().display(),
        kamailio.ca_cert().display(),
        kamailio.tls_addr().expect("a TLS listener"),
    );
    let mut s = setup_with(sip_port, &extra).await;

    let service = format!("{USER}%40{HOST_A}");
    let sipp = Sipp::uac(
        "message_uac.xml",
        SippTransport::Udp,
        &kamailio.addr().to_string(),
        3,
        &["-s", &service, "-key", "domain", SIP_DOMAIN],
    )
    .unwrap();
    if let Err(e) = sipp.finish(Duration::from_secs(60)).await {
        panic!(
            "sipp through Kamailio and TLS: {e}\nkamailio log:\n{}",
            kamailio.log_tail(30)
        );
    }
    for n in 1..=3 {
        let text = format!("Message {n} from sipp.");
        s.user
            .expect_message(|m| body(m).map(str::trim_end) == Some(text.as_str()), WAIT)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "{text} over TLS: {e}\nkamailio log:\n{}",
                    kamailio.log_tail(30)
                )
            });
    }

    let port = free_port().unwrap();
    let mut uas = Sipp::uas(
        "message_uas.xml",
        SippTransport::Udp,
        port,
        1,
        &["-d", "500"],
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !uas.has_exited(),
        "sipp as a UAS on port {port} exited at once"
    );
    let jid = jid_of(&format!("sip:bob@127.0.0.1:{port};transport=udp"));
    s.user
        .send_message(chat_with_receipt_request(&jid, "hello sipp from xmpp"))
        .await
        .unwrap();
    if let Err(e) = s.user.expect_message(is_receipt, WAIT).await {
        panic!(
            "no receipt through Kamailio over TLS: {e}\nkamailio log:\n{}",
            kamailio.log_tail(30)
        );
    }
    if let Err(e) = uas.finish(Duration::from_secs(30)).await {
        panic!(
            "sipp UAS behind Kamailio over TLS: {e}\nkamailio log:\n{}",
            kamailio.log_tail(30)
        );
    }
    s.gw.shutdown().await.unwrap();
    drop(s.prosody);
    drop(kamailio);
}

/// Registration (RFC 3261 §10) with Kamailio as the registrar of
/// `reg.localhost`: the gateway registers `sip:user@reg.localhost` for the
/// XMPP user, answering Kamailio's digest challenge, and refreshes it
/// before its 2 s run out; sipp reaches the XMPP user at that address of
/// record through Kamailio's location lookup (first, and again after
/// several refreshes); the XMPP user's message to SIP leaves From the
/// address of record; when the gateway stops it removes the binding and
/// the address of record gets 404.
#[tokio::test]
async fn the_gateway_registers_an_xmpp_user_with_kamailio() {
    const AOR: &str = "sip:user@reg.localhost";
    let sip_port = free_port().unwrap();
    let registrar = Registrar {
        domain: "reg.localhost".into(),
        user: "user".into(),
        password: "reg-secret".into(),
    };
    let kamailio = Kamailio::start_registrar(
        SIP_DOMAIN,
        SocketAddr::from(([127, 0, 0, 1], sip_port)),
        registrar,
    )
    .await
    .unwrap_or_else(|e| panic!("Kamailio as a registrar must start: {e}"));
    let extra = format!(
        r#"outbound_proxy = "sip:{proxy}"
        trusted = ["127.0.0.1"]
        [[adapters.sip.register]]
        aor = "{AOR}"
        address = "{USER}@{HOST_A}"
        expires = 2
        credentials = {{ user = "user", password = "reg-secret" }}"#,
        proxy = kamailio.addr()
    );
    let mut s = setup_with(sip_port, &extra).await;
    let saved = format!("saved {AOR} <sip:{USER}%40{HOST_A}@127.0.0.1:{sip_port}");
    kamailio
        .wait_log(&saved, 1, WAIT)
        .await
        .expect("the gateway registers the address of record");

    // sipp → Kamailio (lookup) → the registered Contact → XMPP user.
    let reach = |n: u32| {
        Sipp::uac(
            "message_uac.xml",
            SippTransport::Udp,
            &kamailio.addr().to_string(),
            n,
            &["-s", "user", "-key", "domain", "reg.localhost"],
        )
        .unwrap()
    };
    if let Err(e) = reach(1).finish(Duration::from_secs(30)).await {
        panic!(
            "sipp to {AOR}: {e}
kamailio log:
{}",
            kamailio.log_tail(30)
        );
    }
    let first = "Message 1 from sipp.";
    s.user
        .expect_message(|m| body(m).map(str::trim_end) == Some(first), WAIT)
        .await
        .unwrap_or_else(|e| panic!("{first} to the address of record: {e}"));

    // Three more saves are three refreshes: the binding outlives its 2 s.
    let before = kamailio.log_count(&saved);
    kamailio
        .wait_log(&saved, before + 3, Duration::from_secs(15))
        .await
        .expect("the gateway refreshes the binding before it runs out");
    if let Err(e) = reach(1).finish(Duration::from_secs(30)).await {
        panic!(
            "sipp to {AOR} after the refreshes: {e}
kamailio log:
{}",
            kamailio.log_tail(30)
        );
    }
    s.user
        .expect_message(|m| body(m).map(str::trim_end) == Some(first), WAIT)
        .await
        .unwrap_or_else(|e| panic!("{first} after the refreshes: {e}"));

    // XMPP user → gateway → Kamailio → sipp UAS: From the address of record.
    let port = free_port().unwrap();
    let mut uas = Sipp::uas("message_uas_aor.xml", SippTransport::Udp, port, 1, &[]).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !uas.has_exited(),
        "sipp as a UAS on port {port} exited at once"
    );
    let jid = jid_of(&format!("sip:bob@127.0.0.1:{port};transport=udp"));
    s.user
        .send_message(chat_with_receipt_request(
            &jid,
            "hello from a registered user",
        ))
        .await
        .unwrap();
    s.user
        .expect_message(is_receipt, WAIT)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "no receipt: {e}
kamailio log:
{}",
                kamailio.log_tail(30)
            )
        });
    if let Err(e) = uas.finish(Duration::from_secs(30)).await {
        panic!("sipp UAS, From the address of record: {e}");
    }

    // Stopping removes the binding (Expires 0); the address of record
    // then has nobody behind it.
    s.gw.shutdown().await.unwrap();
    kamailio
        .wait_log(&format!("{saved};transport=udp> expires=0"), 1, WAIT)
        .await
        .expect("the stopping gateway removes its binding");
    let gone = Sipp::uac(
        "message_uac_404.xml",
        SippTransport::Udp,
        &kamailio.addr().to_string(),
        1,
        &["-s", "user", "-key", "domain", "reg.localhost"],
    )
    .unwrap();
    if let Err(e) = gone.finish(Duration::from_secs(30)).await {
        panic!("{AOR} after the gateway stopped must get 404: {e}");
    }
    drop(s.prosody);
    drop(kamailio);
}

#[tokio::test]
async fn sipp_answers_the_gateways_challenge() {
    // sipp reads the first challenge only and knows MD5 only, and it
    // signs its peer's address as the digest uri, not the Request-URI.
    let extra = r#"authenticate = true
        auth_algorithms = ["MD5"]
        auth_check_uri = false
        accounts = [{ user = "sipp", password = "sipp-secret" }]"#;
    let mut s = setup_with(free_port().unwrap(), extra).await;
    let service = format!("{USER}%40{HOST_A}");

    // Without credentials, nothing goes through.
    let mut raw = Raw::new(s.sip_port).await;
    let r = raw.request(
        "MESSAGE",
        &format!("sip:{service}@{SIP_DOMAIN}"),
        "Content-Type: text/plain\r\n",
        "no credentials",
    );
    let challenge = raw.ask(&r).await;
    assert_eq!(status(&challenge), 401, "{challenge}");
    assert!(
        has_header(&challenge, "WWW-Authenticate: Digest"),
        "{challenge}"
    );

    let sipp = Sipp::uac(
        "message_uac_auth.xml",
        SippTransport::Udp,
        &format!("127.0.0.1:{}", s.sip_port),
        2,
        &[
            "-s",
            &service,
            "-key",
            "domain",
            SIP_DOMAIN,
            "-au",
            "sipp",
            "-ap",
            "sipp-secret",
        ],
    )
    .unwrap();
    sipp.finish(Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| {
            panic!("sipp authenticated and got 202: {e}\nthe challenge:\n{challenge}")
        });
    for n in 1..=2 {
        let text = format!("Authenticated message {n} from sipp.");
        s.user
            .expect_message(|m| body(m).map(str::trim_end) == Some(text.as_str()), WAIT)
            .await
            .unwrap();
    }
    s.user
        .expect_no_message(
            |m| body(m) == Some("no credentials"),
            Duration::from_millis(300),
        )
        .await
        .unwrap();
    s.gw.shutdown().await.unwrap();
    drop(s.prosody);
}

/// The gateway with the SIP adapter on UDP `sip_port` and the IRC adapter
/// (relay mode, `irc_extra` more of its lines) on `irc`, SIP messages to
/// `nick%irc.localhost@...` routed to IRC nicks.
async fn sip_irc_gateway(irc: &Inspircd, sip_port: u16, irc_extra: &str) -> Gateway {
    cpimgate_e2e::init_logging();
    let toml = format!(
        r#"
        [gateway]
        name = "gw-sip-irc"
        domains = ["{SIP_DOMAIN}"]
        [adapters.irc]
        kind = "irc"
        network = "{IRC_NETWORK}"
        server = "{irc_addr}"
        nick = "cpimgate"
        {irc_extra}
        [adapters.sip]
        kind = "sip"
        domains = ["{SIP_DOMAIN}"]
        udp = ["127.0.0.1:{sip_port}"]
        [[route]]
        domain = "{IRC_NETWORK}"
        adapter = "irc"
        "#,
        irc_addr = irc.addr(),
    );
    let gw = Gateway::start(&toml, Vec::new())
        .await
        .unwrap_or_else(|e| panic!("the gateway must start: {e}"));
    if let Err(e) = gw.wait_connected("irc", WAIT).await {
        panic!("{e}; inspircd log:\n{}", irc.log_tail(30));
    }
    gw
}

#[tokio::test]
async fn sipp_messages_reach_an_irc_nick() {
    let irc = Inspircd::start()
        .await
        .unwrap_or_else(|e| panic!("InspIRCd must start: {e}"));
    let sip_port = free_port().unwrap();
    let gw = sip_irc_gateway(&irc, sip_port, "").await;
    let mut bob = IrcUser::connect(irc.addr(), "bob").await.unwrap();
    let service = format!("bob%25{IRC_NETWORK}");
    let sipp = Sipp::uac(
        "message_uac.xml",
        SippTransport::Udp,
        &format!("127.0.0.1:{sip_port}"),
        3,
        &["-s", &service, "-key", "domain", SIP_DOMAIN],
    )
    .unwrap();
    sipp.finish(Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("sipp got 202 for every MESSAGE to an IRC nick: {e}"));
    for n in 1..=3 {
        let text = format!("Message {n} from sipp.");
        let line = bob
            .expect(&format!("PRIVMSG with {text:?}"), |l| {
                l.command == "PRIVMSG" && l.param(0) == "bob" && l.param(1).contains(&text)
            })
            .await
            .unwrap_or_else(|e| panic!("{e}; inspircd log:\n{}", irc.log_tail(20)));
        assert_eq!(line.source.as_deref(), Some("cpimgate"), "{}", line.raw);
    }

    // The same with Kamailio in front of the gateway: sipp → Kamailio →
    // gateway → the IRC nick.
    let kamailio = Kamailio::start(SIP_DOMAIN, SocketAddr::from(([127, 0, 0, 1], sip_port)))
        .await
        .unwrap_or_else(|e| panic!("Kamailio must start: {e}"));
    let sipp = Sipp::uac(
        "message_uac.xml",
        SippTransport::Udp,
        &kamailio.addr().to_string(),
        3,
        &["-s", &service, "-key", "domain", SIP_DOMAIN],
    )
    .unwrap();
    if let Err(e) = sipp.finish(Duration::from_secs(60)).await {
        panic!(
            "sipp through Kamailio to an IRC nick: {e}\nkamailio log:\n{}",
            kamailio.log_tail(30)
        );
    }
    for n in 1..=3 {
        let text = format!("Message {n} from sipp.");
        bob.expect(&format!("PRIVMSG with {text:?} through Kamailio"), |l| {
            l.command == "PRIVMSG" && l.param(0) == "bob" && l.param(1).contains(&text)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}; kamailio log:\n{}", kamailio.log_tail(20)));
    }
    gw.shutdown().await.unwrap();
    drop(kamailio);
}
