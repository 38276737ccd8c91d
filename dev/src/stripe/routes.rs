//! The `/v1` endpoints: each checks its parameters as Stripe does (unknown names, missing and
//! malformed values, ids that name nothing), changes the state and answers with the object.

use serde_json::{Value, json};

use super::allowed;
use super::error::ApiError;
use super::expand;
use super::list::{self, Entry, Range};
use super::objects::{self, NewCheckoutSession, NewPortalSession};
use super::params::{Params, display_key};
use super::state::{
    SUBSCRIPTION_STATUSES, SessionPlan, State, Stored, StoredSession, SubscriptionRequest, period_end,
    schedule_cancellation,
};

const DAY: i64 = 86_400;

/// Answers one API request against the state.
pub(crate) fn dispatch(state: &mut State, method: &str, path: &str, params: &Params) -> Result<Value, ApiError> {
    let Some(rest) = path.strip_prefix("/v1/") else {
        return Err(ApiError::unrecognized_url(method, path));
    };
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let mut answer = match (method, segments.as_slice()) {
        ("POST", ["customers"]) => create_customer(state, params),
        ("GET", ["customers"]) => list_customers(state, params),
        ("GET", ["customers", id]) => retrieve_customer(state, id, params),
        ("POST", ["customers", id]) => update_customer(state, id, params),
        ("DELETE", ["customers", id]) => delete_customer(state, id, params),
        ("POST", ["checkout", "sessions"]) => create_checkout_session(state, params),
        ("GET", ["checkout", "sessions"]) => list_checkout_sessions(state, params),
        ("GET", ["checkout", "sessions", id]) => retrieve_checkout_session(state, id, params),
        ("POST", ["checkout", "sessions", id, "expire"]) => {
            params.allow_only(allowed::EXPAND_ONLY)?;
            state.expire_checkout_session(id)
        }
        ("POST", ["billing_portal", "sessions"]) => create_portal_session(state, params),
        ("POST", ["subscriptions"]) => create_subscription(state, params),
        ("GET", ["subscriptions"]) => list_subscriptions(state, params),
        ("GET", ["subscriptions", id]) => retrieve_subscription(state, id, params),
        ("POST", ["subscriptions", id]) => update_subscription(state, id, params),
        ("DELETE", ["subscriptions", id]) => cancel_subscription(state, id, params),
        ("GET", ["prices"]) => list_prices(state, params),
        ("GET", ["prices", id]) => {
            params.allow_only(allowed::EXPAND_ONLY)?;
            state.price(id).cloned().ok_or_else(|| ApiError::no_such("price", id))
        }
        ("GET", ["products", id]) => {
            params.allow_only(allowed::EXPAND_ONLY)?;
            state.product(id).cloned().ok_or_else(|| ApiError::no_such("product", id))
        }
        ("GET", ["invoices", id]) => {
            params.allow_only(allowed::EXPAND_ONLY)?;
            state.invoice(id).cloned().ok_or_else(|| ApiError::no_such("invoice", id))
        }
        ("GET", ["charges", id]) => {
            params.allow_only(allowed::EXPAND_ONLY)?;
            state.charge(id).cloned().ok_or_else(|| ApiError::no_such("charge", id))
        }
        ("GET", ["disputes", id]) => {
            params.allow_only(allowed::EXPAND_ONLY)?;
            state.dispute(id).cloned().ok_or_else(|| ApiError::no_such("dispute", id))
        }
        ("GET", ["events"]) => list_events(state, params),
        ("GET", ["events", id]) => {
            params.allow_only(allowed::EXPAND_ONLY)?;
            state
                .events
                .iter()
                .find(|e| e.value["id"].as_str() == Some(*id))
                .map(|e| e.value.clone())
                .ok_or_else(|| ApiError::no_such("event", id))
        }
        _ => Err(ApiError::unrecognized_url(method, path)),
    }?;
    expand::apply(state, &mut answer, &params.list(&["expand"]))?;
    Ok(answer)
}

fn entries(stored: &[Stored]) -> Vec<Entry<'_>> {
    stored.iter().map(|s| Entry { seq: s.seq, value: &s.value }).collect()
}

