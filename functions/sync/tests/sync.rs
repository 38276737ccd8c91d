//! The sync against the Stripe stand-in over HTTP (through the real `StripeBilling`, with
//! two-item pages so every list crosses page boundaries): missed events are replayed, a
//! backfill rewrites every projection, a cut-off run resumes without skipping or repeating,
//! rate limits fail the run loudly, and grace runs out without any webhook.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tollgate::app::events::{EventDeps, Snapshots, apply};
use tollgate::app::sync::{Deadline, Mode, Never, SyncDeps, run};
use tollgate::billing::StripeBilling;
use tollgate::entitlements;
use tollgate::model::AccountId;
use tollgate::store::{EventLog, SubscriptionStore, SyncCursor, SyncStore};
use tollgate::testing::{FixedClock, MemoryStore, Outbox, settings};
use tollgate_standin::{StandIn, TriggerSpec, test_billing};

const NOW: i64 = 1_795_273_200;

/// Expires after `n` checks: a run cut off partway.
struct After(AtomicUsize);

impl Deadline for After {
    fn expired(&self) -> bool {
        self.0.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_err()
    }
}

struct Harness {
    deps: SyncDeps<MemoryStore, StripeBilling, Outbox>,
    standin: StandIn,
    clock: FixedClock,
}

async fn harness() -> Harness {
    let standin = StandIn::new();
    standin.set_clock(NOW);
    let base = standin.spawn().await.unwrap();
    let clock = FixedClock::at(NOW + 60);
    let events = EventDeps {
        store: MemoryStore::new(),
        billing: test_billing(&base).with_page_size(2),
        notifier: Outbox::default(),
        settings: settings(&clock),
    };
    Harness { deps: SyncDeps { events, pacing: Duration::ZERO }, standin, clock }
}

impl Harness {
    /// Makes Stripe reach the state of `event`; its webhooks are never delivered. Time passes
    /// (one second) so that later snapshots are newer.
    fn happen(&self, event: &str, account: &str) {
        self.clock.advance(1);
        let spec =
            TriggerSpec { event: event.into(), account: account.into(), plan: None, interval: None, outcome: None };
        self.standin.trigger(&spec).unwrap();
    }

    /// Delivers every event Stripe recorded so far, as webhooks would.
    async fn deliver_all(&self) {
        for event in self.standin.events() {
            apply(&self.deps.events, &event.to_string(), &mut Snapshots::new()).await.unwrap();
        }
    }

    async fn read(&self, account: &str) -> serde_json::Value {
        let account = AccountId::parse(account).unwrap();
        let projection = self.deps.events.store.subscription(&account).await.unwrap();
        serde_json::to_value(entitlements::subscription(
            self.deps.events.settings.catalogue,
            &account,
            projection.as_ref(),
            tollgate::clock::Clock::now(&self.clock),
        ))
        .unwrap()
    }
}

#[tokio::test]
async fn missed_cancellation_is_applied_by_one_sync() {
    let h = harness().await;
    h.happen("checkout.session.completed", "acct_m");
    h.deliver_all().await;
    run(&h.deps, Mode::Replay, &Never).await.unwrap();
    h.happen("customer.subscription.deleted", "acct_m");
    let before = h.read("acct_m").await;

    let outcome = run(&h.deps, Mode::Replay, &Never).await.unwrap();

    assert_eq!(before["plan"], "pro", "the missed webhook changed nothing: {before}");
    let after = h.read("acct_m").await;
    assert_eq!((after["plan"].as_str(), after["status"].as_str()), (Some("free"), Some("canceled")), "{after}");
    assert_eq!(outcome.replayed, 1);
    assert!(outcome.last_success_at.is_some() && outcome.last_error.is_none() && !outcome.partial);
}

