//! `cpimgate inspect`: parse one raw protocol message and say, as JSON,
//! what the gateway understood — or exactly what is wrong and where.
//!
//! Exit codes of the command: 0 understood, 2 malformed, 64 for a kind this
//! build cannot parse yet. MSRP and SDP plug in here as their adapters
//! land, with the same codes.

use std::fmt;
use std::str::FromStr;

use cpimgate_model::cpim::{Cpim, Limits};
use cpimgate_model::{Message, NameAddr, Origin, World};
use serde_json::json;

/// What the input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InspectAs {
    /// A `message/cpim` body (RFC 3862).
    Cpim,
    /// Addresses, one per line (URI or name-addr).
    Address,
    /// A SIP request or response.
    Sip,
    /// An MSRP request or response.
    Msrp,
    /// An SDP body.
    Sdp,
}

impl InspectAs {
    /// Guess the kind from the first bytes.
    pub fn guess(input: &[u8]) -> InspectAs {
        let start = input.trim_ascii_start();
        if start.starts_with(b"MSRP ") {
            InspectAs::Msrp
        } else if start.starts_with(b"v=0") {
            InspectAs::Sdp
        } else if start.starts_with(b"SIP/2.0 ") || first_line(start).ends_with(b" SIP/2.0") {
            InspectAs::Sip
        } else {
            InspectAs::Cpim
        }
    }
}

fn first_line(b: &[u8]) -> &[u8] {
    let end = b
        .iter()
        .position(|&c| c == b'\r' || c == b'\n')
        .unwrap_or(b.len());
    &b[..end]
}

impl fmt::Display for InspectAs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InspectAs::Cpim => "cpim",
            InspectAs::Address => "address",
            InspectAs::Sip => "sip",
            InspectAs::Msrp => "msrp",
            InspectAs::Sdp => "sdp",
        })
    }
}

impl FromStr for InspectAs {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "cpim" => Ok(InspectAs::Cpim),
            "address" => Ok(InspectAs::Address),
            "sip" => Ok(InspectAs::Sip),
            "msrp" => Ok(InspectAs::Msrp),
            "sdp" => Ok(InspectAs::Sdp),
            _ => Err("expected one of cpim, address, sip, msrp, sdp".to_owned()),
        }
    }
}

/// Why inspection did not produce a model.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// Happens when the input is not a valid message of its kind; the
    /// reason names what and where (byte offset).
    #[error("{0}")]
    Malformed(String),
    /// Happens when this build has no parser for the kind.
    #[error("{0}")]
    Unsupported(String),
}

/// Parse `input` as `kind` within `limits`; return pretty JSON.
pub fn inspect(kind: InspectAs, input: &[u8], limits: &Limits) -> Result<String, InspectError> {
    let value = match kind {
        InspectAs::Cpim => inspect_cpim(input, limits)?,
        InspectAs::Address => inspect_addresses(input)?,
        InspectAs::Sip => inspect_sip(input)?,
        InspectAs::Sdp => inspect_sdp(input)?,
        InspectAs::Msrp => inspect_msrp(input)?,
    };
    serde_json::to_string_pretty(&value).map_err(|e| InspectError::Malformed(e.to_string()))
}

