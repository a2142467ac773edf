//! The selection logic of RFC 3263 §4, sans-IO: queries out, answers in,
//! ordered targets at the end. See the [module docs](super) for the rules.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use cpimgate_model::address::{Host, SipUri};

use super::{ResolveError, Target};
use crate::transport::TransportKind;

/// A DNS question of a [`Resolution`]. Names are absolute (end with a
/// dot), so that no search list applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Query {
    /// NAPTR records of a domain (RFC 3403).
    Naptr(String),
    /// SRV records of a service name (RFC 2782).
    Srv(String),
    /// A and AAAA records of a host.
    Addresses(String),
}

/// The records answering a [`Query`]; empty when the name does not exist
/// (NXDOMAIN) or has no record of that type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Answers [`Query::Naptr`].
    Naptr(Vec<NaptrRecord>),
    /// Answers [`Query::Srv`].
    Srv(Vec<SrvRecord>),
    /// Answers [`Query::Addresses`].
    Addresses(Vec<IpAddr>),
}

/// A NAPTR record (RFC 3403 §4.1), its fields as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NaptrRecord {
    /// ORDER: lower first.
    pub order: u16,
    /// PREFERENCE: lower first among records of one order.
    pub preference: u16,
    /// FLAGS (`s`: the replacement is an SRV name).
    pub flags: String,
    /// SERVICES (`SIP+D2U`, `SIP+D2T`, `SIPS+D2T`...).
    pub services: String,
    /// REPLACEMENT, a domain name.
    pub replacement: String,
}

/// An SRV record (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    /// Lower first.
    pub priority: u16,
    /// Relative weight among records of one priority.
    pub weight: u16,
    /// The port.
    pub port: u16,
    /// The host; `.` means the service is not available at this domain.
    pub target: String,
}

/// One RFC 3263 resolution of a URI.
///
/// Call order: [`Resolution::new`]; then, until
/// [`poll_query`](Self::poll_query) gives nothing and every query it gave
/// is answered, ask the queries and [`handle_answer`](Self::handle_answer)
/// each (those given together can be asked at once); then
/// [`finish`](Self::finish). A URI with a numeric IP address asks nothing.
#[derive(Debug, Clone)]
pub struct Resolution {
    uri: String,
    /// The host of the URI, in lower case, without a final dot.
    domain: String,
    secure: bool,
    /// The transports the element can use, preferred first.
    transports: Vec<TransportKind>,
    stage: Stage,
    to_ask: VecDeque<Query>,
    asked: HashSet<Query>,
    /// Lookups that failed (not: found nothing), for the error.
    failures: Vec<String>,
}

#[derive(Debug, Clone)]
enum Stage {
    /// A numeric IP address: nothing to ask.
    Literal(Target),
    /// §4.1: waiting for the NAPTR records of the domain.
    Naptr,
    /// §4.2: waiting for the SRV records of these names.
    Srv {
        names: Vec<(String, TransportKind)>,
        found: HashMap<String, Vec<SrvRecord>>,
        /// The transport for A/AAAA at the default port when no SRV
        /// record is found ("the transport protocol determined
        /// previously").
        fallback: TransportKind,
    },
    /// Waiting for the addresses of the hosts of the plan.
    Addresses {
        plan: Vec<Planned>,
        found: HashMap<String, Vec<IpAddr>>,
    },
}

/// What the targets come from, in order.
#[derive(Debug, Clone)]
enum Planned {
    /// One SRV set (RFC 2782 ordering at the end).
    Srv {
        transport: TransportKind,
        records: Vec<SrvRecord>,
    },
    /// The addresses of a host at a port.
    Host {
        transport: TransportKind,
        name: String,
        port: u16,
    },
}

/// `name` ending with a dot.
fn absolute(name: &str) -> String {
    if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    }
}

/// The SRV service name of a transport (RFC 3263 §4.2: `_sips` for TLS,
/// `_sip` otherwise; RFC 3261 §26.2.2: SIPS goes over TLS on TCP).
fn srv_prefix(transport: TransportKind) -> &'static str {
    match transport {
        TransportKind::Udp => "_sip._udp",
        TransportKind::Tcp => "_sip._tcp",
        TransportKind::Tls => "_sips._tcp",
    }
}

