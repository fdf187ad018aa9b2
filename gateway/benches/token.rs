//! Signing and verifying tickets and passes: the HMAC-SHA256 work on the
//! request path. An admitted visitor's request verifies a pass (and re-signs
//! it at most every 30 s), a waiting visitor's poll verifies a ticket, a new
//! arrival signs a ticket, a claim derives a pass id and signs a pass.
//!
//! `cargo bench -p anteroom-gateway --bench token`
//! (`cargo test --all-targets` runs each benchmark once, as a test.)

use std::hint::black_box;

use anteroom_gateway::token::{Keyring, Pass, Ticket};
use criterion::{Criterion, criterion_group, criterion_main};

const KEY: &str = "bench-cookie-key-0123456789abcdefghijklmnop";
const OLD_KEY: &str = "bench-older-key-0123456789abcdefghijklmnopq";

fn ticket() -> Ticket {
    Ticket {
        room: "vaccini".to_owned(),
        epoch: 1_700_000_000_123,
        number: 123_456,
        issued_at: 1_700_000_012_345,
    }
}

fn pass() -> Pass {
    Pass {
        room: "vaccini".to_owned(),
        epoch: 1_700_000_000_123,
        id: format!("{:032x}", 0x0123_4567_89ab_cdef_0123_4567_89ab_cdef_u128),
        admitted_at: 1_700_000_012_345,
        last_seen: 1_700_000_042_345,
    }
}

fn tokens(c: &mut Criterion) {
    let keys = Keyring::new(&[KEY]);
    // After a rotation: a token signed with the older key is found second.
    let rotated = Keyring::new(&[KEY, OLD_KEY]);
    let signed_by_old_key = Keyring::new(&[OLD_KEY]).sign_pass(&pass());
    let signed_ticket = keys.sign_ticket(&ticket());
    let signed_pass = keys.sign_pass(&pass());
    // A forged pass: right shape, wrong signature (its first character
    // changed, which still decodes), so verification runs the HMAC and
    // fails at the comparison.
    let signature_at = signed_pass.rfind('.').map_or(0, |dot| dot + 1);
    let mut forged_pass = signed_pass.clone();
    let replacement = if signed_pass[signature_at..].starts_with('A') {
        "B"
    } else {
        "A"
    };
    forged_pass.replace_range(signature_at..=signature_at, replacement);
    assert!(
        keys.verify_pass(&forged_pass).is_none(),
        "the forgery must be rejected"
    );
    assert!(
        rotated.verify_pass(&signed_by_old_key).is_some(),
        "old keys verify"
    );

    let (ticket, pass) = (ticket(), pass());
    let mut group = c.benchmark_group("token");
    group.bench_function("sign_ticket", |b| {
        b.iter(|| keys.sign_ticket(black_box(&ticket)))
    });
    group.bench_function("verify_ticket", |b| {
        b.iter(|| keys.verify_ticket(black_box(&signed_ticket)))
    });
    group.bench_function("sign_pass", |b| b.iter(|| keys.sign_pass(black_box(&pass))));
    group.bench_function("verify_pass", |b| {
        b.iter(|| keys.verify_pass(black_box(&signed_pass)))
    });
    group.bench_function("verify_pass_rotated_key", |b| {
        b.iter(|| rotated.verify_pass(black_box(&signed_by_old_key)))
    });
    group.bench_function("reject_forged_pass", |b| {
        b.iter(|| keys.verify_pass(black_box(&forged_pass)))
    });
    group.bench_function("pass_id_for", |b| {
        b.iter(|| keys.pass_id_for(black_box(&ticket)))
    });
    group.finish();
}

criterion_group!(benches, tokens);
criterion_main!(benches);
