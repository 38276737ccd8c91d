//! Typed configuration, one struct per function, read from environment variables whose names
//! match `template.yaml` exactly. Loading fails at cold start with a message naming the
//! variable (never its value).

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

/// How to reach Stripe.
#[derive(Debug, Clone)]
pub struct StripeConfig {
    /// `sk_test_...` or `sk_live_...`; never printed (`SecretString`'s `Debug` redacts it).
    pub secret_key: SecretString,
    /// Base URL of the API, ending in `/`; `None` means Stripe itself.
    pub api_base: Option<String>,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Attempts after the first, on 429, 5xx and connection errors only.
    pub max_retries: u32,
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
    fn invalid_values_name_the_variable_but_not_the_value() {
        let bad_key = StripeConfig::load(&source(&[("STRIPE_SECRET_KEY", "pk_live_secretish")])).unwrap_err();
        let bad_timeout =
            StripeConfig::load(&source(&[("STRIPE_SECRET_KEY", "sk_test_x"), ("STRIPE_TIMEOUT_MS", "soon")]))
                .unwrap_err();

        assert!(bad_key.to_string().contains("STRIPE_SECRET_KEY"));
        assert!(!bad_key.to_string().contains("secretish"));
        assert!(bad_timeout.to_string().contains("STRIPE_TIMEOUT_MS"));
    }
}
