//! Adopting a Stripe account Tollgate did not make: which customer becomes which account, and
//! what stops it. Its request, its report, and the rule that sorts each customer
//! ([`classify`]): linked, unmapped, or a conflict (never a silent pick, never a relink).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most entries of the request's `map` (a larger account is mapped by its metadata, or in
/// several adoptions).
pub const MAX_MAP: usize = 1_000;
/// Longest customer id a map names (Stripe's are `cus_` and about 14 letters and digits).
pub const MAX_CUSTOMER_ID: usize = 64;

/// Whether `id` can be a Stripe customer id: `cus_`, then 1 to 60 letters and digits.
fn is_customer_id(id: &str) -> bool {
    id.len() <= MAX_CUSTOMER_ID
        && id
            .strip_prefix("cus_")
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// [`is_customer_id`] as a regular expression (the API's contract).
pub const CUSTOMER_ID_PATTERN: &str = "^cus_[A-Za-z0-9]{1,60}$";

/// What an adoption is asked to do (`POST /operator/adoption`, the sync's `{"mode": "adopt"}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdoptionRequest {
    /// Link and write (without it: a dry run that changes nothing).
    #[serde(default)]
    pub apply: bool,
    /// The customer metadata key holding the account id (default `ADOPT_METADATA_KEY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_key: Option<String>,
    /// `[customer id, account id]` pairs; a customer mapped here is not read from metadata.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub map: Vec<(String, String)>,
    /// Writes `tollgate_account_id` onto each adopted customer, so later events link alone.
    #[serde(default)]
    pub write_metadata: bool,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidAdoption(pub String);

impl AdoptionRequest {
    /// Checks the request: a metadata key of 1 to 40 characters (Stripe's limit), a map of at
    /// most [`MAX_MAP`] pairs of a customer id and a valid account id, each customer once.
    pub fn validate(&self) -> Result<(), InvalidAdoption> {
        if let Some(key) = &self.metadata_key
            && !(1..=40).contains(&key.chars().count())
        {
            return Err(InvalidAdoption("`metadata_key` must be 1 to 40 characters".into()));
        }
        if self.map.len() > MAX_MAP {
            return Err(InvalidAdoption(format!("`map` holds at most {MAX_MAP} pairs")));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (customer, account) in &self.map {
            if !is_customer_id(customer) {
                return Err(InvalidAdoption(format!("`map`: {customer:?} is not a customer id (cus_...)")));
            }
            if crate::domain::model::AccountId::parse(account).is_err() {
                return Err(InvalidAdoption(format!("`map`: {account:?} is not a valid account id")));
            }
            if !seen.insert(customer) {
                return Err(InvalidAdoption(format!("`map`: {customer} is mapped twice")));
            }
        }
        Ok(())
    }
}

/// A customer that would be (or was) linked, with what it then has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LinkEntry {
    pub customer_id: String,
    pub account_id: String,
    pub plan: String,
    /// The subscription's status (`null` without one).
    pub status: Option<String>,
    /// The access decision's reason (`active`, `disputed`, ...).
    pub access: String,
}

/// A customer no account was found for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnmappedEntry {
    pub customer_id: String,
}

/// Why a customer is not linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ConflictReason {
    /// Two customers name the same account.
    ClaimedTwice,
    /// The customer is linked to another account, or the account to another customer.
    LinkedElsewhere,
    /// The customer was retired (deleted in Stripe, or its account deleted).
    Retired,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConflictEntry {
    pub customer_id: String,
    pub account_id: String,
    pub reason: ConflictReason,
}

/// A subscription on a price that is not in `plans.toml` (its customer is not linked: it
/// would otherwise read as Free).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnmappedPrice {
    pub customer_id: String,
    pub subscription_id: String,
    pub price_id: String,
    pub lookup_key: Option<String>,
}

/// What an adoption found (a dry run) or did (`apply`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdoptionReport {
    pub link: Vec<LinkEntry>,
    pub unmapped: Vec<UnmappedEntry>,
    pub conflicts: Vec<ConflictEntry>,
    pub unmapped_prices: Vec<UnmappedPrice>,
    /// Stripe API calls made.
    pub stripe_calls: u64,
}

/// What one customer came to: its entry in the report. An adoption stores one per customer (a
/// report of thousands of customers outgrows one item), in the order sorted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Sorted {
    Link(LinkEntry),
    Unmapped(UnmappedEntry),
    Conflict(ConflictEntry),
    Prices { prices: Vec<UnmappedPrice> },
}

impl Sorted {
    /// The customer the entry is about.
    pub fn customer_id(&self) -> &str {
        match self {
            Self::Link(link) => &link.customer_id,
            Self::Unmapped(unmapped) => &unmapped.customer_id,
            Self::Conflict(conflict) => &conflict.customer_id,
            Self::Prices { prices } => prices.first().map_or("", |p| p.customer_id.as_str()),
        }
    }
}

impl AdoptionReport {
    /// The report of `sorted`, in order, and `stripe_calls`.
    pub fn of(sorted: impl IntoIterator<Item = Sorted>, stripe_calls: u64) -> Self {
        let mut report = Self { stripe_calls, ..Self::default() };
        for entry in sorted {
            match entry {
                Sorted::Link(link) => report.link.push(link),
                Sorted::Unmapped(unmapped) => report.unmapped.push(unmapped),
                Sorted::Conflict(conflict) => report.conflicts.push(conflict),
                Sorted::Prices { prices } => report.unmapped_prices.extend(prices),
            }
        }
        report
    }
}

/// Where an adoption is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AdoptionState {
    Running,
    Done,
    Failed,
}

