//! API keys: create, list, revoke and rotate (the `keys` function, on JWT routes), and the
//! decision the `authorizer` function takes on a presented key. A key is handed to its owner
//! once, in the answer that creates it; only its SHA-256 is stored and it is never logged.

use crate::domain::access::decide_account;
use crate::domain::apikeys;
use crate::domain::apikeys::{
    ApiKey, InvalidKeyRequest, KeyId, Mode, RETIRED_KEY_RETENTION_SECONDS, RandomUnavailable, Refusal, Scope, Secret,
    Status,
};
use crate::domain::model::AccountId;
use crate::ports::StoreError;
use crate::ports::api_keys::{ApiKeyStore, KeyCreation};
use crate::ports::clock::Clock;
use crate::ports::subscriptions::SubscriptionStore;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;

/// How often a change that lost to a concurrent one is read and tried again.
const ATTEMPTS: usize = 3;

/// What the key use cases need.
#[derive(Clone)]
pub struct KeysDeps<S> {
    pub store: S,
    pub clock: Arc<dyn Clock>,
    /// The mode of the keys issued (`tg_live_` or `tg_test_`).
    pub mode: Mode,
    /// Keys an account may hold a slot for at once (`API_KEYS_PER_ACCOUNT`).
    pub max_active: u32,
}

/// What the authorizer needs.
#[derive(Clone)]
pub struct AuthorizerDeps<S> {
    pub store: S,
    pub clock: Arc<dyn Clock>,
}

/// Why a key use case refused or failed. The HTTP mapping is in [`crate::edge::http`].
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error(transparent)]
    Invalid(#[from] InvalidKeyRequest),
    #[error("the account has {0} active API keys, the most it may have: revoke one first")]
    LimitReached(u32),
    #[error("no API key with that id")]
    NotFound,
    #[error("the API key is revoked")]
    Revoked,
    #[error("the API key was rotated already: rotate its successor")]
    Rotated,
    #[error(transparent)]
    Random(#[from] RandomUnavailable),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The body of `POST /api-keys`. Numbers are read as any JSON value, so an extreme one is a
/// clear `invalid_expiry`, not a parse error.
#[derive(Debug, Default, Deserialize)]
pub struct CreateRequest {
    pub name: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub expires_at: Option<serde_json::Value>,
}

/// The body of `POST /api-keys/{id}/rotate`.
#[derive(Debug, Default, Deserialize)]
pub struct RotateRequest {
    /// How long the old key stays valid beside its successor (default 0: revoked at once).
    pub overlap_seconds: Option<serde_json::Value>,
    /// The successor's expiry (default none).
    pub expires_at: Option<serde_json::Value>,
}

/// A key just issued: the only answer that carries the key. Deliberately not `Debug`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewKey {
    pub id: KeyId,
    pub key: String,
    pub prefix: String,
    pub name: String,
    pub scopes: BTreeSet<Scope>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    /// For a rotation: the key it replaces and until when that one stays valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaces: Option<Replaced>,
}

/// The key a rotation replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Replaced {
    pub id: KeyId,
    /// When it stops working (the rotation's time when it was revoked at once).
    pub valid_until: i64,
}

/// A key as listed: never the key, never its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyView {
    pub id: KeyId,
    pub prefix: String,
    pub name: String,
    pub scopes: BTreeSet<Scope>,
    pub status: Status,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub replaced_by: Option<KeyId>,
}

/// `GET /api-keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyList {
    pub keys: Vec<KeyView>,
}

fn view(key: &ApiKey, now: i64) -> KeyView {
    KeyView {
        id: key.id.clone(),
        prefix: key.prefix.clone(),
        name: key.name.clone(),
        scopes: key.scopes.clone(),
        status: key.status(now),
        created_at: key.created_at,
        expires_at: key.expires_at,
        last_used_at: key.last_used_at,
        revoked_at: key.revoked_at,
        replaced_by: key.replaced_by.clone(),
    }
}

/// A new key and its record.
fn issue(
    mode: Mode,
    account: &AccountId,
    name: String,
    scopes: BTreeSet<Scope>,
    expires_at: Option<i64>,
    now: i64,
) -> Result<(Secret, ApiKey), RandomUnavailable> {
    let secret = Secret::generate(mode)?;
    let key = ApiKey {
        id: KeyId::generate()?,
        account_id: account.clone(),
        hash: secret.hash(),
        prefix: secret.visible_prefix(),
        name,
        scopes,
        created_at: now,
        expires_at,
        revoked_at: None,
        last_used_at: None,
        replaced_by: None,
        holds_slot: true,
    };
    Ok((secret, key))
}

