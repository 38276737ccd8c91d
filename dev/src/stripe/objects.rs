//! Stripe objects built from Stripe's official fixtures (`dev/fixtures/stripe/`, copied from
//! `stripe/openapi`'s `fixtures3.json`): each starts as the fixture and overrides its ids and
//! every field that carries state, so placeholder values never leak into answers.

use serde_json::{Value, json};

use super::PriceSpec;

const CUSTOMER: &str = include_str!("../../fixtures/stripe/customer.json");
const DELETED_CUSTOMER: &str = include_str!("../../fixtures/stripe/deleted_customer.json");
const SUBSCRIPTION: &str = include_str!("../../fixtures/stripe/subscription.json");
const CHECKOUT_SESSION: &str = include_str!("../../fixtures/stripe/checkout.session.json");
const PORTAL_SESSION: &str = include_str!("../../fixtures/stripe/billing_portal.session.json");
const EVENT: &str = include_str!("../../fixtures/stripe/event.json");
const PRICE: &str = include_str!("../../fixtures/stripe/price.json");
const PRODUCT: &str = include_str!("../../fixtures/stripe/product.json");

/// The API version the stand-in renders objects and events with (async-stripe's).
pub(crate) const API_VERSION: &str = "2026-09-30.endive";

fn fixture(source: &str) -> Value {
    serde_json::from_str(source).expect("Stripe fixture is valid JSON")
}

fn set(object: &mut Value, fields: Value) {
    let (Value::Object(target), Value::Object(fields)) = (object, fields) else {
        unreachable!("fixtures and overrides are JSON objects");
    };
    target.extend(fields);
}

/// `prod_` id for a product name: `Tollgate Pro` -> `prod_tollgate_pro`.
pub(crate) fn product_id(name: &str) -> String {
    let slug: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    format!("prod_{}", slug.trim_matches('_'))
}

pub(crate) fn product(name: &str, default_price: &str, created: i64) -> Value {
    let mut product = fixture(PRODUCT);
    set(
        &mut product,
        json!({
            "id": product_id(name),
            "name": name,
            "description": null,
            "default_price": default_price,
            "created": created,
            "updated": created,
            "package_dimensions": null,
            "type": "service",
            "metadata": {},
        }),
    );
    product
}

pub(crate) fn price(spec: &PriceSpec, created: i64) -> Value {
    let mut price = fixture(PRICE);
    set(
        &mut price,
        json!({
            "id": format!("price_{}", spec.lookup_key),
            "lookup_key": spec.lookup_key,
            "product": product_id(&spec.product_name),
            "unit_amount": spec.unit_amount,
            "unit_amount_decimal": spec.unit_amount.to_string(),
            "created": created,
            "custom_unit_amount": null,
            "transform_quantity": null,
            "nickname": null,
            "metadata": {},
        }),
    );
    price["recurring"]["interval"] = json!(spec.interval);
    price
}

/// The legacy `plan` view of a recurring price, as subscription items still carry it.
pub(crate) fn plan(price: &Value) -> Value {
    json!({
        "id": price["id"],
        "object": "plan",
        "active": price["active"],
        "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": price["billing_scheme"],
        "created": price["created"],
        "currency": price["currency"],
        "interval": price["recurring"]["interval"],
        "interval_count": price["recurring"]["interval_count"],
        "livemode": false,
        "metadata": price["metadata"],
        "meter": null,
        "nickname": price["nickname"],
        "product": price["product"],
        "tiers_mode": null,
        "transform_usage": null,
        "trial_period_days": null,
        "usage_type": price["recurring"]["usage_type"],
    })
}

