//! The pure decision: given one workload's pods, their usage, the scheduler's headroom on their nodes and
//! the recent recommendations, choose at most **one** action for this period: vertical (grow pods in place,
//! or recreate them when allowed), horizontal (change the replica count), or nothing, with the reason.
//!
//! Rules (the hybrid algorithm of seeds.md §1, with HPA's and VPA's safeguards):
//! 1. Nothing while the picture is incomplete: no pods, a replica count the pods do not match yet, a resize
//!    or a recreate still in progress, a pod or container without a metrics sample, a targeted resource
//!    without a request, or a Placement API error. Never guess.
//! 2. A pod is *overloaded* when, for a targeted resource, `usage > target × current request × (1 + tolerance)`.
//! 3. Overloaded pods grow **vertically** when every one of them can: its new request is
//!    `max(p90 of its usage history × (1 + margin), usage / target)` (VPA's p90 + margin, and at least enough
//!    to bring utilization back to the target), memory bumped ×1.2 after an OOM kill, clamped to the
//!    container policy; the clamped request must absorb the usage (`usage ≤ target × new × (1 + tolerance)`),
//!    and the growth summed per node must fit the node's free CPU and memory (Placement API `NodeHeadroom`).
//!    In place through `resize`; when that is unavailable, by recreating pods only if `allowRecreate`.
//! 4. Otherwise **horizontal**: `desired = ceil(total usage / (target × baseline request per pod))` per
//!    targeted resource, the highest one wins (HPA's `ceil(current × metric / target)`); no change while
//!    `|usage / (target × baseline × replicas) − 1| ≤ tolerance`; scale-up takes the lowest recommendation of
//!    the scale-up window and is limited to `max(current + 4, current × 2)` per limit period; scale-down
//!    takes the highest recommendation of the (longer) scale-down window; always within min/max.
//!
//! **The no-fight rule.** Running HPA and VPA on one metric loops: VPA raises the request HPA divides by, so
//! HPA sees lower utilization and scales in, which overloads the pods, which VPA grows again. Here:
//! (a) one action per workload per period; (b) the horizontal calculation divides by the **baseline**
//! request — the pod template's request as recorded before the vertical path changed anything (in-place
//! resizes never touch the template; the recreate path records the baseline before rewriting it) — never
//! by the resized pods' requests; (c) scale-out happens only for pods overloaded against their *current*
//! requests that the vertical path cannot absorb, so pods grown in place that keep up are not multiplied
//! on top; (d) scale-in needs no pod overloaded, and resized pods are shrunk back (never below the baseline)
//! only after the scale-down window has passed since the last growth: in place, or, where only recreate is
//! allowed, by recreating them from a smaller template.

use std::collections::BTreeMap;

/// Which kinds of scaling the decision may choose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Vertical while the pods' nodes have room, else horizontal (the paper's hybrid algorithm).
    #[default]
    Hybrid,
    HorizontalOnly,
    VerticalOnly,
    /// Recommend only: decided as `Hybrid`; the caller applies nothing.
    Off,
}

/// CPU in millicores and memory in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Res {
    pub cpu: i64,
    pub mem: i64,
}

impl Res {
    pub const fn new(cpu: i64, mem: i64) -> Self {
        Res { cpu, mem }
    }

    fn get(&self, r: Kind) -> i64 {
        match r {
            Kind::Cpu => self.cpu,
            Kind::Memory => self.mem,
        }
    }

    fn set(&mut self, r: Kind, v: i64) {
        match r {
            Kind::Cpu => self.cpu = v,
            Kind::Memory => self.mem = v,
        }
    }
}

/// A targeted resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Cpu,
    Memory,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Cpu => "cpu",
            Kind::Memory => "memory",
        }
    }
}

/// Bounds of the vertical path for one container (`None`: unbounded on that side).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bounds {
    pub min_cpu: Option<i64>,
    pub max_cpu: Option<i64>,
    pub min_mem: Option<i64>,
    pub max_mem: Option<i64>,
}

impl Bounds {
    fn clamp(&self, r: Kind, v: i64) -> i64 {
        let (lo, hi) = match r {
            Kind::Cpu => (self.min_cpu, self.max_cpu),
            Kind::Memory => (self.min_mem, self.max_mem),
        };
        let v = lo.map_or(v, |l| v.max(l));
        hi.map_or(v, |h| v.min(h))
    }
}

