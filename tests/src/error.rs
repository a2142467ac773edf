//! The harness's error type.

use std::path::PathBuf;

/// Why a piece of the test harness could not do its job. Every variant
/// carries what a failing test needs to print: the command, the log tail,
/// the stanza waited for.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// Happens when a program the tests need (`prosody`, `prosodyctl`,
    /// `openssl`) is not installed.
    #[error("{program} is not installed or not runnable ({reason}); run scripts/install-test-deps")]
    NotInstalled {
        /// The program.
        program: String,
        /// What spawning it said.
        reason: String,
    },
    /// Happens when a file or socket operation of the harness fails.
    #[error("{what}: {source}")]
    Io {
        /// What the harness was doing.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Happens when a helper command (`prosodyctl register`, `openssl`)
    /// exits with an error.
    #[error("`{command}` failed ({status}):\n{output}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// Its stdout and stderr.
        output: String,
    },
    /// Happens when a server (Prosody, Kamailio, biboumi, the gateway
    /// binary) exits early, cannot open its ports, or does not listen in
    /// time. The reason starts with the server's name; the message carries
    /// the tail of its log.
    #[error("a server did not start: {reason}\n--- {log} (tail) ---\n{log_tail}")]
    ServerStart {
        /// What went wrong.
        reason: String,
        /// The log file.
        log: PathBuf,
        /// Its last lines (and the last lines of its stdout/stderr).
        log_tail: String,
    },
    /// Happens when InspIRCd exits early or does not listen in time. The
    /// message carries the tail of its log.
    #[error("inspircd did not start: {reason}\n--- {log} (tail) ---\n{log_tail}")]
    IrcServerStart {
        /// What went wrong.
        reason: String,
        /// The log file.
        log: PathBuf,
        /// Its last lines (and those of its console output).
        log_tail: String,
    },
    /// Happens when dnsmasq exits early or does not listen in time. The
    /// message carries its config and the tail of its log.
    #[error("dnsmasq did not start: {reason}\n--- {log} (tail) ---\n{log_tail}")]
    DnsServerStart {
        /// What went wrong, with its config.
        reason: String,
        /// The log file.
        log: PathBuf,
        /// Its last lines.
        log_tail: String,
    },
    /// Happens when an IRC test connection fails.
    #[error("irc: {0}")]
    Irc(String),
    /// Happens when the MSRP test participant cannot join, send or read.
    #[error("msrp: {0}")]
    Msrp(String),
    /// Happens when an XMPP connection fails or a stanza cannot be sent.
    #[error("xmpp: {0}")]
    Xmpp(String),
    /// Happens when the awaited stanza or event does not come in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long the harness waited.
        after: std::time::Duration,
    },
    /// Happens when the in-process gateway cannot be configured or started.
    #[error("gateway: {0:#}")]
    Gateway(anyhow::Error),
}

impl HarnessError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        HarnessError::Io {
            what: what.into(),
            source,
        }
    }
}
