//! Info/query on the component: service discovery (XEP-0030, with the MUC
//! features of XEP-0045 §6), ping (XEP-0199) and address translation
//! (`jabber:iq:gateway`, XEP-0100 §6.3). Every other request is answered
//! `service-unavailable` (RFC 6120 §8.4): a request is never left without
//! an answer.
//!
//! Address translation: `<prompt>` takes any address the model reads
//! (`sip:`, `sips:`, `im:`, `tel:`, `irc://`, or a bare `user@host`) and
//! gives its contact JID on the component:
//! `sip:alice@atlanta.example.com` →
//! `alice\40atlanta.example.com@gw.example.com`.

use std::collections::BTreeSet;

use cpimgate_model::Address;
use xmpp_parsers::disco::{DiscoInfoResult, DiscoItemsResult, Identity, Item};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::minidom::Element;
use xmpp_parsers::ns;
use xmpp_parsers::stanza_error::DefinedCondition;

use super::core::{Core, Directory, component_address};
use super::stanzas;

/// XEP-0100 §6.3: the address translation namespace.
const NS_GATEWAY: &str = "jabber:iq:gateway";

impl<D: Directory> Core<D> {
    pub(crate) fn on_iq(&mut self, iq: Iq) {
        let (from, to, id, payload) = match iq {
            Iq::Get {
                from: Some(f),
                to: Some(t),
                id,
                payload,
            } => (f, t, id, payload),
            Iq::Set {
                from: Some(f),
                to: Some(t),
                id,
                payload,
            } if t.node().is_none() && payload.is("query", NS_GATEWAY) => {
                self.on_gateway_set(f, t, id, &payload);
                return;
            }
            Iq::Set {
                from: Some(f),
                to: Some(t),
                id,
                ..
            } => {
                self.iq_error_to(
                    f,
                    t,
                    id,
                    DefinedCondition::ServiceUnavailable,
                    "no such service",
                );
                return;
            }
            _ => return,
        };
        if payload.is("ping", ns::PING) {
            self.on_ping(from, to, id);
        } else if payload.is("query", ns::DISCO_INFO) {
            self.on_disco_info(from, to, id);
        } else if payload.is("query", NS_GATEWAY) && to.node().is_none() {
            // XEP-0100 §6.3, example 42: what to ask the user for.
            let query = Element::builder("query", NS_GATEWAY)
                .append(
                    Element::builder("desc", NS_GATEWAY)
                        .append(
                            "Enter the address of the person you would like to contact: \
                             sip:, im:, tel:, irc:// or user@host.",
                        )
                        .build(),
                )
                .append(
                    Element::builder("prompt", NS_GATEWAY)
                        .append("Address")
                        .build(),
                )
                .build();
            self.transmit(stanzas::iq_result(to, from, id, Some(query)));
        } else if payload.is("query", ns::DISCO_ITEMS) {
            self.on_disco_items(from, to, id);
        } else {
            self.iq_error_to(
                from,
                to,
                id,
                DefinedCondition::ServiceUnavailable,
                "not supported",
            );
        }
    }

    /// XEP-0100 §6.3, examples 43 and 44: the JID for an address. XEP-0100
    /// names no error for an address that cannot be translated; RFC 6120
    /// §8.3.3 gives `bad-request` for a request without a `<prompt/>` and
    /// `not-acceptable` for one whose address the gateway cannot use.
    fn on_gateway_set(&mut self, from: Jid, to: Jid, id: String, payload: &Element) {
        let Some(prompt) = payload.get_child("prompt", NS_GATEWAY).map(Element::text) else {
            self.iq_error_to(from, to, id, DefinedCondition::BadRequest, "no <prompt/>");
            return;
        };
        match gateway_jid(prompt.trim(), &self.domain) {
            Some(jid) => {
                let query = Element::builder("query", NS_GATEWAY)
                    .append(Element::builder("jid", NS_GATEWAY).append(jid).build())
                    .build();
                self.transmit(stanzas::iq_result(to, from, id, Some(query)));
            }
            None => self.iq_error_to(
                from,
                to,
                id,
                DefinedCondition::NotAcceptable,
                "not an address this gateway can reach",
            ),
        }
    }

    /// XEP-0199 §4.2; and XEP-0410 §3: a ping to `room/nick` asks whether
    /// the sender is still that occupant.
    fn on_ping(&mut self, from: Jid, to: Jid, id: String) {
        let bare = to.to_bare();
        if to.resource().is_some() && to.node().is_some() && self.is_room(&bare) {
            let nick = to
                .resource()
                .map(|r| r.as_str().to_owned())
                .unwrap_or_default();
            if !self.is_occupant(&bare, &from, &nick) {
                self.iq_error_to(
                    from,
                    to,
                    id,
                    DefinedCondition::NotAcceptable,
                    "not an occupant",
                );
                return;
            }
        }
        self.transmit(stanzas::iq_result(to, from, id, None));
    }

