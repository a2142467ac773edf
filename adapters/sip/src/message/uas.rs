//! The MESSAGE UAS (RFC 3428 §7): what the gateway answers to a request
//! outside a dialog, and the model message a MESSAGE becomes.
//!
//! [`handle_request`] looks at one parsed request and decides: answer at
//! once ([`UasDecision::Answer`]), say nothing (an ACK), or hand the
//! message to the hub ([`UasDecision::Deliver`]), whose verdict
//! [`answer_for_outcome`] turns into 202 or an error. The checks run in
//! the order of RFC 3261 §8.2 (method, headers, content), then RFC 3428.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use cpimgate_model::address::{Address, NameAddr};
use cpimgate_model::port::{DeliveryOutcome, FailureKind};
use cpimgate_model::time::Timestamp;
use cpimgate_model::{Message, MessageId, Origin, World};

use super::date::parse_sip_date;
use crate::codec::{self, HeaderName, OwnedMessage};
use crate::config::SipConfig;
use crate::transaction::TxId;

/// Methods the gateway answers outside a dialog (the Allow header).
pub const ALLOW: &str = "MESSAGE, OPTIONS";
/// The methods the gateway recognises (RFC 3261 §27.4, and the
/// extensions of RFC 3262, 3311, 3515, 3903, 6086 and 6665): those it
/// does not serve get 405, any other 501 (RFC 3261 §21.5.2).
pub const KNOWN_METHODS: &[&str] = &[
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "REGISTER",
    "OPTIONS",
    "MESSAGE",
    "SUBSCRIBE",
    "NOTIFY",
    "REFER",
    "INFO",
    "UPDATE",
    "PRACK",
    "PUBLISH",
];
/// Body types a MESSAGE may carry (the Accept header of 415 and OPTIONS).
pub const ACCEPT: &str = "text/plain, message/cpim, text/html";
/// The longest reason phrase the gateway writes; longer details are cut.
const MAX_REASON: usize = 200;

/// A response to send: status, reason phrase and extra headers (the
/// Via, From, To, Call-ID and CSeq come from the request, RFC 3261
/// §8.2.6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub code: u16,
    /// The reason phrase, free of control characters.
    pub reason: String,
    /// Extra header lines.
    pub headers: Vec<(&'static str, String)>,
}

impl Answer {
    /// A response without extra headers; `reason` is cleaned of control
    /// characters and cut to a sane length.
    pub fn new(code: u16, reason: impl AsRef<str>) -> Self {
        let mut reason: String = reason
            .as_ref()
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if reason.len() > MAX_REASON {
            let mut cut = MAX_REASON;
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            reason.truncate(cut);
        }
        Answer {
            code,
            reason,
            headers: Vec::new(),
        }
    }