/// The controller's defaults around the decision (the sidecar's config falls back to them, and the
/// simulator runs them): how often it decides, how long usage history is kept for the p90, and the period
/// of the scale-up rate limit.
pub const DEFAULT_PERIOD_S: f64 = 15.0;
pub const DEFAULT_HISTORY_S: f64 = 300.0;
pub const DEFAULT_SCALE_UP_LIMIT_PERIOD_S: f64 = 60.0;

/// What the HybridAutoscaler spec (and the config) say, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub min_replicas: u32,
    pub max_replicas: u32,
    /// Target utilization of the requests (0.7 = 70 %), per resource.
    pub cpu_target: Option<f64>,
    pub mem_target: Option<f64>,
    pub tolerance: f64,
    pub scale_up_window_s: f64,
    pub scale_down_window_s: f64,
    pub mode: Mode,
    pub allow_recreate: bool,
    /// Per container name; `*` applies to containers not named.
    pub bounds: BTreeMap<String, Bounds>,
    /// VPA's safety margin over the p90 (0.15).
    pub margin: f64,
    /// HPA's scale-up limit: at most `max(base + pods, base × factor)` per limit period.
    pub up_limit_pods: u32,
    pub up_limit_factor: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            min_replicas: 1,
            max_replicas: 10,
            cpu_target: Some(0.7),
            mem_target: None,
            tolerance: 0.1,
            scale_up_window_s: 0.0,
            scale_down_window_s: 300.0,
            mode: Mode::Hybrid,
            allow_recreate: false,
            bounds: BTreeMap::new(),
            margin: 0.15,
            up_limit_pods: 4,
            up_limit_factor: 2.0,
        }
    }
}

impl Policy {
    pub fn bounds_for(&self, container: &str) -> Bounds {
        self.bounds.get(container).or_else(|| self.bounds.get("*")).cloned().unwrap_or_default()
    }

    pub fn targets(&self) -> Vec<(Kind, f64)> {
        let mut t = Vec::new();
        if let Some(c) = self.cpu_target {
            t.push((Kind::Cpu, c));
        }
        if let Some(m) = self.mem_target {
            t.push((Kind::Memory, m));
        }
        t
    }

    fn vertical_allowed(&self) -> bool {
        matches!(self.mode, Mode::Hybrid | Mode::VerticalOnly | Mode::Off)
    }

    fn horizontal_allowed(&self) -> bool {
        matches!(self.mode, Mode::Hybrid | Mode::HorizontalOnly | Mode::Off)
    }
}

/// One container of one pod, as observed this period.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContainerSample {
    pub name: String,
    /// The pod's current requests (after any in-place resize).
    pub request: Res,
    /// Current limits (`None` on a side without a limit).
    pub limit_cpu: Option<i64>,
    pub limit_mem: Option<i64>,
    /// Latest metrics sample (`None`: metrics-server has none).
    pub usage: Option<Res>,
    /// 90th percentile of the usage history (`None`: no history yet).
    pub p90: Option<Res>,
    /// The container was OOM-killed since the last period.
    pub oom_killed: bool,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodSample {
    pub name: String,
    pub node: String,
    pub containers: Vec<ContainerSample>,
    /// A resize is pending or in progress on the pod.
    pub resizing: bool,
}

/// The Placement API's answer to `NodeHeadroom`.
#[derive(Clone, Debug, PartialEq)]
pub enum Headroom {
    /// Not asked (mode HorizontalOnly).
    NotAsked,
    /// The call failed or timed out: decide nothing.
    Failed(String),
    /// Per pod: (node, free resources on that node). A pod missing here is unknown to the scheduler.
    Known(BTreeMap<String, (String, Res)>),
}

/// Everything one decision reads.
#[derive(Clone, Debug)]
pub struct Input<'a> {
    pub policy: &'a Policy,
    /// Seconds on a monotonic clock.
    pub now: f64,
    /// `spec.replicas` of the target (from its scale subresource).
    pub replicas: u32,
    pub pods: &'a [PodSample],
    /// Baseline requests per container name (see the no-fight rule); containers missing here use their
    /// current request.
    pub baseline: &'a BTreeMap<String, Res>,
    pub headroom: &'a Headroom,
    /// False once a resize was refused as unsupported (404/405) on this workload.
    pub in_place_available: bool,
    /// Past raw replica recommendations: (time, replicas).
    pub history: &'a [(f64, u32)],
    /// The lowest replica count in the last scale-up limit period (the base of the rate limit).
    pub limit_base: u32,
    /// A recreate rollout started earlier has not finished.
    pub rollout_in_progress: bool,
    /// When the vertical path last grew a pod.
    pub last_grow_at: Option<f64>,
}

