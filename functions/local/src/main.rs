//! `local`: the whole platform on one port against the local AWS stack.
//! `local seed-admin` creates the first platform administrator in whatever
//! table the environment points at (also how an operator bootstraps AWS).

use std::path::PathBuf;

use anyhow::{Context, Result};
use rand::{Rng, distributions::Alphanumeric};
use shared::{
    aws::AwsClients,
    config::Config,
    state::{AppState, Signing},
};

#[tokio::main]
async fn main() -> Result<()> {
    shared::telemetry::init();
    let mut config = Config::from_env()?;
    let clients = AwsClients::new(&shared::aws::load_sdk_config().await);
    let (email, password) = admin_credentials()?;

    if std::env::args().nth(1).as_deref() == Some("seed-admin") {
        let state = AppState::load(config, &clients, Signing::Issue).await?;
        let created = local::seed_platform_admin(&state.store, &email, &password).await?;
        println!("{}", if created { "platform admin created" } else { "platform admin already exists" });
        return Ok(());
    }

    let addr = std::env::var("LOCAL_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await.with_context(|| format!("binding {addr}"))?;
    // LOCAL_ADDR may ask for port 0; say which port it got.
    let addr = listener.local_addr()?;
    // The API's public URL is this server's (SAML names its ACS under it),
    // as API Gateway's own endpoint is in AWS.
    if config.public_api_url.is_none() {
        config.public_api_url = Some(format!("http://{addr}"));
    }
    let state = AppState::load(config, &clients, Signing::Issue).await?;
    local::seed_platform_admin(&state.store, &email, &password).await?;
    // `LOCAL_WORKERS=off`: an HTTP-only instance (the tests' second server).
    // Its workers would share the stack's queues, and killing it mid-message
    // would leave a claim's lease (the AI worker's is 240 s) stalling others.
    let pollers = match std::env::var("LOCAL_WORKERS").as_deref() {
        Ok("off") => None,
        _ => Some(local::Pollers::start(&clients, &state)?),
    };
    println!();
    println!("  API:             http://{addr}  (try GET /health)");
    println!("  platform admin:  {email}");
    println!("  password:        {password}");
    println!("  log in:          curl -s -X POST http://{addr}/v1/auth/login -H 'content-type: application/json' \\");
    println!("                     -d '{{\"email\":\"{email}\",\"password\":\"{password}\"}}'");
    println!();
    axum::serve(listener, local::app(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    if let Some(pollers) = pollers {
        pollers.abort();
    }
    Ok(())
}

/// The local admin's credentials: from the environment, else the ones made on
/// first start and kept (mode 600) beside the local stack's other secrets.
fn admin_credentials() -> Result<(String, String)> {
    let email = std::env::var("PLATFORM_ADMIN_EMAIL").unwrap_or_else(|_| "admin@platform.local".to_owned());
    if let Ok(password) = std::env::var("PLATFORM_ADMIN_PASSWORD") {
        return Ok((email, password));
    }
    let dir = PathBuf::from(std::env::var("LOCAL_DIR").unwrap_or_else(|_| ".local".to_owned()));
    let path = dir.join("platform-admin-password");
    if let Ok(saved) = std::fs::read_to_string(&path) {
        return Ok((email, saved.trim().to_owned()));
    }
    let password: String = rand::thread_rng().sample_iter(&Alphanumeric).take(24).map(char::from).collect();
    std::fs::create_dir_all(&dir)?;
    std::fs::write(&path, &password).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok((email, password))
}
