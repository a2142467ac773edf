//! The `cpimgate` binary over real processes and sockets: `run` on the
//! quickstart config (health, readiness, metrics over HTTP, clean stop on
//! SIGTERM), `check-config`, `inspect` on the specification fixtures, and
//! `mappings`.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cpimgate"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixtures(kind: &str) -> PathBuf {
    repo().join("gateway/model/tests/fixtures").join(kind)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 GET; returns the status code and the body.
fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let code = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((code, body))
}

struct Running {
    child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for_http(port: u16, child: &mut Child) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http_get(port, "/healthz") {
            return r;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("cpimgate exited early with {status}: {err}");
        }
        assert!(Instant::now() < deadline, "admin listener did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn quickstart_runs_answers_health_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let store = dir.path().join("quick.sqlite");
    let child = bin()
        .args(["run", "--config"])
        .arg(repo().join("examples/quickstart.toml"))
        .env("CPIMGATE__ADMIN__LISTEN", format!("127.0.0.1:{port}"))
        .env("CPIMGATE__STORE__PATH", &store)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut running = Running { child };
    let (code, body) = wait_for_http(port, &mut running.child);
    assert_eq!(code, 200);
    assert_eq!(body, "ok\n");

    // No adapters configured: vacuously ready.
    let (code, body) = http_get(port, "/readyz").unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"ready\":true"), "{body}");
    let (code, body) = http_get(port, "/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(body.contains("cpimgate_queue_depth"), "metrics: {body}");
    assert!(store.exists(), "the SQLite file was created on first run");

    let pid = running.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = running.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "cpimgate did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    running
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "exit {status}: {err}");
    assert!(err.contains("SIGTERM received"), "{err}");
    assert!(err.contains("stopped"), "{err}");
}

fn check_config(text: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.toml");
    std::fs::write(&p, text).unwrap();
    bin().arg("check-config").arg(&p).output().unwrap()
}

#[test]
fn check_config_accepts_the_examples_and_names_bad_keys() {
    for example in [
        "examples/quickstart.toml",
        "examples/sip-sidecar/cpimgate.toml",
        "examples/irc-muc-puppet/cpimgate.toml",
        "examples/federated-room/cpimgate.toml",
    ] {
        let ok = bin()
            .arg("check-config")
            .arg(repo().join(example))
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{example}: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
    }

    let bad = check_config(
        "[adapters.sip]\nkind = \"sip\"\ndomains = [\"gw.example.org\"]\nudp = [\"127.0.0.1:5060\"]\noutbound_proxy = \"proxy\"\n",
    );
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("adapters.sip.outbound_proxy"), "{err}");

    let bad = check_config(
        "[adapters.sip]\nkind = \"sip\"\ndomains = [\"gw.example.org\"]\nudp = [\"127.0.0.1:5060\"]\n[[adapters.sip.register]]\naor = \"sip:pbx.example.org\"\naddress = \"bob@xmpp.example.org\"\n",
    );
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("adapters.sip.register[0].aor"), "{err}");

    let bad = check_config("[gateway]\nnmae = \"x\"\n");
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("nmae"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one-line reason: {err}");

    let bad = check_config("[store]\npath = \"/nonexistent/dir/x.sqlite\"\n");
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("store.path") && err.contains("/nonexistent/dir"),
        "{err}"
    );

    let bad = check_config(
        "[adapters.x]\nkind = \"embedded\"\n[[bridge]]\nname = \"b\"\nrooms = [{adapter = \"x\", address = \"bogus\"}, {adapter = \"x\", address = \"xmpp:c@d\"}]\n",
    );
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("bridge[0].rooms[0].address"), "{err}");
}

fn inspect(kind: &str, file: &Path) -> Output {
    bin()
        .args(["inspect", "--as", kind])
        .arg(file)
        .output()
        .unwrap()
}

#[test]
fn inspect_understands_every_cpim_fixture() {
    let mut seen = 0;
    let mut messages = 0;
    for entry in std::fs::read_dir(fixtures("cpim")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("cpim") {
            continue;
        }
        let out = inspect("cpim", &path);
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["kind"], "cpim");
        assert!(v["cpim"]["headers"].is_array(), "{}: {v}", path.display());
        let text = std::fs::read_to_string(&path).unwrap();
        if text.lines().any(|l| l.starts_with("From: ")) {
            assert!(v["message"]["from"].is_object(), "{}: {v}", path.display());
            messages += 1;
        } else {
            assert!(v["not_a_message"].is_string(), "{}: {v}", path.display());
        }
        seen += 1;
    }
    assert!(
        seen >= 20,
        "expected the RFC 3862 and RFC 7701 fixtures, found {seen}"
    );
    assert!(messages >= 8, "whole messages among them: {messages}");
}

