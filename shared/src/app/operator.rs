//! What the operator (the product's backend, on the IAM routes) reads of one account for
//! support: its subscription and access, its usage, its credits with who wrote each ledger
//! entry, and its API keys, in one answer. The writes of the operator routes are the metering
//! use cases' ([`crate::app::usage`], [`crate::app::credits`]).

use crate::app::Settings;
use crate::app::credits::{CreditError, CreditsAnswer, LedgerQuery, Reader, credits};
use crate::app::keys::{KeyView, keys_of};
use crate::app::read::{SubscriptionRead, subscription};
use crate::domain::model::AccountId;
use crate::domain::usage::UsageReport;
use crate::ports::api_keys::ApiKeyStore;
use crate::ports::credits::CreditStore;
use crate::ports::subscriptions::SubscriptionStore;
use serde::Serialize;

/// `GET /operator/accounts/{account_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OperatorAccount {
    pub account_id: String,
    /// As `GET /subscription` answers it.
    pub subscription: SubscriptionRead,
    /// As `GET /usage` answers it.
    pub usage: UsageReport,
    /// As `GET /credits` answers it (the page `limit` and `cursor` ask for), with each ledger
    /// entry's `actor`.
    pub credits: CreditsAnswer,
    /// As `GET /api-keys` lists them.
    pub keys: Vec<KeyView>,
}

/// The support read of `account`, with the page `ledger` of its credit ledger: an account never
/// seen reads as an account on Free.
pub async fn account<S>(
    store: &S,
    settings: &Settings,
    account: &AccountId,
    ledger: LedgerQuery,
) -> Result<OperatorAccount, CreditError>
where
    S: SubscriptionStore + CreditStore + ApiKeyStore,
{
    let subscription = subscription(store, settings, account).await?;
    let credits = credits(store, settings, account, ledger, Reader::Operator).await?;
    let keys = keys_of(store, account, settings.clock.now()).await?.keys;
    Ok(OperatorAccount {
        account_id: account.to_string(),
        usage: subscription.usage.clone(),
        subscription,
        credits,
        keys,
    })
}
