//! Tiered pricing of a metered component (Lago's and Stripe's charge
//! models): `graduated` prices the units that fall in each tier at that
//! tier's price; `volume` prices every unit at the price of the tier the
//! total falls in. A tier `{"up_to": N}` includes unit N (Stripe), so a
//! volume quantity of exactly N is priced by that tier.
//!
//! Tiers ascend strictly from 0 without gaps; the last one is open
//! (`{"above": N}`, `"up_to": null` or `"up_to": "inf"`). A tier may add a
//! `flat_amount`, charged once when any unit falls in it (graduated) or
//! when it is the tier of the total (volume). Seed 000's own figures match
//! neither mode (API.md), so amounts are always computed from the tiers.

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, de::Error as _};
use serde_json::Value;

use super::money::{
    self, DecimalInput, MAX_QUANTITY, QUANTITY_SCALE, deserialize_decimal, deserialize_optional_decimal, round_cents,
    serialize_optional_quantity, serialize_quantity,
};
use crate::error::{AppError, FieldError};

/// A component has 1 to this many tiers.
pub const MAX_TIERS: usize = 10;

crate::string_enum!(
    /// How tiers price a quantity: `graduated` (each tier its own units)
    /// or `volume` (the total's tier, every unit).
    TiersMode {
        Graduated => "graduated",
        Volume => "volume",
    }
);

// `string_enum!` takes no variant attributes, so `#[default]` cannot be derived.
#[allow(clippy::derivable_impls)]
impl Default for TiersMode {
    fn default() -> Self {
        TiersMode::Graduated
    }
}

/// The upper bound of a tier as sent: a quantity, or open (`null`,
/// `"inf"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpTo {
    Open,
    At(Decimal),
}

impl<'de> Deserialize<'de> for UpTo {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::Null => Ok(UpTo::Open),
            Value::String(s) if s.eq_ignore_ascii_case("inf") || s.eq_ignore_ascii_case("infinity") => Ok(UpTo::Open),
            value => tier_bound(&value).map(UpTo::At).map_err(D::Error::custom),
        }
    }
}

eserde::impl_edeserialize_compat!(UpTo);

crate::inline_schema!(
    UpTo,
    "TierUpTo",
    utoipa::openapi::schema::OneOfBuilder::new()
        .item(utoipa::openapi::schema::ObjectBuilder::new().schema_type(utoipa::openapi::schema::Type::Number))
        .item(
            utoipa::openapi::schema::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .pattern(Some("^([0-9]+(\\.[0-9]+)?|[Ii][Nn][Ff]|[Ii][Nn][Ff][Ii][Nn][Ii][Tt][Yy])$"))
        )
        .item(utoipa::openapi::schema::ObjectBuilder::new().schema_type(utoipa::openapi::schema::Type::Null))
        .description(Some("The tier's last unit (included); `null` or `\"inf\"`: the open last tier"))
);

/// A tier bound: above 0, at most [`MAX_QUANTITY`], [`QUANTITY_SCALE`] decimals.
fn tier_bound(value: &Value) -> Result<Decimal, String> {
    money::bounded(value, Decimal::ZERO, true, Decimal::from(MAX_QUANTITY), QUANTITY_SCALE)
}

/// `above`: 0 (a single open tier) or a tier bound.
fn above<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Decimal>, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        value => money::bounded(&value, Decimal::ZERO, false, Decimal::from(MAX_QUANTITY), QUANTITY_SCALE)
            .map(Some)
            .map_err(D::Error::custom),
    }
}

/// One tier as a request sends it (seed 000: `{"up_to": N, "price_per_unit":
/// p}` ... `{"above": N, "price_per_unit": p}`).
#[derive(Debug, Clone, PartialEq, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierInput {
    /// The tier's last unit (included); `null` or `"inf"`: open.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<UpTo>)]
    pub up_to: Option<UpTo>,
    /// The open last tier's start: the previous tier's `up_to`.
    #[serde(default, deserialize_with = "above")]
    #[schema(value_type = Option<DecimalInput>)]
    pub above: Option<Decimal>,
    /// Per unit, at most 12 decimals.
    #[serde(deserialize_with = "money::unit_price")]
    #[schema(value_type = DecimalInput)]
    pub price_per_unit: Decimal,
    /// Charged once for the tier (see the module doc); at most 2 decimals.
    #[serde(default, deserialize_with = "money::optional_amount")]
    #[schema(value_type = Option<DecimalInput>)]
    pub flat_amount: Option<Decimal>,
}

