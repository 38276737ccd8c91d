//! Lambda entry point of `webhook-intake`: wiring only.

use lambda_http::{Error, run, service_fn};
use tollgate::config::{Env, WebhookIntakeConfig};
use tollgate::queue::SqsEventQueue;
use webhook_intake::Deps;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = WebhookIntakeConfig::load(&Env)?;
    let aws = tollgate::aws::load().await;
    let queue = SqsEventQueue::new(tollgate::aws::sqs(&aws), config.events_queue_url);
    let deps = Deps::new(queue, config.secrets, config.livemode);
    run(service_fn(|req| webhook_intake::handle(&deps, req))).await
}
