//! The event envelope the intake needs (id, type, created, livemode, message group), read from
//! a verified body. The intake is the one path that exists for speed, so it parses the body
//! once and builds no tree: [`envelope`] reads it by a borrowed walk of the JSON (`fast`) that
//! accepts exactly what the worker's parser ([`Incoming::parse`]) accepts, and
//! [`reference_envelope`] is that parser, which tests hold the walk to.

use super::WebhookRejection;
use crate::domain::events::{Incoming, Malformed, is_handled, is_queue_token};
use crate::ports::queue::QueuedMessage;
use serde_json::Value;

/// A verified Stripe event, ready for the queue.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    /// `evt_...`: the queue's deduplication id.
    pub id: String,
    /// Stripe's `type`, e.g. `invoice.paid`.
    pub event_type: String,
    /// Stripe's `created` (Unix seconds, one-second resolution).
    pub created: i64,
    pub livemode: bool,
    /// The FIFO message group (see [`message_group`]).
    pub group: String,
    /// The verified raw body, byte for byte: the worker parses it.
    pub payload: String,
}

impl Envelope {
    /// Whether Tollgate acts on this event's type.
    pub fn is_handled(&self) -> bool {
        is_handled(&self.event_type)
    }

    /// The queue message: group as computed, deduplication id = event id, body = raw payload.
    pub fn to_message(&self) -> QueuedMessage {
        QueuedMessage { dedup_id: self.id.clone(), group: self.group.clone(), body: self.payload.clone() }
    }
}

/// Leaves the payload out: it can hold customer details.
impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope")
            .field("id", &self.id)
            .field("event_type", &self.event_type)
            .field("created", &self.created)
            .field("livemode", &self.livemode)
            .field("group", &self.group)
            .field("payload_bytes", &self.payload.len())
            .finish()
    }
}

/// Reads the envelope of a verified payload: what [`Incoming::parse`] (the worker's parser)
/// reads, and the `livemode` the worker does not use.
///
/// The fast path ([`fast::read`]) parses the payload once, builds no JSON tree and keeps only
/// the fields the message group needs; it validates `data.object` the way `serde_json::Value`
/// does (strings, escapes, numbers in range, nesting depth), so it succeeds only where the
/// worker's parser does, with the same envelope (a property test holds both to this). Whatever
/// it does not read to the end (any error, or a `serde_json` private key) is read again by
/// [`reference_envelope`], the worker's parser, which gives the answer and its exact error.
pub(super) fn envelope(payload: &str) -> Result<Envelope, WebhookRejection> {
    match fast::read(payload) {
        Some(envelope) => Ok(envelope),
        None => reference_envelope(payload),
    }
}

/// The envelope as the worker's parser ([`Incoming::parse`]) reads it, requiring `livemode`.
pub(super) fn reference_envelope(payload: &str) -> Result<Envelope, WebhookRejection> {
    let event = Incoming::parse(payload).map_err(|Malformed(why)| WebhookRejection::MalformedJson(why))?;
    let livemode = event.livemode.ok_or(WebhookRejection::MalformedJson("`livemode` is missing or not a boolean"))?;
    let group = message_group(&event.event_type, &event.data.object).unwrap_or_else(|| event.id.clone());
    Ok(Envelope {
        id: event.id,
        event_type: event.event_type,
        created: event.created,
        livemode,
        group,
        payload: payload.to_owned(),
    })
}

/// The FIFO message group of an event: the Stripe customer it is about, or for a dispute its
/// charge (the table's rule, [`crate::domain::events::customer_of`]), else the object's `id`. Only
/// values SQS accepts as a group id are used; None when there is none (the caller then groups
/// by event id).
pub fn message_group(event_type: &str, object: &Value) -> Option<String> {
    let about = match crate::domain::events::customer_of(event_type, object) {
        crate::domain::events::CustomerRef::Customer(id) | crate::domain::events::CustomerRef::Charge(id) => Some(id),
        crate::domain::events::CustomerRef::None => None,
    };
    let own = object.get("id").and_then(Value::as_str).map(str::to_owned);
    [about, own].into_iter().flatten().find(|id| is_queue_token(id))
}

