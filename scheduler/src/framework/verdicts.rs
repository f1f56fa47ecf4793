//! Filter verdicts and raw scores kept from one cycle to the next.
//!
//! Between two decisions only the nodes a pod was assumed on, or left, change; a cycle that filtered and
//! scored every node anew spent nearly all its time on nodes whose answer it already knew. The cache keeps,
//! per pod shape (every field of the pod but its key), each node's verdict and each score plugin's raw score,
//! stamped with the node's [`Snapshot::node_version`]. A row whose stamp is not the node's current one is
//! recomputed, so a decision is exactly the one the plugins would make afresh; what a plugin's score depends
//! on beyond the pod and the node it declares through [`ScorePlugin::cache_generation`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::profile::Profile;
use super::{Reason, ScorePlugin};
use crate::core::snapshot::NODE_BLOCK;
use crate::core::{NodeId, Pod, Snapshot};

/// How many pod shapes are kept; the least recently used is dropped first. An entry costs
/// 28 + 8 × plugins bytes a node (16 MiB for 64 shapes at 5,000 nodes and three score plugins). A shape
/// not kept costs one uncached cycle, so the bound trades memory for the hit rate of streams with many
/// shapes (the default trace has 151).
const SHAPES_KEPT: usize = 64;

/// A score slot not computed since the node last changed.
const UNSCORED: i64 = i64::MIN;
const VERDICT_UNKNOWN: u32 = u32::MAX;
const VERDICT_FEASIBLE: u32 = 0;

/// Whether two pods look the same to filters and scores: every field but the key.
fn same_shape(a: &Pod, b: &Pod) -> bool {
    // Destructured so that a new field of `Pod` fails to compile here until it is considered.
    let Pod { key: _, requests, gpu, mig, node_selector, affinity, tolerations, priority, near_nodes } = a;
    *requests == b.requests
        && *gpu == b.gpu
        && *mig == b.mig
        && *node_selector == b.node_selector
        && *affinity == b.affinity
        && *tolerations == b.tolerations
        && *priority == b.priority
        && *near_nodes == b.near_nodes
}

/// A feasible node's place in the choice: its weighted total, then its name (a smaller name wins), packed
/// so that the best node is the largest key: `total << 32 | (u32::MAX - name rank)`.
type ChoiceKey = i128;
const KEY_INFEASIBLE: ChoiceKey = i128::MIN;
/// Not known yet: the verdict, or the total of a feasible node, is to be computed.
const KEY_UNKNOWN: ChoiceKey = i128::MIN + 1;

fn choice_key(total: i64, rank: u32) -> ChoiceKey {
    (i128::from(total) << 32) | i128::from(u32::MAX - rank)
}

/// The node order by name, and each node's position in it, for one node list.
pub struct NameOrder {
    by_name: Vec<NodeId>,
    rank: Vec<u32>,
}

impl NameOrder {
    fn of(snapshot: &Snapshot) -> Self {
        let nodes = snapshot.nodes();
        let mut by_name: Vec<NodeId> = (0..nodes.len()).collect();
        by_name.sort_unstable_by(|&a, &b| nodes[a].name.cmp(&nodes[b].name));
        let mut rank = vec![0u32; nodes.len()];
        for (position, &node) in by_name.iter().enumerate() {
            rank[node] = position as u32;
        }
        NameOrder { by_name, rank }
    }
}

/// What is known of one pod shape on every node of one node list, by node id.
pub struct ShapeRows {
    shape: Pod,
    layout: u64,
    last_used: u64,
    /// The node stamp each row was filled at.
    stamps: Vec<u64>,
    /// `VERDICT_FEASIBLE`, `VERDICT_UNKNOWN`, or 1 + the index of the reason in `reasons`.
    verdicts: Vec<u32>,
    reasons: Vec<Reason>,
    /// For profiles without normalization: `KEY_INFEASIBLE`, `KEY_UNKNOWN` or the node's choice key. A
    /// cycle over unchanged nodes reads only the stamps and these.
    keys: Vec<ChoiceKey>,
    /// By score plugin: the generation its column was filled under, and the raw score on each node.
    columns: Vec<(Option<u64>, Vec<i64>)>,
    /// By block of [`NODE_BLOCK`] node ids: the best key and the feasible count, valid while the block's
    /// stamp is the one kept here (0: not summarized).
    blocks: Vec<BlockSummary>,
    names: Arc<NameOrder>,
}

#[derive(Clone, Copy)]
struct BlockSummary {
    stamp: u64,
    best: ChoiceKey,
    feasible: u32,
}

const UNSUMMARIZED: BlockSummary = BlockSummary { stamp: 0, best: KEY_INFEASIBLE, feasible: 0 };

impl ShapeRows {
    fn new(shape: Pod, snapshot: &Snapshot, plugins: usize, names: Arc<NameOrder>) -> Self {
        let n = snapshot.nodes().len();
        ShapeRows {
            shape,
            layout: snapshot.layout(),
            last_used: 0,
            stamps: snapshot.node_versions().to_vec(),
            verdicts: vec![VERDICT_UNKNOWN; n],
            reasons: Vec::new(),
            keys: vec![KEY_UNKNOWN; n],
            columns: (0..plugins).map(|_| (None, vec![UNSCORED; n])).collect(),
            blocks: vec![UNSUMMARIZED; snapshot.block_versions().len()],
            names,
        }
    }

