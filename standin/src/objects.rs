//! Stripe objects built from Stripe's official fixtures (`standin/fixtures/stripe/`, copied from
//! `stripe/openapi`'s `fixtures3.json`): each starts as the fixture and overrides its ids and
//! every field that carries state, so placeholder values never leak into answers.

use serde_json::{Value, json};

use tollgate::domain::credits::CreditPack;
use tollgate::domain::plans::Price;

const CUSTOMER: &str = include_str!("../fixtures/stripe/customer.json");
const SUBSCRIPTION: &str = include_str!("../fixtures/stripe/subscription.json");
const CHECKOUT_SESSION: &str = include_str!("../fixtures/stripe/checkout.session.json");
const PORTAL_SESSION: &str = include_str!("../fixtures/stripe/billing_portal.session.json");
const EVENT: &str = include_str!("../fixtures/stripe/event.json");
const PRICE: &str = include_str!("../fixtures/stripe/price.json");
const PRODUCT: &str = include_str!("../fixtures/stripe/product.json");
const INVOICE: &str = include_str!("../fixtures/stripe/invoice.json");
const CHARGE: &str = include_str!("../fixtures/stripe/charge.json");
const PAYMENT_INTENT: &str = include_str!("../fixtures/stripe/payment_intent.json");
const REFUND: &str = include_str!("../fixtures/stripe/refund.json");
const DISPUTE: &str = include_str!("../fixtures/stripe/dispute.json");
const INVOICE_PAYMENT: &str = include_str!("../fixtures/stripe/invoice_payment.json");
const METER: &str = include_str!("../fixtures/stripe/billing.meter.json");
const METER_EVENT: &str = include_str!("../fixtures/stripe/billing.meter_event.json");
const METER_EVENT_ADJUSTMENT: &str = include_str!("../fixtures/stripe/billing.meter_event_adjustment.json");
const METER_EVENT_SUMMARY: &str = include_str!("../fixtures/stripe/billing.meter_event_summary.json");
const ENTITLEMENT_SUMMARY: &str = include_str!("../fixtures/stripe/entitlements.active_entitlement_summary.json");

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

/// The product of a catalogue tier: `prod_<tier id>`.
pub(crate) fn product_id(tier: &str) -> String {
    format!("prod_{tier}")
}

/// The product of a credit pack: `prod_pack_<pack id>`.
pub(crate) fn pack_product_id(pack: &str) -> String {
    format!("prod_pack_{pack}")
}

/// The price id of a catalogue price or credit pack: `price_<lookup key>`.
pub(crate) fn price_id(lookup_key: &str) -> String {
    format!("price_{lookup_key}")
}

