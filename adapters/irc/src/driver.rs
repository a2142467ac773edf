//! The relay-mode connection: a tokio task that owns the socket, the
//! timers and the [`Session`], and the only reference to them.
//!
//! * A reader task turns the socket into parsed lines on a bounded
//!   channel: when the hub is slow, the channel fills and the socket is not
//!   read (backpressure), instead of buffering.
//! * Lines are written in order through a token bucket ([`TokenBucket`]);
//!   a line that does not fit waits, so the gateway is never killed for
//!   flooding. `PONG` goes at once.
//! * A message from another world is answered [`DeliveryOutcome::Delivered`]
//!   when the server echoes it (IRCv3 echo-message; matched by label with
//!   labeled-response, else in order per target), `Failed` on a numeric
//!   error for it, and `Accepted` when the server has no echo-message or
//!   the echo does not come in time. While not connected or not in the
//!   channel, deliveries fail as `Unreachable` and the hub keeps them
//!   queued and retries in order.
//! * On any disconnect: reconnect with exponential backoff and jitter,
//!   register again, rejoin the channels.
//! * Netsplits: a QUIT with a netsplit reason is held for
//!   `netsplit_hold_secs`; a JOIN of the same nick meanwhile cancels both,
//!   so the other worlds do not see a flood of leaves and joins.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use cpimgate_model::port::{
    AdapterContext, AdapterError, AdapterStatus, DeliveryOutcome, Failure, FailureKind, Inbound,
    Outbound, Reply,
};
use cpimgate_model::{Message, RoomEvent};
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::config::{IrcConfig, SaslConfig};
use crate::proto::flood::TokenBucket;
use crate::proto::message::{IrcMessage, MAX_LINE};
use crate::proto::session::{Event, Identity, Privmsg, Sasl, Session};
use crate::relay::Relay;
use crate::tls;

/// Lines read ahead of the driver.
const READ_AHEAD: usize = 256;
/// Hub answers awaited at once; beyond this the socket is not read.
const MAX_HUB_PENDING: usize = 1024;
/// How long an echo is awaited before the message counts as accepted.
const ECHO_WAIT: Duration = Duration::from_secs(30);
/// How long connecting and registering may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// The first reconnection delay.
const BACKOFF_MIN: Duration = Duration::from_millis(500);
/// Silence after which the server is pinged, and after which twice that
/// the connection is given up.
const IDLE_PING: Duration = Duration::from_secs(90);

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

enum Ended {
    Shutdown,
    Lost(String),
}

/// Run relay mode until shutdown.
pub async fn run(cfg: IrcConfig, ctx: AdapterContext) -> Result<(), AdapterError> {
    cfg.validate().map_err(AdapterError::Config)?;
    let tls = if cfg.tls {
        Some(tls::connector(&cfg).map_err(|e| AdapterError::Config(e.to_string()))?)
    } else {
        None
    };
    let relay = Relay::new(&ctx.name, &cfg);
    let mut d = Driver {
        relay,
        cfg,
        ctx,
        hub_answers: FuturesUnordered::new(),
        status: None,
    };
    d.set_status(AdapterStatus::Disconnected).await?;
    let mut attempt: u32 = 0;
    loop {
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, d.connect(tls.as_ref())).await;
        match conn {
            Ok(Ok(stream)) => match d.run_connection(stream, &mut attempt).await? {
                Ended::Shutdown => return Ok(()),
                Ended::Lost(why) => {
                    tracing::warn!(adapter = %d.ctx.name, "irc: connection lost: {why}");
                }
            },
            Ok(Err(e)) => {
                tracing::warn!(adapter = %d.ctx.name, server = %d.cfg.server, "irc: cannot connect: {e}");
            }
            Err(_) => {
                tracing::warn!(adapter = %d.ctx.name, server = %d.cfg.server, "irc: connecting timed out");
            }
        }
        d.set_status(AdapterStatus::Disconnected).await?;
        let delay = backoff(
            attempt,
            Duration::from_secs(d.cfg.reconnect_max_secs.max(1)),
        );
        attempt = attempt.saturating_add(1);
        tracing::info!(adapter = %d.ctx.name, "irc: reconnecting in {delay:?}");
        if d.wait_offline(delay).await? {
            return Ok(());
        }
    }
}

