//! A private Prosody instance per test.
//!
//! [`Prosody::start`] writes a config into a fresh temporary directory and
//! runs `prosody -F` on it, as root, listening on 127.0.0.1 only, on two free
//! ports chosen for this instance (so tests run in parallel):
//!
//! * a c2s port: STARTTLS is offered (with a certificate signed by a test CA
//!   made for this instance, see [`Prosody::ca_cert_path`]) but not required,
//!   and PLAIN is allowed without TLS, so a client may log in over plain TCP
//!   (tokio-xmpp's `Client::new_plaintext`) or over STARTTLS;
//! * a component port (XEP-0114) serving [`COMPONENT_DOMAIN`] with
//!   [`COMPONENT_SECRET`].
//!
//! Two virtual hosts, [`HOST_A`] and [`HOST_B`], each have a MUC service
//! ([`MUC_A`], [`MUC_B`]) where a room exists as soon as someone joins it
//! (`muc_room_locking = false`). There is no s2s, no HTTP, no `mod_limits`.
//!
//! ```no_run
//! # async fn f() -> Result<(), cpimgate_e2e::HarnessError> {
//! use cpimgate_e2e::prosody::{HOST_A, Prosody};
//! let mut server = Prosody::start().await?;
//! server.register("alice", HOST_A, "pw").await?;
//! // ... connect clients to server.c2s_addr(), a component to server.component_addr() ...
//! server.kill().await?;      // a crash
//! server.restart().await?;   // same ports, same accounts
//! # Ok(()) }
//! ```
//!
//! Dropping the value kills the process and deletes the directory (set
//! `CPIMGATE_E2E_KEEP=1` to keep it, its path is logged on stderr).

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::HarnessError;

/// The first virtual host.
pub const HOST_A: &str = "a.localhost";
/// The second virtual host.
pub const HOST_B: &str = "b.localhost";
/// The MUC service of [`HOST_A`].
pub const MUC_A: &str = "conference.a.localhost";
/// The MUC service of [`HOST_B`].
pub const MUC_B: &str = "conference.b.localhost";
/// The external component's domain (XEP-0114).
pub const COMPONENT_DOMAIN: &str = "gw.localhost";
/// The external component's shared secret.
pub const COMPONENT_SECRET: &str = "gw-test-secret";

/// How long Prosody may take to listen after being started.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a graceful stop may take before the process is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of [`Prosody::start_with`] beyond the defaults.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ProsodyOptions {
    /// Lowest level written to the log: `debug` (the default: every stanza
    /// in and out is logged), `info`, `warn`. Use `info` or above for load
    /// tests: debug logging slows Prosody down.
    pub log_level: String,
    /// Lua lines for the global section (before the first host), e.g.
    /// `"c2s_stanza_size_limit = 10 * 1024"`.
    pub global: String,
    /// Lua lines appended after the built-in hosts and components, e.g.
    /// another external component:
    /// `"Component \"irc.localhost\"\n    component_secret = \"x\""`.
    pub hosts: String,
}

impl Default for ProsodyOptions {
    fn default() -> Self {
        ProsodyOptions {
            log_level: "debug".to_owned(),
            global: String::new(),
            hosts: String::new(),
        }
    }
}

impl ProsodyOptions {
    /// The defaults with the log at `level`.
    pub fn log_level(mut self, level: &str) -> Self {
        level.clone_into(&mut self.log_level);
        self
    }

    /// The defaults plus `lua` in the global section.
    pub fn global(mut self, lua: &str) -> Self {
        self.global.push_str(lua);
        self.global.push('\n');
        self
    }

    /// The defaults plus `lua` after the built-in hosts.
    pub fn hosts(mut self, lua: &str) -> Self {
        self.hosts.push_str(lua);
        self.hosts.push('\n');
        self
    }
}

/// A running (or stopped) Prosody of one test.
#[derive(Debug)]
pub struct Prosody {
    options: ProsodyOptions,
    dir: tempfile::TempDir,
    c2s_port: u16,
    component_port: u16,
    child: Option<Child>,
}

impl Prosody {
    /// Write a config into a fresh temporary directory, start Prosody on it
    /// and wait until its c2s and component ports accept connections.
    ///
    /// Fails (never skips) when Prosody is not installed, exits, cannot open
    /// its ports or does not listen within 20 s; the error carries the tail
    /// of its log. A port taken by someone else between choosing and binding
    /// it is retried with other ports.
    pub async fn start() -> Result<Prosody, HarnessError> {
        Self::start_with(ProsodyOptions::default()).await
    }

