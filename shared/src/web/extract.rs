//! Parse, don't validate, at the edge: what a handler receives is already a
//! typed value that can only hold valid data, or the request was refused
//! with ONE 400 that names every bad field (`details.fields`).
//!
//! - [`Body<T>`]: a JSON body into a typed struct (`#[derive(eserde::Deserialize)]`,
//!   fields that are newtypes or enums); every problem at once, each with its
//!   path (`configuration.security.session_timeout_minutes`).
//! - [`PathIds<T>`]: typed path ids (`PathIds<TenantId>`,
//!   `PathIds<(ProjectId, TaskId)>`); a segment that is not a UUID names
//!   its parameter.
//! - [`ListQuery<F>`]: `?limit=&cursor=` plus the typed filters `F` of a
//!   list; an unknown parameter is refused, not ignored.
//!
//! With eserde, an optional field needs `#[serde(default)]` (its error pass
//! would otherwise call an absent `Option` missing), and a field whose type
//! has a plain serde `Deserialize` (typed ids, `string_enum!` enums) needs
//! `#[eserde(compat)]`.
//! - [`Patch<T>`]: a field of a partial update: absent, `null` (clear it) or
//!   a value.

use axum::{
    extract::{FromRequest, FromRequestParts, RawPathParams, Request},
    http::request::Parts,
};
use serde::{Deserialize, Deserializer, de::DeserializeOwned};
use serde_json::{Map, Value};

use super::http::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, QueryParams};
use crate::{
    domain::ids::TypedId,
    error::{AppError, FieldError},
    store::PageRequest,
};

/// A JSON body parsed into `T`, or 400: `invalid_json` when it is not JSON,
/// `validation_failed` naming every field that does not fit `T`.
pub struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    S: Send + Sync,
    T: for<'de> eserde::EDeserialize<'de>,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // JSON in a form post or as text/plain is refused, not guessed at: a
        // browser sends those cross-origin without a preflight.
        if !is_json_content_type(req.headers()) {
            return Err(super::http::unsupported_media_type());
        }
        let bytes = read_bytes(req, state).await?;
        parse_body(&bytes).map(Body)
    }
}

/// The raw body: past the size limit 413 `payload_too_large`, unreadable
/// 400 `invalid_json`.
async fn read_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<axum::body::Bytes, AppError> {
    axum::body::Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            super::http::payload_too_large()
        } else {
            AppError::invalid_json(format!("could not read the body: {e}"))
        }
    })
}

/// A body that may be left out (logout, key rotation): empty or whitespace
/// is `None`; anything else must be declared JSON (415) and parse into `T`
/// like [`Body`] does. Parsed before the handler runs, so a bad body changes
/// nothing.
pub struct OptionalBody<T>(pub Option<T>);

impl<S, T> FromRequest<S> for OptionalBody<T>
where
    S: Send + Sync,
    T: for<'de> eserde::EDeserialize<'de>,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let declared_json = is_json_content_type(req.headers());
        let bytes = read_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalBody(None));
        }
        if !declared_json {
            return Err(super::http::unsupported_media_type());
        }
        parse_body(&bytes).map(|body| OptionalBody(Some(body)))
    }
}