/// One tier as stored and answered: its units `from` (excluded) up to
/// `up_to` (included; `null`: open).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tier {
    #[serde(serialize_with = "serialize_quantity", deserialize_with = "deserialize_decimal")]
    #[schema(value_type = f64)]
    pub from: Decimal,
    #[serde(serialize_with = "serialize_optional_quantity", deserialize_with = "deserialize_optional_decimal")]
    #[schema(value_type = Option<f64>, required = true)]
    pub up_to: Option<Decimal>,
    #[serde(rename = "price_per_unit")]
    #[schema(value_type = super::money::DecimalString)]
    pub unit_price: Decimal,
    #[schema(value_type = super::money::MoneyString)]
    pub flat_amount: Decimal,
}

/// A component's validated tiers and mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PricingTiers {
    pub mode: TiersMode,
    pub tiers: Vec<Tier>,
}

/// What one tier charged for a quantity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TierCharge {
    #[serde(serialize_with = "serialize_quantity", deserialize_with = "deserialize_decimal")]
    #[schema(value_type = f64)]
    pub from: Decimal,
    #[serde(serialize_with = "serialize_optional_quantity", deserialize_with = "deserialize_optional_decimal")]
    #[schema(value_type = Option<f64>, required = true)]
    pub up_to: Option<Decimal>,
    /// The units this tier priced.
    #[serde(serialize_with = "serialize_quantity", deserialize_with = "deserialize_decimal")]
    #[schema(value_type = f64)]
    pub quantity: Decimal,
    #[schema(value_type = super::money::DecimalString)]
    pub unit_price: Decimal,
    #[schema(value_type = super::money::MoneyString)]
    pub flat_amount: Decimal,
    /// `quantity x unit_price + flat_amount`, exact: the line, not each
    /// tier, is rounded to cents, so tiers may show fractions of a cent.
    #[schema(value_type = super::money::DecimalString)]
    pub amount: Decimal,
}

impl TierCharge {
    /// How a PDF or a description names the tier: `0 - 100,000`,
    /// `1,000,000+`.
    pub fn label(&self) -> String {
        match self.up_to {
            Some(up_to) => format!("{} - {}", thousands(self.from), thousands(up_to)),
            None => format!("{}+", thousands(self.from)),
        }
    }
}

/// A quantity priced by a component's tiers.
#[derive(Debug, Clone, PartialEq)]
pub struct Priced {
    pub quantity: Decimal,
    /// [`Priced::exact`] rounded half-even to cents: the line's amount.
    pub amount: Decimal,
    /// The sum of the tiers' exact amounts.
    pub exact: Decimal,
    /// The tiers that priced any unit (graduated), or the total's tier (volume).
    pub tiers: Vec<TierCharge>,
}