    /// The same answer with one more header.
    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The response to `request`: RFC 3261 §8.2.6.2 (a To tag added to a
    /// final response whose request had none), then the extra headers. A
    /// 2xx to MESSAGE has no Contact and no body (RFC 3428 §7).
    pub fn build(&self, request: &codec::Message<'_>, to_tag: &str) -> Option<OwnedMessage> {
        let mut r =
            OwnedMessage::response_to(request, self.code, &self.reason, Some(to_tag)).ok()?;
        for (n, v) in &self.headers {
            r.push_header(n, v).ok()?;
        }
        Some(r)
    }
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum UasDecision {
    /// Answer at once.
    Answer(Answer),
    /// Hand this message to the hub, then answer with
    /// [`answer_for_outcome`].
    Deliver(Box<Message>),
    /// Say nothing (an ACK: it has no response, RFC 3261 §17.1.1.3).
    Ignore,
}

/// What [`handle_request`] needs besides the request.
#[derive(Debug, Clone, Copy)]
pub struct UasContext<'a> {
    /// The adapter's configuration.
    pub config: &'a SipConfig,
    /// The adapter instance name (the message's origin).
    pub adapter: &'a str,
    /// The current time (for Expires).
    pub now: Timestamp,
    /// The gateway's own `host:port` values (its listeners as its Via and
    /// registered Contacts name them): a Request-URI there is the
    /// gateway's, like one on its domains.
    pub own_hosts: &'a [String],
}

/// Decides what to answer to a request outside a dialog.
///
/// ```
/// use cpimgate_model::time::Timestamp;
/// use cpimgate_sip::codec::parse;
/// use cpimgate_sip::config::SipConfig;
/// use cpimgate_sip::message::{UasContext, UasDecision, handle_request};
/// let config = SipConfig::new("gw.example.com");
/// let ctx = UasContext { config: &config, adapter: "sip", now: Timestamp::now(), own_hosts: &[] };
/// let req = parse(b"MESSAGE sip:alice%40xmpp.example.org@gw.example.com SIP/2.0\r\n\
/// Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nMax-Forwards: 70\r\n\
/// From: <sip:bob@biloxi.example.com>;tag=1\r\nTo: <sip:alice%40xmpp.example.org@gw.example.com>\r\n\
/// Call-ID: c1\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello").unwrap();
/// let UasDecision::Deliver(m) = handle_request(&req, &ctx) else { panic!() };
/// assert_eq!(m.to[0].address.to_string(), "im:alice@xmpp.example.org");
/// assert_eq!(m.from.address.to_string(), "sip:bob@biloxi.example.com");
/// assert_eq!(m.body.as_text(), Some("hello"));
/// ```
pub fn handle_request(request: &codec::Message<'_>, ctx: &UasContext<'_>) -> UasDecision {
    match check(request, ctx) {
        Ok(Some(m)) => UasDecision::Deliver(Box::new(m)),
        Ok(None) => UasDecision::Ignore,
        Err(a) => UasDecision::Answer(a),
    }
}

fn check(req: &codec::Message<'_>, ctx: &UasContext<'_>) -> Result<Option<Message>, Answer> {
    let Some(method) = req.method() else {
        return Ok(None);
    };
    // RFC 3261 §8.1.1: the mandatory headers; the codec names the problem
    // (400 with a reason phrase, 505 for another version).
    if let Err(e) = req.validate_request() {
        let s = e.response_status();
        return Err(Answer::new(s.code, s.reason));
    }
    if method == "ACK" {
        return Ok(None);
    }
    // RFC 3261 §8.2.2.1: a scheme the gateway does not know gets 416.
    let uri = req.request_uri().unwrap_or_default();
    let target = match uri.parse::<Address>() {
        Ok(a @ (Address::Sip(_) | Address::Im(_))) => a,
        Ok(_) | Err(cpimgate_model::address::AddressError::UnknownScheme { .. }) => {
            return Err(Answer::new(416, "Unsupported URI Scheme"));
        }
        Err(e) => return Err(Answer::new(400, format!("Bad Request: Request-URI: {e}"))),
    };
    // RFC 3261 §11.2: OPTIONS is answered as an INVITE would be, with what
    // the gateway supports (Max-Forwards 0 included: it is addressed here).
    if method == "OPTIONS" {
        return Err(Answer::new(200, "OK")
            .with("Allow", ALLOW)
            .with("Accept", ACCEPT)
            .with("Accept-Encoding", "identity")
            .with("Supported", ""));
    }
    // RFC 3261 §9.2: a CANCEL that matches no transaction gets 481 (the
    // gateway has no INVITE transactions to cancel, and cancelling a
    // non-INVITE one has no effect); §15.1.2 and §12.2.2: a BYE names a
    // dialog, and the gateway keeps none.
    if method == "CANCEL" || method == "BYE" {
        return Err(Answer::new(481, "Call/Transaction Does Not Exist"));
    }
    // RFC 3261 §8.2.1: a method the gateway knows but does not serve
    // gets 405 with Allow; §21.5.2: one it does not recognise at all gets
    // 501 (Allow added all the same, §20.5: it tells the sender what works).
    if method != "MESSAGE" {
        if KNOWN_METHODS.contains(&method) {
            return Err(Answer::new(405, "Method Not Allowed").with("Allow", ALLOW));
        }
        return Err(Answer::new(501, "Not Implemented").with("Allow", ALLOW));
    }
    // RFC 3261 §12.2.2: the gateway keeps no dialogs, so a MESSAGE inside
    // one (a To tag) names a dialog that does not exist here.
    if req.to().ok().flatten().and_then(|t| t.tag()).is_some() {
        return Err(Answer::new(481, "Call/Transaction Does Not Exist"));
    }
    // RFC 3261 §8.2.2.3: no extension is supported.
    let required: Vec<&str> = req.require().collect();
    if !required.is_empty() {
        return Err(Answer::new(420, "Bad Extension").with("Unsupported", required.join(", ")));
    }
    // RFC 3261 §16.3 item 3, §21.4.20: the MESSAGE would go on into another
    // world, a hop the sender's Max-Forwards does not allow.
    if req.max_forwards().ok().flatten() == Some(0) {
        return Err(Answer::new(483, "Too Many Hops"));
    }
    // RFC 3261 §21.4.11: larger than the gateway takes.
    if req.body().len() > ctx.config.max_message_size {
        return Err(Answer::new(
            413,
            format!(
                "Request Entity Too Large: the body is larger than {} bytes",
                ctx.config.max_message_size
            ),
        ));
    }
    // RFC 3428 §11.4: a signed MESSAGE carries a Date within minutes of
    // now, else it may be a replay. The gateway cannot carry a signature
    // into another world, so a fresh one still gets 415 below.
    if is_signed(req) && !date_is_fresh(req, ctx) {
        return Err(Answer::new(400, "Incorrect Date or Time"));
    }
    // RFC 3261 §8.2.3: only the identity encoding.
    if let Some(h) = req.header(HeaderName::ContentEncoding) {
        if !h.value().trim().eq_ignore_ascii_case("identity") {
            return Err(Answer::new(415, "Unsupported Media Type: Content-Encoding")
                .with("Accept-Encoding", "identity"));
        }
    }
    let kind = body_kind(req)?;
    let from = sender(req)?;
    let to = recipient(&target, ctx)?;
    let call_id = req.call_id().ok().flatten().unwrap_or_default();
    let seq = req.cseq().ok().flatten().map_or(0, |c| c.seq);
    let from_tag = req
        .from()
        .ok()
        .flatten()
        .and_then(|f| f.tag())
        .unwrap_or_default()
        .to_owned();
    let origin = Origin {
        world: World::Sip,
        adapter: ctx.adapter.to_owned(),
        native_id: Some(call_id.to_owned()),
    };
    let body = Bytes::copy_from_slice(req.body());
    let mut message = match kind {
        BodyKind::Cpim => cpim_message(body, origin, &from)?,
        BodyKind::Text => {
            let text = utf8(req.body())?;
            text_message(origin, from.clone(), &text, "text/plain;charset=utf-8")
        }
        BodyKind::Html => {
            let text = html_to_text(&utf8(req.body())?);
            text_message(origin, from.clone(), &text, "text/plain;charset=utf-8")
        }
    };
    if message.cpim.is_none() {
        // The same MESSAGE received again (a lost 202) keeps its id, so the
        // hub's de-duplication drops the copy.
        message.id = MessageId(format!("sip:{from_tag}:{call_id}:{seq}"));
    }
    message.to = vec![NameAddr::new(to)];
    message.expires = expiry(req, ctx.now)?;
    Ok(Some(message))
}

/// Whether the body is S/MIME signed (RFC 3428 §11.3): multipart/signed,
/// or application/pkcs7-mime with signed-data.
fn is_signed(req: &codec::Message<'_>) -> bool {
    match req.content_type() {
        Ok(Some(ct)) => {
            ct.is("multipart", "signed")
                || (ct.is("application", "pkcs7-mime")
                    && ct
                        .params
                        .get("smime-type")
                        .flatten()
                        .is_some_and(|t| codec::unquote(t).eq_ignore_ascii_case("signed-data")))
        }
        _ => false,
    }
}

/// Whether Date is present and within the configured window of now.
fn date_is_fresh(req: &codec::Message<'_>, ctx: &UasContext<'_>) -> bool {
    let Some(date) = req.date().and_then(parse_sip_date) else {
        return false;
    };
    let window = i64::try_from(ctx.config.date_window_s)
        .unwrap_or(i64::MAX / 2_000_000)
        .saturating_mul(1_000_000);
    (date.unix_micros - ctx.now.unix_micros).abs() <= window
}

enum BodyKind {
    Text,
    Cpim,
    Html,
}

/// RFC 3428 §7: text/plain must be taken, message/cpim may be; text/html
/// is taken and reduced to text. Anything else gets 415 with Accept
/// (RFC 3261 §8.2.3, §21.4.13).
fn body_kind(req: &codec::Message<'_>) -> Result<BodyKind, Answer> {
    let unsupported = |what: &str| {
        Answer::new(415, format!("Unsupported Media Type: {what}")).with("Accept", ACCEPT)
    };
    let ct = match req.content_type() {
        Ok(Some(ct)) => ct,
        Ok(None) if req.body().is_empty() => return Ok(BodyKind::Text),
        // RFC 3261 §7.4.1: a body without Content-Type.
        Ok(None) => return Err(Answer::new(400, "Bad Request: a body without Content-Type")),
        Err(e) => return Err(Answer::new(400, e.response_status().reason)),
    };
    let charset_ok = ct.params.get("charset").is_none_or(|v| {
        let v = codec::unquote(v.unwrap_or_default()).to_ascii_lowercase();
        v == "utf-8" || v == "us-ascii"
    });
    if ct.is("text", "plain") || ct.is("text", "html") {
        if !charset_ok {
            return Err(unsupported("only the UTF-8 charset is taken"));
        }
        return Ok(if ct.is("text", "plain") {
            BodyKind::Text
        } else {
            BodyKind::Html
        });
    }
    if ct.is("message", "cpim") {
        return Ok(BodyKind::Cpim);
    }
    Err(unsupported(&format!("{}/{}", ct.mtype, ct.subtype)))
}

fn utf8(body: &[u8]) -> Result<Cow<'_, str>, Answer> {
    std::str::from_utf8(body)
        .map(Cow::Borrowed)
        .map_err(|_| Answer::new(400, "Bad Request: the text is not UTF-8"))
}

