//! How the constrained value types describe themselves in the OpenAPI
//! document: the same bounds their parsers enforce (length, range, pattern,
//! format), so a client generated from the spec and a fuzzer reading it
//! (schemathesis in CI) know what the edge accepts.
//!
//! Value types are small and many (`Text<1, 200>`, `Int<10, 10_000>`...):
//! they are named `Inline_<what>` and the document builder
//! (`web::openapi`) inlines every `Inline_` component where it is used, so
//! the reference shows `{"type": "string", "maxLength": 200}` on the field
//! instead of a list of one-line components.

use std::borrow::Cow;

use utoipa::openapi::{
    RefOr,
    schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type},
};

/// The prefix of components the document builder inlines.
pub const INLINE_PREFIX: &str = "Inline_";

/// A string of `min..=max` characters.
pub fn string(min: usize, max: usize) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).min_length(Some(min)).max_length(Some(max))
}

/// A string in a well-known format (`email`, `uri`, `hostname`, `date-time`).
pub fn formatted(min: usize, max: usize, format: &str) -> ObjectBuilder {
    string(min, max).format(Some(SchemaFormat::Custom(format.to_owned())))
}

/// An integer in `min..=max`.
pub fn integer(min: i64, max: i64) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(min)).maximum(Some(max))
}

/// A JSON object with any members.
pub fn free_object() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::Object)
}

/// `schema` or `null`: a partial update's field that `null` clears.
pub fn nullable(schema: RefOr<Schema>) -> RefOr<Schema> {
    OneOfBuilder::new().item(schema).item(ObjectBuilder::new().schema_type(Type::Null)).into()
}

/// The component name of an inlined value type.
pub fn inline_name(what: impl std::fmt::Display) -> Cow<'static, str> {
    Cow::Owned(format!("{INLINE_PREFIX}{what}"))
}

/// `PartialSchema` + `ToSchema` for a non-generic value type: its schema
/// and its `Inline_` name.
#[macro_export]
macro_rules! inline_schema {
    ($type:ty, $name:literal, $schema:expr) => {
        impl utoipa::PartialSchema for $type {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                #[allow(unused_imports)]
                use $crate::domain::schema::*;
                ($schema).into()
            }
        }

        impl utoipa::ToSchema for $type {
            fn name() -> std::borrow::Cow<'static, str> {
                $crate::domain::schema::inline_name($name)
            }
        }
    };
}
