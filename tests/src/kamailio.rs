//! A private Kamailio per test: a stateful SIP proxy on 127.0.0.1 (UDP and
//! TCP on one free port) that sends requests for the gateway's SIP domain
//! to the gateway and every other request to its Request-URI, after
//! consuming a `Route` that names it (loose routing, RFC 3261 §16.4).
//!
//! [`Kamailio::start_tls`] adds a TLS listener and reaches the gateway over
//! TLS, both sides with certificates of a CA made for the instance (mutual
//! TLS: the gateway checks client certificates by default).
//!
//! [`Kamailio::start_registrar`] makes it also the registrar of a domain
//! (usrloc in memory, registrar): a REGISTER for that domain is
//! challenged (digest, one user and password) and saved; a request for
//! an address of that domain goes to its registered Contact, or gets 404.
//! Each binding saved or removed is logged as `saved <AoR> <Contact>
//! expires=<n>`.
//!
//! Started in the foreground (`-DD -E`, log on stderr, kept in a file);
//! stopped with SIGTERM to its main process, which stops its children.
//! [`Kamailio::stop`] and [`Kamailio::start_again`] restart it on the same
//! ports, for fault tests.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::HarnessError;
use crate::prosody::free_port;

/// Where Debian puts Kamailio's modules.
const MODULES: &str = "/usr/lib/x86_64-linux-gnu/kamailio/modules/";

/// The registrar part of [`Kamailio::start_registrar`].
#[derive(Debug, Clone)]
pub struct Registrar {
    /// The domain it registers.
    pub domain: String,
    /// The only user that may register.
    pub user: String,
    /// Its password.
    pub password: String,
}

/// A running Kamailio.
#[derive(Debug)]
pub struct Kamailio {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    tls_port: Option<u16>,
}

impl Kamailio {
    /// Starts a proxy that sends requests for `gateway_domain` to
    /// `gateway` (UDP), and the others to their Request-URI.
    pub async fn start(
        gateway_domain: &str,
        gateway: SocketAddr,
    ) -> Result<Kamailio, HarnessError> {
        Self::start_full(gateway_domain, gateway, false, None).await
    }

    /// [`Kamailio::start`], and the registrar of `registrar.domain`.
    pub async fn start_registrar(
        gateway_domain: &str,
        gateway: SocketAddr,
        registrar: Registrar,
    ) -> Result<Kamailio, HarnessError> {
        Self::start_full(gateway_domain, gateway, false, Some(registrar)).await
    }

    /// [`Kamailio::start`] with a TLS listener too
    /// ([`Kamailio::tls_addr`]), sending requests for `gateway_domain` to
    /// `gateway` over TLS. Its certificate (server and client) and one for
    /// the gateway ([`Kamailio::gateway_cert`], [`Kamailio::gateway_key`])
    /// are signed by [`Kamailio::ca_cert`], valid for 127.0.0.1.
    pub async fn start_tls(
        gateway_domain: &str,
        gateway: SocketAddr,
    ) -> Result<Kamailio, HarnessError> {
        Self::start_full(gateway_domain, gateway, true, None).await
    }