    /// Makes these rows another shape's, knowing nothing yet, reusing the buffers.
    fn reuse_for(&mut self, shape: Pod, snapshot: &Snapshot) {
        self.shape = shape;
        self.stamps.copy_from_slice(snapshot.node_versions());
        self.verdicts.fill(VERDICT_UNKNOWN);
        self.reasons.clear();
        self.keys.fill(KEY_UNKNOWN);
        for (generation, column) in &mut self.columns {
            *generation = None;
            column.fill(UNSCORED);
        }
        self.blocks.fill(UNSUMMARIZED);
    }

    /// Forgets what was known of `node` if it changed since.
    #[inline]
    fn refresh(&mut self, snapshot: &Snapshot, node: NodeId) {
        let stamp = snapshot.node_version(node);
        if self.stamps[node] != stamp {
            self.stamps[node] = stamp;
            self.verdicts[node] = VERDICT_UNKNOWN;
            self.keys[node] = KEY_UNKNOWN;
            for (_, column) in &mut self.columns {
                column[node] = UNSCORED;
            }
        }
    }

    /// The filters' verdict on `node` as a code, computed if unknown.
    #[inline]
    fn verdict_code(&mut self, profile: &Profile, snapshot: &Snapshot, pod: &Pod, node: NodeId) -> u32 {
        self.refresh(snapshot, node);
        if self.verdicts[node] == VERDICT_UNKNOWN {
            self.verdicts[node] = match profile.rejection(pod, &snapshot.nodes()[node]) {
                None => VERDICT_FEASIBLE,
                Some(reason) => {
                    self.keys[node] = KEY_INFEASIBLE;
                    let at = match self.reasons.iter().position(|r| *r == reason) {
                        Some(at) => at,
                        None => {
                            self.reasons.push(reason);
                            self.reasons.len() - 1
                        }
                    };
                    at as u32 + 1
                }
            };
        }
        self.verdicts[node]
    }

    /// The filters' verdict on `node`, computed if unknown.
    #[inline]
    pub fn verdict(&mut self, profile: &Profile, snapshot: &Snapshot, pod: &Pod, node: NodeId) -> Result<(), &Reason> {
        match self.verdict_code(profile, snapshot, pod, node) {
            VERDICT_FEASIBLE => Ok(()),
            v => Err(&self.reasons[v as usize - 1]),
        }
    }

    /// Drops the scores of `profile`'s plugins whose generation moved; call after their `pre_score`.
    pub fn sync_generations(&mut self, profile: &Profile) {
        let mut moved = false;
        let now = profile.scores.iter().map(|s| s.plugin.cache_generation());
        for ((generation, column), now) in self.columns.iter_mut().zip(now) {
            if *generation != now {
                *generation = now;
                column.fill(UNSCORED);
                moved = true;
            }
        }
        if moved {
            for key in &mut self.keys {
                if *key != KEY_INFEASIBLE {
                    *key = KEY_UNKNOWN;
                }
            }
            self.blocks.fill(UNSUMMARIZED);
        }
    }

    /// Plugin `index`'s raw score of `node`, kept if the plugin allows.
    #[inline]
    pub fn raw_score(
        &mut self,
        plugin: &dyn ScorePlugin,
        index: usize,
        snapshot: &Snapshot,
        pod: &Pod,
        node: NodeId,
    ) -> i64 {
        self.refresh(snapshot, node);
        let (generation, column) = &mut self.columns[index];
        if generation.is_none() {
            return plugin.score(snapshot, pod, node);
        }
        if column[node] == UNSCORED {
            column[node] = plugin.score(snapshot, pod, node);
        }
        column[node]
    }

    /// The choice key of the feasible `node`: its weighted sum of raw scores and its name.
    #[inline]
    fn key(&mut self, profile: &Profile, snapshot: &Snapshot, pod: &Pod, node: NodeId) -> ChoiceKey {
        let mut total = 0i64;
        let mut cacheable = true;
        for (i, weighted) in profile.scores.iter().enumerate() {
            cacheable &= self.columns[i].0.is_some();
            let raw = self.raw_score(&*weighted.plugin, i, snapshot, pod, node);
            total = total.saturating_add(raw.saturating_mul(weighted.weight));
        }
        let key = choice_key(total, self.names.rank[node]);
        if cacheable {
            self.keys[node] = key;
        }
        key
    }

