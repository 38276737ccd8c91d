//! The SQS FIFO adapters: [`SqsEventQueue`] (the `EventQueue` port: verified Stripe events from
//! intake to worker) and [`SqsNotifier`] (the `Notifier` port). For the event queue, one message group per Stripe customer keeps a customer's events in
//! order within the queue, and the event id as deduplication id drops Stripe's redeliveries
//! within SQS's five-minute window (the worker's processed-event record covers the rest).

use crate::domain::notifications::Notification;
use crate::ports::notifier::Notifier;
use crate::ports::queue::{DeadLetter, DeadLetters, EventQueue, QueueError, QueuedMessage};
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::MessageSystemAttributeName;

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

/// A FIFO dead-letter queue and its source queue, for the operator's redrive.
#[derive(Debug, Clone)]
pub struct SqsDeadLetters {
    client: Client,
    dead_letter_url: String,
    source_url: String,
}

impl SqsDeadLetters {
    pub fn new(client: Client, dead_letter_url: impl Into<String>, source_url: impl Into<String>) -> Self {
        Self { client, dead_letter_url: dead_letter_url.into(), source_url: source_url.into() }
    }
}

/// How long a taken message stays hidden in the dead-letter queue: time to send it back.
const TAKEN_FOR_SECONDS: i32 = 60;

#[async_trait]
impl DeadLetters for SqsDeadLetters {
    async fn take(&self, max: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let received = self
            .client
            .receive_message()
            .queue_url(&self.dead_letter_url)
            .max_number_of_messages(i32::try_from(max.clamp(1, 10)).unwrap_or(10))
            .wait_time_seconds(0)
            .visibility_timeout(TAKEN_FOR_SECONDS)
            .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
            .send()
            .await
            .map_err(classify)?;
        Ok(received
            .messages()
            .iter()
            .filter_map(|m| {
                Some(DeadLetter {
                    body: m.body()?.to_owned(),
                    group: m.attributes().and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))?.clone(),
                    receipt: m.receipt_handle()?.to_owned(),
                })
            })
            .collect())
    }

    async fn send_back(&self, letter: &DeadLetter) -> Result<(), QueueError> {
        let message = QueuedMessage {
            dedup_id: format!("redrive-{}", uuid::Uuid::new_v4()),
            group: letter.group.clone(),
            body: letter.body.clone(),
        };
        send(&self.client, &self.source_url, &message).await?;
        self.client
            .delete_message()
            .queue_url(&self.dead_letter_url)
            .receipt_handle(&letter.receipt)
            .send()
            .await
            .map(|_| ())
            .map_err(classify)
    }
}
