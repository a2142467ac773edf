//! The `cpimgate` binary as a process of its own: for benchmarks that
//! compare its CPU time and memory with another gateway's process, and for
//! fault tests that kill it (`SIGKILL`) and start it again on the same
//! store.
//!
//! The binary is `$CPIMGATE_BIN`, or `cpimgate` in the profile directory
//! of the running test or benchmark (`target/release/cpimgate` for
//! `cargo bench`, `target/debug/cpimgate` for `cargo test`): build it first
//! with `cargo build --release -p cpimgate`, as `tests/bench/run` does.
//! [`GatewayProcess::build_debug`] builds the debug one for a test, so that
//! `cargo test -p cpimgate-e2e` alone never runs a stale binary. A missing
//! binary is an error that says so.
//!
//! `{dir}` in the TOML is the process's temporary directory; the admin
//! listener is put on a free port and [`GatewayProcess::start`] returns
//! once `/readyz` answers 200 (every adapter connected).
//! [`GatewayProcess::kill`] and [`GatewayProcess::start_again`] crash and
//! restart it with the same directory, config and admin port; its log
//! (`gateway.log`) keeps both runs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::HarnessError;
use crate::prosody::free_port;

/// A running `cpimgate run` process.
#[derive(Debug)]
pub struct GatewayProcess {
    dir: tempfile::TempDir,
    child: Option<Child>,
    admin: SocketAddr,
    binary: PathBuf,
}

impl GatewayProcess {
    /// Where the binary is expected (see the module docs).
    pub fn binary() -> Result<PathBuf, HarnessError> {
        if let Some(path) = std::env::var_os("CPIMGATE_BIN") {
            return Ok(PathBuf::from(path));
        }
        let exe = std::env::current_exe()
            .map_err(|e| HarnessError::io("finding the running executable", e))?;
        // target/<profile>/deps/<bench> → target/<profile>/cpimgate
        let candidate = exe
            .parent()
            .and_then(Path::parent)
            .map(|p| p.join("cpimgate"))
            .ok_or_else(|| HarnessError::NotInstalled {
                program: "cpimgate".into(),
                reason: format!("no profile directory above {}", exe.display()),
            })?;
        if candidate.is_file() {
            Ok(candidate)
        } else {
            Err(HarnessError::NotInstalled {
                program: "cpimgate".into(),
                reason: format!(
                    "{} does not exist: run `cargo build -p cpimgate` (`--release` for \
                     benchmarks) first, or set CPIMGATE_BIN",
                    candidate.display()
                ),
            })
        }
    }

