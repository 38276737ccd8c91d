//! Typed configuration, one struct per function, read from environment variables whose names
//! match `template.yaml` exactly. Loading fails at cold start with a message naming the
//! variable (never its value).

use crate::adapters::stripe::StripeConfig;
use crate::domain::redirect::{AllowList, Redirects};
use secrecy::SecretString;
use std::time::Duration;

/// Environment variable names, shared by the functions, the template and the local stack.
pub mod vars {
    pub const TABLE_NAME: &str = "TABLE_NAME";
    pub const EVENTS_QUEUE_URL: &str = "EVENTS_QUEUE_URL";
    pub const IDENTITY_CLAIM: &str = "IDENTITY_CLAIM";
    pub const GRACE_DAYS: &str = "GRACE_DAYS";
    pub const STRIPE_SECRET_KEY: &str = "STRIPE_SECRET_KEY";
    pub const STRIPE_API_BASE: &str = "STRIPE_API_BASE";
    pub const STRIPE_TIMEOUT_MS: &str = "STRIPE_TIMEOUT_MS";
    pub const STRIPE_MAX_RETRIES: &str = "STRIPE_MAX_RETRIES";
    pub const ALLOWED_REDIRECT_ORIGINS: &str = "ALLOWED_REDIRECT_ORIGINS";
    pub const DEFAULT_SUCCESS_URL: &str = "DEFAULT_SUCCESS_URL";
    pub const DEFAULT_CANCEL_URL: &str = "DEFAULT_CANCEL_URL";
    pub const DEFAULT_RETURN_URL: &str = "DEFAULT_RETURN_URL";
    pub const CHECKOUT_SESSIONS_PER_MINUTE: &str = "CHECKOUT_SESSIONS_PER_MINUTE";
    pub const CHECKOUT_SESSION_TTL_SECONDS: &str = "CHECKOUT_SESSION_TTL_SECONDS";
    pub const NOTIFICATIONS_QUEUE_URL: &str = "NOTIFICATIONS_QUEUE_URL";
    pub const STRIPE_WEBHOOK_SECRETS: &str = "STRIPE_WEBHOOK_SECRETS";
    pub const STRIPE_LIVEMODE: &str = "STRIPE_LIVEMODE";
    pub const API_KEYS_PER_ACCOUNT: &str = "API_KEYS_PER_ACCOUNT";
    pub const ACCOUNT_DELETION_BUDGET_MS: &str = "ACCOUNT_DELETION_BUDGET_MS";
    pub const EVENTS_DEAD_LETTER_QUEUE_URL: &str = "EVENTS_DEAD_LETTER_QUEUE_URL";
    pub const NOTIFICATIONS_DEAD_LETTER_QUEUE_URL: &str = "NOTIFICATIONS_DEAD_LETTER_QUEUE_URL";
    pub const ADOPT_METADATA_KEY: &str = "ADOPT_METADATA_KEY";
}

/// Why configuration could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("missing environment variable {0}")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// A source of configuration values: the process environment, or a map in tests.
pub trait Source {
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Env;

impl Source for Env {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl<F: Fn(&str) -> Option<String>> Source for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name)
    }
}

fn required(src: &impl Source, name: &'static str) -> Result<String, ConfigError> {
    src.get(name).ok_or(ConfigError::Missing(name))
}

/// `value` of setting `name` if it lies in `range`.
fn within(value: i64, name: &'static str, range: std::ops::RangeInclusive<i64>) -> Result<i64, ConfigError> {
    if range.contains(&value) {
        return Ok(value);
    }
    let reason = format!("{value} is outside {} to {}", range.start(), range.end());
    Err(ConfigError::Invalid { name, reason })
}

fn parsed<T: std::str::FromStr>(src: &impl Source, name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match src.get(name) {
        None => Ok(default),
        Some(raw) => raw.parse().map_err(|e: T::Err| ConfigError::Invalid { name, reason: e.to_string() }),
    }
}

