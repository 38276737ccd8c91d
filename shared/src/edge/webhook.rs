//! Stripe webhook verification for the intake: the endpoint secrets (several at once, for
//! rotation), the `Stripe-Signature` check on the raw body (HMAC-SHA256 with RustCrypto's
//! `hmac`/`sha2`, compared in constant time, cross-checked against vectors made by stripe-node
//! and stripe-python), the event envelope the intake needs (id, type, created, livemode,
//! message group), and the rejections, each with its HTTP status and error code.
//!
//! Verification order: size, header present, header well-formed, UTF-8, timestamp, signature,
//! envelope, mode. Nothing here performs I/O or calls Stripe.
//!
//! The intake is the one path that exists for speed, so it parses the body once and builds no
//! tree: the envelope is read by a borrowed walk of the JSON that accepts exactly what the
//! worker's parser ([`Incoming::parse`]) accepts (see [`envelope`]).

use crate::domain::events::{Incoming, MAX_ID_LEN, Malformed, is_queue_token};
use crate::ports::queue::QueuedMessage;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Largest webhook body the intake accepts, in bytes (512 KiB); a larger one is refused with
/// 413 `body_too_large`. Stripe's event payloads are far smaller.
pub const MAX_WEBHOOK_BODY_BYTES: usize = 512 * 1024;

/// Largest distance, either way, between the signature's `t=` and now (Stripe's default).
pub const TOLERANCE_SECONDS: i64 = 300;

/// The request header that carries the signature (HTTP header names are case-insensitive).
pub const SIGNATURE_HEADER: &str = "stripe-signature";

/// Endpoint secret of the local stack only (`tollgate-dev`, its `trigger`, the sample events
/// under `events/`). Public by design: never configure it on a deployed endpoint.
pub const DEV_WEBHOOK_SECRET: &str = "whsec_tollgate_local_development";

/// Whether Tollgate acts on events of this type (see [`crate::domain::events::KINDS`]).
pub use crate::domain::events::is_handled;

/// Why the configured endpoint secrets could not be read. Never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookSecretsError {
    #[error("no endpoint secret given (expected comma-separated whsec_... values)")]
    Empty,
    #[error("secret number {0} does not start with whsec_")]
    NotEndpointSecret(usize),
}

/// The endpoint signing secrets (`whsec_...`) accepted at once: more than one while a secret
/// is rolled. `Debug` shows only how many there are.
#[derive(Clone)]
pub struct WebhookSecrets(Vec<SecretString>);

impl WebhookSecrets {
    /// Parses comma-separated secrets (surrounding whitespace and empty items ignored); at
    /// least one is required and each must start with `whsec_`.
    pub fn parse(raw: &str) -> Result<Self, WebhookSecretsError> {
        let secrets: Vec<&str> = raw.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
        if secrets.is_empty() {
            return Err(WebhookSecretsError::Empty);
        }
        if let Some(position) = secrets.iter().position(|s| !s.starts_with("whsec_")) {
            return Err(WebhookSecretsError::NotEndpointSecret(position.saturating_add(1)));
        }
        Ok(Self(secrets.into_iter().map(|s| SecretString::from(s.to_owned())).collect()))
    }

    /// How many secrets are accepted.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false for parsed secrets (kept for the `len` convention).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebhookSecrets([REDACTED; {}])", self.0.len())
    }
}

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

/// Why a delivery was refused. Every variant but `SecretUnusable` is the sender's fault (4xx)
/// and none carries a secret or any part of the payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookRejection {
    #[error("request body over {MAX_WEBHOOK_BODY_BYTES} bytes")]
    BodyTooLarge,
    #[error("the Stripe-Signature header is missing")]
    MissingSignature,
    #[error("the Stripe-Signature header needs a numeric t= and at least one v1= element")]
    MalformedSignature,
    #[error("no v1 signature matches a configured endpoint secret")]
    BadSignature,
    #[error("the signature timestamp is more than {TOLERANCE_SECONDS} seconds from now")]
    StaleTimestamp,
    #[error("the request body is not UTF-8")]
    BodyNotUtf8,
    /// The body is not JSON, or not a Stripe event envelope; the detail names what is wrong.
    #[error("the request body is not a Stripe event: {0}")]
    MalformedJson(&'static str),
    #[error("the event's livemode does not match this endpoint's mode")]
    WrongLivemode,
    /// A configured secret was refused as an HMAC key: a deployment error, answered 500 so
    /// that Stripe retries once it is fixed. (HMAC takes keys of any length, so this is not
    /// expected to happen.)
    #[error("a configured endpoint secret is unusable")]
    SecretUnusable,
}

