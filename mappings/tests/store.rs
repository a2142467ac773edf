//! The store against real SQLite files in a temporary directory.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::Path;

use cpimgate_mappings::{
    Alias, CaseMapping, IdentityId, MappingError, MappingStore, NickScope, RoomAlias, StoreOptions,
};

fn a(s: &str) -> Alias {
    s.parse().unwrap()
}

fn r(s: &str) -> RoomAlias {
    s.parse().unwrap()
}

fn scope(s: &str) -> NickScope {
    s.parse().unwrap()
}

/// What the other tests build on: two people, a bridge, reservations, puppets.
async fn populate(store: &MappingStore) -> (IdentityId, IdentityId) {
    let alice = store
        .upsert_identity(
            Some("Alice"),
            &[
                a("im:alice@atlanta.example.com"),
                a("sip:alice@atlanta.example.com"),
                a("xmpp:alice@xmpp.example.org"),
                a("irc:libera/Alice[m]"),
                a("msrp:sip:lobby@chat.example.com/Alice in wonderland"),
            ],
        )
        .await
        .unwrap();
    let bob = store
        .upsert_identity(None, &[a("im:bob@biloxi.example.com"), a("irc:oftc/bob")])
        .await
        .unwrap();
    store
        .add_room("lobby", r("msrp:sip:lobby@chat.example.com"))
        .await
        .unwrap();
    store
        .add_room("lobby", r("xmpp:lobby@conference.example.org"))
        .await
        .unwrap();
    store
        .add_room("lobby", r("irc:libera/#Lobby"))
        .await
        .unwrap();
    store.add_room("dev", r("irc:oftc/#dev")).await.unwrap();
    store
        .reserve_nick(
            &scope("msrp:sip:lobby@chat.example.com"),
            "Alice in wonderland",
            "im:alice@atlanta.example.com",
        )
        .await
        .unwrap();
    store
        .reserve_nick(&scope("bridge:dev"), "bob", "im:bob@biloxi.example.com")
        .await
        .unwrap();
    store
        .set_irc_nick("libera", "xmpp:carol@xmpp.example.org", "carol[x]")
        .await
        .unwrap();
    (alice, bob)
}

async fn check_populated(store: &MappingStore, alice: IdentityId, bob: IdentityId) {
    // Lookups in every direction, through differently-cased spellings.
    for alias in [
        "im:alice@ATLANTA.example.com",
        "SIP:alice@Atlanta.Example.Com",
        "xmpp:Alice@XMPP.example.org",
        "jid:alice@xmpp.example.org",
        "irc:Libera/alice{M}",
        "msrp:sip:lobby@CHAT.example.com/  alice IN Wonderland ",
    ] {
        let who = store
            .find(&a(alias))
            .unwrap_or_else(|| panic!("{alias} not found"));
        assert_eq!(who.id, alice, "{alias}");
        assert_eq!(who.display_name.as_deref(), Some("Alice"));
        assert_eq!(who.aliases.len(), 5);
        assert_eq!(
            who.aliases[0],
            Alias::Im("im:alice@atlanta.example.com".into())
        );
    }
    // The nick keeps its spelling.
    assert!(
        store
            .find(&a("im:alice@atlanta.example.com"))
            .unwrap()
            .aliases
            .contains(&Alias::IrcNick {
                network: "libera".into(),
                nick: "Alice[m]".into()
            })
    );
    // SIP user parts are case-sensitive.
    assert!(store.find(&a("sip:ALICE@atlanta.example.com")).is_none());
    assert_eq!(store.find(&a("irc:oftc/BOB")).unwrap().id, bob);
    assert_eq!(store.identity(bob).unwrap().display_name, None);
    assert_eq!(
        store.identities().iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![alice, bob]
    );

    // Rooms and bridges.
    assert_eq!(
        store.bridge_of(&r("irc:LIBERA/#lobby")).as_deref(),
        Some("lobby")
    );
    assert_eq!(
        store
            .bridge_of(&r("xmpp:Lobby@Conference.example.org"))
            .as_deref(),
        Some("lobby")
    );
    assert_eq!(store.bridge_of(&r("irc:libera/#dev")), None);
    assert_eq!(
        store.rooms_of("lobby"),
        vec![
            r("msrp:sip:lobby@chat.example.com"),
            r("xmpp:lobby@conference.example.org"),
            RoomAlias::Irc {
                network: "libera".into(),
                channel: "#Lobby".into()
            },
        ]
    );
    let bridges = store.bridges();
    assert_eq!(
        bridges.iter().map(|(b, _)| b.as_str()).collect::<Vec<_>>(),
        ["dev", "lobby"]
    );

    // Reservations: visible from every room of the bridge.
    for room in [
        "msrp:sip:lobby@chat.example.com",
        "irc:libera/#lobby",
        "xmpp:lobby@conference.example.org",
        "bridge:lobby",
    ] {
        assert_eq!(
            store
                .nick_owner(&scope(room), "alice in wonderland")
                .as_deref(),
            Some("im:alice@atlanta.example.com"),
            "{room}"
        );
    }
    assert_eq!(
        store.nick_owner(&scope("irc:oftc/#DEV"), "BOB").as_deref(),
        Some("im:bob@biloxi.example.com")
    );
    assert_eq!(store.nick_owner(&scope("irc:oftc/#other"), "bob"), None);
    assert_eq!(store.reservations().len(), 2);

    // Learned IRC nicks.
    assert_eq!(
        store
            .irc_nick_for("libera", "xmpp:carol@xmpp.example.org")
            .as_deref(),
        Some("carol[x]")
    );
    assert_eq!(
        store.irc_owner_of("Libera", "CAROL{X}").as_deref(),
        Some("xmpp:carol@xmpp.example.org")
    );
    assert_eq!(store.irc_owner_of("oftc", "carol[x]"), None);
    assert_eq!(store.irc_nicks().len(), 1);
}

