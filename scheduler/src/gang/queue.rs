//! The gang-aware queue: gangs (and single pods, as gangs of one) wait here until they are placed whole.
//!
//! - **Quorum**: a gang is not tried until `min_member` of its pods exist; its members are held back.
//! - **Order**: higher priority first, then earlier arrival. Each pass tries every gang in that order and
//!   places what fits, so a gang that does not fit never blocks smaller work behind it (backfill).
//! - **Aging, so the big gang does not starve in turn**: every pass in which a gang is tried and does not
//!   fit counts as a skip. Once a gang has been skipped `reserve_after_skips` times, the first such gang
//!   in queue order holds a *reservation*: the nodes of the tightest domain it could use once empty (the
//!   one closest to fitting it now, see `reservation_for`). For the rest of the pass, no gang behind it
//!   is placed on those nodes, so pods finishing there free room for it rather than for newcomers. Work
//!   that fits elsewhere still flows. One reservation at a time, always for the oldest starving gang of
//!   the highest priority, so reservations cannot deadlock each other. A gang that could not fit even in
//!   an empty cluster (or its required level) reserves nothing; its timeout ends its wait.
//! - **Backfill into the reservation**: when the caller knows when running pods end and how long a gang
//!   runs ([`RuntimeHints`]), the reserved gang's start is estimated (its shadow time, see `outlook`), and a
//!   gang behind it may use the reserved nodes if it is expected to be gone by then, stretched by how far
//!   it ended up spread ([`QueueConfig::spread_cost`]). The reserved gang starts no later for it, and
//!   its room does not sit idle meanwhile. Without hints the reservation simply holds its nodes.
//! - **Waiting for a tighter domain**: a gang that prefers a level and would start spread over several of
//!   its domains waits instead, holding the domain as the pass's reservation, when the earliest domain of
//!   that level that will hold it (from the pods' expected ends) frees up sooner than the spread would add
//!   to its run, by at least [`QueueConfig::min_locality_gain`]. It needs the gang's run time and every end
//!   time in those domains; without them a preferred level is only the order in which domains are tried.
//! - **Preemption**: after a pass, [`GangQueue::preempt`] gives the first gang in queue order that found
//!   no room the lower-priority units it may evict, whole (`preempt`). The gang is *nominated* to the
//!   nodes it would take: until it is placed, or `nomination_timeout` lapses (its victims did not go), no
//!   gang of its priority or lower is placed on them, so the room its victims free is not taken by others
//!   while they terminate. A nominated gang does not preempt again before its nomination lapses.
//! - **Timeouts**: a gang whose `timeout` has passed since it arrived is reported and starts a new wait,
//!   after a backoff (its pods still exist; a caller giving up on them removes it). It never held
//!   anything: gangs are placed whole or not at all.
//! - **Between passes** (`units`): a placed gang stays queued, *binding*, until the caller removes it (its
//!   binds went through) or backs it off (they failed). A gang that found no room, or was rejected, backs
//!   off (`QueueConfig::backoff`) and is tried again when the backoff ends or a cluster change that could
//!   help calls `activate_backoff`; a gang below quorum sleeps until a member arrives (`touch`) or its
//!   timeout is due. The live scheduler and `mlsim jobs` drive this same lifecycle.
//!
//! Time is passed in by the caller (`now`), so the queue stays pure and a simulator drives it with its own
//! clock.

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use thiserror::Error;

use super::outlook::{NoHints, RuntimeHints, earliest_fit};
use super::plan::{PlanOptions, Reservation, eligible_when_empty, plan_gang_with, reservation, sizing_member};
use super::preempt::{NoPreemption, Preemption, RunningUnit, plan_preemption};
use super::units::Backoff;
use super::{Gang, GangPlacement, GangUnschedulable};
use crate::core::{NodeId, Pod, Snapshot};
use crate::framework::Profile;
use crate::topology::Topology;

