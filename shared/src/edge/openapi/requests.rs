//! The request bodies as the handlers validate them: every name that must be one the catalogue
//! has (plans, intervals, metrics, credit events, packs) is an enum built from `plans.toml`,
//! every scope one of [`Scope::ALL`], and every bound and length the validation's own constant.
//! The bodies are read loosely (each bad value gets its own clear `400`), so their Rust types
//! say little: these schemas are the contract, and `tests/tests/openapi.rs` holds them to the
//! handlers both ways (a value at a bound is accepted, one past it refused).

use crate::domain::apikeys::{MAX_NAME_CHARS, MAX_OVERLAP_SECONDS, Scope};
use crate::domain::plans::Catalogue;
use serde_json::json;
use utoipa::openapi::{RefOr, Schema};

/// Each request body's name and schema, from `catalogue`.
pub(super) fn schemas(catalogue: &Catalogue) -> Vec<(&'static str, RefOr<Schema>)> {
    bodies(catalogue).into_iter().map(|(name, schema)| (name, parsed(schema))).collect()
}

/// The bodies without a required field: a request may leave such a body out (an empty body
/// reads as `{}`).
pub(super) fn optional(catalogue: &Catalogue) -> Vec<&'static str> {
    bodies(catalogue).into_iter().filter(|(_, schema)| schema.get("required").is_none()).map(|(name, _)| name).collect()
}

