//! Adopting a Stripe account Tollgate did not make: its existing customers mapped to accounts
//! (a map, or a metadata key of the product's own), a dry run first, then applied through the
//! paths events and the sync use. A mode of the sync (thousands of customers do not fit an API
//! request): `POST /operator/adoption` stores the request ([`start`]); every sync run then works
//! on it until its deadline ([`run`]), saving its place after every customer, until done.
//!
//! Each customer is sorted by [`crate::domain::adoption::classify`]: linked (with the plan and
//! access it would have), unmapped (no account named), or a conflict (an account named by two
//! customers, a customer or account linked elsewhere, a retired customer), and its
//! subscriptions on prices not in `plans.toml` are listed (such a customer is not linked: it
//! would read as Free). Applying links the customer ([`AccountStore::link_customer`], which
//! never relinks), writes its projection through the sync's [`refresh`] (the version rule keeps
//! a newer one), records its disputes as their events' facts would (each once, by a record of
//! its own in the event log), backfills its invoices, and optionally tags the customer with
//! [`crate::domain::events::ACCOUNT_METADATA_KEY`].

use crate::app::Deadline;
use crate::app::events::EventDeps;
use crate::app::refresh::{Snapshot, projection, refresh};
use crate::domain::access::decide_account;
use crate::domain::adoption::{
    Adoption, AdoptionReport, AdoptionRequest, AdoptionState, ConflictEntry, LinkEntry, Sorted, Standing,
    UnmappedEntry, UnmappedPrice, claimed_account, classify,
};
use crate::domain::facts::Fact;
use crate::domain::model::AccountId;
use crate::ports::StoreError;
use crate::ports::accounts::{Account, AccountStore, CustomerLink};
use crate::ports::billing::{Billing, BillingError, RemoteCustomer, RemoteDispute};
use crate::ports::events::{Effect, EventLog, ProcessedEvent};
use crate::ports::invoices::InvoiceStore;
use crate::ports::subscriptions::SubscriptionStore;
use crate::ports::sync::SyncStore;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Why a run of the adoption stopped; it is recorded on the adoption (`failed`).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("stripe: {0}")]
    Billing(#[from] BillingError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// What a run needs: the event path's dependencies (it links and projects as events do) and a
/// pause after each Stripe call (the sync's pacing, under Stripe's rate limit).
pub struct Adopter<'a, S, B, N> {
    pub events: &'a EventDeps<S, B, N>,
    pub pacing: Duration,
}

/// Why an adoption could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdoptError {
    #[error("{0}")]
    Invalid(String),
    #[error("an adoption is running: wait for it to end (GET /operator/adoption)")]
    Running,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `GET /operator/adoption`: where the adoption is, with its report so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdoptionView {
    /// `none` (never started), `running`, `done` or `failed`.
    pub state: String,
    pub apply: bool,
    pub report: AdoptionReport,
    pub done: u64,
    pub total: u64,
    /// Why it failed.
    pub error: Option<String>,
}

impl AdoptionView {
    fn of(adoption: Option<&Adoption>, entries: Vec<Sorted>) -> Self {
        match adoption {
            None => Self {
                state: "none".into(),
                apply: false,
                report: AdoptionReport::default(),
                done: 0,
                total: 0,
                error: None,
            },
            Some(a) => Self {
                state: match a.state {
                    AdoptionState::Running => "running",
                    AdoptionState::Done => "done",
                    AdoptionState::Failed => "failed",
                }
                .into(),
                apply: a.request.apply,
                report: AdoptionReport::of(entries, a.stripe_calls),
                done: a.done,
                total: a.total,
                error: a.error.clone(),
            },
        }
    }
}

