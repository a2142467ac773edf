//! One connection's I/O and state, for the gateway's connection and the
//! puppets alike: [`Link`] owns the socket (a reader task feeding parsed
//! lines through a bounded channel, the write half, a one-second tick);
//! [`Conn`] is the [`Session`] with the write queue, flood control, and
//! the deliveries waiting for their echo.

use std::collections::VecDeque;
use std::time::Duration;

use cpimgate_model::port::{DeliveryOutcome, Failure, FailureKind, Reply};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, WriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{CONNECT_TIMEOUT, QUIT_WAIT, Stream, sleep_until_opt};
use crate::config::IrcConfig;
use crate::proto::flood::TokenBucket;
use crate::proto::message::{IrcMessage, MAX_LINE};
use crate::proto::session::{Event, Identity, Privmsg, Session};
use crate::relay::Line;

/// How much one connection reads ahead of its driver.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Buffers {
    /// Parsed lines queued for the driver.
    pub(crate) lines: usize,
    /// The socket read buffer, bytes.
    pub(crate) read: usize,
}

impl Buffers {
    /// The gateway's own connection: all of the channels' traffic.
    pub(crate) const MAIN: Buffers = Buffers {
        lines: 256,
        read: 16 * 1024,
    };
    /// A puppet's: it reads the channels only for itself, and there may be
    /// hundreds (the queue's blocks stay allocated at their high-water
    /// mark, so this bounds what each keeps after a burst).
    pub(crate) const PUPPET: Buffers = Buffers {
        lines: 32,
        read: 4 * 1024,
    };
}
/// How long an echo is awaited before the message counts as accepted.
const ECHO_WAIT: Duration = Duration::from_secs(30);
/// Silence after which the server is pinged, and after which twice that
/// the connection is given up.
const IDLE_PING: Duration = Duration::from_secs(90);
/// How long a message for a channel being joined waits for the join.
const JOIN_WAIT: Duration = Duration::from_secs(20);

/// A message for a channel the connection is not in yet (registering,
/// rejoining after a reconnect or a kick). Held here, in order, rather
/// than failed: a failure would be retried by the hub later, while the
/// messages after it, already handed over, would go out as soon as the
/// join is done, and the channel would see them out of order.
struct Held {
    lines: Vec<Line>,
    reply: Reply,
    until: Instant,
}

/// A message waiting for its echo.
struct Awaiting {
    target: String,
    text: String,
    label: Option<String>,
    reply: Reply,
    deadline: Instant,
}

/// A line waiting for its turn to be written; the last line of a message
/// carries the message's reply.
struct Queued {
    line: IrcMessage,
    reply: Option<Reply>,
}

/// A line as the reader task hands it on. Boxed: the channel's slots
/// are allocated 32 at a time whether used or not, and a puppet keeps
/// them (a slot of an unboxed message is ~150 bytes).
type ReadLine = Result<Box<IrcMessage>, crate::proto::ParseError>;

/// What woke a [`Link`].
pub(crate) enum Input {
    /// A line was read (and handed to the session), or a write is due.
    Read,
    /// The one-second tick (after echo and ping upkeep).
    Tick,
    /// The connection is lost.
    Lost(String),
}

/// One connection's I/O: the socket's reader task and writer, the tick,
/// and the [`Conn`] they feed.
pub(crate) struct Link {
    pub(crate) conn: Conn,
    writer: WriteHalf<Box<dyn Stream>>,
    lines: mpsc::Receiver<ReadLine>,
    reader: JoinHandle<()>,
    tick: tokio::time::Interval,
    deadline: Instant,
}

impl Link {
    /// Start reading `stream` and registering.
    pub(crate) fn open(stream: Box<dyn Stream>, mut conn: Conn, buffers: Buffers) -> Link {
        let (read_half, writer) = tokio::io::split(stream);
        let (line_tx, lines) = mpsc::channel(buffers.lines);
        let reader = tokio::spawn(read_lines(read_half, line_tx, buffers.read));
        conn.session.start();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Link {
            conn,
            writer,
            lines,
            reader,
            tick,
            deadline: Instant::now() + CONNECT_TIMEOUT,
        }
    }