    /// Build the debug `cpimgate` binary (`cargo build -p cpimgate`) into
    /// the target directory of the running test, so that
    /// [`GatewayProcess::binary`] finds it up to date; nothing is built when
    /// `$CPIMGATE_BIN` is set. Cargo's output is in the error when it fails.
    pub async fn build_debug() -> Result<(), HarnessError> {
        if std::env::var_os("CPIMGATE_BIN").is_some() {
            return Ok(());
        }
        let exe = std::env::current_exe()
            .map_err(|e| HarnessError::io("finding the running executable", e))?;
        // target/debug/deps/<test> → target
        let Some(target) = exe.parent().and_then(Path::parent).and_then(Path::parent) else {
            return Err(HarnessError::NotInstalled {
                program: "cpimgate".into(),
                reason: format!("no target directory above {}", exe.display()),
            });
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        let out = Command::new(&cargo)
            .args(["build", "--quiet", "-p", "cpimgate", "--bin", "cpimgate"])
            .arg("--manifest-path")
            .arg(&manifest)
            .arg("--target-dir")
            .arg(target)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| HarnessError::NotInstalled {
                program: "cargo".into(),
                reason: e.to_string(),
            })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(HarnessError::Command {
                command: "cargo build -p cpimgate --bin cpimgate".into(),
                status: out.status.to_string(),
                output: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        }
    }

    /// Write `toml` (with `{dir}` replaced) and run the binary on it until
    /// `/readyz` answers 200, `ready_within` at most.
    pub async fn start(toml: &str, ready_within: Duration) -> Result<GatewayProcess, HarnessError> {
        let binary = Self::binary()?;
        let dir = tempfile::Builder::new()
            .prefix("cpimgate-process-")
            .tempdir()
            .map_err(|e| HarnessError::io("creating a temporary directory", e))?;
        let config = dir.path().join("gateway.toml");
        std::fs::write(
            &config,
            toml.replace("{dir}", &dir.path().display().to_string()),
        )
        .map_err(|e| HarnessError::io("writing gateway.toml", e))?;
        let admin = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let mut process = GatewayProcess {
            dir,
            child: None,
            admin,
            binary,
        };
        process.spawn(ready_within).await?;
        Ok(process)
    }

    /// Start the process again after [`GatewayProcess::kill`], with the same
    /// config, directory (so the same store) and admin port, until
    /// `/readyz` answers 200, `ready_within` at most.
    pub async fn start_again(&mut self, ready_within: Duration) -> Result<(), HarnessError> {
        self.kill().await;
        self.spawn(ready_within).await
    }

    /// Kill the process with SIGKILL (a crash: no goodbye to any peer, no
    /// flush) and wait until it is gone. Nothing happens if it is not
    /// running.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // tokio's kill is SIGKILL on Unix.
            let _ = child.kill().await;
        }
    }

    async fn spawn(&mut self, ready_within: Duration) -> Result<(), HarnessError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("gateway.log"))
            .map_err(|e| HarnessError::io("opening gateway.log", e))?;
        let err = log
            .try_clone()
            .map_err(|e| HarnessError::io("opening gateway.log", e))?;
        let child = Command::new(&self.binary)
            .arg("run")
            .arg("--config")
            .arg(self.dir.path().join("gateway.toml"))
            .env("CPIMGATE__ADMIN__LISTEN", self.admin.to_string())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| HarnessError::NotInstalled {
                program: self.binary.display().to_string(),
                reason: e.to_string(),
            })?;
        self.child = Some(child);
        let started = Instant::now();
        loop {
            if self.ready().await {
                return Ok(());
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Err(self.start_error(&format!("the process exited with {status}")));
            }
            if started.elapsed() > ready_within {
                return Err(self.start_error(&format!("/readyz not 200 after {ready_within:?}")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether `/readyz` answers 200 now.
    pub async fn ready(&self) -> bool {
        self.get("/readyz")
            .await
            .is_some_and(|a| a.starts_with("HTTP/1.1 200"))
    }

    /// The Prometheus text of `/metrics` (empty if it cannot be had).
    pub async fn metrics(&self) -> String {
        self.get("/metrics").await.unwrap_or_default()
    }

    async fn get(&self, path: &str) -> Option<String> {
        let mut s = TcpStream::connect(self.admin).await.ok()?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        s.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut answer)).await;
        Some(String::from_utf8_lossy(&answer).into_owned())
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// The directory of its config, store and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Its whole log (both runs after a restart).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let tail: Vec<&str> = log.lines().rev().take(lines).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// The lines of its log that are warnings or errors.
    pub fn warnings(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .map(str::to_owned)
            .collect()
    }

    fn start_error(&self, reason: &str) -> HarnessError {
        HarnessError::ServerStart {
            reason: format!("cpimgate: {reason}"),
            log: self.dir.path().join("gateway.log"),
            log_tail: self.log_tail(40),
        }
    }

    /// SIGTERM (a graceful shutdown), then wait up to 10 s; SIGKILL after.
    pub async fn stop(mut self) -> Result<(), HarnessError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if let Some(pid) = child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
            Ok(Ok(_)) => Ok(()),
            _ => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                Err(HarnessError::Gateway(anyhow::anyhow!(
                    "cpimgate did not stop within 10 s of SIGTERM"
                )))
            }
        }
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

/// Resident memory of process `pid` in KiB (`VmRSS` of `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(&status(pid)?, "VmRSS:")
}

/// The anonymous and the file-backed parts of process `pid`'s resident
/// set, in KiB (`RssAnon`, `RssFile` of /proc/PID/status): the heap and
/// stacks against the mapped binary and libraries.
pub fn rss_split_kib(pid: u32) -> Option<(u64, u64)> {
    let status = status(pid)?;
    Some((
        status_kib(&status, "RssAnon:")?,
        status_kib(&status, "RssFile:")?,
    ))
}

/// /proc/PID/status.
fn status(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/status")).ok()
}

/// The value in KiB of the line of `status` that starts with `name`.
fn status_kib(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU time (user + system) of process `pid` in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(user + system)
}
