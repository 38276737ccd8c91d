//! The edge every function shares: the HTTP mapping (`http`), the OpenAPI document (`openapi`),
//! Stripe webhook verification (`webhook`), typed configuration (`config`), and the wiring of
//! use cases onto the real adapters (`wire`).

pub mod config;
pub mod http;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod webhook;
pub mod wire;
