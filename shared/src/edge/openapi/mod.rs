//! The HTTP API's OpenAPI 3.1 document, built from the types the handlers serialize and
//! parse (their `utoipa::ToSchema` derives, behind this crate's `openapi` feature), so a
//! field added to a body is in the document the next time it is written. The route table
//! below is checked both ways against `template.yaml` (`tests/tests/openapi.rs`): a route in
//! the template that is not documented here fails the tests, and so does the reverse.
//! `make openapi` (`tollgate-dev openapi`) writes `openapi.json`; a test fails when the committed file differs.

mod requests;
mod routes;

use crate::app::ops::Queue;
use crate::domain::model::AccountId;
use crate::edge::http::ErrorBody;
use utoipa::ToSchema;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem, PathsBuilder};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, ObjectBuilder, OpenApi, OpenApiBuilder, Ref, RefOr, Required,
    ResponseBuilder, ResponsesBuilder, Schema, Type,
};

/// How a route is authorised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// The API Gateway JWT authorizer; the account is the token's identity claim.
    Jwt,
    /// An API key (`Authorization: Bearer tg_...`) checked by the Lambda authorizer.
    ApiKey,
    /// No identity (`GET /plans`).
    Public,
    /// Stripe's `Stripe-Signature` on the webhook function URL.
    StripeSignature,
    /// API Gateway's `AWS_IAM`: the product backend's request signed with SigV4.
    Iam,
}

/// A documented route: method and path as `template.yaml` spells them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub method: String,
    pub path: String,
}

/// The methods the API uses.
#[derive(Debug, Clone, Copy)]
enum Method {
    Get,
    Post,
    Delete,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Delete => "DELETE",
        }
    }

    fn http(self) -> HttpMethod {
        match self {
            Self::Get => HttpMethod::Get,
            Self::Post => HttpMethod::Post,
            Self::Delete => HttpMethod::Delete,
        }
    }
}

/// One operation, as the table declares it.
struct Op {
    method: Method,
    path: &'static str,
    summary: &'static str,
    auth: Auth,
    request: Option<RefOr<Schema>>,
    ok: (u16, RefOr<Schema>),
    errors: &'static [u16],
    query: &'static [(&'static str, &'static str)],
}

/// The document and the schemas it references.
struct Doc {
    schemas: Vec<(String, RefOr<Schema>)>,
    ops: Vec<Op>,
}

impl Doc {
    /// A reference to `T`'s schema, registering it (and every schema it refers to).
    fn schema<T: ToSchema>(&mut self) -> RefOr<Schema> {
        T::schemas(&mut self.schemas);
        self.schemas.push((T::name().into_owned(), T::schema()));
        RefOr::Ref(Ref::from_schema_name(T::name()))
    }

    #[allow(clippy::too_many_arguments, reason = "one table row")]
    fn op(
        &mut self,
        method: Method,
        path: &'static str,
        summary: &'static str,
        auth: Auth,
        request: Option<RefOr<Schema>>,
        ok: (u16, RefOr<Schema>),
        errors: &'static [u16],
        query: &'static [(&'static str, &'static str)],
    ) {
        self.ops.push(Op { method, path, summary, auth, request, ok, errors, query });
    }
}

fn json_content(schema: RefOr<Schema>) -> utoipa::openapi::Content {
    ContentBuilder::new().schema(Some(schema)).build()
}

fn status_text(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted: the sync works on it from its next run",
        304 => "Not modified (If-None-Match matched the ETag)",
        400 => "Bad input: `error.code` says what",
        401 => "No or invalid identity",
        402 => "Not enough credits (`insufficient_credits`)",
        403 => "Access denied, or a key without the route's scope",
        404 => "Not found",
        405 => "Method not allowed",
        409 => "Conflict (an idempotency key reused with another request, a subscription that exists)",
        413 => "Body too large",
        415 => "Not JSON",
        429 => "Rate limited or over quota (`Retry-After`)",
        500 => "Internal error (no details)",
        _ => "Stripe or the store unavailable: retry",
    }
}

/// API Gateway's own answer, before any function runs: `401 {"message": "Unauthorized"}` and
/// `403 {"message": "Forbidden"}` from an authorizer or IAM, and `404 {"message": "Not Found"}`
/// for a method or path the API does not declare.
#[derive(utoipa::ToSchema)]
#[allow(dead_code, reason = "documents API Gateway's answers; never built")]
struct GatewayAnswer {
    /// `Unauthorized`, `Forbidden` or `Not Found`.
    message: String,
}

