//! The upstream site: the bench's origin on port 0, serving `/echo/...`
//! (what reached it), the demo booking pages and `/_stats`.

use std::net::SocketAddr;

use crate::plain_client;

/// The bench's origin site, serving `/echo/...` (what reached it) and the
/// demo pages.
pub struct Upstream {
    pub addr: SocketAddr,
    /// Stops the site when the test drops it.
    _site: anteroom_bench::origin::Running,
}

pub async fn upstream() -> Upstream {
    upstream_with(anteroom_bench::origin::OriginOptions::default()).await
}

pub async fn upstream_with(options: anteroom_bench::origin::OriginOptions) -> Upstream {
    let site = anteroom_bench::origin::start(options)
        .await
        .expect("start the upstream");
    Upstream {
        addr: site.addr,
        _site: site,
    }
}

impl Upstream {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The origin's own figures (`/_stats`, read directly; reading them does
    /// not count as a request).
    pub async fn stats(&self) -> serde_json::Value {
        plain_client()
            .get(format!("{}/_stats", self.url()))
            .send()
            .await
            .expect("origin stats")
            .json()
            .await
            .expect("origin stats JSON")
    }

    /// Requests the origin has served so far.
    pub async fn requests_served(&self) -> u64 {
        self.stats().await["requests"]
            .as_u64()
            .expect("the origin counts requests")
    }
}
