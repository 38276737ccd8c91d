//! The in-memory [`CreditStore`], with the contracts of the DynamoDB one: one lock is one
//! transaction.

use super::MemoryStore;
use crate::domain::credits::Grant;
use crate::domain::model::AccountId;
use crate::ports::StoreError;
use crate::ports::credits::{
    CreditRecord, CreditRefund, CreditStore, DisputeStep, GrantWrite, LedgerEntry, LedgerPage, Spend, Spent,
};
use crate::ports::keys;
use async_trait::async_trait;

#[async_trait]
impl CreditStore for MemoryStore {
    async fn grant(&self, account: &AccountId, grant: &Grant, entry: &LedgerEntry) -> Result<bool, StoreError> {
        let mut tables = self.lock();
        let grants = tables.grants.entry(account.clone()).or_default();
        if grants.contains_key(&grant.id) {
            return Ok(false);
        }
        grants.insert(grant.id.clone(), grant.clone());
        tables.ledger.entry(account.clone()).or_default().insert(keys::ledger(entry), entry.clone());
        Ok(true)
    }

    async fn grant_to_linked(
        &self,
        account: &AccountId,
        grant: &Grant,
        entry: &LedgerEntry,
    ) -> Result<GrantWrite, StoreError> {
        let mut tables = self.lock();
        if !tables.accounts.contains_key(account) {
            return Ok(GrantWrite::NotLinked);
        }
        let grants = tables.grants.entry(account.clone()).or_default();
        if grants.contains_key(&grant.id) {
            return Ok(GrantWrite::Exists);
        }
        grants.insert(grant.id.clone(), grant.clone());
        tables.ledger.entry(account.clone()).or_default().insert(keys::ledger(entry), entry.clone());
        Ok(GrantWrite::Written)
    }

