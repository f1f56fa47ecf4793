//! A profile: the plugins and weights one scheduler runs with.

use super::verdicts::VerdictCache;
use super::{FilterPlugin, Reason, ScorePlugin};
use crate::core::{Node, Pod, Snapshot};

pub struct WeightedScore {
    pub plugin: Box<dyn ScorePlugin>,
    pub weight: i64,
}

pub struct Profile {
    pub name: String,
    pub filters: Vec<Box<dyn FilterPlugin>>,
    pub scores: Vec<WeightedScore>,
    /// Which score plugin (index into `scores`) chooses the GPUs inside the chosen node; `None` uses
    /// best-fit devices.
    pub gpu_picker: Option<usize>,
    /// Verdicts and scores kept from one cycle to the next (see [`VerdictCache`]).
    pub verdicts: VerdictCache,
}

impl Profile {
    pub fn new(name: impl Into<String>) -> Self {
        Profile {
            name: name.into(),
            filters: Vec::new(),
            scores: Vec::new(),
            gpu_picker: None,
            verdicts: VerdictCache::default(),
        }
    }

    /// The same profile filtering and scoring every node afresh in every cycle: the reference the cached
    /// decisions are checked and timed against.
    pub fn without_verdict_cache(mut self) -> Self {
        self.verdicts = VerdictCache::disabled();
        self
    }

    pub fn filter(mut self, plugin: impl FilterPlugin + 'static) -> Self {
        self.filters.push(Box::new(plugin));
        self
    }

    pub fn score(mut self, plugin: impl ScorePlugin + 'static, weight: i64) -> Self {
        self.scores.push(WeightedScore { plugin: Box::new(plugin), weight });
        self
    }

    /// Adds a score plugin that also chooses the GPU devices.
    pub fn score_and_pick_gpus(mut self, plugin: impl ScorePlugin + 'static, weight: i64) -> Self {
        self.gpu_picker = Some(self.scores.len());
        self.score(plugin, weight)
    }

    /// The first filter's reason to reject `pod` on `node`; `None` if every filter accepts it.
    pub fn rejection(&self, pod: &Pod, node: &Node) -> Option<Reason> {
        self.filters.iter().find_map(|f| f.filter(pod, node).err())
    }

    /// Every score plugin's PreScore, once per cycle before any score, when a node is feasible.
    pub fn pre_score(&self, snapshot: &Snapshot) {
        for weighted in &self.scores {
            weighted.plugin.pre_score(snapshot);
        }
    }

    pub fn observe_arrival(&mut self, pod: &Pod) {
        for s in &mut self.scores {
            s.plugin.observe_arrival(pod);
        }
    }

    pub fn plugin_names(&self) -> Vec<&'static str> {
        self.filters.iter().map(|f| f.name()).chain(self.scores.iter().map(|s| s.plugin.name())).collect()
    }
}
