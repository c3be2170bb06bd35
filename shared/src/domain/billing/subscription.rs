//! A tenant's subscription: a catalogue plan at its list price, or an
//! enterprise contract (seed 000 scenario 1 step 4) whose `custom_limits`
//! become the tenant's quota limits at once (mirrored onto the tenant item
//! by the store, in the same transaction).

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, de::Error as _};
use serde_json::{Map, Value, json};

use super::money::{self, DecimalInput, MoneyString, round_cents};
use crate::{
    domain::{
        ids::TenantId,
        plans,
        tenant::{Limit, TenantPlan, TenantPlanName},
        values::Int,
    },
    error::{AppError, FieldError},
};

crate::string_enum!(
    /// How often a contract is invoiced.
    InvoiceFrequency {
        Monthly => "monthly",
        Quarterly => "quarterly",
        Annually => "annually",
    }
);

crate::string_enum!(
    /// How a contract is paid.
    PaymentMethod {
        PurchaseOrder => "purchase_order",
        WireTransfer => "wire_transfer",
        Card => "card",
        Ach => "ach",
        Invoice => "invoice",
    }
);

crate::string_enum!(
    /// A subscription's state.
    SubscriptionStatus {
        Active => "active",
    }
);

/// Hours of an SLA: above 0, at most a year, 2 decimals.
fn hours<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
    money::bounded(&Value::deserialize(deserializer)?, Decimal::ZERO, true, Decimal::from(8760), 2)
        .map_err(D::Error::custom)
}

/// A `YYYY-MM-DD` date in a request.
fn optional_date<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<NaiveDate>, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        Value::String(s) => NaiveDate::parse_from_str(&s, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| D::Error::custom("must be a date (YYYY-MM-DD)")),
        _ => Err(D::Error::custom("must be a date (YYYY-MM-DD)")),
    }
}

/// Seed 000's `contract_details`.
#[derive(Debug, Clone, PartialEq, Serialize, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContractDetails {
    /// The yearly amount; an `enterprise_custom` month is a twelfth of it.
    #[serde(deserialize_with = "money::amount")]
    #[schema(value_type = DecimalInput)]
    pub annual_contract_value: Decimal,
    pub contract_term_months: Int<1, 120>,
    #[serde(default)]
    pub auto_renewal: bool,
    #[serde(default)]
    pub volume_discounts: bool,
    #[serde(default, deserialize_with = "optional_date", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<NaiveDate>)]
    pub start_date: Option<NaiveDate>,
}

/// Seed 000's `custom_limits`: each a number or `"unlimited"`; `storage_tb`
/// is `storage_gb / 1000` (send one of the two). A rate limit is always a
/// number, as on the tenant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionLimits {
    /// The tenant's users limit (seed 002's `max_users`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<Limit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projects: Option<Limit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_requests_monthly: Option<Limit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_calls_monthly: Option<Limit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_gb: Option<Limit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_tb: Option<Limit>,
    /// Recorded for the contract; nothing meters support hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedicated_support_hours: Option<Limit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<Int<1, 1_000_000>>,
}

/// Seed 000's `sla_requirements` (recorded; not measured here).
#[derive(Debug, Clone, PartialEq, Serialize, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlaRequirements {
    #[serde(deserialize_with = "money::percent")]
    #[schema(value_type = DecimalInput)]
    pub uptime_percentage: Decimal,
    #[serde(deserialize_with = "hours")]
    #[schema(value_type = DecimalInput)]
    pub support_response_time_hours: Decimal,
    #[serde(deserialize_with = "hours")]
    #[schema(value_type = DecimalInput)]
    pub data_recovery_rto_hours: Decimal,
}

/// Seed 000's `invoicing`.
#[derive(Debug, Clone, PartialEq, Serialize, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Invoicing {
    #[eserde(compat)]
    pub frequency: InvoiceFrequency,
    #[eserde(compat)]
    pub payment_method: PaymentMethod,
    /// Percent off for early payment (0 to 100).
    #[serde(default, deserialize_with = "money::percent")]
    #[schema(value_type = DecimalInput)]
    pub early_payment_discount: Decimal,
}

impl Default for Invoicing {
    fn default() -> Self {
        Invoicing {
            frequency: InvoiceFrequency::Monthly,
            payment_method: PaymentMethod::Invoice,
            early_payment_discount: Decimal::ZERO,
        }
    }
}

