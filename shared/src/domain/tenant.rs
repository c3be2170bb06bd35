//! Tenants (seed 002's model, with seed 000's plan/admin/configuration fields and
//! seed 003's domain/settings). A tenant created through the API starts as
//! `provisioning` and becomes `active` when the provisioner has run.
//!
//! `POST /v1/tenants` takes each seed's dialect: seed 002's full body (or its
//! hierarchy examples' `name`, `slug`, `type`), seed 003's `name`, `domain`,
//! `settings`, and seed 000's `organization_name`, `slug`, `admin_email`,
//! `plan`, `configuration`. Only the name is required; seed 002's validation
//! table applies to every field that is sent, except that `max_diplomas`
//! accepts 10..1,000,000 (seed 002's own examples use 15,000-25,000; API.md).
//! What a body leaves out gets these defaults:
//!
//! | field | default |
//! |---|---|
//! | `slug` | derived from the name ([`slugify`]); when that slug is taken, a random 6-character suffix is added (`new-company-3f9a1c`). A slug that is sent and taken is a 409. |
//! | `type`, `legal_status` | `null` (unclassified) |
//! | `contact_email` | `admin_email` when sent, else `null` |
//! | `plan` | `free` |
//! | `max_users` | the plan's users limit (free and professional 10), 10,000 (the table's maximum) for plans without one |
//! | `max_diplomas` | 100 |
//! | `storage_quota_mb` | 1,000 |
//! | `configuration`, `settings` | `{}` |

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::{
    domain::validate::{Fields, Need, is_hostname, is_slug},
    error::AppError,
};

pub const TENANT_TYPES: &[&str] = &["MAIN", "UNIVERSITY", "FACULTY", "DEPARTMENT", "INSTITUTION"];
pub const LEGAL_STATUSES: &[&str] = &["PUBLIC", "PRIVATE_IPES"];
pub const PLANS: &[&str] = &["free", "professional", "enterprise", "enterprise_custom"];
pub const STATUSES: &[&str] = &["provisioning", "active", "inactive", "suspended"];
/// Statuses a caller may set; `provisioning` belongs to the onboarding flow.
pub const SETTABLE_STATUSES: &[&str] = &["active", "inactive", "suspended"];
const DATA_CLASSIFICATIONS: &[&str] = &["public", "internal", "confidential", "restricted"];

crate::string_enum!(
    /// Where a tenant is in its life (`provisioning` until the provisioner ran).
    TenantStatus {
        Provisioning => "provisioning",
        Active => "active",
        Inactive => "inactive",
        Suspended => "suspended",
    }
);

crate::string_enum!(
    /// Seed 002's tenant types.
    TenantType {
        Main => "MAIN",
        University => "UNIVERSITY",
        Faculty => "FACULTY",
        Department => "DEPARTMENT",
        Institution => "INSTITUTION",
    }
);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Onboarding {
    pub admin_invitation_sent: bool,
    pub provisioned_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Tenant {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    #[serde(rename = "type")]
    pub tenant_type: Option<String>,
    pub description: Option<String>,
    pub logo_url: Option<String>,
    pub contact_email: Option<String>,
    pub contact_phone: Option<String>,
    pub legal_status: Option<String>,
    pub registration_number: Option<String>,
    pub parent_id: Option<Uuid>,
    pub max_users: i64,
    pub max_diplomas: i64,
    pub storage_quota_mb: i64,
    pub security_config: Option<Value>,
    pub status: String,
    pub plan: String,
    /// Seed 000's enterprise `custom_limits` (projects, storage_gb,
    /// api_calls_monthly, ai_requests_monthly: a number or "unlimited").
    #[serde(default)]
    pub custom_limits: Option<Value>,
    pub admin_email: Option<String>,
    pub data_residency: Option<String>,
    pub configuration: Value,
    pub domain: Option<String>,
    pub settings: Value,
    pub onboarding: Onboarding,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Tenant {
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }

    /// `tenant.created`: what the provisioner (and webhooks) need.
    pub fn created_event(&self) -> crate::events::Event {
        crate::events::Event::TenantCreated(crate::events::catalogue::TenantCreated {
            tenant_id: self.id,
            name: self.name.clone(),
            slug: self.slug.clone(),
            admin_email: self.admin_email.clone(),
            plan: self.plan.clone(),
            parent_id: self.parent_id,
            created_by: self.created_by,
        })
    }

    /// The stored fields as JSON (no derived ones).
    pub fn to_stored_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| json!({}))
    }

    /// The API body: the stored fields plus the seeds' derived ones.
    pub fn to_body(&self) -> Value {
        let mut body = self.to_stored_json();
        if let Value::Object(map) = &mut body {
            map.insert("is_active".into(), Value::Bool(self.is_active()));
            map.insert("organization_name".into(), Value::String(self.name.clone()));
        }
        body
    }
}

