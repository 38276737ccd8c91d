//! Credits: consumptions drawn exactly from an account's grants (one transaction with their
//! ledger entry and idempotency record, never below zero), their refund, the balance and the
//! ledger by page, and the plan's credits granted once per usage window.
//!
//! The plan's grant for a window is written by the first credit operation or `GET /credits`
//! in the window, provided the subscription is paid up (access `active` or `trialing`), with
//! a deterministic id, so racing first operations grant it once. An upgrade within the window
//! grants the difference (one grant per tier and window); a downgrade grants nothing. The
//! subscription read shows the balance with a grant still owed counted in.
//!
//! Credits do not depend on access: what is left of a grant stays spendable until it expires.

use crate::app::Settings;
use crate::app::usage::{RefundRequest, UsageDeps};
use crate::domain::access::{Reason, decide_account};
use crate::domain::credits::{Balance, Grant, GrantKind, balance, draws, plan_grant};
use crate::domain::model::AccountId;
use crate::domain::notifications::{Kind, Notification};
use crate::domain::usage::{Window, window};
use crate::ports::StoreError;
use crate::ports::credits::{
    CreditRecord, CreditRefund, CreditStore, EntryKind, GrantWrite, LedgerEntry, MAX_DRAWS, PART_DRAWS, Part, Spend,
    Spent, Split,
};
use crate::ports::notifier::Notifier;
use crate::ports::subscriptions::{AccountState, SubscriptionStore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Largest page of the ledger.
pub const MAX_PAGE: usize = 100;
/// Default page of the ledger.
pub const DEFAULT_PAGE: usize = 20;
/// Plans of one consumption before giving up on grants that keep changing under it (at or
/// over the low-balance mark, requests spending together contend: one commits per round).
const ATTEMPTS: usize = 32;

/// The body of `POST /credits/consume`.
#[derive(Debug, Default, Deserialize)]
pub struct ConsumeRequest {
    pub event: Option<String>,
    pub quantity: Option<serde_json::Value>,
    pub idempotency_key: Option<String>,
}

/// A consumption's answer: what it cost and the balance it left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsumeAnswer {
    pub event: String,
    pub quantity: u64,
    pub cost: u64,
    #[serde(flatten)]
    pub balance: Balance,
}

/// A refund's answer: what was given back and the balance now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = CreditRefundAnswer))]
pub struct RefundAnswer {
    pub event: String,
    pub quantity: u64,
    pub cost: u64,
    pub refunded: bool,
    #[serde(flatten)]
    pub balance: Balance,
}

/// A live grant as `GET /credits` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GrantView {
    pub id: String,
    pub kind: GrantKind,
    pub source: String,
    pub credits: u64,
    pub remaining: u64,
    pub granted_at: i64,
    pub expires_at: Option<i64>,
}

/// `GET /credits`: the balance, the live grants (soonest-expiring first) and a page of the
/// ledger, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreditsAnswer {
    #[serde(flatten)]
    pub balance: Balance,
    pub grants: Vec<GrantView>,
    pub entries: Vec<LedgerEntry>,
    pub next_cursor: Option<String>,
}

/// Who reads the ledger: an account's own credentials never see who wrote an entry (an
/// operator's actor is an IAM ARN, naming the AWS account and role); the operator does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    Customer,
    Operator,
}

