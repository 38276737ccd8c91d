//! `tollgate-dev sync` and `tollgate-dev status`: ask the running local stack.

use anyhow::{Context, Result, bail};

fn base(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

fn not_running(base: &str) -> String {
    format!("the local stack is not running at {base}: start it with `make dev`")
}

/// Runs one sync in the running stack and prints its outcome; fails when the run failed.
pub async fn sync(port: u16, full: bool) -> Result<()> {
    let base = base(port);
    let mode = if full { "full" } else { "replay" };
    let response = reqwest::Client::new()
        .post(format!("{base}/_dev/sync?mode={mode}"))
        .send()
        .await
        .with_context(|| not_running(&base))?;
    let ok = response.status().is_success();
    let body: serde_json::Value = response.json().await.context("reading the sync's answer")?;
    println!("{}", serde_json::to_string_pretty(&body)?);
    if !ok {
        bail!("the sync failed: {}", body["error"].as_str().unwrap_or("see above"));
    }
    Ok(())
}

/// Prints the running stack's health, with the last sync's outcome.
pub async fn status(port: u16) -> Result<()> {
    let base = base(port);
    let response = reqwest::get(format!("{base}/health")).await.with_context(|| not_running(&base))?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.context("reading /health")?;
    println!("{}", serde_json::to_string_pretty(&body)?);
    if !status.is_success() {
        bail!("the local stack is unhealthy ({status})");
    }
    Ok(())
}
