//! Starting moto's server (installed by the Makefile into `.venv`) on loopback, as a child
//! process that dies with the local stack.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// A running moto server; killed when dropped.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

impl Moto {
    /// Starts moto's server on `127.0.0.1:port`, single-threaded (`scripts/moto_single.py`:
    /// transactions are isolated as in DynamoDB), and waits until it answers.
    pub async fn start(port: u16) -> Result<Self> {
        let binary = repo_root().join(".venv/bin/python");
        if !binary.exists() {
            bail!("{} is missing: run `make dev` (it installs moto into .venv)", binary.display());
        }
        let endpoint = format!("http://127.0.0.1:{port}");
        if super::local::reachable(&endpoint).await {
            bail!("port {port} is already in use; set MOTO_PORT, or AWS_ENDPOINT_URL to reuse a running server");
        }
        let child = Command::new(&binary)
            .arg(repo_root().join("scripts/moto_single.py"))
            .args(["127.0.0.1", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let moto = Self { child, endpoint };
        super::local::wait_for(&moto.endpoint, Duration::from_secs(30)).await.context("moto did not start")?;
        Ok(moto)
    }

    /// Stops the server and waits for it to exit.
    pub async fn stop(mut self) -> Result<()> {
        self.child.kill().await.context("stopping moto")
    }
}
