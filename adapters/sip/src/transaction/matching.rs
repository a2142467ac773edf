//! Matching of responses to client transactions (RFC 3261 §17.1.3) and of
//! requests to server transactions (RFC 3261 §17.2.3).

use super::types::{MAGIC_COOKIE, Method, RequestSummary, ResponseSummary};

/// The key of a client transaction (§17.1.3): the top Via branch of the
/// request and its method. CANCEL shares the branch of the INVITE it
/// cancels; the method tells them apart.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey {
    pub branch: String,
    pub method: Method,
}

impl ClientKey {
    /// The key a response would match, if it has a branch at all.
    pub fn for_response(response: &ResponseSummary) -> Option<Self> {
        response.branch.as_ref().map(|branch| ClientKey {
            branch: branch.clone(),
            method: response.cseq_method.clone(),
        })
    }
}

/// The key of a server transaction (§17.2.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ServerKey {
    /// The branch starts with the magic cookie: branch, sent-by and method,
    /// ACK counting as INVITE.
    Rfc3261 {
        branch: String,
        sent_by: String,
        method: Method,
    },
    /// RFC 2543 peers: Request-URI, To tag, From tag, Call-ID, CSeq, top
    /// Via and method (ACK counting as INVITE). For INVITE and ACK the To
    /// tag is left out of the key and checked apart, since the one an ACK
    /// carries is that of the response (§17.2.3).
    Rfc2543 {
        request_uri: String,
        to_tag: Option<String>,
        from_tag: Option<String>,
        call_id: String,
        cseq: u32,
        top_via: String,
        method: Method,
    },
}

impl ServerKey {
    /// The key of the transaction `request` belongs to, with its method
    /// taken as `method`.
    pub fn with_method(request: &RequestSummary, method: Method) -> Self {
        let method = if method == Method::Ack {
            Method::Invite
        } else {
            method
        };
        match &request.branch {
            Some(branch) if branch.starts_with(MAGIC_COOKIE) => ServerKey::Rfc3261 {
                branch: branch.clone(),
                // sent-by is host and port: both compare case-insensitively
                // (RFC 3261 §20.42, §19.1.4 for hosts).
                sent_by: request.sent_by.to_ascii_lowercase(),
                method,
            },
            _ => ServerKey::Rfc2543 {
                request_uri: request.request_uri.clone(),
                to_tag: if method == Method::Invite {
                    None
                } else {
                    request.to_tag.clone()
                },
                from_tag: request.from_tag.clone(),
                call_id: request.call_id.clone(),
                cseq: request.cseq,
                top_via: request.top_via.clone(),
                method,
            },
        }
    }

    /// The key of the transaction `request` belongs to.
    pub fn for_request(request: &RequestSummary) -> Self {
        Self::with_method(request, request.method.clone())
    }

    /// Whether the key leaves the To tag to be checked apart: an RFC 2543
    /// INVITE transaction.
    pub fn to_tag_apart(&self) -> bool {
        matches!(
            self,
            ServerKey::Rfc2543 {
                method: Method::Invite,
                ..
            }
        )
    }
}
