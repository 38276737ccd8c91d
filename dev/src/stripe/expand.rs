//! The `expand[]` parameter: replaces id fields (`customer`, `subscription`, `price`,
//! `product`, `latest_invoice`, `charge`, ...) with the objects they name, following dotted paths through nested objects
//! and arrays (`data.customer` on lists, `items.data.price.product` on subscriptions).

use serde_json::Value;

use super::error::ApiError;
use super::objects;
use super::state::State;

const EXPANDABLE: [&str; 15] = [
    "customer",
    "charge",
    "subscription",
    "price",
    "product",
    "latest_invoice",
    "invoice",
    "payment_intent",
    "setup_intent",
    "default_payment_method",
    "default_source",
    "pending_setup_intent",
    "schedule",
    "test_clock",
    "configuration",
];

fn cannot_expand(path: &str) -> ApiError {
    ApiError::invalid_value("expand", format!("This property cannot be expanded ({path})."))
}

/// Expands every path of `paths` in `value` (a single object, or a list whose paths must start
/// with `data.`).
pub(crate) fn apply(state: &State, value: &mut Value, paths: &[String]) -> Result<(), ApiError> {
    let is_list = value["object"] == "list";
    for path in paths {
        let segments: Vec<&str> = path.split('.').collect();
        if segments.len() > 4 {
            return Err(ApiError::invalid_value(
                "expand",
                format!("You cannot expand more than 4 levels of a property ({path})."),
            ));
        }
        if is_list {
            if segments.first() != Some(&"data") || segments.len() < 2 {
                return Err(cannot_expand(path));
            }
            if let Some(items) = value["data"].as_array_mut() {
                for item in items {
                    expand_path(state, item, &segments[1..], path)?;
                }
            }
        } else {
            expand_path(state, value, &segments, path)?;
        }
    }
    Ok(())
}

fn expand_path(state: &State, value: &mut Value, segments: &[&str], full: &str) -> Result<(), ApiError> {
    let Some((first, rest)) = segments.split_first() else {
        return Ok(());
    };
    let Some(field) = value.get_mut(*first) else {
        return Err(cannot_expand(full));
    };
    if rest.is_empty() {
        return expand_field(state, first, field, full);
    }
    if field.is_string() {
        expand_field(state, first, field, full)?;
    }
    match field {
        Value::Array(items) => {
            for item in items {
                expand_path(state, item, rest, full)?;
            }
            Ok(())
        }
        Value::Object(_) => expand_path(state, field, rest, full),
        Value::Null => Ok(()),
        _ => Err(cannot_expand(full)),
    }
}

fn expand_field(state: &State, name: &str, field: &mut Value, full: &str) -> Result<(), ApiError> {
    if !EXPANDABLE.contains(&name) {
        return Err(cannot_expand(full));
    }
    let Some(id) = field.as_str() else {
        return Ok(());
    };
    let resolved = if id.starts_with("cus_") {
        state.customer(id).map(|c| if c.deleted { objects::deleted_customer(id) } else { c.value.clone() })
    } else if id.starts_with("sub_") {
        state.subscription(id).cloned()
    } else if id.starts_with("price_") {
        state.price(id).cloned()
    } else if id.starts_with("prod_") {
        state.product(id).cloned()
    } else if id.starts_with("cs_") {
        state.session(id).map(|s| s.stored.value.clone())
    } else if id.starts_with("in_") {
        state.invoice(id).cloned()
    } else if id.starts_with("ch_") {
        state.charge(id).cloned()
    } else {
        None
    };
    if let Some(object) = resolved {
        *field = object;
    }
    Ok(())
}