/// The query of `GET /credits`.
#[derive(Debug, Default, Deserialize)]
pub struct LedgerQuery {
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// Why a credit operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum CreditError {
    #[error("{0}")]
    Invalid(String),
    #[error("the balance is {balance}, the cost {cost}")]
    Insufficient { cost: u64, balance: u64 },
    #[error("the idempotency key was used for another request")]
    IdempotencyMismatch,
    #[error("the consumption under this idempotency key was refunded; use a new key")]
    Refunded,
    #[error("no consumption was recorded under this idempotency key")]
    UnknownKey,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(message: impl Into<String>) -> CreditError {
    CreditError::Invalid(message.into())
}

fn valid_key(key: Option<String>) -> Result<String, CreditError> {
    crate::app::usage::idempotency_key(key).map_err(CreditError::Invalid)
}

/// The plan grant the account is owed for its current usage window, if any: its tier's
/// credits less what the window's plan grants already hold, when it is paid up.
pub fn owed_grant(settings: &Settings, state: &AccountState) -> Option<Grant> {
    let now = settings.clock.now();
    let access = decide_account(state.subscription.as_ref(), !state.disputes().is_empty(), now);
    if !matches!(access.reason, Reason::Active | Reason::Trialing) {
        return None;
    }
    let tier = settings.catalogue.tier(&access.plan)?;
    let window = window(state.subscription.as_ref(), now);
    plan_grant(&tier.id, tier.credits, &window_grants(state, window), window, now)
}

/// The plan grants of `window` (their ids' prefix is its start).
fn window_grants(state: &AccountState, window: Window) -> Vec<&Grant> {
    let prefix = format!("plan-{}-", window.start);
    state.grants.iter().filter(|g| g.kind == GrantKind::Subscription && g.id.starts_with(&prefix)).collect()
}

/// The balance of `state` at the settings' time, a grant still owed counted in (what the
/// first credit operation of the window will grant).
pub fn balance_of(settings: &Settings, state: &AccountState) -> Balance {
    let mut grants = state.grants.clone();
    grants.extend(owed_grant(settings, state));
    balance(&grants, settings.clock.now())
}

/// Reads the account's state, first recording the expiry of grants that expired with credits
/// left, lengthening the window's plan grants to its end, and writing the plan grant it is
/// owed (each once: the ids are the grant's, and the window's sequence).
async fn granted_state<S: SubscriptionStore + CreditStore>(
    store: &S,
    settings: &Settings,
    account: &AccountId,
) -> Result<AccountState, StoreError> {
    let state = store.state(account).await?;
    let now = settings.clock.now();
    let mut wrote = false;
    // Credits that expired with something left are recorded once, as an `expiry` entry at the
    // moment they expired (the balance stopped counting them then, with or without it).
    for grant in state.grants.iter().filter(|g| !g.live(now) && g.remaining > 0) {
        match store.reverse_grant(account, &grant.id, grant.remaining, &LedgerEntry::expiry_of(grant)).await {
            Ok(recorded) => wrote |= recorded,
            // Recorded before (credits refunded to it since stay expired).
            Err(StoreError::Conflict(_)) => {}
            Err(err) => return Err(err),
        }
    }
    // The window's plan grants end with it, also when an interval change lengthened it.
    let current = window(state.subscription.as_ref(), now);
    for grant in
        window_grants(&state, current).into_iter().filter(|g| g.expires_at.is_some_and(|end| end < current.end))
    {
        wrote |= store.extend_grant(account, &grant.id, current.end).await?;
    }
    let mut state = if wrote { store.state(account).await? } else { state };
    // The plan grant owed, once: a racing operation that wrote the window's next grant first
    // makes this one compute again from it; nothing is granted to an account no longer linked.
    for _ in 0..ATTEMPTS {
        let Some(grant) = owed_grant(settings, &state) else { return Ok(state) };
        match store.grant_to_linked(account, &grant, &LedgerEntry::grant_of(&grant, settings.clock.now_ms())).await? {
            GrantWrite::NotLinked => return Ok(state),
            GrantWrite::Written | GrantWrite::Exists => state = store.state(account).await?,
        }
    }
    Ok(state)
}

/// `POST /operator/accounts/{account_id}/credits/consume`: draws `quantity` x the event's cost
/// from the grants, in the catalogue's order, exactly once per key, as `actor`; `402` when the
/// balance is short.
pub async fn consume<S, N>(
    deps: &UsageDeps<S, N>,
    account: &AccountId,
    actor: &str,
    body: ConsumeRequest,
) -> Result<ConsumeAnswer, CreditError>
where
    S: SubscriptionStore + CreditStore,
    N: Notifier,
{
    let settings = &deps.settings;
    let rules = settings.catalogue.credits();
    let event = body.event.ok_or_else(|| invalid("`event` is required"))?;
    let Some(per_unit) = rules.costs.get(&event).copied() else {
        let known: Vec<&str> = rules.costs.keys().map(String::as_str).collect();
        return Err(invalid(format!("unknown event; known: {}", known.join(", "))));
    };
    let quantity = crate::app::usage::quantity(body.quantity.as_ref()).map_err(CreditError::Invalid)?;
    let key = valid_key(body.idempotency_key)?;
    let cost = per_unit.saturating_mul(quantity);
    let request = hex::encode(Sha256::digest(format!("{event}|{quantity}")));
    let entry_id = format!("consume-{}", &hex::encode(Sha256::digest(key.as_bytes()))[..24]);
    let answer = |balance: Balance| ConsumeAnswer { event: event.clone(), quantity, cost, balance };

    let order = Order { account, actor, key: &key, request: &request, event: &event, quantity, cost, entry: &entry_id };

    let mut state = granted_state(&deps.store, settings, account).await?;
    for _ in 0..ATTEMPTS {
        let now = settings.clock.now();
        let before = balance(&state.grants, now);
        let drawn = draws(&state.grants, cost, rules.draw_order, now);
        if drawn.as_ref().is_some_and(|d| d.len() > MAX_DRAWS) {
            if merge_alike(&deps.store, account, &state.grants, now).await? {
                // Fewer, larger grants: draw again.
                state = deps.store.state(account).await?;
                continue;
            }
            // Packs, which each keep their payment, are never merged: draw in parts.
            return in_parts(deps, &order).await.map(answer);
        }
        let Some(draws) = drawn else {
            // Short: unless the key was spent before (a replay answers as it did).
            return match deps.store.credit_record(account, &key).await? {
                Some(earlier) if earlier.split.is_some() => in_parts(deps, &order).await.map(answer),
                Some(earlier) => replayed(&earlier, &request).map(|_| answer(before)),
                None => Err(CreditError::Insufficient { cost, balance: before.balance }),
            };
        };
        let at_ms = settings.clock.now_ms();
        let record = CreditRecord {
            request: request.clone(),
            event: event.clone(),
            quantity,
            cost,
            draws,
            entry: entry_id.clone(),
            at_ms,
            refunded: false,
            split: None,
        };
        let entry = order.entry_of(&record, Some(quantity));
        let emptied = emptied(&state.grants, &record.draws);
        // At or over the low-balance mark, the draws hold only on the grants exactly as read,
        // so the crossing is decided on the balance at the commit: requests crossing together
        // contend, and exactly the one that crosses tells it. Under the mark, nothing can cross.
        let low = rules.low_balance;
        let exact = (low > 0 && before.balance >= low).then_some(state.grants.as_slice());
        let spend =
            Spend { account, key: &key, record: &record, entry: &entry, now, emptied: &emptied, exact, part: None };
        match deps.store.spend(&spend).await? {
            Spent::Done => {
                let after = balance(&after_draws(&state.grants, &record.draws), now);
                low_balance(deps, account, &entry, before, after).await;
                return Ok(answer(after));
            }
            Spent::Replayed(earlier) if earlier.split.is_some() => return in_parts(deps, &order).await.map(answer),
            Spent::Replayed(earlier) => return replayed(&earlier, &request).map(|_| answer(before)),
            Spent::Contended => state = deps.store.state(account).await?,
        }
    }
    Err(CreditError::Store(StoreError::Conflict("the grants kept changing; retry")))
}

/// One consumption request, as validated: what it spends and under which key.
struct Order<'a> {
    account: &'a AccountId,
    actor: &'a str,
    key: &'a str,
    /// The request's hash (event and quantity).
    request: &'a str,
    event: &'a str,
    quantity: u64,
    cost: u64,
    /// Its ledger entry's id (a part's is `<id>-<part>`).
    entry: &'a str,
}

impl Order<'_> {
    /// The `consumption` entry of `record` (the whole spend, or one part of it).
    fn entry_of(&self, record: &CreditRecord, quantity: Option<u64>) -> LedgerEntry {
        LedgerEntry {
            withheld: None,
            id: record.entry.clone(),
            kind: EntryKind::Consumption,
            at_ms: record.at_ms,
            credits: i64::try_from(record.cost).map_or(i64::MIN, i64::saturating_neg),
            event: Some(self.event.to_owned()),
            quantity,
            grant: None,
            actor: Some(self.actor.to_owned()),
        }
    }
}