/// An MSRP message (RFC 4975 §7, RFC 7701 §7.1): start line, transaction
/// id, every header, the typed paths, Byte-Range, Status, Content-Type,
/// Use-Nickname, the body length and the end-line flag; a request must
/// also pass the checks of its method. A failure names the byte and the
/// status a receiver answers.
fn inspect_msrp(input: &[u8]) -> Result<serde_json::Value, InspectError> {
    use cpimgate_msrp::codec::{self, Continuation, MsrpUri, ParseError, StartLine};

    let malformed = |e: ParseError| {
        InspectError::Malformed(format!("{e}; a receiver answers {}", e.response_code()))
    };
    let m = codec::parse(input).map_err(malformed)?;
    m.validate().map_err(malformed)?;
    let start = match m.start_line() {
        StartLine::Request { method } => json!({ "type": "request", "method": method }),
        StartLine::Response { code, comment } => {
            json!({ "type": "response", "code": code, "comment": comment })
        }
    };
    let path = |p: Option<Vec<MsrpUri<'_>>>| {
        p.map(|p| {
            p.iter()
                .map(|u| {
                    json!({
                        "uri": u.as_str(),
                        "tls": u.is_tls(),
                        "host": u.host(),
                        "port": u.port(),
                        "session_id": u.session_id(),
                        "transport": u.transport(),
                    })
                })
                .collect::<Vec<_>>()
        })
    };
    let headers: Vec<_> = m
        .headers()
        .iter()
        .map(|h| json!({ "name": h.name(), "value": h.value() }))
        .collect();
    let byte_range = m
        .byte_range()
        .map_err(malformed)?
        .map(|r| json!({ "start": r.start, "end": r.end, "total": r.total }));
    let status = m
        .status()
        .map_err(malformed)?
        .map(|s| json!({ "namespace": s.namespace, "code": s.code, "comment": s.comment }));
    let content_type = m
        .content_type()
        .map_err(malformed)?
        .map(|c| format!("{}/{}", c.media_type(), c.subtype()));
    Ok(json!({
        "kind": "msrp",
        "transaction_id": m.transaction_id(),
        "start": start,
        "headers": headers,
        "to_path": path(m.to_path().map_err(malformed)?),
        "from_path": path(m.from_path().map_err(malformed)?),
        "message_id": m.message_id().map_err(malformed)?,
        "byte_range": byte_range,
        "status": status,
        "content_type": content_type,
        "use_nickname": m.use_nickname().map_err(malformed)?,
        "body_length": m.body_len(),
        "end": match m.continuation() {
            Continuation::Complete => "$",
            Continuation::More => "+",
            Continuation::Aborted => "#",
        },
    }))
}

