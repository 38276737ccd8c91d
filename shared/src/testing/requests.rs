//! A record of the requests a DynamoDB client sends, by operation name, so a test can assert
//! how many round trips an operation of the core costs and which ones.

use aws_sdk_dynamodb::Client;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::sync::{Arc, Mutex, PoisonError};

/// The operation names (`"GetItem"`, `"Query"`, `"TransactWriteItems"`, ...) of the requests
/// the clients it is installed in sent, in order: one per call, however many attempts the
/// SDK's retries made. Clones share one log. Install it with [`counted_client`].
#[derive(Debug, Clone, Default)]
pub struct RequestLog(Arc<Mutex<Vec<String>>>);

impl RequestLog {
    /// The names recorded since the last `take`, in order; the log is left empty.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// How many requests were recorded since the last `take`.
    pub fn count(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl Intercept for RequestLog {
    fn name(&self) -> &'static str {
        "RequestLog"
    }

    // Not `read_before_execution`: a client's interceptors see an execution start before the
    // operation has put its `Metadata` (the name) in the config bag.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Every generated operation stores its `Metadata`; "unknown" keeps `count` exact if one did not.
        let name = cfg.load::<Metadata>().map_or("unknown", Metadata::name);
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(name.to_owned());
        Ok(())
    }
}

/// A DynamoDB client configured as `config` is, whose requests `log` records. Give it the
/// core's configuration, `tollgate::aws::dynamodb(&sdk).config()`, and it has the same region,
/// credentials and endpoint (`AWS_ENDPOINT_URL` still reaches the local server).
pub fn counted_client(config: &aws_sdk_dynamodb::Config, log: &RequestLog) -> Client {
    Client::from_conf(config.to_builder().interceptor(log.clone()).build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::operation::query::QueryOutput;
    use aws_sdk_dynamodb::types::AttributeValue;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    #[tokio::test]
    async fn each_request_is_recorded_by_its_operation_name() {
        let get = mock!(Client::get_item).then_output(|| GetItemOutput::builder().build());
        let query = mock!(Client::query).then_output(|| QueryOutput::builder().build());
        let log = RequestLog::default();
        let client = counted_client(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&get, &query]).config(), &log);

        client.get_item().table_name("t").key("pk", AttributeValue::S("a".into())).send().await.expect("mocked get");
        client.query().table_name("t").send().await.expect("mocked query");

        assert_eq!(log.count(), 2);
        assert_eq!(log.take(), ["GetItem", "Query"]);
        assert_eq!(log.count(), 0, "take empties the log");
    }

    #[tokio::test]
    async fn clones_share_one_log() {
        let query = mock!(Client::query).then_output(|| QueryOutput::builder().build());
        let log = RequestLog::default();
        let client =
            counted_client(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&query]).config(), &log.clone());

        client.query().table_name("t").send().await.expect("mocked query");

        assert_eq!(log.take(), ["Query"]);
    }
}
