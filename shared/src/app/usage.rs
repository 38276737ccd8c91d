//! Metering: one consumption of a metric, decided exactly by the store in one transaction
//! (idempotency record, per-minute window, quota counter), for an account that has access;
//! and the alerts its crossing of a threshold sends. The `usage` function that serves it over
//! HTTP is not built yet.

use crate::access::{Reason, decide_account};
use crate::app::Settings;
use crate::model::AccountId;
use crate::notify::{Kind, Notification, Notifier};
use crate::ratelimit::Limit;
use crate::store::{Consumed, Consumption, StoreError, SubscriptionStore, UsageRecord, UsageStore};
use crate::usage::{Counted, MAX_QUANTITY, Window, crossed, window};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Longest idempotency key accepted (Stripe's bound too).
pub const MAX_KEY_LEN: usize = 255;

/// What metering needs.
pub struct UsageDeps<S, N> {
    pub store: S,
    pub notifier: N,
    pub settings: Settings,
}

/// The body of `POST /usage`. Fields are read loosely so that each bad value gets its own
/// clear error.
#[derive(Debug, Default, Deserialize)]
pub struct UsageRequest {
    pub metric: Option<String>,
    pub quantity: Option<serde_json::Value>,
    pub idempotency_key: Option<String>,
}

/// What was counted: the metric's count in its window after the consumption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageAnswer {
    pub metric: String,
    pub used: u64,
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    pub period_start: i64,
    pub period_end: i64,
}

/// Why a consumption was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("{0}")]
    Invalid(String),
    #[error("the account has no access: {0:?}")]
    AccessDenied(Reason),
    #[error("the idempotency key was used for another request")]
    IdempotencyMismatch,
    #[error("too many requests this minute")]
    RateLimited { retry_after_ms: i64 },
    #[error("the quota of the period is used up")]
    QuotaExceeded(UsageAnswer),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A checked request.
struct Valid {
    metric: String,
    quantity: u64,
    key: String,
}

fn validate(settings: &Settings, body: UsageRequest) -> Result<Valid, UsageError> {
    let invalid = |m: &str| UsageError::Invalid(m.to_owned());
    let metric = body.metric.ok_or_else(|| invalid("`metric` is required"))?;
    if settings.catalogue.metric(&metric).is_none() {
        let known: Vec<&str> = settings.catalogue.metrics().map(|m| m.name.as_str()).collect();
        return Err(UsageError::Invalid(format!("unknown metric; known: {}", known.join(", "))));
    }
    let quantity = body
        .quantity
        .as_ref()
        .and_then(serde_json::Value::as_u64)
        .filter(|q| (1..=MAX_QUANTITY).contains(q))
        .ok_or_else(|| UsageError::Invalid(format!("`quantity` must be an integer from 1 to {MAX_QUANTITY}")))?;
    let key = body
        .idempotency_key
        .filter(|k| (1..=MAX_KEY_LEN).contains(&k.len()))
        .ok_or_else(|| UsageError::Invalid(format!("`idempotency_key` is required, 1 to {MAX_KEY_LEN} bytes")))?;
    Ok(Valid { metric, quantity, key })
}

/// `POST /usage`: consumes `quantity` of `metric` for `account`, exactly once per key.
pub async fn consume<S, N>(
    deps: &UsageDeps<S, N>,
    account: &AccountId,
    body: UsageRequest,
) -> Result<UsageAnswer, UsageError>
where
    S: SubscriptionStore + UsageStore,
    N: Notifier,
{
    let settings = &deps.settings;
    let valid = validate(settings, body)?;
    let state = deps.store.state(account).await?;
    let now_ms = settings.clock.now_ms();
    let now = settings.clock.now();
    let access = decide_account(state.subscription.as_ref(), !state.disputes().is_empty(), now);
    if !access.allowed {
        return Err(UsageError::AccessDenied(access.reason));
    }
    let tier = settings.catalogue.tier(&access.plan).unwrap_or_else(|| settings.catalogue.free());
    let limit = tier.limits.usage.get(&valid.metric).copied().flatten();
    let rate = tier
        .limits
        .requests_per_minute
        .map(|rpm| Limit { limit: usize::try_from(rpm).unwrap_or(usize::MAX), window_ms: 60_000 });
    let window = window(state.subscription.as_ref(), now);
    let request = hex::encode(Sha256::digest(format!("{}|{}", valid.metric, valid.quantity)));
    let record = UsageRecord {
        request,
        metric: valid.metric.clone(),
        quantity: valid.quantity,
        window,
        at: now,
        refunded: false,
    };
    let consumption = Consumption { account, key: &valid.key, record: &record, limit, rate, now_ms };
    let answer = |used: u64, window: Window| {
        let counted = Counted::new(used, limit);
        UsageAnswer {
            metric: valid.metric.clone(),
            used: counted.used,
            limit: counted.limit,
            remaining: counted.remaining,
            period_start: window.start,
            period_end: window.end,
        }
    };
    match deps.store.consume(&consumption).await? {
        Consumed::Counted { used } => {
            alert(deps, account, &valid.metric, limit, window, used.saturating_sub(valid.quantity), used).await;
            Ok(answer(used, window))
        }
        Consumed::Replayed(earlier) if earlier.request == record.request => {
            let used = deps.store.used(account, &earlier.metric, &earlier.window).await?;
            Ok(answer(used, earlier.window))
        }
        Consumed::Replayed(_) => Err(UsageError::IdempotencyMismatch),
        Consumed::RateLimited { retry_after_ms } => Err(UsageError::RateLimited { retry_after_ms }),
        Consumed::QuotaExceeded { used } => Err(UsageError::QuotaExceeded(answer(used, window))),
    }
}

