//! `deletion OUT.json`: `DELETE /account` of an account with a 1,000,000-entry ledger and
//! 10,000 invoices, simulated (DynamoDB at 5 ms a request, and at 20 ms); the figures as JSON
//! for `bench/report.py`.

use tollgate_scale::{DeletionConfig, simulate_deletion};

fn main() -> anyhow::Result<()> {
    let out = std::env::args().nth(1).ok_or_else(|| anyhow::anyhow!("usage: deletion OUT.json"))?;
    let mut reports = Vec::new();
    for dynamo_latency_ms in [5, 20] {
        let report = simulate_deletion(&DeletionConfig { dynamo_latency_ms, ..DeletionConfig::default() })?;
        eprintln!(
            "DynamoDB {dynamo_latency_ms} ms: {} requests, {:.0} s, {:.1} s here",
            report.requests, report.seconds, report.wall_seconds
        );
        reports.push(report);
    }
    std::fs::write(&out, serde_json::to_string_pretty(&reports)?)?;
    Ok(())
}
