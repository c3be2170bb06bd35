//! Lambda entry point of the SAML group: wiring only.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The ACS issues no tokens: the auth group's callback does.
    shared::lambda::serve(saml::routes(), shared::state::Signing::VerifyOnly).await
}
