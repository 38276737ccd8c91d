//! The DynamoDB adapter of [`ApiKeyStore`]: a key's lookup item and its account's listing item
//! are written together in one transaction, with the account's slot count when a slot is
//! taken or freed.

use super::{DynamoStore, IS_NEW, Item, Keyed, classify, from_item, n, to_item};
use crate::domain::apikeys::{ApiKey, KeyHash, KeyId};
use crate::domain::model::AccountId;
use crate::ports::StoreError;
use crate::ports::api_keys::{ApiKeyStore, KeyCreation};
use crate::ports::keys;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};

/// Guards taking a slot: fewer than the limit are taken.
const HAS_FREE_SLOT: &str = "attribute_not_exists(#active) OR #active < :max";
/// Guards a revoke: the key is stored, not revoked, and holds a slot exactly as read (so a
/// slot is freed once, and only by the key that held it).
const IS_UNREVOKED_AS_READ: &str = "attribute_exists(pk) AND attribute_not_exists(revoked_at) AND holds_slot = :held";
/// Guards a rotation: the key is stored, not revoked and still holds its slot (not rotated).
const HOLDS_ITS_SLOT: &str = "attribute_exists(pk) AND attribute_not_exists(revoked_at) AND holds_slot = :true";
/// Guards the other item of a change: it is still stored (an update never re-creates one).
const IS_STORED: &str = "attribute_exists(pk)";
/// Guards recording a use: the last one recorded is a minute old or more.
const USE_IS_DUE: &str = "attribute_exists(pk) AND (attribute_not_exists(last_used_at) OR last_used_at <= :cutoff)";

/// Whether placeholder `name` (`:now`) appears in `text` as a whole word: DynamoDB refuses a
/// request that sends a value no expression uses.
fn uses(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(at, _)| {
        text[at.saturating_add(name.len())..].chars().next().is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'))
    })
}

/// Where a key's two items are.
fn lookup_key(key: &ApiKey) -> (String, &'static str) {
    (keys::api_key_lookup(&key.hash), keys::API_KEY_LOOKUP)
}

fn listing_key(key: &ApiKey) -> (String, String) {
    (keys::account(&key.account_id), keys::api_key(&key.id))
}

impl DynamoStore {
    fn key_puts(&self, key: &ApiKey) -> Result<[TransactWriteItem; 2], StoreError> {
        let (pk, sk) = lookup_key(key);
        let lookup = to_item(&Keyed::new(pk, sk, key))?;
        let (pk, sk) = listing_key(key);
        let listing = to_item(&Keyed::new(pk, &sk, key))?;
        Ok([lookup, listing].map(|item| TransactWriteItem::builder().put(self.put(item, IS_NEW)).build()))
    }

    /// An update of one key item inside a transaction, given only the values its expressions
    /// use.
    fn key_update(
        &self,
        (pk, sk): (String, String),
        expression: &str,
        condition: Option<&str>,
        values: &[(&str, AttributeValue)],
    ) -> TransactWriteItem {
        let mut update =
            self.update(pk, sk).update_expression(expression).set_condition_expression(condition.map(str::to_owned));
        for (name, value) in values {
            if uses(expression, name) || condition.is_some_and(|c| uses(c, name)) {
                update = update.expression_attribute_values(*name, value.clone());
            }
        }
        if expression.contains("#active") || condition.is_some_and(|c| c.contains("#active")) {
            update = update.expression_attribute_names("#active", "active");
        }
        TransactWriteItem::builder().update(update.build().expect("table, key and expression are set")).build()
    }

    /// The same update of a key's listing item (under `condition`) and lookup item (still
    /// stored).
    fn update_both(
        &self,
        key: &ApiKey,
        expression: &str,
        condition: &str,
        values: &[(&str, AttributeValue)],
    ) -> [TransactWriteItem; 2] {
        let (pk, sk) = lookup_key(key);
        [
            self.key_update(listing_key(key), expression, Some(condition), values),
            self.key_update((pk, sk.to_owned()), expression, Some(IS_STORED), values),
        ]
    }

    fn slots(&self, account: &AccountId, expression: &str, values: &[(&str, AttributeValue)]) -> TransactWriteItem {
        let key = (keys::account(account), keys::API_KEY_SLOTS.to_owned());
        let condition = values.iter().any(|(name, _)| *name == ":max").then_some(HAS_FREE_SLOT);
        self.key_update(key, expression, condition, values)
    }

    async fn delete_item(&self, pk: String, sk: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk))
            .key("sk", AttributeValue::S(sk.to_owned()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(e, "delete"))
    }
}

