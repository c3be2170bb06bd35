//! Password hashing with argon2id (OWASP parameters: 19 MiB, 2 passes, 1 lane).

use std::sync::OnceLock;

use argon2::{
    Argon2,
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng},
};

pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
}

pub fn verify_password(password: &str, stored_hash: &str) -> bool {
    match PasswordHash::new(stored_hash) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// Spends the same time as a real check when the account does not exist, so
/// response time does not reveal which emails are registered.
pub fn verify_against_dummy(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let hash = DUMMY.get_or_init(|| hash_password("not-a-real-password").unwrap_or_default());
    let _ = verify_password(password, hash);
}

/// Password policy (NIST 800-63B: length over composition rules).
pub fn password_problem(password: &str, email: &str) -> Option<&'static str> {
    let chars = password.chars().count();
    if chars < 10 {
        Some("must be at least 10 characters")
    } else if chars > 128 {
        Some("must be at most 128 characters")
    } else if password.eq_ignore_ascii_case(email) {
        Some("must not be the email address")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_only_its_own_password() {
        let hash = hash_password("correct horse battery").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterx", &hash));
        assert!(!verify_password("anything", "not a hash"));
    }

    #[test]
    fn policy_refuses_short_long_and_email_passwords() {
        assert!(password_problem("short", "a@b.co").is_some());
        assert!(password_problem(&"x".repeat(129), "a@b.co").is_some());
        assert!(password_problem("Alice@Example.com", "alice@example.com").is_some());
        assert!(password_problem("a fine passphrase", "a@b.co").is_none());
    }
}
