//! Reading our cookies from a request, writing them, and keeping them away
//! from the upstream site.

use http::header::{COOKIE, HeaderMap, HeaderValue};

/// Every cookie of ours starts with this, and none of them reaches upstream.
pub const PREFIX: &str = "anteroom_";

/// Values of every cookie called `name`, across all `Cookie` headers. A
/// browser sends one, but a request may carry duplicates; callers try each
/// (each is verified on its own, so a duplicate can only add a chance to
/// fail, never a way in).
pub fn values<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|header| header.split(';'))
        .filter_map(move |pair| {
            let (key, value) = pair.split_once('=')?;
            (key.trim() == name).then(|| value.trim().trim_matches('"'))
        })
}

/// A `Set-Cookie` value for one of our cookies.
pub fn set(name: &str, value: &str, max_age_seconds: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let line = format!(
        "{name}={value}; Path=/; Max-Age={max_age_seconds}; HttpOnly; SameSite=Lax{secure}"
    );
    // Names come from validated room names and values from base64 tokens.
    HeaderValue::from_str(&line)
        .unwrap_or_else(|_| HeaderValue::from_static("anteroom_invalid=; Max-Age=0"))
}

/// A `Set-Cookie` value that deletes one of our cookies.
pub fn clear(name: &str) -> HeaderValue {
    set(name, "", 0, false)
}

/// Removes our cookies from the `Cookie` headers, keeping the site's own.
pub fn strip_ours(headers: &mut HeaderMap) {
    let mut kept: Vec<String> = Vec::new();
    let mut found_ours = false;
    for value in headers.get_all(COOKIE).iter() {
        let Ok(text) = value.to_str() else {
            // Not text: cannot be ours; forward as is.
            kept.push(String::from_utf8_lossy(value.as_bytes()).into_owned());
            continue;
        };
        for pair in text.split(';') {
            let pair = pair.trim();
            if pair.is_empty() {
                continue;
            }
            if pair.starts_with(PREFIX) {
                found_ours = true;
            } else {
                kept.push(pair.to_owned());
            }
        }
    }
    if !found_ours {
        return;
    }
    headers.remove(COOKIE);
    if !kept.is_empty()
        && let Ok(value) = HeaderValue::from_str(&kept.join("; "))
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
    fn strips_header_entirely_when_only_ours() {
        let mut headers = headers(&["anteroom_pass_x=P"]);
        strip_ours(&mut headers);
        assert!(headers.get(COOKIE).is_none());
    }
}
