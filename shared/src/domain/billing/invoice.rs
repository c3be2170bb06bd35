//! Invoices: drafted from a period's usage and subscription (on request or
//! by the monthly period close), then finalized with a gapless number,
//! paid or voided (Lago's and Stripe's life cycle).
//!
//! Amounts: each line rounds half-even to cents; the subtotal is the sum of
//! the rounded lines; tax is `round_half_even(subtotal x rate / 100)`; the
//! total is subtotal + tax. The base subscription line is prorated by days
//! for each calendar month the period covers (a whole month counts 1x).

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, de::Error as _};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    account::{BillingAccount, PaymentTerms},
    component::MeteredComponent,
    money::{DecimalString, MoneyString, deserialize_decimal, round_cents, serialize_quantity},
    pricing::{TierCharge, thousands},
    usage::{hour_of, month_of},
};
use crate::{
    domain::{ids::TenantId, values::Text},
    error::{AppError, FieldError},
};

/// The longest period one invoice may cover.
pub const MAX_PERIOD_DAYS: i64 = 366;

crate::string_enum!(
    /// Where an invoice is in its life: `draft` -> `finalized` (numbered)
    /// -> `paid`; `draft` or `finalized` -> `void`.
    InvoiceStatus {
        Draft => "draft",
        Finalized => "finalized",
        Paid => "paid",
        Void => "void",
    }
);

crate::string_enum!(
    /// Seed 000's `invoice_type`.
    InvoiceType {
        Enterprise => "enterprise",
        Standard => "standard",
    }
);

crate::string_enum!(
    /// What a line charges for.
    LineKind {
        Base => "base",
        Usage => "usage",
    }
);

/// A `YYYY-MM-DD` date in a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateInput(pub NaiveDate);

impl<'de> Deserialize<'de> for DateInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(s) => NaiveDate::parse_from_str(&s, "%Y-%m-%d")
                .map(DateInput)
                .map_err(|_| D::Error::custom("must be a date (YYYY-MM-DD)")),
            _ => Err(D::Error::custom("must be a date (YYYY-MM-DD)")),
        }
    }
}

eserde::impl_edeserialize_compat!(DateInput);
crate::inline_schema!(DateInput, "Date", formatted(10, 10, "date"));

/// Seed 000's `billing_period`: both days included.
#[derive(Debug, Clone, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillingPeriodInput {
    #[eserde(compat)]
    pub start: DateInput,
    #[eserde(compat)]
    pub end: DateInput,
}

/// The address printed on one invoice (seed 000's `customization.billing_address`).
#[derive(Debug, Clone, PartialEq, Serialize, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvoiceAddress {
    pub company_name: Text<1, 200>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<Text<1, 200>>,
    pub address_line_1: Text<1, 200>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_line_2: Option<Text<1, 200>>,
    pub city: Text<1, 100>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Text<1, 100>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip_code: Option<Text<1, 20>>,
    pub country: Text<2, 100>,
}

/// Seed 000's `customization`.
#[derive(Debug, Clone, Default, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvoiceCustomization {
    #[serde(default)]
    pub purchase_order: Option<Text<1, 100>>,
    /// Default: the billing account's address.
    #[serde(default)]
    pub billing_address: Option<InvoiceAddress>,
    /// Default: the billing account's terms (else NET30).
    #[serde(default)]
    #[eserde(compat)]
    pub payment_terms: Option<PaymentTerms>,
    /// Default: the finalization date + the payment terms' days.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<DateInput>)]
    pub due_date: Option<DateInput>,
}

/// `POST /v1/billing/invoices/generate`: seed 000's body.
#[derive(Debug, Clone, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "tenant_id": "0190c7a4-7c1e-7000-8000-000000000001",
    "billing_period": {"start": "2024-01-01", "end": "2024-01-31"},
    "invoice_type": "enterprise",
    "customization": {
        "purchase_order": "PO-2024-ENT-001",
        "billing_address": {"company_name": "Fortune 500 Corp", "department": "IT Procurement",
            "address_line_1": "123 Enterprise Plaza", "address_line_2": "Suite 4500", "city": "New York",
            "state": "NY", "zip_code": "10001", "country": "United States"},
        "payment_terms": "NET30",
        "due_date": "2024-03-01"
    }
}))]
pub struct GenerateInvoiceRequest {
    #[serde(default)]
    #[eserde(compat)]
    pub tenant_id: Option<TenantId>,
    pub billing_period: BillingPeriodInput,
    /// Default `standard`.
    #[serde(default)]
    #[eserde(compat)]
    pub invoice_type: Option<InvoiceType>,
    #[serde(default)]
    pub customization: Option<InvoiceCustomization>,
}