/// Starts an adoption (the metadata key defaults to `default_key`, `ADOPT_METADATA_KEY`):
/// `Running` while another runs. The sync works on it from its next run.
pub async fn start<S: SyncStore>(
    store: &S,
    now_ms: i64,
    default_key: Option<&str>,
    mut request: AdoptionRequest,
) -> Result<AdoptionView, AdoptError> {
    request.validate().map_err(|e| AdoptError::Invalid(e.0))?;
    if request.metadata_key.is_none() {
        request.metadata_key = default_key.filter(|k| !k.is_empty()).map(str::to_owned);
    }
    let adoption = Adoption {
        id: now_ms.to_string(),
        state: AdoptionState::Running,
        request,
        stripe_calls: 0,
        done: 0,
        total: 0,
        after: None,
        started_at: now_ms.div_euclid(1000),
        error: None,
    };
    match store.start_adoption(&adoption).await {
        Ok(()) => Ok(AdoptionView::of(Some(&adoption), Vec::new())),
        Err(StoreError::Conflict(_)) => Err(AdoptError::Running),
        Err(err) => Err(err.into()),
    }
}

/// The adoption as `GET /operator/adoption` shows it.
pub async fn status<S: SyncStore>(store: &S) -> Result<AdoptionView, StoreError> {
    let adoption = store.adoption().await?;
    let entries = match &adoption {
        Some(a) => store.adoption_entries(&a.id).await?,
        None => Vec::new(),
    };
    Ok(AdoptionView::of(adoption.as_ref(), entries))
}

/// Works on the running adoption, if any, until it is done or the deadline: answers whether it
/// sorted a customer or ended. A failure is recorded on the adoption (`failed`), then returned.
pub async fn run<S, B, N>(deps: &Adopter<'_, S, B, N>, deadline: &dyn Deadline) -> Result<bool, RunError>
where
    S: AccountStore + SubscriptionStore + EventLog + SyncStore + InvoiceStore,
    B: Billing,
{
    let store = &deps.events.store;
    let Some(mut adoption) = store.adoption().await?.filter(|a| a.state == AdoptionState::Running) else {
        return Ok(false);
    };
    let result = work(deps, deadline, &mut adoption).await;
    if let Err(err) = &result {
        adoption.state = AdoptionState::Failed;
        adoption.error = Some(err.to_string());
        tracing::error!(error = %err, "adoption failed");
    }
    store.save_adoption(&adoption).await?;
    result
}

async fn work<S, B, N>(
    deps: &Adopter<'_, S, B, N>,
    deadline: &dyn Deadline,
    adoption: &mut Adoption,
) -> Result<bool, RunError>
where
    S: AccountStore + SubscriptionStore + EventLog + SyncStore + InvoiceStore,
    B: Billing,
{
    // Every customer first: a claim is a conflict when another customer claims the account too.
    let customers = list_customers(deps, adoption).await?;
    let map: BTreeMap<&str, &str> = adoption.request.map.iter().map(|(c, a)| (c.as_str(), a.as_str())).collect();
    let key = adoption.request.metadata_key.clone();
    let claims: Vec<(&RemoteCustomer, Option<String>)> =
        customers.iter().map(|c| (c, claimed_account(&c.id, &c.metadata, &map, key.as_deref()))).collect();
    let mut claimed: BTreeMap<&str, usize> = BTreeMap::new();
    for account in claims.iter().filter_map(|(_, a)| a.as_deref()) {
        let count = claimed.entry(account).or_default();
        *count = count.saturating_add(1);
    }
    adoption.total = customers.len() as u64;
    // Resumed by what was sorted, not by a place in the list: a customer deleted meanwhile
    // leaves no gap to repeat from, and one created meanwhile is sorted too.
    let entries = deps.events.store.adoption_entries(&adoption.id).await?;
    let sorted: std::collections::BTreeSet<&str> = entries.iter().map(Sorted::customer_id).collect();
    // The entries are the truth: a run cut off after storing one but before saving its count.
    adoption.done = entries.len() as u64;
    adoption.total = adoption.total.max(adoption.done);
    let mut moved = false;
    for (customer, account) in claims.iter().filter(|(c, _)| !sorted.contains(c.id.as_str())) {
        if deadline.expired() {
            return Ok(moved);
        }
        let entry = match account {
            None => Sorted::Unmapped(UnmappedEntry { customer_id: customer.id.clone() }),
            Some(account) => sort(deps, adoption, &customer.id, account, claimed[account.as_str()]).await?,
        };
        // Stored before the count moves past it: a run cut off in between sorts it again, and
        // stores the same entry under the same place.
        deps.events.store.save_adoption_entry(&adoption.id, adoption.done, &entry).await?;
        adoption.done = adoption.done.saturating_add(1);
        adoption.after = Some(customer.id.clone());
        deps.events.store.save_adoption(adoption).await?;
        moved = true;
    }
    adoption.state = AdoptionState::Done;
    Ok(true)
}

/// Every customer of the Stripe account, in Stripe's order (newest first).
async fn list_customers<S, B, N>(
    deps: &Adopter<'_, S, B, N>,
    adoption: &mut Adoption,
) -> Result<Vec<RemoteCustomer>, RunError>
where
    B: Billing,
{
    let mut customers = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = deps.events.billing.customers_page(after.as_deref()).await?;
        adoption.stripe_calls = adoption.stripe_calls.saturating_add(1);
        tokio::time::sleep(deps.pacing).await;
        customers.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(customers),
        }
    }
}