/// Defaults for tenants that sign themselves up (seed 003 register): the
/// platform-admin fields of seed 002 get the free plan's allowances.
pub const SELF_SERVICE_LIMITS: (i64, i64, i64) = (10, 100, 1_000);

/// Seed 002's `max_diplomas` bounds: its table says at most 10,000 but its own
/// examples use up to 25,000; the examples win (API.md).
pub const MAX_DIPLOMAS: (i64, i64) = (10, 1_000_000);

/// `max_users` when a create body leaves it out: the plan's users limit, or
/// the validation table's maximum (10,000) for plans without one.
pub fn default_max_users(plan: &str) -> i64 {
    super::plans::plan(plan).limits.users.unwrap_or(10_000).clamp(10, 10_000)
}

impl Tenant {
    /// A tenant with only a name and slug: the free plan's allowances, no
    /// seed 002 classification, waiting for provisioning. Sign-up starts here.
    pub fn minimal(name: &str, slug: &str, contact_email: &str, created_by: Uuid) -> Self {
        let (max_users, max_diplomas, storage_quota_mb) = SELF_SERVICE_LIMITS;
        let now = super::now();
        Tenant {
            id: Uuid::now_v7(),
            name: name.to_owned(),
            slug: slug.to_owned(),
            tenant_type: None,
            description: None,
            logo_url: None,
            contact_email: Some(contact_email.to_ascii_lowercase()),
            contact_phone: None,
            legal_status: None,
            registration_number: None,
            parent_id: None,
            max_users,
            max_diplomas,
            storage_quota_mb,
            security_config: None,
            status: "provisioning".into(),
            plan: "free".into(),
            custom_limits: None,
            admin_email: None,
            data_residency: None,
            configuration: json!({}),
            domain: None,
            settings: json!({}),
            onboarding: Onboarding { admin_invitation_sent: false, provisioned_at: None },
            created_by: Some(created_by),
            created_at: now,
            updated_at: now,
        }
    }
}

const CREATE_FIELDS: &[&str] = &[
    "name",
    "organization_name",
    "slug",
    "type",
    "description",
    "logo_url",
    "contact_email",
    "contact_phone",
    "legal_status",
    "registration_number",
    "parent_id",
    "max_users",
    "max_diplomas",
    "storage_quota_mb",
    "security_config",
    "admin_email",
    "plan",
    "custom_limits",
    "data_residency",
    "configuration",
    "domain",
    "settings",
];

