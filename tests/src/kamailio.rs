//! A private Kamailio per test: a stateful SIP proxy on 127.0.0.1 (UDP and
//! TCP on one free port) that sends requests for the gateway's SIP domain
//! to the gateway and every other request to its Request-URI, after
//! consuming a `Route` that names it (loose routing, RFC 3261 §16.4).
//!
//! Started in the foreground (`-DD -E`, log on stderr, kept in a file);
//! stopped with SIGTERM to its main process, which stops its children.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::HarnessError;
use crate::prosody::free_port;

/// Where Debian puts Kamailio's modules.
const MODULES: &str = "/usr/lib/x86_64-linux-gnu/kamailio/modules/";

/// A running Kamailio.
#[derive(Debug)]
pub struct Kamailio {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
}

impl Kamailio {
    /// Starts a proxy that sends requests for `gateway_domain` to
    /// `gateway` (UDP), and the others to their Request-URI.
    pub async fn start(
        gateway_domain: &str,
        gateway: SocketAddr,
    ) -> Result<Kamailio, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("cpimgate-kamailio-")
            .tempdir()
            .map_err(|e| HarnessError::io("creating a temporary directory", e))?;
        let port = free_port()?;
        let cfg = config(port, gateway_domain, gateway);
        let cfg_path = dir.path().join("kamailio.cfg");
        std::fs::write(&cfg_path, cfg).map_err(|e| HarnessError::io("writing kamailio.cfg", e))?;
        let log = std::fs::File::create(dir.path().join("kamailio.log"))
            .map_err(|e| HarnessError::io("creating kamailio.log", e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| HarnessError::io("opening kamailio.log", e))?;
        let child = Command::new("kamailio")
            .args(["-DD", "-E", "-f"])
            .arg(&cfg_path)
            .arg("-P")
            .arg(dir.path().join("kamailio.pid"))
            .arg("-Y")
            .arg(dir.path())
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
        let mut k = Kamailio {
            child: Some(child),
            dir,
            port,
        };
        k.wait_listening().await?;
        Ok(k)
    }

    /// Its address, UDP and TCP.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("kamailio.log")
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

fn config(port: u16, gateway_domain: &str, gateway: SocketAddr) -> String {
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

mpath="{MODULES}"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "pv.so"
loadmodule "xlog.so"

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
    loose_route();
    if ($rd == "{gateway_domain}") {{
        $du = "sip:{gateway};transport=udp";
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
