//! The event loop: jobs arrive at their submission time, wait in a queue, run for their duration stretched
//! by the slowdown model, and leave.
//!
//! - A job of `g` GPUs is a gang of `ceil(g / G)` pods on `G`-GPU nodes (`G` = 8 by default); pod `k`
//!   takes `min(G, g − k·G)` whole GPUs, so a 12-GPU job is 8 + 4. `min_member` = all pods.
//! - Every pod asks for 1 core and 1 GiB besides its GPUs; nodes have far more, so GPUs and topology
//!   alone decide.
//! - Node scoring is the same for every policy (GpuPacking: fill used nodes first), so the policies
//!   differ only in gang and topology handling.
//! - **Queue**: FIFO with backfill over a bounded lookahead window (`window` jobs, like Slurm's
//!   `bf_max_job_test`): the oldest `window` waiting jobs are tried in order at each pass, later arrivals
//!   wait outside it. Without the bound a backlog of thousands of jobs makes every pass cost thousands of
//!   plans.
//! - **Passes** run only when something could have changed: capacity was freed (a job finished, a partial
//!   gang was released) or a job entered the window; and only when free GPUs ≥ the smallest waiting
//!   job's GPUs (otherwise nothing can fit).
//! - `mlsched` and `gang` queue gangs in a [`GangQueue`] (priority, arrival, aging reservations), the
//!   live scheduler's queue type and lifecycle: a placed gang binds (here at once: it is removed), freed room
//!   activates gangs backing off. Its backoff is the queue's default, none: passes run only on events that
//!   can help (above), which is what the live scheduler's backoff stands in for. Each pass
//!   is `schedule_pass_with` the run times of [`Hints`] (backfill into the reservation; mlsched's waits for
//!   a rack). `mlsched` plans on the real fat tree and prefers the rack level for multi-node
//!   gangs; `gang` plans on a flat topology (hostname only), so it ignores racks. Spread and slowdown are
//!   always measured on the real tree.
//! - `nogang` schedules pods one by one as kube-scheduler does (FIFO, each pod on its own, a pod that
//!   does not fit is skipped and retried at the next pass). A job starts when its last pod is placed; pods
//!   placed before that hold their GPUs (counted in `partial_gang_gpu_seconds`). A job that has held a
//!   partial placement for `partial_timeout` (default 600 s, like a coscheduling group timeout) releases
//!   all its pods and goes back to waiting at its place in the queue (counted in `partial_gang_timeouts`);
//!   without that timeout partial gangs can deadlock each other for good.
//! - **Priorities and preemption** ([`PriorityMix`]): a stated share of the jobs, drawn with a recorded
//!   seed, is high priority. Waiting jobs enter the window highest priority first, and a high-priority
//!   job displaces the youngest lower-priority one from a full window. With `preemption`, after each gang
//!   pass the queue's [`GangQueue::preempt`] names whole lower-priority jobs to evict; they go at once
//!   (no grace period), lose the work they had done (no checkpoint: counted in `evicted_gpu_seconds`) and
//!   wait again at their place in the queue.

use std::cmp::Ordering;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use mlsched::core::{GpuRequest, NodeId, Pod, Resources, Snapshot};
use mlsched::framework::{Profile, schedule_one};
use mlsched::gang::{Gang, GangQueue, QueueConfig, RunningUnit, RuntimeHints};
use mlsched::plugins::policy::{Policy, PolicyInputs, profile_for};
use mlsched::topology::{HOSTNAME_LABEL, Topology};
use rand::{RngExt as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;

use super::cluster::{ClusterSpec, RACK_LABEL, SPINE_LABEL};
use super::slowdown::{SlowdownModel, Spread, spread_of};
use super::summary::{SIZE_CLASSES, size_class};
use super::trace::Job;

pub const DEFAULT_WINDOW: usize = 64;
pub const DEFAULT_PARTIAL_TIMEOUT_SECONDS: f64 = 600.0;
const POD_CPU_MILLI: i64 = 1000;
const POD_MEMORY_BYTES: i64 = 1 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobPolicy {
    /// Gangs planned on the real topology, rack level preferred for multi-node gangs.
    Mlsched,
    /// Gangs planned on a flat topology: all-or-nothing, blind to racks.
    Gang,
    /// Pods one by one, FIFO, as the default scheduler; partial gangs hold GPUs until a timeout.
    NoGang,
}

impl JobPolicy {
    pub const ALL: [JobPolicy; 3] = [JobPolicy::Mlsched, JobPolicy::Gang, JobPolicy::NoGang];

    pub fn name(self) -> &'static str {
        match self {
            JobPolicy::Mlsched => "mlsched",
            JobPolicy::Gang => "gang",
            JobPolicy::NoGang => "nogang",
        }
    }
}

