//! The DynamoDB adapter of [`SubscriptionStore`]: the account's state items in one query, the projection under its version condition.

use super::{DynamoStore, IS_NEWER, Item, Keyed, from_item, to_item};
use crate::domain::facts::Facts;
use crate::domain::facts::Tombstone;
use crate::domain::model::{AccountId, Projection};
use crate::ports::StoreError;
use crate::ports::accounts::Account;
use crate::ports::keys;
use crate::ports::subscriptions::{AccountState, SubscriptionStore, UsageCounter};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

/// The state items of one account, read from one query.
fn account_state(items: Vec<Item>) -> Result<AccountState, StoreError> {
    let mut state = AccountState::default();
    let mut projection: Option<Projection> = None;
    for item in items {
        let sk = match item.get("sk") {
            Some(AttributeValue::S(sk)) => sk.clone(),
            _ => continue,
        };
        match sk.as_str() {
            keys::PROFILE => state.profile = Some(from_item::<Keyed<Account>>(item)?.data),
            keys::SUBSCRIPTION => projection = Some(from_item::<Keyed<Projection>>(item)?.data),
            keys::FACTS => state.facts = from_item::<Keyed<Facts>>(item)?.data,
            keys::TOMBSTONE => state.tombstone = from_item::<Keyed<Tombstone>>(item)?.data,
            other if other.starts_with(keys::GRANT_PREFIX) => state.grants.push(super::credits::grant_from(item)?),
            other => {
                if let Some((metric, window_start)) = keys::parse_usage(other) {
                    let used = super::usage::counted(&item)?;
                    state.usage.push(UsageCounter { metric: metric.to_owned(), window_start, used });
                }
            }
        }
    }
    state.subscription = projection.map(|p| crate::domain::projection::merge(p, &state.facts, &state.tombstone));
    state.usage.sort_by(|a, b| (&a.metric, a.window_start).cmp(&(&b.metric, b.window_start)));
    Ok(state.forgetting_deleted())
}

impl DynamoStore {
    pub(super) fn subscription_put(&self, projection: &Projection) -> Result<Put, StoreError> {
        let item = to_item(&Keyed::new(keys::account(&projection.account_id), keys::SUBSCRIPTION, projection))?;
        Ok(Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(IS_NEWER)
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":version", AttributeValue::N(projection.version.to_string()))
            .build()
            .expect("table, item and condition are set"))
    }
}

#[async_trait]
impl SubscriptionStore for DynamoStore {
    async fn state(&self, account: &AccountId) -> Result<AccountState, StoreError> {
        account_state(self.query_prefix(&keys::account(account), keys::STATE_PREFIX).await?)
    }

    async fn facts(&self, account: &AccountId) -> Result<Facts, StoreError> {
        Ok(self.get(keys::account(account), keys::FACTS).await?.unwrap_or_default())
    }

    async fn put_subscription(&self, projection: &Projection) -> Result<(), StoreError> {
        let items = vec![
            TransactWriteItem::builder().put(self.subscription_put(projection)?).build(),
            self.linked(&projection.account_id, &projection.customer_id, false),
        ];
        self.transact(items, "newer projection stored")
            .await?
            .map_err(|_| StoreError::Conflict("newer projection stored, or the customer is unlinked"))
    }
}
