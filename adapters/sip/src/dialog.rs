//! Dialogs (RFC 3261 §12), sans-IO: the state two user agents share
//! after an INVITE and its 2xx, and the requests made from it.
//!
//! A UAS makes its [`Dialog`] from the INVITE it answers
//! ([`Dialog::uas`], §12.1.1: the route set is the request's
//! Record-Route in order, the remote target its Contact); a UAC from the
//! request it sent and the 2xx it got ([`Dialog::uac`], §12.1.2: the
//! route set is the response's Record-Route in reverse). Afterwards
//! [`Dialog::request`] writes requests within the dialog (BYE, re-INVITE,
//! NOTIFY) with the next local CSeq and the Request-URI and Route of
//! §12.2.1.1 (loose routing, or a strict router first in the route set),
//! and [`Dialog::handle_request`] checks a request the peer sent within
//! it (§12.2.2: CSeq order, target refresh). [`Unacked2xx`] times the
//! retransmissions of a UAS's 2xx until the ACK (§13.3.1.4).
//!
//! ```
//! use cpimgate_sip::codec::parse;
//! use cpimgate_sip::dialog::{Dialog, Via};
//!
//! // RFC 3261 §24.2 F5, as Bob's UA receives it (its SDP left out).
//! let invite = parse(b"INVITE sip:bob@192.0.2.4 SIP/2.0\r\n\
//! Via: SIP/2.0/UDP server10.biloxi.com;branch=z9hG4bK4b43c2ff8.1\r\n\
//! Max-Forwards: 68\r\nTo: Bob <sip:bob@biloxi.com>\r\n\
//! From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\nCall-ID: a84b4c76e66710\r\n\
//! CSeq: 314159 INVITE\r\nContact: <sip:alice@pc33.atlanta.com>\r\nContent-Length: 0\r\n\r\n").unwrap();
//! let mut d = Dialog::uas(&invite, "a6c85cf", "sip:bob@192.0.2.4", 231).unwrap();
//! // F13: Bob hangs up.
//! let via = Via { transport: "UDP", sent_by: "192.0.2.4", branch: "z9hG4bKnashds10" };
//! let bye = d.request("BYE", &via).unwrap().to_bytes();
//! let bye = parse(&bye).unwrap();
//! assert_eq!(bye.request_uri(), Some("sip:alice@pc33.atlanta.com"));
//! assert_eq!(bye.get("CSeq"), Some("231 BYE"));
//! assert_eq!(bye.get("From"), Some("Bob <sip:bob@biloxi.com>;tag=a6c85cf"));
//! assert_eq!(bye.get("To"), Some("Alice <sip:alice@atlanta.com>;tag=1928301774"));
//! ```

use std::time::{Duration, Instant};

use crate::codec::{self, BuildError, Contact, HeaderName, NameAddrRef, OwnedMessage};

/// Why a dialog could not be made or a request does not fit it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DialogError {
    /// Happens when the message lacks a header a dialog needs (Call-ID,
    /// From, To, CSeq, a From tag; a Contact with one URI, §12.1).
    #[error("no usable {0}")]
    Missing(&'static str),
    /// Happens when a header a dialog reads does not parse.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// Happens when a request's Call-ID or tags are not the dialog's.
    #[error("not a request of this dialog")]
    NotThisDialog,
    /// Happens when a request's CSeq is not above the last one of the
    /// peer (§12.2.2: answered 500).
    #[error("CSeq {got} is not above {last}")]
    OutOfOrder {
        /// The request's CSeq number.
        got: u32,
        /// The last one seen.
        last: u32,
    },
}

/// Where a dialog stands (§12: early after a provisional response with
/// a tag, confirmed after a 2xx).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// Made by a 1xx; not used by a UAS that answers at once.
    Early,
    /// Made or confirmed by a 2xx.
    Confirmed,
    /// Ended by a BYE.
    Terminated,
}