/// Grants that never end which `draws` empties (each drawn to exactly 0).
fn emptied(grants: &[Grant], draws: &[crate::domain::credits::Draw]) -> Vec<String> {
    draws
        .iter()
        .filter(|d| grants.iter().any(|g| g.id == d.grant && g.expires_at.is_none() && g.remaining == d.credits))
        .map(|d| d.grant.clone())
        .collect()
}

/// `grants` less `draws`.
fn after_draws(grants: &[Grant], draws: &[crate::domain::credits::Draw]) -> Vec<Grant> {
    let mut after = grants.to_vec();
    for draw in draws {
        if let Some(g) = after.iter_mut().find(|g| g.id == draw.grant) {
            g.remaining = g.remaining.saturating_sub(draw.credits);
        }
    }
    after
}

/// Draws a spend that needs more grants than one transaction holds in parts of at most
/// [`PART_DRAWS`] grants, each committed with its own record and ledger entry while the
/// spend's record counts them: a request with the same key goes on where another stopped,
/// and a spent one answers its replay. A balance found short midway (spent meanwhile) gives
/// the parts back (their refunds are in the ledger) and answers `402`, as every replay of the
/// key then does.
async fn in_parts<S, N>(deps: &UsageDeps<S, N>, o: &Order<'_>) -> Result<Balance, CreditError>
where
    S: SubscriptionStore + CreditStore,
    N: Notifier,
{
    let settings = &deps.settings;
    let rules = settings.catalogue.credits();
    let mut contended = 0;
    while contended < ATTEMPTS {
        let master = deps.store.credit_record(o.account, o.key).await?;
        let state = deps.store.state(o.account).await?;
        let now = settings.clock.now();
        let before = balance(&state.grants, now);
        let split = match &master {
            None => Split { parts: 0, drawn: 0 },
            Some(earlier) => {
                let Some(split) = earlier.split else { return replayed(earlier, o.request).map(|_| before) };
                if earlier.request != o.request {
                    return Err(CreditError::IdempotencyMismatch);
                }
                if earlier.refunded {
                    return Err(if split.drawn < o.cost {
                        CreditError::Insufficient { cost: o.cost, balance: before.balance }
                    } else {
                        CreditError::Refunded
                    });
                }
                if split.drawn >= o.cost {
                    return Ok(before);
                }
                split
            }
        };
        let Some(mut plan) = draws(&state.grants, o.cost.saturating_sub(split.drawn), rules.draw_order, now) else {
            if split.parts > 0 {
                refund_parts(&deps.store, o.account, o.key, settings.clock.now_ms(), o.actor).await?;
            }
            let now = balance(&deps.store.state(o.account).await?.grants, settings.clock.now());
            return Err(CreditError::Insufficient { cost: o.cost, balance: now.balance });
        };
        plan.truncate(PART_DRAWS);
        let part_cost = plan.iter().fold(0_u64, |sum, d| sum.saturating_add(d.credits));
        let at_ms = settings.clock.now_ms();
        let next = CreditRecord {
            request: o.request.to_owned(),
            event: o.event.to_owned(),
            quantity: o.quantity,
            cost: o.cost,
            draws: Vec::new(),
            entry: o.entry.to_owned(),
            at_ms: master.as_ref().map_or(at_ms, |m| m.at_ms),
            refunded: false,
            split: Some(Split { parts: split.parts.saturating_add(1), drawn: split.drawn.saturating_add(part_cost) }),
        };
        let record = CreditRecord {
            cost: part_cost,
            draws: plan,
            entry: format!("{}-{}", o.entry, split.parts),
            at_ms,
            split: None,
            ..next.clone()
        };
        let entry = o.entry_of(&record, (split.parts == 0).then_some(o.quantity));
        let emptied = emptied(&state.grants, &record.draws);
        let low = rules.low_balance;
        let exact = (low > 0 && before.balance >= low).then_some(state.grants.as_slice());
        let spend = Spend {
            account: o.account,
            key: o.key,
            record: &record,
            entry: &entry,
            now,
            emptied: &emptied,
            exact,
            part: Some(Part { index: split.parts, master: &next }),
        };
        match deps.store.spend(&spend).await? {
            Spent::Done => {
                let after = balance(&after_draws(&state.grants, &record.draws), now);
                low_balance(deps, o.account, &entry, before, after).await;
                if next.split.is_some_and(|s| s.drawn >= o.cost) {
                    return Ok(after);
                }
            }
            Spent::Replayed(_) | Spent::Contended => contended = contended.saturating_add(1),
        }
    }
    Err(CreditError::Store(StoreError::Conflict("the grants kept changing; retry")))
}

/// Gives back every part of the spend drawn in parts under `key`, each once, by `actor`: its
/// record is marked refunded first, so no part is added meanwhile.
async fn refund_parts<S: CreditStore>(
    store: &S,
    account: &AccountId,
    key: &str,
    at_ms: i64,
    actor: &str,
) -> Result<(), StoreError> {
    store.mark_refunded(account, key).await?;
    let parts = store.credit_record(account, key).await?.and_then(|r| r.split).map_or(0, |s| s.parts);
    for index in 0..parts {
        store.refund_credits(account, key, Some(index), at_ms, actor).await?;
    }
    Ok(())
}

/// A replay of `earlier` for a request hashed `request`: the same request answers again (with
/// the balance as it stands), any other is a mismatch, a refunded one is refused.
fn replayed(earlier: &CreditRecord, request: &str) -> Result<(), CreditError> {
    if earlier.request != request {
        Err(CreditError::IdempotencyMismatch)
    } else if earlier.refunded {
        Err(CreditError::Refunded)
    } else {
        Ok(())
    }
}

/// Notifies a consumption that took the balance under the catalogue's low-balance mark: one
/// notification per crossing (its id is the consumption's entry).
async fn low_balance<S, N: Notifier>(
    deps: &UsageDeps<S, N>,
    account: &AccountId,
    entry: &LedgerEntry,
    before: Balance,
    after: Balance,
) {
    let low = deps.settings.catalogue.credits().low_balance;
    if !(before.balance >= low && after.balance < low) {
        return;
    }
    let notification = Notification {
        id: format!("credits_low:{account}:{}", entry.id),
        kind: Kind::CreditsLow,
        account_id: account.to_string(),
        customer_id: String::new(),
        event_id: String::new(),
        event_type: String::new(),
        occurred_at: deps.settings.clock.now(),
        object_id: entry.id.clone(),
        details: serde_json::json!({"balance": after.balance, "threshold": low}),
    };
    if let Err(err) = deps.notifier.notify(&notification).await {
        tracing::warn!(error = %err, "could not send a low-balance notification");
    }
}

/// Merges the largest set of grants alike (same kind and end, no payment, none reversed or
/// held, something left) into one of them, so that a spend needing more grants than one
/// transaction holds can draw from fewer; `false` when nothing could be merged.
async fn merge_alike<S: CreditStore>(
    store: &S,
    account: &AccountId,
    grants: &[Grant],
    now: i64,
) -> Result<bool, StoreError> {
    let mut groups: std::collections::BTreeMap<(bool, Option<i64>), Vec<&Grant>> = std::collections::BTreeMap::new();
    for grant in grants.iter().filter(|g| g.live(now) && g.remaining > 0 && g.payment.is_none()) {
        if !grant.reversed && grant.frozen.is_none() {
            groups.entry((grant.kind == GrantKind::Purchased, grant.expires_at)).or_default().push(grant);
        }
    }
    let Some(group) = groups.into_values().filter(|g| g.len() > 1).max_by_key(Vec::len) else { return Ok(false) };
    let (into, rest) = group.split_first().expect("a group of two or more");
    let from: Vec<(String, u64)> =
        rest.iter().take(crate::ports::credits::MAX_MERGED).map(|g| (g.id.clone(), g.remaining)).collect();
    store.merge_grants(account, &into.id, &from).await?;
    Ok(true)
}

/// `POST /operator/accounts/{account_id}/credits/refund`: gives the consumption recorded under
/// the key back to its grants, once, as `actor`; a second refund answers the same.
pub async fn refund<S, N>(
    deps: &UsageDeps<S, N>,
    account: &AccountId,
    actor: &str,
    body: RefundRequest,
) -> Result<RefundAnswer, CreditError>
where
    S: SubscriptionStore + CreditStore,
{
    let key = valid_key(body.idempotency_key)?;
    let at_ms = deps.settings.clock.now_ms();
    let record = match deps.store.credit_record(account, &key).await? {
        // Drawn in parts: each part is given back on its own.
        Some(record) if record.split.is_some() => {
            refund_parts(&deps.store, account, &key, at_ms, actor).await?;
            record
        }
        _ => match deps.store.refund_credits(account, &key, None, at_ms, actor).await? {
            CreditRefund::Refunded(record) | CreditRefund::AlreadyRefunded(record) => record,
            CreditRefund::Unknown => return Err(CreditError::UnknownKey),
        },
    };
    let state = deps.store.state(account).await?;
    Ok(RefundAnswer {
        event: record.event,
        quantity: record.quantity,
        cost: record.cost,
        refunded: true,
        balance: balance(&state.grants, deps.settings.clock.now()),
    })
}

/// A grant as the reads list it.
impl From<&Grant> for GrantView {
    fn from(g: &Grant) -> Self {
        GrantView {
            id: g.id.clone(),
            kind: g.kind,
            source: g.source.clone(),
            credits: g.credits,
            remaining: g.remaining,
            granted_at: g.granted_at,
            expires_at: g.expires_at,
        }
    }
}

/// `GET /credits?limit=&cursor=`; entries carry their actor for the operator only.
pub async fn credits<S: SubscriptionStore + CreditStore>(
    store: &S,
    settings: &Settings,
    account: &AccountId,
    query: LedgerQuery,
    reader: Reader,
) -> Result<CreditsAnswer, CreditError> {
    let limit = match query.limit.as_deref() {
        None => DEFAULT_PAGE,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_PAGE).contains(l))
            .ok_or_else(|| invalid(format!("`limit` must be 1 to {MAX_PAGE}")))?,
    };
    let after = match query.cursor.as_deref() {
        None => None,
        Some(raw) => Some(
            crate::ports::keys::cursor(raw, |sk| sk.starts_with(crate::ports::keys::LEDGER_PREFIX))
                .ok_or_else(|| invalid("`cursor` is not one this API gave"))?,
        ),
    };
    let state = granted_state(store, settings, account).await?;
    let now = settings.clock.now();
    let forgotten = crate::ports::accounts::Forgotten::of(&state.tombstone);
    let page = store.ledger(account, limit, after.as_deref()).await?.forgetting(forgotten);
    let mut grants: Vec<GrantView> =
        state.grants.iter().filter(|g| g.live(now) && g.remaining > 0).map(GrantView::from).collect();
    grants.sort_by_key(|g| (g.expires_at.unwrap_or(i64::MAX), g.granted_at));
    Ok(CreditsAnswer {
        balance: balance(&state.grants, now),
        grants,
        entries: page
            .entries
            .into_iter()
            .map(|entry| match reader {
                Reader::Operator => entry,
                Reader::Customer => LedgerEntry { actor: None, ..entry },
            })
            .collect(),
        next_cursor: page.next.map(hex::encode),
    })
}

