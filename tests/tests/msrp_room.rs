//! MSRP chat rooms hosted by the gateway (RFC 7701), with real sockets:
//! the hub runs in this process with the MSRP adapter; the participants
//! are the test UA of `cpimgate_e2e::msrp_ua` (SIP INVITE over UDP, MSRP
//! over TCP, on the gateway's own codecs).
//!
//! 1. Three participants join; one subscribes to the conference events
//!    (RFC 4575) and sees the three, then their nicknames; nicknames (one
//!    425, one 424); a room
//!    message reaches the two others, not its sender; private messages
//!    reach only their recipient (by nickname URI), an unknown one gets
//!    404, one to a participant without private messages 428; a spoofed
//!    CPIM From gets 403; a 20 KB message sent in 2 KB chunks arrives
//!    whole (forwarded chunk by chunk); a chunked one with a spoofed From
//!    is refused at its first chunk; one leaves (BYE) and gets no more.
//! 2. An INVITE to an unknown room gets 404.
//! 3. MSRP over TLS (`TCP/TLS/MSRP`, `msrps:`): a participant over TLS and
//!    one over TCP in one room, each hearing the other; a TLS offer to a
//!    gateway without a TLS listener gets 488.
//! 4. A participant that never connects gets a BYE, and a connection
//!    that never speaks is closed (`connect_within_ms`).
//! 5. With `authenticate`, an INVITE without credentials gets 401, one
//!    with them joins, and credentials of another user than the From do
//!    not count (the From is the identity the room checks).
//! 6. An anonymous room (`anonymous = true`): a participant without a
//!    nickname may not send (403) and is in no NOTIFY; once it has one,
//!    its messages (whole or chunked, From its real URI) reach the others
//!    From its nickname URI and the NOTIFYs name it by that URI only; a
//!    spoofed From still gets 403.
//! 7. The chunk reception timer of RFC 7701 §6.1 (`chunk_timeout_ms`): a
//!    participant sends the first chunk of a message and no more; the
//!    copy the other got ends with an abort chunk (`#`) once the timer
//!    runs out, not before, and the sender's session goes on.
//! 8. The rate of notifications of RFC 4575 §3.9 (`notify_interval_ms`):
//!    two joins and a nickname right after a subscriber's full NOTIFY
//!    reach it in one partial NOTIFY once the interval has passed, each
//!    user once in its latest state, versions one apart; a leave after
//!    that comes in the next one.
//! 9. A participant's `a=max-size` (RFC 4975 §8.6): a message larger than
//!    it takes, whole or chunked, is not copied to it (the others get
//!    it); smaller ones are.
//! 10. A re-INVITE with the same offer gets the same answer and the
//!     session goes on; one in a call the room does not know gets 481; a
//!     CANCEL of the long-answered INVITE gets 200 and changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use cpimgate_e2e::gateway::Gateway;
use cpimgate_e2e::msrp_ua::{JoinOptions, MsrpUa, WAIT};
use cpimgate_e2e::prosody::free_port;
use cpimgate_msrp::conference::read::{self, Document, State};

const DOMAIN: &str = "chat.localhost";
const ROOM: &str = "sip:room22@chat.localhost";
const QUIET: Duration = Duration::from_millis(500);

async fn gateway(sip_port: u16) -> Gateway {
    gateway_with(sip_port, "").await
}

/// The gateway with `extra` lines in the MSRP adapter's section; each
/// change of the conference events goes out at once.
async fn gateway_with(sip_port: u16, extra: &str) -> Gateway {
    gateway_spaced(sip_port, 0, extra).await
}

