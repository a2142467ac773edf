//! The values that cross the transaction layer's boundary: methods, message
//! summaries, timers, identifiers, outputs and errors.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;

/// The magic cookie that starts every branch made by an RFC 3261 client
/// (RFC 3261 §8.1.1.7, §17.2.3).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// A SIP request method (RFC 3261 §7.1, §27.4).
///
/// Methods are case-sensitive (RFC 3261 §7.1): `invite` is an extension
/// method, not INVITE.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// INVITE (RFC 3261).
    Invite,
    /// ACK (RFC 3261).
    Ack,
    /// BYE (RFC 3261).
    Bye,
    /// CANCEL (RFC 3261).
    Cancel,
    /// OPTIONS (RFC 3261).
    Options,
    /// REGISTER (RFC 3261).
    Register,
    /// MESSAGE (RFC 3428).
    Message,
    /// INFO (RFC 6086).
    Info,
    /// PRACK (RFC 3262).
    Prack,
    /// UPDATE (RFC 3311).
    Update,
    /// SUBSCRIBE (RFC 6665).
    Subscribe,
    /// NOTIFY (RFC 6665).
    Notify,
    /// REFER (RFC 3515).
    Refer,
    /// PUBLISH (RFC 3903).
    Publish,
    /// Any other method token, as it was written.
    Extension(String),
}

impl Method {
    /// The method's token, as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Message => "MESSAGE",
            Method::Info => "INFO",
            Method::Prack => "PRACK",
            Method::Update => "UPDATE",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Publish => "PUBLISH",
            Method::Extension(token) => token,
        }
    }
}

impl From<&str> for Method {
    fn from(token: &str) -> Self {
        match token {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "MESSAGE" => Method::Message,
            "INFO" => Method::Info,
            "PRACK" => Method::Prack,
            "UPDATE" => Method::Update,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "PUBLISH" => Method::Publish,
            other => Method::Extension(other.to_owned()),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the transaction layer needs to know about a received request.
///
/// The codec fills it from the parsed message; the layer never reads the
/// bytes themselves. Fields are compared as given, so the codec should hand
/// them over in a canonical form where RFC 3261 §19.1.4 / §20 compare
/// loosely (the layer itself lowercases `sent_by`, whose host and port
/// compare case-insensitively).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSummary {
    /// The request's method.
    pub method: Method,
    /// The Request-URI, as written.
    pub request_uri: String,
    /// The `branch` parameter of the top Via, if any.
    pub branch: Option<String>,
    /// The `sent-by` of the top Via (`host[:port]`).
    pub sent_by: String,
    /// The whole top Via header field value, for the RFC 2543 fallback of
    /// RFC 3261 §17.2.3.
    pub top_via: String,
    /// The Call-ID.
    pub call_id: String,
    /// The `tag` parameter of From, if any.
    pub from_tag: Option<String>,
    /// The `tag` parameter of To, if any.
    pub to_tag: Option<String>,
    /// The sequence number of CSeq (its method is `method`).
    pub cseq: u32,
}

/// What the transaction layer needs to know about a received response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseSummary {
    /// The status code, 100 to 699.
    pub status: u16,
    /// The `branch` parameter of the top Via, if any.
    pub branch: Option<String>,
    /// The method of CSeq.
    pub cseq_method: Method,
    /// The `tag` parameter of To, if any.
    pub to_tag: Option<String>,
}

/// A request that the TU asks the layer to send in a new client
/// transaction (RFC 3261 §17.1).
#[derive(Debug, Clone)]
pub struct OutgoingRequest<D> {
    /// The request's method; never ACK (RFC 3261 §17.1: there is no client
    /// transaction for ACK).
    pub method: Method,
    /// The branch of the top Via the request carries.
    pub branch: String,
    /// The serialized request, retransmitted unchanged.
    pub bytes: Bytes,
    /// Where the transport layer sends it.
    pub dest: D,
    /// Whether that transport is reliable (TCP, TLS, SCTP): it selects the
    /// timer values of RFC 3261 §17.
    pub reliable: bool,
}

/// A request received by the transport layer (RFC 3261 §18.2.1), after it
/// added `received` to the top Via where needed.
#[derive(Debug, Clone)]
pub struct IncomingRequest<D> {
    /// What the codec read from it.
    pub summary: RequestSummary,
    /// The request as received.
    pub bytes: Bytes,
    /// Where it came from: responses of a server transaction go back there
    /// (the transport layer applies RFC 3261 §18.2.2).
    pub source: D,
    /// Whether it came over a reliable transport.
    pub reliable: bool,
}

/// A response that the TU passes to a server transaction.
#[derive(Debug, Clone)]
pub struct OutgoingResponse {
    /// The status code, 100 to 699.
    pub status: u16,
    /// The `tag` of its To header field, which an RFC 2543 ACK must carry to
    /// match (RFC 3261 §17.2.3).
    pub to_tag: Option<String>,
    /// The serialized response, retransmitted unchanged.
    pub bytes: Bytes,
}

/// Identifies one transaction for as long as the layer lives; never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxId(pub(crate) u64);

impl fmt::Display for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tx{}", self.0)
    }
}

