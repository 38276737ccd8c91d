//! The `Notifier` port: notifications for the product (`domain::notifications`) on their way
//! out. Its adapter is `adapters::sqs::SqsNotifier`; its double `testing::Outbox`.

use crate::domain::notifications::Notification;
use crate::ports::queue::QueueError;
use async_trait::async_trait;

/// Where notifications go.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Returns once the queue durably accepted the notification.
    async fn notify(&self, notification: &Notification) -> Result<(), QueueError>;
}
