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
//! | `DELETE /v1/users/{id}/mfa` | [`reset_user_mfa`] | admin (a person), not on themself |
//!
//! Accepting an invitation is public and lives in the auth group
//! (`POST /v1/auth/invitations/accept`).

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{HeaderName, StatusCode, header::LOCATION},
    routing::{get, post},
};
use serde::Serialize;
use serde_json::{Value, json};
use shared::{
    AppError, AppResult, AppState,
    audit::AuditContext,
    auth::{Principal, Role, Scope, TenantScope, invitation::InvitationToken, password},
    domain::{
        ids::UserId,
        plans::Quota,
        user::{
            INVITATION_TTL_SECONDS, Invitation, InvitationView, NewPassword, PersonName, RoleName, User, UserChanges,
            UserView, rules,
        },
        values::{Email, Text},
    },
    error::FieldError,
    http::Page,
    mail::{Brand, FORGOT_PAGE, MfaChange, Notice},
    store::members::MemberError,
    string_enum,
    web::extract::{Body, ListQuery, Patch, PathIds},
    web::principal::Fresh,
};

/// This group's part of the OpenAPI document (`shared::web::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        list_users,
        create_user,
        invite_users,
        list_invitations,
        resend_invitation,
        revoke_invitation,
        get_user,
        update_user,
        delete_user,
        reset_user_mfa
    ),
    tags((name = "users", description = "The people of the caller's tenant (seed 003) and their pending invitations (seed 000). Roles rank `owner > admin > developer > user`: admins manage users, nobody grants a role above their own or changes a user above them, the last owner cannot be removed, demoted or deactivated, and seats (users plus pending invitations) are limited by the plan's users quota"))
)]
pub struct ApiDoc;

/// This group's routes; its Lambda and the local server add the shared layers.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/users", get(list_users).post(create_user))
        .route("/v1/users/invite", post(invite_users))
        .route("/v1/users/invitations", get(list_invitations))
        .route("/v1/users/invitations/{email}", axum::routing::delete(revoke_invitation))
        .route("/v1/users/invitations/{email}/resend", post(resend_invitation))
        .route("/v1/users/{id}", get(get_user).put(update_user).patch(update_user).delete(delete_user))
        .route("/v1/users/{id}/mfa", axum::routing::delete(reset_user_mfa))
}

const RESOURCE: &str = "users";
/// Invitations per request: each takes four transaction items of 100 (the
/// email check, the invitation, its audit entry, its `user.invited` event),
/// and the seats one more.
const MAX_INVITES: usize = 24;

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

/// A user to create, active at once with the password given.
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewUser {
    /// Their sign-in address (kept lowercased); free across all tenants.
    email: Email,
    /// 10 to 128 characters, not the email address.
    #[eserde(compat)]
    password: NewPassword,
    first_name: PersonName,
    last_name: PersonName,
    /// Default `user`; at most the caller's own role (any case).
    #[serde(default)]
    #[eserde(compat)]
    role: Option<RoleName>,
}

/// The password rule that needs the address beside it.
fn check_password(password: &NewPassword, email: &str) -> AppResult<()> {
    match password::password_problem(password.as_str(), email) {
        Some(problem) => Err(AppError::validation(vec![FieldError::new("password", problem)])),
        None => Ok(()),
    }
}

/// Invitations to send (seed 000): several addresses, one role.
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Invites {
    /// 1 to 24 addresses, each once (compared lowercased), none with an
    /// account or a pending invitation.
    #[schema(schema_with = invite_emails_schema)]
    emails: Vec<Email>,
    /// The role every invitee gets: default `user`; at most the caller's own
    /// role (any case).
    #[serde(default)]
    #[eserde(compat)]
    role: Option<RoleName>,
}

/// `emails`: what [`Invites::checked`] enforces, but case-sensitive
/// uniqueness (the parser also refuses `A@x.io` beside `a@x.io`).
fn invite_emails_schema() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(<Email as utoipa::PartialSchema>::schema())
        .min_items(Some(1))
        .max_items(Some(MAX_INVITES))
        .unique_items(true)
        .build()
}

