//! Stripe's objects reduced to the domain's plain types: a subscription to a
//! [`RemoteSubscription`], an invoice to an [`Invoice`].

use crate::domain::invoices::Invoice;
use crate::domain::model::{Interval, SubscriptionStatus};
use crate::domain::snapshot::{RemoteItem, RemoteSubscription};

fn status(status: stripe_shared::SubscriptionStatus) -> SubscriptionStatus {
    use stripe_shared::SubscriptionStatus as S;
    match status {
        S::Active => SubscriptionStatus::Active,
        S::Trialing => SubscriptionStatus::Trialing,
        S::PastDue => SubscriptionStatus::PastDue,
        S::Unpaid => SubscriptionStatus::Unpaid,
        S::Canceled => SubscriptionStatus::Canceled,
        S::Incomplete => SubscriptionStatus::Incomplete,
        S::IncompleteExpired => SubscriptionStatus::IncompleteExpired,
        S::Paused => SubscriptionStatus::Paused,
        // An unknown status (a newer API) gives no access until understood.
        _ => SubscriptionStatus::Incomplete,
    }
}

/// Reduces Stripe's subscription to what the projection needs. Periods live on the items
/// in the current API.
pub(super) fn remote_subscription(sub: &stripe_shared::Subscription) -> RemoteSubscription {
    let items = sub
        .items
        .data
        .iter()
        .map(|item| RemoteItem {
            id: item.id.as_str().to_owned(),
            price_id: item.price.id.as_str().to_owned(),
            price_lookup_key: item.price.lookup_key.clone(),
            interval: item.price.recurring.as_ref().and_then(|r| Interval::parse(r.interval.as_str())),
            current_period_start: Some(item.current_period_start),
            current_period_end: Some(item.current_period_end),
        })
        .collect();
    RemoteSubscription {
        id: sub.id.as_str().to_owned(),
        customer_id: sub.customer.id().as_str().to_owned(),
        status: status(sub.status.clone()),
        items,
        trial_end: sub.trial_end,
        cancel_at_period_end: sub.cancel_at_period_end,
        created: sub.created,
        billing_cycle_anchor: Some(sub.billing_cycle_anchor),
        ended_at: sub.ended_at,
        account_hint: sub.metadata.get(crate::domain::events::ACCOUNT_METADATA_KEY).cloned(),
        latest_invoice: sub.latest_invoice.as_ref().and_then(|i| i.id().as_ref().map(|id| id.as_str().to_owned())),
    }
}

/// Reduces Stripe's invoice of `customer` to what the product shows (through the one reading
/// of invoice JSON, [`crate::domain::invoices::Invoice::from_json`]).
pub(super) fn remote_invoice(invoice: &stripe_shared::Invoice, customer: &str) -> Option<Invoice> {
    let object = serde_json::json!({
        "object": "invoice",
        "id": invoice.id.as_ref().map(|id| id.as_str()),
        "number": invoice.number,
        "status": invoice.status.as_ref().map(|s| s.as_str()),
        "attempt_count": invoice.attempt_count,
        "amount_due": invoice.amount_due,
        "amount_paid": invoice.amount_paid,
        "currency": invoice.currency.to_string(),
        "period_start": invoice.period_start,
        "period_end": invoice.period_end,
        "hosted_invoice_url": invoice.hosted_invoice_url,
        "invoice_pdf": invoice.invoice_pdf,
        "created": invoice.created,
    });
    Invoice::from_json(&object, customer)
}