/// Validates a create body against seed 002's table (plus the other seeds'
/// fields) and builds the new tenant in `provisioning`.
pub fn tenant_from_create(body: &Map<String, Value>, created_by: Uuid) -> Result<Tenant, AppError> {
    let mut f = Fields::new(body);
    f.reject_unknown(CREATE_FIELDS);
    let name = name_field(&mut f, Need::Required);
    let slug =
        f.check_text("slug", Need::Optional, 63, is_slug, "must match pattern '^[a-z0-9-]+$' (at most 63 characters)");
    let tenant_type = f.one_of("type", Need::Optional, TENANT_TYPES);
    let description = f.text("description", Need::Optional, 0, 1000);
    let logo_url = f.url("logo_url", Need::Optional);
    let contact_email = f.email("contact_email", Need::Optional);
    let contact_phone = f.text("contact_phone", Need::Optional, 5, 20);
    let legal_status = f.one_of("legal_status", Need::Optional, LEGAL_STATUSES);
    let registration_number = f.text("registration_number", Need::Optional, 0, 50);
    let parent_id = f.uuid("parent_id", Need::Optional);
    let max_users = f.integer("max_users", Need::Optional, 10, 10_000);
    let max_diplomas = f.integer("max_diplomas", Need::Optional, MAX_DIPLOMAS.0, MAX_DIPLOMAS.1);
    let storage_quota_mb = f.integer("storage_quota_mb", Need::Optional, 100, 100_000);
    let security_config = security_config_field(&mut f);
    let admin_email = f.email("admin_email", Need::Optional);
    let plan = f.one_of("plan", Need::Optional, PLANS).unwrap_or("free");
    let custom_limits = custom_limits_field(&mut f);
    let data_residency = data_residency_field(&mut f);
    let configuration = configuration_field(&mut f).unwrap_or_else(|| json!({}));
    let domain = f.check_text("domain", Need::Optional, 253, is_hostname, "must be a valid hostname");
    let settings = settings_field(&mut f).unwrap_or_else(|| json!({}));
    let name = f.finish_with(name)?;
    let (_, default_diplomas, default_storage_mb) = SELF_SERVICE_LIMITS;
    let slug = slug.unwrap_or_else(|| slugify(&name));
    let contact_email = contact_email.or_else(|| admin_email.clone());
    let max_users = max_users.unwrap_or_else(|| default_max_users(plan));
    let max_diplomas = max_diplomas.unwrap_or(default_diplomas);
    let storage_quota_mb = storage_quota_mb.unwrap_or(default_storage_mb);
    let now = super::now();
    Ok(Tenant {
        id: Uuid::now_v7(),
        name,
        slug,
        tenant_type: tenant_type.map(str::to_owned),
        description,
        logo_url,
        contact_email,
        contact_phone,
        legal_status: legal_status.map(str::to_owned),
        registration_number,
        parent_id,
        max_users,
        max_diplomas,
        storage_quota_mb,
        security_config,
        status: "provisioning".into(),
        plan: plan.into(),
        custom_limits,
        admin_email,
        data_residency,
        configuration,
        domain,
        settings,
        onboarding: Onboarding { admin_invitation_sent: false, provisioned_at: None },
        created_by: Some(created_by),
        created_at: now,
        updated_at: now,
    })
}

/// `name` (seed 002) or `organization_name` (seed 000): the same field.
fn name_field(f: &mut Fields<'_>, need: Need) -> Option<String> {
    let name = f.text("name", Need::Optional, 3, 255);
    let org = f.text("organization_name", Need::Optional, 3, 255);
    match (name, org) {
        (Some(a), Some(b)) if a != b => {
            f.error("organization_name", "must equal name when both are given");
            None
        }
        (Some(a), _) | (None, Some(a)) => Some(a),
        (None, None) => {
            if need == Need::Required && !f.contains("name") && !f.contains("organization_name") {
                f.error("name", "is required");
            }
            None
        }
    }
}

fn security_config_field(f: &mut Fields<'_>) -> Option<Value> {
    let obj = f.object("security_config", Need::Optional)?;
    let mut inner = Fields::nested("security_config", obj);
    inner.reject_unknown(&["tsa_enabled", "blockchain_enabled", "zero_trust_mode", "egov_link_active"]);
    for flag in ["tsa_enabled", "blockchain_enabled", "zero_trust_mode", "egov_link_active"] {
        inner.boolean(flag, Need::Optional);
    }
    let ok = !inner.has_errors();
    f.absorb(inner);
    ok.then(|| Value::Object(obj.clone()))
}

fn custom_limits_field(f: &mut Fields<'_>) -> Option<Value> {
    const KEYS: &[&str] = &["projects", "storage_gb", "api_calls_monthly", "ai_requests_monthly"];
    let obj = f.object("custom_limits", Need::Optional)?;
    let mut inner = Fields::nested("custom_limits", obj);
    let mut known = KEYS.to_vec();
    known.push("requests_per_minute");
    inner.reject_unknown(&known);
    // A rate limit is always a number: "unlimited" would let one caller flood the table.
    inner.integer("requests_per_minute", Need::Optional, 1, 1_000_000);
    for key in KEYS {
        match obj.get(*key) {
            Some(Value::String(s)) if s == "unlimited" => {}
            Some(_) => {
                inner.integer(key, Need::Optional, 0, 1_000_000_000_000);
            }
            None => {}
        }
    }
    let ok = !inner.has_errors();
    f.absorb(inner);
    ok.then(|| Value::Object(obj.clone()))
}

fn data_residency_field(f: &mut Fields<'_>) -> Option<String> {
    f.check_text(
        "data_residency",
        Need::Optional,
        32,
        |s| s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') && s.len() >= 2,
        "must be a region code such as 'us' or 'eu-west'",
    )
}

