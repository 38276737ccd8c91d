//! The single table's keys, the layout both stores follow (the DynamoDB adapter and the
//! in-memory double) and the page cursors of the store's ports are made of. Every item has a partition key `pk` and a sort key `sk`; the
//! account id never contains `#` (see `AccountId::parse`), so no key can forge another.
//!
//! An account's small, bounded state items (profile, projection, facts, tombstone) sort under
//! [`STATE_PREFIX`], so the read of an account is one `Query` of that range; everything that
//! grows (pending checkouts, rate windows, API keys, ledger entries, invoices) sorts outside it.

use crate::domain::model::AccountId;

/// The sort-key range of an account's state items.
pub const STATE_PREFIX: &str = "STATE#";
pub const PROFILE: &str = "STATE#PROFILE";
pub const SUBSCRIPTION: &str = "STATE#SUBSCRIPTION";
pub const FACTS: &str = "STATE#FACTS";
pub const TOMBSTONE: &str = "STATE#TOMBSTONE";
pub const CUSTOMER_ACCOUNT: &str = "ACCOUNT";
pub const EVENT: &str = "EVENT";
pub const FAILURE: &str = "FAILURE";
pub const CHECKOUT_PREFIX: &str = "CHECKOUT#";

pub fn account(id: &AccountId) -> String {
    format!("ACCOUNT#{id}")
}

pub fn customer(customer_id: &str) -> String {
    format!("CUSTOMER#{customer_id}")
}

pub fn event(event_id: &str) -> String {
    format!("EVENT#{event_id}")
}

pub fn failure(id: &str) -> String {
    format!("FAILED#{id}")
}

/// The partition listing failed events, newest first (a `Query`, never a Scan).
pub const FAILURES: &str = "FAILURES";
const FAILURE_LISTING_PREFIX: &str = "FAILED#";

/// A failed event's item in [`FAILURES`]: by the time it last failed (zero-padded, so the sort
/// key orders the list), then its id.
pub fn failure_listing(failed_at: i64, id: &str) -> String {
    format!("{FAILURE_LISTING_PREFIX}{:016}#{id}", failed_at.max(0))
}

/// The sort-key prefix of [`FAILURES`]' items.
pub const FAILURE_LISTING: &str = FAILURE_LISTING_PREFIX;

/// Whether `sk` is a failed event's listing key as [`failure_listing`] makes them (a page
/// cursor that names nothing else).
pub fn is_failure_listing(sk: &str) -> bool {
    let Some((at, id)) = sk.strip_prefix(FAILURE_LISTING_PREFIX).and_then(|rest| rest.split_once('#')) else {
        return false;
    };
    at.len() == 16 && at.bytes().all(|b| b.is_ascii_digit()) && crate::domain::events::is_id(id)
}

pub fn checkout(request_key: &str) -> String {
    format!("{CHECKOUT_PREFIX}{request_key}")
}

/// The counter of `metric` in the usage window that starts at `window_start` (a state item:
/// the account's read sees this period's usage).
pub fn usage(metric: &str, window_start: i64) -> String {
    format!("{STATE_PREFIX}USAGE#{metric}#{window_start}")
}

/// The metric and window start of a usage counter's sort key.
pub fn parse_usage(sk: &str) -> Option<(&str, i64)> {
    let (metric, start) = sk.strip_prefix(STATE_PREFIX)?.strip_prefix("USAGE#")?.rsplit_once('#')?;
    Some((metric, start.parse().ok()?))
}

/// The idempotency record of a usage request: per account, the key hashed (any characters,
/// any length up to 255, never part of another key).
pub fn usage_request(account: &AccountId, key: &str) -> String {
    use sha2::{Digest, Sha256};
    format!("IDEMPOTENCY#usage#{account}#{}", hex::encode(Sha256::digest(key.as_bytes())))
}

pub const IDEMPOTENCY: &str = "IDEMPOTENCY";

/// The sort-key range of an account's credit grants (state items: the read sees the balance).
pub const GRANT_PREFIX: &str = "STATE#GRANT#";

/// The grant `id` of an account.
pub fn grant(id: &str) -> String {
    format!("{GRANT_PREFIX}{id}")
}

/// The sort-key range of an account's credit ledger (outside the state range: it grows).
pub const LEDGER_PREFIX: &str = "LEDGER#";

/// A ledger entry: by time (zero-padded, so the sort key orders the ledger), then, within one
/// millisecond, in the order such entries happen (a grant before the consumption that draws on
/// it, a consumption before its refund), then id.
pub fn ledger(entry: &crate::ports::credits::LedgerEntry) -> String {
    use crate::ports::credits::EntryKind;
    let rank = match entry.kind {
        EntryKind::Grant => 0,
        EntryKind::Expiry => 1,
        EntryKind::Consumption => 2,
        EntryKind::Refund => 3,
        EntryKind::Reversal => 4,
        EntryKind::Freeze => 5,
        EntryKind::Release => 6,
    };
    format!("{LEDGER_PREFIX}{:016}#{rank}#{}", entry.at_ms.max(0), entry.id)
}

