//! The parameters each endpoint accepts: exactly those Tollgate sends (`shared/src/billing/
//! stripe.rs`, and its next features' calls), plus cursor pagination on lists. Any other name is answered as Stripe answers
//! an unknown parameter, so a request the stand-in would not model faithfully fails loudly
//! instead of being half-served.

/// Cursor pagination, on every list.
pub(crate) const PAGE: &[&str] = &["ending_before", "limit", "starting_after"];
pub(crate) const CUSTOMER_CREATE: &[&str] = &["metadata"];
/// What Tollgate's adoption updates on a customer (its metadata).
pub(crate) const CUSTOMER_UPDATE: &[&str] = &["metadata"];
pub(crate) const CHARGE_LIST: &[&str] = &["customer", "ending_before", "limit", "starting_after"];
pub(crate) const DISPUTE_LIST: &[&str] = &["charge", "ending_before", "limit", "payment_intent", "starting_after"];
pub(crate) const CHECKOUT_CREATE: &[&str] = &[
    "cancel_url",
    "client_reference_id",
    "customer",
    "expires_at",
    "line_items",
    "metadata",
    "mode",
    "subscription_data",
    "success_url",
];
/// Under `line_items[i]`.
pub(crate) const LINE_ITEM: &[&str] = &["price", "quantity"];
/// Under `subscription_data`.
pub(crate) const CHECKOUT_SUBSCRIPTION_DATA: &[&str] = &["metadata", "trial_period_days"];
pub(crate) const PORTAL_CREATE: &[&str] = &["customer", "return_url"];
pub(crate) const REFUND_CREATE: &[&str] = &["payment_intent"];
pub(crate) const SUBSCRIPTION_LIST: &[&str] = &["customer", "ending_before", "limit", "starting_after", "status"];
pub(crate) const SUBSCRIPTION_UPDATE: &[&str] = &["cancel_at_period_end", "items", "proration_behavior"];
/// Under `items[i]`.
pub(crate) const SUBSCRIPTION_ITEM: &[&str] = &["id", "price"];
pub(crate) const PRICE_LIST: &[&str] = &["active", "ending_before", "limit", "lookup_keys", "starting_after"];
pub(crate) const EVENT_LIST: &[&str] = &["created", "ending_before", "limit", "starting_after", "types"];
pub(crate) const INVOICE_LIST: &[&str] = &["customer", "ending_before", "limit", "starting_after", "status"];
pub(crate) const INVOICE_PAYMENT_LIST: &[&str] = &["ending_before", "invoice", "limit", "payment", "starting_after"];
/// Under `payment`.
pub(crate) const INVOICE_PAYMENT_PAYMENT: &[&str] = &["payment_intent", "type"];
pub(crate) const METER_EVENT_CREATE: &[&str] = &["event_name", "identifier", "payload", "timestamp"];
pub(crate) const METER_EVENT_SUMMARY_LIST: &[&str] =
    &["customer", "end_time", "ending_before", "limit", "start_time", "starting_after"];
pub(crate) const METER_LIST: &[&str] = &["ending_before", "limit", "starting_after", "status"];
pub(crate) const METER_EVENT_ADJUSTMENT_CREATE: &[&str] = &["cancel", "event_name", "type"];
/// Under `cancel`.
pub(crate) const METER_EVENT_ADJUSTMENT_CANCEL: &[&str] = &["identifier"];
