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
use serde_json::{Map, Value, json};
use shared::{
    AppError, AppResult, AppState,
    audit::AuditContext,
    auth::{Principal, Role, Scope, TenantScope, invitation::InvitationToken, password},
    domain::{
        plans::Quota,
        user::{User, UserChanges, rules},
    },
    http::{JsonObject, Page, QueryParams, path_uuid},
    store::members::MemberError,
    validate::{Fields, Need},
};

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
/// Invitations per request: each takes four transaction items of 100 (the
/// email check, the invitation, its audit entry, its `user.invited` event),
/// and the seats one more.
const MAX_INVITES: usize = 24;

fn role_of(name: &str) -> Role {
    Role::parse(name).unwrap_or(Role::User)
}

/// The caller's own tenant role inside the tenant acted on; a platform admin
/// counts as owner.
fn acting_role(principal: &Principal) -> Role {
    if principal.is_platform_admin() { Role::Owner } else { principal.role() }
}

/// Refuses granting `role` above the caller's own.
fn check_grant(principal: &Principal, role: Role) -> AppResult<()> {
    let actor = acting_role(principal);
    if rules::may_grant(actor, role) { Ok(()) } else { Err(rules::role_above_own(actor, role, principal.tenant_id())) }
}

/// Refuses changing a user whose role is above the caller's own.
fn check_manage(principal: &Principal, target: Role) -> AppResult<()> {
    let actor = acting_role(principal);
    if rules::may_manage(actor, target) {
        Ok(())
    } else {
        Err(rules::role_above_own(actor, target, principal.tenant_id()))
    }
}

/// Maps a refused change to its HTTP answer (quota refusals read the usage).
async fn refusal(state: &AppState, scope: &TenantScope, err: MemberError, requested: i64) -> AppError {
    match err {
        MemberError::EmailTaken(email) => AppError::conflict(format!("{email} already has an account"))
            .with_details(json!({"field": "email", "email": email})),
        MemberError::AlreadyInvited(email) => AppError::conflict(format!("{email} already has a pending invitation"))
            .with_details(json!({"field": "emails", "email": email})),
        MemberError::QuotaExceeded => state.store.quota_refusal(scope, Quota::Users, requested).await,
        MemberError::LastOwner => rules::last_owner(),
        MemberError::InvalidInvitation => AppError::invalid_token("the invitation is invalid, used or expired"),
        MemberError::Other(e) => e,
    }
}

/// `POST /v1/users`, parsed: every bad field is named in one 400.
struct NewUser {
    email: String,
    password: String,
    first_name: String,
    last_name: String,
    role: Role,
}

impl NewUser {
    fn parse(body: &Map<String, Value>) -> AppResult<Self> {
        let mut f = Fields::new(body);
        f.reject_unknown(&["email", "password", "first_name", "last_name", "role"]);
        let email = f.email("email", Need::Required);
        let password = f.text("password", Need::Required, 1, 1024);
        let first_name = f.text("first_name", Need::Required, 1, 100);
        let last_name = f.text("last_name", Need::Required, 1, 100);
        let role = f.one_of("role", Need::Optional, ROLES).map(role_of).unwrap_or(Role::User);
        if let Some(p) = &password
            && let Some(problem) = password::password_problem(p, email.as_deref().unwrap_or_default())
        {
            f.error("password", problem);
        }
        f.finish()?;
        // A required field is `None` only with its error recorded, which
        // `finish` has just refused: the defaults below are never used.
        Ok(Self {
            email: email.unwrap_or_default(),
            password: password.unwrap_or_default(),
            first_name: first_name.unwrap_or_default(),
            last_name: last_name.unwrap_or_default(),
            role,
        })
    }
}

/// `POST /v1/users/invite`, parsed: distinct, lowercased addresses.
struct Invites {
    emails: Vec<String>,
    role: Role,
}

impl Invites {
    fn parse(body: &Map<String, Value>) -> AppResult<Self> {
        let mut f = Fields::new(body);
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
        Ok(Self { emails, role })
    }
}

/// `PUT`/`PATCH /v1/users/{id}`, parsed: the fields present are the changes.
fn parse_changes(body: &Map<String, Value>) -> AppResult<UserChanges> {
    let mut f = Fields::new(body);
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
    Ok(changes)
}

async fn list_users(
    State(state): State<AppState>,
    principal: Principal,
    params: QueryParams,
) -> AppResult<Page<Value>> {
    let scope = principal.require(Role::Admin, Scope::UsersRead, RESOURCE)?;
    params.allow_only(&["limit", "cursor", "role", "is_active", "search"])?;
    let page = params.page()?;
    let filters = params.as_object();
    let mut f = Fields::new(&filters);
    let role = f.one_of("role", Need::Optional, ROLES).map(role_of);
    let is_active = f.one_of("is_active", Need::Optional, &["true", "false"]).map(|v| v == "true");
    let search = f.text("search", Need::Optional, 1, 100);
    f.finish()?;
    let (users, next_cursor) = state.store.list_users(&scope, role, is_active, search.as_deref(), &page).await?;
    Ok(Page { data: users.iter().map(User::to_body).collect(), next_cursor })
}

