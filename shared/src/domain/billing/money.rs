//! Money and quantities as exact decimals (`rust_decimal`), never `f64` in
//! arithmetic: a bill must add up to the cent however many lines it has.
//!
//! On the wire: amounts are strings with two decimals (`"1570.00"`), unit
//! prices strings without trailing zeros (`"0.0008"`), quantities JSON
//! numbers (seed 000's test compares `current_period.api_calls >= 1000`).
//! In a request each decimal is a JSON number or a numeric string; a number
//! is read as `f64` and converted from its shortest round-trip text, so
//! `0.0008` stays exactly `0.0008`.

use rust_decimal::{Decimal, RoundingStrategy, prelude::ToPrimitive};
use serde::{Deserialize, Deserializer, Serializer, de::Error as _};
use serde_json::Value;

/// Most decimals a unit price keeps (API.md: "unit prices keep 12 decimals").
pub const PRICE_SCALE: u32 = 12;
/// Most decimals a quantity keeps (storage is fractional gb_hour).
pub const QUANTITY_SCALE: u32 = 6;
/// The largest quantity one record or tier bound may hold.
pub const MAX_QUANTITY: i64 = 1_000_000_000_000;
/// The largest amount or unit price a body may hold.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;

/// Half-even to cents: the rounding of every line, and of tax on the
/// rounded subtotal, so that a sum of lines never drifts by repeated
/// half-up rounding.
pub fn round_cents(value: Decimal) -> Decimal {
    let mut rounded = value.round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven);
    rounded.rescale(2);
    rounded
}

/// An amount as answered: two decimals, always (`"1570.00"`).
pub fn money_string(value: Decimal) -> String {
    round_cents(value).to_string()
}

/// A unit price or rate as answered: exact, no trailing zeros (`"0.0008"`).
pub fn price_string(value: Decimal) -> String {
    value.normalize().to_string()
}

/// A quantity as a JSON number: an integer when whole, else the nearest
/// `f64` (for display; the exact value is what was priced).
pub fn quantity_json(value: Decimal) -> serde_json::Number {
    let value = value.normalize();
    if value.scale() == 0
        && let Some(whole) = value.to_i64()
    {
        return whole.into();
    }
    value.to_f64().and_then(serde_json::Number::from_f64).unwrap_or_else(|| 0.into())
}

/// A JSON number or numeric string as an exact decimal, or why not.
pub fn decimal_from_json(value: &Value) -> Result<Decimal, String> {
    match value {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                return Ok(Decimal::from(i));
            }
            if let Some(u) = n.as_u64() {
                return Ok(Decimal::from(u));
            }
            let float = n.as_f64().filter(|f| f.is_finite()).ok_or("must be a finite number")?;
            // `f64`'s Display is the shortest text that reads back the same
            // value (never an exponent): 0.0008 -> "0.0008".
            float.to_string().parse::<Decimal>().map_err(|_| "is out of range".to_owned())
        }
        Value::String(text) => {
            let trimmed = text.trim();
            if trimmed.is_empty() || !trimmed.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+')
            {
                return Err("must be a number".to_owned());
            }
            trimmed.parse::<Decimal>().map_err(|_| "must be a number".to_owned())
        }
        Value::Null => Err("is required".to_owned()),
        _ => Err("must be a number".to_owned()),
    }
}

/// Refuses more than `max` decimals (after dropping trailing zeros).
pub fn check_scale(value: Decimal, max: u32) -> Result<Decimal, String> {
    let normalized = value.normalize();
    if normalized.scale() > max { Err(format!("must have at most {max} decimals")) } else { Ok(normalized) }
}

/// A decimal in `min..=max` (`min` excluded when `min_exclusive`) of at
/// most `scale` decimals.
pub fn bounded(value: &Value, min: Decimal, min_exclusive: bool, max: Decimal, scale: u32) -> Result<Decimal, String> {
    let value = check_scale(decimal_from_json(value)?, scale)?;
    if min_exclusive && value <= min {
        return Err(format!("must be greater than {min}"));
    }
    if value < min {
        return Err(format!("must be greater than or equal to {min}"));
    }
    if value > max {
        return Err(format!("must be less than or equal to {max}"));
    }
    Ok(value)
}

/// Any decimal: a number or a numeric string (`deserialize_with`).
pub fn deserialize_decimal<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
    decimal_from_json(&Value::deserialize(deserializer)?).map_err(D::Error::custom)
}

/// A unit price: 0 to [`MAX_AMOUNT`], at most [`PRICE_SCALE`] decimals.
pub fn unit_price<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
    let value = Value::deserialize(deserializer)?;
    bounded(&value, Decimal::ZERO, false, Decimal::from(MAX_AMOUNT), PRICE_SCALE).map_err(D::Error::custom)
}

/// A usage quantity: above 0, at most [`MAX_QUANTITY`] and
/// [`QUANTITY_SCALE`] decimals.
pub fn quantity<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
    let value = Value::deserialize(deserializer)?;
    bounded(&value, Decimal::ZERO, true, Decimal::from(MAX_QUANTITY), QUANTITY_SCALE).map_err(D::Error::custom)
}