    /// [`Prosody::start`] with settings of the test's own.
    pub async fn start_with(options: ProsodyOptions) -> Result<Prosody, HarnessError> {
        let mut dir = tempfile::Builder::new()
            .prefix("cpimgate-prosody-")
            .tempdir()
            .map_err(|e| HarnessError::io("creating a temporary directory", e))?;
        if std::env::var_os("CPIMGATE_E2E_KEEP").is_some() {
            dir.disable_cleanup(true);
            eprintln!("prosody directory: {}", dir.path().display());
        }
        std::fs::create_dir_all(dir.path().join("data"))
            .and_then(|()| std::fs::create_dir_all(dir.path().join("certs")))
            .map_err(|e| HarnessError::io("creating the data directory", e))?;
        make_certificates(dir.path()).await?;
        let mut server = Prosody {
            options,
            dir,
            c2s_port: 0,
            component_port: 0,
            child: None,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            server.c2s_port = free_port()?;
            server.component_port = free_port()?;
            server.write_config()?;
            match server.spawn().await {
                Ok(()) => return Ok(server),
                Err(StartFailure::PortTaken(e)) if attempt < 3 => {
                    tracing::warn!("retrying with other ports: {e}");
                    server.kill().await?;
                }
                Err(StartFailure::PortTaken(e) | StartFailure::Other(e)) => {
                    let _ = server.kill().await;
                    return Err(e);
                }
            }
        }
    }

