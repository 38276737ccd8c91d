//! The webhook worker in the local stack: polls the local events queue and hands each batch
//! to `tollgate::app::events::process`, the function the Lambda runs. Processed messages are deleted;
//! failed ones reappear after the visibility timeout and, after the template's
//! maxReceiveCount, move to the dead-letter queue by the queue's own redrive.

use crate::gateway::App;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use std::sync::Arc;
use std::time::Duration;
use tollgate::app::events::{Record, process};

/// The pause after an empty receive. The local server is single-threaded, so the worker
/// short-polls (a long poll would hold every other request back while it waits).
const IDLE_PAUSE: Duration = Duration::from_millis(200);

/// Polls `queue_url` until the task is dropped or aborted.
pub async fn run(app: Arc<App>, sqs: aws_sdk_sqs::Client, queue_url: String) {
    loop {
        match poll_once(&app, &sqs, &queue_url).await {
            Ok(0) => tokio::time::sleep(IDLE_PAUSE).await,
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(error = %err, "local worker could not poll the queue");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Receives one batch (without waiting), processes it, deletes what succeeded; answers
/// how many messages were received.
pub async fn poll_once(app: &App, sqs: &aws_sdk_sqs::Client, queue_url: &str) -> anyhow::Result<usize> {
    let received = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(0)
        .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await?;
    let messages = received.messages();
    let records: Vec<Record> = messages
        .iter()
        .map(|m| Record {
            message_id: m.message_id().unwrap_or_default().to_owned(),
            group: m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
                .cloned()
                .unwrap_or_default(),
            attempt: m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|n| n.parse().ok())
                .unwrap_or(1),
            body: m.body().unwrap_or_default().to_owned(),
        })
        .collect();
    let failed = process(&app.worker, &records, &tollgate::app::Never).await;
    for message in messages {
        if failed.iter().any(|id| Some(id.as_str()) == message.message_id()) {
            continue;
        }
        if let Some(handle) = message.receipt_handle() {
            sqs.delete_message().queue_url(queue_url).receipt_handle(handle).send().await?;
        }
    }
    Ok(messages.len())
}
