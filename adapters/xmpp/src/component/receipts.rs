//! XEP-0184 receipts on the component's own 1:1 deliveries.
//!
//! A message of another world delivered to an XMPP user carries
//! `<request xmlns='urn:xmpp:receipts'/>` (§5.1) and the model id as stanza
//! id; its outcome waits in the core. The `<received id=.../>` from the
//! recipient (any resource of the bare JID it was sent to: nobody else can
//! answer for it) makes it *delivered*; an error stanza with that id makes
//! it *failed* ([`failure_of`]); neither within `receipt_wait` makes it
//! *accepted* — the server has it and receipts are optional (§8).
//!
//! The core does not wait: it keeps the deadline, the driver calls
//! [`Core::handle_timeout`] at [`Core::poll_timeout`].

use std::time::Instant;

use cpimgate_model::port::{DeliveryOutcome, Failure, FailureKind};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::Message as XMessage;
use xmpp_parsers::ns;
use xmpp_parsers::receipts::Received;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use super::core::{AwaitingReceipt, Core, Directory, Output};

impl<D: Directory> Core<D> {
    pub(crate) fn answer(&mut self, token: u64, outcome: DeliveryOutcome) {
        self.out.push_back(Output::Answer { token, outcome });
    }

    fn take_receipt(&mut self, id: &str, from: &Jid) -> Option<AwaitingReceipt> {
        let r = self.receipts.get(id)?;
        // Only the recipient answers for it (any of its resources).
        if r.user != from.to_bare() {
            return None;
        }
        self.receipt_order.retain(|i| i != id);
        self.receipts.remove(id)
    }

    /// XEP-0184 §5.1: a receipt for a delivery that waits for one.
    pub(crate) fn on_receipt(&mut self, m: &XMessage, from: &Jid) {
        let Some(r) = m
            .payloads
            .iter()
            .find(|p| p.is("received", ns::RECEIPTS))
            .and_then(|p| Received::try_from(p.clone()).ok())
        else {
            return;
        };
        if let Some(w) = self.take_receipt(&r.id, from) {
            self.answer(w.token, DeliveryOutcome::Delivered);
        }
    }

    /// An error stanza for a delivery that waits for its receipt (RFC 6120
    /// §8.3: it carries the id of the stanza it answers). Whether it was one.
    pub(crate) fn on_delivery_error(&mut self, m: &XMessage, from: &Jid) -> bool {
        let Some(id) = m.id.as_ref().map(|i| i.0.clone()) else {
            return false;
        };
        let Some(w) = self.take_receipt(&id, from) else {
            return false;
        };
        let error = m
            .payloads
            .iter()
            .find(|p| p.name() == "error")
            .and_then(|p| StanzaError::try_from(p.clone()).ok());
        let failure = match error {
            Some(e) => failure_of(&e),
            None => Failure::new(FailureKind::Rejected, "an error stanza without <error/>"),
        };
        self.answer(w.token, DeliveryOutcome::Failed(failure));
        true
    }

    /// When [`Core::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.receipt_order
            .front()
            .and_then(|id| self.receipts.get(id))
            .map(|r| r.deadline)
    }

    /// Time passed: deliveries whose receipt did not come in time are
    /// answered *accepted* (the server has them; XEP-0184 §5.1 receipts are
    /// not guaranteed).
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(id) = self.receipt_order.front().cloned() {
            match self.receipts.get(&id) {
                Some(r) if r.deadline > now => break,
                Some(_) => {
                    self.receipt_order.pop_front();
                    if let Some(r) = self.receipts.remove(&id) {
                        self.answer(r.token, DeliveryOutcome::Accepted);
                    }
                }
                None => {
                    self.receipt_order.pop_front();
                }
            }
        }
    }
}

/// The delivery failure an error stanza from the recipient's side stands
/// for (RFC 6120 §8.3.3; RFC 6121 §8.5.2: `service-unavailable` is what a
/// server answers for an account that does not exist).
pub(crate) fn failure_of(e: &StanzaError) -> Failure {
    let text = e
        .texts
        .values()
        .next()
        .cloned()
        .unwrap_or_else(|| format!("{:?}", e.defined_condition));
    let kind = match e.defined_condition {
        DefinedCondition::ItemNotFound
        | DefinedCondition::ServiceUnavailable
        | DefinedCondition::Gone { .. }
        | DefinedCondition::JidMalformed => FailureKind::NotFound,
        DefinedCondition::Forbidden
        | DefinedCondition::NotAuthorized
        | DefinedCondition::NotAllowed
        | DefinedCondition::RegistrationRequired
        | DefinedCondition::SubscriptionRequired => FailureKind::Forbidden,
        DefinedCondition::RecipientUnavailable | DefinedCondition::RemoteServerNotFound => {
            FailureKind::Unreachable
        }
        DefinedCondition::RemoteServerTimeout => FailureKind::Timeout,
        DefinedCondition::ResourceConstraint => FailureKind::Overloaded,
        DefinedCondition::PolicyViolation
        | DefinedCondition::NotAcceptable
        | DefinedCondition::BadRequest
        | DefinedCondition::FeatureNotImplemented => FailureKind::Rejected,
        // Anything else: by the error type (RFC 6120 §8.3.2: `wait` means
        // retry later).
        _ if e.type_ == ErrorType::Wait => FailureKind::Unreachable,
        _ => FailureKind::Rejected,
    };
    Failure::new(kind, text)
}
