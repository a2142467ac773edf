//! Digest: published test vectors, parsing, and round trips between our
//! server and our client.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;

use super::*;

fn fixed(value: &'static str) -> impl FnMut() -> String {
    move || value.to_owned()
}

/// RFC 2617 §3.5: the example challenge and the response it documents.
#[test]
fn rfc2617_section_3_5_example() {
    let challenge = Challenge::parse(
        "Digest\r\n                 realm=\"testrealm@host.com\",\r\n                 \
         qop=\"auth,auth-int\",\r\n                 \
         nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\",\r\n                 \
         opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
    )
    .expect("the RFC's challenge parses");
    assert_eq!(challenge.realm, "testrealm@host.com");
    assert_eq!(challenge.qop, vec![Qop::Auth, Qop::AuthInt]);
    assert_eq!(challenge.algorithm, Algorithm::Md5);
    let mut client = DigestClient::new("Mufasa", "Circle Of Life");
    let request = DigestRequest {
        method: "GET",
        uri: "/dir/index.html",
        body: b"",
    };
    let credentials = client
        .authorize(&challenge, &request, &mut fixed("0a4f113b"))
        .expect("supported");
    assert_eq!(credentials.response, "6629fae49393a05397450978507c4ef1");
    assert_eq!(credentials.nc, Some(1));
    assert_eq!(credentials.qop, Some(Qop::Auth));
    assert_eq!(
        credentials.opaque.as_deref(),
        Some("5ccc069c403ebaf9f0171e9517f40e41")
    );
}

const RFC7616_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
const RFC7616_OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";
const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

fn rfc7616_answer(algorithm: &str) -> Credentials {
    let challenge = Challenge::parse(&format!(
        "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", \
         algorithm={algorithm}, nonce=\"{RFC7616_NONCE}\", opaque=\"{RFC7616_OPAQUE}\""
    ))
    .expect("the RFC's challenge parses");
    let mut client = DigestClient::new("Mufasa", "Circle of Life");
    let request = DigestRequest {
        method: "GET",
        uri: "/dir/index.html",
        body: b"",
    };
    client
        .authorize(&challenge, &request, &mut fixed(RFC7616_CNONCE))
        .expect("supported")
}

/// RFC 7616 §3.9.1: the same request answered with MD5 and with SHA-256.
#[test]
fn rfc7616_section_3_9_1_examples() {
    assert_eq!(
        rfc7616_answer("MD5").response,
        "8ca523f5e9506fed4657c9700eebdbec"
    );
    assert_eq!(
        rfc7616_answer("SHA-256").response,
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    );
}

#[test]
fn rfc2069_answer_has_no_cnonce_and_no_nc() {
    let challenge =
        Challenge::parse("Digest realm=\"r\", nonce=\"n\"").expect("a 2069 challenge parses");
    let mut client = DigestClient::new("u", "p");
    let request = DigestRequest {
        method: "REGISTER",
        uri: "sip:r",
        body: b"",
    };
    let credentials = client
        .authorize(&challenge, &request, &mut fixed("c"))
        .expect("supported");
    assert_eq!(
        (credentials.cnonce, credentials.nc, credentials.qop),
        (None, None, None)
    );
    // KD(H(A1), nonce:H(A2)) computed by hand from its parts.
    let ha1 = Algorithm::Md5.hash(&[b"u:r:p"]);
    let ha2 = Algorithm::Md5.hash(&[b"REGISTER:sip:r"]);
    let expected = Algorithm::Md5.hash(&[ha1.as_bytes(), b":n:", ha2.as_bytes()]);
    assert_eq!(credentials.response, expected);
    // -sess needs qop (RFC 3261 §22.4 item 8).
    let sess =
        Challenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=MD5-sess").expect("parses");
    assert_eq!(
        client.authorize(&sess, &request, &mut fixed("c")),
        Err(Error::SessionWithoutQop(Algorithm::Md5Sess))
    );
}

#[test]
fn nc_counts_per_nonce_and_restarts_with_a_new_one() {
    let mut client = DigestClient::new("u", "p");
    let request = DigestRequest {
        method: "MESSAGE",
        uri: "sip:b@r",
        body: b"x",
    };
    let first = Challenge::parse("Digest realm=\"r\", nonce=\"one\", qop=\"auth\"").expect("ok");
    let second = Challenge::parse("Digest realm=\"r\", nonce=\"two\", qop=\"auth\"").expect("ok");
    let nc = |client: &mut DigestClient, c: &Challenge| {
        client
            .authorize(c, &request, &mut fixed("c"))
            .expect("supported")
            .nc
    };
    assert_eq!(nc(&mut client, &first), Some(1));
    assert_eq!(nc(&mut client, &first), Some(2));
    assert_eq!(nc(&mut client, &second), Some(1));
}

