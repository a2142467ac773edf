//! The harness against a real Prosody: two users chat in a MUC and 1:1, an
//! external component completes its handshake, and a restarted server
//! takes logins again. If Prosody cannot start, these tests fail and say
//! why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use cpimgate_e2e::bare_component::BareComponent;
use cpimgate_e2e::prosody::{
    COMPONENT_DOMAIN, COMPONENT_SECRET, HOST_A, HOST_B, MUC_A, Prosody, ProsodyOptions,
};
use cpimgate_e2e::xmpp_user::{WAIT, XmppUser, body, is_groupchat_from, nick_of};
use futures::StreamExt;
use tokio_xmpp::connect::DnsConfig;
use tokio_xmpp::parsers::message::{Lang, Message, MessageType};
use tokio_xmpp::xmlstream::Timeouts;
use tokio_xmpp::{Component, Stanza};

async fn server_with_two_users() -> Prosody {
    cpimgate_e2e::init_logging();
    let server = Prosody::start().await.expect("starting prosody");
    server.register("alice", HOST_A, "alice-pw").await.unwrap();
    server.register("bob", HOST_A, "bob-pw").await.unwrap();
    server
}

#[tokio::test]
async fn two_users_chat_in_a_muc_and_one_to_one() {
    let server = server_with_two_users().await;
    let mut alice = XmppUser::connect(&server, "alice@a.localhost", "alice-pw")
        .await
        .unwrap();
    let mut bob = XmppUser::connect(&server, "bob@a.localhost", "bob-pw")
        .await
        .unwrap();
    assert_eq!(alice.jid().to_bare().to_string(), "alice@a.localhost");

    let room = format!("lobby@{MUC_A}");
    alice.join_muc(&room, "Alice").await.unwrap();
    bob.join_muc(&room, "Bob").await.unwrap();
    // Alice sees Bob come in.
    alice
        .expect_presence(|p| nick_of(p.from.as_ref()) == Some("Bob"), WAIT)
        .await
        .unwrap();

    alice.send_groupchat(&room, "hello, room").await.unwrap();
    let got = bob.expect_body("hello, room", WAIT).await.unwrap();
    assert!(is_groupchat_from(&got, &room));
    assert_eq!(nick_of(got.from.as_ref()), Some("Alice"));
    // The room reflects the message to its sender too.
    alice.expect_body("hello, room", WAIT).await.unwrap();

    bob.send_chat("alice@a.localhost", "hi, alice")
        .await
        .unwrap();
    let got = alice
        .expect_message(|m| m.type_ == MessageType::Chat, WAIT)
        .await
        .unwrap();
    assert_eq!(body(&got), Some("hi, alice"));
    assert_eq!(
        got.from
            .as_ref()
            .map(|f| f.to_bare().to_string())
            .as_deref(),
        Some("bob@a.localhost")
    );

    // A nick change and a leave are seen by the other occupant.
    bob.change_nick(&room, "Robert").await.unwrap();
    alice
        .expect_presence(|p| nick_of(p.from.as_ref()) == Some("Robert"), WAIT)
        .await
        .unwrap();
    bob.leave_muc(&room, "Robert").await.unwrap();
    alice
        .expect_no_message(|m| body(m) == Some("nothing"), Duration::from_millis(100))
        .await
        .unwrap();
    alice.disconnect().await.unwrap();
    bob.disconnect().await.unwrap();
}

#[tokio::test]
async fn starttls_with_the_test_ca_checks_the_certificate() {
    let server = server_with_two_users().await;
    let mut alice = XmppUser::connect_starttls(&server, "alice@a.localhost", "alice-pw")
        .await
        .unwrap();
    assert!(alice.is_encrypted());
    let mut bob = XmppUser::connect_starttls(&server, "bob@a.localhost", "bob-pw")
        .await
        .unwrap();
    alice
        .send_chat("bob@a.localhost", "over tls")
        .await
        .unwrap();
    bob.expect_body("over tls", WAIT).await.unwrap();

    // The certificate names b.localhost too.
    server.register("carol", HOST_B, "carol-pw").await.unwrap();
    XmppUser::connect_starttls(&server, "carol@b.localhost", "carol-pw")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_wrong_password_is_an_error() {
    let server = server_with_two_users().await;
    let err = XmppUser::connect(&server, "alice@a.localhost", "wrong")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("alice@a.localhost"), "{err}");
}

#[tokio::test]
async fn the_component_port_accepts_the_handshake_and_routes_stanzas() {
    let server = server_with_two_users().await;
    let mut component = Component::new_plaintext(
        COMPONENT_DOMAIN,
        COMPONENT_SECRET,
        DnsConfig::addr(&server.component_addr().to_string()),
        Timeouts::tight(),
    )
    .await
    .expect("component handshake");

    // A user writes to a JID under the component: the component gets it.
    let mut alice = XmppUser::connect(&server, "alice@a.localhost", "alice-pw")
        .await
        .unwrap();
    alice
        .send_chat(&format!("someone@{COMPONENT_DOMAIN}"), "to the gateway")
        .await
        .unwrap();
    let got = tokio::time::timeout(WAIT, async {
        loop {
            match component.next().await {
                Some(Stanza::Message(m)) => return m,
                Some(_) => continue,
                None => panic!("the component stream ended"),
            }
        }
    })
    .await
    .expect("nothing reached the component");
    assert_eq!(body(&got), Some("to the gateway"));

    // And the component can write to the user, from any JID of its domain.
    let reply =
        Message::chat(got.from.clone().unwrap()).with_body(Lang::new(), "from the gateway".into());
    let mut reply = reply;
    reply.from = Some(format!("someone@{COMPONENT_DOMAIN}").parse().unwrap());
    component.send_stanza(reply.into()).await.unwrap();
    alice.expect_body("from the gateway", WAIT).await.unwrap();
}

