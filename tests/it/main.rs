//! End-to-end tests over HTTP against the local server and the local AWS stack
//! (moto). Run them with the README's test command, which starts the stack.

mod account_mail;
mod admin;
mod ai;
mod api_keys;
mod audit;
mod auth;
mod billing;
mod compliance;
mod credits;
mod errors;
mod hostile_input;
mod idempotency;
mod integrations;
mod isolation;
mod key_rotation;
mod mfa;
mod paging;
mod policies;
mod projects;
mod provisioning;
mod rate_limits;
mod saml;
mod seeds;
mod sso;
mod standing;
mod sync;
mod tenants;
mod tokens;
mod tryons;
mod users;
mod webhooks;
mod workflows;
