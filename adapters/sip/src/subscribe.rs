//! The notifier side of one subscription (RFC 6665 §4.2), sans-IO: the
//! SUBSCRIBEs in, their responses and the NOTIFYs out, time passed in.
//! Made for the conference event package (RFC 4575 §3) of the chat
//! rooms, whose documents (`cpimgate_msrp::conference`) are the NOTIFY
//! bodies; the package is a [`Config`], so another one fits as well.
//!
//! The call order, for one subscription:
//!
//! 1. [`Subscription::new`] with the package and the notifier's Contact,
//!    a fresh To tag and the first CSeq of our NOTIFYs;
//! 2. [`Subscription::handle_subscribe`] with the SUBSCRIBE that made it:
//!    the 200 to send (Expires granted, Contact, our To tag), and the
//!    dialog is made (RFC 6665 §4.4.1, RFC 3261 §12.1.1); or a
//!    [`Refusal`] whose [`Refusal::response`] is sent instead (489, 406,
//!    423 with Min-Expires, 400, 481);
//! 3. after every `handle_*`, [`Subscription::poll_notify`]: a NOTIFY is
//!    owed at once after a SUBSCRIBE (full state, §4.2.1.2), and a last
//!    one when the subscription ends; [`Subscription::notify`] writes it
//!    around the body the caller gives (a document whose `version` is
//!    [`Subscription::next_version`]). The caller also calls `notify`
//!    with partial documents of the changes while it is active, not
//!    before [`Subscription::next_change_at`] (RFC 4575 §3.9);
//! 4. [`Subscription::poll_timeout`] and [`Subscription::handle_timeout`]:
//!    at expiry the subscription ends with `reason=timeout` (§4.2.2);
//! 5. [`Subscription::handle_notify_response`] with each NOTIFY's final
//!    status (a transaction timeout is a 408, RFC 3261 §8.1.3.1): a 481
//!    or 408 ends it without another NOTIFY (§4.2.2);
//! 6. refreshes (§4.2.1.4) go to `handle_subscribe` again; `Expires: 0`
//!    ends it (§4.2.1.4: one last NOTIFY, `terminated;reason=timeout`);
//!    [`Subscription::terminate`] ends it from our side (`noresource`
//!    when the room goes away, RFC 4575 §3.3; `deactivated` when the
//!    gateway stops).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use cpimgate_sip::codec::parse;
//! use cpimgate_sip::dialog::Via;
//! use cpimgate_sip::subscribe::{Config, Due, Subscription};
//!
//! let subscribe = parse(b"SUBSCRIBE sip:chatroom22@chat.example.com SIP/2.0\r\n\
//! Via: SIP/2.0/TCP bobpc.example.com;branch=z9hG4bKnashds7\r\nMax-Forwards: 70\r\n\
//! From: <sip:bob@example.com>;tag=ffd2\r\nTo: <sip:chatroom22@chat.example.com>\r\n\
//! Call-ID: 4fd8e76a2d7\r\nCSeq: 1 SUBSCRIBE\r\nContact: <sip:bob@bobpc.example.com>\r\n\
//! Event: conference\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n").unwrap();
//! let t0 = Instant::now();
//! let config = Config::conference("sip:chatroom22@192.0.2.5");
//! let mut sub = Subscription::new(config, "3kd9a", 1);
//! let ok = sub.handle_subscribe(t0, &subscribe).unwrap();
//! assert_eq!(ok.get("Expires"), Some("600"));
//! assert_eq!(sub.poll_notify(), Some(Due::FullState));
//! let via = Via { transport: "TCP", sent_by: "192.0.2.5", branch: "z9hG4bK776asdhds" };
//! let notify = sub.notify(t0 + Duration::from_secs(10), &via, "<conference-info .../>").unwrap();
//! assert_eq!(notify.get("Subscription-State"), Some("active;expires=590"));
//! assert_eq!(notify.get("Event"), Some("conference"));
//! assert_eq!(sub.poll_timeout(), Some(t0 + Duration::from_secs(600)));
//! ```

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::codec::{self, BuildError, HeaderName, OwnedMessage};
use crate::dialog::{Dialog, DialogError, Via};