    /// Write what the session and flood control let go now. A write that
    /// does not complete within the write timeout fails: the
    /// server does not read, and the connection is given up.
    pub(crate) async fn flush(&mut self) -> std::io::Result<()> {
        self.conn.drain_session();
        let limit = self.conn.write_timeout;
        let write = self.conn.write_ready(&mut self.writer);
        if limit.is_zero() {
            return write.await;
        }
        tokio::time::timeout(limit, write)
            .await
            .unwrap_or_else(|_| {
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "the server does not read: a write did not complete within {} ms",
                        limit.as_millis()
                    ),
                ))
            })
    }

    /// Whether registration takes too long.
    pub(crate) fn overdue(&self) -> bool {
        !self.conn.session.is_registered() && Instant::now() > self.deadline
    }

    /// Wait for a line (unless `read` is false: backpressure), a write's
    /// turn, or the tick. Cancel-safe.
    pub(crate) async fn next(&mut self, read: bool) -> Input {
        self.conn.drain_session();
        let wake = self.conn.next_write_at();
        tokio::select! {
            line = self.lines.recv(), if read => match line {
                Some(Ok(m)) => {
                    self.conn.last_read = Instant::now();
                    self.conn.ping_sent = false;
                    self.conn.session.handle(*m);
                    Input::Read
                }
                Some(Err(e)) => {
                    tracing::debug!("irc: unreadable line: {e}");
                    Input::Read
                }
                None => Input::Lost("the server closed the connection".into()),
            },
            _ = sleep_until_opt(wake) => Input::Read,
            _ = self.tick.tick() => match self.conn.on_tick() {
                Some(why) => Input::Lost(why),
                None => Input::Tick,
            },
        }
    }

    /// QUIT, written at once (at most [`QUIT_WAIT`]).
    pub(crate) async fn quit(&mut self, reason: &str) {
        self.conn.session.quit(reason);
        self.conn.drain_session();
        let _ = tokio::time::timeout(QUIT_WAIT, self.conn.write_all_now(&mut self.writer)).await;
        self.conn
            .fail_all("the gateway is shutting down", FailureKind::Unreachable);
    }

    /// Stop reading; fail what still waits, as unreachable (retried).
    pub(crate) fn close(mut self, why: &str) {
        self.reader.abort();
        self.conn.fail_all(why, FailureKind::Unreachable);
    }
}

/// One connection's state around the session.
pub(crate) struct Conn {
    pub(crate) session: Session,
    bucket: TokenBucket,
    queue: VecDeque<Queued>,
    awaiting: VecDeque<Awaiting>,
    held: VecDeque<Held>,
    label_counter: u64,
    last_read: Instant,
    ping_sent: bool,
    /// The lengths of our `user` and `host` as others see them (for line
    /// budgets): the configured user with a `~` for an unverified ident,
    /// and the longest host the server allows until we know better.
    pub(crate) user_len: usize,
    pub(crate) host_len: usize,
    /// How long one write may take (`write_timeout_ms`).
    write_timeout: Duration,
}

impl Conn {
    /// A connection that registers as `me`, paced as `cfg` says.
    pub(crate) fn new(cfg: &IrcConfig, me: Identity) -> Conn {
        let user_len = me.user.len() + 1;
        let now = Instant::now();
        Conn {
            session: Session::new(me),
            bucket: TokenBucket::new(cfg.flood_burst, cfg.flood_rate, now.into_std()),
            queue: VecDeque::new(),
            awaiting: VecDeque::new(),
            held: VecDeque::new(),
            label_counter: 0,
            last_read: now,
            ping_sent: false,
            user_len,
            host_len: 64,
            write_timeout: Duration::from_millis(cfg.write_timeout_ms),
        }
    }

    /// Queue the lines of one message; its reply goes with the last line
    /// (labeled when the server echoes with labels).
    pub(crate) fn queue_message(&mut self, lines: Vec<Line>, reply: Reply) {
        if let Some(first) = lines.first()
            && self.session.isupport().is_channel(&first.target)
            && (!self.session.in_channel(&first.target) || self.holds(&first.target))
        {
            self.held.push_back(Held {
                lines,
                reply,
                until: Instant::now() + JOIN_WAIT,
            });
            return;
        }
        self.post(lines, reply);
    }

    /// Whether a message for `channel` is held (later ones wait behind it).
    fn holds(&self, channel: &str) -> bool {
        let isupport = self.session.isupport();
        self.held.iter().any(|h| {
            h.lines
                .first()
                .is_some_and(|l| isupport.same(&l.target, channel))
        })
    }

    /// Post held messages whose channel has been joined, in order; fail
    /// those that waited too long (unreachable: the hub retries them). A
    /// message stays behind an earlier one for the same channel.
    fn release_held(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut blocked: Vec<String> = Vec::new();
        let mut keep = VecDeque::new();
        for h in std::mem::take(&mut self.held) {
            let Some(target) = h.lines.first().map(|l| l.target.clone()) else {
                continue;
            };
            let isupport = self.session.isupport();
            let behind = blocked.iter().any(|b| isupport.same(b, &target));
            if !behind && self.session.in_channel(&target) {
                self.post(h.lines, h.reply);
            } else if h.until <= now {
                let _ = h.reply.send(DeliveryOutcome::Failed(Failure::new(
                    FailureKind::Unreachable,
                    format!("not in {target}: the join did not complete"),
                )));
            } else {
                blocked.push(target);
                keep.push_back(h);
            }
        }
        self.held = keep;
    }

