//! The single table's keys. Every item has a partition key `pk` and a sort key `sk`; the
//! account id never contains `#` (see `AccountId::parse`), so no key can forge another.

use crate::model::AccountId;

pub const PROFILE: &str = "PROFILE";
pub const SUBSCRIPTION: &str = "SUBSCRIPTION";
pub const CUSTOMER_ACCOUNT: &str = "ACCOUNT";
pub const EVENT: &str = "EVENT";
pub const FACTS: &str = "FACTS";

pub fn account(id: &AccountId) -> String {
    format!("ACCOUNT#{id}")
}

pub fn customer(customer_id: &str) -> String {
    format!("CUSTOMER#{customer_id}")
}

pub fn event(event_id: &str) -> String {
    format!("EVENT#{event_id}")
}

pub fn checkout(request_key: &str) -> String {
    format!("CHECKOUT#{request_key}")
}

pub fn rate(name: &str) -> String {
    format!("RATE#{name}")
}

pub const SYNC: &str = "SYNC";
pub const SYNC_CURSOR: &str = "CURSOR#events";
pub const SYNC_OUTCOME: &str = "OUTCOME";
