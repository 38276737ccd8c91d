//! API keys, the domain part: the key's format (`tg_live_` or `tg_test_` and 43 base62
//! characters, 32 bytes from the operating system's CSPRNG), its SHA-256 (the only form ever
//! stored), its visible prefix, key ids, scopes, the rules for names, expiries and rotation
//! overlaps, and the decision an authorizer takes on a stored key. No I/O but the random bytes.
//!
//! A key is held as [`Secret`], which is not `Serialize`, not `Display`, and whose `Debug`
//! shows only the visible prefix: a key can reach a log or a stored item only by
//! [`Secret::expose`], which the create and rotate answers alone call.

use crate::domain::model::AccountId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::fmt;

/// Random bytes in a key.
pub const KEY_BYTES: usize = 32;
/// Base62 characters that hold [`KEY_BYTES`] (62^43 > 2^256).
pub const KEY_CHARS: usize = 43;
/// Random bytes in a key id.
const ID_BYTES: usize = 16;
/// Base62 characters that hold [`ID_BYTES`] (62^22 > 2^128).
const ID_CHARS: usize = 22;
/// What a key id starts with.
pub const ID_PREFIX: &str = "key_";
/// Characters of the secret part shown in the visible prefix (the key's first 12 in all).
const VISIBLE_SECRET_CHARS: usize = 4;
/// Longest key name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Latest expiry a key may be given, from now: 10 years.
pub const MAX_LIFETIME_SECONDS: i64 = 10 * 365 * crate::domain::access::DAY;
/// Longest time a rotated key stays valid beside its successor: 7 days.
pub const MAX_OVERLAP_SECONDS: i64 = 7 * crate::domain::access::DAY;
/// `last_used_at` is written at most once per this many seconds per key.
pub const LAST_USED_RESOLUTION_SECONDS: i64 = 60;
/// A revoked key is refused by the next request that reaches the authorizer after the revoke
/// answered: the authorizer reads the key with a consistent read and API Gateway caches none
/// of its answers (the template's `ReauthorizeEvery` is held to this by a test).
pub const REVOCATION_BOUND_SECONDS: i64 = 0;
/// A revoked or rotated-out key is still listed (and refused as such) for this long, then
/// DynamoDB's TTL removes it.
pub const RETIRED_KEY_RETENTION_SECONDS: i64 = 30 * crate::domain::access::DAY;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Whether keys are for live or test mode; the deployment's Stripe mode decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Live,
    Test,
}

impl Mode {
    /// What every key of this mode starts with.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Live => "tg_live_",
            Self::Test => "tg_test_",
        }
    }
}

/// What a key may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Scope {
    /// Read usage and credits, and check a usage decision. (Usage and credits are written by
    /// the product's backend on the operator routes only: no key scope writes them.)
    #[serde(rename = "usage:read")]
    UsageRead,
    /// Read the subscription and its access decision.
    #[serde(rename = "subscription:read")]
    SubscriptionRead,
}

