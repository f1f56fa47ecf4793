//! The YAML config file, validated at start with errors that name the offending field.
//!
//! ```yaml
//! profiles:
//!   - schedulerName: mlsched          # pods with this spec.schedulerName use this profile
//!     policy: mlsched-online          # a name from mlsched::plugins::policy (bestfit, fgd, ...)
//!     scoreWeight: 1000               # weight of the policy's score plugin
//!     seed: 0                         # for the random policy
//! topologyLevels: [network.mlsched.io/spine, network.mlsched.io/rack, kubernetes.io/hostname]
//! client: { qps: 50, burst: 100 }
//! bindConcurrency: 64
//! bindRetries: 3
//! backoff: { initialSeconds: 1, maxSeconds: 60 }
//! leaderElection: { enabled: true, leaseName: mlsched, namespace: kube-system, leaseDurationSeconds: 15, renewGraceSeconds: 5 }
//! listenAddress: 0.0.0.0:10259
//! placementApi: 127.0.0.1:10260     # the Placement gRPC API: a loopback host:port or unix:/path
//! logFormat: text                   # or json
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use mlsched::framework::Profile;
use mlsched::plugins::policy::{DEFAULT_POLICY, DEFAULT_SCORE_WEIGHT, Policy, PolicyInputs, scheduler_profile};
pub use mlsched_edge::LogFormat;
use serde::Deserialize;

use crate::keys::DEFAULT_SCHEDULER_NAME;

/// A config that cannot be used; the message names the field at fault (`config: bindConcurrency: ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl From<String> for ConfigError {
    fn from(message: String) -> Self {
        ConfigError(message)
    }
}

impl From<&str> for ConfigError {
    fn from(message: &str) -> Self {
        ConfigError(message.to_string())
    }
}

/// `ConfigError(format!(...))`.
macro_rules! config_error {
    ($($arg:tt)*) => {
        ConfigError(format!($($arg)*))
    };
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Config {
    pub profiles: Vec<ProfileConfig>,
    pub topology_levels: Vec<String>,
    /// How much longer a gang runs when its members span several domains of a level: `{label: α}` for
    /// run time × (1 + α). With `mlsched.io/expected-runtime-seconds` on the pods, a gang that prefers a
    /// level waits for a domain of it when that is expected sooner than the spread would cost, and a gang
    /// placed on reserved nodes is bounded by the stretch it lands with. Empty: spreading costs nothing,
    /// so no gang waits for locality.
    pub spread_cost: BTreeMap<String, f64>,
    pub client: ClientConfig,
    /// Binds in flight at most. kube-scheduler binds every pod in a goroutine of its own, limited by its QPS
    /// alone; under a loaded API server a bind takes tens of milliseconds, so 16 at once capped binds at a
    /// few hundred per second whatever the QPS.
    pub bind_concurrency: usize,
    /// How often a gang member's bind is retried on its reserved node before the gang is given up.
    pub bind_retries: u32,
    pub backoff: BackoffConfig,
    pub leader_election: LeaderElectionConfig,
    pub listen_address: String,
    /// Where the Placement gRPC API is served to the autoscaler sidecar: a loopback `host:port` or
    /// `unix:/absolute/path` (see [`PlacementApiAddr`]).
    pub placement_api: String,
    pub log_format: LogFormat,
}

/// The default `topologyLevels`, widest first: the labels documented for nodes (README, `manifests/config.yaml`).
/// Nodes without the spine or rack label fall into unknown domains, never offered as a tight placement.
pub const DEFAULT_TOPOLOGY_LEVELS: [&str; 3] =
    ["network.mlsched.io/spine", "network.mlsched.io/rack", mlsched::topology::HOSTNAME_LABEL];

/// The default `placementApi`: loopback, next to the metrics port.
pub const DEFAULT_PLACEMENT_API: &str = "127.0.0.1:10260";

/// A parsed `placementApi`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlacementApiAddr {
    /// A loopback TCP address (the API has no authentication: it must not leave the pod).
    Tcp(SocketAddr),
    /// A Unix socket path (absolute).
    Unix(std::path::PathBuf),
}

