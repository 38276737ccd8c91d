//! Metering: one consumption of a metric, decided exactly by the store in one transaction
//! (idempotency record, per-minute window, quota counter), for an account that has access;
//! the same decision without consuming (`check`); the reversal of a consumption (`refund`);
//! the period's usage of every metric (`report`); and the alerts a crossing of a threshold
//! sends.
//!
//! A plan change within a subscription keeps its usage window and the count in it, so after a
//! downgrade over the new limit consumption is refused until the window ends.

use crate::app::Settings;
use crate::domain::access::{Access, Reason, decide_account};
use crate::domain::model::AccountId;
use crate::domain::notifications::{Kind, Notification};
use crate::domain::plans::Tier;
use crate::domain::ratelimit::Limit;
use crate::domain::usage::{Counted, MAX_QUANTITY, Policy, UsageReport, Window, reached, window};
use crate::ports::StoreError;
use crate::ports::notifier::Notifier;
use crate::ports::subscriptions::{AccountState, SubscriptionStore};
use crate::ports::usage::{Consumed, Consumption, Refunded, Tally, UsageRecord, UsageStore};
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

/// The body of `POST /usage` and `POST /usage/check` (where the key is optional). Fields are
/// read loosely so that each bad value gets its own clear error.
#[derive(Debug, Default, Deserialize)]
pub struct UsageRequest {
    pub metric: Option<String>,
    pub quantity: Option<serde_json::Value>,
    pub idempotency_key: Option<String>,
}

/// The body of `POST /usage/refund` and `POST /credits/refund`.
#[derive(Debug, Default, Deserialize)]
pub struct RefundRequest {
    pub idempotency_key: Option<String>,
}

/// A metric's count in its window: after a consumption, or as it stands for a check. The
/// policies behind the rate-limit headers ride along, never in the body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageAnswer {
    pub metric: String,
    pub used: u64,
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    pub period_start: i64,
    pub period_end: i64,
    #[serde(skip)]
    pub policies: Vec<Policy>,
}

/// A reversed consumption: what it was and the metric's count in its window now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = UsageRefundAnswer))]
pub struct RefundAnswer {
    pub metric: String,
    pub quantity: u64,
    pub refunded: bool,
    pub used: u64,
    pub period_start: i64,
    pub period_end: i64,
}

/// Why a consumption was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("{0}")]
    Invalid(String),
    /// A batch record's `account_id` is not an account id (as a JWT claim must be one).
    #[error("`account_id` must be 1 to 128 of A-Z a-z 0-9 - _ . : @ |")]
    InvalidAccount,
    #[error("the account has no access: {0:?}")]
    AccessDenied(Reason),
    #[error("the idempotency key was used for another request")]
    IdempotencyMismatch,
    #[error("the consumption under this idempotency key was refunded; use a new key")]
    Refunded,
    #[error("no consumption was recorded under this idempotency key")]
    UnknownKey,
    #[error("too many requests this minute")]
    RateLimited { retry_after_ms: i64, policies: Vec<Policy> },
    #[error("the quota of the period is used up")]
    QuotaExceeded(UsageAnswer),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A checked request.
struct Valid {
    metric: String,
    quantity: u64,
    key: Option<String>,
}

fn invalid(message: impl Into<String>) -> UsageError {
    UsageError::Invalid(message.into())
}

/// A metering request's idempotency key (usage and credits): 1 to [`MAX_KEY_LEN`] characters; the
/// error is the caller's message.
pub(crate) fn idempotency_key(key: Option<String>) -> Result<String, String> {
    key.filter(|k| (1..=MAX_KEY_LEN).contains(&k.chars().count()))
        .ok_or_else(|| format!("`idempotency_key` is required, 1 to {MAX_KEY_LEN} characters"))
}

/// A metering request's quantity (usage and credits): an integer from 1 to [`MAX_QUANTITY`];
/// the error is the caller's message.
pub(crate) fn quantity(raw: Option<&serde_json::Value>) -> Result<u64, String> {
    raw.and_then(crate::domain::number::whole_u64)
        .filter(|q| (1..=MAX_QUANTITY).contains(q))
        .ok_or_else(|| format!("`quantity` must be an integer from 1 to {MAX_QUANTITY}"))
}

