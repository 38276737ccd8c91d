//! The SQS handler: turns the batch into records, applies them through the core's event path
//! ([`tollgate::app::events::process`]) and reports only the failed message ids.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent};
use std::sync::Arc;
use std::time::Duration;
use tollgate::adapters::aws::SdkConfig;
use tollgate::adapters::dynamo::DynamoStore;
use tollgate::adapters::sqs::SqsNotifier;
use tollgate::adapters::stripe::StripeBilling;
use tollgate::app::Before;
use tollgate::app::events::{EventDeps, Record, process};
use tollgate::edge::config::{Source, WorkerConfig};
use tollgate::ports::accounts::AccountStore;
use tollgate::ports::billing::Billing;
use tollgate::ports::clock::Clock;
use tollgate::ports::credits::CreditStore;
use tollgate::ports::events::EventLog;
use tollgate::ports::invoices::InvoiceStore;
use tollgate::ports::notifier::Notifier;
use tollgate::ports::subscriptions::SubscriptionStore;

/// The production dependencies, from the function's configuration in `src`.
pub fn wire(
    src: &impl Source,
    aws: &SdkConfig,
    clock: Arc<dyn Clock>,
) -> Result<EventDeps<DynamoStore, StripeBilling, SqsNotifier>, Error> {
    tollgate::edge::wire::event_deps(&WorkerConfig::load(src)?, aws, clock)
}

/// Records are started only while this much of the invocation is left: enough for one
/// record's Stripe calls at their worst (the template test holds the Stripe timeouts to it).
/// Records not started are reported failed and come back on the next receive.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(75);

/// The Lambda entry: processes the batch and reports only the messages to retry.
pub async fn handle<S, B, N>(deps: &EventDeps<S, B, N>, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error>
where
    S: AccountStore + SubscriptionStore + EventLog + CreditStore + InvoiceStore,
    B: Billing,
    N: Notifier,
{
    let deadline = Before::margin_before(event.context.deadline(), DEADLINE_MARGIN);
    let records: Vec<Record> = event
        .payload
        .records
        .into_iter()
        .map(|m| Record {
            group: m.attributes.get("MessageGroupId").cloned().unwrap_or_default(),
            attempt: m.attributes.get("ApproximateReceiveCount").and_then(|n| n.parse().ok()).unwrap_or(1),
            message_id: m.message_id.unwrap_or_default(),
            body: m.body.unwrap_or_default(),
        })
        .collect();
    let mut response = SqsBatchResponse::default();
    for failed in process(deps, &records, &deadline).await {
        let mut item = BatchItemFailure::default();
        item.item_identifier = failed;
        response.batch_item_failures.push(item);
    }
    Ok(response)
}
