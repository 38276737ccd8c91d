//! Stripe's error answers: `{"error": {"type", "code", "message", "param"}}` with the status
//! Stripe uses for each case.

use serde_json::{Map, Value, json};

/// One error answer, ready to be rendered as Stripe renders it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: u16,
    pub(crate) kind: &'static str,
    pub(crate) code: Option<&'static str>,
    pub(crate) message: String,
    pub(crate) param: Option<String>,
}

impl ApiError {
    fn invalid_request(status: u16, code: Option<&'static str>, message: String) -> Self {
        Self { status, kind: "invalid_request_error", code, message, param: None }
    }

    fn with_param(mut self, param: &str) -> Self {
        self.param = Some(param.to_owned());
        self
    }

    /// An id in the URL that names nothing: 404.
    pub(crate) fn no_such(resource: &str, id: &str) -> Self {
        Self::invalid_request(404, Some("resource_missing"), format!("No such {resource}: '{id}'")).with_param("id")
    }

    /// Something the request needs does not exist (explained by `message`): 404.
    pub(crate) fn missing_resource(message: impl Into<String>, param: &str) -> Self {
        Self::invalid_request(404, Some("resource_missing"), message.into()).with_param(param)
    }

    /// An id in a parameter that names nothing: 400.
    pub(crate) fn no_such_param(resource: &str, id: &str, param: &str) -> Self {
        Self::invalid_request(400, Some("resource_missing"), format!("No such {resource}: '{id}'")).with_param(param)
    }

    pub(crate) fn missing_param(param: &str) -> Self {
        Self::invalid_request(400, Some("parameter_missing"), format!("Missing required param: {param}."))
            .with_param(param)
    }

    pub(crate) fn unknown_param(param: &str) -> Self {
        Self::invalid_request(400, Some("parameter_unknown"), format!("Received unknown parameter: {param}"))
            .with_param(param)
    }

    pub(crate) fn invalid_integer(param: &str, raw: &str) -> Self {
        Self::invalid_request(400, Some("parameter_invalid_integer"), format!("Invalid integer: {raw}"))
            .with_param(param)
    }

    pub(crate) fn invalid_boolean(param: &str, raw: &str) -> Self {
        Self::invalid_request(400, None, format!("Invalid boolean: {raw}")).with_param(param)
    }

    pub(crate) fn invalid_with_code(param: &str, code: &'static str, message: String) -> Self {
        Self::invalid_request(400, Some(code), message).with_param(param)
    }

    pub(crate) fn invalid_value(param: &str, message: impl Into<String>) -> Self {
        Self::invalid_request(400, None, message.into()).with_param(param)
    }

    pub(crate) fn invalid_state(message: impl Into<String>) -> Self {
        Self::invalid_request(400, None, message.into())
    }

    pub(crate) fn unrecognized_url(method: &str, path: &str) -> Self {
        Self::invalid_request(
            404,
            None,
            format!(
                "Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs \
                 or we can help at https://support.stripe.com/."
            ),
        )
    }

    pub(crate) fn idempotency_mismatch(key: &str) -> Self {
        Self {
            status: 400,
            kind: "idempotency_error",
            code: None,
            message: format!(
                "Keys for idempotent requests can only be used with the same parameters they \
                 were first used with. Try using a key other than '{key}' if you meant to \
                 execute a different request."
            ),
            param: None,
        }
    }

    /// The answer an injected fault gives for `status`.
    pub(crate) fn injected(status: u16) -> Self {
        match status {
            429 => Self::invalid_request(
                429,
                Some("rate_limit"),
                "Request rate limit exceeded. Learn more about rate limits here \
                 https://stripe.com/docs/rate-limits."
                    .to_owned(),
            ),
            409 => Self::invalid_request(
                409,
                Some("lock_timeout"),
                "This object cannot be accessed right now because another API request or \
                 Stripe process is currently accessing it."
                    .to_owned(),
            ),
            500.. => Self {
                status,
                kind: "api_error",
                code: None,
                message: "An unknown error occurred".to_owned(),
                param: None,
            },
            _ => Self::invalid_request(status, None, format!("Injected failure ({status}).")),
        }
    }

    pub(crate) fn body(&self) -> Value {
        let mut error = Map::new();
        error.insert("type".into(), json!(self.kind));
        error.insert("message".into(), json!(self.message));
        if let Some(code) = self.code {
            error.insert("code".into(), json!(code));
            error.insert(
                "doc_url".into(),
                json!(format!("https://stripe.com/docs/error-codes/{}", code.replace('_', "-"))),
            );
        }
        if let Some(param) = &self.param {
            error.insert("param".into(), json!(param));
        }
        json!({ "error": error })
    }
}
