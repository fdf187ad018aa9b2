//! The front door's life cycle: h2c refused (keep-alive both ways is shown in
//! `proxy.rs`), and a graceful
//! shutdown that lets requests in flight finish and then refuses new ones.

use std::time::Duration;

use anteroom_bench::origin::OriginOptions;
use anteroom_tests::{gateway, upstream, upstream_with};

/// HTTP/1.1 only: an h2c connection could idle without the header read
/// timeout's bound, so it is refused rather than served.
#[tokio::test]
async fn refuses_http2_prior_knowledge() {
    let up = upstream().await;
    let gw = gateway(&up).start().await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    assert!(client.get(gw.url("/echo/h2")).send().await.is_err());
    // HTTP/1.1 on the same listener is fine.
    assert_eq!(
        reqwest::get(gw.url("/echo/h1")).await.unwrap().status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_requests_in_flight_then_refuses_new_ones() {
    let up = upstream_with(OriginOptions {
        service_time: Duration::from_millis(800),
        ..OriginOptions::default()
    })
    .await;
    let gw = gateway(&up).start().await;
    let url = gw.url("/echo/slow");
    let addr = gw.addr;
    let in_flight = tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status()) });
    // Let the request reach the origin, then ask the gateway to stop.
    tokio::time::sleep(Duration::from_millis(200)).await;
    gw.stop().await;
    let status = in_flight
        .await
        .unwrap()
        .expect("the request in flight completes");
    assert_eq!(status, 200);
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "a stopped gateway accepts no new connections"
    );
}