/// `POST /v1/billing/subscription/enterprise`: seed 000's body.
#[derive(Debug, Clone, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "tenant_id": "0190c7a4-7c1e-7000-8000-000000000001",
    "plan_type": "enterprise_custom",
    "contract_details": {"annual_contract_value": 500000, "contract_term_months": 36, "auto_renewal": true, "volume_discounts": true},
    "custom_limits": {"users": 2500, "projects": "unlimited", "ai_requests_monthly": 10000000, "storage_tb": 50,
                      "api_calls_monthly": "unlimited", "dedicated_support_hours": 40},
    "sla_requirements": {"uptime_percentage": 99.95, "support_response_time_hours": 2, "data_recovery_rto_hours": 4},
    "invoicing": {"frequency": "quarterly", "payment_method": "purchase_order", "early_payment_discount": 2.0}
}))]
pub struct EnterpriseSubscriptionRequest {
    #[serde(default)]
    #[eserde(compat)]
    pub tenant_id: Option<TenantId>,
    /// A catalogue plan; default `enterprise_custom` (then
    /// `contract_details` is required).
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<TenantPlanName>)]
    pub plan_type: Option<TenantPlan>,
    #[serde(default)]
    pub contract_details: Option<ContractDetails>,
    #[serde(default)]
    pub custom_limits: Option<SubscriptionLimits>,
    #[serde(default)]
    pub sla_requirements: Option<SlaRequirements>,
    #[serde(default)]
    pub invoicing: Option<Invoicing>,
}

/// `PATCH /v1/billing/subscription`: move to a catalogue plan.
#[derive(Debug, Clone, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"plan_type": "professional"}))]
pub struct PlanChangeRequest {
    /// `free`, `professional` or `enterprise` (a contract is made with
    /// `POST /v1/billing/subscription/enterprise`).
    #[eserde(compat)]
    #[schema(value_type = TenantPlanName)]
    pub plan_type: TenantPlan,
}

/// The subscription, as stored and as answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Subscription {
    pub plan_type: String,
    pub status: SubscriptionStatus,
    #[serde(default)]
    pub contract: Option<ContractDetails>,
    #[serde(default)]
    pub limits: SubscriptionLimits,
    #[serde(default)]
    pub sla: Option<SlaRequirements>,
    #[serde(default)]
    pub invoicing: Invoicing,
    /// What a whole month costs before usage: the plan's list price, or a
    /// twelfth of the annual contract value, rounded to cents.
    #[schema(value_type = MoneyString)]
    pub base_monthly_amount: Decimal,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn list_price(plan: TenantPlan) -> Decimal {
    round_cents(plans::plan(plan.as_str()).monthly_price.map(Decimal::from).unwrap_or_default())
}

impl Subscription {
    /// The subscription a contract body makes (replacing `old`, whose start
    /// is kept).
    pub fn enterprise(
        request: EnterpriseSubscriptionRequest,
        old: Option<&Subscription>,
        now: DateTime<Utc>,
    ) -> Result<Subscription, AppError> {
        let plan = request.plan_type.unwrap_or(TenantPlan::EnterpriseCustom);
        let limits = request.custom_limits.unwrap_or_default();
        let mut errors = Vec::new();
        if plan == TenantPlan::EnterpriseCustom && request.contract_details.is_none() {
            errors.push(FieldError::new("contract_details", "is required for enterprise_custom"));
        }
        if limits.storage_gb.is_some() && limits.storage_tb.is_some() {
            errors.push(FieldError::new("custom_limits.storage_tb", "send storage_gb or storage_tb, not both"));
        }
        if !errors.is_empty() {
            return Err(AppError::validation(errors));
        }
        let base_monthly_amount = match (&request.contract_details, plan) {
            (Some(contract), TenantPlan::EnterpriseCustom) => {
                round_cents(contract.annual_contract_value / Decimal::from(12))
            }
            _ => list_price(plan),
        };
        Ok(Subscription {
            plan_type: plan.as_str().to_owned(),
            status: SubscriptionStatus::Active,
            contract: request.contract_details,
            limits,
            sla: request.sla_requirements,
            invoicing: request.invoicing.unwrap_or_default(),
            base_monthly_amount,
            started_at: old.map_or(now, |o| o.started_at),
            updated_at: now,
        })
    }

    /// A move to a catalogue plan at its list price: a contract's limits
    /// and terms are dropped.
    pub fn plan_change(
        request: &PlanChangeRequest,
        old: Option<&Subscription>,
        now: DateTime<Utc>,
    ) -> Result<Subscription, AppError> {
        if request.plan_type == TenantPlan::EnterpriseCustom {
            return Err(AppError::invalid_field(
                "plan_type",
                "enterprise_custom is set by POST /v1/billing/subscription/enterprise",
            ));
        }
        Ok(Subscription {
            plan_type: request.plan_type.as_str().to_owned(),
            status: SubscriptionStatus::Active,
            contract: None,
            limits: SubscriptionLimits::default(),
            sla: None,
            invoicing: Invoicing::default(),
            base_monthly_amount: list_price(request.plan_type),
            started_at: old.map_or(now, |o| o.started_at),
            updated_at: now,
        })
    }

    /// What the tenant item's `custom_limits` holds (`plans::effective_limits`
    /// reads it): `storage_tb` as `storage_gb` (x 1000), `"unlimited"` kept;
    /// `None` when the subscription sets no limit.
    pub fn tenant_custom_limits(&self) -> Option<Value> {
        let l = &self.limits;
        let storage_gb = l.storage_gb.or(match l.storage_tb {
            Some(Limit::Of(tb)) => Some(Limit::Of(tb.saturating_mul(1000))),
            other => other,
        });
        let mut map = Map::new();
        for (key, limit) in [
            ("users", l.users),
            ("projects", l.projects),
            ("ai_requests_monthly", l.ai_requests_monthly),
            ("api_calls_monthly", l.api_calls_monthly),
            ("storage_gb", storage_gb),
        ] {
            if let Some(limit) = limit {
                map.insert(key.to_owned(), json!(limit));
            }
        }
        if let Some(rpm) = l.requests_per_minute {
            map.insert("requests_per_minute".to_owned(), json!(rpm.get()));
        }
        (!map.is_empty()).then_some(Value::Object(map))
    }