/// A checked request for a draft.
#[derive(Debug, Clone, PartialEq)]
pub struct InvoiceRequest {
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub invoice_type: InvoiceType,
    pub purchase_order: Option<String>,
    pub billing_address: Option<InvoiceAddress>,
    pub payment_terms: Option<PaymentTerms>,
    pub due_date: Option<NaiveDate>,
    /// Drafted by the period close (no caller to ask for a purchase order).
    pub closing: bool,
}

impl GenerateInvoiceRequest {
    /// Checks the period: `end >= start`, at most [`MAX_PERIOD_DAYS`] days,
    /// not starting after `today` (UTC).
    pub fn validate(self, today: NaiveDate) -> Result<InvoiceRequest, AppError> {
        let (start, end) = (self.billing_period.start.0, self.billing_period.end.0);
        let mut errors = Vec::new();
        if end < start {
            errors.push(FieldError::new("billing_period.end", "must not be before billing_period.start"));
        } else if (end - start).num_days() + 1 > MAX_PERIOD_DAYS {
            errors
                .push(FieldError::new("billing_period.end", format!("a period covers at most {MAX_PERIOD_DAYS} days")));
        }
        if start > today {
            errors.push(FieldError::new("billing_period.start", "must not be in the future"));
        }
        let customization = self.customization.unwrap_or_default();
        if let Some(due) = customization.due_date
            && due.0 < start
        {
            errors.push(FieldError::new("customization.due_date", "must not be before billing_period.start"));
        }
        if !errors.is_empty() {
            return Err(AppError::validation(errors));
        }
        Ok(InvoiceRequest {
            period_start: start,
            period_end: end,
            invoice_type: self.invoice_type.unwrap_or(InvoiceType::Standard),
            purchase_order: customization.purchase_order.map(Text::into_inner),
            billing_address: customization.billing_address,
            payment_terms: customization.payment_terms,
            due_date: customization.due_date.map(|d| d.0),
            closing: false,
        })
    }
}

impl InvoiceRequest {
    /// The period close's draft of `period` (`YYYY-MM`): the whole month.
    pub fn for_period(period: &str) -> Result<InvoiceRequest, AppError> {
        let date = NaiveDate::parse_from_str(&format!("{period}-01"), "%Y-%m-%d")
            .map_err(|_| AppError::invalid_field("period", "must be YYYY-MM"))?;
        let (start, next) = month_of(date);
        Ok(InvoiceRequest {
            period_start: start,
            period_end: next - Duration::days(1),
            invoice_type: InvoiceType::Standard,
            purchase_order: None,
            billing_address: None,
            payment_terms: None,
            due_date: None,
            closing: true,
        })
    }

    /// An account that requires a purchase order gets none without one
    /// (the period close is exempt: its draft waits for a person).
    pub fn check_purchase_order(&self, account: &BillingAccount) -> Result<(), AppError> {
        if account.purchase_order_required && self.purchase_order.is_none() && !self.closing {
            return Err(AppError::invalid_field(
                "customization.purchase_order",
                "is required: the billing account requires a purchase order",
            ));
        }
        Ok(())
    }

    /// The first and last hour keys (`usage::hour_of`) of the period, UTC.
    pub fn hours(&self) -> (String, String) {
        let at =
            |date: NaiveDate, hour: u32| date.and_hms_opt(hour, 0, 0).map(|t| hour_of(t.and_utc())).unwrap_or_default();
        (at(self.period_start, 0), at(self.period_end, 23))
    }
}

