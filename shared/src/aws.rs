//! AWS SDK configuration, loaded once per cold start. Local endpoints come through the SDK's
//! standard `AWS_ENDPOINT_URL` (and `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_SQS`).

pub use aws_config::SdkConfig;

/// The SDK configuration from the environment (region, credentials, endpoints).
pub async fn load() -> SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

pub fn dynamodb(config: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(config)
}

pub fn sqs(config: &SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(config)
}