impl PlacementApiAddr {
    pub fn parse(text: &str) -> Result<PlacementApiAddr, ConfigError> {
        if let Some(path) = text.strip_prefix("unix:") {
            let path = std::path::PathBuf::from(path);
            if !path.is_absolute() {
                return Err(config_error!("{text:?}: the Unix socket path must be absolute"));
            }
            return Ok(PlacementApiAddr::Unix(path));
        }
        let addr: SocketAddr = text.parse().map_err(|e| format!("{text:?}: {e} (host:port or unix:/path)"))?;
        if !addr.ip().is_loopback() {
            return Err(config_error!("{text:?}: must be a loopback address (the API is unauthenticated)"));
        }
        Ok(PlacementApiAddr::Tcp(addr))
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileConfig {
    #[serde(default = "default_scheduler_name")]
    pub scheduler_name: String,
    #[serde(default = "default_policy")]
    pub policy: String,
    #[serde(default = "default_weight")]
    pub score_weight: i64,
    #[serde(default)]
    pub seed: u64,
}

/// The client-side write limit. Binds and status patches share one token bucket of this size; Events get a
/// second one of the same size, as kube-scheduler's separate event client does, so that an Event per bind
/// neither halves the bind rate nor falls behind it.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ClientConfig {
    pub qps: f64,
    pub burst: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct BackoffConfig {
    pub initial_seconds: f64,
    pub max_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct LeaderElectionConfig {
    pub enabled: bool,
    pub lease_name: String,
    pub namespace: String,
    /// Defaults to the pod name (`POD_NAME`/`HOSTNAME`) plus a random suffix.
    pub identity: Option<String>,
    /// Written into the Lease: a standby takes over a Lease whose version has not changed for this long.
    pub lease_duration_seconds: u64,
    /// The leader stops scheduling and binding when it has not renewed the Lease for
    /// `leaseDurationSeconds - renewGraceSeconds` (its renew deadline; it renews about four times within
    /// it, at most every 2 s), so it has stopped at least this long before a standby can take over.
    pub renew_grace_seconds: u64,
}

fn default_scheduler_name() -> String {
    DEFAULT_SCHEDULER_NAME.into()
}
fn default_policy() -> String {
    DEFAULT_POLICY.name().into()
}
fn default_weight() -> i64 {
    DEFAULT_SCORE_WEIGHT
}

impl Default for ProfileConfig {
    fn default() -> Self {
        ProfileConfig {
            scheduler_name: default_scheduler_name(),
            policy: default_policy(),
            score_weight: DEFAULT_SCORE_WEIGHT,
            seed: 0,
        }
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig { qps: 50.0, burst: 100 }
    }
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig { initial_seconds: 1.0, max_seconds: 60.0 }
    }
}

impl Default for LeaderElectionConfig {
    fn default() -> Self {
        LeaderElectionConfig {
            enabled: true,
            lease_name: "mlsched".into(),
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
            profiles: vec![ProfileConfig::default()],
            topology_levels: DEFAULT_TOPOLOGY_LEVELS.iter().map(|l| l.to_string()).collect(),
            spread_cost: BTreeMap::new(),
            client: ClientConfig::default(),
            bind_concurrency: 64,
            bind_retries: 3,
            backoff: BackoffConfig::default(),
            leader_election: LeaderElectionConfig::default(),
            listen_address: "0.0.0.0:10259".into(),
            placement_api: DEFAULT_PLACEMENT_API.into(),
            log_format: LogFormat::Text,
        }
    }
}

impl Config {
    /// Parses and validates; every error names the field it is about.
    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        let config: Config = if text.trim().is_empty() {
            Config::default()
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| format!("config: {e}"))?
        };
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.profiles.is_empty() {
            return Err("config: profiles: at least one profile is needed".into());
        }
        for (i, p) in self.profiles.iter().enumerate() {
            let at = format!("config: profiles[{i}]");
            if p.scheduler_name.trim().is_empty() {
                return Err(config_error!("{at}.schedulerName: must not be empty"));
            }
            if self.profiles[..i].iter().any(|q| q.scheduler_name == p.scheduler_name) {
                return Err(config_error!("{at}.schedulerName: {:?} is used by an earlier profile", p.scheduler_name));
            }
            p.policy.parse::<Policy>().map_err(|e| format!("{at}.policy: {e}"))?;
            if !(1..=1_000_000).contains(&p.score_weight) {
                return Err(config_error!("{at}.scoreWeight: {} is outside 1..=1000000", p.score_weight));
            }
        }
        let levels: Vec<&str> = self.topology_levels.iter().map(String::as_str).collect();
        mlsched::topology::Topology::from_labels(&levels, &[]).map_err(|e| format!("config: topologyLevels: {e}"))?;
        for (label, alpha) in &self.spread_cost {
            if !levels.contains(&label.as_str()) {
                return Err(config_error!("config: spreadCost: {label:?} is not one of topologyLevels {levels:?}"));
            }
            if !(alpha.is_finite() && *alpha >= 0.0) {
                return Err(config_error!("config: spreadCost.{label}: {alpha} must be a number ≥ 0"));
            }
        }
        if !(self.client.qps.is_finite() && self.client.qps > 0.0) {
            return Err(config_error!("config: client.qps: {} must be positive", self.client.qps));
        }
        if self.client.burst == 0 {
            return Err("config: client.burst: must be at least 1".into());
        }
        if !(1..=1024).contains(&self.bind_concurrency) {
            return Err(config_error!("config: bindConcurrency: {} is outside 1..=1024", self.bind_concurrency));
        }
        if self.bind_retries > 20 {
            return Err(config_error!("config: bindRetries: {} is more than 20", self.bind_retries));
        }
        let b = &self.backoff;
        if !(b.initial_seconds.is_finite() && b.initial_seconds > 0.0) {
            return Err(config_error!("config: backoff.initialSeconds: {} must be positive", b.initial_seconds));
        }
        if !(b.max_seconds.is_finite() && b.max_seconds >= b.initial_seconds) {
            return Err(config_error!("config: backoff.maxSeconds: {} must be at least initialSeconds", b.max_seconds));
        }
        let le = &self.leader_election;
        if le.enabled {
            if le.lease_name.is_empty() || le.namespace.is_empty() {
                return Err("config: leaderElection: leaseName and namespace must not be empty".into());
            }
            if le.renew_grace_seconds == 0 || le.renew_grace_seconds >= le.lease_duration_seconds {
                return Err(config_error!(
                    "config: leaderElection: renewGraceSeconds ({}) must be in 1..leaseDurationSeconds ({})",
                    le.renew_grace_seconds,
                    le.lease_duration_seconds
                ));
            }
        }
        self.listen_address
            .parse::<SocketAddr>()
            .map_err(|e| format!("config: listenAddress: {:?}: {e}", self.listen_address))?;
        PlacementApiAddr::parse(&self.placement_api).map_err(|e| format!("config: placementApi: {e}"))?;
        Ok(())
    }