fn new_key(secret: &Secret, key: ApiKey, replaces: Option<Replaced>) -> NewKey {
    NewKey {
        id: key.id,
        key: secret.expose().to_owned(),
        prefix: key.prefix,
        name: key.name,
        scopes: key.scopes,
        created_at: key.created_at,
        expires_at: key.expires_at,
        replaces,
    }
}

/// `POST /api-keys`: a new key for `account`, if it holds fewer than `max_active` slots
/// (expired keys that still hold one are revoked first to make room).
pub async fn create<S: ApiKeyStore>(
    deps: &KeysDeps<S>,
    account: &AccountId,
    request: CreateRequest,
) -> Result<NewKey, KeysError> {
    let now = deps.clock.now();
    let name = apikeys::name(request.name.as_deref())?;
    let scopes = apikeys::scopes(request.scopes.as_deref())?;
    let expires_at = apikeys::expiry(request.expires_at.as_ref(), now)?;
    let (secret, key) = issue(deps.mode, account, name, scopes, expires_at, now)?;
    let mut created = deps.store.create_api_key(&key, deps.max_active).await?;
    if created == KeyCreation::LimitReached && free_expired_slots(deps, account, now).await? > 0 {
        created = deps.store.create_api_key(&key, deps.max_active).await?;
    }
    if created == KeyCreation::LimitReached {
        return Err(KeysError::LimitReached(deps.max_active));
    }
    tracing::info!(account = %account, key_id = %key.id, prefix = %key.prefix, "api key created");
    Ok(new_key(&secret, key, None))
}

/// Revokes the account's expired keys that still hold a slot; answers how many.
async fn free_expired_slots<S: ApiKeyStore>(
    deps: &KeysDeps<S>,
    account: &AccountId,
    now: i64,
) -> Result<u32, KeysError> {
    let mut freed: u32 = 0;
    for key in deps.store.api_keys(account).await? {
        if key.holds_slot && key.status(now) == Status::Expired {
            revoke_key(deps, account, &key.id, now).await?;
            freed = freed.saturating_add(1);
        }
    }
    Ok(freed)
}

/// `GET /api-keys`: the account's keys, newest first.
pub async fn list<S: ApiKeyStore>(deps: &KeysDeps<S>, account: &AccountId) -> Result<KeyList, KeysError> {
    Ok(keys_of(&deps.store, account, deps.clock.now()).await?)
}

/// The account's keys as they stand at `now`, newest first (`GET /api-keys`, the operator's
/// account read).
pub async fn keys_of<S: ApiKeyStore>(store: &S, account: &AccountId, now: i64) -> Result<KeyList, StoreError> {
    let mut keys = store.api_keys(account).await?;
    keys.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
    Ok(KeyList { keys: keys.iter().map(|k| view(k, now)).collect() })
}