fn settings_field(f: &mut Fields<'_>) -> Option<Value> {
    let obj = f.object("settings", Need::Optional)?;
    let mut inner = Fields::nested("settings", obj);
    inner.text("timezone", Need::Optional, 1, 64);
    inner.text("language", Need::Optional, 2, 16);
    let ok = !inner.has_errors();
    f.absorb(inner);
    ok.then(|| Value::Object(obj.clone()))
}

/// Seed 000's `configuration` with its four sections, each checked by name.
fn configuration_field(f: &mut Fields<'_>) -> Option<Value> {
    let obj = f.object("configuration", Need::Optional)?;
    let mut c = Fields::nested("configuration", obj);
    c.reject_unknown(&["branding", "features", "security", "compliance"]);
    if let Some(branding) = c.object("branding", Need::Optional) {
        let mut b = Fields::nested("configuration.branding", branding);
        b.reject_unknown(&["primary_color", "logo_url", "custom_domain"]);
        b.check_text("primary_color", Need::Optional, 7, is_hex_color, "must be a hex colour like #1a365d");
        b.url("logo_url", Need::Optional);
        b.check_text("custom_domain", Need::Optional, 253, is_hostname, "must be a valid hostname");
        c.absorb(b);
    }
    if let Some(features) = c.object("features", Need::Optional) {
        let mut ft = Fields::nested("configuration.features", features);
        let names: Vec<&String> = features.keys().collect();
        for name in names {
            ft.boolean(name, Need::Optional);
        }
        c.absorb(ft);
    }
    if let Some(security) = c.object("security", Need::Optional) {
        let mut s = Fields::nested("configuration.security", security);
        s.reject_unknown(&["sso_required", "mfa_required", "ip_whitelisting", "session_timeout_minutes"]);
        s.boolean("sso_required", Need::Optional);
        s.boolean("mfa_required", Need::Optional);
        s.integer("session_timeout_minutes", Need::Optional, 5, 1440);
        if let Some(ranges) = s.array("ip_whitelisting", Need::Optional, 100) {
            for (i, range) in ranges.iter().enumerate() {
                if !range.as_str().is_some_and(is_cidr) {
                    s.error(&format!("ip_whitelisting[{i}]"), "must be an IP address or CIDR range");
                }
            }
        }
        c.absorb(s);
    }
    if let Some(compliance) = c.object("compliance", Need::Optional) {
        let mut k = Fields::nested("configuration.compliance", compliance);
        k.reject_unknown(&["data_classification", "audit_logging", "retention_policy_days", "gdpr_enabled"]);
        k.one_of("data_classification", Need::Optional, DATA_CLASSIFICATIONS);
        k.boolean("audit_logging", Need::Optional);
        k.integer("retention_policy_days", Need::Optional, 1, 3650);
        k.boolean("gdpr_enabled", Need::Optional);
        c.absorb(k);
    }
    let ok = !c.has_errors();
    f.absorb(c);
    ok.then(|| Value::Object(obj.clone()))
}