/// A new size for one container.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerResize {
    pub name: String,
    pub request: Res,
    /// New limits (scaled with the request when the container had one).
    pub limit_cpu: Option<i64>,
    pub limit_mem: Option<i64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PodResize {
    pub pod: String,
    pub node: String,
    pub containers: Vec<ContainerResize>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    None,
    /// Resize pods in place (`resize` subresource).
    Resize {
        pods: Vec<PodResize>,
        grow: bool,
    },
    /// Rewrite the template's requests and recreate the pods one at a time.
    Recreate {
        containers: Vec<ContainerResize>,
    },
    Scale {
        from: u32,
        to: u32,
    },
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::None => "None",
            Action::Resize { .. } => "Vertical",
            Action::Recreate { .. } => "Recreate",
            Action::Scale { from, to } if to > from => "ScaleUp",
            Action::Scale { .. } => "ScaleDown",
        }
    }
}

/// Which condition a "do nothing" is about, so the controller can report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blocker {
    None,
    Metrics,
    Placement,
    Limited,
    Waiting,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub action: Action,
    pub reason: String,
    pub blocker: Blocker,
    /// Replicas by the horizontal formula (before stabilization and limits); `None` without metrics.
    pub recommended_replicas: Option<u32>,
    /// Vertical target per container name (the highest over the pods).
    pub recommended: BTreeMap<String, Res>,
}

fn nothing(reason: impl Into<String>, blocker: Blocker) -> Decision {
    Decision {
        action: Action::None,
        reason: reason.into(),
        blocker,
        recommended_replicas: None,
        recommended: BTreeMap::new(),
    }
}

/// The vertical target of one container (rule 3), clamped to its bounds, and never below `floor`.
fn vertical_target(p: &Policy, c: &ContainerSample, floor: Res) -> Res {
    let b = p.bounds_for(&c.name);
    let mut out = c.request;
    let usage = c.usage.unwrap_or_default();
    for (k, t) in p.targets() {
        let p90 = c.p90.map_or(usage.get(k), |h| h.get(k));
        let mut v = ((p90 as f64) * (1.0 + p.margin)).max(usage.get(k) as f64 / t).ceil() as i64;
        if k == Kind::Memory && c.oom_killed {
            v = v.max((c.request.mem as f64 * 1.2).ceil() as i64);
        }
        out.set(k, b.clamp(k, v.max(floor.get(k))));
    }
    out
}

fn with_limits(c: &ContainerSample, new: Res) -> ContainerResize {
    let scale = |limit: Option<i64>, old: i64, new: i64| {
        limit.map(|l| if old > 0 { ((l as f64) * (new as f64) / (old as f64)).ceil() as i64 } else { l.max(new) })
    };
    ContainerResize {
        name: c.name.clone(),
        request: new,
        limit_cpu: scale(c.limit_cpu, c.request.cpu, new.cpu),
        limit_mem: scale(c.limit_mem, c.request.mem, new.mem),
    }
}

fn overloaded(p: &Policy, c: &ContainerSample) -> Option<Kind> {
    let u = c.usage?;
    p.targets()
        .into_iter()
        .find(|&(k, t)| (u.get(k) as f64) > t * (c.request.get(k) as f64) * (1.0 + p.tolerance))
        .map(|(k, _)| k)
}