impl fmt::Display for JobPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for JobPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        JobPolicy::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown policy {s:?}; known: mlsched, gang, nogang"))
    }
}

/// What the gang policies' queue is told about run times (`RuntimeHints`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Hints {
    /// Nothing: reservations hold their room, gangs start as tightly as they fit now.
    None,
    /// Each job declares its run time (the trace's duration, as a Slurm time limit that is exact).
    Declared,
    /// Learned online: the mean duration of the finished jobs of the same size class (1, 2-8, 9-16,
    /// 17-32, 33+ GPUs); unknown until one has finished.
    Learned,
}

impl fmt::Display for Hints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Hints::None => "none",
            Hints::Declared => "declared",
            Hints::Learned => "learned",
        })
    }
}

/// The priority of a high-priority job; every other job has 0.
pub const HIGH_PRIORITY: i32 = 1000;

/// Which jobs are high priority: each with probability `high_share`, drawn in submission order from a
/// ChaCha8 stream seeded with `seed`, so a replay is repeatable and every policy sees the same jobs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PriorityMix {
    pub high_share: f64,
    pub seed: u64,
}

impl Default for PriorityMix {
    fn default() -> Self {
        PriorityMix { high_share: 0.0, seed: 1 }
    }
}

impl PriorityMix {
    /// The priority of each of `jobs` jobs.
    pub fn assign(&self, jobs: usize) -> Vec<i32> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        (0..jobs).map(|_| if rng.random::<f64>() < self.high_share { HIGH_PRIORITY } else { 0 }).collect()
    }
}

#[derive(Debug, Clone, Copy)]
pub struct EngineConfig {
    pub policy: JobPolicy,
    pub cluster: ClusterSpec,
    pub slowdown: SlowdownModel,
    /// How many of the oldest waiting jobs each pass considers.
    pub window: usize,
    /// `nogang` only: seconds a partially placed job holds its pods before releasing them.
    pub partial_timeout: f64,
    /// Gang policies: `QueueConfig::reserve_after_skips` (aging reservations of the GangQueue).
    pub reserve_after_skips: u32,
    /// Gang policies: what the queue knows about run times.
    pub hints: Hints,
    /// mlsched: `QueueConfig::min_locality_gain`.
    pub min_locality_gain: Duration,
    pub priorities: PriorityMix,
    /// Gang policies: a waiting job that fits nowhere evicts lower-priority jobs, whole.
    pub preemption: bool,
}

/// What happened to one job.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobOutcome {
    pub start: Option<f64>,
    pub finish: Option<f64>,
    /// Mean pairwise switch hops of the members on the real tree (pods of one job only).
    pub spread_hops: f64,
    pub spread: Option<Spread>,
    pub slowdown: f64,
    /// The job needs more nodes than the cluster has; never queued.
    pub too_large: bool,
    pub priority: i32,
    /// Times it was evicted by a higher-priority job (each time it started over).
    pub evictions: u32,
}