fn non_empty<'a>(params: &'a Params, path: &[&str]) -> Option<&'a str> {
    params.get(path).filter(|v| !v.is_empty())
}

fn nullable(value: &str) -> Value {
    if value.is_empty() { Value::Null } else { json!(value) }
}

fn check_url(params: &Params, name: &str) -> Result<Option<String>, ApiError> {
    match non_empty(params, &[name]) {
        None => Ok(None),
        Some(url) if url.starts_with("http://") || url.starts_with("https://") => Ok(Some(url.to_owned())),
        Some(_) => Err(ApiError::invalid_with_code(name, "url_invalid", "Not a valid URL".into())),
    }
}

fn apply_customer_fields(customer: &mut Value, params: &Params) -> Result<(), ApiError> {
    if let Some(email) = params.get(&["email"]) {
        if !email.is_empty() && !email.contains('@') {
            return Err(ApiError::invalid_with_code(
                "email",
                "email_invalid",
                format!("Invalid email address: {email}"),
            ));
        }
        customer["email"] = nullable(email);
    }
    for field in ["name", "description", "phone"] {
        if let Some(value) = params.get(&[field]) {
            customer[field] = nullable(value);
        }
    }
    if params.has(&["metadata"]) {
        params.apply_metadata(&["metadata"], &mut customer["metadata"]);
    }
    if params.has(&["address"]) {
        let mut address = json!({
            "city": null, "country": null, "line1": null, "line2": null,
            "postal_code": null, "state": null,
        });
        for (key, value) in params.map(&["address"]) {
            if address.get(&key).is_some() {
                address[key.as_str()] = nullable(&value);
            }
        }
        customer["address"] = address;
    }
    if params.has(&["preferred_locales"]) {
        customer["preferred_locales"] = json!(params.list(&["preferred_locales"]));
    }
    Ok(())
}

fn create_customer(state: &mut State, params: &Params) -> Result<Value, ApiError> {
    params.allow_only(allowed::CUSTOMER_CREATE)?;
    let mut customer = state.new_customer();
    apply_customer_fields(&mut customer, params)?;
    state.insert_customer(customer.clone());
    Ok(customer)
}

fn retrieve_customer(state: &State, id: &str, params: &Params) -> Result<Value, ApiError> {
    params.allow_only(allowed::EXPAND_ONLY)?;
    match state.customer(id) {
        Some(stored) if stored.deleted => Ok(objects::deleted_customer(id)),
        Some(stored) => Ok(stored.value.clone()),
        None => Err(ApiError::no_such("customer", id)),
    }
}

fn update_customer(state: &mut State, id: &str, params: &Params) -> Result<Value, ApiError> {
    params.allow_only(allowed::CUSTOMER_UPDATE)?;
    let mut updated = state.live_customer(id).cloned().ok_or_else(|| ApiError::no_such("customer", id))?;
    apply_customer_fields(&mut updated, params)?;
    state.update_customer(id, |customer| *customer = updated)
}

fn delete_customer(state: &mut State, id: &str, params: &Params) -> Result<Value, ApiError> {
    params.allow_only(&[])?;
    state.delete_customer(id)
}

fn list_customers(state: &State, params: &Params) -> Result<Value, ApiError> {
    params.allow_only(allowed::CUSTOMER_LIST)?;
    let email = non_empty(params, &["email"]);
    let created = Range::from_params(params, "created")?;
    let live: Vec<Entry<'_>> =
        state.customers.iter().filter(|c| !c.deleted).map(|c| Entry { seq: c.seq, value: &c.value }).collect();
    list::page(
        live,
        |c| email.is_none_or(|e| c["email"].as_str() == Some(e)) && created.contains(c["created"].as_i64()),
        params,
        "/v1/customers",
        "customer",
    )
}

fn line_items(state: &State, params: &Params, mode: &str) -> Result<(Vec<(String, i64)>, i64), ApiError> {
    let mut items = Vec::new();
    let mut amount = 0;
    for (index, item) in params.groups(&["line_items"]) {
        let key = |field: &str| display_key(&["line_items", &index, field]);
        if item.has(&["price_data"]) {
            return Err(ApiError::invalid_value(
                &key("price_data"),
                "The local Stripe stand-in only supports line items that name a `price`.",
            ));
        }
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
        amount += price["unit_amount"].as_i64().unwrap_or_default() * quantity;
        items.push((price_id.to_owned(), quantity));
    }
    Ok((items, amount))
}