/// What an event did to the account's credits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackEffect {
    /// A paid pack was granted now.
    Granted,
    /// The pack's session was granted before (a redelivery, or both events of one payment).
    AlreadyGranted,
    /// A fully refunded pack's remaining credits were removed (`spent`: what had been used).
    Reversed { removed: u64, spent: u64 },
    /// A dispute on a pack's payment held, released or removed what was left of it.
    Disputed,
    /// Nothing about credits.
    None,
}

/// The credit effects of a Stripe event for `account`: a paid credit pack's Checkout Session
/// grants the pack once (the grant's id is the session's); a full refund of the charge that
/// paid a pack removes what is left of that grant (never below zero: what was spent is
/// reported in the reversal entry, not taken back). An unknown pack id grants nothing (logged).
pub async fn apply_event<S: SubscriptionStore + CreditStore>(
    store: &S,
    settings: &Settings,
    event: &crate::domain::events::Incoming,
    account: &AccountId,
) -> Result<PackEffect, StoreError> {
    if let Some(purchase) = event.pack_purchase() {
        let Some(pack) = settings.catalogue.credit_pack(purchase.pack) else {
            tracing::warn!(pack = purchase.pack, "a paid session names a credit pack plans.toml does not have");
            return Ok(PackEffect::None);
        };
        let actor = crate::domain::actor::stripe_event(&event.id);
        let grant = crate::domain::credits::pack_grant(
            pack,
            purchase.session,
            purchase.payment_intent,
            settings.clock.now(),
            actor,
        );
        let entry = LedgerEntry::grant_of(&grant, settings.clock.now_ms());
        return Ok(match store.grant_to_linked(account, &grant, &entry).await? {
            GrantWrite::Written => PackEffect::Granted,
            GrantWrite::Exists => PackEffect::AlreadyGranted,
            GrantWrite::NotLinked => {
                tracing::warn!(pack = purchase.pack, "a pack paid for an account deleted meanwhile: nothing granted");
                PackEffect::None
            }
        });
    }
    if let Some((payment, stage)) = event.payment_dispute() {
        return dispute_pack(store, settings, event, account, payment, stage).await;
    }
    let Some(payment) = event.full_refund() else { return Ok(PackEffect::None) };
    reverse_pack(store, settings, event, account, payment).await
}

