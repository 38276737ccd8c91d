//! Lambda entry point of `subscription`: wiring only.

use lambda_http::{Error, run, service_fn};
use subscription::Deps;
use tollgate::config::{Env, SubscriptionConfig};
use tollgate::store::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = SubscriptionConfig::load(&Env)?;
    let aws = tollgate::aws::load().await;
    let store = DynamoStore::new(tollgate::aws::dynamodb(&aws), config.table_name);
    let deps = Deps::new(store, config.identity)?;
    run(service_fn(|req| subscription::handle(&deps, req))).await
}