fn validate(settings: &Settings, body: UsageRequest, key_required: bool) -> Result<Valid, UsageError> {
    let metric = body.metric.ok_or_else(|| invalid("`metric` is required"))?;
    if settings.catalogue.metric(&metric).is_none() {
        let known: Vec<&str> = settings.catalogue.metrics().map(|m| m.name.as_str()).collect();
        return Err(invalid(format!("unknown metric; known: {}", known.join(", "))));
    }
    let quantity = quantity(body.quantity.as_ref()).map_err(UsageError::Invalid)?;
    let key = match body.idempotency_key {
        None if !key_required => None,
        key => Some(idempotency_key(key).map_err(UsageError::Invalid)?),
    };
    Ok(Valid { metric, quantity, key })
}

/// What an account's read says for metering at `now`: its access, the tier whose limits apply,
/// and its usage window.
struct Standing<'c> {
    access: Access,
    tier: &'c Tier,
    window: Window,
    now: i64,
    now_ms: i64,
}

impl<'c> Standing<'c> {
    fn of(settings: &'c Settings, state: &AccountState) -> Self {
        let now = settings.clock.now();
        let access = decide_account(state.subscription.as_ref(), !state.disputes().is_empty(), now);
        let tier = settings.catalogue.tier(&access.plan).unwrap_or_else(|| settings.catalogue.free());
        Self { access, tier, window: window(state.subscription.as_ref(), now), now, now_ms: settings.clock.now_ms() }
    }

    fn limit(&self, metric: &str) -> Option<u64> {
        self.tier.limits.usage.get(metric).copied().flatten()
    }

    /// The per-minute request limit, `None` when unlimited.
    fn rate(&self) -> Option<Limit> {
        self.tier
            .limits
            .requests_per_minute
            .map(|rpm| Limit { limit: usize::try_from(rpm).unwrap_or(usize::MAX), window_ms: 60_000 })
    }

    fn rate_window_ms(&self) -> Option<i64> {
        self.rate().map(|limit| limit.window(self.now_ms).start_ms)
    }

    /// The policies behind the rate-limit headers: the minute's requests and the quota.
    fn policies(&self, metric: &str, counted: &Counted, requests: u64) -> Vec<Policy> {
        let minute = self
            .rate()
            .map(|limit| Policy::minute(limit.max(), requests, limit.window(self.now_ms).end_ms, self.now_ms));
        minute.into_iter().chain(Policy::quota(metric, counted, self.window, self.now)).collect()
    }

    fn answer(&self, metric: &str, tally: Tally, window: Window) -> UsageAnswer {
        let counted = Counted::new(tally.used, self.limit(metric));
        UsageAnswer {
            metric: metric.to_owned(),
            used: counted.used,
            limit: counted.limit,
            remaining: counted.remaining,
            period_start: window.start,
            period_end: window.end,
            policies: self.policies(metric, &counted, tally.requests),
        }
    }

    fn rate_limited(&self, metric: &str, used: u64, retry_after_ms: i64) -> UsageError {
        let counted = Counted::new(used, self.limit(metric));
        let requests = self.rate().map_or(0, |limit| limit.max());
        UsageError::RateLimited { retry_after_ms, policies: self.policies(metric, &counted, requests) }
    }
}

