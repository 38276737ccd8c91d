//! The cold-start baseline: a `lambda_http` hello world with the same runtime features and
//! tracing setup as Tollgate's functions, and no AWS SDK.

use lambda_http::{Body, Error, Request, Response, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    run(service_fn(|_req: Request| async { Ok::<_, Error>(Response::new(Body::from("hello"))) })).await
}
