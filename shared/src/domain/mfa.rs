//! TOTP multi-factor authentication: enrolment, codes, backup codes (no I/O).
//!
//! The rules live here: which time steps a code may match (RFC 6238's
//! ±1 step, never one at or before the last step accepted, so a code works
//! once), what a typed code is ([`MfaCode`]: six digits, or a backup code
//! `12345-67890`), how backup codes and sign-in challenge tokens
//! ([`MfaToken`], `mfa.<tenant>.<challenge>.<secret>`) are made, and the
//! stored enrolment and challenge ([`MfaEnrollment`], [`MfaChallenge`]).
//! The HMAC-SHA1 of a step is computed by the caller (the auth crate uses
//! `totp-rs`), so the window rules are tested here with any code generator.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use rand::{Rng, RngCore, rngs::OsRng};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// RFC 6238's recommended step.
pub const STEP_SECONDS: i64 = 30;
/// Six digits: what every authenticator app shows.
pub const DIGITS: usize = 6;
/// Steps accepted either side of the current one (clock drift, a code typed
/// as it rolled over): RFC 6238 §5.2 recommends one.
pub const WINDOW_STEPS: i64 = 1;
/// 160 bits, RFC 4226's recommended secret length.
pub const SECRET_BYTES: usize = 20;
/// Backup codes per set (issue 14: at least 10).
pub const BACKUP_CODE_COUNT: usize = 10;
/// A sign-in challenge lives five minutes.
pub const CHALLENGE_TTL_SECONDS: i64 = 300;
/// A forced enrolment needs the time to install an app and scan a code.
pub const ENROLLMENT_TTL_SECONDS: i64 = 600;
/// Wrong codes that use up a challenge: the holder must sign in again.
pub const MAX_CHALLENGE_ATTEMPTS: i64 = 5;
/// A setup nobody verified is forgotten after an hour (TTL).
pub const PENDING_SETUP_TTL_SECONDS: i64 = 3600;
/// The issuer authenticator apps show beside the account (no `:`).
pub const ISSUER: &str = "SaaS Platform";
/// What a setup answers about its backup codes.
pub const RECOVERY_INSTRUCTIONS: &str = "Store backup codes in secure location. Each code signs you in once when \
your authenticator is not at hand; they are shown only now. Generate a new set with POST /v1/auth/mfa/backup-codes.";

crate::string_enum!(
    /// How a second factor is proven: only TOTP for now (seed 000).
    MfaMethod {
        Totp => "totp",
    }
);

crate::string_enum!(
    /// What a challenge accepts: a TOTP code or one of the backup codes.
    CodeKind {
        Totp => "totp",
        BackupCode => "backup_code",
    }
);

crate::string_enum!(
    /// A setup waiting for its first code, or MFA in force.
    MfaState {
        Pending => "pending",
        Enabled => "enabled",
    }
);

crate::string_enum!(
    /// What an `mfa_token` lets its holder do: finish a sign-in with a code
    /// (`POST /v1/auth/mfa/challenge`), or, in a tenant that requires MFA,
    /// enrol (`POST /v1/auth/mfa/setup` and `/verify`).
    ChallengePurpose {
        SignIn => "sign_in",
        Enrollment => "enrollment",
    }
);

/// The time step a Unix time falls in.
pub fn step_of(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(STEP_SECONDS)
}

