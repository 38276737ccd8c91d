//! Lambda entry point of `ops`: wiring only.

use lambda_http::{Error, run, service_fn};
use std::sync::Arc;
use tollgate::edge::config::Env;
use tollgate::ports::clock::SystemClock;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let deps = ops::wire(&Env, &tollgate::adapters::aws::load().await, Arc::new(SystemClock))?;
    run(service_fn(|req| ops::handle(&deps, req))).await
}