#[test]
fn the_strongest_supported_challenge_is_chosen() {
    let values = [
        "Digest realm=\"r\", nonce=\"a\", algorithm=MD5, qop=\"auth\"",
        "Digest realm=\"r\", nonce=\"b\", algorithm=SHA-512-256, qop=\"auth\"",
        "Basic realm=\"r\"",
        "Digest realm=\"r\", nonce=\"c\", algorithm=SHA-256, qop=\"auth\"",
        "Digest realm=\"r\", nonce=\"d\", algorithm=SHA-256-sess, qop=\"auth\"",
    ];
    let chosen = DigestClient::choose_header_values(values).expect("one is supported");
    assert_eq!(
        (chosen.algorithm, chosen.nonce.as_str()),
        (Algorithm::Sha256, "c")
    );
    let chosen = DigestClient::choose_header_values([values[0], values[1]]).expect("MD5");
    assert_eq!(chosen.nonce, "a");
    assert_eq!(
        DigestClient::choose_header_values([values[1], values[2]]),
        None
    );
}

#[test]
fn challenge_parsing_is_tolerant_and_typed() {
    let c = Challenge::parse(
        "  digest   REALM = \"a \\\"quoted\\\" realm\" ,, nonce=abc/def+=,\tqop=\"auth-int\",\
         unknown=\"x\", stale=true, algorithm=sha-256",
    )
    .expect("tolerated");
    assert_eq!(c.realm, "a \"quoted\" realm");
    assert_eq!(c.nonce, "abc/def+=");
    assert_eq!(c.qop, vec![Qop::AuthInt]);
    assert!(c.stale);
    assert_eq!(c.algorithm, Algorithm::Sha256);
    assert!(
        !Challenge::parse("Digest realm=\"r\", nonce=\"n\", stale=no")
            .expect("ok")
            .stale
    );

    assert_eq!(Challenge::parse(""), Err(Error::MissingScheme));
    assert_eq!(
        Challenge::parse("Basic realm=\"r\""),
        Err(Error::NotDigest("Basic".into()))
    );
    assert_eq!(
        Challenge::parse("Digest nonce=\"n\""),
        Err(Error::MissingParam("realm"))
    );
    assert!(matches!(
        Challenge::parse("Digest realm=\"r"),
        Err(Error::Syntax {
            expected: "closing quote",
            ..
        })
    ));
    assert!(matches!(
        Challenge::parse("Digest realm=\"r\" nonce=\"n\""),
        Err(Error::Syntax { offset: 17, .. })
    ));
    assert_eq!(
        Challenge::parse("Digest realm=\"r\", realm=\"s\", nonce=\"n\""),
        Err(Error::DuplicateParam("realm".into()))
    );
    assert_eq!(
        Challenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-1"),
        Err(Error::UnsupportedAlgorithm("SHA-1".into()))
    );
    assert_eq!(
        Challenge::parse("Digest realm=\"r\", nonce=\"n\", qop=\"auth-conf\""),
        Err(Error::UnsupportedQop("auth-conf".into()))
    );
    // A CR or LF inside a quoted-string never survives into a value.
    let folded = Challenge::parse("Digest realm=\"a\r\n b\", nonce=\"n\"").expect("folding");
    assert_eq!(folded.realm, "a b");
    assert!(Challenge::parse("Digest realm=\"a\\\r\", nonce=\"n\"").is_err());
}

#[test]
fn credentials_parse_and_write_back() {
    let value = "Digest username=\"bob\", realm=\"biloxi.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", \
                 uri=\"sip:bob@biloxi.com\", qop=auth, nc=00000001, cnonce=\"0a4f113b\", \
                 response=\"6629fae49393a05397450978507c4ef1\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
    let c = Credentials::parse(value).expect("RFC 3261 §22.4 example parses");
    assert_eq!(c.username, "bob");
    assert_eq!(c.nc, Some(1));
    assert_eq!(c.qop, Some(Qop::Auth));
    let again = Credentials::parse(&c.to_header_value().expect("quotable")).expect("round trip");
    assert_eq!(again, c);

    assert_eq!(
        Credentials::parse(
            "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"x\", response=\"r\", qop=auth, nc=00000001"
        ),
        Err(Error::MissingParam("cnonce"))
    );
    assert_eq!(
        Credentials::parse(
            "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"x\", response=\"r\", qop=auth, cnonce=\"c\", nc=1"
        ),
        Err(Error::InvalidParam { name: "nc" })
    );
}

