//! The draw's cost: a pre-queue ticket's place (what the gateway computes
//! to tell a visitor where they stand after the opening), the ticket at a
//! place, and keying a draw. 8 HMAC-SHA-256 calls per Feistel pass, fewer
//! than 4 passes on average (about 1.07 at P = 10^9, whose domain is 2^30).
//!
//! `cargo bench -p anteroom-store --bench draw`
//! (`cargo test --all-targets` runs each benchmark once, as a test.)

use std::hint::black_box;

use anteroom_store::draw::{Draw, Seed};
use criterion::{Criterion, criterion_group, criterion_main};

fn draw(c: &mut Criterion) {
    let seed = Seed::from_bytes([42; 32]);
    // 10^9: a domain just above P; 2^30 + 1: the worst ratio, a domain of
    // 2^32, almost 4 P.
    for pre_queue in [10_000u64, 1_000_000_000, (1 << 30) + 1] {
        let draw = Draw::new(&seed, pre_queue);
        let mut ticket = 0u64;
        c.bench_function(&format!("place, P = {pre_queue}"), |b| {
            b.iter(|| {
                ticket = ticket % pre_queue + 1;
                black_box(draw.place(black_box(ticket)))
            })
        });
        let mut place = 0u64;
        c.bench_function(&format!("ticket_at, P = {pre_queue}"), |b| {
            b.iter(|| {
                place = place % pre_queue + 1;
                black_box(draw.ticket_at(black_box(place)))
            })
        });
    }
    c.bench_function("Draw::new", |b| {
        b.iter(|| black_box(Draw::new(black_box(&seed), 1_000_000_000)))
    });
}

criterion_group!(benches, draw);
criterion_main!(benches);
