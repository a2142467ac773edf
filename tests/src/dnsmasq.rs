//! A private dnsmasq per test: a DNS server on 127.0.0.1 (UDP and TCP on
//! one free port) that knows only the records the test gives it (NAPTR,
//! SRV, A), for RFC 3263 server location.
//!
//! It runs in the foreground (`--keep-in-foreground`), reads no system
//! file (`--no-resolv`, `--no-hosts`, its own config in a temporary
//! directory), forwards nothing (no upstream server), and answers NXDOMAIN
//! for every other name of its local domains (`--local`). Its query log
//! goes to a file, shown when it cannot start.
//!
//! ```no_run
//! # async fn f() -> Result<(), cpimgate_e2e::HarnessError> {
//! use cpimgate_e2e::dnsmasq::{Dnsmasq, Zone};
//! let zone = Zone::new("test")
//!     .naptr("sip.test", 10, 50, "s", "SIP+D2U", "_sip._udp.sip.test")
//!     .srv("_sip._udp.sip.test", "a.sip.test", 5070, 10, 1)
//!     .host("a.sip.test", "127.0.0.1".parse().unwrap());
//! let dns = Dnsmasq::start(&zone).await?;
//! // dns_servers = ["{dns.addr()}"] in the SIP adapter's settings
//! # Ok(()) }
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::HarnessError;
use crate::prosody::free_port;

/// The records a [`Dnsmasq`] serves, as lines of its config.
#[derive(Debug, Clone)]
pub struct Zone {
    lines: Vec<String>,
}

impl Zone {
    /// An empty zone; names under `local_domain` (e.g. `test`) that it
    /// does not list get NXDOMAIN.
    pub fn new(local_domain: &str) -> Zone {
        Zone {
            lines: vec![format!("local=/{local_domain}/")],
        }
    }

    /// A NAPTR record (RFC 3403) with an empty regexp: `name` IN NAPTR
    /// `order` `preference` "`flags`" "`service`" "" `replacement`.
    pub fn naptr(
        mut self,
        name: &str,
        order: u16,
        preference: u16,
        flags: &str,
        service: &str,
        replacement: &str,
    ) -> Zone {
        self.lines.push(format!(
            "naptr-record={name},{order},{preference},{flags},{service},,{replacement}"
        ));
        self
    }

    /// An SRV record (RFC 2782): `service` (`_sip._udp.example.test`) IN
    /// SRV `priority` `weight` `port` `target`.
    pub fn srv(
        mut self,
        service: &str,
        target: &str,
        port: u16,
        priority: u16,
        weight: u16,
    ) -> Zone {
        self.lines.push(format!(
            "srv-host={service},{target},{port},{priority},{weight}"
        ));
        self
    }

    /// An A or AAAA record.
    pub fn host(mut self, name: &str, ip: IpAddr) -> Zone {
        self.lines.push(format!("host-record={name},{ip}"));
        self
    }

    fn config(&self) -> String {
        let mut text = String::from("# Written by the cpimgate end-to-end harness.\n");
        for l in &self.lines {
            text.push_str(l);
            text.push('\n');
        }
        text
    }
}

/// A running dnsmasq; killed when dropped.
#[derive(Debug)]
pub struct Dnsmasq {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Dnsmasq {
    /// Starts dnsmasq on 127.0.0.1 with the records of `zone`, and waits
    /// until it listens. A port taken between choosing it and binding it
    /// (another test's server, UDP or TCP) is tried again on another one,
    /// three times at most.
    pub async fn start(zone: &Zone) -> Result<Dnsmasq, HarnessError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::start_once(zone).await {
                Err(e) if attempt < 3 && e.to_string().contains("in use") => {
                    tracing::info!("dnsmasq: its port was taken, trying another: {e}");
                }
                other => return other,
            }
        }
    }

    async fn start_once(zone: &Zone) -> Result<Dnsmasq, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("cpimgate-dnsmasq-")
            .tempdir()
            .map_err(|e| HarnessError::io("creating a temporary directory", e))?;
        let conf = dir.path().join("dnsmasq.conf");
        std::fs::write(&conf, zone.config())
            .map_err(|e| HarnessError::io("writing dnsmasq.conf", e))?;
        let log = std::fs::File::create(dir.path().join("dnsmasq.log"))
            .map_err(|e| HarnessError::io("creating dnsmasq.log", e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| HarnessError::io("opening dnsmasq.log", e))?;
        let port = free_port()?;
        let mut conf_arg = std::ffi::OsString::from("--conf-file=");
        conf_arg.push(&conf);
        let mut pid_arg = std::ffi::OsString::from("--pid-file=");
        pid_arg.push(dir.path().join("dnsmasq.pid"));
        let child = Command::new("dnsmasq")
            .args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--no-poll",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                "--user=root",
                "--log-queries",
                "--log-facility=-",
            ])
            .arg(format!("--port={port}"))
            .arg(conf_arg)
            .arg(pid_arg)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| HarnessError::NotInstalled {
                program: "dnsmasq".into(),
                reason: e.to_string(),
            })?;
        let mut d = Dnsmasq { child, dir, port };
        d.wait_listening().await?;
        Ok(d)
    }

    /// Its address, UDP and TCP.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The log file (startup messages and every query).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("dnsmasq.log")
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
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(self.failed(format!("exited with {status}")));
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
        let conf =
            std::fs::read_to_string(self.dir.path().join("dnsmasq.conf")).unwrap_or_default();
        HarnessError::DnsServerStart {
            reason: format!("{reason}; its config:\n{conf}"),
            log: self.log_path(),
            log_tail: self.log_tail(30),
        }
    }
}
