//! Building answers: JSON, our own HTML pages (with the policy that keeps
//! them self-contained), and the headers every answer of ours shares.
//! Used by `routes`, `intake`, `events` and the admin API.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Serialize;

use crate::page::Visitor;
use crate::{Body, Shared, full_body};

pub(crate) fn wants_json(headers: &HeaderMap) -> bool {
    header_str(headers, header::ACCEPT)
        .is_some_and(|accept| accept.contains("application/json") && !accept.contains("text/html"))
}

pub(crate) fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

pub(crate) fn add_cookies(headers: &mut HeaderMap, set_cookies: Vec<HeaderValue>) {
    for cookie in set_cookies {
        headers.append(header::SET_COOKIE, cookie);
    }
}

pub(crate) fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
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

/// A page of ours, with the policy that keeps it self-contained.
pub(crate) fn html_response(shared: &Shared, code: StatusCode, html: String) -> Response<Body> {
    self_contained_page(code, Bytes::from(html), shared.pages.policy())
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

/// Who a page is for: their language, and the address's query string.
pub(crate) fn visitor<'a>(shared: &Shared, request: &'a Request<Incoming>) -> Visitor<'a> {
    Visitor {
        lang: shared.pages.language_for(request.headers()),
        query: request.uri().query().unwrap_or_default(),
    }
}
