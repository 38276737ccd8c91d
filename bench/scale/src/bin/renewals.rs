//! `renewals OUT.json`: 50,000 subscriptions renewing within one hour (four events each)
//! through the worker, simulated at the template's default and largest worker concurrency; the
//! figures as JSON for `bench/report.py`.

use tollgate_scale::{RenewalConfig, simulate_renewals};

fn main() -> anyhow::Result<()> {
    let out = std::env::args().nth(1).ok_or_else(|| anyhow::anyhow!("usage: renewals OUT.json"))?;
    let mut reports = Vec::new();
    for workers in [2, 5] {
        let report = simulate_renewals(&RenewalConfig::with_workers(workers))?;
        eprintln!(
            "{workers} workers: drained after {:.0} s, oldest wait {:.0} s, Stripe peak {}/s ({:.1} s here)",
            report.drained_seconds,
            report.oldest_wait_seconds,
            report.peak_stripe_calls_per_second,
            report.wall_seconds
        );
        reports.push(report);
    }
    std::fs::write(&out, serde_json::to_string_pretty(&reports)?)?;
    Ok(())
}