impl Invites {
    /// The list's own rules: one to [`MAX_INVITES`] addresses, each once.
    fn checked(self) -> AppResult<(Vec<Email>, Role)> {
        let role = self.role.map_or(Role::User, Role::from);
        if self.emails.is_empty() {
            return Err(AppError::invalid_field("emails", "must name at least one address"));
        }
        if self.emails.len() > MAX_INVITES {
            return Err(AppError::invalid_field("emails", format!("must have at most {MAX_INVITES} items")));
        }
        let twice: Vec<FieldError> = self
            .emails
            .iter()
            .enumerate()
            .filter(|(i, email)| self.emails[..*i].contains(email))
            .map(|(i, _)| FieldError::new(format!("emails[{i}]"), "is listed twice"))
            .collect();
        if twice.is_empty() { Ok((self.emails, role)) } else { Err(AppError::validation(twice)) }
    }
}

/// Changes to a user: the fields present are the changes, the others stay;
/// none may be `null`, and the email address cannot be changed.
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct UserUpdate {
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = PersonName)]
    first_name: Patch<PersonName>,
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = PersonName)]
    last_name: Patch<PersonName>,
    /// Admins only; at most the caller's own role (any case).
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = RoleName)]
    role: Patch<RoleName>,
    /// Admins only: an inactive user cannot sign in.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = bool)]
    is_active: Patch<bool>,
    /// Refused whatever its value ("cannot be changed"), so not part of the
    /// schema.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(ignore)]
    email: Patch<Value>,
}

impl UserUpdate {
    fn into_changes(self) -> AppResult<UserChanges> {
        let mut errors = Vec::new();
        if !self.email.is_absent() {
            errors.push(FieldError::new("email", "cannot be changed"));
        }
        let changes = UserChanges {
            first_name: not_null("first_name", self.first_name, &mut errors),
            last_name: not_null("last_name", self.last_name, &mut errors),
            role: not_null("role", self.role, &mut errors).map(Role::from),
            is_active: not_null("is_active", self.is_active, &mut errors),
        };
        if errors.is_empty() { Ok(changes) } else { Err(AppError::validation(errors)) }
    }
}

/// The new value of a field that may be left out but not cleared.
fn not_null<T>(field: &str, patch: Patch<T>, errors: &mut Vec<FieldError>) -> Option<T> {
    match patch {
        Patch::Absent => None,
        Patch::Null => {
            errors.push(FieldError::new(field, "must not be null"));
            None
        }
        Patch::Value(value) => Some(value),
    }
}

string_enum!(
    /// `?is_active=true|false` (any case).
    Flag {
        True => "true",
        False => "false",
    }
);

/// `GET /v1/users` filters: all optional, unknown ones refused.
#[derive(Debug, eserde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UserFilters {
    #[serde(default)]
    #[eserde(compat)]
    role: Option<RoleName>,
    #[serde(default)]
    #[eserde(compat)]
    is_active: Option<Flag>,
    #[serde(default)]
    search: Option<Text<1, 100>>,
}

/// The invitation a path names by its address: not an id, but refused
/// like one when it is not an address.
fn invitation_email(raw: &str) -> AppResult<Email> {
    Email::parse(raw).map_err(|message| AppError::invalid_field("email", message))
}

/// Lists the tenant's users.
///
/// Oldest first, filtered by `role`, `is_active` and `search`; paginated
/// with `limit` and `cursor`.
#[utoipa::path(get, path = "/v1/users", tag = "users", security(("bearer" = ["admin"]), ("api_key" = ["users:read"])),
    params(
        ("role" = inline(Option<RoleName>), Query, description = "Only users with this role (any case)"),
        ("is_active" = inline(Option<Flag>), Query, description = "Only active (`true`) or inactive (`false`) users (any case)"),
        ("search" = Option<String>, Query, description = "Only users whose email, first or last name contains this text (case-insensitive)", max_length = 100),
    ),
    responses((status = 200, description = "A page of users", body = Page<UserView>)))]
async fn list_users(
    State(state): State<AppState>,
    principal: Principal,
    query: Result<ListQuery<UserFilters>, AppError>,
) -> AppResult<Page<UserView>> {
    let scope = principal.require(Role::Admin, Scope::UsersRead, RESOURCE)?;
    // After authorization: a caller who may not list learns nothing from a
    // bad parameter.
    let ListQuery { page, filters } = query?;
    let role = filters.role.map(Role::from);
    let is_active = filters.is_active.map(|flag| flag == Flag::True);
    let search = filters.search.as_ref().map(Text::as_str);
    let (users, next_cursor) = state.store.list_users(&scope, role, is_active, search, &page).await?;
    Ok(Page { data: users.iter().map(User::view).collect(), next_cursor })
}