/// Where the caller's account id comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityConfig {
    /// The JWT claim holding the account id (default `sub`).
    pub claim: String,
}

impl IdentityConfig {
    pub fn load(src: &impl Source) -> Self {
        Self { claim: src.get(vars::IDENTITY_CLAIM).unwrap_or_else(|| "sub".to_owned()) }
    }
}

impl StripeConfig {
    pub fn load(src: &impl Source) -> Result<Self, ConfigError> {
        let secret_key = required(src, vars::STRIPE_SECRET_KEY)?;
        if !(secret_key.starts_with("sk_") || secret_key.starts_with("rk_")) {
            return Err(ConfigError::Invalid {
                name: vars::STRIPE_SECRET_KEY,
                reason: "expected a Stripe secret or restricted key (sk_... or rk_...)".into(),
            });
        }
        let api_base =
            src.get(vars::STRIPE_API_BASE).map(|base| if base.ends_with('/') { base } else { format!("{base}/") });
        Ok(Self {
            secret_key: SecretString::from(secret_key),
            api_base,
            timeout: Duration::from_millis(parsed(src, vars::STRIPE_TIMEOUT_MS, 10_000u64)?),
            max_retries: parsed(src, vars::STRIPE_MAX_RETRIES, 3u32)?,
        })
    }
}

/// The `subscription` function: reads only DynamoDB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionConfig {
    pub table_name: String,
    pub identity: IdentityConfig,
}

impl SubscriptionConfig {
    pub fn load(src: &impl Source) -> Result<Self, ConfigError> {
        Ok(Self { table_name: required(src, vars::TABLE_NAME)?, identity: IdentityConfig::load(src) })
    }
}

/// Loads the allow-list and the default URLs; a default outside the allow-list is a
/// configuration error, caught at cold start.
pub fn redirects(src: &impl Source) -> Result<Redirects, ConfigError> {
    let name = vars::ALLOWED_REDIRECT_ORIGINS;
    let allowed = AllowList::parse(&required(src, name)?).map_err(|reason| ConfigError::Invalid { name, reason })?;
    let url = |name: &'static str| -> Result<String, ConfigError> {
        let url = required(src, name)?;
        if !allowed.allows(&url) {
            return Err(ConfigError::Invalid { name, reason: "origin is not in ALLOWED_REDIRECT_ORIGINS".into() });
        }
        Ok(url)
    };
    Ok(Redirects {
        success_url: url(vars::DEFAULT_SUCCESS_URL)?,
        cancel_url: url(vars::DEFAULT_CANCEL_URL)?,
        return_url: url(vars::DEFAULT_RETURN_URL)?,
        allowed,
    })
}

/// The `checkout` function: Stripe writes and the account's billing items.
#[derive(Debug, Clone)]
pub struct CheckoutConfig {
    pub table_name: String,
    pub identity: IdentityConfig,
    pub stripe: StripeConfig,
    pub redirects: Redirects,
    /// New Checkout Sessions per account in any 60 seconds.
    pub sessions_per_minute: usize,
    /// How long a new Checkout Session can be paid, in seconds (Stripe allows 1800 to 86400).
    pub session_ttl_seconds: i64,
    /// Grace days, for projections rewritten after a plan change or cancellation.
    pub grace_days: u32,
    /// How long `DELETE /account` may work from its start before it answers `complete: false`.
    pub deletion_budget: Duration,
}

impl CheckoutConfig {
    pub fn load(src: &impl Source) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: required(src, vars::TABLE_NAME)?,
            identity: IdentityConfig::load(src),
            stripe: StripeConfig::load(src)?,
            redirects: redirects(src)?,
            sessions_per_minute: parsed(src, vars::CHECKOUT_SESSIONS_PER_MINUTE, 5usize)?,
            session_ttl_seconds: within(
                parsed(src, vars::CHECKOUT_SESSION_TTL_SECONDS, 3600i64)?,
                vars::CHECKOUT_SESSION_TTL_SECONDS,
                1800..=86_400,
            )?,
            grace_days: parsed(src, vars::GRACE_DAYS, 3u32)?,
            deletion_budget: Duration::from_millis(
                within(
                    parsed(src, vars::ACCOUNT_DELETION_BUDGET_MS, 20_000i64)?,
                    vars::ACCOUNT_DELETION_BUDGET_MS,
                    100..=25_000,
                )?
                .unsigned_abs(),
            ),
        })
    }
}

