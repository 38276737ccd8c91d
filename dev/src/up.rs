//! `tollgate-dev up`: the whole bundle on loopback until Ctrl-C.

use crate::env::LocalEnv;
use crate::moto::Moto;
use crate::resources::Template;
use crate::server::{App, router};
use anyhow::{Context, Result};
use std::sync::Arc;

/// Options of `up`.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub port: u16,
    pub moto_port: u16,
    /// Prefix of the local table and queue names.
    pub prefix: String,
    /// Run a sync every this many seconds of the stack's time (off by default:
    /// `tollgate-dev sync` runs one); a clock move then also runs it once per day crossed.
    pub sync_every: Option<u64>,
    /// The stand-in's retry schedule of declined renewals.
    pub dunning: tollgate_standin::Dunning,
}

/// Runs the local stack until Ctrl-C or SIGTERM, then stops everything it started.
pub async fn up(options: UpOptions) -> Result<()> {
    let (moto, endpoint) = match std::env::var("AWS_ENDPOINT_URL").ok().filter(|v| !v.is_empty()) {
        Some(endpoint) => (None, endpoint),
        None => {
            let moto = Moto::start(options.moto_port).await?;
            let endpoint = moto.endpoint.clone();
            (Some(moto), endpoint)
        }
    };
    let aws = crate::local::sdk_config(&endpoint).await;
    let template = Template::load(&crate::resources::template_path())?;
    let resources = template
        .create(&tollgate::adapters::aws::dynamodb(&aws), &tollgate::adapters::aws::sqs(&aws), &options.prefix)
        .await
        .context("creating the table and queues of template.yaml")?;

    let base = format!("http://127.0.0.1:{}", options.port);
    let local = LocalEnv::new(&base, &resources)?;
    let mut app = App::new(&aws, &template, &local)?;
    if let Some(standin) = &app.standin {
        standin.set_dunning(options.dunning.clone());
    }
    match &app.standin {
        Some(_) => tracing::info!("Stripe: the local stand-in at {base}/stripe/"),
        None => tracing::info!("Stripe: the test-mode API (STRIPE_SECRET_KEY is set)"),
    }
    // The timer's runs follow the stack's time: a clock move runs the sync once per day crossed.
    app.sync_follows_clock = options.sync_every.is_some();
    let app = Arc::new(app);
    if let Some(standin) = &app.standin {
        crate::travel::host_pages(&app, standin, &base);
    }
    let events_url = resources.queue("EventsQueue")?.url.clone();
    let worker = tokio::spawn(crate::worker::run(Arc::clone(&app), tollgate::adapters::aws::sqs(&aws), events_url));
    let timer = options.sync_every.map(|seconds| {
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
                let replay =
                    tollgate::app::sync::run(&app.sync, tollgate::app::sync::Mode::Replay, &tollgate::app::Never);
                if let Err(err) = replay.await {
                    tracing::warn!(error = %err, "scheduled local sync failed");
                }
            }
        })
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{}", options.port))?;

    println!("Tollgate local stack on {base}");
    println!("  billing page  {base}/  (sign in with any account id: local only)");
    println!("  DynamoDB/SQS  {endpoint}  (table {}, queue {})", resources.table, resources.queue("EventsQueue")?.url);
    println!("  try: curl -H 'x-tollgate-account: acct_demo' {base}/subscription");
    println!("  API keys: cargo run -p tollgate-dev -- create-key --account acct_demo, then");
    println!("            curl -H 'Authorization: Bearer tg_test_...' {base}/api/subscription");
    println!("  Ctrl-C stops everything.");
    axum::serve(listener, router(app, None)).with_graceful_shutdown(shutdown_signal()).await.context("serving")?;
    worker.abort();
    if let Some(timer) = timer {
        timer.abort();
    }
    if let Some(moto) = moto {
        moto.stop().await?;
    }
    println!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminate = async {
        match term.as_mut() {
            Some(term) => {
                term.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        () = terminate => {}
    }
}
