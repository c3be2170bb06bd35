//! What every handler can reach, built once per cold start.

use std::sync::Arc;

use anyhow::{Context, Result};

use crate::{
    auth::jwt::{TokenSigner, TokenVerifier},
    aws::AwsClients,
    config::Config,
    keys::{PlatformKeys, SigningKey},
    mail::Mailer,
    store::{CursorCodec, Store},
};

/// Cloned for every request (axum's `State`, each middleware with state):
/// one reference count, whatever the resources hold.
#[derive(Clone)]
pub struct AppState(Arc<Resources>);

impl std::ops::Deref for AppState {
    type Target = Resources;

    fn deref(&self) -> &Resources {
        &self.0
    }
}

pub struct Resources {
    pub config: Arc<Config>,
    /// The key rings (Secrets Manager, read at cold start): `sealing` seals
    /// and opens stored secrets; cursors and idempotent responses use theirs
    /// through the store and the idempotency layer.
    pub keys: Arc<PlatformKeys>,
    pub store: Store,
    /// Tenant-scoped credentials for reads by key (`tenant_store`).
    pub tenant_data: crate::aws::tenant_data::TenantDataAccess,
    pub blobs: crate::blobs::Blobs,
    pub verifier: Arc<TokenVerifier>,
    /// Present only where tokens are issued (the auth function).
    pub signer: Option<Arc<TokenSigner>>,
    /// Account mail (invitations, verification, reset, security notices);
    /// sends nothing where `MAIL_FROM` is unset.
    pub mailer: Mailer,
    /// Step Functions (workflow executions); no client is built unless used.
    pub sfn: crate::aws::SfnClient,
    /// SQS (a sync run's start message, in its connection's FIFO group).
    pub sqs: crate::aws::SqsClient,
    /// Tenant schedules (scheduled syncs and workflows); built on first use.
    pub schedules: crate::schedules::TenantSchedules,
    /// EventBridge (the admin health check describes the bus; events are
    /// published by the outbox pipe, never by a handler).
    pub eventbridge: crate::aws::EventBridgeClient,
}

/// Whether this process issues tokens (and so needs the private key).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    Issue,
    VerifyOnly,
}

/// What a cold start reads from Secrets Manager.
pub struct LoadedKeys {
    pub platform: PlatformKeys,
    /// Only where tokens are issued.
    pub signing: Option<SigningKey>,
}

impl LoadedKeys {
    /// One call: a GetSecretValue, or where tokens are issued a
    /// BatchGetSecretValue of both secrets.
    pub async fn load(clients: &AwsClients, signing: Signing) -> Result<Self> {
        let client = clients.secrets.client();
        match signing {
            Signing::Issue => {
                let (platform, signing) = crate::keys::load_platform_and_signing(client).await?;
                Ok(Self { platform, signing: Some(signing) })
            }
            Signing::VerifyOnly => Ok(Self { platform: crate::keys::load_platform(client).await?, signing: None }),
        }
    }
}

impl AppState {
    /// Reads the keys, then builds the state (cold start).
    pub async fn load(config: Config, clients: &AwsClients, signing: Signing) -> Result<Self> {
        let keys = LoadedKeys::load(clients, signing).await?;
        Self::build(config, clients, keys)
    }

    pub fn build(config: Config, clients: &AwsClients, keys: LoadedKeys) -> Result<Self> {
        let pems: Vec<&str> = keys.platform.token_public_pems.iter().map(String::as_str).collect();
        let verifier = TokenVerifier::from_public_pems(&pems, &config.jwt_issuer, &config.jwt_audience)?;
        let signer = match &keys.signing {
            Some(key) => {
                let signer = TokenSigner::from_private_pem(&key.private_pem, &config.jwt_issuer, &config.jwt_audience)
                    .context("the current signing key")?;
                signer.check_published(&verifier)?;
                Some(Arc::new(signer))
            }
            None => None,
        };
        let cursors = CursorCodec::new(keys.platform.cursor.clone());
        Ok(Self(Arc::new(Resources {
            store: Store::new(clients.dynamodb.clone(), config.table_name.clone()).with_cursors(cursors),
            blobs: crate::blobs::Blobs::new(clients.s3.clone(), config.blob_bucket_name.clone()),
            verifier: Arc::new(verifier),
            signer,
            mailer: Mailer::new(clients.ses.clone(), config.mail_from.clone(), config.app_base_url.clone()),
            sfn: clients.sfn.clone(),
            sqs: clients.sqs.clone(),
            schedules: crate::schedules::TenantSchedules::new(clients.scheduler.clone()),
            eventbridge: clients.eventbridge.clone(),
            tenant_data: clients.tenant_data.clone(),
            keys: Arc::new(keys.platform),
            config: Arc::new(config),
        })))
    }

    /// The store reading with credentials that can only read `scope`'s
    /// tenant partitions (`aws::tenant_data`): for the request paths that
    /// read tenant data by key. Reads only: the role grants no write.
    pub async fn tenant_store(&self, scope: &crate::auth::TenantScope) -> crate::AppResult<Store> {
        Ok(self.store.with_client(self.tenant_data.dynamodb_for(scope.tenant_id()).await?))
    }

    pub fn signer(&self) -> Result<&TokenSigner, crate::error::AppError> {
        self.signer
            .as_deref()
            .ok_or_else(|| crate::error::AppError::internal(anyhow::anyhow!("this function does not issue tokens")))
    }
}