/// The timers of RFC 3261 §17 (table in Appendix A) and RFC 6026 §7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// INVITE request retransmission (§17.1.1.2).
    A,
    /// INVITE transaction timeout (§17.1.1.2).
    B,
    /// Wait for response retransmissions after a non-2xx final (§17.1.1.2).
    D,
    /// Non-INVITE request retransmission (§17.1.2.2).
    E,
    /// Non-INVITE transaction timeout (§17.1.2.2).
    F,
    /// INVITE final response retransmission (§17.2.1).
    G,
    /// Wait for ACK receipt (§17.2.1).
    H,
    /// Wait for ACK retransmissions (§17.2.1).
    I,
    /// Wait for non-INVITE request retransmissions (§17.2.2).
    J,
    /// Wait for non-INVITE response retransmissions (§17.1.2.2).
    K,
    /// INVITE server transaction lingers in Accepted (RFC 6026 §7.1).
    L,
    /// INVITE client transaction lingers in Accepted (RFC 6026 §7.2).
    M,
    /// The 200 ms after which the INVITE server transaction wants a
    /// 100 (Trying) if the TU has sent no provisional response (§17.2.1).
    Trying,
}

/// Timer values (RFC 3261 §17.1.1.1, §17.1.2.2, Appendix A).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// RTT estimate, 500 ms by default.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE
    /// responses, 4 s by default.
    pub t2: Duration,
    /// Maximum time a message stays in the network, 5 s by default.
    pub t4: Duration,
    /// Timer D on unreliable transports: "at least 32 seconds"
    /// (§17.1.1.2); a value below 32 s is raised to 32 s.
    pub timer_d: Duration,
    /// How long the INVITE server transaction waits for the TU's first
    /// provisional response before asking for a 100 (Trying), 200 ms by
    /// default (§17.2.1).
    pub trying_delay: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            timer_d: Duration::from_secs(32),
            trying_delay: Duration::from_millis(200),
        }
    }
}

impl Config {
    /// 64*T1: timers B, F, H, J, L and M.
    pub fn t1x64(&self) -> Duration {
        self.t1.saturating_mul(64)
    }

    /// Timer D for a transport (§17.1.1.2: at least 32 s unreliable, zero
    /// reliable).
    pub fn timer_d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.timer_d.max(Duration::from_secs(32))
        }
    }

    /// T4 on unreliable transports, zero on reliable ones (timers I and K).
    pub fn t4_or_zero(&self, reliable: bool) -> Duration {
        if reliable { Duration::ZERO } else { self.t4 }
    }
}

/// What the layer tells the transaction user (TU).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<D> {
    /// A new request created server transaction `tx`: answer it with
    /// [`TransactionLayer::respond`](super::TransactionLayer::respond).
    Request {
        /// The new server transaction.
        tx: TxId,
        /// What the codec read from the request.
        request: RequestSummary,
        /// The request as received.
        bytes: Bytes,
        /// Where it came from.
        source: D,
    },
    /// An ACK for the TU: one that matched no transaction (the ACK for a
    /// 2xx is its own transaction, RFC 3261 §17, §18.2.1), or one that
    /// matched an INVITE server transaction in Accepted (RFC 6026 §7.1).
    /// ACKs for non-2xx final responses are absorbed by the transaction.
    Ack {
        /// The INVITE server transaction it matched, in Accepted.
        tx: Option<TxId>,
        /// What the codec read from the ACK.
        request: RequestSummary,
        /// The ACK as received.
        bytes: Bytes,
        /// Where it came from.
        source: D,
    },
    /// A response for client transaction `tx`: a provisional one, or the
    /// first final one. Each client transaction reports exactly one final
    /// outcome: a final response here, [`Event::Timeout`] or
    /// [`Event::TransportError`].
    Response {
        /// The client transaction.
        tx: TxId,
        /// What the codec read from the response.
        response: ResponseSummary,
        /// The response as received.
        bytes: Bytes,
    },
    /// A further 2xx for an INVITE client transaction in Accepted: a
    /// retransmission of the first 2xx or the 2xx of another fork, which the
    /// UAC core acknowledges (RFC 6026 §7.2, RFC 3261 §13.2.2.4).
    AcceptedResponse {
        /// The client transaction.
        tx: TxId,
        /// What the codec read from the response.
        response: ResponseSummary,
        /// The response as received.
        bytes: Bytes,
    },
    /// A response that matched no client transaction (RFC 3261 §17.1.3,
    /// §18.1.2): the core decides (a UA discards it, a proxy forwards it).
    StrayResponse {
        /// What the codec read from the response.
        response: ResponseSummary,
        /// The response as received.
        bytes: Bytes,
    },
    /// Timer B or F fired before a final response (client), or timer H
    /// fired before the ACK (INVITE server).
    Timeout {
        /// The transaction.
        tx: TxId,
        /// Which timer fired.
        timer: Timer,
    },
    /// The transport layer failed to send a message of this transaction
    /// (RFC 3261 §17.1.4, §17.2.4).
    TransportError {
        /// The transaction.
        tx: TxId,
    },
    /// The transaction reached Terminated and is gone; reported once for
    /// every transaction.
    Terminated {
        /// The transaction.
        tx: TxId,
    },
}

