//! The draw: the order of a room's pre-queue at its opening, as a keyed
//! permutation of the pre-queue's ticket numbers that anyone holding the
//! published seed can recompute.
//!
//! Every visitor who arrives between `pre_queue_from` and `opens_at` gets a
//! ticket `1..=P`. At the opening, the room's secret *seed* (fixed, and its
//! SHA-256 *commitment* published, before the pre-queue opened) is revealed,
//! and ticket `t` goes to place [`place`]`(seed, P, t)`. The function is a
//! bijection on `1..=P` computed on demand, so the store keeps no list: a
//! pre-queue visitor's place is derived from their ticket, and "who is at
//! place k" is [`ticket_at`]`(seed, P, k)`. Zero bytes per waiting visitor.
//!
//! # The algorithm, `anteroom-draw-v1` ([`ALGORITHM`])
//!
//! Precise enough to reimplement (`docs/draw.md` has a Python version and
//! the test vectors):
//!
//! 1. `h = max(1, ceil(bits(P - 1) / 2))`, where `bits(v)` is the number of
//!    bits of `v` (0 for 0): the domain is `0 .. 2^(2h)`, the smallest one
//!    of an even number of bits (at least 2) that holds `0 .. P`.
//! 2. The round function, for round `i` in `0..8` and an `h`-bit half `r`:
//!    `F(i, r) = first 8 bytes, big-endian, of
//!    HMAC-SHA-256(key = seed's 32 bytes,
//!    message = "anteroom-draw-v1" ‖ P as 8 bytes big-endian ‖ i as 1 byte ‖
//!    r as 8 bytes big-endian)`, keeping the low `h` bits.
//! 3. One pass `E(x)` of the Feistel network on `x` in `0 .. 2^(2h)`:
//!    `L = x >> h`, `R = x mod 2^h`; for `i` in `0..8`:
//!    `(L, R) = (R, L xor F(i, R))`; then `E(x) = L << h | R`.
//! 4. Cycle-walking: `place(t) = y + 1`, where `y` is the first of
//!    `E(t-1), E(E(t-1)), …` that is below `P`. The inverse walks the
//!    inverse network (`(L, R) = (R xor F(i, L), L)` for `i` from 7 down
//!    to 0) the same way.
//!
//! **Why HMAC-SHA-256.** The round function must be a pseudo-random
//! function keyed by the seed. HMAC is the standard construction of one
//! from a hash, it is in every language's standard library (Python:
//! `hmac.new(seed, message, "sha256")`), and it needs no argument about
//! length extension that a bare `SHA-256(seed ‖ …)` would. The message
//! carries the algorithm's name (another use of the same seed cannot give
//! the same values), `P` (each pre-queue size is its own permutation) and
//! the round (each round its own function).
//!
//! **Why 8 rounds.** A balanced Feistel network over a pseudo-random
//! function is a pseudo-random permutation from 4 rounds on (Luby and
//! Rackoff); more rounds close the distance to a random permutation further
//! on small domains (Patarin). Nobody sees a single value before the seed
//! is revealed, so the bar is "no pattern", not resistance to chosen
//! queries; 8 rounds is twice the proven minimum, at 8 HMAC calls a pass.
//!
//! **Why cycle-walking always ends, and quickly.** `E` is a permutation of
//! the domain, so the sequence `x, E(x), E(E(x)), …` runs around the cycle
//! of `E` that holds `x` and comes back to `x` itself, which is below `P`:
//! the walk ends within that cycle's length. Restricted this way, `E`
//! becomes a permutation of `0..P` (Black and Rogaway, "Ciphers with
//! arbitrary finite domains", 2002), and walking `E⁻¹` undoes it. How long:
//! with `b = bits(P - 1)`, `2^(b-1) < P` (for `P ≥ 2`) and `2h ≤ b + 1`, so
//! the domain `2^(2h) ≤ 2^(b+1) < 4P`: at least a quarter of it is below
//! `P`, and a walk takes on average fewer than 4 steps (about 1.07 at
//! `P = 10^9`, whose domain is `2^30`). `P = 1` has the domain 4 = 4P,
//! and its one ticket is at place 1.
//!
//! Any `P` up to `u64::MAX` works (`h ≤ 32`, so every value fits a `u64`).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

mod public;
#[cfg(test)]
mod tests;

pub use public::{DrawState, PublicDraw, VerifiedDraw, VerifyError};

/// The name and version of the draw this build computes, as the public
/// draw JSON's `algorithm` says it. Any change to the order it gives (for
/// the same seed, `P` and ticket) is a new version.
pub const ALGORITHM: &str = "anteroom-draw-v1: Feistel-HMAC-SHA256, 8 rounds, cycle-walking";

