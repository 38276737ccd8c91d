//! The configuration the functions read in the local stack ([`LocalEnv`]): the same
//! `Config::load` as in Lambda, given the local resources and local defaults.

use crate::resources::Resources;
use std::collections::BTreeMap;
use tollgate::edge::config::{Env, Source, vars};
use tollgate::edge::webhook::DEV_WEBHOOK_SECRET;

/// The key the functions use for the local Stripe stand-in (test-mode shaped; it never leaves
/// this machine).
const STANDIN_KEY: &str = "sk_test_tollgate_local_standin";

/// The configuration the functions read locally: the local resources' names always; every
/// other setting from the process environment when set there, else a local default (the
/// stand-in for Stripe, the local stack's own pages as redirects, the development webhook
/// secret). Settings without a default stay missing and fail as they would in Lambda.
#[derive(Debug, Clone)]
pub struct LocalEnv {
    resources: BTreeMap<&'static str, String>,
    defaults: BTreeMap<&'static str, String>,
}

impl LocalEnv {
    /// The values for `resources`, with Stripe at `{base}/stripe/` unless `STRIPE_SECRET_KEY`
    /// is set (then the real test-mode API).
    pub fn new(base: &str, resources: &Resources) -> anyhow::Result<Self> {
        let queue = |id: &str| resources.queue(id).map(|q| q.url.clone());
        let resources = BTreeMap::from([
            (vars::TABLE_NAME, resources.table.clone()),
            (vars::EVENTS_QUEUE_URL, queue("EventsQueue")?),
            (vars::NOTIFICATIONS_QUEUE_URL, queue("NotificationsQueue")?),
            (vars::EVENTS_DEAD_LETTER_QUEUE_URL, queue("EventsDeadLetterQueue")?),
            (vars::NOTIFICATIONS_DEAD_LETTER_QUEUE_URL, queue("NotificationsDeadLetterQueue")?),
        ]);
        let mut defaults = BTreeMap::from([
            (vars::STRIPE_WEBHOOK_SECRETS, DEV_WEBHOOK_SECRET.to_owned()),
            // The local stack only ever receives test-mode events.
            (vars::STRIPE_LIVEMODE, "false".to_owned()),
            (vars::STRIPE_TIMEOUT_MS, "5000".to_owned()),
            (vars::STRIPE_MAX_RETRIES, "2".to_owned()),
        ]);
        if Env.get(vars::STRIPE_SECRET_KEY).is_none() {
            defaults.insert(vars::STRIPE_SECRET_KEY, STANDIN_KEY.to_owned());
            defaults.insert(vars::STRIPE_API_BASE, format!("{base}/stripe/"));
        }
        if Env.get(vars::ALLOWED_REDIRECT_ORIGINS).is_none() {
            defaults.insert(vars::ALLOWED_REDIRECT_ORIGINS, base.to_owned());
            // The billing page at `/` ([`crate::server`]).
            defaults.insert(vars::DEFAULT_SUCCESS_URL, format!("{base}/?checkout=success"));
            defaults.insert(vars::DEFAULT_CANCEL_URL, format!("{base}/?checkout=cancel"));
            defaults.insert(vars::DEFAULT_RETURN_URL, format!("{base}/?portal=return"));
        }
        Ok(Self { resources, defaults })
    }

    /// These values with `name` set to `value` whatever the process environment says (tests
    /// of a setting).
    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.resources.insert(name, value.into());
        self
    }

    /// Whether Stripe is the local stand-in (no `STRIPE_SECRET_KEY` given).
    pub fn uses_standin(&self) -> bool {
        self.defaults.contains_key(vars::STRIPE_API_BASE)
    }
}

impl Source for LocalEnv {
    fn get(&self, name: &str) -> Option<String> {
        self.resources.get(name).cloned().or_else(|| Env.get(name)).or_else(|| self.defaults.get(name).cloned())
    }
}
