//! SDP for MSRP sessions (RFC 4975 §8, RFC 3264 offer/answer, RFC 6135
//! connection roles, RFC 7701 §8 `a=chatroom`), on the `sdp-types` parser
//! and writer.
//!
//! [`parse`] reads a session description and types its MSRP media lines
//! ([`MsrpMedia`]: `m=message <port> TCP/MSRP *` or `TCP/TLS/MSRP`, with
//! `a=accept-types`, `a=accept-wrapped-types`, `a=path`, `a=max-size`,
//! `a=setup`, `a=chatroom`). [`answer`] makes the answer a chat-room focus
//! gives (RFC 3264 §6: one media line per offered one, the others
//! refused with port 0) and says what was agreed ([`Agreed`]: where the
//! peer receives, who opens the connection, what the peer takes);
//! [`offer`] makes an offer for the gateway joining a room elsewhere.
//!
//! ```
//! use cpimgate_msrp::sdp::{answer, parse, Local};
//!
//! // RFC 7701 §9.1 F1: Alice's offer to the chat room.
//! let offer = parse(b"v=0\r\no=alice 2890844526 2890844526 IN IP4 client.atlanta.example.com\r\n\
//! s=-\r\nc=IN IP4 client.atlanta.example.com\r\nm=message 7654 TCP/MSRP *\r\n\
//! a=accept-types:message/cpim text/plain text/html\r\n\
//! a=path:msrp://client.atlanta.example.com:7654/jshA7weztas;tcp\r\n\
//! a=chatroom:nickname private-messages\r\n").unwrap();
//! let local = Local::room("chat.example.com", 12763, "msrp://chat.example.com:12763/kjhd37s2s20w2a;tcp");
//! let (sdp, agreed) = answer(&offer, &local).unwrap();
//! assert_eq!(agreed.remote_path, ["msrp://client.atlanta.example.com:7654/jshA7weztas;tcp"]);
//! assert!(agreed.peer.accepts_private());
//! assert!(!agreed.we_connect);
//! let text = String::from_utf8(sdp).unwrap();
//! assert!(text.contains("m=message 12763 TCP/MSRP *\r\n"));
//! assert!(text.contains("a=accept-types:message/cpim\r\n"));
//! assert!(text.contains("a=chatroom:nickname private-messages\r\n"));
//! ```

use sdp_types::{Attribute, Connection, Media, Origin, Session};

/// Why a session description cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// Happens when the text is not SDP (RFC 8866 §9); the parser's
    /// reason names the line.
    #[error("not SDP: {0}")]
    Syntax(String),
    /// Happens when no media line is MSRP (`m=message ... TCP/MSRP *` or
    /// `TCP/TLS/MSRP`, RFC 4975 §8.1).
    #[error("no MSRP media line")]
    NoMsrp,
    /// Happens when the MSRP media line lacks `a=accept-types` or
    /// `a=path`, which RFC 4975 §8.1 requires.
    #[error("the MSRP media line has no a={0}")]
    Missing(&'static str),
    /// Happens when an attribute of the MSRP media line has a value that
    /// does not parse (a `max-size` that is not a number, an unknown
    /// `setup` role).
    #[error("a={attribute}: {why}")]
    Malformed {
        /// The attribute.
        attribute: &'static str,
        /// What is wrong.
        why: String,
    },
    /// Happens when the offer asks for TLS and the answerer has none, or
    /// the reverse (answered 488 Not Acceptable Here).
    #[error("the offer wants {wanted} and this side has only {have}")]
    Transport {
        /// The offered transport.
        wanted: &'static str,
        /// What this side has.
        have: &'static str,
    },
}

/// The connection role (RFC 4145 §4, RFC 6135).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// Opens the connection.
    Active,
    /// Waits for it.
    Passive,
    /// Either; the answerer decides.
    ActPass,
    /// Neither, for now.
    HoldConn,
}

impl Setup {
    fn parse(v: &str) -> Option<Setup> {
        match v.trim().to_ascii_lowercase().as_str() {
            "active" => Some(Setup::Active),
            "passive" => Some(Setup::Passive),
            "actpass" => Some(Setup::ActPass),
            "holdconn" => Some(Setup::HoldConn),
            _ => None,
        }
    }

    /// The token written in `a=setup`.
    pub fn as_str(self) -> &'static str {
        match self {
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::ActPass => "actpass",
            Setup::HoldConn => "holdconn",
        }
    }
}

