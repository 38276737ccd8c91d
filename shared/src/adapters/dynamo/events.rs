//! The DynamoDB adapter of [`EventLog`]: an event's record and its effect in one transaction, the record only if new.

use super::{DynamoStore, IS_NEW, IS_SAME_REVISION, Keyed, to_item};
use crate::domain::facts::Facts;
use crate::domain::model::AccountId;
use crate::ports::StoreError;
use crate::ports::events::{ApplyOutcome, Effect, EventLog, FailedEvent, FailurePage, ProcessedEvent};
use crate::ports::keys;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

/// Positions, within one transaction, of the items an event's effect adds after its record.
#[derive(Default)]
struct EffectItems {
    projection: Option<usize>,
    facts: Option<usize>,
    link: Option<usize>,
}

impl DynamoStore {
    fn event_put(&self, event: &ProcessedEvent) -> Result<Put, StoreError> {
        let mut keyed = Keyed::new(keys::event(&event.event_id), keys::EVENT, event);
        keyed.expires_at = Some(crate::ports::events::record_expiry(event.processed_at));
        Ok(self.put(to_item(&keyed)?, IS_NEW))
    }

    fn facts_put(&self, account: &AccountId, facts: &Facts) -> Result<Put, StoreError> {
        let next = Facts { rev: facts.rev.saturating_add(1), ..facts.clone() };
        let item = to_item(&Keyed::new(keys::account(account), keys::FACTS, &next))?;
        Ok(Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(IS_SAME_REVISION)
            .expression_attribute_values(":rev", AttributeValue::N(facts.rev.to_string()))
            .build()
            .expect("table, item and condition are set"))
    }

    /// The record of `event` and the items of `effect` (the projection only when
    /// `with_projection`), with the positions of the effect's items.
    fn event_items(
        &self,
        event: &ProcessedEvent,
        effect: Option<&Effect<'_>>,
        with_projection: bool,
    ) -> Result<(Vec<TransactWriteItem>, EffectItems), StoreError> {
        let put = |p: Put| TransactWriteItem::builder().put(p).build();
        let mut items = vec![put(self.event_put(event)?)];
        let mut at = EffectItems::default();
        if let Some(effect) = effect {
            // A retired customer's effect is facts only, whatever the caller passed.
            if let Some(projection) = effect.projection.filter(|_| with_projection && !effect.retired) {
                at.projection = Some(items.len());
                items.push(put(self.subscription_put(projection)?));
            }
            if let Some(facts) = effect.facts {
                at.facts = Some(items.len());
                items.push(put(self.facts_put(effect.account, facts)?));
            }
            if items.len() > 1 {
                at.link = Some(items.len());
                items.push(self.linked(effect.account, effect.customer, effect.retired));
            }
        }
        Ok((items, at))
    }
}

#[async_trait]
impl EventLog for DynamoStore {
    async fn apply(&self, event: &ProcessedEvent, effect: Option<Effect<'_>>) -> Result<ApplyOutcome, StoreError> {
        let (items, at) = self.event_items(event, effect.as_ref(), true)?;
        let failed = match self.transact(items, "event already processed").await? {
            Ok(()) => return Ok(ApplyOutcome::Applied),
            Err(failed) => failed,
        };
        let lost = |position: Option<usize>| position.is_some_and(|p| failed.get(p) == Some(&true));
        if failed.first() == Some(&true) {
            return Ok(ApplyOutcome::Duplicate);
        }
        if lost(at.link) {
            // The customer was retired meanwhile: the event counts as processed, with no effect.
            let (items, _) = self.event_items(event, None, false)?;
            return match self.transact(items, "event already processed").await? {
                Ok(()) => Ok(ApplyOutcome::Unlinked),
                Err(_) => Ok(ApplyOutcome::Duplicate),
            };
        }
        if lost(at.facts) {
            return Err(StoreError::Conflict("facts changed"));
        }
        // Only the projection lost, to a newer one: an older truth. The event still counts as
        // processed, so it is recorded (with its facts) without it.
        let (items, at) = self.event_items(event, effect.as_ref(), false)?;
        match self.transact(items, "event already processed").await? {
            Ok(()) => Ok(ApplyOutcome::Stale),
            Err(failed) if failed.first() == Some(&true) => Ok(ApplyOutcome::Duplicate),
            Err(failed) if at.link.is_some_and(|p| failed.get(p) == Some(&true)) => {
                Err(StoreError::Conflict("customer unlinked"))
            }
            Err(_) => Err(StoreError::Conflict("facts changed")),
        }
    }

    async fn processed(&self, event_id: &str) -> Result<Option<ProcessedEvent>, StoreError> {
        self.get(keys::event(event_id), keys::EVENT).await
    }

    async fn record_failure(&self, failure: &FailedEvent) -> Result<(), StoreError> {
        let earlier: Option<FailedEvent> = self.failure(&failure.id).await?;
        let expires_at = Some(crate::ports::events::record_expiry(failure.failed_at));
        let put = |pk: String, sk: &str| -> Result<TransactWriteItem, StoreError> {
            let mut keyed = Keyed::new(pk, sk, failure);
            keyed.expires_at = expires_at;
            let put = Put::builder().table_name(&self.table).set_item(Some(to_item(&keyed)?)).build();
            Ok(TransactWriteItem::builder().put(put.expect("table and item are set")).build())
        };
        let listing = keys::failure_listing(failure.failed_at, &failure.id);
        let mut items =
            vec![put(keys::failure(&failure.id), keys::FAILURE)?, put(keys::FAILURES.to_owned(), &listing)?];
        if let Some(earlier) = earlier.map(|e| keys::failure_listing(e.failed_at, &e.id)).filter(|e| *e != listing) {
            items.push(self.delete(keys::FAILURES.to_owned(), &earlier));
        }
        self.transact(items, "record failure").await?.map_err(|_| StoreError::Conflict("record failure"))
    }

    async fn failure(&self, id: &str) -> Result<Option<FailedEvent>, StoreError> {
        self.get(keys::failure(id), keys::FAILURE).await
    }

    async fn failures(&self, limit: usize, after: Option<&str>) -> Result<FailurePage, StoreError> {
        let (failures, next) = self.newest_first(keys::FAILURES, keys::FAILURE_LISTING, limit, after).await?;
        Ok(FailurePage { failures, next })
    }

    async fn resolve_failure(&self, id: &str) -> Result<(), StoreError> {
        let Some(failure) = self.failure(id).await? else { return Ok(()) };
        let items = vec![
            self.delete(keys::failure(id), keys::FAILURE),
            self.delete(keys::FAILURES.to_owned(), &keys::failure_listing(failure.failed_at, id)),
        ];
        self.transact(items, "resolve failure").await?.map_err(|_| StoreError::Conflict("resolve failure"))
    }
}