    async fn start_full(
        gateway_domain: &str,
        gateway: SocketAddr,
        tls: bool,
        registrar: Option<Registrar>,
    ) -> Result<Kamailio, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("cpimgate-kamailio-")
            .tempdir()
            .map_err(|e| HarnessError::io("creating a temporary directory", e))?;
        let port = free_port()?;
        let tls_port = if tls {
            make_certificates(dir.path()).await?;
            Some(free_port()?)
        } else {
            None
        };
        let cfg = config(
            port,
            tls_port,
            dir.path(),
            gateway_domain,
            gateway,
            registrar.as_ref(),
        );
        let cfg_path = dir.path().join("kamailio.cfg");
        std::fs::write(&cfg_path, cfg).map_err(|e| HarnessError::io("writing kamailio.cfg", e))?;
        let mut k = Kamailio {
            child: None,
            dir,
            port,
            tls_port,
        };
        k.spawn()?;
        k.wait_listening().await?;
        Ok(k)
    }

    /// Stop it (SIGTERM to the main process, which stops its children)
    /// and wait until it is gone. Nothing happens if it is not running.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
            if tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .is_ok()
            {
                return;
            }
        }
        let _ = child.kill().await;
    }

    /// Start it again after [`Kamailio::stop`], with the same config and
    /// ports; its log keeps both runs.
    pub async fn start_again(&mut self) -> Result<(), HarnessError> {
        self.stop().await;
        self.spawn()?;
        self.wait_listening().await
    }

    fn spawn(&mut self) -> Result<(), HarnessError> {
        let dir = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("kamailio.log"))
            .map_err(|e| HarnessError::io("opening kamailio.log", e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| HarnessError::io("opening kamailio.log", e))?;
        let child = Command::new("kamailio")
            .args(["-DD", "-E", "-f"])
            .arg(dir.join("kamailio.cfg"))
            .arg("-P")
            .arg(dir.join("kamailio.pid"))
            .arg("-Y")
            .arg(dir)
            .args(["-m", "64", "-M", "8"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| HarnessError::NotInstalled {
                program: "kamailio".into(),
                reason: e.to_string(),
            })?;
        self.child = Some(child);
        Ok(())
    }

    /// Its address, UDP and TCP.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Its TLS listener, for [`Kamailio::start_tls`].
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_port
            .map(|p| SocketAddr::from((Ipv4Addr::LOCALHOST, p)))
    }

    /// The CA of [`Kamailio::start_tls`] (PEM).
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// A certificate for the gateway's TLS listener (PEM, 127.0.0.1).
    pub fn gateway_cert(&self) -> PathBuf {
        self.dir.path().join("gateway.crt")
    }

    /// Its key.
    pub fn gateway_key(&self) -> PathBuf {
        self.dir.path().join("gateway.key")
    }

    /// The log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("kamailio.log")
    }

    /// How many log lines contain `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        text.lines().filter(|l| l.contains(needle)).count()
    }

    /// Waits until at least `count` log lines contain `needle`; the error
    /// quotes the log's tail.
    pub async fn wait_log(
        &self,
        needle: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<(), HarnessError> {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.log_count(needle) < count {
            if tokio::time::Instant::now() >= deadline {
                return Err(HarnessError::Timeout {
                    what: format!(
                        "{count} kamailio log lines with {needle:?} (saw {}); log:\n{}",
                        self.log_count(needle),
                        self.log_tail(30)
                    ),
                    after: timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    async fn wait_listening(&mut self) -> Result<(), HarnessError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(self.failed(format!("exited with {status}")));
                }
            }
            if tokio::net::TcpStream::connect(self.addr()).await.is_ok() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(self.failed("not listening after 15 s".into()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn failed(&self, reason: String) -> HarnessError {
        HarnessError::ServerStart {
            reason: format!("kamailio {reason}"),
            log: self.log_path(),
            log_tail: self.log_tail(30),
        }
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SIGTERM to the main process, which ends its children; SIGKILL
        // (kill_on_drop) would leave them holding the port.
        if let Some(pid) = child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            for _ in 0..50 {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// A CA (`ca.crt`), and certificates for Kamailio and for the gateway
/// signed by it (`kamailio.crt`/`.key`, `gateway.crt`/`.key`; 127.0.0.1
/// and localhost, server and client use), with the `openssl` CLI. Other
/// tests that need a gateway certificate use it too.
pub async fn make_certificates(dir: &Path) -> Result<(), HarnessError> {
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n\
         basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth,clientAuth\n",
    )
    .map_err(|e| HarnessError::io("writing leaf.ext", e))?;
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut steps: Vec<Vec<String>> = vec![
        [
            &["req", "-x509"][..],
            &ec[..],
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "30",
                "-subj",
                "/CN=cpimgate kamailio test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ][..],
        ]
        .concat()
        .into_iter()
        .map(str::to_owned)
        .collect(),
    ];
    for name in ["kamailio", "gateway"] {
        let (key, csr, crt) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
        );
        steps.push(
            [&["req"][..], &ec[..]]
                .concat()
                .into_iter()
                .map(str::to_owned)
                .chain([
                    "-keyout".into(),
                    key,
                    "-out".into(),
                    csr.clone(),
                    "-subj".into(),
                    format!("/CN={name}"),
                ])
                .collect(),
        );
        steps.push(
            [
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "30",
                "-extfile",
                "leaf.ext",
            ]
            .into_iter()
            .map(str::to_owned)
            .collect(),
        );
    }
    for args in steps {
        crate::prosody::openssl(dir, &args).await?;
    }
    Ok(())
}

fn config(
    port: u16,
    tls_port: Option<u16>,
    dir: &Path,
    gateway_domain: &str,
    gateway: SocketAddr,
    registrar: Option<&Registrar>,
) -> String {
    let (registrar_modules, registrar_route) = match registrar {
        Some(r) => (
            r#"loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
modparam("usrloc", "db_mode", 0)
modparam("registrar", "min_expires", 1)
"#
            .to_owned(),
            format!(
                r#"
    if (is_method("REGISTER")) {{
        if (!($tu =~ "^sip:{user}@{domain}$") || !pv_www_authenticate("{domain}", "{password}", "0")) {{
            www_challenge("{domain}", "0");
            exit;
        }}
        consume_credentials();
        if (!save("location")) {{
            sl_reply_error();
            exit;
        }}
        xlog("L_INFO", "saved $tu $ct expires=$hdr(Expires)
");
        exit;
    }}
    if ($rd == "{domain}") {{
        if (!lookup("location")) {{
            sl_send_reply("404", "Not Found");
            exit;
        }}
    }}"#,
                user = r.user,
                domain = r.domain,
                password = r.password,
            ),
        ),
        None => (String::new(), String::new()),
    };
    let (tls, gateway_transport) = match tls_port {
        Some(p) => {
            let d = dir.display();
            let tls_cfg = format!(
                "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n\
                 private_key = {d}/kamailio.key\ncertificate = {d}/kamailio.crt\n\n\
                 [client:default]\nmethod = TLSv1.2+\nverify_certificate = yes\nrequire_certificate = yes\n\
                 private_key = {d}/kamailio.key\ncertificate = {d}/kamailio.crt\nca_list = {d}/ca.crt\n"
            );
            let _ = std::fs::write(dir.join("tls.cfg"), tls_cfg);
            (
                format!(
                    "enable_tls=yes\nlisten=tls:127.0.0.1:{p}\nloadmodule \"{MODULES}tls.so\"\nmodparam(\"tls\", \"config\", \"{d}/tls.cfg\")\n"
                ),
                "tls",
            )
        }
        None => (String::new(), "udp"),
    };
    format!(
        r#"#!KAMAILIO
debug=2
log_stderror=yes
children=2
tcp_children=2
auto_aliases=no
listen=udp:127.0.0.1:{port}
listen=tcp:127.0.0.1:{port}
alias="127.0.0.1:{port}"
{tls}
mpath="{MODULES}"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "pv.so"
loadmodule "xlog.so"
{registrar_modules}
request_route {{
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (is_method("ACK")) {{
        if (t_check_trans()) {{
            t_relay();
        }}
        exit;
    }}
    # A Route naming this proxy (the gateway's outbound proxy setting).
    loose_route();{registrar_route}
    if ($rd == "{gateway_domain}") {{
        $du = "sip:{gateway};transport={gateway_transport}";
    }}
    xlog("L_INFO", "$rm $ru -> $du\n");
    if (!t_relay()) {{
        sl_reply_error();
    }}
    exit;
}}
"#
    )
}