/// What the store says of `customer` and `account`.
async fn standing<S: AccountStore>(store: &S, customer: &str, account: &AccountId) -> Result<Standing, StoreError> {
    match store.customer_link(customer).await? {
        Some(CustomerLink::Retired(_)) => return Ok(Standing::Retired),
        Some(CustomerLink::Linked(linked)) if linked == *account => return Ok(Standing::Linked),
        Some(CustomerLink::Linked(_)) => return Ok(Standing::Elsewhere),
        None => {}
    }
    Ok(match store.account(account).await? {
        Some(profile) if profile.customer_id != customer => Standing::Elsewhere,
        _ => Standing::Free,
    })
}

/// Sorts one customer that claims `account` (claimed by `claims` customers in all), and
/// applies it when asked: answers its entry in the report.
async fn sort<S, B, N>(
    deps: &Adopter<'_, S, B, N>,
    adoption: &mut Adoption,
    customer: &str,
    account_id: &str,
    claims: usize,
) -> Result<Sorted, RunError>
where
    S: AccountStore + SubscriptionStore + EventLog + InvoiceStore,
    B: Billing,
{
    let w = deps.events;
    let conflict = |reason| {
        Sorted::Conflict(ConflictEntry { customer_id: customer.to_owned(), account_id: account_id.to_owned(), reason })
    };
    let Ok(account) = AccountId::parse(account_id) else {
        return Ok(Sorted::Unmapped(UnmappedEntry { customer_id: customer.to_owned() }));
    };
    if let Err(reason) = classify(claims, standing(&w.store, customer, &account).await?) {
        return Ok(conflict(reason));
    }
    let snapshot = Snapshot::read(&w.billing, &w.settings, customer).await?;
    adoption.stripe_calls = adoption.stripe_calls.saturating_add(1);
    tokio::time::sleep(deps.pacing).await;
    // A subscription none of whose prices is in the catalogue would read as Free.
    let catalogue = w.settings.catalogue;
    let known = |key: &Option<String>| key.as_deref().is_some_and(|k| catalogue.price_by_lookup_key(k).is_some());
    let unmapped: Vec<UnmappedPrice> = snapshot
        .subscriptions
        .iter()
        .filter(|s| !s.items.iter().any(|item| known(&item.price_lookup_key)))
        .filter_map(|s| {
            let item = s.items.first()?;
            Some(UnmappedPrice {
                customer_id: customer.to_owned(),
                subscription_id: s.id.clone(),
                price_id: item.price_id.clone(),
                lookup_key: item.price_lookup_key.clone(),
            })
        })
        .collect();
    if !unmapped.is_empty() {
        return Ok(Sorted::Prices { prices: unmapped });
    }
    let disputes = w.billing.disputes_of(customer).await?;
    adoption.stripe_calls = adoption.stripe_calls.saturating_add(disputes.calls);
    tokio::time::sleep(deps.pacing).await;

    // What the account would have: the projection the sync would write, and its disputes.
    let (next, _) = projection(&w.store, &w.settings, &account, customer, &snapshot).await?;
    let mut facts = w.store.facts(&account).await?;
    for dispute in &disputes.disputes {
        facts.apply(&dispute_fact(dispute), w.settings.grace_days);
    }
    let access = decide_account(next.as_ref(), !facts.open_disputes.is_empty(), w.settings.clock.now());
    let link = Sorted::Link(LinkEntry {
        customer_id: customer.to_owned(),
        account_id: account_id.to_owned(),
        plan: access.plan.clone(),
        status: next.as_ref().map(|p| p.status.as_str().to_owned()),
        access: serde_json::to_value(access.reason)
            .ok()
            .and_then(|r| r.as_str().map(str::to_owned))
            .unwrap_or_default(),
    });
    if !adoption.request.apply {
        return Ok(link);
    }
    let linked = apply(deps, adoption, &account, customer, &snapshot, &disputes.disputes).await?;
    // Linked elsewhere meanwhile: reported as the conflict it now is.
    Ok(if linked { link } else { conflict(crate::domain::adoption::ConflictReason::LinkedElsewhere) })
}