/// `application/json`, with or without parameters (`; charset=utf-8`), or a
/// `+json` type such as `application/merge-patch+json`.
pub fn is_json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The parsing [`Body`] does, for callers that hold the bytes.
pub fn parse_body<T: for<'de> eserde::EDeserialize<'de>>(bytes: &[u8]) -> Result<T, AppError> {
    let text = std::str::from_utf8(bytes).map_err(|_| AppError::invalid_json("the body is not UTF-8"))?;
    // Malformed JSON is its own error; only well-formed bodies are checked
    // field by field.
    let mut body = match serde_json::from_str::<Value>(text) {
        Ok(body @ Value::Object(_)) => body,
        Ok(_) => return Err(AppError::invalid_json("the request body must be a JSON object")),
        Err(e) => return Err(AppError::invalid_json(format!("the body is not valid JSON: {e}"))),
    };
    // eserde stops checking an object at its first unknown field, so the
    // unknown fields are set aside (reported) and the rest checked again,
    // until no new one turns up: one 400 names every problem.
    let mut unknown: Vec<FieldError> = Vec::new();
    for _ in 0..MAX_UNKNOWN_ROUNDS {
        let errors = match eserde::json::from_str::<T>(&body.to_string()) {
            Ok(value) if unknown.is_empty() => return Ok(value),
            Ok(_) => return Err(AppError::validation(unknown)),
            Err(errors) => errors,
        };
        let (new_unknown, others): (Vec<FieldError>, Vec<FieldError>) = errors
            .iter()
            .map(|e| {
                let path = e.path().map(|p| p.to_string()).filter(|p| !p.is_empty() && p != ".");
                FieldError::new(path.unwrap_or_else(|| field_named_in(e.message())), clean(e.message()))
            })
            .partition(|f| f.message.starts_with("unknown field"));
        let removed = new_unknown.iter().filter(|f| remove_at(&mut body, &f.field)).count();
        unknown.extend(new_unknown);
        if removed == 0 {
            unknown.extend(others);
            break;
        }
    }
    // One order whatever the rounds found: by the field's path.
    unknown.sort_by(|a, b| a.field.cmp(&b.field));
    Err(AppError::validation(unknown))
}

/// How many rounds of unknown fields a body may take to report (each round
/// finds at least one more; nesting adds rounds).
const MAX_UNKNOWN_ROUNDS: usize = 8;

