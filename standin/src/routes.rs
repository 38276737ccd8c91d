//! The `/v1` endpoints Tollgate calls (see `shared/src/billing/stripe.rs`), those its next
//! features call (invoice payments by payment intent, Billing Meter events and their
//! summaries), and the two lists its end-to-end tests read back. Each checks its parameters as Stripe does (unknown names,
//! missing and malformed values, ids that name nothing), changes the state and answers with the
//! object. Any other route answers Stripe's "Unrecognized request URL".

use serde_json::{Value, json};

use super::allowed;
use super::error::ApiError;
use super::list::{self, Entry};
use super::objects::{self, NewCheckoutSession, NewPortalSession};
use super::params::{Params, display_key};
use super::state::{
    SUBSCRIPTION_STATUSES, SessionPlan, State, Stored, StoredSession, period_end, schedule_cancellation,
};

const DAY: i64 = 86_400;
/// How far back a meter event's `timestamp` may be (35 calendar days) and ahead (5 minutes).
const METER_EVENT_PAST: i64 = 35 * DAY;
const METER_EVENT_FUTURE: i64 = 300;

/// Answers one API request against the state.
pub(crate) fn dispatch(state: &mut State, method: &str, path: &str, params: &Params) -> Result<Value, ApiError> {
    let Some(rest) = path.strip_prefix("/v1/") else {
        return Err(ApiError::unrecognized_url(method, path));
    };
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    match (method, segments.as_slice()) {
        ("POST", ["customers"]) => create_customer(state, params),
        ("GET", ["customers"]) => list_customers(state, params),
        ("POST", ["customers", id]) => update_customer(state, id, params),
        ("GET", ["charges"]) => list_charges(state, params),
        ("GET", ["disputes"]) => list_disputes(state, params),
        ("POST", ["checkout", "sessions"]) => create_checkout_session(state, params),
        ("GET", ["checkout", "sessions"]) => list_checkout_sessions(state, params),
        ("GET", ["checkout", "sessions", id]) => {
            params.allow_only(&[])?;
            state.session(id).map(|s| s.stored.value.clone()).ok_or_else(|| ApiError::no_such("checkout.session", id))
        }
        ("POST", ["checkout", "sessions", id, "expire"]) => {
            params.allow_only(&[])?;
            state.expire_session(id)
        }
        ("POST", ["billing_portal", "sessions"]) => create_portal_session(state, params),
        ("GET", ["subscriptions"]) => list_subscriptions(state, params),
        ("POST", ["subscriptions", id]) => update_subscription(state, id, params),
        ("DELETE", ["subscriptions", id]) => {
            params.allow_only(&[])?;
            state.cancel_subscription(id)
        }
        ("GET", ["prices"]) => list_prices(state, params),
        ("GET", ["charges", id]) => {
            params.allow_only(&[])?;
            state.charge(id).cloned().ok_or_else(|| ApiError::no_such("charge", id))
        }
        ("GET", ["events"]) => list_events(state, params),
        ("GET", ["events", id]) => {
            params.allow_only(&[])?;
            let found = state.events.iter().find(|e| e.value["id"].as_str() == Some(*id));
            found.map(|e| e.value.clone()).ok_or_else(|| ApiError::no_such("event", id))
        }
        ("POST", ["refunds"]) => create_refund(state, params),
        ("GET", ["invoices"]) => list_invoices(state, params),
        ("GET", ["invoice_payments"]) => list_invoice_payments(state, params),
        ("POST", ["billing", "meter_events"]) => create_meter_event(state, params),
        ("POST", ["billing", "meter_event_adjustments"]) => create_meter_event_adjustment(state, params),
        ("GET", ["billing", "meters"]) => list_meters(state, params),
        ("GET", ["billing", "meters", id, "event_summaries"]) => list_meter_event_summaries(state, id, params),
        _ => Err(ApiError::unrecognized_url(method, path)),
    }
}

fn entries(stored: &[Stored]) -> Vec<Entry<'_>> {
    stored.iter().map(|s| Entry { seq: s.seq, value: &s.value }).collect()
}

