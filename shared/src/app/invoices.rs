//! The account's invoices: projected from invoice events by the worker (and the sync's replay,
//! which goes through the worker's path), backfilled from Stripe's list by the full sync, and
//! read by `GET /invoices` with zero Stripe calls. Every write goes through
//! [`InvoiceStore::put_invoice`]'s version condition, so the order the readings arrive in does
//! not matter (see [`crate::domain::invoices`]).

use crate::domain::events::Incoming;
use crate::domain::invoices::{Invoice, InvoiceView};
use crate::domain::model::AccountId;
use crate::ports::StoreError;
use crate::ports::billing::{Billing, BillingError};
use crate::ports::invoices::InvoiceStore;
use crate::ports::keys;
use crate::ports::subscriptions::SubscriptionStore;
use serde::{Deserialize, Serialize};

/// Invoices a page holds when the caller does not say.
pub const DEFAULT_PAGE: usize = 10;
/// Most invoices one page may hold.
pub const MAX_PAGE: usize = 100;

/// Why a read of the billing page's data was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The query is not one the route accepts; `code` names what was wrong.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ReadError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid { code, message: message.into() }
    }
}

/// A page query as sent (`GET /invoices`, `GET /operator/events/failed`): each value is checked
/// by its route ([`page_size`], the route's own cursor check).
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// `GET /invoices`: a page of the account's invoices, newest first, and the cursor of the next
/// page (`null` on the last).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InvoiceList {
    pub data: Vec<InvoiceView>,
    pub next_cursor: Option<String>,
}

/// The page size `raw` asks for: 1 to [`MAX_PAGE`], [`DEFAULT_PAGE`] when absent.
pub fn page_size(raw: Option<&str>) -> Result<usize, ReadError> {
    match raw {
        None => Ok(DEFAULT_PAGE),
        Some(raw) => raw.parse::<usize>().ok().filter(|l| (1..=MAX_PAGE).contains(l)).ok_or_else(|| {
            ReadError::invalid("invalid_limit", format!("`limit` must be an integer from 1 to {MAX_PAGE}"))
        }),
    }
}

/// The sort key a cursor this API gave names; anything else is refused.
fn cursor(raw: &str) -> Result<String, ReadError> {
    keys::cursor(raw, keys::is_invoice)
        .ok_or_else(|| ReadError::invalid("invalid_cursor", "`cursor` is not one this API gave"))
}

/// `GET /invoices?limit=&cursor=`: one `Query` of the account's invoices, and one of its state
/// (the tombstone: a deleted account's invoices are forgotten at once, while they are purged).
pub async fn list<S: InvoiceStore + SubscriptionStore>(
    store: &S,
    account: &AccountId,
    query: PageQuery,
) -> Result<InvoiceList, ReadError> {
    let limit = page_size(query.limit.as_deref())?;
    let after = query.cursor.as_deref().map(cursor).transpose()?;
    let (state, page) = tokio::join!(store.state(account), store.invoices(account, limit, after.as_deref()));
    let page = page?.forgetting(crate::ports::accounts::Forgotten::of(&state?.tombstone));
    Ok(InvoiceList {
        data: page.invoices.iter().map(InvoiceView::from).collect(),
        next_cursor: page.next.map(hex::encode),
    })
}

/// Projects the invoice an `invoice.*` event carries into the account's list (the worker's
/// path; the customer is linked to the account). Idempotent, so it runs before the event's
/// record commits: a crash in between is redone on redelivery. Answers whether it wrote.
pub async fn apply_event<S: InvoiceStore>(
    store: &S,
    event: &Incoming,
    account: &AccountId,
    customer: &str,
) -> Result<bool, StoreError> {
    if !event.kind().is_some_and(|k| k.projects_invoice()) {
        return Ok(false);
    }
    let Some(invoice) = Invoice::from_json(&event.data.object, customer) else { return Ok(false) };
    store.put_invoice(account, &invoice).await
}

/// Why a backfill failed.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error(transparent)]
    Billing(#[from] BillingError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Writes every invoice Stripe lists for `customer` that is newer than the stored reading (the
/// full sync: invoices whose events never arrived). Answers how many it wrote.
pub async fn backfill<S: InvoiceStore, B: Billing>(
    store: &S,
    billing: &B,
    account: &AccountId,
    customer: &str,
) -> Result<u64, BackfillError> {
    let mut written = 0_u64;
    for invoice in billing.invoices(customer).await? {
        if store.put_invoice(account, &invoice).await? {
            written = written.saturating_add(1);
        }
    }
    Ok(written)
}