/// The step `code` belongs to, if it is the code of a step within
/// [`WINDOW_STEPS`] of `now` and after `last_step` (the last one accepted:
/// a code is good once). `code_at` computes a step's code.
pub fn matching_step(
    code: &str,
    unix_now: i64,
    last_step: Option<i64>,
    code_at: impl Fn(i64) -> String,
) -> Option<i64> {
    let current = step_of(unix_now);
    // Every candidate is compared, so the time taken does not say which
    // step matched.
    let mut found = None;
    for step in current - WINDOW_STEPS..=current + WINDOW_STEPS {
        let fresh = last_step.is_none_or(|last| step > last);
        let equal: bool = code_at(step).as_bytes().ct_eq(code.as_bytes()).into();
        if equal && fresh && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// A TOTP shared secret (raw bytes); never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Vec<u8>);

impl TotpSecret {
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; SECRET_BYTES];
        OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

/// A backup code, `12345-67890` (seed 000's shape): ten random digits,
/// about 33 bits, single use, and only ever tried under the challenge's
/// attempt limit and the account's throttle.
#[derive(Clone, PartialEq, Eq)]
pub struct BackupCode(String);

impl BackupCode {
    pub fn generate() -> Self {
        let n: u64 = OsRng.gen_range(0..10_000_000_000);
        Self(format!("{:05}-{:05}", n / 100_000, n % 100_000))
    }

    /// [`BACKUP_CODE_COUNT`] distinct codes.
    pub fn generate_set() -> Vec<Self> {
        let mut codes: Vec<Self> = Vec::with_capacity(BACKUP_CODE_COUNT);
        while codes.len() < BACKUP_CODE_COUNT {
            let code = Self::generate();
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
        codes
    }

    /// Ten digits, with or without the dash (as typed or pasted).
    pub fn parse(value: &str) -> Option<Self> {
        let digits: String = value.chars().filter(|c| *c != '-').collect();
        let dashes = value.len() - digits.len();
        let dash_in_place = dashes == 0 || (dashes == 1 && value.as_bytes().get(5) == Some(&b'-'));
        (digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit()) && dash_in_place)
            .then(|| Self(format!("{}-{}", &digits[..5], &digits[5..])))
    }

    /// The canonical form, `12345-67890`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for BackupCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BackupCode(..)")
    }
}

/// A code as typed: six digits (TOTP) or a backup code. Spaces are ignored
/// (apps show `123 456`).
#[derive(Clone, PartialEq, Eq)]
pub enum MfaCode {
    Totp(String),
    Backup(BackupCode),
}

impl MfaCode {
    pub fn parse(value: &str) -> Result<Self, String> {
        let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
        if compact.len() == DIGITS && compact.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(Self::Totp(compact));
        }
        BackupCode::parse(&compact).map(Self::Backup).ok_or_else(|| {
            "must be a 6-digit code from the authenticator app or a backup code (12345-67890)".to_owned()
        })
    }

    pub fn kind(&self) -> CodeKind {
        match self {
            Self::Totp(_) => CodeKind::Totp,
            Self::Backup(_) => CodeKind::BackupCode,
        }
    }
}

impl std::fmt::Debug for MfaCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MfaCode({}, ..)", self.kind())
    }
}

impl<'de> Deserialize<'de> for MfaCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = super::values::Text::<1, 32>::deserialize(deserializer)?;
        Self::parse(text.as_str()).map_err(serde::de::Error::custom)
    }
}

crate::inline_schema!(
    MfaCode,
    "MfaCode",
    string(6, 13)
        .pattern(Some("^(\\d{3} ?\\d{3}|\\d{5}-?\\d{5})$"))
        .description(Some("A 6-digit code from the authenticator app, or a backup code (`12345-67890`)"))
);

/// An `mfa_token`: `mfa.<tenant>.<challenge>.<secret>`. The ids route the
/// lookup (one GetItem), the 256-bit secret proves possession, only its
/// SHA-256 is stored.
pub struct MfaToken {
    pub tenant_id: Uuid,
    pub challenge_id: Uuid,
    pub secret: String,
}

impl MfaToken {
    pub const PREFIX: &'static str = "mfa";