/// Each request body's name and schema as JSON.
fn bodies(catalogue: &Catalogue) -> Vec<(&'static str, serde_json::Value)> {
    // The paid tiers, in the catalogue's order, each once (whatever the order of its prices).
    let plans: Vec<&str> = catalogue.prices().iter().fold(Vec::new(), |mut paid, price| {
        if !paid.contains(&price.tier.as_str()) {
            paid.push(price.tier.as_str());
        }
        paid
    });
    let intervals: Vec<&str> = {
        let mut all: Vec<&str> = catalogue.prices().iter().map(|p| p.interval.as_str()).collect();
        all.sort_unstable();
        all.dedup();
        all
    };
    let metrics: Vec<&str> = catalogue.metrics().map(|m| m.name.as_str()).collect();
    let events: Vec<&str> = catalogue.credits().costs.keys().map(String::as_str).collect();
    let packs: Vec<&str> = catalogue.credit_packs().iter().map(|p| p.id.as_str()).collect();
    let scopes: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();

    let key = json!({
        "type": "string", "minLength": 1, "maxLength": crate::app::usage::MAX_KEY_LEN,
        "description": "Counts the request once: a repeat answers as the first did."
    });
    let quantity = json!({"type": "integer", "minimum": 1, "maximum": crate::domain::usage::MAX_QUANTITY});
    let url = json!({
        "type": ["string", "null"],
        "description": "Must be on one of the deployment's AllowedRedirectOrigins (default, or null: the configured one)."
    });
    let usage = |key_required: bool| {
        let mut required = vec!["metric", "quantity"];
        let mut key = key.clone();
        if key_required {
            required.push("idempotency_key");
        } else {
            key["type"] = json!(["string", "null"]);
        }
        json!({
            "type": "object",
            "required": required,
            "properties": {
                "metric": {"type": "string", "enum": metrics},
                "quantity": quantity,
                "idempotency_key": key,
            }
        })
    };
    // A batch's record is decided on its own, as the single route decides it: one that is not
    // valid is answered `400` in its place while the others count, so the request constrains
    // only what it needs to be read (an object with string fields).
    let loose = |description: &str| json!({"type": ["string", "null"], "description": description});
    let record = json!({
        "type": "object",
        "description": "A consumption as UsageRequest states it, with its account; a record that is not one is \
                        answered 400 in its place (`invalid_account`, `invalid_usage`).",
        "properties": {
            "account_id": loose(&format!("Matches {}.", crate::domain::model::AccountId::PATTERN)),
            "metric": loose(&format!("One of: {}.", metrics.join(", "))),
            "quantity": {"type": ["integer", "number", "string", "boolean", "array", "object", "null"], "description": format!("An integer from 1 to {}.", crate::domain::usage::MAX_QUANTITY)},
            "idempotency_key": loose(&format!("1 to {} characters.", crate::app::usage::MAX_KEY_LEN)),
        }
    });
    let free_text = control_free();
    let bodies = [
        ("UsageRequest", usage(true)),
        ("UsageCheckRequest", usage(false)),
        (
            "BatchRequest",
            json!({
                "type": "object",
                "required": ["records"],
                "properties": {"records": {
                    "type": "array", "minItems": 1, "maxItems": crate::app::usage::MAX_BATCH, "items": record
                }}
            }),
        ),
        (
            "RefundRequest",
            json!({"type": "object", "required": ["idempotency_key"], "properties": {"idempotency_key": key}}),
        ),
        (
            "ConsumeRequest",
            json!({
                "type": "object",
                "required": ["event", "quantity", "idempotency_key"],
                "properties": {
                    "event": {"type": "string", "enum": events},
                    "quantity": quantity,
                    "idempotency_key": key,
                }
            }),
        ),
        (
            "GrantRequest",
            json!({
                "type": "object",
                "required": ["credits", "reason", "idempotency_key"],
                "properties": {
                    "credits": {"type": "integer", "minimum": 1, "maximum": crate::app::grants::MAX_MANUAL_GRANT},
                    "expires_at": {
                        "type": ["integer", "null"],
                        "description": "Unix seconds, in the future; without it the grant never expires (purchased credits)."
                    },
                    "reason": {
                        "type": "string", "minLength": 1, "maxLength": crate::app::grants::MAX_REASON_CHARS,
                        "pattern": free_text
                    },
                    "idempotency_key": key,
                }
            }),
        ),
        (
            "CreateRequest",
            json!({
                "type": "object",
                "required": ["name", "scopes"],
                "properties": {
                    "name": {
                        "type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS,
                        "pattern": name_pattern(), "description": "Shown in lists; trimmed."
                    },
                    "scopes": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": scopes}},
                    "expires_at": {
                        "type": ["integer", "null"],
                        "description": "Unix seconds, in the future and at most ten years ahead; none by default."
                    },
                }
            }),
        ),
        (
            "RotateRequest",
            json!({
                "type": "object",
                "properties": {
                    "overlap_seconds": {
                        "type": ["integer", "null"], "minimum": 0, "maximum": MAX_OVERLAP_SECONDS,
                        "description": "How long the old key stays valid beside its successor (default 0: revoked at once)."
                    },
                    "expires_at": {
                        "type": ["integer", "null"],
                        "description": "The successor's expiry: Unix seconds, in the future and at most ten years ahead."
                    },
                }
            }),
        ),
        (
            "PlanRequest",
            json!({
                "type": "object",
                "required": ["plan", "interval"],
                "properties": {
                    "plan": {"type": "string", "enum": plans},
                    "interval": {"type": "string", "enum": intervals},
                    "success_url": url,
                    "cancel_url": url,
                }
            }),
        ),
        (
            "PackRequest",
            json!({
                "type": "object",
                "required": ["pack"],
                "properties": {"pack": {"type": "string", "enum": packs}, "success_url": url, "cancel_url": url}
            }),
        ),
        ("PortalRequest", json!({"type": "object", "properties": {"return_url": url}})),
        (
            "CancelRequest",
            json!({
                "type": "object",
                "required": ["at_period_end"],
                "properties": {"at_period_end": {
                    "type": "boolean", "description": "At the period's end (true) or now (false)."
                }}
            }),
        ),
        ("StripeEvent", stripe_event()),
        ("AdoptionRequest", adoption_request()),
    ];
    bodies.into()
}

