//! Constrained strings shared by every route group: an [`Email`], an
//! [`HttpUrl`], a [`Slug`], a [`Hostname`], bounded [`Text`]. A value of these types is valid by
//! construction; a request field of one of them is refused at the edge
//! with the message the old field checks gave ("must be a valid email
//! address", "must have at least 3 characters"...). On the wire (and in the
//! table) each is its plain string.
//!
//! Each implements `eserde::EDeserialize`, so in a body struct
//! (`#[derive(eserde::Deserialize)]`) a field of these types needs no
//! `#[eserde(compat)]` (it is harmless), and in a list (`Vec<Email>`) every
//! bad item is named (`emails[1]`). An optional field needs
//! `#[serde(default)]`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};
use serde_json::Value;

use super::validate::{is_email, is_hostname, is_http_url, is_slug};

/// Reads a JSON string or says what was wrong: `null` where a value is
/// needed is "is required", any other type "must be a string".
fn string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::String(s) => Ok(s),
        Value::Null => Err(D::Error::custom("is required")),
        _ => Err(D::Error::custom("must be a string")),
    }
}

fn bounded(s: &str, min: usize, max: usize) -> Result<(), String> {
    let len = s.chars().count();
    if len < min {
        Err(format!("must have at least {min} characters"))
    } else if len > max {
        Err(format!("must have at most {max} characters"))
    } else {
        Ok(())
    }
}

macro_rules! string_value {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;

            fn try_from(value: String) -> Result<Self, String> {
                Self::parse(value)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = String;

            fn try_from(value: &str) -> Result<Self, String> {
                Self::parse(value)
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(value: &str) -> Result<Self, String> {
                Self::parse(value)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                Self::parse(string(deserializer)?).map_err(D::Error::custom)
            }
        }
    };
}

/// An email address (`validate::is_email`, at most 254 characters), kept
/// lowercased so that lookups and uniqueness ignore case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

impl Email {
    pub const MAX: usize = 254;

    /// The error is the message a 400 gives for the field.
    pub fn parse(value: impl Into<String>) -> Result<Self, String> {
        let value = value.into();
        bounded(&value, 1, Self::MAX)?;
        if !is_email(&value) {
            return Err("must be a valid email address".to_owned());
        }
        Ok(Self(value.to_ascii_lowercase()))
    }
}

string_value!(Email);

/// An absolute `http`/`https` URL (`validate::is_http_url`, at most 2048
/// characters), kept as given.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HttpUrl(String);

impl HttpUrl {
    pub const MAX: usize = 2048;

    /// The error is the message a 400 gives for the field.
    pub fn parse(value: impl Into<String>) -> Result<Self, String> {
        let value = value.into();
        bounded(&value, 1, Self::MAX)?;
        if !is_http_url(&value) {
            return Err("must be a valid HTTP(S) URL".to_owned());
        }
        Ok(Self(value))
    }
}

string_value!(HttpUrl);

/// A URL-safe name (`validate::is_slug`: `^[a-z0-9-]+$`, at most 63
/// characters, so it fits a DNS label), kept as given.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slug(String);

impl Slug {
    pub const MAX: usize = 63;

    /// The error is the message a 400 gives for the field.
    pub fn parse(value: impl Into<String>) -> Result<Self, String> {
        let value = value.into();
        bounded(&value, 1, Self::MAX)?;
        if !is_slug(&value) {
            return Err("must match pattern '^[a-z0-9-]+$' (at most 63 characters)".to_owned());
        }
        Ok(Self(value))
    }
}

string_value!(Slug);

/// A DNS host name (`validate::is_hostname`, at most 253 characters), kept
/// as given.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hostname(String);

impl Hostname {
    pub const MAX: usize = 253;

    /// The error is the message a 400 gives for the field.
    pub fn parse(value: impl Into<String>) -> Result<Self, String> {
        let value = value.into();
        bounded(&value, 1, Self::MAX)?;
        if !is_hostname(&value) {
            return Err("must be a valid hostname".to_owned());
        }
        Ok(Self(value))
    }
}

string_value!(Hostname);

eserde::impl_edeserialize_compat!(Email, HttpUrl, Slug, Hostname);