/// The Feistel network's rounds.
pub const ROUNDS: u8 = 8;

/// Opens every round function's message: the algorithm, so that no other
/// use of a seed can give the same values.
const TAG: &[u8; 16] = b"anteroom-draw-v1";

/// A seed's length in bytes (its hex is twice as long).
pub const SEED_BYTES: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// A room's secret until its draw: 32 random bytes. Its hex is
/// [`Seed::to_hex`]; `Debug` does not show it, so that a seed cannot reach
/// a log by accident before it is due.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Seed([u8; SEED_BYTES]);

/// The lowercase hex SHA-256 of a seed's bytes, published before the
/// pre-queue opens. Its `Display` is that hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commitment([u8; 32]);

/// Why a seed or a commitment's text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    #[error("{length} characters, expected {expected} (lowercase hex of {} bytes)", .expected / 2)]
    Length { length: usize, expected: usize },
    #[error("{found:?} at character {position} is not lowercase hex (0-9, a-f)")]
    NotLowercaseHex { position: usize, found: char },
}

/// Why a ticket or a place is outside the draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DrawError {
    #[error("the pre-queue is empty: there is no ticket {0} in it")]
    Empty(u64),
    #[error("ticket {ticket} is not in the pre-queue (tickets 1 to {pre_queue})")]
    NoSuchTicket { ticket: u64, pre_queue: u64 },
    #[error("place {place} is not in the draw (places 1 to {pre_queue})")]
    NoSuchPlace { place: u64, pre_queue: u64 },
}

/// The draw of one seed over a pre-queue of `P` tickets. Building it keys
/// the HMAC once; [`Draw::place`] and [`Draw::ticket_at`] then cost
/// `8 × (walk steps)` HMAC calls each, fewer than 4 steps on average.
#[derive(Clone)]
pub struct Draw {
    key: HmacSha256,
    pre_queue: u64,
    half_bits: u32,
}

/// Ticket `ticket`'s place (`1..=P`) in the draw of `seed` over `P =
/// pre_queue` tickets.
///
/// ```
/// use anteroom_store::draw::{self, Seed};
///
/// // Seed C of docs/draw.md's test vectors.
/// let seed = Seed::from_hex("4cbc371f3c7cfe8933f2d55c80778d1a84f359df137b0092b5c43513fe606196")?;
/// assert_eq!(
///     seed.commitment().to_hex(),
///     "17e534be40f2db353188d8b8178bce2de86e6d1ed81e648d442102be88cd5952"
/// );
/// assert_eq!(draw::place(&seed, 10_000, 9_999)?, 9_171);
/// assert_eq!(draw::ticket_at(&seed, 10_000, 9_171)?, 9_999);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn place(seed: &Seed, pre_queue: u64, ticket: u64) -> Result<u64, DrawError> {
    Draw::new(seed, pre_queue).place(ticket)
}

/// The ticket at place `place` (`1..=P`): the inverse of [`place`].
pub fn ticket_at(seed: &Seed, pre_queue: u64, place: u64) -> Result<u64, DrawError> {
    Draw::new(seed, pre_queue).ticket_at(place)
}

impl Seed {
    /// A fresh seed from the thread's CSPRNG (rand's `ThreadRng`: ChaCha,
    /// seeded and reseeded from the operating system).
    pub fn generate() -> Seed {
        use rand::Rng;
        let mut bytes = [0u8; SEED_BYTES];
        rand::rng().fill(&mut bytes);
        Seed(bytes)
    }

    pub fn from_bytes(bytes: [u8; SEED_BYTES]) -> Seed {
        Seed(bytes)
    }

    /// Reads 64 lowercase hex characters, as the draw JSON carries a seed.
    pub fn from_hex(text: &str) -> Result<Seed, HexError> {
        decode_hex(text).map(Seed)
    }

    /// The seed as 64 lowercase hex characters: what is published at the draw.
    pub fn to_hex(&self) -> String {
        encode_hex(&self.0)
    }

    pub fn as_bytes(&self) -> &[u8; SEED_BYTES] {
        &self.0
    }

    /// SHA-256 of the seed's 32 bytes (not of its hex).
    pub fn commitment(&self) -> Commitment {
        Commitment(Sha256::digest(self.0).into())
    }
}

impl std::fmt::Debug for Seed {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Seed(…)")
    }
}

impl Commitment {
    /// Reads 64 lowercase hex characters, as the draw JSON carries it.
    pub fn from_hex(text: &str) -> Result<Commitment, HexError> {
        decode_hex(text).map(Commitment)
    }