/// Creates a user in the tenant (seed 003).
///
/// The user is active at once and signs in with the password given; they
/// take one seat of the plan's users quota. The role defaults to `user` and
/// may not be above the caller's own. Answers 201 with the user and its URL
/// in `Location`.
#[utoipa::path(post, path = "/v1/users", tag = "users", security(("bearer" = ["admin"]), ("api_key" = ["users:write"])),
    request_body(content = NewUser, example = json!({
        "email": "newuser@company.com",
        "password": "secure_password",
        "first_name": "New",
        "last_name": "User",
        "role": "user"
    })),
    responses(
        (status = 201, description = "Created", body = UserView,
            headers(("Location" = String, description = "The new user's URL (`/v1/users/{id}`)"))),
        (status = 403, description = "Forbidden\n\n- `quota_exceeded`: the plan's users quota is full (`details`: `quota_type`, `current_usage`, `plan_limit`, `requested_increase`, `available_slots`, `upgrade_options`)\n- `insufficient_permissions`: the role or API key scope is not enough, or `role` is above the caller's own (`details.required_role`, `details.current_role`)\n- `tenant_mismatch`: `X-Tenant-ID` names another tenant than the credentials'\n- `tenant_inactive`: the tenant is suspended or deleted", body = shared::web::openapi::ApiError),
        (status = 409, description = "Conflict\n\n- `conflict`: the email address already has an account (`details.field`: `email`), or a concurrent change (retry)\n- `idempotency_key_in_use`: a request with this `Idempotency-Key` is still running: retry shortly", body = shared::web::openapi::ApiError),
        (status = 503, description = "Unavailable\n\n- `busy`: too many passwords being hashed at once: retry after `Retry-After` seconds", body = shared::web::openapi::ApiError,
            headers(("Retry-After" = i64, description = "Seconds to wait before retrying"))),
    ))]
async fn create_user(
    State(state): State<AppState>,
    Fresh(principal): Fresh,
    audit: AuditContext,
    body: Result<Body<NewUser>, AppError>,
) -> AppResult<(StatusCode, [(HeaderName, String); 1], Json<UserView>)> {
    let scope = principal.require(Role::Admin, Scope::UsersWrite, RESOURCE)?;
    let Body(new) = body?;
    check_password(&new.password, new.email.as_str())?;
    let role = new.role.map_or(Role::User, Role::from);
    check_grant(&principal, role)?;
    let tenant = state.store.tenant_for_change(&scope).await?;
    let user = User::new(scope.tenant_id(), new.email.as_str(), new.first_name.as_str(), new.last_name.as_str(), role);
    let hash = password::hash(new.password.as_str()).await?;
    // Emits `user.created` (`via: "api"`) in the same transaction.
    if let Err(err) = state.store.create_user(&scope, &tenant, &user, &hash, &audit).await {
        return Err(refusal(&state, &scope, err, 1).await);
    }
    Ok((StatusCode::CREATED, [(LOCATION, format!("/v1/users/{}", user.id))], Json(user.view())))
}

/// A pending invitation with its one-time token, shown once to the inviting
/// admin. The invitee also gets it by mail (the accept link); the admin's
/// copy is for passing it on when the mail does not arrive.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvitationWithToken {
    #[serde(flatten)]
    pub invitation: InvitationView,
    /// What the invitee sends to `POST /v1/auth/invitations/accept`. Only
    /// its hash is stored: it cannot be shown again, only replaced (resend).
    pub token: String,
}

/// `POST /v1/users/invite`: every invitation made, in the order of `emails`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Invited {
    pub invitations: Vec<InvitationWithToken>,
}

