//! What proxies in front of the gateway say about the client: the
//! forwarding headers. They are believed only from `trusted_proxies`; from
//! anybody else they are the client's own words about itself.
//!
//! `X-Forwarded-For` is read the same way by the rate limits (which client
//! a request is from) and by the proxy (what the site is told), so that the
//! site, walking the chain it receives by the same rule (the right-most
//! address that is not a trusted proxy), finds the client the limits keyed.

use http::header::{HeaderMap, HeaderName, HeaderValue};

pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Headers in which a proxy tells the site about the client or the
/// connection, other than the `X-Forwarded-For`, `-Proto` and `-Host` the
/// gateway sets itself. From a peer that is not a trusted proxy they are
/// the client's own claims, so they are removed; from a trusted proxy they
/// are kept as they came. Each is one a common framework or library reads
/// unasked:
/// - `Forwarded` (RFC 7239) and `X-Real-IP`: the client's address, like
///   `X-Forwarded-For`;
/// - `X-Forwarded-Port`, `X-Forwarded-Prefix`, `X-Forwarded-Server`: where
///   the client connected (Spring, Symfony, Laravel, ASP.NET, Apache's
///   mod_proxy), which sites use to build absolute links and redirects;
/// - `X-Forwarded-Ssl`, `Front-End-Https`, `X-Url-Scheme`: the scheme under
///   other names (Rack, IIS), like `X-Forwarded-Proto`;
/// - `Client-IP`, `X-Client-IP`, `True-Client-IP`, `X-Cluster-Client-IP`,
///   `CF-Connecting-IP`, `Fastly-Client-IP`, `X-Forwarded`, `Forwarded-For`:
///   the client's address under the names that libraries which look for "the
///   real IP" try in turn (Rails, `request-ip`).
pub const CLAIMS_ABOUT_THE_CLIENT: [&str; 16] = [
    "forwarded",
    "x-real-ip",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-server",
    "x-forwarded-ssl",
    "front-end-https",
    "x-url-scheme",
    "client-ip",
    "x-client-ip",
    "true-client-ip",
    "x-cluster-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-forwarded",
    "forwarded-for",
];

/// Headers that tell a site to route on another path than the request
/// line's (IIS's URL rewrite, and frameworks that honour it, such as older
/// Symfony and Zend). Rooms are matched on the request line, so these never
/// reach the site, from whichever peer: a proxy in front that rewrites
/// paths does so in the request line the gateway sees.
pub const PATH_OVERRIDES: [&str; 2] = ["x-original-url", "x-rewrite-url"];

/// The elements of `X-Forwarded-For`, left to right: every field line in
/// order, as one comma-separated list (RFC 9110 §5.3: several lines of a
/// list header are one list), each element trimmed, empty ones skipped (a
/// recipient ignores them, RFC 9110 §5.6.1). Bytes, because a header may
/// hold bytes that are not UTF-8: such an element is garbage to whoever
/// reads it as an address.
pub fn forwarded_for(headers: &HeaderMap) -> impl DoubleEndedIterator<Item = &[u8]> {
    headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .flat_map(|line| line.as_bytes().split(|byte| *byte == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|element| !element.is_empty())
}

/// The `X-Forwarded-For` the site gets: from a trusted proxy, the chain it
/// sent (all its lines, in order) with `peer` appended; from anybody else,
/// `peer` alone.
pub fn chain_with(headers: &HeaderMap, peer_is_trusted: bool, peer: &str) -> HeaderValue {
    let mut chain: Vec<u8> = Vec::new();
    if peer_is_trusted {
        for element in forwarded_for(headers) {
            chain.extend_from_slice(element);
            chain.extend_from_slice(b", ");
        }
    }
    chain.extend_from_slice(peer.as_bytes());
    // Every element came from a valid header value and an address is
    // plain ASCII, so this cannot fail; the peer alone is the fallback.
    HeaderValue::from_bytes(&chain).unwrap_or_else(|_| {
        HeaderValue::from_str(peer).unwrap_or_else(|_| HeaderValue::from_static(""))
    })
}

/// Takes out of a request what its peer may not say: the claims about the
/// client unless the peer is a trusted proxy, and path overrides from
/// anybody.
pub fn remove_unbelieved(headers: &mut HeaderMap, peer_is_trusted: bool) {
    // One pass over the names the request has (about ten), rather than a
    // lookup for each of the eighteen names above: nearly every request has
    // none of them, and then nothing is allocated either.
    let unbelieved: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            let name = name.as_str();
            PATH_OVERRIDES.contains(&name)
                || (!peer_is_trusted && CLAIMS_ABOUT_THE_CLIENT.contains(&name))
        })
        .cloned()
        .collect();
    for name in unbelieved {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(X_FORWARDED_FOR, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn every_line_is_read_in_order_as_one_list() {
        let headers = lines(&["6.6.6.6, 7.7.7.7", " ", "203.0.113.9,, 10.0.0.2 "]);
        let elements: Vec<&[u8]> = forwarded_for(&headers).collect();
        assert_eq!(
            elements,
            [
                b"6.6.6.6".as_slice(),
                b"7.7.7.7",
                b"203.0.113.9",
                b"10.0.0.2"
            ]
        );
        assert_eq!(
            forwarded_for(&headers).next_back(),
            Some(b"10.0.0.2".as_slice())
        );
    }

    #[test]
    fn the_chain_is_extended_only_for_a_trusted_peer() {
        let headers = lines(&["6.6.6.6", "203.0.113.9"]);
        assert_eq!(
            chain_with(&headers, true, "10.0.0.1"),
            "6.6.6.6, 203.0.113.9, 10.0.0.1"
        );
        assert_eq!(chain_with(&headers, false, "10.0.0.1"), "10.0.0.1");
        assert_eq!(chain_with(&HeaderMap::new(), true, "10.0.0.1"), "10.0.0.1");
        // Bytes that are not UTF-8 are passed on as the trusted proxy sent
        // them, not dropped with the rest of the chain.
        let mut odd = HeaderMap::new();
        odd.append(
            X_FORWARDED_FOR,
            HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        );
        odd.append(X_FORWARDED_FOR, HeaderValue::from_static("203.0.113.9"));
        assert_eq!(
            chain_with(&odd, true, "10.0.0.1").as_bytes(),
            b"\xff\xfe, 203.0.113.9, 10.0.0.1"
        );
    }
}