crate::inline_schema!(Email, "Email", formatted(1, Email::MAX, "email"));
crate::inline_schema!(HttpUrl, "HttpUrl", formatted(1, HttpUrl::MAX, "uri"));
crate::inline_schema!(Slug, "Slug", string(1, Slug::MAX).pattern(Some("^[a-z0-9-]+$")));
crate::inline_schema!(Hostname, "Hostname", formatted(1, Hostname::MAX, "hostname"));

impl<const MIN: usize, const MAX: usize> utoipa::PartialSchema for Text<MIN, MAX> {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        super::schema::string(MIN, MAX).into()
    }
}

impl<const MIN: usize, const MAX: usize> utoipa::ToSchema for Text<MIN, MAX> {
    fn name() -> std::borrow::Cow<'static, str> {
        super::schema::inline_name(format_args!("Text_{MIN}_{MAX}"))
    }
}

impl<const MIN: i64, const MAX: i64> utoipa::PartialSchema for Int<MIN, MAX> {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        super::schema::integer(MIN, MAX).into()
    }
}

impl<const MIN: i64, const MAX: i64> utoipa::ToSchema for Int<MIN, MAX> {
    fn name() -> std::borrow::Cow<'static, str> {
        super::schema::inline_name(format_args!("Int_{MIN}_{MAX}"))
    }
}

impl<const MAX_BYTES: usize> utoipa::PartialSchema for JsonObject<MAX_BYTES> {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        super::schema::free_object()
            .description(Some(format!(
                "Any JSON object of at most {MAX_BYTES} bytes, nested at most {MAX_JSON_DEPTH} levels"
            )))
            .into()
    }
}

impl<const MAX_BYTES: usize> utoipa::ToSchema for JsonObject<MAX_BYTES> {
    fn name() -> std::borrow::Cow<'static, str> {
        super::schema::inline_name(format_args!("JsonObject_{MAX_BYTES}"))
    }
}

/// A settable field is its value's schema (`null` is refused).
impl<T: utoipa::ToSchema> utoipa::__dev::ComposeSchema for Settable<T> {
    fn compose(
        generics: Vec<utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>>,
    ) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        generics.into_iter().next().unwrap_or_else(T::schema)
    }
}

impl<T: utoipa::ToSchema> utoipa::ToSchema for Settable<T> {
    fn name() -> std::borrow::Cow<'static, str> {
        super::schema::inline_name(format_args!("Settable_{}", T::name()))
    }

    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        T::schemas(schemas);
    }
}

/// A clearable field is its value's schema or `null`.
impl<T: utoipa::ToSchema> utoipa::__dev::ComposeSchema for Clearable<T> {
    fn compose(
        generics: Vec<utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>>,
    ) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let generic = generics.into_iter().next().unwrap_or_else(T::schema);
        super::schema::nullable(generic)
    }
}

impl<T: utoipa::ToSchema> utoipa::ToSchema for Clearable<T> {
    fn name() -> std::borrow::Cow<'static, str> {
        super::schema::inline_name(format_args!("Clearable_{}", T::name()))
    }

    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        T::schemas(schemas);
    }
}

impl<'de, const MIN: usize, const MAX: usize> eserde::EDeserialize<'de> for Text<MIN, MAX> {
    fn deserialize_for_errors<D: Deserializer<'de>>(deserializer: D) -> Result<(), ()> {
        Self::deserialize(deserializer).map(|_| ()).map_err(eserde::reporter::ErrorReporter::report)
    }
}

/// Text of `MIN..=MAX` characters (Unicode scalar values), kept as given
/// (no trimming): `Text<3, 255>` is a tenant's name, `Text<1, 100>` a
/// person's first name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Text<const MIN: usize, const MAX: usize>(String);

impl<const MIN: usize, const MAX: usize> Text<MIN, MAX> {
    /// The error is the message a 400 gives for the field.
    pub fn parse(value: impl Into<String>) -> Result<Self, String> {
        let value = value.into();
        bounded(&value, MIN, MAX)?;
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl<const MIN: usize, const MAX: usize> fmt::Display for Text<MIN, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<const MIN: usize, const MAX: usize> AsRef<str> for Text<MIN, MAX> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<const MIN: usize, const MAX: usize> From<Text<MIN, MAX>> for String {
    fn from(value: Text<MIN, MAX>) -> String {
        value.0
    }
}

impl<const MIN: usize, const MAX: usize> TryFrom<String> for Text<MIN, MAX> {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(value)
    }
}

impl<const MIN: usize, const MAX: usize> TryFrom<&str> for Text<MIN, MAX> {
    type Error = String;

