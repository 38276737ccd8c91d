//! Invoices as the product shows them (no I/O): an invoice reduced to what a billing page
//! needs, read from an event payload or a Stripe list, and the version that orders two
//! readings of one invoice.
//!
//! **The version.** Stripe's invoice lifecycle only moves forward: `draft` -> `open` ->
//! `paid` | `void` | `uncollectible`, and `uncollectible` -> `paid` | `void`; `paid` and `void`
//! are final. Within `open`, every payment attempt raises `attempt_count`. So the pair
//! (status rank, attempt count) never decreases over an invoice's life, and a reading with a
//! lower pair is an older truth whatever order events arrive in (Stripe's `created` has
//! one-second resolution and says nothing about the invoice's state). Two readings with the
//! same pair hold the same state. The store writes a reading only when its version is higher
//! than the stored one.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest URL kept (Stripe's hosted invoice and PDF links are far shorter): an item must stay
/// small whatever a payload holds.
const MAX_URL_LEN: usize = 2048;
/// Longest currency code kept (ISO 4217 codes have three letters).
const MAX_CURRENCY_LEN: usize = 8;

/// One of an account's invoices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    pub id: String,
    pub customer_id: String,
    /// `None` until the invoice is finalized.
    pub number: Option<String>,
    /// Stripe's status: `draft`, `open`, `paid`, `uncollectible` or `void`.
    pub status: String,
    pub amount_due: i64,
    pub amount_paid: i64,
    pub currency: String,
    pub period_start: i64,
    pub period_end: i64,
    pub hosted_invoice_url: Option<String>,
    pub invoice_pdf: Option<String>,
    /// Unix seconds; the order of the account's invoices.
    pub created: i64,
    pub attempt_count: u64,
    /// See the module's documentation.
    pub version: i64,
}

/// Where `status` stands in the invoice lifecycle (see the module's documentation). An
/// unknown status (a newer API) ranks as `open`: never above a final state.
pub fn status_rank(status: &str) -> i64 {
    match status {
        "draft" => 0,
        "uncollectible" => 2,
        "paid" | "void" => 3,
        _ => 1,
    }
}

/// The version of a reading with `status` after `attempt_count` payment attempts.
pub fn version(status: &str, attempt_count: u64) -> i64 {
    const ATTEMPTS: i64 = 1 << 32;
    let attempts = i64::try_from(attempt_count).unwrap_or(i64::MAX).min(ATTEMPTS.saturating_sub(1));
    status_rank(status).saturating_mul(ATTEMPTS).saturating_add(attempts)
}

fn text(value: &Value, max: usize) -> Option<String> {
    value.as_str().filter(|s| !s.is_empty() && s.len() <= max && !s.chars().any(char::is_control)).map(str::to_owned)
}

fn url(value: &Value) -> Option<String> {
    text(value, MAX_URL_LEN).filter(|u| u.starts_with("https://") || u.starts_with("http://"))
}

impl Invoice {
    /// An invoice of `customer` from Stripe's JSON (an event's `data.object`): `None` when
    /// the object is not an invoice with a usable id (an invoice without an id, a preview, is
    /// never stored). Fields Tollgate does not need never make it unusable.
    pub fn from_json(object: &Value, customer: &str) -> Option<Self> {
        if object.get("object").and_then(Value::as_str) != Some("invoice") {
            return None;
        }
        let id = object.get("id").and_then(Value::as_str).filter(|id| crate::domain::events::is_id(id))?.to_owned();
        let status = object.get("status").and_then(|s| text(s, 32)).unwrap_or_else(|| "draft".to_owned());
        let attempt_count = object.get("attempt_count").and_then(Value::as_u64).unwrap_or_default();
        let int = |key: &str| object.get(key).and_then(Value::as_i64).unwrap_or_default();
        Some(Self {
            id,
            customer_id: customer.to_owned(),
            number: object.get("number").and_then(|n| text(n, crate::domain::events::MAX_ID_LEN)),
            version: version(&status, attempt_count),
            status,
            amount_due: int("amount_due"),
            amount_paid: int("amount_paid"),
            currency: object.get("currency").and_then(|c| text(c, MAX_CURRENCY_LEN)).unwrap_or_default(),
            period_start: int("period_start"),
            period_end: int("period_end"),
            hosted_invoice_url: object.get("hosted_invoice_url").and_then(url),
            invoice_pdf: object.get("invoice_pdf").and_then(url),
            created: int("created"),
            attempt_count,
        })
    }

    /// Whether the customer must act for this invoice to be paid: it is open and a payment
    /// attempt was made (failed, or waits for authentication).
    pub fn needs_payment_action(&self) -> bool {
        self.status == "open" && self.attempt_count > 0
    }
}

/// An invoice's period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PeriodView {
    pub start: i64,
    pub end: i64,
}

/// An invoice as the API answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InvoiceView {
    pub id: String,
    pub number: Option<String>,
    pub status: String,
    pub amount_due: i64,
    pub amount_paid: i64,
    pub currency: String,
    pub period: PeriodView,
    pub hosted_invoice_url: Option<String>,
    pub invoice_pdf: Option<String>,
    pub created: i64,
}

impl From<&Invoice> for InvoiceView {
    fn from(invoice: &Invoice) -> Self {
        Self {
            id: invoice.id.clone(),
            number: invoice.number.clone(),
            status: invoice.status.clone(),
            amount_due: invoice.amount_due,
            amount_paid: invoice.amount_paid,
            currency: invoice.currency.clone(),
            period: PeriodView { start: invoice.period_start, end: invoice.period_end },
            hosted_invoice_url: invoice.hosted_invoice_url.clone(),
            invoice_pdf: invoice.invoice_pdf.clone(),
            created: invoice.created,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_version_only_grows_along_the_lifecycle() {
        let lifecycle = [
            version("draft", 0),
            version("open", 0),
            version("open", 1),
            version("open", 2),
            version("uncollectible", 2),
            version("paid", 3),
        ];

        assert!(lifecycle.windows(2).all(|w| w[0] < w[1]), "{lifecycle:?}");
        assert_eq!(version("void", 2), version("paid", 2), "both final");
        assert!(version("open", u64::MAX) < version("uncollectible", 0), "attempts never reach the next status");
        assert_eq!(status_rank("some_new_status"), status_rank("open"));
    }

    #[test]
    fn an_invoice_is_read_from_stripe_json_and_hostile_fields_are_dropped() {
        let object = json!({
            "object": "invoice", "id": "in_1", "number": "ABC-0001", "status": "open", "attempt_count": 1,
            "amount_due": 1900, "amount_paid": 0, "currency": "usd", "period_start": 10, "period_end": 20,
            "hosted_invoice_url": "https://invoice.stripe.com/i/1", "invoice_pdf": "javascript:alert(1)",
            "created": 15,
        });

        let invoice = Invoice::from_json(&object, "cus_1").unwrap();

        assert_eq!(invoice.number.as_deref(), Some("ABC-0001"));
        assert_eq!(invoice.hosted_invoice_url.as_deref(), Some("https://invoice.stripe.com/i/1"));
        assert_eq!(invoice.invoice_pdf, None, "not a web link");
        assert!(invoice.needs_payment_action());
        assert_eq!(invoice.version, version("open", 1));
        assert_eq!(Invoice::from_json(&json!({"object": "charge", "id": "ch_1"}), "cus_1"), None);
        assert_eq!(Invoice::from_json(&json!({"object": "invoice"}), "cus_1"), None, "a preview has no id");
    }
}
