//! The YAML config file, validated at start with errors that name the offending field.
//!
//! ```yaml
//! periodSeconds: 15                  # one decision per workload per period
//! placementApi: 127.0.0.1:10260      # the scheduler's Placement gRPC API (host:port or http://host:port)
//! placementTimeoutSeconds: 2         # per call; a timeout means "do nothing this period"
//! apiTimeoutSeconds: 10              # one workload's whole reconcile (Kubernetes API + metrics)
//! historySeconds: 300                # usage history kept per container (p90 for the vertical target)
//! margin: 0.15                       # VPA's safety margin over the p90
//! scaleUpLimit: {pods: 4, factor: 2.0, periodSeconds: 60}   # HPA's max(+4, x2) per 60 s
//! namespace: null                    # watch HybridAutoscalers in one namespace; null: all
//! leaderElection: {enabled: true, leaseName: mlsched-autoscaler, namespace: kube-system,
//!                  leaseDurationSeconds: 15, renewGraceSeconds: 5}
//! listenAddress: 0.0.0.0:10261       # /metrics, /healthz, /readyz
//! logFormat: text                    # or json
//! ```

use std::net::SocketAddr;
use std::time::Duration;

pub use mlsched_edge::LogFormat;
use serde::Deserialize;

use crate::decide::{DEFAULT_HISTORY_S, DEFAULT_PERIOD_S, DEFAULT_SCALE_UP_LIMIT_PERIOD_S, Policy};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Config {
    pub period_seconds: f64,
    pub placement_api: String,
    pub placement_timeout_seconds: f64,
    pub api_timeout_seconds: f64,
    /// A metrics.k8s.io list not answered in this time is a `MetricsAvailable=False` period: below
    /// `apiTimeoutSeconds`, so a black-holed metrics-server is reported rather than timing the period out.
    pub metrics_timeout_seconds: f64,
    pub history_seconds: f64,
    pub margin: f64,
    pub scale_up_limit: ScaleUpLimit,
    pub namespace: Option<String>,
    pub leader_election: LeaderElectionConfig,
    pub listen_address: String,
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ScaleUpLimit {
    pub pods: u32,
    pub factor: f64,
    pub period_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct LeaderElectionConfig {
    pub enabled: bool,
    pub lease_name: String,
    pub namespace: String,
    pub identity: Option<String>,
    pub lease_duration_seconds: u64,
    pub renew_grace_seconds: u64,
}

impl Default for ScaleUpLimit {
    fn default() -> Self {
        let p = Policy::default();
        ScaleUpLimit {
            pods: p.up_limit_pods,
            factor: p.up_limit_factor,
            period_seconds: DEFAULT_SCALE_UP_LIMIT_PERIOD_S,
        }
    }
}

impl Default for LeaderElectionConfig {
    fn default() -> Self {
        LeaderElectionConfig {
            enabled: true,
            lease_name: "mlsched-autoscaler".into(),
            namespace: "kube-system".into(),
            identity: None,
            lease_duration_seconds: 15,
            renew_grace_seconds: 5,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            period_seconds: DEFAULT_PERIOD_S,
            placement_api: "127.0.0.1:10260".into(),
            placement_timeout_seconds: 2.0,
            api_timeout_seconds: 10.0,
            metrics_timeout_seconds: 5.0,
            history_seconds: DEFAULT_HISTORY_S,
            margin: Policy::default().margin,
            scale_up_limit: ScaleUpLimit::default(),
            namespace: None,
            leader_election: LeaderElectionConfig::default(),
            listen_address: "0.0.0.0:10261".into(),
            log_format: LogFormat::Text,
        }
    }
}

/// A config the autoscaler cannot run with; the message names the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config: {0}")]
    Parse(#[from] serde_yaml_ng::Error),
    #[error("config: {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { field, reason: reason.into() }
}

fn positive(v: f64, field: &'static str) -> Result<(), ConfigError> {
    if v.is_finite() && v > 0.0 { Ok(()) } else { Err(invalid(field, format!("{v} must be positive"))) }
}

impl Config {
    /// Parses and validates; every error names the field it is about.
    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        let config: Config = if text.trim().is_empty() { Config::default() } else { serde_yaml_ng::from_str(text)? };
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        positive(self.period_seconds, "periodSeconds")?;
        positive(self.placement_timeout_seconds, "placementTimeoutSeconds")?;
        positive(self.api_timeout_seconds, "apiTimeoutSeconds")?;
        positive(self.metrics_timeout_seconds, "metricsTimeoutSeconds")?;
        if self.metrics_timeout_seconds >= self.api_timeout_seconds {
            return Err(invalid(
                "metricsTimeoutSeconds",
                format!(
                    "{} must be below apiTimeoutSeconds {}",
                    self.metrics_timeout_seconds, self.api_timeout_seconds
                ),
            ));
        }
        positive(self.history_seconds, "historySeconds")?;
        positive(self.scale_up_limit.period_seconds, "scaleUpLimit.periodSeconds")?;
        if !(self.scale_up_limit.factor.is_finite() && self.scale_up_limit.factor >= 1.0) {
            return Err(invalid("scaleUpLimit.factor", format!("{} must be at least 1", self.scale_up_limit.factor)));
        }
        if !(self.margin.is_finite() && (0.0..=10.0).contains(&self.margin)) {
            return Err(invalid("margin", format!("{} is outside 0..=10", self.margin)));
        }
        self.placement_uri()?;
        self.listen_address
            .parse::<SocketAddr>()
            .map_err(|e| invalid("listenAddress", format!("{:?}: {e}", self.listen_address)))?;
        let le = &self.leader_election;
        if le.enabled {
            if le.lease_name.trim().is_empty() || le.namespace.trim().is_empty() {
                return Err(invalid("leaderElection", "leaseName and namespace must not be empty"));
            }
            if le.renew_grace_seconds == 0 || le.renew_grace_seconds >= le.lease_duration_seconds {
                return Err(invalid("leaderElection.renewGraceSeconds", "must be in 1..leaseDurationSeconds"));
            }
        }
        Ok(())
    }

    /// The Placement API as an `http://` URI (TCP only; Unix sockets are not supported by this client yet).
    pub fn placement_uri(&self) -> Result<String, ConfigError> {
        let a = self.placement_api.trim();
        if a.starts_with("unix:") {
            return Err(invalid(
                "placementApi",
                format!("{a:?}: Unix sockets are not supported by the autoscaler yet; use host:port"),
            ));
        }
        let uri = if a.starts_with("http://") { a.to_string() } else { format!("http://{a}") };
        uri.parse::<tonic::transport::Uri>().map_err(|e| invalid("placementApi", format!("{a:?}: {e}")))?;
        Ok(uri)
    }

    pub fn period(&self) -> Duration {
        Duration::from_secs_f64(self.period_seconds)
    }

    pub fn placement_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.placement_timeout_seconds)
    }

    pub fn metrics_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.metrics_timeout_seconds)
    }

    pub fn api_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.api_timeout_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors_name_the_field() {
        assert_eq!(Config::from_yaml("").unwrap(), Config::default());
        let c = Config::from_yaml("periodSeconds: 0.5\nplacementApi: http://127.0.0.1:9000\n").unwrap();
        assert_eq!(c.period(), Duration::from_millis(500));
        assert!(Config::from_yaml("periodSeconds: 0").unwrap_err().to_string().contains("periodSeconds"));
        assert!(Config::from_yaml("bogus: 1").unwrap_err().to_string().contains("bogus"));
        assert!(Config::from_yaml("placementApi: unix:/tmp/x").unwrap_err().to_string().contains("placementApi"));
        assert!(
            Config::from_yaml("scaleUpLimit: {factor: 0.5}").unwrap_err().to_string().contains("scaleUpLimit.factor")
        );
        // A metrics timeout at or above the period's own would never be reported.
        assert!(
            Config::from_yaml("metricsTimeoutSeconds: 10").unwrap_err().to_string().contains("metricsTimeoutSeconds")
        );
        assert_eq!(Config::from_yaml("metricsTimeoutSeconds: 2").unwrap().metrics_timeout(), Duration::from_secs(2));
    }
}