    pub fn to_hex(&self) -> String {
        encode_hex(&self.0)
    }

    /// Whether `seed` is the one this commits to.
    pub fn is_of(&self, seed: &Seed) -> bool {
        seed.commitment() == *self
    }
}

impl std::fmt::Display for Commitment {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.to_hex())
    }
}

impl Draw {
    pub fn new(seed: &Seed, pre_queue: u64) -> Draw {
        Draw {
            key: HmacSha256::new_from_slice(&seed.0).expect("HMAC accepts keys of any length"),
            pre_queue,
            half_bits: half_bits(pre_queue),
        }
    }

    /// `P`, the number of pre-queue tickets.
    pub fn pre_queue(&self) -> u64 {
        self.pre_queue
    }

    /// Ticket `ticket`'s place, `1..=P`.
    pub fn place(&self, ticket: u64) -> Result<u64, DrawError> {
        if self.pre_queue == 0 {
            return Err(DrawError::Empty(ticket));
        }
        if !(1..=self.pre_queue).contains(&ticket) {
            return Err(DrawError::NoSuchTicket {
                ticket,
                pre_queue: self.pre_queue,
            });
        }
        Ok(self.walk(ticket - 1, |x| self.encrypt(x)) + 1)
    }

    /// The ticket at place `place`, `1..=P`.
    pub fn ticket_at(&self, place: u64) -> Result<u64, DrawError> {
        if self.pre_queue == 0 {
            return Err(DrawError::Empty(place));
        }
        if !(1..=self.pre_queue).contains(&place) {
            return Err(DrawError::NoSuchPlace {
                place,
                pre_queue: self.pre_queue,
            });
        }
        Ok(self.walk(place - 1, |y| self.decrypt(y)) + 1)
    }

    /// Applies `step` until the value is below `P` again. Ends: `step` is a
    /// permutation of the domain and `start < P` is on its own cycle (see
    /// the module's documentation).
    fn walk(&self, start: u64, step: impl Fn(u64) -> u64) -> u64 {
        let mut value = step(start);
        while value >= self.pre_queue {
            value = step(value);
        }
        value
    }

    fn encrypt(&self, value: u64) -> u64 {
        let (mut left, mut right) = (value >> self.half_bits, value & self.mask());
        for round in 0..ROUNDS {
            (left, right) = (right, left ^ self.round(round, right));
        }
        (left << self.half_bits) | right
    }

    fn decrypt(&self, value: u64) -> u64 {
        let (mut left, mut right) = (value >> self.half_bits, value & self.mask());
        for round in (0..ROUNDS).rev() {
            (left, right) = (right ^ self.round(round, left), left);
        }
        (left << self.half_bits) | right
    }

    fn mask(&self) -> u64 {
        (1u64 << self.half_bits) - 1
    }

    /// `F(round, half)`: the low `h` bits of the first 8 bytes of
    /// HMAC-SHA-256(seed, TAG ‖ P ‖ round ‖ half).
    fn round(&self, round: u8, half: u64) -> u64 {
        let mut mac = self.key.clone();
        mac.update(TAG);
        mac.update(&self.pre_queue.to_be_bytes());
        mac.update(&[round]);
        mac.update(&half.to_be_bytes());
        let digest = mac.finalize().into_bytes();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first) & self.mask()
    }
}

impl std::fmt::Debug for Draw {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Draw")
            .field("pre_queue", &self.pre_queue)
            .field("half_bits", &self.half_bits)
            .finish_non_exhaustive()
    }
}

/// `h`: half the bits of the smallest even-bit domain (at least 2 bits)
/// that holds `0..P`. At most 32.
fn half_bits(pre_queue: u64) -> u32 {
    let bits = u64::BITS - pre_queue.saturating_sub(1).leading_zeros();
    bits.div_ceil(2).max(1)
}

fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

fn decode_hex(text: &str) -> Result<[u8; 32], HexError> {
    let length = text.chars().count();
    if length != 64 {
        return Err(HexError::Length {
            length,
            expected: 64,
        });
    }
    if let Some((position, found)) = text
        .chars()
        .enumerate()
        .find(|(_, found)| !matches!(found, '0'..='9' | 'a'..='f'))
    {
        return Err(HexError::NotLowercaseHex {
            position: position + 1,
            found,
        });
    }
    // 64 ASCII hex digits from here on.
    let nibble = |digit: u8| match digit {
        b'0'..=b'9' => digit - b'0',
        _ => digit - b'a' + 10,
    };
    let mut bytes = [0u8; 32];
    for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
        *byte = (nibble(pair[0]) << 4) | nibble(pair[1]);
    }
    Ok(bytes)
}