/// The top Via of a request within the dialog.
#[derive(Debug, Clone, Copy)]
pub struct Via<'a> {
    /// `UDP`, `TCP` or `TLS`.
    pub transport: &'a str,
    /// `host[:port]`.
    pub sent_by: &'a str,
    /// The branch, starting with the magic cookie.
    pub branch: &'a str,
}

/// A dialog; see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    call_id: String,
    local_tag: String,
    remote_tag: String,
    /// The local URI as a header value without tag (display name kept).
    local: String,
    /// The remote URI likewise.
    remote: String,
    local_seq: u32,
    remote_seq: Option<u32>,
    remote_target: String,
    local_target: String,
    route_set: Vec<String>,
    secure: bool,
    state: DialogState,
}

/// The header value without its `tag` parameter (the rest kept as
/// written).
fn without_tag(value: &str) -> String {
    let Ok(a) = NameAddrRef::parse(value) else {
        return value.to_owned();
    };
    if a.tag().is_none() {
        return value.trim().to_owned();
    }
    // The tag is a header parameter: cut the `;tag=...` piece out.
    let mut out = String::with_capacity(value.len());
    for (i, piece) in split_params(value).into_iter().enumerate() {
        let p = piece.trim();
        if i > 0 && p.len() >= 4 && p[..4].eq_ignore_ascii_case("tag=") {
            continue;
        }
        if i > 0 {
            out.push(';');
        }
        out.push_str(if i == 0 { piece.trim_end() } else { p });
    }
    out.trim().to_owned()
}

/// Splits a name-addr value at the `;` that are outside `<...>` and
/// quotes.
fn split_params(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut in_angle, mut in_quote, mut escaped) = (0, false, false, false);
    for (i, c) in value.char_indices() {
        if in_quote {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_quote = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_quote = true,
            '<' => in_angle = true,
            '>' => in_angle = false,
            ';' if !in_angle => {
                out.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&value[start..]);
    out
}

/// What both sides read of the request that makes a dialog (§12.1.1,
/// §12.1.2): its Call-ID, From (value and tag), CSeq number, and whether
/// its Request-URI is a SIPS URI (the dialog's "secure" flag).
struct RequestParts<'a> {
    call_id: &'a str,
    from: &'a str,
    from_tag: &'a str,
    seq: u32,
    secure: bool,
}

impl<'a> RequestParts<'a> {
    fn of(request: &'a codec::Message<'_>) -> Result<RequestParts<'a>, DialogError> {
        let call_id = request
            .call_id()
            .ok()
            .flatten()
            .ok_or(DialogError::Missing("Call-ID"))?;
        let from = request
            .header(HeaderName::From)
            .ok_or(DialogError::Missing("From"))?
            .value();
        let from_tag = request
            .from()
            .map_err(|_| DialogError::Malformed("From"))?
            .and_then(|f| f.tag())
            .ok_or(DialogError::Missing("From tag"))?;
        let seq = request
            .cseq()
            .ok()
            .flatten()
            .ok_or(DialogError::Missing("CSeq"))?
            .seq;
        let uri = request.request_uri().unwrap_or_default();
        Ok(RequestParts {
            call_id,
            from,
            from_tag,
            seq,
            secure: uri.len() >= 5 && uri[..5].eq_ignore_ascii_case("sips:"),
        })
    }
}

/// The one Contact URI of a message (§12.1.1: "the URI from the Contact
/// header field").
fn contact_uri(m: &codec::Message<'_>) -> Result<String, DialogError> {
    match m.contact() {
        Ok(Some(Contact::Addresses(list))) if list.len() == 1 => Ok(list[0].uri().to_owned()),
        Ok(_) => Err(DialogError::Missing("Contact")),
        Err(_) => Err(DialogError::Malformed("Contact")),
    }
}