/// Decides this period's one action for one workload.
pub fn decide(inp: &Input<'_>) -> Decision {
    let p = inp.policy;
    let targets = p.targets();
    if targets.is_empty() {
        return nothing("no CPU or memory target", Blocker::None);
    }
    if inp.pods.is_empty() {
        return nothing("the target has no running pods", Blocker::Waiting);
    }
    if inp.pods.len() as u32 != inp.replicas {
        return nothing(
            format!("waiting for the replicas: {} pods for {} replicas", inp.pods.len(), inp.replicas),
            Blocker::Waiting,
        );
    }
    if let Some(pod) = inp.pods.iter().find(|p| p.resizing) {
        return nothing(format!("a resize of pod {} is still in progress", pod.name), Blocker::Waiting);
    }
    if inp.rollout_in_progress {
        return nothing("pods are still being recreated with new requests", Blocker::Waiting);
    }
    for pod in inp.pods {
        if pod.containers.is_empty() {
            return nothing(format!("metrics missing for pod {}", pod.name), Blocker::Metrics);
        }
        for c in &pod.containers {
            if c.usage.is_none() {
                return nothing(format!("metrics missing for pod {} container {}", pod.name, c.name), Blocker::Metrics);
            }
        }
    }
    // Baseline request per pod, per targeted resource (no-fight rule (b)).
    let first = &inp.pods[0];
    let baseline_of = |c: &ContainerSample| inp.baseline.get(&c.name).copied().unwrap_or(c.request);
    let mut desired_raw = 0u32;
    let mut ratios = Vec::new();
    for &(k, t) in &targets {
        let per_pod: i64 = first.containers.iter().map(|c| baseline_of(c).get(k)).sum();
        if per_pod <= 0 {
            return nothing(
                format!("the pods request no {}: utilization of {} cannot be computed", k.name(), k.name()),
                Blocker::None,
            );
        }
        let total: i64 = inp.pods.iter().flat_map(|p| &p.containers).map(|c| c.usage.unwrap_or_default().get(k)).sum();
        let ratio = total as f64 / (t * per_pod as f64 * inp.replicas as f64);
        let d = if (ratio - 1.0).abs() <= p.tolerance {
            inp.replicas
        } else {
            ((total as f64) / (t * per_pod as f64)).ceil().max(1.0) as u32
        };
        ratios.push(format!("{} {:.0}% of target", k.name(), ratio * 100.0));
        desired_raw = desired_raw.max(d);
    }
    let ratio_text = ratios.join(", ");
    let mut recommended: BTreeMap<String, Res> = BTreeMap::new();
    for pod in inp.pods {
        for c in &pod.containers {
            let v = vertical_target(p, c, baseline_of(c));
            let e = recommended.entry(c.name.clone()).or_default();
            e.cpu = e.cpu.max(v.cpu);
            e.mem = e.mem.max(v.mem);
        }
    }
    let done = |action: Action, reason: String, blocker: Blocker| Decision {
        action,
        reason,
        blocker,
        recommended_replicas: Some(desired_raw),
        recommended: recommended.clone(),
    };

    let hot: Vec<(&PodSample, Kind)> = inp
        .pods
        .iter()
        .filter_map(|pod| pod.containers.iter().find_map(|c| overloaded(p, c)).map(|k| (pod, k)))
        .collect();

    if !hot.is_empty() {
        let hot_names: Vec<&str> = hot.iter().map(|(p, _)| p.name.as_str()).collect();
        // Rule 3: vertical, when every overloaded pod can grow enough, and its node has room.
        let why_not_vertical: String = 'v: {
            if !p.vertical_allowed() {
                break 'v format!("mode {:?} does not scale vertically", p.mode);
            }
            if !inp.in_place_available && !p.allow_recreate {
                break 'v "in-place resize is unavailable and recreate is not allowed".into();
            }
            let free = match inp.headroom {
                Headroom::Failed(e) => {
                    return done(
                        Action::None,
                        format!(
                            "pods {} overloaded, but the Placement API failed: {e}; doing nothing",
                            hot_names.join(",")
                        ),
                        Blocker::Placement,
                    );
                }
                Headroom::NotAsked => break 'v "node headroom was not asked".into(),
                Headroom::Known(f) => f,
            };
            let mut resizes = Vec::new();
            let mut need: BTreeMap<String, (Res, Res)> = BTreeMap::new();
            let mut capped = None;
            for (pod, _) in &hot {
                let mut cs = Vec::new();
                for c in &pod.containers {
                    let new = vertical_target(p, c, c.request);
                    for &(k, t) in &targets {
                        let u = c.usage.unwrap_or_default().get(k) as f64;
                        if u > t * new.get(k) as f64 * (1.0 + p.tolerance) {
                            capped =
                                Some(format!("pod {} container {} is at its maximum {}", pod.name, c.name, k.name()));
                        }
                    }
                    if new != c.request {
                        cs.push((c, new));
                    }
                }
                if let Some(why) = capped.take() {
                    break 'v why;
                }
                let Some((node, room)) = free.get(&pod.name).filter(|(n, _)| !n.is_empty()) else {
                    break 'v format!("the scheduler does not know the node of pod {}", pod.name);
                };
                let e = need.entry(node.clone()).or_insert((Res::default(), *room));
                for (c, new) in &cs {
                    e.0.cpu += (new.cpu - c.request.cpu).max(0);
                    e.0.mem += (new.mem - c.request.mem).max(0);
                }
                resizes.push(PodResize {
                    pod: pod.name.clone(),
                    node: node.clone(),
                    containers: cs.iter().map(|(c, new)| with_limits(c, *new)).collect(),
                });
            }
            if let Some((node, (want, room))) =
                need.iter().find(|(_, (want, room))| want.cpu > room.cpu || want.mem > room.mem)
            {
                break 'v format!(
                    "node {node} has no room: pods need +{}m CPU +{} B memory, {}m and {} B free",
                    want.cpu, want.mem, room.cpu, room.mem
                );
            }
            let reason = format!(
                "pods {} overloaded ({ratio_text}) and their nodes have room: {}",
                hot_names.join(","),
                if inp.in_place_available { "resize in place" } else { "recreate with new requests" }
            );
            if inp.in_place_available {
                return done(Action::Resize { pods: resizes, grow: true }, reason, Blocker::None);
            }
            let containers = recommended
                .iter()
                .filter_map(|(name, r)| {
                    let c = hot.iter().flat_map(|(p, _)| &p.containers).find(|c| &c.name == name)?;
                    Some(with_limits(c, *r))
                })
                .collect();
            return done(Action::Recreate { containers }, reason, Blocker::None);
        };
        // Rule 4: horizontal.
        if !p.horizontal_allowed() {
            return done(Action::None, format!("pods overloaded; {why_not_vertical}"), Blocker::Limited);
        }
        let window_min = inp
            .history
            .iter()
            .filter(|(t, _)| inp.now - t < p.scale_up_window_s)
            .map(|&(_, r)| r)
            .chain([desired_raw])
            .min()
            .unwrap_or(desired_raw);
        if window_min <= inp.replicas {
            return done(
                Action::None,
                format!(
                    "pods {} overloaded ({why_not_vertical}), but the workload is within its target ({ratio_text})",
                    hot_names.join(",")
                ),
                Blocker::None,
            );
        }
        if inp.replicas >= p.max_replicas {
            return done(
                Action::None,
                format!("at maxReplicas {} and {why_not_vertical}; cannot scale further", p.max_replicas),
                Blocker::Limited,
            );
        }
        let base = inp.limit_base.max(1);
        let rate = (base + p.up_limit_pods).max((base as f64 * p.up_limit_factor).floor() as u32);
        let to = window_min.min(p.max_replicas).min(rate.max(inp.replicas + 1));
        return done(
            Action::Scale { from: inp.replicas, to },
            format!("pods {} overloaded ({ratio_text}); {why_not_vertical}: add replicas", hot_names.join(",")),
            Blocker::None,
        );
    }

    // Nothing overloaded: scale in (horizontal), else shrink resized pods back (vertical).
    if p.horizontal_allowed() && desired_raw < inp.replicas && inp.replicas > p.min_replicas {
        let window_max = inp
            .history
            .iter()
            .filter(|(t, _)| inp.now - t < p.scale_down_window_s)
            .map(|&(_, r)| r)
            .chain([desired_raw])
            .max()
            .unwrap_or(desired_raw);
        let to = window_max.max(p.min_replicas);
        if to < inp.replicas {
            return done(
                Action::Scale { from: inp.replicas, to },
                format!("usage below target ({ratio_text}) for the whole stabilization window"),
                Blocker::None,
            );
        }
        return done(
            Action::None,
            format!(
                "usage below target ({ratio_text}); scale-down stabilizing: highest recommendation of the last {}s is {window_max}",
                p.scale_down_window_s
            ),
            Blocker::None,
        );
    }
    let grown_recently = inp.last_grow_at.is_some_and(|t| inp.now - t < p.scale_down_window_s);
    if p.vertical_allowed() && inp.in_place_available && !grown_recently {
        let mut resizes = Vec::new();
        for pod in inp.pods {
            let mut cs = Vec::new();
            for c in &pod.containers {
                let base = baseline_of(c);
                let new = vertical_target(p, c, base);
                let shrinks = targets.iter().any(|&(k, _)| {
                    c.request.get(k) > base.get(k)
                        && (new.get(k) as f64) < c.request.get(k) as f64 * (1.0 - p.tolerance)
                });
                if shrinks {
                    let mut n = c.request;
                    for &(k, _) in &targets {
                        n.set(k, new.get(k).min(c.request.get(k)));
                    }
                    cs.push(with_limits(c, n));
                }
            }
            if !cs.is_empty() {
                resizes.push(PodResize { pod: pod.name.clone(), node: pod.node.clone(), containers: cs });
            }
        }
        if !resizes.is_empty() {
            let names: Vec<&str> = resizes.iter().map(|r| r.pod.as_str()).collect();
            return done(
                Action::Resize { pods: resizes.clone(), grow: false },
                format!("pods {} use less than their grown requests: shrink toward the baseline", names.join(",")),
                Blocker::None,
            );
        }
    }
    if p.vertical_allowed() && !inp.in_place_available && p.allow_recreate && !grown_recently {
        // One template for every pod: it shrinks to the largest target over the pods, so none is left short.
        let containers: Vec<ContainerResize> = first
            .containers
            .iter()
            .filter_map(|c| {
                let want = recommended.get(&c.name)?;
                let base = baseline_of(c);
                let mut n = c.request;
                for &(k, _) in &targets {
                    if c.request.get(k) > base.get(k)
                        && (want.get(k) as f64) < c.request.get(k) as f64 * (1.0 - p.tolerance)
                    {
                        n.set(k, want.get(k));
                    }
                }
                (n != c.request).then(|| with_limits(c, n))
            })
            .collect();
        if !containers.is_empty() {
            return done(
                Action::Recreate { containers },
                format!(
                    "the pods use less than their grown requests ({ratio_text}): recreate them smaller, toward the baseline"
                ),
                Blocker::None,
            );
        }
    }
    if desired_raw > inp.replicas {
        return done(
            Action::None,
            format!("no pod overloaded against its current requests ({ratio_text} of the baseline): no scale-out"),
            Blocker::None,
        );
    }
    done(Action::None, format!("within target ({ratio_text})"), Blocker::None)
}

