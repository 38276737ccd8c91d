//! `StripeBilling`: the `Billing` port on async-stripe. Every call has a per-attempt timeout,
//! is retried with backoff on 429/5xx/connection errors with one deterministic idempotency
//! key, and fails with a `BillingError` that carries no Stripe internals.

mod convert;
pub mod retry;

use crate::domain::model::AccountId;
use crate::domain::snapshot::RemoteSubscription;
use crate::ports::billing::{
    Billing, BillingError, CheckoutRequest, CheckoutSession, Disputes, MeterEvent, Page, RemoteCustomer, RemoteDispute,
    RemoteEvent,
};
use async_trait::async_trait;
use convert::{remote_invoice, remote_subscription};
use retry::{RetryPolicy, retrying};
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use stripe::{Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeRequest};
use stripe_billing::billing_meter::ListBillingMeter;
use stripe_billing::billing_meter_event::CreateBillingMeterEvent;
use stripe_billing::billing_meter_event_adjustment::{
    CreateBillingMeterEventAdjustment, CreateBillingMeterEventAdjustmentCancel,
};
use stripe_billing::billing_meter_event_summary::ListIdBillingMeterEventSummary;
use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_billing::invoice::ListInvoice;
use stripe_billing::invoice_payment::{ListInvoicePayment, ListInvoicePaymentPayment, ListInvoicePaymentPaymentType};
use stripe_billing::subscription::{
    CancelSubscription, ListSubscription, ListSubscriptionStatus, UpdateSubscription, UpdateSubscriptionItems,
    UpdateSubscriptionProrationBehavior,
};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionSubscriptionData,
};
use stripe_core::charge::{ListCharge, RetrieveCharge};
use stripe_core::customer::{CreateCustomer, ListCustomer, UpdateCustomer};
use stripe_core::dispute::ListDispute;
use stripe_core::event::{ListEvent, RetrieveEvent};
use stripe_product::price::ListPrice;
use stripe_shared::CheckoutSessionMode;

/// How to reach Stripe.
#[derive(Debug, Clone)]
pub struct StripeConfig {
    /// `sk_test_...` or `sk_live_...`; never printed (`SecretString`'s `Debug` redacts it).
    pub secret_key: SecretString,
    /// Base URL of the API, ending in `/`; `None` means Stripe itself.
    pub api_base: Option<String>,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Attempts after the first, on 429, 5xx and connection errors only.
    pub max_retries: u32,
}

/// The Stripe API version the code is typed against; webhook endpoints must use it too.
pub const STRIPE_API_VERSION: &str = "2026-09-30.endive";

/// Stripe's page size maximum, the default page size.
const MAX_PAGE_SIZE: i64 = 100;

/// Stripe through async-stripe.
pub struct StripeBilling {
    client: Client,
    retry: RetryPolicy,
    page_size: i64,
    /// Price ids by lookup key, resolved once per cold start.
    prices: Mutex<HashMap<String, String>>,
    /// Active meters' ids by event name, resolved once per cold start.
    meters: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for StripeBilling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeBilling").field("retry", &self.retry).finish_non_exhaustive()
    }
}

impl StripeBilling {
    /// Builds the client: base URL (Stripe's unless configured), per-attempt timeout, retries.
    pub fn new(config: &StripeConfig) -> Result<Self, BillingError> {
        let mut builder = ClientBuilder::new(config.secret_key.expose_secret()).timeout(config.timeout);
        if let Some(base) = &config.api_base {
            builder = builder.url(base.as_str());
        }
        let client =
            builder.build().map_err(|_| BillingError::Unavailable("invalid Stripe client configuration".into()))?;
        let retry = RetryPolicy { max_retries: config.max_retries, ..RetryPolicy::default() };
        Ok(Self { client, retry, page_size: MAX_PAGE_SIZE, prices: Mutex::default(), meters: Mutex::default() })
    }

    /// Sets the page size of lists (1 to 100; tests use small pages to cross page boundaries).
    pub fn with_page_size(mut self, page_size: i64) -> Self {
        self.page_size = page_size.clamp(1, MAX_PAGE_SIZE);
        self
    }