fn record_route(m: &codec::Message<'_>) -> Result<Vec<String>, DialogError> {
    let rr = m
        .record_route()
        .map_err(|_| DialogError::Malformed("Record-Route"))?;
    Ok(rr
        .iter()
        .map(|a| {
            let params = a.params().as_str();
            if params.is_empty() {
                format!("<{}>", a.uri())
            } else {
                format!("<{}>{params}", a.uri())
            }
        })
        .collect())
}

impl Dialog {
    /// The dialog a UAS makes by answering `request` (an INVITE) with a
    /// 2xx carrying `local_tag` and the Contact `local_target`, its own
    /// CSeq numbers starting at `first_seq` (§12.1.1).
    pub fn uas(
        request: &codec::Message<'_>,
        local_tag: &str,
        local_target: &str,
        first_seq: u32,
    ) -> Result<Dialog, DialogError> {
        let r = RequestParts::of(request)?;
        let to = request
            .header(HeaderName::To)
            .ok_or(DialogError::Missing("To"))?;
        Ok(Dialog {
            call_id: r.call_id.to_owned(),
            local_tag: local_tag.to_owned(),
            remote_tag: r.from_tag.to_owned(),
            local: without_tag(to.value()),
            remote: without_tag(r.from),
            local_seq: first_seq.saturating_sub(1),
            remote_seq: Some(r.seq),
            remote_target: contact_uri(request)?,
            local_target: local_target.to_owned(),
            route_set: record_route(request)?,
            secure: r.secure,
            state: DialogState::Confirmed,
        })
    }

    /// The dialog a UAC makes from the `request` it sent and a
    /// `response` (1xx with a To tag: early; 2xx: confirmed) (§12.1.2).
    pub fn uac(
        request: &codec::Message<'_>,
        response: &codec::Message<'_>,
    ) -> Result<Dialog, DialogError> {
        let r = RequestParts::of(request)?;
        let to = response
            .header(HeaderName::To)
            .ok_or(DialogError::Missing("To"))?;
        let remote_tag = response
            .to()
            .map_err(|_| DialogError::Malformed("To"))?
            .and_then(|t| t.tag())
            .ok_or(DialogError::Missing("To tag"))?;
        let mut route_set = record_route(response)?;
        route_set.reverse();
        let state = match response.status() {
            Some(s) if (200..300).contains(&s) => DialogState::Confirmed,
            _ => DialogState::Early,
        };
        Ok(Dialog {
            call_id: r.call_id.to_owned(),
            local_tag: r.from_tag.to_owned(),
            remote_tag: remote_tag.to_owned(),
            local: without_tag(r.from),
            remote: without_tag(to.value()),
            local_seq: r.seq,
            remote_seq: None,
            remote_target: contact_uri(response)?,
            local_target: contact_uri(request).unwrap_or_default(),
            route_set,
            secure: r.secure,
            state,
        })
    }

    /// The Call-ID.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// The local tag.
    pub fn local_tag(&self) -> &str {
        &self.local_tag
    }

    /// The remote tag.
    pub fn remote_tag(&self) -> &str {
        &self.remote_tag
    }

    /// The peer's Contact: where requests within the dialog go.
    pub fn remote_target(&self) -> &str {
        &self.remote_target
    }

    /// The route set, in the order requests carry it.
    pub fn route_set(&self) -> &[String] {
        &self.route_set
    }

    /// Whether the dialog must use SIPS (§12.1.1).
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// Where it stands.
    pub fn state(&self) -> DialogState {
        self.state
    }

    /// A 2xx to a request of the UAC confirms an early dialog (§12.1.2);
    /// its Contact, if any, is the new remote target.
    pub fn confirm(&mut self, response: &codec::Message<'_>) {
        if self.state == DialogState::Early {
            self.state = DialogState::Confirmed;
        }
        if let Ok(target) = contact_uri(response) {
            self.remote_target = target;
        }
    }

    /// Marks the dialog ended (a BYE sent or received).
    pub fn terminate(&mut self) {
        self.state = DialogState::Terminated;
    }