/// `POST /operator/accounts/{account_id}/usage`: consumes `quantity` of `metric` for
/// `account`, exactly once per key, recorded as `actor`'s.
pub async fn consume<S, N>(
    deps: &UsageDeps<S, N>,
    account: &AccountId,
    actor: &str,
    body: UsageRequest,
) -> Result<UsageAnswer, UsageError>
where
    S: SubscriptionStore + UsageStore,
    N: Notifier,
{
    let settings = &deps.settings;
    let valid = validate(settings, body, true)?;
    let key = valid.key.as_deref().unwrap_or_default();
    let state = deps.store.state(account).await?;
    let standing = Standing::of(settings, &state);
    if !standing.access.allowed {
        // A key counted before answers its replay, whatever the account's access is now.
        return replay_or(deps, account, &standing, &valid, UsageError::AccessDenied(standing.access.reason)).await;
    }
    let metric = valid.metric.as_str();
    let limit = standing.limit(metric);
    let window = standing.window;
    let record = UsageRecord {
        request: request_hash(metric, valid.quantity),
        metric: valid.metric.clone(),
        quantity: valid.quantity,
        window,
        at: standing.now,
        refunded: false,
        actor: Some(actor.to_owned()),
    };
    // Only a live paid subscription's usage reaches a Stripe meter (Free usage is never billed).
    let metered = standing.access.plan != crate::domain::plans::FREE
        && settings.catalogue.metric(metric).is_some_and(|m| m.event_name.is_some());
    let consumption =
        Consumption { account, key, record: &record, limit, rate: standing.rate(), now_ms: standing.now_ms, metered };
    match deps.store.consume(&consumption).await? {
        Consumed::Counted(tally) => {
            alert(deps, account, metric, limit, window, tally.used).await;
            Ok(standing.answer(metric, tally, window))
        }
        Consumed::Replayed(earlier) => replayed(deps, account, &standing, &earlier, &record.request).await,
        Consumed::RateLimited { retry_after_ms } => {
            Err(standing.rate_limited(metric, state.used(metric, window.start), retry_after_ms))
        }
        Consumed::QuotaExceeded(tally) => Err(UsageError::QuotaExceeded(standing.answer(metric, tally, window))),
    }
}

/// The hash of what a consumption asks (its metric and quantity): the same key with another
/// request is a mismatch, not a replay.
fn request_hash(metric: &str, quantity: u64) -> String {
    hex::encode(Sha256::digest(format!("{metric}|{quantity}")))
}

/// What the same request under `earlier`'s key answers again: the count as it stands (a
/// mismatch or a refunded key is refused as the first write would refuse it now).
async fn replayed<S, N>(
    deps: &UsageDeps<S, N>,
    account: &AccountId,
    standing: &Standing<'_>,
    earlier: &UsageRecord,
    request: &str,
) -> Result<UsageAnswer, UsageError>
where
    S: UsageStore,
{
    if earlier.request != request {
        return Err(UsageError::IdempotencyMismatch);
    }
    if earlier.refunded {
        return Err(UsageError::Refunded);
    }
    let tally = deps.store.tally(account, &earlier.metric, &earlier.window, standing.rate_window_ms()).await?;
    Ok(standing.answer(&earlier.metric, tally, earlier.window))
}

/// `refusal`, unless the request's key was counted before: then its replay. Only a refusal
/// reads the record, so the common path costs nothing more.
async fn replay_or<S, N>(
    deps: &UsageDeps<S, N>,
    account: &AccountId,
    standing: &Standing<'_>,
    valid: &Valid,
    refusal: UsageError,
) -> Result<UsageAnswer, UsageError>
where
    S: UsageStore,
{
    let Some(key) = valid.key.as_deref() else { return Err(refusal) };
    let request = request_hash(&valid.metric, valid.quantity);
    match deps.store.usage_record(account, key).await? {
        Some(earlier) => replayed(deps, account, standing, &earlier, &request).await,
        None => Err(refusal),
    }
}

/// `POST /usage/check` (and its key and operator twins): the decision `consume` would take now,
/// without consuming anything (nor counting the check in the per-minute window): 200 with the
/// count as it stands, or the refusal `consume` would answer; with a key counted before, its
/// replay, as the write would answer it.
pub async fn check<S, N>(
    deps: &UsageDeps<S, N>,
    account: &AccountId,
    body: UsageRequest,
) -> Result<UsageAnswer, UsageError>
where
    S: SubscriptionStore + UsageStore,
{
    let valid = validate(&deps.settings, body, false)?;
    let state = deps.store.state(account).await?;
    let standing = Standing::of(&deps.settings, &state);
    match decide_check(deps, account, &standing, &valid).await {
        Err(
            refusal @ (UsageError::AccessDenied(_) | UsageError::RateLimited { .. } | UsageError::QuotaExceeded(_)),
        ) => replay_or(deps, account, &standing, &valid, refusal).await,
        decision => decision,
    }
}