/// The OpenAPI 3.1 document of the whole HTTP API.
pub fn document() -> OpenApi {
    let catalogue = crate::domain::plans::Catalogue::builtin().expect("plans.toml is valid");
    let optional = requests::optional(catalogue);
    let mut doc = routes::table();
    let error = doc.schema::<ErrorBody>();
    let gateway = doc.schema::<GatewayAnswer>();
    let mut paths = PathsBuilder::new();
    for op in doc.ops {
        let mut responses = ResponsesBuilder::new().response(
            op.ok.0.to_string(),
            ResponseBuilder::new().description(status_text(op.ok.0)).content("application/json", json_content(op.ok.1)),
        );
        if op.path == "/plans" {
            responses = responses.response("304", ResponseBuilder::new().description(status_text(304)));
        }
        let mut errors = op.errors.to_vec();
        // API Gateway's own refusals come before the function: the authorizer's on the key
        // and JWT routes, IAM's on the operator routes.
        let gateway_refuses: &[u16] = match op.auth {
            Auth::ApiKey => &[401, 403],
            Auth::Jwt => &[401],
            Auth::Iam => &[403],
            Auth::Public | Auth::StripeSignature => &[],
        };
        errors.extend(gateway_refuses.iter().filter(|s| !op.errors.contains(s)));
        errors.sort_unstable();
        for status in errors {
            let schema = if gateway_refuses.contains(&status) {
                RefOr::T(Schema::OneOf(
                    utoipa::openapi::OneOfBuilder::new().item(error.clone()).item(gateway.clone()).build(),
                ))
            } else {
                error.clone()
            };
            responses = responses.response(
                status.to_string(),
                ResponseBuilder::new()
                    .description(status_text(status))
                    .content("application/json", json_content(schema)),
            );
        }
        let mut operation = OperationBuilder::new().summary(Some(op.summary)).responses(responses.build());
        if let Some(body) = op.request {
            let name = match &body {
                RefOr::Ref(reference) => reference.ref_location.rsplit('/').next(),
                RefOr::T(_) => None,
            };
            let required = if name.is_some_and(|n| optional.contains(&n)) { Required::False } else { Required::True };
            let body =
                RequestBodyBuilder::new().content("application/json", json_content(body)).required(Some(required));
            operation = operation.request_body(Some(body.build()));
        }
        for (name, description) in op.query {
            let parameter = ParameterBuilder::new()
                .name(*name)
                .parameter_in(ParameterIn::Query)
                .description(Some(*description))
                .required(Required::False)
                .schema(Some(query_schema(name)));
            operation = operation.parameter(parameter);
        }
        for name in path_parameters(op.path) {
            let schema = match name {
                "account_id" => ObjectBuilder::new().schema_type(Type::String).pattern(Some(AccountId::PATTERN)),
                "queue" => ObjectBuilder::new().schema_type(Type::String).enum_values(Some(Queue::NAMES)),
                "event_id" => {
                    ObjectBuilder::new().schema_type(Type::String).pattern(Some(crate::app::ops::EVENT_ID_PATTERN))
                }
                _ => ObjectBuilder::new().schema_type(Type::String),
            };
            let parameter = ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(schema));
            operation = operation.parameter(parameter);
        }
        operation = match op.auth {
            Auth::Jwt => operation.security(SecurityRequirement::new("jwt", Vec::<String>::new())),
            Auth::ApiKey => operation.security(SecurityRequirement::new("apiKey", Vec::<String>::new())),
            Auth::StripeSignature => {
                operation.security(SecurityRequirement::new("stripeSignature", Vec::<String>::new()))
            }
            Auth::Iam => operation.security(SecurityRequirement::new("sigv4", Vec::<String>::new())),
            Auth::Public => operation,
        };
        paths = paths.path(op.path, PathItem::new(op.method.http(), operation.build()));
    }
    let mut components = ComponentsBuilder::new()
        .security_scheme(
            "jwt",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        )
        .security_scheme(
            "apiKey",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("tg_...").build()),
        )
        .security_scheme(
            "stripeSignature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("Stripe-Signature"))),
        )
        .security_scheme(
            "sigv4",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "AWS Signature Version 4 (service execute-api) with the product backend's IAM role (docs/operator.md)",
            ))),
        );
    doc.schemas.extend(requests::schemas(catalogue).into_iter().map(|(name, schema)| (name.to_owned(), schema)));
    doc.schemas.sort_by(|a, b| a.0.cmp(&b.0));
    doc.schemas.dedup_by(|a, b| a.0 == b.0);
    for (name, schema) in doc.schemas {
        components = components.schema(name, schema);
    }
    OpenApiBuilder::new()
        .info(InfoBuilder::new().title("Tollgate").version(env!("CARGO_PKG_VERSION")).description(Some(
            "Stripe billing for a SaaS on AWS: subscriptions, usage, credits, API keys. A method or path \
                     not declared here is answered by API Gateway with `404 {\"message\": \"Not Found\"}` \
                     (GatewayAnswer); the webhook function URL answers a method other than POST with `405` and \
                     `Allow: POST`.",
        )))
        .paths(paths.build())
        .components(Some(components.build()))
        .build()
}