/// Records a dispute's fact as its event would, once: under a record of its own in the event
/// log (`adoption:<dispute>:<state>`), retried when the facts changed meanwhile.
async fn record_dispute<S, B, N>(
    deps: &Adopter<'_, S, B, N>,
    account: &AccountId,
    customer: &str,
    dispute: &RemoteDispute,
) -> Result<(), StoreError>
where
    S: SubscriptionStore + EventLog,
{
    let w = deps.events;
    let state = dispute.closed.map_or("open", |won| if won { "won" } else { "lost" });
    let record = ProcessedEvent {
        event_id: format!("adoption:{}:{state}", dispute.id),
        event_type: "adoption.dispute".to_owned(),
        created: w.settings.clock.now(),
        outcome: "adopted".to_owned(),
        processed_at: w.settings.clock.now(),
    };
    let mut tries: u32 = 0;
    loop {
        let mut facts = w.store.facts(account).await?;
        facts.apply(&dispute_fact(dispute), w.settings.grace_days);
        let effect = Effect { account, customer, retired: false, projection: None, facts: Some(&facts) };
        match w.store.apply(&record, Some(effect)).await {
            Err(StoreError::Conflict(_)) if tries < 3 => tries = tries.saturating_add(1),
            outcome => return outcome.map(drop),
        }
    }
}

fn dispute_fact(dispute: &RemoteDispute) -> Fact {
    match dispute.closed {
        None => Fact::DisputeOpened { id: dispute.id.clone() },
        Some(won) => Fact::DisputeClosed { id: dispute.id.clone(), won },
    }
}