/// One line of an invoice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InvoiceLine {
    pub kind: LineKind,
    /// The metered component a usage line prices.
    #[serde(default)]
    pub component: Option<String>,
    pub description: String,
    /// Units, or months for the base line (1 for a whole month).
    #[serde(serialize_with = "serialize_quantity", deserialize_with = "deserialize_decimal")]
    #[schema(value_type = f64)]
    pub quantity: Decimal,
    #[serde(default)]
    pub unit: Option<String>,
    /// The one price of the line when there is one (the base price; a
    /// usage line priced by a single tier without flat amount).
    #[serde(default)]
    #[schema(value_type = Option<DecimalString>)]
    pub unit_price: Option<Decimal>,
    #[schema(value_type = MoneyString)]
    pub amount: Decimal,
    /// The tiers that priced a usage line.
    #[serde(default)]
    pub tiers: Vec<TierCharge>,
}

/// What an invoice is computed from.
#[derive(Debug, Clone)]
pub struct InvoiceInput {
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub plan_name: String,
    pub base_monthly: Option<Decimal>,
    pub usage: Vec<(MeteredComponent, Decimal)>,
    pub tax_rate_percent: Decimal,
}

/// The lines and totals of an invoice.
#[derive(Debug, Clone, PartialEq)]
pub struct InvoiceTotals {
    pub lines: Vec<InvoiceLine>,
    pub subtotal: Decimal,
    pub tax_rate_percent: Decimal,
    pub tax_amount: Decimal,
    pub total: Decimal,
}

/// Σ over the calendar months the period (both days included) covers of
/// `days covered / days in the month`.
pub fn months_covered(start: NaiveDate, end: NaiveDate) -> Decimal {
    let mut months = Decimal::ZERO;
    let mut cursor = start;
    while cursor <= end {
        let (month_start, next) = month_of(cursor);
        let last = end.min(next - Duration::days(1));
        let covered = (last - cursor).num_days() + 1;
        let days = (next - month_start).num_days();
        months += Decimal::from(covered) / Decimal::from(days);
        cursor = next;
    }
    months
}

fn title(plan: &str) -> String {
    plan.split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The invoice's lines and totals (module doc). A component with no usage
/// in the period has no line.
pub fn compute_invoice(input: &InvoiceInput) -> InvoiceTotals {
    let mut lines = Vec::new();
    if let Some(base) = input.base_monthly {
        let months = months_covered(input.period_start, input.period_end);
        let whole_month = input.period_start.day() == 1 && months == Decimal::ONE;
        let when = if whole_month {
            input.period_start.format("%B %Y").to_string()
        } else {
            format!("{} to {}", input.period_start, input.period_end)
        };
        lines.push(InvoiceLine {
            kind: LineKind::Base,
            component: None,
            description: format!("{} plan - {when}", title(&input.plan_name)),
            quantity: months.round_dp(6).normalize(),
            unit: Some("month".to_owned()),
            unit_price: Some(base),
            amount: round_cents(base.saturating_mul(months)),
            tiers: Vec::new(),
        });
    }
    for (component, quantity) in &input.usage {
        if *quantity <= Decimal::ZERO {
            continue;
        }
        let priced = component.pricing().price(*quantity);
        let unit_price = match priced.tiers.as_slice() {
            [only] if only.flat_amount.is_zero() => Some(only.unit_price.normalize()),
            _ => None,
        };
        lines.push(InvoiceLine {
            kind: LineKind::Usage,
            component: Some(component.name.clone()),
            description: format!("{} ({} {})", component.display_name, thousands(*quantity), component.unit),
            quantity: quantity.normalize(),
            unit: Some(component.unit.clone()),
            unit_price,
            amount: priced.amount,
            tiers: priced.tiers,
        });
    }
    // Saturating like the pricing: nothing billable comes near Decimal's
    // limit, and a request must not panic on what a fuzzer can post.
    let subtotal = round_cents(lines.iter().fold(Decimal::ZERO, |sum, l| sum.saturating_add(l.amount)));
    let tax_amount = round_cents(subtotal.saturating_mul(input.tax_rate_percent) / Decimal::ONE_HUNDRED);
    InvoiceTotals {
        lines,
        subtotal,
        tax_rate_percent: input.tax_rate_percent.normalize(),
        tax_amount,
        total: round_cents(subtotal.saturating_add(tax_amount)),
    }
}

/// `INV-2026-0001`: per tenant and year of finalization, gapless.
pub fn invoice_number(year: u32, seq: i64) -> String {
    format!("INV-{year}-{seq:04}")
}

/// An invoice as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invoice {
    pub id: Uuid,
    pub tenant_id: Uuid,
    #[serde(default)]
    pub number: Option<String>,
    pub status: InvoiceStatus,
    pub invoice_type: InvoiceType,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub currency: String,
    #[serde(default)]
    pub purchase_order: Option<String>,
    #[serde(default)]
    pub billing_address: Option<InvoiceAddress>,
    #[serde(default)]
    pub payment_terms: Option<String>,
    #[serde(default)]
    pub due_date: Option<NaiveDate>,
    pub lines: Vec<InvoiceLine>,
    pub subtotal: Decimal,
    pub tax_rate_percent: Decimal,
    pub tax_amount: Decimal,
    pub total: Decimal,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub finalized_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub paid_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub voided_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub void_reason: Option<String>,
    #[serde(default)]
    pub pdf_key: Option<String>,
}