/// Removes what is left of the grant of the pack `payment` bought (a full refund, or a dispute
/// lost before its opening was seen), once, with its `reversal` entry.
async fn reverse_pack<S: SubscriptionStore + CreditStore>(
    store: &S,
    settings: &Settings,
    event: &crate::domain::events::Incoming,
    account: &AccountId,
    payment: &str,
) -> Result<PackEffect, StoreError> {
    for _ in 0..ATTEMPTS {
        let state = store.state(account).await?;
        let Some(grant) = state.grants.iter().find(|g| g.payment.as_deref() == Some(payment)) else {
            return Ok(PackEffect::None);
        };
        let entry = LedgerEntry {
            withheld: None,
            id: format!("reversal-{}", grant.id),
            kind: EntryKind::Reversal,
            at_ms: settings.clock.now_ms(),
            credits: i64::try_from(grant.remaining).map_or(i64::MIN, i64::saturating_neg),
            event: None,
            quantity: Some(grant.credits.saturating_sub(grant.remaining)),
            grant: Some(grant.id.clone()),
            actor: Some(crate::domain::actor::stripe_event(&event.id)),
        };
        match store.reverse_grant(account, &grant.id, grant.remaining, &entry).await {
            Ok(true) => {
                let spent = grant.credits.saturating_sub(grant.remaining);
                tracing::info!(grant = %grant.id, removed = grant.remaining, spent, "refunded credit pack reversed");
                return Ok(PackEffect::Reversed { removed: grant.remaining, spent });
            }
            Ok(false) => continue,
            // Its reversal entry exists: a redelivered refund.
            Err(StoreError::Conflict(_)) => return Ok(PackEffect::None),
            Err(err) => return Err(err),
        }
    }
    Err(StoreError::Conflict("the refunded pack's grant kept changing; retry"))
}

