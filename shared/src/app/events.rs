//! Applying Stripe events, exactly once each, whatever order they arrive in.
//!
//! An event is a trigger: the customer's subscriptions are read from Stripe (once per customer
//! per batch) and the snapshot is written under a version condition, so a snapshot older than
//! the stored one loses and the event counts as processed with no state effect. Facts from
//! the payload (disputes, refunds, payments) commit in the same transaction as the
//! processed-event record. Notifications are queued before that commit, so none is lost; the
//! mailer may see one twice after a crash and deduplicates by its id.

use crate::app::Deadline;
use crate::app::Settings;
use crate::app::refresh::{Snapshot, projection};
use crate::app::retire::retire;
use crate::domain::events::{CustomerRef, Incoming, Malformed};
use crate::domain::facts::{Fact, Facts};
use crate::domain::model::{AccountId, Projection};
use crate::domain::notifications::{Kind, Notification};
use crate::domain::projection::current;
use crate::domain::snapshot::RemoteSubscription;
use crate::ports::StoreError;
use crate::ports::accounts::{Account, AccountStore, CustomerLink, Retirement};
use crate::ports::billing::{Billing, BillingError};
use crate::ports::credits::CreditStore;
use crate::ports::events::{ApplyOutcome, Effect, EventLog, FailedEvent, ProcessedEvent};
use crate::ports::invoices::InvoiceStore;
use crate::ports::metrics::{Metric, count};
use crate::ports::notifier::Notifier;
use crate::ports::queue::QueueError;
use crate::ports::subscriptions::SubscriptionStore;
use std::collections::HashMap;

/// The most Stripe calls applying one event makes, one after another: the charge of a dispute
/// or refund (its customer), the customer's subscriptions, a second subscription ended (its
/// cancellation, its latest invoice's payments and refund) and the subscriptions read again,
/// and the invoices a refunded charge paid. Ending more than one subscription in one event
/// takes 3 more each (never seen: a second is ended by the event that made it). The worker and
/// the sync stop starting events when less than this many calls at their worst, and a margin,
/// are left (`tests/tests/template.rs`).
pub const STRIPE_CALLS_PER_EVENT: u32 = 7;

/// What applying events needs.
pub struct EventDeps<S, B, N> {
    pub store: S,
    pub billing: B,
    pub notifier: N,
    pub settings: Settings,
}

/// Why an event could not be processed. `Malformed` never will be (the message is recorded
/// as failed and removed); the others are worth a retry (the message is retried, then
/// dead-lettered).
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("malformed event: {0}")]
    Malformed(#[from] Malformed),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Billing(#[from] BillingError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl EventError {
    /// Whether retrying can never help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Malformed(_))
    }
}

/// What processing one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// Processed; its snapshot was older than the stored state.
    Stale,
    /// Processed before: nothing done.
    Duplicate,
    /// Not an event Tollgate uses, or about no linked account: recorded, nothing else.
    Ignored,
}

/// One queued message.
#[derive(Debug, Clone)]
pub struct Record {
    pub message_id: String,
    pub group: String,
    pub body: String,
    /// Which delivery of the message this is (SQS's `ApproximateReceiveCount`; 1 the first).
    pub attempt: u32,
}

/// The snapshots read during one batch, by customer: one Stripe read per customer per batch.
pub type Snapshots = HashMap<String, Snapshot>;