#[derive(Debug, Clone, Default)]
pub struct EngineResult {
    pub outcomes: Vec<JobOutcome>,
    /// GPU-seconds held by pods of jobs that had not all their pods placed (nogang only; 0 otherwise).
    pub partial_gang_gpu_seconds: f64,
    pub partial_gang_timeouts: u64,
    /// GPU-seconds held by any pod (running or partial).
    pub allocated_gpu_seconds: f64,
    /// GPU-seconds of the trace's own durations of finished jobs (work done, without slowdown).
    pub useful_gpu_seconds: f64,
    /// Gang policies: (pass, gang) pairs where a waiting gang was not placed.
    pub gang_waits: u64,
    /// Of those, the ones where the cluster had at least the gang's GPUs free, but not on nodes (or in
    /// the domains) that could hold it: waits caused by fragmentation, not by load.
    pub gang_waits_with_gpus_free: u64,
    /// Preemptions made, and jobs they evicted.
    pub preemptions: u64,
    pub evictions: u64,
    /// GPU-seconds of work lost: GPUs × time run by jobs before they were evicted.
    pub evicted_gpu_seconds: f64,
    /// Jobs that ran with fewer pods than they have, at any moment (gang policies: must stay 0).
    pub partial_starts: u64,
    /// Time of the last event.
    pub end: f64,
    pub passes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum EventKind {
    /// Stale when the job's `generation` moved on (it was evicted since).
    Finish { generation: u32 },
    /// nogang: a partial placement's timer; stale when `generation` moved on.
    PartialTimeout { generation: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Event {
    time: f64,
    job: usize,
    kind: EventKind,
}

impl Eq for Event {}

impl Ord for Event {
    /// A min-heap on time (finishes before timeouts at equal times, then by job) inside `BinaryHeap`.
    fn cmp(&self, other: &Self) -> Ordering {
        let rank = |k: &EventKind| matches!(k, EventKind::PartialTimeout { .. }) as u8;
        other
            .time
            .total_cmp(&self.time)
            .then_with(|| rank(&other.kind).cmp(&rank(&self.kind)))
            .then_with(|| other.job.cmp(&self.job))
    }
}

impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Pod sizes of a `gpus`-GPU job on `per_node`-GPU nodes: `[8, 8, 4]` for 20 on 8.
pub fn pod_sizes(gpus: u32, per_node: u32) -> Vec<u32> {
    let mut left = gpus;
    let mut sizes = Vec::with_capacity(gpus.div_ceil(per_node) as usize);
    while left > 0 {
        let take = left.min(per_node);
        sizes.push(take);
        left -= take;
    }
    sizes
}

/// The job index of a gang named `j<index>` (pods are `j<index>-<k>`).
fn job_of(gang: &str) -> Option<usize> {
    gang.strip_prefix('j')?.parse().ok()
}

fn pod(job: usize, k: usize, gpus: u32) -> Pod {
    Pod::new(format!("j{job}-{k}"), Resources::new(POD_CPU_MILLI, POD_MEMORY_BYTES, 1), GpuRequest::whole(gpus))
}

/// One job's pods as placed so far (nogang), or all of them (gang policies).
#[derive(Debug, Clone, Default)]
struct Held {
    /// Per pod: (node, placed at) when placed.
    pods: Vec<Option<(NodeId, f64)>>,
    placed: usize,
    generation: u32,
}

struct Engine<'a> {
    jobs: &'a [Job],
    config: EngineConfig,
    sizes: Vec<Vec<u32>>,
    profile: Profile,
    snapshot: Snapshot,
    real: Topology,
    plan_topology: Topology,
    queue: GangQueue,
    /// Per job, from the configured mix.
    priority: Vec<i32>,
    /// Jobs in the pass window (gang policies: exactly the gangs in `queue`), highest priority first,
    /// then oldest first.
    window: Vec<usize>,
    /// Jobs waiting outside the window, in the same order.
    overflow: BTreeSet<(Reverse<i32>, usize)>,
    /// Jobs started and not finished.
    running: BTreeSet<usize>,
    held: Vec<Held>,
    /// When each started job will finish (its finish event's time).
    finish_at: Vec<f64>,
    learned: Learned,
    events: BinaryHeap<Event>,
    free_gpus: u64,
    /// A pass could place something it could not at the last pass.
    dirty: bool,
    result: EngineResult,
}

/// Replays `jobs` (sorted by submission) on the configured cluster under the configured policy, with
/// the priorities of its [`PriorityMix`].
pub fn simulate(jobs: &[Job], config: &EngineConfig) -> EngineResult {
    simulate_with_priorities(jobs, config, config.priorities.assign(jobs.len()))
}

/// [`simulate`] with each job's priority given.
pub fn simulate_with_priorities(jobs: &[Job], config: &EngineConfig, priority: Vec<i32>) -> EngineResult {
    assert_eq!(priority.len(), jobs.len(), "one priority per job");
    let nodes = config.cluster.build();
    let real = Topology::from_labels(&[SPINE_LABEL, RACK_LABEL, HOSTNAME_LABEL], &nodes).expect("valid levels");
    let plan_topology = match config.policy {
        JobPolicy::Gang => Topology::from_labels(&[HOSTNAME_LABEL], &nodes).expect("valid levels"),
        _ => real.clone(),
    };
    let free_gpus = config.cluster.gpus();
    let sizes = jobs.iter().map(|j| pod_sizes(j.gpus, config.cluster.gpus_per_node)).collect();
    let mut engine = Engine {
        jobs,
        config: *config,
        sizes,
        profile: profile_for(Policy::GpuPacking, PolicyInputs::default()),
        snapshot: Snapshot::new(nodes).expect("generated node names are unique"),
        real,
        plan_topology,
        queue: GangQueue::new(QueueConfig {
            reserve_after_skips: config.reserve_after_skips,
            spread_cost: vec![
                (RACK_LABEL.to_string(), config.slowdown.alpha_rack),
                (SPINE_LABEL.to_string(), config.slowdown.alpha_spine),
            ],
            min_locality_gain: config.min_locality_gain,
            ..QueueConfig::default()
        }),
        priority,
        window: Vec::new(),
        overflow: BTreeSet::new(),
        running: BTreeSet::new(),
        held: vec![Held::default(); jobs.len()],
        finish_at: vec![f64::NAN; jobs.len()],
        learned: Learned::default(),
        events: BinaryHeap::new(),
        free_gpus,
        dirty: false,
        result: EngineResult { outcomes: vec![JobOutcome::default(); jobs.len()], ..EngineResult::default() },
    };
    engine.run();
    engine.result
}

impl Engine<'_> {
    fn run(&mut self) {
        let mut next = 0;
        loop {
            let arrival = self.jobs.get(next).map(|j| j.submit);
            let event = self.events.peek().map(|e| e.time);
            let now = match (arrival, event) {
                (None, None) => break,
                (Some(a), None) => a,
                (None, Some(e)) => e,
                (Some(a), Some(e)) => a.min(e),
            };
            while self.events.peek().is_some_and(|e| e.time <= now) {
                let event = self.events.pop().expect("peeked");
                match event.kind {
                    EventKind::Finish { generation } => self.finish(event.job, generation, now),
                    EventKind::PartialTimeout { generation } => self.partial_timeout(event.job, generation, now),
                }
            }
            while next < self.jobs.len() && self.jobs[next].submit <= now {
                self.arrive(next);
                next += 1;
            }
            self.result.end = now;
            if self.dirty {
                self.pass(now);
            }
        }
    }

    fn arrive(&mut self, job: usize) {
        if self.sizes[job].len() > self.config.cluster.nodes {
            self.result.outcomes[job].too_large = true;
            return;
        }
        self.result.outcomes[job].priority = self.priority[job];
        self.overflow.insert(self.order(job));
        self.refill(Duration::from_secs_f64(self.jobs[job].submit));
    }

    /// Where `job` stands among waiting jobs: higher priority first, then earlier submission.
    fn order(&self, job: usize) -> (Reverse<i32>, usize) {
        (Reverse(self.priority[job]), job)
    }

    /// Moves the first waiting jobs into the window; a full window gives its last place to a waiting job
    /// of higher priority (unless that job holds pods, which nogang's partial placements may).
    fn refill(&mut self, now: Duration) {
        while let Some(&(Reverse(priority), job)) = self.overflow.first() {
            if self.window.len() >= self.config.window {
                let &last = self.window.last().expect("a full window is not empty");
                if self.priority[last] >= priority || self.held[last].placed > 0 {
                    return;
                }
                self.window.pop();
                self.queue.remove(&format!("j{last}"));
                self.overflow.insert(self.order(last));
            }
            self.overflow.pop_first();
            let at = self.window.partition_point(|&w| self.order(w) < self.order(job));
            self.window.insert(at, job);
            self.dirty = true;
            if self.config.policy != JobPolicy::NoGang {
                let members: Vec<Pod> = self.sizes[job].iter().enumerate().map(|(k, &g)| pod(job, k, g)).collect();
                let mut gang = Gang::new(format!("j{job}"), members.len(), members).with_priority(priority);
                if self.config.policy == JobPolicy::Mlsched && self.sizes[job].len() > 1 {
                    gang = gang.preferring(RACK_LABEL);
                }
                self.queue.add_gang(gang, now).expect("job gangs are valid and uniquely named");
            }
        }
    }

    fn pass(&mut self, now: f64) {
        loop {
            self.dirty = false;
            // Gangs need all their GPUs at once; single pods need only their own (the last pod is the
            // smallest of a job).
            let smallest = match self.config.policy {
                JobPolicy::NoGang => {
                    self.window.iter().filter_map(|&j| self.sizes[j].last()).map(|&g| u64::from(g)).min()
                }
                _ => self.window.iter().map(|&j| u64::from(self.jobs[j].gpus)).min(),
            };
            if smallest.is_none_or(|s| s > self.free_gpus) && !self.may_preempt() {
                return;
            }
            self.result.passes += 1;
            let started = match self.config.policy {
                JobPolicy::NoGang => self.pod_pass(now),
                _ => self.gang_pass(now),
            };
            // Victims are gone at once: the preemptor is tried again in this instant.
            if self.may_preempt() && self.preempt(now) {
                continue;
            }
            if started == 0 || self.overflow.is_empty() {
                return;
            }
            self.refill(Duration::from_secs_f64(now));
        }
    }

    fn gang_pass(&mut self, now: f64) -> usize {
        let hints = JobHints {
            kind: self.config.hints,
            jobs: self.jobs,
            finish_at: &self.finish_at,
            outcomes: &self.result.outcomes,
            learned: &self.learned,
        };
        let outcome = self.queue.schedule_pass_with(
            &self.profile,
            &mut self.snapshot,
            &self.plan_topology,
            Duration::from_secs_f64(now),
            &hints,
        );
        assert!(outcome.rejected.is_empty(), "job gangs are valid: {:?}", outcome.rejected);
        let started = outcome.placed.len();
        for placement in outcome.placed {
            // Binding is instant here: the gang's binds went through.
            self.queue.remove(&placement.gang);
            let job = job_of(&placement.gang).expect("gangs are named j<index>");
            let held = &mut self.held[job];
            held.pods = vec![None; self.sizes[job].len()];
            for member in &placement.members {
                let k: usize = member.pod_key.rsplit('-').next().and_then(|k| k.parse().ok()).expect("pod j<i>-<k>");
                held.pods[k] = Some((member.node, now));
            }
            held.placed = placement.members.len();
            self.window.retain(|&j| j != job);
            self.start(job, now);
        }
        for (gang, _) in &outcome.waiting {
            let job = job_of(gang).expect("gangs are named j<index>");
            self.result.gang_waits += 1;
            if u64::from(self.jobs[job].gpus) <= self.free_gpus {
                self.result.gang_waits_with_gpus_free += 1;
            }
        }
        started
    }

    /// Preemption is on and a waiting job outranks a running one: a pass may find victims even when
    /// nothing fits in the free GPUs.
    fn may_preempt(&self) -> bool {
        let Some(top) = self.window.first().map(|&j| self.priority[j]) else { return false };
        self.config.preemption
            && self.config.policy != JobPolicy::NoGang
            && self.running.iter().any(|&j| self.priority[j] < top)
    }

    /// Evicts what the queue names for its first gang that fits nowhere; whether anything was.
    fn preempt(&mut self, now: f64) -> bool {
        let Some(top) = self.window.first().map(|&j| self.priority[j]) else { return false };
        let running: Vec<RunningUnit> = self
            .running
            .iter()
            .filter(|&&j| self.priority[j] < top)
            .map(|&j| RunningUnit {
                name: format!("j{j}"),
                priority: self.priority[j],
                pods: (0..self.sizes[j].len()).map(|k| format!("j{j}-{k}")).collect(),
                started: secs(self.result.outcomes[j].start.expect("running jobs have started")),
            })
            .collect();
        if running.is_empty() {
            return false;
        }
        let at = Duration::from_secs_f64(now);
        let outcome = self.queue.preempt(&self.profile, &self.snapshot, &self.plan_topology, &running, at);
        let Some(preemption) = outcome.preemption else { return false };
        self.result.preemptions += 1;
        for victim in &preemption.victims {
            self.evict(job_of(victim).expect("units are named j<index>"), now);
        }
        self.refill(at);
        true
    }

    /// `job` stops and starts over: its pods go, its work is lost, it waits again.
    fn evict(&mut self, job: usize, now: f64) {
        let start = self.result.outcomes[job].start.take().expect("victims are running");
        self.running.remove(&job);
        self.release(job, now);
        // Its finish event is stale now.
        self.held[job].generation += 1;
        self.finish_at[job] = f64::NAN;
        self.result.evicted_gpu_seconds += f64::from(self.jobs[job].gpus) * (now - start);
        self.result.evictions += 1;
        self.result.outcomes[job].evictions += 1;
        self.overflow.insert(self.order(job));
    }

    fn pod_pass(&mut self, now: f64) -> usize {
        let mut max_idle = self.snapshot.nodes().iter().map(|n| n.idle_gpus()).max().unwrap_or(0) as u32;
        let mut started = Vec::new();
        for &job in &self.window {
            let sizes = &self.sizes[job];
            let held = &mut self.held[job];
            if held.pods.is_empty() {
                held.pods = vec![None; sizes.len()];
            }
            for (k, &size) in sizes.iter().enumerate() {
                if held.pods[k].is_some() || size > max_idle {
                    continue;
                }
                let pod = pod(job, k, size);
                let Ok(decision) = schedule_one(&self.profile, &self.snapshot, &pod) else { continue };
                self.snapshot.assume(&pod, decision.node, &decision.gpus).expect("the framework's decision fits");
                self.free_gpus -= u64::from(size);
                held.pods[k] = Some((decision.node, now));
                held.placed += 1;
                if held.placed == 1 && sizes.len() > 1 {
                    self.events.push(Event {
                        time: now + self.config.partial_timeout,
                        job,
                        kind: EventKind::PartialTimeout { generation: held.generation },
                    });
                }
                max_idle = self.snapshot.nodes().iter().map(|n| n.idle_gpus()).max().unwrap_or(0) as u32;
            }
            if held.placed == sizes.len() {
                started.push(job);
            }
        }
        for &job in &started {
            let mut waste = 0.0;
            for (k, slot) in self.held[job].pods.iter().enumerate() {
                let (_, at) = slot.expect("all placed");
                waste += f64::from(self.sizes[job][k]) * (now - at);
            }
            self.result.partial_gang_gpu_seconds += waste;
            // The timer of this partial placement is now stale.
            self.held[job].generation += 1;
            // Already subtracted from free_gpus pod by pod.
            self.free_gpus += u64::from(self.jobs[job].gpus);
            self.start(job, now);
        }
        self.window.retain(|j| !started.contains(j));
        started.len()
    }

    /// Every pod of `job` is placed (`held`); the job runs from `now`.
    fn start(&mut self, job: usize, now: f64) {
        if self.held[job].pods.iter().any(Option::is_none) {
            self.result.partial_starts += 1;
        }
        let nodes: Vec<NodeId> = self.held[job].pods.iter().flatten().map(|p| p.0).collect();
        let spread = spread_of(&self.real, &nodes);
        let slowdown = self.config.slowdown.factor(spread);
        let finish = now + self.jobs[job].duration * slowdown;
        self.finish_at[job] = finish;
        self.free_gpus -= u64::from(self.jobs[job].gpus);
        let outcome = &mut self.result.outcomes[job];
        outcome.start = Some(now);
        outcome.spread = Some(spread);
        outcome.spread_hops = self.real.placement_cost(&nodes);
        outcome.slowdown = slowdown;
        self.running.insert(job);
        let generation = self.held[job].generation;
        self.events.push(Event { time: finish, job, kind: EventKind::Finish { generation } });
    }

    /// Forgets every placed pod of `job`; returns the GPU-seconds they held.
    fn release(&mut self, job: usize, now: f64) -> f64 {
        let mut held_seconds = 0.0;
        for (k, slot) in self.held[job].pods.iter_mut().enumerate() {
            if let Some((_, at)) = slot.take() {
                let size = self.sizes[job][k];
                self.snapshot.forget(&format!("j{job}-{k}")).expect("placed pods are in the snapshot");
                self.free_gpus += u64::from(size);
                held_seconds += f64::from(size) * (now - at);
            }
        }
        self.held[job].placed = 0;
        self.result.allocated_gpu_seconds += held_seconds;
        self.dirty = true;
        // Room freed: gangs backing off may fit now (a no-op with the default `Backoff::NONE`).
        self.queue.activate_backoff();
        held_seconds
    }

    fn finish(&mut self, job: usize, generation: u32, now: f64) {
        if self.held[job].generation != generation {
            return;
        }
        self.running.remove(&job);
        self.release(job, now);
        self.result.outcomes[job].finish = Some(now);
        self.learned.record(self.jobs[job].gpus, self.jobs[job].duration);
        self.result.useful_gpu_seconds += self.jobs[job].duration * f64::from(self.jobs[job].gpus);
    }

    fn partial_timeout(&mut self, job: usize, generation: u32, now: f64) {
        let held = &self.held[job];
        if held.generation != generation || held.placed == 0 || self.result.outcomes[job].start.is_some() {
            return;
        }
        let wasted = self.release(job, now);
        self.result.partial_gang_gpu_seconds += wasted;
        self.result.partial_gang_timeouts += 1;
        self.held[job].generation += 1;
    }
}

/// Mean run time (as recorded, before slowdown) of finished jobs per size class (`summary::SIZE_CLASSES`).
#[derive(Debug, Clone, Default)]
struct Learned {
    by_class: [(f64, u32); SIZE_CLASSES.len()],
}

impl Learned {
    fn record(&mut self, gpus: u32, duration: f64) {
        let slot = &mut self.by_class[size_class(gpus)];
        slot.0 += duration;
        slot.1 += 1;
    }