#[tokio::test]
async fn the_bare_component_of_the_benchmarks_routes_both_ways() {
    let server = server_with_two_users().await;
    let mut bare =
        BareComponent::connect(server.component_addr(), COMPONENT_DOMAIN, COMPONENT_SECRET)
            .await
            .expect("bare component handshake");
    let mut alice = XmppUser::connect(&server, "alice@a.localhost", "alice-pw")
        .await
        .unwrap();
    let room = format!("ceiling@{COMPONENT_DOMAIN}");
    alice.send_groupchat(&room, "bare-up 1 2").await.unwrap();
    let got = tokio::time::timeout(WAIT, bare.next_body())
        .await
        .expect("nothing reached the bare component")
        .unwrap();
    assert_eq!(got.body, "bare-up 1 2");
    assert_eq!(got.from, alice.jid().to_string());

    bare.groupchat(&format!("{room}/bob"), &got.from, "bare-down 3 4")
        .await
        .unwrap();
    bare.flush().await.unwrap();
    let m = alice.next_message(WAIT).await.unwrap();
    assert_eq!(m.type_, MessageType::Groupchat);
    assert_eq!(nick_of(m.from.as_ref()), Some("bob"));
    assert_eq!(body(&m), Some("bare-down 3 4"));

    // As a XEP-0359 room writes it (§2): an id and the room's stanza-id.
    bare.stanza_ids(Some(&room));
    bare.groupchat(&format!("{room}/bob"), &got.from, "bare-down 5 6")
        .await
        .unwrap();
    bare.flush().await.unwrap();
    let m = alice.next_message(WAIT).await.unwrap();
    assert_eq!(body(&m), Some("bare-down 5 6"));
    assert!(m.id.is_some(), "no id on {m:?}");
    let sid = m
        .payloads
        .iter()
        .find(|p| p.is("stanza-id", "urn:xmpp:sid:0"))
        .expect("no stanza-id");
    assert_eq!(sid.attr("by"), Some(room.as_str()));
    assert_eq!(sid.attr("id").map(str::len), Some(32));
}

#[tokio::test]
async fn a_bare_component_with_a_wrong_secret_is_refused() {
    let server = Prosody::start().await.expect("starting prosody");
    let err = BareComponent::connect(server.component_addr(), COMPONENT_DOMAIN, "not it")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("bare component"), "{err}");
}

#[tokio::test]
async fn a_wrong_component_secret_is_refused() {
    let server = Prosody::start().await.expect("starting prosody");
    let result = Component::new_plaintext(
        COMPONENT_DOMAIN,
        "not the secret",
        DnsConfig::addr(&server.component_addr().to_string()),
        Timeouts::tight(),
    )
    .await;
    assert!(result.is_err());
}

#[tokio::test]
async fn options_add_components_and_quieten_the_log() {
    let options = ProsodyOptions::default()
        .log_level("warn")
        .hosts("Component \"irc.localhost\"\n    component_secret = \"irc-secret\"");
    let server = Prosody::start_with(options)
        .await
        .expect("starting prosody");
    Component::new_plaintext(
        "irc.localhost",
        "irc-secret",
        DnsConfig::addr(&server.component_addr().to_string()),
        Timeouts::tight(),
    )
    .await
    .expect("handshake of the extra component");
    let log = std::fs::read_to_string(server.log_path()).unwrap_or_default();
    assert!(
        !log.contains("\tdebug\t"),
        "debug lines in a warn-level log"
    );
}

#[tokio::test]
async fn a_server_that_cannot_start_fails_saying_why() {
    let err = Prosody::start_with(ProsodyOptions::default().global("this is not lua ((("))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("did not start: prosody"), "{text}");
    // Prosody's own complaint about the config is in the error.
    assert!(text.to_lowercase().contains("config"), "{text}");
}

#[tokio::test]
async fn restart_keeps_ports_and_accounts_and_clients_reconnect() {
    let mut server = server_with_two_users().await;
    let (c2s, component) = (server.c2s_port(), server.component_port());
    let mut alice = XmppUser::connect(&server, "alice@a.localhost", "alice-pw")
        .await
        .unwrap();

    server.kill().await.unwrap();
    assert!(!server.is_running());
    server.restart().await.unwrap();
    assert!(server.is_running());
    assert_eq!(
        (server.c2s_port(), server.component_port()),
        (c2s, component)
    );

    // A fresh login works (the account survived) ...
    let mut bob = XmppUser::connect(&server, "bob@a.localhost", "bob-pw")
        .await
        .unwrap();
    // ... and the old client logs in again.
    alice.reconnect().await.unwrap();
    bob.send_chat("alice@a.localhost", "after the restart")
        .await
        .unwrap();
    alice.expect_body("after the restart", WAIT).await.unwrap();

    // A graceful restart too.
    server.restart().await.unwrap();
    Component::new_plaintext(
        COMPONENT_DOMAIN,
        COMPONENT_SECRET,
        DnsConfig::addr(&server.component_addr().to_string()),
        Timeouts::tight(),
    )
    .await
    .expect("component handshake after a restart");
}