    fn try_from(value: &str) -> Result<Self, String> {
        Self::parse(value)
    }
}

impl<const MIN: usize, const MAX: usize> std::str::FromStr for Text<MIN, MAX> {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        Self::parse(value)
    }
}

impl<const MIN: usize, const MAX: usize> Serialize for Text<MIN, MAX> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de, const MIN: usize, const MAX: usize> Deserialize<'de> for Text<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::parse(string(deserializer)?).map_err(D::Error::custom)
    }
}

/// An integer of `MIN..=MAX` in a request body (`max_users`:
/// `Int<10, 10_000>`, a credit amount: `Int<1, 1_000_000_000>`); refused with
/// "must be an integer", "must be greater than or equal to MIN" or "must be
/// less than or equal to MAX" ("is required" for `null`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Int<const MIN: i64, const MAX: i64>(i64);

impl<const MIN: i64, const MAX: i64> Int<MIN, MAX> {
    /// The error is the message a 400 gives for the field.
    pub fn new(value: i64) -> Result<Self, String> {
        if value < MIN {
            Err(format!("must be greater than or equal to {MIN}"))
        } else if value > MAX {
            Err(format!("must be less than or equal to {MAX}"))
        } else {
            Ok(Self(value))
        }
    }

    /// From any JSON value (an integer in range, or why not).
    pub fn parse(value: &Value) -> Result<Self, String> {
        match value {
            Value::Number(n) => n.as_i64().ok_or_else(|| "must be an integer".to_owned()).and_then(Self::new),
            Value::Null => Err("is required".to_owned()),
            _ => Err("must be an integer".to_owned()),
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl<const MIN: i64, const MAX: i64> fmt::Display for Int<MIN, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de, const MIN: i64, const MAX: i64> Deserialize<'de> for Int<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::parse(&Value::deserialize(deserializer)?).map_err(D::Error::custom)
    }
}

impl<'de, const MIN: i64, const MAX: i64> eserde::EDeserialize<'de> for Int<MIN, MAX> {
    fn deserialize_for_errors<D: Deserializer<'de>>(deserializer: D) -> Result<(), ()> {
        Self::deserialize(deserializer).map(|_| ()).map_err(eserde::reporter::ErrorReporter::report)
    }
}

// Partial-update fields whose value is a typed object (its errors are named
// inside it: `configuration.security.session_timeout_minutes`).

/// An update's field that may be set but not cleared: `null` is refused
/// ("must not be null"), at parse time, beside every other error.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Settable<T> {
    #[default]
    Absent,
    Value(T),
}

/// An update's field that may be set or cleared (`null`): the domain's
/// `web::extract::Patch` (the domain is below the web), whose value's own
/// errors keep their paths.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Clearable<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<T> Settable<T> {
    pub fn is_absent(&self) -> bool {
        matches!(self, Settable::Absent)
    }

    pub fn into_option(self) -> Option<T> {
        match self {
            Settable::Absent => None,
            Settable::Value(v) => Some(v),
        }
    }
}

impl<T> Clearable<T> {
    pub fn is_absent(&self) -> bool {
        matches!(self, Clearable::Absent)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Settable<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Option::<T>::deserialize(deserializer)?.map(Settable::Value).ok_or_else(|| D::Error::custom("must not be null"))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Clearable<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Option::<T>::deserialize(deserializer)?.map_or(Clearable::Null, Clearable::Value))
    }
}

/// eserde's error pass for both: `null` is an error or fine, a value is
/// checked by `T`'s own pass.
struct NullableVisitor<T> {
    null_allowed: bool,
    value: std::marker::PhantomData<T>,
}

impl<'de, T: eserde::EDeserialize<'de>> serde::de::Visitor<'de> for NullableVisitor<T> {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a value or null")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.visit_none()
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        if self.null_allowed { Ok(()) } else { Err(E::custom("must not be null")) }
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        let _ = T::deserialize_for_errors(deserializer);
        Ok(())
    }
}

fn errors_of_nullable<'de, T: eserde::EDeserialize<'de>, D: Deserializer<'de>>(
    deserializer: D,
    null_allowed: bool,
) -> Result<(), ()> {
    use eserde::reporter::ErrorReporter;
    let before = ErrorReporter::n_errors();
    let visitor = NullableVisitor::<T> { null_allowed, value: std::marker::PhantomData };
    if let Err(e) = deserializer.deserialize_option(visitor) {
        ErrorReporter::report(e);
    }
    if ErrorReporter::n_errors() > before { Err(()) } else { Ok(()) }
}

