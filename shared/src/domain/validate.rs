//! Field-by-field validation of JSON bodies: every problem is collected and
//! reported at once under `details.fields`, each naming its field (dotted for
//! nested ones, e.g. `configuration.security.session_timeout_minutes`).

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::error::{AppError, FieldError};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Need {
    Required,
    Optional,
}

pub struct Fields<'a> {
    prefix: String,
    map: &'a Map<String, Value>,
    errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    pub fn new(map: &'a Map<String, Value>) -> Self {
        Self { prefix: String::new(), map, errors: Vec::new() }
    }

    /// Validates a nested object; its errors are named `prefix.field`.
    pub fn nested(prefix: &str, map: &'a Map<String, Value>) -> Self {
        Self { prefix: format!("{prefix}."), map, errors: Vec::new() }
    }

    pub fn name(&self, field: &str) -> String {
        format!("{}{}", self.prefix, field)
    }

    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        let name = self.name(field);
        self.errors.push(FieldError::new(name, message));
    }

    pub fn absorb(&mut self, other: Fields<'_>) {
        self.errors.extend(other.errors);
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    pub fn contains(&self, field: &str) -> bool {
        self.map.contains_key(field)
    }

    /// Present and explicitly `null`: on a partial update, "clear this field".
    pub fn is_null(&self, field: &str) -> bool {
        matches!(self.map.get(field), Some(Value::Null))
    }

    fn value(&mut self, field: &str, need: Need) -> Option<&'a Value> {
        match self.map.get(field) {
            None | Some(Value::Null) => {
                if need == Need::Required {
                    self.error(field, "is required");
                }
                None
            }
            Some(v) => Some(v),
        }
    }

    pub fn text(&mut self, field: &str, need: Need, min: usize, max: usize) -> Option<String> {
        let value = self.value(field, need)?;
        let Some(s) = value.as_str() else {
            self.error(field, "must be a string");
            return None;
        };
        let len = s.chars().count();
        if len < min {
            self.error(field, format!("must have at least {min} characters"));
            None
        } else if len > max {
            self.error(field, format!("must have at most {max} characters"));
            None
        } else {
            Some(s.to_owned())
        }
    }

    pub fn check_text(
        &mut self,
        field: &str,
        need: Need,
        max: usize,
        rule: fn(&str) -> bool,
        expectation: &str,
    ) -> Option<String> {
        let s = self.text(field, need, 1, max)?;
        if rule(&s) {
            Some(s)
        } else {
            self.error(field, expectation.to_owned());
            None
        }
    }

    pub fn email(&mut self, field: &str, need: Need) -> Option<String> {
        self.check_text(field, need, 254, is_email, "must be a valid email address").map(|e| e.to_ascii_lowercase())
    }

    pub fn url(&mut self, field: &str, need: Need) -> Option<String> {
        self.check_text(field, need, 2048, is_http_url, "must be a valid HTTP(S) URL")
    }

    /// One of `allowed`, matched case-insensitively and returned as spelled there.
    pub fn one_of(&mut self, field: &str, need: Need, allowed: &[&'static str]) -> Option<&'static str> {
        let value = self.value(field, need)?;
        let found = value.as_str().and_then(|s| allowed.iter().find(|a| a.eq_ignore_ascii_case(s)).copied());
        if found.is_none() {
            self.error(field, format!("must be one of {}", allowed.join(", ")));
        }
        found
    }

    pub fn uuid(&mut self, field: &str, need: Need) -> Option<Uuid> {
        let value = self.value(field, need)?;
        let parsed = value.as_str().and_then(|s| Uuid::parse_str(s).ok());
        if parsed.is_none() {
            self.error(field, "must be a valid UUID");
        }
        parsed
    }

    pub fn integer(&mut self, field: &str, need: Need, min: i64, max: i64) -> Option<i64> {
        let value = self.value(field, need)?;
        let Some(n) = value.as_i64() else {
            self.error(field, "must be an integer");
            return None;
        };
        if n < min {
            self.error(field, format!("must be greater than or equal to {min}"));
            None
        } else if n > max {
            self.error(field, format!("must be less than or equal to {max}"));
            None
        } else {
            Some(n)
        }
    }

    pub fn boolean(&mut self, field: &str, need: Need) -> Option<bool> {
        let value = self.value(field, need)?;
        let b = value.as_bool();
        if b.is_none() {
            self.error(field, "must be true or false");
        }
        b
    }

    pub fn object(&mut self, field: &str, need: Need) -> Option<&'a Map<String, Value>> {
        let value = self.value(field, need)?;
        let obj = value.as_object();
        if obj.is_none() {
            self.error(field, "must be an object");
        }
        obj
    }

    pub fn array(&mut self, field: &str, need: Need, max_items: usize) -> Option<&'a Vec<Value>> {
        let value = self.value(field, need)?;
        match value.as_array() {
            Some(items) if items.len() <= max_items => Some(items),
            Some(_) => {
                self.error(field, format!("must have at most {max_items} items"));
                None
            }
            None => {
                self.error(field, "must be an array");
                None
            }
        }
    }

    /// Unknown fields are refused so that a typo is not silently dropped.
    pub fn reject_unknown(&mut self, known: &[&str]) {
        let mut unknown: Vec<String> = self.map.keys().filter(|k| !known.contains(&k.as_str())).cloned().collect();
        unknown.sort();
        for field in unknown {
            self.error(&field, "is not a known field");
        }
    }

    pub fn finish(self) -> Result<(), AppError> {
        if self.errors.is_empty() { Ok(()) } else { Err(AppError::validation(self.errors)) }
    }

    /// Finishes and hands back the value the required fields make: a
    /// required field that was absent or invalid recorded its error, so a
    /// value is there exactly when nothing was refused.
    pub fn finish_with<T>(self, required: Option<T>) -> Result<T, AppError> {
        self.finish()?;
        required.ok_or_else(|| AppError::invalid_field("body", "a required field is missing"))
    }
}