/// `schema` as utoipa holds it. Its untagged enum reads a schema it cannot hold whole as
/// another variant, dropping what that one lacks (an array's `items`), so the tests check that
/// every body comes back as written.
fn parsed(schema: serde_json::Value) -> RefOr<Schema> {
    serde_json::from_value(schema).expect("a valid schema")
}

/// `POST /operator/adoption`'s body, as [`crate::domain::adoption::AdoptionRequest::validate`]
/// checks it (no other field).
fn adoption_request() -> serde_json::Value {
    let account = crate::domain::model::AccountId::PATTERN;
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "apply": {"type": "boolean", "description": "Link and write; without it a dry run that changes nothing."},
            "metadata_key": {
                "type": ["string", "null"], "minLength": 1, "maxLength": 40,
                "description": "The customer metadata key holding the account id (default ADOPT_METADATA_KEY)."
            },
            "map": {
                "type": "array", "maxItems": crate::domain::adoption::MAX_MAP,
                "description": "[customer id, account id] pairs, each customer once; they come before metadata.",
                "items": {
                    "type": "array", "minItems": 2, "maxItems": 2, "items": false,
                    "prefixItems": [
                        {"type": "string", "pattern": crate::domain::adoption::CUSTOMER_ID_PATTERN},
                        {"type": "string", "pattern": account}
                    ]
                }
            },
            "write_metadata": {"type": "boolean", "description": "Write tollgate_account_id onto each adopted customer."}
        }
    })
}

/// A Stripe event as the webhook intake reads it (its object is the worker's to read): what
/// [`crate::domain::events::Incoming::parse`] and the intake's `livemode` check accept.
fn stripe_event() -> serde_json::Value {
    use crate::domain::events::MAX_ID_LEN;
    json!({
        "type": "object",
        "description": "A Stripe event, as Stripe delivers it signed (`Stripe-Signature`, the endpoint's secret).",
        "required": ["id", "type", "created", "livemode", "data"],
        "properties": {
            "id": {"type": "string", "pattern": "^[!-~]{1,128}$"},
            "type": {"type": "string", "pattern": format!("^[!-~]{{1,{MAX_ID_LEN}}}$")},
            "created": {"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX},
            "livemode": {
                "type": "boolean",
                "description": "The deployment's mode (`STRIPE_LIVEMODE`); an event of the other mode is refused."
            },
            "data": {"type": "object", "required": ["object"], "properties": {"object": {"type": "object"}}}
        }
    })
}

/// Characters without control characters (`char::is_control`: U+0000 to U+001F, U+007F to
/// U+009F).
fn control_free() -> &'static str {
    "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
}

/// A key name: no control characters and something other than whitespace.
fn name_pattern() -> &'static str {
    "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
}

