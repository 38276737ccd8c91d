//! Connecting to the local DynamoDB/SQS server (moto's server mode): SDK configuration with a
//! loopback endpoint and dummy credentials, and a reachability check that fails with a message
//! saying how to start the server.

use anyhow::{Result, bail};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use std::time::Duration;

/// The local server's default port (`MOTO_PORT` overrides it).
pub const DEFAULT_MOTO_PORT: u16 = 4566;

/// The local endpoint: `AWS_ENDPOINT_URL` if set, else `http://127.0.0.1:$MOTO_PORT`.
pub fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
        let port = std::env::var("MOTO_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(DEFAULT_MOTO_PORT);
        format!("http://127.0.0.1:{port}")
    })
}

/// SDK configuration for the local server at `endpoint`. Nothing here can reach AWS.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tollgate-local"))
        .load()
        .await
}

fn host_port(endpoint: &str) -> Option<String> {
    let rest = endpoint.split("://").nth(1)?;
    Some(rest.split('/').next()?.to_owned())
}

/// Whether something accepts TCP connections at `endpoint`.
pub async fn reachable(endpoint: &str) -> bool {
    let Some(addr) = host_port(endpoint) else { return false };
    matches!(tokio::time::timeout(Duration::from_millis(500), tokio::net::TcpStream::connect(addr)).await, Ok(Ok(_)))
}

/// The SDK configuration for the local server, or an error saying how to start it.
pub async fn require_server() -> Result<SdkConfig> {
    let endpoint = endpoint();
    if !reachable(&endpoint).await {
        bail!(
            "the local DynamoDB/SQS server is not reachable at {endpoint}. Start it with `make moto` \
             (or run the whole suite with `make test`, which starts it), or point AWS_ENDPOINT_URL at one."
        );
    }
    Ok(sdk_config(&endpoint).await)
}

/// Waits until `endpoint` accepts connections, up to `timeout`.
pub async fn wait_for(endpoint: &str, timeout: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if reachable(endpoint).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("nothing answered at {endpoint} within {timeout:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_is_taken_from_the_url() {
        assert_eq!(host_port("http://127.0.0.1:4566").as_deref(), Some("127.0.0.1:4566"));
        assert_eq!(host_port("http://localhost:5000/x").as_deref(), Some("localhost:5000"));
        assert_eq!(host_port("nonsense"), None);
    }
}
