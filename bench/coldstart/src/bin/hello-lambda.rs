//! The cold-start baseline: a `lambda_http` hello world with the same runtime features and
//! tracing setup as Tollgate's functions, and no AWS SDK. Built twice from this file: as
//! `hello-lambda`, on `#[tokio::main]`'s default multi-threaded runtime (the usual hello world,
//! the baseline the issue names), and as `hello-lambda-current-thread`, on the single-threaded
//! runtime Tollgate's functions use, so the report can show what the runtime's flavor is worth.

use lambda_http::{Body, Error, Request, Response, run, service_fn};

fn main() -> Result<(), Error> {
    let runtime = if env!("CARGO_BIN_NAME").ends_with("current-thread") {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread().enable_all().build()?
    };
    runtime.block_on(async {
        lambda_http::tracing::init_default_subscriber();
        run(service_fn(|_req: Request| async { Ok::<_, Error>(Response::new(Body::from("hello"))) })).await
    })
}