/// An MSRP media line, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsrpMedia {
    /// Its index among the media lines.
    pub index: usize,
    /// The port of the m-line (informative for MSRP: the path says where).
    pub port: u16,
    /// Whether it is `TCP/TLS/MSRP`.
    pub secure: bool,
    /// The connection address of the media line or the session.
    pub connection: Option<String>,
    /// `a=accept-types` (RFC 4975 §8.1), in order.
    pub accept_types: Vec<String>,
    /// `a=accept-wrapped-types` (§8.6).
    pub accept_wrapped_types: Vec<String>,
    /// `a=path`: the MSRP URIs, the last one the endpoint's own (§8.2).
    pub path: Vec<String>,
    /// `a=max-size` in octets (§8.7).
    pub max_size: Option<u64>,
    /// `a=setup` (RFC 6135), when present.
    pub setup: Option<Setup>,
    /// `a=chatroom` tokens (RFC 7701 §8), when the attribute is present.
    pub chatroom: Option<Vec<String>>,
}

impl MsrpMedia {
    /// Whether it takes `content_type` at the top level (`*` and
    /// `type/*` match, RFC 4975 §8.6).
    pub fn accepts(&self, content_type: &str) -> bool {
        type_listed(&self.accept_types, content_type)
    }

    /// Whether it supports private messages (RFC 7701 §8:
    /// `private-messages`).
    pub fn accepts_private(&self) -> bool {
        self.chatroom
            .as_ref()
            .is_some_and(|t| t.iter().any(|t| t.eq_ignore_ascii_case("private-messages")))
    }

    /// Whether it supports nicknames: the ABNF's `nickname` token, or the
    /// `nicknames` of RFC 7701's prose, which some endpoints write.
    pub fn uses_nicknames(&self) -> bool {
        self.chatroom.as_ref().is_some_and(|t| {
            t.iter()
                .any(|t| t.eq_ignore_ascii_case("nickname") || t.eq_ignore_ascii_case("nicknames"))
        })
    }

    fn from_media(
        index: usize,
        m: &Media,
        session: &Session,
    ) -> Result<Option<MsrpMedia>, SdpError> {
        let secure = if m.proto.eq_ignore_ascii_case("TCP/MSRP") {
            false
        } else if m.proto.eq_ignore_ascii_case("TCP/TLS/MSRP") {
            true
        } else {
            return Ok(None);
        };
        // RFC 3264 §6: port 0 is a refused (or disabled) stream.
        if !m.media.eq_ignore_ascii_case("message") || m.port == 0 {
            return Ok(None);
        }
        let attr = |name: &str| {
            m.attributes
                .iter()
                .find(|a| a.attribute.eq_ignore_ascii_case(name))
                .map(|a| a.value.as_deref().unwrap_or_default())
        };
        let words = |v: &str| v.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        let accept_types = words(attr("accept-types").ok_or(SdpError::Missing("accept-types"))?);
        if accept_types.is_empty() {
            return Err(SdpError::Missing("accept-types"));
        }
        let path = words(attr("path").ok_or(SdpError::Missing("path"))?);
        if path.is_empty() {
            return Err(SdpError::Missing("path"));
        }
        let max_size = match attr("max-size") {
            Some(v) => Some(v.trim().parse::<u64>().map_err(|_| SdpError::Malformed {
                attribute: "max-size",
                why: format!("{v:?} is not a number of octets"),
            })?),
            None => None,
        };
        let setup = match attr("setup") {
            Some(v) => Some(Setup::parse(v).ok_or_else(|| SdpError::Malformed {
                attribute: "setup",
                why: format!("{v:?} is not active, passive, actpass or holdconn"),
            })?),
            None => None,
        };
        let connection = m
            .connections
            .first()
            .or(session.connection.as_ref())
            .map(|c| c.connection_address.clone());
        Ok(Some(MsrpMedia {
            index,
            port: m.port,
            secure,
            connection,
            accept_types,
            accept_wrapped_types: attr("accept-wrapped-types").map(words).unwrap_or_default(),
            path,
            max_size,
            setup,
            chatroom: attr("chatroom").map(words),
        }))
    }
}

/// Whether a type list (`a=accept-types`, `a=accept-wrapped-types`)
/// takes `content_type`: `*` and `type/*` match (RFC 4975 §8.6).
pub fn type_listed(list: &[String], content_type: &str) -> bool {
    let ct = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    list.iter().any(|t| {
        let t = t.to_ascii_lowercase();
        t == "*"
            || t == ct
            || t.strip_suffix("/*")
                .is_some_and(|m| ct.split('/').next() == Some(m))
    })
}

