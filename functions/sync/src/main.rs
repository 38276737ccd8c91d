//! Lambda entry point of `sync`: wiring only.

use lambda_runtime::{Error, run, service_fn};
use std::sync::Arc;
use tollgate::edge::config::Env;
use tollgate::ports::clock::SystemClock;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let deps = sync::wire(&Env, &tollgate::adapters::aws::load().await, Arc::new(SystemClock))?;
    run(service_fn(|event| sync::handle(&deps, event))).await
}
