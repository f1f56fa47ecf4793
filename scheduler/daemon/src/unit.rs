//! The unit a pending pod is scheduled in: the pod alone, or its gang. Units wait in the core
//! [`GangQueue`](mlsched::gang::GangQueue), under their [`queue_name`](UnitKey::queue_name); the queue's
//! order, backoff, binding and activation are the core's.

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnitKey {
    Pod(String),
    Gang(String),
}

impl UnitKey {
    /// The pod's or the gang's `namespace/name`, as messages and the stores know it.
    pub fn name(&self) -> &str {
        match self {
            UnitKey::Pod(k) | UnitKey::Gang(k) => k,
        }
    }

    /// Its name in the core queue, which is also the core gang's name: a gang's `namespace/name` (the
    /// core's messages say `gang namespace/name: ...`), `pod namespace/name` for a pod outside any gang.
    /// Nothing stops a pod `train` beside a PodGroup `train`: they are two units, waiting apart.
    pub fn queue_name(&self) -> String {
        match self {
            UnitKey::Pod(k) => format!("pod {k}"),
            UnitKey::Gang(k) => k.clone(),
        }
    }

    /// The unit a [`queue_name`](Self::queue_name) stands for. A namespace has no spaces, so no gang's
    /// name starts with `pod `.
    pub fn from_queue_name(name: &str) -> UnitKey {
        match name.strip_prefix("pod ") {
            Some(pod) => UnitKey::Pod(pod.to_string()),
            None => UnitKey::Gang(name.to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_and_a_gang_of_one_name_have_two_queue_names_that_read_back() {
        let (pod, gang) = (UnitKey::Pod("ml/train".into()), UnitKey::Gang("ml/train".into()));
        assert_ne!(pod.queue_name(), gang.queue_name());
        assert_eq!(pod.name(), gang.name());
        for unit in [pod, gang] {
            assert_eq!(UnitKey::from_queue_name(&unit.queue_name()), unit);
        }
    }
}