/// The transport a NAPTR service field names (RFC 3263 §4.1, the IANA
/// registry of §9): `SIP+D2U` UDP, `SIP+D2T` TCP, `SIPS+D2T` TLS over
/// TCP. SCTP (`D2S`), WebSocket (`D2W`, RFC 7118) and any other: `None`.
fn naptr_transport(services: &str) -> Option<TransportKind> {
    if services.eq_ignore_ascii_case("SIP+D2U") {
        Some(TransportKind::Udp)
    } else if services.eq_ignore_ascii_case("SIP+D2T") {
        Some(TransportKind::Tcp)
    } else if services.eq_ignore_ascii_case("SIPS+D2T") {
        Some(TransportKind::Tls)
    } else {
        None
    }
}

impl Resolution {
    /// Starts resolving `uri` for an element that can use `transports`
    /// (preferred first: the order of SRV queries without NAPTR records
    /// and the tie-break between NAPTR records of equal order and
    /// preference).
    ///
    /// Fails at once when the URI's transport is not supported or not
    /// among `transports`.
    pub fn new(uri: &SipUri, transports: &[TransportKind]) -> Result<Resolution, ResolveError> {
        let secure = uri.is_secure();
        let uri_text = uri.to_string();
        let unavailable = |transport| ResolveError::TransportUnavailable {
            uri: uri_text.clone(),
            transport,
        };
        // RFC 3263 §4.1: "If the URI specifies a transport protocol in the
        // transport parameter, that transport protocol SHOULD be used."
        // For a SIPS URI that is TLS over it (RFC 3261 §26.2.2).
        let explicit = match uri.param("transport").flatten() {
            None => None,
            Some(t) if t.eq_ignore_ascii_case("tcp") || t.eq_ignore_ascii_case("tls") => {
                Some(if secure || t.eq_ignore_ascii_case("tls") {
                    TransportKind::Tls
                } else {
                    TransportKind::Tcp
                })
            }
            Some(t) if t.eq_ignore_ascii_case("udp") && !secure => Some(TransportKind::Udp),
            Some(t) => {
                return Err(ResolveError::UnsupportedTransport {
                    uri: uri_text,
                    transport: t.to_owned(),
                });
            }
        };
        if let Some(t) = explicit {
            if !transports.contains(&t) {
                return Err(unavailable(t));
            }
        }
        // §4.1: without a transport, "if the TARGET is a numeric IP address
        // [or] an explicit port is provided, the client SHOULD use UDP for
        // a SIP URI, and TCP for a SIPS URI" (TLS over TCP). "Another
        // transport, such as TCP, MAY be used": TCP when there is no UDP.
        let default = || {
            if secure {
                TransportKind::Tls
            } else if transports.contains(&TransportKind::Udp) {
                TransportKind::Udp
            } else {
                TransportKind::Tcp
            }
        };
        let (domain, literal) = match uri.host() {
            Host::Ipv4(v4) => (v4.to_string(), Some(IpAddr::V4(*v4))),
            Host::Ipv6(v6) => (v6.to_string(), Some(IpAddr::V6(*v6))),
            // RFC 6761 §6.3: localhost is the loopback address, without
            // asking DNS.
            Host::Domain(d) if d.trim_end_matches('.').eq_ignore_ascii_case("localhost") => (
                "localhost".to_owned(),
                Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            ),
            // DNS names compare without case (RFC 4343): one spelling.
            Host::Domain(d) => (d.trim_end_matches('.').to_ascii_lowercase(), None),
        };
        let mut r = Resolution {
            uri: uri_text.clone(),
            domain,
            secure,
            transports: transports.to_vec(),
            stage: Stage::Naptr,
            to_ask: VecDeque::new(),
            asked: HashSet::new(),
            failures: Vec::new(),
        };
        let chosen = explicit.unwrap_or_else(default);
        if chosen == TransportKind::Tls && !transports.contains(&TransportKind::Tls) {
            return Err(unavailable(TransportKind::Tls));
        }
        // §4.2: "If TARGET is a numeric IP address, the client uses that
        // address. If the URI also contains a port, it uses that port. If
        // no port is specified, it uses the default port for the
        // particular transport protocol."
        if let Some(ip) = literal {
            let port = uri.port().unwrap_or(chosen.default_port());
            let tls_name = (r.domain == "localhost").then(|| r.domain.clone());
            r.stage = Stage::Literal(Target {
                transport: chosen,
                addr: SocketAddr::new(ip, port),
                tls_name,
            });
            return Ok(r);
        }
        // §4.2: "If the TARGET was not a numeric IP address, but a port is
        // present in the URI, the client performs an A or AAAA record
        // lookup of the domain name."
        if let Some(port) = uri.port() {
            let name = absolute(&r.domain);
            r.go_addresses(vec![Planned::Host {
                transport: chosen,
                name,
                port,
            }]);
            return Ok(r);
        }
        // §4.2: "If it was not [NAPTR processing], because a transport was
        // specified explicitly, the client performs an SRV query for that
        // specific transport, using the service identifier "_sips" for
        // SIPS URIs."
        if let Some(t) = explicit {
            let name = format!("{}.{}", srv_prefix(t), absolute(&r.domain));
            r.go_srv(vec![(name, t)], t);
            return Ok(r);
        }
        // §4.1: "if no transport protocol or port is specified, and the
        // target is not a numeric IP address, the client SHOULD perform a
        // NAPTR query for the domain in the URI."
        r.to_ask.push_back(Query::Naptr(absolute(&r.domain)));
        Ok(r)
    }

