//! A caller's standing as stored now: whether the person behind a token or
//! an API key still exists, is active, and holds the role the credential
//! was issued with, and whether the token's session is still live. Read in
//! one BatchGetItem (the user item and the session item share the tenant's
//! partition); the web layer caches the answer for a few seconds
//! (`web::standing`).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use uuid::Uuid;

use super::{Item, Store, s};
use crate::{auth::TenantScope, domain::role::Role, error::AppResult};

/// The stored facts a credential is judged against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// `None`: the user is gone (deleted).
    pub user: Option<UserStanding>,
    /// `None`: no session was asked for (an API key), or it is gone.
    pub session_live: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserStanding {
    pub role: Role,
    pub is_active: bool,
    pub platform_admin: bool,
}

impl Store {
    /// The user's standing and, for a token, its session's: one
    /// BatchGetItem, strongly consistent when `consistent` (sensitive
    /// actions), else eventually (a fraction of a second behind).
    pub async fn standing(
        &self,
        scope: &TenantScope,
        user_id: Uuid,
        session_id: Option<Uuid>,
        consistent: bool,
    ) -> AppResult<Standing> {
        let key = |sk: String| -> Item { HashMap::from([("PK".into(), s(scope.pk())), ("SK".into(), s(sk))]) };
        let user_sk = format!("USER#{user_id}");
        let session_sk = session_id.map(|id| format!("SESSION#{id}"));
        let mut keys = vec![key(user_sk.clone())];
        keys.extend(session_sk.clone().map(key));
        let found = self
            .batch_get(keys, Some(("SK, #role, is_active, platform_admin, revoked", &[("#role", "role")])), consistent)
            .await?;
        let sk_of = |item: &Item| item.get("SK").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        let user = found.iter().find(|item| sk_of(item) == user_sk).map(|item| UserStanding {
            role: item.get("role").and_then(|v| v.as_s().ok()).and_then(|r| Role::parse(r)).unwrap_or(Role::User),
            is_active: bool_attr(item, "is_active").unwrap_or(false),
            platform_admin: bool_attr(item, "platform_admin").unwrap_or(false),
        });
        let session_live = session_sk.map(|sk| {
            found.iter().find(|item| sk_of(item) == sk).is_some_and(|item| !bool_attr(item, "revoked").unwrap_or(true))
        });
        Ok(Standing { user, session_live })
    }
}

fn bool_attr(item: &Item, name: &str) -> Option<bool> {
    match item.get(name)? {
        AttributeValue::Bool(value) => Some(*value),
        _ => None,
    }
}

/// How long a process trusts a standing it read: the worst-case delay
/// before a revocation made by another process takes effect. The process
/// that makes a change forgets the standing at once.
pub const STANDING_TTL: std::time::Duration = std::time::Duration::from_secs(5);

type StandingKey = (Uuid, Option<Uuid>);

fn cache() -> &'static std::sync::Mutex<HashMap<StandingKey, (Standing, std::time::Instant)>> {
    static CACHE: std::sync::OnceLock<std::sync::Mutex<HashMap<StandingKey, (Standing, std::time::Instant)>>> =
        std::sync::OnceLock::new();
    CACHE.get_or_init(|| std::sync::Mutex::new(HashMap::new()))
}

/// A standing read less than [`STANDING_TTL`] ago, if any.
pub(crate) fn cached_standing(user_id: Uuid, session_id: Option<Uuid>) -> Option<Standing> {
    let cache = cache().lock().ok()?;
    cache.get(&(user_id, session_id)).filter(|(_, at)| at.elapsed() < STANDING_TTL).map(|(standing, _)| *standing)
}

pub(crate) fn remember_standing(user_id: Uuid, session_id: Option<Uuid>, standing: Standing) {
    if let Ok(mut cache) = cache().lock() {
        // Bounded: a warm process serves a few thousand callers at most;
        // starting over costs one read each.
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert((user_id, session_id), (standing, std::time::Instant::now()));
    }
}

/// Drops every cached standing of `user_id` (all their sessions and keys):
/// called by the writes that change it, so this process sees the change at
/// once.
pub(crate) fn forget_standing(user_id: Uuid) {
    if let Ok(mut cache) = cache().lock() {
        cache.retain(|(user, _), _| *user != user_id);
    }
}

impl Store {
    /// [`Store::standing`] through the per-process cache, or straight from
    /// the table (consistent) when `fresh`.
    pub async fn current_standing(
        &self,
        scope: &TenantScope,
        user_id: Uuid,
        session_id: Option<Uuid>,
        fresh: bool,
    ) -> AppResult<Standing> {
        if !fresh && let Some(hit) = cached_standing(user_id, session_id) {
            return Ok(hit);
        }
        let standing = self.standing(scope, user_id, session_id, fresh).await?;
        remember_standing(user_id, session_id, standing);
        Ok(standing)
    }
}

/// Drops the cached standing of one session (logout, reuse detected).
pub(crate) fn forget_session(session_id: Uuid) {
    if let Ok(mut cache) = cache().lock() {
        cache.retain(|(_, session), _| *session != Some(session_id));
    }
}