    /// XEP-0030 §3.1, XEP-0045 §6.1 and §6.4.
    fn on_disco_info(&mut self, from: Jid, to: Jid, id: String) {
        let mut features: BTreeSet<String> = [ns::DISCO_INFO, ns::DISCO_ITEMS, ns::PING]
            .into_iter()
            .map(str::to_owned)
            .collect();
        let identities = if to.node().is_none() {
            // The service: a MUC service (§6.1) and a gateway (XEP-0100
            // §6.1), which translates addresses (§6.3). The registry's
            // gateway types name one legacy network each and have none
            // for a multi-protocol gateway; `simple` (SIP/SIMPLE) is the
            // one for the addresses the prompt expects first, and the
            // identity's name says what it is.
            features.insert(ns::MUC.to_owned());
            features.insert(NS_GATEWAY.to_owned());
            vec![
                Identity::new("conference", "text", "en", "cpimgate rooms"),
                Identity::new("gateway", "simple", "en", "cpimgate (SIP, XMPP, IRC)"),
            ]
        } else if to.resource().is_none() && self.is_room(&to.to_bare()) {
            // A room (§6.4): open, unmoderated, semi-anonymous, persistent.
            for f in [
                ns::MUC,
                "muc_open",
                "muc_public",
                "muc_persistent",
                "muc_semianonymous",
                "muc_unmoderated",
                "muc_unsecured",
                ns::SID,
            ] {
                features.insert(f.to_owned());
            }
            let name = to.node().map(|n| n.as_str().to_owned()).unwrap_or_default();
            vec![Identity::new("conference", "text", "en", name)]
        } else if to.resource().is_none() && component_address(&to, &self.domain).is_ok() {
            // A user of another world: a client behind the gateway.
            features.insert(ns::RECEIPTS.to_owned());
            vec![Identity::new("client", "pc", "en", "cpimgate user")]
        } else {
            self.iq_error_to(
                from,
                to,
                id,
                DefinedCondition::ItemNotFound,
                "no such entity",
            );
            return;
        };
        let result = DiscoInfoResult {
            node: None,
            identities,
            features,
            extensions: Vec::new(),
        };
        self.transmit(stanzas::iq_result(to, from, id, Some(result.into())));
    }

    /// XEP-0045 §6.3: the service lists its rooms; a room lists nobody
    /// (§6.5 allows an empty list).
    fn on_disco_items(&mut self, from: Jid, to: Jid, id: String) {
        let items = if to.node().is_none() {
            self.served_rooms()
                .into_iter()
                .map(|j: BareJid| Item {
                    name: j.node().map(|n| n.as_str().to_owned()),
                    jid: Jid::from(j),
                    node: None,
                })
                .collect()
        } else {
            Vec::new()
        };
        let result = DiscoItemsResult {
            node: None,
            items,
            rsm: None,
        };
        self.transmit(stanzas::iq_result(to, from, id, Some(result.into())));
    }
}

/// The contact JID for an address a user typed (XEP-0100 §6.3). A plain
/// SIP address of record `sip:user@host` is the same person as
/// `im:user@host` (DESIGN.md: the `im:` URI is the canonical identity), so
/// it gets the short JID `user\40host@domain`; any other address keeps its
/// scheme in the JID.
fn gateway_jid(prompt: &str, domain: &str) -> Option<String> {
    if prompt.is_empty() {
        return None;
    }
    let address: Address = if prompt.contains(':') {
        prompt.parse().ok()?
    } else {
        format!("im:{prompt}").parse().ok()?
    };
    let address = match &address {
        Address::Sip(u) => match u.user() {
            Some(user) if u.to_string() == format!("sip:{user}@{}", u.host()) => {
                format!("im:{user}@{}", u.host()).parse().unwrap_or(address)
            }
            _ => address,
        },
        _ => address,
    };
    address.to_component_jid(domain).ok().map(|j| j.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::gateway_jid;

    #[test]
    fn addresses_become_component_jids() {
        let gw = "gw.example.com";
        assert_eq!(
            gateway_jid("sip:alice@atlanta.example.com", gw).as_deref(),
            Some(r"alice\40atlanta.example.com@gw.example.com")
        );
        assert_eq!(
            gateway_jid("alice@atlanta.example.com", gw).as_deref(),
            Some(r"alice\40atlanta.example.com@gw.example.com")
        );
        assert_eq!(
            gateway_jid("im:alice@atlanta.example.com", gw).as_deref(),
            Some(r"alice\40atlanta.example.com@gw.example.com")
        );
        assert_eq!(
            gateway_jid("irc://irc.example.org/alice,isnick", gw).as_deref(),
            Some("alice%irc.example.org@gw.example.com")
        );
        assert!(gateway_jid("tel:+12125551212", gw).is_some());
        // A SIP address with more than user@host keeps its scheme.
        assert_eq!(
            gateway_jid("sip:bob@biloxi.com;transport=tcp", gw).as_deref(),
            Some(r"sip\3abob\40biloxi.com;transport=tcp@gw.example.com")
        );
        assert_eq!(gateway_jid("", gw), None);
        assert_eq!(gateway_jid("not an address", gw), None);
        assert_eq!(gateway_jid("sip:", gw), None);
    }
}
