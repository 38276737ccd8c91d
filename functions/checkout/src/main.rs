//! Lambda entry point of `checkout`: wiring only.

use checkout::Deps;
use lambda_http::{Error, run, service_fn};
use tollgate::billing::StripeBilling;
use tollgate::config::{CheckoutConfig, Env};
use tollgate::store::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = CheckoutConfig::load(&Env)?;
    let aws = tollgate::aws::load().await;
    let store = DynamoStore::new(tollgate::aws::dynamodb(&aws), config.table_name.clone());
    let billing = StripeBilling::new(&config.stripe)?;
    let deps = Deps::new(store, billing, &config)?;
    run(service_fn(|req| checkout::handle(&deps, req))).await
}
