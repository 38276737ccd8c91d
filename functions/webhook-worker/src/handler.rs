//! Applying a batch of Stripe events, exactly once each, whatever order they arrive in.
//!
//! An event is a trigger: the worker reads the customer's subscriptions from Stripe (once per
//! customer per batch) and writes that snapshot under a version condition, so a snapshot older
//! than the stored one loses and the event counts as processed with no state effect. Facts
//! from the payload (disputes, refunds, payments) commit in the same transaction as the
//! processed-event record. Notifications are queued before that commit, so none is lost; the
//! mailer may see one twice after a crash and deduplicates by its id.

use crate::event::{CustomerRef, Incoming};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tollgate::billing::{Billing, BillingError, RemoteSubscription};
use tollgate::clock::{Clock, SystemClock};
use tollgate::model::AccountId;
use tollgate::notify::{Kind, Notification, Notifier};
use tollgate::plans::{Catalogue, PlanError};
use tollgate::projection::{Context, project};
use tollgate::queue::QueueError;
use tollgate::store::{
    Account, AccountStore, ApplyOutcome, CheckoutStore, EventLog, ProcessedEvent, StoreError, SubscriptionStore,
};

/// What the worker needs.
pub struct Deps<S, B, N> {
    pub store: S,
    pub billing: B,
    pub notifier: N,
    pub catalogue: &'static Catalogue,
    pub clock: Arc<dyn Clock>,
    pub grace_days: u32,
}

impl<S, B, N> Deps<S, B, N> {
    pub fn new(store: S, billing: B, notifier: N, grace_days: u32) -> Result<Self, PlanError> {
        Ok(Self {
            store,
            billing,
            notifier,
            catalogue: Catalogue::builtin()?,
            clock: Arc::new(SystemClock),
            grace_days,
        })
    }
}

/// Why an event could not be processed now (its message is retried, then dead-lettered).
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
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

/// Stripe's subscriptions of one customer, and when they were read (Unix ms).
pub type Snapshots = HashMap<String, (Vec<RemoteSubscription>, i64)>;

/// The Lambda entry: processes the batch and reports only the failed messages.
pub async fn handle<S, B, N>(deps: &Deps<S, B, N>, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error>
where
    S: AccountStore + SubscriptionStore + EventLog + CheckoutStore,
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

/// Processes records in order and answers the ids of those that failed. After a failure, the
/// rest of that message group is failed unprocessed, keeping the group's order; other groups
/// go on.
pub async fn process<S, B, N>(deps: &Deps<S, B, N>, records: &[Record]) -> Vec<String>
where
    S: AccountStore + SubscriptionStore + EventLog + CheckoutStore,
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
/// sync).
pub async fn apply<S, B, N>(deps: &Deps<S, B, N>, body: &str, snapshots: &mut Snapshots) -> Result<Outcome, WorkerError>
where
    S: AccountStore + SubscriptionStore + EventLog + CheckoutStore,
    B: Billing,
    N: Notifier,
{
    let event: Incoming = serde_json::from_str(body).map_err(|e| WorkerError::Malformed(e.to_string()))?;
    let span = tracing::info_span!("event", event_id = %event.id, event_type = %event.event_type);
    let _entered = span.enter();
    if deps.store.processed(&event.id).await?.is_some() {
        return Ok(Outcome::Duplicate);
    }
    let record = |outcome: &str| ProcessedEvent {
        event_id: event.id.clone(),
        event_type: event.event_type.clone(),
        created: event.created,
        outcome: outcome.to_owned(),
        processed_at: deps.clock.now(),
    };
    let ignore = |outcome: &'static str| async move {
        deps.store.apply(&record(outcome), None, None).await?;
        Ok::<_, WorkerError>(Outcome::Ignored)
    };
    if !tollgate::events::is_handled(&event.event_type) {
        return ignore("ignored").await;
    }
    let customer = match event.customer() {
        CustomerRef::Customer(id) => id,
        CustomerRef::Charge(charge) => match deps.billing.charge_customer(&charge).await? {
            Some(id) => id,
            None => return ignore("no_customer").await,
        },
        CustomerRef::None => return ignore("no_customer").await,
    };
    let Some(account) = account_for(deps, &customer, event.account_hint().as_deref()).await? else {
        return ignore("unlinked").await;
    };
    tracing::info!(account_id = %account, "applying");

    if event.event_type == "customer.deleted" {
        // Idempotent, so it runs before the record: a crash in between is redone on redelivery.
        deps.store.delete_account_data(&account, Some(&customer)).await?;
        deps.store.apply(&record("customer_deleted"), None, None).await?;
        return Ok(Outcome::Applied);
    }

    let (subscriptions, version) = match snapshots.get(&customer) {
        Some(snapshot) => snapshot.clone(),
        None => {
            let subscriptions = deps.billing.subscriptions(&customer).await?;
            let snapshot = (subscriptions, deps.clock.now_ms());
            snapshots.insert(customer.clone(), snapshot.clone());
            snapshot
        }
    };
    let previous = deps.store.subscription(&account).await?;
    let ctx = Context { catalogue: deps.catalogue, version, now: deps.clock.now(), grace_days: deps.grace_days };
    let state = project(&account, &customer, &subscriptions, previous.as_ref(), ctx);
    let period_end = state.as_ref().and_then(|s| s.current_period_end);
    let facts = match event.fact(period_end) {
        Some(fact) => {
            let mut facts = deps.store.facts(&account).await?;
            facts.apply(&fact, deps.grace_days);
            Some(facts)
        }
        None => None,
    };
    if let Some(kind) = tollgate::events::kind_of(&event.event_type).and_then(|k| k.notice) {
        deps.notifier.notify(&notification(&event, kind, &account, &customer)).await?;
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
pub async fn account_for<S, B, N>(
    deps: &Deps<S, B, N>,
    customer: &str,
    hint: Option<&str>,
) -> Result<Option<AccountId>, StoreError>
where
    S: AccountStore,
{
    if let Some(account) = deps.store.account_for_customer(customer).await? {
        return Ok(Some(account));
    }
    let Some(hint) = hint.and_then(|h| AccountId::parse(h).ok()) else {
        return Ok(None);
    };
    let link = Account { account_id: hint.clone(), customer_id: customer.to_owned(), created_at: deps.clock.now() };
    match deps.store.link_customer(&link).await {
        Ok(()) => Ok(Some(hint)),
        // Linked meanwhile (by checkout, or a racing event): the index is the truth.
        Err(StoreError::Conflict(_)) => deps.store.account_for_customer(customer).await,
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
