//! The tokio driver of component mode: owns the XEP-0114 connection, the
//! reconnect timer and the only reference to the [`Core`].
//!
//! tokio-xmpp's `Component` logs in once and ends its stream when the
//! connection drops; reconnecting is ours. A failed attempt or a lost
//! connection waits `base * 2^n` (capped) with full jitter before the next
//! try, so many gateways restarting together do not hammer the server in
//! step. The hub is told `Connected` / `Disconnected`, which pauses its
//! deliveries to this adapter while the link is down.
//!
//! Nothing here blocks the stream loop on the hub: messages handed to the
//! hub are answered later through a `FuturesUnordered` of reply channels;
//! history asked for by a join (XEP-0045 §7.2.15) is fetched the same way
//! and fed back with [`Core::handle_history`]; a 1:1 delivery that waits
//! for its XEP-0184 receipt keeps its reply channel here, by token, until
//! the core gives its [`Output::Answer`]. The core's receipt deadlines
//! are the one timer besides the reconnect.
//!
//! A write that does not complete within `write_timeout_ms` (a server that
//! stopped reading: hung, or stopped with SIGSTOP) cuts the connection:
//! without it the loop would wait in the write forever, reading nothing,
//! and the stream's own read timeouts would never fire. The cut is a
//! reset (SO_LINGER 0 on a copy of the socket kept by the connector):
//! closed gracefully, the kernel would go on sending what is queued once
//! the server reads again, and those stanzas, failed here and sent again
//! after the reconnect, would arrive twice. (What the server's kernel had
//! already received may still be read by it: those deliveries are sent
//! again too, at least once, as after any broken connection.)
//!
//! A delivery without a receipt to wait for is *accepted* only once the
//! server has shown that it processed it ([`Barrier`]): bytes written to
//! the socket are not yet the server's. When the stream breaks right
//! after a write (a restarting Prosody closes it), the server may or may
//! not have taken them; such deliveries fail transiently and the hub
//! sends them again: at least once, with the same stanza id, rather than
//! lost (`tests/tests/fault_restart.rs` lost one about one run in six
//! while they were accepted on write).

use std::collections::HashMap;
use std::future::Future;
use std::os::fd::{AsFd as _, OwnedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use cpimgate_mappings::{MappingStore, NickScope};
use cpimgate_model::port::{
    AdapterContext, AdapterError, AdapterStatus, DeliveryOutcome, Failure, FailureKind, History,
    Inbound, Outbound, Reply,
};
use cpimgate_model::time::Timestamp;
use cpimgate_model::{Message, MessageId};
use futures::stream::FuturesUnordered;
use futures::{SinkExt, StreamExt};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_xmpp::Component;
use tokio_xmpp::connect::DnsConfig;
use tokio_xmpp::xmlstream::Timeouts;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::ping::Ping;

use super::core::{Core, Delivery, Output};
use crate::config::ComponentConfig;

type Conn = Component<NoDelayConnector>;

/// A copy of the socket of the connection made last, so that it can be
/// reset (tokio-xmpp keeps the stream to itself).
type SocketCopy = Arc<std::sync::Mutex<Option<OwnedFd>>>;

/// Plain TCP to the server's component port, as tokio-xmpp's
/// `TcpServerConnector`, with Nagle off: a stanza goes out at once instead
/// of waiting for the previous one's ACK (the client-mode benchmark showed
/// Nagle in the added p99 latency). It keeps a copy of the socket in
/// `.1`.
#[derive(Debug, Clone)]
struct NoDelayConnector(DnsConfig, SocketCopy);

/// Forget the socket copy of a connection that is gone; with `reset`, the
/// connection's close becomes a reset (RST) rather than a FIN after what
/// is queued. The connection itself must be dropped too.
fn drop_socket_copy(copy: &SocketCopy, reset: bool) {
    let fd = copy.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(fd) = fd
        && reset
    {
        let _ = socket2::SockRef::from(&fd).set_linger(Some(Duration::ZERO));
    }
}

/// `write`, given at most `limit` (none when zero); the error says why.
async fn within<E: std::fmt::Display>(
    limit: Duration,
    write: impl Future<Output = Result<(), E>>,
) -> Result<(), WriteError> {
    let result = if limit.is_zero() {
        Ok(write.await)
    } else {
        tokio::time::timeout(limit, write).await
    };
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(WriteError::Failed(e.to_string())),
        Err(_) => Err(WriteError::Stuck(limit)),
    }
}