/// Every documented route (method upper-case, path as in the template).
pub fn routes() -> Vec<Route> {
    let mut routes: Vec<Route> = routes::table()
        .ops
        .iter()
        .map(|op| Route { method: op.method.name().to_owned(), path: op.path.to_owned() })
        .collect();
    routes.sort();
    routes
}

/// The document as committed in `openapi.json`: pretty JSON and a final newline.
pub fn json() -> String {
    let mut text = document().to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}

/// A query parameter's schema, bounded as its route validates it: a page's `limit` (1 to 100,
/// the same for every paged route), the history's `periods`, and a `cursor`, which is the hex
/// `next_cursor` an earlier page gave (any other is refused).
fn query_schema(name: &str) -> ObjectBuilder {
    let integer = |max: usize| ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).maximum(Some(max));
    match name {
        "limit" => integer(crate::app::invoices::MAX_PAGE),
        "periods" => integer(crate::app::read::MAX_PERIODS),
        "cursor" => ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^([0-9a-fA-F]{2})+$"))
            .max_length(Some(crate::ports::keys::MAX_CURSOR_LEN)),
        _ => ObjectBuilder::new().schema_type(Type::String),
    }
}

/// The names of a path template's parameters (`/operator/accounts/{account_id}/usage` has
/// `account_id`), in order: every one is declared, whatever its name.
fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_parameter_of_any_name_is_found() {
        let names: Vec<&str> = path_parameters("/operator/accounts/{account_id}/grants/{grant}").collect();

        assert_eq!(names, ["account_id", "grant"]);
        assert_eq!(path_parameters("/entitlements").count(), 0);
    }

    #[test]
    fn a_query_parameter_is_bounded_as_its_route_validates_it() {
        use crate::app::invoices::page_size;
        let document = serde_json::to_value(document()).expect("the document serializes");
        let parameter = |path: &str, name: &str| {
            let parameters = document["paths"][path]["get"]["parameters"].as_array().expect("parameters").clone();
            parameters.into_iter().find(|p| p["name"] == name).expect("the parameter")["schema"].clone()
        };

        for path in ["/invoices", "/credits", "/operator/events/failed", "/operator/accounts/{account_id}"] {
            let limit = parameter(path, "limit");
            let (min, max) = (limit["minimum"].as_u64().unwrap(), limit["maximum"].as_u64().unwrap());
            assert!(page_size(Some(&min.to_string())).is_ok() && page_size(Some(&max.to_string())).is_ok());
            assert!(
                page_size(Some(&(min - 1).to_string())).is_err() && page_size(Some(&(max + 1).to_string())).is_err()
            );
            assert_eq!(parameter(path, "cursor")["maxLength"], crate::ports::keys::MAX_CURSOR_LEN, "{path}");
        }
        assert_eq!(crate::app::credits::MAX_PAGE, crate::app::invoices::MAX_PAGE, "one bound for every page");
        let periods = parameter("/usage/history", "periods");
        assert_eq!((periods["minimum"].as_u64(), periods["maximum"].as_u64()), (Some(1), Some(13)));
        assert_eq!(crate::app::read::MAX_PERIODS, 13);
    }

    #[test]
    fn only_a_body_without_a_required_field_may_be_left_out() {
        let document = serde_json::to_value(document()).expect("the document serializes");
        let required = |path: &str| document["paths"][path]["post"]["requestBody"]["required"].as_bool();

        assert_eq!(required("/portal"), Some(false));
        assert_eq!(required("/api-keys/{id}/rotate"), Some(false));
        for path in ["/checkout", "/subscription/cancel", "/operator/usage/batch", "/webhooks/stripe"] {
            assert_eq!(required(path), Some(true), "{path}");
        }
    }

    #[test]
    fn every_templated_segment_of_every_path_is_a_declared_parameter() {
        let document = serde_json::to_value(document()).expect("the document serializes");

        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("a path item") {
                let declared: Vec<&str> = operation["parameters"]
                    .as_array()
                    .map(|ps| ps.iter().filter(|p| p["in"] == "path").filter_map(|p| p["name"].as_str()).collect())
                    .unwrap_or_default();
                let templated: Vec<&str> = path_parameters(path).collect();

                assert_eq!(declared, templated, "{method} {path}");
            }
        }
    }
}
