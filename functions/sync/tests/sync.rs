//! The sync against the Stripe stand-in over HTTP (through the real `StripeBilling`, with
//! two-item pages so every list crosses page boundaries): missed events are replayed, a
//! backfill rewrites every projection, a cut-off run resumes without skipping or repeating, a
//! backlog longer than one run drains over successive runs, a reconciliation resumes where it
//! stopped (or was killed) and is never dropped, rate limits fail the run loudly, and grace
//! runs out without any webhook. The paging and failure rules in detail (an event that keeps
//! failing, a malformed one, a run that moves nothing) are unit-tested in
//! `shared/src/app/sync.rs`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tollgate::adapters::stripe::StripeBilling;
use tollgate::app::events::{EventDeps, Snapshots, apply};
use tollgate::app::sync::{Mode, SyncDeps, run};
use tollgate::app::{Deadline, Never};
use tollgate::domain::entitlements;
use tollgate::domain::model::AccountId;
use tollgate::ports::events::EventLog;
use tollgate::ports::subscriptions::SubscriptionStore;
use tollgate::ports::sync::{SyncCursor, SyncStore};
use tollgate::testing::{After, FixedClock, MemoryStore, Outbox, settings};
use tollgate_standin::{StandIn, TriggerSpec, test_billing};

const NOW: i64 = 1_795_273_200;

/// Lets `n` checks pass, then kills the run as a Lambda timeout would: `killed` fires and the
/// test drops the run wherever it waits next, so nothing more is saved.
struct KillAfter {
    checks: AtomicUsize,
    killed: tokio::sync::Notify,
}

impl Deadline for KillAfter {
    fn expired(&self) -> bool {
        if self.checks.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_err() {
            self.killed.notify_one();
        }
        false
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
    Harness {
        deps: SyncDeps { events, pacing: Duration::ZERO, meter_pacing: Duration::ZERO, adopt_metadata_key: None },
        standin,
        clock,
    }
}

impl Harness {
    /// Makes Stripe reach the state of `event`; its webhooks are never delivered. Time passes
    /// (one second) so that later snapshots are newer.
    fn happen(&self, event: &str, account: &str) {
        self.clock.advance(1);
        let spec = TriggerSpec::new(event, account);
        self.standin.trigger(&spec).unwrap();
    }

    /// Delivers every event Stripe recorded so far, as webhooks would.
    async fn deliver_all(&self) {
        for event in self.standin.events() {
            apply(&self.deps.events, &event.to_string(), &mut Snapshots::new()).await.unwrap();
        }
    }