    /// The best node for a profile without normalization: the highest weighted sum of raw scores, the
    /// smallest name among equals, as `select_host` chooses. The profile's PreScore runs once, before the
    /// first score, if any node is feasible. Returns the choice and the number of feasible nodes.
    ///
    /// A block of nodes none of which changed since it was last summarized costs one comparison.
    pub fn best_node(&mut self, profile: &Profile, snapshot: &Snapshot, pod: &Pod) -> (Option<(NodeId, i64)>, usize) {
        let block_stamps = snapshot.block_versions();
        let mut feasible = 0usize;
        for (b, &stamp) in block_stamps.iter().enumerate() {
            if self.blocks[b].stamp == stamp {
                feasible += self.blocks[b].feasible as usize;
            } else {
                for node in Self::block_nodes(b, self.stamps.len()) {
                    feasible += usize::from(self.verdict_code(profile, snapshot, pod, node) == VERDICT_FEASIBLE);
                }
            }
        }
        if feasible == 0 {
            return (None, 0);
        }
        profile.pre_score(snapshot);
        self.sync_generations(profile);
        let mut best = KEY_INFEASIBLE;
        for (b, &stamp) in block_stamps.iter().enumerate() {
            if self.blocks[b].stamp != stamp {
                self.blocks[b] = self.summarize(b, stamp, profile, snapshot, pod);
            }
            best = best.max(self.blocks[b].best);
        }
        let total = (best >> 32) as i64;
        let rank = u32::MAX - (best & i128::from(u32::MAX)) as u32;
        (Some((self.names.by_name[rank as usize], total)), feasible)
    }

    fn block_nodes(block: usize, nodes: usize) -> std::ops::Range<NodeId> {
        block * NODE_BLOCK..((block + 1) * NODE_BLOCK).min(nodes)
    }

    /// The best key and feasible count of block `b`, whose stamp is `stamp`; only changed nodes are
    /// filtered and scored again.
    fn summarize(&mut self, b: usize, stamp: u64, profile: &Profile, snapshot: &Snapshot, pod: &Pod) -> BlockSummary {
        let mut summary = BlockSummary { stamp, best: KEY_INFEASIBLE, feasible: 0 };
        let mut cacheable = true;
        for node in Self::block_nodes(b, self.stamps.len()) {
            if self.verdict_code(profile, snapshot, pod, node) != VERDICT_FEASIBLE {
                continue;
            }
            summary.feasible += 1;
            let key = match self.keys[node] {
                KEY_UNKNOWN => self.key(profile, snapshot, pod, node),
                key => key,
            };
            cacheable &= self.keys[node] != KEY_UNKNOWN;
            summary.best = summary.best.max(key);
        }
        if !cacheable {
            // Some plugin is scored afresh every cycle: so is the block.
            summary.stamp = 0;
        }
        summary
    }

    /// The reason the verdict last computed for `node` rejected it.
    pub fn known_reason(&self, node: NodeId) -> Option<&Reason> {
        match self.verdicts[node] {
            VERDICT_FEASIBLE | VERDICT_UNKNOWN => None,
            v => Some(&self.reasons[v as usize - 1]),
        }
    }
}

/// One profile's cache: a few pod shapes, each with its rows over the current node list.
#[derive(Default)]
pub struct VerdictCache {
    disabled: bool,
    inner: Mutex<Shapes>,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Default)]
struct Shapes {
    clock: u64,
    entries: Vec<ShapeRows>,
    /// The name order of the node list of this layout stamp.
    names: Option<(u64, Arc<NameOrder>)>,
}

impl VerdictCache {
    /// A cache that keeps nothing: every cycle filters and scores every node afresh.
    pub fn disabled() -> Self {
        VerdictCache { disabled: true, ..VerdictCache::default() }
    }

    /// How many cycles found their pod's shape kept, and how many did not.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        (self.hits.load(Ordering::Relaxed), self.misses.load(Ordering::Relaxed))
    }

    pub fn is_enabled(&self) -> bool {
        !self.disabled
    }

    /// Runs `f` on the rows of `pod`'s shape over `snapshot`'s node list, made if missing. `None` if the
    /// cache is disabled.
    pub fn with_rows<R>(
        &self,
        snapshot: &Snapshot,
        pod: &Pod,
        plugins: usize,
        f: impl FnOnce(&mut ShapeRows) -> R,
    ) -> Option<R> {
        if self.disabled {
            return None;
        }
        let mut shapes = self.inner.lock().expect("verdict cache lock");
        let shapes = &mut *shapes;
        shapes.clock += 1;
        let layout = snapshot.layout();
        if shapes.names.as_ref().is_none_or(|(l, _)| *l != layout) {
            shapes.names = Some((layout, Arc::new(NameOrder::of(snapshot))));
            shapes.entries.retain(|e| e.layout == layout);
        }
        let names = shapes.names.as_ref().map(|(_, r)| r.clone()).expect("just set");
        let at = match shapes.entries.iter().position(|e| same_shape(&e.shape, pod)) {
            Some(at) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                at
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                let shape = Pod { key: String::new(), ..pod.clone() };
                if shapes.entries.len() < SHAPES_KEPT {
                    shapes.entries.push(ShapeRows::new(shape, snapshot, plugins, names));
                    shapes.entries.len() - 1
                } else {
                    let oldest = (0..shapes.entries.len()).min_by_key(|&i| shapes.entries[i].last_used).expect("full");
                    shapes.entries[oldest].reuse_for(shape, snapshot);
                    oldest
                }
            }
        };
        let rows = &mut shapes.entries[at];
        rows.last_used = shapes.clock;
        Some(f(rows))
    }
}