/// Why a write to the server failed.
#[derive(Debug)]
enum WriteError {
    /// The stream failed.
    Failed(String),
    /// No progress within the write timeout: the server does not read.
    Stuck(Duration),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::Failed(e) => f.write_str(e),
            WriteError::Stuck(d) => write!(
                f,
                "the server does not read: a write did not complete within {} ms",
                d.as_millis()
            ),
        }
    }
}

impl tokio_xmpp::connect::ServerConnector for NoDelayConnector {
    type Stream = tokio::io::BufStream<tokio::net::TcpStream>;

    async fn connect(
        &self,
        jid: &tokio_xmpp::jid::Jid,
        ns: &'static str,
        timeouts: Timeouts,
    ) -> Result<
        (
            tokio_xmpp::xmlstream::PendingFeaturesRecv<Self::Stream>,
            sasl::common::ChannelBinding,
        ),
        tokio_xmpp::Error,
    > {
        let tcp = self.0.resolve().await?;
        tcp.set_nodelay(true)?;
        let copy = tcp.as_fd().try_clone_to_owned()?;
        *self.1.lock().unwrap_or_else(|p| p.into_inner()) = Some(copy);
        let header = tokio_xmpp::xmlstream::StreamHeader {
            to: Some(std::borrow::Cow::Borrowed(jid.domain().as_str())),
            from: None,
            id: None,
        };
        let pending = tokio_xmpp::xmlstream::initiate_stream(
            tokio::io::BufStream::new(tcp),
            ns,
            header,
            timeouts,
        )
        .await?;
        Ok((pending, sasl::common::ChannelBinding::None))
    }
}
type Connecting = Pin<Box<dyn Future<Output = Result<Conn, tokio_xmpp::Error>> + Send>>;
type Answer = Pin<Box<dyn Future<Output = (MessageId, DeliveryOutcome)> + Send>>;
type Fetch = Pin<Box<dyn Future<Output = (u64, Result<Vec<Message>, Failure>)> + Send>>;

/// At most this many turns of the loop leave their stanzas in the
/// stream's buffer while the hub keeps handing over deliveries.
const WRITE_EVERY: usize = 32;

/// How long a join waits for its history before it goes on without.
const HISTORY_TIMEOUT: Duration = Duration::from_secs(5);

/// What the loop waits on besides the connection and the hub.
#[derive(Default)]
struct Waiting {
    /// The hub's answers to messages handed in.
    answers: FuturesUnordered<Answer>,
    /// History fetches for joins.
    fetches: FuturesUnordered<Fetch>,
    /// Reply channels of deliveries waiting for a receipt, by token.
    replies: HashMap<u64, Reply>,
}

/// How long a [`Barrier`] may go unanswered before the deliveries before
/// it are taken as accepted anyway (a server that drops the IQ).
const BARRIER_TIMEOUT: Duration = Duration::from_secs(5);
/// The id prefix of a barrier IQ.
const BARRIER_PREFIX: &str = "cpimgate-barrier-";

/// Proof that the server processed what was written before: an IQ from
/// the component to its own domain, which the server routes back to us
/// after everything sent before it on the stream (RFC 6120 §10.1: stanzas
/// of one stream are processed in order). Its return, or an error or
/// result with its id, accepts the deliveries written before it; a lost
/// connection fails them transiently, to be sent again after the
/// reconnect (at least once: the server may have routed some).
#[derive(Default)]
struct Barrier {
    /// Deliveries written since the barrier in flight was sent.
    written: Vec<Reply>,
    /// The barrier in flight: its id, the deliveries before it, its
    /// deadline.
    in_flight: Option<(String, Vec<Reply>, Instant)>,
    sent: u64,
}

impl Barrier {
    /// Whether `iq` is the barrier in flight coming back (or its answer).
    fn is_ours(&self, iq: &Iq) -> bool {
        let id = match iq {
            Iq::Get { id, .. }
            | Iq::Set { id, .. }
            | Iq::Result { id, .. }
            | Iq::Error { id, .. } => id,
        };
        self.in_flight
            .as_ref()
            .is_some_and(|(ours, _, _)| ours == id)
    }