impl<'de, T: eserde::EDeserialize<'de>> eserde::EDeserialize<'de> for Settable<T> {
    fn deserialize_for_errors<D: Deserializer<'de>>(deserializer: D) -> Result<(), ()> {
        errors_of_nullable::<T, D>(deserializer, false)
    }
}

impl<'de, T: eserde::EDeserialize<'de>> eserde::EDeserialize<'de> for Clearable<T> {
    fn deserialize_for_errors<D: Deserializer<'de>>(deserializer: D) -> Result<(), ()> {
        errors_of_nullable::<T, D>(deserializer, true)
    }
}

/// A date bound of a list filter (`date_from`, `date_to`): a full RFC 3339 timestamp, or a day
/// (`YYYY-MM-DD`) that means its first instant as a lower bound and its last
/// as an upper one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateBound {
    At(chrono::DateTime<chrono::Utc>),
    Day(chrono::NaiveDate),
}

impl DateBound {
    pub fn first_instant(self) -> Option<chrono::DateTime<chrono::Utc>> {
        match self {
            DateBound::At(at) => Some(at),
            DateBound::Day(day) => day.and_hms_opt(0, 0, 0).map(|t| t.and_utc()),
        }
    }

    pub fn last_instant(self) -> Option<chrono::DateTime<chrono::Utc>> {
        match self {
            DateBound::At(at) => Some(at),
            DateBound::Day(day) => day.and_hms_milli_opt(23, 59, 59, 999).map(|t| t.and_utc()),
        }
    }
}

/// A date-time (RFC 3339) or a full date (`YYYY-MM-DD`).
impl utoipa::PartialSchema for DateBound {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::{
            KnownFormat, SchemaFormat,
            schema::{AnyOfBuilder, ObjectBuilder, Type},
        };
        let string =
            |format| ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::KnownFormat(format)));
        AnyOfBuilder::new().item(string(KnownFormat::DateTime)).item(string(KnownFormat::Date)).into()
    }
}

impl utoipa::ToSchema for DateBound {
    fn name() -> std::borrow::Cow<'static, str> {
        crate::domain::schema::inline_name("DateBound")
    }
}

impl<'de> Deserialize<'de> for DateBound {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        if let Ok(at) = chrono::DateTime::parse_from_rfc3339(&raw) {
            return Ok(DateBound::At(at.with_timezone(&chrono::Utc)));
        }
        chrono::NaiveDate::parse_from_str(&raw, "%Y-%m-%d")
            .map(DateBound::Day)
            .map_err(|_| D::Error::custom("must be an RFC 3339 timestamp or a YYYY-MM-DD date"))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn message<T: for<'de> Deserialize<'de> + fmt::Debug>(value: Value) -> String {
        serde_json::from_value::<T>(value).expect_err("refused").to_string()
    }

    #[test]
    fn an_email_is_lowercased_and_checked() {
        let email: Email = serde_json::from_value(json!("It-Admin+X@Fortune500.COM")).expect("valid");
        assert_eq!(email.as_str(), "it-admin+x@fortune500.com");
        assert_eq!(serde_json::to_value(&email).expect("serialise"), json!("it-admin+x@fortune500.com"));
        assert_eq!(message::<Email>(json!("not-an-email")), "must be a valid email address");
        assert_eq!(message::<Email>(json!("")), "must have at least 1 characters");
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(message::<Email>(json!(long)), "must have at most 254 characters");
        assert_eq!(message::<Email>(json!(5)), "must be a string");
        assert_eq!(message::<Email>(Value::Null), "is required");
        assert_eq!(Email::parse("A@B.CO").map(Email::into_inner), Ok("a@b.co".to_owned()));
    }

