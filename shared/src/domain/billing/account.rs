//! A tenant's billing account (seed 000 scenario 1 step 3): who is billed,
//! where, on what terms, and our own currency, tax rate and low-credit
//! alert threshold.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::money::{self, DecimalInput, DecimalString};
use crate::{
    domain::{
        credit::MAX_CREDITS,
        ids::TenantId,
        values::{Clearable, Email, Int, Settable, Text},
    },
    error::AppError,
};

crate::string_enum!(
    /// When an invoice is due after it is issued.
    PaymentTerms {
        Net15 => "NET15",
        Net30 => "NET30",
        Net45 => "NET45",
        Net60 => "NET60",
        Net90 => "NET90",
        DueOnReceipt => "DUE_ON_RECEIPT",
    }
);

impl PaymentTerms {
    pub fn days(self) -> i64 {
        match self {
            PaymentTerms::Net15 => 15,
            PaymentTerms::Net30 => 30,
            PaymentTerms::Net45 => 45,
            PaymentTerms::Net60 => 60,
            PaymentTerms::Net90 => 90,
            PaymentTerms::DueOnReceipt => 0,
        }
    }
}

/// An ISO 4217 code: three capital letters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Currency(String);

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer).map_err(|_| serde::de::Error::custom("must be a string"))?;
        if text.len() == 3 && text.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Currency(text))
        } else {
            Err(serde::de::Error::custom("must match ^[A-Z]{3}$ (ISO 4217, e.g. USD)"))
        }
    }
}

eserde::impl_edeserialize_compat!(Currency);
crate::inline_schema!(Currency, "Currency", string(3, 3).pattern(Some("^[A-Z]{3}$")));

/// `credits_low_balance_threshold`: 0 to the largest grant.
pub type LowBalanceThreshold = Int<0, MAX_CREDITS>;

/// The address on the account, as sent.
#[derive(Debug, Clone, PartialEq, Serialize, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillingAddress {
    pub line1: Text<1, 200>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<Text<1, 200>>,
    pub city: Text<1, 100>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Text<1, 100>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<Text<1, 20>>,
    /// A country code or name (seed 000 writes both `US` and `United States`).
    pub country: Text<2, 100>,
}

/// Who to talk to about invoices.
#[derive(Debug, Clone, PartialEq, Serialize, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillingContact {
    pub name: Text<1, 200>,
    #[eserde(compat)]
    pub email: Email,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<Text<5, 30>>,
}

/// `POST /v1/billing/account`: seed 000's body, plus `currency` (USD),
/// `tax_rate_percent` (0) and `credits_low_balance_threshold`.
#[derive(Debug, Clone, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "company_name": "Fortune 500 Corp",
    "billing_email": "ap@fortune500.com",
    "billing_address": {"line1": "123 Enterprise Plaza", "line2": "Suite 4500", "city": "New York",
                        "state": "NY", "postal_code": "10001", "country": "US"},
    "tax_id": "12-3456789",
    "payment_terms": "NET30",
    "purchase_order_required": true,
    "billing_contact": {"name": "Sarah Johnson", "email": "billing@fortune500.com", "phone": "+1-555-0123"}
}))]
pub struct BillingAccountRequest {
    /// The caller's own tenant, if sent.
    #[serde(default)]
    #[eserde(compat)]
    pub tenant_id: Option<TenantId>,
    pub company_name: Text<1, 200>,
    #[eserde(compat)]
    pub billing_email: Email,
    pub billing_address: BillingAddress,
    #[serde(default)]
    pub tax_id: Option<Text<1, 50>>,
    /// Default `NET30`.
    #[serde(default)]
    #[eserde(compat)]
    pub payment_terms: Option<PaymentTerms>,
    #[serde(default)]
    pub purchase_order_required: Option<bool>,
    #[serde(default)]
    pub billing_contact: Option<BillingContact>,
    /// Default `USD`.
    #[serde(default)]
    #[eserde(compat)]
    pub currency: Option<Currency>,
    /// 0 to 100, applied to each invoice's rounded subtotal; default 0.
    #[serde(default, deserialize_with = "money::optional_percent")]
    #[schema(value_type = Option<DecimalInput>)]
    pub tax_rate_percent: Option<Decimal>,
    /// `credits.low_balance` is told when the credit balance falls below it.
    #[serde(default)]
    pub credits_low_balance_threshold: Option<LowBalanceThreshold>,
}