/// A message for the transport layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit<D> {
    /// The transaction it belongs to.
    pub tx: TxId,
    /// Where to send it.
    pub dest: D,
    /// The exact bytes to send; a retransmission repeats the stored bytes.
    pub bytes: Bytes,
}

/// What the layer asks of its driver and of the TU, drained with
/// [`TransactionLayer::poll_output`](super::TransactionLayer::poll_output).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output<D> {
    /// Hand these bytes to the transport layer.
    Transmit(Transmit<D>),
    /// Tell the TU.
    Event(Event<D>),
    /// The INVITE client transaction received a non-2xx final response and
    /// needs the ACK of RFC 3261 §17.1.1.3 (Call-ID, From, Request-URI and
    /// Route of the original request, To of the response, the original top
    /// Via only, CSeq number with method ACK). Build it and hand it back
    /// with [`TransactionLayer::ack_built`](super::TransactionLayer::ack_built):
    /// the transaction sends it and re-sends it on every retransmission of
    /// the response.
    BuildAck {
        /// The INVITE client transaction.
        tx: TxId,
        /// What the codec read from the response.
        response: ResponseSummary,
        /// The response, whose To header field the ACK copies.
        response_bytes: Bytes,
    },
    /// The INVITE server transaction has had no provisional response from
    /// the TU within 200 ms: build a 100 (Trying) per RFC 3261 §8.2.6 (no
    /// To tag added, §17.2.1) and pass it to
    /// [`TransactionLayer::respond`](super::TransactionLayer::respond).
    SendTrying {
        /// The INVITE server transaction.
        tx: TxId,
        /// The INVITE, to build the 100 from.
        request: Bytes,
    },
}

/// Why the layer refused a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Happens when the TU asks for a client transaction for ACK: there is
    /// none (RFC 3261 §17.1), the TU sends ACK straight to the transport.
    #[error("ACK has no client transaction (RFC 3261 §17.1)")]
    AckHasNoTransaction,
    /// Happens when a client transaction with the same branch and method
    /// already exists: responses could not be matched (RFC 3261 §17.1.3).
    #[error("a client transaction with branch {branch:?} and method {method} exists")]
    DuplicateBranch {
        /// The branch.
        branch: String,
        /// The method.
        method: Method,
    },
    /// Happens when the branch does not start with the magic cookie
    /// `z9hG4bK`, which every branch we generate must (RFC 3261 §8.1.1.7).
    #[error("branch {0:?} does not start with z9hG4bK (RFC 3261 §8.1.1.7)")]
    BranchWithoutCookie(String),
    /// Happens when the transaction does not exist (never did, or has
    /// terminated), or is not of the kind the call needs.
    #[error("no such transaction: {0}")]
    UnknownTransaction(TxId),
    /// Happens when a status code is outside 100..=699.
    #[error("status code {0} is outside 100..=699")]
    InvalidStatus(u16),
    /// Happens when the INVITE server transaction is in Accepted and the TU
    /// passes anything but a 2xx (RFC 6026 §7.1).
    #[error("{tx} has sent a 2xx: only 2xx retransmissions may follow, not {status}")]
    NotAfter2xx {
        /// The transaction.
        tx: TxId,
        /// The refused status.
        status: u16,
    },
}