    /// Replaces the retry policy (tests use millisecond delays).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sends `request` (rebuilt by `make` for every attempt) until it succeeds, fails for good,
    /// or the retries run out. With a key, every attempt sends that same key.
    async fn send<R, F>(&self, key: Option<&str>, make: F) -> Result<R::Output, BillingError>
    where
        R: StripeRequest,
        R::Output: miniserde::Deserialize,
        F: Fn() -> R,
    {
        let strategy = match key {
            Some(key) => RequestStrategy::Idempotent(
                IdempotencyKey::new(key).map_err(|e| BillingError::Unavailable(e.to_string()))?,
            ),
            None => RequestStrategy::Once,
        };
        retrying(self.retry, || make().customize().request_strategy(strategy.clone()).send(&self.client)).await
    }
}

impl StripeBilling {
    /// The id of the active price with this lookup key.
    async fn price_id(&self, lookup_key: &str) -> Result<String, BillingError> {
        if let Some(id) = self.prices.lock().unwrap_or_else(|p| p.into_inner()).get(lookup_key) {
            return Ok(id.clone());
        }
        let list = self.send(None, || ListPrice::new().lookup_keys(vec![lookup_key.to_owned()]).active(true)).await?;
        let price = list.data.first().ok_or_else(|| BillingError::Rejected {
            code: Some("price_not_found".into()),
            message: format!("no active Stripe price has the lookup key {lookup_key}"),
        })?;
        let id = price.id.as_str().to_owned();
        self.prices.lock().unwrap_or_else(|p| p.into_inner()).insert(lookup_key.to_owned(), id.clone());
        Ok(id)
    }
}

impl StripeBilling {
    /// The id of the active meter with this event name (every page of meters, once).
    async fn meter_id(&self, event_name: &str) -> Result<String, BillingError> {
        if let Some(id) = self.meters.lock().unwrap_or_else(|p| p.into_inner()).get(event_name) {
            return Ok(id.clone());
        }
        let mut after: Option<String> = None;
        loop {
            let page = self
                .send(None, || {
                    let list = ListBillingMeter::new()
                        .status(stripe_billing::BillingMeterStatus::Active)
                        .limit(self.page_size);
                    match &after {
                        Some(after) => list.starting_after(after.clone()),
                        None => list,
                    }
                })
                .await?;
            let mut meters = self.meters.lock().unwrap_or_else(|p| p.into_inner());
            for meter in &page.data {
                meters.insert(meter.event_name.clone(), meter.id.as_str().to_owned());
            }
            if let Some(id) = meters.get(event_name) {
                return Ok(id.clone());
            }
            drop(meters);
            match page.data.last() {
                Some(last) if page.has_more => after = Some(last.id.as_str().to_owned()),
                _ => return Err(BillingError::NotFound),
            }
        }
    }
}

/// Whether Stripe refused a meter event because it holds one with the same identifier
/// already ("An event already exists with identifier ..."): the event was sent before.
fn already_sent(err: &BillingError) -> bool {
    matches!(err, BillingError::Rejected { message, .. } if message.contains("already exists") && message.contains("identifier"))
}

fn account_metadata(account: &AccountId) -> HashMap<String, String> {
    HashMap::from([(crate::domain::events::ACCOUNT_METADATA_KEY.to_owned(), account.to_string())])
}

#[async_trait]
impl Billing for StripeBilling {
    async fn create_customer(&self, account: &AccountId, idempotency_key: &str) -> Result<String, BillingError> {
        let metadata = account_metadata(account);
        let customer = self.send(Some(idempotency_key), || CreateCustomer::new().metadata(metadata.clone())).await?;
        Ok(customer.id.as_str().to_owned())
    }

    async fn charge_customer(&self, charge_id: &str) -> Result<Option<String>, BillingError> {
        let charge = self.send(None, || RetrieveCharge::new(charge_id)).await?;
        Ok(charge.customer.map(|c| c.id().as_str().to_owned()))
    }

    async fn invoices_paid_by(&self, payment_intent: &str) -> Result<Vec<String>, BillingError> {
        let filter = ListInvoicePaymentPayment {
            payment_intent: Some(payment_intent.to_owned()),
            ..ListInvoicePaymentPayment::new(ListInvoicePaymentPaymentType::PaymentIntent)
        };
        let list = self.send(None, || ListInvoicePayment::new().payment(filter.clone()).limit(MAX_PAGE_SIZE)).await?;
        Ok(list.data.iter().filter_map(|p| p.invoice.id().as_ref().map(|id| id.as_str().to_owned())).collect())
    }

