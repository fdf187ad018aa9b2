//! The `http` sink: replays a buffered request to the upstream site.

use std::time::Duration;

use anteroom_config::Buffer;
use anteroom_store::{BufferedRequest, header_bytes};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::{Applied, MAX_RESULT_BYTES, Sink, truncate_result};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Replays requests to the upstream with their `Idempotency-Key`, over a
/// pooled keep-alive client. The key is the store's: the client's key scoped
/// to the visitor (or one made for a request sent without), the same on every
/// delivery of one request and never the same for two visitors' requests, so
/// the site may deduplicate on it alone.
pub struct HttpSink {
    client: Client<HttpConnector, Full<Bytes>>,
    upstream: Uri,
    timeout: Duration,
}

/// A stored request that cannot be rebuilt for the upstream; it will not
/// get better, so it is answered for good (`400`).
#[derive(Debug, thiserror::Error)]
enum ReplayError {
    #[error("stored method {0:?} is not valid")]
    Method(String, #[source] http::method::InvalidMethod),
    #[error("stored target {0:?} is not valid")]
    Target(String, #[source] http::uri::InvalidUri),
    #[error("{0}")]
    Uri(#[source] http::uri::InvalidUriParts),
    #[error("{0}")]
    Request(#[source] http::Error),
}

/// The upstream could not be reached: retried.
#[derive(Debug, thiserror::Error)]
#[error("upstream unreachable: {0:?}")]
struct Unreachable(#[source] hyper_util::client::legacy::Error);

impl HttpSink {
    pub fn new(upstream: &Uri, buffer: &Buffer) -> HttpSink {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT.min(buffer.sink_timeout)));
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(buffer.max_in_flight.get() as usize)
            .build(connector);
        HttpSink {
            client,
            upstream: upstream.clone(),
            timeout: buffer.sink_timeout,
        }
    }

    fn request(
        &self,
        receipt: &str,
        idempotency_key: &str,
        buffered: &BufferedRequest,
    ) -> Result<Request<Full<Bytes>>, ReplayError> {
        let method = Method::from_bytes(buffered.method.as_bytes())
            .map_err(|error| ReplayError::Method(buffered.method.clone(), error))?;
        let mut parts = self.upstream.clone().into_parts();
        parts.path_and_query = Some(
            buffered
                .target
                .parse()
                .map_err(|error| ReplayError::Target(buffered.target.clone(), error))?,
        );
        let uri = Uri::from_parts(parts).map_err(ReplayError::Uri)?;
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .body(Full::new(Bytes::from(buffered.body.clone())))
            .map_err(ReplayError::Request)?;
        let headers = request.headers_mut();
        for (name, value) in &buffered.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(&header_bytes(value)),
            ) {
                headers.append(name, value);
            }
        }
        // The stored Host was the gateway's; the client sets the upstream's.
        headers.remove(http::header::HOST);
        for (name, value) in [
            ("idempotency-key", idempotency_key),
            ("x-anteroom-receipt", receipt),
        ] {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(name, value);
            }
        }
        Ok(request)
    }
}

/// Statuses that are 4xx but say "not now" rather than "never".
fn retryable_client_error(status: u16) -> bool {
    matches!(status, 408 | 425 | 429)
}

#[async_trait::async_trait]
impl Sink for HttpSink {
    async fn apply(
        &self,
        receipt: &str,
        idempotency_key: &str,
        request: &BufferedRequest,
    ) -> Applied {
        let request = match self.request(receipt, idempotency_key, request) {
            Ok(request) => request,
            // A stored request that cannot be rebuilt will not get better.
            Err(why) => {
                return Applied::Final {
                    status: 400,
                    body: format!("anteroom could not replay the request: {why}"),
                };
            }
        };
        let exchange = async {
            let response = self.client.request(request).await.map_err(Unreachable)?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_RESULT_BYTES * 4)
                .collect()
                .await
                .map(|collected| collected.to_bytes())
                .unwrap_or_default();
            Ok::<_, Unreachable>((status, body))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => Applied::Transient {
                why: format!("upstream gave no answer within {:?}", self.timeout),
            },
            Ok(Err(unreachable)) => Applied::Transient {
                why: unreachable.to_string(),
            },
            Ok(Ok((status, body))) => {
                if status >= 500 || retryable_client_error(status) {
                    Applied::Transient {
                        why: format!("upstream answered {status}"),
                    }
                } else {
                    Applied::Final {
                        status,
                        body: truncate_result(String::from_utf8_lossy(&body).into_owned()),
                    }
                }
            }
        }
    }
}