pub(crate) fn create_checkout_session(state: &mut State, params: &Params) -> Result<Value, ApiError> {
    params.allow_only(allowed::CHECKOUT_CREATE)?;
    let mode = params.require(&["mode"])?;
    if !["payment", "setup", "subscription"].contains(&mode) {
        return Err(ApiError::invalid_value(
            "mode",
            format!("Invalid mode: {mode}. Must be one of payment, setup, or subscription."),
        ));
    }
    let customer = non_empty(params, &["customer"]);
    if let Some(customer) = customer
        && state.live_customer(customer).is_none()
    {
        return Err(ApiError::no_such_param("customer", customer, "customer"));
    }
    let customer_email = non_empty(params, &["customer_email"]);
    if customer.is_some() && customer_email.is_some() {
        return Err(ApiError::invalid_state("You may only specify one of these parameters: customer, customer_email."));
    }
    let (items, amount) = line_items(state, params, mode)?;
    if mode == "subscription" && items.is_empty() {
        return Err(ApiError::missing_param("line_items"));
    }
    if mode != "subscription" && params.has(&["subscription_data"]) {
        return Err(ApiError::invalid_value(
            "subscription_data",
            "You can only specify `subscription_data` in `subscription` mode.",
        ));
    }
    let now = state.now();
    let trial_days = params.int(&["subscription_data", "trial_period_days"])?;
    if trial_days.is_some_and(|days| days < 1) {
        return Err(ApiError::invalid_value(
            "subscription_data[trial_period_days]",
            "This value must be greater than or equal to 1.",
        ));
    }
    let trial_end = params.int(&["subscription_data", "trial_end"])?;
    if trial_end.is_some_and(|end| end <= now) {
        return Err(ApiError::invalid_value(
            "subscription_data[trial_end]",
            "The `trial_end` date has to be in the future.",
        ));
    }
    let success_url = check_url(params, "success_url")?;
    let cancel_url = check_url(params, "cancel_url")?;
    let expires_at = params.int(&["expires_at"])?.unwrap_or(now + DAY);
    if !(now + 1_800..=now + DAY).contains(&expires_at) {
        return Err(ApiError::invalid_value(
            "expires_at",
            "The `expires_at` timestamp must be between 30 minutes and 24 hours from Checkout \
             Session creation.",
        ));
    }
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
    let has_trial = trial_days.is_some() || trial_end.is_some();
    let mut session = objects::checkout_session(NewCheckoutSession {
        id: &id,
        created: now,
        expires_at,
        mode,
        customer,
        customer_email,
        client_reference_id,
        success_url: success_url.as_deref(),
        cancel_url: cancel_url.as_deref(),
        metadata,
        amount: if has_trial { 0 } else { amount },
        url: format!("http://127.0.0.1/stripe-standin/checkout/{id}"),
    });
    if let Some(locale) = non_empty(params, &["locale"]) {
        session["locale"] = json!(locale);
    }
    if let Some(allow) = params.bool(&["allow_promotion_codes"])? {
        session["allow_promotion_codes"] = json!(allow);
    }
    if let Some(creation) = non_empty(params, &["customer_creation"]) {
        session["customer_creation"] = json!(creation);
    }
    if mode == "setup" {
        session["amount_subtotal"] = Value::Null;
        session["amount_total"] = Value::Null;
        session["currency"] = Value::Null;
    }
    let seq = state.next_seq();
    state.sessions.push(StoredSession {
        stored: Stored { seq, value: session.clone(), deleted: false },
        plan: SessionPlan {
            items,
            trial_days,
            trial_end,
            metadata: subscription_metadata,
            description: non_empty(params, &["subscription_data", "description"]).map(str::to_owned),
        },
    });
    Ok(session)
}

