//! The building blocks of responses: JSON, a self-contained HTML page (with
//! the policy that keeps it so), cookies. The public listener's answers go
//! through [`crate::answer::Answer::render`]; the admin listener (its JSON
//! API and the dashboard) uses these directly.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};
use serde::Serialize;

use crate::{Body, full_body};

pub(crate) fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

pub(crate) fn add_cookies(headers: &mut HeaderMap, set_cookies: Vec<HeaderValue>) {
    for cookie in set_cookies {
        headers.append(header::SET_COOKIE, cookie);
    }
}

pub fn json_response(code: StatusCode, value: &impl Serialize) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(full_body(Bytes::from(body)));
    *response.status_mut() = code;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

pub fn json_error(code: StatusCode, message: &str) -> Response<Body> {
    json_response(code, &serde_json::json!({ "error": message }))
}

/// An HTML page whose inline style and script `policy` allows (by hash),
/// sniffing off: the visitors' pages and the operators' dashboard.
pub(crate) fn self_contained_page(
    code: StatusCode,
    html: Bytes,
    policy: &HeaderValue,
) -> Response<Body> {
    let mut response = Response::new(full_body(html));
    *response.status_mut() = code;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CONTENT_SECURITY_POLICY, policy.clone());
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
