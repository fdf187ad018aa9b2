//! Per-client rate limits at the front door (governor, keyed by client).
//!
//! Two limits: every request (`per_ip_per_second` sustained, `per_ip_burst`
//! at once), and new places in a queue (`tickets_per_ip_per_minute`), so that
//! one client can neither flood the gateway nor hoard places. Checking costs
//! a hash-map lookup and no store or upstream round trip.
//!
//! The client is the socket peer, with IPv6 grouped by /64 (one customer's
//! network). Only when the peer is a trusted proxy is `X-Forwarded-For`
//! believed, and then the right-most address that is not itself a trusted
//! proxy is the client: that is the one our own proxies saw, and anything to
//! its left was written by the client.
//!
//! Memory is bounded: every [`EVICTION_INTERVAL`] the keys whose buckets are
//! full again are dropped (`retain_recent`), so the limiter holds only clients
//! seen in roughly the last minute (the ticket limit's refill time); if even
//! those exceed `max_tracked_clients`, the table is started afresh.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use http::HeaderMap;
use ipnet::IpNet;

use anteroom_config::Limits;

/// How often idle clients are forgotten.
pub const EVICTION_INTERVAL: Duration = Duration::from_secs(10);

type KeyedLimiter<C> =
    RateLimiter<IpAddr, DashMapStateStore<IpAddr>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// The front door's per-client limits, on clock `C` (governor's fake clock
/// in tests).
pub struct ClientLimits<C: Clock = DefaultClock> {
    requests: Table<C>,
    tickets: Table<C>,
    trusted_proxies: Vec<IpNet>,
    max_tracked_clients: usize,
}

/// A keyed limiter that can be replaced wholesale when it outgrows its bound.
struct Table<C: Clock> {
    quota: Quota,
    clock: C,
    // A std RwLock: readers only run a synchronous check; the write lock is
    // taken every 10 s at most, and never across an await.
    limiter: RwLock<Arc<KeyedLimiter<C>>>,
}

impl<C: Clock + Clone> Table<C> {
    fn new(quota: Quota, clock: C) -> Table<C> {
        let limiter = Arc::new(RateLimiter::dashmap_with_clock(quota, clock.clone()));
        Table {
            quota,
            clock,
            limiter: RwLock::new(limiter),
        }
    }