    /// The c2s listener, `127.0.0.1:PORT`.
    pub fn c2s_addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.c2s_port))
    }

    /// The c2s port.
    pub fn c2s_port(&self) -> u16 {
        self.c2s_port
    }

    /// The component listener (XEP-0114), `127.0.0.1:PORT`.
    pub fn component_addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.component_port))
    }

    /// The component port.
    pub fn component_port(&self) -> u16 {
        self.component_port
    }

    /// The instance's directory (config, data, logs, certificates).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The config file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("prosody.cfg.lua")
    }

    /// Prosody's log (debug level: every stanza in and out).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("prosody.log")
    }

    /// The PEM certificate of the test CA that signed the server's
    /// certificate (valid for both hosts, their MUC services, the component
    /// domain, `localhost` and 127.0.0.1). Trust it to test STARTTLS with
    /// certificate checks on.
    pub fn ca_cert_path(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// The last `lines` lines of Prosody's log and of its stdout/stderr.
    pub fn log_tail(&self, lines: usize) -> String {
        let mut out = tail(&self.log_path(), lines);
        if !matches!(self.options.log_level.as_str(), "debug" | "info") {
            out.push_str("--- prosody.info.log ---\n");
            out.push_str(&tail(&self.dir.path().join("prosody.info.log"), lines));
        }
        let console = tail(&self.dir.path().join("prosody.out"), 20);
        if !console.trim().is_empty() {
            out.push_str("--- stdout/stderr ---\n");
            out.push_str(&console);
        }
        out
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Create the account `user@host` with `password` (`prosodyctl
    /// register`). Works whether or not the server is running; an existing
    /// account gets the new password.
    pub async fn register(
        &self,
        user: &str,
        host: &str,
        password: &str,
    ) -> Result<(), HarnessError> {
        let config = self.config_path();
        let mut cmd = Command::new("prosodyctl");
        cmd.arg("--config")
            .arg(&config)
            .args(["register", user, host, password]);
        run(cmd, &format!("prosodyctl register {user} {host} ***")).await
    }

    /// Kill the process (SIGKILL, a crash: no stream is closed) and wait for
    /// it to be gone. Nothing happens if it is not running.
    pub async fn kill(&mut self) -> Result<(), HarnessError> {
        if let Some(mut child) = self.child.take() {
            child
                .kill()
                .await
                .map_err(|e| HarnessError::io("killing prosody", e))?;
        }
        Ok(())
    }

    /// Stop the process gracefully (SIGTERM: Prosody closes every stream),
    /// killing it if it takes longer than 10 s. Nothing happens if it is not
    /// running.
    pub async fn stop(&mut self) -> Result<(), HarnessError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if let Some(pid) = child.id() {
            let mut cmd = Command::new("kill");
            cmd.args(["-TERM", &pid.to_string()]);
            // A process that exited just now is not an error.
            let _ = run(cmd, "kill -TERM prosody").await;
            if let Ok(status) = tokio::time::timeout(STOP_TIMEOUT, child.wait()).await {
                status.map_err(|e| HarnessError::io("waiting for prosody to stop", e))?;
                return Ok(());
            }
            tracing::warn!("prosody did not stop within {STOP_TIMEOUT:?}: killing it");
        }
        child
            .kill()
            .await
            .map_err(|e| HarnessError::io("killing prosody", e))
    }

    /// Stop Prosody (gracefully, if it is running) and start it again on the
    /// same ports with the same data: accounts survive, MUC rooms (not
    /// persistent) do not.
    pub async fn restart(&mut self) -> Result<(), HarnessError> {
        self.stop().await?;
        self.spawn().await.map_err(|f| match f {
            StartFailure::PortTaken(e) | StartFailure::Other(e) => e,
        })
    }

    /// Start the process after [`Prosody::kill`] or [`Prosody::stop`], on the
    /// same ports; the same as [`Prosody::restart`].
    pub async fn start_again(&mut self) -> Result<(), HarnessError> {
        self.restart().await
    }

    fn write_config(&self) -> Result<(), HarnessError> {
        let text = config_text(
            self.dir.path(),
            self.c2s_port,
            self.component_port,
            &self.options,
        );
        std::fs::write(self.config_path(), text)
            .map_err(|e| HarnessError::io("writing prosody.cfg.lua", e))
    }

    async fn spawn(&mut self) -> Result<(), StartFailure> {
        let log = self.dir.path().join("prosody.info.log");
        let log_start = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let console = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("prosody.out"))
            .map_err(|e| StartFailure::Other(HarnessError::io("opening prosody.out", e)))?;
        let console2 = console
            .try_clone()
            .map_err(|e| StartFailure::Other(HarnessError::io("opening prosody.out", e)))?;
        let started = Instant::now();
        let child = Command::new("prosody")
            .arg("-F")
            .arg("--config")
            .arg(self.config_path())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(console)
            .stderr(console2)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                StartFailure::Other(HarnessError::NotInstalled {
                    program: "prosody".into(),
                    reason: e.to_string(),
                })
            })?;
        self.child = Some(child);

        let c2s = format!("Activated service 'c2s' on [127.0.0.1]:{}", self.c2s_port);
        let component = format!(
            "Activated service 'component' on [127.0.0.1]:{}",
            self.component_port
        );
        loop {
            let this_run = read_from(&log, log_start);
            if this_run.contains("Failed to open server port") {
                return Err(StartFailure::PortTaken(self.start_error(
                    "a port is taken (\"Failed to open server port\" in the log)",
                )));
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Err(StartFailure::Other(
                    self.start_error(&format!("the process exited with {status}")),
                ));
            }
            if this_run.contains(&c2s)
                && this_run.contains(&component)
                && TcpStream::connect(self.c2s_addr()).await.is_ok()
                && TcpStream::connect(self.component_addr()).await.is_ok()
            {
                tracing::info!(
                    c2s = self.c2s_port,
                    component = self.component_port,
                    "prosody up in {:?}",
                    started.elapsed()
                );
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(StartFailure::Other(self.start_error(&format!(
                    "not listening on 127.0.0.1:{} and :{} after {START_TIMEOUT:?}",
                    self.c2s_port, self.component_port
                ))));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn start_error(&self, reason: &str) -> HarnessError {
        HarnessError::ServerStart {
            reason: format!("prosody: {reason}"),
            log: self.log_path(),
            log_tail: self.log_tail(40),
        }
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

enum StartFailure {
    PortTaken(HarnessError),
    Other(HarnessError),
}

/// Ports handed out by this process, never handed out twice, so that
/// parallel tests do not pick the same one between choosing and binding.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A port on 127.0.0.1 that is free now.
pub fn free_port() -> Result<u16, HarnessError> {
    for _ in 0..50 {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| HarnessError::io("finding a free port", e))?;
        let port = listener
            .local_addr()
            .map_err(|e| HarnessError::io("finding a free port", e))?
            .port();
        let mut guard = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
        if guard.get_or_insert_with(HashSet::new).insert(port) {
            return Ok(port);
        }
    }
    Err(HarnessError::io(
        "finding a free port",
        std::io::Error::other("the kernel kept handing out ports already used"),
    ))
}

fn config_text(dir: &Path, c2s_port: u16, component_port: u16, options: &ProsodyOptions) -> String {
    let p = |name: &str| lua_string(&dir.join(name));
    format!(
        r#"-- Written by the cpimgate end-to-end harness.
run_as_root = true
prosody_user = "{user}"
pidfile = {pidfile}
data_path = {data}
certificates = {certs}
log = {{
    {{ levels = {{ min = "{level}" }}, to = "file", filename = {log} }};
    -- The harness reads "Activated service" lines here, whatever the level above.
    {{ levels = {{ min = "info" }}, to = "file", filename = {status_log} }};
}}

interfaces = {{ "127.0.0.1" }}
local_interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {c2s_port} }}
c2s_interfaces = {{ "127.0.0.1" }}
component_ports = {{ {component_port} }}
component_interfaces = {{ "127.0.0.1" }}
-- No other listener.
c2s_direct_tls_ports = {{ }}
legacy_ssl_ports = {{ }}
s2s_ports = {{ }}
s2s_direct_tls_ports = {{ }}
http_ports = {{ }}
https_ports = {{ }}

-- No mod_limits (it throttles c2s), no s2s, no admin socket.
modules_enabled = {{
    "roster"; "saslauth"; "tls"; "disco"; "ping"; "carbons"; "smacks"; "time"; "version";
}}
modules_disabled = {{ "s2s"; "s2s_auth_certs"; "admin_socket" }}

-- STARTTLS is offered, not required; PLAIN works over plain TCP.
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
ssl = {{ certificate = {cert}; key = {key} }}

authentication = "internal_hashed"
storage = "internal"
allow_registration = false

{global}
VirtualHost "a.localhost"
VirtualHost "b.localhost"

Component "conference.a.localhost" "muc"
    muc_room_locking = false
    restrict_room_creation = false
    max_history_messages = 20

Component "conference.b.localhost" "muc"
    muc_room_locking = false
    restrict_room_creation = false
    max_history_messages = 20

Component "gw.localhost"
    component_secret = "{secret}"

{hosts}
"#,
        user = current_user(),
        level = options.log_level,
        global = options.global,
        hosts = options.hosts,
        pidfile = p("prosody.pid"),
        data = p("data"),
        certs = p("certs"),
        log = p("prosody.log"),
        status_log = p("prosody.info.log"),
        cert = p("server.crt"),
        key = p("server.key"),
        secret = COMPONENT_SECRET,
    )
}