fn non_empty<'a>(params: &'a Params, path: &[&str]) -> Option<&'a str> {
    params.get(path).filter(|v| !v.is_empty())
}

fn check_url(params: &Params, name: &str) -> Result<Option<String>, ApiError> {
    match non_empty(params, &[name]) {
        None => Ok(None),
        Some(url) if url.starts_with("http://") || url.starts_with("https://") => Ok(Some(url.to_owned())),
        Some(_) => Err(ApiError::invalid_with_code(name, "url_invalid", "Not a valid URL".into())),
    }
}

fn create_customer(state: &mut State, params: &Params) -> Result<Value, ApiError> {
    params.allow_only(allowed::CUSTOMER_CREATE)?;
    let mut customer = state.new_customer();
    params.apply_metadata(&["metadata"], &mut customer["metadata"]);
    state.insert_customer(customer.clone());
    Ok(customer)
}

fn list_customers(state: &State, params: &Params) -> Result<Value, ApiError> {
    params.allow_only(allowed::PAGE)?;
    let live: Vec<Entry<'_>> =
        state.customers.iter().filter(|c| !c.deleted).map(|c| Entry { seq: c.seq, value: &c.value }).collect();
    list::page(live, |_| true, params, "/v1/customers", "customer")
}

/// Updates a customer's metadata (Stripe merges the keys given; an empty value removes one).
fn update_customer(state: &mut State, id: &str, params: &Params) -> Result<Value, ApiError> {
    params.allow_only(allowed::CUSTOMER_UPDATE)?;
    let stored = state
        .customers
        .iter_mut()
        .find(|c| !c.deleted && c.value["id"].as_str() == Some(id))
        .ok_or_else(|| ApiError::no_such("customer", id))?;
    let previous = json!({ "metadata": stored.value["metadata"].clone() });
    params.apply_metadata(&["metadata"], &mut stored.value["metadata"]);
    let customer = stored.value.clone();
    state.record_event("customer.updated", customer.clone(), Some(previous));
    Ok(customer)
}

/// A customer's charges (`customer` filter), newest first.
fn list_charges(state: &State, params: &Params) -> Result<Value, ApiError> {
    params.allow_only(allowed::CHARGE_LIST)?;
    let customer = non_empty(params, &["customer"]);
    list::page(
        entries(&state.charges),
        |c| customer.is_none_or(|customer| c["customer"].as_str() == Some(customer)),
        params,
        "/v1/charges",
        "charge",
    )
}

/// Disputes, of one charge or payment intent when filtered (Stripe's list has no customer
/// filter), newest first.
fn list_disputes(state: &State, params: &Params) -> Result<Value, ApiError> {
    params.allow_only(allowed::DISPUTE_LIST)?;
    let charge = non_empty(params, &["charge"]);
    let payment_intent = non_empty(params, &["payment_intent"]);
    list::page(
        entries(&state.disputes),
        |d| {
            charge.is_none_or(|c| d["charge"].as_str() == Some(c))
                && payment_intent.is_none_or(|p| d["payment_intent"].as_str() == Some(p))
        },
        params,
        "/v1/disputes",
        "dispute",
    )
}

/// A Checkout Session's line items as (price id, quantity).
struct LineItems {
    items: Vec<(String, i64)>,
    /// What they come to, in the smallest unit of `currency`.
    amount: i64,
    /// Their prices' currency (`usd` when there is no item).
    currency: String,
}

