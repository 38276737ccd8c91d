//! Lambda entry point of `webhook-worker`: wiring only.

use lambda_runtime::{Error, run, service_fn};
use tollgate::billing::StripeBilling;
use tollgate::config::{Env, WorkerConfig};
use tollgate::notify::SqsNotifier;
use tollgate::store::DynamoStore;
use webhook_worker::Deps;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = WorkerConfig::load(&Env)?;
    let aws = tollgate::aws::load().await;
    let store = DynamoStore::new(tollgate::aws::dynamodb(&aws), config.table_name.clone());
    let billing = StripeBilling::new(&config.stripe)?;
    let notifier = SqsNotifier::new(tollgate::aws::sqs(&aws), config.notifications_queue_url.clone());
    let deps = Deps::new(store, billing, notifier, config.grace_days)?;
    run(service_fn(|event| webhook_worker::handle(&deps, event))).await
}