/// The user Prosody and `prosodyctl` run as, for `prosody_user`: as root,
/// `prosodyctl` switches to `prosody_user` (the packaged `prosody` by
/// default) and then cannot write into our data directory ("Error saving to
/// storage").
fn current_user() -> String {
    std::process::Command::new("id")
        .arg("-un")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|u| !u.is_empty() && !u.contains('"'))
        .unwrap_or_else(|| "root".to_owned())
}

/// A path as a Lua string literal.
fn lua_string(path: &Path) -> String {
    let s = path.display().to_string();
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A test CA and a server certificate signed by it, with every name the
/// server answers to.
pub(crate) async fn make_certificates(dir: &Path) -> Result<(), HarnessError> {
    let ext = "subjectAltName=DNS:a.localhost,DNS:b.localhost,DNS:*.a.localhost,\
               DNS:*.b.localhost,DNS:gw.localhost,DNS:localhost,IP:127.0.0.1\n\
               basicConstraints=critical,CA:FALSE\n\
               keyUsage=critical,digitalSignature,keyEncipherment\n\
               extendedKeyUsage=serverAuth\n";
    std::fs::write(dir.join("server.ext"), ext)
        .map_err(|e| HarnessError::io("writing server.ext", e))?;
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "30",
            "-subj",
            "/CN=cpimgate test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=a.localhost",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "30",
            "-extfile",
            "server.ext",
        ],
    ];
    for args in steps {
        openssl(dir, args).await?;
    }
    Ok(())
}

/// Run the `openssl` CLI with `args` in `dir` (test certificates); an
/// error names the command and carries its output.
pub(crate) async fn openssl<S: AsRef<str>>(dir: &Path, args: &[S]) -> Result<(), HarnessError> {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let mut cmd = Command::new("openssl");
    cmd.args(&args).current_dir(dir);
    run(cmd, &format!("openssl {}", args.join(" "))).await
}

/// Run a helper command to completion; an error names the command and
/// carries its output.
async fn run(mut cmd: Command, shown: &str) -> Result<(), HarnessError> {
    let program = cmd.as_std().get_program().to_string_lossy().into_owned();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| HarnessError::NotInstalled {
            program,
            reason: e.to_string(),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(HarnessError::Command {
            command: shown.to_owned(),
            status: out.status.to_string(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        })
    }
}

fn read_from(path: &Path, offset: u64) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    let start = usize::try_from(offset).unwrap_or(0).min(bytes.len());
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

fn tail(path: &Path, lines: usize) -> String {
    let text = match std::fs::read(path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => return format!("({}: {e})\n", path.display()),
    };
    let all: Vec<&str> = text.lines().collect();
    let mut out = all[all.len().saturating_sub(lines)..].join("\n");
    out.push('\n');
    out
}