/// Processes records in order and answers the ids of those to retry. The worker is
/// order-independent, so a failure holds nothing else back: each record stands alone. A
/// record that can never be processed is recorded as failed, counted for its alarm and
/// removed; one that failed for a transient cause is retried (then dead-lettered); records
/// not started when `deadline` expires are retried too.
pub async fn process<S, B, N>(deps: &EventDeps<S, B, N>, records: &[Record], deadline: &dyn Deadline) -> Vec<String>
where
    S: AccountStore + SubscriptionStore + EventLog + CreditStore + InvoiceStore,
    B: Billing,
    N: Notifier,
{
    let mut snapshots = Snapshots::new();
    let mut retry = Vec::new();
    for record in records {
        if deadline.expired() {
            retry.push(record.message_id.clone());
            continue;
        }
        let id = || event_id_in(&record.body).unwrap_or_else(|| format!("message:{}", record.message_id));
        match apply(deps, &record.body, &mut snapshots).await {
            Ok(outcome) => {
                tracing::info!(message_id = %record.message_id, ?outcome, "event processed");
                // A redelivery that went through: the failure recorded before is over.
                if record.attempt > 1
                    && let Err(err) = deps.store.resolve_failure(&id()).await
                {
                    tracing::warn!(message_id = %record.message_id, error = %err, "could not clear an event's failure record");
                }
            }
            Err(err) if err.is_permanent() => {
                if let Err(store) = pass_over(deps, &id(), event_type_in(&record.body).as_deref(), &err, "worker").await
                {
                    tracing::error!(message_id = %record.message_id, error = %store, "could not record a failed event; it will be retried");
                    retry.push(record.message_id.clone());
                }
            }
            Err(err) => {
                tracing::error!(message_id = %record.message_id, attempt = record.attempt, error = %err, "event failed; it will be retried");
                // Listed for the operator while it is retried (and after, if dead-lettered).
                if let Err(store) =
                    deps.store.record_failure(&failure(deps, &id(), event_type_in(&record.body), &err, "worker")).await
                {
                    tracing::error!(message_id = %record.message_id, error = %store, "could not record an event's failure");
                }
                retry.push(record.message_id.clone());
            }
        }
    }
    retry
}

/// The failure record of event `id`, failed now for `error`.
pub fn failure<S, B, N>(
    deps: &EventDeps<S, B, N>,
    id: &str,
    event_type: Option<String>,
    error: &EventError,
    source: &str,
) -> FailedEvent {
    FailedEvent {
        id: id.to_owned(),
        event_type,
        error: error.to_string(),
        failed_at: deps.settings.clock.now(),
        source: source.to_owned(),
    }
}

/// The `type` of a body that is JSON with a string `type`, if any.
pub fn event_type_in(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    value.get("type")?.as_str().filter(|t| crate::domain::events::is_id(t)).map(str::to_owned)
}

/// The `id` of a body that is JSON with a usable string `id`, if any.
fn event_id_in(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    value.get("id")?.as_str().filter(|id| crate::domain::events::is_queue_token(id)).map(str::to_owned)
}

/// Records that the event `id` was passed over for `error` and counts it for the alarm.
pub async fn pass_over<S, B, N>(
    deps: &EventDeps<S, B, N>,
    id: &str,
    event_type: Option<&str>,
    error: &EventError,
    source: &str,
) -> Result<(), StoreError>
where
    S: EventLog,
{
    deps.store.record_failure(&failure(deps, id, event_type.map(str::to_owned), error, source)).await?;
    count(Metric::EventsUnprocessable, 1);
    tracing::error!(event_id = %id, error = %error, source, "event passed over as unprocessable");
    Ok(())
}

/// Applies one event payload (already verified by the intake, or listed from Stripe by the
/// sync), in named steps: classify, find the customer and its account, the side records
/// (credit packs, invoices), the customer's deletion or its refreshed projection and facts,
/// the notification, and the commit with the event's record.
pub async fn apply<S, B, N>(
    deps: &EventDeps<S, B, N>,
    body: &str,
    snapshots: &mut Snapshots,
) -> Result<Outcome, EventError>
where
    S: AccountStore + SubscriptionStore + EventLog + CreditStore + InvoiceStore,
    B: Billing,
    N: Notifier,
{
    let event = Incoming::parse(body)?;
    let span = tracing::info_span!("event", event_id = %event.id, event_type = %event.event_type);
    let _entered = span.enter();
    if deps.store.processed(&event.id).await?.is_some() {
        return Ok(Outcome::Duplicate);
    }
    let log = Log { store: &deps.store, settings: &deps.settings, event: &event };
    let Some(kind) = event.kind() else { return log.ignore("ignored").await };
    let Some(customer) = customer_of(deps, &event).await? else { return log.ignore("no_customer").await };
    let account = match account_of(deps, snapshots, &event, &customer).await? {
        Some(CustomerLink::Linked(account)) => account,
        Some(CustomerLink::Retired(account)) => return apply_to_retired(deps, &log, &account, &customer).await,
        None => return log.ignore("unlinked").await,
    };
    tracing::info!(account_id = %account, "applying");
    // Credit packs: granted once by their session, reversed by a full refund of their charge;
    // the invoice an `invoice.*` event carries. Each is idempotent (and version-guarded), so
    // it runs before the event's record: a crash is redone on redelivery.
    crate::app::credits::apply_event(&deps.store, &deps.settings, &event, &account).await?;
    crate::app::invoices::apply_event(&deps.store, &event, &account, &customer).await?;

    let mut snapshot = snapshot_of(deps, snapshots, &customer).await?;
    let duplicates = crate::domain::projection::duplicates(&snapshot.subscriptions);
    if end_unwanted(deps, &event, &account, &customer, &duplicates, DUPLICATE_SUBSCRIPTION).await? {
        snapshots.remove(&customer);
        snapshot = snapshot_of(deps, snapshots, &customer).await?;
    }
    if event.deletes_customer() {
        return delete_customer(deps, &log, &account, &customer, &snapshot).await;
    }
    let (state, _) = projection(&deps.store, &deps.settings, &account, &customer, &snapshot).await?;
    let facts = facts_after(deps, &event, &account, state.as_ref(), &snapshot).await?;
    if let Some(notice) = kind.notice {
        deps.notifier.notify(&notification(&event, notice, &account, &customer)).await?;
    }
    let effect = Effect {
        account: &account,
        customer: &customer,
        retired: false,
        projection: state.as_ref(),
        facts: facts.as_ref(),
    };
    Ok(log.commit("processed", Some(effect)).await?.into())
}

