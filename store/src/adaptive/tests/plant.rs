//! The controller in a closed loop with a simulated crowd, gateways and the
//! bench's melting site (`bench/src/origin/melt.rs`), on a simulated clock:
//! the goals, checked in milliseconds before any bench runs.
//!
//! A visitor let in arrives an arrival time later and makes a journey of
//! requests with a think time between them. Each request asks its gateway
//! for a place (waiting in line up to the queue time, then `503`), then the
//! site takes `service × slowdown(in flight)` or times out. Every second
//! each gateway reports its last three seconds and the controller ticks.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use super::super::*;

#[derive(Debug, Clone, Copy)]
struct Site {
    capacity: u64,
    collapse: u64,
    service_ms: u64,
    timeout_ms: u64,
}

impl Site {
    fn slowdown(&self, n: u64) -> f64 {
        let (n, capacity, collapse) = (n as f64, self.capacity as f64, self.collapse as f64);
        if n <= capacity {
            1.0
        } else if n <= collapse {
            n / capacity
        } else {
            n / capacity * (n / collapse).powi(2)
        }
    }
}

#[derive(Debug, Clone)]
struct Setup {
    visitors: u64,
    /// Requests per visit.
    journey: u32,
    think_ms: u64,
    arrival_ms: u64,
    queue_ms: u64,
    gateways: usize,
    /// The configured ceiling and the room's capacity.
    admit_per_minute: f64,
    capacity: u64,
    /// Each gateway's `max_in_flight_upstream`.
    max_in_flight: u64,
    adaptive: bool,
    site: Site,
    /// (at ms, capacity): the site changes.
    changes: Vec<(u64, u64)>,
    /// A gateway that stops reporting (and serving) at this time.
    gateway_stops_at: Option<u64>,
}

