//! The public draw JSON of the contract (`GET /_anteroom/draw?room=NAME`),
//! and its check: the seed against the commitment, the algorithm against
//! this build's.

use serde::{Deserialize, Serialize};

use super::{ALGORITHM, Commitment, Draw, HexError, Seed};

/// `{"room","state","commitment","seed","pre_queue","opens_at","algorithm"}`:
/// what a room publishes about its draw. Unknown fields are ignored when
/// read (the contract may add some).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicDraw {
    pub room: String,
    pub state: DrawState,
    /// Lowercase hex SHA-256 of the seed's bytes, published before the
    /// pre-queue opens.
    pub commitment: String,
    /// Lowercase hex; `null` until drawn.
    #[serde(default)]
    pub seed: Option<String>,
    /// The number of pre-queue tickets, `P` (final once drawn).
    pub pre_queue: u64,
    /// RFC 3339.
    #[serde(default)]
    pub opens_at: Option<String>,
    pub algorithm: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DrawState {
    /// The seed is still secret; only its commitment is public.
    Pending,
    /// The seed is public and `pre_queue` final.
    Drawn,
}

/// A draw whose seed matches its commitment, computed by this build's
/// algorithm.
#[derive(Debug, Clone)]
pub struct VerifiedDraw {
    pub room: String,
    pub commitment: Commitment,
    pub draw: Draw,
}

/// Why a public draw could not be checked, or did not check out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("room {room:?}: commitment: {source}")]
    BadCommitment {
        room: String,
        #[source]
        source: HexError,
    },
    #[error(
        "room {room:?}: the draw is still pending (the seed is revealed at the opening{}); nothing to check yet",
        opens_at.as_deref().map(|at| format!(", {at}")).unwrap_or_default()
    )]
    Pending {
        room: String,
        opens_at: Option<String>,
    },
    #[error("room {room:?}: the draw says it is drawn but its seed is null")]
    NoSeed { room: String },
    #[error("room {room:?}: seed: {source}")]
    BadSeed {
        room: String,
        #[source]
        source: HexError,
    },
    #[error(
        "room {room:?}: THE SEED DOES NOT MATCH THE COMMITMENT: SHA-256 of the seed is {seed_hash}, the commitment is {commitment}"
    )]
    Mismatch {
        room: String,
        commitment: Commitment,
        seed_hash: Commitment,
    },
    #[error(
        "room {room:?}: algorithm {found:?} is not the one this build computes ({ALGORITHM:?}); use a verifier for that algorithm"
    )]
    UnknownAlgorithm { room: String, found: String },
}

impl PublicDraw {
    /// Before the opening: the commitment, and no seed.
    pub fn pending(room: &str, seed: &Seed, pre_queue: u64, opens_at: Option<String>) -> Self {
        PublicDraw {
            room: room.to_owned(),
            state: DrawState::Pending,
            commitment: seed.commitment().to_hex(),
            seed: None,
            pre_queue,
            opens_at,
            algorithm: ALGORITHM.to_owned(),
        }
    }

    /// From the opening: the seed too, and the final `pre_queue`.
    pub fn drawn(room: &str, seed: &Seed, pre_queue: u64, opens_at: Option<String>) -> Self {
        PublicDraw {
            state: DrawState::Drawn,
            seed: Some(seed.to_hex()),
            ..PublicDraw::pending(room, seed, pre_queue, opens_at)
        }
    }

    /// Checks that the draw is made, that its seed is the one committed to
    /// (a mismatch is reported whatever the algorithm), and that its
    /// algorithm is this build's; then gives the draw to recompute.
    pub fn verify(&self) -> Result<VerifiedDraw, VerifyError> {
        let room = || self.room.clone();
        let commitment = Commitment::from_hex(&self.commitment).map_err(|source| {
            VerifyError::BadCommitment {
                room: room(),
                source,
            }
        })?;
        if self.state == DrawState::Pending {
            return Err(VerifyError::Pending {
                room: room(),
                opens_at: self.opens_at.clone(),
            });
        }
        let seed = self
            .seed
            .as_deref()
            .ok_or_else(|| VerifyError::NoSeed { room: room() })?;
        let seed = Seed::from_hex(seed).map_err(|source| VerifyError::BadSeed {
            room: room(),
            source,
        })?;
        if !commitment.is_of(&seed) {
            return Err(VerifyError::Mismatch {
                room: room(),
                commitment,
                seed_hash: seed.commitment(),
            });
        }
        if self.algorithm != ALGORITHM {
            return Err(VerifyError::UnknownAlgorithm {
                room: room(),
                found: self.algorithm.clone(),
            });
        }
        Ok(VerifiedDraw {
            room: room(),
            commitment,
            draw: Draw::new(&seed, self.pre_queue),
        })
    }
}

impl VerifyError {
    /// The seed was checked and is not the one committed to (as opposed to
    /// a draw that cannot be checked).
    pub fn is_mismatch(&self) -> bool {
        matches!(self, VerifyError::Mismatch { .. })
    }
}
