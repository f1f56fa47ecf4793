//! What the controller remembers of one workload between periods. Not persisted: after a restart the
//! history refills, which only delays decisions.

use std::collections::{BTreeMap, HashMap};

use crate::decide::{ReplicaHistory, Res, UsageWindow};

/// A container of a pod: `(pod, container)`.
pub type ContainerKey = (String, String);

#[derive(Debug)]
pub struct Memory {
    pub usage: HashMap<ContainerKey, UsageWindow>,
    /// Restart counts seen last period: an OOM kill counts only when the count grew since.
    pub restarts: HashMap<ContainerKey, i32>,
    /// Recommendations and replica counts, for the stabilization windows and the scale-up limit.
    pub replicas: ReplicaHistory,
    /// Cleared for good once the API server refused a resize as unsupported.
    pub in_place_available: bool,
    pub last_grow_at: Option<f64>,
    /// A recreate rollout: when it started and the requests the pods should end with.
    pub recreate: Option<(f64, BTreeMap<String, Res>)>,
}

impl Default for Memory {
    fn default() -> Self {
        Memory {
            usage: HashMap::new(),
            restarts: HashMap::new(),
            replicas: ReplicaHistory::default(),
            in_place_available: true,
            last_grow_at: None,
            recreate: None,
        }
    }
}
