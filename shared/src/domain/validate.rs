//! The checks behind the value types (`domain::values`): what a valid email
//! address, hostname, HTTP(S) URL and slug are.

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
}
