//! The SQS FIFO adapters: [`SqsEventQueue`] (the `EventQueue` port: verified Stripe events from
//! intake to worker) and [`SqsNotifier`] (the `Notifier` port). For the event queue, one message group per Stripe customer keeps a customer's events in
//! order within the queue, and the event id as deduplication id drops Stripe's redeliveries
//! within SQS's five-minute window (the worker's processed-event record covers the rest).

use crate::domain::notifications::Notification;
use crate::ports::notifier::Notifier;
use crate::ports::queue::{EventQueue, QueueError, QueuedMessage};
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};

/// An SQS FIFO queue.
#[derive(Debug, Clone)]
pub struct SqsEventQueue {
    client: Client,
    url: String,
}

impl SqsEventQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self { client, url: url.into() }
    }

    /// Checks that the queue answers (for health probes).
    pub async fn ping(&self) -> Result<(), QueueError> {
        self.client.get_queue_attributes().queue_url(&self.url).send().await.map(|_| ()).map_err(classify)
    }
}

fn classify<E, R>(err: SdkError<E, R>) -> QueueError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match err.code() {
        Some("InvalidParameterValue" | "InvalidMessageContents" | "MissingParameter") => {
            QueueError::Rejected(err.message().unwrap_or("invalid message").to_owned())
        }
        Some("ThrottlingException" | "RequestThrottled" | "KmsThrottled") => QueueError::Throttled(Box::new(err)),
        _ => QueueError::Unavailable(Box::new(err)),
    }
}

/// Sends one message to a FIFO queue; returns once SQS accepted it.
async fn send(client: &Client, url: &str, message: &QueuedMessage) -> Result<(), QueueError> {
    client
        .send_message()
        .queue_url(url)
        .message_group_id(&message.group)
        .message_deduplication_id(&message.dedup_id)
        .message_body(&message.body)
        .send()
        .await
        .map(|_| ())
        .map_err(classify)
}

#[async_trait]
impl EventQueue for SqsEventQueue {
    async fn enqueue(&self, message: &QueuedMessage) -> Result<(), QueueError> {
        send(&self.client, &self.url, message).await
    }
}

/// The notifications FIFO queue (group: the account, so one customer's mail keeps its order).
#[derive(Debug, Clone)]
pub struct SqsNotifier {
    client: Client,
    url: String,
}

impl SqsNotifier {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self { client, url: url.into() }
    }
}

#[async_trait]
impl Notifier for SqsNotifier {
    async fn notify(&self, notification: &Notification) -> Result<(), QueueError> {
        let body = serde_json::to_string(notification).map_err(|e| QueueError::Rejected(e.to_string()))?;
        let message = QueuedMessage {
            dedup_id: notification.id.chars().take(128).collect(),
            group: notification.account_id.clone(),
            body,
        };
        send(&self.client, &self.url, &message).await
    }
}
