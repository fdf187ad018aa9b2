//! Reading our cookies from a request, writing them, and keeping them away
//! from the upstream site.

use http::header::{COOKIE, HeaderMap, HeaderValue};

use anteroom_config::CookieSecure;

/// Every cookie of ours starts with this, and none of them reaches upstream.
pub const PREFIX: &str = "anteroom_";

/// Values of every cookie called `name`, across all `Cookie` headers. A
/// browser sends one, but a request may carry duplicates; callers try each
/// (each is verified on its own, so a duplicate can only add a chance to
/// fail, never a way in). Headers are split as bytes: a site cookie holding
/// UTF-8 (or any other byte) must not hide ours.
pub fn values<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(COOKIE)
        .iter()
        .flat_map(move |header| values_in(header, name))
}

/// Values of every cookie called `name` in one `Cookie` header.
pub fn values_in<'a>(header: &'a HeaderValue, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    header
        .as_bytes()
        .split(|byte| *byte == b';')
        .filter_map(move |pair| {
            let equals = pair.iter().position(|byte| *byte == b'=')?;
            let (key, value) = (&pair[..equals], &pair[equals + 1..]);
            if key.trim_ascii() != name.as_bytes() {
                return None;
            }
            // Our values are ASCII; anything else is not ours.
            std::str::from_utf8(value.trim_ascii())
                .ok()
                .map(|value| value.trim_matches('"'))
        })
}

/// Over which schemes a browser sends a cookie back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    /// `Secure`: HTTPS only.
    HttpsOnly,
    AnyScheme,
}

impl Over {
    /// As `[cookies] secure` says: always `Secure`, or (`auto`) when the
    /// visitor reached us over HTTPS, as a TLS terminator in front reports
    /// in `X-Forwarded-Proto`. Only decides the flag, so a spoofed header
    /// cannot hurt.
    pub fn for_request(setting: CookieSecure, headers: &HeaderMap) -> Over {
        let https = headers
            .get("x-forwarded-proto")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
        match setting {
            CookieSecure::Always => Over::HttpsOnly,
            CookieSecure::Auto if https => Over::HttpsOnly,
            CookieSecure::Auto => Over::AnyScheme,
        }
    }
}

/// A `Set-Cookie` value for one of our cookies.
pub fn set(name: &str, value: &str, max_age_seconds: u64, over: Over) -> HeaderValue {
    let secure = match over {
        Over::HttpsOnly => "; Secure",
        Over::AnyScheme => "",
    };
    let line = format!(
        "{name}={value}; Path=/; Max-Age={max_age_seconds}; HttpOnly; SameSite=Lax{secure}"
    );
    // Names come from validated room names and values from base64 tokens.
    HeaderValue::from_str(&line)
        .unwrap_or_else(|_| HeaderValue::from_static("anteroom_invalid=; Max-Age=0"))
}

/// A `Set-Cookie` value that deletes one of our cookies.
pub fn clear(name: &str) -> HeaderValue {
    set(name, "", 0, Over::AnyScheme)
}

/// Removes our cookies from the `Cookie` headers, keeping the site's own
/// byte for byte (they may hold UTF-8 or other bytes).
pub fn strip_ours(headers: &mut HeaderMap) {
    let mut kept: Vec<&[u8]> = Vec::new();
    let mut found_ours = false;
    for value in headers.get_all(COOKIE).iter() {
        for pair in value.as_bytes().split(|byte| *byte == b';') {
            let pair = pair.trim_ascii();
            if pair.is_empty() {
                continue;
            }
            if pair.starts_with(PREFIX.as_bytes()) {
                found_ours = true;
            } else {
                kept.push(pair);
            }
        }
    }
    if !found_ours {
        return;
    }
    let joined = kept.join(&b"; "[..]);
    headers.remove(COOKIE);
    if !joined.is_empty()
        && let Ok(value) = HeaderValue::from_bytes(&joined)
    {
        headers.insert(COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookies: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for cookie in cookies {
            headers.append(COOKIE, HeaderValue::from_str(cookie).unwrap());
        }
        headers
    }

    #[test]
    fn finds_values_across_headers() {
        let headers = headers(&["a=1; anteroom_pass_x=P1", "anteroom_pass_x=P2"]);
        let found: Vec<&str> = values(&headers, "anteroom_pass_x").collect();
        assert_eq!(found, ["P1", "P2"]);
    }

    #[test]
    fn strips_only_ours() {
        let mut headers = headers(&[
            "session=abc; anteroom_pass_x=P; lang=it",
            "anteroom_ticket_x=T",
        ]);
        strip_ours(&mut headers);
        let all: Vec<_> = headers.get_all(COOKIE).iter().collect();
        assert_eq!(all, ["session=abc; lang=it"]);
    }

    #[test]
    fn utf8_site_cookies_neither_hide_nor_shield_ours() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_bytes("anteroom_pass_x=P; citta=Forlì".as_bytes()).unwrap(),
        );
        assert_eq!(
            values(&headers, "anteroom_pass_x").collect::<Vec<_>>(),
            ["P"]
        );
        strip_ours(&mut headers);
        assert_eq!(headers[COOKIE].as_bytes(), "citta=Forlì".as_bytes());
    }

    #[test]
    fn strips_header_entirely_when_only_ours() {
        let mut headers = headers(&["anteroom_pass_x=P"]);
        strip_ours(&mut headers);
        assert!(headers.get(COOKIE).is_none());
    }
}
