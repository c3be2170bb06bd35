//! Who is calling: access tokens (`jwt`), password hashing (`password`), and the
//! `Principal` extractor with role checks and tenant scopes (`principal`).

pub mod api_key;
pub mod invitation;
pub mod jwt;
pub mod password;
pub mod principal;
pub mod scopes;

pub use principal::{Credential, PlatformAdmin, Principal, Role, TenantScope};
pub use scopes::Scope;
