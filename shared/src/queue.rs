//! The `EventQueue` port (verified Stripe events on their way from intake to worker) and its
//! SQS FIFO adapter: one message group per Stripe customer keeps a customer's events in
//! order within the queue, and the event id as deduplication id drops Stripe's redeliveries
//! within SQS's five-minute window (the worker's processed-event record covers the rest).

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A message for the FIFO queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    /// Deduplication id (the Stripe event id).
    pub dedup_id: String,
    /// Message group (the Stripe customer, or the object the event is about).
    pub group: String,
    pub body: String,
}

/// What enqueueing can fail with.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// SQS refused the message itself (too large, bad attribute); retrying will not help.
    #[error("queue rejected the message: {0}")]
    Rejected(String),
    /// SQS asked us to slow down.
    #[error("queue throttled")]
    Throttled(#[source] BoxError),
    /// SQS could not be reached or failed.
    #[error("queue unavailable")]
    Unavailable(#[source] BoxError),
}

/// A durable FIFO queue.
#[async_trait]
pub trait EventQueue: Send + Sync {
    /// Returns only once the queue has durably accepted the message. A message with a
    /// deduplication id seen in the last five minutes is accepted and dropped by the queue.
    async fn enqueue(&self, message: &QueuedMessage) -> Result<(), QueueError>;
}

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
pub(crate) async fn send(client: &Client, url: &str, message: &QueuedMessage) -> Result<(), QueueError> {
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
