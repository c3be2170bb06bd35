//! The users route group: the people of the caller's tenant (seed 003 fields,
//! seed 000 invitations). Roles `owner > admin > developer > user`: only
//! admins manage users, nobody grants a role above their own or changes a
//! user above them, the last owner cannot be removed, demoted or deactivated
//! (a store condition), and nobody deletes themself. Seats (users plus pending
//! invitations) are limited by the users quota, reserved atomically.
//!
//! | route | handler | who |
//! |---|---|---|
//! | `GET /v1/users` | [`list_users`] | admin |
//! | `POST /v1/users` | [`create_user`] | admin |
//! | `POST /v1/users/invite` | [`invite_users`] | admin |
//! | `GET /v1/users/invitations` | [`list_invitations`] | admin |
//! | `POST /v1/users/invitations/{email}/resend` | [`resend_invitation`] | admin |
//! | `DELETE /v1/users/invitations/{email}` | [`revoke_invitation`] | admin |
//! | `GET /v1/users/{id}` | [`get_user`] | admin, or the user |
//! | `PUT`/`PATCH /v1/users/{id}` | [`update_user`] | admin (the user: own names only) |
//! | `DELETE /v1/users/{id}` | [`delete_user`] | admin, not on themself |
//!
//! Accepting an invitation is public and lives in the auth group
//! (`POST /v1/auth/invitations/accept`).

use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};
use shared::{
    AppError, AppResult, AppState,
    audit::AuditContext,
    auth::{Principal, Role, Scope, TenantScope, invitation::InvitationToken, password},
    domain::{
        plans::Quota,
        user::{User, rules},
    },
    events::DomainEvent,
    http::{JsonObject, Page, QueryParams},
    store::members::{MemberError, UserChanges},
    validate::{Fields, Need},
};
use uuid::Uuid;

/// This group's routes; its Lambda and the local server add the shared layers.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/users", get(list_users).post(create_user))
        .route("/v1/users/invite", post(invite_users))
        .route("/v1/users/invitations", get(list_invitations))
        .route("/v1/users/invitations/{email}", axum::routing::delete(revoke_invitation))
        .route("/v1/users/invitations/{email}/resend", post(resend_invitation))
        .route("/v1/users/{id}", get(get_user).put(update_user).patch(update_user).delete(delete_user))
}

const RESOURCE: &str = "users";
const ROLES: &[&str] = &["owner", "admin", "developer", "user"];
/// Invitations per request: each takes three transaction items of 100.
const MAX_INVITES: usize = 25;

fn user_id(raw: &str) -> AppResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| AppError::invalid_field("user_id", "must be a valid UUID"))
}

fn role_of(name: &str) -> Role {
    Role::parse(name).unwrap_or(Role::User)
}

/// The caller's own tenant role inside the tenant acted on; a platform admin
/// counts as owner.
fn acting_role(principal: &Principal) -> Role {
    if principal.platform_admin { Role::Owner } else { principal.role }
}

/// Maps a refused change to its HTTP answer (quota refusals read the usage).
async fn refusal(state: &AppState, scope: &TenantScope, err: MemberError, requested: i64) -> AppError {
    match err {
        MemberError::EmailTaken(email) => AppError::conflict(format!("{email} already has an account"))
            .with_details(json!({"field": "email", "email": email})),
        MemberError::AlreadyInvited(email) => AppError::conflict(format!("{email} already has a pending invitation"))
            .with_details(json!({"field": "emails", "email": email})),
        MemberError::QuotaExceeded => state.store.quota_refusal(&state.events, scope, Quota::Users, requested).await,
        MemberError::LastOwner => rules::last_owner(),
        MemberError::InvalidInvitation => AppError::invalid_token("the invitation is invalid, used or expired"),
        MemberError::Other(e) => e,
    }
}

async fn publish(state: &AppState, event_type: &str, tenant_id: Uuid, data: Value) {
    state.events.publish_after_commit(&DomainEvent::new(event_type, tenant_id, data)).await;
}

async fn list_users(
    State(state): State<AppState>,
    principal: Principal,
    params: QueryParams,
) -> AppResult<Page<Value>> {
    principal.require(Role::Admin, Scope::UsersRead, RESOURCE)?;
    params.allow_only(&["limit", "cursor", "role", "is_active", "search"])?;
    let page = params.page()?;
    let filters = params.as_object();
    let mut f = Fields::new(&filters);
    let role = f.one_of("role", Need::Optional, ROLES).map(role_of);
    let is_active = f.one_of("is_active", Need::Optional, &["true", "false"]).map(|v| v == "true");
    let search = f.text("search", Need::Optional, 1, 100);
    f.finish()?;
    let (users, next_cursor) =
        state.store.list_users(&principal.scope(), role, is_active, search.as_deref(), &page).await?;
    Ok(Page { data: users.iter().map(User::to_body).collect(), next_cursor })
}

