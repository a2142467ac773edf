//! A private InspIRCd per test: its own directory and config, a free port
//! on 127.0.0.1, the IRCv3 modules the adapter uses, limits raised so that
//! many connections from one address and bursts of lines are fine
//! (`../shared/peers.md`: the stock config allows 3 connections per IP and
//! has fakelag on).
//!
//! The process runs in the foreground (`--nofork --runasroot`) and is
//! killed when the handle is dropped. InspIRCd 3.15 may dump core when
//! stopped with SIGTERM: harmless, so core files are switched off.
//!
//! [`Inspircd::start_ngircd`] starts ngIRCd instead, a plain RFC 2812
//! server without IRCv3 (no server-time, echo-message, labels, batches):
//! the adapter must degrade gracefully on it.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::HarnessError;
use crate::prosody::free_port;

/// The server's name, and the network name of `irc://` addresses.
pub const SERVER_NAME: &str = "irc.localhost";

/// The server name of the Atheme services of
/// [`Inspircd::start_with_services`].
pub const SERVICES_NAME: &str = "services.localhost";

/// The name of the second server of [`Inspircd::start_pair`].
pub const SERVER2_NAME: &str = "irc2.localhost";

/// A server-to-server link of one server of a pair (InspIRCd
/// `m_spanningtree`).
#[derive(Debug, Clone)]
struct Link {
    /// This server's name and SID.
    name: &'static str,
    sid: &'static str,
    /// This server's port for servers.
    port: u16,
    /// The other server.
    peer: &'static str,
    peer_port: u16,
    /// Whether this side connects (and reconnects every second).
    autoconnect: bool,
    /// The peer is IRC services (Atheme): U-lined, the SASL agent.
    services: bool,
}

/// Which server program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Inspircd,
    Ngircd,
}

const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running InspIRCd.
#[derive(Debug)]
pub struct Inspircd {
    flavor: Flavor,
    dir: tempfile::TempDir,
    port: u16,
    /// A TLS listener (certificate of the per-instance test CA), if asked.
    tls_port: Option<u16>,
    child: Option<Child>,
    /// Atheme, for [`Inspircd::start_with_services`].
    services: Option<Child>,
}

impl Inspircd {
    /// Start a server on a free port.
    ///
    /// Fails (never skips) when InspIRCd is not installed, exits, or does
    /// not listen within 20 s; the error carries the tail of its log.
    pub async fn start() -> Result<Inspircd, HarnessError> {
        Self::start_with(Flavor::Inspircd, false).await
    }

    /// ngIRCd instead of InspIRCd: a server without IRCv3.
    pub async fn start_ngircd() -> Result<Inspircd, HarnessError> {
        Self::start_with(Flavor::Ngircd, false).await
    }

    /// [`Inspircd::start`] with a TLS listener too ([`Inspircd::tls_port`]),
    /// its certificate signed by a CA made for this instance
    /// ([`Inspircd::ca_cert_path`]), valid for `localhost` and `127.0.0.1`.
    pub async fn start_tls() -> Result<Inspircd, HarnessError> {
        Self::start_with(Flavor::Inspircd, true).await
    }

    /// Two InspIRCd servers linked into one network (`irc.localhost`, the
    /// hub that reconnects the link every second, and `irc2.localhost`):
    /// killing the second one is a netsplit for the users of the first,
    /// starting it again a netjoin. Returns once both listen; the link
    /// itself comes up a moment later.
    pub async fn start_pair() -> Result<(Inspircd, Inspircd), HarnessError> {
        let (pa, pb) = (free_port()?, free_port()?);
        let a = Link {
            name: SERVER_NAME,
            sid: "1AA",
            port: pa,
            peer: SERVER2_NAME,
            peer_port: pb,
            autoconnect: true,
            services: false,
        };
        let b = Link {
            name: SERVER2_NAME,
            sid: "2BB",
            port: pb,
            peer: SERVER_NAME,
            peer_port: pa,
            autoconnect: false,
            services: false,
        };
        let first = Self::start_full(Flavor::Inspircd, false, Some(a)).await?;
        let second = Self::start_full(Flavor::Inspircd, false, Some(b)).await?;
        Ok((first, second))
    }

