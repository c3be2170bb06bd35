//! Metered components: what a tenant bills by usage (seed 000 scenario 4
//! step 1), each a name, a unit and its tiers. `metric_type` in a usage
//! record names one of them, or a built-in meter that the platform
//! measures itself.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, de::Error as _};
use serde_json::Value;

use super::pricing::{PricingTiers, Tier, TierInput, TiersMode};
use crate::{
    domain::{ids::TenantId, values::Text},
    error::{AppError, FieldError},
};

/// Meters the platform measures without anyone posting them (authenticated
/// API calls, try-on renders and AI jobs, stored bytes as gb_hour): always
/// accepted as `metric_type`, priced once a component of the same name
/// exists.
pub const BUILT_IN_METERS: [&str; 3] = ["api_calls", "ai_requests", "storage"];
/// A request sets 1 to this many components.
pub const MAX_COMPONENTS: usize = 20;

/// `^[a-z][a-z0-9_]{0,63}$`: a name that is also a safe attribute suffix
/// (`q_<metric>` on the rollup items).
pub fn is_metric_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=64).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
}

/// How a built-in meter is shown when no component names it.
pub fn built_in_display(metric: &str) -> Option<(&'static str, &'static str)> {
    match metric {
        "api_calls" => Some(("API Calls", "call")),
        "ai_requests" => Some(("AI Requests", "request")),
        "storage" => Some(("Storage", "gb_hour")),
        _ => None,
    }
}

/// A metric or component name ([`is_metric_name`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct MetricName(String);

impl MetricName {
    pub fn parse(value: &str) -> Result<Self, String> {
        if is_metric_name(value) {
            Ok(Self(value.to_owned()))
        } else {
            Err("must match ^[a-z][a-z0-9_]{0,63}$".to_owned())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl<'de> Deserialize<'de> for MetricName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(s) => Self::parse(&s).map_err(D::Error::custom),
            Value::Null => Err(D::Error::custom("is required")),
            _ => Err(D::Error::custom("must be a string")),
        }
    }
}

eserde::impl_edeserialize_compat!(MetricName);

crate::inline_schema!(MetricName, "MetricName", string(1, 64).pattern(Some("^[a-z][a-z0-9_]{0,63}$")));

/// One component as sent.
#[derive(Debug, Clone, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ComponentInput {
    /// The `metric_type` usage records name it by.
    #[eserde(compat)]
    pub name: MetricName,
    pub display_name: Text<1, 100>,
    /// What one unit is (`call`, `request`, `gb_hour`).
    pub unit: Text<1, 32>,
    #[serde(default)]
    pub description: Option<Text<0, 500>>,
    /// `graduated` (default) or `volume`.
    #[serde(default)]
    #[eserde(compat)]
    pub tiers_mode: Option<TiersMode>,
    /// 1 to 10 tiers ascending from 0, the last open.
    pub pricing_tiers: Vec<TierInput>,
}

/// `POST /v1/billing/metered-components`: seed 000's body.
#[derive(Debug, Clone, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "tenant_id": "0190c7a4-7c1e-7000-8000-000000000001",
    "components": [
        {"name": "api_calls", "display_name": "API Calls", "unit": "call", "pricing_tiers": [
            {"up_to": 100000, "price_per_unit": 0.001}, {"up_to": 1000000, "price_per_unit": 0.0008},
            {"above": 1000000, "price_per_unit": 0.0005}]},
        {"name": "ai_requests", "display_name": "AI Processing Requests", "unit": "request", "pricing_tiers": [
            {"up_to": 1000, "price_per_unit": 0.05}, {"up_to": 10000, "price_per_unit": 0.04},
            {"above": 10000, "price_per_unit": 0.03}]},
        {"name": "storage", "display_name": "Data Storage", "unit": "gb_hour", "pricing_tiers": [
            {"up_to": 1000, "price_per_unit": 0.023}, {"above": 1000, "price_per_unit": 0.018}]}
    ]
}))]
pub struct MeteredComponentsRequest {
    /// The caller's own tenant, if sent (another tenant's is refused).
    #[serde(default)]
    #[eserde(compat)]
    pub tenant_id: Option<TenantId>,
    /// 1 to 20, names unique.
    pub components: Vec<ComponentInput>,
}