    /// Accept the deliveries before the barrier in flight.
    fn pass(&mut self) {
        if let Some((_, replies, _)) = self.in_flight.take() {
            for r in replies {
                let _ = r.send(DeliveryOutcome::Accepted);
            }
        }
    }

    /// Fail everything waiting: the connection is gone.
    fn fail(&mut self) {
        let replies = self
            .in_flight
            .take()
            .map(|(_, r, _)| r)
            .unwrap_or_default()
            .into_iter()
            .chain(std::mem::take(&mut self.written))
            .collect::<Vec<_>>();
        if !replies.is_empty() {
            tracing::warn!(
                unconfirmed = replies.len(),
                "deliveries written but not yet confirmed by the server: sent again after the reconnect"
            );
        }
        for r in replies {
            let _ = r.send(DeliveryOutcome::Failed(Failure::new(
                FailureKind::Unreachable,
                "the XMPP connection broke before the server confirmed the message",
            )));
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.in_flight.as_ref().map(|(_, _, d)| *d)
    }

    /// Send a barrier for what was written, unless one is in flight.
    /// An error when sending failed (the connection is lost).
    async fn send(
        &mut self,
        conn: &mut Option<Conn>,
        domain: &str,
        limit: Duration,
    ) -> Result<(), WriteError> {
        if self.in_flight.is_some() || self.written.is_empty() {
            return Ok(());
        }
        let Some(c) = conn.as_mut() else {
            return Err(WriteError::Failed("not connected".into()));
        };
        self.sent += 1;
        let id = format!("{BARRIER_PREFIX}{}", self.sent);
        let Ok(me) = Jid::new(domain) else {
            // The domain was checked at start; accept rather than hang.
            for r in self.written.drain(..) {
                let _ = r.send(DeliveryOutcome::Accepted);
            }
            return Ok(());
        };
        let iq = Iq::from_get(id.clone(), Ping)
            .with_to(me.clone())
            .with_from(me);
        let sent = within(limit, c.send(tokio_xmpp::Stanza::Iq(iq))).await;
        self.in_flight = Some((
            id,
            std::mem::take(&mut self.written),
            Instant::now() + BARRIER_TIMEOUT,
        ));
        sent
    }
}

/// First wait after a failure.
const BACKOFF_BASE: Duration = Duration::from_millis(250);
/// Longest wait between attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long the goodbye may take at shutdown.
const GOODBYE: Duration = Duration::from_secs(3);

/// Exponential backoff with full jitter.
#[derive(Debug, Default)]
struct Backoff {
    attempt: u32,
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let cap = BACKOFF_BASE
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(BACKOFF_MAX);
        self.attempt = self.attempt.saturating_add(1);
        // Never less than the base, so a flapping server is not spun on.
        BACKOFF_BASE + cap.mul_f64(rand::random::<f64>())
    }

    fn reset(&mut self) {
        self.attempt = 0;
    }
}

