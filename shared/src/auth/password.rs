//! Password hashing with argon2id (OWASP parameters: 19 MiB, 2 passes, 1 lane).

use std::sync::{Mutex, OnceLock, PoisonError};

use argon2::{
    Algorithm, Argon2, Block, Params, Version,
    password_hash::{
        self, Decimal, Ident, Output, ParamsString, PasswordHash, PasswordHasher, PasswordVerifier, Salt, SaltString,
        rand_core::OsRng,
    },
};

pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    KeptMemoryArgon2
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
}

pub fn verify_password(password: &str, stored_hash: &str) -> bool {
    match PasswordHash::new(stored_hash) {
        Ok(parsed) => KeptMemoryArgon2.verify_password(password.as_bytes(), &parsed).is_ok(),
        // No usable hash (a member made by SSO has none): the same argon2
        // time as a real check, so timing does not tell such accounts apart.
        Err(_) => {
            verify_against_dummy(password);
            false
        }
    }
}

/// argon2 as the crate computes it, in working memory kept between hashes.
///
/// The crate allocates its 19 MiB of blocks afresh for every hash, and glibc
/// serves an allocation that large with a new mapping (template.yaml pins
/// `MALLOC_MMAP_THRESHOLD_`): ~4,900 page faults per sign-in, a third of its
/// CPU (docs/performance.md, "Levers"). Here the blocks are allocated once
/// per hashing slot and wiped after each use. The PHC string, the parameters
/// read from a stored hash and the constant-time comparison of
/// [`PasswordVerifier`] (blanket-implemented over this hasher) are the
/// crate's; only where the blocks live differs.
struct KeptMemoryArgon2;

impl PasswordHasher for KeptMemoryArgon2 {
    type Params = Params;

    // argon2's own `hash_password_customized` and `hash_password`, with
    // `hash_password_into_with_memory` in place of `hash_password_into`.
    fn hash_password_customized<'a>(
        &self,
        password: &[u8],
        algorithm: Option<Ident<'a>>,
        version: Option<Decimal>,
        params: Params,
        salt: impl Into<Salt<'a>>,
    ) -> password_hash::Result<PasswordHash<'a>> {
        let algorithm = algorithm.map(Algorithm::try_from).transpose()?.unwrap_or_default();
        let version = version.map(Version::try_from).transpose()?.unwrap_or_default();
        let salt = salt.into();
        let mut salt_buffer = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_buffer)?;
        let output_len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        let argon2 = Argon2::new(algorithm, version, params.clone());
        let output = Output::init_with(output_len, |out| {
            with_working_memory(params.block_count(), |blocks| {
                argon2.hash_password_into_with_memory(password, salt_bytes, out, blocks)
            })
            .map_err(password_hash::Error::from)
        })?;
        Ok(PasswordHash {
            algorithm: algorithm.ident(),
            version: Some(version.into()),
            params: ParamsString::try_from(&params)?,
            salt: Some(salt),
            hash: Some(output),
        })
    }
}

/// Working memories not in use, at most one per hashing slot.
static WORKING_MEMORY: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());

/// Lends `hash` `blocks` argon2 blocks: a kept memory when one is free (grown
/// if a stored hash asks for more), else a new one, kept afterwards while
/// fewer than [`MAX_CONCURRENT_HASHES`] are. The blocks are wiped before they
/// are kept: the first blocks of a lane are a cheap function of the password
/// and salt, so leaving them in memory would let a reader of the process's
/// memory test guesses without paying argon2's memory cost.
fn with_working_memory<T>(blocks: usize, hash: impl FnOnce(&mut [Block]) -> T) -> T {
    let kept = WORKING_MEMORY.lock().unwrap_or_else(PoisonError::into_inner).pop();
    let mut memory = kept.unwrap_or_default();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let result = hash(&mut memory);
    memory.fill(Block::default());
    let mut kept = WORKING_MEMORY.lock().unwrap_or_else(PoisonError::into_inner);
    if kept.len() < MAX_CONCURRENT_HASHES {
        kept.push(memory);
    }
    result
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

    /// A hash written by the crate's own hasher (every stored hash before
    /// the kept memory, and the reference for the format).
    fn crates_own_hash(password: &str, salt: &SaltString, params: Params) -> String {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(password.as_bytes(), salt)
            .expect("hash")
            .to_string()
    }

    #[test]
    fn hashes_are_the_crates_own_for_the_same_salt() {
        let salt = SaltString::generate(&mut OsRng);
        let ours = KeptMemoryArgon2.hash_password(b"correct horse battery", &salt).expect("hash").to_string();
        assert_eq!(ours, crates_own_hash("correct horse battery", &salt, Params::default()));
        assert!(ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{ours}");
    }

    #[test]
    fn stored_hashes_verify_with_the_parameters_they_were_made_with() {
        let salt = SaltString::generate(&mut OsRng);
        // Larger and smaller memory than the default, so a kept memory is
        // both grown and used only in part.
        for (m, t) in [(24_576, 1), (8_192, 3), (19_456, 2)] {
            let params = Params::new(m, t, 1, None).expect("params");
            let stored = crates_own_hash("a fine passphrase", &salt, params);
            assert!(verify_password("a fine passphrase", &stored), "{stored}");
            assert!(!verify_password("a fine passphrasf", &stored), "{stored}");
        }
    }

    #[test]
    fn working_memory_is_wiped_and_kept_for_at_most_the_slots() {
        for _ in 0..MAX_CONCURRENT_HASHES + 2 {
            with_working_memory(16, |blocks| blocks.iter_mut().for_each(|block| block.as_mut().fill(u64::MAX)));
        }
        let kept = WORKING_MEMORY.lock().unwrap_or_else(PoisonError::into_inner);
        assert!((1..=MAX_CONCURRENT_HASHES).contains(&kept.len()), "{} kept", kept.len());
        let nonzero = kept.iter().flatten().filter(|block| block.as_ref().iter().any(|word| *word != 0)).count();
        assert_eq!(nonzero, 0, "a kept memory holds what the last hash left");
    }

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