/// An invoice's period, both days included.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct InvoicePeriodView {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

/// An invoice as answered (and as audit entries record it).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct InvoiceView {
    pub invoice_id: Uuid,
    /// `INV-<year>-<NNNN>`, from finalization on.
    pub number: Option<String>,
    pub status: InvoiceStatus,
    pub invoice_type: InvoiceType,
    pub period: InvoicePeriodView,
    pub currency: String,
    pub purchase_order: Option<String>,
    pub billing_address: Option<InvoiceAddress>,
    pub payment_terms: Option<String>,
    /// Set at finalization (the request's, else finalization date + terms).
    pub due_date: Option<NaiveDate>,
    pub lines: Vec<InvoiceLine>,
    #[schema(value_type = MoneyString)]
    pub subtotal: String,
    #[schema(value_type = DecimalString)]
    pub tax_rate_percent: String,
    #[schema(value_type = MoneyString)]
    pub tax_amount: String,
    #[schema(value_type = MoneyString)]
    pub total_amount: String,
    pub created_at: DateTime<Utc>,
    pub finalized_at: Option<DateTime<Utc>>,
    pub paid_at: Option<DateTime<Utc>>,
    pub voided_at: Option<DateTime<Utc>>,
    pub void_reason: Option<String>,
    /// A short-lived link to the PDF, once finalized.
    pub pdf_url: Option<String>,
}

/// Who an invoice is addressed to, as printed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BillTo {
    pub company: String,
    pub department: Option<String>,
    pub lines: Vec<String>,
}

impl Invoice {
    /// A new draft: the request's address, terms and purchase order, else
    /// the account's; the account's currency (USD without one).
    pub fn draft(
        tenant_id: Uuid,
        request: &InvoiceRequest,
        totals: &InvoiceTotals,
        account: Option<&BillingAccount>,
        now: DateTime<Utc>,
    ) -> Invoice {
        let terms = request.payment_terms.or(account.map(|a| a.payment_terms)).unwrap_or(PaymentTerms::Net30);
        Invoice {
            id: Uuid::now_v7(),
            tenant_id,
            number: None,
            status: InvoiceStatus::Draft,
            invoice_type: request.invoice_type,
            period_start: request.period_start,
            period_end: request.period_end,
            currency: account.map_or_else(|| "USD".to_owned(), |a| a.currency.clone()),
            purchase_order: request.purchase_order.clone(),
            billing_address: request.billing_address.clone(),
            payment_terms: Some(terms.as_str().to_owned()),
            due_date: request.due_date,
            lines: totals.lines.clone(),
            subtotal: totals.subtotal,
            tax_rate_percent: totals.tax_rate_percent,
            tax_amount: totals.tax_amount,
            total: totals.total,
            created_at: now,
            finalized_at: None,
            paid_at: None,
            voided_at: None,
            void_reason: None,
            pdf_key: None,
        }
    }