/// Removes the value at an error's path (`a.b`, `items[2].c`); false when
/// there is none.
fn remove_at(body: &mut Value, path: &str) -> bool {
    let mut segments: Vec<Segment<'_>> = Vec::new();
    for part in path.split('.') {
        let (name, indices) = match part.find('[') {
            Some(at) => (&part[..at], &part[at..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            segments.push(Segment::Key(name));
        }
        for index in indices.split(']').filter_map(|i| i.strip_prefix('[')) {
            match index.parse() {
                Ok(i) => segments.push(Segment::Index(i)),
                Err(_) => return false,
            }
        }
    }
    let Some((last, parents)) = segments.split_last() else { return false };
    let mut current = body;
    for segment in parents {
        let next = match (segment, current) {
            (Segment::Key(k), Value::Object(map)) => map.get_mut(*k),
            (Segment::Index(i), Value::Array(items)) => items.get_mut(*i),
            _ => None,
        };
        match next {
            Some(value) => current = value,
            None => return false,
        }
    }
    match (last, current) {
        (Segment::Key(k), Value::Object(map)) => map.remove(*k).is_some(),
        _ => false,
    }
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// serde names a missing or unknown field in backticks; such errors are
/// reported at the enclosing object, so the field is taken from the text.
fn field_named_in(message: &str) -> String {
    message
        .find('`')
        .and_then(|start| {
            let rest = &message[start + 1..];
            rest.find('`').map(|end| rest[..end].to_owned())
        })
        .unwrap_or_else(|| "body".to_owned())
}

/// serde_json appends the position ("at line 1 column 9"): the field name
/// says where, and the position of a re-serialised document would mislead.
fn clean(message: &str) -> String {
    match message.find(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

/// Typed ids from the path, in the order the route declares them.
pub struct PathIds<T>(pub T);

/// What [`PathIds`] can produce: one typed id, or a tuple of them.
pub trait FromPathIds: Sized {
    fn from_segments(segments: &[String]) -> Result<Self, AppError>;
}

fn typed<T: TypedId>(segments: &[String], index: usize) -> Result<T, AppError> {
    segments
        .get(index)
        .and_then(|s| uuid::Uuid::parse_str(s).ok())
        .map(T::from_uuid)
        .ok_or_else(|| AppError::invalid_field(T::PARAM, "must be a valid UUID"))
}

impl<A: TypedId> FromPathIds for A {
    fn from_segments(segments: &[String]) -> Result<Self, AppError> {
        typed(segments, 0)
    }
}

impl<A: TypedId, B: TypedId> FromPathIds for (A, B) {
    fn from_segments(segments: &[String]) -> Result<Self, AppError> {
        let a = typed::<A>(segments, 0);
        let b = typed::<B>(segments, 1);
        match (a, b) {
            (Ok(a), Ok(b)) => Ok((a, b)),
            (a, b) => {
                Err(AppError::validation([a.err(), b.err()].into_iter().flatten().flat_map(field_errors).collect()))
            }
        }
    }
}

fn field_errors(err: AppError) -> Vec<FieldError> {
    match err {
        AppError::Api { details, .. } => serde_json::from_value(details["fields"].clone()).unwrap_or_default(),
        AppError::Internal(_) => Vec::new(),
    }
}

impl<S: Send + Sync, T: FromPathIds> FromRequestParts<S> for PathIds<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| AppError::invalid_field("path", "a path segment is not valid UTF-8"))?;
        let segments: Vec<String> = raw.iter().map(|(_, value)| value.to_owned()).collect();
        T::from_segments(&segments).map(PathIds)
    }
}

/// The filters of a list that has none: only `limit` and `cursor` are
/// accepted (`ListQuery<NoFilters>`), anything else is refused by name.
#[derive(Debug, eserde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoFilters {}

/// A list's query: the page, and the filters `F` (a struct of optional typed
/// fields, `#[derive(eserde::Deserialize)]` with `deny_unknown_fields`).
/// An empty parameter (`?limit=`, `?status=`) is a value like any other and
/// is judged by its type (an empty `limit` or `cursor` is refused), so what
/// the OpenAPI document says a parameter accepts is what the edge accepts.
pub struct ListQuery<F> {
    pub page: PageRequest,
    pub filters: F,
}

impl<S: Send + Sync, F: for<'de> eserde::EDeserialize<'de>> FromRequestParts<S> for ListQuery<F> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let QueryParams(params) = QueryParams::from_request_parts(parts, state).await?;
        let mut errors = Vec::new();
        let limit = match params.get("limit") {
            None => DEFAULT_PAGE_SIZE,
            Some(raw) => match raw.parse::<i32>() {
                Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
                _ => {
                    errors.push(FieldError::new("limit", format!("must be an integer between 1 and {MAX_PAGE_SIZE}")));
                    DEFAULT_PAGE_SIZE
                }
            },
        };
        let cursor = params.get("cursor").cloned();
        if cursor.as_deref() == Some("") {
            errors.push(FieldError::new("cursor", "must not be empty"));
        }
        let filters: Map<String, Value> = params
            .into_iter()
            .filter(|(k, _)| k != "limit" && k != "cursor")
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        let filters = match parse_body::<F>(Value::Object(filters).to_string().as_bytes()) {
            Ok(filters) => Some(filters),
            Err(err) => {
                errors.extend(field_errors(err).into_iter().map(|mut f| {
                    if f.message.starts_with("unknown field") {
                        f.message = "unknown query parameter".to_owned();
                    }
                    f
                }));
                None
            }
        };
        match filters {
            Some(filters) if errors.is_empty() => Ok(ListQuery { page: PageRequest { limit, cursor }, filters }),
            _ => {
                errors.sort_by(|a, b| a.field.cmp(&b.field));
                Err(AppError::validation(errors))
            }
        }
    }
}

