//! `GET /admin/overview`: everything the dashboard draws, in one answer.
//!
//! The rooms' figures are those of `GET /admin/rooms` (this gateway's cached
//! view, no store round trip); the buffers' those of `GET /admin/buffers`
//! without dead letters (one store round trip per buffer); the upstream's
//! are counters since the process started (`metrics::upstream_totals`), so
//! the page computes rates and the mean latency between two of its polls.
//! Nothing here is averaged or kept by the gateway for the page.

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use crate::metrics::{UPSTREAM_ERROR_KINDS, upstream_totals};
use crate::respond::json_response;
use crate::{Body, Shared};

pub(super) async fn overview(shared: &Shared) -> Response<Body> {
    let rooms: Vec<serde_json::Value> = shared
        .rooms
        .iter()
        .map(|room| super::figures(shared, room))
        .collect();
    // A store that does not answer must not blank the rooms and the
    // upstream: the page shows what it has and says what it lacks.
    let mut buffers = Vec::new();
    let mut buffers_error = None;
    for buffer in shared.intake.buffers() {
        match super::buffer_figures(shared, buffer).await {
            Ok(figures) => buffers.push(figures),
            Err(error) => {
                buffers_error = Some(format!("store unreachable: {error}"));
                buffers.clear();
                break;
            }
        }
    }
    let totals = upstream_totals();
    let errors: serde_json::Map<String, serde_json::Value> = UPSTREAM_ERROR_KINDS
        .iter()
        .zip(totals.errors)
        .map(|(kind, count)| ((*kind).to_owned(), count.into()))
        .collect();
    let mut response = json_response(
        StatusCode::OK,
        &serde_json::json!({
            "admin_token_configured": shared.config.secrets.admin_token.is_some(),
            "store_reachable": !shared.health.is_down(),
            "rooms": rooms,
            "buffers": buffers,
            "buffers_error": buffers_error,
            "upstream": {
                "in_flight": shared.proxy.in_flight(),
                "max_in_flight": shared.config.limits.max_in_flight_upstream,
                "responses": totals.responses,
                "response_seconds_sum": totals.response_seconds_sum,
                "errors": errors,
            },
        }),
    );
    // Figures of the moment: a cached copy would draw a flat line.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
