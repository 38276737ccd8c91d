//! The operator routes are called with SigV4 (API Gateway `AWS_IAM`), and `docs/operator.md`
//! shows a product backend signing with aws4fetch, @smithy/signature-v4, botocore's `SigV4Auth`
//! or the `aws-sigv4` crate. `events/sigv4-vectors.json` holds the headers the first three made
//! for the same requests, credentials and time (`scripts/sigv4-vectors/generate.sh` fails unless
//! they agree; `make test` regenerates it and compares). Here the `aws-sigv4` crate signs the
//! same requests and must make the same headers, and a changed body, time, path or header must
//! change the signature, so the comparison is not vacuous. Needs no moto and no network.

use aws_sdk_dynamodb::config::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// 2026-12-01T12:00:00Z, the vectors' `time` (checked against the file below).
const TIME: u64 = 1_796_126_400;
const BODY: &str = r#"{"metric":"api_calls","quantity":1,"idempotency_key":"job-1"}"#;
const URL: &str = "https://abc123.execute-api.eu-west-1.amazonaws.com/operator/accounts/acct_1/usage";
const LIBRARIES: [&str; 3] = ["aws4fetch", "@smithy/signature-v4", "botocore"];

fn vectors() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/sigv4-vectors.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(TIME)
}

/// One request to sign: what a vector's `request` holds, plus its session token.
#[derive(Clone)]
struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: String,
    session_token: Option<String>,
}

impl Request {
    fn of(vector: &Value) -> Self {
        let request = &vector["request"];
        let headers = request["headers"].as_object().unwrap();
        Self {
            method: request["method"].as_str().unwrap().to_owned(),
            url: request["url"].as_str().unwrap().to_owned(),
            headers: headers.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())).collect(),
            body: request["body"].as_str().unwrap().to_owned(),
            session_token: vector["session_token"].as_str().map(str::to_owned),
        }
    }
}

/// The headers `aws-sigv4` adds to `request` (names lower-cased): `authorization`,
/// `x-amz-date` and, with a session token, `x-amz-security-token`.
fn sign_with_aws_sigv4(doc: &Value, request: &Request, time: SystemTime) -> BTreeMap<String, String> {
    let credentials = &doc["credentials"];
    let identity: Identity = Credentials::new(
        credentials["access_key_id"].as_str().unwrap(),
        credentials["secret_access_key"].as_str().unwrap(),
        request.session_token.clone(),
        None,
        "sigv4-vectors",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(doc["region"].as_str().unwrap())
        .name(doc["service"].as_str().unwrap())
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(
        &request.method,
        request.url.as_str(),
        request.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(request.body.as_bytes()),
    )
    .unwrap();
    let (instructions, _signature) = sign(signable, &params).unwrap().into_parts();
    instructions.headers().map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned())).collect()
}

fn expected_headers(vector: &Value) -> BTreeMap<String, String> {
    let signed = vector["signed"].as_object().unwrap();
    signed.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())).collect()
}

#[test]
fn the_committed_vectors_are_the_documented_request_signed_alike_by_three_libraries() {
    let doc = vectors();
    assert_eq!(doc["time"], "2026-12-01T12:00:00Z", "TIME above must follow the file");
    assert_eq!(doc["service"], "execute-api");
    assert_eq!(doc["region"], "eu-west-1");
    assert_eq!(doc["credentials"]["access_key_id"], "AKIDEXAMPLE");

    let vectors = doc["vectors"].as_array().unwrap();
    let first = &vectors[0];
    assert_eq!(first["request"]["method"], "POST");
    assert_eq!(first["request"]["url"], URL);
    assert_eq!(first["request"]["headers"], serde_json::json!({"content-type": "application/json"}));
    assert_eq!(first["request"]["body"], BODY);
    assert!(first["session_token"].is_null());
    assert!(
        vectors.iter().any(|v| v["session_token"].is_string()),
        "one vector signs with a role session's token, as a Lambda function or an assumed role does"
    );

    for vector in vectors {
        let name = vector["name"].as_str().unwrap();
        let by_library = vector["authorization_by_library"].as_object().unwrap();
        for library in LIBRARIES {
            let matching: Vec<_> = by_library.iter().filter(|(k, _)| k.split(' ').next() == Some(library)).collect();
            assert_eq!(matching.len(), 1, "{name}: one Authorization header by {library}");
            assert_eq!(matching[0].1, &vector["signed"]["authorization"], "{name}: {library} disagrees");
        }
        assert_eq!(by_library.len(), LIBRARIES.len(), "{name}: {by_library:?}");
        let authorization = vector["signed"]["authorization"].as_str().unwrap();
        assert!(
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261201/eu-west-1/execute-api/aws4_request, SignedHeaders=content-type;host;x-amz-date"),
            "{name}: content-type is signed (aws4fetch needs allHeaders: true for it): {authorization}"
        );
    }
}

#[test]
fn aws_sigv4_signs_every_vector_as_aws4fetch_smithy_and_botocore_did() {
    let doc = vectors();
    let vectors = doc["vectors"].as_array().unwrap();
    assert!(!vectors.is_empty());
    for vector in vectors {
        let name = vector["name"].as_str().unwrap();
        let headers = sign_with_aws_sigv4(&doc, &Request::of(vector), time());
        assert_eq!(headers, expected_headers(vector), "{name}: aws-sigv4 signs otherwise");
    }
}

#[test]
fn a_changed_body_time_path_or_header_changes_the_signature() {
    let doc = vectors();
    let vector = &doc["vectors"][0];
    let request = Request::of(vector);
    let committed = expected_headers(vector)["authorization"].clone();
    let authorization =
        |request: &Request, time: SystemTime| sign_with_aws_sigv4(&doc, request, time)["authorization"].clone();
    assert_eq!(authorization(&request, time()), committed);

    let mut body = request.clone();
    body.body = body.body.replace(r#""quantity":1"#, r#""quantity":2"#);
    let mut path = request.clone();
    path.url = path.url.replace("acct_1", "acct_2");
    let mut unsigned_type = request.clone();
    unsigned_type.headers.clear();
    let mut token = request.clone();
    token.session_token = Some("another-session".to_owned());

    let changed = [
        ("a body of quantity 2", authorization(&body, time())),
        ("one second later", authorization(&request, time() + Duration::from_secs(1))),
        ("another account in the path", authorization(&path, time())),
        ("content-type not signed", authorization(&unsigned_type, time())),
        ("a session token", authorization(&token, time())),
    ];
    for (what, other) in &changed {
        assert_ne!(other, &committed, "{what}: the same Authorization header");
    }
    let distinct: std::collections::BTreeSet<_> = changed.iter().map(|(_, a)| a).collect();
    assert_eq!(distinct.len(), changed.len(), "{changed:?}");
}
