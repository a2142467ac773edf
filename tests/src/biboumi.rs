//! biboumi, the reference XMPP↔IRC gateway (Debian package `biboumi`), as
//! a private process beside a test's Prosody and IRC server: the yardstick
//! of the IRC benchmarks.
//!
//! biboumi is an external component (XEP-0114) of Prosody: Prosody must be
//! started with [`prosody_lua`] in its hosts. An IRC channel appears as the
//! MUC room `#chan%HOST@biboumi.localhost`; every XMPP user who joins gets
//! an IRC connection of their own (biboumi has no relay mode). It dials
//! ports 6697 (TLS) then 6667 unless the user configures the server through
//! the ad-hoc command `configure` on `HOST@biboumi.localhost`, which is also
//! where its flood throttle (`throttle_limit`, default 10 lines then one a
//! second) is turned off: [`configure_irc_server`] does both for a user.
//!
//! ```no_run
//! # async fn f(
//! #     prosody: &cpimgate_e2e::prosody::Prosody,
//! #     alice: &mut cpimgate_e2e::xmpp_user::XmppUser,
//! #     irc_port: u16,
//! # ) -> Result<(), cpimgate_e2e::HarnessError> {
//! use cpimgate_e2e::biboumi::{Biboumi, configure_irc_server, room};
//! let biboumi = Biboumi::start(prosody).await?;
//! configure_irc_server(alice, "127.0.0.1", irc_port).await?;
//! alice.join_muc(&room("#test", "127.0.0.1"), "alice").await?;
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use minidom::Element;
use tokio::process::{Child, Command};
use tokio_xmpp::Stanza;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::minidom::rxml::NcName;

use crate::HarnessError;
use crate::prosody::Prosody;
use crate::xmpp_user::XmppUser;

/// biboumi's component domain on the test Prosody.
pub const DOMAIN: &str = "biboumi.localhost";
/// biboumi's component secret.
pub const SECRET: &str = "biboumi-test-secret";

const COMMANDS_NS: &str = "http://jabber.org/protocol/commands";
const DATA_NS: &str = "jabber:x:data";
const START_TIMEOUT: Duration = Duration::from_secs(20);
const WAIT: Duration = Duration::from_secs(10);

/// The Prosody lines (for [`crate::prosody::ProsodyOptions::hosts`]) that
/// declare biboumi's component.
pub fn prosody_lua() -> String {
    format!("Component \"{DOMAIN}\"\n    component_secret = \"{SECRET}\"\n")
}

/// The MUC room of IRC channel `channel` on the IRC server `host` (a name
/// or an address biboumi can dial).
pub fn room(channel: &str, host: &str) -> String {
    format!("{channel}%{host}@{DOMAIN}")
}