async fn create_user(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    JsonObject(body): JsonObject,
) -> AppResult<Response> {
    let scope = principal.require(Role::Admin, Scope::UsersWrite, RESOURCE)?;
    let new = NewUser::parse(&body)?;
    check_grant(&principal, new.role)?;
    let tenant = state.store.tenant_for_change(&scope).await?;
    let user = User::new(scope.tenant_id(), &new.email, &new.first_name, &new.last_name, new.role);
    let hash = password::hash_password(&new.password)?;
    // Emits `user.created` (`via: "api"`) in the same transaction.
    if let Err(err) = state.store.create_user(&scope, &tenant, &user, &hash, &audit).await {
        return Err(refusal(&state, &scope, err, 1).await);
    }
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
    let scope = principal.require(Role::Admin, Scope::UsersWrite, RESOURCE)?;
    let Invites { emails, role } = Invites::parse(&body)?;
    check_grant(&principal, role)?;
    let tenant = state.store.tenant_for_change(&scope).await?;
    let tokens: Vec<InvitationToken> = emails.iter().map(|e| InvitationToken::generate(scope.tenant_id(), e)).collect();
    let hashes: Vec<String> = tokens.iter().map(|t| t.hash()).collect();
    // Emits one `user.invited` per invitation in the same transaction.
    let invitations = match state.store.create_invitations(&scope, &tenant, &emails, &hashes, role, &audit).await {
        Ok(list) => list,
        Err(err) => return Err(refusal(&state, &scope, err, emails.len() as i64).await),
    };
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
    let scope = principal.require(Role::Admin, Scope::UsersRead, RESOURCE)?;
    let invitations = state.store.list_invitations(&scope).await?;
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
    let scope = principal.require(Role::Admin, Scope::UsersWrite, RESOURCE)?;
    let email = email.to_ascii_lowercase();
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
    let scope = principal.require(Role::Admin, Scope::UsersWrite, RESOURCE)?;
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
    let id = path_uuid(&id, "user_id")?;
    // Everyone may read themself (every member holds `user`); a key's
    // creator is not the key.
    let reads_self = id == principal.user_id() && principal.api_key_id().is_none();
    let needed = if reads_self { Role::User } else { Role::Admin };
    let scope = principal.require(needed, Scope::UsersRead, RESOURCE)?;
    let user = state.store.get_user(&scope, id).await?.ok_or_else(|| AppError::not_found("user"))?;
    Ok(Json(user.to_body()))
}

async fn update_user(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> AppResult<Json<Value>> {
    let id = path_uuid(&id, "user_id")?;
    let changes = parse_changes(&body)?;
    // A person may change their own names; anything else is managing users.
    let manages_others = changes.role.is_some()
        || changes.is_active.is_some()
        || id != principal.user_id()
        || principal.api_key_id().is_some();
    let needed = if manages_others { Role::Admin } else { Role::User };
    let scope = principal.require(needed, Scope::UsersWrite, RESOURCE)?;
    let target = state.store.get_user(&scope, id).await?.ok_or_else(|| AppError::not_found("user"))?;
    if manages_others {
        check_manage(&principal, target.role)?;
    }
    if let Some(role) = changes.role {
        check_grant(&principal, role)?;
    }
    // Emits `user.updated` in the same transaction.
    match state.store.update_user(&scope, id, &changes, &audit).await {
        Ok(Some(user)) => Ok(Json(user.to_body())),
        Ok(None) => Err(AppError::not_found("user")),
        Err(err) => Err(refusal(&state, &scope, err, 0).await),
    }
}

async fn delete_user(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let id = path_uuid(&id, "user_id")?;
    let scope = principal.require(Role::Admin, Scope::UsersWrite, RESOURCE)?;
    if id == principal.user_id() {
        return Err(AppError::forbidden("cannot_delete_self", "you cannot delete your own account")
            .with_details(json!({"user_id": id})));
    }
    let target = state.store.get_user(&scope, id).await?.ok_or_else(|| AppError::not_found("user"))?;
    check_manage(&principal, target.role)?;
    // Emits `user.deleted` in the same transaction.
    match state.store.delete_user(&scope, id, &audit).await {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(AppError::not_found("user")),
        Err(err) => Err(refusal(&state, &scope, err, 0).await),
    }
}