#[tokio::test]
async fn everything_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.sqlite");
    let (alice, bob) = {
        let store = MappingStore::open(&path).await.unwrap();
        let ids = populate(&store).await;
        check_populated(&store, ids.0, ids.1).await;
        store.sqlite_pool().unwrap().close().await;
        ids
    };
    assert!(path.exists());
    // The cache is rebuilt from disk; migrations run again without effect.
    let store = MappingStore::open(&path).await.unwrap();
    check_populated(&store, alice, bob).await;
    // Allocation continues after the highest id.
    let carol = store
        .upsert_identity(None, &[a("im:carol@example.com")])
        .await
        .unwrap();
    assert!(carol > bob);
}

#[tokio::test]
async fn migrations_are_idempotent_and_tolerate_the_queue_migrator() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.sqlite");
    let first = MappingStore::open(&path).await.unwrap();
    first
        .upsert_identity(None, &[a("im:x@example.com")])
        .await
        .unwrap();
    let pool = first.sqlite_pool().unwrap().clone();

    // The hub's queue applied its own version into the same table.
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (200, 'queue', TRUE, X'00', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();

    // Twice more on the shared pool, once more through a new pool.
    let second = MappingStore::open_pool(pool.clone()).await.unwrap();
    let _third = MappingStore::open_pool(pool.clone()).await.unwrap();
    let fourth = MappingStore::open(&path).await.unwrap();
    assert_eq!(second.identities().len(), 1);
    assert_eq!(fourth.identities().len(), 1);

    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(versions, [100, 101, 102, 200]);

    // WAL journal, as asked.
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn open_error_names_the_path() {
    let err = MappingStore::open(Path::new("/nonexistent/dir/x.sqlite"))
        .await
        .unwrap_err();
    assert!(matches!(err, MappingError::Open { .. }), "{err:?}");
    let line = err.to_string();
    assert!(line.contains("/nonexistent/dir/x.sqlite"), "{line}");
    assert!(!line.contains('\n'), "{line}");
}

#[tokio::test]
async fn alias_conflicts() {
    let store = MappingStore::open_in_memory().await.unwrap();
    let (alice, bob) = populate(&store).await;

    // An alias of another person.
    let err = store
        .add_alias(bob, a("xmpp:ALICE@xmpp.example.org"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, MappingError::AliasTaken { owner, alias } if *owner == alice && alias.to_string() == "xmpp:alice@xmpp.example.org"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "xmpp:alice@xmpp.example.org already belongs to identity #1"
    );
    // Folded IRC nick of another person.
    assert!(matches!(
        store.add_alias(bob, a("irc:libera/ALICE{m}")).await,
        Err(MappingError::AliasTaken { .. })
    ));
    // Upserting aliases of two people.
    assert!(matches!(
        store
            .upsert_identity(
                None,
                &[a("im:bob@biloxi.example.com"), a("irc:libera/alice[m]")]
            )
            .await,
        Err(MappingError::AliasTaken { .. })
    ));
    // Same person: idempotent, completes, updates the display name.
    store
        .add_alias(alice, a("sip:alice@atlanta.example.com"))
        .await
        .unwrap();
    let again = store
        .upsert_identity(
            Some("Alice Liddell"),
            &[
                a("im:alice@atlanta.example.com"),
                a("sip:alice@gw.example.com"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(again, alice);
    let who = store.identity(alice).unwrap();
    assert_eq!(who.display_name.as_deref(), Some("Alice Liddell"));
    assert_eq!(who.aliases.len(), 6);
    assert_eq!(store.identities().len(), 2);

    // Unknown person, empty upsert.
    assert!(matches!(
        store.add_alias(IdentityId(99), a("im:z@example.com")).await,
        Err(MappingError::UnknownIdentity(IdentityId(99)))
    ));
    assert!(matches!(
        store.upsert_identity(Some("x"), &[]).await,
        Err(MappingError::Invalid { .. })
    ));

    // Removal, then the alias is free for someone else.
    assert!(
        store
            .remove_alias(&a("sip:alice@gw.example.com"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .remove_alias(&a("sip:alice@gw.example.com"))
            .await
            .unwrap()
    );
    store
        .add_alias(bob, a("sip:alice@gw.example.com"))
        .await
        .unwrap();
    assert_eq!(store.find(&a("sip:alice@gw.example.com")).unwrap().id, bob);

    store.set_display_name(bob, Some("Bob")).await.unwrap();
    assert_eq!(
        store
            .find(&a("irc:oftc/bob"))
            .unwrap()
            .display_name
            .as_deref(),
        Some("Bob")
    );
    assert!(store.remove_identity(bob).await.unwrap());
    assert!(store.find(&a("irc:oftc/bob")).is_none());
    store
        .upsert_identity(None, &[a("irc:oftc/bob")])
        .await
        .unwrap();
}

#[tokio::test]
async fn room_conflicts() {
    let store = MappingStore::open_in_memory().await.unwrap();
    populate(&store).await;
    // Idempotent in the same bridge, refused in another.
    store
        .add_room("lobby", r("irc:libera/#LOBBY"))
        .await
        .unwrap();
    let err = store
        .add_room("dev", r("irc:libera/#lobby"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, MappingError::RoomBridged { bridge, .. } if bridge == "lobby"),
        "{err:?}"
    );
    assert!(matches!(
        store.add_room("two words", r("irc:libera/#x")).await,
        Err(MappingError::Invalid { .. })
    ));

    assert!(store.remove_room(&r("irc:libera/#lobby")).await.unwrap());
    assert!(!store.remove_room(&r("irc:libera/#lobby")).await.unwrap());
    store.add_room("dev", r("irc:libera/#lobby")).await.unwrap();
    assert_eq!(store.rooms_of("lobby").len(), 2);
    assert_eq!(store.rooms_of("dev").len(), 2);
    store.remove_room(&r("irc:oftc/#dev")).await.unwrap();
    store.remove_room(&r("irc:libera/#lobby")).await.unwrap();
    assert!(store.rooms_of("dev").is_empty());
    assert_eq!(store.bridges().len(), 1);
}

#[tokio::test]
async fn nickname_reservations() {
    let store = MappingStore::open_in_memory().await.unwrap();
    populate(&store).await;
    let irc = scope("irc:libera/#lobby");
    let muc = scope("xmpp:lobby@conference.example.org");

    // Taken in a bridged world: refused everywhere in the bridge, naming the holder.
    let err = store
        .reserve_nick(&irc, "ALICE   in wonderland", "im:mallory@example.net")
        .await
        .unwrap_err();
    match &err {
        MappingError::NickTaken { nick, owner } => {
            assert_eq!(nick, "Alice in wonderland");
            assert_eq!(owner, "im:alice@atlanta.example.com");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store
            .reserve_nick(
                &scope("bridge:lobby"),
                "alice in wonderland",
                "im:mallory@example.net"
            )
            .await,
        Err(MappingError::NickTaken { .. })
    ));
    // Same owner: idempotent, returns the first spelling.
    let res = store
        .reserve_nick(
            &scope("msrp:sip:lobby@chat.example.com"),
            "alice in WONDERLAND",
            "im:alice@atlanta.example.com",
        )
        .await
        .unwrap();
    assert_eq!(res.nick, "Alice in wonderland");
    // The same owner may hold it in another room of the bridge as well.
    store
        .reserve_nick(&muc, "Alice in wonderland", "im:alice@atlanta.example.com")
        .await
        .unwrap();
    // An unbridged room is another scope.
    store
        .reserve_nick(
            &scope("irc:libera/#elsewhere"),
            "Alice in wonderland",
            "im:mallory@example.net",
        )
        .await
        .unwrap();
    // IRC folding applies to reservations too (a bridge may include IRC).
    assert!(matches!(
        store
            .reserve_nick(&scope("bridge:dev"), "BOB", "im:mallory@example.net")
            .await,
        Err(MappingError::NickTaken { .. })
    ));

    // Release: only the owner, only in the exact scope.
    assert!(
        !store
            .release_nick(&muc, "alice in wonderland", "im:mallory@example.net")
            .await
            .unwrap()
    );
    assert!(
        store
            .release_nick(&muc, "alice in wonderland", "im:alice@atlanta.example.com")
            .await
            .unwrap()
    );
    assert!(store.nick_owner(&muc, "alice in wonderland").is_some());
    assert!(
        store
            .release_nick(
                &scope("msrp:sip:lobby@chat.example.com"),
                "Alice in wonderland",
                "im:alice@atlanta.example.com"
            )
            .await
            .unwrap()
    );
    assert_eq!(store.nick_owner(&muc, "alice in wonderland"), None);
    store
        .reserve_nick(&irc, "Alice in wonderland", "im:mallory@example.net")
        .await
        .unwrap();
    assert_eq!(
        store.nick_owner(&muc, "ALICE IN WONDERLAND").as_deref(),
        Some("im:mallory@example.net")
    );

    // Bad input.
    assert!(matches!(
        store.reserve_nick(&irc, "  ", "im:x@example.com").await,
        Err(MappingError::Invalid { .. })
    ));
    assert!(matches!(
        store.reserve_nick(&irc, "x\ny", "im:x@example.com").await,
        Err(MappingError::Invalid { .. })
    ));
    assert!(matches!(
        store.reserve_nick(&irc, "x", "").await,
        Err(MappingError::Invalid { .. })
    ));
}

#[tokio::test]
async fn learned_irc_nicks() {
    let store = MappingStore::open_in_memory().await.unwrap();
    populate(&store).await;
    let carol = "xmpp:carol@xmpp.example.org";
    let dave = "sip:dave@example.com";

    // Taken by another user, under the network's CASEMAPPING.
    let err = store
        .set_irc_nick("libera", dave, "CAROL{x}")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, MappingError::NickTaken { nick, owner } if nick == "carol[x]" && owner == carol),
        "{err:?}"
    );
    // Same user, same nick: fine. Another network: fine.
    store
        .set_irc_nick("libera", carol, "carol[x]")
        .await
        .unwrap();
    store.set_irc_nick("oftc", dave, "carol[x]").await.unwrap();
    // A user changing nick frees the old one.
    store.set_irc_nick("libera", carol, "carol").await.unwrap();
    assert_eq!(
        store.irc_nick_for("libera", carol).as_deref(),
        Some("carol")
    );
    assert_eq!(store.irc_owner_of("libera", "carol[x]"), None);
    store
        .set_irc_nick("libera", dave, "Carol[X]")
        .await
        .unwrap();
    assert_eq!(
        store.irc_owner_of("libera", "carol{x}").as_deref(),
        Some(dave)
    );
    // Case change of one's own nick.
    store.set_irc_nick("libera", carol, "Carol").await.unwrap();
    assert_eq!(
        store.irc_nick_for("libera", carol).as_deref(),
        Some("Carol")
    );

    assert!(matches!(
        store.set_irc_nick("libera", dave, "#chan").await,
        Err(MappingError::Invalid { .. })
    ));
    assert!(matches!(
        store.set_irc_nick("libera", "a b", "ok").await,
        Err(MappingError::Invalid { .. })
    ));

    assert!(store.forget_irc_nick("libera", carol).await.unwrap());
    assert!(!store.forget_irc_nick("libera", carol).await.unwrap());
    assert_eq!(store.irc_owner_of("libera", "carol"), None);
    assert_eq!(store.irc_nicks().len(), 2);
}

#[tokio::test]
async fn casemapping_per_network_and_refolding() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.sqlite");
    let ascii = StoreOptions {
        casemappings: HashMap::from([("Libera".to_owned(), CaseMapping::Ascii)]),
    };
    {
        let store = MappingStore::open_with(&path, ascii.clone()).await.unwrap();
        assert_eq!(store.casemapping("libera"), CaseMapping::Ascii);
        assert_eq!(store.casemapping("oftc"), CaseMapping::Rfc1459);
        // Under ascii, `[` and `{` are different nicks.
        store
            .upsert_identity(None, &[a("irc:libera/x[1]")])
            .await
            .unwrap();
        store
            .upsert_identity(None, &[a("irc:libera/Y{1}")])
            .await
            .unwrap();
        assert!(store.find(&a("irc:libera/x{1}")).is_none());
        assert!(store.find(&a("irc:libera/X[1]")).is_some());
        store.add_room("b", r("irc:libera/#Chan[1]")).await.unwrap();
        store
            .set_irc_nick("libera", "im:p@example.com", "p[1]")
            .await
            .unwrap();
        assert_eq!(store.irc_owner_of("libera", "p{1}"), None);
        store.sqlite_pool().unwrap().close().await;
    }
    // The network turns out to be rfc1459: keys are re-folded at open.
    let store = MappingStore::open(&path).await.unwrap();
    assert!(store.find(&a("irc:libera/X{1}")).is_some());
    assert!(store.find(&a("irc:libera/y[1]")).is_some());
    assert_eq!(
        store.bridge_of(&r("irc:libera/#chan{1}")).as_deref(),
        Some("b")
    );
    assert_eq!(
        store.irc_owner_of("libera", "P{1}").as_deref(),
        Some("im:p@example.com")
    );
    // And the stored keys were rewritten: the database agrees with the cache.
    assert!(matches!(
        store
            .upsert_identity(None, &[a("irc:libera/X{1}"), a("irc:libera/y[1]")])
            .await,
        Err(MappingError::AliasTaken { .. })
    ));
    let keys: Vec<String> =
        sqlx::query_scalar("SELECT lookup_key FROM mapping_aliases ORDER BY lookup_key")
            .fetch_all(store.sqlite_pool().unwrap())
            .await
            .unwrap();
    assert_eq!(keys, ["irc:libera/x{1}", "irc:libera/y{1}"]);
    store.sqlite_pool().unwrap().close().await;

    // Two names that only ascii keeps apart: going back to rfc1459 is refused
    // with a reason, and nothing is rewritten.
    {
        let store = MappingStore::open_with(&path, ascii.clone()).await.unwrap();
        store
            .upsert_identity(None, &[a("irc:libera/z[1]")])
            .await
            .unwrap();
        store
            .upsert_identity(None, &[a("irc:libera/z{1}")])
            .await
            .unwrap();
        store.sqlite_pool().unwrap().close().await;
    }
    let err = MappingStore::open(&path).await.unwrap_err();
    assert!(
        matches!(
            &err,
            MappingError::Invalid {
                what: "CASEMAPPING",
                ..
            }
        ),
        "{err:?}"
    );
    let store = MappingStore::open_with(&path, ascii).await.unwrap();
    assert_eq!(store.identities().len(), 4);
}

#[tokio::test]
async fn identities_serialise_for_the_cli() {
    let store = MappingStore::open_in_memory().await.unwrap();
    let id = store
        .upsert_identity(
            Some("Alice"),
            &[a("im:alice@example.com"), a("irc:libera/alice")],
        )
        .await
        .unwrap();
    let json = serde_json::to_string(&store.identity(id).unwrap()).unwrap();
    assert_eq!(
        json,
        r#"{"id":1,"display_name":"Alice","aliases":["im:alice@example.com","irc:libera/alice"]}"#
    );
    let back: cpimgate_mappings::Identity = serde_json::from_str(&json).unwrap();
    assert_eq!(back, store.identity(id).unwrap());
    let res = store
        .reserve_nick(&scope("bridge:b"), "Al", "im:alice@example.com")
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_string(&res).unwrap(),
        r#"{"scope":"bridge:b","nick":"Al","owner":"im:alice@example.com"}"#
    );
}

#[tokio::test]
async fn clones_share_the_cache() {
    let store = MappingStore::open_in_memory().await.unwrap();
    let other = store.clone();
    let task =
        tokio::spawn(async move { other.upsert_identity(None, &[a("im:t@example.com")]).await });
    task.await.unwrap().unwrap();
    assert!(store.find(&a("im:t@example.com")).is_some());
}
