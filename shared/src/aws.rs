//! AWS clients, built once per cold start from one `SdkConfig`. `AWS_ENDPOINT_URL`
//! (read by aws-config itself) points every client at the local emulator.
//!
//! - [`call_log`]: with `AWS_CALL_LOG` set, every client logs the calls it makes
//!   for a function (read by the IAM check of tests/registry.rs).

use std::sync::{Arc, OnceLock};

use aws_config::{BehaviorVersion, SdkConfig};

pub mod call_log;
pub mod tenant_data;

#[derive(Clone, Debug)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub eventbridge: aws_sdk_eventbridge::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
    /// Only two functions send mail, and only on a few routes: built on the
    /// first send, not at every function's cold start.
    pub ses: SesClient,
    /// Step Functions, for the workflows function and its worker only:
    /// built on first use like SES.
    pub sfn: SfnClient,
    /// EventBridge Scheduler (tenant schedules), built on first use too.
    pub scheduler: SchedulerClient,
    /// Secrets Manager: the platform's keys, read once at cold start
    /// (`crate::keys`).
    pub secrets: SecretsClient,
    /// Tenant-scoped DynamoDB clients (`tenant_data`).
    pub tenant_data: tenant_data::TenantDataAccess,
    /// What the clients were made from, for a client of a service only one
    /// function calls (the AI worker's Bedrock).
    pub sdk_config: SdkConfig,
}

/// A client made on first use from the cold start's `SdkConfig` (no
/// network call either way; the client's first request opens the
/// connection): the services only a few functions call.
macro_rules! lazy_client {
    ($(#[$doc:meta])* $name:ident, $sdk:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $name {
            sdk: SdkConfig,
            client: Arc<OnceLock<$sdk::Client>>,
        }

        impl $name {
            pub fn new(sdk: &SdkConfig) -> Self {
                Self { sdk: sdk.clone(), client: Arc::new(OnceLock::new()) }
            }

            pub fn client(&self) -> &$sdk::Client {
                self.client.get_or_init(|| {
                    let mut config = $sdk::config::Builder::from(&self.sdk);
                    if let Some(log) = call_log::CallLog::from_env() {
                        config.push_interceptor($sdk::config::SharedInterceptor::new(log));
                    }
                    $sdk::Client::from_conf(config.build())
                })
            }
        }
    };
}

lazy_client!(
    /// EventBridge Scheduler (tenant schedules).
    SchedulerClient,
    aws_sdk_scheduler
);
lazy_client!(
    /// Step Functions (workflow executions).
    SfnClient,
    aws_sdk_sfn
);
lazy_client!(
    /// Secrets Manager (the key rings of `crate::keys`).
    SecretsClient,
    aws_sdk_secretsmanager
);
lazy_client!(
    /// SES v2 (account mail).
    SesClient,
    aws_sdk_sesv2
);

fn local_mode() -> bool {
    std::env::var("LOCAL_MODE").is_ok_and(|v| v == "true" || v == "1")
}

pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

impl AwsClients {
    pub fn new(sdk: &SdkConfig) -> Self {
        let log = call_log::CallLog::from_env();
        let mut dynamodb = aws_sdk_dynamodb::config::Builder::from(sdk);
        let mut eventbridge = aws_sdk_eventbridge::config::Builder::from(sdk);
        let mut sqs = aws_sdk_sqs::config::Builder::from(sdk);
        // moto serves buckets on its own host only (path-style URLs).
        let mut s3 = aws_sdk_s3::config::Builder::from(sdk).force_path_style(local_mode());
        if let Some(log) = log {
            dynamodb.push_interceptor(aws_sdk_dynamodb::config::SharedInterceptor::new(log.clone()));
            eventbridge.push_interceptor(aws_sdk_eventbridge::config::SharedInterceptor::new(log.clone()));
            sqs.push_interceptor(aws_sdk_sqs::config::SharedInterceptor::new(log.clone()));
            s3.push_interceptor(aws_sdk_s3::config::SharedInterceptor::new(log));
        }
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(dynamodb.build());
        Self {
            tenant_data: tenant_data::TenantDataAccess::new(sdk, dynamodb.clone()),
            dynamodb,
            eventbridge: aws_sdk_eventbridge::Client::from_conf(eventbridge.build()),
            sqs: aws_sdk_sqs::Client::from_conf(sqs.build()),
            s3: aws_sdk_s3::Client::from_conf(s3.build()),
            ses: SesClient::new(sdk),
            sfn: SfnClient::new(sdk),
            scheduler: SchedulerClient::new(sdk),
            secrets: SecretsClient::new(sdk),
            sdk_config: sdk.clone(),
        }
    }
}