#[derive(Debug, Clone, PartialEq)]
pub struct QueueConfig {
    /// Skips after which the oldest starving gang reserves its domain.
    pub reserve_after_skips: u32,
    /// How much longer a gang runs when its members span several domains of a topology level:
    /// `(level label, α)` for run time × (1 + α); the loosest level spanned counts. A level not listed
    /// costs nothing. The scheduler's own model of its network, used to bound a backfilled gang's run.
    pub spread_cost: Vec<(String, f64)>,
    /// A gang waits for a domain of its preferred level only when that saves it at least this much over
    /// starting spread now. Waiting holds the domain from work that would not be gone in time; for a gain
    /// of a few minutes that cost to the queue outweighs it (replays: `bench/README.md`, "Topology-aware
    /// gangs").
    pub min_locality_gain: Duration,
    /// How long a preemptor's nodes are held for it while its victims terminate; past that it may
    /// preempt again (its victims may have been refused eviction, e.g. by a PodDisruptionBudget).
    pub nomination_timeout: Duration,
    /// How long a gang that found no room waits before it is tried again (unless a cluster change
    /// activates it sooner). None by default: a caller that passes only on events that can help (a
    /// simulator) tries every gang at every pass.
    pub backoff: Backoff,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            reserve_after_skips: 3,
            spread_cost: Vec::new(),
            min_locality_gain: Duration::from_secs(600),
            nomination_timeout: Duration::from_secs(300),
            backoff: Backoff::NONE,
        }
    }
}

impl QueueConfig {
    /// The stretch factor of a placement on `nodes`: 1 + α of the loosest level they span.
    pub fn stretch(&self, topology: &Topology, nodes: &[NodeId]) -> f64 {
        for (level, info) in topology.levels().iter().enumerate().take(topology.group_levels()) {
            let mut domains = nodes.iter().map(|&n| topology.domain_of(n, level));
            let first = domains.next().flatten();
            if domains.any(|d| d != first) {
                let alpha = self.spread_cost.iter().find(|(label, _)| *label == info.label).map_or(0.0, |c| c.1);
                return 1.0 + alpha;
            }
        }
        1.0
    }
}

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum QueueError {
    #[error("gang {0} is already queued")]
    DuplicateGang(String),
    #[error("no queued gang named {0}")]
    UnknownGang(String),
    #[error("gang {gang}: {reason}")]
    InvalidGang { gang: String, reason: String },
}

#[derive(Debug, Clone)]
pub(super) struct QueuedGang {
    pub(super) gang: Gang,
    /// Which of the caller's profiles decides it.
    pub(super) profile: usize,
    /// Its place in FIFO order.
    pub(super) arrival: u64,
    /// When it (re-)entered the queue; its timeout counts from here.
    pub(super) arrived_at: Duration,
    skips: u32,
    last_reason: Option<String>,
    /// The last pass found no room for it anywhere (what preemption may change).
    no_room: bool,
    /// Nodes held for it while its victims terminate, and since when.
    nomination: Option<(Vec<NodeId>, Duration)>,
    /// It does not preempt before this: its last preemption was refused (a PodDisruptionBudget, say).
    preempt_after: Duration,
    /// Unsuccessful tries so far (its backoff grows with them).
    pub(super) attempts: u32,
    /// Not tried before this; `Duration::MAX` = asleep until touched.
    pub(super) not_before: Option<Duration>,
}

impl QueuedGang {
    pub(super) fn new(gang: Gang, profile: usize, arrival: u64, arrived_at: Duration) -> Self {
        QueuedGang {
            gang,
            profile,
            arrival,
            arrived_at,
            skips: 0,
            last_reason: None,
            no_room: false,
            nomination: None,
            preempt_after: Duration::ZERO,
            attempts: 0,
            not_before: None,
        }
    }

    /// Queue order: higher priority first, then first arrived.
    pub(super) fn order(&self) -> (Reverse<i32>, u64) {
        (Reverse(self.gang.priority), self.arrival)
    }

    /// One more unsuccessful try: it waits `backoff.after(attempts)`.
    pub(super) fn back_off(&mut self, backoff: &Backoff, now: Duration) -> Duration {
        self.attempts += 1;
        let wait = backoff.after(self.attempts);
        self.not_before = Some(now.saturating_add(wait));
        wait
    }
}

/// A gang whose wait ran out; it holds nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedOutGang {
    pub gang: Gang,
    pub waited: Duration,
    pub last_reason: Option<String>,
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PassOutcome {
    /// Placed gangs, in the order they were placed; their members are assumed in the snapshot.
    pub placed: Vec<GangPlacement>,
    pub timed_out: Vec<TimedOutGang>,
    /// Gangs removed because they can never be placed as given (unknown level, invalid pod...).
    pub rejected: Vec<(Gang, String)>,
    /// Gangs still waiting, with why (for PodGroup conditions and `FailedScheduling` events).
    pub waiting: Vec<(String, String)>,
    /// The gang whose domain was kept free of later work this pass.
    pub reserved_for: Option<String>,
    /// Gangs placed on reserved nodes because they are expected to be gone before the reserved gang can
    /// start.
    pub backfilled: Vec<String>,
}