/// A running biboumi connected to a test Prosody.
#[derive(Debug)]
pub struct Biboumi {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Biboumi {
    /// Write a config (its SQLite history store in the directory, identd
    /// off, logs at info into `biboumi.log`) and start biboumi; wait until
    /// it has authenticated with Prosody's component port.
    ///
    /// Fails (never skips) when biboumi is not installed, exits, or does
    /// not authenticate within 20 s; the error carries its log's tail.
    pub async fn start(prosody: &Prosody) -> Result<Biboumi, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("cpimgate-biboumi-")
            .tempdir()
            .map_err(|e| HarnessError::io("creating a temporary directory", e))?;
        let config = format!(
            "hostname={DOMAIN}\n\
             password={SECRET}\n\
             xmpp_server_ip=127.0.0.1\n\
             port={port}\n\
             identd_port=0\n\
             db_name={db}\n\
             log_file={log}\n\
             log_level=1\n\
             realname_customization=true\n\
             policy_directory={dir}\n",
            port = prosody.component_port(),
            db = dir.path().join("biboumi.sqlite").display(),
            log = dir.path().join("biboumi.log").display(),
            dir = dir.path().display(),
        );
        let config_path = dir.path().join("biboumi.cfg");
        std::fs::write(&config_path, config)
            .and_then(|()| std::fs::write(dir.path().join("policy.txt"), ""))
            .map_err(|e| HarnessError::io("writing biboumi.cfg", e))?;
        let out = std::fs::File::create(dir.path().join("biboumi.out"))
            .map_err(|e| HarnessError::io("creating biboumi.out", e))?;
        let err = out
            .try_clone()
            .map_err(|e| HarnessError::io("creating biboumi.out", e))?;
        let child = Command::new("biboumi")
            .arg(&config_path)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| HarnessError::NotInstalled {
                program: "biboumi".into(),
                reason: e.to_string(),
            })?;
        let mut biboumi = Biboumi {
            dir,
            child: Some(child),
        };
        let started = Instant::now();
        loop {
            let log = biboumi.log();
            if log.contains("Authenticated with the XMPP server") {
                return Ok(biboumi);
            }
            if let Some(Ok(Some(status))) = biboumi.child.as_mut().map(Child::try_wait) {
                biboumi.child = None;
                return Err(biboumi.start_error(&format!("the process exited with {status}")));
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(biboumi.start_error(&format!(
                    "not authenticated with Prosody's component port after {START_TIMEOUT:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// The directory of its config, store and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("biboumi.log")
    }

    /// The last `lines` lines of its log and console output.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn log(&self) -> String {
        let mut text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        text.push_str(
            &std::fs::read_to_string(self.dir.path().join("biboumi.out")).unwrap_or_default(),
        );
        text
    }

    fn start_error(&self, reason: &str) -> HarnessError {
        let log = self.log();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        HarnessError::ServerStart {
            reason: format!("biboumi: {reason}"),
            log: self.log_path(),
            log_tail: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        }
    }

    /// Stop it (SIGKILL) and wait for it to be gone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}

impl Drop for Biboumi {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

/// Configure, for `user`, biboumi's IRC server `host`: plain-text `port`
/// only (no TLS ports), and no flood throttle (`throttle_limit` -1) —
/// through the ad-hoc command `configure` on `host@biboumi.localhost`
/// (XEP-0050, a XEP-0004 form), as a user of biboumi would.
pub async fn configure_irc_server(
    user: &mut XmppUser,
    host: &str,
    port: u16,
) -> Result<(), HarnessError> {
    let to = format!("{host}@{DOMAIN}");
    let execute = Element::builder("command", COMMANDS_NS)
        .attr(n("node"), "configure")
        .attr(n("action"), "execute")
        .build();
    let command = command_iq(user, &to, "cfg-1", execute).await?;
    if !command.is("command", COMMANDS_NS) {
        return Err(HarnessError::Xmpp(format!(
            "biboumi's configure: no command in the answer: {command:?}"
        )));
    }
    let session = command.attr("sessionid").unwrap_or_default().to_owned();
    let fields: Vec<String> = command
        .get_child("x", DATA_NS)
        .map(|x| {
            x.children()
                .filter(|c| c.is("field", DATA_NS))
                .filter_map(|f| f.attr("var").map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    for needed in ["ports", "tls_ports", "throttle_limit"] {
        if !fields.iter().any(|f| f == needed) {
            return Err(HarnessError::Xmpp(format!(
                "biboumi's configure form has no field {needed:?} (fields: {fields:?})"
            )));
        }
    }
    let field = |var: &str, values: &[String]| {
        let mut f = Element::builder("field", DATA_NS).attr(n("var"), var);
        for v in values {
            f = f.append(Element::builder("value", DATA_NS).append(v.clone()).build());
        }
        f.build()
    };
    let submit = Element::builder("x", DATA_NS)
        .attr(n("type"), "submit")
        .append(field("ports", &[port.to_string()]))
        .append(field("tls_ports", &[]))
        .append(field("throttle_limit", &["-1".to_owned()]))
        .build();
    let complete = Element::builder("command", COMMANDS_NS)
        .attr(n("node"), "configure")
        .attr(n("sessionid"), session)
        .attr(n("action"), "complete")
        .append(submit)
        .build();
    command_iq(user, &to, "cfg-2", complete).await?;
    Ok(())
}

/// Send an iq set with `payload` and return the result iq's payload
/// element (an error iq is an error).
async fn command_iq(
    user: &mut XmppUser,
    to: &str,
    id: &str,
    payload: Element,
) -> Result<Element, HarnessError> {
    let jid = Jid::new(to).map_err(|e| HarnessError::Xmpp(format!("{to:?}: {e}")))?;
    user.send(Iq::Set {
        from: None,
        to: Some(jid),
        id: id.to_owned(),
        payload,
    })
    .await?;
    let answer = user
        .expect_stanza(
            |s| {
                matches!(s, Stanza::Iq(Iq::Result { id: i, .. } | Iq::Error { id: i, .. }) if i == id)
            },
            &format!("the answer to ad-hoc iq {id} from {to}"),
            WAIT,
        )
        .await?;
    match answer {
        Stanza::Iq(Iq::Result { payload, .. }) => {
            Ok(payload.unwrap_or_else(|| Element::builder("empty", COMMANDS_NS).build()))
        }
        other => Err(HarnessError::Xmpp(format!(
            "ad-hoc iq {id} to {to} failed: {other:?}"
        ))),
    }
}

/// An attribute name; the literals here are valid names.
fn n(name: &'static str) -> NcName {
    #[allow(clippy::expect_used)]
    name.try_into().expect("attribute name")
}