/// An event package as the notifier offers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The package name in the Event header (RFC 6665 §8.2.1).
    pub event: String,
    /// The type of the NOTIFY bodies, which Accept must allow.
    pub content_type: String,
    /// The duration when the SUBSCRIBE has no Expires, in seconds
    /// (RFC 6665 §3.1.1: the package's default).
    pub default_expires: u32,
    /// The shortest duration taken; a SUBSCRIBE asking less (but not 0)
    /// gets 423 with Min-Expires (RFC 6665 §4.2.1.1).
    pub min_expires: u32,
    /// The longest duration granted; a longer one is shortened (a
    /// notifier may shorten but not lengthen it, RFC 6665 §4.2.1.1).
    pub max_expires: u32,
    /// The notifier's Contact URI, in the 200 and every NOTIFY (RFC 6665
    /// §4.4.1).
    pub contact: String,
    /// The shortest time between two NOTIFYs of changes (RFC 4575 §3.9:
    /// not more often than every 5 seconds); see
    /// [`Subscription::next_change_at`].
    pub min_notify_interval: Duration,
}

impl Config {
    /// The conference package (RFC 4575 §3): `application/conference-info+xml`,
    /// one hour by default and at most (§3.3), one minute at least.
    pub fn conference(contact: impl Into<String>) -> Config {
        Config {
            event: "conference".to_owned(),
            content_type: "application/conference-info+xml".to_owned(),
            default_expires: 3600,
            min_expires: 60,
            max_expires: 3600,
            contact: contact.into(),
            min_notify_interval: Duration::from_secs(5),
        }
    }
}

/// Why a subscription ended: the `reason` of `Subscription-State:
/// terminated` (RFC 6665 §4.1.3, §8.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// Ended by the notifier, the subscriber may subscribe again at once
    /// (the gateway stops or moves the room).
    Deactivated,
    /// Refused after all (authorization taken back).
    Rejected,
    /// Not refreshed in time, or ended by the subscriber (`Expires: 0`).
    Timeout,
    /// The resource is gone (RFC 4575 §3.3: the conference ended).
    NoResource,
}

impl Reason {
    /// The token of the `reason` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Deactivated => "deactivated",
            Reason::Rejected => "rejected",
            Reason::Timeout => "timeout",
            Reason::NoResource => "noresource",
        }
    }
}

/// Where a subscription stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No SUBSCRIBE accepted yet.
    Idle,
    /// Active until this time.
    Active(Instant),
    /// Ended; its last NOTIFY is owed ([`Due::Final`]).
    Ending(Reason),
    /// Over: the last NOTIFY is written, or a NOTIFY failed (`None`).
    Terminated(Option<Reason>),
}

/// A NOTIFY owed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// After a SUBSCRIBE or its refresh: full state (RFC 6665 §4.2.1.2,
    /// RFC 4575 §3.2).
    FullState,
    /// The last one, `terminated` for this reason (RFC 6665 §4.2.2): full
    /// state after `Expires: 0` (a fetch gets its state this way), the
    /// package's "gone" document for [`Reason::NoResource`].
    Final(Reason),
}

/// Why a SUBSCRIBE is refused; [`Refusal::response`] writes the answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// Happens when the Event header names another package (489 with
    /// Allow-Events, RFC 6665 §4.2.1.1, §8.3.2).
    #[error("event package {got:?} is not {ours:?}")]
    BadEvent {
        /// The package asked for.
        got: String,
        /// Ours.
        ours: String,
    },
    /// Happens when Accept leaves out the package's body type (406 with
    /// Accept, RFC 4575 §3.4, RFC 3261 §21.4.7).
    #[error("Accept does not allow {0}")]
    NotAcceptable(String),
    /// Happens when Expires is below the minimum but not 0 (423 with
    /// Min-Expires, RFC 6665 §4.2.1.1, RFC 3261 §21.4.17).
    #[error("Expires {asked} is below the minimum of {min}")]
    IntervalTooBrief {
        /// The interval asked for.
        asked: u32,
        /// Ours.
        min: u32,
    },
    /// Happens when the request is no SUBSCRIBE, has no Event (RFC 6665
    /// §4.2.3: it is mandatory), or lacks or garbles a header the
    /// subscription or its dialog needs (400).
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// Happens when a SUBSCRIBE with a To tag is not of this dialog, or
    /// comes after the subscription ended (481, RFC 3261 §12.2.2).
    #[error("no such subscription")]
    NoSuchSubscription,
    /// Happens when a SUBSCRIBE in the dialog asks for another event `id`:
    /// one subscription per dialog here (403).
    #[error("another subscription in this dialog")]
    OtherSubscription,
    /// Happens when a refresh's CSeq is not above the last one (500,
    /// RFC 3261 §12.2.2).
    #[error("CSeq out of order")]
    OutOfOrder,
    /// Happens when the 200 cannot be written (a header value this
    /// notifier was configured with is not a valid header value): 500.
    #[error("the response cannot be written: {0}")]
    Build(#[from] BuildError),
}

