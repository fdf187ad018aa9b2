//! Signed tickets and passes: the visitor's own state, carried in cookies.
//!
//! Wire form: `KID.PAYLOAD.SIG`, all URL-safe base64 without padding.
//! `KID` names the key that signed (the first 4 bytes of a hash of the key,
//! so the key itself is never revealed), `PAYLOAD` is a short `|`-separated
//! text, `SIG` is HMAC-SHA256 over `KID.PAYLOAD`. The first configured key
//! signs; every configured key verifies, so keys can rotate without logging
//! anybody out.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use anteroom_store::Millis;

type HmacSha256 = Hmac<Sha256>;

/// Longest token we are willing to look at. Real ones are about 120 bytes;
/// anything longer is not ours and is rejected before any decoding.
pub const MAX_TOKEN_LEN: usize = 512;

/// A place in a room's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub room: String,
    /// The room's epoch when the ticket was issued; a ticket of another epoch
    /// is void.
    pub epoch: u64,
    pub number: u64,
    pub issued_at: Millis,
}

/// Being inside a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pass {
    pub room: String,
    /// The room's epoch when the pass was issued or last renewed. A pass of
    /// an older epoch (the store lost its state) rejoins the room's count.
    pub epoch: u64,
    /// Identifies the slot in the store (32 hex digits).
    pub id: String,
    pub admitted_at: Millis,
    /// Last activity known when the pass was signed: the session ends
    /// `session` after it unless renewed.
    pub last_seen: Millis,
}

/// The cookie keys, the first of which signs.
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<(String, HmacSha256)>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("Keyring").field("key_ids", &ids).finish()
    }
}

impl Keyring {
    /// Builds the keyring. `secrets` must not be empty (config guarantees it
    /// or the gateway generates a key).
    pub fn new<S: AsRef<[u8]>>(secrets: &[S]) -> Keyring {
        let keys = secrets
            .iter()
            .map(|secret| {
                let secret = secret.as_ref();
                let digest = Sha256::new()
                    .chain_update(b"anteroom key id\0")
                    .chain_update(secret)
                    .finalize();
                let id = URL_SAFE_NO_PAD.encode(&digest[..4]);
                let mac =
                    HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
                (id, mac)
            })
            .collect();
        Keyring { keys }
    }

    pub fn sign_ticket(&self, ticket: &Ticket) -> String {
        self.sign(&format!(
            "t|{}|{}|{}|{}",
            ticket.room, ticket.epoch, ticket.number, ticket.issued_at
        ))
    }

    pub fn sign_pass(&self, pass: &Pass) -> String {
        self.sign(&format!(
            "p|{}|{}|{}|{}|{}",
            pass.room, pass.epoch, pass.id, pass.admitted_at, pass.last_seen
        ))
    }

    /// A ticket, if `token` is a genuine one.
    pub fn verify_ticket(&self, token: &str) -> Option<Ticket> {
        let payload = self.verify(token)?;
        let [room, epoch, number, issued_at] = fields(&payload, "t")?;
        Some(Ticket {
            room: room.to_owned(),
            epoch: epoch.parse().ok()?,
            number: number.parse().ok()?,
            issued_at: issued_at.parse().ok()?,
        })
    }

    /// A pass, if `token` is a genuine one.
    pub fn verify_pass(&self, token: &str) -> Option<Pass> {
        let payload = self.verify(token)?;
        let [room, epoch, id, admitted_at, last_seen] = fields(&payload, "p")?;
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(Pass {
            room: room.to_owned(),
            epoch: epoch.parse().ok()?,
            id: id.to_owned(),
            admitted_at: admitted_at.parse().ok()?,
            last_seen: last_seen.parse().ok()?,
        })
    }