impl From<ApplyOutcome> for Outcome {
    fn from(outcome: ApplyOutcome) -> Self {
        match outcome {
            ApplyOutcome::Applied => Outcome::Applied,
            ApplyOutcome::Stale => Outcome::Stale,
            ApplyOutcome::Unlinked => Outcome::Ignored,
            ApplyOutcome::Duplicate => Outcome::Duplicate,
        }
    }
}

/// The event's record in the event log, with the outcome it is recorded under.
struct Log<'a, S> {
    store: &'a S,
    settings: &'a Settings,
    event: &'a Incoming,
}

impl<S: EventLog> Log<'_, S> {
    /// Records the event with `effect`, in one transaction (see [`EventLog::apply`]).
    async fn commit(&self, outcome: &str, effect: Option<Effect<'_>>) -> Result<ApplyOutcome, StoreError> {
        let record = ProcessedEvent {
            event_id: self.event.id.clone(),
            event_type: self.event.event_type.clone(),
            created: self.event.created,
            outcome: outcome.to_owned(),
            processed_at: self.settings.clock.now(),
        };
        self.store.apply(&record, effect).await
    }

    /// Records the event as processed with no effect.
    async fn ignore(&self, outcome: &str) -> Result<Outcome, EventError> {
        self.commit(outcome, None).await?;
        Ok(Outcome::Ignored)
    }
}

/// The Stripe customer the event is about (a charge's is read from Stripe); `None` when it
/// names none.
async fn customer_of<S, B: Billing, N>(
    deps: &EventDeps<S, B, N>,
    event: &Incoming,
) -> Result<Option<String>, EventError> {
    Ok(match event.customer() {
        CustomerRef::Customer(id) => Some(id),
        CustomerRef::Charge(charge) => {
            deps.billing.charge_customer(&charge).await?.filter(|id| crate::domain::events::is_id(id))
        }
        CustomerRef::None => None,
    })
}

/// The account the customer is (or was) linked to, linking it by the event's account hint or,
/// when the event names no account (a dispute, a refund, a session without Tollgate's
/// metadata), by the hint of its subscriptions in Stripe. Without that second look, such an
/// event arriving before any that names the account would be recorded with no effect, and
/// its fact lost.
async fn account_of<S, B, N>(
    deps: &EventDeps<S, B, N>,
    snapshots: &mut Snapshots,
    event: &Incoming,
    customer: &str,
) -> Result<Option<CustomerLink>, EventError>
where
    S: AccountStore,
    B: Billing,
{
    let settings = &deps.settings;
    if let Some(link) = link_for(&deps.store, settings, customer, event.account_hint().as_deref()).await? {
        return Ok(Some(link));
    }
    let snapshot = snapshot_of(deps, snapshots, customer).await?;
    Ok(match snapshot.subscriptions.iter().find_map(|s| s.account_hint.clone()) {
        Some(hint) => link_for(&deps.store, settings, customer, Some(&hint)).await?,
        None => None,
    })
}