/// The reservation of one pass: the nodes held, and, once asked, when the gang they are held for is
/// expected to be able to start (`None` inside when unknown).
struct Held {
    mask: Vec<bool>,
    reservation: Reservation,
    sizing: Pod,
    need: u64,
    shadow: Option<Option<Duration>>,
}

impl Held {
    /// `reservation` held for `gang` until it has `need` members' room; `start` when already known.
    fn new(reservation: Reservation, gang: &Gang, need: u64, start: Option<Duration>, nodes: usize) -> Held {
        let mut mask = vec![false; nodes];
        reservation.nodes.iter().for_each(|&n| mask[n] = true);
        let shadow = start.map(Some);
        Held { mask, reservation, sizing: sizing_member(&gang.members).clone(), need, shadow }
    }

    fn shadow(&mut self, snapshot: &Snapshot, hints: &dyn RuntimeHints, now: Duration) -> Option<Duration> {
        *self.shadow.get_or_insert_with(|| {
            let r = &self.reservation;
            earliest_fit(snapshot, &r.waits_on, &r.eligible, &self.sizing, self.need, &[], hints, now)
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct GangQueue {
    pub(super) config: QueueConfig,
    /// By gang name; queue order is [`QueuedGang::order`].
    pub(super) entries: HashMap<String, QueuedGang>,
    /// The names of the entries not binding (a placed gang whose binds are not yet reported is not here):
    /// what a pass, `ready` and the counts walk, so that a backlog of placed gangs waiting for their binds
    /// (a throttled scheduler's) costs them nothing.
    pub(super) waiting: HashSet<String>,
    pub(super) next_arrival: u64,
    /// The last pass's reservation: the gang it was held for, its priority and the nodes held
    /// (preemption by gangs of that priority or lower leaves them be).
    reserved: Option<(String, i32, Vec<NodeId>)>,
    /// The snapshot's node layout the node ids above refer to (`Snapshot::layout`).
    layout: u64,
}

impl GangQueue {
    pub fn new(config: QueueConfig) -> Self {
        GangQueue {
            config,
            entries: HashMap::new(),
            waiting: HashSet::new(),
            next_arrival: 0,
            reserved: None,
            layout: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Queues a gang (its members so far may be fewer than `min_member`), for the first profile.
    pub fn add_gang(&mut self, gang: Gang, now: Duration) -> Result<(), QueueError> {
        gang.validate().map_err(|reason| QueueError::InvalidGang { gang: gang.name.clone(), reason })?;
        if self.entries.contains_key(&gang.name) {
            return Err(QueueError::DuplicateGang(gang.name));
        }
        self.insert(gang, 0, now);
        Ok(())
    }

    /// Queues `gang`, known not to be queued, last in FIFO order.
    pub(super) fn insert(&mut self, gang: Gang, profile: usize, now: Duration) {
        let arrival = self.next_arrival;
        self.next_arrival += 1;
        let name = gang.name.clone();
        self.waiting.insert(name.clone());
        self.entries.insert(name, QueuedGang::new(gang, profile, arrival, now));
    }

    /// Queues `gang` for `profile` (an index into the profiles a pass is given), or, if a gang of that
    /// name is queued, takes its members, settings and profile from `gang` and keeps its place, age,
    /// skips, backoff and nomination: how a caller whose view of a gang's pods changes between passes (the
    /// live scheduler) keeps it queued.
    pub fn upsert(&mut self, gang: Gang, profile: usize, now: Duration) -> Result<(), QueueError> {
        gang.validate().map_err(|reason| QueueError::InvalidGang { gang: gang.name.clone(), reason })?;
        match self.entries.get_mut(&gang.name) {
            Some(entry) => {
                entry.gang = gang;
                entry.profile = profile;
            }
            None => {
                self.insert(gang, profile, now);
            }
        }
        Ok(())
    }

    /// The names of the queued gangs, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// The names of the queued gangs not binding that `keep` selects, in queue order.
    pub(super) fn in_order(&self, keep: impl Fn(&str, &QueuedGang) -> bool) -> Vec<String> {
        let mut names: Vec<(&String, &QueuedGang)> =
            self.waiting.iter().map(|n| (n, &self.entries[n])).filter(|(n, e)| keep(n, e)).collect();
        names.sort_by_key(|(_, e)| e.order());
        names.into_iter().map(|(n, _)| n.clone()).collect()
    }

    /// The gang the last pass's reservation was held for.
    pub fn reserved_for(&self) -> Option<&str> {
        self.reserved.as_ref().map(|(gang, _, _)| gang.as_str())
    }

    /// A pod outside any gang, queued as a gang of one.
    pub fn add_pod(&mut self, pod: Pod, now: Duration) -> Result<(), QueueError> {
        self.add_gang(Gang::single(pod), now)
    }

    /// A member that appeared after its gang was queued.
    pub fn add_member(&mut self, gang: &str, pod: Pod) -> Result<(), QueueError> {
        let entry = self.entries.get_mut(gang).ok_or_else(|| QueueError::UnknownGang(gang.into()))?;
        if entry.gang.members.iter().any(|m| m.key == pod.key) {
            return Err(QueueError::InvalidGang {
                gang: gang.into(),
                reason: format!("pod {} is already a member", pod.key),
            });
        }
        entry.gang.members.push(pod);
        entry.not_before = None;
        Ok(())
    }

    /// Takes a gang out of the queue (its binds went through, or its job was deleted).
    pub fn remove(&mut self, gang: &str) -> Option<Gang> {
        self.waiting.remove(gang);
        Some(self.entries.remove(gang)?.gang)
    }

    pub fn waiting_reason(&self, gang: &str) -> Option<&str> {
        self.entries.get(gang)?.last_reason.as_deref()
    }

    pub fn skips(&self, gang: &str) -> Option<u32> {
        self.entries.get(gang).map(|e| e.skips)
    }

    /// Expires timed-out gangs, then tries every other gang due once in queue order, knowing no run times.
    pub fn schedule_pass(
        &mut self,
        profile: &Profile,
        snapshot: &mut Snapshot,
        topology: &Topology,
        now: Duration,
    ) -> PassOutcome {
        self.schedule_pass_with(profile, snapshot, topology, now, &NoHints)
    }

    /// [`GangQueue::schedule_pass`] with what the caller knows about run times (backfill into the
    /// reservation).
    pub fn schedule_pass_with(
        &mut self,
        profile: &Profile,
        snapshot: &mut Snapshot,
        topology: &Topology,
        now: Duration,
        hints: &dyn RuntimeHints,
    ) -> PassOutcome {
        self.schedule_pass_among(std::slice::from_ref(profile), snapshot, topology, now, hints, &|_| true)
    }

    /// [`GangQueue::schedule_pass_with`] for gangs of several profiles (each decided by
    /// `profiles[its profile]`, all in one queue order), trying only the gangs due now that `tried` names
    /// (the ones whose members the caller has just given, see [`GangQueue::upsert`]); the others keep their
    /// place, age and nomination, and are only expired when their timeout passes.
    pub fn schedule_pass_among(
        &mut self,
        profiles: &[Profile],
        snapshot: &mut Snapshot,
        topology: &Topology,
        now: Duration,
        hints: &dyn RuntimeHints,
        tried: &dyn Fn(&str) -> bool,
    ) -> PassOutcome {
        self.follow_layout(snapshot);
        let mut outcome = PassOutcome { timed_out: self.expire(now), ..PassOutcome::default() };
        let order = self.in_order(|name, entry| self.is_due(name, entry, now) && tried(name));
        let backoff = self.config.backoff;
        let mut nominated = self.live_nominations(now);
        let mut held: Option<Held> = None;
        for name in order {
            let entry = self.entries.get_mut(&name).expect("listed from the entries");
            let profile = &profiles[entry.profile.min(profiles.len() - 1)];
            entry.no_room = false;
            if !entry.gang.has_quorum() {
                let reason = GangUnschedulable::WaitingForMembers {
                    gang: name.clone(),
                    have: entry.gang.members.len(),
                    min_member: entry.gang.min_member,
                }
                .to_string();
                outcome.waiting.push((name.clone(), reason.clone()));
                entry.last_reason = Some(reason);
                // Asleep until a member arrives or its timeout is due.
                let deadline = entry.gang.timeout.map(|t| entry.arrived_at.saturating_add(t));
                entry.not_before = Some(deadline.unwrap_or(Duration::MAX));
                continue;
            }
            let others = nominated_to_others(&nominated, &entry.gang, snapshot.nodes().len());
            let both: Vec<bool>;
            let avoid = match (&held, &others) {
                (Some(h), Some(o)) => {
                    both = h.mask.iter().zip(o).map(|(a, b)| *a || *b).collect();
                    Some(&both[..])
                }
                (Some(h), None) => Some(&h.mask[..]),
                (None, o) => o.as_deref(),
            };
            let options = PlanOptions { avoid, ..PlanOptions::default() };
            let mut planned = plan_gang_with(profile, snapshot, &entry.gang, topology, &options);
            if planned.is_err()
                && let Some(h) = held.as_mut()
                && let Some(placement) =
                    backfill(&self.config, profile, snapshot, topology, &entry.gang, h, others.as_deref(), hints, now)
            {
                outcome.backfilled.push(placement.gang.clone());
                planned = Ok(placement);
            }
            if let Ok(placement) = &planned
                && held.is_none()
                && let Some(wait) =
                    locality_wait(&self.config, profile, snapshot, topology, &entry.gang, placement, hints, now)
            {
                let nodes = snapshot.nodes().len();
                held = Some(Held::new(wait.reservation, &entry.gang, wait.need, Some(wait.start), nodes));
                outcome.reserved_for = Some(name.clone());
                outcome.waiting.push((name.clone(), wait.message.clone()));
                entry.last_reason = Some(wait.message);
                entry.back_off(&backoff, now);
                continue;
            }
            match planned {
                Ok(placement) => {
                    nominated.retain(|(gang, _, _)| *gang != placement.gang);
                    entry.nomination = None;
                    entry.not_before = None;
                    self.waiting.remove(&name);
                    outcome.placed.push(placement);
                }
                Err(GangUnschedulable::Invalid { reason, .. }) => {
                    entry.last_reason = Some(reason.clone());
                    entry.back_off(&backoff, now);
                    outcome.rejected.push((entry.gang.clone(), reason));
                }
                Err(unschedulable) => {
                    entry.skips += 1;
                    entry.no_room = matches!(unschedulable, GangUnschedulable::NoRoom { .. });
                    let reason = unschedulable.to_string();
                    outcome.waiting.push((name.clone(), reason.clone()));
                    entry.last_reason = Some(reason);
                    entry.back_off(&backoff, now);
                    if held.is_none()
                        && entry.skips >= self.config.reserve_after_skips
                        && let Some(reservation) = reservation(profile, snapshot, &entry.gang, topology)
                    {
                        let (need, nodes) = (entry.gang.min_member as u64, snapshot.nodes().len());
                        held = Some(Held::new(reservation, &entry.gang, need, None, nodes));
                        outcome.reserved_for = Some(name.clone());
                    }
                }
            }
        }
        self.reserved = held.zip(outcome.reserved_for.as_ref()).map(|(h, gang)| {
            let priority = self.entries.get(gang).map_or(i32::MAX, |e| e.gang.priority);
            (gang.clone(), priority, h.reservation.nodes)
        });
        outcome
    }

    /// Node ids held across passes (nominations, the last reservation) name other nodes once the node
    /// list is rebuilt: they are dropped then. A nominated gang may preempt again.
    fn follow_layout(&mut self, snapshot: &Snapshot) {
        if snapshot.layout() != self.layout {
            self.layout = snapshot.layout();
            self.reserved = None;
            self.entries.values_mut().for_each(|e| e.nomination = None);
        }
    }

    /// The nominations still held at `now`, as (gang, priority, nodes); lapsed ones are dropped.
    fn live_nominations(&mut self, now: Duration) -> Vec<(String, i32, Vec<NodeId>)> {
        let timeout = self.config.nomination_timeout;
        let mut live = Vec::new();
        for name in &self.waiting {
            let entry = self.entries.get_mut(name).expect("waiting names are entries");
            if entry.nomination.as_ref().is_some_and(|(_, since)| now.saturating_sub(*since) >= timeout) {
                entry.nomination = None;
            }
            if let Some((nodes, _)) = &entry.nomination {
                live.push((entry.gang.name.clone(), entry.gang.priority, nodes.clone()));
            }
        }
        live
    }

    /// After a pass: the first gang in queue order that found no room, may preempt and holds no
    /// nomination, with the units it may evict (`preempt::plan_preemption`). It is nominated to the nodes
    /// it would take; the caller evicts the victims. Gangs that may not preempt are listed with why; the
    /// search stops at the first that may.
    pub fn preempt(
        &mut self,
        profile: &Profile,
        snapshot: &Snapshot,
        topology: &Topology,
        running: &[RunningUnit],
        now: Duration,
    ) -> PreemptOutcome {
        self.preempt_among(std::slice::from_ref(profile), snapshot, topology, running, now)
    }

    /// [`GangQueue::preempt`] for gangs of several profiles, each planned by `profiles[its profile]`.
    pub fn preempt_among(
        &mut self,
        profiles: &[Profile],
        snapshot: &Snapshot,
        topology: &Topology,
        running: &[RunningUnit],
        now: Duration,
    ) -> PreemptOutcome {
        self.follow_layout(snapshot);
        let mut outcome = PreemptOutcome::default();
        let lowest = running.iter().map(|u| u.priority).min();
        let nominated = self.live_nominations(now);
        let nodes = snapshot.nodes().len();
        let candidates = self.in_order(|name, entry| {
            entry.no_room
                && now >= entry.preempt_after
                && lowest.is_some_and(|low| low < entry.gang.priority)
                && !nominated.iter().any(|(gang, _, _)| gang == name)
        });
        for name in candidates {
            let entry = self.entries.get_mut(&name).expect("listed from the entries");
            let profile = &profiles[entry.profile.min(profiles.len() - 1)];
            // Room held for others of its priority or higher: nominations, and the pass's reservation.
            let mut avoid = nominated_to_others(&nominated, &entry.gang, nodes);
            if let Some((holder, priority, held)) = &self.reserved
                && *holder != name
                && *priority >= entry.gang.priority
            {
                let mask = avoid.get_or_insert_with(|| vec![false; nodes]);
                held.iter().for_each(|&n| mask[n] = true);
            }
            match plan_preemption(profile, snapshot, topology, &entry.gang, running, avoid.as_deref()) {
                Ok(preemption) => {
                    entry.nomination = Some((preemption.nodes.clone(), now));
                    outcome.preemption = Some(preemption);
                    break;
                }
                Err(refused) => outcome.refused.push(refused),
            }
        }
        outcome
    }

    /// `gang`'s victims could not all be evicted: its nomination is dropped, and it may preempt again from
    /// `retry_at` (asking at once would most likely be refused again, for the same reason).
    pub fn preemption_refused(&mut self, gang: &str, retry_at: Duration) {
        if let Some(entry) = self.entries.get_mut(gang) {
            entry.nomination = None;
            entry.preempt_after = retry_at;
        }
    }

    /// Every gang holding a nomination, with its nodes (lapsed ones included until the next pass drops them).
    pub fn nominations(&self) -> impl Iterator<Item = (&str, &[NodeId])> {
        let entries = self.waiting.iter().map(|name| (name, &self.entries[name]));
        entries.filter_map(|(name, e)| Some((name.as_str(), &e.nomination.as_ref()?.0[..])))
    }

    /// The nodes held for `gang` while its victims terminate.
    pub fn nomination(&self, gang: &str) -> Option<&[NodeId]> {
        self.entries.get(gang)?.nomination.as_ref().map(|(nodes, _)| &nodes[..])
    }

    /// Gangs (not binding) whose timeout has passed are reported, and start a new wait after a backoff.
    fn expire(&mut self, now: Duration) -> Vec<TimedOutGang> {
        let expired = self
            .in_order(|_, entry| entry.gang.timeout.is_some_and(|limit| now.saturating_sub(entry.arrived_at) >= limit));
        let backoff = self.config.backoff;
        let mut timed_out = Vec::new();
        for name in expired {
            let entry = self.entries.get_mut(&name).expect("listed from the entries");
            timed_out.push(TimedOutGang {
                gang: entry.gang.clone(),
                waited: now.saturating_sub(entry.arrived_at),
                last_reason: entry.last_reason.take(),
            });
            entry.arrived_at = now;
            entry.skips = 0;
            entry.nomination = None;
            entry.back_off(&backoff, now);
        }
        timed_out
    }
}

/// What [`GangQueue::preempt`] found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PreemptOutcome {
    /// The gang that may evict, what, and the nodes now held for it.
    pub preemption: Option<Preemption>,
    /// Gangs before it that found no room and may evict nothing, with why.
    pub refused: Vec<NoPreemption>,
}

/// The nodes held for gangs other than `gang` of its priority or higher (`true` = avoid), if any.
fn nominated_to_others(nominated: &[(String, i32, Vec<NodeId>)], gang: &Gang, nodes: usize) -> Option<Vec<bool>> {
    let mut mask: Option<Vec<bool>> = None;
    for (_, _, held) in nominated.iter().filter(|(name, priority, _)| *name != gang.name && *priority >= gang.priority)
    {
        let mask = mask.get_or_insert_with(|| vec![false; nodes]);
        held.iter().for_each(|&n| mask[n] = true);
    }
    mask
}

/// `gang` placed on the reserved nodes too, kept only if it is expected to end, stretched by how spread it
/// landed, by the time the reserved gang can start.
#[allow(clippy::too_many_arguments)]
fn backfill(
    config: &QueueConfig,
    profile: &Profile,
    snapshot: &mut Snapshot,
    topology: &Topology,
    gang: &Gang,
    held: &mut Held,
    nominated: Option<&[bool]>,
    hints: &dyn RuntimeHints,
    now: Duration,
) -> Option<GangPlacement> {
    let runtime = hints.expected_runtime(gang)?;
    let shadow = held.shadow(snapshot, hints, now)?;
    if now + runtime > shadow {
        return None;
    }
    let options = PlanOptions { avoid: nominated, ..PlanOptions::default() };
    let placement = plan_gang_with(profile, snapshot, gang, topology, &options).ok()?;
    let stretched = runtime.mul_f64(config.stretch(topology, &placement.nodes()));
    if now + stretched <= shadow {
        return Some(placement);
    }
    placement.release(snapshot).expect("a placement just made can be released");
    None
}

/// A gang that will start sooner, all told, in a domain of its preferred level once that frees up.
struct LocalityWait {
    reservation: Reservation,
    need: u64,
    start: Duration,
    message: String,
}

/// Whether `gang`, just placed as `placement` (assumed in `snapshot`), should rather wait for a domain of
/// its preferred level: when the earliest such domain is expected to hold it sooner than the spread would
/// add to its run (`runtime × α`), by at least `min_locality_gain`. On `Some` the placement has been
/// released; on `None` it stands.
#[allow(clippy::too_many_arguments)]
fn locality_wait(
    config: &QueueConfig,
    profile: &Profile,
    snapshot: &mut Snapshot,
    topology: &Topology,
    gang: &Gang,
    placement: &GangPlacement,
    hints: &dyn RuntimeHints,
    now: Duration,
) -> Option<LocalityWait> {
    let preferred = gang.topology.as_ref().filter(|t| !t.required)?;
    let level = topology.level_index(&preferred.level).ok().filter(|&l| l < topology.group_levels())?;
    let stretch = config.stretch(topology, &placement.nodes());
    if stretch <= 1.0 {
        return None;
    }
    let runtime = hints.expected_runtime(gang)?;
    let extra = runtime.mul_f64(stretch - 1.0);
    let sizing = sizing_member(&gang.members);
    let need = placement.members.len() as u64;
    let eligible = eligible_when_empty(profile, snapshot, sizing);
    // Judged as if the placement were not made: its own members hold room they would not hold while waiting.
    let members: Vec<&str> = placement.members.iter().map(|m| m.pod_key.as_str()).collect();
    let (start, domain) = topology
        .domains_at(level)
        .iter()
        .filter(|&&d| topology.domain(d).known)
        .filter_map(|&d| {
            let nodes = &topology.domain(d).nodes;
            earliest_fit(snapshot, nodes, &eligible, sizing, need, &members, hints, now).map(|at| (at, d))
        })
        .min()
        .filter(|&(at, _)| at.saturating_sub(now).saturating_add(config.min_locality_gain) < extra)?;
    placement.release(snapshot).expect("a placement just made can be released");
    let nodes = topology.domain(domain).nodes.clone();
    Some(LocalityWait {
        reservation: Reservation { waits_on: nodes.clone(), nodes, eligible },
        need,
        start,
        message: format!(
            "gang {}: waiting {} s for {} to free up rather than running {:.0}% longer spread now ({} s more)",
            gang.name,
            start.saturating_sub(now).as_secs(),
            topology.describe(domain),
            100.0 * (stretch - 1.0),
            extra.as_secs()
        ),
    })
}