    /// The next DNS question to ask, if any. Each is given once; every
    /// one given must be answered with [`handle_answer`](Self::handle_answer)
    /// before the resolution goes on to its next step.
    pub fn poll_query(&mut self) -> Option<Query> {
        let q = self.to_ask.pop_front()?;
        self.asked.insert(q.clone());
        Some(q)
    }

    /// Whether nothing is left to ask or wait for:
    /// [`finish`](Self::finish) may be called.
    pub fn is_finished(&self) -> bool {
        self.to_ask.is_empty() && self.asked.is_empty()
    }

    /// The answer to `query`: its records (empty when the name or the
    /// records do not exist), or why the lookup failed. An answer to a
    /// query that was not asked is ignored.
    pub fn handle_answer(&mut self, query: &Query, answer: Result<Answer, String>) {
        if !self.asked.remove(query) {
            return;
        }
        let answer = match answer {
            Ok(a) => Some(a),
            Err(why) => {
                self.failures.push(format!("{}: {why}", query_label(query)));
                None
            }
        };
        match (&mut self.stage, query, answer) {
            (Stage::Naptr, Query::Naptr(_), answer) => {
                let records = match answer {
                    Some(Answer::Naptr(r)) => r,
                    _ => Vec::new(),
                };
                self.after_naptr(&records);
            }
            (Stage::Srv { found, .. }, Query::Srv(name), answer) => {
                if let Some(Answer::Srv(records)) = answer {
                    found.insert(name.clone(), records);
                }
                if self.asked.is_empty() && self.to_ask.is_empty() {
                    self.after_srv();
                }
            }
            (
                Stage::Addresses { found, .. },
                Query::Addresses(name),
                Some(Answer::Addresses(addrs)),
            ) => {
                found.insert(name.clone(), addrs);
            }
            _ => {}
        }
    }

    /// The targets, in the order to try them; `pick(total)` gives a
    /// uniform random number in `0..=total` for the weighted choice of
    /// RFC 2782 (injected so that tests are deterministic).
    ///
    /// Fails when no target was found: [`ResolveError::Lookup`] when a
    /// lookup failed, [`ResolveError::NoRecords`] when DNS answered that
    /// there is nothing.
    pub fn finish(self, pick: &mut dyn FnMut(u32) -> u32) -> Result<Vec<Target>, ResolveError> {
        let mut targets = Vec::new();
        match self.stage {
            Stage::Literal(t) => return Ok(vec![t]),
            Stage::Addresses { plan, found } => {
                let tls_name = Some(self.domain.clone());
                let mut push = |transport, ip: &IpAddr, port| {
                    let t = Target {
                        transport,
                        addr: SocketAddr::new(*ip, port),
                        tls_name: tls_name.clone(),
                    };
                    if !targets.contains(&t) {
                        targets.push(t);
                    }
                };
                for p in plan {
                    match p {
                        Planned::Host {
                            transport,
                            name,
                            port,
                        } => {
                            for ip in found.get(&name).into_iter().flatten() {
                                push(transport, ip, port);
                            }
                        }
                        Planned::Srv { transport, records } => {
                            for rec in order_srv(records, pick) {
                                let name = absolute(&rec.target);
                                for ip in found.get(&name).into_iter().flatten() {
                                    push(transport, ip, rec.port);
                                }
                            }
                        }
                    }
                }
            }
            Stage::Naptr | Stage::Srv { .. } => {}
        }
        if !targets.is_empty() {
            return Ok(targets);
        }
        if self.failures.is_empty() {
            Err(ResolveError::NoRecords {
                domain: self.domain,
            })
        } else {
            Err(ResolveError::Lookup {
                domain: self.domain,
                reason: self.failures.join("; "),
            })
        }
    }