#[test]
fn inspect_reports_a_truncated_cpim_with_exit_2() {
    let path = fixtures("cpim").join("truncated.cpim.bad");
    let out = inspect("cpim", &path);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("byte"), "the error names the offset: {err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn inspect_applies_the_configured_limits() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[limits]\nmax_body = 4\n").unwrap();
    let out = bin()
        .args(["inspect", "--as", "cpim", "--config"])
        .arg(&cfg)
        .arg(fixtures("cpim").join("rfc3862-5.1.cpim"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("body") || err.contains("large"), "{err}");
}

#[test]
fn inspect_reads_addresses_from_stdin() {
    let mut child = bin()
        .args(["inspect", "--as", "address", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"\"Alice\" <sip:Alice%20in%20wonderland@chat.example.com>\nim:piglet@100akerwood.com\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["addresses"][0]["kind"], "sip");
    assert_eq!(v["addresses"][0]["display"], "Alice");
    assert_eq!(v["addresses"][1]["kind"], "im");

    let mut child = bin()
        .args(["inspect", "--as", "address"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"<sip:unterminated\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Every MSRP fixture of the msrp crate (RFC 4975, RFC 7701, RFC 4976,
/// the draft) prints; guessing finds MSRP too; each bad one (and the
/// path-less chunks of RFC 4975 §5.1) is refused with exit 2, the byte
/// and the status a receiver answers.
#[test]
fn inspect_understands_every_msrp_fixture() {
    let dir = repo().join("adapters/msrp/tests/fixtures");
    let (mut good, mut bad) = (0, 0);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("msrp"))
        .collect();
    paths.sort();
    for path in paths {
        let out = inspect("msrp", &path);
        // RFC 4975 §5.1 Figure 3 shows chunks without their paths: they
        // parse, but a receiver refuses them.
        let fragment = path.to_string_lossy().contains("5.1-fig3");
        if path.to_string_lossy().ends_with(".bad.msrp") || fragment {
            assert_eq!(out.status.code(), Some(2), "{}", path.display());
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("a receiver answers"),
                "{}",
                path.display()
            );
            bad += 1;
            continue;
        }
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["kind"], "msrp");
        assert!(v["transaction_id"].is_string(), "{v}");
        assert!(
            v["to_path"][0]["uri"].is_string(),
            "{}: {v}",
            path.display()
        );
        let guessed = bin().arg("inspect").arg(&path).output().unwrap();
        assert_eq!(guessed.stdout, out.stdout, "{}", path.display());
        good += 1;
    }
    assert!(good >= 20 && bad >= 10, "{good} good, {bad} bad");
}

/// Every SDP fixture of the msrp crate (RFC 4975, RFC 7701, the draft)
/// prints with its MSRP line typed; guessing finds SDP too; a broken one
/// is refused with the reason.
#[test]
fn inspect_understands_every_sdp_fixture() {
    let dir = repo().join("adapters/msrp/tests/fixtures/sdp");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let out = inspect("sdp", &path);
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["kind"], "sdp");
        assert!(
            v["msrp"][0]["path"][0]
                .as_str()
                .unwrap()
                .starts_with("msrp://"),
            "{v}"
        );
        let guessed = bin().arg("inspect").arg(&path).output().unwrap();
        assert_eq!(guessed.stdout, out.stdout, "{}", path.display());
        seen += 1;
    }
    assert!(seen >= 6);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.sdp");
    std::fs::write(
        &p,
        b"v=0\r\nm=message 7 TCP/MSRP *\r\na=path:msrp://h:7/x;tcp\r\n",
    )
    .unwrap();
    let out = inspect("sdp", &p);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("accept-types"));
}

fn sip_fixtures() -> Vec<PathBuf> {
    let dir = repo().join("adapters/sip/tests/fixtures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("sip"))
        .collect();
    files.sort();
    files
}

#[test]
fn inspect_understands_every_good_sip_fixture() {
    let mut seen = 0;
    for path in sip_fixtures() {
        if path.to_string_lossy().ends_with(".bad.sip") {
            continue;
        }
        let out = inspect("sip", &path);
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["kind"], "sip");
        assert!(v["via"][0]["branch"].is_string(), "{}: {v}", path.display());
        assert!(v["cseq"]["seq"].is_number(), "{}: {v}", path.display());
        assert!(v["headers"].as_array().unwrap().len() >= 6);
        // Guessing the kind from the bytes finds SIP too.
        let guessed = bin().arg("inspect").arg(&path).output().unwrap();
        assert_eq!(guessed.stdout, out.stdout, "{}", path.display());
        seen += 1;
    }
    assert!(
        seen >= 14,
        "expected the RFC 3428 and RFC 3261 fixtures, found {seen}"
    );

    let f1 = repo().join("adapters/sip/tests/fixtures/rfc3428-10-f1.sip");
    let v: serde_json::Value = serde_json::from_slice(&inspect("sip", &f1).stdout).unwrap();
    assert_eq!(v["start"]["method"], "MESSAGE");
    assert_eq!(v["from"]["tag"], "49583");
    assert_eq!(v["via"][0]["host"], "user1pc.domain.com");
    assert_eq!(v["body_length"], 18);
}