async fn create_user(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    JsonObject(body): JsonObject,
) -> AppResult<Response> {
    principal.require(Role::Admin, Scope::UsersWrite, RESOURCE)?;
    let mut f = Fields::new(&body);
    f.reject_unknown(&["email", "password", "first_name", "last_name", "role"]);
    let email = f.email("email", Need::Required);
    let password_text = f.text("password", Need::Required, 1, 1024);
    let first_name = f.text("first_name", Need::Required, 1, 100);
    let last_name = f.text("last_name", Need::Required, 1, 100);
    let role = f.one_of("role", Need::Optional, ROLES).map(role_of).unwrap_or(Role::User);
    if let Some(p) = &password_text
        && let Some(problem) = password::password_problem(p, email.as_deref().unwrap_or_default())
    {
        f.error("password", problem);
    }
    f.finish()?;
    let (Some(email), Some(password_text), Some(first_name), Some(last_name)) =
        (email, password_text, first_name, last_name)
    else {
        return Err(AppError::internal(anyhow::anyhow!("validated fields missing")));
    };
    if !rules::may_grant(acting_role(&principal), role) {
        return Err(rules::role_above_own(acting_role(&principal), role, principal.tenant_id));
    }
    let scope = principal.scope();
    let tenant = state.store.tenant_for_change(&scope).await?;
    let user = User::new(scope.tenant_id(), &email, &first_name, &last_name, role);
    let hash = password::hash_password(&password_text)?;
    if let Err(err) = state.store.create_user(&scope, &tenant, &user, &hash, &audit).await {
        return Err(refusal(&state, &scope, err, 1).await);
    }
    publish(
        &state,
        "user.created",
        scope.tenant_id(),
        json!({"user_id": user.id, "email": user.email, "role": user.role}),
    )
    .await;
    Ok((StatusCode::CREATED, [(axum::http::header::LOCATION, format!("/v1/users/{}", user.id))], Json(user.to_body()))
        .into_response())
}

/// Seed 000's invite: several emails, one role; all are invited or none.
async fn invite_users(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    JsonObject(body): JsonObject,
) -> AppResult<Response> {
    principal.require(Role::Admin, Scope::UsersWrite, RESOURCE)?;
    let mut f = Fields::new(&body);
    f.reject_unknown(&["emails", "role"]);
    let role = f.one_of("role", Need::Optional, ROLES).map(role_of).unwrap_or(Role::User);
    let mut emails: Vec<String> = Vec::new();
    match f.array("emails", Need::Required, MAX_INVITES) {
        Some(items) if items.is_empty() => f.error("emails", "must name at least one address"),
        Some(items) => {
            for (i, item) in items.iter().enumerate() {
                match item.as_str().filter(|e| shared::validate::is_email(e)) {
                    Some(e) if emails.contains(&e.to_ascii_lowercase()) => {
                        f.error(&format!("emails[{i}]"), "is listed twice");
                    }
                    Some(e) => emails.push(e.to_ascii_lowercase()),
                    None => f.error(&format!("emails[{i}]"), "must be a valid email address"),
                }
            }
        }
        None => {}
    }
    f.finish()?;
    if !rules::may_grant(acting_role(&principal), role) {
        return Err(rules::role_above_own(acting_role(&principal), role, principal.tenant_id));
    }
    let scope = principal.scope();
    let tenant = state.store.tenant_for_change(&scope).await?;
    let tokens: Vec<InvitationToken> = emails.iter().map(|e| InvitationToken::generate(scope.tenant_id(), e)).collect();
    let hashes: Vec<String> = tokens.iter().map(|t| t.hash()).collect();
    let invitations = match state.store.create_invitations(&scope, &tenant, &emails, &hashes, role, &audit).await {
        Ok(list) => list,
        Err(err) => return Err(refusal(&state, &scope, err, emails.len() as i64).await),
    };
    for invitation in &invitations {
        publish(
            &state,
            "user.invited",
            scope.tenant_id(),
            json!({"invitation_id": invitation.id, "email": invitation.email, "role": invitation.role}),
        )
        .await;
    }
    // No mail sender yet: the one-time tokens are shown to the inviting admin,
    // once, to pass on; only their hashes are stored.
    let data: Vec<Value> = invitations
        .iter()
        .zip(&tokens)
        .map(|(invitation, token)| {
            let mut body = invitation.to_body();
            body["token"] = json!(token.encode());
            body
        })
        .collect();
    Ok((StatusCode::CREATED, Json(json!({"invitations": data}))).into_response())
}

async fn list_invitations(State(state): State<AppState>, principal: Principal) -> AppResult<Json<Value>> {
    principal.require(Role::Admin, Scope::UsersRead, RESOURCE)?;
    let invitations = state.store.list_invitations(&principal.scope()).await?;
    Ok(Json(json!({"data": invitations.iter().map(|i| i.to_body()).collect::<Vec<_>>(), "next_cursor": null})))
}

