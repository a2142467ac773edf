//! A plain IRC client playing a human user: raw lines over TCP, parsed
//! here with a few lines of its own (not the adapter's codec, so a codec
//! bug cannot hide itself).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::HarnessError;

/// How long an awaited line may take.
pub const WAIT: Duration = Duration::from_secs(15);

/// One received line, split: `source` is the nick of `:nick!user@host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The whole line as received.
    pub raw: String,
    /// The tags part without `@`, if any.
    pub tags: Option<String>,
    /// The source's nick, if any.
    pub source: Option<String>,
    /// The command.
    pub command: String,
    /// The parameters, the trailing one without `:`.
    pub params: Vec<String>,
}

impl Line {
    fn parse(raw: &str) -> Line {
        let mut rest = raw;
        let mut tags = None;
        if let Some(r) = rest.strip_prefix('@') {
            let (t, r) = r.split_once(' ').unwrap_or((r, ""));
            tags = Some(t.to_owned());
            rest = r;
        }
        let mut source = None;
        if let Some(r) = rest.strip_prefix(':') {
            let (s, r) = r.split_once(' ').unwrap_or((r, ""));
            source = Some(s.split('!').next().unwrap_or(s).to_owned());
            rest = r;
        }
        let (command, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
        let mut params = Vec::new();
        while !rest.is_empty() {
            if let Some(t) = rest.strip_prefix(':') {
                params.push(t.to_owned());
                break;
            }
            let (p, r) = rest.split_once(' ').unwrap_or((rest, ""));
            params.push(p.to_owned());
            rest = r;
        }
        Line {
            raw: raw.to_owned(),
            tags,
            source,
            command: command.to_owned(),
            params,
        }
    }

    /// Parameter `i` or "".
    pub fn param(&self, i: usize) -> &str {
        self.params.get(i).map_or("", String::as_str)
    }
}

/// A connected, registered IRC user.
#[derive(Debug)]
pub struct IrcUser {
    nick: String,
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    /// Lines read while waiting for something else.
    backlog: VecDeque<Line>,
}

impl IrcUser {
    /// Connect to `addr` and register as `nick` (no IRCv3).
    pub async fn connect(addr: SocketAddr, nick: &str) -> Result<IrcUser, HarnessError> {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| HarnessError::Irc(format!("connecting to {addr}: {e}")))?;
        tcp.set_nodelay(true)
            .map_err(|e| HarnessError::Irc(e.to_string()))?;
        let (r, w) = tcp.into_split();
        let mut u = IrcUser {
            nick: nick.to_owned(),
            reader: BufReader::new(r),
            writer: w,
            backlog: VecDeque::new(),
        };
        u.send(&format!("NICK {nick}")).await?;
        u.send(&format!("USER {nick} 0 * :test user {nick}"))
            .await?;
        u.expect("the welcome (001)", |l| l.command == "001")
            .await?;
        Ok(u)
    }

    /// This user's nick.
    pub fn nick(&self) -> &str {
        &self.nick
    }

    /// Send one raw line (CR LF added).
    pub async fn send(&mut self, line: &str) -> Result<(), HarnessError> {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .map_err(|e| HarnessError::Irc(format!("sending {line:?}: {e}")))
    }

    /// Join `channel` and wait for the end of its NAMES list; returns the
    /// nicks listed (prefixes removed).
    pub async fn join(&mut self, channel: &str) -> Result<Vec<String>, HarnessError> {
        self.send(&format!("JOIN {channel}")).await?;
        self.read_names(channel).await
    }

    /// Ask for the members of `channel` again (NAMES); the nicks listed.
    pub async fn names(&mut self, channel: &str) -> Result<Vec<String>, HarnessError> {
        self.send(&format!("NAMES {channel}")).await?;
        self.read_names(channel).await
    }