    pub fn generate(tenant_id: Uuid) -> Self {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        Self { tenant_id, challenge_id: Uuid::now_v7(), secret: URL_SAFE_NO_PAD.encode(bytes) }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        let mut parts = raw.split('.');
        let (Some(Self::PREFIX), Some(t), Some(c), Some(secret), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        Some(Self {
            tenant_id: Uuid::parse_str(t).ok()?,
            challenge_id: Uuid::parse_str(c).ok()?,
            secret: secret.to_owned(),
        })
    }

    pub fn encode(&self) -> String {
        format!("{}.{}.{}.{}", Self::PREFIX, self.tenant_id, self.challenge_id, self.secret)
    }

    pub fn hash(&self) -> String {
        Sha256::digest(self.secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for MfaToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MfaToken({}, {}, ..)", self.tenant_id, self.challenge_id)
    }
}

/// A user's MFA (`store::mfa`): the secret is sealed beside it, backup codes
/// are kept as keyed hashes (`store::mfa::backup_code_hash`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MfaEnrollment {
    pub user_id: Uuid,
    pub method: MfaMethod,
    pub status: MfaState,
    #[serde(default)]
    pub device_name: Option<String>,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub enabled_at: Option<DateTime<Utc>>,
    /// The last time step whose code was accepted.
    #[serde(default)]
    pub last_step: Option<i64>,
    /// Keyed hash of each unused backup code -> 1 (a map, so one code is
    /// removed by a conditional `REMOVE backup_codes.#h`).
    #[serde(default)]
    pub backup_codes: std::collections::BTreeMap<String, i64>,
}

impl MfaEnrollment {
    pub fn pending(user_id: Uuid, device_name: Option<String>, backup_code_hashes: Vec<String>) -> Self {
        Self {
            user_id,
            method: MfaMethod::Totp,
            status: MfaState::Pending,
            device_name,
            created_at: super::now(),
            enabled_at: None,
            last_step: None,
            backup_codes: backup_code_hashes.into_iter().map(|h| (h, 1)).collect(),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.status == MfaState::Enabled
    }

    /// What the status route and audit entries show (no secret, no hash).
    pub fn view(&self) -> MfaStatusView {
        MfaStatusView {
            enabled: self.is_enabled(),
            pending_setup: self.status == MfaState::Pending,
            method: Some(self.method),
            device_name: self.device_name.clone(),
            backup_codes_remaining: if self.is_enabled() { self.backup_codes.len() } else { 0 },
            enabled_at: self.enabled_at,
        }
    }

    /// The view of a user without MFA.
    pub fn none_view() -> MfaStatusView {
        MfaStatusView {
            enabled: false,
            pending_setup: false,
            method: None,
            device_name: None,
            backup_codes_remaining: 0,
            enabled_at: None,
        }
    }
}

/// A user's MFA as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MfaStatusView {
    /// Sign-ins ask for a code.
    pub enabled: bool,
    /// A setup waits for its first code (`POST /v1/auth/mfa/verify`).
    pub pending_setup: bool,
    pub method: Option<MfaMethod>,
    pub device_name: Option<String>,
    /// Unused backup codes (0 until MFA is enabled).
    pub backup_codes_remaining: usize,
    pub enabled_at: Option<DateTime<Utc>>,
}

/// A pending second step of a sign-in (`store::mfa`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MfaChallenge {
    pub id: Uuid,
    pub user_id: Uuid,
    pub purpose: ChallengePurpose,
    /// SHA-256 of the token's secret.
    pub token_hash: String,
    /// Codes tried so far (reserved before each check).
    #[serde(default)]
    pub attempts: i64,
    /// Unix seconds; also the item's TTL.
    pub expires_at: i64,
    pub created_at: DateTime<Utc>,
}

impl MfaChallenge {
    /// A challenge for `user_id`, and the token that opens it.
    pub fn issue(tenant_id: Uuid, user_id: Uuid, purpose: ChallengePurpose) -> (Self, MfaToken) {
        let token = MfaToken::generate(tenant_id);
        let ttl = match purpose {
            ChallengePurpose::SignIn => CHALLENGE_TTL_SECONDS,
            ChallengePurpose::Enrollment => ENROLLMENT_TTL_SECONDS,
        };
        let now = super::now();
        let challenge = Self {
            id: token.challenge_id,
            user_id,
            purpose,
            token_hash: token.hash(),
            attempts: 0,
            expires_at: now.timestamp() + ttl,
            created_at: now,
        };
        (challenge, token)
    }

    pub fn ttl_seconds(&self) -> i64 {
        (self.expires_at - super::now().timestamp()).max(0)
    }