/// The product `id` (named `name`), sold at `default_price`.
pub(crate) fn product(id: &str, name: &str, default_price: &str, created: i64) -> Value {
    let mut product = fixture(PRODUCT);
    set(
        &mut product,
        json!({
            "id": id,
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

/// The recurring Stripe price of a catalogue price.
pub(crate) fn price(spec: &Price, created: i64) -> Value {
    let mut price = fixture(PRICE);
    set(
        &mut price,
        json!({
            "id": price_id(&spec.lookup_key),
            "lookup_key": spec.lookup_key,
            "product": product_id(&spec.tier),
            "currency": spec.currency,
            "unit_amount": spec.amount,
            "unit_amount_decimal": spec.amount.to_string(),
            "created": created,
            "custom_unit_amount": null,
            "transform_quantity": null,
            "nickname": null,
            "metadata": {},
        }),
    );
    price["recurring"]["interval"] = json!(spec.interval.as_str());
    price
}

/// The one-time Stripe price of a credit pack.
pub(crate) fn pack_price(pack: &CreditPack, created: i64) -> Value {
    let mut price = fixture(PRICE);
    set(
        &mut price,
        json!({
            "id": price_id(&pack.lookup_key),
            "lookup_key": pack.lookup_key,
            "product": pack_product_id(&pack.id),
            "currency": pack.currency,
            "unit_amount": pack.amount,
            "unit_amount_decimal": pack.amount.to_string(),
            "created": created,
            "type": "one_time",
            "recurring": null,
            "custom_unit_amount": null,
            "transform_quantity": null,
            "nickname": null,
            "metadata": {},
        }),
    );
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
            "status_details": null,
            "cancel_at": null,
            "cancel_at_period_end": false,
            "canceled_at": null,
            "cancellation_details": { "comment": null, "feedback": null, "reason": null },
            "ended_at": null,
            "trial_start": new.trial.map(|(start, _)| start),
            "trial_end": new.trial.map(|(_, end)| end),
            "currency": "usd",
            "description": null,
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
    pub(crate) client_reference_id: Option<&'a str>,
    pub(crate) success_url: Option<&'a str>,
    pub(crate) cancel_url: Option<&'a str>,
    pub(crate) metadata: Value,
    pub(crate) amount: i64,
    pub(crate) currency: &'a str,
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
            "customer_email": null,
            "customer_details": null,
            "customer_creation": if new.customer.is_some() { Value::Null } else { json!("always") },
            "client_reference_id": new.client_reference_id,
            "success_url": new.success_url,
            "cancel_url": new.cancel_url,
            "metadata": new.metadata,
            "amount_subtotal": new.amount,
            "amount_total": new.amount,
            "currency": new.currency,
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
            "ui_mode": "hosted_page",
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
    pub(crate) return_url: Option<&'a str>,
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
            "configuration": "bpc_standin_default",
            "return_url": new.return_url,
            "locale": null,
            "flow": null,
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

/// `$12.34` for 1234 cents.
fn dollars(cents: i64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

/// One invoice line billing a subscription item for its current period.
pub(crate) fn invoice_line(id: &str, invoice: &str, subscription: &str, item: &Value, product_name: &str) -> Value {
    let fixture = fixture(INVOICE);
    let mut line = fixture["lines"]["data"][0].clone();
    let price = &item["price"];
    let quantity = item["quantity"].as_i64().unwrap_or(1);
    let unit_amount = price["unit_amount"].as_i64().unwrap_or_default();
    let amount = unit_amount * quantity;
    let interval = price["recurring"]["interval"].as_str().unwrap_or("month");
    set(
        &mut line,
        json!({
            "id": id,
            "invoice": invoice,
            "amount": amount,
            "subtotal": amount,
            "currency": price["currency"],
            "description": format!("{quantity} × {product_name} (at {} / {interval})", dollars(unit_amount)),
            "discount_amounts": [],
            "discountable": true,
            "discounts": [],
            "livemode": false,
            "metadata": {},
            "period": { "start": item["current_period_start"], "end": item["current_period_end"] },
            "quantity": quantity,
            "quantity_decimal": quantity.to_string(),
            "pretax_credit_amounts": [],
            "taxes": [],
            "parent": {
                "type": "subscription_item_details",
                "invoice_item_details": null,
                "subscription_item_details": {
                    "invoice_item": null,
                    "proration": false,
                    "proration_details": { "credited_items": null },
                    "subscription": subscription,
                    "subscription_item": item["id"],
                },
            },
            "pricing": {
                "type": "price_details",
                "price_details": { "price": price["id"], "product": price["product"] },
                "unit_amount_decimal": price["unit_amount_decimal"],
            },
        }),
    );
    // The current API links a line to its subscription through `parent` only.
    if let Some(fields) = line.as_object_mut() {
        fields.remove("subscription");
    }
    line
}

/// A new subscription invoice's state: a draft, not yet finalized.
pub(crate) struct NewInvoice<'a> {
    pub(crate) id: &'a str,
    pub(crate) created: i64,
    pub(crate) customer: &'a Value,
    pub(crate) subscription: &'a Value,
    pub(crate) billing_reason: &'a str,
    /// The invoice's own `period_start`/`period_end` (the period whose usage it closes).
    pub(crate) period: (i64, i64),
    pub(crate) lines: Vec<Value>,
}

pub(crate) fn invoice(new: NewInvoice<'_>) -> Value {
    let mut invoice = fixture(INVOICE);
    let total: i64 = new.lines.iter().filter_map(|line| line["amount"].as_i64()).sum();
    set(
        &mut invoice,
        json!({
            "id": new.id,
            "created": new.created,
            "account_country": "US",
            "account_name": null,
            "account_tax_ids": null,
            "amount_due": total,
            "amount_overpaid": 0,
            "amount_paid": 0,
            "amount_remaining": total,
            "amount_shipping": 0,
            "application": null,
            "attempt_count": 0,
            "attempted": false,
            "auto_advance": true,
            "automatic_tax": {
                "disabled_reason": null,
                "enabled": false,
                "liability": null,
                "provider": null,
                "status": null,
            },
            "automatically_finalizes_at": new.created + 3_600,
            "billing_reason": new.billing_reason,
            "collection_method": "charge_automatically",
            "currency": "usd",
            "custom_fields": null,
            "customer": new.customer["id"],
            "customer_account": null,
            "customer_address": new.customer["address"],
            "customer_email": new.customer["email"],
            "customer_name": new.customer["name"],
            "customer_phone": new.customer["phone"],
            "customer_shipping": null,
            "customer_tax_exempt": "none",
            "customer_tax_ids": [],
            "default_payment_method": null,
            "default_source": null,
            "default_tax_rates": [],
            "description": null,
            "discounts": [],
        }),
    );
    set(
        &mut invoice,
        json!({
            "due_date": null,
            "effective_at": null,
            "ending_balance": null,
            "footer": null,
            "from_invoice": null,
            "hosted_invoice_url": null,
            "invoice_pdf": null,
            "issuer": { "type": "self" },
            "last_finalization_error": null,
            "latest_revision": null,
            "lines": {
                "object": "list",
                "data": new.lines,
                "has_more": false,
                "url": format!("/v1/invoices/{}/lines", new.id),
            },
            "livemode": false,
            "metadata": {},
            "next_payment_attempt": null,
            "number": null,
            "on_behalf_of": null,
            "parent": {
                "type": "subscription_details",
                "quote_details": null,
                "subscription_details": {
                    "metadata": new.subscription["metadata"],
                    "subscription": new.subscription["id"],
                    "subscription_proration_date": null,
                },
            },
            "payment_settings": { "default_mandate": null, "payment_method_options": null, "payment_method_types": null },
            "period_start": new.period.0,
            "period_end": new.period.1,
            "post_payment_credit_notes_amount": 0,
            "pre_payment_credit_notes_amount": 0,
            "receipt_number": null,
            "shipping_cost": null,
            "shipping_details": null,
            "starting_balance": 0,
            "statement_descriptor": null,
            "status": "draft",
            "status_transitions": {
                "finalized_at": null,
                "marked_uncollectible_at": null,
                "paid_at": null,
                "voided_at": null,
            },
            "subtotal": total,
            "subtotal_excluding_tax": total,
            "test_clock": null,
            "total": total,
            "total_discount_amounts": [],
            "total_excluding_tax": total,
            "total_pretax_credit_amounts": [],
            "total_taxes": [],
            "webhooks_delivered_at": null,
        }),
    );
    // The current API names an invoice's subscription at `parent.subscription_details` only.
    if let Some(fields) = invoice.as_object_mut() {
        fields.remove("subscription");
    }
    invoice
}

/// A new card charge's state.
pub(crate) struct NewCharge<'a> {
    pub(crate) id: &'a str,
    pub(crate) payment_intent: &'a str,
    pub(crate) payment_method: &'a str,
    pub(crate) customer: &'a Value,
    /// In the currency's smallest unit.
    pub(crate) amount: i64,
    pub(crate) currency: &'a str,
    pub(crate) created: i64,
    pub(crate) description: Option<&'a str>,
}

/// A succeeded card charge through a payment intent.
pub(crate) fn charge(new: NewCharge<'_>) -> Value {
    let NewCharge { id, payment_intent, payment_method, customer, amount, currency, created, description } = new;
    let mut charge = fixture(CHARGE);
    let mut billing_details = charge["billing_details"].clone();
    set(&mut billing_details, json!({ "email": customer["email"], "name": customer["name"] }));
    set(
        &mut charge,
        json!({
            "id": id,
            "amount": amount,
            "amount_captured": amount,
            "amount_refunded": 0,
            "balance_transaction": null,
            "billing_details": billing_details,
            "calculated_statement_descriptor": "TOLLGATE",
            "captured": true,
            "created": created,
            "currency": currency,
            "customer": customer["id"],
            "description": description,
            "disputed": false,
            "livemode": false,
            "metadata": {},
            "outcome": {
                "advice_code": null,
                "network_advice_code": null,
                "network_decline_code": null,
                "network_status": "approved_by_network",
                "reason": null,
                "risk_level": "normal",
                "seller_message": "Payment complete.",
                "type": "authorized",
            },
            "paid": true,
            "payment_intent": payment_intent,
            "payment_method": payment_method,
            "receipt_email": customer["email"],
            "receipt_url": format!("http://127.0.0.1/stripe-standin/receipts/{id}"),
            "refunded": false,
            "refunds": { "object": "list", "data": [], "has_more": false, "url": format!("/v1/charges/{id}/refunds") },
            "shipping": null,
            "source": null,
            "status": "succeeded",
            "transfer_data": null,
        }),
    );
    charge
}

/// The succeeded payment intent that made `charge` (its `payment_intent` and only charge).
pub(crate) fn payment_intent(charge: &Value) -> Value {
    let mut intent = fixture(PAYMENT_INTENT);
    let id = charge["payment_intent"].as_str().unwrap_or_default();
    set(
        &mut intent,
        json!({
            "id": id,
            "amount": charge["amount"],
            "amount_capturable": 0,
            "amount_details": null,
            "amount_received": charge["amount"],
            "automatic_payment_methods": null,
            "canceled_at": null,
            "client_secret": format!("{id}_secret_standin"),
            "created": charge["created"],
            "currency": charge["currency"],
            "customer": charge["customer"],
            "description": charge["description"],
            "last_payment_error": null,
            "latest_charge": charge["id"],
            "livemode": false,
            "managed_payments": null,
            "metadata": {},
            "next_action": null,
            "payment_method": charge["payment_method"],
            "payment_method_configuration_details": null,
            "processing": null,
            "receipt_email": charge["receipt_email"],
            "shipping": null,
            "status": "succeeded",
            "transfer_data": null,
        }),
    );
    intent
}

/// The paid payment `payment_intent` made towards `invoice`: its default (and only) payment.
pub(crate) fn invoice_payment(id: &str, invoice: &Value, payment_intent: &str, paid_at: i64) -> Value {
    let mut payment = fixture(INVOICE_PAYMENT);
    set(
        &mut payment,
        json!({
            "id": id,
            "amount_paid": invoice["amount_paid"],
            "amount_requested": invoice["amount_due"],
            "created": invoice["created"],
            "currency": invoice["currency"],
            "invoice": invoice["id"],
            "is_default": true,
            "livemode": false,
            "payment": { "type": "payment_intent", "payment_intent": payment_intent },
            "status": "paid",
            "status_transitions": { "canceled_at": null, "paid_at": paid_at },
        }),
    );
    payment
}

/// An active meter summing the `value` of the events named `event_name`, by customer id
/// (Stripe's default payload keys `stripe_customer_id` and `value`).
pub(crate) fn meter(id: &str, event_name: &str, created: i64) -> Value {
    let mut meter = fixture(METER);
    set(
        &mut meter,
        json!({
            "id": id,
            "created": created,
            "updated": created,
            "display_name": event_name,
            "event_name": event_name,
            "customer_mapping": { "event_payload_key": "stripe_customer_id", "type": "by_id" },
            "default_aggregation": { "formula": "sum" },
            "livemode": false,
            "value_settings": { "event_payload_key": "value" },
        }),
    );
    meter
}

/// A meter event as accepted.
pub(crate) fn meter_event(event_name: &str, identifier: &str, payload: Value, timestamp: i64, created: i64) -> Value {
    let mut event = fixture(METER_EVENT);
    set(
        &mut event,
        json!({
            "created": created,
            "event_name": event_name,
            "identifier": identifier,
            "livemode": false,
            "payload": payload,
            "timestamp": timestamp,
        }),
    );
    event
}

/// A meter event adjustment that cancelled the event with `identifier`.
pub(crate) fn meter_event_adjustment(event_name: &str, identifier: &str) -> Value {
    let mut adjustment = fixture(METER_EVENT_ADJUSTMENT);
    set(
        &mut adjustment,
        json!({
            "cancel": { "identifier": identifier },
            "event_name": event_name,
            "livemode": false,
            "status": "complete",
            "type": "cancel",
        }),
    );
    adjustment
}

/// The sum of a meter's values for one customer over `[start, end)`.
pub(crate) fn meter_event_summary(id: &str, meter: &str, (start, end): (i64, i64), aggregated_value: f64) -> Value {
    let mut summary = fixture(METER_EVENT_SUMMARY);
    set(
        &mut summary,
        json!({
            "id": id,
            "aggregated_value": aggregated_value,
            "start_time": start,
            "end_time": end,
            "livemode": false,
            "meter": meter,
        }),
    );
    summary
}

/// A succeeded refund of `amount` cents of `charge`.
pub(crate) fn refund(id: &str, charge: &Value, amount: i64, created: i64) -> Value {
    let mut refund = fixture(REFUND);
    set(
        &mut refund,
        json!({
            "id": id,
            "amount": amount,
            "balance_transaction": null,
            "charge": charge["id"],
            "created": created,
            "currency": charge["currency"],
            "destination_details": {
                "card": {
                    "reference": null,
                    "reference_status": "pending",
                    "reference_type": "acquirer_reference_number",
                    "type": "refund",
                },
                "type": "card",
            },
            "metadata": {},
            "payment_intent": charge["payment_intent"],
            "reason": "requested_by_customer",
            "status": "succeeded",
        }),
    );
    refund
}

/// A card chargeback of the whole of `charge`, awaiting the merchant's evidence until `due_by`.
pub(crate) fn dispute(id: &str, charge: &Value, created: i64, due_by: i64) -> Value {
    let mut dispute = fixture(DISPUTE);
    set(
        &mut dispute,
        json!({
            "id": id,
            "amount": charge["amount"],
            "balance_transactions": [],
            "charge": charge["id"],
            "created": created,
            "currency": charge["currency"],
            "enhanced_eligibility_types": [],
            "is_charge_refundable": false,
            "livemode": false,
            "metadata": {},
            "network_reason_code": "10.4",
            "payment_intent": charge["payment_intent"],
            "payment_method_details": {
                "card": { "brand": "visa", "case_type": "chargeback", "network": "visa", "network_reason_code": "10.4" },
                "type": "card",
            },
            "reason": "fraudulent",
            "status": "needs_response",
        }),
    );
    set(
        &mut dispute["evidence_details"],
        json!({ "due_by": due_by, "has_evidence": false, "past_due": false, "submission_count": 0 }),
    );
    dispute
}

/// One active entitlement to the feature with `lookup_key` (feature id `feature_id`).
pub(crate) fn active_entitlement(id: &str, feature_id: &str, lookup_key: &str) -> Value {
    let fixture = fixture(ENTITLEMENT_SUMMARY);
    let mut entitlement = fixture["entitlements"]["data"][0].clone();
    let mut feature = entitlement["feature"].clone();
    set(
        &mut feature,
        json!({
            "id": feature_id,
            "active": true,
            "livemode": false,
            "lookup_key": lookup_key,
            "metadata": {},
            "name": lookup_key.replace('_', " "),
        }),
    );
    set(&mut entitlement, json!({ "id": id, "feature": feature, "livemode": false, "lookup_key": lookup_key }));
    entitlement
}

/// A customer's active entitlements, as `entitlements.active_entitlement_summary.updated` carries them.
pub(crate) fn entitlement_summary(customer: &str, entitlements: Vec<Value>) -> Value {
    let mut summary = fixture(ENTITLEMENT_SUMMARY);
    set(
        &mut summary,
        json!({
            "customer": customer,
            "entitlements": {
                "object": "list",
                "data": entitlements,
                "has_more": false,
                "url": "/v1/entitlements/active_entitlements",
            },
            "livemode": false,
        }),
    );
    summary
}
