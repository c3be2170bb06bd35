//! Tenant-scoped data access: a DynamoDB client whose credentials can only
//! read one tenant's partitions, so a bug in a handler's key building
//! cannot read another tenant's data even if the code asks for it.
//!
//! The function assumes `TENANT_DATA_ROLE_ARN` (template.yaml's
//! `TenantDataRole`) with the session tag `tenant=<tenant id>`. That role may
//! only GetItem, BatchGetItem and Query, on condition that every partition
//! key of the request (`dynamodb:LeadingKeys`) is like
//! `T#${aws:PrincipalTag/tenant}#*`: the trailing `#` makes the match
//! delimiter-exact (tenant `ab` never reads `T#abc#...`). No Scan is granted:
//! a Scan names no leading key, and `ForAllValues` over none is true.
//!
//! One AssumeRole per tenant per execution environment: the credentials
//! (15 minutes, STS's minimum) are cached and renewed a minute before they
//! expire. Without `TENANT_DATA_ROLE_ARN` (tools, unit tests) the function's
//! own client is used. docs/infra.md#tenant-scoped-data-access.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::config::Credentials;
use uuid::Uuid;

use super::call_log::CallLog;
use crate::error::{AppError, AppResult};

pub const ROLE_ENV: &str = "TENANT_DATA_ROLE_ARN";
/// The session tag the role's condition reads (`aws:PrincipalTag/tenant`).
pub const TENANT_TAG: &str = "tenant";
/// What the call log names calls made with these credentials (the registry
/// check holds them against this role's policy, not the function's).
pub const LOG_PRINCIPAL: &str = "TenantDataRole";
const SESSION_SECONDS: i32 = 900;
const RENEW_BEFORE: Duration = Duration::from_secs(60);
/// Tenants whose clients one environment keeps (an environment serves one
/// request at a time under Lambda; the local server serves every tenant).
const MAX_CACHED_TENANTS: usize = 256;

#[derive(Clone)]
pub struct TenantDataAccess {
    role_arn: Option<String>,
    sdk: Arc<SdkConfig>,
    sts: super::StsClient,
    fallback: aws_sdk_dynamodb::Client,
    cache: Arc<Mutex<HashMap<Uuid, (SystemTime, aws_sdk_dynamodb::Client)>>>,
}

impl std::fmt::Debug for TenantDataAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantDataAccess").field("role_arn", &self.role_arn).finish_non_exhaustive()
    }
}

impl TenantDataAccess {
    pub fn new(sdk: Arc<SdkConfig>, fallback: aws_sdk_dynamodb::Client) -> Self {
        Self {
            role_arn: std::env::var(ROLE_ENV).ok().filter(|v| !v.is_empty()),
            sts: super::StsClient::sharing(sdk.clone()),
            sdk,
            fallback,
            cache: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn is_scoped(&self) -> bool {
        self.role_arn.is_some()
    }

    /// A client that reads only `tenant`'s partitions.
    pub async fn dynamodb_for(&self, tenant: Uuid) -> AppResult<aws_sdk_dynamodb::Client> {
        let Some(role_arn) = &self.role_arn else {
            return Ok(self.fallback.clone());
        };
        let now = SystemTime::now();
        let cached = self
            .cache
            .lock()
            // A panic elsewhere mid-insert leaves a usable map.
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&tenant)
            .filter(|(expires, _)| *expires > now + RENEW_BEFORE)
            .map(|(_, client)| client.clone());
        if let Some(client) = cached {
            return Ok(client);
        }
        let assumed = self
            .sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(format!("t-{tenant}"))
            .duration_seconds(SESSION_SECONDS)
            .tags(
                aws_sdk_sts::types::Tag::builder()
                    .key(TENANT_TAG)
                    .value(tenant.to_string())
                    .build()
                    .map_err(AppError::internal)?,
            )
            .send()
            .await
            .map_err(|e| AppError::internal(anyhow::anyhow!("assuming the tenant data role: {e}")))?;
        let credentials = assumed
            .credentials
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("AssumeRole returned no credentials")))?;
        let expires = SystemTime::try_from(credentials.expiration).unwrap_or(now + Duration::from_secs(300));
        let provider = Credentials::new(
            credentials.access_key_id,
            credentials.secret_access_key,
            Some(credentials.session_token),
            Some(expires),
            "tenant-data-role",
        );
        let mut config = aws_sdk_dynamodb::config::Builder::from(self.sdk.as_ref()).credentials_provider(provider);
        if let Some(log) = CallLog::from_env() {
            let log = log.as_principal(LOG_PRINCIPAL, tenant);
            config.push_interceptor(aws_sdk_dynamodb::config::SharedInterceptor::new(log));
        }
        let client = aws_sdk_dynamodb::Client::from_conf(config.build());
        {
            let mut cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if cache.len() >= MAX_CACHED_TENANTS {
                cache.retain(|_, (expires, _)| *expires > now + RENEW_BEFORE);
                if cache.len() >= MAX_CACHED_TENANTS {
                    cache.clear();
                }
            }
            cache.insert(tenant, (expires, client.clone()));
        }
        Ok(client)
    }
}