/// One field of a partial update (`PATCH`): left out, `null` (clear it), or
/// a new value. Declare it `#[serde(default)] field: Patch<T>`.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Patch<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<T> Patch<T> {
    pub fn is_absent(&self) -> bool {
        matches!(self, Patch::Absent)
    }

    /// The new value, if one was sent.
    pub fn value(&self) -> Option<&T> {
        match self {
            Patch::Value(v) => Some(v),
            _ => None,
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(deserializer)? {
            Some(value) => Patch::Value(value),
            None => Patch::Null,
        })
    }
}

/// A patch field is its value's schema or `null`.
impl<T: utoipa::ToSchema> utoipa::__dev::ComposeSchema for Patch<T> {
    fn compose(
        generics: Vec<utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>>,
    ) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::domain::schema::nullable(generics.into_iter().next().unwrap_or_else(T::schema))
    }
}

impl<T: utoipa::ToSchema> utoipa::ToSchema for Patch<T> {
    fn name() -> std::borrow::Cow<'static, str> {
        crate::domain::schema::inline_name(format_args!("Patch_{}", T::name()))
    }

    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        T::schemas(schemas);
    }
}

/// For typed filters and bodies that hold plain serde types.
pub fn from_json_value<T: DeserializeOwned>(value: Value) -> Result<T, AppError> {
    serde_json::from_value(value).map_err(|e| AppError::invalid_field("body", clean(&e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::{ProjectId, TaskId, TenantId};

    #[derive(Debug, eserde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Create {
        name: String,
        size: u8,
        nested: Nested,
    }

    #[derive(Debug, eserde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Nested {
        flag: bool,
    }

    fn fields(err: AppError) -> Vec<String> {
        err.invalid_fields()
    }

    #[test]
    fn a_body_names_every_bad_field_at_once() {
        let err = parse_body::<Create>(br#"{"size": 300, "nested": {"flag": "yes"}}"#).err();
        let mut names = fields(err.expect("invalid"));
        names.sort();
        assert_eq!(names, ["name", "nested.flag", "size"]);
        // eserde stops at an unknown field; parse_body sets it aside and
        // checks the rest again, so nothing hides behind it.
        let err = parse_body::<Create>(br#"{"size": 300, "nested": {"flag": "yes", "odd": 1}, "extra": 1}"#).err();
        let mut names = fields(err.expect("invalid"));
        names.sort();
        assert_eq!(names, ["extra", "name", "nested.flag", "nested.odd", "size"]);
    }

    #[test]
    fn malformed_json_is_invalid_json_not_validation() {
        assert_eq!(parse_body::<Create>(b"{nope").err().map(|e| e.code()), Some("invalid_json"));
        assert_eq!(parse_body::<Create>(b"[1]").err().map(|e| e.code()), Some("invalid_json"));
    }

    #[test]
    fn path_ids_name_their_parameter() {
        let good = uuid::Uuid::now_v7().to_string();
        let ok = <(ProjectId, TaskId)>::from_segments(&[good.clone(), good.clone()]).expect("valid");
        assert_eq!(ok.0.0.to_string(), good);
        let err = <(ProjectId, TaskId)>::from_segments(&["x".into(), "y".into()]).expect_err("invalid");
        assert_eq!(fields(err), ["project_id", "task_id"]);
        assert_eq!(fields(TenantId::from_segments(&["1".into()]).expect_err("invalid")), ["tenant_id"]);
    }

    #[derive(Debug, Default, PartialEq, serde::Deserialize)]
    struct Update {
        #[serde(default)]
        description: Patch<String>,
    }

    #[test]
    fn a_patch_field_tells_absent_from_null_from_a_value() {
        let absent: Update = serde_json::from_str("{}").expect("parse");
        let null: Update = serde_json::from_str(r#"{"description": null}"#).expect("parse");
        let value: Update = serde_json::from_str(r#"{"description": "x"}"#).expect("parse");
        assert_eq!(absent.description, Patch::Absent);
        assert_eq!(null.description, Patch::Null);
        assert_eq!(value.description, Patch::Value("x".to_owned()));
    }
}
