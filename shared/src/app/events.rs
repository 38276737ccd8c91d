//! Applying Stripe events, exactly once each, whatever order they arrive in.
//!
//! An event is a trigger: the customer's subscriptions are read from Stripe (once per customer
//! per batch) and the snapshot is written under a version condition, so a snapshot older than
//! the stored one loses and the event counts as processed with no state effect. Facts from
//! the payload (disputes, refunds, payments) commit in the same transaction as the
//! processed-event record. Notifications are queued before that commit, so none is lost; the
//! mailer may see one twice after a crash and deduplicates by its id.

use crate::app::Settings;
use crate::app::refresh::{Snapshot, projection};
use crate::billing::{Billing, BillingError};
use crate::events::{CustomerRef, Incoming};
use crate::model::AccountId;
use crate::notify::{Kind, Notification, Notifier};
use crate::queue::QueueError;
use crate::store::{Account, AccountStore, ApplyOutcome, EventLog, ProcessedEvent, StoreError, SubscriptionStore};
use std::collections::{HashMap, HashSet};

/// What applying events needs.
pub struct EventDeps<S, B, N> {
    pub store: S,
    pub billing: B,
    pub notifier: N,
    pub settings: Settings,
}

/// Why an event could not be processed now (its message is retried, then dead-lettered).
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("malformed event: {0}")]
    Malformed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Billing(#[from] BillingError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// What processing one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// Processed; its snapshot was older than the stored state.
    Stale,
    /// Processed before: nothing done.
    Duplicate,
    /// Not an event Tollgate uses, or about no known account: recorded, nothing else.
    Ignored,
}

/// One queued message.
#[derive(Debug, Clone)]
pub struct Record {
    pub message_id: String,
    pub group: String,
    pub body: String,
}

/// The snapshots read during one batch, by customer: one Stripe read per customer per batch.
pub type Snapshots = HashMap<String, Snapshot>;

/// Processes records in order and answers the ids of those that failed. After a failure, the
/// rest of that message group is failed unprocessed, keeping the group's order; other groups
/// go on.
pub async fn process<S, B, N>(deps: &EventDeps<S, B, N>, records: &[Record]) -> Vec<String>
where
    S: AccountStore + SubscriptionStore + EventLog,
    B: Billing,
    N: Notifier,
{
    let mut snapshots = Snapshots::new();
    let mut failed_groups = HashSet::new();
    let mut failed = Vec::new();
    for record in records {
        if failed_groups.contains(&record.group) {
            failed.push(record.message_id.clone());
            continue;
        }
        match apply(deps, &record.body, &mut snapshots).await {
            Ok(outcome) => tracing::info!(message_id = %record.message_id, ?outcome, "event processed"),
            Err(err) => {
                tracing::error!(message_id = %record.message_id, error = %err, "event failed; it will be retried");
                failed_groups.insert(record.group.clone());
                failed.push(record.message_id.clone());
            }
        }
    }
    failed
}

/// Applies one event payload (already verified by the intake, or listed from Stripe by the
/// sync): classify, find the account, refresh, record facts, notify, commit.
pub async fn apply<S, B, N>(
    deps: &EventDeps<S, B, N>,
    body: &str,
    snapshots: &mut Snapshots,
) -> Result<Outcome, EventError>
where
    S: AccountStore + SubscriptionStore + EventLog,
    B: Billing,
    N: Notifier,
{
    let event = Incoming::parse(body).map_err(|e| EventError::Malformed(e.to_string()))?;
    let span = tracing::info_span!("event", event_id = %event.id, event_type = %event.event_type);
    let _entered = span.enter();
    if deps.store.processed(&event.id).await?.is_some() {
        return Ok(Outcome::Duplicate);
    }
    let settings = &deps.settings;
    let record = |outcome: &str| ProcessedEvent {
        event_id: event.id.clone(),
        event_type: event.event_type.clone(),
        created: event.created,
        outcome: outcome.to_owned(),
        processed_at: settings.clock.now(),
    };
    let ignore = |outcome: &'static str| async move {
        deps.store.apply(&record(outcome), None, None).await?;
        Ok::<_, EventError>(Outcome::Ignored)
    };
    let Some(kind) = event.kind() else { return ignore("ignored").await };
    let customer = match event.customer() {
        CustomerRef::Customer(id) => id,
        CustomerRef::Charge(charge) => match deps.billing.charge_customer(&charge).await? {
            Some(id) => id,
            None => return ignore("no_customer").await,
        },
        CustomerRef::None => return ignore("no_customer").await,
    };
    let Some(account) = account_for(&deps.store, settings, &customer, event.account_hint().as_deref()).await? else {
        return ignore("unlinked").await;
    };
    tracing::info!(account_id = %account, "applying");

    if event.deletes_customer() {
        // Idempotent, so it runs before the record: a crash in between is redone on redelivery.
        deps.store.delete_account_data(&account, Some(&customer)).await?;
        deps.store.apply(&record("customer_deleted"), None, None).await?;
        return Ok(Outcome::Applied);
    }

    let snapshot = match snapshots.get(&customer) {
        Some(snapshot) => snapshot.clone(),
        None => {
            let snapshot = Snapshot::read(&deps.billing, settings, &customer).await?;
            snapshots.insert(customer.clone(), snapshot.clone());
            snapshot
        }
    };
    let (state, _) = projection(&deps.store, settings, &account, &customer, &snapshot).await?;
    let period_end = state.as_ref().and_then(|s| s.current_period_end);
    let facts = match event.fact(period_end) {
        Some(fact) => {
            let mut facts = deps.store.facts(&account).await?;
            facts.apply(&fact, settings.grace_days);
            Some(facts)
        }
        None => None,
    };
    if let Some(notice) = kind.notice {
        deps.notifier.notify(&notification(&event, notice, &account, &customer)).await?;
    }
    let outcome = deps.store.apply(&record("processed"), state.as_ref(), facts.as_ref().map(|f| (&account, f))).await?;
    Ok(match outcome {
        ApplyOutcome::Applied => Outcome::Applied,
        ApplyOutcome::Stale => Outcome::Stale,
        ApplyOutcome::Duplicate => Outcome::Duplicate,
    })
}

/// The account of a customer: from the customer index, else from the account id Tollgate put
/// on a Stripe object (`hint`), and then the link is recorded, once. `None` for a customer
/// Tollgate never linked (not one of the product's accounts).
pub async fn account_for<S: AccountStore>(
    store: &S,
    settings: &Settings,
    customer: &str,
    hint: Option<&str>,
) -> Result<Option<AccountId>, StoreError> {
    if let Some(account) = store.account_for_customer(customer).await? {
        return Ok(Some(account));
    }
    let Some(hint) = hint.and_then(|h| AccountId::parse(h).ok()) else {
        return Ok(None);
    };
    let link = Account { account_id: hint.clone(), customer_id: customer.to_owned(), created_at: settings.clock.now() };
    match store.link_customer(&link).await {
        Ok(()) => Ok(Some(hint)),
        // Linked meanwhile (by checkout, or a racing event): the index is the truth.
        Err(StoreError::Conflict(_)) => store.account_for_customer(customer).await,
        Err(err) => Err(err),
    }
}

fn notification(event: &Incoming, kind: Kind, account: &AccountId, customer: &str) -> Notification {
    let object_id = event.object_id();
    Notification {
        id: format!("{}:{object_id}", kind.as_str()),
        kind,
        account_id: account.to_string(),
        customer_id: customer.to_owned(),
        event_id: event.id.clone(),
        event_type: event.event_type.clone(),
        occurred_at: event.created,
        object_id,
        details: event.notification_details(),
    }
}