/// The `webhook-intake` function: verifies Stripe's deliveries and enqueues them.
#[derive(Debug, Clone)]
pub struct WebhookIntakeConfig {
    pub events_queue_url: String,
    /// The endpoint secrets (`whsec_...`, comma-separated); never printed.
    pub secrets: crate::edge::webhook::WebhookSecrets,
    /// Whether the endpoint receives live-mode events (`true`|`false`, default `false`).
    pub livemode: bool,
}

impl WebhookIntakeConfig {
    pub fn load(src: &impl Source) -> Result<Self, ConfigError> {
        let name = vars::STRIPE_WEBHOOK_SECRETS;
        let secrets = crate::edge::webhook::WebhookSecrets::parse(&required(src, name)?)
            .map_err(|e| ConfigError::Invalid { name, reason: e.to_string() })?;
        Ok(Self {
            events_queue_url: required(src, vars::EVENTS_QUEUE_URL)?,
            secrets,
            livemode: parsed(src, vars::STRIPE_LIVEMODE, false)?,
        })
    }
}

/// The `webhook-worker` function: Stripe reads, the table, the notifications queue.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub table_name: String,
    pub notifications_queue_url: String,
    pub stripe: StripeConfig,
    /// Days a `past_due` subscription keeps access after its first failed payment.
    pub grace_days: u32,
    /// The customer metadata key an adoption reads account ids from by default (none: a map).
    pub adopt_metadata_key: Option<String>,
}

impl WorkerConfig {
    pub fn load(src: &impl Source) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: required(src, vars::TABLE_NAME)?,
            notifications_queue_url: required(src, vars::NOTIFICATIONS_QUEUE_URL)?,
            stripe: StripeConfig::load(src)?,
            grace_days: parsed(src, vars::GRACE_DAYS, 3u32)?,
            adopt_metadata_key: src.get(vars::ADOPT_METADATA_KEY).filter(|k| !k.trim().is_empty()),
        })
    }
}

/// The `ops` function: the worker's event path (replays go through it) and both queues with
/// their dead-letter queues (redrives).
#[derive(Debug, Clone)]
pub struct OpsConfig {
    pub worker: WorkerConfig,
    pub events_queue_url: String,
    pub events_dead_letter_queue_url: String,
    pub notifications_dead_letter_queue_url: String,
}

impl OpsConfig {
    pub fn load(src: &impl Source) -> Result<Self, ConfigError> {
        Ok(Self {
            worker: WorkerConfig::load(src)?,
            events_queue_url: required(src, vars::EVENTS_QUEUE_URL)?,
            events_dead_letter_queue_url: required(src, vars::EVENTS_DEAD_LETTER_QUEUE_URL)?,
            notifications_dead_letter_queue_url: required(src, vars::NOTIFICATIONS_DEAD_LETTER_QUEUE_URL)?,
        })
    }
}

/// Largest `API_KEYS_PER_ACCOUNT` accepted.
pub const MAX_API_KEYS_PER_ACCOUNT: u32 = 1000;

/// The `keys` function: API keys on JWT routes.
#[derive(Debug, Clone)]
pub struct KeysConfig {
    pub table_name: String,
    pub identity: IdentityConfig,
    /// `tg_live_` keys when `STRIPE_LIVEMODE` is `true`, else `tg_test_`.
    pub mode: crate::domain::apikeys::Mode,
    /// Keys holding a slot per account at once (1 to [`MAX_API_KEYS_PER_ACCOUNT`], default 10).
    pub max_active: u32,
}

