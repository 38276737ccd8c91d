//! `tollgate-dev create-key`: an API key for an account of the running local stack, made by
//! the real `keys` function (`POST /api-keys` with the development identity header).

use anyhow::{Context, Result, bail};

/// What `create-key` asks for.
#[derive(Debug, Clone)]
pub struct CreateKey {
    pub port: u16,
    pub account: String,
    pub name: String,
    /// `usage:read`, `subscription:read`; every scope when empty.
    pub scopes: Vec<String>,
    /// Unix seconds; none for a key that does not expire.
    pub expires_at: Option<i64>,
}

/// Creates the key and answers the stack's JSON answer, which holds the key (shown once).
pub async fn create_key(request: &CreateKey) -> Result<serde_json::Value> {
    let base = format!("http://127.0.0.1:{}", request.port);
    let scopes: Vec<String> = if request.scopes.is_empty() {
        tollgate::domain::apikeys::Scope::ALL.iter().map(|s| s.as_str().to_owned()).collect()
    } else {
        request.scopes.clone()
    };
    let body = serde_json::json!({ "name": request.name, "scopes": scopes, "expires_at": request.expires_at });
    let response = reqwest::Client::new()
        .post(format!("{base}/api-keys"))
        .header(crate::gateway::ACCOUNT_HEADER, &request.account)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("the local stack is not running at {base}: start it with `make dev`"))?;
    let status = response.status();
    let answer: serde_json::Value = response.json().await.context("reading the answer of POST /api-keys")?;
    if !status.is_success() {
        bail!("POST /api-keys answered {status}: {answer}");
    }
    Ok(answer)
}