/// A new one-time token for a pending invitation (the previous one stops
/// working), valid for another week.
async fn resend_invitation(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    Path(email): Path<String>,
) -> AppResult<Json<Value>> {
    principal.require(Role::Admin, Scope::UsersWrite, RESOURCE)?;
    let email = email.to_ascii_lowercase();
    let scope = principal.scope();
    let token = InvitationToken::generate(scope.tenant_id(), &email);
    let invitation = match state.store.reissue_invitation(&scope, &email, &token.hash(), &audit).await {
        Ok(Some(invitation)) => invitation,
        Ok(None) => return Err(AppError::not_found("invitation")),
        Err(err) => return Err(refusal(&state, &scope, err, 0).await),
    };
    let mut body = invitation.to_body();
    body["token"] = json!(token.encode());
    Ok(Json(body))
}

async fn revoke_invitation(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    Path(email): Path<String>,
) -> AppResult<StatusCode> {
    principal.require(Role::Admin, Scope::UsersWrite, RESOURCE)?;
    let scope = principal.scope();
    match state.store.revoke_invitation(&scope, &email.to_ascii_lowercase(), &audit).await {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(AppError::not_found("invitation")),
        Err(err) => Err(refusal(&state, &scope, err, 0).await),
    }
}

async fn get_user(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    let id = user_id(&id)?;
    // Everyone may read themself; a key's creator is not the key.
    let reads_self = id == principal.user_id && principal.api_key_id().is_none();
    if !reads_self {
        principal.require(Role::Admin, Scope::UsersRead, RESOURCE)?;
    }
    let user = state.store.get_user(&principal.scope(), id).await?.ok_or_else(|| AppError::not_found("user"))?;
    Ok(Json(user.to_body()))
}

async fn update_user(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> AppResult<Json<Value>> {
    let id = user_id(&id)?;
    let mut f = Fields::new(&body);
    f.reject_unknown(&["first_name", "last_name", "role", "is_active", "email"]);
    if f.contains("email") {
        f.error("email", "cannot be changed");
    }
    let changes = UserChanges {
        first_name: f.text("first_name", Need::Optional, 1, 100),
        last_name: f.text("last_name", Need::Optional, 1, 100),
        role: f.one_of("role", Need::Optional, ROLES).map(role_of),
        is_active: f.boolean("is_active", Need::Optional),
    };
    f.finish()?;
    let manages_others = changes.role.is_some()
        || changes.is_active.is_some()
        || id != principal.user_id
        || principal.api_key_id().is_some();
    if manages_others {
        principal.require(Role::Admin, Scope::UsersWrite, RESOURCE)?;
    }
    let scope = principal.scope();
    let target = state.store.get_user(&scope, id).await?.ok_or_else(|| AppError::not_found("user"))?;
    let actor = acting_role(&principal);
    if manages_others && !rules::may_manage(actor, target.role) {
        return Err(rules::role_above_own(actor, target.role, principal.tenant_id));
    }
    if let Some(role) = changes.role
        && !rules::may_grant(actor, role)
    {
        return Err(rules::role_above_own(actor, role, principal.tenant_id));
    }
    let updated = match state.store.update_user(&scope, id, &changes, &audit).await {
        Ok(Some(user)) => user,
        Ok(None) => return Err(AppError::not_found("user")),
        Err(err) => return Err(refusal(&state, &scope, err, 0).await),
    };
    publish(
        &state,
        "user.updated",
        scope.tenant_id(),
        json!({"user_id": id, "role": updated.role, "is_active": updated.is_active}),
    )
    .await;
    Ok(Json(updated.to_body()))
}

async fn delete_user(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let id = user_id(&id)?;
    principal.require(Role::Admin, Scope::UsersWrite, RESOURCE)?;
    if id == principal.user_id {
        return Err(AppError::forbidden("cannot_delete_self", "you cannot delete your own account")
            .with_details(json!({"user_id": id})));
    }
    let scope = principal.scope();
    let target = state.store.get_user(&scope, id).await?.ok_or_else(|| AppError::not_found("user"))?;
    let actor = acting_role(&principal);
    if !rules::may_manage(actor, target.role) {
        return Err(rules::role_above_own(actor, target.role, principal.tenant_id));
    }
    match state.store.delete_user(&scope, id, &audit).await {
        Ok(true) => {}
        Ok(false) => return Err(AppError::not_found("user")),
        Err(err) => return Err(refusal(&state, &scope, err, 0).await),
    }
    publish(&state, "user.deleted", scope.tenant_id(), json!({"user_id": id})).await;
    Ok(StatusCode::NO_CONTENT)
}
