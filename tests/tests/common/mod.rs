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
        .create(&tollgate::adapters::aws::dynamodb(&aws), &tollgate::adapters::aws::sqs(&aws), &prefix)
        .await
        .expect("creating the template's table and queues on the local server");
    (aws, resources)
}

/// The whole local stack served on a free loopback port, as `tollgate-dev up` serves it:
/// every handler, the Stripe stand-in under `/stripe`, fresh resources.
pub struct LocalStack {
    pub base: String,
    pub port: u16,
    pub app: std::sync::Arc<tollgate_dev::server::App>,
    pub sqs: aws_sdk_sqs::Client,
    pub resources: Resources,
    pub standin: tollgate_standin::StandIn,
}

pub async fn serve_stack(test: &str) -> LocalStack {
    use tollgate_dev::server::{App, router};
    let (aws, resources) = local(test).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let standin = tollgate_standin::StandIn::new();
    let app = std::sync::Arc::new(App::local(&aws, &resources, &base).unwrap());
    tollgate_dev::travel::host_pages(&app, &standin, &base);
    let served = router(std::sync::Arc::clone(&app), Some(standin.router()));
    tokio::spawn(async move { axum::serve(listener, served).await });
    LocalStack { base, port, app, sqs: tollgate::adapters::aws::sqs(&aws), resources, standin }
}

/// [`serve_stack`] as `tollgate-dev up` wires it with the stand-in: every function, the
/// authorizers and the stand-in on the stack's own clock, which `/_dev/clock` moves.
pub async fn serve_clocked_stack(test: &str) -> LocalStack {
    serve_clocked_stack_syncing(test, false).await
}

/// [`serve_clocked_stack`] as `tollgate-dev up --sync-every` wires it when `sync_follows_clock`:
/// clock moves run the sync once per day crossed and at the end.
pub async fn serve_clocked_stack_syncing(test: &str, sync_follows_clock: bool) -> LocalStack {
    use tollgate_dev::server::{App, router};
    let (aws, resources) = local(test).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let template = Template::load(&template_path()).unwrap();
    let env = tollgate_dev::env::LocalEnv::new(&base, &resources).unwrap();
    let mut app = App::new(&aws, &template, &env).unwrap();
    app.sync_follows_clock = sync_follows_clock;
    let app = std::sync::Arc::new(app);
    let standin = app.standin.clone().expect("a stack on the stand-in has its own, on the stack's clock");
    tollgate_dev::travel::host_pages(&app, &standin, &base);
    let served = router(std::sync::Arc::clone(&app), None);
    tokio::spawn(async move { axum::serve(listener, served).await });
    LocalStack { base, port, app, sqs: tollgate::adapters::aws::sqs(&aws), resources, standin }
}

impl LocalStack {
    /// Signs and delivers `events` to the local intake in the order given (each must be
    /// accepted), then drains the queue through the worker.
    pub async fn deliver(&self, events: &[serde_json::Value]) {
        for event in events {
            let body = event.to_string();
            let now = tollgate::ports::clock::Clock::now(&tollgate::ports::clock::SystemClock);
            let header = tollgate::testing::signature_header(&body, tollgate::edge::webhook::DEV_WEBHOOK_SECRET, now);
            let status = reqwest::Client::new()
                .post(format!("{}/webhooks/stripe", self.base))
                .header("Stripe-Signature", header)
                .body(body)
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, 200, "{event}");
        }
        self.drain().await;
    }

    /// Moves the stack's clock to `to` (Unix seconds) and waits until what the stand-in played
    /// on the way was applied; answers the time reached.
    pub async fn move_clock(&self, to: i64) -> i64 {
        let response = reqwest::Client::new()
            .post(format!("{}/_dev/clock", self.base))
            .json(&serde_json::json!({"set": to, "wait": "applied"}))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        body["now"].as_i64().unwrap()
    }

    /// Every notification queued since the last call, in order, each taken off the queue (a
    /// FIFO queue holds a group's next message back while one is in flight).
    pub async fn notifications(&self) -> Vec<serde_json::Value> {
        let url = &self.resources.queue("NotificationsQueue").unwrap().url;
        let mut taken = Vec::new();
        loop {
            let received = self.sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.unwrap();
            if received.messages().is_empty() {
                return taken;
            }
            for message in received.messages() {
                taken.push(serde_json::from_str(message.body().unwrap()).unwrap());
                let handle = message.receipt_handle().unwrap();
                self.sqs.delete_message().queue_url(url).receipt_handle(handle).send().await.unwrap();
            }
        }
    }

    /// Runs the local worker until the events queue is empty.
    pub async fn drain(&self) {
        let url = &self.resources.queue("EventsQueue").unwrap().url;
        for _ in 0..20 {
            if tollgate_dev::worker::poll_once(&self.app, &self.sqs, url).await.unwrap() == 0 {
                return;
            }
        }
        panic!("the events queue did not drain");
    }
}

/// Every message body waiting on the queue at `url` (received, not deleted).
#[allow(dead_code, reason = "not every test binary reads a queue")]
pub async fn receive_all(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    for _ in 0..5 {
        let out = sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.unwrap();
        if out.messages().is_empty() {
            break;
        }
        bodies.extend(out.messages().iter().filter_map(|m| m.body().map(str::to_owned)));
    }
    bodies
}

/// Waits, when less than `needed` is left of the current clock minute, until the next one
/// starts: the per-minute limits are fixed windows aligned to the minute (`ratelimit`), so a
/// test that fills one over the live clock must not straddle two.
pub async fn within_one_minute(needed: std::time::Duration) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let into_minute = std::time::Duration::from_millis(u64::try_from(now.as_millis() % 60_000).unwrap_or(0));
    let left = std::time::Duration::from_secs(60).saturating_sub(into_minute);
    if left < needed {
        tokio::time::sleep(left + std::time::Duration::from_millis(50)).await;
    }
}