/// What `check` decides before any replay: access, the minute's requests, the quota.
async fn decide_check<S, N>(
    deps: &UsageDeps<S, N>,
    account: &AccountId,
    standing: &Standing<'_>,
    valid: &Valid,
) -> Result<UsageAnswer, UsageError>
where
    S: UsageStore,
{
    if !standing.access.allowed {
        return Err(UsageError::AccessDenied(standing.access.reason));
    }
    let metric = valid.metric.as_str();
    let tally = deps.store.tally(account, metric, &standing.window, standing.rate_window_ms()).await?;
    if let Some(limit) = standing.rate().filter(|limit| tally.requests >= limit.max()) {
        let retry_after_ms = limit.window(standing.now_ms).retry_after_ms(standing.now_ms);
        return Err(standing.rate_limited(metric, tally.used, retry_after_ms));
    }
    let answer = standing.answer(metric, tally, standing.window);
    if Counted::new(tally.used, answer.limit).allows(valid.quantity) {
        Ok(answer)
    } else {
        Err(UsageError::QuotaExceeded(answer))
    }
}

/// `POST /operator/accounts/{account_id}/usage/refund`: reverses the consumption recorded under the key, once; a second
/// refund answers the same and changes nothing.
pub async fn refund<S, N>(
    deps: &UsageDeps<S, N>,
    account: &AccountId,
    body: RefundRequest,
) -> Result<RefundAnswer, UsageError>
where
    S: UsageStore,
{
    let key = idempotency_key(body.idempotency_key).map_err(UsageError::Invalid)?;
    let record = match deps.store.refund(account, &key).await? {
        Refunded::Refunded(record) | Refunded::AlreadyRefunded(record) => record,
        Refunded::Unknown => return Err(UsageError::UnknownKey),
    };
    let used = deps.store.used(account, &record.metric, &record.window).await?;
    Ok(RefundAnswer {
        metric: record.metric,
        quantity: record.quantity,
        refunded: true,
        used,
        period_start: record.window.start,
        period_end: record.window.end,
    })
}

/// Records a batch holds at most.
pub const MAX_BATCH: usize = 100;

/// The body of `POST /operator/usage/batch`.
#[derive(Debug, Default, Deserialize)]
pub struct BatchRequest {
    pub records: Option<Vec<BatchRecord>>,
}

/// One record of a batch: a consumption as `POST /operator/accounts/{account_id}/usage` takes
/// it, with its account.
#[derive(Debug, Default, Deserialize)]
pub struct BatchRecord {
    pub account_id: Option<String>,
    #[serde(flatten)]
    pub usage: UsageRequest,
}

/// `POST /operator/usage/batch`: each record decided in order exactly as the single route
/// decides it (its account's access, quota and per-minute limit: each record is one request of
/// its account), as `actor`; one answer per record, in order. Only a batch that is no batch
/// (no `records`, none, or more than [`MAX_BATCH`]) is refused whole.
pub async fn batch<S, N>(
    deps: &UsageDeps<S, N>,
    actor: &str,
    body: BatchRequest,
) -> Result<Vec<Result<UsageAnswer, UsageError>>, UsageError>
where
    S: SubscriptionStore + UsageStore,
    N: Notifier,
{
    let records = body
        .records
        .filter(|r| (1..=MAX_BATCH).contains(&r.len()))
        .ok_or_else(|| invalid(format!("`records` is required: 1 to {MAX_BATCH} records")))?;
    let mut answers = Vec::with_capacity(records.len());
    for record in records {
        let account = record.account_id.as_deref().map(AccountId::parse);
        answers.push(match account {
            Some(Ok(account)) => consume(deps, &account, actor, record.usage).await,
            _ => Err(UsageError::InvalidAccount),
        });
    }
    Ok(answers)
}