impl Scope {
    pub const ALL: [Self; 2] = [Self::UsageRead, Self::SubscriptionRead];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::UsageRead => "usage:read",
            Self::SubscriptionRead => "subscription:read",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The scope each of Tollgate's own `/api/...` routes needs (by API Gateway route key).
/// Another route behind the same authorizer (a product's own API) needs a valid key only;
/// its service reads the key's scopes from the authorizer's context.
pub const API_ROUTE_SCOPES: &[(&str, Scope)] = &[
    ("GET /api/subscription", Scope::SubscriptionRead),
    ("POST /api/usage/check", Scope::UsageRead),
    ("GET /api/usage", Scope::UsageRead),
    ("GET /api/credits", Scope::UsageRead),
    ("GET /api/invoices", Scope::SubscriptionRead),
];

/// The scope a route needs, if it is one of Tollgate's own.
pub fn required_scope(route_key: &str) -> Option<Scope> {
    API_ROUTE_SCOPES.iter().find(|(route, _)| *route == route_key).map(|(_, scope)| *scope)
}

/// Scopes as the context carries them: space-separated, in a fixed order.
pub fn scopes_to_string(scopes: &BTreeSet<Scope>) -> String {
    scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
}

/// Stored scopes, the retired or unknown ones dropped.
fn known_scopes<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<BTreeSet<Scope>, D::Error> {
    let raw = Vec::<String>::deserialize(deserializer)?;
    Ok(raw.iter().filter_map(|s| Scope::parse(s)).collect())
}

/// Scopes from the context's string; unknown words are dropped.
pub fn scopes_from_string(raw: &str) -> BTreeSet<Scope> {
    raw.split_ascii_whitespace().filter_map(Scope::parse).collect()
}

/// Fixed-width base62 of a big-endian number.
fn base62(bytes: &[u8], width: usize) -> String {
    let mut number = bytes.to_vec();
    let mut digits = Vec::with_capacity(width);
    for _ in 0..width {
        let mut remainder: u16 = 0;
        for byte in &mut number {
            // remainder < 62, so acc < 62 * 256 and acc / 62 < 256.
            let acc = remainder.wrapping_shl(8) | u16::from(*byte);
            *byte = u8::try_from(acc.wrapping_div(62)).unwrap_or(u8::MAX);
            remainder = acc.wrapping_rem(62);
        }
        digits.push(ALPHABET[usize::from(remainder)]);
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

fn is_base62(raw: &str) -> bool {
    raw.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The operating system's random source failed (no key can be made safely).
#[derive(Debug, thiserror::Error)]
#[error("the random source failed: {0}")]
pub struct RandomUnavailable(String);

fn random<const N: usize>() -> Result<[u8; N], RandomUnavailable> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| RandomUnavailable(e.to_string()))?;
    Ok(bytes)
}

/// An API key in clear: given to its owner once, never stored, logged or echoed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A new key of `mode`: 32 random bytes, base62.
    pub fn generate(mode: Mode) -> Result<Self, RandomUnavailable> {
        Ok(Self(format!("{}{}", mode.prefix(), base62(&random::<KEY_BYTES>()?, KEY_CHARS))))
    }

    /// A key as a caller presents it, if it has a key's form (so nothing else is looked up).
    pub fn parse(raw: &str) -> Option<Self> {
        let rest = raw.strip_prefix(Mode::Live.prefix()).or_else(|| raw.strip_prefix(Mode::Test.prefix()))?;
        (rest.len() == KEY_CHARS && is_base62(rest)).then(|| Self(raw.to_owned()))
    }

    /// The key from an `Authorization: Bearer <key>` header value.
    pub fn from_bearer(header: &str) -> Option<Self> {
        let (scheme, token) = header.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| Self::parse(token.trim())).flatten()
    }

    /// The SHA-256 the key is stored and looked up by.
    pub fn hash(&self) -> KeyHash {
        KeyHash(hex::encode(Sha256::digest(self.0.as_bytes())))
    }

    /// The mode prefix and the first characters of the key, to tell keys apart in a list.
    pub fn visible_prefix(&self) -> String {
        let shown = self.0.len().min(Mode::Live.prefix().len().saturating_add(VISIBLE_SECRET_CHARS));
        self.0.get(..shown).unwrap_or_default().to_owned()
    }

    /// The key itself, for the one answer that hands it to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({}…)", self.visible_prefix())
    }
}

/// The hex SHA-256 of a key: how it is stored and found.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyHash(String);

impl KeyHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A key's public identifier (`key_` and 22 base62 characters), used in paths and logs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct KeyId(String);

impl KeyId {
    pub fn generate() -> Result<Self, RandomUnavailable> {
        Ok(Self(format!("{ID_PREFIX}{}", base62(&random::<ID_BYTES>()?, ID_CHARS))))
    }

