//! Accounts' passwords: the rules a password must meet, and argon2id hashing as pure
//! computation. The hub never hashes on its own thread (a hash costs tens of milliseconds by
//! design): it hands out [`Work`] through [`crate::hub::Hub::poll_work`], the shell runs
//! [`Work::run`] on a worker thread and hands back the [`WorkDone`]. The salt comes from the
//! caller (the hub's seeded RNG), so this module reads no randomness and no clock.

use crate::limits::{PASSWORD_MAX_BYTES, PASSWORD_MIN_CHARS};
use crate::types::Password;
use argon2::password_hash::{PasswordHash as Phc, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// An argon2id hash in PHC string form (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`): what an
/// account keeps of its password. It names its own cost, so hashes made with other settings
/// still verify.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordHash(pub String);

impl core::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PasswordHash(…)")
    }
}

/// The cost of a new hash. [`HashCost::OWASP`] by default; tests use [`HashCost::TEST`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashCost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
}

impl HashCost {
    /// OWASP's first recommendation for argon2id: 19 MiB, two passes, one lane.
    pub const OWASP: HashCost = HashCost {
        memory_kib: 19 * 1024,
        iterations: 2,
    };

    /// Cheap, for tests only: the same code path in a fraction of the time.
    pub const TEST: HashCost = HashCost {
        memory_kib: 64,
        iterations: 1,
    };

    /// Whether argon2 takes this cost (at least 8 KiB and one pass; at most its own maximums):
    /// a server checks it at start and on reload, so that no registration meets it first.
    pub fn is_usable(self) -> bool {
        self.hasher().is_ok()
    }

    fn hasher(self) -> Result<Argon2<'static>, PasswordError> {
        let params = Params::new(self.memory_kib, self.iterations, 1, None)
            .map_err(|_| PasswordError::Cost)?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

impl Default for HashCost {
    fn default() -> HashCost {
        HashCost::OWASP
    }
}

/// Why a password or hash was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PasswordError {
    /// Shorter than [`PASSWORD_MIN_CHARS`].
    #[error("a password needs at least {PASSWORD_MIN_CHARS} characters")]
    TooShort,
    /// Longer than [`PASSWORD_MAX_BYTES`].
    #[error("a password may have at most {PASSWORD_MAX_BYTES} bytes")]
    TooLong,
    /// Holds a control character (a line break, NUL, ESC…).
    #[error("a password may not hold control characters")]
    Control,
    /// The configured cost is not one argon2 accepts.
    #[error("the password hashing cost is not valid")]
    Cost,
    /// A stored hash that does not parse.
    #[error("a stored password hash is damaged")]
    Damaged,
}

/// Whether `p` may be an account's password.
pub fn check_password(p: &Password) -> Result<(), PasswordError> {
    if p.0.len() > PASSWORD_MAX_BYTES {
        return Err(PasswordError::TooLong);
    }
    if p.0.chars().count() < PASSWORD_MIN_CHARS {
        return Err(PasswordError::TooShort);
    }
    if p.0.chars().any(char::is_control) {
        return Err(PasswordError::Control);
    }
    Ok(())
}

/// Hashes `p` with `salt` at `cost`.
pub fn hash_password(
    p: &Password,
    salt: &[u8; 16],
    cost: HashCost,
) -> Result<PasswordHash, PasswordError> {
    let salt = SaltString::encode_b64(salt).map_err(|_| PasswordError::Cost)?;
    let hash = cost
        .hasher()?
        .hash_password(p.0.as_bytes(), &salt)
        .map_err(|_| PasswordError::Cost)?;
    Ok(PasswordHash(hash.to_string()))
}

/// Whether `p` is the password `hash` was made from (argon2's comparison is constant-time).
pub fn verify_password(p: &Password, hash: &PasswordHash) -> Result<bool, PasswordError> {
    let phc = Phc::new(&hash.0).map_err(|_| PasswordError::Damaged)?;
    Ok(Argon2::default()
        .verify_password(p.0.as_bytes(), &phc)
        .is_ok())
}

