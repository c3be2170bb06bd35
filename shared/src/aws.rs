//! AWS clients, built once per cold start from one `SdkConfig`. `AWS_ENDPOINT_URL`
//! (read by aws-config itself) points every client at the local emulator.

use aws_config::{BehaviorVersion, SdkConfig};

#[derive(Clone, Debug)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub eventbridge: aws_sdk_eventbridge::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
}

fn local_mode() -> bool {
    std::env::var("LOCAL_MODE").is_ok_and(|v| v == "true" || v == "1")
}

pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

impl AwsClients {
    pub fn new(sdk: &SdkConfig) -> Self {
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            eventbridge: aws_sdk_eventbridge::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            // moto serves buckets on its own host only (path-style URLs).
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(sdk).force_path_style(local_mode()).build(),
            ),
        }
    }
}