/// Nothing about a retired customer changes its former account, but a dispute: a chargeback
/// after the deletion still refuses access.
async fn apply_to_retired<S, B, N>(
    deps: &EventDeps<S, B, N>,
    log: &Log<'_, S>,
    account: &AccountId,
    customer: &str,
) -> Result<Outcome, EventError>
where
    S: SubscriptionStore + EventLog,
    B: Billing,
    N: Notifier,
{
    // A subscription on a retired customer (a session paid after its account was deleted)
    // bills no one Tollgate serves: it ends at once, refunded.
    let subscriptions = deps.billing.subscriptions(customer).await?;
    let billing: Vec<&RemoteSubscription> = subscriptions.iter().filter(|s| s.status.is_live()).collect();
    end_unwanted(deps, log.event, account, customer, &billing, ACCOUNT_DELETED).await?;
    let Some(fact @ (Fact::DisputeOpened { .. } | Fact::DisputeClosed { .. })) = log.event.fact(None) else {
        return log.ignore("retired").await;
    };
    let mut facts = deps.store.facts(account).await?;
    facts.apply(&fact, deps.settings.grace_days);
    let effect = Effect { account, customer, retired: true, projection: None, facts: Some(&facts) };
    Ok(log.commit("retired_dispute", Some(effect)).await?.into())
}

/// Why Tollgate ended a subscription that should not exist (`details.reason` of its
/// `subscription_canceled` notification).
const DUPLICATE_SUBSCRIPTION: &str = "duplicate_subscription";
const ACCOUNT_DELETED: &str = "account_deleted";

/// Ends each of `ending` (subscriptions of `customer`) at once, refunds what its latest invoice
/// charged, and tells `account` why (`subscription_canceled`, `details.reason`). Each step is
/// idempotent (keys per subscription and invoice, the notification's id), so a redelivery
/// repeats nothing. Answers whether there was anything to end.
async fn end_unwanted<S, B, N>(
    deps: &EventDeps<S, B, N>,
    event: &Incoming,
    account: &AccountId,
    customer: &str,
    ending: &[&RemoteSubscription],
    reason: &str,
) -> Result<bool, EventError>
where
    B: Billing,
    N: Notifier,
{
    for subscription in ending {
        match deps.billing.cancel(&subscription.id, false, &format!("{reason}-{}", subscription.id)).await {
            Ok(_) | Err(BillingError::NotFound) => {}
            Err(err) => return Err(err.into()),
        }
        let refunded = match &subscription.latest_invoice {
            Some(invoice) => deps.billing.refund_invoice(invoice, &format!("{reason}-refund-{invoice}")).await?,
            None => false,
        };
        tracing::warn!(subscription = %subscription.id, reason, refunded, "ended a subscription that should not exist");
        let notice = Notification {
            // The id the cancellation's own event gives its notice: this one, with its reason,
            // is the one told (the queue drops the second as a duplicate).
            id: format!("{}:{}", Kind::SubscriptionCanceled.as_str(), subscription.id),
            kind: Kind::SubscriptionCanceled,
            account_id: account.to_string(),
            customer_id: customer.to_owned(),
            event_id: event.id.clone(),
            event_type: event.event_type.clone(),
            occurred_at: event.created,
            object_id: subscription.id.clone(),
            details: serde_json::json!({ "reason": reason, "refunded": refunded }),
        };
        deps.notifier.notify(&notice).await?;
    }
    Ok(!ending.is_empty())
}

/// Stripe deleted the customer: the account is retired from it (idempotent, so it runs
/// before the record: a crash in between is redone on redelivery).
async fn delete_customer<S, B, N>(
    deps: &EventDeps<S, B, N>,
    log: &Log<'_, S>,
    account: &AccountId,
    customer: &str,
    snapshot: &Snapshot,
) -> Result<Outcome, EventError>
where
    S: AccountStore + SubscriptionStore + EventLog,
{
    let had_subscription = !snapshot.subscriptions.is_empty();
    retire(&deps.store, &deps.settings, account, Some(customer), Retirement::CustomerDeleted, had_subscription).await?;
    log.commit("customer_deleted", None).await?;
    Ok(Outcome::Applied)
}