    /// The URI being resolved.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// §4.1 after the NAPTR query: the SRV names of the usable records, or
    /// the SRV names of the supported transports when there are none.
    fn after_naptr(&mut self, records: &[NaptrRecord]) {
        let rank = |t: TransportKind| {
            self.transports
                .iter()
                .position(|x| *x == t)
                .unwrap_or(usize::MAX)
        };
        // "a client resolving a SIPS URI MUST discard any services that do
        // not contain "SIPS" as the protocol in the service field. [...] A
        // client resolving a SIP URI SHOULD retain records with "SIPS" as
        // the protocol, if the client supports TLS. Second, a client MUST
        // discard any service fields that identify a resolution service
        // whose value is not "D2X", for values of X that indicate
        // transport protocols supported by the client."
        // Only the "s" flag is used by RFC 3263 (the replacement is an SRV
        // name); records with other flags are discarded.
        let mut usable: Vec<(&NaptrRecord, TransportKind)> = records
            .iter()
            .filter(|r| r.flags.eq_ignore_ascii_case("s"))
            .filter_map(|r| naptr_transport(&r.services).map(|t| (r, t)))
            .filter(|(_, t)| self.transports.contains(t))
            .filter(|(_, t)| !self.secure || *t == TransportKind::Tls)
            .collect();
        // RFC 3403 §4.1: by ORDER, then PREFERENCE; records equal in both
        // are "selected based on [...] Services offered": the gateway's
        // own preference.
        usable.sort_by_key(|(r, t)| (r.order, r.preference, rank(*t)));
        let mut names: Vec<(String, TransportKind)> = Vec::new();
        for (r, t) in usable {
            let n = (absolute(&r.replacement), t);
            if !names.contains(&n) {
                names.push(n);
            }
        }
        let fallback = match names.first() {
            Some((_, t)) => *t,
            None => self.default_transport(),
        };
        if names.is_empty() {
            // §4.1: "If no NAPTR records are found, the client constructs
            // SRV queries for those transport protocols it supports, and
            // does a query for each. Queries are done using the service
            // identifier "_sip" for SIP URIs and "_sips" for SIPS URIs."
            // (A SIP URI may use "_sips" too when the client wishes TLS,
            // §4.2.) Records none of which the gateway can use count as
            // none.
            let domain = absolute(&self.domain);
            names = self
                .transports
                .iter()
                .filter(|t| !self.secure || **t == TransportKind::Tls)
                .map(|t| (format!("{}.{domain}", srv_prefix(*t)), *t))
                .collect();
        }
        self.go_srv(names, fallback);
    }

    /// §4.2 after the SRV queries: the SRV sets found, in order, or the
    /// A/AAAA records of the domain at the default port.
    fn after_srv(&mut self) {
        let Stage::Srv {
            names,
            found,
            fallback,
        } = std::mem::replace(&mut self.stage, Stage::Naptr)
        else {
            return;
        };
        let mut plan = Vec::new();
        let mut refused = false;
        for (name, transport) in names {
            let Some(records) = found.get(&name) else {
                continue;
            };
            // RFC 2782: 'A Target of "." means that the service is
            // decidedly not available at this domain.'
            let records: Vec<SrvRecord> = records
                .iter()
                .filter(|r| {
                    let dot = r.target == "." || r.target.is_empty();
                    refused |= dot;
                    !dot
                })
                .cloned()
                .collect();
            if !records.is_empty() {
                plan.push(Planned::Srv { transport, records });
            }
        }
        if plan.is_empty() && !refused {
            // §4.2: "If no SRV records were found, the client performs an
            // A or AAAA record lookup of the domain name. The result will
            // be a list of IP addresses, each of which can be contacted
            // using the transport protocol determined previously, at the
            // default port for that transport."
            plan.push(Planned::Host {
                transport: fallback,
                name: absolute(&self.domain),
                port: fallback.default_port(),
            });
        }
        self.go_addresses(plan);
    }

