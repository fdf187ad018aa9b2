//! Figures of the waiting page, measured in a real headless Chromium and
//! printed, never asserted (measurements, not behaviour; the behaviour is
//! proven in `waiting_page.rs`):
//!
//! - its weight as served: HTML with the inline script and style, in bytes,
//!   uncompressed (the gateway does not compress) and for reference
//!   gzipped (`gzip -9`, when a proxy in front compresses);
//! - the time from a slot freeing (the visitor inside leaves) to the
//!   browser having the page it asked for from the upstream, following its
//!   place over the event stream, by polling, and without JavaScript (meta
//!   refresh), at the room's configured `refresh_seconds`.
//!
//! ```sh
//! cargo test -p anteroom-tests --test page_figures -- --ignored --nocapture
//! ```
//!
//! Knobs: `ANTEROOM_FIGURES_REFRESH_SECONDS` (default 5, the config's
//! default) and `ANTEROOM_FIGURES_SAMPLES` (default 10 per way).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anteroom_tests::browser::{Browser, run, shown_json, text, until};
use anteroom_tests::{Upstream, gateway, loose_limits, reached_origin, room, upstream};
use fantoccini::Client;

const ASKED_FOR: &str = "/echo/vaccini/page?x=1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    EventStream,
    Polling,
    NoJavaScript,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run it with --ignored --nocapture"]
async fn figures_of_the_waiting_page() {
    let refresh = knob("ANTEROOM_FIGURES_REFRESH_SECONDS", 5);
    let samples = knob("ANTEROOM_FIGURES_SAMPLES", 10);
    let up = upstream().await;

    println!("\nThe waiting page as served (inline script and style included):\n");
    println!("| language | HTML bytes | gzip -9 bytes | of which script | of which style |");
    println!("|---|---:|---:|---:|---:|");
    for lang in ["it", "en"] {
        let gw = gateway(&up)
            .room(room("vaccini").capacity(1).refresh_seconds(refresh))
            .start()
            .await;
        assert!(reached_origin(gw.visitor().get("/echo/vaccini").await).await);
        let html = gw
            .visitor()
            .client
            .get(gw.url(ASKED_FOR))
            .header("accept-language", lang)
            .send()
            .await
            .expect("the page")
            .text()
            .await
            .expect("the page");
        let inner = |open: &str, close: &str| {
            let start = html.find(open).map_or(0, |start| start + open.len());
            html[start..].find(close).unwrap_or(0)
        };
        println!(
            "| {lang} | {} | {} | {} | {} |",
            html.len(),
            gzipped_len(html.as_bytes()),
            inner("<script>", "</script>"),
            inner("<style>", "</style>"),
        );
    }

    println!(
        "\nFrom a slot freeing to the browser having the page it asked for \
         (refresh_seconds = {refresh}, {samples} samples each, ms):\n"
    );
    println!("| way | min | median | max |");
    println!("|---|---:|---:|---:|");
    for way in [Way::EventStream, Way::Polling, Way::NoJavaScript] {
        let browser = Browser::options()
            .javascript(way != Way::NoJavaScript)
            .open()
            .await;
        let mut times = Vec::new();
        for sample in 0..samples {
            times.push(slot_to_arrival(&up, &browser.client, way, refresh, sample).await);
        }
        browser.close().await;
        times.sort_unstable();
        println!(
            "| {way:?} | {} | {} | {} |",
            times[0],
            times[times.len() / 2],
            times[times.len() - 1]
        );
    }
}

/// One sample: a full room, the browser waiting at position 1, the visitor
/// inside leaves at a moment spread over the refresh interval; returns the
/// milliseconds until the upstream's answer has reached the browser.
async fn slot_to_arrival(
    up: &Upstream,
    page: &Client,
    way: Way,
    refresh_seconds: u64,
    sample: u64,
) -> u64 {
    let limits = match way {
        Way::Polling => loose_limits().max_event_streams(0),
        Way::EventStream | Way::NoJavaScript => loose_limits(),
    };
    let gw = gateway(up)
        .room(room("vaccini").capacity(1).refresh_seconds(refresh_seconds))
        .limits(limits)
        .start()
        .await;
    let inside = gw.visitor();
    assert!(reached_origin(inside.get("/echo/vaccini").await).await);
    page.delete_all_cookies().await.expect("a fresh visitor");
    page.goto(&gw.url(ASKED_FOR)).await.expect("the page loads");
    until("the waiting page", async || {
        (text(page, "#anteroom-position").await == "1").then_some(())
    })
    .await;
    if way != Way::NoJavaScript {
        until("the script runs", async || {
            (!text(page, "#anteroom-updated").await.ends_with("UTC")).then_some(())
        })
        .await;
    }
    // The slot frees at some point of the page's refresh cycle: spread the
    // samples evenly over it.
    let cycle_ms = refresh_seconds * 1000;
    let offset = (sample * 2 + 1) * cycle_ms / (2 * knob("ANTEROOM_FIGURES_SAMPLES", 10));
    tokio::time::sleep(Duration::from_millis(offset)).await;
    let freed_at = unix_ms();
    inside.leave("vaccini").await;
    until("the browser arrives", async || shown_json(page).await).await;
    let arrived_at = run(
        page,
        "const navigation = performance.getEntriesByType('navigation')[0];\
         return Math.round(performance.timeOrigin + navigation.responseEnd);",
    )
    .await
    .as_u64()
    .expect("the arrival time");
    arrived_at.saturating_sub(freed_at)
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or_default()
}

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .filter(|value| *value > 0)
        .unwrap_or(default)
}

/// `gzip -9`'s output size, 0 without gzip.
fn gzipped_len(bytes: &[u8]) -> usize {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let Ok(mut gzip) = Command::new("gzip")
        .arg("-9c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    else {
        return 0;
    };
    if let Some(mut stdin) = gzip.stdin.take() {
        let _ = stdin.write_all(bytes);
    }
    gzip.wait_with_output()
        .map(|output| output.stdout.len())
        .unwrap_or(0)
}