    /// The URI the request goes to first: the first route, else the
    /// remote target (§12.2.1.1, §8.1.2).
    pub fn next_hop(&self) -> &str {
        match self.route_set.first() {
            Some(r) => route_uri(r),
            None => &self.remote_target,
        }
    }

    /// A request within the dialog with the next local CSeq (§12.2.1.1);
    /// the caller adds a body and its Content-Type, and a Contact for a
    /// target refresh (re-INVITE, UPDATE).
    pub fn request(&mut self, method: &str, via: &Via<'_>) -> Result<OwnedMessage, BuildError> {
        self.local_seq = self.local_seq.wrapping_add(1);
        let seq = self.local_seq;
        self.build(method, seq, via)
    }

    /// The ACK of a 2xx to the INVITE numbered `invite_seq` (§13.2.2.4:
    /// its CSeq number is the INVITE's, a new branch).
    pub fn ack(&self, invite_seq: u32, via: &Via<'_>) -> Result<OwnedMessage, BuildError> {
        self.build("ACK", invite_seq, via)
    }

    fn build(&self, method: &str, seq: u32, via: &Via<'_>) -> Result<OwnedMessage, BuildError> {
        // §12.2.1.1: a first route without `lr` is a strict router: it
        // goes in the Request-URI, and the remote target ends the Route.
        let strict = self
            .route_set
            .first()
            .is_some_and(|r| !route_params(r).any(|p| p.eq_ignore_ascii_case("lr")));
        let (uri, routes): (&str, Vec<String>) = if strict {
            let mut rest: Vec<String> = self.route_set[1..].to_vec();
            rest.push(format!("<{}>", self.remote_target));
            (route_uri(&self.route_set[0]), rest)
        } else {
            (&self.remote_target, self.route_set.clone())
        };
        let mut r = OwnedMessage::request(method, uri)?;
        r.push_header(
            "Via",
            &format!(
                "SIP/2.0/{} {};branch={}",
                via.transport, via.sent_by, via.branch
            ),
        )?;
        r.push_header("Max-Forwards", "70")?;
        if !routes.is_empty() {
            r.push_header("Route", &routes.join(", "))?;
        }
        r.push_header("From", &format!("{};tag={}", self.local, self.local_tag))?;
        r.push_header("To", &format!("{};tag={}", self.remote, self.remote_tag))?;
        r.push_header("Call-ID", &self.call_id)?;
        r.push_header("CSeq", &format!("{seq} {method}"))?;
        Ok(r)
    }

    /// Whether `request` belongs to this dialog: its Call-ID, its To tag
    /// ours and its From tag the peer's (§12.2.2).
    pub fn matches(&self, request: &codec::Message<'_>) -> bool {
        let call_id = request.call_id().ok().flatten();
        let to_tag = request.to().ok().flatten().and_then(|t| t.tag());
        let from_tag = request.from().ok().flatten().and_then(|f| f.tag());
        call_id == Some(self.call_id.as_str())
            && to_tag == Some(self.local_tag.as_str())
            && from_tag == Some(self.remote_tag.as_str())
    }

    /// A request the peer sent within the dialog (§12.2.2): refused when
    /// it is of another dialog or its CSeq is not above the last one (the
    /// caller answers 481 or 500); a target refresh (re-INVITE, UPDATE)
    /// with a Contact moves the remote target; a BYE ends the dialog.
    pub fn handle_request(&mut self, request: &codec::Message<'_>) -> Result<(), DialogError> {
        if !self.matches(request) {
            return Err(DialogError::NotThisDialog);
        }
        let method = request.method().unwrap_or_default();
        let seq = request
            .cseq()
            .ok()
            .flatten()
            .ok_or(DialogError::Missing("CSeq"))?
            .seq;
        // ACK and CANCEL carry the number of the request they go with.
        if method != "ACK" && method != "CANCEL" {
            if let Some(last) = self.remote_seq {
                if seq <= last {
                    return Err(DialogError::OutOfOrder { got: seq, last });
                }
            }
            self.remote_seq = Some(seq);
        }
        if matches!(method, "INVITE" | "UPDATE") {
            if let Ok(target) = contact_uri(request) {
                self.remote_target = target;
            }
        }
        if method == "BYE" {
            self.state = DialogState::Terminated;
        }
        Ok(())
    }