/// The session's line items, and the amount they come to.
fn line_items(state: &State, params: &Params, mode: &str) -> Result<LineItems, ApiError> {
    let mut items = Vec::new();
    let mut amount = 0;
    let mut currency: Option<String> = None;
    for (index, item) in params.groups(&["line_items"]) {
        let key = |field: &str| display_key(&["line_items", &index, field]);
        let price_id = non_empty(&item, &["price"]).ok_or_else(|| ApiError::missing_param(&key("price")))?;
        let price = state.price(price_id).ok_or_else(|| ApiError::no_such_param("price", price_id, &key("price")))?;
        let quantity = match non_empty(&item, &["quantity"]) {
            None => 1,
            Some(raw) => raw.parse().map_err(|_| ApiError::invalid_integer(&key("quantity"), raw))?,
        };
        if quantity < 1 {
            return Err(ApiError::invalid_value(&key("quantity"), "This value must be greater than or equal to 1."));
        }
        if mode == "payment" && price["type"] == "recurring" {
            return Err(ApiError::invalid_value(
                &key("price"),
                "You specified `payment` mode but passed a recurring price. Either switch to \
                 `subscription` mode or use only one-time prices.",
            ));
        }
        if mode == "subscription" && price["type"] != "recurring" {
            return Err(ApiError::invalid_value(
                &key("price"),
                "You must provide at least one recurring price in `subscription` mode when using prices.",
            ));
        }
        let price_currency = price["currency"].as_str().unwrap_or_default();
        if currency.as_deref().is_some_and(|first| first != price_currency) {
            return Err(ApiError::invalid_value(&key("price"), "All prices must be in the same currency."));
        }
        currency = Some(price_currency.to_owned());
        amount += price["unit_amount"].as_i64().unwrap_or_default() * quantity;
        items.push((price_id.to_owned(), quantity));
    }
    Ok(LineItems { items, amount, currency: currency.unwrap_or_else(|| "usd".to_owned()) })
}

pub(crate) fn create_checkout_session(state: &mut State, params: &Params) -> Result<Value, ApiError> {
    params.allow_only(allowed::CHECKOUT_CREATE)?;
    params.allow_only_under(&["subscription_data"], allowed::CHECKOUT_SUBSCRIPTION_DATA)?;
    params.allow_only_under(&["line_items", "*"], allowed::LINE_ITEM)?;
    let mode = params.require(&["mode"])?;
    if !["payment", "subscription"].contains(&mode) {
        return Err(ApiError::invalid_value(
            "mode",
            format!("Invalid mode: {mode}. The local Stripe stand-in serves payment and subscription."),
        ));
    }
    let customer = non_empty(params, &["customer"]);
    if let Some(customer) = customer
        && state.live_customer(customer).is_none()
    {
        return Err(ApiError::no_such_param("customer", customer, "customer"));
    }
    let LineItems { items, amount, currency } = line_items(state, params, mode)?;
    if items.is_empty() {
        return Err(ApiError::missing_param("line_items"));
    }
    if mode != "subscription" && params.has(&["subscription_data"]) {
        return Err(ApiError::invalid_value(
            "subscription_data",
            "You can only specify `subscription_data` in `subscription` mode.",
        ));
    }
    let now = state.now();
    // Stripe's range: 30 minutes to 24 hours after creation (default 24 hours).
    let expires_at = params.int(&["expires_at"])?.unwrap_or(now + DAY);
    if !(now + 1_800..=now + DAY).contains(&expires_at) {
        return Err(ApiError::invalid_value(
            "expires_at",
            "The `expires_at` timestamp must be between 30 minutes and 24 hours from the Checkout Session's creation.",
        ));
    }
    let trial_days = params.int(&["subscription_data", "trial_period_days"])?;
    if trial_days.is_some_and(|days| days < 1) {
        return Err(ApiError::invalid_value(
            "subscription_data[trial_period_days]",
            "This value must be greater than or equal to 1.",
        ));
    }
    let success_url = check_url(params, "success_url")?;
    let cancel_url = check_url(params, "cancel_url")?;
    let client_reference_id = non_empty(params, &["client_reference_id"]);
    if client_reference_id.is_some_and(|id| id.len() > 200) {
        return Err(ApiError::invalid_value(
            "client_reference_id",
            "client_reference_id must be at most 200 characters.",
        ));
    }
    let mut metadata = json!({});
    params.apply_metadata(&["metadata"], &mut metadata);
    let mut subscription_metadata = json!({});
    params.apply_metadata(&["subscription_data", "metadata"], &mut subscription_metadata);

    let id = state.new_id("cs_test_", 58);
    let session = objects::checkout_session(NewCheckoutSession {
        id: &id,
        created: now,
        expires_at,
        mode,
        customer,
        client_reference_id,
        success_url: success_url.as_deref(),
        cancel_url: cancel_url.as_deref(),
        metadata,
        amount: if trial_days.is_some() { 0 } else { amount },
        currency: &currency,
        url: format!("{}/checkout/{id}", state.public_base),
    });
    let seq = state.next_seq();
    state.sessions.push(StoredSession {
        stored: Stored { seq, value: session.clone(), deleted: false },
        plan: SessionPlan { items, trial_days, metadata: subscription_metadata },
    });
    Ok(session)
}