/// The From address: who the gateway speaks for in the other world.
fn sender(req: &codec::Message<'_>) -> Result<NameAddr, Answer> {
    let bad = |e: &dyn std::fmt::Display| Answer::new(400, format!("Bad Request: From: {e}"));
    let from = req
        .from()
        .map_err(|e| bad(&e))?
        .ok_or_else(|| Answer::new(400, "Bad Request: missing From"))?;
    let address = from.address().map_err(|e| bad(&e))?;
    Ok(NameAddr {
        display: from
            .display()
            .map(Cow::into_owned)
            .filter(|d| !d.is_empty()),
        address,
    })
}

/// The recipient the Request-URI names: on one of the gateway's domains,
/// the address of another world its user part stands for (DESIGN.md
/// "Addressing"); elsewhere the URI itself, for the hub's routes.
fn recipient(target: &Address, ctx: &UasContext<'_>) -> Result<Address, Answer> {
    let (user, host, at_own_host) = match target {
        Address::Sip(u) => {
            let host = u.host().to_string();
            let port = u.port().unwrap_or(if u.is_secure() { 5061 } else { 5060 });
            let own = ctx
                .own_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(&format!("{host}:{port}")));
            (u.user(), host, own)
        }
        Address::Im(u) => (Some(u.user()), u.domain().to_owned(), false),
        _ => (None, String::new(), false),
    };
    if !at_own_host && !ctx.config.is_ours(&host) {
        return Ok(target.clone());
    }
    let Some(user) = user else {
        return Err(Answer::new(
            404,
            "Not Found: the gateway itself takes no messages",
        ));
    };
    Address::from_gateway_user(user)
        .map_err(|e| Answer::new(404, format!("Not Found: {user} names no address ({e})")))
}

