//! `scale OUT.json [ACCOUNTS...]`: the meter pass simulated at each number of accounts (default
//! 100,000 and 1,000,000; 5% paying), with Stripe at 300 ms and at 1 s a call; the figures as
//! JSON for `bench/report.py`.

use tollgate_scale::{Config, simulate};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let out = args.next().ok_or_else(|| anyhow::anyhow!("usage: scale OUT.json [ACCOUNTS...]"))?;
    let mut sizes: Vec<u64> = args.map(|a| a.parse()).collect::<Result<_, _>>()?;
    if sizes.is_empty() {
        sizes = vec![100_000, 1_000_000];
    }
    let mut reports = Vec::new();
    for accounts in sizes {
        for stripe_latency_ms in [300, 1_000] {
            let config = Config { stripe_latency_ms, ..Config::with_accounts(accounts) };
            let report = simulate(&config)?;
            eprintln!(
                "{accounts} accounts, Stripe {stripe_latency_ms} ms: every paying account reported after {:?} runs ({:.1} s here)",
                report.runs_until_reported, report.wall_seconds
            );
            reports.push(report);
        }
    }
    std::fs::write(&out, serde_json::to_string_pretty(&reports)?)?;
    Ok(())
}
