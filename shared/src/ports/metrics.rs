//! Counts that alarms watch, written as CloudWatch Embedded Metric Format (EMF) lines on
//! stdout: Lambda ships stdout to CloudWatch Logs, which turns each line into a metric with no
//! API call and no extra permission. The namespace is `METRICS_NAMESPACE` (the template sets
//! `Tollgate/<stack name>`), else `Tollgate`.

use serde_json::json;
use std::sync::OnceLock;

/// The environment variable naming the metrics' namespace.
pub const NAMESPACE_VAR: &str = "METRICS_NAMESPACE";
const DEFAULT_NAMESPACE: &str = "Tollgate";

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// An event passed over as unprocessable: a queued message that can never be processed,
    /// or an event the sync gave up on after its bounded tries. Each is recorded as a
    /// `FailedEvent`; the alarm on this metric sends someone to look.
    EventsUnprocessable,
    /// A usage counter that cannot be reported to its Stripe meter (a pending report older
    /// than Stripe's deduplication, or usage older than Stripe accepts).
    MeterReportsFailed,
    /// A usage window whose Stripe meter total differs from Tollgate's.
    MeterDrift,
    /// Seconds since the oldest unit of a paying account not yet reported to its Stripe meter
    /// was counted, as each meter pass sees it (a gauge: its alarm takes the maximum).
    MeterReportLag,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Self::EventsUnprocessable => "EventsUnprocessable",
            Self::MeterReportsFailed => "MeterReportsFailed",
            Self::MeterDrift => "MeterDrift",
            Self::MeterReportLag => "MeterReportLag",
        }
    }

    /// The CloudWatch unit of its values.
    pub fn unit(self) -> &'static str {
        match self {
            Self::MeterReportLag => "Seconds",
            _ => "Count",
        }
    }
}

/// The EMF line counting `value` of `metric` at `timestamp_ms`.
pub fn line(namespace: &str, metric: Metric, value: u64, timestamp_ms: i64) -> String {
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [[]],
                "Metrics": [{"Name": metric.name(), "Unit": metric.unit()}],
            }],
        },
        metric.name(): value,
    })
    .to_string()
}

/// Counts `value` of `metric` now.
pub fn count(metric: Metric, value: u64) {
    record(metric, value);
}

/// Records `value` of `metric` now (a count, or a gauge's reading).
pub fn record(metric: Metric, value: u64) {
    static NAMESPACE: OnceLock<String> = OnceLock::new();
    let namespace = NAMESPACE.get_or_init(|| std::env::var(NAMESPACE_VAR).unwrap_or_else(|_| DEFAULT_NAMESPACE.into()));
    let now_ms = crate::ports::clock::Clock::now_ms(&crate::ports::clock::SystemClock);
    println!("{}", line(namespace, metric, value, now_ms));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_one_emf_document() {
        let parsed: serde_json::Value =
            serde_json::from_str(&line("Tollgate/prod", Metric::EventsUnprocessable, 2, 1_700_000_000_000)).unwrap();

        let directive = &parsed["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(parsed["_aws"]["Timestamp"], 1_700_000_000_000i64);
        assert_eq!(directive["Namespace"], "Tollgate/prod");
        assert_eq!(directive["Metrics"][0]["Name"], "EventsUnprocessable");
        assert_eq!(directive["Dimensions"], json!([[]]));
        assert_eq!(parsed["EventsUnprocessable"], 2);
    }
}
