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
    /// Built at cold start: every function reads the store on its first
    /// request.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// The clients below are built on first use (a client's construction is
    /// about 0.1 ms of a cold start, and most functions never call most of
    /// these services; docs/performance.md, "Levers").
    pub eventbridge: EventBridgeClient,
    pub sqs: SqsClient,
    pub s3: S3Client,
    /// Only two functions send mail, and only on a few routes.
    pub ses: SesClient,
    /// Step Functions, for the workflows function and its worker only.
    pub sfn: SfnClient,
    /// EventBridge Scheduler (tenant schedules).
    pub scheduler: SchedulerClient,
    /// Secrets Manager: the platform's keys, read once at cold start
    /// (`crate::keys`).
    pub secrets: SecretsClient,
    /// Tenant-scoped DynamoDB clients (`tenant_data`).
    pub tenant_data: tenant_data::TenantDataAccess,
    /// What the clients were made from, for a client of a service only one
    /// function calls (the AI worker's Bedrock): the copy the lazy clients
    /// share.
    pub sdk_config: Arc<SdkConfig>,
}

/// A client made on first use from the cold start's `SdkConfig` (no
/// network call either way; the client's first request opens the
/// connection). It derefs to the SDK's client, as `std::sync::LazyLock`
/// derefs to its value, so call sites read like the client itself.
macro_rules! lazy_client {
    ($(#[$doc:meta])* $name:ident, $sdk:ident $(, $configure:expr)?) => {
        $(#[$doc])*
        // A clone is two reference counts: handlers' state is cloned for
        // every request, and an `SdkConfig` is some twenty fields.
        #[derive(Clone, Debug)]
        pub struct $name {
            sdk: Arc<SdkConfig>,
            client: Arc<OnceLock<$sdk::Client>>,
        }

        impl $name {
            pub fn new(sdk: &SdkConfig) -> Self {
                Self::sharing(Arc::new(sdk.clone()))
            }

            /// Made from a config other clients share (one copy per cold start).
            pub fn sharing(sdk: Arc<SdkConfig>) -> Self {
                Self { sdk, client: Arc::new(OnceLock::new()) }
            }

            pub fn client(&self) -> &$sdk::Client {
                self.client.get_or_init(|| {
                    let config = $sdk::config::Builder::from(self.sdk.as_ref());
                    $(let config = ($configure)(config);)?
                    let mut config = config;
                    if let Some(log) = call_log::CallLog::from_env() {
                        config.push_interceptor($sdk::config::SharedInterceptor::new(log));
                    }
                    $sdk::Client::from_conf(config.build())
                })
            }
        }

        impl std::ops::Deref for $name {
            type Target = $sdk::Client;

            fn deref(&self) -> &$sdk::Client {
                self.client()
            }
        }
    };
}

lazy_client!(
    /// EventBridge (the admin health check; events are published by the
    /// outbox pipe, not by handlers).
    EventBridgeClient,
    aws_sdk_eventbridge
);
lazy_client!(
    /// SQS (workers' follow-up messages, sync runs).
    SqsClient,
    aws_sdk_sqs
);
lazy_client!(
    /// S3 (photos, results, exports, invoices).
    S3Client,
    aws_sdk_s3,
    // moto serves buckets on its own host only (path-style URLs).
    |config: aws_sdk_s3::config::Builder| config.force_path_style(local_mode())
);
lazy_client!(
    /// STS (tenant-scoped credentials, `tenant_data`).
    StsClient,
    aws_sdk_sts
);
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
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(client) = https_client() {
        loader = loader.http_client(client);
    }
    // Lambda puts the function's region and its role's credentials in the
    // environment, where the default chains look first. Naming the two
    // providers skips building the rest of both chains (profile files, web
    // identity, the container and IMDS clients): about 0.2 ms of every cold
    // start (docs/performance.md, "Levers"). Anywhere else (tools, a
    // developer's profile) the default chains run as before.
    if let Some(region) = lambda_style_environment() {
        loader = loader
            .region(aws_config::Region::new(region))
            .credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new());
    }
    loader.load().await
}

/// The region, when the environment also holds credentials (the first
/// source both default chains would pick).
fn lambda_style_environment() -> Option<String> {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    if !(set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY")) {
        return None;
    }
    ["AWS_REGION", "AWS_DEFAULT_REGION"].iter().find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
}

/// The five Amazon Trust Services roots every AWS endpoint chains to
/// (Amazon Root CA 1-4 and Starfield Services Root G2, valid to 2037-2040).
const AWS_ROOTS_PEM: &str = include_str!("aws/amazon-trust-services-roots.pem");

/// The SDK's default client loads the system's certificate store (about 150
/// roots, read and parsed from /etc/ssl/certs) in every cold start; AWS's
/// endpoints need five. An operator who sets `AWS_CA_BUNDLE` (a TLS-inspecting
/// proxy, a local emulator behind its own CA) gets the default client and its
/// system store instead.
fn https_client() -> Option<aws_smithy_runtime_api::client::http::SharedHttpClient> {
    if std::env::var_os("AWS_CA_BUNDLE").is_some() {
        return None;
    }
    Some(aws_roots_client())
}

fn aws_roots_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::{
        Builder,
        tls::{Provider, TlsContext, TrustStore, rustls_provider::CryptoMode},
    };
    let roots = TrustStore::empty().with_native_roots(false).with_pem_certificate(AWS_ROOTS_PEM.as_bytes());
    // `build` only stores the PEM; it is parsed when the client makes its
    // first connector (the unit test below goes that far).
    let context = TlsContext::builder().with_trust_store(roots).build().unwrap_or_default();
    Builder::new().tls_provider(Provider::Rustls(CryptoMode::AwsLc)).tls_context(context).build_https()
}

impl AwsClients {
    pub fn new(sdk: &SdkConfig) -> Self {
        let mut dynamodb = aws_sdk_dynamodb::config::Builder::from(sdk);
        if let Some(log) = call_log::CallLog::from_env() {
            dynamodb.push_interceptor(aws_sdk_dynamodb::config::SharedInterceptor::new(log));
        }
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(dynamodb.build());
        let shared = Arc::new(sdk.clone());
        Self {
            tenant_data: tenant_data::TenantDataAccess::new(shared.clone(), dynamodb.clone()),
            dynamodb,
            eventbridge: EventBridgeClient::sharing(shared.clone()),
            sqs: SqsClient::sharing(shared.clone()),
            s3: S3Client::sharing(shared.clone()),
            ses: SesClient::sharing(shared.clone()),
            sfn: SfnClient::sharing(shared.clone()),
            scheduler: SchedulerClient::sharing(shared.clone()),
            secrets: SecretsClient::sharing(shared.clone()),
            sdk_config: shared,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client parses the PEM when it makes its connector, and panics on a
    /// bad one: a call to a closed local port goes that far and fails cleanly.
    #[tokio::test]
    async fn a_client_trusting_the_bundled_aws_roots_is_built_and_dispatches() {
        assert_eq!(AWS_ROOTS_PEM.matches("-----BEGIN CERTIFICATE-----").count(), 5);
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("id", "secret", None, None, "test"))
            .endpoint_url("http://127.0.0.1:9")
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
            .http_client(aws_roots_client())
            .build();
        let err = aws_sdk_dynamodb::Client::from_conf(config).list_tables().send().await.expect_err("nothing listens");
        assert!(matches!(err, aws_sdk_dynamodb::error::SdkError::DispatchFailure(_)), "{err:?}");
    }
}
