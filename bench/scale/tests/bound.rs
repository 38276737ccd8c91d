//! The simulation small enough for `make test`: 5,000 accounts (250 paying, 4,750 Free), the
//! deployed pass's figures, Stripe at 300 ms a call. The bound is in runs, never a time.

use tollgate_scale::{Config, simulate};

#[test]
fn every_paying_account_is_reported_within_two_runs_and_no_free_usage_reaches_stripe() {
    let config = Config::with_accounts(5_000);

    let report = simulate(&config).unwrap();

    let runs = report.runs_until_reported.unwrap_or(u32::MAX);
    assert!(runs <= 2, "{:#?}", report.runs);
    let visited: u64 = report.runs.iter().map(|r| r.visited).sum();
    assert_eq!(visited, config.paying, "only paid counters are due, each visited once");
    let sent: u64 = report.runs.iter().map(|r| r.sent).sum();
    assert_eq!(sent, config.paying, "one meter event per paying account");
    assert_eq!(report.runs.iter().map(|r| r.rate_limited).sum::<u64>(), 0, "paced under Stripe's limits");
}

#[test]
fn a_pass_too_big_for_one_run_goes_on_from_where_it_stopped() {
    // Stripe at 2 s a call and runs of 30 s: a run reaches only part of the 5,000 paying accounts.
    let config = Config { stripe_latency_ms: 2_000, budget_seconds: 30, ..Config::with_accounts(100_000) };

    let report = simulate(&config).unwrap();

    let runs = report.runs_until_reported.expect("reported within the runs allowed");
    assert!(runs >= 2, "more than one run: {:#?}", report.runs);
    let visited: u64 = report.runs.iter().map(|r| r.visited).sum();
    assert!(visited <= config.paying + 100 * u64::from(runs), "each run went on, never back to the top: {visited}");
    assert!(report.runs.iter().all(|r| r.sent > 0), "every run made progress");
}

#[test]
fn a_large_account_is_deleted_over_several_requests_each_within_its_budget() {
    use tollgate_scale::{DeletionConfig, simulate_deletion};
    // 200,000 entries at 5 ms a request, 2 s a request: more than one request's worth.
    let config = DeletionConfig { ledger_entries: 200_000, invoices: 2_000, dynamo_latency_ms: 5, budget_ms: 2_000 };

    let report = simulate_deletion(&config).unwrap();

    assert!(report.requests >= 2, "{report:#?}");
    assert!(
        report.seconds <= f64::from(report.requests) * 2.5,
        "each request within its budget and one page: {report:#?}"
    );
    assert_eq!(report.deleted, 202_000);
    let batches = report.dynamo_requests["BatchWriteItem"];
    assert_eq!(batches, 202_000_u64.div_ceil(25), "25 deletions a batch: {report:#?}");
}

#[test]
fn a_renewal_burst_drains_through_the_worker_with_every_event_applied_under_stripes_limits() {
    use tollgate_scale::{RenewalConfig, simulate_renewals};
    // 2,000 renewals in 144 s: the hourly rate of 50,000, for a shorter while.
    let config = RenewalConfig { renewals: 2_000, over_seconds: 144, ..RenewalConfig::with_workers(5) };

    let report = simulate_renewals(&config).unwrap();

    assert_eq!((report.events, report.failed, report.projected), (8_000, 0, 2_000), "{report:#?}");
    assert!(report.stripe_calls >= 2_000, "at least one read per customer: {report:#?}");
    assert!(report.peak_stripe_calls_per_second <= 25, "under test mode's 25 a second: {report:#?}");
    assert!(report.oldest_wait_seconds < 900.0, "under EventsQueueAgeAlarm's 15 minutes: {report:#?}");
}