/// One pending rotation per slot: the key `old` replaced, if it is still in its overlap, is
/// revoked now, so rotating again and again never leaves more than two valid keys on a slot.
async fn end_pending_rotation<S: ApiKeyStore>(
    store: &S,
    account: &AccountId,
    old: &ApiKey,
    now: i64,
) -> Result<(), KeysError> {
    let keys = store.api_keys(account).await?;
    let pending = keys.iter().filter(|k| k.replaced_by.as_ref() == Some(&old.id) && k.status(now) == Status::Rotating);
    for predecessor in pending {
        match store.revoke_api_key(predecessor, now, now.saturating_add(RETIRED_KEY_RETENTION_SECONDS)).await {
            // Revoked or gone meanwhile: it is no longer valid either way.
            Ok(()) | Err(StoreError::Conflict(_)) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

/// `DELETE /api-keys/{id}`: revokes the key (at once, whatever its expiry or rotation).
/// Idempotent: a revoked key answers as it is.
pub async fn revoke<S: ApiKeyStore>(deps: &KeysDeps<S>, account: &AccountId, id: &str) -> Result<KeyView, KeysError> {
    let id = KeyId::parse(id).ok_or(KeysError::NotFound)?;
    let now = deps.clock.now();
    let key = revoke_key(deps, account, &id, now).await?;
    Ok(view(&key, now))
}

async fn revoke_key<S: ApiKeyStore>(
    deps: &KeysDeps<S>,
    account: &AccountId,
    id: &KeyId,
    now: i64,
) -> Result<ApiKey, KeysError> {
    for _ in 0..ATTEMPTS {
        let key = deps.store.api_key(account, id).await?.ok_or(KeysError::NotFound)?;
        if key.revoked_at.is_some() {
            return Ok(key);
        }
        let retain_until = now.saturating_add(RETIRED_KEY_RETENTION_SECONDS);
        match deps.store.revoke_api_key(&key, now, retain_until).await {
            Ok(()) => {
                tracing::info!(account = %account, key_id = %id, "api key revoked");
                return Ok(ApiKey { revoked_at: Some(now), holds_slot: false, ..key });
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Err(StoreError::Conflict("the API key kept changing; retry").into())
}

/// `POST /api-keys/{id}/rotate`: a successor with the old key's name and scopes, which takes
/// the old key's slot; the old key stays valid for `overlap_seconds` (never past its own
/// expiry), or is revoked at once.
pub async fn rotate<S: ApiKeyStore>(
    deps: &KeysDeps<S>,
    account: &AccountId,
    id: &str,
    request: RotateRequest,
) -> Result<NewKey, KeysError> {
    let id = KeyId::parse(id).ok_or(KeysError::NotFound)?;
    let now = deps.clock.now();
    let overlap = apikeys::overlap(request.overlap_seconds.as_ref())?;
    let expires_at = apikeys::expiry(request.expires_at.as_ref(), now)?;
    let old = deps.store.api_key(account, &id).await?.ok_or(KeysError::NotFound)?;
    refuse_retired(&old)?;
    end_pending_rotation(&deps.store, account, &old, now).await?;
    let overlap_end = now.saturating_add(overlap);
    let valid_until = old.expires_at.map_or(overlap_end, |at| at.min(overlap_end)).max(now);
    let (secret, successor) = issue(deps.mode, account, old.name.clone(), old.scopes.clone(), expires_at, now)?;
    let retain_until = valid_until.saturating_add(RETIRED_KEY_RETENTION_SECONDS);
    match deps.store.rotate_api_key(&old, &successor, now, valid_until, retain_until).await {
        Ok(()) => {}
        Err(StoreError::Conflict(what)) => {
            // Lost to a concurrent revoke or rotation: say which.
            let current = deps.store.api_key(account, &id).await?.ok_or(KeysError::NotFound)?;
            refuse_retired(&current)?;
            return Err(StoreError::Conflict(what).into());
        }
        Err(err) => return Err(err.into()),
    }
    tracing::info!(account = %account, key_id = %successor.id, replaces = %old.id, valid_until, "api key rotated");
    Ok(new_key(&secret, successor, Some(Replaced { id: old.id, valid_until })))
}

fn refuse_retired(key: &ApiKey) -> Result<(), KeysError> {
    if key.revoked_at.is_some() {
        return Err(KeysError::Revoked);
    }
    if key.replaced_by.is_some() {
        return Err(KeysError::Rotated);
    }
    Ok(())
}

/// Who a key speaks for: what the authorizer puts in the request's context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Caller {
    pub account_id: AccountId,
    pub key_id: KeyId,
    /// The tier whose features and limits apply now (the access decision's plan).
    pub tier: String,
    /// The key's scopes, space-separated.
    pub scopes: String,
}

/// The authorizer's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow(Caller),
    /// Refused, with the key's id when it was found (for the log).
    Deny {
        reason: Refusal,
        key_id: Option<KeyId>,
    },
}

/// Decides on the `Authorization` header of a request for `route_key` (`GET /api/...`): the
/// key must be of a key's form, stored, not revoked, not expired, and hold the scope the route
/// needs ([`apikeys::required_scope`]; a route Tollgate does not know needs none). Costs one
/// consistent `GetItem` (the key) and, when allowed, one `Query` (the account's state, for the
/// tier), plus a write of `last_used_at` at most once a minute per key. The tier is the access
/// decision's plan; whether the account may use it is the service's to decide.
pub async fn authorize<S: ApiKeyStore + SubscriptionStore>(
    deps: &AuthorizerDeps<S>,
    authorization: Option<&str>,
    route_key: &str,
) -> Result<Decision, StoreError> {
    let Some(secret) = authorization.and_then(Secret::from_bearer) else {
        return Ok(Decision::Deny { reason: Refusal::Malformed, key_id: None });
    };
    let Some(key) = deps.store.api_key_by_hash(&secret.hash()).await? else {
        return Ok(Decision::Deny { reason: Refusal::Unknown, key_id: None });
    };
    let now = deps.clock.now();
    if let Err(reason) = key.check(now, apikeys::required_scope(route_key)) {
        return Ok(Decision::Deny { reason, key_id: Some(key.id) });
    }
    let record = async {
        // A missed `last_used_at` is no reason to refuse the request.
        if key.use_is_due(now)
            && let Err(err) = deps.store.record_api_key_use(&key, now).await
        {
            tracing::warn!(key_id = %key.id, error = %err, "could not record the key's use");
        }
    };
    let (state, ()) = tokio::join!(deps.store.state(&key.account_id), record);
    let state = state?;
    let access = decide_account(state.subscription.as_ref(), !state.disputes().is_empty(), now);
    Ok(Decision::Allow(Caller {
        account_id: key.account_id,
        key_id: key.id,
        tier: access.plan,
        scopes: apikeys::scopes_to_string(&key.scopes),
    }))
}