    /// A 2xx (or 1xx) to the INVITE that made the dialog, as a UAS sends
    /// it (§12.1.1): the request's Record-Route copied, the local tag on
    /// To, the local target as Contact.
    pub fn response(
        &self,
        request: &codec::Message<'_>,
        code: u16,
        reason: &str,
    ) -> Result<OwnedMessage, BuildError> {
        let mut r = OwnedMessage::response_to(request, code, reason, Some(&self.local_tag))?;
        for h in request.headers_named(HeaderName::RecordRoute) {
            r.push_header("Record-Route", h.value())?;
        }
        r.push_header("Contact", &format!("<{}>", self.local_target))?;
        Ok(r)
    }
}

/// The 2xx a UAS sent to an INVITE, passed to the transport again until
/// its ACK arrives (RFC 3261 §13.3.1.4): after T1, then doubling up to
/// T2, whatever the transport ("there may be hops between UAS and UAC
/// that are UDP"). After 64*T1 without an ACK the dialog stands but the
/// session should end with a BYE.
///
/// ```
/// use std::time::{Duration, Instant};
/// use cpimgate_sip::dialog::{Retransmit, Unacked2xx};
///
/// let t0 = Instant::now();
/// let t1 = Duration::from_millis(500);
/// let mut ok = Unacked2xx::new(t0, t1, Duration::from_secs(4));
/// assert_eq!(ok.poll_timeout(), t0 + t1);
/// assert_eq!(ok.handle_timeout(t0 + t1), Retransmit::Send);
/// assert_eq!(ok.poll_timeout(), t0 + t1 * 3); // then 2*T1 later
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unacked2xx {
    next: Instant,
    interval: Duration,
    t2: Duration,
    give_up: Instant,
}

/// What [`Unacked2xx::handle_timeout`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retransmit {
    /// Nothing yet.
    Wait,
    /// Pass the 2xx to the transport again.
    Send,
    /// 64*T1 passed without an ACK: end the session with a BYE.
    GiveUp,
}

impl Unacked2xx {
    /// The 2xx was sent at `now`.
    pub fn new(now: Instant, t1: Duration, t2: Duration) -> Unacked2xx {
        Unacked2xx {
            next: now + t1,
            interval: t1,
            t2,
            give_up: now + t1 * 64,
        }
    }

    /// When to call [`Unacked2xx::handle_timeout`].
    pub fn poll_timeout(&self) -> Instant {
        self.next.min(self.give_up)
    }

    /// The time came (or any later time).
    pub fn handle_timeout(&mut self, now: Instant) -> Retransmit {
        if now >= self.give_up {
            return Retransmit::GiveUp;
        }
        if now < self.next {
            return Retransmit::Wait;
        }
        self.interval = (self.interval * 2).min(self.t2);
        self.next = now + self.interval;
        Retransmit::Send
    }
}

/// The URI inside a route value `<uri>;params`.
fn route_uri(route: &str) -> &str {
    let r = route.trim();
    match (r.find('<'), r.find('>')) {
        (Some(a), Some(b)) if a < b => &r[a + 1..b],
        _ => r,
    }
}

/// The URI parameters of a route value (names only).
fn route_params(route: &str) -> impl Iterator<Item = &str> {
    route_uri(route)
        .split(';')
        .skip(1)
        .map(|p| p.split('=').next().unwrap_or(p).trim())
}

#[cfg(test)]
mod tests;