pub(crate) fn customer(id: &str, created: i64, invoice_prefix: &str) -> Value {
    let mut customer = fixture(CUSTOMER);
    set(
        &mut customer,
        json!({
            "id": id,
            "created": created,
            "address": null,
            "currency": null,
            "discount": null,
            "email": null,
            "name": null,
            "description": null,
            "phone": null,
            "shipping": null,
            "invoice_prefix": invoice_prefix,
            "metadata": {},
            "preferred_locales": [],
        }),
    );
    customer["invoice_settings"]["rendering_options"] = Value::Null;
    customer
}

pub(crate) fn deleted_customer(id: &str) -> Value {
    let mut deleted = fixture(DELETED_CUSTOMER);
    deleted["id"] = json!(id);
    deleted
}

/// One subscription item for `price`, billing `period` (start, end).
pub(crate) fn subscription_item(
    id: &str,
    subscription: &str,
    price: &Value,
    quantity: i64,
    created: i64,
    period: (i64, i64),
) -> Value {
    let fixture = fixture(SUBSCRIPTION);
    let mut item = fixture["items"]["data"][0].clone();
    set(
        &mut item,
        json!({
            "id": id,
            "subscription": subscription,
            "created": created,
            "price": price,
            "plan": plan(price),
            "quantity": quantity,
            "current_period_start": period.0,
            "current_period_end": period.1,
            "billing_thresholds": null,
            "discounts": [],
            "metadata": {},
            "tax_rates": [],
        }),
    );
    item
}

/// A new subscription's state; `trial` is (start, end).
pub(crate) struct NewSubscription<'a> {
    pub(crate) id: &'a str,
    pub(crate) customer: &'a str,
    pub(crate) created: i64,
    pub(crate) status: &'a str,
    pub(crate) items: Vec<Value>,
    pub(crate) trial: Option<(i64, i64)>,
    pub(crate) metadata: Value,
    pub(crate) description: Option<String>,
}

pub(crate) fn subscription(new: NewSubscription<'_>) -> Value {
    let mut subscription = fixture(SUBSCRIPTION);
    let anchor = new.trial.map_or(new.created, |(_, end)| end);
    set(
        &mut subscription,
        json!({
            "id": new.id,
            "customer": new.customer,
            "created": new.created,
            "start_date": new.created,
            "billing_cycle_anchor": anchor,
            "billing_cycle_anchor_config": null,
            "billing_mode": {
                "type": "flexible",
                "flexible": { "proration_discounts": "included" },
                "updated_at": new.created,
            },
            "billing_schedules": [],
            "billing_thresholds": null,
            "status": new.status,
            "cancel_at": null,
            "cancel_at_period_end": false,
            "canceled_at": null,
            "cancellation_details": { "comment": null, "feedback": null, "reason": null },
            "ended_at": null,
            "trial_start": new.trial.map(|(start, _)| start),
            "trial_end": new.trial.map(|(_, end)| end),
            "currency": "usd",
            "description": new.description,
            "metadata": new.metadata,
            "latest_invoice": null,
            "next_pending_invoice_item_invoice": null,
            "pause_collection": null,
            "pending_invoice_item_interval": null,
            "pending_setup_intent": null,
            "pending_update": null,
            "schedule": null,
            "transfer_data": null,
            "managed_payments": null,
            "payment_settings": {
                "payment_method_options": null,
                "payment_method_types": null,
                "save_default_payment_method": "off",
            },
        }),
    );
    subscription["items"] = json!({
        "object": "list",
        "data": new.items,
        "has_more": false,
        "url": format!("/v1/subscription_items?subscription={}", new.id),
    });
    subscription
}

/// A new checkout session's state.
pub(crate) struct NewCheckoutSession<'a> {
    pub(crate) id: &'a str,
    pub(crate) created: i64,
    pub(crate) expires_at: i64,
    pub(crate) mode: &'a str,
    pub(crate) customer: Option<&'a str>,
    pub(crate) customer_email: Option<&'a str>,
    pub(crate) client_reference_id: Option<&'a str>,
    pub(crate) success_url: Option<&'a str>,
    pub(crate) cancel_url: Option<&'a str>,
    pub(crate) metadata: Value,
    pub(crate) amount: i64,
    pub(crate) url: String,
}

