//! Room history through the hub: what the adapters get in
//! `AdapterContext.history` for history on join (XEP-0045 §7.2.15).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use cpimgate::config::Config;
use cpimgate_model::port::{DeliveryOutcome, HistoryQuery};
use cpimgate_model::time::Timestamp;
use cpimgate_model::{Message, MessageId, NameAddr};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use common::*;

const LOBBY_XMPP: &str = "xmpp:lobby@conference.example.org";
const LOBBY_IRC: &str = "irc://irc.example.org/%23lobby";
const LOBBY_SIP: &str = "sip:lobby@chat.example.com";
const DEV_XMPP: &str = "xmpp:dev@conference.example.org";
const DEV_IRC: &str = "irc://irc.example.org/%23dev";

fn cfg(dir: &Path, history: &str) -> Config {
    config_with(
        dir,
        "",
        &format!(
            r#"
            [history]
            {history}
            [[bridge]]
            name = "dev"
            rooms = [
              {{ adapter = "xmpp", address = "{DEV_XMPP}" }},
              {{ adapter = "irc", address = "{DEV_IRC}" }},
            ]
            "#
        ),
    )
}

fn said(adapter: &str, room_addr: &str, text: &str) -> Message {
    let from = match adapter {
        "irc" => "irc://irc.example.org/alice,isnick",
        "xmpp" => "xmpp:bob@example.org",
        _ => "sip:carol@chat.example.com",
    };
    room_message(adapter, room_addr, from, text)
}

fn query(max_messages: usize) -> HistoryQuery {
    HistoryQuery {
        max_messages,
        since: None,
    }
}

