//! Shared set-up for tests against the local DynamoDB/SQS server: each test gets its own
//! table and queues (created from `template.yaml`), since the server never forgets.

#![allow(dead_code)]

use aws_config::SdkConfig;
use tollgate_dev::resources::{Resources, Template, template_path};

/// The local server's SDK configuration and fresh resources named after `test`. Panics with
/// instructions when the server is not running: such a test never passes silently.
pub async fn local(test: &str) -> (SdkConfig, Resources) {
    let aws = match tollgate_dev::local::require_server().await {
        Ok(aws) => aws,
        Err(err) => panic!("{err:#}"),
    };
    let prefix = format!("t-{test}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let template = Template::load(&template_path()).expect("template.yaml parses");
    let resources = template
        .create(&tollgate::aws::dynamodb(&aws), &tollgate::aws::sqs(&aws), &prefix)
        .await
        .expect("creating the template's table and queues on the local server");
    (aws, resources)
}