    /// Join `channel` (unless `joined`) and ask NAMES until `nick` is
    /// listed, for up to [`WAIT`].
    pub async fn wait_for_member(
        &mut self,
        channel: &str,
        nick: &str,
        joined: bool,
    ) -> Result<(), HarnessError> {
        if !joined {
            self.join(channel).await?;
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if self.names(channel).await?.iter().any(|n| n == nick) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(HarnessError::Timeout {
                    what: format!("{nick} in {channel} (as {})", self.nick),
                    after: WAIT,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn read_names(&mut self, channel: &str) -> Result<Vec<String>, HarnessError> {
        let mut names = Vec::new();
        loop {
            let l = self
                .expect(&format!("NAMES of {channel}"), |l| {
                    l.command == "353" || l.command == "366"
                })
                .await?;
            if l.command == "366" {
                return Ok(names);
            }
            names.extend(
                l.param(3)
                    .split(' ')
                    .filter(|n| !n.is_empty())
                    .map(|n| n.trim_start_matches(['@', '+', '%', '~', '&']).to_owned()),
            );
        }
    }

    /// `PRIVMSG target :text`.
    pub async fn say(&mut self, target: &str, text: &str) -> Result<(), HarnessError> {
        self.send(&format!("PRIVMSG {target} :{text}")).await
    }

    /// The next line (from the backlog first), answering PINGs.
    pub async fn next_line(&mut self) -> Result<Line, HarnessError> {
        if let Some(l) = self.backlog.pop_front() {
            return Ok(l);
        }
        loop {
            // Bytes, not `read_line`: a line from another client need not
            // be UTF-8 (Latin-1 is common on IRC).
            let mut raw = Vec::new();
            let n = self
                .reader
                .read_until(b'\n', &mut raw)
                .await
                .map_err(|e| HarnessError::Irc(format!("reading: {e}")))?;
            if n == 0 {
                return Err(HarnessError::Irc("the server closed the connection".into()));
            }
            let raw = String::from_utf8_lossy(&raw);
            let l = Line::parse(raw.trim_end_matches(['\r', '\n']));
            if l.command == "PING" {
                let token = l.param(0).to_owned();
                self.send(&format!("PONG :{token}")).await?;
                continue;
            }
            return Ok(l);
        }
    }

    /// Wait up to [`WAIT`] for a line `pick` accepts; lines passed over stay
    /// in the backlog for later calls.
    pub async fn expect(
        &mut self,
        what: &str,
        pick: impl Fn(&Line) -> bool,
    ) -> Result<Line, HarnessError> {
        if let Some(i) = self.backlog.iter().position(&pick) {
            if let Some(l) = self.backlog.remove(i) {
                return Ok(l);
            }
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut skipped = Vec::new();
        let found = loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let mut raw = Vec::new();
            let read = tokio::time::timeout(left, self.reader.read_until(b'\n', &mut raw)).await;
            let n = match read {
                Err(_) => {
                    self.backlog.extend(skipped);
                    return Err(HarnessError::Timeout {
                        what: format!("{what} (as {})", self.nick),
                        after: WAIT,
                    });
                }
                Ok(Err(e)) => return Err(HarnessError::Irc(format!("reading: {e}"))),
                Ok(Ok(n)) => n,
            };
            if n == 0 {
                return Err(HarnessError::Irc(format!(
                    "the server closed the connection while {} waited for {what}",
                    self.nick
                )));
            }
            let raw = String::from_utf8_lossy(&raw);
            let l = Line::parse(raw.trim_end_matches(['\r', '\n']));
            if l.command == "PING" {
                let token = l.param(0).to_owned();
                self.send(&format!("PONG :{token}")).await?;
                continue;
            }
            if pick(&l) {
                break l;
            }
            skipped.push(l);
        };
        self.backlog.extend(skipped);
        Ok(found)
    }

    /// Wait for a PRIVMSG to `target` whose text `pick` accepts.
    pub async fn expect_privmsg(
        &mut self,
        target: &str,
        pick: impl Fn(&str) -> bool,
    ) -> Result<Line, HarnessError> {
        let target = target.to_owned();
        self.expect(&format!("a PRIVMSG to {target}"), |l| {
            l.command == "PRIVMSG" && l.param(0).eq_ignore_ascii_case(&target) && pick(l.param(1))
        })
        .await
    }

    /// Drop everything read so far.
    pub fn clear(&mut self) {
        self.backlog.clear();
    }
}