/// An adoption and its progress, saved after every customer so a run cut off resumes; its
/// report's entries are stored apart, one per customer ([`Sorted`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adoption {
    /// Names its entries (its start, in milliseconds).
    pub id: String,
    pub state: AdoptionState,
    pub request: AdoptionRequest,
    /// Stripe API calls made so far.
    pub stripe_calls: u64,
    /// Customers sorted so far, of `total`.
    pub done: u64,
    pub total: u64,
    /// The last customer sorted (a run resumes with the customers it has no entry for).
    pub after: Option<String>,
    pub started_at: i64,
    pub error: Option<String>,
}

/// The account a customer names: the request's map first, then the metadata key's value, then
/// Tollgate's own [`crate::domain::events::ACCOUNT_METADATA_KEY`] (a customer Tollgate made).
pub fn claimed_account(
    customer: &str,
    metadata: &BTreeMap<String, String>,
    map: &BTreeMap<&str, &str>,
    metadata_key: Option<&str>,
) -> Option<String> {
    if let Some(account) = map.get(customer) {
        return Some((*account).to_owned());
    }
    [metadata_key, Some(crate::domain::events::ACCOUNT_METADATA_KEY)]
        .into_iter()
        .flatten()
        .filter_map(|key| metadata.get(key).map(|v| v.trim()))
        .find(|value| crate::domain::model::AccountId::parse(value).is_ok())
        .map(str::to_owned)
}

/// What the store says of a customer and its claimed account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Neither is linked: the customer can be linked.
    Free,
    /// They are linked to each other already (a second run): linking again changes nothing.
    Linked,
    /// The customer is linked to another account, or the account to another customer.
    Elsewhere,
    /// The customer was retired.
    Retired,
}

/// Sorts one customer whose claimed account is claimed by `claims` customers in all: `Ok`
/// when it may be linked (or is already, whoever else claims its account), else the
/// conflict's reason.
pub fn classify(claims: usize, standing: Standing) -> Result<(), ConflictReason> {
    match standing {
        Standing::Retired => Err(ConflictReason::Retired),
        Standing::Elsewhere => Err(ConflictReason::LinkedElsewhere),
        Standing::Linked => Ok(()),
        Standing::Free if claims > 1 => Err(ConflictReason::ClaimedTwice),
        Standing::Free => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_comes_before_metadata_and_an_invalid_account_id_is_no_claim() {
        let metadata = BTreeMap::from([("user_id".to_owned(), "u_1".to_owned()), ("bad".to_owned(), "a#b".to_owned())]);
        let map = BTreeMap::from([("cus_mapped", "acct_map")]);

        assert_eq!(claimed_account("cus_mapped", &metadata, &map, Some("user_id")), Some("acct_map".into()));
        assert_eq!(claimed_account("cus_x", &metadata, &map, Some("user_id")), Some("u_1".into()));
        assert_eq!(claimed_account("cus_x", &metadata, &map, Some("bad")), None);
        assert_eq!(claimed_account("cus_x", &metadata, &map, None), None);
        let made = BTreeMap::from([("tollgate_account_id".to_owned(), "acct_t".to_owned())]);
        assert_eq!(claimed_account("cus_t", &made, &map, Some("user_id")), Some("acct_t".into()), "Tollgate's own");
    }

    #[test]
    fn a_conflict_is_never_a_pick_and_a_link_is_never_moved() {
        assert_eq!(classify(1, Standing::Free), Ok(()));
        assert_eq!(classify(1, Standing::Linked), Ok(()));
        assert_eq!(classify(2, Standing::Linked), Ok(()), "the link stands, whoever else claims its account");
        assert_eq!(classify(2, Standing::Free), Err(ConflictReason::ClaimedTwice));
        assert_eq!(classify(1, Standing::Elsewhere), Err(ConflictReason::LinkedElsewhere));
        assert_eq!(classify(3, Standing::Retired), Err(ConflictReason::Retired));
    }

    #[test]
    fn a_request_names_customers_once_with_valid_accounts() {
        let request = |map: Vec<(&str, &str)>| AdoptionRequest {
            map: map.into_iter().map(|(c, a)| (c.to_owned(), a.to_owned())).collect(),
            ..AdoptionRequest::default()
        };

        assert!(request(vec![("cus_1", "acct_1"), ("cus_2", "acct_1")]).validate().is_ok());
        assert!(request(vec![("cus_1", "acct_1"), ("cus_1", "acct_2")]).validate().is_err());
        assert!(request(vec![("1", "acct_1")]).validate().is_err());
        assert!(request(vec![("cus_", "acct_1")]).validate().is_err());
        assert!(request(vec![("cus_a.b", "acct_1")]).validate().is_err());
        assert!(request(vec![(&format!("cus_{}", "a".repeat(60)), "acct_1")]).validate().is_ok());
        assert!(request(vec![(&format!("cus_{}", "a".repeat(61)), "acct_1")]).validate().is_err());
        assert!(request(vec![("cus_1", "a#b")]).validate().is_err());
        let long = AdoptionRequest { metadata_key: Some("k".repeat(41)), ..AdoptionRequest::default() };
        assert!(long.validate().is_err());
        let parsed: AdoptionRequest =
            serde_json::from_str(r#"{"apply": true, "map": [["cus_1", "acct_1"]], "metadata_key": "user_id"}"#)
                .unwrap();
        assert_eq!(parsed.map, vec![("cus_1".to_owned(), "acct_1".to_owned())]);
        assert!(serde_json::from_str::<AdoptionRequest>(r#"{"mode": "adopt"}"#).is_err());
    }
}