    /// A key id from a path, if it has the form of one (so it can never forge a table key).
    pub fn parse(raw: &str) -> Option<Self> {
        let rest = raw.strip_prefix(ID_PREFIX)?;
        (rest.len() == ID_CHARS && is_base62(rest)).then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a request's key fields are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidKeyRequest {
    #[error("`name` is required")]
    MissingName,
    #[error("`name` must be 1 to {MAX_NAME_CHARS} characters, without control characters")]
    InvalidName,
    #[error("`scopes` is required: a list of one or more of usage:read, subscription:read")]
    MissingScopes,
    #[error("unknown scope `{0}`: use usage:read or subscription:read")]
    UnknownScope(String),
    #[error("`expires_at` must be a Unix time in seconds, in the future and at most 10 years ahead")]
    InvalidExpiry,
    #[error("`overlap_seconds` must be a whole number from 0 to 604800 (7 days)")]
    InvalidOverlap,
}

/// A key name: 1 to [`MAX_NAME_CHARS`] characters as sent, without control characters, not
/// all whitespace (as the contract's pattern has it, U+FEFF counts as whitespace); kept trimmed.
pub fn name(raw: Option<&str>) -> Result<String, InvalidKeyRequest> {
    let raw = raw.ok_or(InvalidKeyRequest::MissingName)?;
    let trimmed = raw.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if trimmed.is_empty() || raw.chars().count() > MAX_NAME_CHARS || raw.chars().any(char::is_control) {
        return Err(InvalidKeyRequest::InvalidName);
    }
    Ok(trimmed.to_owned())
}

/// The scopes of a request: one or more known scopes (duplicates are one).
pub fn scopes(raw: Option<&[String]>) -> Result<BTreeSet<Scope>, InvalidKeyRequest> {
    let raw = raw.filter(|r| !r.is_empty()).ok_or(InvalidKeyRequest::MissingScopes)?;
    raw.iter()
        .map(|s| {
            Scope::parse(s).ok_or_else(|| {
                InvalidKeyRequest::UnknownScope(s.chars().take(MAX_NAME_CHARS).filter(|c| !c.is_control()).collect())
            })
        })
        .collect()
}

/// An expiry from a request (any JSON value): `None` for none, else a whole number of Unix
/// seconds after `now` and at most [`MAX_LIFETIME_SECONDS`] ahead.
pub fn expiry(raw: Option<&serde_json::Value>, now: i64) -> Result<Option<i64>, InvalidKeyRequest> {
    let at = match raw {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(value) => crate::domain::number::whole_i64(value).ok_or(InvalidKeyRequest::InvalidExpiry)?,
    };
    if at <= now || at > now.saturating_add(MAX_LIFETIME_SECONDS) {
        return Err(InvalidKeyRequest::InvalidExpiry);
    }
    Ok(Some(at))
}

/// A rotation's overlap from a request: 0 (the default) to [`MAX_OVERLAP_SECONDS`].
pub fn overlap(raw: Option<&serde_json::Value>) -> Result<i64, InvalidKeyRequest> {
    let seconds = match raw {
        None | Some(serde_json::Value::Null) => return Ok(0),
        Some(value) => crate::domain::number::whole_i64(value).ok_or(InvalidKeyRequest::InvalidOverlap)?,
    };
    if !(0..=MAX_OVERLAP_SECONDS).contains(&seconds) {
        return Err(InvalidKeyRequest::InvalidOverlap);
    }
    Ok(seconds)
}

/// A stored API key: everything but the key itself. The lookup item (by hash) and the
/// account's listing item hold the same record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: KeyId,
    pub account_id: AccountId,
    /// The SHA-256 of the key (how the lookup item is found from the listing).
    pub hash: KeyHash,
    pub prefix: String,
    pub name: String,
    /// Read leniently: a scope no longer known (`usage:write`, retired) is dropped, so a key
    /// stored with it keeps working with the scopes that remain.
    #[serde(deserialize_with = "known_scopes")]
    pub scopes: BTreeSet<Scope>,
    pub created_at: i64,
    /// When the key stops working; stored as `key_expires_at`, since the table's TTL
    /// attribute is `expires_at`.
    #[serde(rename = "key_expires_at", default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<i64>,
    /// The successor a rotation issued; the key stays valid until `expires_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<KeyId>,
    /// Whether the key takes one of the account's active-key slots: from creation until it is
    /// revoked or rotated (its successor takes the slot over).
    pub holds_slot: bool,
}

/// A key's state at a time, as listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Active,
    /// Rotated: valid beside its successor until its `expires_at`.
    Rotating,
    Expired,
    Revoked,
}

/// Why a presented key is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// No `Authorization: Bearer tg_...` header of a key's form.
    Malformed,
    /// No such key (never issued, or deleted).
    Unknown,
    Revoked,
    Expired,
    /// The key lacks the route's scope.
    MissingScope,
}

impl ApiKey {
    pub fn status(&self, now: i64) -> Status {
        if self.revoked_at.is_some() {
            Status::Revoked
        } else if self.expires_at.is_some_and(|at| at <= now) {
            Status::Expired
        } else if self.replaced_by.is_some() {
            Status::Rotating
        } else {
            Status::Active
        }
    }

    /// Whether this key may be used at `now` for a route that needs `scope` (if any).
    pub fn check(&self, now: i64, scope: Option<Scope>) -> Result<(), Refusal> {
        match self.status(now) {
            Status::Revoked => Err(Refusal::Revoked),
            Status::Expired => Err(Refusal::Expired),
            Status::Active | Status::Rotating => match scope {
                Some(scope) if !self.scopes.contains(&scope) => Err(Refusal::MissingScope),
                _ => Ok(()),
            },
        }
    }