fn text_message(origin: Origin, from: NameAddr, text: &str, content_type: &str) -> Message {
    let mut m = Message::text(origin, from.clone(), from, text);
    content_type.clone_into(&mut m.content_type);
    m
}

/// A message/cpim body, kept byte for byte (RFC 3428 §11.5). Its From must
/// be the SIP sender: the gateway vouches for the sender in the other
/// world, and a CPIM From is what a CPIM service shows as the sender
/// (RFC 3862 §4.1), so another one is a spoof (403, RFC 3261 §21.4.4).
fn cpim_message(body: Bytes, origin: Origin, from: &NameAddr) -> Result<Message, Answer> {
    let limits = cpimgate_model::cpim::Limits::default();
    let m = Message::from_cpim(body, origin, &limits)
        .map_err(|e| Answer::new(400, format!("Bad Request: message/cpim: {e}")))?;
    if !m.from.address.same_user(&from.address) {
        return Err(Answer::new(
            403,
            format!(
                "Forbidden: CPIM From {} is not the sender {}",
                m.from.address, from.address
            ),
        ));
    }
    Ok(m)
}

/// RFC 3428 §7: Expires counts from Date when there is one, else from
/// receipt. A message already expired on arrival is not delivered; the
/// sender is told so (local policy, §7).
fn expiry(req: &codec::Message<'_>, now: Timestamp) -> Result<Option<Timestamp>, Answer> {
    let delta = match req.expires() {
        Ok(Some(d)) => d,
        Ok(None) => return Ok(None),
        Err(e) => return Err(Answer::new(400, e.response_status().reason)),
    };
    let base = req.date().and_then(parse_sip_date).unwrap_or(now);
    let at = base.plus(Duration::from_secs(u64::from(delta)));
    if at <= now {
        return Err(Answer::new(
            400,
            "Bad Request: the message expired before it arrived",
        ));
    }
    Ok(Some(at))
}