/// An amount of money: 0 to [`MAX_AMOUNT`], at most 2 decimals, kept with
/// two (`500000` -> `500000.00`).
pub fn amount<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
    let value = Value::deserialize(deserializer)?;
    bounded(&value, Decimal::ZERO, false, Decimal::from(MAX_AMOUNT), 2).map(round_cents).map_err(D::Error::custom)
}

/// A percentage: 0 to 100, at most 4 decimals.
pub fn percent<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
    let value = Value::deserialize(deserializer)?;
    bounded(&value, Decimal::ZERO, false, Decimal::ONE_HUNDRED, 4).map_err(D::Error::custom)
}

macro_rules! optional {
    ($($name:ident => $inner:ident),+ $(,)?) => {$(
        #[doc = concat!("[`", stringify!($inner), "`], or `null`/absent (with `#[serde(default)]`).")]
        pub fn $name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Decimal>, D::Error> {
            match Value::deserialize(deserializer)? {
                Value::Null => Ok(None),
                value => $inner(value).map(Some).map_err(D::Error::custom),
            }
        }
    )+};
}

optional!(optional_amount => amount, optional_percent => percent, optional_unit_price => unit_price);

/// Serialises a quantity as a JSON number ([`quantity_json`]).
pub fn serialize_quantity<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&quantity_json(*value), serializer)
}

/// Serialises an optional quantity as a JSON number or `null`.
pub fn serialize_optional_quantity<S: Serializer>(value: &Option<Decimal>, serializer: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&value.map(quantity_json), serializer)
}

/// Reads back a quantity written by [`serialize_quantity`] (or as a string).
pub fn deserialize_optional_decimal<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Decimal>, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        value => decimal_from_json(&value).map(Some).map_err(D::Error::custom),
    }
}

/// A decimal in a request (the schema only): a JSON number or a numeric
/// string.
pub struct DecimalInput;

crate::inline_schema!(
    DecimalInput,
    "DecimalInput",
    utoipa::openapi::schema::OneOfBuilder::new()
        .item(utoipa::openapi::schema::ObjectBuilder::new().schema_type(utoipa::openapi::schema::Type::Number))
        .item(
            utoipa::openapi::schema::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .pattern(Some("^[+-]?[0-9]+(\\.[0-9]+)?$"))
        )
        .description(Some("A decimal: a JSON number or a numeric string"))
);

/// An amount in an answer (the schema only): a string with two decimals.
pub struct MoneyString;

crate::inline_schema!(
    MoneyString,
    "MoneyString",
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some("^-?[0-9]+\\.[0-9]{2}$"))
        .examples(["1570.00"])
        .description(Some("An amount: a decimal string with two decimals"))
);

/// A unit price or rate in an answer (the schema only): an exact decimal
/// string.
pub struct DecimalString;

crate::inline_schema!(
    DecimalString,
    "DecimalString",
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some("^-?[0-9]+(\\.[0-9]+)?$"))
        .examples(["0.0008"])
        .description(Some("An exact decimal as a string"))
);

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn d(text: &str) -> Decimal {
        text.parse().expect("decimal")
    }

    #[test]
    fn numbers_keep_their_shortest_form() {
        assert_eq!(decimal_from_json(&json!(0.0008)), Ok(d("0.0008")));
        assert_eq!(decimal_from_json(&json!(99.95)), Ok(d("99.95")));
        assert_eq!(decimal_from_json(&json!(500000)), Ok(d("500000")));
        assert_eq!(decimal_from_json(&json!("0.000000000001")), Ok(d("0.000000000001")));
        assert!(decimal_from_json(&json!("1e5")).is_err());
        assert!(decimal_from_json(&json!("abc")).is_err());
        assert!(decimal_from_json(&json!(true)).is_err());
        assert!(decimal_from_json(&json!(1e300)).is_err());
    }

    #[test]
    fn rounding_is_half_even_to_cents() {
        assert_eq!(money_string(d("608.936")), "608.94");
        assert_eq!(money_string(d("0.125")), "0.12");
        assert_eq!(money_string(d("0.135")), "0.14");
        assert_eq!(money_string(d("1570")), "1570.00");
        assert_eq!(price_string(d("0.000800")), "0.0008");
    }

    #[test]
    fn scales_and_bounds_are_checked() {
        let max = Decimal::from(MAX_AMOUNT);
        assert!(bounded(&json!("0.0000000000001"), Decimal::ZERO, false, max, PRICE_SCALE).is_err());
        assert!(bounded(&json!(0.000000000001), Decimal::ZERO, false, max, PRICE_SCALE).is_ok());
        assert!(bounded(&json!(0), Decimal::ZERO, true, max, QUANTITY_SCALE).is_err());
        assert!(bounded(&json!(1.0000001), Decimal::ZERO, true, max, QUANTITY_SCALE).is_err());
        assert!(bounded(&json!(-1), Decimal::ZERO, false, max, 2).is_err());
    }

    #[test]
    fn quantities_are_numbers() {
        assert_eq!(serde_json::to_value(quantity_json(d("2500000.000"))).expect("json"), json!(2500000));
        assert_eq!(serde_json::to_value(quantity_json(d("33552.5"))).expect("json"), json!(33552.5));
    }
}