    #[test]
    fn a_url_is_http_or_https() {
        let url: HttpUrl = serde_json::from_value(json!("https://ub.cm/logo.png")).expect("valid");
        assert_eq!(url.as_str(), "https://ub.cm/logo.png");
        assert_eq!(serde_json::to_string(&url).expect("serialise"), r#""https://ub.cm/logo.png""#);
        assert_eq!(message::<HttpUrl>(json!("ftp://x.y/z")), "must be a valid HTTP(S) URL");
        let long = format!("https://x.co/{}", "a".repeat(2048));
        assert_eq!(message::<HttpUrl>(json!(long)), "must have at most 2048 characters");
    }

    #[test]
    fn slugs_and_hostnames_keep_the_old_messages() {
        assert_eq!(Slug::parse("fos-uy1").map(Slug::into_inner), Ok("fos-uy1".to_owned()));
        assert_eq!(message::<Slug>(json!("UB")), "must match pattern '^[a-z0-9-]+$' (at most 63 characters)");
        assert_eq!(message::<Slug>(json!("a".repeat(64))), "must have at most 63 characters");
        assert_eq!(Hostname::parse("ub.cm").map(Hostname::into_inner), Ok("ub.cm".to_owned()));
        assert_eq!(message::<Hostname>(json!("-x.cm")), "must be a valid hostname");
    }

    #[test]
    fn text_is_bounded_in_characters() {
        type Name = Text<3, 5>;
        assert_eq!(Name::parse("abc").map(Name::into_inner), Ok("abc".to_owned()));
        // Characters, not bytes.
        assert!(Name::parse("ééééé").is_ok());
        assert_eq!(message::<Name>(json!("ab")), "must have at least 3 characters");
        assert_eq!(message::<Name>(json!("abcdef")), "must have at most 5 characters");
        assert_eq!(message::<Name>(json!(["abc"])), "must be a string");
        assert_eq!(serde_json::to_value(Name::parse("abcd").expect("valid")).expect("serialise"), json!("abcd"));
    }

    #[test]
    fn an_optional_value_takes_null_as_absent() {
        #[derive(Debug, Deserialize)]
        struct Body {
            #[serde(default)]
            email: Option<Email>,
        }
        let body: Body = serde_json::from_value(json!({"email": null})).expect("valid");
        assert_eq!(body.email, None);
    }

    #[test]
    fn in_a_list_each_bad_item_is_named() {
        #[derive(Debug, eserde::Deserialize)]
        #[allow(dead_code)]
        struct Body {
            emails: Vec<Email>,
            name: Text<1, 3>,
        }
        let errors = eserde::json::from_str::<Body>(r#"{"emails": ["a@b.co", "bad", "x"], "name": "long"}"#)
            .expect_err("refused");
        let mut paths: Vec<String> = errors.iter().filter_map(|e| e.path().map(|p| p.to_string())).collect();
        paths.sort();
        assert_eq!(paths, ["emails[1]", "emails[2]", "name"]);
    }

    #[test]
    fn in_an_eserde_body_each_bad_field_is_named() {
        #[derive(Debug, eserde::Deserialize)]
        #[allow(dead_code)]
        struct Body {
            #[eserde(compat)]
            email: Email,
            #[eserde(compat)]
            name: Text<3, 255>,
            #[serde(default)]
            #[eserde(compat)]
            url: Option<HttpUrl>,
        }
        let errors =
            eserde::json::from_str::<Body>(r#"{"email": "x", "name": "ab", "url": "nope"}"#).expect_err("refused");
        let mut found: Vec<(String, String)> = errors
            .iter()
            .map(|e| (e.path().map(|p| p.to_string()).unwrap_or_default(), e.message().to_owned()))
            .collect();
        found.sort();
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].0.contains("email") && found[0].1.starts_with("must be a valid email address"));
        assert!(found[1].0.contains("name") && found[1].1.starts_with("must have at least 3 characters"));
        assert!(found[2].0.contains("url") && found[2].1.starts_with("must be a valid HTTP(S) URL"));
    }
}

/// How deep a free-form object may nest (DynamoDB allows 32 levels; a
/// caller's settings or metadata never needs more than a few).
pub const MAX_JSON_DEPTH: usize = 8;

/// A free-form JSON object (tenant `settings`, customer `metadata`, project
/// `performance_targets`) that can always be stored and read back: at most
/// `MAX_BYTES` serialised, at most [`MAX_JSON_DEPTH`] levels, no empty keys,
/// and numbers DynamoDB can hold (a magnitude of 0 or 1e-130 to 1e126).
/// Anything else is refused at the edge with the reason, naming the field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JsonObject<const MAX_BYTES: usize>(serde_json::Map<String, Value>);

impl<const MAX_BYTES: usize> JsonObject<MAX_BYTES> {
    pub fn parse(value: Value) -> Result<Self, String> {
        let Value::Object(map) = value else {
            return Err("must be an object".to_owned());
        };
        let size = serde_json::to_vec(&map).map_or(usize::MAX, |b| b.len());
        if size > MAX_BYTES {
            return Err(format!("must serialise to at most {MAX_BYTES} bytes (this is {size})"));
        }
        for (key, nested) in &map {
            storable(nested, 1).map_err(|why| format!("{why} (at {key})"))?;
        }
        if map.keys().any(String::is_empty) {
            return Err("keys must not be empty".to_owned());
        }
        Ok(Self(map))
    }

