//! Who is calling: access tokens (`jwt`), password hashing (`password`), and the
//! `Principal` extractor with role checks and tenant scopes (`principal`).

pub mod api_key;
pub mod invitation;
pub mod jwt;
pub mod password;
pub mod principal;
pub mod proofs;
pub mod scopes;

pub use principal::{Credential, Principal, Role, SignedIn, TenantScope};
pub use proofs::PlatformAdmin;
pub use scopes::Scope;