#[derive(Debug, Default)]
struct Outcome {
    max_concurrency: u64,
    visitors_with_errors: u64,
    served: u64,
    last_served_ms: u64,
    /// (second, pace) every second.
    pace: Vec<(u64, f64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Admit,
    Tick,
    /// A visitor arrives or finished thinking: its next request.
    Ask(u64),
    /// A request at the site finishes.
    SiteDone(u64),
}

#[derive(Debug, Clone, Copy)]
struct Request {
    visitor: u64,
    gateway: usize,
    asked_at: u64,
    sent_at: u64,
    probe: bool,
    fails: bool,
}

#[derive(Debug, Default)]
struct Gateway {
    limit: u64,
    in_use: u64,
    line: VecDeque<u64>,
    /// One report per second: the current second and the two before.
    ring: [Report; 3],
    probing: bool,
}

struct Simulation {
    setup: Setup,
    now: u64,
    events: BinaryHeap<Reverse<(u64, Event)>>,
    requests: Vec<Request>,
    gateways: Vec<Gateway>,
    site: Site,
    at_site: u64,
    /// Per visitor: requests left, whether it saw an error.
    left: Vec<u32>,
    erred: Vec<bool>,
    admitted: u64,
    inside: u64,
    tokens: f64,
    controller: Controller,
    settings: Settings,
    reports: Vec<(Millis, Report)>,
    outcome: Outcome,
    /// A small deterministic generator: visitors do not act in step.
    seed: u64,
}

impl Simulation {
    fn new(setup: Setup) -> Simulation {
        let settings = Settings {
            enabled: setup.adaptive,
            floor: 60.0_f64.min(setup.admit_per_minute),
            ceiling: setup.admit_per_minute,
            latency_p90_ms: 1_000.0,
            max_error_rate: 0.01,
        };
        let controller = Controller::start(
            &settings,
            &Facts {
                now: 0,
                waiting: setup.visitors,
                admitted: 0,
                serving: true,
            },
        );
        let gateways = (0..setup.gateways)
            .map(|_| Gateway {
                limit: if setup.adaptive {
                    1
                } else {
                    setup.max_in_flight
                },
                ..Gateway::default()
            })
            .collect();
        let mut events = BinaryHeap::new();
        events.push(Reverse((0, Event::Admit)));
        events.push(Reverse((TICK_MS, Event::Tick)));
        Simulation {
            site: setup.site,
            left: vec![setup.journey; setup.visitors as usize],
            erred: vec![false; setup.visitors as usize],
            reports: vec![(0, Report::default()); setup.gateways],
            setup,
            now: 0,
            events,
            requests: Vec::new(),
            gateways,
            at_site: 0,
            admitted: 0,
            inside: 0,
            tokens: 1.0,
            controller,
            settings,
            outcome: Outcome::default(),
            seed: 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// Uniform in `0..bound` (xorshift).
    fn random(&mut self, bound: u64) -> u64 {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        self.seed % bound.max(1)
    }

    fn pace(&self) -> f64 {
        if self.setup.adaptive {
            f64::from(self.controller.whole_pace()).min(self.settings.ceiling)
        } else {
            self.settings.ceiling
        }
    }

    fn run(mut self) -> Outcome {
        while let Some(Reverse((at, event))) = self.events.pop() {
            self.now = at;
            match event {
                Event::Admit => self.admit(),
                Event::Tick => self.tick(),
                Event::Ask(visitor) => self.ask(visitor),
                Event::SiteDone(request) => self.site_done(request),
            }
            if self.outcome.served + self.outcome.visitors_with_errors_done() >= self.setup.visitors
                && self.admitted >= self.setup.visitors
                && self.inside == 0
            {
                break;
            }
            assert!(self.now < 3_600_000, "the simulation did not finish");
        }
        self.outcome
    }

    fn admit(&mut self) {
        let pace = self.pace();
        let burst = 1.0 + pace / 60.0;
        self.tokens = (self.tokens + pace / 600.0).min(burst);
        let free = self.setup.capacity.saturating_sub(self.inside);
        let waiting = self.setup.visitors - self.admitted;
        let count = (self.tokens.floor() as u64).min(free).min(waiting);
        self.tokens -= count as f64;
        for _ in 0..count {
            let visitor = self.admitted;
            self.admitted += 1;
            self.inside += 1;
            // Visitors notice their turn over a refresh, and arrive then.
            let arrives = self.now + self.setup.arrival_ms / 2 + self.random(self.setup.arrival_ms);
            self.events.push(Reverse((arrives, Event::Ask(visitor))));
        }
        if self.admitted < self.setup.visitors {
            self.events.push(Reverse((self.now + 100, Event::Admit)));
        }
    }

    fn gateway_of(&self, visitor: u64) -> usize {
        let alive = match self.setup.gateway_stops_at {
            Some(at) if self.now >= at => self.setup.gateways - 1,
            _ => self.setup.gateways,
        };
        (visitor % alive.max(1) as u64) as usize
    }

    fn ask(&mut self, visitor: u64) {
        let gateway = self.gateway_of(visitor);
        let id = self.requests.len() as u64;
        self.requests.push(Request {
            visitor,
            gateway,
            asked_at: self.now,
            sent_at: 0,
            probe: false,
            fails: false,
        });
        let g = &mut self.gateways[gateway];
        g.ring[0].started += 1;
        if g.in_use < g.limit && g.line.is_empty() {
            self.send(id);
        } else {
            g.ring[0].queued += 1;
            g.line.push_back(id);
        }
    }

    fn send(&mut self, id: u64) {
        let request = &mut self.requests[id as usize];
        let g = &mut self.gateways[request.gateway];
        g.in_use += 1;
        request.sent_at = self.now;
        request.probe = g.probing;
        self.at_site += 1;
        g.ring[0].peak_in_flight = g.ring[0].peak_in_flight.max(g.in_use);
        self.outcome.max_concurrency = self.outcome.max_concurrency.max(self.at_site);
        let took = self.setup.site.service_ms as f64 * self.site.slowdown(self.at_site);
        let took = if took > self.site.timeout_ms as f64 {
            request.fails = true;
            self.site.timeout_ms
        } else {
            took.round().max(1.0) as u64
        };
        self.events
            .push(Reverse((self.now + took, Event::SiteDone(id))));
    }

    fn site_done(&mut self, id: u64) {
        let request = self.requests[id as usize];
        self.at_site -= 1;
        let g = &mut self.gateways[request.gateway];
        g.in_use -= 1;
        let report = &mut g.ring[0];
        let site_ms = (self.now - request.sent_at) as f64;
        report.site.record(site_ms);
        report.seen.record((self.now - request.asked_at) as f64);
        if request.probe {
            report.probe.record(site_ms);
        }
        if request.fails {
            report.failed += 1;
        } else {
            report.done += 1;
        }
        self.finished(request.visitor, request.fails);
        self.next_in_line(request.gateway);
    }

    fn next_in_line(&mut self, gateway: usize) {
        loop {
            let g = &mut self.gateways[gateway];
            if g.in_use >= g.limit {
                return;
            }
            let Some(id) = g.line.pop_front() else { return };
            self.send(id);
        }
    }

    /// Requests waiting longer than the queue time get `503`.
    fn expire_lines(&mut self) {
        for gateway in 0..self.gateways.len() {
            while let Some(&id) = self.gateways[gateway].line.front() {
                let request = self.requests[id as usize];
                if self.now - request.asked_at < self.setup.queue_ms {
                    break;
                }
                let g = &mut self.gateways[gateway];
                g.line.pop_front();
                g.ring[0].busy += 1;
                g.ring[0].seen.record((self.now - request.asked_at) as f64);
                self.finished(request.visitor, true);
            }
        }
    }

    fn finished(&mut self, visitor: u64, failed: bool) {
        if failed {
            self.erred[visitor as usize] = true;
        }
        self.left[visitor as usize] -= 1;
        if self.left[visitor as usize] > 0 {
            let think = self.setup.think_ms / 2 + self.random(self.setup.think_ms);
            self.events
                .push(Reverse((self.now + think, Event::Ask(visitor))));
        } else {
            self.inside -= 1;
            if self.erred[visitor as usize] {
                self.outcome.visitors_with_errors += 1;
            } else {
                self.outcome.served += 1;
            }
            self.outcome.last_served_ms = self.now;
        }
    }

    fn tick(&mut self) {
        for &(at, capacity) in &self.setup.changes {
            if self.now == at {
                self.site = Site {
                    capacity,
                    collapse: capacity * 2,
                    ..self.site
                };
            }
        }
        self.expire_lines();
        let stopped = self.setup.gateway_stops_at.filter(|at| self.now >= *at);
        for (index, g) in self.gateways.iter_mut().enumerate() {
            if stopped.is_some() && index == self.setup.gateways - 1 {
                continue;
            }
            let mut window = Report {
                max_places: self.setup.max_in_flight,
                ..Report::default()
            };
            for second in g.ring.iter().rev() {
                window.add_second(second);
            }
            window.max_places = self.setup.max_in_flight;
            window.line = g.line.len() as u64;
            self.reports[index] = (self.now, window);
            g.ring.rotate_right(1);
            g.ring[0] = Report {
                peak_in_flight: g.in_use,
                ..Report::default()
            };
        }
        if self.setup.adaptive {
            let window = Window::merge(self.reports.iter().map(|(at, r)| (*at, r)), self.now);
            let facts = Facts {
                now: self.now,
                waiting: self.setup.visitors - self.admitted,
                admitted: self.admitted,
                serving: true,
            };
            self.controller.tick(&window, &self.settings, &facts);
            if std::env::var("PLANT_TRACE").is_ok() {
                let c = &self.controller;
                eprintln!(
                    "{:>4} pace {:>7.0} {:?} {:?} places {:>5.1} base {:?} site50 {:?} p90 {:?} err {:?} started {} queued {} line {} peak {} at_site {} probe {}",
                    self.now / 1000,
                    c.pace,
                    c.phase,
                    c.reason,
                    c.places,
                    c.base_ms.map(|b| b.round()),
                    c.site_p50_ms.map(|b| b.round()),
                    c.p90_ms.map(|b| b.round()),
                    c.error_rate,
                    window.sum.started,
                    window.sum.queued,
                    window.sum.line,
                    window.sum.peak_in_flight,
                    self.at_site,
                    c.probing()
                );
            }
            for index in 0..self.gateways.len() {
                let started = self.reports[index].1.started;
                let share = self.controller.share(started, self.setup.max_in_flight);
                self.gateways[index].limit = share;
                self.gateways[index].probing = self.controller.probing();
                self.next_in_line(index);
            }
        }
        self.outcome.pace.push((self.now / 1000, self.pace()));
        self.events.push(Reverse((self.now + TICK_MS, Event::Tick)));
    }
}

impl Outcome {
    fn visitors_with_errors_done(&self) -> u64 {
        self.visitors_with_errors
    }

    fn error_share(&self) -> f64 {
        self.visitors_with_errors as f64 / (self.served + self.visitors_with_errors) as f64
    }

    fn pace_at(&self, second: u64) -> f64 {
        self.pace
            .iter()
            .find(|(at, _)| *at == second)
            .map_or(f64::NAN, |(_, pace)| *pace)
    }
}

/// The bench's site: 50 requests at once, 20 ms each, collapse at 100.
fn bench_site() -> Site {
    Site {
        capacity: 50,
        collapse: 100,
        service_ms: 20,
        timeout_ms: 10_000,
    }
}

/// Visitors a minute a site serves (`lazio`'s arithmetic).
fn visitors_per_minute(capacity: u64, site: &Site, journey: u32) -> f64 {
    capacity as f64 / (site.service_ms as f64 / 1000.0) / f64::from(journey) * 60.0
}

fn hand_tuned(visitors: u64, factor: f64, adaptive: bool) -> Setup {
    let site = bench_site();
    let journey = 4;
    let rate = visitors_per_minute(site.capacity, &site, journey);
    Setup {
        visitors,
        journey,
        think_ms: 300,
        arrival_ms: 1_000,
        queue_ms: 10_000,
        gateways: 1,
        admit_per_minute: (rate * 0.9 * factor).floor(),
        capacity: (20_000.0 * factor) as u64,
        max_in_flight: (site.capacity as f64 * 0.8 * factor) as u64,
        adaptive,
        site,
        changes: Vec::new(),
        gateway_stops_at: None,
    }
}

#[test]
fn sized_ten_times_too_generously_the_site_never_melts() {
    let visitors = 30_000;
    let tuned = Simulation::new(hand_tuned(visitors, 1.0, false)).run();
    let oversized_off = Simulation::new(hand_tuned(visitors, 10.0, false)).run();
    let oversized_on = Simulation::new(hand_tuned(visitors, 10.0, true)).run();
    let collapse = bench_site().collapse;
    // Without the controller the site melts: the baseline of the test.
    assert!(
        oversized_off.max_concurrency > collapse,
        "{oversized_off:?}"
    );
    assert!(
        oversized_on.max_concurrency < collapse,
        "{}",
        oversized_on.max_concurrency
    );
    assert!(
        oversized_on.error_share() <= 0.001,
        "{}",
        oversized_on.error_share()
    );
    let ratio = oversized_on.last_served_ms as f64 / tuned.last_served_ms as f64;
    assert!(ratio <= 1.25, "last served {ratio:.3}× the hand-tuned one");
    println!(
        "tuned {} ms, adaptive {} ms ({ratio:.3}×)",
        tuned.last_served_ms, oversized_on.last_served_ms
    );
}

#[test]
fn the_pace_follows_a_site_that_loses_half_and_regains_it() {
    let mut setup = hand_tuned(80_000, 1.0, true);
    setup.changes = vec![(40_000, 25), (80_000, 50)];
    let site = setup.site;
    let before = visitors_per_minute(50, &site, setup.journey);
    let during = visitors_per_minute(25, &site, setup.journey);
    let outcome = Simulation::new(setup).run();
    assert!(outcome.error_share() <= 0.001, "{}", outcome.error_share());
    for second in 55..80 {
        let pace = outcome.pace_at(second);
        assert!(
            (pace - during).abs() <= 0.2 * during,
            "at {second} s the pace is {pace:.0} against {during:.0}: {:?}",
            &outcome.pace[35..]
        );
    }
    let back = (80..111).any(|second| outcome.pace_at(second) >= 0.8 * before);
    assert!(back, "{:?}", &outcome.pace[75..]);
}

#[test]
fn a_healthy_correctly_sized_site_loses_little() {
    let visitors = 200_000;
    let off = Simulation::new(hand_tuned(visitors, 1.0, false)).run();
    let on = Simulation::new(hand_tuned(visitors, 1.0, true)).run();
    let cost = on.last_served_ms as f64 / off.last_served_ms as f64;
    println!(
        "off {} ms, on {} ms ({cost:.3}×)",
        off.last_served_ms, on.last_served_ms
    );
    assert!(cost <= 1.05, "adaptive on takes {cost:.3}× as long");
    assert_eq!(on.visitors_with_errors, 0);
}

#[test]
fn a_gateway_that_stops_reporting_neither_freezes_nor_skews_the_pace() {
    let mut setup = hand_tuned(40_000, 10.0, true);
    setup.gateways = 2;
    setup.gateway_stops_at = Some(20_000);
    let outcome = Simulation::new(setup).run();
    assert!(outcome.max_concurrency < bench_site().collapse);
    assert!(outcome.error_share() <= 0.001, "{}", outcome.error_share());
    // The pace went on moving after the stop.
    let after: Vec<f64> = outcome
        .pace
        .iter()
        .filter(|(at, _)| *at > 25)
        .map(|(_, p)| *p)
        .collect();
    assert!(after.windows(2).any(|pair| pair[0] != pair[1]));
}