    async fn invoices(&self, customer_id: &str) -> Result<Vec<crate::domain::invoices::Invoice>, BillingError> {
        // One call, so the sync's unit of work stays bounded (app::sync::STRIPE_CALLS_PER_UNIT).
        let page = self.send(None, || ListInvoice::new().customer(customer_id).limit(MAX_PAGE_SIZE)).await?;
        Ok(page.data.iter().filter_map(|invoice| remote_invoice(invoice, customer_id)).collect())
    }

    async fn subscriptions(&self, customer_id: &str) -> Result<Vec<RemoteSubscription>, BillingError> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .send(None, || {
                    let mut req = ListSubscription::new()
                        .customer(customer_id)
                        .status(ListSubscriptionStatus::All)
                        .limit(self.page_size);
                    if let Some(after) = &after {
                        req = req.starting_after(after.as_str());
                    }
                    req
                })
                .await?;
            all.extend(page.data.iter().map(remote_subscription));
            match (page.has_more, page.data.last()) {
                (true, Some(last)) => after = Some(last.id.as_str().to_owned()),
                _ => return Ok(all),
            }
        }
    }

    async fn events_page(
        &self,
        types: &[&str],
        created_gte: i64,
        starting_after: Option<&str>,
    ) -> Result<Page<RemoteEvent>, BillingError> {
        let types: Vec<String> = types.iter().map(|t| (*t).to_owned()).collect();
        let page = self
            .send(None, || {
                let mut req = ListEvent::new()
                    .types(types.clone())
                    .created(stripe_types::RangeQueryTs::gte(created_gte))
                    .limit(self.page_size);
                if let Some(after) = starting_after {
                    req = req.starting_after(after);
                }
                req
            })
            .await?;
        let items = page.data.iter().map(remote_event).collect::<Result<Vec<_>, BillingError>>()?;
        let next = if page.has_more { items.last().map(|e: &RemoteEvent| e.id.clone()) } else { None };
        Ok(Page { items, next })
    }

    async fn event(&self, event_id: &str) -> Result<RemoteEvent, BillingError> {
        remote_event(&self.send(None, || RetrieveEvent::new(event_id)).await?)
    }

    async fn subscriptions_page(&self, starting_after: Option<&str>) -> Result<Page<RemoteSubscription>, BillingError> {
        let page = self
            .send(None, || {
                let mut req = ListSubscription::new().status(ListSubscriptionStatus::All).limit(self.page_size);
                if let Some(after) = starting_after {
                    req = req.starting_after(after);
                }
                req
            })
            .await?;
        let items: Vec<RemoteSubscription> = page.data.iter().map(remote_subscription).collect();
        let next = if page.has_more { items.last().map(|s| s.id.clone()) } else { None };
        Ok(Page { items, next })
    }

    async fn customers_page(&self, starting_after: Option<&str>) -> Result<Page<RemoteCustomer>, BillingError> {
        let page = self
            .send(None, || {
                let mut req = ListCustomer::new().limit(MAX_PAGE_SIZE);
                if let Some(after) = starting_after {
                    req = req.starting_after(after);
                }
                req
            })
            .await?;
        let items: Vec<RemoteCustomer> = page
            .data
            .iter()
            .map(|c| RemoteCustomer {
                id: c.id.as_str().to_owned(),
                metadata: c.metadata.iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect(),
            })
            .collect();
        let next = if page.has_more { items.last().map(|c| c.id.clone()) } else { None };
        Ok(Page { items, next })
    }

    async fn disputes_of(&self, customer_id: &str) -> Result<Disputes, BillingError> {
        use stripe_shared::DisputeStatus as S;
        let charges = self.send(None, || ListCharge::new().customer(customer_id).limit(MAX_PAGE_SIZE)).await?;
        let mut found = Disputes { disputes: Vec::new(), calls: 1 };
        for charge in charges.data.iter().filter(|c| c.disputed) {
            let disputes =
                self.send(None, || ListDispute::new().charge(charge.id.as_str()).limit(MAX_PAGE_SIZE)).await?;
            found.calls = found.calls.saturating_add(1);
            found.disputes.extend(disputes.data.iter().map(|d| RemoteDispute {
                id: d.id.as_str().to_owned(),
                closed: match d.status {
                    S::Lost => Some(false),
                    S::Won | S::WarningClosed | S::Prevented => Some(true),
                    _ => None,
                },
            }));
        }
        Ok(found)
    }

    async fn tag_customer(
        &self,
        customer_id: &str,
        account: &AccountId,
        idempotency_key: &str,
    ) -> Result<(), BillingError> {
        let metadata = account_metadata(account);
        self.send(Some(idempotency_key), || UpdateCustomer::new(customer_id).metadata(metadata.clone())).await?;
        Ok(())
    }

    async fn create_checkout_session(
        &self,
        request: &CheckoutRequest,
        idempotency_key: &str,
    ) -> Result<CheckoutSession, BillingError> {
        let price = self.price_id(&request.price_lookup_key).await?;
        let mut metadata = account_metadata(&request.account);
        if let Some(pack) = &request.pack {
            metadata.insert(crate::domain::events::PACK_METADATA_KEY.to_owned(), pack.clone());
        }
        let session = self
            .send(Some(idempotency_key), || {
                let mut item = CreateCheckoutSessionLineItems::new();
                item.price = Some(price.clone());
                item.quantity = Some(1);
                let session = CreateCheckoutSession::new()
                    .expires_at(request.expires_at)
                    .customer(request.customer_id.as_str())
                    .client_reference_id(request.account.as_str())
                    .line_items(vec![item])
                    .metadata(metadata.clone())
                    .success_url(request.success_url.as_str())
                    .cancel_url(request.cancel_url.as_str());
                if request.pack.is_some() {
                    return session.mode(CheckoutSessionMode::Payment);
                }
                let mut subscription = CreateCheckoutSessionSubscriptionData::new();
                subscription.trial_period_days = request.trial_days;
                subscription.metadata = Some(metadata.clone());
                session.mode(CheckoutSessionMode::Subscription).subscription_data(subscription)
            })
            .await?;
        let url = session.url.ok_or_else(|| BillingError::Unavailable("Checkout Session without a URL".into()))?;
        Ok(CheckoutSession { id: session.id.as_str().to_owned(), url, expires_at: session.expires_at })
    }

    async fn refund_invoice(&self, invoice_id: &str, idempotency_key: &str) -> Result<bool, BillingError> {
        let payments = self.send(None, || ListInvoicePayment::new().invoice(invoice_id).limit(MAX_PAGE_SIZE)).await?;
        let paid =
            payments.data.iter().find_map(|p| p.payment.payment_intent.as_ref().map(|pi| pi.id().as_str().to_owned()));
        let Some(payment_intent) = paid else { return Ok(false) };
        let refund = self
            .send(Some(idempotency_key), || {
                stripe_core::refund::CreateRefund::new().payment_intent(payment_intent.as_str())
            })
            .await;
        match refund {
            Ok(_) => Ok(true),
            // Refunded already (Stripe refuses a second full refund).
            Err(BillingError::Rejected { .. }) => Ok(false),
            Err(err) => Err(err),
        }
    }

    async fn expire_checkout_session(&self, session_id: &str, idempotency_key: &str) -> Result<(), BillingError> {
        let expired = self
            .send(Some(idempotency_key), || stripe_checkout::checkout_session::ExpireCheckoutSession::new(session_id))
            .await;
        match expired {
            // Paid or expired already (Stripe refuses to expire a session that is not open),
            // or gone: nothing is left to expire.
            Ok(_) | Err(BillingError::NotFound | BillingError::Rejected { .. }) => Ok(()),
            Err(err) => Err(err),
        }
    }

    async fn create_portal_session(
        &self,
        customer_id: &str,
        return_url: &str,
        idempotency_key: &str,
    ) -> Result<String, BillingError> {
        let session = self
            .send(Some(idempotency_key), || {
                CreateBillingPortalSession::new().customer(customer_id).return_url(return_url)
            })
            .await?;
        Ok(session.url)
    }

    async fn change_price(
        &self,
        subscription_id: &str,
        item_id: &str,
        price_lookup_key: &str,
        idempotency_key: &str,
    ) -> Result<RemoteSubscription, BillingError> {
        let price = self.price_id(price_lookup_key).await?;
        let sub = self
            .send(Some(idempotency_key), || {
                let mut item = UpdateSubscriptionItems::new();
                item.id = Some(item_id.to_owned());
                item.price = Some(price.clone());
                UpdateSubscription::new(subscription_id)
                    .items(vec![item])
                    .proration_behavior(UpdateSubscriptionProrationBehavior::CreateProrations)
            })
            .await?;
        Ok(remote_subscription(&sub))
    }

    async fn send_meter_event(&self, event: &MeterEvent<'_>) -> Result<(), BillingError> {
        let payload = HashMap::from([
            ("stripe_customer_id".to_owned(), event.customer_id.to_owned()),
            ("value".to_owned(), event.value.to_string()),
        ]);
        let key = format!("meter-{}", event.identifier);
        let sent = self
            .send(Some(&key), || {
                CreateBillingMeterEvent::new(event.event_name, payload.clone())
                    .identifier(event.identifier)
                    .timestamp(event.timestamp)
            })
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(err) if already_sent(&err) => {
                tracing::info!(identifier = event.identifier, "stripe holds this meter event already");
                Ok(())
            }
            Err(err) => Err(err),
        }
    }

    async fn cancel_meter_event(&self, event_name: &str, identifier: &str) -> Result<(), BillingError> {
        let key = format!("meter-cancel-{identifier}");
        let cancel = CreateBillingMeterEventAdjustmentCancel { identifier: Some(identifier.to_owned()) };
        self.send(Some(&key), || {
            CreateBillingMeterEventAdjustment::new(event_name, stripe_billing::BillingMeterEventAdjustmentType::Cancel)
                .cancel(cancel.clone())
        })
        .await
        .map(|_| ())
    }

    async fn meter_total(
        &self,
        event_name: &str,
        customer_id: &str,
        start: i64,
        end: i64,
    ) -> Result<u64, BillingError> {
        let meter = self.meter_id(event_name).await?;
        let list =
            self.send(None, || ListIdBillingMeterEventSummary::new(meter.as_str(), customer_id, end, start)).await?;
        let total: f64 = list.data.iter().map(|summary| summary.aggregated_value).sum();
        // Meter values here are whole units: a fraction or a negative sum is Stripe's to explain.
        if !total.is_finite() || total < 0.0 || total.fract() != 0.0 || total > u64::MAX as f64 {
            return Err(BillingError::Unavailable(format!("meter summary is not a whole number of units: {total}")));
        }
        Ok(total as u64)
    }

    async fn cancel(
        &self,
        subscription_id: &str,
        at_period_end: bool,
        idempotency_key: &str,
    ) -> Result<RemoteSubscription, BillingError> {
        let sub = if at_period_end {
            self.send(Some(idempotency_key), || UpdateSubscription::new(subscription_id).cancel_at_period_end(true))
                .await?
        } else {
            self.send(Some(idempotency_key), || CancelSubscription::new(subscription_id)).await?
        };
        Ok(remote_subscription(&sub))
    }
}