fn is_hex_color(s: &str) -> bool {
    s.len() == 7 && s.starts_with('#') && s[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_cidr(s: &str) -> bool {
    let (addr, bits) = match s.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let Ok(ip) = addr.parse::<std::net::IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    bits.is_none_or(|b| b.parse::<u8>().is_ok_and(|n| n <= max))
}

/// A validated partial update: attribute values to set and attributes to clear.
#[derive(Debug, Default, PartialEq)]
pub struct TenantChanges {
    pub set: Vec<(&'static str, Value)>,
    pub remove: Vec<&'static str>,
    /// A new parent that the store must check exists (and is no descendant).
    pub new_parent: Option<Uuid>,
}

impl TenantChanges {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }
}

/// Fields only a platform admin may change: they decide what a tenant is
/// allowed, not how it presents itself.
pub const PLATFORM_ONLY_FIELDS: &[&str] = &[
    "status",
    "plan",
    "custom_limits",
    "max_users",
    "max_diplomas",
    "storage_quota_mb",
    "parent_id",
    "type",
    "legal_status",
    "registration_number",
    "data_residency",
    "security_config",
    "admin_email",
];

const NULLABLE: &[&str] = &[
    "custom_limits",
    "description",
    "logo_url",
    "contact_phone",
    "registration_number",
    "parent_id",
    "security_config",
    "admin_email",
    "data_residency",
    "domain",
];

/// Validates a partial update (seed 002 PUT: every field optional; `null`
/// clears an optional field) of tenant `id`.
pub fn changes_from_update(body: &Map<String, Value>, id: Uuid) -> Result<TenantChanges, AppError> {
    let mut f = Fields::new(body);
    // Every create field (slug only to say it cannot change), and the status.
    let known: Vec<&str> = CREATE_FIELDS.iter().copied().chain(["status"]).collect();
    f.reject_unknown(&known);
    if f.contains("slug") {
        f.error("slug", "cannot be changed");
    }
    for required in [
        "name",
        "organization_name",
        "type",
        "contact_email",
        "legal_status",
        "max_users",
        "max_diplomas",
        "storage_quota_mb",
        "plan",
        "status",
        "configuration",
        "settings",
    ] {
        if f.is_null(required) {
            f.error(required, "must not be null");
        }
    }
    let mut changes = TenantChanges::default();
    let mut set = |name: &'static str, value: Option<Value>| {
        if let Some(v) = value {
            changes.set.push((name, v));
        }
    };
    set("name", name_field(&mut f, Need::Optional).map(Value::String));
    set("type", f.one_of("type", Need::Optional, TENANT_TYPES).map(Value::from));
    set("description", f.text("description", Need::Optional, 0, 1000).map(Value::String));
    set("logo_url", f.url("logo_url", Need::Optional).map(Value::String));
    set("contact_email", f.email("contact_email", Need::Optional).map(Value::String));
    set("contact_phone", f.text("contact_phone", Need::Optional, 5, 20).map(Value::String));
    set("legal_status", f.one_of("legal_status", Need::Optional, LEGAL_STATUSES).map(Value::from));
    set("registration_number", f.text("registration_number", Need::Optional, 0, 50).map(Value::String));
    let parent = f.uuid("parent_id", Need::Optional);
    if parent == Some(id) {
        f.error("parent_id", "a tenant cannot be its own parent");
    }
    set("parent_id", parent.map(|p| Value::String(p.to_string())));
    set("max_users", f.integer("max_users", Need::Optional, 10, 10_000).map(Value::from));
    set("max_diplomas", f.integer("max_diplomas", Need::Optional, MAX_DIPLOMAS.0, MAX_DIPLOMAS.1).map(Value::from));
    set("storage_quota_mb", f.integer("storage_quota_mb", Need::Optional, 100, 100_000).map(Value::from));
    set("security_config", security_config_field(&mut f));
    set("admin_email", f.email("admin_email", Need::Optional).map(Value::String));
    set("plan", f.one_of("plan", Need::Optional, PLANS).map(Value::from));
    set("custom_limits", custom_limits_field(&mut f));
    set("data_residency", data_residency_field(&mut f).map(Value::String));
    set("configuration", configuration_field(&mut f));
    set(
        "domain",
        f.check_text("domain", Need::Optional, 253, is_hostname, "must be a valid hostname").map(Value::String),
    );
    set("settings", settings_field(&mut f));
    set("status", f.one_of("status", Need::Optional, SETTABLE_STATUSES).map(Value::from));
    f.finish()?;
    changes.new_parent = parent;
    changes.remove = NULLABLE.iter().copied().filter(|n| body.get(*n).is_some_and(Value::is_null)).collect();
    Ok(changes)
}

/// Which of the fields in `body` need a platform admin.
pub fn platform_only_fields_in(body: &Map<String, Value>) -> Vec<&'static str> {
    PLATFORM_ONLY_FIELDS.iter().copied().filter(|f| body.contains_key(*f)).collect()
}

/// Whether a create body leaves the slug to be derived from the name (then a
/// taken slug is retried with [`suffixed_slug`] instead of answering 409).
pub fn derives_slug(body: &Map<String, Value>) -> bool {
    body.get("slug").is_none_or(Value::is_null)
}

/// The next candidate when a slug derived from `name` is taken: the name's
/// slug plus a random 6-character suffix (at most 57 characters in all).
pub fn suffixed_slug(name: &str) -> String {
    format!("{}-{}", slugify(name), &Uuid::new_v4().simple().to_string()[..6])
}