/// Keeps the recommendations of the longest window (plus a margin), oldest first.
pub fn record(history: &mut Vec<(f64, u32)>, now: f64, replicas: u32, keep_s: f64) {
    history.push((now, replicas));
    history.retain(|(t, _)| now - t <= keep_s);
}

#[cfg(test)]
mod tests {
    use super::*;

    const MI: i64 = 1 << 20;

    fn pod(name: &str, node: &str, req_cpu: i64, use_cpu: Option<i64>) -> PodSample {
        PodSample {
            name: name.into(),
            node: node.into(),
            containers: vec![ContainerSample {
                name: "app".into(),
                request: Res::new(req_cpu, 256 * MI),
                limit_cpu: None,
                limit_mem: None,
                usage: use_cpu.map(|u| Res::new(u, 100 * MI)),
                p90: use_cpu.map(|u| Res::new(u, 100 * MI)),
                oom_killed: false,
            }],
            resizing: false,
        }
    }

    fn room(pods: &[PodSample], cpu: i64) -> Headroom {
        Headroom::Known(pods.iter().map(|p| (p.name.clone(), (p.node.clone(), Res::new(cpu, 8 << 30)))).collect())
    }

    struct Case {
        name: &'static str,
        policy: Policy,
        replicas: u32,
        pods: Vec<PodSample>,
        baseline: BTreeMap<String, Res>,
        free_cpu: Option<i64>,
        headroom_error: bool,
        history: Vec<(f64, u32)>,
        last_grow_at: Option<f64>,
        in_place: bool,
        want: &'static str,
        want_to: Option<u32>,
        want_blocker: Blocker,
    }