impl MeteredComponentsRequest {
    /// The components to store (each replaces the one of its name).
    pub fn validate(self, now: DateTime<Utc>) -> Result<Vec<MeteredComponent>, AppError> {
        let mut errors = Vec::new();
        if self.components.is_empty() || self.components.len() > MAX_COMPONENTS {
            errors.push(FieldError::new("components", format!("must have 1 to {MAX_COMPONENTS} items")));
        }
        let mut seen = std::collections::BTreeMap::new();
        let mut components = Vec::new();
        for (i, input) in self.components.into_iter().enumerate() {
            if let Some(first) = seen.insert(input.name.clone(), i) {
                errors.push(FieldError::new(
                    format!("components[{i}].name"),
                    format!("duplicates components[{first}].name"),
                ));
            }
            let mode = input.tiers_mode.unwrap_or_default();
            match PricingTiers::new(mode, input.pricing_tiers, &format!("components[{i}].pricing_tiers")) {
                Ok(pricing) => components.push(MeteredComponent {
                    name: input.name.into_inner(),
                    display_name: input.display_name.into_inner(),
                    unit: input.unit.into_inner(),
                    description: input.description.map(Text::into_inner),
                    tiers_mode: pricing.mode,
                    pricing_tiers: pricing.tiers,
                    updated_at: now,
                }),
                Err(err) => {
                    if let AppError::Api { details, .. } = &err
                        && let Ok(fields) = serde_json::from_value::<Vec<FieldError>>(details["fields"].clone())
                    {
                        errors.extend(fields);
                    }
                }
            }
        }
        if errors.is_empty() { Ok(components) } else { Err(AppError::validation(errors)) }
    }
}

/// A metered component, as stored and as answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MeteredComponent {
    pub name: String,
    pub display_name: String,
    pub unit: String,
    #[serde(default)]
    pub description: Option<String>,
    pub tiers_mode: TiersMode,
    /// From 0 up, the last open (`up_to: null`).
    pub pricing_tiers: Vec<Tier>,
    pub updated_at: DateTime<Utc>,
}

impl MeteredComponent {
    pub fn pricing(&self) -> PricingTiers {
        PricingTiers { mode: self.tiers_mode, tiers: self.pricing_tiers.clone() }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;

    /// Seed 000 scenario 4 step 1, verbatim (the tenant id filled in).
    pub(crate) fn seed_body() -> Value {
        json!({
          "tenant_id": "0190c7a4-7c1e-7000-8000-000000000001",
          "components": [
            {"name": "api_calls", "display_name": "API Calls", "unit": "call",
             "pricing_tiers": [{"up_to": 100000, "price_per_unit": 0.001}, {"up_to": 1000000, "price_per_unit": 0.0008},
                               {"above": 1000000, "price_per_unit": 0.0005}]},
            {"name": "ai_requests", "display_name": "AI Processing Requests", "unit": "request",
             "pricing_tiers": [{"up_to": 1000, "price_per_unit": 0.05}, {"up_to": 10000, "price_per_unit": 0.04},
                               {"above": 10000, "price_per_unit": 0.03}]},
            {"name": "storage", "display_name": "Data Storage", "unit": "gb_hour",
             "pricing_tiers": [{"up_to": 1000, "price_per_unit": 0.023}, {"above": 1000, "price_per_unit": 0.018}]}
          ]
        })
    }

    pub(crate) fn seed_components() -> Vec<MeteredComponent> {
        let request: MeteredComponentsRequest = eserde::json::from_str(&seed_body().to_string()).expect("parses");
        request.validate(Utc::now()).expect("valid")
    }

    #[test]
    fn the_seed_body_is_accepted() {
        let components = seed_components();
        assert_eq!(components.len(), 3);
        assert_eq!(components[0].tiers_mode, TiersMode::Graduated);
        assert_eq!(components[2].pricing().price("33552".parse().expect("d")).amount.to_string(), "608.94");
        let json = serde_json::to_value(&components[0]).expect("json");
        assert_eq!(json["pricing_tiers"][1]["price_per_unit"], "0.0008");
        let back: MeteredComponent = serde_json::from_value(json).expect("read back");
        assert_eq!(back, components[0]);
    }

    #[test]
    fn names_are_unique_and_errors_name_the_component() {
        let mut body = seed_body();
        body["components"][1]["name"] = json!("api_calls");
        body["components"][2]["pricing_tiers"][1]["above"] = json!(999);
        let request: MeteredComponentsRequest = eserde::json::from_str(&body.to_string()).expect("parses");
        let fields = request.validate(Utc::now()).expect_err("invalid").invalid_fields();
        assert_eq!(fields, ["components[1].name", "components[2].pricing_tiers[1].above"]);
        let mut bad = seed_body();
        bad["components"][0]["name"] = json!("API Calls");
        assert!(eserde::json::from_str::<MeteredComponentsRequest>(&bad.to_string()).is_err());
        assert!(is_metric_name("gpu_seconds") && !is_metric_name("9x") && !is_metric_name(&"a".repeat(65)));
    }
}
