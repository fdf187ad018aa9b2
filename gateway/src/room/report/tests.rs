use std::sync::Arc;
use std::time::Duration;

use anteroom_store::adaptive::Histogram;
use http::StatusCode;
use tokio::time::Instant;

use super::*;

const MAX_PLACES: u64 = 64;

/// A recorder, and the instant `ms` milliseconds after its origin.
fn recorder() -> (Arc<Recorder>, impl Fn(u64) -> Instant) {
    let origin = Instant::now();
    (Arc::new(Recorder::new(MAX_PLACES, origin)), move |ms| {
        origin + Duration::from_millis(ms)
    })
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn histogram(latencies_ms: &[f64]) -> Histogram {
    let mut histogram = Histogram::default();
    for &latency in latencies_ms {
        histogram.record(latency);
    }
    histogram
}

#[test]
fn a_report_sums_the_three_whole_seconds_before_the_current_one() {
    let (recorder, at) = recorder();
    recorder.started(at(100));
    for _ in 0..2 {
        recorder.started(at(1_500));
    }
    for _ in 0..4 {
        recorder.started(at(2_999));
    }
    assert_eq!(recorder.report(at(2_999 + 1_000)).started, 7);
    assert_eq!(
        recorder.report(at(1_000)).started,
        1,
        "second 0 alone so far"
    );
    // Second 0 leaves the window when second 3 begins, whether or not
    // anything happens in it.
    assert_eq!(recorder.report(at(3_000 + 1_000)).started, 6);
    recorder.started(at(3_001));
    assert_eq!(recorder.report(at(3_001 + 1_000)).started, 7);
    assert_eq!(recorder.report(at(4_000 + 1_000)).started, 5);
}

#[test]
fn a_new_second_clears_the_bucket_it_takes_over() {
    let (recorder, at) = recorder();
    for _ in 0..5 {
        recorder.started(at(200));
    }
    let _line = recorder.queued(at(200));
    recorder.busy(at(300), ms(300));
    // Second 3 takes second 0's bucket.
    recorder.started(at(3_100));
    let report = recorder.report(at(3_100 + 1_000));
    assert_eq!(report.started, 1);
    assert_eq!(report.queued, 0);
    assert_eq!(report.busy, 0);
    assert_eq!(report.seen.count(), 0);
}

#[test]
fn stale_seconds_are_left_out_after_a_gap() {
    let (recorder, at) = recorder();
    for second in 0..3 {
        recorder.started(at(second * 1_000));
        recorder.answered(
            at(second * 1_000 + 10),
            StatusCode::OK,
            ms(10),
            ms(10),
            Taken::Normally,
        );
    }
    assert_eq!(recorder.report(at(2_500 + 1_000)).started, 3);
    // Seconds 3 and 4 had nothing: only second 2 is still in the window.
    let report = recorder.report(at(4_000 + 1_000));
    assert_eq!(
        (report.started, report.done, report.site.count()),
        (1, 1, 1)
    );
    // Long after: nothing, though the buckets still hold seconds 0 to 2.
    assert_eq!(
        recorder.report(at(60_000 + 1_000)),
        Report {
            max_places: MAX_PLACES,
            ..Report::default()
        }
    );
    // A sample after the gap starts its second afresh.
    recorder.started(at(61_000));
    let report = recorder.report(at(61_000 + 1_000));
    assert_eq!((report.started, report.done), (1, 0));
}

#[test]
fn outcomes_and_latencies_go_where_the_report_says() {
    let (recorder, at) = recorder();
    let now = at(500);
    recorder.answered(now, StatusCode::OK, ms(20), ms(25), Taken::Normally);
    recorder.answered(
        now,
        StatusCode::NOT_FOUND,
        ms(30),
        ms(35),
        Taken::WhileProbing,
    );
    recorder.answered(
        now,
        StatusCode::BAD_GATEWAY,
        ms(5),
        ms(400),
        Taken::Normally,
    );
    recorder.no_answer(now, ms(2_000));
    recorder.busy(now, ms(10_000));
    let report = recorder.report(now + ms(1_000));
    assert_eq!(report.done, 2, "a 404 is the site's answer");
    assert_eq!(report.failed, 2, "a 5xx and no answer");
    assert_eq!(report.busy, 1);
    assert_eq!(report.site, histogram(&[20.0, 30.0, 5.0]));
    assert_eq!(
        report.seen,
        histogram(&[25.0, 35.0, 400.0, 2_000.0, 10_000.0]),
        "what the visitor saw, failures and waits that ran out included"
    );
    assert_eq!(report.probe, histogram(&[30.0]));
}

#[test]
fn the_peak_is_the_most_at_the_site_at_once_in_any_second() {
    let (recorder, at) = recorder();
    let first: Vec<AtSite> = (0..3).map(|_| recorder.at_site(at(100))).collect();
    drop(first);
    let second = recorder.at_site(at(1_100));
    assert_eq!(recorder.report(at(1_100 + 1_000)).peak_in_flight, 3);
    assert_eq!(recorder.in_flight(), 1);
    // Second 0 has left the window; the request of second 1 is still at the
    // site in second 3, though nothing new came.
    assert_eq!(recorder.report(at(3_500 + 1_000)).peak_in_flight, 1);
    drop(second);
    assert_eq!(
        recorder.report(at(3_500 + 1_000)).peak_in_flight,
        1,
        "seen in second 1"
    );
    assert_eq!(recorder.report(at(4_500 + 1_000)).peak_in_flight, 0);
}

#[test]
fn a_new_second_starts_with_the_requests_still_at_the_site() {
    let (recorder, at) = recorder();
    let held: Vec<AtSite> = (0..2).map(|_| recorder.at_site(at(100))).collect();
    // Second 3 takes second 0's bucket with a new request: three at the
    // site, not one.
    let _more = recorder.at_site(at(3_100));
    assert_eq!(recorder.report(at(3_100 + 1_000)).peak_in_flight, 3);
    drop(held);
}

#[test]
fn the_line_is_now_and_recent_figures_are_the_latest_seconds() {
    let (recorder, at) = recorder();
    let early = recorder.queued(at(100));
    let late = recorder.queued(at(1_200));
    recorder.answered(at(100), StatusCode::OK, ms(50), ms(60), Taken::Normally);
    recorder.answered(at(1_300), StatusCode::OK, ms(800), ms(900), Taken::Normally);
    let report = recorder.report(at(1_400 + 1_000));
    assert_eq!(report.line, 2);
    assert_eq!(report.queued, 2);
    assert_eq!(report.recent_queued, 1);
    assert_eq!(report.recent_site, histogram(&[800.0]));
    assert_eq!(report.max_places, MAX_PLACES);
    drop(early);
    assert_eq!(recorder.report(at(1_400 + 1_000)).line, 1);
    drop(late);
    assert_eq!(recorder.line(), 0);
}

/// Requests on several threads within one second: every sample counts.
#[test]
fn concurrent_requests_within_a_second_all_count() {
    let (recorder, at) = recorder();
    let now = at(1_500);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..1_000 {
                    recorder.started(now);
                    let _site = recorder.at_site(now);
                    recorder.answered(now, StatusCode::OK, ms(3), ms(4), Taken::Normally);
                }
            });
        }
    });
    let report = recorder.report(now + ms(1_000));
    assert_eq!((report.started, report.done), (8_000, 8_000));
    assert_eq!(report.site.count(), 8_000);
    assert!((1..=8).contains(&report.peak_in_flight));
    assert_eq!(recorder.in_flight(), 0);
}
