//! Every operation of the HTTP API, by route set: its method and path (as `template.yaml`
//! declares them), summary, authorizer, request and answer schemas, statuses and query
//! parameters. The document and its checks are [`super`]'s.

use super::requests::reference;
use super::{Auth, Doc, Method};
use crate::app::{checkout, credits, invoices, keys, read, usage};
use crate::domain::entitlements::{EntitlementsView, PricingView, SubscriptionView};
use crate::edge::http::WebhookAck;

const PAGE: &[(&str, &str)] = &[("limit", "Page size, 1 to 100."), ("cursor", "`next_cursor` of the previous page.")];
const READ_ERRORS: &[u16] = &[400, 401, 403, 500, 503];
const WRITE_ERRORS: &[u16] = &[400, 401, 403, 409, 413, 415, 429, 500, 503];

/// Every operation of the HTTP API.
pub(super) fn table() -> Doc {
    use Auth::{ApiKey as Key, Iam, Jwt, Public, StripeSignature};
    use Method::{Delete, Get, Post};
    let mut d = Doc { schemas: Vec::new(), ops: Vec::new() };

    // subscription (reads)
    let subscription = d.schema::<read::SubscriptionRead>();
    d.op(
        Get,
        "/subscription",
        "The account's plan, access, usage this period and credit balance",
        Jwt,
        None,
        (200, subscription.clone()),
        READ_ERRORS,
        &[],
    );
    d.op(
        Get,
        "/api/subscription",
        "The key's account's subscription (scope subscription:read)",
        Key,
        None,
        (200, subscription),
        READ_ERRORS,
        &[],
    );
    let ok = (200, d.schema::<EntitlementsView>());
    d.op(Get, "/entitlements", "Features and the access decision with its reason", Jwt, None, ok, READ_ERRORS, &[]);
    let credits_page = d.schema::<credits::CreditsAnswer>();
    d.op(
        Get,
        "/credits",
        "Credit balance, grants and the ledger, newest first",
        Jwt,
        None,
        (200, credits_page.clone()),
        READ_ERRORS,
        PAGE,
    );
    d.op(
        Get,
        "/api/credits",
        "The key's account's credits (scope usage:read)",
        Key,
        None,
        (200, credits_page),
        READ_ERRORS,
        PAGE,
    );
    let invoice_page = d.schema::<invoices::InvoiceList>();
    d.op(
        Get,
        "/invoices",
        "The account's invoices, newest first",
        Jwt,
        None,
        (200, invoice_page.clone()),
        READ_ERRORS,
        PAGE,
    );
    d.op(
        Get,
        "/api/invoices",
        "The key's account's invoices (scope subscription:read)",
        Key,
        None,
        (200, invoice_page),
        READ_ERRORS,
        PAGE,
    );
    let ok = (200, d.schema::<read::UsageHistory>());
    d.op(
        Get,
        "/usage/history",
        "Each metric's totals per usage window",
        Jwt,
        None,
        ok,
        READ_ERRORS,
        &[("periods", "Windows to list, 1 to 13 (default 12).")],
    );
    let ok = (200, d.schema::<read::BillingSummary>());
    d.op(Get, "/billing/summary", "Everything a billing page shows, in one call", Jwt, None, ok, READ_ERRORS, &[]);
    let ok = (200, d.schema::<PricingView>());
    d.op(Get, "/plans", "The catalogue as a pricing table (cacheable: ETag, 304)", Public, None, ok, &[500], &[]);

    // keys
    let new_key = d.schema::<keys::NewKey>();
    let body = reference("CreateRequest");
    d.op(
        Post,
        "/api-keys",
        "Creates an API key (its secret is shown once)",
        Jwt,
        Some(body),
        (201, new_key.clone()),
        WRITE_ERRORS,
        &[],
    );
    let ok = (200, d.schema::<keys::KeyList>());
    d.op(Get, "/api-keys", "The account's API keys (never their secrets)", Jwt, None, ok, READ_ERRORS, &[]);
    let ok = (200, d.schema::<keys::KeyView>());
    d.op(Delete, "/api-keys/{id}", "Revokes an API key", Jwt, None, ok, &[401, 404, 500, 503], &[]);
    let body = reference("RotateRequest");
    d.op(
        Post,
        "/api-keys/{id}/rotate",
        "Issues a new key; the old one stays valid for the overlap",
        Jwt,
        Some(body),
        (201, new_key),
        &[400, 401, 403, 404, 409, 413, 415, 429, 500, 503],
        &[],
    );

    // usage and credits: customers read and check; the operator (IAM) writes
    let usage_body = reference("UsageRequest");
    let check_body = reference("UsageCheckRequest");
    let usage_answer = d.schema::<usage::UsageAnswer>();
    let refund_body = reference("RefundRequest");
    let usage_refund = d.schema::<usage::RefundAnswer>();
    let report = d.schema::<crate::domain::usage::UsageReport>();
    for (auth, report_path, check_path, summary) in [
        (Jwt, "/usage", "/usage/check", "This window's usage of every metric"),
        (Key, "/api/usage", "/api/usage/check", "This window's usage of every metric (scope usage:read)"),
    ] {
        d.op(Get, report_path, summary, auth, None, (200, report.clone()), READ_ERRORS, &[]);
        d.op(
            Post,
            check_path,
            "Whether a consumption would be allowed (nothing counted)",
            auth,
            Some(check_body.clone()),
            (200, usage_answer.clone()),
            WRITE_ERRORS,
            &[],
        );
    }
    let account_read = d.schema::<crate::app::operator::OperatorAccount>();
    d.op(
        Get,
        "/operator/accounts/{account_id}",
        "Support read: subscription, usage, credits with each entry's actor, API keys",
        Iam,
        None,
        (200, account_read),
        READ_ERRORS,
        PAGE,
    );
    d.op(
        Post,
        "/operator/accounts/{account_id}/usage",
        "Consumes a metric's quota, exactly once per idempotency key",
        Iam,
        Some(usage_body),
        (200, usage_answer.clone()),
        WRITE_ERRORS,
        &[],
    );
    d.op(
        Post,
        "/operator/accounts/{account_id}/usage/check",
        "Whether a consumption would be allowed (nothing counted)",
        Iam,
        Some(check_body),
        (200, usage_answer),
        WRITE_ERRORS,
        &[],
    );
    d.op(
        Post,
        "/operator/accounts/{account_id}/usage/refund",
        "Reverses one consumption, once",
        Iam,
        Some(refund_body.clone()),
        (200, usage_refund),
        &[400, 401, 403, 404, 409, 413, 415, 429, 500, 503],
        &[],
    );
    let batch_body = reference("BatchRequest");
    let batch_answer = d.schema::<crate::edge::http::BatchAnswer>();
    d.op(
        Post,
        "/operator/usage/batch",
        "Up to 100 consumptions, each decided as the single route decides it",
        Iam,
        Some(batch_body),
        (200, batch_answer),
        WRITE_ERRORS,
        &[],
    );
    let consume_body = reference("ConsumeRequest");
    let consumed = d.schema::<credits::ConsumeAnswer>();
    d.op(
        Post,
        "/operator/accounts/{account_id}/credits/consume",
        "Spends credits for an event, exactly once per key (402 when short)",
        Iam,
        Some(consume_body),
        (200, consumed),
        &[400, 401, 402, 403, 409, 413, 415, 500, 503],
        &[],
    );
    let ok = (200, d.schema::<credits::RefundAnswer>());
    d.op(
        Post,
        "/operator/accounts/{account_id}/credits/refund",
        "Gives one consumption's credits back, once",
        Iam,
        Some(refund_body),
        ok,
        &[400, 401, 403, 404, 409, 413, 415, 500, 503],
        &[],
    );
    let grant_body = reference("GrantRequest");
    let grant = d.schema::<credits::GrantView>();
    d.op(
        Post,
        "/operator/accounts/{account_id}/credits/grants",
        "A manual or promotional grant, once per idempotency key",
        Iam,
        Some(grant_body),
        (201, grant),
        WRITE_ERRORS,
        &[],
    );

    // operations on a bad day (the ops function)
    let failed = d.schema::<crate::app::ops::FailedList>();
    d.op(
        Get,
        "/operator/events/failed",
        "Events that failed, newest first",
        Iam,
        None,
        (200, failed),
        READ_ERRORS,
        PAGE,
    );
    let replayed = d.schema::<crate::app::ops::ReplayAnswer>();
    d.op(
        Post,
        "/operator/events/{event_id}/replay",
        "Reads one event from Stripe and applies it through the worker's path, exactly once",
        Iam,
        None,
        (200, replayed),
        &[400, 403, 404, 500, 503],
        &[],
    );
    let redriven = d.schema::<crate::app::ops::Redriven>();
    d.op(
        Post,
        "/operator/queues/{queue}/redrive",
        "Moves a dead-letter queue's messages (events or notifications) back to their queue",
        Iam,
        None,
        (200, redriven),
        &[403, 404, 500, 503],
        &[],
    );

    let adoption = d.schema::<crate::app::adopt::AdoptionView>();
    d.op(
        Post,
        "/operator/adoption",
        "Starts adopting the Stripe account's customers (a dry run unless `apply`); the sync does it",
        Iam,
        Some(reference("AdoptionRequest")),
        (202, adoption.clone()),
        &[400, 403, 409, 413, 415, 500, 503],
        &[],
    );
    d.op(Get, "/operator/adoption", "The adoption's state and report", Iam, None, (200, adoption), READ_ERRORS, &[]);

    // checkout
    let session = d.schema::<checkout::SessionAnswer>();
    let plan = reference("PlanRequest");
    d.op(
        Post,
        "/checkout",
        "Opens a Stripe Checkout Session for a plan",
        Jwt,
        Some(plan.clone()),
        (200, session.clone()),
        WRITE_ERRORS,
        &[],
    );
    let body = reference("PackRequest");
    d.op(
        Post,
        "/credits/checkout",
        "Opens a Checkout Session (payment mode) for a credit pack",
        Jwt,
        Some(body),
        (200, session),
        WRITE_ERRORS,
        &[],
    );
    let body = reference("PortalRequest");
    let ok = (200, d.schema::<checkout::PortalAnswer>());
    d.op(Post, "/portal", "Opens a customer portal session", Jwt, Some(body), ok, WRITE_ERRORS, &[]);
    let view = d.schema::<SubscriptionView>();
    d.op(
        Post,
        "/subscription/change",
        "Moves the subscription to another plan, prorating",
        Jwt,
        Some(plan),
        (200, view.clone()),
        WRITE_ERRORS,
        &[],
    );
    let body = reference("CancelRequest");
    d.op(
        Post,
        "/subscription/cancel",
        "Cancels now or at the period's end",
        Jwt,
        Some(body),
        (200, view),
        WRITE_ERRORS,
        &[],
    );
    let ok = (200, d.schema::<checkout::Deleted>());
    d.op(
        Delete,
        "/account",
        "Deletes the account's billing data (a tombstone stays)",
        Jwt,
        None,
        ok,
        &[401, 500, 503],
        &[],
    );

    // the webhook function URL
    let ok = (200, d.schema::<WebhookAck>());
    d.op(
        Post,
        "/webhooks/stripe",
        "Stripe's webhook deliveries (function URL)",
        StripeSignature,
        Some(reference("StripeEvent")),
        ok,
        &[400, 401, 405, 413, 500, 503],
        &[],
    );
    d
}