    /// InspIRCd linked with Atheme services (`services.localhost`:
    /// NickServ, SaslServ with PLAIN): accounts are registered with
    /// `/msg NickServ REGISTER password email`, and SASL logs into them.
    /// Returns once Atheme has synchronised with the server.
    pub async fn start_with_services() -> Result<Inspircd, HarnessError> {
        let port = free_port()?;
        let link = Link {
            name: SERVER_NAME,
            sid: "1AA",
            port,
            peer: SERVICES_NAME,
            // Never dialled (Atheme connects), but InspIRCd refuses a
            // link block without a usable port.
            peer_port: free_port()?,
            autoconnect: false,
            services: true,
        };
        let mut server = Self::start_full(Flavor::Inspircd, false, Some(link)).await?;
        server.start_services(port).await?;
        Ok(server)
    }

    /// [`Inspircd::start_with_services`] with a TLS listener too (as
    /// [`Inspircd::start_tls`]), where a client certificate's fingerprint
    /// (see [`Inspircd::client_certificate`]) can log into an account with
    /// SASL EXTERNAL once NickServ knows it (`CERT ADD fingerprint`).
    pub async fn start_tls_with_services() -> Result<Inspircd, HarnessError> {
        let port = free_port()?;
        let link = Link {
            name: SERVER_NAME,
            sid: "1AA",
            port,
            peer: SERVICES_NAME,
            peer_port: free_port()?,
            autoconnect: false,
            services: true,
        };
        let mut server = Self::start_full(Flavor::Inspircd, true, Some(link)).await?;
        server.start_services(port).await?;
        Ok(server)
    }