impl Refusal {
    /// The status code.
    pub fn code(&self) -> u16 {
        match self {
            Refusal::BadEvent { .. } => 489,
            Refusal::NotAcceptable(_) => 406,
            Refusal::IntervalTooBrief { .. } => 423,
            Refusal::BadRequest(_) => 400,
            Refusal::NoSuchSubscription => 481,
            Refusal::OtherSubscription => 403,
            Refusal::OutOfOrder | Refusal::Build(_) => 500,
        }
    }

    /// The reason phrase (RFC 3261 §21, RFC 6665 §8.3.2).
    pub fn reason_phrase(&self) -> &'static str {
        match self {
            Refusal::BadEvent { .. } => "Bad Event",
            Refusal::NotAcceptable(_) => "Not Acceptable",
            Refusal::IntervalTooBrief { .. } => "Interval Too Brief",
            Refusal::BadRequest(why) => why,
            Refusal::NoSuchSubscription => "Call/Transaction Does Not Exist",
            Refusal::OtherSubscription => "One Subscription Per Dialog",
            Refusal::OutOfOrder => "CSeq Out Of Order",
            Refusal::Build(_) => "Server Internal Error",
        }
    }

    /// The response to `request`, with `to_tag` on To when it has none
    /// (RFC 3261 §8.2.6.2) and the header each status asks for.
    pub fn response(
        &self,
        request: &codec::Message<'_>,
        to_tag: &str,
    ) -> Result<OwnedMessage, BuildError> {
        let mut r =
            OwnedMessage::response_to(request, self.code(), self.reason_phrase(), Some(to_tag))?;
        match self {
            Refusal::BadEvent { ours, .. } => r.push_header("Allow-Events", ours)?,
            Refusal::NotAcceptable(ct) => r.push_header("Accept", ct)?,
            Refusal::IntervalTooBrief { min, .. } => {
                r.push_header("Min-Expires", &min.to_string())?;
            }
            _ => {}
        }
        Ok(r)
    }
}

/// Why a NOTIFY could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// Happens when no SUBSCRIBE was accepted yet, or the subscription is
    /// over (its last NOTIFY went out, or a NOTIFY failed).
    #[error("the subscription is not active")]
    NotActive,
    /// Happens when a header cannot be written (a Via or a configured
    /// value that is not a valid header value).
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// What a NOTIFY's response meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyOutcome {
    /// Taken (2xx), or a provisional response.
    Delivered,
    /// The subscription ended: 481 or a timeout (RFC 6665 §4.2.2).
    Ended,
    /// Another failure: the subscription stands; the subscriber learns
    /// of the gap by the version and refreshes (RFC 4575 §4.6, RFC 6665
    /// §4.2.2: the subscriber cleans up after its own errors).
    Failed,
}

/// One subscription, notifier side; see the [module docs](self).
#[derive(Debug)]
pub struct Subscription {
    config: Config,
    local_tag: String,
    first_seq: u32,
    dialog: Option<Dialog>,
    /// The Event value to echo: package and `id` (RFC 6665 §8.2.1).
    event: String,
    /// The `id` parameter of the subscription, if any.
    id: Option<String>,
    state: State,
    full_state_due: bool,
    /// Bodies sent so far: the version of the next document is one more.
    sent_bodies: u32,
    last_notify: Option<Instant>,
}

/// The package and `id` of an Event value (`conference;id=12`).
fn parse_event(value: &str) -> (&str, Option<&str>) {
    let mut parts = value.split(';');
    let package = parts.next().unwrap_or_default().trim();
    let id = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("id").then_some(v.trim())
    });
    (package, id)
}

/// Whether an Accept header allows `content_type` (RFC 3261 §20.1:
/// media ranges with wildcards; an empty Accept allows nothing; `q=0`
/// refuses).
fn accepts(request: &codec::Message<'_>, content_type: &str) -> bool {
    if request.header(HeaderName::Accept).is_none() {
        // RFC 4575 §3.4: no Accept, the package's default type.
        return true;
    }
    let (want_major, want_minor) = content_type.split_once('/').unwrap_or((content_type, ""));
    request.accept().any(|range| {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim();
        let refused = parts.any(|p| {
            p.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("q")
                    && v.trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
            })
        });
        let (major, minor) = media.split_once('/').unwrap_or((media, ""));
        let fits = (major == "*" && minor == "*")
            || (major.eq_ignore_ascii_case(want_major)
                && (minor == "*" || minor.eq_ignore_ascii_case(want_minor)));
        fits && !refused
    })
}