fn split_server(server: &str) -> Result<(String, u16), AdapterError> {
    let (host, port) = server
        .rsplit_once(':')
        .ok_or_else(|| AdapterError::Config(format!("server {server:?}: expected host:port")))?;
    let port = port
        .parse()
        .map_err(|_| AdapterError::Config(format!("server {server:?}: bad port")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((host.to_owned(), port))
}

fn connect(domain: &str, secret: &str, host: &str, port: u16, copy: &SocketCopy) -> Connecting {
    let (domain, secret, host) = (domain.to_owned(), secret.to_owned(), host.to_owned());
    let copy = copy.clone();
    Box::pin(async move {
        Component::new_with_connector(
            &domain,
            &secret,
            NoDelayConnector(DnsConfig::no_srv(&host, port), copy),
            Timeouts::tight(),
        )
        .await
    })
}

async fn next_stanza(conn: &mut Option<Conn>) -> Option<tokio_xmpp::Stanza> {
    match conn {
        Some(c) => c.next().await,
        None => std::future::pending().await,
    }
}

async fn connecting(c: &mut Option<Connecting>) -> Result<Conn, tokio_xmpp::Error> {
    match c {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Run component mode until shutdown.
pub async fn run(
    config: ComponentConfig,
    mappings: MappingStore,
    mut ctx: AdapterContext,
) -> Result<(), AdapterError> {
    let (host, port) = split_server(&config.server)?;
    let receipt_wait = config.receipt_wait().map_err(AdapterError::Config)?;
    let mut core = Core::new(&config.domain, &ctx.name, config.max_body, mappings.clone())
        .map_err(AdapterError::Config)?
        .with_history_on_join(config.history_on_join)
        .with_receipt_wait(receipt_wait);
    let history = ctx.history.clone();
    let write_limit = Duration::from_millis(config.write_timeout_ms);
    let copy = SocketCopy::default();
    let mut conn: Option<Conn> = None;
    let mut pending_connect: Option<Connecting> =
        Some(connect(&config.domain, &config.secret, &host, port, &copy));
    let mut retry_at: Option<Instant> = None;
    let mut backoff = Backoff::default();
    let mut w = Waiting::default();
    let mut barrier = Barrier::default();
    let mut turns_unwritten = 0usize;
    // The core's outputs drained through the connection (see `flush`).
    macro_rules! flush_outputs {
        () => {
            flush(
                &mut core,
                &mut conn,
                &ctx,
                &mappings,
                &history,
                &mut w,
                write_limit,
            )
            .await
        };
    }

    loop {
        let mut lost = false;
        let mut why: Option<WriteError> = None;
        tokio::select! {
            _ = ctx.shutdown.changed() => {
                core.handle_shutdown();
                // The goodbye: unavailable presences, then the stream's end.
                let _ = tokio::time::timeout(GOODBYE, async {
                    let _ = flush_outputs!();
                    if let Some(c) = conn.as_mut() {
                        let _ = c.send_end().await;
                    }
                })
                .await;
                return Ok(());
            }
            r = connecting(&mut pending_connect) => {
                pending_connect = None;
                match r {
                    Ok(c) => {
                        tracing::info!(adapter = %ctx.name, domain = %config.domain, "component connected");
                        backoff.reset();
                        conn = Some(c);
                        status(&ctx, AdapterStatus::Connected).await?;
                    }
                    Err(e) => {
                        let wait = backoff.next();
                        tracing::warn!(adapter = %ctx.name, server = %config.server, "component connection failed: {e}; retrying in {wait:?}");
                        retry_at = Some(Instant::now() + wait);
                    }
                }
            }
            _ = sleep_until(retry_at) => {
                retry_at = None;
                pending_connect = Some(connect(&config.domain, &config.secret, &host, port, &copy));
            }
            s = next_stanza(&mut conn) => match s {
                Some(tokio_xmpp::Stanza::Iq(iq)) if barrier.is_ours(&iq) => {
                    barrier.pass();
                    lost = failed(barrier.send(&mut conn, &config.domain, write_limit).await, &mut why);
                }
                Some(stanza) => core.handle_stanza(stanza, Timestamp::now()),
                None => lost = true,
            },
            _ = sleep_until(barrier.deadline()) => {
                tracing::warn!(adapter = %ctx.name, "the server did not return a barrier in {BARRIER_TIMEOUT:?}; taking what was sent before it as accepted");
                barrier.pass();
                lost = failed(barrier.send(&mut conn, &config.domain, write_limit).await, &mut why);
            }
            out = ctx.outbound.recv() => match out {
                Some(Outbound::Deliver { message, reply }) => {
                    let broke = || DeliveryOutcome::Failed(Failure::new(FailureKind::Unreachable, "the XMPP connection broke"));
                    if conn.is_none() {
                        let _ = reply.send(DeliveryOutcome::Failed(Failure::new(FailureKind::Unreachable, "the XMPP server is not connected")));
                    } else {
                        match core.handle_deliver(&message, Instant::now().into_std()) {
                            Ok(Delivery::Sent) => {
                                lost = failed(flush_outputs!(), &mut why);
                                if lost {
                                    let _ = reply.send(broke());
                                } else {
                                    // Accepted once the server shows it
                                    // processed it; only a receipt would
                                    // say more.
                                    barrier.written.push(reply);
                                    lost = failed(barrier.send(&mut conn, &config.domain, write_limit).await, &mut why);
                                }
                            }
                            Ok(Delivery::AwaitingReceipt(token)) => {
                                w.replies.insert(token, reply);
                                lost = failed(flush_outputs!(), &mut why);
                                if lost && let Some(reply) = w.replies.remove(&token) {
                                    let _ = reply.send(broke());
                                }
                            }
                            Err(f) => {
                                let _ = reply.send(DeliveryOutcome::Failed(f));
                            }
                        }
                    }
                }
                Some(Outbound::RoomEvent(e)) => core.handle_room_event(&e),
                Some(Outbound::Report { message, outcome, .. }) => core.handle_report(&message, &outcome),
                Some(_) => {}
                None => return Err(AdapterError::HubGone),
            },
            Some((id, outcome)) = w.answers.next(), if !w.answers.is_empty() => {
                core.handle_hub_answer(&id, outcome);
            }
            Some((token, result)) = w.fetches.next(), if !w.fetches.is_empty() => {
                core.handle_history(token, result, Timestamp::now());
            }
            _ = sleep_until(core.poll_timeout().map(Instant::from_std)) => {
                core.handle_timeout(Instant::now().into_std());
            }
        }
        if !lost {
            lost = failed(flush_outputs!(), &mut why);
        }
        // The stanzas of this turn sit in the stream's buffer (see
        // `flush`); they go to the socket when the hub has nothing more
        // for us right now, so that a burst leaves in a few large writes
        // that the server reads and routes together, rather than one
        // write (and one read and one turn of its event loop) per stanza.
        // A steady stream of deliveries still writes every
        // `WRITE_EVERY` turns (and whenever the buffer fills).
        turns_unwritten += 1;
        if !lost && (ctx.outbound.is_empty() || turns_unwritten >= WRITE_EVERY) {
            turns_unwritten = 0;
            if let Some(c) = conn.as_mut() {
                lost = failed(
                    within(write_limit, SinkExt::<tokio_xmpp::Stanza>::flush(c)).await,
                    &mut why,
                );
            }
        }
        if lost {
            let stuck = matches!(why, Some(WriteError::Stuck(_)));
            match &why {
                Some(e @ WriteError::Stuck(_)) => {
                    tracing::warn!(adapter = %ctx.name, server = %config.server, "cutting the component connection (reset): {e}");
                }
                Some(e) => {
                    tracing::warn!(adapter = %ctx.name, "component connection lost: writing failed: {e}")
                }
                None => tracing::warn!(adapter = %ctx.name, "component connection lost"),
            }
            drop_socket_copy(&copy, stuck);
            conn = None;
            barrier.fail();
            core.handle_disconnect();
            let _ = flush_outputs!();
            status(&ctx, AdapterStatus::Disconnected).await?;
            retry_at = Some(Instant::now() + backoff.next());
        }
    }
}

async fn status(ctx: &AdapterContext, s: AdapterStatus) -> Result<(), AdapterError> {
    ctx.inbound
        .send(Inbound::Status(s))
        .await
        .map_err(|_| AdapterError::HubGone)
}

/// Drain the core's outputs. An error when sending on the connection
/// failed (the connection is then lost; what follows is not sent).
async fn flush<D: super::core::Directory>(
    core: &mut Core<D>,
    conn: &mut Option<Conn>,
    ctx: &AdapterContext,
    mappings: &MappingStore,
    history: &Arc<dyn History>,
    w: &mut Waiting,
    write_limit: Duration,
) -> Result<(), WriteError> {
    let mut ok = Ok(());
    while let Some(o) = core.poll_output() {
        match o {
            // Into the stream's buffer; the loop writes it out.
            Output::Transmit(s) => match conn.as_mut() {
                Some(c) if ok.is_ok() => {
                    ok = within(write_limit, c.feed(*s)).await;
                }
                _ => tracing::debug!(adapter = %ctx.name, "not connected; stanza dropped"),
            },
            Output::ToHub(message) => {
                let id = message.id.clone();
                let (tx, rx) = oneshot::channel();
                if ctx
                    .inbound
                    .send(Inbound::Message { message, reply: tx })
                    .await
                    .is_err()
                {
                    tracing::warn!(adapter = %ctx.name, "the hub is gone");
                    continue;
                }
                w.answers.push(Box::pin(async move {
                    let outcome = rx.await.unwrap_or_else(|_| {
                        DeliveryOutcome::Failed(Failure::new(
                            FailureKind::Internal,
                            "the hub dropped the message",
                        ))
                    });
                    (id, outcome)
                }));
            }
            Output::FetchHistory { token, room, query } => {
                let fetch = history.recent(&room, query);
                w.fetches.push(Box::pin(async move {
                    let result = tokio::time::timeout(HISTORY_TIMEOUT, fetch)
                        .await
                        .unwrap_or_else(|_| {
                            Err(Failure::new(
                                FailureKind::Timeout,
                                "the history did not come in time",
                            ))
                        });
                    (token, result)
                }));
            }
            Output::Answer { token, outcome } => {
                if let Some(reply) = w.replies.remove(&token) {
                    let _ = reply.send(outcome);
                }
            }
            Output::Event(e) => {
                let _ = ctx.inbound.send(Inbound::RoomEvent(e)).await;
            }
            Output::Reserve {
                bridge,
                nick,
                owner,
            } => {
                if let Err(e) = mappings
                    .reserve_nick(&NickScope::Bridge(bridge), &nick, &owner)
                    .await
                {
                    tracing::warn!(adapter = %ctx.name, %nick, %owner, "nickname reservation failed: {e}");
                }
            }
            Output::Release {
                bridge,
                nick,
                owner,
            } => {
                if let Err(e) = mappings
                    .release_nick(&NickScope::Bridge(bridge), &nick, &owner)
                    .await
                {
                    tracing::warn!(adapter = %ctx.name, %nick, "releasing a nickname failed: {e}");
                }
            }
        }
    }
    ok
}

/// Whether `r` failed; its error kept in `why` (the first one).
fn failed(r: Result<(), WriteError>, why: &mut Option<WriteError>) -> bool {
    match r {
        Ok(()) => false,
        Err(e) => {
            why.get_or_insert(e);
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let mut b = Backoff::default();
        for _ in 0..40 {
            let d = b.next();
            assert!(d >= BACKOFF_BASE && d <= BACKOFF_BASE + BACKOFF_MAX);
        }
        b.reset();
        assert!(b.next() <= BACKOFF_BASE * 2);
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn a_barrier_accepts_what_was_written_before_it_and_a_lost_stream_fails_the_rest() {
        let mut b = Barrier::default();
        let (before, mut before_rx) = oneshot::channel();
        let (after, mut after_rx) = oneshot::channel();
        let me: Jid = "gw.example.org".parse().unwrap();
        let barrier = |id: &str| {
            Iq::from_get(id.to_owned(), Ping)
                .with_to(me.clone())
                .with_from(me.clone())
        };
        // As `send` leaves it: one delivery behind the barrier in flight,
        // another written after it.
        b.in_flight = Some((
            format!("{BARRIER_PREFIX}1"),
            vec![before],
            Instant::now() + BARRIER_TIMEOUT,
        ));
        b.written.push(after);
        assert!(b.deadline().is_some());
        assert!(
            !b.is_ours(&barrier("other")),
            "another IQ is not the barrier"
        );
        // The barrier routed back to us (or the server's answer to it).
        assert!(b.is_ours(&barrier(&format!("{BARRIER_PREFIX}1"))));
        b.pass();
        assert_eq!(before_rx.try_recv(), Ok(DeliveryOutcome::Accepted));
        assert!(after_rx.try_recv().is_err(), "not yet: after the barrier");
        assert!(b.deadline().is_none());
        // The stream breaks before the next barrier: a transient failure,
        // so the hub sends it again.
        b.fail();
        match after_rx.try_recv() {
            Ok(DeliveryOutcome::Failed(f)) => assert!(f.is_transient(), "{f}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn server_is_host_and_port() {
        assert!(matches!(split_server("127.0.0.1:5347"), Ok((h, 5347)) if h == "127.0.0.1"));
        assert!(matches!(split_server("[::1]:5347"), Ok((h, 5347)) if h == "::1"));
        assert!(split_server("localhost").is_err());
        assert!(split_server("localhost:x").is_err());
    }
}
