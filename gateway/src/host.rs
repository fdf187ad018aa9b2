//! The `Host` header, checked before anything else looks at a request. A
//! server must answer `400` to a request with more than one `Host`, with an
//! invalid one, or, in HTTP/1.1, with none (RFC 9112 §3.2): two hosts, or
//! one that is not a host, would reach the site as something it might read
//! differently from us (a cache key, a virtual host, a link it builds).

use std::net::Ipv6Addr;

use http::{HeaderMap, Version, header};

/// Why a request's `Host` is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadHost {
    #[error("an HTTP/1.1 request needs a Host header")]
    Missing,
    #[error("more than one Host header")]
    Several,
    #[error("the Host header is not a valid host[:port]")]
    Invalid,
}

/// Exactly one valid `Host` (none is fine before HTTP/1.1).
pub fn check(version: Version, headers: &HeaderMap) -> Result<(), BadHost> {
    let mut hosts = headers.get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (None, _) if version == Version::HTTP_11 => Err(BadHost::Missing),
        (None, _) => Ok(()),
        (Some(_), Some(_)) => Err(BadHost::Several),
        (Some(host), None) if is_authority(host.as_bytes()) => Ok(()),
        (Some(_), None) => Err(BadHost::Invalid),
    }
}

/// `uri-host [ ":" port ]` (RFC 9110 §7.2, in RFC 3986's grammar): a name
/// or IPv4 address, or an IPv6 address in brackets, and a port of digits
/// that fits one. The host may not be empty: an `http` URI without one is
/// invalid (RFC 9110 §4.2.1), and no browser sends it. No user info (`x@y`)
/// and no white space.
fn is_authority(value: &[u8]) -> bool {
    // The port follows the last colon, unless that colon is inside an IPv6
    // literal's brackets.
    let (host, port) = match value.iter().rposition(|byte| *byte == b':') {
        Some(colon) if !value[colon..].contains(&b']') => {
            (&value[..colon], Some(&value[colon + 1..]))
        }
        _ => (value, None),
    };
    is_host(host) && port.is_none_or(is_port)
}

fn is_host(host: &[u8]) -> bool {
    match host {
        [] => false,
        // IPv6 only: the future formats (`[v1.…]`) are not in use.
        [b'[', literal @ .., b']'] => {
            std::str::from_utf8(literal).is_ok_and(|literal| literal.parse::<Ipv6Addr>().is_ok())
        }
        name => is_reg_name(name),
    }
}

/// `reg-name = *( unreserved / pct-encoded / sub-delims )`, which IPv4
/// addresses also match.
fn is_reg_name(name: &[u8]) -> bool {
    let mut index = 0;
    while index < name.len() {
        match name[index] {
            b'%' => {
                let escape = name.get(index + 1..index + 3);
                if !escape.is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) {
                    return false;
                }
                index += 3;
                continue;
            }
            byte if byte.is_ascii_alphanumeric() => {}
            b'-' | b'.' | b'_' | b'~' => {}
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' => {}
            _ => return false,
        }
        index += 1;
    }
    true
}

/// Digits, and a number a port can be (an empty port is allowed by the
/// grammar and means the default).
fn is_port(port: &[u8]) -> bool {
    port.iter().all(u8::is_ascii_digit)
        && (port.is_empty()
            || std::str::from_utf8(port).is_ok_and(|port| port.parse::<u16>().is_ok()))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn hosts(values: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                header::HOST,
                HeaderValue::from_bytes(value).expect("a header value"),
            );
        }
        headers
    }

    fn check_one(value: &[u8]) -> Result<(), BadHost> {
        check(Version::HTTP_11, &hosts(&[value]))
    }

    #[test]
    fn hosts_browsers_send_are_valid() {
        for host in [
            b"booking.example".as_slice(),
            b"booking.example:8443",
            b"Booking.Example.",
            b"127.0.0.1:3000",
            b"[::1]",
            b"[2001:db8::7]:443",
            b"xn--citt-5qa.example",
            b"localhost",
            b"under_score.example",
            b"example.com:",
        ] {
            assert_eq!(check_one(host), Ok(()), "{}", String::from_utf8_lossy(host));
        }
    }

    #[test]
    fn a_host_that_is_not_host_and_port_is_invalid() {
        for host in [
            b"".as_slice(),
            b" ",
            b"a b",
            b"x@y",
            b"user:pass@booking.example",
            b"booking.example/prenota",
            b"booking.example?x",
            b"booking.example#x",
            b"booking.example:http",
            b"booking.example:65536",
            b"booking.example:8080:80",
            b":8080",
            b"::1",
            b"[::1",
            b"[not-an-address]",
            b"[::1]x",
            b"[v1.future]",
            b"%zz.example",
            b"a\"b",
            b"\xc3\xa0.example",
            b"a\tb",
        ] {
            assert_eq!(
                check_one(host),
                Err(BadHost::Invalid),
                "{:?}",
                String::from_utf8_lossy(host)
            );
        }
    }

    #[test]
    fn exactly_one_host_and_none_only_before_http_1_1() {
        assert_eq!(
            check(Version::HTTP_11, &HeaderMap::new()),
            Err(BadHost::Missing)
        );
        assert_eq!(check(Version::HTTP_10, &HeaderMap::new()), Ok(()));
        for version in [Version::HTTP_10, Version::HTTP_11] {
            assert_eq!(
                check(version, &hosts(&[b"a.example", b"a.example"])),
                Err(BadHost::Several)
            );
            assert_eq!(
                check(version, &hosts(&[b"a.example", b"b.example"])),
                Err(BadHost::Several)
            );
            assert_eq!(check(version, &hosts(&[b"a b"])), Err(BadHost::Invalid));
        }
    }
}