pub(crate) fn checkout_session(new: NewCheckoutSession<'_>) -> Value {
    let mut session = fixture(CHECKOUT_SESSION);
    set(
        &mut session,
        json!({
            "id": new.id,
            "created": new.created,
            "expires_at": new.expires_at,
            "mode": new.mode,
            "status": "open",
            "payment_status": "unpaid",
            "customer": new.customer,
            "customer_email": new.customer_email,
            "customer_details": null,
            "customer_creation": if new.customer.is_some() { Value::Null } else { json!("always") },
            "client_reference_id": new.client_reference_id,
            "success_url": new.success_url,
            "cancel_url": new.cancel_url,
            "metadata": new.metadata,
            "amount_subtotal": new.amount,
            "amount_total": new.amount,
            "currency": "usd",
            "total_details": { "amount_discount": 0, "amount_shipping": 0, "amount_tax": 0 },
            "url": new.url,
            "subscription": null,
            "invoice": null,
            "payment_intent": null,
            "setup_intent": null,
            "after_expiration": null,
            "consent": null,
            "consent_collection": null,
            "collected_information": null,
            "currency_conversion": null,
            "custom_text": {
                "after_submit": null,
                "shipping_address": null,
                "submit": null,
                "terms_of_service_acceptance": null,
            },
            "invoice_creation": null,
            "payment_method_collection": "always",
            "payment_method_configuration_details": null,
            "shipping_address_collection": null,
            "shipping_cost": null,
            "shipping_options": [],
            "saved_payment_method_options": null,
            "managed_payments": null,
            "adaptive_pricing": null,
            "ui_mode": "hosted",
        }),
    );
    session
}

/// The customer details a completed checkout session reports.
pub(crate) fn checkout_customer_details(email: Option<&str>, name: Option<&str>) -> Value {
    let fixture = fixture(CHECKOUT_SESSION);
    let mut details = fixture["customer_details"].clone();
    set(&mut details, json!({ "email": email, "name": name }));
    details
}

/// A new billing portal session's state.
pub(crate) struct NewPortalSession<'a> {
    pub(crate) id: &'a str,
    pub(crate) created: i64,
    pub(crate) customer: &'a str,
    pub(crate) configuration: &'a str,
    pub(crate) return_url: Option<&'a str>,
    pub(crate) locale: Option<&'a str>,
    pub(crate) flow: Value,
    pub(crate) url: String,
}

pub(crate) fn portal_session(new: NewPortalSession<'_>) -> Value {
    let mut session = fixture(PORTAL_SESSION);
    set(
        &mut session,
        json!({
            "id": new.id,
            "created": new.created,
            "customer": new.customer,
            "configuration": new.configuration,
            "return_url": new.return_url,
            "locale": new.locale,
            "flow": new.flow,
            "livemode": false,
            "url": new.url,
        }),
    );
    session
}

/// The request that caused an event: (request id, idempotency key); `None` for changes made
/// outside the API (the stand-in's state manipulation).
pub(crate) type EventCause = Option<(String, Option<String>)>;

pub(crate) fn event(
    id: &str,
    kind: &str,
    created: i64,
    object: Value,
    previous_attributes: Option<Value>,
    cause: EventCause,
) -> Value {
    let mut event = fixture(EVENT);
    let mut data = json!({ "object": object });
    if let Some(previous) = previous_attributes {
        data["previous_attributes"] = previous;
    }
    let (request_id, idempotency_key) = cause.map_or((None, None), |(id, key)| (Some(id), key));
    set(
        &mut event,
        json!({
            "id": id,
            "type": kind,
            "created": created,
            "api_version": API_VERSION,
            "data": data,
            "request": { "id": request_id, "idempotency_key": idempotency_key },
        }),
    );
    event
}