// ---------------------------------------------------------------------
// Our server against our client

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn alice(user: &str, realm: &str) -> Option<String> {
    (user == "alice" && realm == "gw.example.com").then(|| "wonderland".to_owned())
}

const REQUEST: DigestRequest<'static> = DigestRequest {
    method: "MESSAGE",
    uri: "sip:bob@gw.example.com",
    body: b"hello",
};

fn answer(server: &DigestServer, now: SystemTime, user: &str, password: &str) -> Credentials {
    let challenge = Challenge::parse(&server.challenge(now, false).to_header_value())
        .expect("our challenge parses");
    DigestClient::new(user, password)
        .authorize(&challenge, &REQUEST, &mut RandomCnonce)
        .expect("our challenge is supported")
}

#[test]
fn round_trip_for_every_algorithm_and_qop() {
    for algorithm in Algorithm::ALL {
        for qop in [Qop::Auth, Qop::AuthInt] {
            let server = DigestServer::new("gw.example.com", SECRET.to_vec())
                .with_algorithms(vec![algorithm])
                .with_qop(vec![qop]);
            let credentials = answer(&server, at(0), "alice", "wonderland");
            assert_eq!(credentials.algorithm, Some(algorithm));
            assert_eq!(credentials.qop, Some(qop));
            let header = credentials.to_header_value().expect("quotable");
            assert_eq!(
                server.verify_header(at(10), &REQUEST, &header, &alice),
                Verdict::Authenticated {
                    username: "alice".into()
                },
                "{algorithm} {qop:?}"
            );
            if qop == Qop::AuthInt {
                let altered = DigestRequest {
                    body: b"HELLO",
                    ..REQUEST
                };
                assert_eq!(
                    server.verify(at(10), &altered, &credentials, &alice),
                    Verdict::WrongResponse,
                    "auth-int covers the body"
                );
            }
        }
    }
}

#[test]
fn each_failure_has_its_own_verdict() {
    let server = DigestServer::new("gw.example.com", SECRET.to_vec());
    let good = answer(&server, at(0), "alice", "wonderland");
    assert!(matches!(
        server.verify(at(1), &REQUEST, &good, &alice),
        Verdict::Authenticated { .. }
    ));

    let wrong_password = answer(&server, at(0), "alice", "looking-glass");
    assert_eq!(
        server.verify(at(1), &REQUEST, &wrong_password, &alice),
        Verdict::WrongResponse
    );

    let unknown = answer(&server, at(0), "mallory", "x");
    assert_eq!(
        server.verify(at(1), &REQUEST, &unknown, &alice),
        Verdict::UnknownUser
    );

    let mut wrong_realm = good.clone();
    wrong_realm.realm = "elsewhere.example.com".into();
    assert_eq!(
        server.verify(at(1), &REQUEST, &wrong_realm, &alice),
        Verdict::WrongRealm
    );

    // A nonce with one digit of its timestamp changed: the MAC no longer
    // checks.
    let mut tampered = good.clone();
    let first = if tampered.nonce.starts_with('0') {
        "1"
    } else {
        "0"
    };
    tampered.nonce.replace_range(..1, first);
    assert_eq!(
        server.verify(at(1), &REQUEST, &tampered, &alice),
        Verdict::InvalidNonce
    );
    // A nonce signed with another secret is not ours either.
    let other = DigestServer::new("gw.example.com", b"another secret".to_vec());
    let foreign = answer(&other, at(0), "alice", "wonderland");
    assert_eq!(
        server.verify(at(1), &REQUEST, &foreign, &alice),
        Verdict::InvalidNonce
    );

    // Expired but right: stale. Expired and wrong: wrong.
    assert_eq!(
        server.verify(at(301), &REQUEST, &good, &alice),
        Verdict::Stale
    );
    assert_eq!(
        server.verify(at(301), &REQUEST, &wrong_password, &alice),
        Verdict::WrongResponse
    );
    let stale = server.challenge(at(301), true).to_header_value();
    assert!(Challenge::parse(&stale).expect("parses").stale);

    let elsewhere = DigestRequest {
        uri: "sip:carol@gw.example.com",
        ..REQUEST
    };
    assert_eq!(
        server.verify(at(1), &elsewhere, &good, &alice),
        Verdict::UriMismatch
    );
    let lenient = DigestServer::new("gw.example.com", SECRET.to_vec()).with_uri_check(false);
    assert!(matches!(
        lenient.verify(at(1), &elsewhere, &good, &alice),
        Verdict::Authenticated { .. }
    ));

    let md5_only =
        DigestServer::new("gw.example.com", SECRET.to_vec()).with_algorithms(vec![Algorithm::Md5]);
    assert_eq!(
        md5_only.verify(at(1), &REQUEST, &good, &alice),
        Verdict::WrongAlgorithm
    );
    assert!(matches!(
        server.verify_header(at(1), &REQUEST, "Digest username=", &alice),
        Verdict::Malformed(_)
    ));
}