/// The schema named `name`, for a route.
pub(super) fn reference(name: &str) -> RefOr<Schema> {
    RefOr::Ref(utoipa::openapi::Ref::from_schema_name(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::checkout::{PlanRequest, paid_price};
    use crate::app::usage::{idempotency_key, quantity};
    use crate::domain::apikeys::{name, overlap};

    fn schema(name: &str) -> serde_json::Value {
        let catalogue = Catalogue::builtin().unwrap();
        let (_, schema) = schemas(catalogue).into_iter().find(|(n, _)| *n == name).unwrap();
        serde_json::to_value(schema).unwrap()
    }

    fn names(values: &serde_json::Value) -> Vec<String> {
        values.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
    }

    fn bound(value: &serde_json::Value) -> usize {
        usize::try_from(value.as_u64().unwrap()).unwrap()
    }

    #[test]
    fn every_body_schema_is_written_as_it_was_built() {
        let catalogue = Catalogue::builtin().unwrap();
        let built: std::collections::BTreeMap<_, _> = bodies(catalogue).into_iter().collect();

        for (name, schema) in schemas(catalogue) {
            let written = serde_json::to_value(schema).unwrap();
            assert_eq!(written, built[name], "{name}");
        }
        let pair = &built["AdoptionRequest"]["properties"]["map"]["items"];
        assert_eq!(pair["prefixItems"].as_array().map(Vec::len), Some(2), "a map entry is a customer and an account");
    }

    #[test]
    fn every_name_the_contract_lists_is_accepted_and_one_it_does_not_is_refused() {
        let clock = crate::testing::FixedClock::at(0);
        let settings = crate::testing::settings(&clock);
        let plan = schema("PlanRequest");
        let plan_request = |plan: &str, interval: &str| PlanRequest {
            plan: Some(plan.into()),
            interval: Some(interval.into()),
            ..PlanRequest::default()
        };

        for tier in names(&plan["properties"]["plan"]["enum"]) {
            for interval in names(&plan["properties"]["interval"]["enum"]) {
                assert!(paid_price(&settings, &plan_request(&tier, &interval)).is_ok(), "{tier} {interval}");
            }
        }
        assert!(paid_price(&settings, &plan_request("platinum", "month")).is_err());
        assert!(paid_price(&settings, &plan_request("free", "month")).is_err(), "free is no checkout");
        assert!(!names(&plan["properties"]["plan"]["enum"]).contains(&"free".to_owned()));
        for metric in names(&schema("UsageRequest")["properties"]["metric"]["enum"]) {
            assert!(settings.catalogue.metric(&metric).is_some(), "{metric}");
        }
        let metrics = names(&schema("UsageCheckRequest")["properties"]["metric"]["enum"]);
        assert_eq!(metrics.len(), settings.catalogue.metrics().count(), "every metric");
        let events = names(&schema("ConsumeRequest")["properties"]["event"]["enum"]);
        assert_eq!(events, settings.catalogue.credits().costs.keys().cloned().collect::<Vec<_>>());
        for pack in names(&schema("PackRequest")["properties"]["pack"]["enum"]) {
            assert!(settings.catalogue.credit_pack(&pack).is_some(), "{pack}");
        }
        for scope in names(&schema("CreateRequest")["properties"]["scopes"]["items"]["enum"]) {
            assert!(Scope::parse(&scope).is_some(), "{scope}");
        }
    }

    #[test]
    fn each_bound_the_contract_states_is_the_one_validated() {
        let usage = schema("UsageRequest");
        let key_max = bound(&usage["properties"]["idempotency_key"]["maxLength"]);
        let quantity_max = usage["properties"]["quantity"]["maximum"].as_u64().unwrap();
        let create = schema("CreateRequest");
        let name_max = bound(&create["properties"]["name"]["maxLength"]);
        let overlap_max = schema("RotateRequest")["properties"]["overlap_seconds"]["maximum"].as_i64().unwrap();

        // Lengths are characters, as JSON Schema counts them, not bytes.
        assert!(idempotency_key(Some("é".repeat(key_max))).is_ok());
        assert!(idempotency_key(Some("é".repeat(key_max + 1))).is_err());
        assert!(idempotency_key(Some(String::new())).is_err());
        assert!(quantity(Some(&json!(quantity_max))).is_ok());
        assert!(quantity(Some(&json!(quantity_max + 1))).is_err());
        assert!(quantity(Some(&json!(0))).is_err());
        assert_eq!(usage["properties"]["quantity"]["minimum"], 1);
        // A name as sent: a trailing space counts, whitespace alone is refused.
        assert!(name(Some(&format!("{} ", "n".repeat(name_max - 1)))).is_ok());
        assert!(name(Some(&format!("{} ", "n".repeat(name_max)))).is_err());
        for blank in [" ", "\u{feff}", "\t"] {
            assert!(name(Some(blank)).is_err(), "{blank:?}");
        }
        assert!(overlap(Some(&json!(overlap_max))).is_ok());
        assert!(overlap(Some(&json!(overlap_max + 1))).is_err());
        assert!(overlap(Some(&json!(-1))).is_err());
    }
}