/// A session description (RFC 8866) with its MSRP media lines typed
/// (RFC 4975 §8, RFC 6135, RFC 7701 §8); a line that fails names why.
fn inspect_sdp(input: &[u8]) -> Result<serde_json::Value, InspectError> {
    let sdp =
        cpimgate_msrp::sdp::parse(input).map_err(|e| InspectError::Malformed(e.to_string()))?;
    let s = &sdp.session;
    let media: Vec<_> = s
        .medias
        .iter()
        .map(|m| {
            json!({
                "media": m.media,
                "port": m.port,
                "proto": m.proto,
                "fmt": m.fmt,
                "attributes": m.attributes.iter().map(|a| json!({ "name": a.attribute, "value": a.value })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let msrp: Vec<_> = sdp
        .msrp
        .iter()
        .map(|m| {
            json!({
                "media_index": m.index,
                "port": m.port,
                "tls": m.secure,
                "connection": m.connection,
                "accept_types": m.accept_types,
                "accept_wrapped_types": m.accept_wrapped_types,
                "path": m.path,
                "max_size": m.max_size,
                "setup": m.setup.map(|s| s.as_str()),
                "chatroom": m.chatroom,
                "private_messages": m.accepts_private(),
                "nicknames": m.uses_nicknames(),
            })
        })
        .collect();
    Ok(json!({
        "kind": "sdp",
        "origin": {
            "username": s.origin.username,
            "session_id": s.origin.sess_id,
            "version": s.origin.sess_version,
            "address": s.origin.unicast_address,
        },
        "session_name": s.session_name,
        "connection": s.connection.as_ref().map(|c| c.connection_address.clone()),
        "media": media,
        "msrp": msrp,
    }))
}

fn inspect_cpim(input: &[u8], limits: &Limits) -> Result<serde_json::Value, InspectError> {
    let parsed = Cpim::parse(bytes::Bytes::copy_from_slice(input), limits)
        .map_err(|e| InspectError::Malformed(e.to_string()))?;
    let origin = Origin {
        world: World::Local,
        adapter: "inspect".to_owned(),
        native_id: None,
    };
    // Some valid CPIM (the header examples of RFC 3862 §3) is not a whole
    // instant message: say so beside the parse instead of failing.
    Ok(match Message::from_parsed_cpim(&parsed, origin) {
        Ok(model) => json!({ "kind": "cpim", "cpim": parsed, "message": model }),
        Err(e) => json!({
            "kind": "cpim",
            "cpim": parsed,
            "message": null,
            "not_a_message": e.to_string(),
        }),
    })
}

/// A SIP message as one datagram (RFC 3261 §18.3): its start line, every
/// header under its canonical name, the typed Via, From, To and CSeq, and
/// the body length. A request must also pass the UAS check of RFC 3261
/// §8.1.1; any failure names the byte and the status a UAS would answer.
fn inspect_sip(input: &[u8]) -> Result<serde_json::Value, InspectError> {
    use cpimgate_sip::codec::{self, NameAddrRef, ParseError, StartLine};

    let malformed = |e: ParseError| {
        let status = e.response_status();
        InspectError::Malformed(format!(
            "{e}; a UAS answers {} {}",
            status.code, status.reason
        ))
    };
    let m = codec::parse(input).map_err(malformed)?;
    m.validate_request().map_err(malformed)?;
    let start = match m.start_line() {
        StartLine::Request { method, uri } => {
            json!({ "type": "request", "method": method, "uri": uri })
        }
        StartLine::Response { code, reason } => {
            json!({ "type": "response", "code": code, "reason": reason })
        }
    };
    let headers: Vec<_> = m
        .headers()
        .iter()
        .map(|h| json!({ "name": h.canonical_name(), "as_written": h.name(), "value": h.value() }))
        .collect();
    let via = m
        .via()
        .map(|v| {
            v.map(|v| {
                json!({
                    "protocol": format!("{}/{}", v.protocol(), v.version()),
                    "transport": v.transport(),
                    "host": v.host(),
                    "port": v.port(),
                    "branch": v.branch(),
                    "received": v.received(),
                    "rport": v.params().get("rport").map(|p| p.unwrap_or("")),
                })
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(malformed)?;
    let addr = |a: Option<NameAddrRef<'_>>| {
        a.map(|a| {
            json!({
                "display": a.display(),
                "uri": a.uri(),
                "tag": a.tag(),
                "address": a.address().ok(),
            })
        })
    };
    let from = addr(m.from().map_err(malformed)?);
    let to = addr(m.to().map_err(malformed)?);
    let cseq = m
        .cseq()
        .map_err(malformed)?
        .map(|c| json!({ "seq": c.seq, "method": c.method }));
    let call_id = m.call_id().map_err(malformed)?;
    Ok(json!({
        "kind": "sip",
        "start": start,
        "headers": headers,
        "via": via,
        "from": from,
        "to": to,
        "call_id": call_id,
        "cseq": cseq,
        "body_length": m.body().len(),
    }))
}

fn inspect_addresses(input: &[u8]) -> Result<serde_json::Value, InspectError> {
    let text = std::str::from_utf8(input)
        .map_err(|e| InspectError::Malformed(format!("not UTF-8 at byte {}", e.valid_up_to())))?;
    let mut out = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if !trimmed.is_empty() {
            let lead = line.len() - line.trim_start().len();
            let parsed: NameAddr = trimmed.parse().map_err(|e| {
                InspectError::Malformed(format!("line at byte {}: {e}", offset + lead))
            })?;
            let kind = parsed.address.scheme();
            out.push(json!({
                "input": trimmed,
                "kind": kind,
                "display": parsed.display,
                "address": parsed.address.to_string(),
                "parts": parsed.address,
            }));
        }
        offset += line.len();
    }
    if out.is_empty() {
        return Err(InspectError::Malformed(
            "no address in the input".to_owned(),
        ));
    }
    Ok(json!({ "kind": "address", "addresses": out }))
}
