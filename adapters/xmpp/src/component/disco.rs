//! Info/query on the component: service discovery (XEP-0030, with the MUC
//! features of XEP-0045 §6) and ping (XEP-0199). Every other request is
//! answered `service-unavailable` (RFC 6120 §8.4): a request is never left
//! without an answer.

use std::collections::BTreeSet;

use xmpp_parsers::disco::{DiscoInfoResult, DiscoItemsResult, Identity, Item};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::ns;
use xmpp_parsers::stanza_error::DefinedCondition;

use super::core::{Core, Directory, component_address};
use super::stanzas;

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
            // The service: a MUC service (§6.1) and a gateway (XEP-0100).
            features.insert(ns::MUC.to_owned());
            vec![
                Identity::new("conference", "text", "en", "cpimgate rooms"),
                Identity::new("gateway", "cpim", "en", "cpimgate"),
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
