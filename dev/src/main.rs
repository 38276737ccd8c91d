//! The `tollgate-dev` command: wiring only.

use clap::builder::PossibleValuesParser;
use clap::{Parser, Subcommand};
use tollgate_dev::keys::{CreateKey, create_key};
use tollgate_dev::ops::{ClockMove, OpsCall, card, clock, ops, status, sync};
use tollgate_dev::trigger::{TriggerOptions, run as trigger, run_pay};
use tollgate_dev::up::{UpOptions, up};
use tollgate_standin::{TRIGGER_EVENTS, TriggerSpec};

#[derive(Parser)]
#[command(name = "tollgate-dev", about = "Tollgate's local stack")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole bundle on 127.0.0.1 until Ctrl-C.
    Up {
        #[arg(long, env = "PORT", default_value_t = 3000)]
        port: u16,
        #[arg(long, env = "MOTO_PORT", default_value_t = tollgate_dev::local::DEFAULT_MOTO_PORT)]
        moto_port: u16,
        #[arg(long, default_value = "tollgate-local")]
        prefix: String,
        /// Also run a sync every SECONDS of the stack's time (off by default; `tollgate-dev
        /// sync` runs one).
        #[arg(long, value_name = "SECONDS")]
        sync_every: Option<u64>,
        /// The stand-in's retries of a declined renewal: days after the attempt before, each.
        #[arg(long, value_name = "DAYS", value_delimiter = ',', default_values_t = [3u32, 5, 7])]
        retry_days: Vec<u32>,
        /// What a subscription becomes once every retry failed.
        #[arg(long, value_enum, default_value = "canceled")]
        after_retries: AfterRetriesArg,
    },
    /// Like `stripe trigger`: bring the running stack's Stripe stand-in to the state EVENT
    /// implies and send the events Stripe would send, signed, to the local webhook intake.
    Trigger {
        /// The Stripe event type to trigger.
        #[arg(value_parser = PossibleValuesParser::new(TRIGGER_EVENTS))]
        event: String,
        /// The Tollgate account (its Stripe customer has metadata tollgate_account_id=<ID>).
        #[arg(long, value_name = "ID")]
        account: String,
        /// Plan of a new subscription (default pro), or the target of a plan change.
        #[arg(long, value_name = "TIER")]
        plan: Option<String>,
        /// Billing interval of a new subscription (default month) or of a plan change.
        #[arg(long, value_parser = ["month", "year"])]
        interval: Option<String>,
        /// How charge.dispute.closed ends (default won).
        #[arg(long, value_parser = ["won", "lost"])]
        outcome: Option<String>,
        /// A credit pack of plans.toml: buys it (checkout.session.completed), refunds its last
        /// purchase (charge.refunded), or disputes its last purchase's charge
        /// (charge.dispute.created; charge.dispute.closed with --outcome).
        #[arg(long, value_name = "ID", conflicts_with_all = ["plan", "interval"])]
        pack: Option<String>,
        /// Play a Stripe account Tollgate did not make (adoption): the account id goes under
        /// this metadata key on the customer only ("" for no metadata), tollgate_account_id
        /// nowhere.
        #[arg(long, value_name = "KEY")]
        metadata_key: Option<String>,
        /// Record the events in the stand-in without delivering them (a missed delivery).
        #[arg(long)]
        skip_delivery: bool,
        /// The local stack's port.
        #[arg(long, env = "PORT", default_value_t = 3000)]
        port: u16,
    },
    /// Run one sync in the running local stack: replay missed events (and with --full,
    /// reconcile every subscription); prints the outcome, fails when the run failed.
    Sync {
        #[arg(long)]
        full: bool,
        #[arg(long, env = "PORT", default_value_t = 3000)]
        port: u16,
    },
    /// Create an API key for an account of the running local stack (through POST /api-keys);
    /// prints the answer, which holds the key: it is shown this once.
    CreateKey {
        /// The account the key speaks for.
        #[arg(long, value_name = "ID")]
        account: String,
        #[arg(long, default_value = "local")]
        name: String,
        /// A scope (repeat for several): usage:read, subscription:read. Default: all.
        #[arg(long = "scope", value_name = "SCOPE", value_parser = ["usage:read", "subscription:read"])]
        scopes: Vec<String>,
        /// When the key stops working, Unix seconds (default: never).
        #[arg(long, value_name = "UNIX_SECONDS")]
        expires_at: Option<i64>,
        #[arg(long, env = "PORT", default_value_t = 3000)]
        port: u16,
    },
    /// Print the HTTP API's OpenAPI 3.1 document (what `openapi.json` holds; `make openapi`
    /// writes it).
    Openapi,
    /// Show the local stack's clock, or move it forward (`set`, `advance`); every function and
    /// the Stripe stand-in follow it.
    Clock {
        #[command(subcommand)]
        action: Option<ClockAction>,
        #[arg(long, env = "PORT", default_value_t = 3000, global = true)]
        port: u16,
    },
    /// Make an account's card decline, or pay, every renewal and retry the Stripe stand-in
    /// attempts from now on (clock moves play them).
    Card {
        /// The Tollgate account (its customers' metadata `tollgate_account_id`).
        account: String,
        #[arg(value_enum)]
        behaviour: CardArg,
        #[arg(long, env = "PORT", default_value_t = 3000)]
        port: u16,
    },
    /// Pay an open Checkout Session (made by `POST /checkout` or `/credits/checkout`) in the
    /// Stripe stand-in as its customer would, and deliver the events that makes.
    Pay {
        /// The session's id (`session_id` of the checkout's answer).
        session: String,
        #[arg(long, env = "PORT", default_value_t = 3000)]
        port: u16,
    },
    /// Events that failed in the running local stack: list them, replay one from Stripe
    /// (the runbook's `GET /operator/events/failed` and `POST .../replay`).
    Events {
        #[command(subcommand)]
        action: EventsAction,
        #[arg(long, env = "PORT", default_value_t = 3000, global = true)]
        port: u16,
    },
    /// Adopt the Stripe account's existing customers (a dry run unless --apply) on the running
    /// local stack: starts it (POST /operator/adoption), runs syncs until it ends, prints its
    /// report as JSON; fails when it failed.
    Adopt {
        /// The customer metadata key holding the account id (default ADOPT_METADATA_KEY).
        #[arg(long, value_name = "KEY")]
        metadata_key: Option<String>,
        /// A file of `customer_id,account_id` lines (no header): they come before metadata.
        #[arg(long, value_name = "FILE")]
        map: Option<std::path::PathBuf>,
        /// Link and write (without it: a dry run that changes nothing).
        #[arg(long)]
        apply: bool,
        /// Write tollgate_account_id onto each adopted customer.
        #[arg(long)]
        write_metadata: bool,
        #[arg(long, env = "PORT", default_value_t = 3000)]
        port: u16,
    },
    /// The running local stack's dead-letter queues.
    Queues {
        #[command(subcommand)]
        action: QueuesAction,
        #[arg(long, env = "PORT", default_value_t = 3000, global = true)]
        port: u16,
    },
    /// Print the running local stack's health and the last sync's outcome.
    Status {
        #[arg(long, env = "PORT", default_value_t = 3000)]
        port: u16,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum AfterRetriesArg {
    Canceled,
    Unpaid,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum CardArg {
    Decline,
    Pay,
}

#[derive(Subcommand)]
enum EventsAction {
    /// List the events that failed, newest first (one page).
    Failed {
        #[arg(long)]
        limit: Option<u32>,
        /// `next_cursor` of the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Read one event from Stripe and apply it through the worker's path, exactly once; fails
    /// when it fails again.
    Replay { event_id: String },
}

#[derive(Subcommand)]
enum QueuesAction {
    /// Move every message of a dead-letter queue back to its queue.
    Redrive {
        #[arg(value_parser = ["events", "notifications"])]
        queue: String,
    },
}

#[derive(Subcommand)]
enum ClockAction {
    /// Set the clock to a time: RFC 3339 (2027-01-31T12:00:00Z) or Unix seconds.
    Set { at: String },
    /// Move the clock forward: 30d, 12h, 90m, 45s or seconds.
    Advance { by: String },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env().add_directive("info".parse()?))
        .init();
    match Cli::parse().command {
        Command::Up { port, moto_port, prefix, sync_every, retry_days, after_retries } => {
            let after_retries = match after_retries {
                AfterRetriesArg::Canceled => tollgate_standin::AfterRetries::Canceled,
                AfterRetriesArg::Unpaid => tollgate_standin::AfterRetries::Unpaid,
            };
            let dunning = tollgate_standin::Dunning { retry_days, after_retries };
            up(UpOptions { port, moto_port, prefix, sync_every, dunning }).await
        }
        Command::Trigger { event, account, plan, interval, outcome, pack, metadata_key, skip_delivery, port } => {
            let spec = TriggerSpec { event, account, plan, interval, outcome, pack, metadata_key };
            trigger(TriggerOptions { port, spec, skip_delivery }).await
        }
        Command::Sync { full, port } => sync(port, full).await,
        Command::CreateKey { account, name, scopes, expires_at, port } => {
            let answer = create_key(&CreateKey { port, account, name, scopes, expires_at }).await?;
            println!("{}", serde_json::to_string_pretty(&answer)?);
            Ok(())
        }
        Command::Status { port } => status(port).await,
        Command::Events { action, port } => {
            let call = match action {
                EventsAction::Failed { limit, cursor } => OpsCall::Failed { limit, cursor },
                EventsAction::Replay { event_id } => OpsCall::Replay { event_id },
            };
            ops(port, call).await
        }
        Command::Adopt { metadata_key, map, apply, write_metadata, port } => {
            let map = match map {
                Some(path) => tollgate_dev::ops::read_map(&anyhow::Context::with_context(
                    std::fs::read_to_string(&path),
                    || format!("reading {}", path.display()),
                )?)?,
                None => Vec::new(),
            };
            let mut request = serde_json::json!({ "apply": apply, "write_metadata": write_metadata, "map": map });
            if let Some(key) = metadata_key {
                request["metadata_key"] = serde_json::Value::String(key);
            }
            ops(port, OpsCall::Adopt { request }).await
        }
        Command::Queues { action: QueuesAction::Redrive { queue }, port } => {
            ops(port, OpsCall::Redrive { queue }).await
        }
        Command::Pay { session, port } => run_pay(port, &session).await,
        Command::Card { account, behaviour, port } => {
            let behaviour = match behaviour {
                CardArg::Decline => tollgate_standin::CardBehaviour::Decline,
                CardArg::Pay => tollgate_standin::CardBehaviour::Pay,
            };
            card(port, &account, behaviour).await
        }
        Command::Clock { action, port } => {
            let action = match action {
                None => ClockMove::Show,
                Some(ClockAction::Set { at }) => ClockMove::Set(at),
                Some(ClockAction::Advance { by }) => ClockMove::Advance(by),
            };
            clock(port, action).await
        }
        Command::Openapi => {
            print!("{}", tollgate::edge::openapi::json());
            Ok(())
        }
    }
}