/// The hub's number for a piece of [`Work`], echoed in its [`WorkDone`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkId(pub u64);

/// Slow, pure computation the hub needs done off its thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    /// Hash a new password.
    Hash {
        /// Echoed.
        id: WorkId,
        /// The password.
        password: Password,
        /// The salt.
        salt: [u8; 16],
        /// The cost.
        cost: HashCost,
    },
    /// Check a password against a hash (a decoy hash when the account does not exist, so the
    /// answer takes as long either way).
    Verify {
        /// Echoed.
        id: WorkId,
        /// The password.
        password: Password,
        /// The hash.
        hash: PasswordHash,
    },
}

/// What a piece of [`Work`] came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkDone {
    /// The work's id.
    pub id: WorkId,
    /// Its result.
    pub outcome: Outcome,
}

/// The result of one piece of [`Work`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The new hash.
    Hashed(PasswordHash),
    /// Whether the password matched.
    Verified(bool),
    /// It could not be done.
    Failed(PasswordError),
}

impl Work {
    /// The work's id.
    pub fn id(&self) -> WorkId {
        match self {
            Work::Hash { id, .. } | Work::Verify { id, .. } => *id,
        }
    }

    /// Does it (slow by design: run it off the hub's thread).
    pub fn run(self) -> WorkDone {
        let id = self.id();
        let outcome = match self {
            Work::Hash {
                password,
                salt,
                cost,
                ..
            } => match hash_password(&password, &salt, cost) {
                Ok(h) => Outcome::Hashed(h),
                Err(e) => Outcome::Failed(e),
            },
            Work::Verify { password, hash, .. } => match verify_password(&password, &hash) {
                Ok(ok) => Outcome::Verified(ok),
                Err(e) => Outcome::Failed(e),
            },
        };
        WorkDone { id, outcome }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> Password {
        Password(s.into())
    }

    #[test]
    fn rules() {
        assert_eq!(check_password(&pw("short")), Err(PasswordError::TooShort));
        assert_eq!(
            check_password(&pw("éééééééé")),
            Ok(()),
            "characters, not bytes"
        );
        assert_eq!(
            check_password(&pw(&"x".repeat(PASSWORD_MAX_BYTES + 1))),
            Err(PasswordError::TooLong)
        );
        assert_eq!(
            check_password(&pw("line\nbreak!")),
            Err(PasswordError::Control)
        );
        assert_eq!(check_password(&pw("correct horse")), Ok(()));
    }

    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = hash_password(&pw("correct horse"), &[7; 16], HashCost::TEST).unwrap();
        assert!(h.0.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{}", h.0);
        assert!(!h.0.contains("correct"));
        assert_eq!(verify_password(&pw("correct horse"), &h), Ok(true));
        assert_eq!(verify_password(&pw("correct horsf"), &h), Ok(false));
        let other = hash_password(&pw("correct horse"), &[8; 16], HashCost::TEST).unwrap();
        assert_ne!(h, other, "the salt matters");
        assert_eq!(
            verify_password(&pw("x"), &PasswordHash("nonsense".into())),
            Err(PasswordError::Damaged)
        );
    }

    #[test]
    fn the_default_cost_is_owasps() {
        let h = hash_password(&pw("correct horse"), &[1; 16], HashCost::default()).unwrap();
        assert!(
            h.0.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            h.0
        );
    }

    #[test]
    fn work_runs_and_echoes_its_id() {
        let done = Work::Hash {
            id: WorkId(3),
            password: pw("correct horse"),
            salt: [2; 16],
            cost: HashCost::TEST,
        }
        .run();
        assert_eq!(done.id, WorkId(3));
        let Outcome::Hashed(hash) = done.outcome else {
            panic!("{done:?}")
        };
        let done = Work::Verify {
            id: WorkId(4),
            password: pw("correct horse"),
            hash,
        }
        .run();
        assert_eq!(done.outcome, Outcome::Verified(true));
    }
}