/// Refunds a payment intent's charge in full (what Tollgate asks when it cancels a subscription
/// that should not exist).
fn create_refund(state: &mut State, params: &Params) -> Result<Value, ApiError> {
    params.allow_only(allowed::REFUND_CREATE)?;
    let payment_intent = params.require(&["payment_intent"])?;
    let charge = state
        .charges
        .iter()
        .map(|c| &c.value)
        .find(|c| c["payment_intent"].as_str() == Some(payment_intent))
        .cloned()
        .ok_or_else(|| ApiError::no_such_param("payment_intent", payment_intent, "payment_intent"))?;
    if charge["refunded"] == true {
        return Err(ApiError::invalid_state(format!(
            "Charge {} has already been refunded.",
            charge["id"].as_str().unwrap_or_default()
        )));
    }
    Ok(state.refund_charge(&charge))
}

fn list_checkout_sessions(state: &State, params: &Params) -> Result<Value, ApiError> {
    params.allow_only(allowed::PAGE)?;
    let all: Vec<Entry<'_>> =
        state.sessions.iter().map(|s| Entry { seq: s.stored.seq, value: &s.stored.value }).collect();
    list::page(all, |_| true, params, "/v1/checkout/sessions", "checkout.session")
}

fn create_portal_session(state: &mut State, params: &Params) -> Result<Value, ApiError> {
    params.allow_only(allowed::PORTAL_CREATE)?;
    let customer = params.require(&["customer"])?;
    if state.live_customer(customer).is_none() {
        return Err(ApiError::no_such_param("customer", customer, "customer"));
    }
    let return_url = check_url(params, "return_url")?;
    let id = state.new_id("bps_", 24);
    let session = objects::portal_session(NewPortalSession {
        id: &id,
        created: state.now(),
        customer,
        return_url: return_url.as_deref(),
        url: format!("{}/billing_portal/{id}", state.public_base),
    });
    state.portal_sessions.push(session.clone());
    Ok(session)
}

fn list_subscriptions(state: &State, params: &Params) -> Result<Value, ApiError> {
    params.allow_only(allowed::SUBSCRIPTION_LIST)?;
    let customer = non_empty(params, &["customer"]);
    let status = non_empty(params, &["status"]);
    if let Some(status) = status
        && status != "all"
        && status != "ended"
        && !SUBSCRIPTION_STATUSES.contains(&status)
    {
        return Err(ApiError::invalid_value(
            "status",
            format!("Invalid status: must be one of all, ended, {}.", SUBSCRIPTION_STATUSES.join(", ")),
        ));
    }
    list::page(
        entries(&state.subscriptions),
        |s| {
            let current = s["status"].as_str().unwrap_or_default();
            let status_matches = match status {
                None => current != "canceled",
                Some("all") => true,
                Some("ended") => current == "canceled" || current == "incomplete_expired",
                Some(wanted) => current == wanted,
            };
            status_matches && customer.is_none_or(|c| s["customer"].as_str() == Some(c))
        },
        params,
        "/v1/subscriptions",
        "subscription",
    )
}

fn same_interval(a: &Value, b: &Value) -> bool {
    a["recurring"]["interval"] == b["recurring"]["interval"]
        && a["recurring"]["interval_count"] == b["recurring"]["interval_count"]
}

