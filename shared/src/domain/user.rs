//! People inside a tenant (seed 003's user fields), the changes an admin
//! makes to them, invitations (seed 000) and login sessions (refresh-token
//! families). The password hash is kept beside the user in the store and
//! never leaves it. The values a request gives for them are typed here:
//! [`RoleName`], [`PersonName`], [`NewPassword`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    domain::{role::Role, values::Text},
    events::{
        Event,
        catalogue::{UserCreated, UserDeleted, UserInvited, UserUpdated},
    },
};

crate::string_enum!(
    /// A tenant role as a request names it (`"role": "Developer"` is read
    /// as `developer`); [`Role`] is what it grants.
    RoleName {
        Owner => "owner",
        Admin => "admin",
        Developer => "developer",
        User => "user",
    }
);

impl From<Role> for RoleName {
    fn from(role: Role) -> RoleName {
        match role {
            Role::Owner => RoleName::Owner,
            Role::Admin => RoleName::Admin,
            Role::Developer => RoleName::Developer,
            Role::User => RoleName::User,
        }
    }
}

impl From<RoleName> for Role {
    fn from(name: RoleName) -> Role {
        match name {
            RoleName::Owner => Role::Owner,
            RoleName::Admin => Role::Admin,
            RoleName::Developer => Role::Developer,
            RoleName::User => Role::User,
        }
    }
}

/// A first or last name: 1 to 100 characters.
pub type PersonName = Text<1, 100>;

/// A password being set (sign-up, a user created by an admin, an accepted
/// invitation): 10 to 128 characters. That it is not the account's email
/// address is checked beside the email (`auth::password::password_problem`).
#[derive(Clone, PartialEq, Eq)]
pub struct NewPassword(String);

impl NewPassword {
    pub const MIN: usize = 10;
    pub const MAX: usize = 128;

    /// The error is the message a 400 gives for the field.
    pub fn parse(value: impl Into<String>) -> Result<Self, String> {
        let value = value.into();
        let chars = value.chars().count();
        if chars < Self::MIN {
            Err(format!("must be at least {} characters", Self::MIN))
        } else if chars > Self::MAX {
            Err(format!("must be at most {} characters", Self::MAX))
        } else {
            Ok(Self(value))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

crate::inline_schema!(
    NewPassword,
    "NewPassword",
    string(NewPassword::MIN, NewPassword::MAX).format(Some(utoipa::openapi::SchemaFormat::Custom("password".into())))
);

/// Never printed, not even in a debug log.
impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPassword(..)")
    }
}

impl<'de> Deserialize<'de> for NewPassword {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        // `Text` says "is required" for null and "must be a string" otherwise.
        let text = Text::<0, { usize::MAX }>::deserialize(deserializer)?;
        Self::parse(text.into_inner()).map_err(D::Error::custom)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct User {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub role: Role,
    pub is_active: bool,
    #[serde(default)]
    pub platform_admin: bool,
    /// The address is proven to be theirs: a verification link was used, or
    /// they joined through an invitation mailed to it. Users stored before
    /// the flag existed read as unverified: nothing ever proved their
    /// address, and nothing is refused for it (see docs/mail.md).
    #[serde(default)]
    pub email_verified: bool,
    #[serde(default)]
    pub email_verified_at: Option<DateTime<Utc>>,
    pub last_login: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When a reset link last set the password: sign-ins half done before
    /// it (an open `mfa_token`) are void after it, as sessions are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_changed_at: Option<DateTime<Utc>>,
}

impl User {
    /// `user.created`; `via` says how: `api` (an admin created the user),
    /// `registration`, `invitation` or `seed`.
    pub fn created_event(&self, via: &str) -> Event {
        Event::UserCreated(UserCreated {
            user_id: self.id,
            email: self.email.clone(),
            role: self.role.as_str().to_owned(),
            via: via.to_owned(),
        })
    }