    fn limiter(&self) -> Arc<KeyedLimiter<C>> {
        match self.limiter.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// `Err(wait)` when `client` is over the limit. Checks under the read
    /// guard (a synchronous map operation) rather than cloning the `Arc`, so
    /// concurrent checks share no counter.
    fn check(&self, client: &IpAddr) -> Result<(), Duration> {
        let guard = match self.limiter.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        guard
            .check_key(client)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    fn evict_idle(&self, max_tracked: usize) {
        let limiter = self.limiter();
        limiter.retain_recent();
        limiter.shrink_to_fit();
        if limiter.len() > max_tracked {
            // More distinct clients active at once than we agreed to
            // remember: start afresh rather than grow without bound.
            tracing::warn!(
                tracked = limiter.len(),
                max_tracked,
                "rate limiter full; forgetting every client"
            );
            let fresh = Arc::new(RateLimiter::dashmap_with_clock(
                self.quota,
                self.clock.clone(),
            ));
            match self.limiter.write() {
                Ok(mut guard) => *guard = fresh,
                Err(poisoned) => *poisoned.into_inner() = fresh,
            }
        }
    }

    fn len(&self) -> usize {
        self.limiter().len()
    }
}

impl ClientLimits<DefaultClock> {
    pub fn new(limits: &Limits) -> ClientLimits<DefaultClock> {
        ClientLimits::with_clock(limits, DefaultClock::default())
    }
}

impl<C: Clock + Clone> ClientLimits<C> {
    pub fn with_clock(limits: &Limits, clock: C) -> ClientLimits<C> {
        let requests = Quota::per_second(limits.per_ip_per_second).allow_burst(limits.per_ip_burst);
        // Tickets: the whole minute's allowance may be used at once (a family
        // on one connection), then one more every 60/N seconds.
        let tickets = Quota::per_minute(limits.tickets_per_ip_per_minute)
            .allow_burst(limits.tickets_per_ip_per_minute);
        ClientLimits {
            requests: Table::new(requests, clock.clone()),
            tickets: Table::new(tickets, clock),
            trusted_proxies: limits.trusted_proxies.clone(),
            max_tracked_clients: limits.max_tracked_clients,
        }
    }

    /// The client a request comes from, as the limits key it.
    pub fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        client_key(client_address(peer.ip(), headers, &self.trusted_proxies))
    }

    /// Any request. `Err(wait)`: answer `429` with `Retry-After`.
    pub fn check_request(&self, client: &IpAddr) -> Result<(), Duration> {
        self.requests.check(client)
    }

    /// A new place in a queue. `Err(wait)`: answer `429` with `Retry-After`.
    pub fn check_ticket(&self, client: &IpAddr) -> Result<(), Duration> {
        self.tickets.check(client)
    }

    /// Forgets clients whose limits are back to fresh; run every
    /// [`EVICTION_INTERVAL`].
    pub fn evict_idle(&self) {
        self.requests.evict_idle(self.max_tracked_clients);
        self.tickets.evict_idle(self.max_tracked_clients);
    }

    /// Clients currently remembered (requests, tickets).
    pub fn tracked(&self) -> (usize, usize) {
        (self.requests.len(), self.tickets.len())
    }
}

/// Seconds for `Retry-After`: the wait rounded up, at least 1.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// The client's address: the peer, or, behind trusted proxies, the
/// right-most untrusted address of `X-Forwarded-For` (all its lines, as one
/// list: the chain the proxy forwards, so the site finds the same client).
fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    // Walk from the right (the hop nearest us) while hops are our proxies,
    // over every line of the header as one list, as the proxy forwards it.
    for hop in crate::forwarded::forwarded_for(headers).rev() {
        let Some(address) = std::str::from_utf8(hop)
            .ok()
            .and_then(|hop| hop.parse::<IpAddr>().ok())
        else {
            // Garbage where an address should be (bytes that are not even
            // text included): stop believing the chain.
            break;
        };
        client = address;
        if !is_trusted(&address) {
            break;
        }
    }
    client
}