/// A price change of existing items (`items[i][id]` with `items[i][price]`), with
/// `proration_behavior`, and `cancel_at_period_end`: what Tollgate's plan change and
/// cancellation send.
pub(crate) fn update_subscription(state: &mut State, id: &str, params: &Params) -> Result<Value, ApiError> {
    params.allow_only(allowed::SUBSCRIPTION_UPDATE)?;
    params.allow_only_under(&["items", "*"], allowed::SUBSCRIPTION_ITEM)?;
    let mut updated = state.subscription(id).cloned().ok_or_else(|| ApiError::no_such("subscription", id))?;
    if updated["status"] == "canceled" {
        return Err(ApiError::invalid_state(
            "A canceled subscription can only update its cancellation_details and metadata.",
        ));
    }
    if let Some(behavior) = non_empty(params, &["proration_behavior"])
        && !["always_invoice", "create_prorations", "none"].contains(&behavior)
    {
        return Err(ApiError::invalid_value(
            "proration_behavior",
            format!(
                "Invalid proration_behavior: {behavior}. Must be one of always_invoice, \
                 create_prorations, or none."
            ),
        ));
    }
    let now = state.now();
    let trialing = updated["status"] == "trialing";
    let mut items: Vec<Value> = updated["items"]["data"].as_array().cloned().unwrap_or_default();
    let mut reset_period = false;
    for (index, item) in params.groups(&["items"]) {
        let key = |field: &str| display_key(&["items", &index, field]);
        let item_id = non_empty(&item, &["id"]).ok_or_else(|| ApiError::missing_param(&key("id")))?;
        let price_id = non_empty(&item, &["price"]).ok_or_else(|| ApiError::missing_param(&key("price")))?;
        let price =
            state.price(price_id).cloned().ok_or_else(|| ApiError::no_such_param("price", price_id, &key("price")))?;
        let existing = items
            .iter_mut()
            .find(|i| i["id"].as_str() == Some(item_id))
            .ok_or_else(|| ApiError::no_such_param("subscription_item", item_id, &key("id")))?;
        if !same_interval(&existing["price"], &price) {
            reset_period = true;
        }
        existing["plan"] = objects::plan(&price);
        existing["price"] = price;
    }
    if reset_period && !trialing {
        for item in &mut items {
            let end = period_end(&item["price"], now);
            item["current_period_start"] = json!(now);
            item["current_period_end"] = json!(end);
        }
        updated["billing_cycle_anchor"] = json!(now);
    }
    updated["items"]["data"] = json!(items);
    if let Some(at_period_end) = params.bool(&["cancel_at_period_end"])? {
        schedule_cancellation(&mut updated, at_period_end);
    }
    state.change_subscription(id, "customer.subscription.updated", |subscription, _| {
        *subscription = updated;
        Ok(())
    })
}

fn list_prices(state: &State, params: &Params) -> Result<Value, ApiError> {
    params.allow_only(allowed::PRICE_LIST)?;
    let lookup_keys = params.list(&["lookup_keys"]);
    let active = params.bool(&["active"])?;
    let all: Vec<Entry<'_>> = state.prices.iter().zip(1..).map(|(value, seq)| Entry { seq, value }).collect();
    list::page(
        all,
        |p| {
            (lookup_keys.is_empty() || lookup_keys.iter().any(|k| p["lookup_key"].as_str() == Some(k.as_str())))
                && active.is_none_or(|a| p["active"] == a)
        },
        params,
        "/v1/prices",
        "price",
    )
}

fn list_events(state: &State, params: &Params) -> Result<Value, ApiError> {
    params.allow_only(allowed::EVENT_LIST)?;
    params.allow_only_under(&["created"], &["gte"])?;
    let kinds = params.list(&["types"]);
    let created_gte = params.int(&["created", "gte"])?;
    list::page(
        entries(&state.events),
        |e| {
            let event_kind = e["type"].as_str().unwrap_or_default();
            (kinds.is_empty() || kinds.iter().any(|k| k == event_kind))
                && created_gte.is_none_or(|gte| e["created"].as_i64().is_some_and(|created| created >= gte))
        },
        params,
        "/v1/events",
        "event",
    )
}