    fn mean(&self, gpus: u32) -> Option<f64> {
        let (sum, n) = self.by_class[size_class(gpus)];
        (n > 0).then(|| sum / f64::from(n))
    }
}

/// The queue's view of run times, from the engine's state.
struct JobHints<'a> {
    kind: Hints,
    jobs: &'a [Job],
    finish_at: &'a [f64],
    outcomes: &'a [JobOutcome],
    learned: &'a Learned,
}

impl JobHints<'_> {
    fn runtime(&self, job: usize) -> Option<f64> {
        match self.kind {
            Hints::None => None,
            Hints::Declared => Some(self.jobs[job].duration),
            Hints::Learned => self.learned.mean(self.jobs[job].gpus),
        }
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

impl RuntimeHints for JobHints<'_> {
    fn expected_end(&self, pod_key: &str) -> Option<Duration> {
        let job = job_of(pod_key.split('-').next()?)?;
        match self.kind {
            Hints::None => None,
            Hints::Declared => Some(secs(self.finish_at[job])),
            Hints::Learned => {
                let o = &self.outcomes[job];
                Some(secs(o.start? + self.runtime(job)? * o.slowdown))
            }
        }
    }

    fn expected_runtime(&self, gang: &Gang) -> Option<Duration> {
        let job = job_of(&gang.name)?;
        self.runtime(job).map(secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(submit: f64, duration: f64, gpus: u32) -> Job {
        Job { id: String::new(), submit, duration, gpus, vc: None }
    }

    fn config(policy: JobPolicy, spec: &str) -> EngineConfig {
        EngineConfig {
            policy,
            cluster: spec.parse().unwrap(),
            slowdown: SlowdownModel::default(),
            window: DEFAULT_WINDOW,
            partial_timeout: DEFAULT_PARTIAL_TIMEOUT_SECONDS,
            reserve_after_skips: QueueConfig::default().reserve_after_skips,
            hints: Hints::None,
            min_locality_gain: QueueConfig::default().min_locality_gain,
            priorities: PriorityMix::default(),
            preemption: false,
        }
    }

    #[test]
    fn pods_take_at_most_a_node() {
        assert_eq!(pod_sizes(1, 8), [1]);
        assert_eq!(pod_sizes(8, 8), [8]);
        assert_eq!(pod_sizes(12, 8), [8, 4]);
        assert_eq!(pod_sizes(64, 8), [8; 8]);
    }

    #[test]
    fn a_rack_local_gang_runs_at_trace_speed_and_a_spread_one_slower() {
        // 2 racks of 2 nodes, one spine. A 16-GPU job fits one rack under mlsched.
        let jobs = vec![job(0.0, 100.0, 16)];
        let r = simulate(&jobs, &config(JobPolicy::Mlsched, "4x8x2x2"));
        assert_eq!(r.outcomes[0].finish, Some(100.0));
        assert_eq!(r.outcomes[0].spread, Some(Spread::Rack));
        // One GPU busy on a node of each rack: the 16-GPU job can only go across racks.
        let jobs = vec![job(0.0, 1000.0, 4), job(0.0, 1000.0, 4), job(1.0, 100.0, 16)];
        for policy in JobPolicy::ALL {
            let r = simulate(&jobs, &config(policy, "4x8x2x2"));
            let o = &r.outcomes[2];
            assert!(o.finish.is_some(), "{policy}");
            if o.spread == Some(Spread::CrossRack) {
                assert!((o.finish.unwrap() - o.start.unwrap() - 130.0).abs() < 1e-9, "{policy}: {o:?}");
            }
        }
    }

    #[test]
    fn gangs_never_hold_partial_placements_but_pods_do() {
        // 2 nodes of 8: a 4-GPU job runs long; a 16-GPU job arrives and cannot fit until it ends.
        let jobs = vec![job(0.0, 5000.0, 4), job(1.0, 100.0, 16)];
        let gang = simulate(&jobs, &config(JobPolicy::Mlsched, "2x8x2x1"));
        assert_eq!(gang.partial_gang_gpu_seconds, 0.0);
        assert_eq!(gang.outcomes[1].start, Some(5000.0));
        let pods = simulate(&jobs, &config(JobPolicy::NoGang, "2x8x2x1"));
        // One 8-GPU pod placed at t=1, released every 600 s until the long job ends at 5000.
        assert!(pods.partial_gang_gpu_seconds > 8.0 * 4000.0, "{}", pods.partial_gang_gpu_seconds);
        assert!(pods.partial_gang_timeouts >= 8, "{}", pods.partial_gang_timeouts);
        assert!(pods.outcomes[1].finish.is_some());
    }

    #[test]
    fn a_high_priority_job_evicts_a_whole_lower_one_which_starts_over() {
        // 2 nodes of 8: a 16-GPU low-priority gang holds both; an 8-GPU high-priority job arrives at 100.
        let jobs = vec![job(0.0, 1000.0, 16), job(100.0, 50.0, 8)];
        let priorities = vec![0, HIGH_PRIORITY];
        let waits = simulate_with_priorities(&jobs, &config(JobPolicy::Mlsched, "2x8x2x1"), priorities.clone());
        assert_eq!(waits.outcomes[1].start, Some(1000.0), "without preemption it waits for the gang to end");
        assert_eq!(waits.preemptions, 0);
        let preempting = EngineConfig { preemption: true, ..config(JobPolicy::Mlsched, "2x8x2x1") };
        let r = simulate_with_priorities(&jobs, &preempting, priorities);
        assert_eq!(r.outcomes[1].start, Some(100.0));
        assert_eq!(r.outcomes[1].finish, Some(150.0));
        // The gang went whole (both pods, though one node would do) and ran again from the start.
        assert_eq!((r.preemptions, r.evictions, r.outcomes[0].evictions), (1, 1, 1));
        assert_eq!(r.outcomes[0].start, Some(150.0));
        assert_eq!(r.outcomes[0].finish, Some(1150.0));
        assert_eq!(r.evicted_gpu_seconds, 16.0 * 100.0);
        assert_eq!(r.partial_starts, 0);
    }

    #[test]
    fn jobs_of_one_priority_never_evict_each_other() {
        let jobs = vec![job(0.0, 1000.0, 16), job(100.0, 50.0, 8)];
        let preempting = EngineConfig { preemption: true, ..config(JobPolicy::Mlsched, "2x8x2x1") };
        let r = simulate_with_priorities(&jobs, &preempting, vec![HIGH_PRIORITY, HIGH_PRIORITY]);
        assert_eq!((r.preemptions, r.outcomes[1].start), (0, Some(1000.0)));
    }

    #[test]
    fn the_priority_mix_is_repeatable_and_near_its_share() {
        let mix = PriorityMix { high_share: 0.2, seed: 7 };
        let a = mix.assign(10_000);
        assert_eq!(a, mix.assign(10_000));
        let high = a.iter().filter(|&&p| p == HIGH_PRIORITY).count();
        assert!((1800..2200).contains(&high), "{high}");
        assert!(PriorityMix::default().assign(100).iter().all(|&p| p == 0));
    }

    #[test]
    fn too_large_jobs_are_counted_not_queued() {
        let jobs = vec![job(0.0, 10.0, 64), job(0.0, 10.0, 1)];
        let r = simulate(&jobs, &config(JobPolicy::Gang, "2x8x2x1"));
        assert!(r.outcomes[0].too_large && r.outcomes[0].start.is_none());
        assert_eq!(r.outcomes[1].finish, Some(10.0));
    }
}