    fn sign(&self, payload: &str) -> String {
        let (id, mac) = &self.keys[0];
        let body = format!("{id}.{}", URL_SAFE_NO_PAD.encode(payload));
        let mut mac = mac.clone();
        mac.update(body.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{body}.{signature}")
    }

    /// The payload of a token signed by one of our keys.
    fn verify(&self, token: &str) -> Option<String> {
        if token.len() > MAX_TOKEN_LEN {
            return None;
        }
        let (body, signature) = token.rsplit_once('.')?;
        let (key_id, payload) = body.split_once('.')?;
        let (_, mac) = self.keys.iter().find(|(id, _)| id == key_id)?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        let mut mac = mac.clone();
        mac.update(body.as_bytes());
        // verify_slice compares in constant time.
        mac.verify_slice(&signature).ok()?;
        String::from_utf8(URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
    }
}

impl Keyring {
    /// The pass id a ticket is swapped for: derived from the ticket with the
    /// signing key, so that every claim of one ticket (a retry after a lost
    /// reply, a status poll racing a page load) asks for the same pass, and
    /// nobody without the key can predict it.
    pub fn pass_id_for(&self, ticket: &Ticket) -> String {
        let (_, mac) = &self.keys[0];
        let mut mac = mac.clone();
        mac.update(
            format!(
                "pass-for|{}|{}|{}",
                ticket.room, ticket.epoch, ticket.number
            )
            .as_bytes(),
        );
        let digest = mac.finalize().into_bytes();
        digest[..16]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

/// The `N` fields of a payload of kind `tag` (`tag|f1|...|fN`), exactly `N`.
fn fields<'a, const N: usize>(payload: &'a str, tag: &str) -> Option<[&'a str; N]> {
    let mut parts = payload.split('|');
    if parts.next() != Some(tag) {
        return None;
    }
    let mut fields = [""; N];
    for field in &mut fields {
        *field = parts.next()?;
    }
    parts.next().is_none().then_some(fields)
}

/// A fresh pass id: 128 random bits as hex.
pub fn new_pass_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY_A: &str = "first-key-first-key-first-key-first-key!";
    const KEY_B: &str = "second-key-second-key-second-key-second-";

    fn ticket() -> Ticket {
        Ticket {
            room: "vaccini".into(),
            epoch: 77,
            number: 12_345,
            issued_at: 1_700_000_000_000,
        }
    }

    #[test]
    fn rotated_keys_verify_old_tokens() {
        let old = Keyring::new(&[KEY_A]);
        let rotated = Keyring::new(&[KEY_B, KEY_A]);
        let token = old.sign_ticket(&ticket());
        assert_eq!(rotated.verify_ticket(&token), Some(ticket()));
        // New tokens are signed with the new key, which the old ring lacks.
        assert_eq!(old.verify_ticket(&rotated.sign_ticket(&ticket())), None);
    }

    #[test]
    fn retired_key_no_longer_verifies() {
        let token = Keyring::new(&[KEY_A]).sign_ticket(&ticket());
        assert_eq!(Keyring::new(&[KEY_B]).verify_ticket(&token), None);
    }

    #[test]
    fn a_ticket_is_not_a_pass() {
        let keys = Keyring::new(&[KEY_A]);
        assert_eq!(keys.verify_pass(&keys.sign_ticket(&ticket())), None);
    }

    #[test]
    fn rejects_garbage() {
        let keys = Keyring::new(&[KEY_A]);
        for token in ["", ".", "..", "a.b.c", "x.y", &"A".repeat(5000), "ü.ö.ä"] {
            assert_eq!(keys.verify_ticket(token), None, "{token}");
        }
    }

    proptest! {
        #[test]
        fn ticket_round_trips(room in "[a-z0-9_-]{1,32}", epoch in 0u64..1<<53, number: u64, issued_at: u64) {
            let keys = Keyring::new(&[KEY_A]);
            let ticket = Ticket { room, epoch, number, issued_at };
            prop_assert_eq!(keys.verify_ticket(&keys.sign_ticket(&ticket)), Some(ticket));
        }

        #[test]
        fn pass_round_trips(room in "[a-z0-9_-]{1,32}", epoch: u64, id: u128, admitted_at: u64, last_seen: u64) {
            let keys = Keyring::new(&[KEY_A]);
            let pass = Pass { room, epoch, id: format!("{id:032x}"), admitted_at, last_seen };
            prop_assert_eq!(keys.verify_pass(&keys.sign_pass(&pass)), Some(pass));
        }

        /// Changing any one character of a token makes it invalid (or, if
        /// the change is an equivalent base64 spelling, decodes to the same
        /// ticket): never a different, accepted ticket.
        #[test]
        fn tampering_never_yields_another_ticket(index in 0usize..200, replacement in "[A-Za-z0-9_.-]") {
            let keys = Keyring::new(&[KEY_A]);
            let token = keys.sign_ticket(&ticket());
            let index = index % token.len();
            let mut tampered = token.clone();
            tampered.replace_range(index..=index, &replacement);
            match keys.verify_ticket(&tampered) {
                None => {}
                Some(found) => prop_assert_eq!(found, ticket()),
            }
        }
    }
}
