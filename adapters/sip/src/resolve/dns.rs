//! The async side of RFC 3263 resolution: a [`Resolution`]'s queries
//! asked with hickory-resolver (tokio, UDP and TCP to the nameservers, its
//! cache keeps answers for their TTL).

use std::net::SocketAddr;
use std::sync::Arc;

use cpimgate_model::address::SipUri;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};

use super::select::{Answer, NaptrRecord, Query, Resolution, SrvRecord};
use super::{ResolveError, Target};
use crate::transport::TransportKind;

/// Resolves SIP URIs to targets (RFC 3263 §4) with DNS; cheap to clone
/// (clones share the cache).
///
/// ```no_run
/// # async fn f() {
/// use cpimgate_sip::resolve::Resolver;
/// use cpimgate_sip::transport::TransportKind;
/// let dns = vec!["127.0.0.1:5353".parse().unwrap()];
/// let resolver = Resolver::new(&dns, vec![TransportKind::Tcp, TransportKind::Udp]);
/// let uri = "sip:bob@example.com".parse().unwrap();
/// for target in resolver.resolve(&uri).await.unwrap_or_default() {
///     println!("{} {}", target.transport, target.addr);
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct Resolver {
    dns: Result<TokioResolver, Arc<str>>,
    transports: Vec<TransportKind>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("dns", &self.dns.as_ref().map(|_| "hickory"))
            .field("transports", &self.transports)
            .finish()
    }
}

impl Resolver {
    /// A resolver that asks `servers` (UDP, then TCP for truncated
    /// answers), or the nameservers of the system's `/etc/resolv.conf`
    /// when `servers` is empty, for an element that can use `transports`
    /// (preferred first).
    ///
    /// Never fails: when the system's configuration cannot be read, names
    /// fail to resolve with [`ResolveError::NoResolver`], and URIs with a
    /// numeric IP address still resolve (they need no DNS).
    pub fn new(servers: &[SocketAddr], transports: Vec<TransportKind>) -> Resolver {
        let dns = if servers.is_empty() {
            TokioResolver::builder_tokio()
                .and_then(|b| b.build())
                .map_err(|e| Arc::from(format!("reading /etc/resolv.conf: {e}")))
        } else {
            let name_servers = servers
                .iter()
                .map(|s| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = s.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = s.port();
                    NameServerConfig::new(s.ip(), true, vec![udp, tcp])
                })
                .collect();
            // No domain and no search list: the queries name absolute
            // names anyway.
            let config = ResolverConfig::from_parts(None, Vec::new(), name_servers);
            TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
                .build()
                .map_err(|e| Arc::from(format!("setting up the resolver: {e}")))
        };
        Resolver { dns, transports }
    }

    /// The transports targets may use, preferred first.
    pub fn transports(&self) -> &[TransportKind] {
        &self.transports
    }

    /// The targets of `uri` when they need no DNS (a numeric IP address or
    /// `localhost`, or an error known at once); `None` when DNS must be
    /// asked: call [`Resolver::resolve`].
    pub fn resolve_now(&self, uri: &SipUri) -> Option<Result<Vec<Target>, ResolveError>> {
        match Resolution::new(uri, &self.transports) {
            Err(e) => Some(Err(e)),
            Ok(r) if r.is_finished() => Some(r.finish(&mut random_pick)),
            Ok(_) => None,
        }
    }

    /// The targets of `uri`, in the order to try them (RFC 3263 §4).
    pub async fn resolve(&self, uri: &SipUri) -> Result<Vec<Target>, ResolveError> {
        let mut r = Resolution::new(uri, &self.transports)?;
        if r.is_finished() {
            return r.finish(&mut random_pick);
        }
        let dns = self.dns.as_ref().map_err(|e| ResolveError::NoResolver {
            reason: e.to_string(),
        })?;
        loop {
            let queries: Vec<Query> = std::iter::from_fn(|| r.poll_query()).collect();
            if queries.is_empty() {
                break;
            }
            // The queries of one step are independent: ask them at once.
            let answers = futures::future::join_all(queries.iter().map(|q| ask(dns, q))).await;
            for (q, a) in queries.iter().zip(answers) {
                r.handle_answer(q, a);
            }
        }
        let targets = r.finish(&mut random_pick);
        if let Ok(t) = &targets {
            tracing::debug!(
                "{uri} resolves to {}",
                t.iter()
                    .map(|t| format!("{} {}", t.transport, t.addr))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        targets
    }
}

/// A uniform random number in `0..=total` (RFC 2782 weighted choice).
fn random_pick(total: u32) -> u32 {
    rand::random_range(0..=total)
}

/// Asks one query; no records (NXDOMAIN, or none of the type) is an empty
/// answer, anything else that went wrong a failure.
async fn ask(dns: &TokioResolver, q: &Query) -> Result<Answer, String> {
    match q {
        Query::Naptr(name) => {
            let records = records(dns.lookup(name.as_str(), RecordType::NAPTR).await)?;
            Ok(Answer::Naptr(
                records
                    .into_iter()
                    .filter_map(|d| match d {
                        RData::NAPTR(n) => Some(NaptrRecord {
                            order: n.order,
                            preference: n.preference,
                            flags: String::from_utf8_lossy(&n.flags).into_owned(),
                            services: String::from_utf8_lossy(&n.services).into_owned(),
                            replacement: n.replacement.to_ascii(),
                        }),
                        _ => None,
                    })
                    .collect(),
            ))
        }
        Query::Srv(name) => {
            let records = records(dns.lookup(name.as_str(), RecordType::SRV).await)?;
            Ok(Answer::Srv(
                records
                    .into_iter()
                    .filter_map(|d| match d {
                        RData::SRV(s) => Some(SrvRecord {
                            priority: s.priority,
                            weight: s.weight,
                            port: s.port,
                            target: s.target.to_ascii(),
                        }),
                        _ => None,
                    })
                    .collect(),
            ))
        }
        Query::Addresses(name) => match dns.lookup_ip(name.as_str()).await {
            Ok(ips) => Ok(Answer::Addresses(ips.iter().collect())),
            Err(e) if e.is_no_records_found() => Ok(Answer::Addresses(Vec::new())),
            Err(e) => Err(e.to_string()),
        },
    }
}

fn records(
    lookup: Result<hickory_resolver::lookup::Lookup, NetError>,
) -> Result<Vec<RData>, String> {
    match lookup {
        Ok(l) => Ok(l.answers().iter().map(|r| r.data.clone()).collect()),
        Err(e) if e.is_no_records_found() => Ok(Vec::new()),
        Err(e) => Err(e.to_string()),
    }
}