/// IPv4 addresses as they are; IPv6 grouped by /64, the usual size of one
/// customer's network, so rotating through one's own /64 gains nothing.
pub(crate) fn client_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let network = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(network))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;
    use http::HeaderValue;

    use super::*;

    fn limits(toml_limits: &str) -> Limits {
        let text = format!("upstream = \"http://127.0.0.1:3000\"\n[limits]\n{toml_limits}\n");
        anteroom_config::Config::from_toml(&text, |_| None)
            .expect("valid limits")
            .limits
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn burst_then_sustained_rate_with_retry_after() {
        let clock = FakeRelativeClock::default();
        let limits = ClientLimits::with_clock(
            &limits("per_ip_per_second = 2\nper_ip_burst = 4"),
            clock.clone(),
        );
        let client = ip("192.0.2.1");
        for _ in 0..4 {
            assert!(limits.check_request(&client).is_ok());
        }
        let wait = limits.check_request(&client).expect_err("over the burst");
        assert_eq!(wait, Duration::from_millis(500));
        assert_eq!(retry_after_seconds(wait), 1);
        // Another client is unaffected.
        assert!(limits.check_request(&ip("192.0.2.2")).is_ok());
        clock.advance(Duration::from_millis(500));
        assert!(limits.check_request(&client).is_ok());
        assert!(limits.check_request(&client).is_err());
    }

    #[test]
    fn tickets_per_minute() {
        let clock = FakeRelativeClock::default();
        let limits =
            ClientLimits::with_clock(&limits("tickets_per_ip_per_minute = 3"), clock.clone());
        let client = ip("192.0.2.1");
        for _ in 0..3 {
            assert!(limits.check_ticket(&client).is_ok());
        }
        let wait = limits
            .check_ticket(&client)
            .expect_err("fourth ticket within the minute");
        assert_eq!(retry_after_seconds(wait), 20);
        clock.advance(Duration::from_secs(20));
        assert!(limits.check_ticket(&client).is_ok());
    }

    /// A waiting page polling at its refresh interval (at least 1 s) is
    /// never limited with the defaults, even with several tabs behind one
    /// address: 20 per second sustained allows 20 tabs polling every second.
    #[test]
    fn default_limits_fit_the_waiting_page_refresh() {
        let clock = FakeRelativeClock::default();
        let limits = ClientLimits::with_clock(&limits(""), clock.clone());
        let client = ip("192.0.2.1");
        for _ in 0..600 {
            for _tab in 0..20 {
                assert!(limits.check_request(&client).is_ok());
            }
            clock.advance(Duration::from_secs(1));
        }
    }

    #[test]
    fn idle_clients_are_forgotten() {
        let clock = FakeRelativeClock::default();
        let limits = ClientLimits::with_clock(&limits(""), clock.clone());
        for last in 0..=255u8 {
            let client = IpAddr::from([198, 51, 100, last]);
            limits.check_request(&client).unwrap();
            limits.check_ticket(&client).unwrap();
        }
        assert_eq!(limits.tracked(), (256, 256));
        // After a few seconds the request buckets are full again; the
        // ticket buckets need the minute.
        clock.advance(Duration::from_secs(10));
        limits.evict_idle();
        assert_eq!(limits.tracked(), (0, 256));
        clock.advance(Duration::from_secs(60));
        limits.evict_idle();
        assert_eq!(limits.tracked(), (0, 0));
    }

    #[test]
    fn an_overfull_table_starts_afresh() {
        let clock = FakeRelativeClock::default();
        let limits = ClientLimits::with_clock(&limits("max_tracked_clients = 1000"), clock.clone());
        for index in 0..1500u32 {
            limits
                .check_request(&IpAddr::from(index.to_be_bytes()))
                .unwrap();
        }
        limits.evict_idle();
        assert_eq!(limits.tracked().0, 0);
    }

    #[test]
    fn ipv6_clients_are_grouped_by_64() {
        assert_eq!(
            client_key(ip("2001:db8:1:2:aaaa::1")),
            client_key(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            client_key(ip("2001:db8:1:2::1")),
            client_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(client_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 203.0.113.9, 10.0.0.2"),
        );
        // From an untrusted peer the header changes nothing.
        assert_eq!(
            client_address(ip("198.51.100.1"), &headers, &trusted),
            ip("198.51.100.1")
        );
        // From our proxy: the right-most address that is not ours.
        assert_eq!(
            client_address(ip("10.0.0.1"), &headers, &trusted),
            ip("203.0.113.9")
        );
        // Garbage in the chain stops the walk at the last good hop.
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.9, garbage"),
        );
        assert_eq!(
            client_address(ip("10.0.0.1"), &headers, &trusted),
            ip("10.0.0.1")
        );
        // Several lines are one list, read from the last line's right end:
        // our proxy's own line, then the client's.
        let mut lines = HeaderMap::new();
        lines.append("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        lines.append(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.9, 10.0.0.2"),
        );
        assert_eq!(
            client_address(ip("10.0.0.1"), &lines, &trusted),
            ip("203.0.113.9")
        );
        // A line that is not even text is garbage like any other: it ends
        // the walk, rather than being skipped so that the line to its left
        // (the client's words) is believed.
        let mut lines = HeaderMap::new();
        lines.append("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        lines.append(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        );
        assert_eq!(
            client_address(ip("10.0.0.1"), &lines, &trusted),
            ip("10.0.0.1")
        );
        // No header: the proxy itself.
        assert_eq!(
            client_address(ip("10.0.0.1"), &HeaderMap::new(), &trusted),
            ip("10.0.0.1")
        );
    }
}
