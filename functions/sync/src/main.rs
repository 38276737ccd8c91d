//! Lambda entry point of `sync`: wiring only.

use lambda_runtime::{Error, run, service_fn};
use std::time::Duration;
use sync::Deps;
use tollgate::billing::StripeBilling;
use tollgate::config::{Env, WorkerConfig};
use tollgate::notify::SqsNotifier;
use tollgate::store::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = WorkerConfig::load(&Env)?;
    let aws = tollgate::aws::load().await;
    let store = DynamoStore::new(tollgate::aws::dynamodb(&aws), config.table_name.clone());
    let notifier = SqsNotifier::new(tollgate::aws::sqs(&aws), config.notifications_queue_url.clone());
    let worker = webhook_worker::Deps::new(store, StripeBilling::new(&config.stripe)?, notifier, config.grace_days)?;
    let deps = Deps { worker, pacing: Duration::from_millis(100) };
    run(service_fn(|event| sync::handle(&deps, event))).await
}
