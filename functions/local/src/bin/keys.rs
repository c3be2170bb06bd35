//! `keys`: the operator's tool for the platform's key rings in Secrets
//! Manager (shared::keys; docs/runbook.md#rotating-secrets). It reads the
//! two secrets named by PLATFORM_KEYS_SECRET_ID and SIGNING_KEYS_SECRET_ID
//! (the stack's outputs; locally the env file) with the caller's AWS
//! credentials.
//!
//!   keys init                 first keys of a new stage (refuses to overwrite)
//!   keys rotate [RING]        RING: all (default), cursor, idempotency, sealing, signing
//!   keys show                 key ids per ring, never key material

use anyhow::{Context, Result, bail};
use shared::keys::{self, PLATFORM_KEYS_ENV, PlatformKeysDoc, Rings, SIGNING_KEYS_ENV, SigningKeysDoc};

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let platform_id = std::env::var(PLATFORM_KEYS_ENV).with_context(|| format!("{PLATFORM_KEYS_ENV} is not set"))?;
    let signing_id = std::env::var(SIGNING_KEYS_ENV).with_context(|| format!("{SIGNING_KEYS_ENV} is not set"))?;
    let clients = shared::aws::AwsClients::new(&shared::aws::load_sdk_config().await);
    let client = clients.secrets.client();
    match args.first().map(String::as_str) {
        Some("init") => {
            if let Ok(existing) = keys::read_documents(client, &platform_id, &signing_id).await {
                show(&existing.0, &existing.1);
                bail!("both secrets already hold keys; use `keys rotate` to change them");
            }
            let (platform, signing) = keys::initial_documents()?;
            keys::write_documents(client, &platform_id, &signing_id, &platform, &signing).await?;
            show(&platform, &signing);
        }
        Some("rotate") => {
            let rings: Rings = args.get(1).map_or(Ok(Rings::All), |r| r.parse())?;
            let (platform, signing) = keys::read_documents(client, &platform_id, &signing_id).await?;
            let (platform, signing) = keys::rotate(&platform, &signing, rings)?;
            keys::write_documents(client, &platform_id, &signing_id, &platform, &signing).await?;
            show(&platform, &signing);
        }
        Some("show") => {
            let (platform, signing) = keys::read_documents(client, &platform_id, &signing_id).await?;
            show(&platform, &signing);
        }
        _ => bail!("usage: keys init | keys rotate [all|cursor|idempotency|sealing|signing] | keys show"),
    }
    Ok(())
}

fn show(platform: &PlatformKeysDoc, signing: &SigningKeysDoc) {
    fn line(name: &str, current: &str, ids: Vec<&str>) {
        let marked: Vec<String> =
            ids.iter().map(|id| if *id == current { format!("[{id}]") } else { (*id).to_owned() }).collect();
        println!("{name:<12} {}", marked.join(" "));
    }
    println!("rings, oldest first; [current], the key after it is staged:");
    line("cursor", &platform.cursor.current, platform.cursor.keys.iter().map(|k| k.id.as_str()).collect());
    line(
        "idempotency",
        &platform.idempotency.current,
        platform.idempotency.keys.iter().map(|k| k.id.as_str()).collect(),
    );
    line("sealing", &platform.sealing.current, platform.sealing.keys.iter().map(|k| k.id.as_str()).collect());
    line("signing", &signing.signing.current, signing.signing.keys.iter().map(|k| k.id.as_str()).collect());
}