/// The idempotency record of a credit consumption: per account, the key hashed.
pub fn credit_request(account: &AccountId, key: &str) -> String {
    use sha2::{Digest, Sha256};
    format!("IDEMPOTENCY#credits#{account}#{}", hex::encode(Sha256::digest(key.as_bytes())))
}

/// The record of part `index` of the credit spend recorded under `key` (a spend drawn in parts).
pub fn credit_part(account: &AccountId, key: &str, index: u32) -> String {
    use sha2::{Digest, Sha256};
    format!("IDEMPOTENCY#credit-part#{account}#{}#{index}", hex::encode(Sha256::digest(key.as_bytes())))
}

/// The marker that `metric`'s count in the window starting at `window_start` reached `pct`
/// percent of its limit (outside the state range: it only guards a notification).
pub fn usage_alert(metric: &str, window_start: i64, pct: u8) -> String {
    format!("ALERT#{metric}#{window_start}#{pct}")
}

/// Longest page cursor accepted, in characters: a hex sort key of at most 512 bytes.
pub const MAX_CURSOR_LEN: usize = 1024;

/// The sort key a page cursor names (the hex of one, as the reads give them), if it is one
/// this API could have given: bounded, hex, UTF-8, and a key `is_page` accepts.
pub fn cursor(raw: &str, is_page: impl Fn(&str) -> bool) -> Option<String> {
    Some(raw)
        .filter(|raw| raw.len() <= MAX_CURSOR_LEN)
        .and_then(|raw| hex::decode(raw).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|sk| is_page(sk))
}

/// The rate window `name` that starts at `window_start_ms`.
pub fn rate(name: &str, window_start_ms: i64) -> String {
    format!("RATE#{name}#{window_start_ms}")
}

pub const SYNC: &str = "SYNC";
pub const SYNC_CURSOR: &str = "CURSOR#events";
pub const METER_POSITION: &str = "CURSOR#meters";
pub const SYNC_OUTCOME: &str = "OUTCOME";
/// The adoption of a Stripe account (one at a time), under [`SYNC`].
pub const ADOPTION: &str = "ADOPTION";

/// The prefix of adoption `id`'s entries, under [`SYNC`].
pub fn adoption_entry_prefix(id: &str) -> String {
    format!("ADOPTION#{id}#")
}

/// Adoption `id`'s entry of its `seq`th customer (sorted by `seq`: zero-padded).
pub fn adoption_entry(id: &str, seq: u64) -> String {
    format!("{}{seq:020}", adoption_entry_prefix(id))
}
/// The sort-key range, in [`SYNC`], of deletions with items left to purge.
pub const OWED_PURGE_PREFIX: &str = "PURGE#";

/// The note that `account`'s deletion has items left to purge.
pub fn owed_purge(account: &AccountId) -> String {
    format!("{OWED_PURGE_PREFIX}{account}")
}

/// An API key's lookup item, by the key's SHA-256: `APIKEY#<sha256>` / [`API_KEY_LOOKUP`].
pub fn api_key_lookup(hash: &crate::domain::apikeys::KeyHash) -> String {
    format!("APIKEY#{}", hash.as_str())
}

pub const API_KEY_LOOKUP: &str = "KEY";
/// The sort-key range of an account's API key listing items (outside [`STATE_PREFIX`]).
pub const API_KEY_PREFIX: &str = "APIKEY#";
/// The count of an account's keys that hold a slot (outside [`STATE_PREFIX`] and
/// [`API_KEY_PREFIX`]).
pub const API_KEY_SLOTS: &str = "APIKEY_SLOTS";

/// An account's listing item of key `id`.
pub fn api_key(id: &crate::domain::apikeys::KeyId) -> String {
    format!("{API_KEY_PREFIX}{id}")
}

/// The sort-key range of an account's invoices (outside [`STATE_PREFIX`]: they grow).
pub const INVOICE_PREFIX: &str = "INVOICE#";

/// An invoice: by `created` (zero-padded, so the sort key orders the invoices), then id.
pub fn invoice(created: i64, id: &str) -> String {
    format!("{INVOICE_PREFIX}{:016}#{id}", created.max(0))
}

/// Whether `sk` is an invoice's sort key as [`invoice`] makes them (a page cursor that names
/// nothing else).
pub fn is_invoice(sk: &str) -> bool {
    let Some((created, id)) = sk.strip_prefix(INVOICE_PREFIX).and_then(|rest| rest.split_once('#')) else {
        return false;
    };
    created.len() == 16 && created.bytes().all(|b| b.is_ascii_digit()) && crate::domain::events::is_id(id)
}