/// The gateway with NOTIFYs to one subscriber spaced by
/// `notify_interval_ms` (RFC 4575 §3.9).
async fn gateway_spaced(sip_port: u16, notify_interval_ms: u64, extra: &str) -> Gateway {
    cpimgate_e2e::init_logging();
    let toml = format!(
        r#"
        [gateway]
        name = "gw-msrp"
        [adapters.chat]
        kind = "msrp"
        domain = "{DOMAIN}"
        sip_udp = ["127.0.0.1:{sip_port}"]
        msrp = "127.0.0.1:0"
        chunk_size = 2048
        notify_interval_ms = {notify_interval_ms}
        {extra}
        [[adapters.chat.rooms]]
        name = "room22"
        welcome = "Welcome to room 22."
        "#
    );
    let gw = Gateway::start(&toml, Vec::new())
        .await
        .unwrap_or_else(|e| panic!("the gateway must start: {e}"));
    gw.wait_connected("chat", Duration::from_secs(10))
        .await
        .expect("the MSRP adapter listens");
    gw
}

fn focus(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[tokio::test]
async fn three_participants_chat_with_nicknames_and_private_messages() {
    let port = free_port().unwrap();
    let gw = gateway(port).await;
    let join = |aor: &'static str, options: JoinOptions| async move {
        MsrpUa::join(focus(port), ROOM, aor, options)
            .await
            .unwrap_or_else(|e| panic!("{aor} joins: {e}"))
    };
    let mut alice = join("sip:alice@atlanta.example.com", JoinOptions::default()).await;
    let mut bob = join("sip:bob@biloxi.example.com", JoinOptions::default()).await;
    let no_private = JoinOptions {
        private_messages: false,
        ..JoinOptions::default()
    };
    let mut carol = join("sip:carol@chicago.example.com", no_private).await;
    // The room's welcome (RFC 7701 REQ-10), From the room itself.
    let w = alice.expect_text("Welcome to room 22.").await.unwrap();
    assert_eq!(w.from.address.to_string(), ROOM);

    // The conference event package (RFC 4575): carol's first NOTIFY lists
    // the three of them.
    assert_eq!(carol.subscribe().await.unwrap(), 200);
    let full = carol.next_notify(WAIT).await.unwrap();
    assert!(full.contains(r#"state="full""#), "{full}");
    for who in ["alice@atlanta", "bob@biloxi", "carol@chicago"] {
        assert!(
            full.contains(&format!("entity=\"sip:{who}.example.com\"")),
            "{who}: {full}"
        );
    }

    // RFC 7701 §7.1: 200, then 425 for the same nickname in other case,
    // 424 for a malformed one (over 1023 octets).
    assert_eq!(alice.nickname("Alice").await.unwrap(), 200);
    assert_eq!(bob.nickname("ALICE").await.unwrap(), 425);
    assert_eq!(bob.nickname(&"x".repeat(1024)).await.unwrap(), 424);
    assert_eq!(bob.nickname("Bob").await.unwrap(), 200);
    // Each nickname shows in a partial NOTIFY (RFC 7701 §7.4).
    let mut partials = String::new();
    while !partials.contains(r#"nickname="Bob""#) {
        partials += &carol.next_notify(WAIT).await.unwrap();
    }
    assert!(partials.contains(r#"state="partial""#), "{partials}");
    assert!(partials.contains(r#"nickname="Alice""#), "{partials}");

    // §6.1: a room message goes to everyone else, CPIM unchanged.
    assert_eq!(alice.send(ROOM, "hello room").await.unwrap(), 200);
    for p in [&mut bob, &mut carol] {
        let m = p.expect_text("hello room").await.unwrap();
        assert_eq!(m.from.address.to_string(), "sip:alice@atlanta.example.com");
        assert_eq!(m.to[0].address.to_string(), ROOM);
    }
    alice.expect_no_text("hello room", QUIET).await.unwrap();

    // §6.2: private by nickname URI; 404 for nobody; 428 for carol.
    let to_bob = format!("sip:Bob@{DOMAIN}");
    assert_eq!(alice.send(&to_bob, "psst bob").await.unwrap(), 200);
    bob.expect_text("psst bob").await.unwrap();
    carol.expect_no_text("psst bob", QUIET).await.unwrap();
    let nobody = format!("sip:nobody@{DOMAIN}");
    assert_eq!(alice.send(&nobody, "anyone?").await.unwrap(), 404);
    assert_eq!(
        alice
            .send("sip:carol@chicago.example.com", "psst carol")
            .await
            .unwrap(),
        428
    );
    // §6.3: a From that is not the sender: 403, and nobody gets it.
    assert_eq!(
        bob.send_as("sip:alice@atlanta.example.com", ROOM, "spoof", usize::MAX)
            .await
            .unwrap(),
        403
    );
    carol.expect_no_text("spoof", QUIET).await.unwrap();

    // A 20 KB message in 2 KB chunks arrives whole.
    let big = "0123456789".repeat(2048);
    assert_eq!(
        carol
            .send_as("sip:carol@chicago.example.com", ROOM, &big, 2048)
            .await
            .unwrap(),
        200
    );
    assert_eq!(alice.expect_text(&big).await.unwrap().text.len(), big.len());
    bob.expect_text(&big).await.unwrap();

    // A chunked message is routed by its first chunk: a spoofed From is
    // refused there (403) and no chunk reaches anyone.
    let spoofed = "x".repeat(6000);
    assert_eq!(
        bob.send_as("sip:alice@atlanta.example.com", ROOM, &spoofed, 2048)
            .await
            .unwrap(),
        403
    );
    alice.expect_no_text(&spoofed, QUIET).await.unwrap();

    // Carol leaves; a later message does not reach her connection.
    assert_eq!(carol.leave().await.unwrap(), 200);
    assert_eq!(bob.send(ROOM, "after carol").await.unwrap(), 200);
    alice.expect_text("after carol").await.unwrap();
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn invites_that_cannot_join() {
    let port = free_port().unwrap();
    let gw = gateway(port).await;
    let unknown = MsrpUa::invite(
        focus(port),
        &format!("sip:nowhere@{DOMAIN}"),
        "sip:alice@atlanta.example.com",
        JoinOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(unknown.err(), Some(404));
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_participant_over_tls_and_one_over_tcp() {
    let certs = tempfile::tempdir().unwrap();
    cpimgate_e2e::kamailio::make_certificates(certs.path())
        .await
        .unwrap_or_else(|e| panic!("test certificates: {e}"));
    let port = free_port().unwrap();
    let extra = format!(
        "msrps = \"127.0.0.1:0\"\n        tls_cert = \"{}\"\n        tls_key = \"{}\"",
        certs.path().join("gateway.crt").display(),
        certs.path().join("gateway.key").display()
    );
    let gw = gateway_with(port, &extra).await;
    let tls = JoinOptions {
        tls_ca: Some(certs.path().join("ca.crt")),
        ..JoinOptions::default()
    };
    let mut alice = MsrpUa::join(focus(port), ROOM, "sip:alice@atlanta.example.com", tls)
        .await
        .unwrap_or_else(|e| panic!("alice joins over TLS: {e}"));
    let mut bob = MsrpUa::join(
        focus(port),
        ROOM,
        "sip:bob@biloxi.example.com",
        JoinOptions::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("bob joins over TCP: {e}"));
    assert_eq!(alice.send(ROOM, "over tls").await.unwrap(), 200);
    bob.expect_text("over tls").await.unwrap();
    assert_eq!(bob.send(ROOM, "over tcp").await.unwrap(), 200);
    alice.expect_text("over tcp").await.unwrap();
    gw.shutdown().await.unwrap();

    // Without a TLS listener, a TLS offer is not acceptable.
    let port = free_port().unwrap();
    let gw = gateway(port).await;
    let refused = MsrpUa::invite(
        focus(port),
        ROOM,
        "sip:alice@atlanta.example.com",
        JoinOptions {
            tls_ca: Some(certs.path().join("ca.crt")),
            ..JoinOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(refused.err(), Some(488));
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn silence_after_the_invite_ends_the_session() {
    let port = free_port().unwrap();
    let gw = gateway_with(port, "connect_within_ms = 500").await;
    let mut idle = MsrpUa::join(
        focus(port),
        ROOM,
        "sip:idle@atlanta.example.com",
        JoinOptions {
            connect: false,
            ..JoinOptions::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("the INVITE is answered: {e}"));
    idle.expect_bye(Duration::from_secs(5))
        .await
        .unwrap_or_else(|e| panic!("the focus ends the unconnected session: {e}"));

    // A connection to the MSRP listener that says nothing is closed.
    let path = cpimgate_msrp::codec::MsrpUri::parse(idle.focus_path())
        .unwrap()
        .port()
        .unwrap();
    let mut quiet = tokio::net::TcpStream::connect(("127.0.0.1", path))
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read(&mut quiet, &mut buf),
    )
    .await
    .expect("the silent connection is closed within 5 s");
    assert_eq!(read.unwrap_or(0), 0, "closed, nothing sent");
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn participants_authenticate_with_digest() {
    let port = free_port().unwrap();
    let gw = gateway_with(
        port,
        r#"authenticate = true
        accounts = [{ user = "alice", password = "wonderland" }]"#,
    )
    .await;
    let alice = "sip:alice@atlanta.example.com";
    let without = MsrpUa::invite(focus(port), ROOM, alice, JoinOptions::default())
        .await
        .unwrap();
    assert_eq!(without.err(), Some(401));
    let creds = |user: &str, pw: &str| JoinOptions {
        credentials: Some((user.to_owned(), pw.to_owned())),
        ..JoinOptions::default()
    };
    let wrong = MsrpUa::invite(focus(port), ROOM, alice, creds("alice", "rabbit"))
        .await
        .unwrap();
    assert_eq!(wrong.err(), Some(401));
    let borrowed = MsrpUa::invite(
        focus(port),
        ROOM,
        "sip:bob@biloxi.example.com",
        creds("alice", "wonderland"),
    )
    .await
    .unwrap();
    assert_eq!(
        borrowed.err(),
        Some(401),
        "alice's credentials with bob's From"
    );
    let mut ua = MsrpUa::join(focus(port), ROOM, alice, creds("alice", "wonderland"))
        .await
        .unwrap_or_else(|e| panic!("alice joins with her credentials: {e}"));
    ua.expect_text("Welcome to room 22.").await.unwrap();
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_anonymous_room_shows_nickname_uris_only() {
    let port = free_port().unwrap();
    let anon_room = "[[adapters.chat.rooms]]\nname = \"masks\"\nanonymous = true";
    let gw = gateway_with(port, anon_room).await;
    let room = format!("sip:masks@{DOMAIN}");
    let join = |aor: &'static str| {
        let room = room.clone();
        async move {
            MsrpUa::join(focus(port), &room, aor, JoinOptions::default())
                .await
                .unwrap_or_else(|e| panic!("{aor} joins: {e}"))
        }
    };
    let mut alice = join("sip:alice@atlanta.example.com").await;
    let mut bob = join("sip:bob@biloxi.example.com").await;
    assert_eq!(bob.subscribe().await.unwrap(), 200);
    let full = bob.next_notify(WAIT).await.unwrap();
    assert!(full.contains(r#"state="full""#), "{full}");
    assert!(
        !full.contains("atlanta") && !full.contains("biloxi"),
        "{full}"
    );

    // No nickname yet: 403, and bob gets nothing.
    assert_eq!(alice.send(&room, "who am I").await.unwrap(), 403);
    bob.expect_no_text("who am I", QUIET).await.unwrap();

    assert_eq!(alice.nickname("Rabbit").await.unwrap(), 200);
    let rabbit = format!("sip:Rabbit@{DOMAIN}");
    let partial = bob.next_notify(WAIT).await.unwrap();
    assert!(
        partial.contains(&format!("entity=\"{rabbit}\"")),
        "{partial}"
    );
    assert!(!partial.contains("atlanta"), "{partial}");

    // From the real URI, whole and in chunks: bob sees the nickname URI.
    assert_eq!(alice.send(&room, "hello masks").await.unwrap(), 200);
    let m = bob.expect_text("hello masks").await.unwrap();
    assert_eq!(m.from.address.to_string(), rabbit);
    let big = "y".repeat(6000);
    assert_eq!(
        alice
            .send_as("sip:alice@atlanta.example.com", &room, &big, 2048)
            .await
            .unwrap(),
        200
    );
    let m = bob.expect_text(&big).await.unwrap();
    assert_eq!(m.from.address.to_string(), rabbit);
    // The nickname URI as From works too; someone else's is still 403.
    assert_eq!(
        alice
            .send_as(&rabbit, &room, "as Rabbit", usize::MAX)
            .await
            .unwrap(),
        200
    );
    bob.expect_text("as Rabbit").await.unwrap();
    assert_eq!(bob.nickname("Bob").await.unwrap(), 200);
    assert_eq!(
        bob.send_as(&rabbit, &room, "spoof", usize::MAX)
            .await
            .unwrap(),
        403
    );
    alice.expect_no_text("spoof", QUIET).await.unwrap();
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_message_left_unfinished_is_aborted_when_the_chunk_timer_runs_out() {
    let port = free_port().unwrap();
    let gw = gateway_with(port, "chunk_timeout_ms = 1000").await;
    let join = |aor: &'static str| async move {
        MsrpUa::join(focus(port), ROOM, aor, JoinOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{aor} joins: {e}"))
    };
    let mut alice = join("sip:alice@atlanta.example.com").await;
    let mut bob = join("sip:bob@biloxi.example.com").await;
    bob.expect_text("Welcome to room 22.").await.unwrap();

    // The first of three chunks, then silence (a sender gone mid-message).
    let text = "u".repeat(5000);
    assert_eq!(
        alice.send_cut(ROOM, &text, 2048, 1).await.unwrap(),
        200,
        "the first chunk is taken and forwarded"
    );
    let sent = std::time::Instant::now();
    let aborted = bob
        .expect_aborted(Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("bob's copy ends with an abort chunk: {e}"));
    assert!(
        sent.elapsed() >= Duration::from_millis(900),
        "aborted by the timer of 1,000 ms, not at once ({:?}, message {aborted})",
        sent.elapsed()
    );
    bob.expect_no_text(&text, QUIET).await.unwrap();

    // Alice's session is still in the room.
    assert_eq!(alice.send(ROOM, "still here").await.unwrap(), 200);
    bob.expect_text("still here").await.unwrap();
    gw.shutdown().await.unwrap();
}

/// A NOTIFY body, read.
fn document(body: &str) -> Document {
    read::read(body.as_bytes()).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test]
async fn changes_within_the_notify_interval_come_in_one_notify() {
    let port = free_port().unwrap();
    let interval_ms = 1000;
    let interval = Duration::from_millis(interval_ms);
    let gw = gateway_spaced(port, interval_ms, "").await;
    let join = |aor: &'static str| async move {
        MsrpUa::join(focus(port), ROOM, aor, JoinOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{aor} joins: {e}"))
    };
    let mut carol = join("sip:carol@chicago.example.com").await;

    // The full NOTIFY comes at once.
    assert_eq!(carol.subscribe().await.unwrap(), 200);
    let full = document(&carol.next_notify(WAIT).await.unwrap());
    let full_at = std::time::Instant::now();
    assert_eq!(full.state, State::Full);
    assert_eq!(full.users.len(), 1);

    // Three changes in quick succession: two joins and a nickname.
    let mut alice = join("sip:alice@atlanta.example.com").await;
    let bob = join("sip:bob@biloxi.example.com").await;
    assert_eq!(alice.nickname("Alice").await.unwrap(), 200);
    assert!(
        full_at.elapsed() < interval,
        "the changes took longer than the interval ({:?}): the test says nothing",
        full_at.elapsed()
    );

    // One partial NOTIFY with both, once the interval has passed.
    let partial = document(&carol.next_notify(WAIT).await.unwrap());
    let gap = full_at.elapsed();
    assert!(
        gap >= interval - Duration::from_millis(200),
        "the partial NOTIFY came {gap:?} after the full one"
    );
    assert_eq!(partial.state, State::Partial);
    assert_eq!(full.version.map(|v| v + 1), partial.version);
    let users: Vec<_> = partial
        .users
        .iter()
        .map(|u| (u.entity.as_str(), u.state, u.nickname.as_deref()))
        .collect();
    assert_eq!(
        users,
        [
            ("sip:alice@atlanta.example.com", State::Full, Some("Alice")),
            ("sip:bob@biloxi.example.com", State::Full, None),
        ],
        "each user once, in its latest state"
    );
    // Nothing else came meanwhile, and nothing is left over.
    assert!(
        carol.next_notify(QUIET + interval).await.is_err(),
        "one NOTIFY for the three changes"
    );

    // A later change: the next NOTIFY, the next version.
    assert_eq!(bob.leave().await.unwrap(), 200);
    let next = document(&carol.next_notify(WAIT).await.unwrap());
    assert_eq!(partial.version.map(|v| v + 1), next.version);
    let users: Vec<_> = next
        .users
        .iter()
        .map(|u| (u.entity.as_str(), u.state))
        .collect();
    assert_eq!(users, [("sip:bob@biloxi.example.com", State::Deleted)]);
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_message_over_a_participants_max_size_is_not_copied_to_it() {
    let port = free_port().unwrap();
    let gw = gateway(port).await;
    let join = |aor: &'static str, max_size: Option<u64>| async move {
        let options = JoinOptions {
            max_size,
            ..JoinOptions::default()
        };
        MsrpUa::join(focus(port), ROOM, aor, options)
            .await
            .unwrap_or_else(|e| panic!("{aor} joins: {e}"))
    };
    let mut alice = join("sip:alice@atlanta.example.com", None).await;
    let mut bob = join("sip:bob@biloxi.example.com", None).await;
    // carol takes messages of up to 1,000 octets (the CPIM body).
    let mut carol = join("sip:carol@chicago.example.com", Some(1000)).await;
    let big = "x".repeat(3000);
    // Whole: bob gets it, carol does not.
    assert_eq!(alice.send(ROOM, &big).await.unwrap(), 200);
    bob.expect_text(&big).await.unwrap();
    // Chunked (500-octet chunks, its total in the first Byte-Range).
    let chunked = "y".repeat(3000);
    assert_eq!(
        alice
            .send_as("sip:alice@atlanta.example.com", ROOM, &chunked, 500)
            .await
            .unwrap(),
        200
    );
    bob.expect_text(&chunked).await.unwrap();
    // A small one reaches carol, and is the first thing she gets after
    // the welcome: neither large one came before it.
    assert_eq!(alice.send(ROOM, "small enough").await.unwrap(), 200);
    loop {
        let r = carol.next_message(WAIT).await.unwrap();
        if r.text == "Welcome to room 22." {
            continue;
        }
        assert!(
            r.text == "small enough",
            "carol got {} octets first",
            r.text.len()
        );
        break;
    }
    carol.expect_no_text(&big, QUIET).await.unwrap();
    carol.expect_no_text(&chunked, QUIET).await.unwrap();
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_re_invite_keeps_the_session_and_a_late_cancel_changes_nothing() {
    let port = free_port().unwrap();
    let gw = gateway(port).await;
    let join = |aor: &'static str| async move {
        MsrpUa::join(focus(port), ROOM, aor, JoinOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{aor} joins: {e}"))
    };
    let mut alice = join("sip:alice@atlanta.example.com").await;
    let mut bob = join("sip:bob@biloxi.example.com").await;
    // RFC 3264 §8: the same offer again gets the same answer; the session
    // does not move (RFC 3261 §14).
    let (status, path) = alice.reinvite(None).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(path.as_deref(), Some(alice.focus_path()));
    assert_eq!(alice.send(ROOM, "after the re-INVITE").await.unwrap(), 200);
    bob.expect_text("after the re-INVITE").await.unwrap();
    // A re-INVITE in a call the room does not know: 481 (RFC 3261 §12.2.2).
    let (status, _) = bob.reinvite(Some("no-such-tag")).await.unwrap();
    assert_eq!(status, 481);
    // RFC 3261 §9.2: the INVITE was answered long ago; the CANCEL gets
    // 200 and changes nothing.
    assert_eq!(alice.cancel_join().await.unwrap(), 200);
    assert_eq!(bob.send(ROOM, "still here").await.unwrap(), 200);
    alice.expect_text("still here").await.unwrap();
    gw.shutdown().await.unwrap();
}
