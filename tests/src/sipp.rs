//! sipp (Debian's `sip-tester`) as a SIP peer of a test: a UAC that sends
//! MESSAGEs to the gateway, or a UAS that answers the gateway's.
//!
//! Scenario files live in `tests/sipp/`. sipp runs in a temporary
//! directory with `-trace_err`; [`Sipp::finish`] waits for it and fails
//! with its stderr and error log unless it exited 0 (every call as the
//! scenario says). sipp's stdout is a curses screen and is discarded.
//!
//! ```no_run
//! # async fn f() -> Result<(), cpimgate_e2e::HarnessError> {
//! use cpimgate_e2e::sipp::{Sipp, SippTransport};
//! let uas = Sipp::uas("message_uas.xml", SippTransport::Udp, 5070, 1, &[])?;
//! // ... make the gateway send one MESSAGE to sip:bob@127.0.0.1:5070 ...
//! uas.finish(std::time::Duration::from_secs(30)).await?;
//! # Ok(()) }
//! ```

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::HarnessError;

/// The transport sipp uses (Debian's sipp has no TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SippTransport {
    /// UDP, one socket (`-t u1`).
    Udp,
    /// TCP, one connection (`-t t1`).
    Tcp,
}

impl SippTransport {
    fn flag(self) -> &'static str {
        match self {
            SippTransport::Udp => "u1",
            SippTransport::Tcp => "t1",
        }
    }

    /// The `transport` URI parameter naming it.
    pub fn uri_param(self) -> &'static str {
        match self {
            SippTransport::Udp => "udp",
            SippTransport::Tcp => "tcp",
        }
    }
}

/// The path of a scenario file of `tests/sipp/`.
pub fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("sipp")
        .join(name)
}

/// A running sipp.
#[derive(Debug)]
pub struct Sipp {
    child: Child,
    dir: tempfile::TempDir,
    command: String,
}

impl Sipp {
    /// sipp as a UAC: `scenario` sent `calls` times to `target`
    /// (`host:port`) from 127.0.0.1, at 50 calls per second unless `extra`
    /// gives `-r`, with `extra` arguments (e.g. `-s service`,
    /// `-key name value`).
    pub fn uac(
        scenario_name: &str,
        transport: SippTransport,
        target: &str,
        calls: u32,
        extra: &[&str],
    ) -> Result<Sipp, HarnessError> {
        let mut args: Vec<String> = vec![target.to_owned()];
        if !extra.contains(&"-r") {
            args.extend(["-r".into(), "50".into()]);
        }
        Self::spawn(scenario_name, transport, None, calls, &args, extra)
    }

    /// sipp as a UAS on 127.0.0.1:`port`: answers `calls` calls of
    /// `scenario`, then exits.
    pub fn uas(
        scenario_name: &str,
        transport: SippTransport,
        port: u16,
        calls: u32,
        extra: &[&str],
    ) -> Result<Sipp, HarnessError> {
        Self::spawn(scenario_name, transport, Some(port), calls, &[], extra)
    }

    fn spawn(
        scenario_name: &str,
        transport: SippTransport,
        port: Option<u16>,
        calls: u32,
        args: &[String],
        extra: &[&str],
    ) -> Result<Sipp, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("cpimgate-sipp-")
            .tempdir()
            .map_err(|e| HarnessError::io("creating sipp's directory", e))?;
        let mut cmd = Command::new("sipp");
        cmd.arg("-sf")
            .arg(scenario(scenario_name))
            .args(args)
            .args(["-i", "127.0.0.1", "-t", transport.flag()])
            .args(["-m", &calls.to_string()])
            .args(["-nostdin", "-timeout", "60s", "-timeout_error"])
            .args(["-trace_err", "-error_file"])
            .arg(dir.path().join("errors.log"))
            .args(extra);
        if let Some(p) = port {
            cmd.args(["-p", &p.to_string()]);
        }
        let command = format!("{:?}", cmd.as_std());
        cmd.current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(|e| HarnessError::NotInstalled {
            program: "sipp (Debian package sip-tester)".into(),
            reason: e.to_string(),
        })?;
        Ok(Sipp {
            child,
            dir,
            command,
        })
    }

    /// Whether sipp has exited already (a UAS that could not bind).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits for sipp to end; an error unless it exited 0, with its stderr
    /// and error log.
    pub async fn finish(self, timeout: Duration) -> Result<(), HarnessError> {
        self.wait(timeout).await.map(drop)
    }

    /// [`Sipp::finish`], then the messages sipp sent and received, as its
    /// `-trace_msg` log has them (pass `-trace_msg` in `extra`).
    pub async fn finish_with_messages(self, timeout: Duration) -> Result<String, HarnessError> {
        let dir = self.wait(timeout).await?;
        let mut text = String::new();
        let entries = std::fs::read_dir(dir.path())
            .map_err(|e| HarnessError::io("listing sipp's directory", e))?;
        for entry in entries.flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .ends_with("_messages.log")
            {
                text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
        Ok(text)
    }

    async fn wait(self, timeout: Duration) -> Result<tempfile::TempDir, HarnessError> {
        let Sipp {
            child,
            dir,
            command,
        } = self;
        let out = match tokio::time::timeout(timeout, child.wait_with_output()).await {
            Ok(r) => r.map_err(|e| HarnessError::io("waiting for sipp", e))?,
            Err(_) => {
                return Err(HarnessError::Timeout {
                    what: format!("sipp to finish ({command}); error log:\n{}", log(&dir)),
                    after: timeout,
                });
            }
        };
        if out.status.success() {
            return Ok(dir);
        }
        Err(HarnessError::Command {
            command,
            status: out.status.to_string(),
            output: format!(
                "{}\n--- error log ---\n{}",
                String::from_utf8_lossy(&out.stderr),
                log(&dir)
            ),
        })
    }
}

fn log(dir: &tempfile::TempDir) -> String {
    std::fs::read_to_string(dir.path().join("errors.log")).unwrap_or_default()
}