    pub fn view(&self, pdf_url: Option<String>) -> InvoiceView {
        InvoiceView {
            invoice_id: self.id,
            number: self.number.clone(),
            status: self.status,
            invoice_type: self.invoice_type,
            period: InvoicePeriodView { start: self.period_start, end: self.period_end },
            currency: self.currency.clone(),
            purchase_order: self.purchase_order.clone(),
            billing_address: self.billing_address.clone(),
            payment_terms: self.payment_terms.clone(),
            due_date: self.due_date,
            lines: self.lines.clone(),
            subtotal: super::money::money_string(self.subtotal),
            tax_rate_percent: self.tax_rate_percent.normalize().to_string(),
            tax_amount: super::money::money_string(self.tax_amount),
            total_amount: super::money::money_string(self.total),
            created_at: self.created_at,
            finalized_at: self.finalized_at,
            paid_at: self.paid_at,
            voided_at: self.voided_at,
            void_reason: self.void_reason.clone(),
            pdf_url,
        }
    }

    /// 409 `invalid_state`: `action` is not possible in the current status.
    pub fn refuse(&self, action: &str) -> AppError {
        AppError::new(
            http::StatusCode::CONFLICT,
            "invalid_state",
            format!("cannot {action} an invoice that is {}", self.status),
        )
        .with_details(json!({ "status": self.status.as_str(), "action": action }))
    }

    pub fn can_finalize(&self) -> Result<(), AppError> {
        if self.status == InvoiceStatus::Draft { Ok(()) } else { Err(self.refuse("finalize")) }
    }

    pub fn can_void(&self) -> Result<(), AppError> {
        if matches!(self.status, InvoiceStatus::Draft | InvoiceStatus::Finalized) {
            Ok(())
        } else {
            Err(self.refuse("void"))
        }
    }

    pub fn can_mark_paid(&self) -> Result<(), AppError> {
        if self.status == InvoiceStatus::Finalized { Ok(()) } else { Err(self.refuse("mark paid")) }
    }

    /// The draft numbered `seq` of `year` and finalized at `now`; due on the
    /// requested date, else `now` + the payment terms' days.
    pub fn finalized(&self, year: u32, seq: i64, now: DateTime<Utc>) -> Result<Invoice, AppError> {
        self.can_finalize()?;
        let days = self.payment_terms.as_deref().and_then(PaymentTerms::parse).map_or(30, PaymentTerms::days);
        let mut invoice = self.clone();
        invoice.number = Some(invoice_number(year, seq));
        invoice.status = InvoiceStatus::Finalized;
        invoice.finalized_at = Some(now);
        invoice.due_date = Some(self.due_date.unwrap_or(now.date_naive() + Duration::days(days)));
        Ok(invoice)
    }

    pub fn voided(&self, reason: Option<String>, now: DateTime<Utc>) -> Result<Invoice, AppError> {
        self.can_void()?;
        let mut invoice = self.clone();
        invoice.status = InvoiceStatus::Void;
        invoice.voided_at = Some(now);
        invoice.void_reason = reason;
        Ok(invoice)
    }

    pub fn paid(&self, now: DateTime<Utc>) -> Result<Invoice, AppError> {
        self.can_mark_paid()?;
        let mut invoice = self.clone();
        invoice.status = InvoiceStatus::Paid;
        invoice.paid_at = Some(now);
        Ok(invoice)
    }