fn retrieve_checkout_session(state: &State, id: &str, params: &Params) -> Result<Value, ApiError> {
    params.allow_only(allowed::EXPAND_ONLY)?;
    state.session(id).map(|s| s.stored.value.clone()).ok_or_else(|| ApiError::no_such("checkout.session", id))
}

fn list_checkout_sessions(state: &State, params: &Params) -> Result<Value, ApiError> {
    params.allow_only(allowed::CHECKOUT_LIST)?;
    let customer = non_empty(params, &["customer"]);
    let subscription = non_empty(params, &["subscription"]);
    let status = non_empty(params, &["status"]);
    let created = Range::from_params(params, "created")?;
    let all: Vec<Entry<'_>> =
        state.sessions.iter().map(|s| Entry { seq: s.stored.seq, value: &s.stored.value }).collect();
    list::page(
        all,
        |s| {
            customer.is_none_or(|c| s["customer"].as_str() == Some(c))
                && subscription.is_none_or(|id| s["subscription"].as_str() == Some(id))
                && status.is_none_or(|st| s["status"].as_str() == Some(st))
                && created.contains(s["created"].as_i64())
        },
        params,
        "/v1/checkout/sessions",
        "checkout.session",
    )
}

fn portal_flow(state: &State, customer: &str, params: &Params) -> Result<Value, ApiError> {
    let kind = params.require(&["flow_data", "type"])?;
    let kinds = [
        "customer_update",
        "payment_method_update",
        "subscription_cancel",
        "subscription_update",
        "subscription_update_confirm",
    ];
    if !kinds.contains(&kind) {
        return Err(ApiError::invalid_value(
            "flow_data[type]",
            format!("Invalid flow_data[type]: must be one of {}.", kinds.join(", ")),
        ));
    }
    let after_type = non_empty(params, &["flow_data", "after_completion", "type"]).unwrap_or("portal_homepage");
    let after_completion = match after_type {
        "portal_homepage" => {
            json!({ "type": after_type, "hosted_confirmation": null, "redirect": null })
        }
        "hosted_confirmation" => json!({
            "type": after_type,
            "hosted_confirmation": {
                "custom_message": non_empty(params, &["flow_data", "after_completion", "hosted_confirmation", "custom_message"]),
            },
            "redirect": null,
        }),
        "redirect" => json!({
            "type": after_type,
            "hosted_confirmation": null,
            "redirect": {
                "return_url": params.require(&["flow_data", "after_completion", "redirect", "return_url"])?,
            },
        }),
        other => {
            return Err(ApiError::invalid_value(
                "flow_data[after_completion][type]",
                format!(
                    "Invalid flow_data[after_completion][type]: {other}. Must be one of \
                     hosted_confirmation, portal_homepage, or redirect."
                ),
            ));
        }
    };
    let mut flow = json!({
        "type": kind,
        "after_completion": after_completion,
        "customer_update": null,
        "subscription_cancel": null,
        "subscription_update": null,
        "subscription_update_confirm": null,
    });
    if kind == "payment_method_update" {
        return Ok(flow);
    }
    if kind == "customer_update" {
        let allowed = params.list(&["flow_data", "customer_update", "allowed_updates"]);
        flow["customer_update"] = json!({ "allowed_updates": allowed });
        return Ok(flow);
    }
    let param = display_key(&["flow_data", kind, "subscription"]);
    let subscription = params.require(&["flow_data", kind, "subscription"])?;
    let owned = state
        .subscription(subscription)
        .is_some_and(|s| s["customer"].as_str() == Some(customer) && s["status"] != "canceled");
    if !owned {
        return Err(ApiError::no_such_param("subscription", subscription, &param));
    }
    flow[kind] = match kind {
        "subscription_cancel" => json!({ "subscription": subscription, "retention": null }),
        "subscription_update" => json!({ "subscription": subscription }),
        _ => {
            let items: Vec<Value> = params
                .groups(&["flow_data", kind, "items"])
                .into_iter()
                .map(|(_, item)| {
                    json!({
                        "id": non_empty(&item, &["id"]),
                        "price": non_empty(&item, &["price"]),
                        "quantity": item.get(&["quantity"]).and_then(|q| q.parse::<i64>().ok()),
                    })
                })
                .collect();
            if items.is_empty() {
                return Err(ApiError::missing_param(&display_key(&["flow_data", kind, "items"])));
            }
            json!({ "subscription": subscription, "items": items, "discounts": null })
        }
    };
    Ok(flow)
}

