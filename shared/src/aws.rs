//! AWS SDK configuration, loaded once per cold start. Local endpoints come through the SDK's
//! standard `AWS_ENDPOINT_URL` (and `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_SQS`).
//!
//! The HTTPS client is built on the first request rather than at cold start: the SDK's default
//! client loads and parses the system's certificate store when a service client is constructed
//! (before any request needs it), which was most of a function's init time (`bench/REPORT.md`);
//! many invocations never call AWS at all (the intake's rejections and ignored events, the
//! authorizer's refusals without a key, an empty batch).

pub use aws_config::SdkConfig;
use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use std::sync::OnceLock;

/// The SDK configuration from the environment (region, credentials, endpoints).
pub async fn load() -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(SharedHttpClient::new(LazyHttpsClient::default()))
        .load()
        .await
}

/// The SDK's default HTTPS client, built when the first request asks for a connector.
#[derive(Debug, Default)]
struct LazyHttpsClient(OnceLock<SharedHttpClient>);

impl HttpClient for LazyHttpsClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        self.0.get_or_init(default_https_client).http_connector(settings, components)
    }
}

/// What `aws-smithy-runtime` builds by default (hyper 1, rustls with aws-lc, the system's trust
/// store, proxies from the environment), minus its eager connector at client construction.
fn default_https_client() -> SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    use aws_smithy_http_client::{Builder, ConnectorBuilder, proxy::ProxyConfig};
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector = ConnectorBuilder::default().tls_provider(Provider::Rustls(CryptoMode::AwsLc));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

pub fn dynamodb(config: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(config)
}

pub fn sqs(config: &SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn the_lazy_client_sends_the_first_request() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "AKIDTEST",
                "not-a-secret",
                None,
                None,
                "test",
            ))
            .endpoint_url(endpoint)
            .http_client(SharedHttpClient::new(LazyHttpsClient::default()))
            .build();
        let client = aws_sdk_dynamodb::Client::from_conf(config);

        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = vec![0u8; 4096];
            let n = socket.read(&mut head).await.unwrap();
            socket.write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n").await.unwrap();
            String::from_utf8_lossy(&head[..n]).into_owned()
        });
        let _ = client.list_tables().send().await;

        assert!(server.await.unwrap().contains("DynamoDB_20120810.ListTables"));
    }
}
