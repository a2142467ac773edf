//! Kamailio on a configuration the test gives whole (an example's
//! `kamailio.cfg` with its addresses rewritten), where [`crate::kamailio`]
//! writes its own. Started in the foreground (`-DD -E`, log on stderr,
//! kept in a file) after `kamailio -c` accepted the file; stopped with
//! SIGTERM to its main process, which stops its children.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::HarnessError;

/// A running Kamailio of a given configuration.
#[derive(Debug)]
pub struct KamailioConfig {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl KamailioConfig {
    /// Writes `cfg` into a fresh directory, checks it (`kamailio -c`),
    /// starts Kamailio on it and waits until `tcp_listener` (one of its
    /// TCP `listen` addresses) accepts connections, 15 s at most. The
    /// error carries the check's output or the log's tail.
    pub async fn start(
        cfg: &str,
        tcp_listener: SocketAddr,
    ) -> Result<KamailioConfig, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("cpimgate-kamailio-cfg-")
            .tempdir()
            .map_err(|e| HarnessError::io("creating a temporary directory", e))?;
        let path = dir.path().join("kamailio.cfg");
        std::fs::write(&path, cfg).map_err(|e| HarnessError::io("writing kamailio.cfg", e))?;
        let check = Command::new("kamailio")
            .arg("-c")
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| HarnessError::NotInstalled {
                program: "kamailio".into(),
                reason: e.to_string(),
            })?;
        if !check.status.success() {
            return Err(HarnessError::Command {
                command: format!("kamailio -c -f {}", path.display()),
                status: check.status.to_string(),
                output: String::from_utf8_lossy(&check.stderr).into_owned(),
            });
        }
        let log = std::fs::File::create(dir.path().join("kamailio.log"))
            .map_err(|e| HarnessError::io("creating kamailio.log", e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| HarnessError::io("opening kamailio.log", e))?;
        let child = Command::new("kamailio")
            .args(["-DD", "-E", "-f"])
            .arg(&path)
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
        let mut k = KamailioConfig {
            child: Some(child),
            dir,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(Ok(Some(status))) = k.child.as_mut().map(Child::try_wait) {
                k.child = None;
                return Err(k.failed(format!("exited with {status}")));
            }
            if tokio::net::TcpStream::connect(tcp_listener).await.is_ok() {
                return Ok(k);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(k.failed(format!("not listening on {tcp_listener} after 15 s")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
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

    fn failed(&self, reason: String) -> HarnessError {
        HarnessError::ServerStart {
            reason: format!("kamailio {reason}"),
            log: self.log_path(),
            log_tail: self.log_tail(30),
        }
    }
}

impl Drop for KamailioConfig {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SIGTERM to the main process, which ends its children; SIGKILL
        // (kill_on_drop) would leave them holding the ports.
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