/// Invites people to the tenant (seed 000).
///
/// Several addresses, one role (default `user`, at most the caller's own);
/// all are invited or none. Each invitation holds a seat of the plan's users
/// quota until it is accepted or revoked, and stays valid for a week. Each
/// invitee is mailed a link to `<APP_BASE_URL>/accept-invitation?token=...`
/// in the tenant's branding; the answer also carries each invitation's
/// one-time `token`, shown only here: the invitee sends it to
/// `POST /v1/auth/invitations/accept`.
#[utoipa::path(post, path = "/v1/users/invite", tag = "users", security(("bearer" = ["admin"]), ("api_key" = ["users:write"])),
    request_body(content = Invites, example = json!({
        "emails": ["new-user1@techstart.io", "new-user2@techstart.io", "new-user3@techstart.io"],
        "role": "developer"
    })),
    responses(
        (status = 201, description = "Every invitation made, in the order of `emails`", body = Invited),
        (status = 403, description = "Forbidden\n\n- `quota_exceeded`: the invitations do not fit the plan's users quota (`details`: `quota_type`, `current_usage`, `plan_limit`, `requested_increase`, `available_slots`, `upgrade_options`)\n- `insufficient_permissions`: the role or API key scope is not enough, or `role` is above the caller's own (`details.required_role`, `details.current_role`)\n- `tenant_mismatch`: `X-Tenant-ID` names another tenant than the credentials'\n- `tenant_inactive`: the tenant is suspended or deleted", body = shared::web::openapi::ApiError),
        (status = 409, description = "Conflict\n\n- `conflict`: an address already has an account (`details.field`: `email`) or a pending invitation (`details.field`: `emails`), named in `details.email`; or the addresses changed meanwhile (retry)\n- `idempotency_key_in_use`: a request with this `Idempotency-Key` is still running: retry shortly", body = shared::web::openapi::ApiError),
    ))]
async fn invite_users(
    State(state): State<AppState>,
    Fresh(principal): Fresh,
    audit: AuditContext,
    body: Result<Body<Invites>, AppError>,
) -> AppResult<(StatusCode, Json<Invited>)> {
    let scope = principal.require(Role::Admin, Scope::UsersWrite, RESOURCE)?;
    let Body(invites) = body?;
    let (emails, role) = invites.checked()?;
    check_grant(&principal, role)?;
    let tenant = state.store.tenant_for_change(&scope).await?;
    let tokens: Vec<InvitationToken> =
        emails.iter().map(|e| InvitationToken::generate(scope.tenant_id(), e.as_str())).collect();
    let hashes: Vec<String> = tokens.iter().map(|t| t.hash()).collect();
    // Emits one `user.invited` per invitation in the same transaction.
    let invitations = match state.store.create_invitations(&scope, &tenant, &emails, &hashes, role, &audit).await {
        Ok(list) => list,
        Err(err) => return Err(refusal(&state, &scope, err, emails.len() as i64).await),
    };
    let brand = Brand::of(&tenant);
    for (invitation, token) in invitations.iter().zip(&tokens) {
        mail_invitation(&state, &brand, invitation, token).await;
    }
    let invitations = invitations
        .iter()
        .zip(&tokens)
        .map(|(invitation, token)| InvitationWithToken { invitation: invitation.view(), token: token.encode() })
        .collect();
    Ok((StatusCode::CREATED, Json(Invited { invitations })))
}

/// The web app's page that accepts an invitation (under `APP_BASE_URL`).
const ACCEPT_PAGE: &str = "accept-invitation";

/// Mails the invitee the accept link, after the invitation committed: a
/// failure is logged, not answered (the admin can resend, and the answer
/// carries the token).
async fn mail_invitation(state: &AppState, brand: &Brand, invitation: &Invitation, token: &InvitationToken) {
    let Some(link) = state.mailer.link(ACCEPT_PAGE, &token.encode()) else {
        tracing::error!(request_id = %shared::request_id::current_request_id(), "APP_BASE_URL is not set: no invitation mailed");
        return;
    };
    let notice = Notice::Invitation {
        role: invitation.role.as_str().to_owned(),
        link,
        valid_days: INVITATION_TTL_SECONDS / 86_400,
    };
    state.mailer.deliver(&notice, brand, &invitation.email).await;
}

/// Lists the tenant's pending invitations.
///
/// By address; paginated with `limit` and `cursor`. Tokens are not shown:
/// resend an invitation for a new one.
#[utoipa::path(get, path = "/v1/users/invitations", tag = "users", security(("bearer" = ["admin"]), ("api_key" = ["users:read"])),
    responses((status = 200, description = "A page of pending invitations", body = Page<InvitationView>)))]