    /// `user.updated`: the user's role and active flag after the change.
    pub fn updated_event(&self) -> Event {
        Event::UserUpdated(UserUpdated {
            user_id: self.id,
            role: self.role.as_str().to_owned(),
            is_active: self.is_active,
        })
    }

    pub fn deleted_event(&self) -> Event {
        Event::UserDeleted(UserDeleted { user_id: self.id })
    }

    pub fn new(tenant_id: Uuid, email: &str, first_name: &str, last_name: &str, role: Role) -> Self {
        let now = super::now();
        Self {
            id: Uuid::now_v7(),
            tenant_id,
            email: email.to_ascii_lowercase(),
            first_name: first_name.to_owned(),
            last_name: last_name.to_owned(),
            role,
            is_active: true,
            platform_admin: false,
            email_verified: false,
            email_verified_at: None,
            last_login: None,
            created_at: now,
            updated_at: now,
            password_changed_at: None,
        }
    }

    /// The address proven at `at`: an invitation mailed to it was accepted
    /// (set before the user is stored), or a verification link was used.
    pub fn mark_email_verified(&mut self, at: DateTime<Utc>) {
        self.email_verified = true;
        self.email_verified_at = Some(at);
    }

    pub fn full_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name).trim().to_owned()
    }

    pub fn view(&self) -> UserView {
        UserView {
            id: self.id,
            tenant_id: self.tenant_id,
            email: self.email.clone(),
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            full_name: self.full_name(),
            role: self.role.into(),
            platform_role: self.platform_admin.then_some(PlatformRole::PlatformAdmin),
            is_active: self.is_active,
            email_verified: self.email_verified,
            email_verified_at: self.email_verified_at,
            last_login: self.last_login,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

crate::string_enum!(
    /// A role above every tenant's (seed 002's platform administrators).
    PlatformRole {
        PlatformAdmin => "platform_admin",
    }
);

/// A user as the API shows it (and as audit entries record it); seed 002's
/// `fullName`/`tenantId` appear as snake_case. The password hash is not part
/// of a user.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// `first_name last_name`.
    pub full_name: String,
    /// The user's role in their tenant.
    pub role: RoleName,
    /// `platform_admin` for the platform's administrators, else `null`.
    pub platform_role: Option<PlatformRole>,
    /// An inactive user cannot sign in.
    pub is_active: bool,
    /// Whether the address is proven theirs (a verification link used, or an
    /// invitation mailed to it accepted).
    pub email_verified: bool,
    /// When it was proven; `null` while unverified.
    pub email_verified_at: Option<DateTime<Utc>>,
    pub last_login: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A validated partial update of a user (absent fields stay as they are).
#[derive(Debug, Default, Clone)]
pub struct UserChanges {
    pub first_name: Option<PersonName>,
    pub last_name: Option<PersonName>,
    pub role: Option<Role>,
    pub is_active: Option<bool>,
}

impl UserChanges {
    /// `user` with these changes applied, updated at `now`.
    pub fn apply(&self, user: &User, now: DateTime<Utc>) -> User {
        let name = |new: &Option<PersonName>, old: &String| new.as_ref().map_or_else(|| old.clone(), |n| n.to_string());
        User {
            first_name: name(&self.first_name, &user.first_name),
            last_name: name(&self.last_name, &user.last_name),
            role: self.role.unwrap_or(user.role),
            is_active: self.is_active.unwrap_or(user.is_active),
            updated_at: now,
            ..user.clone()
        }
    }
}

/// How long an invitation stays valid.
pub const INVITATION_TTL_SECONDS: i64 = 7 * 24 * 3600;

crate::string_enum!(
    /// Where an invitation stands. Only pending invitations are kept:
    /// accepting one turns it into a user, revoking one deletes it.
    InvitationStatus {
        Pending => "pending",
    }
);

/// A seat held for an email until its invitee accepts (seed 000).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Invitation {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub email: String,
    pub role: Role,
    pub status: InvitationStatus,
    pub invited_by: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Unix seconds (also the item's TTL).
    pub expires_at: i64,
}

impl Invitation {
    /// A pending invitation of `email` (lowercased), valid for a week from `now`.
    pub fn new(tenant_id: Uuid, email: &str, role: Role, invited_by: Option<String>, now: DateTime<Utc>) -> Self {
        Self {
            id: Uuid::now_v7(),
            tenant_id,
            email: email.to_ascii_lowercase(),
            role,
            status: InvitationStatus::Pending,
            invited_by,
            created_at: now,
            expires_at: now.timestamp() + INVITATION_TTL_SECONDS,
        }
    }

    /// Still acceptable at `now`.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        self.status == InvitationStatus::Pending && self.expires_at > now.timestamp()
    }

    pub fn invited_event(&self) -> Event {
        Event::UserInvited(UserInvited {
            invitation_id: self.id,
            email: self.email.clone(),
            role: self.role.as_str().to_owned(),
        })
    }

    pub fn view(&self) -> InvitationView {
        InvitationView {
            id: self.id,
            email: self.email.clone(),
            role: self.role.into(),
            status: self.status,
            invited_by: self.invited_by.clone(),
            created_at: self.created_at,
            expires_at: DateTime::from_timestamp(self.expires_at, 0).map(super::rfc3339),
        }
    }
}

/// A pending invitation as the API shows it (and as audit entries record
/// it); its token's hash is the store's, not part of it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct InvitationView {
    pub id: Uuid,
    /// The invitee's address (lowercased).
    pub email: String,
    /// The role the invitee gets on accepting.
    pub role: RoleName,
    pub status: InvitationStatus,
    /// The id of the user who sent the invitation (for a new tenant's admin,
    /// the tenant's creator), when one did.
    pub invited_by: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When the invitation stops being acceptable (RFC 3339).
    pub expires_at: Option<String>,
}

/// A login: one refresh-token family (`store::sessions`). Only the SHA-256
/// of the current token is kept.
#[derive(Debug, Clone, Deserialize)]
pub struct Session {
    pub user_id: Uuid,
    pub token_hash: String,
    #[serde(default)]
    pub revoked: bool,
    /// Unix seconds (also the item's TTL).
    pub expires_at: i64,
}

/// What an actor may do to users of its tenant (the rules of issue 3, pure).
pub mod rules {
    use crate::{domain::role::Role, error::AppError};