impl PricingTiers {
    /// Checks the tiers (module doc) and names each bad one under `field`
    /// (`components[1].pricing_tiers[2].above`).
    pub fn new(mode: TiersMode, inputs: Vec<TierInput>, field: &str) -> Result<PricingTiers, AppError> {
        let mut errors = Vec::new();
        if inputs.is_empty() || inputs.len() > MAX_TIERS {
            errors.push(FieldError::new(field, format!("must have 1 to {MAX_TIERS} tiers")));
            return Err(AppError::validation(errors));
        }
        let last = inputs.len() - 1;
        let mut previous = Decimal::ZERO;
        let mut tiers = Vec::with_capacity(inputs.len());
        for (i, input) in inputs.into_iter().enumerate() {
            let at = |name: &str| format!("{field}[{i}].{name}");
            let up_to = match input.up_to {
                Some(UpTo::At(bound)) => Some(bound),
                Some(UpTo::Open) | None => None,
            };
            match (up_to, input.above) {
                (Some(_), Some(_)) => errors
                    .push(FieldError::new(at("above"), "only the open last tier has `above`; send `up_to` or `above`")),
                (None, Some(start)) if start != previous => errors.push(FieldError::new(
                    at("above"),
                    format!("must equal the previous tier's up_to ({})", previous.normalize()),
                )),
                _ => {}
            }
            match up_to {
                Some(bound) if bound <= previous => errors.push(FieldError::new(
                    at("up_to"),
                    format!("must be greater than the previous tier's up_to ({})", previous.normalize()),
                )),
                None if i != last => errors.push(FieldError::new(at("up_to"), "only the last tier may be open")),
                _ => {}
            }
            tiers.push(Tier {
                from: previous,
                up_to,
                unit_price: input.price_per_unit,
                flat_amount: input.flat_amount.map_or_else(|| round_cents(Decimal::ZERO), round_cents),
            });
            if let Some(bound) = up_to {
                previous = previous.max(bound);
            }
        }
        if tiers.last().is_some_and(|t| t.up_to.is_some()) {
            errors.push(FieldError::new(
                field,
                "the last tier must be open: {\"above\": N} (N the previous up_to) or \"up_to\": null",
            ));
        }
        if errors.is_empty() { Ok(PricingTiers { mode, tiers }) } else { Err(AppError::validation(errors)) }
    }

    /// The amount of `quantity` (0 or less: nothing, no tier).
    pub fn price(&self, quantity: Decimal) -> Priced {
        let mut charges = Vec::new();
        if quantity > Decimal::ZERO {
            match self.mode {
                TiersMode::Graduated => {
                    for tier in &self.tiers {
                        let top = tier.up_to.map_or(quantity, |up_to| up_to.min(quantity));
                        let units = top - tier.from;
                        if units <= Decimal::ZERO {
                            break;
                        }
                        charges.push(charge(tier, units));
                    }
                }
                TiersMode::Volume => {
                    if let Some(tier) = self.tiers.iter().find(|t| t.up_to.is_none_or(|up_to| quantity <= up_to)) {
                        charges.push(charge(tier, quantity));
                    }
                }
            }
        }
        // Saturating: a quantity times a price past Decimal's 7.9e28 cannot
        // be billed anyway, and must not panic a request (a projection of a
        // fuzzer's usage got there).
        let exact = charges.iter().fold(Decimal::ZERO, |sum, c| sum.saturating_add(c.amount));
        Priced { quantity, amount: round_cents(exact), exact, tiers: charges }
    }
}

fn charge(tier: &Tier, units: Decimal) -> TierCharge {
    TierCharge {
        from: tier.from,
        up_to: tier.up_to,
        quantity: units,
        unit_price: tier.unit_price,
        flat_amount: tier.flat_amount,
        amount: units.saturating_mul(tier.unit_price).saturating_add(tier.flat_amount).normalize(),
    }
}