    pub fn backoff_initial(&self) -> Duration {
        Duration::from_secs_f64(self.backoff.initial_seconds)
    }

    pub fn backoff_max(&self) -> Duration {
        Duration::from_secs_f64(self.backoff.max_seconds)
    }

    /// The core queue's settings: its defaults, with `spreadCost` and `backoff`.
    pub fn queue_config(&self) -> mlsched::gang::QueueConfig {
        mlsched::gang::QueueConfig {
            spread_cost: self.spread_cost.iter().map(|(l, a)| (l.clone(), *a)).collect(),
            backoff: mlsched::gang::Backoff { initial: self.backoff_initial(), max: self.backoff_max() },
            ..mlsched::gang::QueueConfig::default()
        }
    }

    pub fn scheduler_names(&self) -> Vec<String> {
        self.profiles.iter().map(|p| p.scheduler_name.clone()).collect()
    }
}

impl ProfileConfig {
    /// The core profile without network proximity; `validate` has checked the policy name.
    pub fn build(&self) -> Result<Profile, ConfigError> {
        self.profile(None)
    }

    /// The core profile with `NetworkProximityScore` over the topology levels
    /// ([`scheduler_profile`]: half the policy's weight, felt only by pods with `mlsched.io/near-workload`).
    pub fn build_with_topology(&self, levels: &[String]) -> Result<Profile, ConfigError> {
        let labels: Vec<&str> = levels.iter().map(String::as_str).collect();
        let proximity = mlsched::plugins::NetworkProximityScore::from_labels(&labels)
            .map_err(|e| format!("config: topologyLevels: {e}"))?;
        self.profile(Some(proximity))
    }