/// The intake's single borrowed parse of an event (see [`envelope`]).
mod fast {
    use super::{Envelope, is_queue_token, message_group};
    use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Value};
    use std::borrow::Cow;
    use std::fmt;
    use std::marker::PhantomData;

    /// The envelope with the same fields, types and serde attributes as
    /// [`crate::domain::events::Incoming`], so serde accepts and refuses the same documents; only
    /// `data.object` is read differently.
    #[derive(serde::Deserialize)]
    struct Head<'a> {
        id: String,
        #[serde(rename = "type")]
        event_type: String,
        #[serde(deserialize_with = "crate::domain::number::deserialize_whole_i64")]
        created: i64,
        #[serde(default)]
        livemode: Option<bool>,
        #[serde(borrow)]
        data: HeadData<'a>,
    }

    #[derive(serde::Deserialize)]
    struct HeadData<'a> {
        #[serde(borrow)]
        object: Object<'a>,
    }

    /// `data.object`, walked and validated as `serde_json::Value` would read it, keeping only
    /// the fields the message group reads (the last of duplicates, as `Value` keeps).
    enum Object<'a> {
        Map {
            id: Field<'a>,
            customer: Field<'a>,
            charge: Field<'a>,
        },
        /// Valid JSON that is not an object.
        NotMap,
    }

    /// One of the object's `id`, `customer`, `charge`: what the group rule can use of it.
    enum Field<'a> {
        Str(Cow<'a, str>),
        /// An expanded object and its `id` when that is a string.
        Map(Option<Cow<'a, str>>),
        Other,
    }

    /// Reads `payload` once; None when the fast path cannot vouch for the answer (the caller
    /// then uses the worker's parser, which also words the error).
    pub(super) fn read(payload: &str) -> Option<Envelope> {
        let head: Head<'_> = serde_json::from_str(payload).ok()?;
        let Object::Map { id, customer, charge } = head.data.object else { return None };
        // The checks of `Incoming::parse`, and the `livemode` the intake requires.
        if !is_queue_token(&head.id) || !crate::domain::events::is_id(&head.event_type) {
            return None;
        }
        let livemode = head.livemode?;
        // The group rule is the one function the reference path uses, given only the fields it
        // reads: a few small strings instead of the whole object.
        let mut object = Map::new();
        for (key, field) in [("id", id), ("customer", customer), ("charge", charge)] {
            let value = match field {
                Field::Str(s) => Value::String(s.into_owned()),
                Field::Map(Some(id)) => {
                    Value::Object(Map::from_iter([("id".to_owned(), Value::String(id.into_owned()))]))
                }
                Field::Map(None) => Value::Object(Map::new()),
                Field::Other => continue,
            };
            object.insert(key.to_owned(), value);
        }
        let group = message_group(&head.event_type, &Value::Object(object)).unwrap_or_else(|| head.id.clone());
        Some(Envelope {
            id: head.id,
            event_type: head.event_type,
            created: head.created,
            livemode,
            group,
            payload: payload.to_owned(),
        })
    }

    /// A map key as the group rule sees it. `Value` treats a map whose first key is one of
    /// serde_json's private tokens specially; such a key stops the fast path.
    enum Key {
        Id,
        Customer,
        Charge,
        Other,
    }

    impl<'de> Deserialize<'de> for Key {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            // `deserialize_str`, as `Value`'s own key reader calls.
            deserializer.deserialize_str(KeyVisitor)
        }
    }

    struct KeyVisitor;

    impl Visitor<'_> for KeyVisitor {
        type Value = Key;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map key")
        }

        fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
            Ok(match key {
                "id" => Key::Id,
                "customer" => Key::Customer,
                "charge" => Key::Charge,
                _ if key.starts_with("$serde_json::private::") => return Err(E::custom("serde_json private key")),
                _ => Key::Other,
            })
        }
    }

    /// Any JSON value, validated through `deserialize_any` exactly as `Value` reads it
    /// (numbers in range, strings and escapes decoded, the nesting limit), keeping nothing.
    struct Walk;

    impl<'de> Deserialize<'de> for Walk {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_any(WalkVisitor)
        }
    }

    struct WalkVisitor;

    /// The scalar and sequence arms shared by every visitor here: accept what `Value` accepts,
    /// answer `$other` for it.
    macro_rules! scalars_and_seq {
        ($other:expr) => {
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok($other)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok($other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok($other)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok($other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok($other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<Walk>()?.is_some() {}
                Ok($other)
            }
        };
    }

    impl<'de> Visitor<'de> for WalkVisitor {
        type Value = Walk;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }

        scalars_and_seq!(Walk);

        fn visit_str<E: de::Error>(self, _: &str) -> Result<Walk, E> {
            Ok(Walk)
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Walk, A::Error> {
            while map.next_key::<Key>()?.is_some() {
                map.next_value::<Walk>()?;
            }
            Ok(Walk)
        }
    }

    impl<'de: 'a, 'a> Deserialize<'de> for Object<'a> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_any(ObjectVisitor(PhantomData))
        }
    }

    struct ObjectVisitor<'a>(PhantomData<&'a ()>);

    impl<'de: 'a, 'a> Visitor<'de> for ObjectVisitor<'a> {
        type Value = Object<'a>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }

        scalars_and_seq!(Object::NotMap);

        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(Object::NotMap)
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let (mut id, mut customer, mut charge) = (Field::Other, Field::Other, Field::Other);
            while let Some(key) = map.next_key::<Key>()? {
                match key {
                    Key::Id => id = map.next_value()?,
                    Key::Customer => customer = map.next_value()?,
                    Key::Charge => charge = map.next_value()?,
                    Key::Other => _ = map.next_value::<Walk>()?,
                }
            }
            Ok(Object::Map { id, customer, charge })
        }
    }

    impl<'de: 'a, 'a> Deserialize<'de> for Field<'a> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_any(FieldVisitor(PhantomData))
        }
    }

    struct FieldVisitor<'a>(PhantomData<&'a ()>);

    impl<'de: 'a, 'a> Visitor<'de> for FieldVisitor<'a> {
        type Value = Field<'a>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }

        scalars_and_seq!(Field::Other);

        fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
            Ok(Field::Str(Cow::Borrowed(value)))
        }

        fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
            Ok(Field::Str(Cow::Owned(value.to_owned())))
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut id = None;
            while let Some(key) = map.next_key::<Key>()? {
                match key {
                    Key::Id => {
                        id = match map.next_value()? {
                            Field::Str(s) => Some(s),
                            Field::Map(_) | Field::Other => None,
                        }
                    }
                    Key::Customer | Key::Charge | Key::Other => _ = map.next_value::<Walk>()?,
                }
            }
            Ok(Field::Map(id))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// The group of an event about `object`, its type chosen by the object's kind.
    fn group(object: Value) -> Option<String> {
        let event_type = match object["object"].as_str() {
            Some("customer") => "customer.deleted",
            Some("dispute") => "charge.dispute.created",
            _ => "customer.subscription.updated",
        };
        message_group(event_type, &object)
    }

    #[test]
    fn customer_of_the_object_is_the_group() {
        assert_eq!(group(json!({"id": "sub_1", "object": "subscription", "customer": "cus_1"})), Some("cus_1".into()));
        assert_eq!(
            group(json!({"id": "in_1", "object": "invoice", "customer": {"id": "cus_2", "object": "customer"}})),
            Some("cus_2".into())
        );
        assert_eq!(group(json!({"id": "cus_3", "object": "customer", "email": null})), Some("cus_3".into()));
        assert_eq!(
            group(json!({"object": "entitlements.active_entitlement_summary", "customer": "cus_4"})),
            Some("cus_4".into())
        );
    }

    #[test]
    fn object_without_a_customer_is_grouped_by_what_it_names() {
        assert_eq!(
            group(json!({"id": "dp_1", "object": "dispute", "charge": "ch_1"})),
            Some("ch_1".into()),
            "a dispute names only its charge"
        );
        assert_eq!(group(json!({"id": "dp_2", "object": "dispute", "charge": {"id": "ch_2"}})), Some("ch_2".into()));
        assert_eq!(group(json!({"id": "cs_1", "object": "checkout.session", "customer": null})), Some("cs_1".into()));
        assert_eq!(group(json!({"id": "ch_3", "object": "charge", "customer": null})), Some("ch_3".into()));
    }

    #[test]
    fn group_is_a_valid_fifo_group_id_or_the_event_id() {
        let long = "x".repeat(129);

        assert_eq!(group(json!({"id": "sub_1", "customer": long})), Some("sub_1".into()));
        assert_eq!(group(json!({"customer": "cus with space"})), None);
    }

    /// Every sample payload of the repository, by path.
    fn sample_payloads() -> Vec<(String, String)> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut found = Vec::new();
        for dir in ["events/stripe", "scripts/signature-vectors/payloads"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "json") {
                    found.push((path.display().to_string(), std::fs::read_to_string(&path).unwrap()));
                }
            }
        }
        found
    }

    #[test]
    fn fast_path_reads_every_sample_event_as_the_workers_parser_does() {
        let samples = sample_payloads();

        assert!(samples.len() >= 20, "only {} samples", samples.len());
        for (path, payload) in samples {
            let reference = reference_envelope(&payload).unwrap();

            assert_eq!(fast::read(&payload), Some(reference), "{path}");
        }
    }

    #[test]
    fn fast_path_defers_what_it_cannot_vouch_for_to_the_workers_parser() {
        let nested = |depth: usize| {
            format!(
                r#"{{"id":"evt_1","type":"invoice.paid","created":1,"livemode":false,"data":{{"object":{{"x":{}1{}}}}}}}"#,
                "[".repeat(depth),
                "]".repeat(depth)
            )
        };
        let with_object = |object: &str| {
            format!(
                r#"{{"id":"evt_1","type":"invoice.paid","created":1,"livemode":false,"data":{{"object":{object}}}}}"#
            )
        };
        let mut bodies: Vec<String> = (120..=130).map(nested).collect();
        bodies.extend(
            [
                r#"{"customer":"cus_1","amount":1e400}"#,
                r#"{"customer":"cus_1","note":"\ud800"}"#,
                r#"{"customer":"cus_1","note":"\ud83d\ude00"}"#,
                r#"{"customer":"cus_1","customer":"cus_2"}"#,
                r#"{"customer":{"id":"cus_1","id":7}}"#,
                r#"{"customer":{"id":"cus_1","id":"cus_3"},"customer":"cus_with space"}"#,
                r#"{"c\u0075stomer":"c\u0075s_4"}"#,
                r#"{"$serde_json::private::RawValue":"{\"customer\":\"cus_9\"}"}"#,
                r#"{"$serde_json::private::RawValue":"[1]"}"#,
                r#"{"customer":{"$serde_json::private::RawValue":"\"cus_8\""}}"#,
                r#"{"$serde_json::private::Number":"1"}"#,
                r#"["customer"]"#,
            ]
            .map(with_object),
        );

        for body in bodies {
            let reference = reference_envelope(&body);

            assert_eq!(envelope(&body), reference, "{body}");
            if let Some(fast) = fast::read(&body) {
                assert_eq!(Ok(fast), reference, "{body}");
            }
        }
    }

    /// JSON text of any shape, with what tells parsers apart: escapes, surrogates, numbers out
    /// of range, duplicate and escaped keys, serde_json's private keys.
    fn json_text() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null"),
            Just("true"),
            Just("0"),
            Just("-0"),
            Just("1e400"),
            Just("1e-400"),
            Just("1.5e-7"),
            Just("18446744073709551616"),
            Just("-9223372036854775809"),
            Just("\"cus_1\""),
            Just("\"c\\u0075s_2\""),
            Just("\"\\ud800\""),
            Just("\"\\ud83d\\ude00\""),
            Just("\"\""),
            Just("\"evt_1\""),
            Just("\"cus with space\""),
            Just("\"ch_1\""),
            Just("\"{\\\"customer\\\":\\\"cus_7\\\"}\""),
        ]
        .prop_map(str::to_owned);
        leaf.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec((json_key(), inner), 0..5).prop_map(|entries| {
                    let entries: Vec<String> = entries.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
                    format!("{{{}}}", entries.join(","))
                }),
            ]
        })
    }

    fn json_key() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => Just("\"id\""),
            4 => Just("\"customer\""),
            3 => Just("\"charge\""),
            1 => Just("\"i\\u0064\""),
            2 => Just("\"object\""),
            2 => Just("\"x\""),
            1 => Just("\"$serde_json::private::RawValue\""),
            1 => Just("\"$serde_json::private::Number\""),
        ]
        .prop_map(str::to_owned)
    }

    /// An object such as Stripe sends, its group fields drawn from ids, expanded objects and
    /// anything else.
    fn object_text() -> impl Strategy<Value = String> {
        let value = prop_oneof![
            3 => prop_oneof![Just("\"cus_1\""), Just("\"ch_1\""), Just("\"sub_1\""), Just("\"x y\"")].prop_map(str::to_owned),
            2 => json_text().prop_map(|id| format!("{{\"id\":{id},\"object\":\"customer\"}}")),
            2 => json_text(),
        ];
        prop::collection::vec((json_key(), value), 0..6).prop_map(|entries| {
            let entries: Vec<String> = entries.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
            format!("{{{}}}", entries.join(","))
        })
    }

    /// A Stripe-like event envelope, its fields reordered, dropped, duplicated or replaced by
    /// any JSON, `data` sometimes a sequence, the document sometimes followed by garbage.
    fn event_text() -> impl Strategy<Value = String> {
        let kinds: Vec<String> = crate::domain::events::KINDS.iter().map(|k| format!("\"{}\"", k.event_type)).collect();
        let kind = prop_oneof![4 => prop::sample::select(kinds), 1 => Just("\"tollgate.unknown\"".to_owned()), 1 => json_text()];
        let id = prop_oneof![4 => Just("\"evt_1\"".to_owned()), 1 => json_text()];
        let created = prop_oneof![4 => Just("1795273200".to_owned()), 1 => json_text()];
        let livemode = prop_oneof![4 => Just("false".to_owned()), 1 => json_text()];
        let object = prop_oneof![4 => object_text(), 1 => json_text()];
        let data = prop_oneof![
            6 => object.clone().prop_map(|o| format!("{{\"object\":{o}}}")),
            1 => (object.clone(), object.clone()).prop_map(|(a, b)| format!("{{\"object\":{a},\"object\":{b}}}")),
            1 => object.clone().prop_map(|o| format!("{{\"previous_attributes\":{{\"a\":1}},\"object\":{o}}}")),
            1 => object.prop_map(|o| format!("[{o}]")),
            1 => json_text(),
        ];
        let fields =
            (id, kind, created, livemode, data, json_text()).prop_map(|(id, kind, created, livemode, data, extra)| {
                vec![
                    ("id", id),
                    ("type", kind),
                    ("created", created),
                    ("livemode", livemode),
                    ("data", data),
                    ("request", extra),
                ]
            });
        (
            fields.prop_shuffle(),
            prop::collection::vec(0..16u8, 6),
            0..8u8,
            prop_oneof![8 => Just(""), 1 => Just(" "), 1 => Just(" x")],
        )
            .prop_map(|(fields, fate, shape, tail)| {
                let mut kept: Vec<(&str, String)> = Vec::new();
                for ((name, value), fate) in fields.into_iter().zip(fate) {
                    match fate {
                        0 => {}
                        1 => {
                            kept.push((name, value.clone()));
                            kept.push((name, value));
                        }
                        _ => kept.push((name, value)),
                    }
                }
                let body = if shape == 0 {
                    let values: Vec<String> = kept.into_iter().map(|(_, v)| v).collect();
                    format!("[{}]", values.join(","))
                } else {
                    let entries: Vec<String> = kept.into_iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                    format!("{{{}}}", entries.join(","))
                };
                format!("{body}{tail}")
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

        /// The intake accepts exactly what the worker's parser reads, with the same envelope:
        /// the fast path never accepts more, never reads a field differently, and the answer
        /// (error included) is always the reference one.
        #[test]
        fn the_intake_reads_envelopes_exactly_as_the_workers_parser(body in event_text()) {
            let reference = reference_envelope(&body);

            if let Some(fast) = fast::read(&body) {
                prop_assert_eq!(Ok(fast), reference.clone(), "{}", body);
            }
            prop_assert_eq!(envelope(&body), reference, "{}", body);
        }
    }

    #[test]
    fn handled_types_are_the_ones_tollgate_uses() {
        assert_eq!(crate::domain::events::KINDS.len(), 22);
        assert!(is_handled("invoice.paid") && is_handled("entitlements.active_entitlement_summary.updated"));
        assert!(
            is_handled("checkout.session.async_payment_succeeded")
                && is_handled("checkout.session.async_payment_failed")
        );
        assert!(!is_handled("customer.created") && !is_handled("payment_intent.succeeded"));
    }
}
