//! The DynamoDB adapter of [`CreditStore`]: grants are state items of the account (the read
//! sees the balance), ledger entries sort after `LEDGER#` by time, a consumption is one
//! `TransactWriteItems` of its idempotency record (only if new), its ledger entry and one
//! conditional decrement per grant it draws from.

use super::{DynamoStore, IS_NEW, Item, Keyed, REQUEST_RECORD_TTL, from_item, n, to_item};
use crate::domain::credits::Grant;
use crate::domain::model::AccountId;
use crate::ports::StoreError;
use crate::ports::credits::{
    CreditRecord, CreditRefund, CreditStore, DisputeStep, GrantWrite, LedgerEntry, LedgerPage, MAX_MERGED, Spend, Spent,
};
use crate::ports::keys;
use crate::ports::subscriptions::SubscriptionStore;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem};

/// Guards a refund's give-back: the grant is still there and was not reversed.
const GIVEN_BACK: &str = "attribute_exists(pk) AND attribute_not_exists(reversed)";
/// How long a grant that ended stays in the account's state range (for its expiry entry, and
/// a refund of what was drawn from it) before DynamoDB's TTL deletes it.
const GRANT_KEPT_AFTER_END: i64 = 31 * 86_400;
/// The item exists.
const IS_STORED: &str = "attribute_exists(pk)";
/// Guards a draw: the grant is live at `:now`.
const LIVE: &str = "(attribute_not_exists(ends_at) OR ends_at > :now)";

/// Grants as the account's state items hold them.
pub(super) fn grant_from(item: Item) -> Result<Grant, StoreError> {
    Ok(from_item::<Keyed<Grant>>(item)?.data)
}

impl DynamoStore {
    fn put_new<T: serde::Serialize>(&self, keyed: &Keyed<T>) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(to_item(keyed)?))
            .condition_expression(IS_NEW)
            .build()
            .expect("table, item and condition are set");
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn entry_put(&self, account: &AccountId, entry: &LedgerEntry) -> Result<TransactWriteItem, StoreError> {
        self.put_new(&Keyed::new(keys::account(account), &keys::ledger(entry), entry))
    }

    /// A new grant's put: written once; a grant that ends leaves the table
    /// [`GRANT_KEPT_AFTER_END`] after it (DynamoDB's TTL), its history kept by the ledger.
    fn grant_put(&self, account: &AccountId, grant: &Grant) -> Result<TransactWriteItem, StoreError> {
        let mut keyed = Keyed::new(keys::account(account), &keys::grant(&grant.id), grant);
        keyed.expires_at = grant.expires_at.map(|end| end.saturating_add(GRANT_KEPT_AFTER_END));
        self.put_new(&keyed)
    }

    fn grant_update(&self, account: &AccountId, grant: &str) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        self.update(keys::account(account), keys::grant(grant))
    }
}

#[async_trait]
impl CreditStore for DynamoStore {
    async fn grant(&self, account: &AccountId, grant: &Grant, entry: &LedgerEntry) -> Result<bool, StoreError> {
        let items = vec![self.grant_put(account, grant)?, self.entry_put(account, entry)?];
        Ok(self.transact(items, "grant").await?.is_ok())
    }

    async fn grant_to_linked(
        &self,
        account: &AccountId,
        grant: &Grant,
        entry: &LedgerEntry,
    ) -> Result<GrantWrite, StoreError> {
        let profile = ConditionCheck::builder()
            .table_name(self.table())
            .key("pk", AttributeValue::S(keys::account(account)))
            .key("sk", AttributeValue::S(keys::PROFILE.to_owned()))
            .condition_expression(IS_STORED)
            .build()
            .expect("table, key and condition are set");
        let items = vec![
            self.grant_put(account, grant)?,
            self.entry_put(account, entry)?,
            TransactWriteItem::builder().condition_check(profile).build(),
        ];
        Ok(match self.transact(items, "grant").await? {
            Ok(()) => GrantWrite::Written,
            Err(failed) if failed.get(2) == Some(&true) => GrantWrite::NotLinked,
            Err(_) => GrantWrite::Exists,
        })
    }

