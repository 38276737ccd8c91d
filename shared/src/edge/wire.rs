//! Production wiring: each use case's dependencies on the real adapters (DynamoDB, SQS,
//! Stripe), from its function's configuration. The Lambda `main`s and the local runner both
//! call these, so the local stack runs exactly what Lambda runs; each takes the clock its use
//! cases read (the system clock in Lambda, the local stack's clock locally).

use crate::adapters::aws::SdkConfig;
use crate::adapters::dynamo::DynamoStore;
use crate::adapters::sqs::{SqsDeadLetters, SqsNotifier};
use crate::adapters::stripe::StripeBilling;
use crate::app::Settings;
use crate::app::checkout::CheckoutDeps;
use crate::app::events::EventDeps;
use crate::app::ops::OpsDeps;
use crate::app::usage::UsageDeps;
use crate::domain::ratelimit::Limit;
use crate::edge::config::{CheckoutConfig, OpsConfig, UsageConfig, WorkerConfig};
use crate::ports::clock::Clock;
use std::sync::Arc;

/// Why dependencies could not be built (a configuration the adapters refuse).
pub type WireError = Box<dyn std::error::Error + Send + Sync>;

/// The table of `table_name`.
pub fn store(aws: &SdkConfig, table_name: &str) -> DynamoStore {
    DynamoStore::new(crate::adapters::aws::dynamodb(aws), table_name)
}

/// The event path (worker and sync).
pub fn event_deps(
    config: &WorkerConfig,
    aws: &SdkConfig,
    clock: Arc<dyn Clock>,
) -> Result<EventDeps<DynamoStore, StripeBilling, SqsNotifier>, WireError> {
    Ok(EventDeps {
        store: store(aws, &config.table_name),
        billing: StripeBilling::new(&config.stripe)?,
        notifier: SqsNotifier::new(crate::adapters::aws::sqs(aws), config.notifications_queue_url.clone()),
        settings: Settings::new(config.grace_days, clock)?,
    })
}

/// The `ops` function's dependencies.
pub fn ops_deps(
    config: &OpsConfig,
    aws: &SdkConfig,
    clock: Arc<dyn Clock>,
) -> Result<OpsDeps<DynamoStore, StripeBilling, SqsNotifier, SqsDeadLetters>, WireError> {
    let sqs = crate::adapters::aws::sqs(aws);
    Ok(OpsDeps {
        events: event_deps(&config.worker, aws, clock)?,
        events_dead_letters: SqsDeadLetters::new(
            sqs.clone(),
            &config.events_dead_letter_queue_url,
            &config.events_queue_url,
        ),
        notifications_dead_letters: SqsDeadLetters::new(
            sqs,
            &config.notifications_dead_letter_queue_url,
            &config.worker.notifications_queue_url,
        ),
        adopt_metadata_key: config.worker.adopt_metadata_key.clone(),
    })
}

/// The checkout use cases.
pub fn checkout_deps(
    config: &CheckoutConfig,
    aws: &SdkConfig,
    clock: Arc<dyn Clock>,
) -> Result<CheckoutDeps<DynamoStore, StripeBilling>, WireError> {
    let billing = StripeBilling::new(&config.stripe)?;
    Ok(CheckoutDeps {
        store: store(aws, &config.table_name),
        billing,
        settings: Settings::new(config.grace_days, clock)?,
        redirects: config.redirects.clone(),
        checkout_limit: Limit { limit: config.sessions_per_minute, window_ms: 60_000 },
        session_ttl_seconds: config.session_ttl_seconds,
    })
}

/// The metering use cases.
pub fn usage_deps(
    config: &UsageConfig,
    aws: &SdkConfig,
    clock: Arc<dyn Clock>,
) -> Result<UsageDeps<DynamoStore, SqsNotifier>, WireError> {
    Ok(UsageDeps {
        store: store(aws, &config.table_name),
        notifier: SqsNotifier::new(crate::adapters::aws::sqs(aws), config.notifications_queue_url.clone()),
        // Metering decides access from the stored `grace_until`; it computes no grace itself.
        settings: Settings::new(0, clock)?,
    })
}
