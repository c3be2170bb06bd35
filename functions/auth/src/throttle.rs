//! Sign-in and sign-up throttling at the door (rules: `shared::domain::throttle`,
//! counters: `shared::store::throttle`). The answer to a throttled attempt is
//! the same 429 whether or not the account exists, and it comes before any
//! password is hashed.

use axum::http::{HeaderValue, StatusCode, header};
use shared::{
    AppError, AppResult, AppState,
    audit::{AuditContext, ClientInfo},
    domain::{audit::Change, throttle::ACCOUNT},
    store::throttle::{Count, Subject},
};

/// The counts that gate one attempt: an account and/or the caller's address.
pub struct Gate {
    counts: Vec<Count>,
    /// The email typed, for auditing a lockout of the account it names.
    account_email: Option<String>,
}

/// 429 `rate_limited` with `Retry-After`, telling nothing of the account.
fn throttled(wait: i64) -> AppError {
    let err = AppError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many attempts; try again in {wait} seconds"),
    )
    .with_details(serde_json::json!({"reason": "too_many_attempts", "retry_after_seconds": wait}));
    match HeaderValue::from_str(&wait.to_string()) {
        Ok(value) => err.with_header(header::RETRY_AFTER, value),
        Err(_) => err,
    }
}

impl Gate {
    /// Reads the counts (one BatchGetItem) and refuses the attempt while any
    /// subject is blocked; a refused attempt is a strike too, so a flood
    /// runs into the lockout without a password hash.
    pub async fn open(
        state: &AppState,
        account_email: Option<&str>,
        address: Option<&str>,
        client: &ClientInfo,
    ) -> AppResult<Self> {
        let mut subjects: Vec<Subject> = account_email.map(Subject::account).into_iter().collect();
        subjects.extend(address.map(Subject::address));
        Self::open_for(state, subjects, account_email, client).await
    }

    /// A gate on sign-ups from `address`: every attempt is a strike.
    pub async fn sign_up(state: &AppState, address: &str, client: &ClientInfo) -> AppResult<()> {
        Self::every_request(state, vec![Subject::sign_up(address)], client).await
    }

    /// A gate on password-reset requests for the address typed (existing
    /// or not: the answer must not tell) and from the caller's address:
    /// every request is a strike.
    pub async fn reset_request(
        state: &AppState,
        email: &str,
        address: Option<&str>,
        client: &ClientInfo,
    ) -> AppResult<()> {
        let mut subjects = vec![Subject::reset_account(email)];
        subjects.extend(address.map(Subject::reset_address));
        Self::every_request(state, subjects, client).await
    }

    /// A gate on SSO sign-ins started from `address`: every start is a strike.
    pub async fn sso_initiate(state: &AppState, address: &str, client: &ClientInfo) -> AppResult<()> {
        Self::every_request(state, vec![Subject::sso_initiate(address)], client).await
    }

    /// A gate on the verification mails a signed-in user asks for.
    pub async fn verification_mail(state: &AppState, user_id: uuid::Uuid, client: &ClientInfo) -> AppResult<()> {
        Self::every_request(state, vec![Subject::verification_mail(user_id)], client).await
    }

    /// Refuses while any subject is blocked; otherwise counts the request.
    async fn every_request(state: &AppState, subjects: Vec<Subject>, client: &ClientInfo) -> AppResult<()> {
        let gate = Self::open_for(state, subjects, None, client).await?;
        gate.failed(state, client).await
    }

    async fn open_for(
        state: &AppState,
        subjects: Vec<Subject>,
        account_email: Option<&str>,
        client: &ClientInfo,
    ) -> AppResult<Self> {
        let now = shared::domain::now().timestamp_millis();
        let gate = Self {
            counts: state.store.throttle_counts(subjects).await?,
            account_email: account_email.map(str::to_owned),
        };
        if let Some(wait) = gate.counts.iter().filter_map(|c| c.wait(now)).max() {
            gate.strike(state, client, |c| c.wait(now).is_some()).await?;
            return Err(throttled(wait));
        }
        Ok(gate)
    }

    /// A failed attempt: a strike against every subject.
    pub async fn failed(&self, state: &AppState, client: &ClientInfo) -> AppResult<()> {
        self.strike(state, client, |_| true).await
    }

    /// Strikes the chosen counts. The strike that starts an account's
    /// lockout is audited in the account's tenant when the account exists
    /// (visible to its admins, and an `audit.entry.created` event) and
    /// mailed to the account (best effort, after the audit entry); for an
    /// address that names no account nothing is written but the count.
    async fn strike(&self, state: &AppState, client: &ClientInfo, which: impl Fn(&Count) -> bool) -> AppResult<()> {
        let now = shared::domain::now().timestamp_millis();
        for count in self.counts.iter().filter(|c| which(c)) {
            let strikes = state.store.strike(count, now).await?;
            if count.subject.policy == ACCOUNT
                && count.subject.policy.locks_out_at(strikes)
                && let Some(email) = &self.account_email
                && let Some(claim) = state.store.find_email_owner(email).await?
            {
                let until = now / 1000 + count.subject.policy.lockout.as_secs() as i64;
                let change = Change {
                    action: "lockout",
                    resource_type: "user",
                    resource_id: claim.user_id.to_string(),
                    old_values: serde_json::json!({}),
                    new_values: serde_json::json!({
                        "locked_until": chrono::DateTime::from_timestamp(until, 0).map(shared::domain::rfc3339),
                        "strikes": strikes,
                    }),
                };
                let audit = AuditContext::system_for_client("sign-in", client);
                state.store.record_audit(&claim.scope(), &audit, change).await?;
                let minutes = (count.subject.policy.lockout.as_secs() / 60) as i64;
                crate::recovery::send_lockout_notice(state, claim, minutes).await;
            }
        }
        Ok(())
    }

    /// A successful sign-in forgets the account's strikes (not the
    /// address's: one right password does not vouch for the other guesses).
    pub async fn succeeded(&self, state: &AppState) -> AppResult<()> {
        for count in self.counts.iter().filter(|c| c.strikes > 0 && c.subject.policy == ACCOUNT) {
            state.store.clear_strikes(&count.subject).await?;
        }
        Ok(())
    }
}

/// The caller's address, when known (API Gateway always knows it; the local
/// server only from `X-Forwarded-For`).
pub fn address(client: &ClientInfo) -> Option<&str> {
    client.ip_address.as_deref()
}
