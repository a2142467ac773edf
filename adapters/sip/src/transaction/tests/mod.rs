//! Tests of the transaction layer with fake time: every timer of every
//! state machine, retransmission handling, matching. This file holds the
//! helpers; one file per concern.

mod client;
mod matching;
mod server;
mod simulation;

use std::time::{Duration, Instant};

use bytes::Bytes;

pub(super) use super::*;

pub(super) type Layer = TransactionLayer<&'static str>;
pub(super) type Out = Output<&'static str>;

pub(super) const PEER: &str = "peer";

pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(super) struct Clock {
    base: Instant,
}

impl Clock {
    pub(super) fn new() -> Self {
        Clock {
            base: Instant::now(),
        }
    }
    pub(super) fn at(&self, n: u64) -> Instant {
        self.base + ms(n)
    }
    pub(super) fn ms_of(&self, t: Instant) -> u64 {
        u64::try_from(t.duration_since(self.base).as_millis()).expect("test times are small")
    }
}

pub(super) fn drain(layer: &mut Layer) -> Vec<Out> {
    std::iter::from_fn(|| layer.poll_output()).collect()
}

/// Fires every timer up to `end`, deadline by deadline, and records each
/// output with the millisecond it came out at.
pub(super) fn run_until(layer: &mut Layer, clock: &Clock, end: u64) -> Vec<(u64, Out)> {
    let mut seen = Vec::new();
    while let Some(deadline) = layer.poll_timeout() {
        if deadline > clock.at(end) {
            break;
        }
        layer.handle_timeout(deadline);
        let when = clock.ms_of(deadline);
        seen.extend(drain(layer).into_iter().map(|o| (when, o)));
    }
    seen
}

pub(super) fn transmit_times(outputs: &[(u64, Out)]) -> Vec<u64> {
    outputs
        .iter()
        .filter_map(|(t, o)| matches!(o, Output::Transmit(_)).then_some(*t))
        .collect()
}

pub(super) fn events(outputs: &[Out]) -> Vec<&Event<&'static str>> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e),
            _ => None,
        })
        .collect()
}

pub(super) fn transmitted(outputs: &[Out]) -> Vec<Bytes> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Transmit(t) => Some(t.bytes.clone()),
            _ => None,
        })
        .collect()
}

pub(super) fn request(method: Method, branch: &str) -> RequestSummary {
    RequestSummary {
        method,
        request_uri: "sip:bob@biloxi.example.com".into(),
        branch: Some(branch.into()),
        sent_by: "pc33.atlanta.example.com".into(),
        top_via: format!("SIP/2.0/UDP pc33.atlanta.example.com;branch={branch}"),
        call_id: "a84b4c76e66710".into(),
        from_tag: Some("1928301774".into()),
        to_tag: None,
        cseq: 314159,
    }
}

pub(super) fn response(status: u16, branch: &str, method: Method) -> ResponseSummary {
    ResponseSummary {
        status,
        branch: Some(branch.into()),
        cseq_method: method,
        to_tag: Some("a6c85cf".into()),
    }
}

pub(super) fn outgoing(
    method: Method,
    branch: &str,
    reliable: bool,
) -> OutgoingRequest<&'static str> {
    OutgoingRequest {
        bytes: Bytes::from(format!("{method} sip:bob@biloxi.example.com SIP/2.0\r\n")),
        method,
        branch: branch.into(),
        dest: PEER,
        reliable,
    }
}

pub(super) fn incoming(summary: RequestSummary, reliable: bool) -> IncomingRequest<&'static str> {
    IncomingRequest {
        bytes: Bytes::from(format!(
            "{} {} SIP/2.0\r\n",
            summary.method, summary.request_uri
        )),
        summary,
        source: PEER,
        reliable,
    }
}

pub(super) fn reply(status: u16) -> OutgoingResponse {
    OutgoingResponse {
        status,
        to_tag: Some("srv-tag".into()),
        bytes: Bytes::from(format!("SIP/2.0 {status} Reason\r\n")),
    }
}

pub(super) fn is_terminated(outputs: &[(u64, Out)], tx: TxId) -> Option<u64> {
    outputs.iter().find_map(|(t, o)| {
        matches!(o, Output::Event(Event::Terminated { tx: id }) if *id == tx).then_some(*t)
    })
}

pub(super) fn start_server(
    layer: &mut Layer,
    clock: &Clock,
    summary: RequestSummary,
    reliable: bool,
) -> TxId {
    layer.handle_request(clock.at(0), incoming(summary, reliable));
    let out = drain(layer);
    match events(&out)[..] {
        [Event::Request { tx, .. }] => *tx,
        ref other => panic!("expected one new request, got {other:?}"),
    }
}
