//! The `EventQueue` port: verified Stripe events on their way from intake to worker. Its
//! adapter is `adapters::sqs::SqsEventQueue`.

use async_trait::async_trait;

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

/// A message taken from a dead-letter queue, hidden from other receivers while it is moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub body: String,
    /// Its FIFO message group, kept when it goes back.
    pub group: String,
    /// What removes it from the dead-letter queue (SQS's receipt handle).
    pub receipt: String,
}

/// A dead-letter queue and the queue its messages came from (the operator's redrive).
#[async_trait]
pub trait DeadLetters: Send + Sync {
    /// Up to `max` (at most 10, SQS's batch) messages of the dead-letter queue, without
    /// waiting; empty when it holds none to take.
    async fn take(&self, max: usize) -> Result<Vec<DeadLetter>, QueueError>;

    /// Sends `letter` back to its source queue (its group, a fresh deduplication id: the
    /// original one may still be in SQS's five-minute window), then deletes it from the
    /// dead-letter queue. A failure in between leaves it in both: its handlers are idempotent.
    async fn send_back(&self, letter: &DeadLetter) -> Result<(), QueueError>;
}
