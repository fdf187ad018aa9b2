//! The operator's dashboard: one self-contained page (`dashboard.html`,
//! `dashboard.css`, `dashboard.js`, inlined) served at `GET /admin/` and
//! `GET /admin/dashboard`.
//!
//! The page carries no figures, so it needs no token: its script asks the
//! operator for the token, keeps it in the tab's `sessionStorage` (never in
//! the address) and sends it as `Authorization: Bearer` to
//! `/admin/overview` and `PATCH /admin/rooms/NAME`.
//!
//! Its Content-Security-Policy allows the one inline script and the one
//! inline style by their SHA-256 hashes (not `'unsafe-inline'`, so nothing
//! injected into the page could run), requests to this listener only
//! (`connect-src 'self'`), and nothing else: no other script, style, font,
//! frame, form target or image but the empty `data:` icon.

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use sha2::{Digest, Sha256};

use crate::Body;

const TEMPLATE: &str = include_str!("dashboard.html");
const STYLE: &str = include_str!("dashboard.css");
const SCRIPT: &str = include_str!("dashboard.js");

/// The page and its policy, put together once.
struct Dashboard {
    html: String,
    content_security_policy: HeaderValue,
}

static DASHBOARD: LazyLock<Dashboard> = LazyLock::new(Dashboard::build);

pub(super) fn page() -> Response<Body> {
    let dashboard = LazyLock::force(&DASHBOARD);
    let mut response = crate::respond::self_contained_page(
        StatusCode::OK,
        Bytes::from_static(dashboard.html.as_bytes()),
        &dashboard.content_security_policy,
    );
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

impl Dashboard {
    fn build() -> Dashboard {
        // A closing tag inside the inlined text would end the element early
        // and change what the hash covers.
        assert!(
            !SCRIPT.contains("</script") && !STYLE.contains("</style"),
            "the dashboard's script and style are inlined whole"
        );
        let html = TEMPLATE
            .replace("{{style}}", STYLE)
            .replace("{{script}}", SCRIPT);
        let policy = format!(
            "default-src 'none'; script-src '{}'; style-src '{}'; connect-src 'self'; \
             img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            source_hash(SCRIPT),
            source_hash(STYLE)
        );
        Dashboard {
            html,
            content_security_policy: HeaderValue::from_str(&policy)
                .expect("the policy is ASCII: keywords and base64"),
        }
    }
}

/// A CSP hash source: `sha256-` and the base64 of the element's text.
fn source_hash(text: &str) -> String {
    format!(
        "sha256-{}",
        STANDARD.encode(Sha256::digest(text.as_bytes()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text between `open` and `close` in the served page.
    fn inline<'a>(html: &'a str, open: &str, close: &str) -> &'a str {
        let start = html.find(open).expect("the element is there") + open.len();
        let end = start + html[start..].find(close).expect("the element ends");
        &html[start..end]
    }

    #[test]
    fn the_policy_allows_exactly_the_inline_script_and_style() {
        let dashboard = Dashboard::build();
        let policy = dashboard.content_security_policy.to_str().unwrap();
        let script = inline(&dashboard.html, "<script>", "</script>");
        let style = inline(&dashboard.html, "<style>", "</style>");
        assert!(
            policy.contains(&format!("script-src '{}';", source_hash(script))),
            "{policy}"
        );
        assert!(
            policy.contains(&format!("style-src '{}';", source_hash(style))),
            "{policy}"
        );
        assert!(!policy.contains("unsafe"), "{policy}");
        assert_eq!(dashboard.html.matches("<script").count(), 1);
        assert_eq!(dashboard.html.matches("<style").count(), 1);
        assert!(!dashboard.html.contains("{{"), "every slot is filled");
    }

    #[test]
    fn the_page_names_nothing_outside_the_gateway() {
        let dashboard = Dashboard::build();
        for outside in ["http:", "https:", "//cdn", "src=", "@import", "url("] {
            assert!(
                !dashboard.html.contains(outside),
                "the page mentions {outside:?}"
            );
        }
        // No inline handlers either: the policy would block them.
        assert!(!dashboard.html.contains(" onclick="));
        assert!(!dashboard.html.contains(" style="));
    }
}
