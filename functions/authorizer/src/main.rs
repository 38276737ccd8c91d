//! Lambda entry point of `authorizer`: wiring only.

use aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use std::sync::Arc;
use tollgate::edge::config::Env;
use tollgate::ports::clock::SystemClock;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let deps = authorizer::wire(&Env, &tollgate::adapters::aws::load().await, Arc::new(SystemClock))?;
    run(service_fn(|event: LambdaEvent<ApiGatewayV2CustomAuthorizerV2Request>| {
        authorizer::handle(&deps, event.payload)
    }))
    .await
}
