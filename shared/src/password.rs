//! Password hashes: argon2id PHC strings, made by `mqctl security hash-password` and checked by
//! the node, with one implementation for both.
//!
//! ```text
//! $argon2id$v=19$m=19456,t=2,p=1$<salt, base64>$<hash, base64>
//! ```
//!
//! [`hash`] uses the parameters of [`crate::defaults`] (`m=19456` KiB, `t=2`, `p=1`) and a
//! random 16-byte salt. [`PasswordHash::parse`] accepts any argon2id string whose costs stay
//! within the `PASSWORD_HASH_MAX_*` bounds, since each verification pays them.
//! Verification compares in constant time and costs tens of milliseconds by design: callers on
//! an async runtime run it on a blocking thread.

use std::fmt;

use argon2::password_hash::phc;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::defaults;

/// Why a string is not a usable password hash, or a hash could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Not a PHC string at all.
    #[error("not a PHC password hash ({0}); make one with `mqctl security hash-password`")]
    NotPhc(String),
    /// A PHC string of another algorithm.
    #[error("password hash uses '{0}', want argon2id ($argon2id$...)")]
    NotArgon2id(String),
    /// Missing or out-of-range parameters.
    #[error("bad argon2id parameters: {0}")]
    BadParams(String),
    /// The hash could not be computed (no randomness for the salt, out of memory).
    #[error("cannot hash the password: {0}")]
    Hashing(String),
}

/// A checked argon2id PHC string. `Display` prints it whole (for writing a security file);
/// `Debug` shows only the algorithm and costs, so a stray `{:?}` does not hand out material
/// for an offline guess of the password.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash {
    phc: String,
}

impl PasswordHash {
    /// Checks `s`: a PHC string of argon2id, version 19, with a salt, a hash and costs within
    /// `defaults::PASSWORD_HASH_MAX_*`.
    pub fn parse(s: &str) -> Result<PasswordHash, PasswordError> {
        let parsed = phc::PasswordHash::new(s).map_err(|e| PasswordError::NotPhc(e.to_string()))?;
        let algorithm = parsed.algorithm.as_str();
        if algorithm != Algorithm::Argon2id.ident().as_str() {
            return Err(PasswordError::NotArgon2id(algorithm.to_string()));
        }
        if parsed.version.is_some_and(|v| v != Version::V0x13 as u32) {
            return Err(PasswordError::BadParams("want version v=19".into()));
        }
        if parsed.salt.is_none() || parsed.hash.is_none() {
            return Err(PasswordError::NotPhc("missing salt or hash".into()));
        }
        let params =
            Params::try_from(&parsed).map_err(|e| PasswordError::BadParams(e.to_string()))?;
        let over = |what: &str, got: u32, max: u32| {
            PasswordError::BadParams(format!("{what}={got} is above the limit of {max}"))
        };
        if params.m_cost() > defaults::PASSWORD_HASH_MAX_M_COST_KIB {
            return Err(over(
                "m",
                params.m_cost(),
                defaults::PASSWORD_HASH_MAX_M_COST_KIB,
            ));
        }
        if params.t_cost() > defaults::PASSWORD_HASH_MAX_T_COST {
            return Err(over(
                "t",
                params.t_cost(),
                defaults::PASSWORD_HASH_MAX_T_COST,
            ));
        }
        if params.p_cost() > defaults::PASSWORD_HASH_MAX_P_COST {
            return Err(over(
                "p",
                params.p_cost(),
                defaults::PASSWORD_HASH_MAX_P_COST,
            ));
        }
        Ok(PasswordHash { phc: s.to_string() })
    }

    /// Whether `password` is the one this hash was made from (constant-time compare; slow).
    pub fn verify(&self, password: &str) -> bool {
        // Parsed again: cheap next to the hash itself, and `parse` already checked it.
        match phc::PasswordHash::new(&self.phc) {
            Ok(h) => Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok(),
            Err(_) => false,
        }
    }

    /// The PHC string.
    pub fn as_str(&self) -> &str {
        &self.phc
    }
}

