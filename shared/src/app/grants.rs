//! Manual and promotional credit grants, written by the operator once per idempotency key
//! (`POST /operator/accounts/{account_id}/credits/grants`).

use crate::app::credits::{CreditError, GrantView};
use crate::app::usage::{UsageDeps, idempotency_key};
use crate::domain::credits::{Grant, GrantKind};
use crate::domain::model::AccountId;
use crate::ports::credits::{CreditStore, LedgerEntry};
use crate::ports::subscriptions::SubscriptionStore;
use serde::Deserialize;
use sha2::{Digest, Sha256};

fn invalid(message: impl Into<String>) -> CreditError {
    CreditError::Invalid(message.into())
}

/// The body of `POST /operator/accounts/{account_id}/credits/grants`. Fields are read loosely
/// so that each bad value gets its own clear error.
#[derive(Debug, Default, Deserialize)]
pub struct GrantRequest {
    pub credits: Option<serde_json::Value>,
    /// Unix seconds; without it the grant never expires (it counts as purchased credits).
    pub expires_at: Option<serde_json::Value>,
    pub reason: Option<String>,
    pub idempotency_key: Option<String>,
}

/// Most credits one manual grant gives.
pub const MAX_MANUAL_GRANT: u64 = 10_000_000;
/// Longest reason of a manual grant, in characters.
pub const MAX_REASON_CHARS: usize = 200;

/// `POST /operator/accounts/{account_id}/credits/grants`: a manual or promotional grant, once
/// per key (its id is the key's): the same key and body again answer the same grant, another
/// body is a mismatch. Without `expires_at` it counts as purchased credits, with one as
/// subscription credits; its source is `manual:<reason>`.
pub async fn grant<S, N>(
    deps: &UsageDeps<S, N>,
    account: &AccountId,
    actor: &str,
    body: GrantRequest,
) -> Result<GrantView, CreditError>
where
    S: SubscriptionStore + CreditStore,
{
    let now = deps.settings.clock.now();
    let credits = body
        .credits
        .as_ref()
        .and_then(crate::domain::number::whole_u64)
        .filter(|c| (1..=MAX_MANUAL_GRANT).contains(c))
        .ok_or_else(|| invalid(format!("`credits` must be an integer from 1 to {MAX_MANUAL_GRANT}")))?;
    let expires_at = match &body.expires_at {
        None | Some(serde_json::Value::Null) => None,
        Some(raw) => Some(
            crate::domain::number::whole_i64(raw)
                .ok_or_else(|| invalid("`expires_at` must be a Unix time in the future"))?,
        ),
    };
    let reason = body
        .reason
        .filter(|r| (1..=MAX_REASON_CHARS).contains(&r.chars().count()) && !r.chars().any(char::is_control))
        .ok_or_else(|| invalid(format!("`reason` is required: 1 to {MAX_REASON_CHARS} characters")))?;
    let key = idempotency_key(body.idempotency_key).map_err(CreditError::Invalid)?;
    let grant = Grant {
        frozen: None,
        dispute_closed: false,
        reversed: false,
        id: format!("manual-{}", &hex::encode(Sha256::digest(key.as_bytes()))[..24]),
        kind: if expires_at.is_some() { GrantKind::Subscription } else { GrantKind::Purchased },
        source: format!("manual:{reason}"),
        credits,
        remaining: credits,
        granted_at: now,
        expires_at,
        payment: None,
        actor: Some(actor.to_owned()),
    };
    // A new grant must end in the future; a replay answers its grant whenever it comes.
    let expired = expires_at.is_some_and(|at| at <= now);
    if !expired
        && deps.store.grant(account, &grant, &LedgerEntry::grant_of(&grant, deps.settings.clock.now_ms())).await?
    {
        return Ok(GrantView::from(&grant));
    }
    // The key granted before: the same request answers its grant again.
    let state = deps.store.state(account).await?;
    match state.grants.iter().find(|g| g.id == grant.id) {
        Some(earlier)
            if (earlier.credits, earlier.expires_at, &earlier.source) == (credits, expires_at, &grant.source) =>
        {
            Ok(GrantView::from(earlier))
        }
        Some(_) => Err(CreditError::IdempotencyMismatch),
        None if expired => Err(invalid("`expires_at` must be a Unix time in the future")),
        None => Err(CreditError::IdempotencyMismatch),
    }
}