#[tokio::test]
async fn backfill_over_three_pages_rewrites_every_projection_including_canceled() {
    let h = harness().await;
    for i in 0..6 {
        h.happen("customer.subscription.created", &format!("acct_b{i}"));
    }
    h.happen("customer.subscription.deleted", "acct_b0");
    h.happen("customer.subscription.deleted", "acct_b1");
    // A fresh cursor past those events: only the reconciliation can find them.
    h.deps.events.store.save_cursor(&SyncCursor { created: NOW + 1, ..SyncCursor::default() }).await.unwrap();

    let outcome = run(&h.deps, Mode::Full, &Never).await.unwrap();

    assert_eq!((outcome.reconciled, outcome.differed), (6, 6));
    for i in 0..6 {
        let read = h.read(&format!("acct_b{i}")).await;
        let expected = if i < 2 { "canceled" } else { "trialing" };
        assert_eq!(read["status"], expected, "acct_b{i}: {read}");
    }
    let pages = h
        .standin
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/subscriptions" && r.query.contains("status=all") && !r.query.contains("customer"))
        .count();
    assert!(pages >= 3, "listed {pages} pages");
    let again = run(&h.deps, Mode::Full, &Never).await.unwrap();
    assert_eq!((again.reconciled, again.differed), (6, 0), "a second backfill finds nothing to fix");
}

#[tokio::test]
async fn cut_off_run_resumes_from_its_cursor_without_skipping_or_repeating() {
    let h = harness().await;
    h.deps.events.store.save_cursor(&SyncCursor { created: NOW - 1, ..SyncCursor::default() }).await.unwrap();
    for i in 0..4 {
        h.happen("checkout.session.completed", &format!("acct_c{i}"));
    }
    let events: Vec<String> = h
        .standin
        .events()
        .iter()
        .filter(|e| tollgate::webhook::is_handled(e["type"].as_str().unwrap()))
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    // Every event happened in the same second as the others: the cursor must resume mid-second.
    assert!(h.standin.events().iter().all(|e| e["created"] == NOW));

    let first = run(&h.deps, Mode::Replay, &After(AtomicUsize::new(9))).await.unwrap();
    let second = run(&h.deps, Mode::Replay, &Never).await.unwrap();

    assert!(first.partial && first.replayed > 0 && first.last_success_at.is_none(), "{first:?}");
    assert!(!second.partial && second.last_success_at.is_some());
    assert_eq!(first.replayed + second.replayed, events.len() as u64, "each event handed over exactly once");
    for id in &events {
        assert!(h.deps.events.store.processed(id).await.unwrap().is_some(), "{id} was skipped");
    }
    for i in 0..4 {
        assert_eq!(h.read(&format!("acct_c{i}")).await["plan"], "pro");
    }
}

#[tokio::test]
async fn run_that_keeps_getting_429_reports_failure_not_success() {
    let h = harness().await;
    let ok = run(&h.deps, Mode::Replay, &Never).await.unwrap();
    h.standin.fail_next(1000, 429);

    let failed = run(&h.deps, Mode::Replay, &Never).await;

    assert!(
        matches!(failed, Err(tollgate::app::sync::SyncError::Billing(tollgate::billing::BillingError::RateLimited))),
        "{failed:?}"
    );
    let recorded = h.deps.events.store.outcome().await.unwrap().unwrap();
    assert!(recorded.last_error.as_deref().unwrap().contains("rate limit"), "{recorded:?}");
    assert_eq!(recorded.last_success_at, ok.last_success_at, "a failed run never counts as a success");
}

#[tokio::test]
async fn grace_runs_out_without_any_webhook() {
    let h = harness().await;
    h.happen("checkout.session.completed", "acct_g");
    h.happen("invoice.payment_failed", "acct_g");
    h.deliver_all().await;
    let in_grace = h.read("acct_g").await;
    h.clock.advance(4 * 86_400);

    run(&h.deps, Mode::Replay, &Never).await.unwrap();

    assert_eq!(in_grace["access"], serde_json::json!({"allowed": true, "reason": "grace_period"}), "{in_grace}");
    let after = h.read("acct_g").await;
    assert_eq!(after["status"], "past_due");
    assert_eq!(after["access"], serde_json::json!({"allowed": false, "reason": "past_due_expired"}), "{after}");
    assert!(after["grace_until"].as_i64().unwrap() < tollgate::clock::Clock::now(&h.clock));
}

#[tokio::test]
async fn no_cursor_says_so_and_runs_a_full_reconciliation() {
    let h = harness().await;
    h.happen("customer.subscription.created", "acct_n");

    let outcome = run(&h.deps, Mode::Replay, &Never).await.unwrap();

    assert_eq!(outcome.mode, "full");
    assert_eq!(outcome.reconciled, 1);
    assert_eq!(h.read("acct_n").await["status"], "trialing");
    assert!(h.deps.events.store.cursor().await.unwrap().unwrap().created >= NOW);
}