    /// Whether a use at `now` should be recorded (the last one is a minute old or more).
    pub fn use_is_due(&self, now: i64) -> bool {
        self.last_used_at.is_none_or(|last| now.saturating_sub(last) >= LAST_USED_RESOLUTION_SECONDS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(now: i64) -> ApiKey {
        ApiKey {
            id: KeyId::generate().unwrap(),
            account_id: AccountId::parse("acct_1").unwrap(),
            hash: Secret::generate(Mode::Test).unwrap().hash(),
            prefix: "tg_test_abcd".into(),
            name: "ci".into(),
            scopes: [Scope::UsageRead].into(),
            created_at: now,
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
            replaced_by: None,
            holds_slot: true,
        }
    }

    #[test]
    fn keys_have_the_mode_prefix_and_43_base62_characters() {
        let live = Secret::generate(Mode::Live).unwrap();
        let test = Secret::generate(Mode::Test).unwrap();

        let rest = live.expose().strip_prefix("tg_live_").unwrap();
        assert_eq!(rest.len(), KEY_CHARS);
        assert!(rest.bytes().all(|b| b.is_ascii_alphanumeric()), "{rest}");
        assert!(test.expose().starts_with("tg_test_"));
        assert_eq!(Secret::parse(live.expose()), Some(live.clone()));
        assert_ne!(live, Secret::generate(Mode::Live).unwrap(), "two keys are never the same");
    }

    #[test]
    fn base62_holds_all_32_bytes() {
        assert_eq!(base62(&[0; 32], 43), "0".repeat(43));
        // 2^256 - 1 in base62 is 43 digits starting with 'H'; nothing is lost at the top.
        let max = base62(&[0xff; 32], 43);
        assert_eq!(max.len(), 43);
        assert!(!max.starts_with('0'));
        assert_eq!(base62(&[0, 61], 2), "0z");
        assert_eq!(base62(&[0, 62], 2), "10");
        assert_eq!(base62(&[1, 0], 3), "048");
    }

    #[test]
    fn the_hash_is_the_sha256_of_the_whole_key() {
        let key = Secret::parse(&format!("tg_test_{}", "a".repeat(43))).unwrap();

        let hash = key.hash();

        assert_eq!(hash.as_str(), hex::encode(Sha256::digest(key.expose().as_bytes())));
        assert_eq!(hash.as_str().len(), 64);
        assert!(!hash.as_str().contains(key.expose()));
    }

    #[test]
    fn debug_and_prefix_show_only_twelve_characters() {
        let key = Secret::generate(Mode::Live).unwrap();

        let shown = format!("{key:?}");

        assert_eq!(key.visible_prefix().len(), 12);
        assert!(key.expose().starts_with(&key.visible_prefix()));
        assert!(!shown.contains(key.expose()), "{shown}");
        assert!(!shown.contains(&key.expose()[12..]), "{shown}");
    }

    #[test]
    fn only_keys_of_the_right_form_are_looked_up() {
        let good = format!("tg_live_{}", "Z9".repeat(21) + "x");

        assert!(Secret::parse(&good).is_some());
        assert!(Secret::from_bearer(&format!("Bearer {good}")).is_some());
        assert!(Secret::from_bearer(&format!("bearer  {good} ")).is_some());
        for bad in [
            "",
            "tg_live_",
            "tg_prod_aaaa",
            &format!("tg_live_{}", "a".repeat(42)),
            &format!("tg_live_{}", "a".repeat(44)),
            &format!("tg_live_{}-", "a".repeat(42)),
            &format!("sk_live_{}", "a".repeat(43)),
            &format!("tg_live_{}é", "a".repeat(41)),
        ] {
            assert!(Secret::parse(bad).is_none(), "{bad}");
        }
        assert!(Secret::from_bearer(&good).is_none(), "no scheme");
        assert!(Secret::from_bearer(&format!("Basic {good}")).is_none());
    }

    #[test]
    fn key_ids_are_generated_and_parsed_strictly() {
        let id = KeyId::generate().unwrap();

        assert_eq!(KeyId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(id.as_str().len(), 26);
        for bad in ["", "key_", "key_abc", "APIKEY#x", &format!("key_{}#", "a".repeat(21)), "key_../../x"] {
            assert!(KeyId::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn scopes_parse_and_unknown_ones_are_named() {
        let ok = scopes(Some(&["usage:read".into(), "subscription:read".into(), "usage:read".into()])).unwrap();

        assert_eq!(ok, [Scope::UsageRead, Scope::SubscriptionRead].into());
        assert_eq!(scopes(Some(&["admin".into()])), Err(InvalidKeyRequest::UnknownScope("admin".into())));
        assert_eq!(scopes(Some(&[])), Err(InvalidKeyRequest::MissingScopes));
        assert_eq!(scopes(None), Err(InvalidKeyRequest::MissingScopes));
        assert_eq!(scopes_from_string(&scopes_to_string(&ok)), ok);
        assert_eq!(scopes_to_string(&ok), "usage:read subscription:read");
    }

    #[test]
    fn names_expiries_and_overlaps_are_bounded() {
        let now = 1_795_273_200;
        let n = |v: serde_json::Value| Some(v);

        assert_eq!(name(Some("  ci  ")).unwrap(), "ci");
        assert_eq!(name(Some(&"é".repeat(64))).unwrap().chars().count(), 64);
        assert_eq!(name(Some(&"x".repeat(65))), Err(InvalidKeyRequest::InvalidName));
        assert_eq!(name(Some("a\nb")), Err(InvalidKeyRequest::InvalidName));
        assert_eq!(name(Some("   ")), Err(InvalidKeyRequest::InvalidName));
        assert_eq!(name(None), Err(InvalidKeyRequest::MissingName));
        assert_eq!(expiry(None, now), Ok(None));
        assert_eq!(expiry(n(serde_json::json!(now + 60)).as_ref(), now), Ok(Some(now + 60)));
        for bad in [
            serde_json::json!(now),
            serde_json::json!(-1),
            serde_json::json!(i64::MAX),
            serde_json::json!(u64::MAX),
            serde_json::json!(1e300),
            serde_json::json!(now as f64 + 100.5),
            serde_json::json!("tomorrow"),
            serde_json::json!(now + MAX_LIFETIME_SECONDS + 1),
        ] {
            assert_eq!(expiry(Some(&bad), now), Err(InvalidKeyRequest::InvalidExpiry), "{bad}");
        }
        assert_eq!(overlap(None), Ok(0));
        assert_eq!(overlap(n(serde_json::json!(3600)).as_ref()), Ok(3600));
        for bad in [serde_json::json!(-1), serde_json::json!(MAX_OVERLAP_SECONDS + 1), serde_json::json!(i64::MIN)] {
            assert_eq!(overlap(Some(&bad)), Err(InvalidKeyRequest::InvalidOverlap), "{bad}");
        }
    }

    #[test]
    fn usage_write_is_no_scope_and_a_key_stored_with_it_loses_it_silently() {
        let mut stored = serde_json::to_value(key(1)).unwrap();
        stored["scopes"] = serde_json::json!(["usage:write", "usage:read"]);

        let read: ApiKey = serde_json::from_value(stored).unwrap();

        assert_eq!(read.scopes, [Scope::UsageRead].into());
        assert_eq!(scopes(Some(&["usage:write".into()])), Err(InvalidKeyRequest::UnknownScope("usage:write".into())));
        assert_eq!(scopes_from_string("usage:write usage:read"), [Scope::UsageRead].into());
    }

    #[test]
    fn a_key_is_refused_when_revoked_expired_or_out_of_scope() {
        let now = 1_795_273_200;
        let active = key(now);
        let expired = ApiKey { expires_at: Some(now), ..key(now) };
        let revoked = ApiKey { revoked_at: Some(now - 1), ..key(now) };
        let rotating = ApiKey { replaced_by: Some(KeyId::generate().unwrap()), expires_at: Some(now + 60), ..key(now) };

        assert_eq!(active.check(now, Some(Scope::UsageRead)), Ok(()));
        assert_eq!(active.check(now, None), Ok(()));
        assert_eq!(active.check(now, Some(Scope::SubscriptionRead)), Err(Refusal::MissingScope));
        assert_eq!(expired.check(now, Some(Scope::UsageRead)), Err(Refusal::Expired));
        assert_eq!(expired.check(now - 1, Some(Scope::UsageRead)), Ok(()));
        assert_eq!(revoked.check(now, None), Err(Refusal::Revoked));
        assert_eq!(rotating.status(now), Status::Rotating);
        assert_eq!(rotating.check(now, Some(Scope::UsageRead)), Ok(()));
        assert_eq!(rotating.status(now + 60), Status::Expired);
    }

    #[test]
    fn a_use_is_recorded_at_most_once_a_minute() {
        let now = 1_795_273_200;
        let used = ApiKey { last_used_at: Some(now), ..key(now) };

        assert!(key(now).use_is_due(now));
        assert!(!used.use_is_due(now + 59));
        assert!(used.use_is_due(now + 60));
        assert!(!ApiKey { last_used_at: Some(i64::MAX), ..key(now) }.use_is_due(i64::MIN));
    }

    #[test]
    fn every_api_route_needs_a_scope() {
        assert_eq!(required_scope("GET /api/subscription"), Some(Scope::SubscriptionRead));
        assert_eq!(required_scope("GET /api/usage"), Some(Scope::UsageRead));
        assert_eq!(required_scope("POST /v1/generate"), None);
    }
}