impl KeysConfig {
    pub fn load(src: &impl Source) -> Result<Self, ConfigError> {
        let name = vars::API_KEYS_PER_ACCOUNT;
        let max_active = parsed(src, name, 10u32)?;
        if !(1..=MAX_API_KEYS_PER_ACCOUNT).contains(&max_active) {
            return Err(ConfigError::Invalid { name, reason: format!("must be 1 to {MAX_API_KEYS_PER_ACCOUNT}") });
        }
        let live = parsed(src, vars::STRIPE_LIVEMODE, false)?;
        Ok(Self {
            table_name: required(src, vars::TABLE_NAME)?,
            identity: IdentityConfig::load(src),
            mode: if live { crate::domain::apikeys::Mode::Live } else { crate::domain::apikeys::Mode::Test },
            max_active,
        })
    }
}

/// The `usage` function: the table and the notifications queue (usage alerts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageConfig {
    pub table_name: String,
    pub notifications_queue_url: String,
    pub identity: IdentityConfig,
}

impl UsageConfig {
    pub fn load(src: &impl Source) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: required(src, vars::TABLE_NAME)?,
            notifications_queue_url: required(src, vars::NOTIFICATIONS_QUEUE_URL)?,
            identity: IdentityConfig::load(src),
        })
    }
}

/// The `authorizer` function: reads keys and account state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizerConfig {
    pub table_name: String,
}