async fn list_invitations(
    State(state): State<AppState>,
    principal: Principal,
    query: Result<ListQuery<shared::web::extract::NoFilters>, AppError>,
) -> AppResult<Page<InvitationView>> {
    let scope = principal.require(Role::Admin, Scope::UsersRead, RESOURCE)?;
    let ListQuery { page, .. } = query?;
    let (invitations, next_cursor) = state.store.list_invitations(&scope, &page).await?;
    Ok(Page { data: invitations.iter().map(|i| i.view()).collect(), next_cursor })
}

/// Issues a new token for a pending invitation.
///
/// The previous token stops working; the invitation is valid for another
/// week from now. The invitee is mailed the new accept link; the new
/// one-time `token` is also shown, only in this answer.
#[utoipa::path(post, path = "/v1/users/invitations/{email}/resend", tag = "users", security(("bearer" = ["admin"]), ("api_key" = ["users:write"])),
    params(("email" = String, Path, description = "The invitee's address (any case)", format = Email, min_length = 1, max_length = 254)),
    responses((status = 200, description = "The invitation with its new token", body = InvitationWithToken)))]
async fn resend_invitation(
    State(state): State<AppState>,
    Fresh(principal): Fresh,
    audit: AuditContext,
    Path(email): Path<String>,
) -> AppResult<Json<InvitationWithToken>> {
    let scope = principal.require(Role::Admin, Scope::UsersWrite, RESOURCE)?;
    let email = invitation_email(&email)?;
    let token = InvitationToken::generate(scope.tenant_id(), email.as_str());
    let invitation = match state.store.reissue_invitation(&scope, &email, &token.hash(), &audit).await {
        Ok(Some(invitation)) => invitation,
        Ok(None) => return Err(AppError::not_found("invitation")),
        Err(err) => return Err(refusal(&state, &scope, err, 0).await),
    };
    // The token is stored: nothing after this fails the request.
    let brand = match state.store.get_tenant(&scope).await {
        Ok(Some((tenant, _))) => Brand::of(&tenant),
        _ => Brand::platform(),
    };
    mail_invitation(&state, &brand, &invitation, &token).await;
    Ok(Json(InvitationWithToken { invitation: invitation.view(), token: token.encode() }))
}

/// Revokes a pending invitation.
///
/// Its token stops working and its seat is freed. 204.
#[utoipa::path(delete, path = "/v1/users/invitations/{email}", tag = "users", security(("bearer" = ["admin"]), ("api_key" = ["users:write"])),
    params(("email" = String, Path, description = "The invitee's address (any case)", format = Email, min_length = 1, max_length = 254)),
    responses((status = 204, description = "Revoked")))]
async fn revoke_invitation(
    State(state): State<AppState>,
    Fresh(principal): Fresh,
    audit: AuditContext,
    Path(email): Path<String>,
) -> AppResult<StatusCode> {
    let scope = principal.require(Role::Admin, Scope::UsersWrite, RESOURCE)?;
    let email = invitation_email(&email)?;
    match state.store.revoke_invitation(&scope, &email, &audit).await {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(AppError::not_found("invitation")),
        Err(err) => Err(refusal(&state, &scope, err, 0).await),
    }
}

/// Gets a user.
///
/// Admins read any user of the tenant; every signed-in member may read
/// themself (an API key needs an admin owner and `users:read`).
#[utoipa::path(get, path = "/v1/users/{id}", tag = "users", security(("bearer" = ["user"]), ("api_key" = ["users:read"])),
    responses((status = 200, description = "The user", body = UserView)))]
async fn get_user(
    State(state): State<AppState>,
    principal: Principal,
    PathIds(UserId(id)): PathIds<UserId>,
) -> AppResult<Json<UserView>> {
    // Everyone may read themself (every member holds `user`); a key's
    // creator is not the key.
    let reads_self = id == principal.user_id() && principal.api_key_id().is_none();
    let needed = if reads_self { Role::User } else { Role::Admin };
    let scope = principal.require(needed, Scope::UsersRead, RESOURCE)?;
    let user = state.store.get_user(&scope, id).await?.ok_or_else(|| AppError::not_found("user"))?;
    Ok(Json(user.view()))
}

