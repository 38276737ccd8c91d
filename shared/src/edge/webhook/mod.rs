//! Stripe webhook verification for the intake: the endpoint secrets (several at once, for
//! rotation), the `Stripe-Signature` check on the raw body (HMAC-SHA256 with RustCrypto's
//! `hmac`/`sha2`, compared in constant time, cross-checked against vectors made by stripe-node
//! and stripe-python), and the rejections, each with its HTTP status and error code. The event
//! envelope read from a verified body is [`envelope`]'s.
//!
//! Verification order: size, header present, header well-formed, UTF-8, timestamp, signature,
//! envelope, mode. Nothing here performs I/O or calls Stripe.

pub mod envelope;

use envelope::{Envelope, envelope};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::http::ApiError;
    use crate::ports::queue::QueuedMessage;
    use crate::testing::signature_header;
    use http::StatusCode;
    use serde_json::{Value, json};

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
    fn event_whose_object_names_no_group_is_grouped_by_its_event_id() {
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
}