    /// The tenant's `max_users` when the contract sets a number (an
    /// `"unlimited"` contract is read from `custom_limits.users`).
    pub fn max_users(&self) -> Option<i64> {
        match self.limits.users {
            Some(Limit::Of(n)) => Some(n),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed_body() -> Value {
        json!({
          "tenant_id": "0190c7a4-7c1e-7000-8000-000000000001",
          "plan_type": "enterprise_custom",
          "contract_details": {"annual_contract_value": 500000, "contract_term_months": 36, "auto_renewal": true, "volume_discounts": true},
          "custom_limits": {"users": 2500, "projects": "unlimited", "ai_requests_monthly": 10000000, "storage_tb": 50,
                            "api_calls_monthly": "unlimited", "dedicated_support_hours": 40},
          "sla_requirements": {"uptime_percentage": 99.95, "support_response_time_hours": 2, "data_recovery_rto_hours": 4},
          "invoicing": {"frequency": "quarterly", "payment_method": "purchase_order", "early_payment_discount": 2.0}
        })
    }

    fn parse(body: &Value) -> Result<EnterpriseSubscriptionRequest, Vec<String>> {
        eserde::json::from_str(&body.to_string())
            .map_err(|e| e.iter().map(|e| e.path().map(|p| p.to_string()).unwrap_or_default()).collect())
    }

    #[test]
    fn the_seed_contract() {
        let now = Utc::now();
        let subscription = Subscription::enterprise(parse(&seed_body()).expect("valid"), None, now).expect("valid");
        assert_eq!(subscription.plan_type, "enterprise_custom");
        assert_eq!(subscription.base_monthly_amount.to_string(), "41666.67");
        assert_eq!(
            subscription.tenant_custom_limits(),
            Some(json!({"users": 2500, "projects": "unlimited", "ai_requests_monthly": 10000000,
                        "api_calls_monthly": "unlimited", "storage_gb": 50000}))
        );
        assert_eq!(subscription.max_users(), Some(2500));
        let json = serde_json::to_value(&subscription).expect("json");
        assert_eq!(json["contract"]["annual_contract_value"], "500000.00");
        assert_eq!(json["sla"]["uptime_percentage"], "99.95");
        assert_eq!(json["invoicing"]["early_payment_discount"], "2");
        let back: Subscription = serde_json::from_value(json).expect("read back");
        assert_eq!(back, subscription);
    }

    #[test]
    fn contracts_are_checked() {
        let mut body = seed_body();
        body["sla_requirements"]["uptime_percentage"] = json!(100.5);
        body["contract_details"]["contract_term_months"] = json!(121);
        body["plan_type"] = json!("gold");
        let mut fields = parse(&body).expect_err("invalid");
        fields.sort();
        assert_eq!(
            fields,
            ["contract_details.contract_term_months", "plan_type", "sla_requirements.uptime_percentage"]
        );
        let mut unknown = seed_body();
        unknown["custom_limits"]["seats"] = json!(1);
        assert!(parse(&unknown).expect_err("invalid").contains(&"custom_limits.seats".to_owned()));
        let mut no_contract = seed_body();
        no_contract.as_object_mut().expect("object").remove("contract_details");
        let err =
            Subscription::enterprise(parse(&no_contract).expect("parses"), None, Utc::now()).expect_err("invalid");
        assert_eq!(err.invalid_fields(), ["contract_details"]);
        let both = json!({"plan_type": "enterprise", "custom_limits": {"storage_gb": 1, "storage_tb": 1}});
        let err = Subscription::enterprise(parse(&both).expect("parses"), None, Utc::now()).expect_err("invalid");
        assert_eq!(err.invalid_fields(), ["custom_limits.storage_tb"]);
    }

    #[test]
    fn plan_changes_take_the_list_price() {
        let old = Subscription::enterprise(parse(&seed_body()).expect("valid"), None, Utc::now()).expect("valid");
        let request: PlanChangeRequest = eserde::json::from_str(r#"{"plan_type": "professional"}"#).expect("valid");
        let new = Subscription::plan_change(&request, Some(&old), Utc::now()).expect("valid");
        assert_eq!((new.plan_type.as_str(), new.base_monthly_amount.to_string()), ("professional", "200.00".into()));
        assert_eq!(new.started_at, old.started_at);
        assert_eq!(new.tenant_custom_limits(), None);
        let custom: PlanChangeRequest =
            eserde::json::from_str(r#"{"plan_type": "enterprise_custom"}"#).expect("parses");
        assert!(Subscription::plan_change(&custom, None, Utc::now()).is_err());
    }
}