/// An event as the worker receives it: the envelope and its object (what the handlers read).
fn remote_event(event: &stripe_shared::Event) -> Result<RemoteEvent, BillingError> {
    let object = miniserde::json::to_string(&event.data.object);
    let object: serde_json::Value = serde_json::from_str(&object)
        .map_err(|e| BillingError::Unavailable(format!("unreadable event object: {e}")))?;
    let payload = serde_json::json!({
        "id": event.id.as_str(),
        "object": "event",
        "type": event.type_.as_str(),
        "created": event.created,
        "livemode": event.livemode,
        "data": { "object": object },
    });
    Ok(RemoteEvent { id: event.id.as_str().to_owned(), created: event.created, payload: payload.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;
    use stripe::StripeError;

    const FAST: RetryPolicy =
        RetryPolicy { max_retries: 3, base_delay: Duration::from_millis(1), max_delay: Duration::from_millis(2) };

    #[tokio::test]
    async fn connection_failure_then_success_is_retried() {
        let calls = AtomicU32::new(0);

        let result = retrying(FAST, || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 { Err(StripeError::Timeout) } else { Ok("done") }
        })
        .await;

        assert_eq!(result.unwrap(), "done");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn unreadable_answers_are_not_retried() {
        let calls = AtomicU32::new(0);

        let result: Result<(), _> = retrying(FAST, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(StripeError::JSONDeserialize("missing field".into()))
        })
        .await;

        assert!(matches!(result, Err(BillingError::Unavailable(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn persistent_5xx_gives_up_after_the_retries() {
        let calls = AtomicU32::new(0);

        let result: Result<(), _> = retrying(FAST, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(StripeError::ClientError("connection refused".into()))
        })
        .await;

        assert!(matches!(result, Err(BillingError::Unavailable(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }
}