impl Subscription {
    /// A subscription waiting for its SUBSCRIBE. `local_tag` goes on To
    /// in every response (a fresh random token, RFC 3261 §19.3); our
    /// NOTIFYs count their CSeq from `first_seq`.
    pub fn new(config: Config, local_tag: impl Into<String>, first_seq: u32) -> Subscription {
        Subscription {
            event: config.event.clone(),
            config,
            local_tag: local_tag.into(),
            first_seq,
            dialog: None,
            id: None,
            state: State::Idle,
            full_state_due: false,
            sent_bodies: 0,
            last_notify: None,
        }
    }

    /// Where it stands.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether it is over: nothing more to send; the caller drops it.
    pub fn is_terminated(&self) -> bool {
        matches!(self.state, State::Terminated(_))
    }

    /// The dialog, once the first SUBSCRIBE was accepted.
    pub fn dialog(&self) -> Option<&Dialog> {
        self.dialog.as_ref()
    }

    /// The To tag of our responses.
    pub fn local_tag(&self) -> &str {
        &self.local_tag
    }

    /// The `version` the next document must carry (RFC 4575 §5.2: one up
    /// per notification of this subscription, starting at 1).
    pub fn next_version(&self) -> u32 {
        self.sent_bodies.wrapping_add(1)
    }

    /// A SUBSCRIBE for this subscription: the first one, a refresh or an
    /// unsubscribe (RFC 6665 §4.2.1). On success, the 200 to send (with
    /// the Expires granted, RFC 6665 §4.2.1.1) and a NOTIFY is owed
    /// ([`Subscription::poll_notify`]). A refused refresh leaves the
    /// subscription as it was.
    pub fn handle_subscribe(
        &mut self,
        now: Instant,
        request: &codec::Message<'_>,
    ) -> Result<OwnedMessage, Refusal> {
        if request.method() != Some("SUBSCRIBE") {
            return Err(Refusal::BadRequest("Not A SUBSCRIBE"));
        }
        self.expire(now);
        match (&mut self.dialog, self.state) {
            (_, State::Terminated(_) | State::Ending(_)) => {
                return Err(Refusal::NoSuchSubscription);
            }
            (Some(d), _) => match d.handle_request(request) {
                Ok(()) => {}
                Err(DialogError::NotThisDialog) => return Err(Refusal::NoSuchSubscription),
                Err(DialogError::OutOfOrder { .. }) => return Err(Refusal::OutOfOrder),
                Err(_) => return Err(Refusal::BadRequest("Malformed CSeq")),
            },
            (None, _) => {
                // RFC 3261 §12.2.2: a To tag names a dialog we do not have.
                let tagged = request.to().ok().flatten().and_then(|t| t.tag()).is_some();
                if tagged {
                    return Err(Refusal::NoSuchSubscription);
                }
            }
        }

        // RFC 6665 §8.2.1: the package compared as written, then the id.
        let value = request
            .header(HeaderName::Event)
            .map(|h| h.value().to_owned())
            .ok_or(Refusal::BadRequest("Missing Event"))?;
        let (package, id) = parse_event(&value);
        if package != self.config.event {
            return Err(Refusal::BadEvent {
                got: package.to_owned(),
                ours: self.config.event.clone(),
            });
        }
        if self.dialog.is_some() && id != self.id.as_deref() {
            return Err(Refusal::OtherSubscription);
        }
        if !accepts(request, &self.config.content_type) {
            return Err(Refusal::NotAcceptable(self.config.content_type.clone()));
        }
        let asked = request
            .expires()
            .map_err(|_| Refusal::BadRequest("Malformed Expires"))?
            .unwrap_or(self.config.default_expires);
        if asked != 0 && asked < self.config.min_expires {
            return Err(Refusal::IntervalTooBrief {
                asked,
                min: self.config.min_expires,
            });
        }
        let granted = asked.min(self.config.max_expires);

        if self.dialog.is_none() {
            let dialog = Dialog::uas(
                request,
                &self.local_tag,
                &self.config.contact,
                self.first_seq,
            )
            .map_err(|e| match e {
                DialogError::Missing("Contact") => Refusal::BadRequest("Missing Contact"),
                DialogError::Missing("From tag") => Refusal::BadRequest("Missing From Tag"),
                _ => Refusal::BadRequest("Malformed Request"),
            })?;
            self.event = match id {
                Some(id) => format!("{package};id={id}"),
                None => package.to_owned(),
            };
            self.id = id.map(str::to_owned);
            self.dialog = Some(dialog);
        }
        let Some(dialog) = &self.dialog else {
            return Err(Refusal::NoSuchSubscription);
        };
        let mut ok = dialog.response(request, 200, "OK")?;
        ok.push_header("Expires", &granted.to_string())?;

        // RFC 6665 §4.2.1.4: Expires 0 ends it (a first one is a fetch);
        // either way a NOTIFY with the state goes out at once (§4.2.1.2).
        self.state = if granted == 0 {
            State::Ending(Reason::Timeout)
        } else {
            State::Active(now + Duration::from_secs(u64::from(granted)))
        };
        self.full_state_due = granted != 0;
        Ok(ok)
    }