/// Links the customer, writes its projection, records its disputes, backfills its invoices
/// and tags it when asked: each step idempotent, so a run cut off and run again changes
/// nothing more.
async fn apply<S, B, N>(
    deps: &Adopter<'_, S, B, N>,
    adoption: &mut Adoption,
    account: &AccountId,
    customer: &str,
    snapshot: &Snapshot,
    disputes: &[RemoteDispute],
) -> Result<bool, RunError>
where
    S: AccountStore + SubscriptionStore + EventLog + InvoiceStore,
    B: Billing,
{
    let w = deps.events;
    let link =
        Account { account_id: account.clone(), customer_id: customer.to_owned(), created_at: w.settings.clock.now() };
    let linked = match w.store.link_customer(&link).await {
        Ok(()) => true,
        // Linked to each other by an earlier run, or elsewhere meanwhile.
        Err(StoreError::Conflict(_)) => w.store.account_for_customer(customer).await?.as_ref() == Some(account),
        Err(err) => return Err(err.into()),
    };
    if !linked {
        return Ok(false);
    }
    refresh(&w.store, &w.settings, account, customer, snapshot).await?;
    for dispute in disputes {
        record_dispute(deps, account, customer, dispute).await?;
    }
    let written =
        crate::app::invoices::backfill(&w.store, &w.billing, account, customer).await.map_err(|err| match err {
            crate::app::invoices::BackfillError::Billing(err) => RunError::Billing(err),
            crate::app::invoices::BackfillError::Store(err) => RunError::Store(err),
        })?;
    adoption.stripe_calls = adoption.stripe_calls.saturating_add(1);
    tokio::time::sleep(deps.pacing).await;
    if written > 0 {
        tracing::info!(account_id = %account, customer, written, "adopted invoices");
    }
    if adoption.request.write_metadata {
        w.billing.tag_customer(customer, account, &format!("adopt-tag-{customer}-{account}")).await?;
        adoption.stripe_calls = adoption.stripe_calls.saturating_add(1);
        tokio::time::sleep(deps.pacing).await;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::adoption::ConflictReason;
    use crate::testing::{After, FakeBilling, FixedClock, MemoryStore, Outbox, remote_subscription, settings};

    const NOW: i64 = 1_796_000_000;

    fn events() -> EventDeps<MemoryStore, FakeBilling, Outbox> {
        let clock = FixedClock::at(NOW);
        EventDeps {
            store: MemoryStore::new(),
            billing: FakeBilling::default(),
            notifier: Outbox::default(),
            settings: settings(&clock),
        }
    }

    #[tokio::test]
    async fn a_run_cut_off_resumes_with_the_customers_it_has_not_sorted_each_once() {
        let w = events();
        for (customer, account) in [("cus_a", "acct_a"), ("cus_b", "acct_b"), ("cus_c", "acct_b"), ("cus_d", "")] {
            w.billing.list_customer(customer, &[("user_id", account)]);
        }
        let active = crate::domain::model::SubscriptionStatus::Active;
        w.billing.set_subscription(remote_subscription("sub_a", "cus_a", active, "pro_monthly", NOW));
        w.billing.dispute_charge_of("cus_a", RemoteDispute { id: "dp_1".into(), closed: None });
        let request =
            AdoptionRequest { apply: true, metadata_key: Some("user_id".into()), ..AdoptionRequest::default() };
        start(&w.store, NOW * 1000, None, request).await.unwrap();
        let adopter = Adopter { events: &w, pacing: Duration::ZERO };

        // Two customers a run, the deadline checked before each.
        assert!(run(&adopter, &After::checks(2)).await.unwrap());
        let halfway = status(&w.store).await.unwrap();
        assert_eq!((halfway.state.as_str(), halfway.done, halfway.total), ("running", 2, 4));
        // A customer created meanwhile is sorted too.
        w.billing.list_customer("cus_e", &[]);
        while status(&w.store).await.unwrap().state == "running" {
            run(&adopter, &After::checks(2)).await.unwrap();
        }

        let done = status(&w.store).await.unwrap();
        assert_eq!((done.state.as_str(), done.done, done.total), ("done", 5, 5));
        let report = done.report;
        let mut unmapped: Vec<&str> = report.unmapped.iter().map(|u| u.customer_id.as_str()).collect();
        unmapped.sort_unstable();
        assert_eq!(unmapped, ["cus_d", "cus_e"]);
        assert_eq!(report.conflicts.len(), 2, "{report:?}");
        assert!(report.conflicts.iter().all(|c| c.reason == ConflictReason::ClaimedTwice));
        assert_eq!(report.link.iter().map(|l| l.customer_id.as_str()).collect::<Vec<_>>(), ["cus_a"]);
        assert_eq!(report.link[0].access, "disputed", "an open dispute found through the charges refuses access");
        let account = AccountId::parse("acct_a").unwrap();
        assert_eq!(w.store.account_for_customer("cus_a").await.unwrap(), Some(account.clone()));
        assert_eq!(w.store.subscription(&account).await.unwrap().map(|p| p.plan), Some("pro".to_owned()));
        assert!(w.store.facts(&account).await.unwrap().open_disputes.contains("dp_1"));
        assert!(w.billing.listed_customers().iter().all(|c| !c.metadata.contains_key("tollgate_account_id")));
    }
}