impl WebhookRejection {
    /// The machine-readable error code sent in the response body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BodyTooLarge => "body_too_large",
            Self::MissingSignature => "missing_signature",
            Self::MalformedSignature => "malformed_signature",
            Self::BadSignature => "bad_signature",
            Self::StaleTimestamp => "stale_timestamp",
            Self::BodyNotUtf8 => "body_not_utf8",
            Self::MalformedJson(_) => "malformed_json",
            Self::WrongLivemode => "wrong_livemode",
            Self::SecretUnusable => "internal",
        }
    }
}

/// Verifies one delivery and reads its envelope.
///
/// `body` is the raw request body, `signature` the `Stripe-Signature` header (None when
/// absent), `now` the current Unix time in seconds. The signature must match one configured
/// secret in one of the header's `v1` values, with `t` within [`TOLERANCE_SECONDS`] of `now`
/// either way; the event's `livemode` must equal `livemode`. The event's object is not typed:
/// any correctly signed event with a sound envelope is accepted.
pub fn verify(
    body: &[u8],
    signature: Option<&str>,
    secrets: &WebhookSecrets,
    livemode: bool,
    now: i64,
) -> Result<Envelope, WebhookRejection> {
    if body.len() > MAX_WEBHOOK_BODY_BYTES {
        return Err(WebhookRejection::BodyTooLarge);
    }
    let header = signature.filter(|h| !h.trim().is_empty()).ok_or(WebhookRejection::MissingSignature)?;
    let timestamp = signed_at(header).ok_or(WebhookRejection::MalformedSignature)?;
    let payload = std::str::from_utf8(body).map_err(|_| WebhookRejection::BodyNotUtf8)?;
    check_signature(payload, header, secrets, timestamp, now)?;
    let envelope = envelope(payload)?;
    if envelope.livemode != livemode {
        return Err(WebhookRejection::WrongLivemode);
    }
    Ok(envelope)
}

/// Splits the header as Stripe's libraries do (`,` between elements, `key=value`, no
/// trimming) and answers its `t` (the last one) when it has a numeric `t` and a non-empty
/// `v1`.
fn signed_at(header: &str) -> Option<i64> {
    let mut timestamp = None;
    let mut v1 = false;
    for element in header.split(',') {
        let (key, value) = element.split_once('=')?;
        match key {
            "t" => timestamp = Some(value.parse::<i64>().ok()?),
            "v1" => v1 |= !value.is_empty(),
            _ => {}
        }
    }
    timestamp.filter(|_| v1)
}

/// The header's `v1` values decoded from hex (either case, as async-stripe and Stripe's
/// libraries accept); a value that is not 64 hex digits can match nothing and is skipped.
fn v1_signatures(header: &str) -> impl Iterator<Item = [u8; 32]> + '_ {
    header.split(',').filter_map(|element| {
        let value = element.strip_prefix("v1=")?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(value, &mut bytes).ok().map(|()| bytes)
    })
}