    fn post(&mut self, lines: Vec<Line>, reply: Reply) {
        self.label_counter += 1;
        let label = format!("cg{}", self.label_counter);
        let labeled =
            self.session.has_cap("labeled-response") && self.session.has_cap("echo-message");
        let n = lines.len();
        let mut reply = Some(reply);
        for (i, l) in lines.into_iter().enumerate() {
            let last = i + 1 == n;
            let mut m = IrcMessage::new("PRIVMSG", &[&l.target, &l.text]);
            if last && labeled {
                m = m.with_tag("label", Some(&label));
            }
            self.queue.push_back(Queued {
                line: m,
                reply: if last { reply.take() } else { None },
            });
        }
    }

    /// Once a second: echoes that did not come count as accepted (the
    /// server took the line); a silent server is pinged, then given up
    /// (`Some(reason)`).
    fn on_tick(&mut self) -> Option<String> {
        let now = Instant::now();
        while self.awaiting.front().is_some_and(|a| a.deadline <= now) {
            if let Some(a) = self.awaiting.pop_front() {
                let _ = a.reply.send(DeliveryOutcome::Accepted);
            }
        }
        let silent = now.saturating_duration_since(self.last_read);
        if silent > IDLE_PING * 2 {
            return Some(format!("no answer from the server for {silent:?}"));
        }
        if silent > IDLE_PING && !self.ping_sent {
            self.ping_sent = true;
            self.session.send(IrcMessage::new("PING", &["cpimgate"]));
        }
        None
    }

    /// Move what the session wants to send into the write queue; `PONG`
    /// first, since a late one gets the connection dropped.
    fn drain_session(&mut self) {
        self.release_held();
        while let Some(m) = self.session.poll_transmit() {
            let q = Queued {
                line: m,
                reply: None,
            };
            if q.line.command == "PONG" {
                self.queue.push_front(q);
            } else {
                self.queue.push_back(q);
            }
        }
    }

    /// When flood control lets the next line go, if one waits.
    fn next_write_at(&mut self) -> Option<Instant> {
        self.queue.front()?;
        let wait = self.bucket.wait(Instant::now().into_std());
        Some(Instant::now() + wait)
    }

    /// Write every line flood control allows now.
    async fn write_ready<W: AsyncWrite + Unpin>(&mut self, w: &mut W) -> std::io::Result<()> {
        let mut wrote = false;
        while let Some(front) = self.queue.front() {
            let paced = !matches!(
                front.line.command.as_str(),
                "PONG" | "CAP" | "AUTHENTICATE" | "NICK" | "USER" | "PASS" | "QUIT"
            );
            let now = Instant::now().into_std();
            if paced && !self.bucket.wait(now).is_zero() {
                break;
            }
            let Some(q) = self.queue.pop_front() else {
                break;
            };
            if paced {
                self.bucket.take(now);
            }
            self.write_one(w, q).await?;
            wrote = true;
        }
        if wrote {
            w.flush().await?;
        }
        Ok(())
    }

    /// Write everything queued, ignoring flood control (for QUIT).
    async fn write_all_now<W: AsyncWrite + Unpin>(&mut self, w: &mut W) -> std::io::Result<()> {
        while let Some(q) = self.queue.pop_front() {
            self.write_one(w, q).await?;
        }
        w.flush().await
    }

    async fn write_one<W: AsyncWrite + Unpin>(
        &mut self,
        w: &mut W,
        q: Queued,
    ) -> std::io::Result<()> {
        let line = match q.line.to_line() {
            Ok(l) => l,
            Err(e) => {
                // The relay never builds such a line; refuse rather than send.
                if let Some(r) = q.reply {
                    let _ = r.send(DeliveryOutcome::Failed(Failure::new(
                        FailureKind::Rejected,
                        e.to_string(),
                    )));
                }
                return Ok(());
            }
        };
        let mut bytes = line.into_bytes();
        bytes.extend_from_slice(b"\r\n");
        w.write_all(&bytes).await?;
        if let Some(reply) = q.reply {
            if self.session.has_cap("echo-message") {
                self.awaiting.push_back(Awaiting {
                    target: q.line.param(0).unwrap_or("").to_owned(),
                    text: q.line.param(1).unwrap_or("").to_owned(),
                    label: q.line.tag("label").map(str::to_owned),
                    reply,
                    deadline: Instant::now() + ECHO_WAIT,
                });
            } else {
                let _ = reply.send(DeliveryOutcome::Accepted);
            }
        }
        Ok(())
    }