    /// The NOTIFY owed at once, if any.
    pub fn poll_notify(&self) -> Option<Due> {
        match self.state {
            State::Ending(reason) => Some(Due::Final(reason)),
            State::Active(_) if self.full_state_due => Some(Due::FullState),
            _ => None,
        }
    }

    /// When a NOTIFY of changes may go out without passing the rate of
    /// RFC 4575 §3.9 (the caller gathers changes until then into one
    /// partial document); `None` when no NOTIFY went out yet.
    pub fn next_change_at(&self) -> Option<Instant> {
        self.last_notify
            .map(|t| t + self.config.min_notify_interval)
    }

    /// A NOTIFY within the dialog (RFC 6665 §4.2.2) with `body` (a
    /// document of version [`Subscription::next_version`]; empty for
    /// none): Event as subscribed, `Subscription-State: active;expires=`
    /// the seconds left, or `terminated;reason=` when it ends (after
    /// which it is over), Contact, Content-Type. `now` past the expiry
    /// makes it the last one, `reason=timeout`.
    pub fn notify(
        &mut self,
        now: Instant,
        via: &Via<'_>,
        body: impl Into<Bytes>,
    ) -> Result<OwnedMessage, NotifyError> {
        self.expire(now);
        let state = match self.state {
            State::Active(until) => {
                let left = until.saturating_duration_since(now).as_secs();
                format!("active;expires={left}")
            }
            State::Ending(reason) => format!("terminated;reason={}", reason.as_str()),
            State::Idle | State::Terminated(_) => return Err(NotifyError::NotActive),
        };
        let Some(dialog) = &mut self.dialog else {
            return Err(NotifyError::NotActive);
        };
        let body = body.into();
        let mut n = dialog.request("NOTIFY", via)?;
        n.push_header("Contact", &format!("<{}>", self.config.contact))?;
        n.push_header("Event", &self.event)?;
        n.push_header("Subscription-State", &state)?;
        if !body.is_empty() {
            n.push_header("Content-Type", &self.config.content_type)?;
            self.sent_bodies = self.sent_bodies.wrapping_add(1);
        }
        n.set_body(body);
        self.full_state_due = false;
        self.last_notify = Some(now);
        if let State::Ending(reason) = self.state {
            self.state = State::Terminated(Some(reason));
            dialog.terminate();
        }
        Ok(n)
    }

    /// When [`Subscription::handle_timeout`] is due: the expiry of an
    /// active subscription.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Active(until) => Some(until),
            _ => None,
        }
    }

    /// The time came (or any later time): an active subscription past
    /// its expiry ends, `reason=timeout` (RFC 6665 §4.2.2).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire(now);
    }

    fn expire(&mut self, now: Instant) {
        if let State::Active(until) = self.state {
            if now >= until {
                self.state = State::Ending(Reason::Timeout);
            }
        }
    }

    /// The final status of a NOTIFY (a transaction timeout, Timer F, as
    /// 408: RFC 3261 §8.1.3.1). A 481 or 408 ends the subscription with
    /// no further NOTIFY (RFC 6665 §4.2.2), and its dialog (RFC 3261
    /// §12.2.1.2).
    pub fn handle_notify_response(&mut self, status: u16) -> NotifyOutcome {
        match status {
            100..=299 => NotifyOutcome::Delivered,
            481 | 408 => {
                if !self.is_terminated() {
                    self.state = State::Terminated(None);
                }
                if let Some(d) = &mut self.dialog {
                    d.terminate();
                }
                NotifyOutcome::Ended
            }
            _ => NotifyOutcome::Failed,
        }
    }

    /// Ends the subscription from our side: a last NOTIFY with `reason`
    /// is owed (RFC 6665 §4.2.2; RFC 4575 §3.3: `noresource` when the
    /// room is gone). Before any SUBSCRIBE, or when over, nothing is owed.
    pub fn terminate(&mut self, reason: Reason) {
        self.state = match self.state {
            State::Active(_) | State::Ending(_) => State::Ending(reason),
            State::Idle => State::Terminated(None),
            s @ State::Terminated(_) => s,
        };
    }
}

#[cfg(test)]
mod tests;