/// A pragmatic address check (RFC 5321 lengths, one `@`, a dotted domain of
/// letters, digits and hyphens). Deliverability is proven by invitation mail.
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && local.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && is_hostname(domain)
        && domain.contains('.')
}

pub fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

pub fn is_http_url(s: &str) -> bool {
    let Ok(uri) = s.parse::<http::Uri>() else {
        return false;
    };
    matches!(uri.scheme_str(), Some("http") | Some("https"))
        && uri.host().is_some_and(|h| !h.is_empty())
        && !s.chars().any(char::is_whitespace)
}

/// Seed 002: `^[a-z0-9-]+$`; we also cap it at 63 so it fits a DNS label.
pub fn is_slug(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn emails() {
        assert!(is_email("info@ub.cm"));
        assert!(is_email("it-admin+x@fortune500.com"));
        for bad in ["", "a", "a@", "@b.co", "a@b", "a@@b.co", "a b@c.co", ".a@b.co", "a@-b.co"] {
            assert!(!is_email(bad), "{bad} accepted");
        }
    }

    #[test]
    fn urls() {
        assert!(is_http_url("https://ub.cm/logo.png"));
        assert!(is_http_url("http://localhost:3000/x"));
        for bad in ["ftp://x.y/z", "ub.cm/logo.png", "https://", "javascript:alert(1)", "https://a b.c"] {
            assert!(!is_http_url(bad), "{bad} accepted");
        }
    }

    #[test]
    fn slugs() {
        assert!(is_slug("uy1"));
        assert!(is_slug("fos-uy1"));
        for bad in ["", "UB", "u_b", "u b", "ü", &"a".repeat(64)] {
            assert!(!is_slug(bad), "{bad} accepted");
        }
    }

    #[test]
    fn all_problems_are_reported_with_their_field_names() {
        let body = json!({"name": "ab", "max_users": 5, "extra": 1, "nested": {"n": "x"}});
        let map = body.as_object().expect("object");
        let mut f = Fields::new(map);
        f.text("name", Need::Required, 3, 255);
        f.integer("max_users", Need::Required, 10, 10_000);
        f.email("contact_email", Need::Required);
        if let Some(inner) = f.object("nested", Need::Optional) {
            let mut n = Fields::nested("nested", inner);
            n.integer("n", Need::Required, 0, 1);
            f.absorb(n);
        }
        f.reject_unknown(&["name", "max_users", "contact_email", "nested"]);
        let err = f.finish().expect_err("invalid");
        let AppError::Api { details, .. } = err else { panic!("api error expected") };
        let names: Vec<&str> =
            details["fields"].as_array().expect("fields").iter().filter_map(|f| f["field"].as_str()).collect();
        assert_eq!(names, ["name", "max_users", "contact_email", "nested.n", "extra"]);
    }
}