/// Uniform in `[min/2, min(max, min * 2^attempt)]`.
fn backoff(attempt: u32, max: Duration) -> Duration {
    let cap = BACKOFF_MIN
        .saturating_mul(1u32 << attempt.min(16))
        .min(max.max(BACKOFF_MIN));
    let low = BACKOFF_MIN / 2;
    low + cap.saturating_sub(low).mul_f64(rand::random::<f64>())
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

struct Driver {
    cfg: IrcConfig,
    ctx: AdapterContext,
    relay: Relay,
    hub_answers: FuturesUnordered<oneshot::Receiver<DeliveryOutcome>>,
    status: Option<AdapterStatus>,
}

impl Driver {
    async fn connect(
        &self,
        tls: Option<&tokio_rustls::TlsConnector>,
    ) -> std::io::Result<Box<dyn Stream>> {
        let tcp = TcpStream::connect(&self.cfg.server).await?;
        tcp.set_nodelay(true)?;
        match tls {
            Some(c) => {
                let host = self
                    .cfg
                    .server
                    .rsplit_once(':')
                    .map_or(self.cfg.server.as_str(), |(h, _)| h);
                let host = host.trim_start_matches('[').trim_end_matches(']');
                Ok(Box::new(tls::connect(c, host, tcp).await?))
            }
            None => Ok(Box::new(tcp)),
        }
    }

    async fn set_status(&mut self, s: AdapterStatus) -> Result<(), AdapterError> {
        if self.status == Some(s) {
            return Ok(());
        }
        self.status = Some(s);
        self.ctx
            .inbound
            .send(Inbound::Status(s))
            .await
            .map_err(|_| AdapterError::HubGone)
    }

    /// Wait `delay` while offline, failing deliveries as unreachable (the
    /// hub retries them later, in order). `true` on shutdown.
    async fn wait_offline(&mut self, delay: Duration) -> Result<bool, AdapterError> {
        let until = Instant::now() + delay;
        loop {
            tokio::select! {
                _ = self.ctx.shutdown.changed() => return Ok(true),
                _ = tokio::time::sleep_until(until) => return Ok(false),
                out = self.ctx.outbound.recv() => match out {
                    Some(Outbound::Deliver { reply, .. }) => {
                        let _ = reply.send(DeliveryOutcome::Failed(Failure::new(
                            FailureKind::Unreachable,
                            "not connected to the IRC server",
                        )));
                    }
                    Some(_) => {}
                    None => return Ok(true),
                },
                Some(_) = self.hub_answers.next(), if !self.hub_answers.is_empty() => {}
            }
        }
    }

    async fn run_connection(
        &mut self,
        stream: Box<dyn Stream>,
        attempt: &mut u32,
    ) -> Result<Ended, AdapterError> {
        let (read_half, mut writer) = tokio::io::split(stream);
        let (line_tx, mut lines) = mpsc::channel(READ_AHEAD);
        let reader = tokio::spawn(read_lines(read_half, line_tx));
        let mut c = Conn::new(&self.cfg);
        c.session.start();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        let ended = loop {
            c.drain_session();
            if let Err(e) = c.write_ready(&mut writer).await {
                break Ended::Lost(format!("write: {e}"));
            }
            if let Some(why) = self.take_events(&mut c).await? {
                break Ended::Lost(why);
            }
            if c.session.is_registered() {
                *attempt = 0;
                self.set_status(AdapterStatus::Connected).await?;
            } else if Instant::now() > deadline {
                break Ended::Lost("registration did not complete in time".into());
            }
            let flood_wake = c.next_write_at();
            tokio::select! {
                _ = self.ctx.shutdown.changed() => {
                    c.session.quit("gateway shutting down");
                    c.drain_session();
                    let _ = tokio::time::timeout(Duration::from_secs(2), c.write_all_now(&mut writer)).await;
                    c.fail_all("the gateway is shutting down", FailureKind::Unreachable);
                    break Ended::Shutdown;
                }
                line = lines.recv(), if self.hub_answers.len() < MAX_HUB_PENDING => match line {
                    Some(Ok(m)) => {
                        c.last_read = Instant::now();
                        c.ping_sent = false;
                        c.session.handle(m);
                    }
                    Some(Err(e)) => {
                        tracing::debug!(adapter = %self.ctx.name, "irc: unreadable line: {e}");
                    }
                    None => break Ended::Lost("the server closed the connection".into()),
                },
                out = self.ctx.outbound.recv() => match out {
                    Some(out) => self.on_outbound(&mut c, out),
                    None => break Ended::Shutdown,
                },
                Some(answer) = self.hub_answers.next(), if !self.hub_answers.is_empty() => {
                    if let Ok(DeliveryOutcome::Failed(f)) = answer {
                        tracing::warn!(adapter = %self.ctx.name, "irc: the hub refused a message: {f}");
                    }
                }
                _ = sleep_until_opt(flood_wake) => {}
                _ = tick.tick() => {
                    if let Some(why) = self.on_tick(&mut c).await? {
                        break Ended::Lost(why);
                    }
                }
            }
        };
        reader.abort();
        c.fail_all(
            "the connection to the IRC server was lost",
            FailureKind::Unreachable,
        );
        // Held netsplit leaves are shown now: the gateway no longer sees
        // the channel, so it cannot tell whether they came back.
        for ev in c.held.drain().flat_map(|(_, (_, evs))| evs) {
            self.event_to_hub(ev).await?;
        }
        Ok(ended)
    }

    /// Hand the session's events to the hub; `Some(reason)` when the
    /// connection must be given up.
    async fn take_events(&mut self, c: &mut Conn) -> Result<Option<String>, AdapterError> {
        while let Some(ev) = c.session.poll_event() {
            match &ev {
                Event::Registered { nick } => {
                    tracing::info!(adapter = %self.ctx.name, %nick, "irc: registered");
                    let channels: Vec<String> = self.relay.channels().map(str::to_owned).collect();
                    for ch in channels {
                        c.session.join(&ch);
                    }
                    continue;
                }
                Event::Fatal(why) => return Ok(Some(why.clone())),
                Event::Message(p) => {
                    if p.echo {
                        c.on_echo(p);
                    } else {
                        self.on_privmsg(c, p).await?;
                    }
                    continue;
                }
                Event::Failed {
                    label,
                    target,
                    code,
                    text,
                } => {
                    c.on_failed(label.as_deref(), target.as_deref(), code, text);
                    continue;
                }
                Event::Kick { channel, nick, .. }
                    if c.session.isupport().same(nick, c.session.nick()) =>
                {
                    tracing::warn!(adapter = %self.ctx.name, %channel, "irc: kicked; rejoining in 5 s");
                    c.rejoin
                        .push((Instant::now() + Duration::from_secs(5), channel.clone()));
                }
                _ => {}
            }
            let me = c.session.nick().to_owned();
            let events = self.relay.room_events(&ev, &me, c.session.isupport());
            match &ev {
                Event::Quit {
                    nick,
                    netsplit: true,
                    ..
                } => {
                    let key = fold(c, nick);
                    let until = Instant::now() + Duration::from_secs(self.cfg.netsplit_hold_secs);
                    c.held.insert(key, (until, events));
                }
                Event::Join { nick, .. } if c.held.remove(&fold(c, nick)).is_some() => {
                    // Back from the split: the leave was never shown, so
                    // the join is not either.
                }
                _ => {
                    for e in events {
                        self.event_to_hub(e).await?;
                    }
                }
            }
        }
        Ok(None)
    }

    async fn event_to_hub(&mut self, e: RoomEvent) -> Result<(), AdapterError> {
        self.ctx
            .inbound
            .send(Inbound::RoomEvent(Box::new(e)))
            .await
            .map_err(|_| AdapterError::HubGone)
    }

    async fn on_privmsg(&mut self, c: &mut Conn, p: &Privmsg) -> Result<(), AdapterError> {
        let isupport = c.session.isupport().clone();
        if !isupport.is_channel(&p.target) {
            if !p.notice && !p.history {
                // Relay mode has nobody to address a private message to.
                let text = "This is a gateway; private messages to it are not relayed. Talk in a bridged channel.";
                c.session.privmsg(&p.from, text, true, None);
            }
            return Ok(());
        }
        let Some(message) = self.relay.inbound(p, &isupport) else {
            return Ok(());
        };
        let (reply, answer) = oneshot::channel();
        self.ctx
            .inbound
            .send(Inbound::Message {
                message: Box::new(message),
                reply,
            })
            .await
            .map_err(|_| AdapterError::HubGone)?;
        self.hub_answers.push(answer);
        Ok(())
    }

    fn on_outbound(&mut self, c: &mut Conn, out: Outbound) {
        match out {
            Outbound::Deliver { message, reply } => self.deliver(c, &message, reply),
            Outbound::Report {
                message, outcome, ..
            } => {
                // Tell an IRC sender their message did not get through.
                if let DeliveryOutcome::Failed(f) = outcome
                    && let cpimgate_model::Address::Irc(a) = &message.from.address
                    && let Some(nick) = a.as_nick()
                    && c.session.is_registered()
                {
                    let text = format!("Your message could not be delivered: {f}");
                    c.session.privmsg(nick, &text, true, None);
                }
            }
            // Relay mode shows nothing of other worlds' joins and leaves.
            _ => {}
        }
    }

    fn deliver(&mut self, c: &mut Conn, message: &Message, reply: Reply) {
        if !c.session.is_registered() {
            let _ = reply.send(DeliveryOutcome::Failed(Failure::new(
                FailureKind::Unreachable,
                "not registered on the IRC server yet",
            )));
            return;
        }
        let me = c.session.nick().to_owned();
        let lines =
            match self
                .relay
                .outbound(message, &me, c.session.isupport(), c.user_len, c.host_len)
            {
                Ok(l) => l,
                Err(f) => {
                    let _ = reply.send(DeliveryOutcome::Failed(f));
                    return;
                }
            };
        let isupport = c.session.isupport().clone();
        if let Some(first) = lines.first()
            && isupport.is_channel(&first.target)
            && !c.session.in_channel(&first.target)
        {
            let _ = reply.send(DeliveryOutcome::Failed(Failure::new(
                FailureKind::Unreachable,
                format!("not in {} (yet)", first.target),
            )));
            return;
        }
        c.label_counter += 1;
        let label = format!("cg{}", c.label_counter);
        let n = lines.len();
        let mut reply = Some(reply);
        for (i, l) in lines.into_iter().enumerate() {
            let last = i + 1 == n;
            let mut m = IrcMessage::new("PRIVMSG", &[&l.target, &l.text]);
            if last && c.session.has_cap("labeled-response") && c.session.has_cap("echo-message") {
                m = m.with_tag("label", Some(&label));
            }
            c.queue.push_back(Queued {
                line: m,
                reply: if last { reply.take() } else { None },
            });
        }
    }

    async fn on_tick(&mut self, c: &mut Conn) -> Result<Option<String>, AdapterError> {
        let now = Instant::now();
        // Echoes that did not come: the server took the line.
        while c.awaiting.front().is_some_and(|a| a.deadline <= now) {
            if let Some(a) = c.awaiting.pop_front() {
                let _ = a.reply.send(DeliveryOutcome::Accepted);
            }
        }
        let due: Vec<String> = c
            .held
            .iter()
            .filter(|(_, (until, _))| *until <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            if let Some((_, events)) = c.held.remove(&k) {
                for e in events {
                    self.event_to_hub(e).await?;
                }
            }
        }
        let (ready, later): (Vec<_>, Vec<_>) = c.rejoin.drain(..).partition(|(t, _)| *t <= now);
        c.rejoin = later;
        for (_, ch) in ready {
            c.session.join(&ch);
        }
        let silent = now.saturating_duration_since(c.last_read);
        if silent > IDLE_PING * 2 {
            return Ok(Some(format!("no answer from the server for {silent:?}")));
        }
        if silent > IDLE_PING && !c.ping_sent {
            c.ping_sent = true;
            c.session.send(IrcMessage::new("PING", &["cpimgate"]));
        }
        Ok(None)
    }
}

fn fold(c: &Conn, nick: &str) -> String {
    cpimgate_mappings::casefold(c.session.isupport().casemapping, nick)
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// One connection's state around the session.
struct Conn {
    session: Session,
    bucket: TokenBucket,
    queue: VecDeque<Queued>,
    awaiting: VecDeque<Awaiting>,
    label_counter: u64,
    held: HashMap<String, (Instant, Vec<RoomEvent>)>,
    rejoin: Vec<(Instant, String)>,
    last_read: Instant,
    ping_sent: bool,
    /// The lengths of our `user` and `host` as others see them (for line
    /// budgets): the configured user with a `~` for an unverified ident,
    /// and the longest host the server allows until we know better.
    user_len: usize,
    host_len: usize,
}

impl Conn {
    fn new(cfg: &IrcConfig) -> Conn {
        let user = cfg.username.clone().unwrap_or_else(|| cfg.nick.clone());
        let sasl = cfg.sasl.as_ref().map(|s| match s {
            SaslConfig::Plain { user, password } => Sasl::Plain {
                user: user.clone(),
                password: password.clone(),
            },
            SaslConfig::External { .. } => Sasl::External,
        });
        let user_len = user.len() + 1;
        let now = Instant::now();
        Conn {
            session: Session::new(Identity {
                nick: cfg.nick.clone(),
                user,
                realname: cfg.realname.clone(),
                password: cfg.password.clone(),
                sasl,
            }),
            bucket: TokenBucket::new(cfg.flood_burst, cfg.flood_rate, now.into_std()),
            queue: VecDeque::new(),
            awaiting: VecDeque::new(),
            label_counter: 0,
            held: HashMap::new(),
            rejoin: Vec::new(),
            last_read: now,
            ping_sent: false,
            user_len,
            host_len: 64,
        }
    }

    /// Move what the session wants to send into the write queue; `PONG`
    /// first, since a late one gets the connection dropped.
    fn drain_session(&mut self) {
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

    fn on_echo(&mut self, p: &Privmsg) {
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

    fn on_failed(&mut self, label: Option<&str>, target: Option<&str>, code: &str, text: &str) {
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
        let kind = match code {
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
async fn read_lines<R: AsyncRead + Unpin>(
    r: R,
    tx: mpsc::Sender<Result<IrcMessage, crate::proto::ParseError>>,
) {
    let mut r = BufReader::with_capacity(16 * 1024, r);
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
                if !buf.is_empty() && tx.send(IrcMessage::parse(&buf)).await.is_err() {
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
        tokio::spawn(read_lines(b, tx));
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

    #[test]
    fn backoff_grows_and_stays_bounded() {
        for attempt in 0..40 {
            let d = backoff(attempt, Duration::from_secs(60));
            assert!(d >= BACKOFF_MIN / 2);
            assert!(d <= Duration::from_secs(60));
        }
    }
}