    /// A client certificate and key (PEM files in the server's directory,
    /// signed by its test CA) for `name`, and the certificate's SHA-256
    /// fingerprint as InspIRCd and NickServ show it (lowercase hex).
    pub async fn client_certificate(&self, name: &str) -> Result<ClientCertificate, HarnessError> {
        let dir = self.dir.path();
        let (key, csr, crt) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
        );
        let subject = format!("/CN={name}");
        // X.509 v3 with client-auth usage: rustls refuses v1 certificates.
        let ext = format!("{name}.ext");
        std::fs::write(
            dir.join(&ext),
            "basicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\n\
             extendedKeyUsage=clientAuth\n",
        )
        .map_err(|e| HarnessError::io("writing the client certificate's extensions", e))?;
        let steps: [Vec<&str>; 2] = [
            vec![
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                &subject,
            ],
            vec![
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
                &ext,
            ],
        ];
        for args in steps {
            crate::prosody::openssl(dir, &args).await?;
        }
        let out = Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256", "-in", &crt])
            .current_dir(dir)
            .output()
            .await
            .map_err(|e| HarnessError::io("running openssl x509 -fingerprint", e))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let fingerprint = text
            .split('=')
            .nth(1)
            .map(|f| f.trim().replace(':', "").to_ascii_lowercase())
            .filter(|f| f.len() == 64)
            .ok_or_else(|| HarnessError::Irc(format!("no fingerprint in {text:?}")))?;
        Ok(ClientCertificate {
            cert_file: dir.join(crt),
            key_file: dir.join(key),
            fingerprint,
        })
    }

    async fn start_services(&mut self, link_port: u16) -> Result<(), HarnessError> {
        let example = "/usr/share/doc/atheme-services/examples/atheme.conf.example";
        let text = std::fs::read_to_string(example).map_err(|e| HarnessError::NotInstalled {
            program: "atheme-services".into(),
            reason: format!("{example}: {e}"),
        })?;
        let dir = self.dir.path().join("atheme");
        std::fs::create_dir_all(&dir).map_err(|e| HarnessError::io("creating atheme/", e))?;
        std::fs::write(dir.join("atheme.conf"), atheme_config(&text, link_port))
            .map_err(|e| HarnessError::io("writing atheme.conf", e))?;
        let log = dir.join("atheme.log");
        let child = Command::new("atheme-services")
            .arg("-n")
            .arg("-c")
            .arg(dir.join("atheme.conf"))
            .arg("-D")
            .arg(&dir)
            .arg("-l")
            .arg(&log)
            .arg("-p")
            .arg(dir.join("atheme.pid"))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| HarnessError::NotInstalled {
                program: "atheme-services".into(),
                reason: e.to_string(),
            })?;
        self.services = Some(child);
        let started = Instant::now();
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("finished synching with uplink") {
                return Ok(());
            }
            if let Some(Ok(Some(status))) = self.services.as_mut().map(Child::try_wait) {
                self.services = None;
                return Err(self.start_error(&format!("atheme exited with {status}:\n{text}")));
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(self.start_error(&format!(
                    "atheme did not link within {START_TIMEOUT:?}:\n{text}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn start_with(flavor: Flavor, tls: bool) -> Result<Inspircd, HarnessError> {
        Self::start_full(flavor, tls, None).await
    }

    async fn start_full(
        flavor: Flavor,
        tls: bool,
        link: Option<Link>,
    ) -> Result<Inspircd, HarnessError> {
        let mut dir = tempfile::Builder::new()
            .prefix("cpimgate-inspircd-")
            .tempdir()
            .map_err(|e| HarnessError::io("creating a temporary directory", e))?;
        if std::env::var_os("CPIMGATE_E2E_KEEP").is_some() {
            dir.disable_cleanup(true);
            eprintln!("inspircd directory: {}", dir.path().display());
        }
        if tls {
            crate::prosody::make_certificates(dir.path()).await?;
        }
        let mut server = Inspircd {
            flavor,
            dir,
            port: 0,
            tls_port: None,
            child: None,
            services: None,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            server.port = free_port()?;
            if tls {
                server.tls_port = Some(free_port()?);
            }
            std::fs::write(
                server.config_path(),
                match flavor {
                    Flavor::Inspircd => config_text(
                        server.dir.path(),
                        server.port,
                        server.tls_port,
                        link.as_ref(),
                    ),
                    Flavor::Ngircd => ngircd_config_text(server.dir.path(), server.port),
                },
            )
            .map_err(|e| HarnessError::io("writing inspircd.conf", e))?;
            match server.spawn().await {
                Ok(()) => return Ok(server),
                Err(e) if attempt < 3 && server.log_tail(20).contains("could not bind") => {
                    tracing::warn!("retrying with another port: {e}");
                    server.kill().await;
                }
                Err(e) => {
                    server.kill().await;
                    return Err(e);
                }
            }
        }
    }

    /// The client listener, `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// The TLS listener's port, for a server from [`Inspircd::start_tls`].
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    /// The test CA that signed the TLS certificate (PEM).
    pub fn ca_cert_path(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// The server's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("inspircd.conf")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("inspircd.log")
    }

    /// The last `lines` lines of the server's log and console output.
    pub fn log_tail(&self, lines: usize) -> String {
        let mut out = String::new();
        for name in ["inspircd.log", "inspircd.out"] {
            let text = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            let from = all.len().saturating_sub(lines);
            out.push_str(&format!("--- {name} ---\n"));
            out.push_str(&all[from..].join("\n"));
            out.push('\n');
        }
        out
    }

    /// Kill the process (SIGKILL) and wait for it.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// Start again after [`Inspircd::kill`], on the same port.
    pub async fn start_again(&mut self) -> Result<(), HarnessError> {
        self.kill().await;
        self.spawn().await
    }

    async fn spawn(&mut self) -> Result<(), HarnessError> {
        let console = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("inspircd.out"))
            .map_err(|e| HarnessError::io("opening inspircd.out", e))?;
        let console2 = console
            .try_clone()
            .map_err(|e| HarnessError::io("opening inspircd.out", e))?;
        let started = Instant::now();
        let script = match self.flavor {
            Flavor::Inspircd => "ulimit -c 0; exec inspircd --config \"$1\" --nofork --runasroot",
            Flavor::Ngircd => "ulimit -c 0; exec ngircd --nodaemon --config \"$1\"",
        };
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("sh")
            .arg(self.config_path())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(console)
            .stderr(console2)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| HarnessError::NotInstalled {
                program: "sh".into(),
                reason: e.to_string(),
            })?;
        self.child = Some(child);
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                let program = match self.flavor {
                    Flavor::Inspircd => "inspircd",
                    Flavor::Ngircd => "ngircd",
                };
                let installed = std::process::Command::new(program)
                    .arg("--version")
                    .output()
                    .is_ok();
                if !installed {
                    return Err(HarnessError::NotInstalled {
                        program: program.into(),
                        reason: "not found on PATH".into(),
                    });
                }
                return Err(self.start_error(&format!("the process exited with {status}")));
            }
            let tls_up = match self.tls_port {
                Some(p) => TcpStream::connect((Ipv4Addr::LOCALHOST, p)).await.is_ok(),
                None => true,
            };
            if tls_up && TcpStream::connect(self.addr()).await.is_ok() {
                tracing::info!(port = self.port, "inspircd up in {:?}", started.elapsed());
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(self.start_error(&format!(
                    "not listening on 127.0.0.1:{} after {START_TIMEOUT:?}",
                    self.port
                )));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn start_error(&self, reason: &str) -> HarnessError {
        HarnessError::IrcServerStart {
            reason: reason.to_owned(),
            log: self.log_path(),
            log_tail: self.log_tail(40),
        }
    }
}

impl Drop for Inspircd {
    fn drop(&mut self) {
        for child in [self.child.as_mut(), self.services.as_mut()]
            .into_iter()
            .flatten()
        {
            let _ = child.start_kill();
        }
    }
}

/// Debian's example Atheme configuration with the InspIRCd protocol
/// module, our names, and one uplink: this server's link port.
fn atheme_config(example: &str, link_port: u16) -> String {
    let mut text = example
        .replace(
            "#loadmodule \"modules/protocol/charybdis\";",
            "loadmodule \"modules/protocol/inspircd\";",
        )
        .replace(
            "name = \"services.int\";",
            &format!("name = \"{SERVICES_NAME}\";"),
        )
        .replace(
            "netname = \"misconfigured network\";",
            "netname = \"TestNet\";",
        )
        // Certificate fingerprints on accounts, and SASL EXTERNAL.
        .replace(
            "#loadmodule \"modules/nickserv/cert\";",
            "loadmodule \"modules/nickserv/cert\";",
        )
        .replace(
            "#loadmodule \"modules/saslserv/external\";",
            "loadmodule \"modules/saslserv/external\";",
        );
    // Drop the example's uplink blocks.
    while let Some(at) = text.find("\nuplink \"") {
        let Some(len) = text[at..].find("\n};") else {
            break;
        };
        text.replace_range(at..at + len + 3, "");
    }
    text.push_str(&format!(
        "\nuplink \"{SERVER_NAME}\" {{\n\thost = \"127.0.0.1\";\n\tsend_password = \"linkpw\";\n\treceive_password = \"linkpw\";\n\tport = {link_port};\n}};\n"
    ));
    text
}

fn ngircd_config_text(dir: &Path, port: u16) -> String {
    let dir = dir.display();
    format!(
        r#"[Global]
Name = {SERVER_NAME}
Info = cpimgate test
Listen = 127.0.0.1
Ports = {port}
MotdPhrase = "test"
PidFile = {dir}/ngircd.pid
[Limits]
MaxConnectionsIP = 0
MaxJoins = 0
MaxNickLength = 30
[Options]
PAM = no
Ident = no
DNS = no
RequireAuthPing = no
IncludeDir = {dir}/conf.d
"#
    )
}

fn config_text(dir: &Path, port: u16, tls_port: Option<u16>, link: Option<&Link>) -> String {
    let (name, sid) = link.map_or((SERVER_NAME, "1AA"), |l| (l.name, l.sid));
    let link = match link {
        Some(l) => format!(
            r#"<module name="spanningtree">
<bind address="127.0.0.1" port="{port}" type="servers">
<link name="{peer}" ipaddr="127.0.0.1" port="{peer_port}" sendpass="linkpw" recvpass="linkpw">
{auto}
"#,
            port = l.port,
            peer = l.peer,
            peer_port = l.peer_port,
            auto = if l.autoconnect {
                format!(r#"<autoconnect period="1" server="{}">"#, l.peer)
            } else if l.services {
                format!(
                    r#"<uline server="{p}" silent="yes">
<module name="services_account">
<module name="sasl">
<sasl target="{p}">"#,
                    p = l.peer
                )
            } else {
                String::new()
            }
        ),
        None => String::new(),
    };
    let tls = match tls_port {
        // InspIRCd 3 ssl_gnutls: a profile and a listener using it.
        Some(p) => format!(
            // Client certificates are asked for (not required) and their
            // SHA-256 fingerprints go to services (sslinfo), for SASL
            // EXTERNAL.
            r#"<module name="ssl_gnutls">
<module name="sslinfo">
<sslprofile name="test" provider="gnutls" certfile="{d}/server.crt" keyfile="{d}/server.key"
  cafile="{d}/ca.crt" dhfile="" hash="sha256" requestclientcert="yes">
<bind address="127.0.0.1" port="{p}" type="clients" sslprofile="test">
"#,
            d = dir.display()
        ),
        None => String::new(),
    };
    let dir = dir.display();
    format!(
        r#"<server name="{name}" id="{sid}" description="cpimgate test" network="TestNet">
<admin name="test" nick="test" email="test@localhost">
<bind address="127.0.0.1" port="{port}" type="clients">
<connect name="main" allow="127.0.0.1" timeout="60" pingfreq="120"
  hardsendq="8388608" softsendq="8388608" recvq="65536"
  threshold="1000000" commandrate="100000000" fakelag="no"
  localmax="100000" globalmax="100000" maxlocal="100000" maxglobal="100000" limit="100000"
  useident="no" resolvehostnames="no" maxchans="100">
<performance clonesonconnect="no" softlimit="100000" timeskipwarn="0" netbuffersize="65534">
<security hidesplits="no" announceinvites="dynamic">
<limits maxnick="30" maxchan="64" maxmodes="20" maxident="11" maxhost="64" maxquit="255"
  maxtopic="307" maxkick="255" maxreal="128" maxaway="200">
<pid file="{dir}/inspircd.pid">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="{dir}/inspircd.log">
<options prefixquit="Quit: " suffixquit="" fixedquit="" syntaxhints="no" defaultmodes="n">
<module name="cap">
<module name="ircv3">
<module name="ircv3_servertime">
<module name="ircv3_echomessage">
<module name="ircv3_ctctags">
<module name="ircv3_msgid">
<module name="ircv3_batch">
<module name="ircv3_labeledresponse">
<module name="ircv3_accounttag">
<module name="namesx">
<module name="uhnames">
<module name="chanhistory">
<chanhistory maxlines="2000" notice="no" prefixmsg="no" bots="yes">
<module name="samode">
<class name="all" commands="*" privs="*" usermodes="*" chanmodes="*">
<type name="Admin" classes="all">
<oper name="{OPER_NAME}" password="{OPER_PASSWORD}" host="*@*" type="Admin">
{tls}{link}"#
    )
}

/// A client certificate of [`Inspircd::client_certificate`].
#[derive(Clone, Debug)]
pub struct ClientCertificate {
    /// The certificate, PEM.
    pub cert_file: PathBuf,
    /// Its private key, PEM.
    pub key_file: PathBuf,
    /// The SHA-256 fingerprint, lowercase hex without separators.
    pub fingerprint: String,
}

/// An IRC operator of every test InspIRCd (`OPER name password`), who may
/// `SAMODE #chan +o nick` to make a test user a channel operator.
pub const OPER_NAME: &str = "testop";
/// The operator's password.
pub const OPER_PASSWORD: &str = "testop-pw";

/// The configuration of a gateway (for [`crate::gateway::Gateway::start`])
/// with the IRC adapter `irc` in `#test` on the server at `addr` and an
/// embedded adapter `sip`, bridged `#test` ↔ `sip_room`. `irc_settings`
/// are more lines of `[adapters.irc]` (e.g. `mode = "puppet"`), `more`
/// is appended (routes). Retries are quick, as tests want them.
pub fn bridge_config(addr: SocketAddr, sip_room: &str, irc_settings: &str, more: &str) -> String {
    format!(
        r##"
[gateway]
name = "gw-irc-test"
domains = ["gw.localhost"]

[store]
path = "{{dir}}/gateway.sqlite"

[queue]
retry_base_ms = 100
retry_max_ms = 1000

[adapters.irc]
kind = "irc"
network = "{SERVER_NAME}"
server = "{addr}"
nick = "bridge"
channels = ["#test"]
{irc_settings}

[adapters.sip]
kind = "embedded"

[[bridge]]
name = "lobby"
rooms = [
  {{ adapter = "irc", address = "irc://{SERVER_NAME}/%23test" }},
  {{ adapter = "sip", address = "{sip_room}" }},
]
{more}
"##
    )
}