/// Updates a user (partial: `PUT` and `PATCH` alike).
///
/// Admins change names, `role` and `is_active` of users up to their own
/// role, and grant roles up to their own; every signed-in member may change
/// their own names (an API key needs an admin owner and `users:write`). The
/// last owner cannot be demoted or deactivated. A changed role or a
/// deactivation ends the user's access tokens within seconds (they sign in
/// again).
#[utoipa::path(method(put, patch), path = "/v1/users/{id}", tag = "users", security(("bearer" = ["user"]), ("api_key" = ["users:write"])),
    request_body(content = UserUpdate, example = json!({"first_name": "Updated", "role": "admin"})),
    responses(
        (status = 200, description = "The updated user", body = UserView),
        (status = 409, description = "Conflict\n\n- `conflict`: the user is the tenant's last owner and would be demoted or deactivated (`details.reason`: `last_owner`), or the user is being changed by another request (retry)", body = shared::web::openapi::ApiError),
    ))]
async fn update_user(
    State(state): State<AppState>,
    Fresh(principal): Fresh,
    audit: AuditContext,
    PathIds(UserId(id)): PathIds<UserId>,
    Body(update): Body<UserUpdate>,
) -> AppResult<Json<UserView>> {
    let changes = update.into_changes()?;
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
        Ok(Some(user)) => Ok(Json(user.view())),
        Ok(None) => Err(AppError::not_found("user")),
        Err(err) => Err(refusal(&state, &scope, err, 0).await),
    }
}

/// Deletes a user.
///
/// Frees their seat and their email address; their access tokens stop
/// working within seconds. Nobody deletes themself, an admin deletes users
/// up to their own role, and the last owner cannot be deleted. 204.
#[utoipa::path(delete, path = "/v1/users/{id}", tag = "users", security(("bearer" = ["admin"]), ("api_key" = ["users:write"])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Forbidden\n\n- `cannot_delete_self`: the user is the caller (`details.user_id`)\n- `insufficient_permissions`: the role or API key scope is not enough, or the user's role is above the caller's own (`details.required_role`, `details.current_role`)\n- `tenant_mismatch`: `X-Tenant-ID` names another tenant than the credentials'\n- `tenant_inactive`: the tenant is suspended or deleted", body = shared::web::openapi::ApiError),
        (status = 409, description = "Conflict\n\n- `conflict`: the user is the tenant's last owner (`details.reason`: `last_owner`)", body = shared::web::openapi::ApiError),
    ))]
async fn delete_user(
    State(state): State<AppState>,
    Fresh(principal): Fresh,
    audit: AuditContext,
    PathIds(UserId(id)): PathIds<UserId>,
) -> AppResult<StatusCode> {
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

/// The answer to an MFA reset.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MfaReset {
    pub user_id: uuid::Uuid,
    /// Always `false`: the member signs in with the password alone (or
    /// enrols again first, when the tenant requires MFA).
    pub mfa_enabled: bool,
    /// The member's sessions ended by the reset.
    pub sessions_revoked: usize,
}

/// Resets a member's MFA (a lost authenticator).
///
/// For a member who lost their authenticator and backup codes: their TOTP
/// enrolment and backup codes are removed, every session of theirs is
/// ended (whoever holds the device may hold a session too), the change is
/// audited (`mfa_reset`) and mailed to them. They sign in with their
/// password next, and enrol again (at once, when the tenant requires MFA).
/// People only (an API key cannot remove a second factor), an admin up to
/// their own role, never on themself (turning one's own MFA off takes a
/// fresh code: `POST /v1/auth/mfa/disable`).
#[utoipa::path(delete, path = "/v1/users/{id}/mfa", tag = "users", security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "MFA removed and the member's sessions ended", body = MfaReset),
        (status = 403, description = "Forbidden\n\n- `cannot_reset_own_mfa`: the user is the caller (`details.user_id`)\n- `insufficient_permissions`: the role is not enough, an API key was used, or the user's role is above the caller's own (`details.required_role`, `details.current_role`)\n- `tenant_mismatch`: `X-Tenant-ID` names another tenant than the credentials'\n- `tenant_inactive`: the tenant is suspended or deleted", body = shared::web::openapi::ApiError),
        (status = 404, description = "Not found\n\n- `not_found`: no such user in the tenant, or the user has no MFA (`details.resource`)", body = shared::web::openapi::ApiError),
    ))]