/// Notifies each alert threshold the consumption from `before` to `after` crossed: one
/// notification per account, metric, window and threshold (its id), so a crossing is told
/// once per period. Sent after the count committed; a failed send is logged, never undoes it.
async fn alert<S, N: Notifier>(
    deps: &UsageDeps<S, N>,
    account: &AccountId,
    metric: &str,
    limit: Option<u64>,
    window: Window,
    before: u64,
    after: u64,
) {
    for pct in crossed(deps.settings.catalogue.alert_thresholds(), limit, before, after) {
        let notification = Notification {
            id: format!("usage_threshold:{account}:{metric}:{}:{pct}", window.start),
            kind: Kind::UsageThreshold,
            account_id: account.to_string(),
            customer_id: String::new(),
            event_id: String::new(),
            event_type: String::new(),
            occurred_at: deps.settings.clock.now(),
            object_id: metric.to_owned(),
            details: serde_json::json!({"metric": metric, "threshold_percent": pct, "used": after, "limit": limit,
                "period_start": window.start, "period_end": window.end}),
        };
        if let Err(err) = deps.notifier.notify(&notification).await {
            tracing::warn!(error = %err, metric, pct, "could not send a usage alert");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FixedClock, MemoryStore, Outbox, settings};

    const NOW: i64 = 1_795_273_200;

    fn deps() -> UsageDeps<MemoryStore, Outbox> {
        UsageDeps { store: MemoryStore::new(), notifier: Outbox::default(), settings: settings(&FixedClock::at(NOW)) }
    }

    fn request(metric: &str, quantity: serde_json::Value, key: &str) -> UsageRequest {
        UsageRequest { metric: Some(metric.into()), quantity: Some(quantity), idempotency_key: Some(key.into()) }
    }

    fn account() -> AccountId {
        AccountId::parse("acct_u").unwrap()
    }

    #[tokio::test]
    async fn bad_input_is_refused_and_counts_nothing() {
        let deps = deps();
        let long = "k".repeat(MAX_KEY_LEN + 1);
        let bad = [
            request("api_calls", serde_json::json!(0), "k"),
            request("api_calls", serde_json::json!(-1), "k"),
            request("api_calls", serde_json::json!(1.5), "k"),
            request("api_calls", serde_json::json!("3"), "k"),
            request("api_calls", serde_json::json!(MAX_QUANTITY + 1), "k"),
            request("api_calls", serde_json::json!(u64::MAX), "k"),
            request("api_calls", serde_json::json!(1), ""),
            request("api_calls", serde_json::json!(1), &long),
            request("gpu_seconds", serde_json::json!(1), "k"),
            UsageRequest::default(),
        ];

        for body in bad {
            let refused = consume(&deps, &account(), body).await;
            assert!(matches!(refused, Err(UsageError::Invalid(_))), "{refused:?}");
        }
        let window = crate::usage::window(None, NOW);
        assert_eq!(deps.store.used(&account(), "api_calls", &window).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn free_accounts_consume_to_their_limit_once_per_key() {
        let deps = deps();

        let first = consume(&deps, &account(), request("api_calls", serde_json::json!(60), "a")).await.unwrap();
        let replay = consume(&deps, &account(), request("api_calls", serde_json::json!(60), "a")).await.unwrap();
        let mismatch = consume(&deps, &account(), request("api_calls", serde_json::json!(5), "a")).await;
        let over = consume(&deps, &account(), request("api_calls", serde_json::json!(41), "b")).await;
        let rest = consume(&deps, &account(), request("api_calls", serde_json::json!(40), "c")).await.unwrap();

        assert_eq!((first.used, first.limit, first.remaining), (60, Some(100), Some(40)));
        assert_eq!(replay, first, "the same key answers the same and counts once");
        assert!(matches!(mismatch, Err(UsageError::IdempotencyMismatch)), "{mismatch:?}");
        assert!(matches!(over, Err(UsageError::QuotaExceeded(UsageAnswer { used: 60, .. }))), "{over:?}");
        assert_eq!((rest.used, rest.remaining), (100, Some(0)));
        assert_eq!(
            (first.period_start, first.period_end),
            (crate::usage::window(None, NOW).start, crate::usage::window(None, NOW).end)
        );
    }

    #[tokio::test]
    async fn each_threshold_is_notified_once_per_period() {
        let deps = deps();

        for (key, quantity) in [("a", 79), ("b", 1), ("c", 10), ("d", 10)] {
            consume(&deps, &account(), request("api_calls", serde_json::json!(quantity), key)).await.unwrap();
        }
        consume(&deps, &account(), request("api_calls", serde_json::json!(1), "a")).await.ok();

        let ids: Vec<String> = deps.notifier.sent().into_iter().map(|n| n.id).collect();
        let start = crate::usage::window(None, NOW).start;
        assert_eq!(
            ids,
            [
                format!("usage_threshold:acct_u:api_calls:{start}:80"),
                format!("usage_threshold:acct_u:api_calls:{start}:100")
            ]
        );
    }

    #[tokio::test]
    async fn an_account_without_access_is_refused_with_its_reason() {
        let deps = deps();
        let past_due = crate::model::Projection {
            status: crate::model::SubscriptionStatus::Unpaid,
            plan: "pro".into(),
            ..crate::testing::projection("acct_u")
        };
        crate::testing::subscribed(&deps.store, &past_due).await;

        let refused = consume(&deps, &account(), request("api_calls", serde_json::json!(1), "k")).await;

        assert!(matches!(refused, Err(UsageError::AccessDenied(Reason::Unpaid))), "{refused:?}");
    }
}