#[async_trait]
impl ApiKeyStore for DynamoStore {
    async fn create_api_key(&self, key: &ApiKey, max_active: u32) -> Result<KeyCreation, StoreError> {
        let [lookup, listing] = self.key_puts(key)?;
        let slot = self.slots(&key.account_id, "ADD #active :one", &[(":one", n(1)), (":max", n(max_active))]);
        match self.transact(vec![lookup, listing, slot], "api key exists").await? {
            Ok(()) => Ok(KeyCreation::Created),
            Err(failed) if failed.get(2) == Some(&true) => Ok(KeyCreation::LimitReached),
            Err(_) => Err(StoreError::Conflict("api key exists")),
        }
    }

    async fn api_key_by_hash(&self, hash: &KeyHash) -> Result<Option<ApiKey>, StoreError> {
        self.get(keys::api_key_lookup(hash), keys::API_KEY_LOOKUP).await
    }

    async fn api_key(&self, account: &AccountId, id: &KeyId) -> Result<Option<ApiKey>, StoreError> {
        self.get(keys::account(account), &keys::api_key(id)).await
    }

    async fn api_keys(&self, account: &AccountId) -> Result<Vec<ApiKey>, StoreError> {
        let items = self.query_prefix(&keys::account(account), keys::API_KEY_PREFIX).await?;
        items.into_iter().map(|item: Item| from_item::<Keyed<ApiKey>>(item).map(|k| k.data)).collect()
    }

    async fn revoke_api_key(&self, key: &ApiKey, now: i64, retain_until: i64) -> Result<(), StoreError> {
        let values = [
            (":now", n(now)),
            (":false", AttributeValue::Bool(false)),
            (":retain", n(retain_until)),
            (":held", AttributeValue::Bool(key.holds_slot)),
        ];
        let set = "SET revoked_at = :now, holds_slot = :false, expires_at = :retain";
        let mut items = self.update_both(key, set, IS_UNREVOKED_AS_READ, &values).to_vec();
        if key.holds_slot {
            items.push(self.slots(&key.account_id, "ADD #active :minus_one", &[(":minus_one", n(-1))]));
        }
        self.transact(items, "api key changed").await?.map_err(|_| StoreError::Conflict("api key changed"))
    }

    async fn rotate_api_key(
        &self,
        old: &ApiKey,
        successor: &ApiKey,
        now: i64,
        old_valid_until: i64,
        retain_until: i64,
    ) -> Result<(), StoreError> {
        let mut values = vec![
            (":successor", AttributeValue::S(successor.id.to_string())),
            (":false", AttributeValue::Bool(false)),
            (":true", AttributeValue::Bool(true)),
            (":retain", n(retain_until)),
        ];
        let set = if old_valid_until <= now {
            values.push((":now", n(now)));
            "SET revoked_at = :now, replaced_by = :successor, holds_slot = :false, expires_at = :retain"
        } else {
            values.push((":until", n(old_valid_until)));
            "SET key_expires_at = :until, replaced_by = :successor, holds_slot = :false, expires_at = :retain"
        };
        let mut items = self.key_puts(successor)?.to_vec();
        items.extend(self.update_both(old, set, HOLDS_ITS_SLOT, &values));
        self.transact(items, "api key changed").await?.map_err(|_| StoreError::Conflict("api key changed"))
    }

    async fn record_api_key_use(&self, key: &ApiKey, now: i64) -> Result<bool, StoreError> {
        let cutoff = now.saturating_sub(crate::domain::apikeys::LAST_USED_RESOLUTION_SECONDS);
        let (pk, sk) = lookup_key(key);
        let values = [(":now", n(now)), (":cutoff", n(cutoff))];
        let items = vec![
            self.key_update((pk, sk.to_owned()), "SET last_used_at = :now", Some(USE_IS_DUE), &values),
            self.key_update(listing_key(key), "SET last_used_at = :now", Some(IS_STORED), &values),
        ];
        Ok(self.transact(items, "use recorded").await?.is_ok())
    }

    async fn delete_api_keys(&self, account: &AccountId) -> Result<u32, StoreError> {
        let stored = self.api_keys(account).await?;
        for key in &stored {
            let (pk, sk) = lookup_key(key);
            self.delete_item(pk, sk).await?;
        }
        for key in &stored {
            let (pk, sk) = listing_key(key);
            self.delete_item(pk, &sk).await?;
        }
        self.delete_item(keys::account(account), keys::API_KEY_SLOTS).await?;
        Ok(u32::try_from(stored.len()).unwrap_or(u32::MAX))
    }
}