    fn go_srv(&mut self, names: Vec<(String, TransportKind)>, fallback: TransportKind) {
        for (name, _) in &names {
            let q = Query::Srv(name.clone());
            if !self.to_ask.contains(&q) {
                self.to_ask.push_back(q);
            }
        }
        let empty = names.is_empty();
        self.stage = Stage::Srv {
            names,
            found: HashMap::new(),
            fallback,
        };
        if empty {
            self.after_srv();
        }
    }

    fn go_addresses(&mut self, plan: Vec<Planned>) {
        for p in &plan {
            let names: Vec<String> = match p {
                Planned::Host { name, .. } => vec![name.clone()],
                Planned::Srv { records, .. } => {
                    records.iter().map(|r| absolute(&r.target)).collect()
                }
            };
            for n in names {
                let q = Query::Addresses(n);
                if !self.to_ask.contains(&q) {
                    self.to_ask.push_back(q);
                }
            }
        }
        self.stage = Stage::Addresses {
            plan,
            found: HashMap::new(),
        };
    }

    /// §4.1: "If no SRV records are found, the client SHOULD use TCP for
    /// a SIPS URI, and UDP for a SIP URI" (TCP when there is no UDP).
    fn default_transport(&self) -> TransportKind {
        if self.secure {
            TransportKind::Tls
        } else if self.transports.contains(&TransportKind::Udp) {
            TransportKind::Udp
        } else {
            TransportKind::Tcp
        }
    }
}

fn query_label(q: &Query) -> String {
    match q {
        Query::Naptr(n) => format!("NAPTR {n}"),
        Query::Srv(n) => format!("SRV {n}"),
        Query::Addresses(n) => format!("A/AAAA {n}"),
    }
}

/// RFC 2782 "Usage rules": the records by priority, lowest first, and
/// within one priority in the weighted random order: "arrange all SRV RRs
/// (that have not been ordered yet) in any order, except that all those
/// with weight 0 are placed at the beginning of the list. Compute the sum
/// of the weights of those RRs, and with each RR associate the running sum
/// in the selected order. Then choose a uniform random number between 0
/// and the sum computed (inclusive), and select the RR whose running sum
/// value is the first in the selected order which is greater than or equal
/// to the random number selected."
///
/// `pick(total)` gives the random number in `0..=total`.
///
/// ```
/// use cpimgate_sip::resolve::{SrvRecord, order_srv};
/// let rec = |priority, weight, target: &str| SrvRecord {
///     priority, weight, port: 5060, target: target.into(),
/// };
/// let set = vec![rec(20, 0, "c."), rec(10, 1, "a."), rec(10, 3, "b.")];
/// // Sum 4: a draw of 2 passes a (running sum 1) and stops at b (4).
/// let order: Vec<String> = order_srv(set, &mut |_| 2).into_iter().map(|r| r.target).collect();
/// assert_eq!(order, ["b.", "a.", "c."]);
/// ```
pub fn order_srv(mut records: Vec<SrvRecord>, pick: &mut dyn FnMut(u32) -> u32) -> Vec<SrvRecord> {
    records.sort_by_key(|r| r.priority);
    let mut out = Vec::with_capacity(records.len());
    let mut rest = records.into_iter().peekable();
    while let Some(first) = rest.next() {
        let mut group = vec![first];
        while let Some(next) = rest.next_if(|r| r.priority == group[0].priority) {
            group.push(next);
        }
        // Weight 0 first, keeping the order they came in otherwise.
        group.sort_by_key(|r| r.weight != 0);
        while !group.is_empty() {
            let total: u32 = group.iter().map(|r| u32::from(r.weight)).sum();
            let draw = pick(total).min(total);
            let mut running = 0;
            let mut chosen = group.len() - 1;
            for (i, r) in group.iter().enumerate() {
                running += u32::from(r.weight);
                if running >= draw {
                    chosen = i;
                    break;
                }
            }
            out.push(group.remove(chosen));
        }
    }
    out
}
