//! The connection loop of `holdfastd serve` and `holdfastd proxy`: hyper's
//! HTTP/1 server with the bounds `axum::serve` does not set.
//!
//! - **A header read timeout.** hyper enforces one only when it has a timer,
//!   and `axum::serve` gives it none: a client sending one header byte a
//!   second (slowloris), or an idle keep-alive connection, held its socket
//!   and task for ever. Here every request head must arrive within
//!   [`ServeLimits::header_read_timeout`], idle time included.
//! - **A connection cap.** At most [`ServeLimits::max_connections`] are
//!   served at once; the loop accepts the next one only when one closes,
//!   so the excess waits in the kernel's listen backlog instead of costing
//!   descriptors, tasks and buffers. With the timeout, a slot held by a
//!   slow client is free again within the timeout.
//! - **A cap per client address** ([`ServeLimits::max_connections_per_ip`],
//!   off by default): connections beyond it are closed as soon as they are
//!   accepted, so one address cannot hold every slot.
//! - **A bounded request head.** More than [`ServeLimits::max_header_bytes`]
//!   of request line and headers, or more than [`MAX_HEADERS`] headers, is
//!   answered 431 by hyper after reading at most that much.
//!
//! Graceful shutdown as with `axum::serve`: stop accepting, let requests in
//! flight finish, close idle connections.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

use crate::config::{LimitsConfig, MIN_HEADER_BYTES};

/// Most headers in one request (431 beyond): hyper's default, said here.
pub const MAX_HEADERS: usize = 100;

/// What clients can hold of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// Connections served at once; further ones wait to be accepted.
    pub max_connections: usize,
    /// Connections served at once from one address (IPv6: one /64);
    /// further ones are closed when accepted. 0: no limit.
    pub max_connections_per_ip: usize,
    /// Longest wait for a request's line and headers, idle keep-alive time
    /// included; the connection is closed after it.
    pub header_read_timeout: Duration,
    /// Largest request line plus headers, in bytes (at least 8192).
    pub max_header_bytes: usize,
}

impl Default for ServeLimits {
    /// The defaults of `[limits]` (`LimitsConfig`).
    fn default() -> Self {
        Self::from_config(&LimitsConfig::default())
    }
}

impl ServeLimits {
    /// The limits of a `[limits]` section.
    pub fn from_config(config: &LimitsConfig) -> Self {
        Self {
            max_connections: config.max_connections,
            max_connections_per_ip: config.max_connections_per_ip,
            header_read_timeout: Duration::from_secs(config.header_read_timeout_secs),
            max_header_bytes: config.max_header_bytes,
        }
    }
}

/// Serves `app` on `listener`, each request carrying its peer's address
/// (`ConnectInfo<SocketAddr>`), until `shutdown` completes; then stops
/// accepting and returns once every connection has closed.
///
/// Accept errors (a full descriptor table, an aborted handshake) are logged
/// and the loop goes on, as `axum::serve` does.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_ip = Arc::new(PerAddress::new(limits.max_connections_per_ip));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // hyper refuses (431) a head that fills its read buffer before it
        // parses: the buffer bound is what stops a 1 MiB header early.
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES))
        .max_header_size(limits.max_header_bytes)
        .max_headers(MAX_HEADERS);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                // Unreachable: the semaphore is never closed.
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_error(&error).await;
                    continue;
                }
            },
        };
        let Some(address_slot) = PerAddress::admit(&per_ip, peer.ip()) else {
            // Closing at once costs the flood an accept and frees the slot.
            tracing::debug!(%peer, "connection refused: too many from this address");
            continue;
        };
        // Answers are small and written at once; do not let Nagle hold them.
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request.map(Body::new))
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                // A header timeout, a 431, a reset: the client's doing.
                tracing::debug!(%peer, %error, "connection ended");
            }
            drop((slot, address_slot));
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// What to do when `accept` fails: per-connection errors are the client's
/// and are skipped; anything else (out of descriptors) is logged and waited
/// out briefly, so the loop does not spin.
async fn accept_error(error: &std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::error!(%error, "cannot accept a connection; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Connections held per client address. Entries exist only while a
/// connection is held, so the map never outgrows `max_connections`.
struct PerAddress {
    limit: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in [`PerAddress`], given back on drop.
struct AddressSlot {
    held: Option<(Arc<PerAddress>, IpAddr)>,
}

impl PerAddress {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            held: Mutex::new(HashMap::new()),
        }
    }

    /// A place for one more connection from `ip`, unless it holds the
    /// limit already.
    fn admit(this: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        if this.limit == 0 {
            return Some(AddressSlot { held: None });
        }
        let key = client_key(ip);
        let mut held = this.held.lock().unwrap_or_else(|p| p.into_inner());
        let count = held.entry(key).or_insert(0);
        if *count >= this.limit {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            held: Some((Arc::clone(this), key)),
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let Some((per_ip, key)) = self.held.take() else {
            return;
        };
        let mut held = per_ip.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = held.get_mut(&key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&key);
            }
        }
    }
}

/// The address a client is counted under: IPv4 as is (an IPv4-mapped IPv6
/// address as its IPv4 address), IPv6 by its /64, the smallest block a
/// site is given: one host usually has the whole /64 to pick from.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(bits))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_connections_per_address_and_gives_them_back() {
        let per_ip = Arc::new(PerAddress::new(2));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = PerAddress::admit(&per_ip, a).unwrap();
        let second = PerAddress::admit(&per_ip, a).unwrap();
        assert!(PerAddress::admit(&per_ip, a).is_none());
        assert!(PerAddress::admit(&per_ip, b).is_some());
        drop(first);
        let third = PerAddress::admit(&per_ip, a).unwrap();
        drop((second, third));
        // Nothing is kept for addresses that hold no connection.
        assert!(per_ip.held.lock().unwrap().is_empty());
    }

    #[test]
    fn no_limit_admits_everyone_and_keeps_nothing() {
        let per_ip = Arc::new(PerAddress::new(0));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let slots: Vec<_> = (0..1000)
            .map(|_| PerAddress::admit(&per_ip, a).unwrap())
            .collect();
        assert!(per_ip.held.lock().unwrap().is_empty());
        drop(slots);
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let per_ip = Arc::new(PerAddress::new(1));
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let _held = PerAddress::admit(&per_ip, one).unwrap();
        assert!(PerAddress::admit(&per_ip, same_64).is_none());
        assert!(PerAddress::admit(&per_ip, other_64).is_some());
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.1".parse::<IpAddr>().unwrap());
    }
}