/// `2500000` -> `2,500,000` (`33552.5` -> `33,552.5`): quantities in
/// descriptions read like seed 000's ("2,500,000 calls").
pub fn thousands(value: Decimal) -> String {
    let text = value.normalize().to_string();
    let (sign, digits) = text.strip_prefix('-').map_or(("", text.as_str()), |rest| ("-", rest));
    let (whole, fraction) = digits.split_once('.').map_or((digits, None), |(w, f)| (w, Some(f)));
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match fraction {
        Some(fraction) => format!("{sign}{grouped}.{fraction}"),
        None => format!("{sign}{grouped}"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn d(text: &str) -> Decimal {
        text.parse().expect("decimal")
    }

    fn tiers(mode: TiersMode, body: Value) -> Result<PricingTiers, Vec<String>> {
        let inputs: Vec<TierInput> = eserde::json::from_str(&body.to_string()).map_err(|errors| {
            errors.iter().map(|e| e.path().map(|p| p.to_string()).unwrap_or_default()).collect::<Vec<_>>()
        })?;
        PricingTiers::new(mode, inputs, "pricing_tiers").map_err(|e| e.invalid_fields())
    }

    #[test]
    fn an_amount_past_decimals_range_saturates_instead_of_panicking() {
        let dear = tiers(
            TiersMode::Graduated,
            json!([{"up_to": 1, "price_per_unit": 1_000_000_000_000_i64}, {"above": 1, "price_per_unit": 1_000_000_000_000_i64}]),
        )
        .expect("tiers");
        let priced = dear.price(d("100000000000000000000"));
        assert_eq!(priced.amount, round_cents(Decimal::MAX));
    }

    /// Seed 000's three components, verbatim.
    fn api_calls() -> Value {
        json!([{"up_to": 100000, "price_per_unit": 0.001}, {"up_to": 1000000, "price_per_unit": 0.0008},
               {"above": 1000000, "price_per_unit": 0.0005}])
    }
    fn ai_requests() -> Value {
        json!([{"up_to": 1000, "price_per_unit": 0.05}, {"up_to": 10000, "price_per_unit": 0.04},
               {"above": 10000, "price_per_unit": 0.03}])
    }
    fn storage() -> Value {
        json!([{"up_to": 1000, "price_per_unit": 0.023}, {"above": 1000, "price_per_unit": 0.018}])
    }

    /// The reference: graduated sums price x the units of each tier;
    /// volume is every unit at the price of the first tier whose up_to
    /// is at least the total. Written from the seed's (bound, price) pairs
    /// independently of `price`.
    fn expected(pairs: &[(Option<&str>, &str)], mode: TiersMode, q: Decimal) -> Decimal {
        match mode {
            TiersMode::Graduated => {
                let mut lower = Decimal::ZERO;
                let mut total = Decimal::ZERO;
                for (bound, price) in pairs {
                    let upper = bound.map_or(q, |b| d(b).min(q));
                    if upper > lower {
                        total += (upper - lower) * d(price);
                    }
                    lower = bound.map_or(lower, d);
                }
                total
            }
            TiersMode::Volume => {
                let (_, price) = pairs.iter().find(|(bound, _)| bound.is_none_or(|b| q <= d(b))).expect("a tier");
                q * d(price)
            }
        }
    }

    #[test]
    fn the_seed_figures() {
        let cases = [
            (api_calls(), "2500000", "1570.00", "1250.00"),
            (ai_requests(), "35000", "1160.00", "1050.00"),
            (storage(), "33552", "608.94", "603.94"),
        ];
        for (body, quantity, graduated, volume) in cases {
            let g = tiers(TiersMode::Graduated, body.clone()).expect("valid").price(d(quantity));
            let v = tiers(TiersMode::Volume, body).expect("valid").price(d(quantity));
            assert_eq!(g.amount.to_string(), graduated);
            assert_eq!(v.amount.to_string(), volume);
        }
    }

    #[test]
    fn at_under_and_over_every_boundary() {
        type Bounds = Vec<(Option<&'static str>, &'static str)>;
        let seeds: [(Value, Bounds); 3] = [
            (api_calls(), vec![(Some("100000"), "0.001"), (Some("1000000"), "0.0008"), (None, "0.0005")]),
            (ai_requests(), vec![(Some("1000"), "0.05"), (Some("10000"), "0.04"), (None, "0.03")]),
            (storage(), vec![(Some("1000"), "0.023"), (None, "0.018")]),
        ];
        for (body, pairs) in seeds {
            for mode in [TiersMode::Graduated, TiersMode::Volume] {
                let pricing = tiers(mode, body.clone()).expect("valid");
                for (bound, _) in pairs.iter().filter(|(b, _)| b.is_some()) {
                    let b = d(bound.expect("bound"));
                    for q in [b - Decimal::ONE, b, b + Decimal::ONE, b - d("0.5"), b + d("0.5")] {
                        let priced = pricing.price(q);
                        let want = expected(&pairs, mode, q);
                        assert_eq!(priced.exact, want, "{mode} {q}");
                        assert_eq!(priced.amount, round_cents(want), "{mode} {q}");
                    }
                }
            }
        }
        // Stripe's inclusive bound, by hand: volume at exactly 100,000 is
        // tier 1's price, one more is tier 2's for every unit.
        let volume = tiers(TiersMode::Volume, api_calls()).expect("valid");
        assert_eq!(volume.price(d("100000")).exact, d("100"));
        assert_eq!(volume.price(d("100001")).exact, d("80.0008"));
        assert_eq!(volume.price(d("1000000")).exact, d("800"));
        assert_eq!(volume.price(d("1000001")).exact, d("500.0005"));
        let graduated = tiers(TiersMode::Graduated, api_calls()).expect("valid");
        assert_eq!(graduated.price(d("100000")).tiers.len(), 1);
        assert_eq!(graduated.price(d("100001")).exact, d("100.0008"));
        assert_eq!(graduated.price(d("1000001")).exact, d("820.0005"));
        assert_eq!(graduated.price(Decimal::ZERO).amount.to_string(), "0.00");
    }

    #[test]
    fn flat_amounts_and_open_forms() {
        let pricing = tiers(
            TiersMode::Graduated,
            json!([{"up_to": 10, "price_per_unit": "0", "flat_amount": 5}, {"up_to": null, "price_per_unit": 1, "flat_amount": "2.50"}]),
        )
        .expect("valid");
        assert_eq!(pricing.price(d("10")).amount.to_string(), "5.00");
        assert_eq!(pricing.price(d("12")).amount.to_string(), "9.50");
        let volume = tiers(
            TiersMode::Volume,
            json!([{"up_to": 10, "price_per_unit": 1}, {"up_to": "inf", "price_per_unit": 0.5, "flat_amount": 1}]),
        )
        .expect("valid");
        assert_eq!(volume.price(d("20")).amount.to_string(), "11.00");
        let single = tiers(TiersMode::Graduated, json!([{"above": 0, "price_per_unit": 0.1}])).expect("valid");
        assert_eq!(single.price(d("3")).amount.to_string(), "0.30");
    }

    #[test]
    fn bad_tiers_are_named() {
        let fields = |body| tiers(TiersMode::Graduated, body).expect_err("invalid");
        assert_eq!(fields(json!([])), ["pricing_tiers"]);
        assert_eq!(fields(json!([{"up_to": 10, "price_per_unit": 1}])), ["pricing_tiers"]);
        assert_eq!(
            fields(json!([{"up_to": 10, "price_per_unit": 1}, {"above": 9, "price_per_unit": 1}])),
            ["pricing_tiers[1].above"]
        );
        assert_eq!(
            fields(
                json!([{"up_to": 10, "price_per_unit": 1}, {"up_to": 10, "price_per_unit": 1}, {"above": 10, "price_per_unit": 1}])
            ),
            ["pricing_tiers[1].up_to"]
        );
        assert_eq!(
            fields(json!([{"above": 0, "price_per_unit": 1}, {"above": 0, "price_per_unit": 1}])),
            ["pricing_tiers[0].up_to"]
        );
        assert_eq!(fields(json!([{"above": 1, "price_per_unit": 1}])), ["pricing_tiers[0].above"]);
        let many: Vec<Value> = (1..=11).map(|i| json!({"up_to": i, "price_per_unit": 1})).collect();
        assert_eq!(fields(Value::Array(many)), ["pricing_tiers"]);
        assert_eq!(fields(json!([{"above": 0, "price_per_unit": 0.0000000000001}])), ["[0].price_per_unit"]);
        assert!(fields(json!([{"above": 0, "price_per_unit": 1, "unit": 2}])).contains(&"[0].unit".to_owned()));
    }

    #[test]
    fn tiers_answer_strings_and_numbers() {
        let pricing = tiers(TiersMode::Graduated, api_calls()).expect("valid");
        let json = serde_json::to_value(&pricing.tiers).expect("json");
        assert_eq!(json[0], json!({"from": 0, "up_to": 100000, "price_per_unit": "0.001", "flat_amount": "0.00"}));
        assert_eq!(json[2]["up_to"], Value::Null);
        let back: Vec<Tier> = serde_json::from_value(json).expect("read back");
        assert_eq!(back, pricing.tiers);
        let charge = &pricing.price(d("2500000")).tiers[2];
        assert_eq!(charge.label(), "1,000,000+");
        assert_eq!(thousands(d("33552.5")), "33,552.5");
        assert_eq!(thousands(d("100")), "100");
    }
}