/// Invoices, newest first: all, one customer's (`customer`), or those in one `status`.
fn list_invoices(state: &State, params: &Params) -> Result<Value, ApiError> {
    const STATUSES: [&str; 5] = ["draft", "open", "paid", "uncollectible", "void"];
    params.allow_only(allowed::INVOICE_LIST)?;
    let customer = non_empty(params, &["customer"]);
    let status = non_empty(params, &["status"]);
    if let Some(status) = status
        && !STATUSES.contains(&status)
    {
        return Err(ApiError::invalid_value(
            "status",
            format!("Invalid status: must be one of {}.", STATUSES.join(", ")),
        ));
    }
    list::page(
        entries(&state.invoices),
        |i| {
            customer.is_none_or(|c| i["customer"].as_str() == Some(c))
                && status.is_none_or(|s| i["status"].as_str() == Some(s))
        },
        params,
        "/v1/invoices",
        "invoice",
    )
}

/// Invoice payments, newest first: all, one invoice's (`invoice`), or one payment intent's
/// (`payment[type]=payment_intent&payment[payment_intent]=pi_...`).
fn list_invoice_payments(state: &State, params: &Params) -> Result<Value, ApiError> {
    params.allow_only(allowed::INVOICE_PAYMENT_LIST)?;
    params.allow_only_under(&["payment"], allowed::INVOICE_PAYMENT_PAYMENT)?;
    let invoice = non_empty(params, &["invoice"]);
    let payment_intent = if params.has(&["payment"]) {
        let kind = params.require(&["payment", "type"])?;
        if kind != "payment_intent" {
            return Err(ApiError::invalid_value(
                "payment[type]",
                format!(
                    "Invalid payment[type]: {kind}. The local Stripe stand-in records payment_intent payments only."
                ),
            ));
        }
        non_empty(params, &["payment", "payment_intent"])
    } else {
        None
    };
    list::page(
        entries(&state.invoice_payments),
        |p| {
            invoice.is_none_or(|id| p["invoice"].as_str() == Some(id))
                && payment_intent.is_none_or(|id| p["payment"]["payment_intent"].as_str() == Some(id))
        },
        params,
        "/v1/invoice_payments",
        "invoice_payment",
    )
}

/// Accepts a meter event as Stripe does: synchronously only its shape is checked (the meter
/// and the customer are matched later, so an event naming neither is accepted and never
/// counted); an `identifier` already used is refused, so a retried report counts once.
fn create_meter_event(state: &mut State, params: &Params) -> Result<Value, ApiError> {
    params.allow_only(allowed::METER_EVENT_CREATE)?;
    let event_name = params.require(&["event_name"])?.to_owned();
    if !params.has(&["payload"]) {
        return Err(ApiError::missing_param("payload"));
    }
    let now = state.now();
    let timestamp = params.int(&["timestamp"])?.unwrap_or(now);
    if !(now - METER_EVENT_PAST..=now + METER_EVENT_FUTURE).contains(&timestamp) {
        return Err(ApiError::invalid_value(
            "timestamp",
            "The timestamp must be within the past 35 calendar days or up to 5 minutes in the future.",
        ));
    }
    let identifier = match non_empty(params, &["identifier"]) {
        Some(identifier) => identifier.to_owned(),
        None => state.new_id("", 32),
    };
    if state.meter_events.iter().any(|e| e["identifier"].as_str() == Some(identifier.as_str())) {
        return Err(ApiError::invalid_value(
            "identifier",
            format!("An event already exists with identifier {identifier}."),
        ));
    }
    let mut payload = json!({});
    params.apply_metadata(&["payload"], &mut payload);
    let event = objects::meter_event(&event_name, &identifier, payload, timestamp, now);
    state.meter_events.push(event.clone());
    Ok(event)
}

