//! The admin listener: health and readiness now; metrics and the admin API
//! come with the operations issue.

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::routes::{json_error, json_response};
use crate::{Body, Shared};

pub async fn handle(shared: &Shared, request: Request<Incoming>) -> Response<Body> {
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/healthz") => {
            json_response(StatusCode::OK, &serde_json::json!({"status": "alive"}))
        }
        (&Method::GET, "/readyz") => readiness(shared).await,
        _ => json_error(StatusCode::NOT_FOUND, "not found"),
    }
}

/// Ready when the config is loaded (it is, or we would not be running) and
/// the store answers.
async fn readiness(shared: &Shared) -> Response<Body> {
    match shared.store.ping().await {
        Ok(()) => json_response(StatusCode::OK, &serde_json::json!({"status": "ready"})),
        Err(error) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({"status": "not ready", "reason": error.to_string()}),
        ),
    }
}