/// A parsed session description with its MSRP media lines typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Sdp {
    /// The whole description.
    pub session: Session,
    /// Its MSRP media lines, in order.
    pub msrp: Vec<MsrpMedia>,
}

/// Reads a session description; fails when it is not SDP or an MSRP
/// media line is incomplete. One without MSRP media parses (with an
/// empty [`Sdp::msrp`]): the caller answers it.
pub fn parse(bytes: &[u8]) -> Result<Sdp, SdpError> {
    let session = Session::parse(bytes).map_err(|e| SdpError::Syntax(e.to_string()))?;
    let mut msrp = Vec::new();
    for (i, m) in session.medias.iter().enumerate() {
        if let Some(t) = MsrpMedia::from_media(i, m, &session)? {
            msrp.push(t);
        }
    }
    Ok(Sdp { session, msrp })
}

/// This side of an MSRP session: what it writes in its offer or answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Local {
    /// The host for `o=` and `c=`.
    pub host: String,
    /// The port of the m-line (the listener of the path).
    pub port: u16,
    /// Whether the path is `msrps:` over TLS.
    pub secure: bool,
    /// This side's MSRP URI for the session (the `a=path`).
    pub path: String,
    /// What this side takes (`a=accept-types`).
    pub accept_types: Vec<String>,
    /// What it takes inside message/cpim (`a=accept-wrapped-types`).
    pub accept_wrapped_types: Vec<String>,
    /// `a=max-size`, when there is a limit.
    pub max_size: Option<u64>,
    /// `a=chatroom` tokens, when this side is or joins a chat room.
    pub chatroom: Option<Vec<String>>,
    /// The `o=` session id and version.
    pub session_id: u64,
}

impl Local {
    /// A chat-room focus at `host`: takes only message/cpim with any
    /// wrapped type, and offers nicknames and private messages (RFC 7701
    /// §9.1 F2).
    pub fn room(host: &str, port: u16, path: &str) -> Local {
        Local {
            host: host.to_owned(),
            port,
            secure: path.starts_with("msrps:"),
            path: path.to_owned(),
            accept_types: vec!["message/cpim".to_owned()],
            accept_wrapped_types: vec![
                "text/plain".to_owned(),
                "text/html".to_owned(),
                "*".to_owned(),
            ],
            max_size: None,
            chatroom: Some(vec!["nickname".to_owned(), "private-messages".to_owned()]),
            session_id: 2_890_844_527,
        }
    }

    fn media(&self) -> Media {
        let mut attributes = vec![Attribute {
            attribute: "accept-types".into(),
            value: Some(self.accept_types.join(" ")),
        }];
        if !self.accept_wrapped_types.is_empty() {
            attributes.push(Attribute {
                attribute: "accept-wrapped-types".into(),
                value: Some(self.accept_wrapped_types.join(" ")),
            });
        }
        if let Some(n) = self.max_size {
            attributes.push(Attribute {
                attribute: "max-size".into(),
                value: Some(n.to_string()),
            });
        }
        attributes.push(Attribute {
            attribute: "path".into(),
            value: Some(self.path.clone()),
        });
        if let Some(tokens) = &self.chatroom {
            attributes.push(Attribute {
                attribute: "chatroom".into(),
                value: (!tokens.is_empty()).then(|| tokens.join(" ")),
            });
        }
        Media {
            media: "message".into(),
            port: self.port,
            num_ports: None,
            proto: if self.secure {
                "TCP/TLS/MSRP"
            } else {
                "TCP/MSRP"
            }
            .into(),
            fmt: "*".into(),
            media_title: None,
            connections: Vec::new(),
            bandwidths: Vec::new(),
            key: None,
            attributes,
        }
    }