/// One summary per call: the sum of the meter's event values for `customer` with
/// `start_time <= timestamp < end_time`.
fn list_meter_event_summaries(state: &mut State, meter_id: &str, params: &Params) -> Result<Value, ApiError> {
    params.allow_only(allowed::METER_EVENT_SUMMARY_LIST)?;
    let meter = find_meter(state, meter_id)?;
    let customer = params.require(&["customer"])?.to_owned();
    let start = params.int(&["start_time"])?.ok_or_else(|| ApiError::missing_param("start_time"))?;
    let end = params.int(&["end_time"])?.ok_or_else(|| ApiError::missing_param("end_time"))?;
    if start >= end {
        return Err(ApiError::invalid_value("end_time", "end_time must be after start_time."));
    }
    let customer_key = meter["customer_mapping"]["event_payload_key"].as_str().unwrap_or_default();
    let value_key = meter["value_settings"]["event_payload_key"].as_str().unwrap_or_default();
    let total: f64 = state
        .meter_events
        .iter()
        .filter(|e| e["event_name"] == meter["event_name"] && e["payload"][customer_key] == json!(customer))
        .filter(|e| e["timestamp"].as_i64().is_some_and(|t| (start..end).contains(&t)))
        .filter(|e| !e["identifier"].as_str().is_some_and(|id| state.cancelled_meter_events.iter().any(|c| c == id)))
        .filter_map(|e| e["payload"][value_key].as_str().and_then(|v| v.parse::<f64>().ok()))
        .sum();
    let id = state.new_id("mtrusg_", 24);
    let summary = objects::meter_event_summary(&id, meter_id, (start, end), total);
    list::page(
        vec![Entry { seq: 1, value: &summary }],
        |_| true,
        params,
        &format!("/v1/billing/meters/{meter_id}/event_summaries"),
        "billing.meter_event_summary",
    )
}

fn list_meters(state: &State, params: &Params) -> Result<Value, ApiError> {
    params.allow_only(allowed::METER_LIST)?;
    let status = non_empty(params, &["status"]);
    list::page(
        entries(&state.meters),
        |meter| status.is_none_or(|s| meter["status"] == s),
        params,
        "/v1/billing/meters",
        "billing.meter",
    )
}

/// Cancels one meter event by identifier, as Stripe allows within 24 hours of receiving it.
fn create_meter_event_adjustment(state: &mut State, params: &Params) -> Result<Value, ApiError> {
    params.allow_only(allowed::METER_EVENT_ADJUSTMENT_CREATE)?;
    params.allow_only_under(&["cancel"], allowed::METER_EVENT_ADJUSTMENT_CANCEL)?;
    let event_name = params.require(&["event_name"])?.to_owned();
    if params.require(&["type"])? != "cancel" {
        return Err(ApiError::invalid_value("type", "Invalid type: must be `cancel`."));
    }
    let identifier = non_empty(params, &["cancel", "identifier"])
        .ok_or_else(|| ApiError::missing_param("cancel[identifier]"))?
        .to_owned();
    let now = state.now();
    let event = state
        .meter_events
        .iter()
        .find(|e| e["identifier"].as_str() == Some(identifier.as_str()) && e["event_name"] == json!(event_name))
        .ok_or_else(|| ApiError::no_such_param("billing.meter_event", &identifier, "cancel[identifier]"))?;
    if event["created"].as_i64().is_some_and(|created| now - created > DAY) {
        return Err(ApiError::invalid_value(
            "cancel[identifier]",
            "Meter events can only be cancelled within 24 hours of being received.",
        ));
    }
    if state.cancelled_meter_events.contains(&identifier) {
        return Err(ApiError::invalid_value("cancel[identifier]", "This meter event was cancelled already."));
    }
    state.cancelled_meter_events.push(identifier.clone());
    Ok(objects::meter_event_adjustment(&event_name, &identifier))
}

fn find_meter(state: &State, id: &str) -> Result<Value, ApiError> {
    state
        .meters
        .iter()
        .map(|m| &m.value)
        .find(|m| m["id"].as_str() == Some(id))
        .cloned()
        .ok_or_else(|| ApiError::no_such("billing.meter", id))
}