    pub fn is_expired(&self, unix_now: i64) -> bool {
        self.expires_at <= unix_now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A code generator where each step's code is its number: the window
    /// rules do not depend on the HMAC.
    fn code_at(step: i64) -> String {
        format!("{:06}", step.rem_euclid(1_000_000))
    }

    #[test]
    fn a_code_matches_the_current_step_and_one_either_side() {
        let now = 1_700_000_015; // inside step 56_666_667
        let current = step_of(now);
        assert_eq!(current, 56_666_667);
        for step in [current - 1, current, current + 1] {
            assert_eq!(matching_step(&code_at(step), now, None, code_at), Some(step));
        }
        for step in [current - 2, current + 2] {
            assert_eq!(matching_step(&code_at(step), now, None, code_at), None, "step {step} is outside the window");
        }
        // The window follows the clock: the step's first and last seconds.
        let first = current * STEP_SECONDS;
        assert_eq!(matching_step(&code_at(current - 1), first, None, code_at), Some(current - 1));
        assert_eq!(matching_step(&code_at(current - 1), first + STEP_SECONDS, None, code_at), None);
    }

    #[test]
    fn a_code_is_accepted_once_and_never_after_a_later_one() {
        let now = 1_700_000_015;
        let current = step_of(now);
        // Accepted at `current`: the same code again, or an earlier step's, is a replay.
        assert_eq!(matching_step(&code_at(current), now, Some(current), code_at), None);
        assert_eq!(matching_step(&code_at(current - 1), now, Some(current), code_at), None);
        // The next step's code is still good.
        assert_eq!(matching_step(&code_at(current + 1), now, Some(current), code_at), Some(current + 1));
        assert_eq!(matching_step(&code_at(current), now, Some(current - 1), code_at), Some(current));
    }

    #[test]
    fn backup_codes_have_seed_000s_shape_and_are_distinct() {
        let codes = BackupCode::generate_set();
        assert_eq!(codes.len(), BACKUP_CODE_COUNT);
        for code in &codes {
            let s = code.as_str();
            assert_eq!(s.len(), 11, "{s}");
            assert_eq!(&s[5..6], "-");
            assert!(s[..5].bytes().chain(s[6..].bytes()).all(|b| b.is_ascii_digit()), "{s}");
            assert_eq!(BackupCode::parse(s).as_ref(), Some(code));
        }
        let unique: std::collections::BTreeSet<&str> = codes.iter().map(BackupCode::as_str).collect();
        assert_eq!(unique.len(), BACKUP_CODE_COUNT);
    }

    #[test]
    fn a_typed_code_is_a_totp_code_or_a_backup_code() {
        assert_eq!(MfaCode::parse("123456"), Ok(MfaCode::Totp("123456".into())));
        assert_eq!(MfaCode::parse("123 456"), Ok(MfaCode::Totp("123456".into())));
        let backup = MfaCode::parse("12345-67890").expect("backup code");
        assert_eq!(backup.kind(), CodeKind::BackupCode);
        assert_eq!(MfaCode::parse("1234567890"), Ok(backup.clone()));
        assert_eq!(MfaCode::parse(" 12345-67890 "), Ok(backup));
        for bad in ["", "12345", "1234567", "abcdef", "1234-567890", "12345--67890", "12345-6789x", "123456789012"] {
            assert!(MfaCode::parse(bad).is_err(), "{bad:?} is not a code");
        }
    }

    #[test]
    fn an_mfa_token_round_trips_and_refuses_other_shapes() {
        let tenant = Uuid::now_v7();
        let (challenge, token) = MfaChallenge::issue(tenant, Uuid::now_v7(), ChallengePurpose::SignIn);
        let raw = token.encode();
        assert!(raw.starts_with(&format!("mfa.{tenant}.")));
        let parsed = MfaToken::parse(&raw).expect("parses");
        assert_eq!((parsed.tenant_id, parsed.challenge_id), (tenant, challenge.id));
        assert_eq!(parsed.hash(), challenge.token_hash);
        assert_eq!(challenge.expires_at - challenge.created_at.timestamp(), CHALLENGE_TTL_SECONDS);
        for bad in ["", "mfa", &raw.replacen("mfa.", "rt.", 1), &format!("{raw}.x"), "mfa.x.y.z"] {
            assert!(MfaToken::parse(bad).is_none(), "{bad:?}");
        }
        assert!(!format!("{parsed:?}").contains(&parsed.secret), "the secret is not printed");
    }
}