fn create_portal_session(state: &mut State, params: &Params) -> Result<Value, ApiError> {
    params.allow_only(allowed::PORTAL_CREATE)?;
    let customer = params.require(&["customer"])?;
    if state.live_customer(customer).is_none() {
        return Err(ApiError::no_such_param("customer", customer, "customer"));
    }
    let return_url = check_url(params, "return_url")?;
    let configuration = non_empty(params, &["configuration"]).unwrap_or("bpc_standin_default");
    if !configuration.starts_with("bpc_") {
        return Err(ApiError::no_such_param("billing_portal.configuration", configuration, "configuration"));
    }
    let flow = if params.has(&["flow_data"]) { portal_flow(state, customer, params)? } else { Value::Null };
    let id = state.new_id("bps_", 24);
    let session = objects::portal_session(NewPortalSession {
        id: &id,
        created: state.now(),
        customer,
        configuration,
        return_url: return_url.as_deref(),
        locale: non_empty(params, &["locale"]).filter(|l| *l != "auto"),
        flow,
        url: format!("http://127.0.0.1/stripe-standin/billing_portal/{id}"),
    });
    let seq = state.next_seq();
    state.portal_sessions.push(Stored { seq, value: session.clone(), deleted: false });
    Ok(session)
}

/// `trial_end`: `now` or a future timestamp.
fn trial_end_param(params: &Params, now: i64) -> Result<Option<i64>, ApiError> {
    match non_empty(params, &["trial_end"]) {
        None => Ok(None),
        Some("now") => Ok(Some(now)),
        Some(raw) => {
            let end: i64 = raw.parse().map_err(|_| ApiError::invalid_integer("trial_end", raw))?;
            if end <= now {
                return Err(ApiError::invalid_value(
                    "trial_end",
                    "Invalid timestamp: must be an integer Unix timestamp in the future.",
                ));
            }
            Ok(Some(end))
        }
    }
}

fn create_subscription(state: &mut State, params: &Params) -> Result<Value, ApiError> {
    params.allow_only(allowed::SUBSCRIPTION_CREATE)?;
    let customer = params.require(&["customer"])?;
    if state.live_customer(customer).is_none() {
        return Err(ApiError::no_such_param("customer", customer, "customer"));
    }
    let mut items = Vec::new();
    for (index, item) in params.groups(&["items"]) {
        let key = |field: &str| display_key(&["items", &index, field]);
        let price_id = non_empty(&item, &["price"]).ok_or_else(|| ApiError::missing_param(&key("price")))?;
        let price = state.price(price_id).ok_or_else(|| ApiError::no_such_param("price", price_id, &key("price")))?;
        let quantity = match non_empty(&item, &["quantity"]) {
            None => 1,
            Some(raw) => raw.parse().map_err(|_| ApiError::invalid_integer(&key("quantity"), raw))?,
        };
        items.push((price.clone(), quantity));
    }
    if items.is_empty() {
        return Err(ApiError::missing_param("items"));
    }
    let now = state.now();
    let trial_end = match (trial_end_param(params, now)?, params.int(&["trial_period_days"])?) {
        (Some(end), _) if end > now => Some(end),
        (Some(_), _) => None,
        (None, Some(days)) if days > 0 => Some(now + days * DAY),
        (None, _) => None,
    };
    let status = (params.get(&["payment_behavior"]) == Some("default_incomplete") && trial_end.is_none())
        .then(|| "incomplete".to_owned());
    let mut metadata = json!({});
    params.apply_metadata(&["metadata"], &mut metadata);
    let request = SubscriptionRequest {
        items,
        trial_end,
        status,
        metadata,
        description: non_empty(params, &["description"]).map(str::to_owned),
        cancel_at_period_end: params.bool(&["cancel_at_period_end"])?.unwrap_or(false),
    };
    Ok(state.create_subscription(customer, request))
}

