//! Who may hold an accepted connection: a cap on all of them and a cap
//! per far-end IP address, so that one host that opens thousands of
//! connections cannot take the slots of everyone else. Shared by the
//! SIP listeners and the MSRP listener of the chat rooms.
//!
//! A flood is refused by the thousand: [`Admission::should_log`] keeps
//! the log to one line per second that counts the rest.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How often a refusal or an accept error is logged at most; the ones in
/// between are counted in the next line.
const LOG_EVERY: Duration = Duration::from_secs(1);

/// The caps on accepted connections; see the [module docs](self).
#[derive(Debug)]
pub struct Admission {
    total: Arc<Semaphore>,
    max_total: usize,
    max_per_ip: usize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    log: Mutex<LogGate>,
}

#[derive(Debug, Default)]
struct LogGate {
    last: Option<Instant>,
    held_back: u64,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refused {
    /// Happens when `max` connections are open in all.
    Total {
        /// The cap.
        max: usize,
    },
    /// Happens when `max` connections from the same IP address are open.
    PerIp {
        /// The cap.
        max: usize,
    },
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Total { max } => write!(f, "connection limit reached ({max} open)"),
            Refused::PerIp { max } => write!(
                f,
                "per-address connection limit reached ({max} open from that address)"
            ),
        }
    }
}

/// A connection's place: it is given back when dropped.
#[derive(Debug)]
pub struct Ticket {
    _permit: OwnedSemaphorePermit,
    ip: Option<(IpAddr, Arc<Admission>)>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some((ip, admission)) = self.ip.take() {
            admission.release(ip);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each change is one counter: consistent whatever panicked.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Admission {
    /// At most `max_total` connections, and `max_per_ip` from one IP
    /// address (0: no cap per address).
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<Admission> {
        Arc::new(Admission {
            total: Arc::new(Semaphore::new(max_total)),
            max_total,
            max_per_ip,
            per_ip: Mutex::new(HashMap::new()),
            log: Mutex::new(LogGate::default()),
        })
    }

    /// A place for a connection accepted from `ip`, or why there is none.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, Refused> {
        let ip = ip.to_canonical();
        let per_ip = if self.max_per_ip > 0 {
            let mut map = lock(&self.per_ip);
            let n = map.entry(ip).or_insert(0);
            if *n >= self.max_per_ip {
                return Err(Refused::PerIp {
                    max: self.max_per_ip,
                });
            }
            *n += 1;
            Some((ip, Arc::clone(self)))
        } else {
            None
        };
        match Arc::clone(&self.total).try_acquire_owned() {
            Ok(permit) => Ok(Ticket {
                _permit: permit,
                ip: per_ip,
            }),
            Err(_) => {
                if per_ip.is_some() {
                    self.release(ip);
                }
                Err(Refused::Total {
                    max: self.max_total,
                })
            }
        }
    }

    /// Gives back a place of `ip`.
    fn release(&self, ip: IpAddr) {
        let mut map = lock(&self.per_ip);
        if let Some(n) = map.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&ip);
            }
        }
    }

    /// A place counted in the total only (a connection this side opens).
    pub fn admit_outgoing(&self) -> Result<Ticket, Refused> {
        Arc::clone(&self.total)
            .try_acquire_owned()
            .map(|permit| Ticket {
                _permit: permit,
                ip: None,
            })
            .map_err(|_| Refused::Total {
                max: self.max_total,
            })
    }

    /// Whether a refusal (or an accept error) is to be logged now: at most
    /// once per second. `Some(n)`: log, saying that `n` more were not.
    pub fn should_log(&self) -> Option<u64> {
        let mut gate = lock(&self.log);
        let now = Instant::now();
        if gate.last.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
            gate.held_back += 1;
            return None;
        }
        gate.last = Some(now);
        Some(std::mem::take(&mut gate.held_back))
    }

    /// How many connections hold a place.
    pub fn open(&self) -> usize {
        self.max_total - self.total.available_permits()
    }
}

/// Closes a refused connection with a reset (no TIME_WAIT kept for a
/// flood of them, and the peer learns at once).
pub fn refuse(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// How long to wait after an accept error (out of file descriptors, out
/// of memory) before accepting again: the error lasts until connections
/// close, and accepting at once would spin.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A stream that can be made to close with a reset (`SO_LINGER` 0): a
/// peer cut off because it does not read gets a reset, and the kernel
/// keeps no unsent data for it.
pub trait Abortable {
    /// Sets the socket to reset on close; best effort.
    fn abort_on_close(&self);
}

impl Abortable for TcpStream {
    fn abort_on_close(&self) {
        let _ = self.set_zero_linger();
    }
}

impl Abortable for tokio_rustls::TlsStream<TcpStream> {
    fn abort_on_close(&self) {
        self.get_ref().0.abort_on_close();
    }
}

impl Abortable for tokio_rustls::server::TlsStream<TcpStream> {
    fn abort_on_close(&self) {
        self.get_ref().0.abort_on_close();
    }
}

impl Abortable for tokio_rustls::client::TlsStream<TcpStream> {
    fn abort_on_close(&self) {
        self.get_ref().0.abort_on_close();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn caps_in_all_and_per_address() {
        let a = Admission::new(3, 2);
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        let two: IpAddr = "192.0.2.2".parse().unwrap();
        let t1 = a.admit(one).unwrap();
        let _t2 = a.admit(one).unwrap();
        assert_eq!(a.admit(one).unwrap_err(), Refused::PerIp { max: 2 });
        let _t3 = a.admit(two).unwrap();
        assert_eq!(a.admit(two).unwrap_err(), Refused::Total { max: 3 });
        assert_eq!(a.open(), 3);
        // The refusal in all gave back the per-address place of `two`.
        drop(t1);
        let _t4 = a.admit(two).unwrap();
        assert_eq!(a.admit(two).unwrap_err(), Refused::PerIp { max: 2 });
        // An IPv4 peer seen through a dual-stack socket is the same.
        let mapped: IpAddr = "::ffff:192.0.2.2".parse().unwrap();
        assert_eq!(a.admit(mapped).unwrap_err(), Refused::PerIp { max: 2 });
    }

    #[test]
    fn no_cap_per_address_when_zero() {
        let a = Admission::new(2, 0);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let _t = (a.admit(ip).unwrap(), a.admit(ip).unwrap());
        assert_eq!(a.admit(ip).unwrap_err(), Refused::Total { max: 2 });
        assert_eq!(a.admit_outgoing().unwrap_err(), Refused::Total { max: 2 });
    }

    #[test]
    fn refusals_are_logged_once_a_second() {
        let a = Admission::new(1, 0);
        assert_eq!(a.should_log(), Some(0));
        assert_eq!(a.should_log(), None);
        assert_eq!(a.should_log(), None);
        lock(&a.log).last = Some(Instant::now() - LOG_EVERY);
        assert_eq!(a.should_log(), Some(2));
    }
}