    async fn extend_grant(&self, account: &AccountId, id: &str, until: i64) -> Result<bool, StoreError> {
        let update = self
            .grant_update(account, id)
            .update_expression("SET ends_at = :until, expires_at = :kept")
            .condition_expression("attribute_exists(pk) AND ends_at < :until")
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":kept", n(until.saturating_add(GRANT_KEPT_AFTER_END)))
            .build()
            .expect("table, key and update are set");
        match self.update_alone(update, "grant extended").await {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(err) => Err(err),
        }
    }

    async fn spend(&self, s: &Spend<'_>) -> Result<Spent, StoreError> {
        let expires_at = Some((s.record.at_ms / 1000).saturating_add(REQUEST_RECORD_TTL));
        let pk = match s.part {
            Some(part) => keys::credit_part(s.account, s.key, part.index),
            None => keys::credit_request(s.account, s.key),
        };
        let mut record = Keyed::new(pk, keys::IDEMPOTENCY, s.record);
        record.expires_at = expires_at;
        let mut items = vec![self.put_new(&record)?, self.entry_put(s.account, s.entry)?];
        if let Some(part) = s.part {
            let mut master = Keyed::new(keys::credit_request(s.account, s.key), keys::IDEMPOTENCY, part.master);
            master.expires_at = expires_at;
            items.push(match part.index {
                0 => self.put_new(&master)?,
                index => {
                    let put = Put::builder()
                        .table_name(self.table())
                        .set_item(Some(to_item(&master)?))
                        .condition_expression("#split.parts = :parts AND refunded = :false")
                        .expression_attribute_names("#split", "split")
                        .expression_attribute_values(":parts", n(index))
                        .expression_attribute_values(":false", AttributeValue::Bool(false))
                        .build()
                        .expect("table, item and condition are set");
                    TransactWriteItem::builder().put(put).build()
                }
            });
        }
        let draws_from = items.len();
        for draw in &s.record.draws {
            let update = self.grant_update(s.account, &draw.grant);
            // A grant that never ends, drawn to exactly 0, leaves the hot range after a while.
            let update = if s.emptied.contains(&draw.grant) {
                update
                    .update_expression("SET remaining = remaining - :take, expires_at = :gone")
                    .condition_expression("remaining = :take")
                    .expression_attribute_values(":gone", n(s.now.saturating_add(GRANT_KEPT_AFTER_END)))
            } else if let Some(seen) = s.exact.and_then(|read| read.iter().find(|g| g.id == draw.grant)) {
                update
                    .update_expression("SET remaining = remaining - :take")
                    .condition_expression(format!("remaining = :seen AND {LIVE}"))
                    .expression_attribute_values(":seen", n(seen.remaining))
                    .expression_attribute_values(":now", n(s.now))
            } else {
                update
                    .update_expression("SET remaining = remaining - :take")
                    .condition_expression(format!("remaining >= :take AND {LIVE}"))
                    .expression_attribute_values(":now", n(s.now))
            };
            let update = update
                .expression_attribute_values(":take", n(draw.credits))
                .build()
                .expect("table, key and update are set");
            items.push(TransactWriteItem::builder().update(update).build());
        }
        match self.transact(items, "credit spend").await? {
            Ok(()) => Ok(Spent::Done),
            // A part: its record or the spend's record moved on meanwhile (read it again).
            Err(_) if s.part.is_some() => Ok(Spent::Contended),
            Err(failed) if failed.first() == Some(&true) => match self.credit_record(s.account, s.key).await? {
                Some(earlier) => Ok(Spent::Replayed(earlier)),
                None => Ok(Spent::Contended),
            },
            Err(failed) if failed.iter().skip(draws_from).any(|f| *f) => Ok(Spent::Contended),
            Err(_) => Err(StoreError::Conflict("a ledger entry with this id exists")),
        }
    }

    async fn refund_credits(
        &self,
        account: &AccountId,
        key: &str,
        part: Option<u32>,
        at_ms: i64,
        actor: &str,
    ) -> Result<CreditRefund, StoreError> {
        let pk = match part {
            Some(index) => keys::credit_part(account, key, index),
            None => keys::credit_request(account, key),
        };
        let Some(record) = self.get::<CreditRecord>(pk.clone(), keys::IDEMPOTENCY).await? else {
            return Ok(CreditRefund::Unknown);
        };
        if record.refunded {
            return Ok(CreditRefund::AlreadyRefunded(record));
        }
        // Draws from a grant reversed since are withheld; the others go back, each only while
        // its grant is still there and not reversed.
        let grants = self.state(account).await?.grants;
        let reversed: Vec<&str> = grants.iter().filter(|g| g.reversed).map(|g| g.id.as_str()).collect();
        let never_end: Vec<&str> = grants.iter().filter(|g| g.expires_at.is_none()).map(|g| g.id.as_str()).collect();
        let frozen: Vec<&str> = grants.iter().filter(|g| g.frozen.is_some()).map(|g| g.id.as_str()).collect();
        let (withheld, back): (Vec<_>, Vec<_>) =
            record.draws.iter().partition(|d| reversed.contains(&d.grant.as_str()));
        let withheld = withheld.iter().map(|d| d.credits).sum();
        let mut items =
            vec![self.refund_mark(pk), self.entry_put(account, &record.refund_entry(at_ms, actor, withheld))?];
        for draw in back {
            // A grant that never ends keeps its credits again: it stays.
            // Held by an open dispute: what comes back is held with the rest.
            let expression = if frozen.contains(&draw.grant.as_str()) {
                "SET frozen = frozen + :take"
            } else if never_end.contains(&draw.grant.as_str()) {
                "SET remaining = remaining + :take REMOVE expires_at"
            } else {
                "SET remaining = remaining + :take"
            };
            let give_back = self
                .grant_update(account, &draw.grant)
                .update_expression(expression)
                .condition_expression(GIVEN_BACK)
                .expression_attribute_values(":take", n(draw.credits))
                .build()
                .expect("table, key and update are set");
            items.push(TransactWriteItem::builder().update(give_back).build());
        }
        match self.transact(items, "credit refund").await? {
            Ok(()) => Ok(CreditRefund::Refunded(CreditRecord { refunded: true, ..record })),
            Err(failed) if failed.first() == Some(&true) => {
                Ok(CreditRefund::AlreadyRefunded(CreditRecord { refunded: true, ..record }))
            }
            Err(_) => Err(StoreError::Conflict("a grant of this consumption is gone or was reversed")),
        }
    }

    async fn reverse_grant(
        &self,
        account: &AccountId,
        grant: &str,
        seen: u64,
        entry: &LedgerEntry,
    ) -> Result<bool, StoreError> {
        let empty = self
            .grant_update(account, grant)
            .update_expression("SET remaining = :zero, reversed = :true")
            .condition_expression("remaining = :seen")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":seen", n(seen))
            .build()
            .expect("table, key and update are set");
        let items = vec![TransactWriteItem::builder().update(empty).build(), self.entry_put(account, entry)?];
        match self.transact(items, "grant reversal").await? {
            Ok(()) => Ok(true),
            Err(failed) if failed.first() == Some(&true) => Ok(false),
            Err(_) => Err(StoreError::Conflict("this grant was reversed already")),
        }
    }

    async fn merge_grants(&self, account: &AccountId, into: &str, from: &[(String, u64)]) -> Result<bool, StoreError> {
        let alike = "attribute_not_exists(reversed) AND attribute_not_exists(frozen)";
        let mut items = Vec::with_capacity(from.len().saturating_add(1));
        for (grant, seen) in from.iter().take(MAX_MERGED) {
            let emptied = self
                .grant_update(account, grant)
                .update_expression("SET remaining = :zero")
                .condition_expression(format!("remaining = :seen AND {alike}"))
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":seen", n(*seen))
                .build()
                .expect("table, key and update are set");
            items.push(TransactWriteItem::builder().update(emptied).build());
        }
        let moved: u64 = from.iter().take(MAX_MERGED).map(|(_, seen)| *seen).fold(0, u64::saturating_add);
        let target = self
            .grant_update(account, into)
            .update_expression("SET remaining = remaining + :moved")
            .condition_expression(format!("attribute_exists(pk) AND {alike}"))
            .expression_attribute_values(":moved", n(moved))
            .build()
            .expect("table, key and update are set");
        items.push(TransactWriteItem::builder().update(target).build());
        Ok(self.transact(items, "grant merge").await?.is_ok())
    }

    async fn dispute_grant(
        &self,
        account: &AccountId,
        grant: &str,
        step: DisputeStep,
        entry: Option<&LedgerEntry>,
    ) -> Result<bool, StoreError> {
        let update = self.grant_update(account, grant);
        let update = match step {
            DisputeStep::Freeze { seen } => update
                .update_expression("SET frozen = :seen, remaining = :zero")
                .condition_expression(
                    "remaining = :seen AND attribute_not_exists(frozen) AND attribute_not_exists(reversed) \
                     AND attribute_not_exists(dispute_closed)",
                )
                .expression_attribute_values(":seen", n(seen))
                .expression_attribute_values(":zero", n(0)),
            DisputeStep::Release { frozen } => update
                .update_expression("SET remaining = remaining + :frozen, dispute_closed = :true REMOVE frozen")
                .condition_expression("frozen = :frozen")
                .expression_attribute_values(":frozen", n(frozen))
                .expression_attribute_values(":true", AttributeValue::Bool(true)),
            DisputeStep::Forfeit { frozen } => update
                .update_expression("SET reversed = :true, dispute_closed = :true REMOVE frozen")
                .condition_expression("frozen = :frozen")
                .expression_attribute_values(":frozen", n(frozen))
                .expression_attribute_values(":true", AttributeValue::Bool(true)),
            DisputeStep::Closed => update
                .update_expression("SET dispute_closed = :true")
                .condition_expression("attribute_exists(pk) AND attribute_not_exists(frozen)")
                .expression_attribute_values(":true", AttributeValue::Bool(true)),
        };
        let mut items =
            vec![TransactWriteItem::builder().update(update.build().expect("table, key and update are set")).build()];
        if let Some(entry) = entry {
            items.push(self.entry_put(account, entry)?);
        }
        match self.transact(items, "grant dispute").await? {
            Ok(()) => Ok(true),
            Err(failed) if failed.first() == Some(&true) => Ok(false),
            // Its entry exists: the step was taken before.
            Err(_) => Ok(false),
        }
    }

    async fn mark_refunded(&self, account: &AccountId, key: &str) -> Result<(), StoreError> {
        let mark = self
            .update(keys::credit_request(account, key), keys::IDEMPOTENCY.to_owned())
            .update_expression("SET refunded = :true")
            .condition_expression(IS_STORED)
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .build()
            .expect("table, key and update are set");
        match self.update_alone(mark, "spend record gone").await {
            Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(err) => Err(err),
        }
    }

    async fn credit_record(&self, account: &AccountId, key: &str) -> Result<Option<CreditRecord>, StoreError> {
        self.get(keys::credit_request(account, key), keys::IDEMPOTENCY).await
    }

    async fn ledger(&self, account: &AccountId, limit: usize, after: Option<&str>) -> Result<LedgerPage, StoreError> {
        let (entries, next) = self.newest_first(&keys::account(account), keys::LEDGER_PREFIX, limit, after).await?;
        Ok(LedgerPage { entries, next })
    }
}