/// The usage of every metric of the account's plan in its current window, from its state read.
pub fn report(settings: &Settings, state: &AccountState) -> UsageReport {
    let standing = Standing::of(settings, state);
    let metrics = settings
        .catalogue
        .metrics()
        .map(|m| (m.name.clone(), Counted::new(state.used(&m.name, standing.window.start), standing.limit(&m.name))))
        .collect();
    UsageReport { period_start: standing.window.start, period_end: standing.window.end, metrics }
}

/// `GET /usage`: [`report`] from one read of the account's state.
pub async fn usage<S: SubscriptionStore>(
    store: &S,
    settings: &Settings,
    account: &AccountId,
) -> Result<UsageReport, StoreError> {
    Ok(report(settings, &store.state(account).await?))
}

/// Notifies each alert threshold the count has reached and nobody told yet: one notification
/// per account, metric, window and threshold, decided by a conditional marker written after the
/// commit (so requests crossing together never lose a crossing, nor tell it twice); its id is
/// the same, so a retried send is deduplicated. A failed send is logged, never undoes the count.
async fn alert<S: UsageStore, N: Notifier>(
    deps: &UsageDeps<S, N>,
    account: &AccountId,
    metric: &str,
    limit: Option<u64>,
    window: Window,
    used: u64,
) {
    for pct in reached(deps.settings.catalogue.alert_thresholds(), limit, used) {
        match deps.store.mark_threshold(account, metric, &window, pct).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(err) => {
                tracing::warn!(error = %err, metric, pct, "could not mark a usage alert; not sent");
                continue;
            }
        }
        let notification = Notification {
            id: format!("usage_threshold:{account}:{metric}:{}:{pct}", window.start),
            kind: Kind::UsageThreshold,
            account_id: account.to_string(),
            customer_id: String::new(),
            event_id: String::new(),
            event_type: String::new(),
            occurred_at: deps.settings.clock.now(),
            object_id: metric.to_owned(),
            details: serde_json::json!({"metric": metric, "threshold_percent": pct, "used": used, "limit": limit,
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
        deps_at(&FixedClock::at(NOW))
    }

    fn deps_at(clock: &FixedClock) -> UsageDeps<MemoryStore, Outbox> {
        UsageDeps { store: MemoryStore::new(), notifier: Outbox::default(), settings: settings(clock) }
    }

    /// The account on `plan` (version `version`), in a monthly period from a day before NOW.
    async fn on_plan(deps: &UsageDeps<MemoryStore, Outbox>, plan: &str, version: i64) {
        let projection = crate::domain::model::Projection {
            plan: plan.into(),
            version,
            current_period_start: Some(NOW - 86_400),
            current_period_end: Some(crate::domain::usage::add_months(NOW - 86_400, 1)),
            ..crate::testing::projection("acct_u")
        };
        crate::testing::subscribed(&deps.store, &projection).await;
    }

    fn one(key: &str) -> UsageRequest {
        request("api_calls", serde_json::json!(1), key)
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
            let refused = consume(&deps, &account(), "ops", body).await;
            assert!(matches!(refused, Err(UsageError::Invalid(_))), "{refused:?}");
        }
        let window = crate::domain::usage::window(None, NOW);
        assert_eq!(deps.store.used(&account(), "api_calls", &window).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn only_a_paid_subscription_s_usage_is_due_for_the_meter() {
        use crate::ports::meter::MeterStore;
        let (free, paid) = (deps(), deps());
        on_plan(&paid, "pro", 1).await;

        consume(&free, &account(), "ops", one("a")).await.unwrap();
        consume(&paid, &account(), "ops", one("a")).await.unwrap();

        assert!(free.store.due_counters(10, None).await.unwrap().counters.is_empty(), "Free usage is never billed");
        assert_eq!(paid.store.due_counters(10, None).await.unwrap().counters.len(), 1);
    }

    #[tokio::test]
    async fn free_accounts_consume_to_their_limit_once_per_key() {
        let deps = deps();

        let first = consume(&deps, &account(), "ops", request("api_calls", serde_json::json!(60), "a")).await.unwrap();
        let replay = consume(&deps, &account(), "ops", request("api_calls", serde_json::json!(60), "a")).await.unwrap();
        let mismatch = consume(&deps, &account(), "ops", request("api_calls", serde_json::json!(5), "a")).await;
        let over = consume(&deps, &account(), "ops", request("api_calls", serde_json::json!(41), "b")).await;
        let rest = consume(&deps, &account(), "ops", request("api_calls", serde_json::json!(40), "c")).await.unwrap();

        assert_eq!((first.used, first.limit, first.remaining), (60, Some(100), Some(40)));
        assert_eq!(replay, first, "the same key answers the same and counts once");
        assert!(matches!(mismatch, Err(UsageError::IdempotencyMismatch)), "{mismatch:?}");
        assert!(matches!(over, Err(UsageError::QuotaExceeded(UsageAnswer { used: 60, .. }))), "{over:?}");
        assert_eq!((rest.used, rest.remaining), (100, Some(0)));
        assert_eq!(
            (first.period_start, first.period_end),
            (crate::domain::usage::window(None, NOW).start, crate::domain::usage::window(None, NOW).end)
        );
    }

    #[tokio::test]
    async fn each_threshold_is_notified_once_per_period() {
        let deps = deps();

        for (key, quantity) in [("a", 79), ("b", 1), ("c", 10), ("d", 10)] {
            consume(&deps, &account(), "ops", request("api_calls", serde_json::json!(quantity), key)).await.unwrap();
        }
        consume(&deps, &account(), "ops", request("api_calls", serde_json::json!(1), "a")).await.ok();

        let ids: Vec<String> = deps.notifier.sent().into_iter().map(|n| n.id).collect();
        let start = crate::domain::usage::window(None, NOW).start;
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
        let past_due = crate::domain::model::Projection {
            status: crate::domain::model::SubscriptionStatus::Unpaid,
            plan: "pro".into(),
            ..crate::testing::projection("acct_u")
        };
        crate::testing::subscribed(&deps.store, &past_due).await;

        let refused = consume(&deps, &account(), "ops", request("api_calls", serde_json::json!(1), "k")).await;

        assert!(matches!(refused, Err(UsageError::AccessDenied(Reason::Unpaid))), "{refused:?}");
    }

    #[tokio::test]
    async fn the_per_minute_limit_refuses_the_request_over_it_until_the_next_minute() {
        let clock = FixedClock::at(NOW);
        let deps = deps_at(&clock);

        let mut outcomes = Vec::new();
        for i in 0..11 {
            outcomes.push(consume(&deps, &account(), "ops", one(&format!("k{i}"))).await);
        }
        clock.advance(60);
        let next_minute = consume(&deps, &account(), "ops", one("k11")).await.unwrap();

        assert!(outcomes[..10].iter().all(Result::is_ok), "{outcomes:?}");
        let Err(UsageError::RateLimited { retry_after_ms, policies }) = &outcomes[10] else {
            panic!("{:?}", outcomes[10])
        };
        assert!((1..=60_000).contains(retry_after_ms));
        assert_eq!(policies[0].remaining, 0);
        assert_eq!(next_minute.used, 11, "the refused request counted nothing");
        assert_eq!((next_minute.policies[0].name.as_str(), next_minute.policies[0].remaining), ("minute", 9));
    }

    #[tokio::test]
    async fn a_check_decides_like_a_consumption_and_consumes_nothing() {
        let deps = deps();
        consume(&deps, &account(), "ops", request("api_calls", serde_json::json!(95), "a")).await.unwrap();

        let fits = check(&deps, &account(), request("api_calls", serde_json::json!(5), "")).await;
        let fits_without_key = check(
            &deps,
            &account(),
            UsageRequest { idempotency_key: None, ..request("api_calls", serde_json::json!(5), "") },
        )
        .await
        .unwrap();
        let too_much = check(
            &deps,
            &account(),
            UsageRequest { idempotency_key: None, ..request("api_calls", serde_json::json!(6), "") },
        )
        .await;

        assert!(matches!(fits, Err(UsageError::Invalid(_))), "an empty key is still refused: {fits:?}");
        assert_eq!((fits_without_key.used, fits_without_key.remaining), (95, Some(5)));
        assert!(matches!(too_much, Err(UsageError::QuotaExceeded(UsageAnswer { used: 95, .. }))), "{too_much:?}");
        let window = crate::domain::usage::window(None, NOW);
        assert_eq!(deps.store.used(&account(), "api_calls", &window).await.unwrap(), 95);
        let minute = Some(NOW * 1000 - (NOW * 1000) % 60_000);
        let tally = deps.store.tally(&account(), "api_calls", &window, minute).await.unwrap();
        assert_eq!(tally.requests, 1, "checks are not counted in the minute");
    }

    #[tokio::test]
    async fn a_refund_gives_a_consumption_back_once_and_retires_its_key() {
        let deps = deps();
        consume(&deps, &account(), "ops", request("api_calls", serde_json::json!(30), "job")).await.unwrap();

        let first = refund(&deps, &account(), RefundRequest { idempotency_key: Some("job".into()) }).await.unwrap();
        let again = refund(&deps, &account(), RefundRequest { idempotency_key: Some("job".into()) }).await.unwrap();
        let unknown = refund(&deps, &account(), RefundRequest { idempotency_key: Some("nope".into()) }).await;
        let missing = refund(&deps, &account(), RefundRequest::default()).await;
        let reused = consume(&deps, &account(), "ops", request("api_calls", serde_json::json!(30), "job")).await;

        assert_eq!((first.metric.as_str(), first.quantity, first.used), ("api_calls", 30, 0));
        assert_eq!(again, first, "a second refund answers the same and gives nothing back twice");
        assert!(matches!(unknown, Err(UsageError::UnknownKey)), "{unknown:?}");
        assert!(matches!(missing, Err(UsageError::Invalid(_))), "{missing:?}");
        assert!(matches!(reused, Err(UsageError::Refunded)), "{reused:?}");
    }

    #[tokio::test]
    async fn a_downgrade_keeps_the_periods_usage_and_refuses_over_the_new_limit() {
        let deps = deps();
        on_plan(&deps, "pro", 1).await;
        let pro = consume(&deps, &account(), "ops", request("api_calls", serde_json::json!(500), "a")).await.unwrap();

        on_plan(&deps, "free", 2).await;
        let refused = consume(&deps, &account(), "ops", one("b")).await;
        let report = usage(&deps.store, &deps.settings, &account()).await.unwrap();

        assert_eq!((pro.used, pro.limit, pro.period_start), (500, Some(10_000), NOW - 86_400));
        let Err(UsageError::QuotaExceeded(answer)) = refused else { panic!("{refused:?}") };
        assert_eq!((answer.used, answer.limit, answer.remaining), (500, Some(100), Some(0)));
        assert_eq!(answer.period_start, NOW - 86_400, "the same window: the count is kept");
        assert_eq!(report.metrics["api_calls"], Counted::new(500, Some(100)));
        assert_eq!((report.period_start, report.period_end), (answer.period_start, answer.period_end));
    }

    #[tokio::test]
    async fn an_unlimited_tier_is_counted_and_never_refused() {
        let deps = deps();
        on_plan(&deps, "enterprise", 1).await;

        for i in 0..3 {
            consume(&deps, &account(), "ops", request("api_calls", serde_json::json!(MAX_QUANTITY), &format!("k{i}")))
                .await
                .unwrap();
        }
        let last = consume(&deps, &account(), "ops", request("api_calls", serde_json::json!(MAX_QUANTITY), "k3")).await;

        let last = last.unwrap();
        assert_eq!((last.used, last.limit, last.remaining), (4 * MAX_QUANTITY, None, None));
        assert!(last.policies.is_empty(), "no limit, no rate-limit policy: {:?}", last.policies);
        assert!(deps.notifier.sent().is_empty(), "an unlimited metric crosses no threshold");
    }
}