/// A dispute on the payment that bought a pack: its opening holds what is left of the grant
/// (`freeze`), a loss removes what is held and reverses the grant (`reversal`), a win gives it
/// back (`release`). Each step once, in any delivery order: a loss seen first reverses at once,
/// a win seen first is remembered, and an opening seen after its close holds nothing.
async fn dispute_pack<S: SubscriptionStore + CreditStore>(
    store: &S,
    settings: &Settings,
    event: &crate::domain::events::Incoming,
    account: &AccountId,
    payment: &str,
    stage: crate::domain::events::DisputeStage,
) -> Result<PackEffect, StoreError> {
    use crate::domain::events::DisputeStage::{Lost, Opened, Won};
    use crate::ports::credits::DisputeStep;
    for _ in 0..ATTEMPTS {
        let state = store.state(account).await?;
        let Some(grant) = state.grants.iter().find(|g| g.payment.as_deref() == Some(payment)) else {
            return Ok(PackEffect::None);
        };
        let entry = |kind: EntryKind, prefix: &str, credits: u64, sign: i64| LedgerEntry {
            withheld: None,
            id: format!("{prefix}-{}", grant.id),
            kind,
            at_ms: settings.clock.now_ms(),
            credits: i64::try_from(credits).unwrap_or(i64::MAX).saturating_mul(sign),
            event: None,
            quantity: None,
            grant: Some(grant.id.clone()),
            actor: Some(crate::domain::actor::stripe_event(&event.id)),
        };
        let (step, entry) = match (stage, grant.frozen) {
            (Opened, None) if !grant.reversed && !grant.dispute_closed => (
                DisputeStep::Freeze { seen: grant.remaining },
                Some(entry(EntryKind::Freeze, "freeze", grant.remaining, -1)),
            ),
            (Won, Some(frozen)) => {
                (DisputeStep::Release { frozen }, Some(entry(EntryKind::Release, "release", frozen, 1)))
            }
            (Won, None) if !grant.dispute_closed && !grant.reversed => (DisputeStep::Closed, None),
            (Lost, Some(frozen)) => {
                (DisputeStep::Forfeit { frozen }, Some(entry(EntryKind::Reversal, "reversal", 0, 1)))
            }
            (Lost, None) if !grant.reversed => return reverse_pack(store, settings, event, account, payment).await,
            // Held already, closed already, or reversed: a redelivery or a late event.
            _ => return Ok(PackEffect::None),
        };
        if store.dispute_grant(account, &grant.id, step, entry.as_ref()).await? {
            tracing::info!(grant = %grant.id, ?stage, "a dispute on a credit pack's payment moved its grant");
            return Ok(PackEffect::Disputed);
        }
    }
    Err(StoreError::Conflict("the disputed pack's grant kept changing; retry"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FixedClock, MemoryStore, Outbox, settings};

    const NOW: i64 = 1_795_273_200;

    fn deps(clock: &FixedClock) -> UsageDeps<MemoryStore, Outbox> {
        UsageDeps { store: MemoryStore::new(), notifier: Outbox::default(), settings: settings(clock) }
    }

    fn account() -> AccountId {
        AccountId::parse("acct_c").unwrap()
    }

    fn spend(event: &str, quantity: u64, key: &str) -> ConsumeRequest {
        ConsumeRequest {
            event: Some(event.into()),
            quantity: Some(serde_json::json!(quantity)),
            idempotency_key: Some(key.into()),
        }
    }

    /// A purchased grant of `credits` (a pack, as the worker will grant it).
    async fn pack(deps: &UsageDeps<MemoryStore, Outbox>, id: &str, credits: u64) {
        let grant = Grant {
            frozen: None,
            dispute_closed: false,
            reversed: false,
            id: id.into(),
            kind: GrantKind::Purchased,
            source: format!("checkout:{id}"),
            credits,
            remaining: credits,
            granted_at: NOW,
            expires_at: None,
            payment: None,
            actor: None,
        };
        let entry = LedgerEntry::grant_of(&grant, NOW * 1000);
        assert!(deps.store.grant(&account(), &grant, &entry).await.unwrap());
    }

    /// The account on `plan`, paid, in a monthly period from a day before NOW.
    async fn on_plan(deps: &UsageDeps<MemoryStore, Outbox>, plan: &str, version: i64) {
        let projection = crate::domain::model::Projection {
            plan: plan.into(),
            version,
            current_period_start: Some(NOW - 86_400),
            current_period_end: Some(crate::domain::usage::add_months(NOW - 86_400, 1)),
            ..crate::testing::projection("acct_c")
        };
        crate::testing::subscribed(&deps.store, &projection).await;
    }

    async fn balance_now(deps: &UsageDeps<MemoryStore, Outbox>) -> Balance {
        let state = deps.store.state(&account()).await.unwrap();
        balance(&state.grants, deps.settings.clock.now())
    }

    #[tokio::test]
    async fn purchased_credits_are_drawn_before_the_plans_and_the_ledger_says_so() {
        let deps = deps(&FixedClock::at(NOW));
        on_plan(&deps, "pro", 1).await;
        pack(&deps, "cs_pack", 30).await;

        let first = consume(&deps, &account(), "ops", spend("api_call_premium", 10, "a")).await.unwrap();
        let page =
            credits(&deps.store, &deps.settings, &account(), LedgerQuery::default(), Reader::Customer).await.unwrap();

        assert_eq!(first.cost, 50);
        assert_eq!(first.balance, Balance { balance: 980, purchased: 0, subscription: 980 });
        assert_eq!(page.balance, first.balance);
        let kinds: Vec<EntryKind> = page.entries.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EntryKind::Consumption, EntryKind::Grant, EntryKind::Grant], "newest first");
        assert_eq!(page.entries[0].credits, -50);
        assert_eq!(page.grants.len(), 1, "the spent pack is no longer listed");
        assert_eq!(page.grants[0].expires_at, Some(crate::domain::usage::add_months(NOW - 86_400, 1)));
    }

    #[tokio::test]
    async fn a_cost_over_the_balance_is_402_and_changes_nothing_and_a_key_counts_once() {
        let deps = deps(&FixedClock::at(NOW));
        pack(&deps, "cs_small", 30).await;

        let short = consume(&deps, &account(), "ops", spend("ai_inference", 2, "big")).await;
        let ok = consume(&deps, &account(), "ops", spend("api_call_premium", 2, "k")).await.unwrap();
        let replay = consume(&deps, &account(), "ops", spend("api_call_premium", 2, "k")).await.unwrap();
        let mismatch = consume(&deps, &account(), "ops", spend("api_call_premium", 3, "k")).await;
        let bad = consume(&deps, &account(), "ops", spend("teleport", 1, "x")).await;

        assert!(matches!(short, Err(CreditError::Insufficient { cost: 50, balance: 30 })), "{short:?}");
        assert_eq!(ok.balance.balance, 20);
        assert_eq!((replay.cost, replay.balance.balance), (10, 20), "counted once");
        assert!(matches!(mismatch, Err(CreditError::IdempotencyMismatch)), "{mismatch:?}");
        assert!(matches!(bad, Err(CreditError::Invalid(_))), "{bad:?}");
        assert_eq!(balance_now(&deps).await.balance, 20);
        let page = deps.store.ledger(&account(), 10, None).await.unwrap();
        assert_eq!(page.entries.len(), 2, "one grant, one consumption: {page:?}");
    }

    #[tokio::test]
    async fn the_soonest_expiring_order_draws_the_plans_credits_first_when_configured() {
        let deps = deps(&FixedClock::at(NOW));
        on_plan(&deps, "pro", 1).await;
        pack(&deps, "cs_pack", 30).await;
        let mut state = granted_state(&deps.store, &deps.settings, &account()).await.unwrap();
        state.grants.sort_by(|a, b| a.id.cmp(&b.id));

        let drawn = draws(&state.grants, 40, crate::domain::credits::DrawOrder::SoonestExpiring, NOW).unwrap();

        assert_eq!(drawn, [crate::domain::credits::Draw { grant: format!("plan-{}-1", NOW - 86_400), credits: 40 }]);
    }

    #[tokio::test]
    async fn plan_credits_are_granted_once_a_window_expire_at_its_end_and_an_upgrade_adds_the_difference() {
        let clock = FixedClock::at(NOW);
        let deps = deps(&clock);
        on_plan(&deps, "pro", 1).await;

        let read = crate::app::read::subscription(&deps.store, &deps.settings, &account()).await.unwrap();
        consume(&deps, &account(), "ops", spend("api_call_basic", 1, "a")).await.unwrap();
        consume(&deps, &account(), "ops", spend("api_call_basic", 1, "b")).await.unwrap();
        on_plan(&deps, "team", 2).await;
        let upgraded = consume(&deps, &account(), "ops", spend("api_call_basic", 1, "c")).await.unwrap();
        on_plan(&deps, "pro", 3).await;
        let downgraded = consume(&deps, &account(), "ops", spend("api_call_basic", 1, "d")).await.unwrap();
        let window_end = crate::domain::usage::add_months(NOW - 86_400, 1);
        clock.set(window_end);
        let expired = balance(&deps.store.state(&account()).await.unwrap().grants, window_end);

        assert_eq!(read.credits.balance, 1_000, "the read counts the grant still owed");
        assert_eq!(upgraded.balance.subscription, 5_000 - 3, "Team's 5,000 less what was spent");
        assert_eq!(downgraded.balance.subscription, 5_000 - 4, "a downgrade grants and takes nothing");
        assert_eq!(expired.balance, 0, "the window's credits stop counting at its end");
        let grants = deps.store.state(&account()).await.unwrap().grants;
        assert_eq!(grants.len(), 2, "pro once, team's difference once: {grants:?}");
    }

    #[tokio::test]
    async fn credits_left_at_a_windows_end_are_recorded_as_expired_once() {
        let clock = FixedClock::at(NOW);
        let deps = deps(&clock);
        on_plan(&deps, "pro", 1).await;
        consume(&deps, &account(), "ops", spend("ai_inference", 4, "a")).await.unwrap();
        let window_end = crate::domain::usage::add_months(NOW - 86_400, 1);
        let next_window = crate::domain::model::Projection {
            plan: "pro".into(),
            version: 2,
            current_period_start: Some(window_end),
            current_period_end: Some(crate::domain::usage::add_months(window_end, 1)),
            ..crate::testing::projection("acct_c")
        };
        crate::testing::subscribed(&deps.store, &next_window).await;
        clock.set(window_end + 60);

        let next = consume(&deps, &account(), "ops", spend("api_call_basic", 1, "b")).await.unwrap();
        credits(&deps.store, &deps.settings, &account(), LedgerQuery::default(), Reader::Customer).await.unwrap();
        let entries = deps.store.ledger(&account(), 20, None).await.unwrap().entries;

        assert_eq!(next.balance.subscription, 999, "the new window's grant, less one");
        let expiries: Vec<&LedgerEntry> = entries.iter().filter(|e| e.kind == EntryKind::Expiry).collect();
        assert_eq!(expiries.len(), 1, "recorded once: {entries:?}");
        assert_eq!((expiries[0].credits, expiries[0].at_ms), (-900, window_end * 1000));
        let kinds: Vec<EntryKind> = entries.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [EntryKind::Consumption, EntryKind::Grant, EntryKind::Expiry, EntryKind::Consumption, EntryKind::Grant]
        );
    }

    #[tokio::test]
    async fn an_unpaid_account_is_granted_nothing() {
        let deps = deps(&FixedClock::at(NOW));
        let unpaid = crate::domain::model::Projection {
            status: crate::domain::model::SubscriptionStatus::Unpaid,
            ..crate::testing::projection("acct_c")
        };
        crate::testing::subscribed(&deps.store, &unpaid).await;

        let refused = consume(&deps, &account(), "ops", spend("api_call_basic", 1, "a")).await;

        assert!(matches!(refused, Err(CreditError::Insufficient { balance: 0, .. })), "{refused:?}");
        assert!(deps.store.state(&account()).await.unwrap().grants.is_empty());
    }

    #[tokio::test]
    async fn a_refund_gives_back_once_to_the_grants_drawn_from() {
        let deps = deps(&FixedClock::at(NOW));
        pack(&deps, "cs_pack", 100).await;
        consume(&deps, &account(), "ops", spend("ai_inference", 2, "job")).await.unwrap();

        let first =
            refund(&deps, &account(), "ops", RefundRequest { idempotency_key: Some("job".into()) }).await.unwrap();
        let again =
            refund(&deps, &account(), "ops", RefundRequest { idempotency_key: Some("job".into()) }).await.unwrap();
        let unknown = refund(&deps, &account(), "ops", RefundRequest { idempotency_key: Some("no".into()) }).await;
        let reused = consume(&deps, &account(), "ops", spend("ai_inference", 2, "job")).await;

        assert_eq!((first.cost, first.balance.balance), (50, 100));
        assert_eq!(again, first);
        assert!(matches!(unknown, Err(CreditError::UnknownKey)), "{unknown:?}");
        assert!(matches!(reused, Err(CreditError::Refunded)), "{reused:?}");
        let kinds: Vec<EntryKind> =
            deps.store.ledger(&account(), 10, None).await.unwrap().entries.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EntryKind::Refund, EntryKind::Consumption, EntryKind::Grant]);
    }

    #[tokio::test]
    async fn a_low_balance_is_notified_once_per_crossing() {
        let deps = deps(&FixedClock::at(NOW));
        pack(&deps, "cs_pack", 150).await;

        consume(&deps, &account(), "ops", spend("api_call_basic", 40, "a")).await.unwrap();
        consume(&deps, &account(), "ops", spend("api_call_basic", 20, "b")).await.unwrap();
        consume(&deps, &account(), "ops", spend("api_call_basic", 10, "c")).await.unwrap();
        refund(&deps, &account(), "ops", RefundRequest { idempotency_key: Some("b".into()) }).await.unwrap();
        consume(&deps, &account(), "ops", spend("api_call_basic", 30, "d")).await.unwrap();

        let sent: Vec<(String, serde_json::Value)> = deps
            .notifier
            .sent()
            .into_iter()
            .map(|n| (n.kind.as_str().to_owned(), n.details["balance"].clone()))
            .collect();
        assert_eq!(
            sent,
            [("credits_low".to_owned(), serde_json::json!(90)), ("credits_low".to_owned(), serde_json::json!(70))]
        );
    }

    #[tokio::test]
    async fn the_ledger_pages_newest_first_each_entry_once_and_bad_queries_are_refused() {
        let clock = FixedClock::at(NOW);
        let deps = deps(&clock);
        pack(&deps, "cs_pack", 1_000).await;
        for i in 0..7 {
            clock.advance(1);
            consume(&deps, &account(), "ops", spend("api_call_basic", 1, &format!("k{i}"))).await.unwrap();
        }

        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let query = LedgerQuery { limit: Some("3".into()), cursor: cursor.clone() };
            let page = credits(&deps.store, &deps.settings, &account(), query, Reader::Customer).await.unwrap();
            seen.extend(page.entries.iter().map(|e| e.id.clone()));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let bad = [
            ("0", None),
            ("101", None),
            ("x", None),
            ("3", Some("zz".to_owned())),
            ("3", Some(hex::encode("STATE#PROFILE"))),
            // A ledger key, but longer than any cursor this API gives: refused before the store.
            ("3", Some(hex::encode(format!("LEDGER#{}", "9".repeat(600))))),
        ];

        assert_eq!(seen.len(), 8, "{seen:?}");
        assert_eq!(seen.last().map(String::as_str), Some("grant-cs_pack"), "oldest last");
        let unique: std::collections::BTreeSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), 8, "each entry once");
        for (limit, cursor) in bad {
            let query = LedgerQuery { limit: Some(limit.into()), cursor };
            let refused = credits(&deps.store, &deps.settings, &account(), query, Reader::Customer).await;
            assert!(matches!(refused, Err(CreditError::Invalid(_))), "{limit} {refused:?}");
        }
    }

    /// 150 packs of 10, each bought with its own payment (never merged).
    async fn paid_packs(deps: &UsageDeps<MemoryStore, Outbox>) {
        for i in 0..150 {
            let grant = Grant {
                payment: Some(format!("pi_{i:03}")),
                ..crate::domain::credits::pack_grant(
                    &crate::domain::credits::CreditPack {
                        id: "credits_10".into(),
                        credits: 10,
                        lookup_key: "credits_10".into(),
                        amount: 100,
                        currency: "usd".into(),
                    },
                    &format!("cs_{i:03}"),
                    None,
                    NOW,
                    "stripe:evt".into(),
                )
            };
            let entry = LedgerEntry::grant_of(&grant, NOW * 1000 + i);
            assert!(deps.store.grant(&account(), &grant, &entry).await.unwrap());
        }
    }

    /// Every ledger entry but the grants, newest first.
    async fn consumptions(deps: &UsageDeps<MemoryStore, Outbox>) -> Vec<LedgerEntry> {
        let (mut entries, mut after) = (Vec::new(), None);
        loop {
            let page = deps.store.ledger(&account(), 100, after.as_deref()).await.unwrap();
            entries.extend(page.entries.into_iter().filter(|e| e.kind != EntryKind::Grant));
            match page.next {
                Some(next) => after = Some(next),
                None => return entries,
            }
        }
    }

    #[tokio::test]
    async fn a_spend_stopped_between_its_parts_goes_on_with_the_same_key_and_counts_once() {
        let clock = FixedClock::at(NOW);
        let deps = deps(&clock);
        paid_packs(&deps).await;
        deps.store.fail_spends_after(1);

        let stopped = consume(&deps, &account(), "ops", spend("api_call_basic", 1_450, "big")).await;
        let midway = balance_now(&deps).await;
        deps.store.heal_spends();
        let resumed = consume(&deps, &account(), "ops", spend("api_call_basic", 1_450, "big")).await.unwrap();
        let replayed = consume(&deps, &account(), "ops", spend("api_call_basic", 1_450, "big")).await.unwrap();
        let other = consume(&deps, &account(), "ops", spend("api_call_basic", 1_449, "big")).await;

        assert!(matches!(stopped, Err(CreditError::Store(StoreError::Unavailable(_)))), "{stopped:?}");
        assert_eq!(midway.balance, 1_500 - 970, "its first part (97 packs) is committed");
        assert_eq!((resumed.cost, resumed.balance.balance), (1_450, 50));
        assert_eq!(replayed.balance.balance, 50, "a replay spends nothing more");
        assert!(matches!(other, Err(CreditError::IdempotencyMismatch)), "{other:?}");
        let entries = consumptions(&deps).await;
        assert_eq!(entries.iter().map(|e| e.credits).collect::<Vec<_>>(), [-480, -970], "two parts, newest first");
        let state = deps.store.state(&account()).await.unwrap();
        assert_eq!(state.grants.iter().filter(|g| g.payment.is_some()).count(), 150, "no pack merged");
    }

    #[tokio::test]
    async fn a_spend_found_short_between_its_parts_gives_its_parts_back_and_answers_402_on_replay() {
        let clock = FixedClock::at(NOW);
        let deps = deps(&clock);
        paid_packs(&deps).await;
        deps.store.fail_spends_after(1);
        let stopped = consume(&deps, &account(), "ops", spend("api_call_basic", 1_450, "big")).await;
        // Meanwhile six packs not yet drawn from are refunded: 470 left for the 480 still owed.
        for i in 140..146 {
            let grant = format!("pack-cs_{i:03}");
            let entry = LedgerEntry {
                withheld: None,
                id: format!("reversal-{grant}"),
                kind: EntryKind::Reversal,
                at_ms: NOW * 1000 + 500,
                credits: -10,
                event: None,
                quantity: Some(0),
                grant: Some(grant.clone()),
                actor: None,
            };
            assert!(deps.store.reverse_grant(&account(), &grant, 10, &entry).await.unwrap());
        }
        deps.store.heal_spends();

        let short = consume(&deps, &account(), "ops", spend("api_call_basic", 1_450, "big")).await;
        let after = balance_now(&deps).await;
        let again = consume(&deps, &account(), "ops", spend("api_call_basic", 1_450, "big")).await;
        let fresh = consume(&deps, &account(), "ops", spend("api_call_basic", 10, "small")).await.unwrap();

        assert!(stopped.is_err());
        assert!(matches!(short, Err(CreditError::Insufficient { cost: 1_450, balance: 1_440 })), "{short:?}");
        assert_eq!(after.balance, 1_440, "the first part's 970 given back");
        assert!(
            matches!(again, Err(CreditError::Insufficient { cost: 1_450, .. })),
            "a replay answers the same: {again:?}"
        );
        assert_eq!(fresh.balance.balance, 1_430);
        let entries = consumptions(&deps).await;
        let refund = entries.iter().find(|e| e.kind == EntryKind::Refund).expect("the part's refund");
        assert_eq!(refund.credits, 970);
        let state = deps.store.state(&account()).await.unwrap();
        assert!(state.grants.iter().take(97).all(|g| g.remaining == 10 || g.id == "pack-cs_000"), "{:?}", state.grants);
    }
}
