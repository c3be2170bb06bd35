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
        // No usable hash (a member made by SSO has none): the same argon2
        // time as a real check, so timing does not tell such accounts apart.
        Err(_) => {
            verify_against_dummy(password);
            false
        }
    }
}

/// Spends the same time as a real check when the account does not exist, so
/// response time does not reveal which emails are registered.
pub fn verify_against_dummy(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let hash = DUMMY.get_or_init(|| hash_password("not-a-real-password").unwrap_or_default());
    let _ = verify_password(password, hash);
}

/// Hashes in flight per process. Each argon2id run holds 19 MiB and a core
/// for a few tens of milliseconds; a flood of sign-ins must queue, not
/// multiply memory until the function dies.
pub const MAX_CONCURRENT_HASHES: usize = 2;
/// How long a sign-in waits for a hashing slot before it is told to retry.
pub const HASH_QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

fn hashing_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_CONCURRENT_HASHES);
    &SLOTS
}

/// Runs one hashing job on the blocking pool, at most
/// [`MAX_CONCURRENT_HASHES`] at once; 503 `busy` (retry in a second) when no
/// slot frees up within [`HASH_QUEUE_WAIT`].
async fn capped<T: Send + 'static>(job: impl FnOnce() -> T + Send + 'static) -> Result<T, crate::error::AppError> {
    let busy = || {
        crate::error::AppError::new(
            http::StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many sign-ins at once; retry in a second",
        )
        .with_header(http::header::RETRY_AFTER, http::HeaderValue::from_static("1"))
    };
    let _slot = tokio::time::timeout(HASH_QUEUE_WAIT, hashing_slots().acquire())
        .await
        .map_err(|_| busy())?
        .map_err(|_| busy())?;
    tokio::task::spawn_blocking(job).await.map_err(crate::error::AppError::internal)
}

/// [`hash_password`] within the per-process cap.
pub async fn hash(password: &str) -> Result<String, crate::error::AppError> {
    let password = password.to_owned();
    capped(move || hash_password(&password)).await?.map_err(crate::error::AppError::internal)
}

/// [`verify_password`] within the per-process cap.
pub async fn verify(password: &str, stored_hash: &str) -> Result<bool, crate::error::AppError> {
    let (password, stored_hash) = (password.to_owned(), stored_hash.to_owned());
    capped(move || verify_password(&password, &stored_hash)).await
}

/// [`verify_against_dummy`] within the per-process cap.
pub async fn verify_dummy(password: &str) -> Result<(), crate::error::AppError> {
    let password = password.to_owned();
    capped(move || verify_against_dummy(&password)).await
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
