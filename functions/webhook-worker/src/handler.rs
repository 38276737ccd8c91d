//! The SQS handler: turns the batch into records, applies them through the core's event path
//! ([`tollgate::app::events::process`]) and reports only the failed message ids.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent};
use tollgate::app::events::{EventDeps, Record, process};
use tollgate::aws::SdkConfig;
use tollgate::billing::{Billing, StripeBilling};
use tollgate::config::{Source, WorkerConfig};
use tollgate::notify::{Notifier, SqsNotifier};
use tollgate::store::{AccountStore, DynamoStore, EventLog, SubscriptionStore};

/// The production dependencies, from the function's configuration in `src`.
pub fn wire(src: &impl Source, aws: &SdkConfig) -> Result<EventDeps<DynamoStore, StripeBilling, SqsNotifier>, Error> {
    tollgate::app::wire::event_deps(&WorkerConfig::load(src)?, aws)
}

/// The Lambda entry: processes the batch and reports only the failed messages.
pub async fn handle<S, B, N>(deps: &EventDeps<S, B, N>, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error>
where
    S: AccountStore + SubscriptionStore + EventLog,
    B: Billing,
    N: Notifier,
{
    let records: Vec<Record> = event
        .payload
        .records
        .into_iter()
        .map(|m| Record {
            group: m.attributes.get("MessageGroupId").cloned().unwrap_or_default(),
            message_id: m.message_id.unwrap_or_default(),
            body: m.body.unwrap_or_default(),
        })
        .collect();
    let mut response = SqsBatchResponse::default();
    for failed in process(deps, &records).await {
        let mut item = BatchItemFailure::default();
        item.item_identifier = failed;
        response.batch_item_failures.push(item);
    }
    Ok(response)
}