    pub fn as_map(&self) -> &serde_json::Map<String, Value> {
        &self.0
    }

    pub fn into_inner(self) -> serde_json::Map<String, Value> {
        self.0
    }
}

/// Whether a value of a free-form object can be stored: [`JsonObject`]'s
/// rules but its size, for typed objects that keep free-form values under
/// checked keys (`performance_targets`) and name the key that is refused.
pub fn check_storable(value: &Value) -> Result<(), String> {
    storable(value, 1)
}

/// Whether DynamoDB can store `value` at `depth` levels down.
fn storable(value: &Value, depth: usize) -> Result<(), String> {
    if depth > MAX_JSON_DEPTH {
        return Err(format!("must nest at most {MAX_JSON_DEPTH} levels deep"));
    }
    match value {
        Value::Number(number) => match number.as_f64() {
            // Integers of any width serde_json keeps fit DynamoDB's 38 digits.
            _ if number.is_i64() || number.is_u64() => Ok(()),
            Some(float) if float == 0.0 || (1e-130..1e126).contains(&float.abs()) => Ok(()),
            _ => Err("numbers must be 0 or of magnitude 1e-130 to 1e126".to_owned()),
        },
        Value::Array(items) => items.iter().try_for_each(|item| storable(item, depth + 1)),
        Value::Object(map) => {
            if map.keys().any(String::is_empty) {
                return Err("keys must not be empty".to_owned());
            }
            map.values().try_for_each(|nested| storable(nested, depth + 1))
        }
        Value::Null | Value::Bool(_) | Value::String(_) => Ok(()),
    }
}

impl<'de, const MAX_BYTES: usize> Deserialize<'de> for JsonObject<MAX_BYTES> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::parse(Value::deserialize(deserializer)?).map_err(D::Error::custom)
    }
}

impl<'de, const MAX_BYTES: usize> eserde::EDeserialize<'de> for JsonObject<MAX_BYTES> {
    fn deserialize_for_errors<D: Deserializer<'de>>(deserializer: D) -> Result<(), ()> {
        Self::deserialize(deserializer).map(|_| ()).map_err(eserde::reporter::ErrorReporter::report)
    }
}

impl<const MAX_BYTES: usize> Serialize for JsonObject<MAX_BYTES> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

#[cfg(test)]
mod json_object_tests {
    use serde_json::json;

    use super::*;

    type Small = JsonObject<256>;

    #[test]
    fn only_what_dynamodb_can_store_is_accepted() {
        assert!(Small::parse(json!({"tier": "gold", "n": 1.5, "big": 12345678901234567890u64, "zero": 0.0})).is_ok());
        assert!(Small::parse(json!({"a": {"b": [1, {"c": null}]}})).is_ok());
        for (bad, why) in [
            (json!(3), "must be an object"),
            (json!({"": 1}), "keys must not be empty"),
            (json!({"a": {"": 1}}), "keys must not be empty"),
            (json!({"a": 1e300}), "magnitude"),
            (json!({"a": [1e-200]}), "magnitude"),
            (json!({"x": "y".repeat(300)}), "at most 256 bytes"),
        ] {
            let err = Small::parse(bad.clone()).expect_err("refused");
            assert!(err.contains(why), "{bad}: {err}");
        }
        let mut deep = json!(1);
        // MAX_JSON_DEPTH + 1 objects, one inside the other.
        for _ in 0..=MAX_JSON_DEPTH {
            deep = json!({ "d": deep });
        }
        assert!(JsonObject::<4096>::parse(deep.clone()).expect_err("too deep").contains("levels"));
        assert!(JsonObject::<4096>::parse(deep["d"].clone()).is_ok());
    }
}