    /// Nobody grants a role above their own.
    pub fn may_grant(actor: Role, granted: Role) -> bool {
        actor.at_least(granted)
    }

    /// A user above the actor cannot be changed or removed by them.
    pub fn may_manage(actor: Role, target: Role) -> bool {
        actor.at_least(target)
    }

    pub fn role_above_own(actor: Role, granted: Role, tenant_id: impl ToString) -> AppError {
        let tenant_id = tenant_id.to_string();
        AppError::insufficient_permissions(granted.as_str(), actor.as_str(), "user_role", &tenant_id).with_details(
            serde_json::json!({
                "required_role": granted.as_str(),
                "current_role": actor.as_str(),
                "resource": "user_role",
                "tenant_id": tenant_id,
                "reason": format!("a {} cannot grant the {} role", actor.as_str(), granted.as_str()),
            }),
        )
    }

    pub fn last_owner() -> AppError {
        AppError::conflict("the last owner of a tenant cannot be removed, demoted or deactivated")
            .with_details(serde_json::json!({"reason": "last_owner"}))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn grants_stop_at_the_actors_own_role() {
            assert!(may_grant(Role::Owner, Role::Owner));
            assert!(may_grant(Role::Admin, Role::Admin));
            assert!(!may_grant(Role::Admin, Role::Owner));
            assert!(!may_grant(Role::Developer, Role::Admin));
            assert!(may_manage(Role::Admin, Role::Developer));
            assert!(!may_manage(Role::Admin, Role::Owner));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn changes_replace_only_the_fields_they_name() {
        let user = User::new(Uuid::nil(), "Ada@Example.com", "Ada", "Lovelace", Role::Developer);
        let later = user.updated_at + chrono::Duration::seconds(5);
        let changes = UserChanges {
            last_name: Some(PersonName::parse("King").expect("valid")),
            is_active: Some(false),
            ..Default::default()
        };
        let changed = changes.apply(&user, later);
        assert_eq!((changed.first_name.as_str(), changed.last_name.as_str()), ("Ada", "King"));
        assert_eq!((changed.role, changed.is_active, changed.updated_at), (Role::Developer, false, later));
        assert_eq!((changed.id, &changed.email, changed.created_at), (user.id, &user.email, user.created_at));
    }

    #[test]
    fn request_values_are_refused_with_the_old_messages() {
        let refused = |value: serde_json::Value| serde_json::from_value::<NewPassword>(value).expect_err("refused");
        assert_eq!(refused(json!("short")).to_string(), "must be at least 10 characters");
        assert_eq!(refused(json!("x".repeat(129))).to_string(), "must be at most 128 characters");
        assert_eq!(refused(json!(5)).to_string(), "must be a string");
        assert!(serde_json::from_value::<NewPassword>(json!("long enough")).is_ok());
        let role: RoleName = serde_json::from_value(json!("Developer")).expect("role");
        assert_eq!(Role::from(role), Role::Developer);
        let refused = serde_json::from_value::<RoleName>(json!("boss")).expect_err("refused");
        assert_eq!(refused.to_string(), "must be one of owner, admin, developer, user");
    }

    /// The body the API gave before views existed, key for key.
    #[test]
    fn a_user_body_derives_its_full_name_and_platform_role() {
        let mut user = User::new(Uuid::nil(), "Ada@Example.com", "Ada", "Lovelace", Role::Developer);
        let expected = |user: &User, platform_role: Value| {
            json!({
                "id": user.id, "tenant_id": user.tenant_id, "email": "ada@example.com",
                "first_name": "Ada", "last_name": "Lovelace", "full_name": "Ada Lovelace",
                "role": "developer", "platform_role": platform_role, "is_active": true,
                "email_verified": false, "email_verified_at": null, "last_login": null, "created_at": user.created_at, "updated_at": user.updated_at,
            })
        };
        assert_eq!(serde_json::to_value(user.view()).expect("json"), expected(&user, Value::Null));
        user.platform_admin = true;
        user.last_login = Some(user.created_at);
        let mut admin = expected(&user, json!("platform_admin"));
        admin["last_login"] = json!(user.created_at);
        assert_eq!(serde_json::to_value(user.view()).expect("json"), admin);
    }

    /// Users stored before `email_verified` existed read as unverified.
    #[test]
    fn a_user_stored_without_the_verified_flag_reads_as_unverified() {
        let user = User::new(Uuid::nil(), "ada@example.com", "Ada", "Lovelace", Role::User);
        let mut stored = serde_json::to_value(&user).expect("json");
        let object = stored.as_object_mut().expect("object");
        object.remove("email_verified");
        object.remove("email_verified_at");
        let read: User = serde_json::from_value(stored).expect("reads");
        assert!(!read.email_verified && read.email_verified_at.is_none());
        let mut verified = read;
        verified.mark_email_verified(user.created_at);
        assert_eq!(verified.view().email_verified_at, Some(user.created_at));
    }

    #[test]
    fn an_invitation_body_shows_its_status_and_expiry_and_closes_after_a_week() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).expect("time");
        let invitation = Invitation::new(Uuid::nil(), "New@Example.com", Role::Developer, None, now);
        let body = serde_json::to_value(invitation.view()).expect("json");
        assert_eq!(body["email"], "new@example.com");
        assert_eq!(body["status"], "pending");
        assert_eq!(body["role"], "developer");
        assert_eq!(body["expires_at"], "2023-11-21T22:13:20Z");
        let mut keys: Vec<&str> = body.as_object().expect("object").keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["created_at", "email", "expires_at", "id", "invited_by", "role", "status"]);
        assert!(invitation.is_open(now));
        assert!(!invitation.is_open(now + chrono::Duration::seconds(INVITATION_TTL_SECONDS)));
    }
}