/// Checks the timestamp, then tries each secret in turn against every `v1` value.
///
/// The timestamp's distance from `now` is checked first, with checked arithmetic: a hostile
/// `t` (e.g. `i64::MIN`) is a stale timestamp, never an overflow. The signed string is
/// `"{t}.{payload}"` with `t` as the integer read from the header (what async-stripe signs);
/// the expected MAC is compared with each candidate in constant time.
fn check_signature(
    payload: &str,
    header: &str,
    secrets: &WebhookSecrets,
    timestamp: i64,
    now: i64,
) -> Result<(), WebhookRejection> {
    let within = now.checked_sub(timestamp).and_then(i64::checked_abs).is_some_and(|d| d <= TOLERANCE_SECONDS);
    if !within {
        return Err(WebhookRejection::StaleTimestamp);
    }
    let t = timestamp.to_string();
    for secret in &secrets.0 {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
            .map_err(|_| WebhookRejection::SecretUnusable)?;
        mac.update(t.as_bytes());
        mac.update(b".");
        mac.update(payload.as_bytes());
        let expected = mac.finalize().into_bytes();
        // Every candidate is compared (no early exit on the first match within a secret).
        let matched = v1_signatures(header)
            .fold(subtle::Choice::from(0), |found, candidate| found | expected.as_slice().ct_eq(&candidate));
        if bool::from(matched) {
            return Ok(());
        }
    }
    Err(WebhookRejection::BadSignature)
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
fn envelope(payload: &str) -> Result<Envelope, WebhookRejection> {
    match fast::read(payload) {
        Some(envelope) => Ok(envelope),
        None => reference_envelope(payload),
    }
}

/// The envelope as the worker's parser ([`Incoming::parse`]) reads it, requiring `livemode`.
fn reference_envelope(payload: &str) -> Result<Envelope, WebhookRejection> {
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
    use super::{Envelope, MAX_ID_LEN, is_queue_token, message_group};
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
        if !is_queue_token(&head.id) || head.event_type.is_empty() || head.event_type.len() > MAX_ID_LEN {
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
    use crate::edge::http::ApiError;
    use crate::testing::signature_header;
    use http::StatusCode;
    use proptest::prelude::*;
    use serde_json::json;

    const NOW: i64 = 1_795_273_200;
    const SECRET: &str = "whsec_unit_test_secret";

    fn secrets() -> WebhookSecrets {
        WebhookSecrets::parse(SECRET).unwrap()
    }

    fn event(object: Value) -> String {
        json!({
            "id": "evt_unit_1",
            "object": "event",
            "api_version": "2026-09-30.endive",
            "created": NOW - 5,
            "data": {"object": object},
            "livemode": false,
            "pending_webhooks": 1,
            "request": {"id": null, "idempotency_key": null},
            "type": "customer.subscription.updated"
        })
        .to_string()
    }

    fn subscription() -> String {
        event(json!({"id": "sub_1", "object": "subscription", "customer": "cus_1", "status": "active"}))
    }

    fn signed(payload: &str) -> String {
        signature_header(payload, SECRET, NOW)
    }

    fn check(payload: &str, header: Option<&str>) -> Result<Envelope, WebhookRejection> {
        verify(payload.as_bytes(), header, &secrets(), false, NOW)
    }

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
    fn signed_event_yields_its_envelope_and_raw_payload() {
        let payload = subscription();

        let envelope = check(&payload, Some(&signed(&payload))).unwrap();

        assert_eq!(envelope.id, "evt_unit_1");
        assert_eq!(envelope.event_type, "customer.subscription.updated");
        assert_eq!(envelope.created, NOW - 5);
        assert!(!envelope.livemode);
        assert_eq!(envelope.group, "cus_1");
        assert_eq!(envelope.payload, payload);
        assert!(envelope.is_handled());
        assert_eq!(
            envelope.to_message(),
            QueuedMessage { dedup_id: "evt_unit_1".into(), group: "cus_1".into(), body: payload }
        );
    }

    #[test]
    fn body_over_the_limit_is_too_large() {
        let payload = format!("{{\"pad\":\"{}\"}}", "x".repeat(MAX_WEBHOOK_BODY_BYTES));

        let rejection = check(&payload, Some(&signed(&payload))).unwrap_err();

        assert_eq!(rejection, WebhookRejection::BodyTooLarge);
        assert_eq!(ApiError::from(rejection.clone()).status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(rejection.code(), "body_too_large");
    }

    #[test]
    fn absent_or_empty_header_is_a_missing_signature() {
        let payload = subscription();

        assert_eq!(check(&payload, None).unwrap_err(), WebhookRejection::MissingSignature);
        assert_eq!(check(&payload, Some(" ")).unwrap_err(), WebhookRejection::MissingSignature);
    }

    #[test]
    fn header_without_timestamp_or_v1_is_malformed() {
        let payload = subscription();
        let good = signed(&payload);
        let v1 = good.split_once(",v1=").unwrap().1;

        for header in [format!("v1={v1}"), format!("t={NOW}"), format!("t=soon,v1={v1}"), "garbage".into()] {
            let rejection = check(&payload, Some(&header)).unwrap_err();

            assert_eq!(rejection, WebhookRejection::MalformedSignature, "{header}");
            assert_eq!(rejection.code(), "malformed_signature");
        }
    }

    #[test]
    fn tampered_body_or_unknown_secret_is_a_bad_signature() {
        let payload = subscription();
        let header = signed(&payload);
        let tampered = payload.replace("cus_1", "cus_2");
        let other = signature_header(&payload, "whsec_someone_else", NOW);

        assert_eq!(check(&tampered, Some(&header)).unwrap_err(), WebhookRejection::BadSignature);
        assert_eq!(check(&payload, Some(&other)).unwrap_err(), WebhookRejection::BadSignature);
        assert_eq!(check(&payload, Some(&header.replace("v1=", "v1=00"))).unwrap_err().code(), "bad_signature");
    }

    #[test]
    fn timestamp_over_300_seconds_either_way_is_stale() {
        let payload = subscription();
        let header = signed(&payload);

        let at = |now| verify(payload.as_bytes(), Some(&header), &secrets(), false, now);

        assert!(at(NOW + 300).is_ok());
        assert!(at(NOW - 300).is_ok());
        assert_eq!(at(NOW + 301).unwrap_err(), WebhookRejection::StaleTimestamp);
        assert_eq!(at(NOW - 301).unwrap_err(), WebhookRejection::StaleTimestamp);
    }

    #[test]
    fn body_that_is_not_utf8_is_refused_before_verification() {
        let body = b"{\"id\":\"evt_\xff\"}";

        let rejection = verify(body, Some(&format!("t={NOW},v1=00")), &secrets(), false, NOW).unwrap_err();

        assert_eq!(rejection, WebhookRejection::BodyNotUtf8);
        assert_eq!(rejection.code(), "body_not_utf8");
    }

    #[test]
    fn signed_body_that_is_not_an_event_is_malformed_json() {
        let full: Value = serde_json::from_str(&subscription()).unwrap();
        let without = |path: &[&str]| {
            let mut value = full.clone();
            let (last, parents) = path.split_last().unwrap();
            let mut target = &mut value;
            for parent in parents {
                target = &mut target[*parent];
            }
            target.as_object_mut().unwrap().remove(*last);
            value.to_string()
        };
        let bodies = [
            "{not json".to_owned(),
            "[1,2]".to_owned(),
            without(&["id"]),
            without(&["type"]),
            without(&["created"]),
            without(&["livemode"]),
            without(&["data", "object"]),
            subscription().replace("evt_unit_1", "evt with spaces"),
        ];

        for body in bodies {
            let rejection = check(&body, Some(&signed(&body))).unwrap_err();

            assert!(matches!(rejection, WebhookRejection::MalformedJson(_)), "{body}: {rejection:?}");
            assert_eq!(rejection.code(), "malformed_json");
        }
    }

    #[test]
    fn event_from_the_other_mode_is_refused() {
        let payload = subscription();

        let rejection = verify(payload.as_bytes(), Some(&signed(&payload)), &secrets(), true, NOW).unwrap_err();

        assert_eq!(rejection, WebhookRejection::WrongLivemode);
        assert_eq!(rejection.code(), "wrong_livemode");
    }

    #[test]
    fn signed_event_async_stripe_cannot_type_is_accepted_from_its_envelope() {
        let payload = json!({
            "id": "evt_untyped", "type": "invoice.paid", "created": NOW, "livemode": false,
            "data": {"object": {"id": "in_1", "object": "invoice", "customer": "cus_9"}}
        })
        .to_string();
        let unknown_kind = event(json!({"id": "x_1"})).replace("customer.subscription.updated", "tollgate.unknown");

        let envelope = check(&payload, Some(&signed(&payload))).unwrap();

        assert_eq!(check_signature(&payload, &signed(&payload), &secrets(), NOW, NOW), Ok(()));
        assert_eq!(check_signature(&unknown_kind, &signed(&unknown_kind), &secrets(), NOW, NOW), Ok(()));
        assert_eq!((envelope.id.as_str(), envelope.group.as_str()), ("evt_untyped", "cus_9"));
    }

    #[test]
    fn any_configured_secret_and_any_v1_value_may_match() {
        let payload = subscription();
        let rotated = WebhookSecrets::parse("whsec_old, whsec_new").unwrap();
        let by_new = signature_header(&payload, "whsec_new", NOW);
        let v1 = by_new.split_once(",v1=").unwrap().1;
        let two_values = format!("t={NOW},v1={},v1={v1},v0=ignored", "ab".repeat(32));

        assert!(verify(payload.as_bytes(), Some(&by_new), &rotated, false, NOW).is_ok());
        assert!(verify(payload.as_bytes(), Some(&two_values), &rotated, false, NOW).is_ok());
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
        let payload = event(json!({"object": "thing", "name": "no id"}));
        assert_eq!(check(&payload, Some(&signed(&payload))).unwrap().group, "evt_unit_1");
    }

    #[test]
    fn secrets_parse_from_a_list_and_never_print() {
        let secrets = WebhookSecrets::parse(" whsec_one ,whsec_two,").unwrap();

        assert_eq!(secrets.len(), 2);
        assert!(!format!("{secrets:?}").contains("whsec"));
        assert_eq!(WebhookSecrets::parse(" , ").unwrap_err(), WebhookSecretsError::Empty);
        let wrong = WebhookSecrets::parse("whsec_ok,sk_test_oops").unwrap_err();
        assert_eq!(wrong, WebhookSecretsError::NotEndpointSecret(2));
        assert!(!wrong.to_string().contains("oops"));
    }

    #[test]
    fn rejections_become_json_errors_without_internals() {
        let bad = ApiError::from(WebhookRejection::BadSignature);
        let internal = ApiError::from(WebhookRejection::SecretUnusable);

        assert_eq!((bad.status, bad.code), (StatusCode::BAD_REQUEST, "bad_signature"));
        assert_eq!((internal.status, internal.message.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, "internal error"));
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
        assert_eq!(crate::domain::events::KINDS.len(), 21);
        assert!(is_handled("invoice.paid") && is_handled("entitlements.active_entitlement_summary.updated"));
        assert!(
            is_handled("checkout.session.async_payment_succeeded")
                && is_handled("checkout.session.async_payment_failed")
        );
        assert!(!is_handled("customer.created") && !is_handled("payment_intent.succeeded"));
    }
}