fn retrieve_subscription(state: &State, id: &str, params: &Params) -> Result<Value, ApiError> {
    params.allow_only(allowed::EXPAND_ONLY)?;
    state.subscription(id).cloned().ok_or_else(|| ApiError::no_such("subscription", id))
}

fn list_subscriptions(state: &State, params: &Params) -> Result<Value, ApiError> {
    params.allow_only(allowed::SUBSCRIPTION_LIST)?;
    let customer = non_empty(params, &["customer"]);
    let price = non_empty(params, &["price"]).or(non_empty(params, &["plan"]));
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
    let created = Range::from_params(params, "created")?;
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
            let has_price = |wanted: &str| {
                s["items"]["data"]
                    .as_array()
                    .is_some_and(|items| items.iter().any(|i| i["price"]["id"].as_str() == Some(wanted)))
            };
            status_matches
                && customer.is_none_or(|c| s["customer"].as_str() == Some(c))
                && price.is_none_or(has_price)
                && created.contains(s["created"].as_i64())
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

pub(crate) fn update_subscription(state: &mut State, id: &str, params: &Params) -> Result<Value, ApiError> {
    params.allow_only(allowed::SUBSCRIPTION_UPDATE)?;
    let mut updated = state.subscription(id).cloned().ok_or_else(|| ApiError::no_such("subscription", id))?;
    if updated["status"] == "canceled"
        && params.roots().iter().any(|root| !["metadata", "cancellation_details", "expand"].contains(root))
    {
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
        let price = match non_empty(&item, &["price"]) {
            Some(price_id) => Some(
                state
                    .price(price_id)
                    .cloned()
                    .ok_or_else(|| ApiError::no_such_param("price", price_id, &key("price")))?,
            ),
            None => None,
        };
        let quantity = match non_empty(&item, &["quantity"]) {
            None => None,
            Some(raw) => Some(raw.parse::<i64>().map_err(|_| ApiError::invalid_integer(&key("quantity"), raw))?),
        };
        let deleted = item
            .bool(&["deleted"])
            .map_err(|_| ApiError::invalid_boolean(&key("deleted"), item.get(&["deleted"]).unwrap_or_default()))?;
        match non_empty(&item, &["id"]) {
            Some(item_id) => {
                let position = items
                    .iter()
                    .position(|i| i["id"].as_str() == Some(item_id))
                    .ok_or_else(|| ApiError::no_such_param("subscription_item", item_id, &key("id")))?;
                if deleted == Some(true) {
                    items.remove(position);
                    continue;
                }
                let existing = &mut items[position];
                if let Some(price) = price {
                    if !same_interval(&existing["price"], &price) {
                        reset_period = true;
                    }
                    existing["plan"] = objects::plan(&price);
                    existing["price"] = price;
                }
                if let Some(quantity) = quantity {
                    existing["quantity"] = json!(quantity);
                }
            }
            None => {
                let price = price.ok_or_else(|| ApiError::missing_param(&key("price")))?;
                if items.iter().any(|i| i["price"]["id"] == price["id"]) {
                    return Err(ApiError::invalid_value(
                        &key("price"),
                        "Cannot add multiple subscription items with the same price.",
                    ));
                }
                let period = (
                    items[0]["current_period_start"].as_i64().unwrap_or(now),
                    items[0]["current_period_end"].as_i64().unwrap_or_else(|| period_end(&price, now)),
                );
                let item_id = state.new_id("si_", 14);
                items.push(objects::subscription_item(&item_id, id, &price, quantity.unwrap_or(1), now, period));
            }
        }
    }
    if items.is_empty() {
        return Err(ApiError::invalid_state("A subscription must have at least one active plan."));
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

    match trial_end_param(params, now)? {
        Some(end) if end > now => {
            updated["trial_end"] = json!(end);
            if updated["trial_start"].is_null() {
                updated["trial_start"] = json!(now);
            }
            updated["status"] = json!("trialing");
            for item in updated["items"]["data"].as_array_mut().into_iter().flatten() {
                item["current_period_end"] = json!(end);
            }
            updated["billing_cycle_anchor"] = json!(end);
        }
        Some(_) if trialing => {
            updated["trial_end"] = json!(now);
            updated["status"] = json!("active");
            for item in updated["items"]["data"].as_array_mut().into_iter().flatten() {
                let end = period_end(&item["price"], now);
                item["current_period_start"] = json!(now);
                item["current_period_end"] = json!(end);
            }
            updated["billing_cycle_anchor"] = json!(now);
        }
        _ => {}
    }
    if let Some(at_period_end) = params.bool(&["cancel_at_period_end"])? {
        schedule_cancellation(&mut updated, at_period_end);
    }
    if let Some(cancel_at) = params.get(&["cancel_at"]) {
        if cancel_at.is_empty() {
            schedule_cancellation(&mut updated, false);
        } else {
            let at: i64 = cancel_at.parse().map_err(|_| ApiError::invalid_integer("cancel_at", cancel_at))?;
            updated["cancel_at"] = json!(at);
            updated["cancel_at_period_end"] = json!(false);
            updated["cancellation_details"]["reason"] = json!("cancellation_requested");
        }
    }
    if params.has(&["metadata"]) {
        params.apply_metadata(&["metadata"], &mut updated["metadata"]);
    }
    if let Some(description) = params.get(&["description"]) {
        updated["description"] = nullable(description);
    }
    for field in ["comment", "feedback"] {
        if let Some(value) = params.get(&["cancellation_details", field]) {
            updated["cancellation_details"][field] = nullable(value);
        }
    }
    state.change_subscription(id, "customer.subscription.updated", |subscription, _| {
        *subscription = updated;
        Ok(())
    })
}

fn cancel_subscription(state: &mut State, id: &str, params: &Params) -> Result<Value, ApiError> {
    params.allow_only(allowed::SUBSCRIPTION_CANCEL)?;
    let comment = non_empty(params, &["cancellation_details", "comment"]).map(str::to_owned);
    let feedback = non_empty(params, &["cancellation_details", "feedback"]).map(str::to_owned);
    state.cancel_subscription(id, comment, feedback)
}

fn list_prices(state: &State, params: &Params) -> Result<Value, ApiError> {
    params.allow_only(allowed::PRICE_LIST)?;
    let lookup_keys = params.list(&["lookup_keys"]);
    let active = params.bool(&["active"])?;
    let kind = non_empty(params, &["type"]);
    let currency = non_empty(params, &["currency"]);
    let product = non_empty(params, &["product"]);
    let interval = non_empty(params, &["recurring", "interval"]);
    let created = Range::from_params(params, "created")?;
    let all: Vec<Entry<'_>> = state.prices.iter().zip(1..).map(|(value, seq)| Entry { seq, value }).collect();
    list::page(
        all,
        |p| {
            (lookup_keys.is_empty() || lookup_keys.iter().any(|k| p["lookup_key"].as_str() == Some(k.as_str())))
                && active.is_none_or(|a| p["active"] == a)
                && kind.is_none_or(|k| p["type"].as_str() == Some(k))
                && currency.is_none_or(|c| p["currency"].as_str() == Some(c))
                && product.is_none_or(|id| p["product"].as_str() == Some(id))
                && interval.is_none_or(|i| p["recurring"]["interval"].as_str() == Some(i))
                && created.contains(p["created"].as_i64())
        },
        params,
        "/v1/prices",
        "price",
    )
}

fn event_type_matches(pattern: &str, kind: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => kind.starts_with(prefix),
        None => pattern == kind,
    }
}

fn list_events(state: &State, params: &Params) -> Result<Value, ApiError> {
    params.allow_only(allowed::EVENT_LIST)?;
    let kind = non_empty(params, &["type"]);
    let kinds = params.list(&["types"]);
    if kind.is_some() && !kinds.is_empty() {
        return Err(ApiError::invalid_state("You may only specify one of these parameters: type, types."));
    }
    let created = Range::from_params(params, "created")?;
    list::page(
        entries(&state.events),
        |e| {
            let event_kind = e["type"].as_str().unwrap_or_default();
            kind.is_none_or(|k| event_type_matches(k, event_kind))
                && (kinds.is_empty() || kinds.iter().any(|k| event_type_matches(k, event_kind)))
                && created.contains(e["created"].as_i64())
        },
        params,
        "/v1/events",
        "event",
    )
}