#[test]
fn server_accepts_rfc2069_answers() {
    // RFC 3261 §22.4: servers stay compatible with RFC 2069 clients,
    // which send neither qop, cnonce nor nc.
    let server = DigestServer::new("gw.example.com", SECRET.to_vec());
    let mut challenge = server.challenge(at(0), false);
    challenge.qop.clear();
    let credentials = DigestClient::new("alice", "wonderland")
        .authorize(&challenge, &REQUEST, &mut RandomCnonce)
        .expect("supported");
    assert_eq!(credentials.qop, None);
    assert_eq!(
        server.verify(at(1), &REQUEST, &credentials, &alice),
        Verdict::Authenticated {
            username: "alice".into()
        }
    );
}

#[test]
fn server_offers_sha256_first_then_md5() {
    let server = DigestServer::new("gw.example.com", SECRET.to_vec());
    let offered: Vec<Algorithm> = server
        .challenges(at(0), false)
        .iter()
        .map(|c| c.algorithm)
        .collect();
    assert_eq!(offered, vec![Algorithm::Sha256, Algorithm::Md5]);
    let a = server.challenge(at(0), false).nonce;
    let b = server.challenge(at(0), false).nonce;
    assert_ne!(a, b, "nonces issued in the same second differ");
}

proptest! {
    #[test]
    fn parsers_never_panic(text in "\\PC{0,200}") {
        let _ = Challenge::parse(&text);
        let _ = Credentials::parse(&text);
        let _ = Challenge::parse(&format!("Digest {text}"));
        let _ = Credentials::parse(&format!("Digest {text}"));
    }

    #[test]
    fn parsers_never_panic_on_near_misses(text in "[Dd]igest[ \t\r\n]*([a-z]{1,6}[ ]?=[ ]?(\"([^\"\\\\]|\\\\.){0,8}\"?|[a-z0-9/+]{0,6})[ ,]{0,3}){0,6}") {
        let _ = Challenge::parse(&text);
        let _ = Credentials::parse(&text);
    }

    #[test]
    fn client_header_values_parse_back(
        user in "[^\\p{Cc}]{1,20}",
        realm in "[^\\p{Cc}]{0,20}",
        nonce in "[^\\p{Cc}]{1,20}",
        uri in "[^\\p{Cc}]{1,30}",
        cnonce in "[a-zA-Z0-9/+=]{1,20}",
        algorithm in prop::sample::select(&Algorithm::ALL[..]),
        qop in prop::option::of(prop::sample::select(&[Qop::Auth, Qop::AuthInt][..])),
    ) {
        let challenge = Challenge {
            realm,
            nonce,
            opaque: Some("o\"p\\q".into()),
            stale: false,
            algorithm,
            qop: qop.into_iter().collect(),
            domain: None,
        };
        prop_assert_eq!(&Challenge::parse(&challenge.to_header_value()).expect("parses"), &challenge);
        let request = DigestRequest { method: "INVITE", uri: &uri, body: b"" };
        let mut client = DigestClient::new(user, "pw");
        match client.authorize(&challenge, &request, &mut move || cnonce.clone()) {
            Ok(credentials) => {
                let header = credentials.to_header_value().expect("quotable");
                prop_assert_eq!(Credentials::parse(&header).expect("parses back"), credentials);
            }
            Err(error) => {
                prop_assert_eq!(error, Error::SessionWithoutQop(algorithm));
                prop_assert!(qop.is_none() && algorithm.is_session());
            }
        }
    }
}