impl AuthorizerConfig {
    pub fn load(src: &impl Source) -> Result<Self, ConfigError> {
        Ok(Self { table_name: required(src, vars::TABLE_NAME)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;

    fn source(pairs: &[(&str, &str)]) -> impl Source {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name: &str| map.get(name).cloned()
    }

    #[test]
    fn missing_variable_is_named() {
        let err = SubscriptionConfig::load(&source(&[])).unwrap_err();

        assert_eq!(err.to_string(), "missing environment variable TABLE_NAME");
    }

    #[test]
    fn a_checkout_session_lives_an_hour_unless_set_within_stripe_s_range() {
        let with = |ttl: Option<&str>| {
            let mut pairs = vec![
                ("TABLE_NAME", "t"),
                ("STRIPE_SECRET_KEY", "sk_test_x"),
                ("DEFAULT_SUCCESS_URL", "https://app.example.com/ok"),
                ("DEFAULT_CANCEL_URL", "https://app.example.com/no"),
                ("DEFAULT_RETURN_URL", "https://app.example.com/billing"),
                ("ALLOWED_REDIRECT_ORIGINS", "https://app.example.com"),
            ];
            pairs.extend(ttl.map(|ttl| ("CHECKOUT_SESSION_TTL_SECONDS", ttl)));
            CheckoutConfig::load(&source(&pairs)).map(|c| c.session_ttl_seconds)
        };

        assert_eq!(with(None).unwrap(), 3_600);
        assert_eq!(with(Some("1800")).unwrap(), 1_800);
        assert_eq!(with(Some("86400")).unwrap(), 86_400);
        for refused in ["1799", "86401", "soon"] {
            let err = with(Some(refused)).unwrap_err().to_string();
            assert!(err.contains("CHECKOUT_SESSION_TTL_SECONDS"), "{refused}: {err}");
        }
    }

    #[test]
    fn identity_claim_defaults_to_sub() {
        let config = SubscriptionConfig::load(&source(&[("TABLE_NAME", "t")])).unwrap();

        assert_eq!(config.identity.claim, "sub");
    }

    #[test]
    fn stripe_key_is_redacted_in_debug_and_base_gets_a_slash() {
        let src =
            source(&[("STRIPE_SECRET_KEY", "sk_test_abc123"), ("STRIPE_API_BASE", "http://127.0.0.1:3000/stripe")]);

        let config = StripeConfig::load(&src).unwrap();

        assert!(!format!("{config:?}").contains("abc123"));
        assert_eq!(config.secret_key.expose_secret(), "sk_test_abc123");
        assert_eq!(config.api_base.as_deref(), Some("http://127.0.0.1:3000/stripe/"));
        assert_eq!(config.max_retries, 3);
    }

    #[test]
    fn default_redirect_outside_the_allow_list_is_refused_at_load() {
        let src = source(&[
            ("ALLOWED_REDIRECT_ORIGINS", "https://app.example.com"),
            ("DEFAULT_SUCCESS_URL", "https://app.example.com/ok"),
            ("DEFAULT_CANCEL_URL", "https://elsewhere.example/cancel"),
            ("DEFAULT_RETURN_URL", "https://app.example.com/billing"),
        ]);

        let err = redirects(&src).unwrap_err();

        assert!(err.to_string().contains("DEFAULT_CANCEL_URL"), "{err}");
    }

    #[test]
    fn invalid_values_name_the_variable_but_not_the_value() {
        let bad_key = StripeConfig::load(&source(&[("STRIPE_SECRET_KEY", "pk_live_secretish")])).unwrap_err();
        let bad_timeout =
            StripeConfig::load(&source(&[("STRIPE_SECRET_KEY", "sk_test_x"), ("STRIPE_TIMEOUT_MS", "soon")]))
                .unwrap_err();

        assert!(bad_key.to_string().contains("STRIPE_SECRET_KEY"));
        assert!(!bad_key.to_string().contains("secretish"));
        assert!(bad_timeout.to_string().contains("STRIPE_TIMEOUT_MS"));
    }

    #[test]
    fn webhook_intake_reads_rotating_secrets_and_defaults_to_test_mode() {
        let src = source(&[("EVENTS_QUEUE_URL", "http://q"), ("STRIPE_WEBHOOK_SECRETS", "whsec_a,whsec_b")]);
        let live = source(&[
            ("EVENTS_QUEUE_URL", "http://q"),
            ("STRIPE_WEBHOOK_SECRETS", "whsec_a"),
            ("STRIPE_LIVEMODE", "yes"),
        ]);
        let leaked = source(&[("EVENTS_QUEUE_URL", "http://q"), ("STRIPE_WEBHOOK_SECRETS", "sk_live_leak")]);

        let config = WebhookIntakeConfig::load(&src).unwrap();

        assert_eq!(config.secrets.len(), 2);
        assert!(!config.livemode);
        assert!(!format!("{config:?}").contains("whsec_a"));
        assert!(WebhookIntakeConfig::load(&live).unwrap_err().to_string().contains("STRIPE_LIVEMODE"));
        let err = WebhookIntakeConfig::load(&leaked).unwrap_err().to_string();
        assert!(err.contains("STRIPE_WEBHOOK_SECRETS") && !err.contains("leak"), "{err}");
    }

    #[test]
    fn keys_default_to_test_mode_and_ten_per_account() {
        let config = KeysConfig::load(&source(&[("TABLE_NAME", "t")])).unwrap();
        let live = KeysConfig::load(&source(&[("TABLE_NAME", "t"), ("STRIPE_LIVEMODE", "true")])).unwrap();
        let zero = KeysConfig::load(&source(&[("TABLE_NAME", "t"), ("API_KEYS_PER_ACCOUNT", "0")])).unwrap_err();
        let huge = KeysConfig::load(&source(&[("TABLE_NAME", "t"), ("API_KEYS_PER_ACCOUNT", "1e9")])).unwrap_err();

        assert_eq!((config.mode, config.max_active), (crate::domain::apikeys::Mode::Test, 10));
        assert_eq!(live.mode, crate::domain::apikeys::Mode::Live);
        assert!(zero.to_string().contains("API_KEYS_PER_ACCOUNT"), "{zero}");
        assert!(huge.to_string().contains("API_KEYS_PER_ACCOUNT"), "{huge}");
    }
}