    impl Default for Case {
        fn default() -> Self {
            Case {
                name: "",
                policy: Policy::default(),
                replicas: 2,
                pods: vec![],
                baseline: BTreeMap::new(),
                free_cpu: Some(4000),
                headroom_error: false,
                history: vec![],
                last_grow_at: None,
                in_place: true,
                want: "None",
                want_to: None,
                want_blocker: Blocker::None,
            }
        }
    }

    fn run(c: &Case) -> Decision {
        let headroom = match (c.headroom_error, c.free_cpu) {
            (true, _) => Headroom::Failed("deadline exceeded".into()),
            (false, Some(f)) => room(&c.pods, f),
            (false, None) => Headroom::NotAsked,
        };
        decide(&Input {
            policy: &c.policy,
            now: 1000.0,
            replicas: c.replicas,
            pods: &c.pods,
            baseline: &c.baseline,
            headroom: &headroom,
            in_place_available: c.in_place,
            history: &c.history,
            limit_base: c.replicas,
            rollout_in_progress: false,
            last_grow_at: c.last_grow_at,
        })
    }

    fn two(req: i64, u: i64) -> Vec<PodSample> {
        vec![pod("w-0", "n1", req, Some(u)), pod("w-1", "n1", req, Some(u))]
    }

    #[test]
    fn table() {
        let base1000: BTreeMap<String, Res> = [("app".to_string(), Res::new(1000, 256 * MI))].into();
        let cases = vec![
            Case { name: "headroom -> vertical", pods: two(1000, 900), want: "Vertical", ..Default::default() },
            Case {
                name: "no headroom -> horizontal",
                pods: two(1000, 900),
                free_cpu: Some(100),
                want: "ScaleUp",
                want_to: Some(3), // ceil(1800 / 700)
                ..Default::default()
            },
            Case { name: "within tolerance -> nothing", pods: two(1000, 740), want: "None", ..Default::default() },
            Case {
                name: "max reached -> nothing, limited",
                policy: Policy { max_replicas: 2, ..Policy::default() },
                pods: two(1000, 900),
                free_cpu: Some(0),
                want: "None",
                want_blocker: Blocker::Limited,
                ..Default::default()
            },
            Case {
                name: "metrics missing -> nothing",
                pods: vec![pod("w-0", "n1", 1000, Some(900)), pod("w-1", "n1", 1000, None)],
                want: "None",
                want_blocker: Blocker::Metrics,
                ..Default::default()
            },
            Case {
                name: "placement error -> nothing",
                pods: two(1000, 900),
                headroom_error: true,
                want: "None",
                want_blocker: Blocker::Placement,
                ..Default::default()
            },
            Case {
                name: "no-fight: grown pods that keep up are not multiplied",
                // Resized to 1500m, using 1000m each: 67 % of the current request, 143 % of the baseline.
                pods: two(1500, 1000),
                baseline: base1000.clone(),
                last_grow_at: Some(990.0),
                want: "None",
                ..Default::default()
            },
            Case {
                name: "no-fight: scale-out divides by the baseline, not the grown request",
                pods: two(1500, 1400),
                baseline: base1000.clone(),
                free_cpu: Some(0),
                want: "ScaleUp",
                want_to: Some(4), // ceil(2800 / (0.7 x 1000)); by the grown request it would be 3
                ..Default::default()
            },
            Case {
                name: "scale-down waits for the window",
                replicas: 4,
                pods: (0..4).map(|i| pod(&format!("w-{i}"), "n1", 1000, Some(200))).collect(),
                history: vec![(900.0, 4), (990.0, 2)],
                want: "None",
                ..Default::default()
            },
            Case {
                name: "scale-down after the window",
                replicas: 4,
                pods: (0..4).map(|i| pod(&format!("w-{i}"), "n1", 1000, Some(200))).collect(),
                history: vec![(600.0, 4), (800.0, 2)],
                want: "ScaleDown",
                want_to: Some(2),
                ..Default::default()
            },
            Case {
                name: "scale-up is immediate (no window), scale-down is not",
                policy: Policy { mode: Mode::HorizontalOnly, ..Policy::default() },
                pods: two(1000, 900),
                free_cpu: None,
                history: vec![(999.0, 2)],
                want: "ScaleUp",
                want_to: Some(3),
                ..Default::default()
            },
            Case {
                name: "scale-up rate limit max(+4, x2)",
                policy: Policy { max_replicas: 100, mode: Mode::HorizontalOnly, ..Policy::default() },
                pods: two(1000, 7000),
                free_cpu: None,
                want: "ScaleUp",
                want_to: Some(6),
                ..Default::default()
            },
            Case {
                name: "vertical only without room -> nothing",
                policy: Policy { mode: Mode::VerticalOnly, ..Policy::default() },
                pods: two(1000, 900),
                free_cpu: Some(0),
                want: "None",
                want_blocker: Blocker::Limited,
                ..Default::default()
            },
            Case {
                name: "capped by maxAllowed -> horizontal",
                policy: Policy {
                    bounds: [("*".to_string(), Bounds { max_cpu: Some(1100), ..Bounds::default() })].into(),
                    ..Policy::default()
                },
                pods: two(1000, 900),
                want: "ScaleUp",
                want_to: Some(3),
                ..Default::default()
            },
            Case {
                name: "no in-place resize, recreate allowed -> recreate",
                policy: Policy { allow_recreate: true, ..Policy::default() },
                pods: two(1000, 900),
                in_place: false,
                want: "Recreate",
                ..Default::default()
            },
            Case {
                name: "no in-place resize, recreate not allowed -> horizontal",
                pods: two(1000, 900),
                in_place: false,
                want: "ScaleUp",
                want_to: Some(3),
                ..Default::default()
            },
            Case {
                name: "waiting for replicas -> nothing",
                replicas: 3,
                pods: two(1000, 900),
                want: "None",
                want_blocker: Blocker::Waiting,
                ..Default::default()
            },
            Case {
                name: "recreated pods shrink back after the window by another recreate",
                pods: two(2000, 300),
                baseline: base1000.clone(),
                policy: Policy { min_replicas: 2, allow_recreate: true, ..Policy::default() },
                in_place: false,
                last_grow_at: Some(100.0),
                want: "Recreate",
                ..Default::default()
            },
            Case {
                name: "recreated pods do not shrink within the window",
                pods: two(2000, 300),
                baseline: base1000.clone(),
                policy: Policy { min_replicas: 2, allow_recreate: true, ..Policy::default() },
                in_place: false,
                last_grow_at: Some(900.0),
                want: "None",
                ..Default::default()
            },
            Case {
                name: "grown pods shrink back after the window",
                pods: two(2000, 300),
                baseline: base1000.clone(),
                policy: Policy { min_replicas: 2, ..Policy::default() },
                last_grow_at: Some(100.0),
                want: "Vertical",
                ..Default::default()
            },
        ];
        for c in &cases {
            let d = run(c);
            assert_eq!(d.action.kind(), c.want, "{}: {d:?}", c.name);
            assert_eq!(d.blocker, c.want_blocker, "{}: {d:?}", c.name);
            if let Some(to) = c.want_to {
                assert!(matches!(d.action, Action::Scale { to: t, .. } if t == to), "{}: {d:?}", c.name);
            }
            assert!(!d.reason.is_empty(), "{}", c.name);
        }
    }