    async fn extend_grant(&self, account: &AccountId, id: &str, until: i64) -> Result<bool, StoreError> {
        let mut tables = self.lock();
        let grant = tables.grants.get_mut(account).and_then(|grants| grants.get_mut(id));
        match grant {
            Some(grant) if grant.expires_at.is_some_and(|end| end < until) => {
                grant.expires_at = Some(until);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn spend(&self, s: &Spend<'_>) -> Result<Spent, StoreError> {
        let mut tables = self.lock();
        match tables.spends_left {
            Some(0) => return Err(StoreError::Unavailable("spends fail (a test's injection)".into())),
            Some(left) => tables.spends_left = Some(left - 1),
            None => {}
        }
        let master_key = (s.account.clone(), s.key.to_owned(), None);
        let record_key = (s.account.clone(), s.key.to_owned(), s.part.map(|p| p.index));
        if let Some(part) = s.part {
            let master = tables.credit_records.get(&master_key);
            let expected = match part.index {
                0 => master.is_none(),
                index => master.is_some_and(|m| !m.refunded && m.split.is_some_and(|split| split.parts == index)),
            };
            if !expected || tables.credit_records.contains_key(&record_key) {
                return Ok(Spent::Contended);
            }
        } else if let Some(earlier) = tables.credit_records.get(&record_key) {
            return Ok(Spent::Replayed(earlier.clone()));
        }
        let grants = tables.grants.entry(s.account.clone()).or_default();
        let holds = s.record.draws.iter().all(|d| {
            let seen = s.exact.and_then(|read| read.iter().find(|g| g.id == d.grant)).map(|g| g.remaining);
            grants.get(&d.grant).is_some_and(|g| {
                g.live(s.now) && g.remaining >= d.credits && seen.is_none_or(|seen| seen == g.remaining)
            })
        });
        if !holds {
            return Ok(Spent::Contended);
        }
        for draw in &s.record.draws {
            if let Some(g) = grants.get_mut(&draw.grant) {
                g.remaining -= draw.credits;
            }
        }
        tables.ledger.entry(s.account.clone()).or_default().insert(keys::ledger(s.entry), s.entry.clone());
        tables.credit_records.insert(record_key, s.record.clone());
        if let Some(part) = s.part {
            tables.credit_records.insert(master_key, part.master.clone());
        }
        Ok(Spent::Done)
    }

    async fn refund_credits(
        &self,
        account: &AccountId,
        key: &str,
        part: Option<u32>,
        at_ms: i64,
        actor: &str,
    ) -> Result<CreditRefund, StoreError> {
        let mut tables = self.lock();
        let record_key = (account.clone(), key.to_owned(), part);
        let Some(record) = tables.credit_records.get(&record_key).cloned() else {
            return Ok(CreditRefund::Unknown);
        };
        if record.refunded {
            return Ok(CreditRefund::AlreadyRefunded(record));
        }
        let grants = tables.grants.entry(account.clone()).or_default();
        if !record.draws.iter().all(|d| grants.contains_key(&d.grant)) {
            return Err(StoreError::Conflict("a grant of this consumption is gone"));
        }
        let mut withheld = 0;
        for draw in &record.draws {
            match grants.get_mut(&draw.grant) {
                Some(g) if g.reversed => withheld += draw.credits,
                Some(g) if g.frozen.is_some() => g.frozen = g.frozen.map(|f| f + draw.credits),
                Some(g) => g.remaining += draw.credits,
                None => {}
            }
        }
        let entry = record.refund_entry(at_ms, actor, withheld);
        tables.ledger.entry(account.clone()).or_default().insert(keys::ledger(&entry), entry);
        let refunded = CreditRecord { refunded: true, ..record };
        tables.credit_records.insert(record_key, refunded.clone());
        Ok(CreditRefund::Refunded(refunded))
    }

    async fn mark_refunded(&self, account: &AccountId, key: &str) -> Result<(), StoreError> {
        if let Some(record) = self.lock().credit_records.get_mut(&(account.clone(), key.to_owned(), None)) {
            record.refunded = true;
        }
        Ok(())
    }

    async fn reverse_grant(
        &self,
        account: &AccountId,
        grant: &str,
        seen: u64,
        entry: &LedgerEntry,
    ) -> Result<bool, StoreError> {
        let mut tables = self.lock();
        let ledger_key = keys::ledger(entry);
        if tables.ledger.get(account).is_some_and(|l| l.contains_key(&ledger_key)) {
            return Err(StoreError::Conflict("this grant was reversed already"));
        }
        let Some(g) = tables.grants.get_mut(account).and_then(|g| g.get_mut(grant)).filter(|g| g.remaining == seen)
        else {
            return Ok(false);
        };
        g.remaining = 0;
        g.reversed = true;
        tables.ledger.entry(account.clone()).or_default().insert(ledger_key, entry.clone());
        Ok(true)
    }

    async fn merge_grants(&self, account: &AccountId, into: &str, from: &[(String, u64)]) -> Result<bool, StoreError> {
        let mut tables = self.lock();
        let Some(grants) = tables.grants.get_mut(account) else { return Ok(false) };
        let alike = |g: &Grant| !g.reversed && g.frozen.is_none();
        let from = &from[..from.len().min(crate::ports::credits::MAX_MERGED)];
        let valid = grants.get(into).is_some_and(alike)
            && from.iter().all(|(id, seen)| grants.get(id).is_some_and(|g| alike(g) && g.remaining == *seen));
        if !valid {
            return Ok(false);
        }
        let mut moved = 0;
        for (id, seen) in from {
            if let Some(g) = grants.get_mut(id) {
                g.remaining = 0;
                moved += seen;
            }
        }
        if let Some(target) = grants.get_mut(into) {
            target.remaining += moved;
        }
        Ok(true)
    }

    async fn dispute_grant(
        &self,
        account: &AccountId,
        grant: &str,
        step: DisputeStep,
        entry: Option<&LedgerEntry>,
    ) -> Result<bool, StoreError> {
        let mut tables = self.lock();
        if let Some(entry) = entry
            && tables.ledger.get(account).is_some_and(|l| l.contains_key(&keys::ledger(entry)))
        {
            return Ok(false);
        }
        let Some(g) = tables.grants.get_mut(account).and_then(|g| g.get_mut(grant)) else { return Ok(false) };
        match step {
            DisputeStep::Freeze { seen } => {
                if g.remaining != seen || g.frozen.is_some() || g.reversed || g.dispute_closed {
                    return Ok(false);
                }
                g.frozen = Some(seen);
                g.remaining = 0;
            }
            DisputeStep::Release { frozen } | DisputeStep::Forfeit { frozen } => {
                if g.frozen != Some(frozen) {
                    return Ok(false);
                }
                g.frozen = None;
                g.dispute_closed = true;
                match step {
                    DisputeStep::Release { .. } => g.remaining += frozen,
                    _ => g.reversed = true,
                }
            }
            DisputeStep::Closed => {
                if g.frozen.is_some() {
                    return Ok(false);
                }
                g.dispute_closed = true;
            }
        }
        if let Some(entry) = entry {
            tables.ledger.entry(account.clone()).or_default().insert(keys::ledger(entry), entry.clone());
        }
        Ok(true)
    }

    async fn credit_record(&self, account: &AccountId, key: &str) -> Result<Option<CreditRecord>, StoreError> {
        Ok(self.lock().credit_records.get(&(account.clone(), key.to_owned(), None)).cloned())
    }

    async fn ledger(&self, account: &AccountId, limit: usize, after: Option<&str>) -> Result<LedgerPage, StoreError> {
        let tables = self.lock();
        let Some(ledger) = tables.ledger.get(account) else { return Ok(LedgerPage::default()) };
        let after = after.filter(|sk| sk.starts_with(keys::LEDGER_PREFIX));
        let mut newest_first = ledger.iter().rev().filter(|(sk, _)| after.is_none_or(|a| sk.as_str() < a));
        let entries: Vec<(&String, &LedgerEntry)> = newest_first.by_ref().take(limit).collect();
        let more = newest_first.next().is_some();
        Ok(LedgerPage {
            next: entries.last().map(|(sk, _)| (*sk).clone()).filter(|_| more),
            entries: entries.into_iter().map(|(_, e)| e.clone()).collect(),
        })
    }
}