    fn session(&self, medias: Vec<Media>) -> Session {
        let addrtype = if self.host.contains(':') {
            sdp_types::AddrType::Ip6
        } else {
            sdp_types::AddrType::Ip4
        };
        Session {
            origin: Origin {
                username: None,
                sess_id: self.session_id.to_string(),
                sess_version: self.session_id,
                nettype: sdp_types::NetType::In,
                addrtype: addrtype.clone(),
                unicast_address: self.host.clone(),
            },
            session_name: "-".into(),
            session_description: None,
            uri: None,
            emails: Vec::new(),
            phones: Vec::new(),
            connection: Some(Connection {
                nettype: sdp_types::NetType::In,
                addrtype,
                connection_address: self.host.clone(),
            }),
            bandwidths: Vec::new(),
            times: vec![sdp_types::Time {
                start_time: 0,
                stop_time: 0,
                repeats: Vec::new(),
            }],
            time_zones: Vec::new(),
            key: None,
            attributes: Vec::new(),
            medias,
        }
    }
}

/// What an offer/answer exchange agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreed {
    /// The peer's MSRP media line.
    pub peer: MsrpMedia,
    /// Where the peer receives: its `a=path`, the last URI its own.
    pub remote_path: Vec<String>,
    /// Whether this side opens the connection (RFC 6135 §4.1; RFC 4975
    /// §5.4 without `a=setup`: the offerer does).
    pub we_connect: bool,
}

fn write(session: &Session) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = session.write(&mut out);
    out
}

/// The answer of `local` to `offer` (RFC 3264 §6): the first MSRP media
/// line is taken (its transport must be this side's), every other media
/// line is refused with port 0; `a=setup` answers the offer's role,
/// passive whenever the offer leaves the choice. The peer's capabilities
/// are in [`Agreed::peer`]; whether they suffice (a chat room wants
/// message/cpim) is the caller's policy.
pub fn answer(offer: &Sdp, local: &Local) -> Result<(Vec<u8>, Agreed), SdpError> {
    let peer = offer.msrp.first().ok_or(SdpError::NoMsrp)?.clone();
    if peer.secure != local.secure {
        let name = |s: bool| if s { "TCP/TLS/MSRP" } else { "TCP/MSRP" };
        return Err(SdpError::Transport {
            wanted: name(peer.secure),
            have: name(local.secure),
        });
    }
    let (our_setup, we_connect) = match peer.setup {
        None => (None, false),
        Some(Setup::Active | Setup::ActPass) => (Some(Setup::Passive), false),
        Some(Setup::Passive) => (Some(Setup::Active), true),
        Some(Setup::HoldConn) => (Some(Setup::HoldConn), false),
    };
    let medias = offer
        .session
        .medias
        .iter()
        .enumerate()
        .map(|(i, m)| {
            if i == peer.index {
                let mut ours = local.media();
                if let Some(s) = our_setup {
                    ours.attributes.push(Attribute {
                        attribute: "setup".into(),
                        value: Some(s.as_str().into()),
                    });
                }
                ours
            } else {
                // RFC 3264 §6: a refused stream keeps its line, port 0.
                Media {
                    port: 0,
                    num_ports: None,
                    media_title: None,
                    connections: Vec::new(),
                    bandwidths: Vec::new(),
                    key: None,
                    attributes: Vec::new(),
                    ..m.clone()
                }
            }
        })
        .collect();
    let sdp = write(&local.session(medias));
    Ok((
        sdp,
        Agreed {
            remote_path: peer.path.clone(),
            peer,
            we_connect,
        },
    ))
}

/// An offer of `local` (the gateway joining a chat room elsewhere):
/// `a=setup:actpass`, so that the answerer chooses (RFC 6135 §4.1).
pub fn offer(local: &Local) -> Vec<u8> {
    offer_as(local, Setup::ActPass)
}

/// An offer of `local` with the connection role `setup` (RFC 6135 §4.1:
/// `active` when this side opens the connection whatever the answer).
pub fn offer_as(local: &Local, setup: Setup) -> Vec<u8> {
    let mut m = local.media();
    m.attributes.push(Attribute {
        attribute: "setup".into(),
        value: Some(setup.as_str().into()),
    });
    write(&local.session(vec![m]))
}

/// What the answer to our offer agreed: the answerer's MSRP line, and
/// whether we connect (an answer of `passive` or none: yes, RFC 4975
/// §5.4 makes the offerer active).
pub fn agreed_by_answer(answer: &Sdp) -> Result<Agreed, SdpError> {
    let peer = answer.msrp.first().ok_or(SdpError::NoMsrp)?.clone();
    let we_connect = !matches!(peer.setup, Some(Setup::Active | Setup::HoldConn));
    Ok(Agreed {
        remote_path: peer.path.clone(),
        peer,
        we_connect,
    })
}

#[cfg(test)]
mod tests;