/// `PATCH /v1/billing/account`: only what is sent changes; `null` clears
/// `tax_id`, `billing_contact` and `credits_low_balance_threshold`.
#[derive(Debug, Clone, Default, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillingAccountPatch {
    #[serde(default)]
    pub company_name: Settable<Text<1, 200>>,
    #[serde(default)]
    pub billing_email: Settable<Email>,
    #[serde(default)]
    pub billing_address: Settable<BillingAddress>,
    #[serde(default)]
    pub tax_id: Clearable<Text<1, 50>>,
    #[serde(default)]
    #[eserde(compat)]
    pub payment_terms: Settable<PaymentTerms>,
    #[serde(default)]
    pub purchase_order_required: Settable<bool>,
    #[serde(default)]
    pub billing_contact: Clearable<BillingContact>,
    #[serde(default)]
    #[eserde(compat)]
    pub currency: Settable<Currency>,
    #[serde(default, deserialize_with = "money::optional_percent")]
    #[schema(value_type = Option<DecimalInput>)]
    pub tax_rate_percent: Option<Decimal>,
    #[serde(default)]
    pub credits_low_balance_threshold: Clearable<LowBalanceThreshold>,
}

/// The billing account, as stored and as answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BillingAccount {
    pub company_name: String,
    pub billing_email: String,
    pub billing_address: BillingAddress,
    #[serde(default)]
    pub tax_id: Option<String>,
    pub payment_terms: PaymentTerms,
    pub purchase_order_required: bool,
    #[serde(default)]
    pub billing_contact: Option<BillingContact>,
    pub currency: String,
    #[schema(value_type = DecimalString)]
    pub tax_rate_percent: Decimal,
    #[serde(default)]
    pub credits_low_balance_threshold: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl BillingAccount {
    pub fn from_request(request: BillingAccountRequest, now: DateTime<Utc>) -> Self {
        BillingAccount {
            company_name: request.company_name.into_inner(),
            billing_email: request.billing_email.into_inner(),
            billing_address: request.billing_address,
            tax_id: request.tax_id.map(Text::into_inner),
            payment_terms: request.payment_terms.unwrap_or(PaymentTerms::Net30),
            purchase_order_required: request.purchase_order_required.unwrap_or(false),
            billing_contact: request.billing_contact,
            currency: request.currency.map_or_else(|| "USD".to_owned(), |c| c.0),
            tax_rate_percent: request.tax_rate_percent.unwrap_or_default().normalize(),
            credits_low_balance_threshold: request.credits_low_balance_threshold.map(Int::get),
            created_at: now,
            updated_at: now,
        }
    }

    /// Applies a patch; every field was checked by the parse, so this only
    /// fails on nothing today (the `Result` keeps room for cross-field rules).
    pub fn apply(&mut self, patch: BillingAccountPatch, now: DateTime<Utc>) -> Result<(), AppError> {
        if let Some(v) = patch.company_name.into_option() {
            self.company_name = v.into_inner();
        }
        if let Some(v) = patch.billing_email.into_option() {
            self.billing_email = v.into_inner();
        }
        if let Some(v) = patch.billing_address.into_option() {
            self.billing_address = v;
        }
        match patch.tax_id {
            Clearable::Absent => {}
            Clearable::Null => self.tax_id = None,
            Clearable::Value(v) => self.tax_id = Some(v.into_inner()),
        }
        if let Some(v) = patch.payment_terms.into_option() {
            self.payment_terms = v;
        }
        if let Some(v) = patch.purchase_order_required.into_option() {
            self.purchase_order_required = v;
        }
        match patch.billing_contact {
            Clearable::Absent => {}
            Clearable::Null => self.billing_contact = None,
            Clearable::Value(v) => self.billing_contact = Some(v),
        }
        if let Some(v) = patch.currency.into_option() {
            self.currency = v.0;
        }
        if let Some(v) = patch.tax_rate_percent {
            self.tax_rate_percent = v.normalize();
        }
        match patch.credits_low_balance_threshold {
            Clearable::Absent => {}
            Clearable::Null => self.credits_low_balance_threshold = None,
            Clearable::Value(v) => self.credits_low_balance_threshold = Some(v.get()),
        }
        self.updated_at = now;
        Ok(())
    }

    /// The address as printed lines: street lines, `city, state postal`,
    /// country.
    pub fn address_lines(&self) -> Vec<String> {
        let a = &self.billing_address;
        let text = |t: &Option<Text<1, 200>>| t.as_ref().map(|t| t.as_str().to_owned());
        let mut lines: Vec<String> =
            [Some(a.line1.as_str().to_owned()), text(&a.line2)].into_iter().flatten().collect();
        let locality: Vec<String> = [
            Some(a.city.as_str().to_owned()),
            a.state.as_ref().map(|s| s.as_str().to_owned()),
            a.postal_code.as_ref().map(|p| p.as_str().to_owned()),
        ]
        .into_iter()
        .flatten()
        .collect();
        lines.push(locality.join(", "));
        lines.push(a.country.as_str().to_owned());
        lines
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    pub(crate) fn seed_body() -> Value {
        json!({
          "company_name": "Fortune 500 Corp",
          "billing_email": "ap@fortune500.com",
          "billing_address": {"line1": "123 Enterprise Plaza", "line2": "Suite 4500", "city": "New York",
                              "state": "NY", "postal_code": "10001", "country": "US"},
          "tax_id": "12-3456789",
          "payment_terms": "NET30",
          "purchase_order_required": true,
          "billing_contact": {"name": "Sarah Johnson", "email": "billing@fortune500.com", "phone": "+1-555-0123"}
        })
    }

    fn parse<T: for<'de> eserde::EDeserialize<'de>>(body: &Value) -> Result<T, Vec<String>> {
        eserde::json::from_str::<T>(&body.to_string())
            .map_err(|e| e.iter().map(|e| e.path().map(|p| p.to_string()).unwrap_or_default()).collect())
    }

    #[test]
    fn the_seed_body_makes_an_account() {
        let now = Utc::now();
        let account = BillingAccount::from_request(parse(&seed_body()).expect("valid"), now);
        assert_eq!(account.payment_terms, PaymentTerms::Net30);
        assert!(account.purchase_order_required);
        assert_eq!((account.currency.as_str(), account.tax_rate_percent), ("USD", Decimal::ZERO));
        assert_eq!(account.address_lines(), ["123 Enterprise Plaza", "Suite 4500", "New York, NY, 10001", "US"]);
        let json = serde_json::to_value(&account).expect("json");
        assert_eq!(json["billing_contact"]["phone"], "+1-555-0123");
        assert_eq!(json["tax_rate_percent"], "0");
        let back: BillingAccount = serde_json::from_value(json).expect("read back");
        assert_eq!(back, account);
    }

    #[test]
    fn bad_fields_are_named() {
        let mut body = seed_body();
        body["payment_terms"] = json!("NET7");
        body["currency"] = json!("usd");
        body["tax_rate_percent"] = json!(101);
        let mut fields = parse::<BillingAccountRequest>(&body).expect_err("invalid");
        fields.sort();
        assert_eq!(fields, ["currency", "payment_terms", "tax_rate_percent"]);
        // An unknown key is named (and, as everywhere with eserde, ends the
        // checks of the object around it).
        let mut unknown = seed_body();
        unknown["billing_address"]["zip"] = json!("1");
        assert!(
            parse::<BillingAccountRequest>(&unknown).expect_err("invalid").contains(&"billing_address.zip".to_owned())
        );
    }

    #[test]
    fn a_patch_sets_and_clears() {
        let mut account = BillingAccount::from_request(parse(&seed_body()).expect("valid"), Utc::now());
        let patch: BillingAccountPatch = parse(
            &json!({"tax_id": null, "tax_rate_percent": 8.25, "payment_terms": "net60", "billing_contact": null}),
        )
        .expect("valid");
        account.apply(patch, Utc::now()).expect("applies");
        assert_eq!(account.tax_id, None);
        assert_eq!(account.billing_contact, None);
        assert_eq!(account.tax_rate_percent.to_string(), "8.25");
        assert_eq!(account.payment_terms, PaymentTerms::Net60);
        assert_eq!(
            parse::<BillingAccountPatch>(&json!({"company_name": null})).expect_err("invalid"),
            ["company_name"]
        );
    }
}
