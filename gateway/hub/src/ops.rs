//! Operations: logs, the admin HTTP listener, metrics.
//!
//! `/healthz` answers 200 while the process runs; `/readyz` answers 200
//! when every configured adapter is connected and 503 otherwise, with the
//! state of each adapter as JSON; `/metrics` is in Prometheus text format.
//!
//! The listener takes `admin.max_connections` at once (more are reset),
//! and each connection lives `admin.connection_timeout_ms` at most: a
//! client that sends a byte a second or does not read is cut off then,
//! with a log line. Accept errors (out of file descriptors) are logged
//! and accepting resumes after a pause.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use cpimgate_sip::transport::{ACCEPT_BACKOFF, Admission, Ticket, refuse};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Sleep;

use crate::config::LogFormat;
use crate::hub::Readiness;

/// Set up `tracing`: human-readable lines or JSON, filtered by `RUST_LOG`
/// or else by `level`.
pub fn init_logging(format: LogFormat, level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second call (tests) keeps the first subscriber.
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Install the Prometheus recorder once per process and return its handle.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_seconds".to_owned()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                        5.0, 10.0, 30.0, 60.0,
                    ],
                )
                .unwrap_or_else(|_| PrometheusBuilder::new());
            match builder.install_recorder() {
                Ok(h) => h,
                // Another recorder is installed (tests): render an empty one.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

#[derive(Clone)]
struct AdminState {
    readiness: Readiness,
    metrics: PrometheusHandle,
}

/// The admin routes.
pub fn admin_router(readiness: Readiness, metrics: PrometheusHandle) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(AdminState { readiness, metrics })
}

async fn readyz(State(s): State<AdminState>) -> impl IntoResponse {
    let snapshot = s.readiness.snapshot();
    let code = if s.readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({ "ready": code == StatusCode::OK, "adapters": snapshot });
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
}

async fn render_metrics(State(s): State<AdminState>) -> impl IntoResponse {
    s.metrics.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

/// How many admin connections may be open at once, and how long each.
#[derive(Debug, Clone, Copy)]
pub struct AdminLimits {
    /// `admin.max_connections`.
    pub max_connections: usize,
    /// `admin.connection_timeout_ms`.
    pub connection_timeout: Duration,
}

/// The admin listener: capped, and each connection with a deadline.
#[derive(Debug)]
struct AdminListener {
    inner: TcpListener,
    admission: Arc<Admission>,
    lifetime: Duration,
}

impl axum::serve::Listener for AdminListener {
    type Io = Bounded;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Bounded, SocketAddr) {
        loop {
            let (stream, peer) = match self.inner.accept().await {
                Ok(a) => a,
                Err(e) => {
                    if let Some(more) = self.admission.should_log() {
                        tracing::warn!(
                            error = %e, more, backoff = ?ACCEPT_BACKOFF,
                            "admin accept failed; accepting again after a pause"
                        );
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            match self.admission.admit(peer.ip()) {
                Ok(ticket) => {
                    let bounded = Bounded {
                        io: stream,
                        peer,
                        lifetime: self.lifetime,
                        deadline: Box::pin(tokio::time::sleep(self.lifetime)),
                        cut: false,
                        _ticket: ticket,
                    };
                    return (bounded, peer);
                }
                Err(why) => {
                    refuse(stream);
                    if let Some(more) = self.admission.should_log() {
                        tracing::warn!(%peer, more, "refusing admin connection: {why}");
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// An admin connection that fails its reads and writes once its lifetime
/// is over, so that the server drops it.
#[derive(Debug)]
struct Bounded {
    io: TcpStream,
    peer: SocketAddr,
    lifetime: Duration,
    deadline: Pin<Box<Sleep>>,
    /// The deadline has passed: every read and write fails.
    cut: bool,
    _ticket: Ticket,
}

impl Bounded {
    /// An error from the deadline on; the log line once.
    fn expired(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        if !self.cut {
            if self.deadline.as_mut().poll(cx).is_pending() {
                return None;
            }
            self.cut = true;
            tracing::warn!(
                peer = %self.peer, lifetime = ?self.lifetime,
                "cutting admin connection: open longer than admin.connection_timeout_ms"
            );
            let _ = self.io.set_zero_linger();
        }
        Some(io::Error::new(
            io::ErrorKind::TimedOut,
            "admin connection open too long",
        ))
    }
}

impl AsyncRead for Bounded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(e) = self.expired(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Bounded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.expired(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.expired(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Bind the admin listener; serve until `shutdown` turns true.
pub async fn serve_admin(
    addr: SocketAddr,
    limits: AdminLimits,
    readiness: Readiness,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let inner = TcpListener::bind(addr).await?;
    let local = inner.local_addr()?;
    let listener = AdminListener {
        inner,
        admission: Admission::new(limits.max_connections.max(1), 0),
        lifetime: limits.connection_timeout,
    };
    let app = admin_router(readiness, metrics_handle());
    let task = tokio::spawn(async move {
        let stop = async move {
            while !*shutdown.borrow() {
                if shutdown.changed().await.is_err() {
                    break;
                }
            }
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!("admin listener failed: {e}");
        }
    });
    Ok((local, task))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer).await;
        answer
    }

    /// Reads until the server ends the connection; true if it did within
    /// five seconds.
    async fn ended(s: &mut TcpStream) -> bool {
        let mut buf = [0u8; 1024];
        tokio::time::timeout(Duration::from_secs(5), async {
            while s.read(&mut buf).await.is_ok_and(|n| n > 0) {}
        })
        .await
        .is_ok()
    }

    #[tokio::test]
    async fn the_admin_listener_caps_connections_and_their_lifetime() {
        let (_stop, stop_rx) = watch::channel(false);
        let limits = AdminLimits {
            max_connections: 1,
            connection_timeout: Duration::from_millis(300),
        };
        let (addr, _task) = serve_admin(
            "127.0.0.1:0".parse().unwrap(),
            limits,
            Readiness::default(),
            stop_rx,
        )
        .await
        .unwrap();
        // A request a byte at a time holds the only place...
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET /hea").await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        // ...so another connection is refused,
        let mut other = TcpStream::connect(addr).await.unwrap();
        assert!(ended(&mut other).await, "refused past the cap");
        // until its lifetime is over.
        assert!(ended(&mut slow).await, "cut off after its lifetime");
        let answer = get(addr, "/healthz").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
}
