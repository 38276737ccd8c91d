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
///
/// Lambda puts the region and the execution role's credentials in the environment
/// (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`). When they
/// are there, they are given to the loader directly, so it builds neither the region chain nor
/// the default credentials chain (profile files, web identity through STS, the container and
/// instance metadata endpoints) that a function never reaches. Anywhere else, the SDK's
/// standard chains decide.
pub async fn load() -> SdkConfig {
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(SharedHttpClient::new(LazyHttpsClient::default()));
    match lambda_environment(|name| std::env::var(name).ok()) {
        Some(region) => {
            loader
                .region(region)
                .credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new())
                .load()
                .await
        }
        None => loader.load().await,
    }
}

/// The region, when `var` holds both it and static credentials, as Lambda's environment does.
fn lambda_environment(var: impl Fn(&str) -> Option<String>) -> Option<aws_config::Region> {
    let set = |name: &str| var(name).filter(|value| !value.is_empty());
    let region = set("AWS_REGION").or_else(|| set("AWS_DEFAULT_REGION"))?;
    (set("AWS_ACCESS_KEY_ID").is_some() && set("AWS_SECRET_ACCESS_KEY").is_some())
        .then(|| aws_config::Region::new(region))
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

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn lambdas_environment_gives_the_region_and_static_credentials() {
        let lambda = [("AWS_REGION", "eu-west-1"), ("AWS_ACCESS_KEY_ID", "AKID"), ("AWS_SECRET_ACCESS_KEY", "s")];
        assert_eq!(lambda_environment(env(&lambda)), Some(aws_config::Region::new("eu-west-1")));
        let default_region =
            [("AWS_DEFAULT_REGION", "us-east-2"), ("AWS_ACCESS_KEY_ID", "AKID"), ("AWS_SECRET_ACCESS_KEY", "s")];
        assert_eq!(lambda_environment(env(&default_region)), Some(aws_config::Region::new("us-east-2")));
    }

    #[test]
    fn without_region_or_static_credentials_the_standard_chains_decide() {
        assert_eq!(lambda_environment(env(&[("AWS_ACCESS_KEY_ID", "AKID"), ("AWS_SECRET_ACCESS_KEY", "s")])), None);
        assert_eq!(lambda_environment(env(&[("AWS_REGION", "eu-west-1"), ("AWS_ACCESS_KEY_ID", "AKID")])), None);
        assert_eq!(lambda_environment(env(&[("AWS_REGION", "eu-west-1"), ("AWS_SECRET_ACCESS_KEY", "s")])), None);
        let empty = [("AWS_REGION", ""), ("AWS_ACCESS_KEY_ID", "AKID"), ("AWS_SECRET_ACCESS_KEY", "s")];
        assert_eq!(lambda_environment(env(&empty)), None);
    }

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