impl fmt::Display for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.phc)
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `$argon2id$v=19$m=..,t=..,p=..$salt$hash`: keep the first four fields.
        let head: Vec<&str> = self.phc.splitn(5, '$').take(4).collect();
        write!(f, "PasswordHash({}$***)", head.join("$"))
    }
}

impl std::str::FromStr for PasswordHash {
    type Err = PasswordError;

    fn from_str(s: &str) -> Result<Self, PasswordError> {
        PasswordHash::parse(s)
    }
}

/// Hashes `password` with argon2id, the default costs and a random salt: the PHC string for a
/// security file's `password` key.
pub fn hash(password: &str) -> Result<PasswordHash, PasswordError> {
    let params = Params::new(
        defaults::PASSWORD_HASH_M_COST_KIB,
        defaults::PASSWORD_HASH_T_COST,
        defaults::PASSWORD_HASH_P_COST,
        None,
    )
    .map_err(|e| PasswordError::BadParams(e.to_string()))?;
    let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let phc = hasher
        .hash_password(password.as_bytes())
        .map_err(|e| PasswordError::Hashing(e.to_string()))?;
    Ok(PasswordHash {
        phc: phc.to_string(),
    })
}

/// Whether `password` matches the PHC string `phc` ([`PasswordHash::parse`] then
/// [`PasswordHash::verify`]).
pub fn verify(password: &str, phc: &str) -> Result<bool, PasswordError> {
    Ok(PasswordHash::parse(phc)?.verify(password))
}

/// The password as `mqctl security hash-password` reads it from stdin: one trailing newline
/// (`\n` or `\r\n`) removed, as `echo` and a terminal add one; anything else, spaces included,
/// is part of the password.
pub fn from_stdin_text(input: &str) -> &str {
    input
        .strip_suffix("\r\n")
        .or_else(|| input.strip_suffix('\n'))
        .unwrap_or(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() -> Result<(), PasswordError> {
        let h = hash("s3cret pass")?;
        assert!(h.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(h.verify("s3cret pass"));
        assert!(!h.verify("s3cret pas"));
        assert!(!h.verify(""));
        assert!(verify("s3cret pass", h.as_str())?);
        // A fresh salt each time.
        assert_ne!(hash("s3cret pass")?, h);
        // What `hash` makes, `parse` takes.
        assert_eq!(PasswordHash::parse(h.as_str())?, h);
        Ok(())
    }

    #[test]
    fn parse_rejects_what_it_cannot_verify_cheaply() {
        let reject = |s: &str| PasswordHash::parse(s).expect_err(s);
        assert!(matches!(reject("plain"), PasswordError::NotPhc(_)));
        assert!(matches!(reject(""), PasswordError::NotPhc(_)));
        assert!(matches!(
            reject("$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"),
            PasswordError::NotArgon2id(a) if a == "argon2i"
        ));
        assert!(matches!(
            reject("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ"),
            PasswordError::NotPhc(_)
        ));
        let big = "$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
        assert!(matches!(reject(big), PasswordError::BadParams(m) if m.contains("m=4194304")));
        let slow = "$argon2id$v=19$m=19456,t=100,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
        assert!(matches!(reject(slow), PasswordError::BadParams(m) if m.contains("t=100")));
        let old = "$argon2id$v=16$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
        assert!(matches!(reject(old), PasswordError::BadParams(_)));
    }

    #[test]
    fn verify_of_a_malformed_string_is_an_error_not_a_mismatch() {
        assert!(verify("x", "$argon2id$garbage").is_err());
    }

    #[test]
    fn debug_hides_salt_and_hash() -> Result<(), PasswordError> {
        let h = hash("pw")?;
        let shown = format!("{h:?}");
        assert_eq!(shown, "PasswordHash($argon2id$v=19$m=19456,t=2,p=1$***)");
        Ok(())
    }

    #[test]
    fn one_trailing_newline_is_not_part_of_the_password() {
        assert_eq!(from_stdin_text("pw\n"), "pw");
        assert_eq!(from_stdin_text("pw\r\n"), "pw");
        assert_eq!(from_stdin_text("pw\n\n"), "pw\n");
        assert_eq!(from_stdin_text("pw "), "pw ");
        assert_eq!(from_stdin_text("pw"), "pw");
        assert_eq!(from_stdin_text("\n"), "");
    }
}