    fn profile(&self, proximity: Option<mlsched::plugins::NetworkProximityScore>) -> Result<Profile, ConfigError> {
        let policy: Policy = self.policy.parse()?;
        let inputs = PolicyInputs { seed: self.seed, ..PolicyInputs::default() };
        let mut profile = scheduler_profile(policy, inputs, self.score_weight, proximity);
        profile.name = self.scheduler_name.clone();
        Ok(profile)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_default_and_valid() {
        let c = Config::from_yaml("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.scheduler_names(), vec!["mlsched"]);
        assert!(c.profiles[0].build().is_ok());
        assert!(c.profiles[0].build_with_topology(&c.topology_levels).is_ok());
    }

    #[test]
    fn the_default_topology_levels_are_the_documented_ones() {
        let documented = ["network.mlsched.io/spine", "network.mlsched.io/rack", "kubernetes.io/hostname"];
        assert_eq!(Config::default().topology_levels, documented);
        // The module doc and the README show them as the default; `[]` still turns them off.
        assert!(Config::from_yaml("topologyLevels: []\n").unwrap().topology_levels.is_empty());
    }

    #[test]
    fn full_file_parses() {
        let c = Config::from_yaml(
            "profiles:\n  - schedulerName: mlsched\n    policy: bestfit\n    scoreWeight: 10\n\
             topologyLevels: [rack, kubernetes.io/hostname]\nclient: {qps: 20, burst: 40}\nbindConcurrency: 4\n\
             backoff: {initialSeconds: 0.5, maxSeconds: 30}\nleaderElection: {enabled: false}\nlogFormat: json\n",
        )
        .unwrap();
        assert_eq!(c.profiles[0].policy, "bestfit");
        assert_eq!(c.profiles[0].build().unwrap().scores[0].weight, 10);
        assert_eq!(c.topology_levels.len(), 2);
        assert_eq!(c.bind_concurrency, 4);
        assert_eq!(c.backoff_initial(), Duration::from_millis(500));
        assert!(!c.leader_election.enabled);
        assert_eq!(c.log_format, LogFormat::Json);
    }

    #[test]
    fn errors_name_the_field() {
        let err = |y: &str| Config::from_yaml(y).unwrap_err().0;
        assert!(err("profiles:\n  - policy: nope\n").contains("profiles[0].policy"));
        assert!(err("profiles: []\n").contains("profiles"));
        assert!(err("profiles:\n  - {}\n  - {}\n").contains("profiles[1].schedulerName"));
        assert!(err("bindConcurrency: 0\n").contains("bindConcurrency"));
        assert!(err("backoff: {initialSeconds: 5, maxSeconds: 1}\n").contains("backoff.maxSeconds"));
        assert!(err("topologyLevels: [kubernetes.io/hostname, rack]\n").contains("topologyLevels"));
        assert!(err("leaderElection: {leaseDurationSeconds: 5, renewGraceSeconds: 5}\n").contains("renewGraceSeconds"));
        assert!(err("listenAddress: nowhere\n").contains("listenAddress"));
        assert!(err("typo: 1\n").contains("typo"));
        assert!(err("client: {qps: 0}\n").contains("client.qps"));
        assert!(err("placementApi: 0.0.0.0:10260\n").contains("placementApi"));
        assert!(err("placementApi: unix:relative.sock\n").contains("placementApi"));
        assert!(err("placementApi: nowhere\n").contains("placementApi"));
        assert!(err("spreadCost: {rack: 0.3}\n").contains("spreadCost: \"rack\" is not one of topologyLevels"));
        assert!(err("spreadCost: {network.mlsched.io/rack: -1}\n").contains("spreadCost.network.mlsched.io/rack"));
    }

    #[test]
    fn spread_cost_reaches_the_queue() {
        let c =
            Config::from_yaml("spreadCost: {network.mlsched.io/rack: 0.3, network.mlsched.io/spine: 0.6}\n").unwrap();
        let q = c.queue_config();
        assert_eq!(
            q.spread_cost,
            vec![("network.mlsched.io/rack".to_string(), 0.3), ("network.mlsched.io/spine".to_string(), 0.6)]
        );
        assert_eq!(q.reserve_after_skips, mlsched::gang::QueueConfig::default().reserve_after_skips);
        assert!(Config::default().queue_config().spread_cost.is_empty());
    }

    #[test]
    fn placement_api_defaults_to_loopback_and_takes_unix_paths() {
        let c = Config::from_yaml("").unwrap();
        assert_eq!(
            PlacementApiAddr::parse(&c.placement_api).unwrap(),
            PlacementApiAddr::Tcp(([127, 0, 0, 1], 10260).into())
        );
        let c = Config::from_yaml("placementApi: unix:/run/mlsched/placement.sock\n").unwrap();
        assert_eq!(
            PlacementApiAddr::parse(&c.placement_api).unwrap(),
            PlacementApiAddr::Unix("/run/mlsched/placement.sock".into())
        );
        assert!(PlacementApiAddr::parse("[::1]:7000").is_ok());
        let p = c.profiles[0].build_with_topology(&["rack".into()]).unwrap();
        let last = p.scores.last().unwrap();
        assert_eq!((last.plugin.name(), last.weight), ("NetworkProximityScore", 500));
    }
}