async fn reset_user_mfa(
    State(state): State<AppState>,
    Fresh(principal): Fresh,
    audit: AuditContext,
    PathIds(UserId(id)): PathIds<UserId>,
) -> AppResult<Json<MfaReset>> {
    let scope = principal.require_person(Role::Admin, RESOURCE)?;
    if id == principal.user_id() {
        return Err(AppError::forbidden(
            "cannot_reset_own_mfa",
            "turning your own MFA off takes a fresh code: use POST /v1/auth/mfa/disable",
        )
        .with_details(json!({"user_id": id})));
    }
    let target = state.store.get_user(&scope, id).await?.ok_or_else(|| AppError::not_found("user"))?;
    check_manage(&principal, target.role)?;
    if state.store.get_mfa(&scope, id).await?.is_none() {
        return Err(AppError::not_found("mfa"));
    }
    // Sessions first: revoking is idempotent, so a failure after it is
    // retried whole, while a reset done first would answer the retry 404
    // and leave the sessions standing.
    let sessions_revoked = state.store.revoke_user_sessions(&scope, id, "mfa_reset", &audit).await?;
    if !state.store.reset_mfa(&scope, id, &audit).await? {
        return Err(AppError::not_found("mfa"));
    }
    // Done and audited: a mail that cannot go out fails nothing.
    if let Some(forgot_link) = state.mailer.link(FORGOT_PAGE, "") {
        let brand = match state.store.get_tenant(&scope).await {
            Ok(Some((tenant, _))) => Brand::of(&tenant),
            _ => Brand::platform(),
        };
        let notice =
            Notice::MfaChanged { first_name: target.first_name.clone(), change: MfaChange::ResetByAdmin, forgot_link };
        state.mailer.deliver(&notice, &brand, &target.email).await;
    }
    Ok(Json(MfaReset { user_id: id, mfa_enabled: false, sessions_revoked }))
}

#[cfg(test)]
mod tests {
    use shared::web::extract::parse_body;

    use super::*;

    fn fields(err: AppError) -> Vec<String> {
        err.invalid_fields()
    }

    #[test]
    fn invites_name_each_bad_address_then_each_repeated_one() {
        let err = parse_body::<Invites>(br#"{"emails": ["ok@x.example", "bad", 5], "role": "boss"}"#).err();
        let mut names = fields(err.expect("refused"));
        names.sort();
        assert_eq!(names, ["emails[1]", "emails[2]", "role"]);
        let invites: Invites =
            parse_body(br#"{"emails": ["ok@x.example", "OK@x.example", "b@x.example"], "role": "Developer"}"#)
                .expect("each address is valid");
        assert_eq!(fields(invites.checked().expect_err("refused")), ["emails[1]"]);
        let invites: Invites = parse_body(br#"{"emails": ["B@x.example"], "role": "Developer"}"#).expect("valid");
        let (emails, role) = invites.checked().expect("valid");
        assert_eq!((emails[0].as_str(), role), ("b@x.example", Role::Developer));
        let invites: Invites = parse_body(br#"{"emails": []}"#).expect("parses");
        assert_eq!(fields(invites.checked().expect_err("refused")), ["emails"]);
    }

    #[test]
    fn an_update_may_leave_out_fields_but_not_clear_them_nor_change_the_address() {
        let update: UserUpdate =
            parse_body(br#"{"first_name": null, "is_active": false, "email": "a@b.co"}"#).expect("parses");
        let mut names = fields(update.into_changes().expect_err("refused"));
        names.sort();
        assert_eq!(names, ["email", "first_name"]);
        let update: UserUpdate = parse_body(br#"{"last_name": "King", "role": "ADMIN"}"#).expect("parses");
        let changes = update.into_changes().expect("valid");
        assert_eq!(changes.last_name.as_ref().map(Text::as_str), Some("King"));
        assert_eq!((changes.role, changes.first_name, changes.is_active), (Some(Role::Admin), None, None));
    }

    #[test]
    fn an_invitation_path_names_an_address() {
        assert_eq!(invitation_email("New@X.example").map(Email::into_inner).ok().as_deref(), Some("new@x.example"));
        assert_eq!(fields(invitation_email("not-an-address").expect_err("refused")), ["email"]);
    }
}