/// Text of an HTML body, for worlds without markup: tags dropped, `<br>`
/// and block ends as line breaks, the common entities decoded.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(rest.get(..lt).unwrap_or_default());
        let after = rest.get(lt..).unwrap_or_default();
        let gt = after.find('>').map_or(after.len(), |g| g + 1);
        let tag = after.get(1..gt.saturating_sub(1)).unwrap_or_default();
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase();
        if name == "br" || (tag.starts_with('/') && matches!(name.as_str(), "p" | "div" | "li")) {
            out.push('\n');
        }
        rest = after.get(gt..).unwrap_or_default();
    }
    out.push_str(rest);
    let decoded = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    decoded.trim_end_matches('\n').to_owned()
}

/// The answer to a MESSAGE once the hub has spoken: 202 when it took the
/// message (RFC 3428 §7: a relay into a non-SIP domain answers 202, with
/// no Contact and no body), else the error of its failure.
pub fn answer_for_outcome(outcome: &DeliveryOutcome) -> Answer {
    let f = match outcome {
        DeliveryOutcome::Accepted | DeliveryOutcome::Delivered => {
            return Answer::new(202, "Accepted");
        }
        DeliveryOutcome::Failed(f) => f,
    };
    let (code, phrase) = match f.kind {
        FailureKind::NotFound => (404, "Not Found"),
        FailureKind::Forbidden | FailureKind::Rejected => (403, "Forbidden"),
        FailureKind::TooLarge => (413, "Request Entity Too Large"),
        FailureKind::UnsupportedType => (415, "Unsupported Media Type"),
        FailureKind::Unreachable => (480, "Temporarily Unavailable"),
        FailureKind::Timeout => (408, "Request Timeout"),
        FailureKind::Overloaded => (503, "Service Unavailable"),
        FailureKind::Expired => (400, "Bad Request"),
        _ => (500, "Server Internal Error"),
    };
    Answer::new(code, format!("{phrase}: {}", f.detail))
}

/// Merged requests (RFC 3261 §8.2.2.2): a request without To tag whose
/// From tag, Call-ID and CSeq are those of a live server transaction that
/// it did not match (the transaction layer absorbed retransmissions) came
/// by another path, through a forking proxy: it gets 482.
#[derive(Debug, Default)]
pub struct MergeGuard {
    live: HashMap<(String, String, u32), TxId>,
    by_tx: HashMap<TxId, (String, String, u32)>,
}

impl MergeGuard {
    /// Records the new server transaction `tx` for `request`; `false` when
    /// another live transaction has the same key (answer 482).
    pub fn admit(&mut self, tx: TxId, request: &codec::Message<'_>) -> bool {
        if request.to().ok().flatten().and_then(|t| t.tag()).is_some() {
            return true;
        }
        let Some(key) = merge_key(request) else {
            return true;
        };
        if self.live.contains_key(&key) {
            return false;
        }
        self.live.insert(key.clone(), tx);
        self.by_tx.insert(tx, key);
        true
    }

    /// The transaction ended.
    pub fn terminated(&mut self, tx: TxId) {
        if let Some(key) = self.by_tx.remove(&tx) {
            self.live.remove(&key);
        }
    }

    /// How many transactions are tracked.
    pub fn len(&self) -> usize {
        self.by_tx.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.by_tx.is_empty()
    }
}

fn merge_key(req: &codec::Message<'_>) -> Option<(String, String, u32)> {
    let from_tag = req.from().ok()??.tag()?.to_owned();
    let call_id = req.call_id().ok()??.to_owned();
    let seq = req.cseq().ok()??.seq;
    Some((from_tag, call_id, seq))
}