    #[test]
    fn a_recreate_shrink_sizes_the_template_for_the_busiest_pod_and_never_below_the_baseline() {
        let base = BTreeMap::from([("app".to_string(), Res::new(1000, 256 * MI))]);
        let policy = Policy { min_replicas: 2, allow_recreate: true, ..Policy::default() };
        let shrink = |pods: Vec<PodSample>| {
            let d = run(&Case {
                pods,
                baseline: base.clone(),
                policy: policy.clone(),
                in_place: false,
                ..Default::default()
            });
            match d.action {
                Action::Recreate { containers } => Some(containers[0].request.cpu),
                _ => None,
            }
        };
        // Idle pods grown to 2000m go back to the baseline, not to usage / target (429m).
        assert_eq!(shrink(vec![pod("a", "n1", 2000, Some(300)), pod("b", "n1", 2000, Some(300))]), Some(1000));
        // The busier pod sets the size: 1050 / 0.7 = 1500m (max(p90 x 1.15 = 1208, 1500)).
        assert_eq!(shrink(vec![pod("a", "n1", 2000, Some(300)), pod("b", "n1", 2000, Some(1050))]), Some(1500));
        // Within the tolerance of the current size: no recreate for a 10% change.
        assert_eq!(shrink(vec![pod("a", "n1", 2000, Some(1300)), pod("b", "n1", 2000, Some(1300))]), None);
    }

