//! Idempotency keys: the one a client sends (checked, then scoped to the
//! visitor) and the one made for a request sent without.
//!
//! The store, the workers and the booking site know a request by the key
//! made here, never by the client's own: two visitors who send the same
//! `Idempotency-Key` (one app's constant, a guess, a copied request) are two
//! bookings, and neither is answered with the other's receipt.

use std::net::IpAddr;

use http::HeaderValue;
use sha2::{Digest, Sha256};

/// Longest accepted `Idempotency-Key`.
const MAX_KEY_BYTES: usize = 255;

/// Whose requests a client's key tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyScope<'a> {
    /// The visitor's pass id, which a pass keeps through its renewals.
    Pass(&'a str),
    /// No pass (the store was down under `on_error = "admit"`): the client
    /// key (its address, IPv6 by /64), the only identity left. Two people
    /// behind one address who send the same key share it.
    Client(IpAddr),
}

impl<'a> KeyScope<'a> {
    /// The pass when there is one (`pass` is empty without), else the client.
    pub fn of(pass: &'a str, client: IpAddr) -> KeyScope<'a> {
        if pass.is_empty() {
            KeyScope::Client(client)
        } else {
            KeyScope::Pass(pass)
        }
    }
}

/// The client's `Idempotency-Key`, if it is 1 to 255 visible ASCII
/// characters (surrounding blanks trimmed).
pub fn client_key(value: &HeaderValue) -> Option<&str> {
    let key = value.to_str().ok()?.trim();
    let visible = key.bytes().all(|byte| byte.is_ascii_graphic());
    ((1..=MAX_KEY_BYTES).contains(&key.len()) && visible).then_some(key)
}

/// The key a client's key is stored, delivered and sent to the site by:
/// `key-` and the SHA-256 (hex) of the buffer, the scope and the client's
/// key. It is the same for every resubmission and every delivery of one
/// visitor's request (so the store and the site deduplicate it), different
/// for another visitor, another buffer or another key, and 68 visible ASCII
/// characters whatever the client sent, so any site that takes an
/// `Idempotency-Key` of up to 255 takes it. The digest hides the pass id
/// from the site; nobody can aim at another visitor's key without their
/// pass.
pub fn scoped_key(buffer: &str, scope: KeyScope<'_>, client_key: &str) -> String {
    // Fields are separated by a newline, which none of them can hold (a
    // buffer name is `[a-z0-9_-]`, a pass id hex, a key visible ASCII), so
    // two different inputs never run together into one.
    let mut digest = Sha256::new();
    digest.update(b"anteroom idempotency key\n");
    digest.update(buffer.as_bytes());
    digest.update(b"\n");
    match scope {
        KeyScope::Pass(pass) => {
            digest.update(b"pass\n");
            digest.update(pass.as_bytes());
        }
        KeyScope::Client(client) => {
            digest.update(b"client\n");
            digest.update(client.to_string().as_bytes());
        }
    }
    digest.update(b"\n");
    digest.update(client_key.as_bytes());
    format!("key-{:x}", digest.finalize())
}

/// The key of a request sent without `Idempotency-Key` (a browser's form
/// post cannot send one): the same request from the same visitor's pass is
/// the same booking, so a double click or a resubmitted form is not booked
/// twice. Without a pass (the store was down under `on_error = "admit"`),
/// every request is its own: `receipt`, the fresh receipt id.
pub fn automatic_key(pass: &str, fingerprint: &str, receipt: &str) -> String {
    if pass.is_empty() {
        return receipt.to_owned();
    }
    let digest = Sha256::new()
        .chain_update(pass.as_bytes())
        .chain_update(b"\n")
        .chain_update(fingerprint.as_bytes())
        .finalize();
    format!("auto-{:x}", digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASS_A: &str = "0123456789abcdef0123456789abcdef";
    const PASS_B: &str = "fedcba9876543210fedcba9876543210";

    #[test]
    fn client_keys_are_visible_ascii_up_to_255() {
        assert_eq!(
            client_key(&HeaderValue::from_static("abc-123")),
            Some("abc-123")
        );
        assert_eq!(client_key(&HeaderValue::from_static(" abc ")), Some("abc"));
        assert_eq!(client_key(&HeaderValue::from_static("")), None);
        assert_eq!(client_key(&HeaderValue::from_static("a b")), None);
        let long = "k".repeat(256);
        assert_eq!(client_key(&HeaderValue::from_str(&long).unwrap()), None);
        let longest = "k".repeat(255);
        assert!(client_key(&HeaderValue::from_str(&longest).unwrap()).is_some());
    }

    #[test]
    fn one_key_from_two_passes_is_two_keys() {
        let first = scoped_key("bookings", KeyScope::Pass(PASS_A), "same");
        let second = scoped_key("bookings", KeyScope::Pass(PASS_B), "same");
        assert_ne!(first, second);
    }

    #[test]
    fn a_scoped_key_is_the_same_for_every_resubmission() {
        assert_eq!(
            scoped_key("bookings", KeyScope::Pass(PASS_A), "k-1"),
            scoped_key("bookings", KeyScope::Pass(PASS_A), "k-1")
        );
        // A renewed pass keeps its id, so its keys are unchanged: nothing of
        // the pass but its id goes in.
        assert_eq!(
            scoped_key(
                "bookings",
                KeyScope::of(PASS_A, [10, 0, 0, 1].into()),
                "k-1"
            ),
            scoped_key(
                "bookings",
                KeyScope::of(PASS_A, [10, 0, 0, 2].into()),
                "k-1"
            )
        );
    }

    #[test]
    fn the_buffer_the_key_and_the_kind_of_scope_each_tell_keys_apart() {
        let base = scoped_key("bookings", KeyScope::Pass(PASS_A), "k");
        assert_ne!(base, scoped_key("orders", KeyScope::Pass(PASS_A), "k"));
        assert_ne!(base, scoped_key("bookings", KeyScope::Pass(PASS_A), "k2"));
        let first_client = KeyScope::Client([10, 0, 0, 1].into());
        let second_client = KeyScope::Client([10, 0, 0, 2].into());
        assert_ne!(
            scoped_key("bookings", first_client, "k"),
            scoped_key("bookings", second_client, "k")
        );
        // A pass id and an address are never confused, whatever they spell.
        assert_ne!(
            scoped_key("bookings", KeyScope::Pass("10.0.0.1"), "k"),
            scoped_key("bookings", first_client, "k")
        );
        // Fields do not run together.
        assert_ne!(
            scoped_key("bookings", KeyScope::Pass("ab"), "c"),
            scoped_key("bookings", KeyScope::Pass("a"), "bc")
        );
    }

    #[test]
    fn without_a_pass_the_client_is_the_scope() {
        let client: IpAddr = [192, 0, 2, 7].into();
        assert_eq!(KeyScope::of("", client), KeyScope::Client(client));
        assert_eq!(KeyScope::of(PASS_A, client), KeyScope::Pass(PASS_A));
    }

    #[test]
    fn a_scoped_key_is_a_key_any_site_takes_and_never_an_automatic_one() {
        for sent in ["k", &"k".repeat(255), "auto-x", "key-x"] {
            let scoped = scoped_key("bookings", KeyScope::Pass(PASS_A), sent);
            assert_eq!(scoped.len(), 68, "{scoped}");
            assert!(scoped.starts_with("key-"), "{scoped}");
            assert!(
                scoped[4..]
                    .bytes()
                    .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte)),
                "{scoped}"
            );
            let header = HeaderValue::from_str(&scoped).unwrap();
            assert_eq!(client_key(&header), Some(scoped.as_str()));
        }
        let automatic = automatic_key(PASS_A, "fingerprint", "bookings.x");
        assert!(automatic.starts_with("auto-"), "{automatic}");
        assert_eq!(automatic_key("", "fingerprint", "bookings.x"), "bookings.x");
    }
}
