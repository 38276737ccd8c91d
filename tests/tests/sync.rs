//! The sync on the local stack over HTTP (moto, the Stripe stand-in, the local runner): a
//! webhook that never arrived is applied by one `tollgate-dev sync`, and `/health` (what
//! `tollgate-dev status` prints) shows the run's outcome.

mod common;

use tollgate::edge::webhook::DEV_WEBHOOK_SECRET;
use tollgate_dev::trigger::trigger;
use tollgate_standin::TriggerSpec;

async fn read(base: &str, account: &str) -> serde_json::Value {
    reqwest::Client::new()
        .get(format!("{base}/subscription"))
        .header("x-tollgate-account", account)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn missed_cancellation_is_applied_by_one_local_sync_and_health_shows_it() {
    let stack = common::serve_stack("sync").await;
    let (base, port) = (stack.base.clone(), stack.port);
    let spec = |event: &str| TriggerSpec::new(event, "acct_s");
    trigger(&base, DEV_WEBHOOK_SECRET, &spec("checkout.session.completed"), false).await.unwrap();
    stack.drain().await;
    tollgate_dev::ops::sync(port, false).await.unwrap();

    trigger(&base, DEV_WEBHOOK_SECRET, &spec("customer.subscription.deleted"), true).await.unwrap();
    stack.drain().await;
    let unchanged = read(&base, "acct_s").await;
    tollgate_dev::ops::sync(port, false).await.unwrap();
    let after = read(&base, "acct_s").await;
    let health: serde_json::Value = reqwest::get(format!("{base}/health")).await.unwrap().json().await.unwrap();

    assert_eq!(unchanged["plan"], "pro", "{unchanged}");
    assert_eq!((after["plan"].as_str(), after["status"].as_str()), (Some("free"), Some("canceled")), "{after}");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["sync"]["replayed"], 1, "{health}");
    assert_eq!((health["sync"]["passed_over"].as_u64(), health["sync"]["partial"].as_bool()), (Some(0), Some(false)));
    assert!(health["sync"]["last_success_at"].is_i64() && health["sync"]["last_error"].is_null(), "{health}");
}
