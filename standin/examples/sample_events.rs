//! Writes `events/stripe/<type>.json`: one Stripe event of every type Tollgate handles, taken
//! from one customer's lifecycle played on the local Stripe stand-in (whose objects come from
//! Stripe's official fixtures), for tests and for `sam local invoke` / `cargo lambda invoke`.
//!
//! Run: `cargo run -p tollgate-standin --example sample_events` (from the repository root).

use tollgate_standin::{StandIn, TriggerSpec};

/// The lifecycle, in an order Stripe allows (a trial before it ends, a pause before a resume).
const LIFECYCLE: [(&str, Option<&str>); 20] = [
    ("checkout.session.completed", Some("pro")),
    ("customer.subscription.trial_will_end", None),
    ("invoice.finalized", None),
    ("invoice.paid", None),
    ("invoice.payment_failed", None),
    ("invoice.payment_action_required", None),
    ("invoice.marked_uncollectible", None),
    ("invoice.voided", None),
    ("customer.subscription.updated", Some("team")),
    ("charge.dispute.created", None),
    ("charge.dispute.closed", None),
    ("charge.refunded", None),
    ("entitlements.active_entitlement_summary.updated", None),
    ("customer.subscription.paused", None),
    ("customer.subscription.resumed", None),
    ("customer.subscription.deleted", None),
    // A credit pack paid by a bank debit: once failed, once succeeded.
    ("checkout.session.async_payment_failed", None),
    ("checkout.session.async_payment_succeeded", None),
    // A plan's session left unpaid until it expired.
    ("checkout.session.expired", None),
    ("customer.deleted", None),
];

fn main() -> anyhow::Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/stripe");
    std::fs::create_dir_all(&dir)?;
    let standin = StandIn::new();
    let mut now = 1_795_273_200;
    for (event, plan) in LIFECYCLE {
        standin.set_clock(now);
        let spec = TriggerSpec {
            event: event.to_owned(),
            account: "acct_sample".into(),
            plan: plan.map(str::to_owned),
            interval: None,
            outcome: None,
            pack: None,
            metadata_key: None,
        };
        standin.trigger(&spec).map_err(|e| anyhow::anyhow!("{event}: {e}"))?;
        now += 60;
    }
    let events = standin.events();
    for event_type in tollgate::domain::events::handled_types() {
        let event = events
            .iter()
            .rev()
            .find(|e| e["type"] == *event_type)
            .ok_or_else(|| anyhow::anyhow!("{event_type}: the lifecycle recorded no such event"))?;
        let path = dir.join(format!("{event_type}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(event)? + "\n")?;
        println!("{}", path.display());
    }
    Ok(())
}