/// Turns a free-form organisation name into a slug candidate.
pub fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let trimmed: String = slug.trim_end_matches('-').chars().take(50).collect();
    if trimmed.is_empty() { "tenant".to_owned() } else { trimmed }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Map<String, Value> {
        json!({
            "name": "Université de Buea", "slug": "ub", "type": "UNIVERSITY",
            "contact_email": "info@ub.cm", "legal_status": "PUBLIC",
            "max_users": 150, "max_diplomas": 5000, "storage_quota_mb": 3000
        })
        .as_object()
        .cloned()
        .expect("object")
    }

    fn fields_of(err: AppError) -> Vec<String> {
        let AppError::Api { details, .. } = err else { panic!("api error") };
        details["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .map(|f| f["field"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    #[test]
    fn a_valid_body_becomes_a_provisioning_tenant() {
        let t = tenant_from_create(&valid(), Uuid::nil()).expect("valid");
        assert_eq!(t.status, "provisioning");
        assert_eq!(t.plan, "free");
        assert_eq!(t.tenant_type.as_deref(), Some("UNIVERSITY"));
        assert_eq!(t.to_body()["is_active"], false);
        assert_eq!(t.to_body()["organization_name"], "Université de Buea");
    }

    #[test]
    fn enums_are_matched_case_insensitively_and_stored_canonically() {
        let mut body = valid();
        body.insert("type".into(), json!("faculty"));
        body.insert("plan".into(), json!("Enterprise"));
        let t = tenant_from_create(&body, Uuid::nil()).expect("valid");
        assert_eq!(t.tenant_type.as_deref(), Some("FACULTY"));
        assert_eq!(t.plan, "enterprise");
    }

    #[test]
    fn nested_configuration_errors_name_the_path() {
        let mut body = valid();
        body.insert(
            "configuration".into(),
            json!({"security": {"session_timeout_minutes": 1, "ip_whitelisting": ["10.0.0.0/8", "nope"]},
                   "compliance": {"retention_policy_days": 0}, "branding": {"primary_color": "blue"}}),
        );
        let fields = fields_of(tenant_from_create(&body, Uuid::nil()).expect_err("invalid"));
        assert!(fields.contains(&"configuration.security.session_timeout_minutes".to_owned()));
        assert!(fields.contains(&"configuration.security.ip_whitelisting[1]".to_owned()));
        assert!(fields.contains(&"configuration.compliance.retention_policy_days".to_owned()));
        assert!(fields.contains(&"configuration.branding.primary_color".to_owned()));
    }

    #[test]
    fn update_refuses_slug_changes_and_nulls_on_required_fields() {
        let body = json!({"slug": "x", "name": null}).as_object().cloned().expect("object");
        let fields = fields_of(changes_from_update(&body, Uuid::nil()).expect_err("invalid"));
        assert_eq!(fields, ["slug", "name"]);
    }

    #[test]
    fn update_sets_and_clears() {
        let body = json!({"description": null, "max_users": 250}).as_object().cloned().expect("object");
        let changes = changes_from_update(&body, Uuid::nil()).expect("valid");
        assert_eq!(changes.set, vec![("max_users", json!(250))]);
        assert_eq!(changes.remove, vec!["description"]);
    }

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().expect("object")
    }

    #[test]
    fn only_the_name_is_required() {
        let fields = fields_of(tenant_from_create(&Map::new(), Uuid::nil()).expect_err("invalid"));
        assert_eq!(fields, ["name"]);
    }

    /// Seed 002's hierarchy examples: `name`, `slug`, `type` (and `parent_id`).
    #[test]
    fn seed_002_dialect_name_slug_type_gets_the_defaults() {
        let body = json!({"name": "Ministry of Higher Education", "slug": "minesup", "type": "MAIN"});
        let t = tenant_from_create(&object(body), Uuid::nil()).expect("valid");
        assert_eq!((t.name.as_str(), t.slug.as_str()), ("Ministry of Higher Education", "minesup"));
        assert_eq!(t.tenant_type.as_deref(), Some("MAIN"));
        assert_eq!((t.contact_email, t.legal_status), (None, None));
        assert_eq!((t.max_users, t.max_diplomas, t.storage_quota_mb), (10, 100, 1_000));
        assert_eq!((t.plan.as_str(), t.status.as_str()), ("free", "provisioning"));
    }

    /// Seed 003's create: `name`, `domain`, `settings`; the slug is derived.
    #[test]
    fn seed_003_dialect_name_domain_settings_derives_the_slug() {
        let body = json!({"name": "New Company", "domain": "newcompany.com",
                          "settings": {"timezone": "UTC", "language": "en"}});
        assert!(derives_slug(&object(body.clone())));
        let t = tenant_from_create(&object(body), Uuid::nil()).expect("valid");
        assert_eq!(t.slug, "new-company");
        assert_eq!(t.domain.as_deref(), Some("newcompany.com"));
        assert_eq!(t.settings, json!({"timezone": "UTC", "language": "en"}));
        assert_eq!(t.tenant_type, None);
        assert_eq!((t.max_users, t.max_diplomas, t.storage_quota_mb), (10, 100, 1_000));
    }

    /// Seed 000's create: `organization_name`, `slug`, `admin_email`, `plan`,
    /// `configuration` (and `data_residency`).
    #[test]
    fn seed_000_dialect_organization_name_admin_email_plan_configuration() {
        let body = json!({
            "organization_name": "Fortune 500 Corp", "slug": "fortune500-corp",
            "admin_email": "it-admin@fortune500.com", "plan": "enterprise", "data_residency": "us",
            "configuration": {"features": {"white_label_ui": true}, "security": {"mfa_required": true}}
        });
        assert!(!derives_slug(&object(body.clone())));
        let t = tenant_from_create(&object(body), Uuid::nil()).expect("valid");
        assert_eq!(
            (t.name.as_str(), t.slug.as_str(), t.plan.as_str()),
            ("Fortune 500 Corp", "fortune500-corp", "enterprise")
        );
        assert_eq!(t.admin_email.as_deref(), Some("it-admin@fortune500.com"));
        assert_eq!(t.contact_email.as_deref(), Some("it-admin@fortune500.com"), "contact defaults to the admin");
        assert_eq!(t.max_users, 10_000, "enterprise has no users limit: the table's maximum");
        assert_eq!(t.configuration["security"]["mfa_required"], true);
        let professional = json!({"organization_name": "TechStart Inc", "slug": "techstart",
                                  "admin_email": "founder@techstart.io", "plan": "professional"});
        assert_eq!(tenant_from_create(&object(professional), Uuid::nil()).expect("valid").max_users, 10);
    }

    #[test]
    fn the_validation_table_still_applies_to_what_is_sent() {
        let body = json!({"name": "ab", "slug": "No Slug", "type": "SCHOOL", "max_users": 5, "contact_email": "x"});
        let fields = fields_of(tenant_from_create(&object(body), Uuid::nil()).expect_err("invalid"));
        assert_eq!(fields, ["name", "slug", "type", "contact_email", "max_users"]);
    }

    /// Seed 002's examples use 15,000-25,000 diplomas; its table said 10,000.
    #[test]
    fn max_diplomas_accepts_ten_to_a_million() {
        for ok in [10, 15_000, 25_000, 1_000_000] {
            let mut body = valid();
            body.insert("max_diplomas".into(), json!(ok));
            assert_eq!(tenant_from_create(&body, Uuid::nil()).expect("valid").max_diplomas, ok);
            let update = object(json!({"max_diplomas": ok}));
            assert_eq!(
                changes_from_update(&update, Uuid::nil()).expect("valid").set,
                vec![("max_diplomas", json!(ok))]
            );
        }
        for bad in [9, 1_000_001] {
            let mut body = valid();
            body.insert("max_diplomas".into(), json!(bad));
            assert_eq!(fields_of(tenant_from_create(&body, Uuid::nil()).expect_err("invalid")), ["max_diplomas"]);
            let update = object(json!({"max_diplomas": bad}));
            assert_eq!(fields_of(changes_from_update(&update, Uuid::nil()).expect_err("invalid")), ["max_diplomas"]);
        }
    }

    #[test]
    fn a_derived_slug_that_is_taken_gets_a_suffix() {
        assert!(derives_slug(&object(json!({"name": "x", "slug": null}))));
        let next = suffixed_slug("New Company");
        assert!(next.starts_with("new-company-") && next.len() == "new-company-".len() + 6, "{next}");
        assert!(is_slug(&next));
        assert!(suffixed_slug(&"n".repeat(255)).len() <= 63);
    }

    #[test]
    fn slugify_makes_pattern_safe_slugs() {
        assert_eq!(slugify("My Company, Inc."), "my-company-inc");
        assert!(is_slug(&slugify("Université de Yaoundé")));
        assert_eq!(slugify("!!!"), "tenant");
    }
}