/// The account's facts with the event's fact applied, when it records one; a full refund
/// counts only when it refunds the current period.
async fn facts_after<S, B, N>(
    deps: &EventDeps<S, B, N>,
    event: &Incoming,
    account: &AccountId,
    state: Option<&Projection>,
    snapshot: &Snapshot,
) -> Result<Option<Facts>, EventError>
where
    S: SubscriptionStore,
    B: Billing,
{
    let period_end = state.and_then(|s| s.current_period_end);
    let fact = match event.fact(period_end) {
        Some(Fact::FullRefund { .. }) if !refunds_current_period(&deps.billing, event, snapshot).await? => None,
        fact => fact,
    };
    let Some(fact) = fact else { return Ok(None) };
    let mut facts = deps.store.facts(account).await?;
    facts.apply(&fact, deps.settings.grace_days);
    Ok(Some(facts))
}

/// Stripe's subscriptions of `customer`, read once per batch (`snapshots` caches them).
async fn snapshot_of<S, B: Billing, N>(
    deps: &EventDeps<S, B, N>,
    snapshots: &mut Snapshots,
    customer: &str,
) -> Result<Snapshot, BillingError> {
    if let Some(snapshot) = snapshots.get(customer) {
        return Ok(snapshot.clone());
    }
    let snapshot = Snapshot::read(&deps.billing, &deps.settings, customer).await?;
    snapshots.insert(customer.to_owned(), snapshot.clone());
    Ok(snapshot)
}

/// Whether a refunded charge paid the current period: its PaymentIntent paid the invoice that
/// the governing subscription names as its latest. A one-off charge, a credit pack or an
/// earlier period's invoice does not.
async fn refunds_current_period<B: Billing>(
    billing: &B,
    event: &Incoming,
    snapshot: &Snapshot,
) -> Result<bool, BillingError> {
    let latest = current(&snapshot.subscriptions).and_then(|s: &RemoteSubscription| s.latest_invoice.as_deref());
    let (Some(payment_intent), Some(latest)) = (event.payment_intent(), latest) else {
        return Ok(false);
    };
    Ok(billing.invoices_paid_by(payment_intent).await?.iter().any(|invoice| invoice == latest))
}

/// The link of a customer: from the customer index, else from the account id Tollgate put on
/// a Stripe object (`hint`), and then the link is recorded, once. `None` for a customer
/// Tollgate never linked (not one of the product's accounts). A retired customer (deleted in
/// Stripe, or its account deleted) stays retired: it is never linked again.
pub async fn link_for<S: AccountStore>(
    store: &S,
    settings: &Settings,
    customer: &str,
    hint: Option<&str>,
) -> Result<Option<CustomerLink>, StoreError> {
    if let Some(link) = store.customer_link(customer).await? {
        return Ok(Some(link));
    }
    let Some(hint) = hint.and_then(|h| AccountId::parse(h).ok()) else {
        return Ok(None);
    };
    let link = Account { account_id: hint.clone(), customer_id: customer.to_owned(), created_at: settings.clock.now() };
    match store.link_customer(&link).await {
        Ok(()) => Ok(Some(CustomerLink::Linked(hint))),
        // Linked meanwhile (by checkout, or a racing event), or retired: the index is the truth.
        Err(StoreError::Conflict(_)) => store.customer_link(customer).await,
        Err(err) => Err(err),
    }
}

/// The account a customer is linked to (see [`link_for`]); `None` when it is not, or retired.
pub async fn account_for<S: AccountStore>(
    store: &S,
    settings: &Settings,
    customer: &str,
    hint: Option<&str>,
) -> Result<Option<AccountId>, StoreError> {
    Ok(match link_for(store, settings, customer, hint).await? {
        Some(CustomerLink::Linked(account)) => Some(account),
        _ => None,
    })
}

/// The notification of `event`. Its id names one real-world occurrence: the kind, the object,
/// and what tells occurrences of one object apart (see [`Incoming::occurrence`]).
fn notification(event: &Incoming, kind: Kind, account: &AccountId, customer: &str) -> Notification {
    let object_id = event.object_id();
    let id = match event.occurrence(kind) {
        Some(occurrence) => format!("{}:{object_id}:{occurrence}", kind.as_str()),
        None => format!("{}:{object_id}", kind.as_str()),
    };
    Notification {
        id,
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