    /// The ids of the handled events Stripe recorded so far, oldest first.
    fn handled_events(&self) -> Vec<String> {
        self.standin
            .events()
            .iter()
            .filter(|e| tollgate::domain::events::is_handled(e["type"].as_str().unwrap()))
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn cursor(&self) -> SyncCursor {
        self.deps.events.store.cursor().await.unwrap().unwrap()
    }

    /// Subscription list calls of the reconciliation (not a customer's), by their query.
    fn reconcile_pages(&self) -> Vec<String> {
        self.standin
            .requests()
            .into_iter()
            .filter(|r| {
                r.path == "/v1/subscriptions" && r.query.contains("status=all") && !r.query.contains("customer")
            })
            .map(|r| r.query)
            .collect()
    }

    async fn read(&self, account: &str) -> serde_json::Value {
        let account = AccountId::parse(account).unwrap();
        let projection = self.deps.events.store.subscription(&account).await.unwrap();
        serde_json::to_value(entitlements::subscription(
            self.deps.events.settings.catalogue,
            &account,
            projection.as_ref(),
            tollgate::ports::clock::Clock::now(&self.clock),
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
        .filter(|e| tollgate::domain::events::is_handled(e["type"].as_str().unwrap()))
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    // Every event happened in the same second as the others: the cursor must resume mid-second.
    assert!(h.standin.events().iter().all(|e| e["created"] == NOW));

    let first = run(&h.deps, Mode::Replay, &After::checks(9)).await.unwrap();
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
        matches!(
            failed,
            Err(tollgate::app::sync::SyncError::Billing(tollgate::ports::billing::BillingError::RateLimited))
        ),
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
    assert!(after["grace_until"].as_i64().unwrap() < tollgate::ports::clock::Clock::now(&h.clock));
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

#[tokio::test]
async fn backlog_longer_than_one_run_drains_with_the_cursor_advancing_every_run() {
    let h = harness().await;
    h.deps.events.store.save_cursor(&SyncCursor { created: NOW - 1, ..SyncCursor::default() }).await.unwrap();
    for i in 0..12 {
        h.standin.set_clock(NOW + i / 3);
        h.happen("checkout.session.completed", &format!("acct_d{i}"));
    }
    let backlog = h.handled_events().len();
    let pages = backlog.div_ceil(2);
    // One run can list fewer pages than the backlog fills (the old sync never got past its
    // listing) and apply far fewer events than the backlog holds.
    let capacity = pages * 2 / 3;
    assert!(backlog >= 3 * capacity, "{backlog} events, {capacity} checks a run");
    let mut previous = h.deps.events.store.cursor().await.unwrap().unwrap();
    let (mut runs, mut replayed, mut walked_down) = (0, 0, false);

    loop {
        if runs == 3 {
            h.standin.set_clock(NOW + 5);
            h.happen("checkout.session.completed", "acct_late");
        }
        let outcome = run(&h.deps, Mode::Replay, &After::checks(capacity)).await.unwrap();
        runs += 1;
        replayed += outcome.replayed;
        let cursor = h.cursor().await;
        assert_ne!(cursor, previous, "run {runs} moved nothing: {outcome:?}");
        let advanced =
            (cursor.created, cursor.ids_at_created.len()) > (previous.created, previous.ids_at_created.len());
        assert_eq!(advanced, outcome.replayed > 0, "run {runs}: {outcome:?}");
        // Once the walk down the list has reached the oldest event, every run hands events over.
        assert!(!walked_down || outcome.replayed > 0, "run {runs} after the walk handed nothing over: {outcome:?}");
        walked_down |= outcome.replayed > 0;
        previous = cursor;
        if !outcome.partial {
            break;
        }
        assert!(runs < 30, "the backlog never drained");
    }

    let handled = h.handled_events();
    assert_eq!(previous.scan_marks, Vec::<String>::new(), "{previous:?}");
    assert!(runs >= 4, "{runs} runs: the backlog should outlast several");
    assert_eq!(replayed, handled.len() as u64, "each event handed over exactly once");
    for id in &handled {
        assert!(h.deps.events.store.processed(id).await.unwrap().is_some(), "{id} was skipped");
    }
    for account in (0..12).map(|i| format!("acct_d{i}")).chain(["acct_late".to_owned()]) {
        assert_eq!(h.read(&account).await["plan"], "pro", "{account}");
    }
}

#[tokio::test]
async fn killed_reconciliation_resumes_after_its_last_saved_page() {
    let h = harness().await;
    for i in 0..6 {
        h.happen("customer.subscription.created", &format!("acct_k{i}"));
    }
    h.deps.events.store.save_cursor(&SyncCursor { created: NOW + 1, ..SyncCursor::default() }).await.unwrap();
    // One check for the (empty) replay, one per reconciliation page and one per customer on it:
    // killed before the third page.
    let kill = KillAfter { checks: AtomicUsize::new(7), killed: tokio::sync::Notify::new() };
    tokio::select! {
        biased;
        () = kill.killed.notified() => {}
        result = run(&h.deps, Mode::Full, &kill) => panic!("the run ended before it was killed: {result:?}"),
    }
    let saved = h.cursor().await;
    let listed_before = h.reconcile_pages().len();

    let resumed = run(&h.deps, Mode::Replay, &Never).await.unwrap();

    assert_eq!(listed_before, 2);
    let after = saved.reconcile_after.clone().expect("the position after the second page was saved");
    assert!(saved.reconcile_due, "{saved:?}");
    let pages = h.reconcile_pages();
    assert_eq!(pages.len(), 3, "the resumed run lists only the last page: {pages:?}");
    assert!(pages[2].contains(&format!("starting_after={after}")), "{pages:?}");
    assert_eq!((resumed.mode.as_str(), resumed.reconciled, resumed.partial), ("full", 2, false), "{resumed:?}");
    let done = h.cursor().await;
    assert!(!done.reconcile_due && done.reconcile_after.is_none(), "{done:?}");
}

#[tokio::test]
async fn reconciliation_stopped_at_its_deadline_resumes_after_its_last_page() {
    let h = harness().await;
    for i in 0..6 {
        h.happen("customer.subscription.created", &format!("acct_r{i}"));
    }
    h.deps.events.store.save_cursor(&SyncCursor { created: NOW + 1, ..SyncCursor::default() }).await.unwrap();

    // The replay's check, the first page's and its two customers'.
    let first = run(&h.deps, Mode::Full, &After::checks(4)).await.unwrap();
    let saved = h.cursor().await;
    let second = run(&h.deps, Mode::Replay, &Never).await.unwrap();
    let third = run(&h.deps, Mode::Replay, &Never).await.unwrap();

    assert!(first.partial && first.reconciled == 2 && first.last_success_at.is_none(), "{first:?}");
    assert_eq!((second.reconciled, second.partial), (4, false), "{second:?}");
    assert_eq!(third.reconciled, 0, "a finished reconciliation is not owed again");
    assert_eq!(h.reconcile_pages().len(), 3, "no page listed twice");
    assert!(saved.reconcile_due && saved.reconcile_after.is_some(), "{saved:?}");
    assert_eq!((second.mode.as_str(), third.mode.as_str()), ("full", "replay"), "the run that reconciled says so");
}

#[tokio::test]
async fn full_run_cut_off_in_its_replay_reconciles_on_a_later_run() {
    let h = harness().await;
    h.deps.events.store.save_cursor(&SyncCursor { created: NOW - 1, ..SyncCursor::default() }).await.unwrap();
    for i in 0..6 {
        h.happen("customer.subscription.created", &format!("acct_f{i}"));
    }

    let cut_off = run(&h.deps, Mode::Full, &After::checks(2)).await.unwrap();
    let owed = h.cursor().await;
    let later = run(&h.deps, Mode::Replay, &Never).await.unwrap();
    let after = run(&h.deps, Mode::Replay, &Never).await.unwrap();

    assert!(cut_off.partial && cut_off.reconciled == 0, "{cut_off:?}");
    assert_eq!((later.reconciled, later.partial), (6, false), "the owed reconciliation ran: {later:?}");
    assert!(owed.reconcile_due, "the cursor remembers the reconciliation: {owed:?}");
    assert_eq!(later.mode, "full");
    assert_eq!((after.mode.as_str(), after.reconciled), ("replay", 0));
    assert!(!h.cursor().await.reconcile_due);
}

/// Consumes `quantity` of the metered `api_calls` in `window` for `account`, by `key`.
async fn consume(h: &Harness, account: &str, key: &str, quantity: u64, window: tollgate::domain::usage::Window) {
    use tollgate::ports::usage::{Consumption, UsageRecord, UsageStore};
    let account = AccountId::parse(account).unwrap();
    let record = UsageRecord {
        actor: None,
        request: key.into(),
        metric: "api_calls".into(),
        quantity,
        window,
        at: NOW,
        refunded: false,
    };
    let consumption = Consumption {
        account: &account,
        key,
        record: &record,
        limit: None,
        rate: None,
        now_ms: NOW * 1000,
        metered: true,
    };
    h.deps.events.store.consume(&consumption).await.unwrap();
}

#[tokio::test]
async fn meters_get_each_unit_once_across_runs_and_a_crash_and_drift_is_recorded() {
    use tollgate::ports::billing::{Billing, MeterEvent};
    let h = harness().await;
    h.happen("checkout.session.completed", "acct_meter");
    h.deliver_all().await;
    let account = AccountId::parse("acct_meter").unwrap();
    let customer =
        tollgate::ports::accounts::AccountStore::account(&h.deps.events.store, &account).await.unwrap().unwrap();
    let window = tollgate::domain::usage::Window { start: NOW - 86_400, end: NOW + 29 * 86_400 };
    let event_name = h.deps.events.settings.catalogue.metric("api_calls").unwrap().event_name.clone().unwrap();
    let stripe_total = || async {
        h.deps.events.billing.meter_total(&event_name, &customer.customer_id, window.start, window.end).await.unwrap()
    };
    let meter_posts = || h.standin.requests().iter().filter(|r| r.path == "/v1/billing/meter_events").count();

    consume(&h, "acct_meter", "a", 7, window).await;
    let first = run(&h.deps, Mode::Replay, &Never).await.unwrap();
    let second = run(&h.deps, Mode::Replay, &Never).await.unwrap();
    let after_two_runs = (stripe_total().await, meter_posts());

    // The next report reaches Stripe, but every answer to it is lost: the run fails with the
    // report pending; the next run resends it under the same identifier.
    consume(&h, "acct_meter", "b", 5, window).await;
    h.standin.lose_answers_to("/v1/billing/meter_events", 3);
    let crashed = run(&h.deps, Mode::Replay, &Never).await;
    let resumed = run(&h.deps, Mode::Replay, &Never).await.unwrap();
    let after_crash = stripe_total().await;

    // Something else reports 3 units for the customer; the window ends and is settled.
    let elsewhere = MeterEvent {
        event_name: &event_name,
        customer_id: &customer.customer_id,
        value: 3,
        identifier: "manual-adjustment-1",
        timestamp: NOW,
    };
    h.deps.events.billing.send_meter_event(&elsewhere).await.unwrap();
    let settle_at = window.end + tollgate::app::meters::SETTLE_AFTER;
    h.clock.set(settle_at);
    h.standin.set_clock(settle_at);
    let settled = run(&h.deps, Mode::Replay, &Never).await.unwrap();

    assert_eq!((first.meters.sent, first.meters.units, second.meters.sent), (1, 7, 0));
    assert_eq!(after_two_runs, (7, 1), "two runs: one meter event of 7");
    let crashed = crashed.unwrap_err().to_string();
    assert!(crashed.contains("meter reporting"), "{crashed}");
    assert_eq!(resumed.meters.sent, 1, "{resumed:?}");
    assert_eq!(after_crash, 12, "the stand-in counted the resent identifier once");
    let identifiers: Vec<String> = h
        .standin
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/billing/meter_events")
        .filter_map(|r| r.form.iter().find(|(k, _)| k == "identifier").map(|(_, v)| v.clone()))
        .collect();
    let crash_id = format!("acct_meter:api_calls:{}:12", window.start);
    assert!(identifiers.iter().filter(|id| **id == crash_id).count() >= 2, "{identifiers:?}");
    let drift = &settled.meters.drift;
    assert_eq!(
        drift.iter().map(|d| (d.metric.as_str(), d.tollgate, d.stripe)).collect::<Vec<_>>(),
        [("api_calls", 12, 15)]
    );
}

#[tokio::test]
async fn a_run_against_a_slow_stripe_starts_no_unit_after_its_deadline_and_the_next_loses_nothing() {
    let mut h = harness().await;
    // One page holds every subscription, so only a check per customer can stop within it.
    h.deps.events.billing = test_billing(&h.standin.spawn().await.unwrap()).with_page_size(50);
    let accounts: Vec<String> = (0..8).map(|i| format!("acct_slow{i}")).collect();
    for account in &accounts {
        h.happen("customer.subscription.created", account);
    }
    // Nothing to replay: the reconciliation alone writes the projections.
    h.deps.events.store.save_cursor(&SyncCursor { created: NOW + 100, ..SyncCursor::default() }).await.unwrap();
    // Every Stripe call takes 150 ms: a customer (its subscriptions, its invoices) about 300 ms.
    let latency = Duration::from_millis(150);
    h.standin.set_latency(latency);
    let budget = Duration::from_secs(1);

    let started = std::time::Instant::now();
    let first =
        run(&h.deps, Mode::Full, &tollgate::app::Before::at(std::time::SystemTime::now() + budget)).await.unwrap();
    let overrun = started.elapsed().saturating_sub(budget);
    let saved = h.cursor().await;
    h.standin.set_latency(Duration::ZERO);
    let second = run(&h.deps, Mode::Replay, &Never).await.unwrap();

    assert!(first.partial && first.reconciled >= 1 && first.reconciled < 8, "{first:?}");
    // At most the one unit started before the deadline runs past it (two calls), with slack.
    assert!(overrun <= latency * 2 + Duration::from_millis(250), "the run went on {overrun:?} past its deadline");
    assert!(
        saved.reconcile_due && saved.reconcile_after.is_some(),
        "stopped within the page, its place saved: {saved:?}"
    );
    assert!(!second.partial && first.reconciled + second.reconciled >= 8, "{first:?} {second:?}");
    for account in &accounts {
        assert_eq!(h.read(account).await["plan"], "pro", "{account} reconciled");
    }
    assert!(!h.cursor().await.reconcile_due);
}

#[tokio::test]
async fn a_deletion_stopped_with_items_left_is_finished_by_the_next_run() {
    use tollgate::app::checkout::{CheckoutDeps, delete_account};
    use tollgate::ports::accounts::AccountStore;
    use tollgate::ports::credits::{CreditStore, EntryKind, LedgerEntry};
    let h = harness().await;
    h.happen("customer.subscription.created", "acct_purged");
    h.deliver_all().await;
    let account = AccountId::parse("acct_purged").unwrap();
    let entry = |i: i64| LedgerEntry {
        id: format!("c{i}"),
        kind: EntryKind::Consumption,
        at_ms: (NOW - 10 - i) * 1000,
        credits: -1,
        event: Some("api_call_basic".into()),
        quantity: Some(1),
        grant: None,
        withheld: None,
        actor: None,
    };
    h.deps.events.store.seed_ledger(&account, (0..2_500).map(entry));
    let checkout = CheckoutDeps {
        store: h.deps.events.store.clone(),
        billing: test_billing(&h.standin.spawn().await.unwrap()),
        settings: h.deps.events.settings.clone(),
        redirects: tollgate::domain::redirect::Redirects {
            allowed: tollgate::domain::redirect::AllowList::parse("https://app.example.com").unwrap(),
            success_url: "https://app.example.com/ok".into(),
            cancel_url: "https://app.example.com/cancel".into(),
            return_url: "https://app.example.com/billing".into(),
        },
        checkout_limit: tollgate::domain::ratelimit::Limit { limit: 5, window_ms: 60_000 },
        session_ttl_seconds: 3600,
    };
    // The request's budget is over before it starts deleting pages.
    let stopped = delete_account(&checkout, &account, &After::checks(0)).await.unwrap();
    let owed = h.deps.events.store.owed_purges(10).await.unwrap();

    let run = run(&h.deps, Mode::Replay, &Never).await.unwrap();

    assert!(!stopped.complete, "{stopped:?}");
    assert_eq!(owed.iter().map(|(a, _)| a.clone()).collect::<Vec<_>>(), std::slice::from_ref(&account));
    assert_eq!(run.purges_finished, 1, "{run:?}");
    assert!(h.deps.events.store.ledger(&account, 10, None).await.unwrap().entries.is_empty());
    assert!(h.deps.events.store.owed_purges(10).await.unwrap().is_empty());
}
