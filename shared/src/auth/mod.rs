//! Who is calling: access tokens (`jwt`), password hashing (`password`), and the
//! `Principal` extractor with role checks and tenant scopes (`principal`).

pub mod invitation;
pub mod jwt;
pub mod password;
pub mod principal;

pub use principal::{PlatformAdmin, Principal, Role, TenantScope};