    /// The addressee: the invoice's own address, else the account's.
    pub fn bill_to(&self, account: Option<&BillingAccount>) -> BillTo {
        if let Some(a) = &self.billing_address {
            let text = |t: &Option<Text<1, 200>>| t.as_ref().map(|t| t.as_str().to_owned());
            let locality: Vec<String> = [
                Some(a.city.as_str().to_owned()),
                a.state.as_ref().map(|s| s.as_str().to_owned()),
                a.zip_code.as_ref().map(|z| z.as_str().to_owned()),
            ]
            .into_iter()
            .flatten()
            .collect();
            let lines =
                [Some(a.address_line_1.as_str().to_owned()), text(&a.address_line_2), Some(locality.join(", "))]
                    .into_iter()
                    .flatten()
                    .chain([a.country.as_str().to_owned()])
                    .collect();
            return BillTo {
                company: a.company_name.as_str().to_owned(),
                department: a.department.as_ref().map(|d| d.as_str().to_owned()),
                lines,
            };
        }
        match account {
            Some(account) => {
                BillTo { company: account.company_name.clone(), department: None, lines: account.address_lines() }
            }
            None => BillTo::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::billing::component::tests::seed_components;

    fn date(text: &str) -> NaiveDate {
        text.parse().expect("date")
    }

    fn d(text: &str) -> Decimal {
        text.parse().expect("decimal")
    }

    fn seed_request() -> GenerateInvoiceRequest {
        let body = json!({
          "tenant_id": "0190c7a4-7c1e-7000-8000-000000000001",
          "billing_period": {"start": "2024-01-01", "end": "2024-01-31"},
          "invoice_type": "enterprise",
          "customization": {
            "purchase_order": "PO-2024-ENT-001",
            "billing_address": {"company_name": "Fortune 500 Corp", "department": "IT Procurement",
              "address_line_1": "123 Enterprise Plaza", "address_line_2": "Suite 4500", "city": "New York",
              "state": "NY", "zip_code": "10001", "country": "United States"},
            "payment_terms": "NET30",
            "due_date": "2024-03-01"
          }
        });
        eserde::json::from_str(&body.to_string()).expect("parses")
    }

    fn input(start: &str, end: &str, tax: &str) -> InvoiceInput {
        let components = seed_components();
        let quantities = ["2500000", "35000", "33552"];
        InvoiceInput {
            period_start: date(start),
            period_end: date(end),
            plan_name: "enterprise".into(),
            base_monthly: Some(d("800")),
            usage: components.into_iter().zip(quantities).map(|(c, q)| (c, d(q))).collect(),
            tax_rate_percent: d(tax),
        }
    }

    #[test]
    fn the_seed_invoice() {
        let request = seed_request().validate(date("2024-02-10")).expect("valid");
        assert_eq!(request.hours(), ("2024-01-01T00".to_owned(), "2024-01-31T23".to_owned()));
        let totals = compute_invoice(&input("2024-01-01", "2024-01-31", "8"));
        let amounts: Vec<String> = totals.lines.iter().map(|l| l.amount.to_string()).collect();
        assert_eq!(amounts, ["800.00", "1570.00", "1160.00", "608.94"]);
        assert_eq!(totals.lines[0].description, "Enterprise plan - January 2024");
        assert_eq!(totals.lines[1].description, "API Calls (2,500,000 call)");
        assert_eq!(totals.subtotal.to_string(), "4138.94");
        // 4138.94 x 8 % = 331.1152.
        assert_eq!(totals.tax_amount.to_string(), "331.12");
        assert_eq!(totals.total.to_string(), "4470.06");
        let invoice = Invoice::draft(Uuid::nil(), &request, &totals, None, Utc::now());
        let view = serde_json::to_value(invoice.view(None)).expect("json");
        assert_eq!(view["total_amount"], "4470.06");
        assert_eq!(view["lines"][1]["quantity"], 2500000);
        assert_eq!(view["lines"][1]["tiers"][2]["quantity"], 1500000);
        assert_eq!(view["lines"][0]["unit_price"], "800");
        assert_eq!(
            invoice.bill_to(None).lines,
            ["123 Enterprise Plaza", "Suite 4500", "New York, NY, 10001", "United States"]
        );
        let stored = serde_json::to_value(&invoice).expect("json");
        assert_eq!(serde_json::from_value::<Invoice>(stored).expect("read back"), invoice);
    }

    #[test]
    fn proration_by_days_of_each_month() {
        assert_eq!(months_covered(date("2024-01-01"), date("2024-01-31")), Decimal::ONE);
        assert_eq!(months_covered(date("2024-02-01"), date("2024-02-29")), Decimal::ONE);
        // 16 of 31 January days + 15 of 29 February days.
        let months = months_covered(date("2024-01-16"), date("2024-02-15"));
        assert_eq!(months, Decimal::from(16) / Decimal::from(31) + Decimal::from(15) / Decimal::from(29));
        let totals = compute_invoice(&InvoiceInput { usage: Vec::new(), ..input("2024-01-16", "2024-02-15", "0") });
        // 800 x (16/31 + 15/29) = 412.903... + 413.793... = 826.70.
        assert_eq!(totals.lines[0].amount.to_string(), "826.70");
        assert_eq!(totals.lines[0].description, "Enterprise plan - 2024-01-16 to 2024-02-15");
        let two = compute_invoice(&InvoiceInput { usage: Vec::new(), ..input("2024-01-01", "2024-02-29", "0") });
        assert_eq!(two.lines[0].amount.to_string(), "1600.00");
    }

    #[test]
    fn tax_is_on_the_rounded_subtotal() {
        // Two lines of 0.005 each would be 0.01 before rounding; each rounds
        // half-even to 0.00, so the subtotal and its tax are 0.
        let mut component = seed_components().remove(0);
        component.pricing_tiers[0].unit_price = d("0.005");
        let totals = compute_invoice(&InvoiceInput {
            period_start: date("2024-01-01"),
            period_end: date("2024-01-31"),
            plan_name: "free".into(),
            base_monthly: None,
            usage: vec![(component.clone(), Decimal::ONE), (component, Decimal::ONE)],
            tax_rate_percent: d("50"),
        });
        assert_eq!(totals.subtotal.to_string(), "0.00");
        assert_eq!(totals.tax_amount.to_string(), "0.00");
        // 10.05 x 7.5 % = 0.75375 -> 0.75; 0.125 would round half-even to 0.12.
        assert_eq!(round_cents(d("10.05") * d("7.5") / Decimal::ONE_HUNDRED).to_string(), "0.75");
        assert_eq!(round_cents(d("0.125")).to_string(), "0.12");
    }

    #[test]
    fn the_life_cycle() {
        let request = seed_request().validate(date("2024-02-10")).expect("valid");
        let totals = compute_invoice(&input("2024-01-01", "2024-01-31", "0"));
        let draft = Invoice::draft(Uuid::nil(), &request, &totals, None, Utc::now());
        assert_eq!(draft.paid(Utc::now()).expect_err("draft").code(), "invalid_state");
        let now: DateTime<Utc> = "2026-02-01T10:00:00Z".parse().expect("time");
        let finalized = draft.finalized(2026, 1, now).expect("draft");
        assert_eq!(finalized.number.as_deref(), Some("INV-2026-0001"));
        assert_eq!(finalized.due_date, Some(date("2024-03-01")), "the requested due date");
        let err = finalized.finalized(2026, 2, now).expect_err("finalized");
        assert_eq!(err.status(), http::StatusCode::CONFLICT);
        let paid = finalized.paid(now).expect("finalized");
        assert!(paid.voided(None, now).is_err());
        let mut undated = draft.clone();
        undated.due_date = None;
        assert_eq!(undated.finalized(2026, 7, now).expect("draft").due_date, Some(date("2026-03-03")));
        assert!(draft.voided(Some("duplicate".into()), now).is_ok());
        assert_eq!(invoice_number(2026, 12345), "INV-2026-12345");
    }

    #[test]
    fn periods_are_checked() {
        let today = date("2024-02-10");
        let with = |start: &str, end: &str| {
            let mut r = seed_request();
            r.billing_period = BillingPeriodInput { start: DateInput(date(start)), end: DateInput(date(end)) };
            r.customization = None;
            r.validate(today).map(|_| ()).map_err(|e| e.invalid_fields())
        };
        assert_eq!(with("2024-01-31", "2024-01-01"), Err(vec!["billing_period.end".to_owned()]));
        assert_eq!(with("2023-01-01", "2024-01-02"), Err(vec!["billing_period.end".to_owned()]));
        assert_eq!(with("2024-03-01", "2024-03-31"), Err(vec!["billing_period.start".to_owned()]));
        assert_eq!(with("2023-01-01", "2023-12-31"), Ok(()));
        let closing = InvoiceRequest::for_period("2024-02").expect("valid");
        assert_eq!((closing.period_start, closing.period_end), (date("2024-02-01"), date("2024-02-29")));
    }
}
