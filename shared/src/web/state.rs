//! What every handler can reach, built once per cold start.

use std::sync::Arc;

use anyhow::{Context, Result};

use crate::{
    auth::jwt::{TokenSigner, TokenVerifier},
    aws::AwsClients,
    config::Config,
    mail::Mailer,
    store::{CursorCodec, Store},
};

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
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
    pub sqs: aws_sdk_sqs::Client,
    /// Tenant schedules (scheduled syncs and workflows); built on first use.
    pub schedules: crate::schedules::TenantSchedules,
    /// EventBridge (the admin health check describes the bus; events are
    /// published by the outbox pipe, never by a handler).
    pub eventbridge: aws_sdk_eventbridge::Client,
}

/// Whether this process issues tokens (and so needs the private key).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    Issue,
    VerifyOnly,
}

impl AppState {
    pub fn build(config: Config, clients: &AwsClients, signing: Signing) -> Result<Self> {
        let public_pem = config.jwt_public_key_pem.as_deref().context("JWT_PUBLIC_KEY is not set")?;
        let verifier = TokenVerifier::from_public_pems(&[public_pem], &config.jwt_issuer, &config.jwt_audience)?;
        let signer = match signing {
            Signing::Issue => {
                let private_pem = config.jwt_private_key_pem.as_deref().context("JWT_PRIVATE_KEY is not set")?;
                let signer = TokenSigner::from_private_pem(private_pem, &config.jwt_issuer, &config.jwt_audience)?;
                signer.self_test(&verifier)?;
                Some(Arc::new(signer))
            }
            Signing::VerifyOnly => None,
        };
        let cursors = CursorCodec::new(config.require_cursor_secret()?);
        Ok(Self {
            store: Store::new(clients.dynamodb.clone(), config.table_name.clone()).with_cursors(cursors),
            blobs: crate::blobs::Blobs::new(clients.s3.clone(), config.blob_bucket_name.clone()),
            verifier: Arc::new(verifier),
            signer,
            mailer: Mailer::new(clients.ses.clone(), config.mail_from.clone(), config.app_base_url.clone()),
            sfn: clients.sfn.clone(),
            sqs: clients.sqs.clone(),
            schedules: crate::schedules::TenantSchedules::new(clients.scheduler.clone()),
            eventbridge: clients.eventbridge.clone(),
            config: Arc::new(config),
        })
    }

    pub fn signer(&self) -> Result<&TokenSigner, crate::error::AppError> {
        self.signer
            .as_deref()
            .ok_or_else(|| crate::error::AppError::internal(anyhow::anyhow!("this function does not issue tokens")))
    }
}