#[test]
fn inspect_reports_every_bad_sip_fixture_with_exit_2() {
    let mut seen = 0;
    for path in sip_fixtures() {
        if !path.to_string_lossy().ends_with(".bad.sip") {
            continue;
        }
        let out = inspect("sip", &path);
        assert_eq!(out.status.code(), Some(2), "{}", path.display());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("byte"),
            "{}: names no offset: {err}",
            path.display()
        );
        assert!(err.contains("a UAS answers"), "{}: {err}", path.display());
        assert!(out.stdout.is_empty());
        seen += 1;
    }
    assert!(seen >= 15, "found {seen} malformed fixtures");
    let path = repo().join("adapters/sip/tests/fixtures/missing-call-id.bad.sip");
    let err = String::from_utf8_lossy(&inspect("sip", &path).stderr).into_owned();
    assert!(err.contains("400 Bad Request: missing Call-ID"), "{err}");
    let path = repo().join("adapters/sip/tests/fixtures/sip-version-3.bad.sip");
    let err = String::from_utf8_lossy(&inspect("sip", &path).stderr).into_owned();
    assert!(err.contains("505 Version Not Supported"), "{err}");
}

#[test]
fn mappings_add_list_remove() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[store]\npath = \"{}\"\n",
            dir.path().join("m.sqlite").display()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = bin()
            .arg("mappings")
            .arg("--config")
            .arg(&cfg)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    run(&[
        "add",
        "--display-name",
        "Alice",
        "im:alice@atlanta.example.com",
        "sip:alice@atlanta.example.com",
    ]);
    run(&[
        "add",
        "sip:alice@atlanta.example.com",
        "jid:alice@xmpp.example.org",
    ]);
    let list = run(&["list"]);
    assert_eq!(list.lines().count(), 1, "one person: {list}");
    assert!(
        list.contains("alice@xmpp.example.org") && list.contains("Alice"),
        "{list}"
    );
    run(&["remove", "jid:alice@xmpp.example.org"]);
    let list = run(&["list"]);
    assert!(!list.contains("xmpp.example.org"), "{list}");
    let out = bin()
        .arg("mappings")
        .arg("--config")
        .arg(&cfg)
        .args(["remove", "jid:nobody@example.org"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

/// The binary with a SIP adapter alone: an OPTIONS over a real UDP socket
/// gets 200 with Allow (RFC 3261 §11.2), and `/metrics` counts the answer
/// by method and status.
#[test]
fn a_sip_listener_answers_options_and_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, sip) = (free_port(), free_port());
    let config = dir.path().join("sip.toml");
    std::fs::write(
        &config,
        format!(
            "[gateway]\nname = \"gw-cli\"\ndomains = [\"gw.example.com\"]\n\
             [store]\npath = \"{}\"\n\
             [adapters.sip]\nkind = \"sip\"\ndomains = [\"gw.example.com\"]\nudp = [\"127.0.0.1:{sip}\"]\n",
            dir.path().join("gw.sqlite").display()
        ),
    )
    .unwrap();
    let child = bin()
        .args(["run", "--config"])
        .arg(&config)
        .env("CPIMGATE__ADMIN__LISTEN", format!("127.0.0.1:{admin}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut running = Running { child };
    let (code, _) = wait_for_http(admin, &mut running.child);
    assert_eq!(code, 200);

    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let me = sock.local_addr().unwrap();
    let options = format!(
        "OPTIONS sip:gw.example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bKcli1\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@127.0.0.1>;tag=p1\r\n\
         To: <sip:gw.example.com>\r\n\
         Call-ID: cli-options@127.0.0.1\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    );
    // The listener may come up a moment after the admin one: ask again.
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(15);
    let answer = loop {
        sock.send_to(options.as_bytes(), ("127.0.0.1", sip))
            .unwrap();
        if let Ok(n) = sock.recv(&mut buf) {
            break String::from_utf8_lossy(&buf[..n]).into_owned();
        }
        assert!(Instant::now() < deadline, "no answer to OPTIONS");
    };
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
    assert!(answer.contains("\r\nAllow: "), "{answer}");

    let (code, body) = http_get(admin, "/metrics").unwrap();
    assert_eq!(code, 200);
    let counted = body.lines().any(|l| {
        l.starts_with("cpimgate_sip_requests_answered_total")
            && l.contains("method=\"OPTIONS\"")
            && l.contains("status=\"200\"")
    });
    assert!(counted, "metrics: {body}");
}
