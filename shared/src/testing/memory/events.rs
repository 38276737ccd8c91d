//! The in-memory [`EventLog`], with the contracts of the DynamoDB one.

use super::{MemoryStore, newer};
use crate::domain::facts::Facts;
use crate::ports::StoreError;
use crate::ports::accounts::CustomerLink;
use crate::ports::events::{ApplyOutcome, Effect, EventLog, FailedEvent, FailurePage, ProcessedEvent};
use crate::ports::keys;
use async_trait::async_trait;

#[async_trait]
impl EventLog for MemoryStore {
    async fn apply(&self, event: &ProcessedEvent, effect: Option<Effect<'_>>) -> Result<ApplyOutcome, StoreError> {
        let mut tables = self.lock();
        if tables.events.contains_key(&event.event_id) {
            return Ok(ApplyOutcome::Duplicate);
        }
        let Some(effect) = effect.filter(|e| e.projection.is_some() || e.facts.is_some()) else {
            tables.events.insert(event.event_id.clone(), event.clone());
            return Ok(ApplyOutcome::Applied);
        };
        let link = if effect.retired {
            CustomerLink::Retired(effect.account.clone())
        } else {
            CustomerLink::Linked(effect.account.clone())
        };
        if tables.customers.get(effect.customer) != Some(&link) {
            tables.events.insert(event.event_id.clone(), event.clone());
            return Ok(ApplyOutcome::Unlinked);
        }
        // A retired customer's effect is facts only, whatever the caller passed.
        let projection = effect.projection.filter(|_| !effect.retired);
        if let Some(facts) = effect.facts {
            if tables.facts.get(effect.account).map_or(0, |f| f.rev) != facts.rev {
                return Err(StoreError::Conflict("facts changed"));
            }
            tables.facts.insert(effect.account.clone(), Facts { rev: facts.rev.saturating_add(1), ..facts.clone() });
        }
        tables.events.insert(event.event_id.clone(), event.clone());
        match projection {
            Some(p) if newer(tables.subscriptions.get(&p.account_id), p) => {
                tables.subscriptions.insert(p.account_id.clone(), p.clone());
                Ok(ApplyOutcome::Applied)
            }
            Some(_) => Ok(ApplyOutcome::Stale),
            None => Ok(ApplyOutcome::Applied),
        }
    }

    async fn processed(&self, event_id: &str) -> Result<Option<ProcessedEvent>, StoreError> {
        Ok(self.lock().events.get(event_id).cloned())
    }

    async fn record_failure(&self, failure: &FailedEvent) -> Result<(), StoreError> {
        self.lock().failures.insert(failure.id.clone(), failure.clone());
        Ok(())
    }

    async fn failure(&self, id: &str) -> Result<Option<FailedEvent>, StoreError> {
        Ok(self.lock().failures.get(id).cloned())
    }

    async fn failures(&self, limit: usize, after: Option<&str>) -> Result<FailurePage, StoreError> {
        let tables = self.lock();
        let mut listed: Vec<(String, &FailedEvent)> =
            tables.failures.values().map(|f| (keys::failure_listing(f.failed_at, &f.id), f)).collect();
        listed.sort_by(|a, b| b.0.cmp(&a.0));
        let mut rest = listed.into_iter().filter(|(sk, _)| after.is_none_or(|after| sk.as_str() < after)).peekable();
        let mut page = FailurePage::default();
        while page.failures.len() < limit {
            let Some((sk, failure)) = rest.next() else { break };
            page.failures.push(failure.clone());
            if page.failures.len() == limit && rest.peek().is_some() {
                page.next = Some(sk);
            }
        }
        Ok(page)
    }

    async fn resolve_failure(&self, id: &str) -> Result<(), StoreError> {
        self.lock().failures.remove(id);
        Ok(())
    }
}