    pub(crate) fn on_echo(&mut self, p: &Privmsg) {
        let isupport = self.session.isupport();
        let idx = match &p.label {
            Some(l) => self
                .awaiting
                .iter()
                .position(|a| a.label.as_deref() == Some(l)),
            None => self.awaiting.iter().position(|a| {
                a.label.is_none() && isupport.same(&a.target, &p.target) && a.text == p.text
            }),
        };
        if let Some(a) = idx.and_then(|i| self.awaiting.remove(i)) {
            let _ = a.reply.send(DeliveryOutcome::Delivered);
        }
    }

    /// A numeric error or FAIL ([`Event::Failed`]) about a message of
    /// ours fails its delivery; other events are ignored.
    pub(crate) fn on_failed(&mut self, ev: &Event) {
        let Event::Failed {
            label,
            target,
            code,
            text,
        } = ev
        else {
            return;
        };
        let (label, target) = (label.as_deref(), target.as_deref());
        let isupport = self.session.isupport();
        let idx = match (label, target) {
            (Some(l), _) => self
                .awaiting
                .iter()
                .position(|a| a.label.as_deref() == Some(l)),
            (None, Some(t)) => self
                .awaiting
                .iter()
                .position(|a| isupport.same(&a.target, t)),
            (None, None) => None,
        };
        let kind = match code.as_str() {
            // ERR_NOSUCHNICK, ERR_NOSUCHCHANNEL
            "401" | "403" => FailureKind::NotFound,
            // ERR_CANNOTSENDTOCHAN: moderated, banned, +n
            "404" => FailureKind::Forbidden,
            // ERR_NOTONCHANNEL: kicked meanwhile; retried after the rejoin
            "442" => FailureKind::Unreachable,
            _ => FailureKind::Rejected,
        };
        if let Some(a) = idx.and_then(|i| self.awaiting.remove(i)) {
            let _ = a.reply.send(DeliveryOutcome::Failed(Failure::new(
                kind,
                format!("{code} {text}"),
            )));
        }
    }

    fn fail_all(&mut self, why: &str, kind: FailureKind) {
        for h in self.held.drain(..) {
            let _ = h
                .reply
                .send(DeliveryOutcome::Failed(Failure::new(kind, why)));
        }
        for a in self.awaiting.drain(..) {
            let _ = a
                .reply
                .send(DeliveryOutcome::Failed(Failure::new(kind, why)));
        }
        for q in self.queue.drain(..) {
            if let Some(r) = q.reply {
                let _ = r.send(DeliveryOutcome::Failed(Failure::new(kind, why)));
            }
        }
    }
}

/// Read lines (up to [`MAX_LINE`] bytes; longer ones are skipped whole)
/// and hand them on parsed, until the socket ends or the driver goes.
async fn read_lines<R: AsyncRead + Unpin>(r: R, tx: mpsc::Sender<ReadLine>, capacity: usize) {
    let mut r = BufReader::with_capacity(capacity, r);
    let mut buf = Vec::with_capacity(1024);
    let mut skipping = false;
    loop {
        let (done, used) = {
            let avail = match r.fill_buf().await {
                Ok([]) | Err(_) => return,
                Ok(a) => a,
            };
            match avail.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    if !skipping {
                        buf.extend_from_slice(&avail[..i]);
                    }
                    (true, i + 1)
                }
                None => {
                    if !skipping {
                        buf.extend_from_slice(avail);
                    }
                    (false, avail.len())
                }
            }
        };
        r.consume(used);
        if buf.len() > MAX_LINE + 1 {
            buf.clear();
            skipping = true;
        }
        if done {
            if !skipping {
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
                if !buf.is_empty()
                    && tx
                        .send(IrcMessage::parse(&buf).map(Box::new))
                        .await
                        .is_err()
                {
                    return;
                }
            } else if tx
                .send(Err(crate::proto::ParseError::TooLong(MAX_LINE + 1)))
                .await
                .is_err()
            {
                return;
            }
            buf.clear();
            skipping = false;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn reader_frames_lines_and_skips_overlong_ones() {
        let (mut a, b) = tokio::io::duplex(64 * 1024);
        let (tx, mut rx) = mpsc::channel(8);
        tokio::spawn(read_lines(b, tx, 1024));
        let long = vec![b'x'; MAX_LINE + 10];
        a.write_all(b"PING :a\r\n").await.unwrap();
        a.write_all(&long).await.unwrap();
        a.write_all(b"\r\nPRIVMSG #c :caf\xe9\n\r\n").await.unwrap();
        drop(a);
        let first = rx.recv().await.unwrap().unwrap();
        assert_eq!(first.command, "PING");
        assert!(matches!(
            rx.recv().await,
            Some(Err(crate::proto::ParseError::TooLong(_)))
        ));
        let third = rx.recv().await.unwrap().unwrap();
        assert_eq!(third.params[1], "café");
        assert!(rx.recv().await.is_none());
    }
}