    #[test]
    fn vertical_sizes_to_target_and_fits_the_node() {
        let pods = two(1000, 900);
        let d = run(&Case { pods: pods.clone(), ..Default::default() });
        let Action::Resize { pods: rs, grow: true } = d.action else { panic!("{d:?}") };
        assert_eq!(rs.len(), 2);
        // max(p90 x 1.15, usage / 0.7) = max(1035, 1286) = 1286.
        assert_eq!(rs[0].containers[0].request.cpu, 1286);
        // Both pods share node n1: +572m fits 600m but not 500m.
        assert_eq!(
            run(&Case { pods: pods.clone(), free_cpu: Some(600), ..Default::default() }).action.kind(),
            "Vertical"
        );
        assert_eq!(run(&Case { pods, free_cpu: Some(500), ..Default::default() }).action.kind(), "ScaleUp");
    }

    #[test]
    fn limits_scale_with_requests_and_oom_bumps_memory() {
        let mut pods = two(1000, 900);
        pods[0].containers[0].limit_cpu = Some(2000);
        pods[0].containers[0].oom_killed = true;
        let policy = Policy { mem_target: Some(0.9), ..Policy::default() };
        let d = run(&Case { pods, policy, ..Default::default() });
        let Action::Resize { pods: rs, .. } = d.action else { panic!("{d:?}") };
        let c = &rs[0].containers[0];
        assert_eq!(c.limit_cpu, Some(2572));
        assert!(c.request.mem >= (256 * MI) * 12 / 10, "{c:?}");
    }

    #[test]
    fn record_keeps_the_window() {
        let mut h = vec![];
        record(&mut h, 0.0, 3, 10.0);
        record(&mut h, 5.0, 2, 10.0);
        record(&mut h, 12.0, 1, 10.0);
        assert_eq!(h, vec![(5.0, 2), (12.0, 1)]);
    }
}