/// The history of `room` as `h`'s adapter sees it: (id, room said in, text).
async fn history(
    h: &Handle,
    adapter: &str,
    room_addr: &str,
    q: HistoryQuery,
) -> Vec<(MessageId, String, String)> {
    history_of(h)
        .await
        .recent(&room(adapter, room_addr), q)
        .await
        .unwrap()
        .into_iter()
        .map(|m| {
            let r = m.room.unwrap();
            (
                m.id,
                format!("{}/{}", r.adapter, r.address),
                m.body.as_text().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn texts(h: &Handle, adapter: &str, room_addr: &str, q: HistoryQuery) -> Vec<String> {
    history(h, adapter, room_addr, q)
        .await
        .into_iter()
        .map(|(_, _, t)| t)
        .collect()
}

/// Rows in the history table (read beside the hub, committed rows only).
async fn stored_rows(cfg: &Config) -> i64 {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(&cfg.store.path)
                .read_only(true),
        )
        .await
        .unwrap();
    let n = sqlx::query_scalar("SELECT COUNT(*) FROM history_message")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n
}

async fn accepted(h: &Handle, m: Message) {
    assert_eq!(send(h, m).await, DeliveryOutcome::Accepted);
}

#[tokio::test]
async fn every_room_of_a_bridge_has_the_history_of_all_of_them_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path(), "");
    let gw = start(&cfg, true).await;

    let sent = [
        said("irc", LOBBY_IRC, "one"),
        said("xmpp", LOBBY_XMPP, "two"),
        said("sip", LOBBY_SIP, "three"),
        said("irc", LOBBY_IRC, "four"),
    ];
    let handles = [&gw.irc, &gw.xmpp, &gw.sip, &gw.irc];
    for (h, m) in handles.iter().zip(&sent) {
        accepted(h, m.clone()).await;
    }
    let expected: Vec<_> = sent
        .iter()
        .map(|m| {
            let r = m.room.clone().unwrap();
            (
                m.id.clone(),
                format!("{}/{}", r.adapter, r.address),
                m.body.as_text().unwrap().to_owned(),
            )
        })
        .collect();
    // Asked from any room of the bridge, by any adapter: the same
    // conversation, each message with the room it was said in.
    assert_eq!(
        history(&gw.xmpp, "xmpp", LOBBY_XMPP, query(50)).await,
        expected
    );
    assert_eq!(
        history(&gw.irc, "irc", LOBBY_IRC, query(50)).await,
        expected
    );
    assert_eq!(
        history(&gw.sip, "sip", LOBBY_SIP, query(50)).await,
        expected
    );
    gw.hub.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn private_messages_other_bridges_and_refusals_stay_out() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path(), "");
    let gw = start(&cfg, true).await;

    accepted(&gw.irc, said("irc", LOBBY_IRC, "public")).await;
    // A private message inside the bridged room, to one XMPP user.
    let mut private = said("irc", LOBBY_IRC, "psst");
    private.private = true;
    private.to = vec![NameAddr::new("im:juliet@xmpp.example.org".parse().unwrap())];
    accepted(&gw.irc, private).await;
    // Another bridge.
    accepted(&gw.xmpp, said("xmpp", DEV_XMPP, "dev talk")).await;
    // Refused: already expired.
    let mut late = said("irc", LOBBY_IRC, "too late");
    late.expires = Some(Timestamp {
        unix_micros: Timestamp::now().unix_micros - 1_000_000,
    });
    assert!(matches!(
        send(&gw.irc, late).await,
        DeliveryOutcome::Failed(_)
    ));
    // Refused: a room in no bridge.
    let stray = said("irc", "irc://irc.example.org/%23stray", "anyone?");
    assert!(matches!(
        send(&gw.irc, stray).await,
        DeliveryOutcome::Failed(_)
    ));

    assert_eq!(
        texts(&gw.xmpp, "xmpp", LOBBY_XMPP, query(50)).await,
        ["public"]
    );
    assert_eq!(
        texts(&gw.irc, "irc", DEV_IRC, query(50)).await,
        ["dev talk"]
    );
    assert!(
        texts(&gw.irc, "irc", "irc://irc.example.org/%23stray", query(50))
            .await
            .is_empty()
    );
    assert_eq!(stored_rows(&cfg).await, 2);
    gw.hub.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn keep_limits_each_bridge_and_the_prune_removes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path(), "keep = 3");
    let gw = start(&cfg, true).await;

    for i in 0..5 {
        accepted(&gw.irc, said("irc", LOBBY_IRC, &format!("lobby {i}"))).await;
    }
    accepted(&gw.irc, said("irc", DEV_IRC, "dev 0")).await;
    // Never more than `keep`, however many are asked for or still stored.
    assert_eq!(
        texts(&gw.sip, "sip", LOBBY_SIP, query(50)).await,
        ["lobby 2", "lobby 3", "lobby 4"]
    );
    // Fewer when fewer are asked for: the newest.
    assert_eq!(
        texts(&gw.sip, "sip", LOBBY_SIP, query(2)).await,
        ["lobby 3", "lobby 4"]
    );
    // maxstanzas="0": none (XEP-0045 §7.2.15).
    assert!(texts(&gw.sip, "sip", LOBBY_SIP, query(0)).await.is_empty());

    // (The writer's own prune may have run already; this one surely does.)
    gw.hub.queue().prune().await.unwrap();
    assert_eq!(stored_rows(&cfg).await, 4, "3 of the lobby, 1 of dev");
    assert_eq!(
        texts(&gw.xmpp, "xmpp", LOBBY_XMPP, query(50)).await,
        ["lobby 2", "lobby 3", "lobby 4"]
    );
    assert_eq!(
        texts(&gw.xmpp, "xmpp", DEV_XMPP, query(50)).await,
        ["dev 0"]
    );
    gw.hub.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn max_age_and_since_leave_out_older_messages() {
    let dir = tempfile::tempdir().unwrap();
    // One day.
    let cfg = cfg(dir.path(), "max_age_s = 86400");
    let gw = start(&cfg, true).await;
    let now = Timestamp::now().unix_micros;
    let hours_ago = |h: i64| Timestamp {
        unix_micros: now - h * 3_600_000_000,
    };

    for (h, text) in [(30, "yesterday"), (3, "3h"), (2, "2h"), (1, "1h")] {
        let mut m = said("irc", LOBBY_IRC, text);
        m.datetime = Some(hours_ago(h));
        accepted(&gw.irc, m).await;
    }
    // A sender's clock ahead of ours: recorded as said when received.
    let mut ahead = said("irc", LOBBY_IRC, "from the future");
    ahead.datetime = Some(Timestamp {
        unix_micros: now + 48 * 3_600_000_000,
    });
    accepted(&gw.irc, ahead).await;

    assert_eq!(
        texts(&gw.xmpp, "xmpp", LOBBY_XMPP, query(50)).await,
        ["3h", "2h", "1h", "from the future"]
    );
    let since = HistoryQuery {
        max_messages: 50,
        since: Some(Timestamp {
            unix_micros: now - 150 * 60_000_000,
        }),
    };
    assert_eq!(
        texts(&gw.xmpp, "xmpp", LOBBY_XMPP, since).await,
        ["2h", "1h", "from the future"]
    );

    gw.hub.queue().prune().await.unwrap();
    assert_eq!(stored_rows(&cfg).await, 4, "the day-old one is pruned");
    gw.hub.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn a_duplicate_is_recorded_once_and_history_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path(), "");
    let gw = start(&cfg, true).await;
    let m = said("xmpp", LOBBY_XMPP, "only once");
    accepted(&gw.xmpp, m.clone()).await;
    accepted(&gw.xmpp, m.clone()).await;
    accepted(&gw.irc, said("irc", LOBBY_IRC, "after")).await;
    assert_eq!(
        texts(&gw.irc, "irc", LOBBY_IRC, query(50)).await,
        ["only once", "after"]
    );
    gw.hub.shutdown(Duration::from_secs(2)).await.unwrap();

    // A new hub over the same file.
    let gw = start(&cfg, true).await;
    assert_eq!(
        texts(&gw.sip, "sip", LOBBY_SIP, query(50)).await,
        ["only once", "after"]
    );
    gw.hub.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test]
async fn disabled_history_records_nothing_and_offers_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path(), "enabled = false");
    let gw = start(&cfg, true).await;
    accepted(&gw.irc, said("irc", LOBBY_IRC, "not kept")).await;
    assert!(
        texts(&gw.xmpp, "xmpp", LOBBY_XMPP, query(50))
            .await
            .is_empty()
    );
    gw.hub.queue().flush().await.unwrap();
    assert_eq!(stored_rows(&cfg).await, 0);
    gw.hub.shutdown(Duration::from_secs(2)).await.unwrap();
}
