//! The unit a pending pod is scheduled in: the pod alone, or its gang. Units wait in the core
//! [`GangQueue`](mlsched::gang::GangQueue), under their [`name`](UnitKey::name); the queue's order, backoff,
//! binding and activation are the core's.

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnitKey {
    Pod(String),
    Gang(String),
}

impl UnitKey {
    /// Its name in the queue: the pod's or the gang's `namespace/name`.
    pub fn name(&self) -> &str {
        match self {
            UnitKey::Pod(k) | UnitKey::Gang(k) => k,
        }
    }
}

impl std::fmt::Display for UnitKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnitKey::Pod(k) => write!(f, "pod {k}"),
            UnitKey::Gang(k) => write!(f, "gang {k}"),
        }
    }
}
