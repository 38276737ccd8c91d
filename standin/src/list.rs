//! Stripe list answers: newest first (by `created`, then by creation order within a second),
//! cursor pagination with `limit`, `starting_after` and `ending_before`.

use serde_json::{Value, json};

use super::error::ApiError;
use super::params::Params;

/// One listable object and its creation sequence number.
pub(crate) struct Entry<'a> {
    pub(crate) seq: u64,
    pub(crate) value: &'a Value,
}

fn created(value: &Value) -> i64 {
    value["created"].as_i64().unwrap_or_default()
}

/// A page of `entries` (every object of the resource, whether or not `keep` selects it, so a
/// cursor may name an object outside the filter).
pub(crate) fn page<'a>(
    mut entries: Vec<Entry<'a>>,
    keep: impl Fn(&Value) -> bool,
    params: &Params,
    url: &str,
    resource: &str,
) -> Result<Value, ApiError> {
    let limit = params.int(&["limit"])?.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid_value("limit", format!("Invalid limit: {limit}. Must be between 1 and 100.")));
    }
    let limit = usize::try_from(limit).expect("limit is positive");
    let starting_after = params.get(&["starting_after"]).filter(|v| !v.is_empty());
    let ending_before = params.get(&["ending_before"]).filter(|v| !v.is_empty());
    if starting_after.is_some() && ending_before.is_some() {
        return Err(ApiError::invalid_state(
            "You may only specify one of these parameters: ending_before, starting_after.",
        ));
    }

    entries.sort_by(|a, b| created(b.value).cmp(&created(a.value)).then_with(|| b.seq.cmp(&a.seq)));
    let position = |cursor: &str, param: &str| {
        entries
            .iter()
            .position(|entry| entry.value["id"].as_str() == Some(cursor))
            .ok_or_else(|| ApiError::no_such_param(resource, cursor, param))
    };
    let selected: Vec<(usize, &Value)> = entries
        .iter()
        .enumerate()
        .filter(|(_, entry)| keep(entry.value))
        .map(|(index, entry)| (index, entry.value))
        .collect();

    let (data, has_more): (Vec<&Value>, bool) = if let Some(cursor) = ending_before {
        let at = position(cursor, "ending_before")?;
        let before: Vec<&Value> = selected.iter().filter(|(index, _)| *index < at).map(|(_, v)| *v).collect();
        let start = before.len().saturating_sub(limit);
        (before[start..].to_vec(), start > 0)
    } else {
        let at = match starting_after {
            Some(cursor) => Some(position(cursor, "starting_after")?),
            None => None,
        };
        let after: Vec<&Value> =
            selected.iter().filter(|(index, _)| at.is_none_or(|at| *index > at)).map(|(_, v)| *v).collect();
        (after.iter().take(limit).copied().collect(), after.len() > limit)
    };

    Ok(json!({
        "object": "list",
        "url": url,
        "has_more": has_more,
        "data": data,
    }))
}
