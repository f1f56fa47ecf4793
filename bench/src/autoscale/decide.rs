//! The hybrid autoscaling decision, as a pure function: one workload, one sync period, one [`Decision`].
//!
//! Self-contained (no simulator types), so the live autoscaler can share it. The rule, after the hybrid
//! autoscaling paper with Kubernetes' HPA/VPA conventions:
//!
//! 1. **Metrics.** Pods without a usage sample (starting, restarting) are treated as HPA treats unready
//!    pods: as using nothing when deciding a scale-up, as using exactly their target when deciding a
//!    scale-down. With no sample at all there is no decision (`MetricsMissing`).
//! 2. **Recommendation.** The capacity the workload should request: `Σ usage / target` (CPU millicores).
//!    Within `tolerance` of the current `Σ request` nothing is done (HPA's 0.1 band).
//! 3. **Scale-up** (recommendation above the band): vertical first — if the nodes of the workload's own
//!    pods have the free CPU (and the pods stay under `max_pod_cpu_milli`), raise those pods' requests;
//!    otherwise horizontal — add pods, placed by the caller near the existing ones. Horizontal sizing
//!    divides the missing capacity by the per-pod request *as it is before any vertical change in this
//!    period* (the template request new pods get): `add = ceil((rec − Σ request) / template)`, so the
//!    vertical and horizontal halves never chase each other on the same metric. Additions are capped by
//!    HPA's scale-up policy (at most `max(+4, ×2)` pods over the replicas of one period ago) and by
//!    `max_replicas`; at the cap the decision is `MaxReached`.
//! 4. **Scale-down** is slower than scale-up: it acts on the *largest* recommendation of the last
//!    `stabilization_s` seconds (HPA's 300 s window), and removes pods before it shrinks them.
//! 5. **One action per workload per period**: the decision is exactly one of nothing, one resize set,
//!    one add or one remove; while a recreate is in flight (a pod restarting to change size) nothing more
//!    is done. With `recreate` the vertical action touches one pod at a time (VPA evicts one by one).

/// Which kinds of scaling a controller may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scaling {
    /// Vertical while the pods' nodes have room, else horizontal near the existing pods.
    Hybrid,
    /// HPA: horizontal only.
    HorizontalOnly,
    /// VPA: vertical only; a partial resize when the node has some room, nothing when it has none.
    VerticalOnly,
}

/// The knobs of one workload's autoscaling.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub scaling: Scaling,
    /// A vertical change restarts the pod (VPA Recreate) instead of resizing it in place.
    pub recreate: bool,
    /// Target utilization of the CPU request, e.g. 0.7.
    pub target: f64,
    /// No change while `|recommendation / Σ request − 1| ≤ tolerance` (HPA: 0.1).
    pub tolerance: f64,
    pub min_replicas: usize,
    pub max_replicas: usize,
    /// The request a new pod gets.
    pub template_cpu_milli: i64,
    pub min_pod_cpu_milli: i64,
    pub max_pod_cpu_milli: i64,
    /// Requests are rounded to multiples of this.
    pub step_milli: i64,
    /// Scale-down looks at the largest recommendation of this many past seconds (HPA: 300).
    pub stabilization_s: f64,
}

impl Policy {
    pub fn new(scaling: Scaling, recreate: bool) -> Self {
        Policy {
            scaling,
            recreate,
            target: 0.7,
            tolerance: 0.1,
            min_replicas: 2,
            max_replicas: 16,
            template_cpu_milli: 1000,
            min_pod_cpu_milli: 250,
            max_pod_cpu_milli: 6000,
            step_milli: 100,
            stabilization_s: 300.0,
        }
    }
}

/// What the controller sees of one pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodView {
    pub request_milli: i64,
    /// Last CPU usage sample; `None` while the pod has no metrics (starting, restarting).
    pub usage_milli: Option<i64>,
    /// Free (unrequested) CPU on the pod's node.
    pub node_free_milli: i64,
    /// Restarting to change its size (a recreate in flight).
    pub restarting: bool,
}

/// Everything one decision reads. Pods are in removal order: the last pod is removed first.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub now_s: f64,
    pub policy: &'a Policy,
    pub pods: &'a [PodView],
    /// Past recommendations `(time s, milli)` as returned by [`recommendation`] (any order).
    pub history: &'a [(f64, i64)],
    /// Replicas one scale-up period (60 s) ago, for the `max(+4, ×2)` limit.
    pub replicas_period_start: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    MetricsMissing,
    WithinTolerance,
    MaxReached,
    /// The scale-up limit of this period is used up.
    RateLimited,
    /// Vertical-only and no node of the workload has room.
    NoHeadroom,
    /// A recreate is in flight: one action at a time.
    InFlight,
    /// Scale-down wanted, but nothing can be removed or shrunk.
    AtMinimum,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Nothing(Why),
    /// New CPU requests `(pod index, milli)`; in place or by recreating, as the policy says.
    Vertical(Vec<(usize, i64)>),
    /// Add this many pods of the template size, near the existing ones (hybrid) or anywhere (HPA).
    AddPods(usize),
    /// Remove this many pods from the end of the pod list.
    RemovePods(usize),
}

fn round_up(milli: f64, step: i64) -> i64 {
    ((milli / step as f64).ceil() as i64) * step
}

fn round_down(milli: i64, step: i64) -> i64 {
    milli.div_euclid(step) * step
}

/// The capacity the workload should request now, counting pods without metrics as the HPA does for
/// `scale_up` (as 0) or scale-down (as their target); `None` when no pod has metrics.
pub fn recommendation(policy: &Policy, pods: &[PodView], scale_up: bool) -> Option<i64> {
    if pods.iter().all(|p| p.usage_milli.is_none()) {
        return None;
    }
    let usage: f64 = pods
        .iter()
        .map(|p| match p.usage_milli {
            Some(u) => u as f64,
            None if scale_up => 0.0,
            None => p.request_milli as f64 * policy.target,
        })
        .sum();
    Some((usage / policy.target).round() as i64)
}

pub fn decide(inputs: &Inputs) -> Decision {
    let Inputs { now_s, policy, pods, history, replicas_period_start } = *inputs;
    let Some(up_rec) = recommendation(policy, pods, true) else { return Decision::Nothing(Why::MetricsMissing) };
    if pods.iter().any(|p| p.restarting) {
        return Decision::Nothing(Why::InFlight);
    }
    let requested: i64 = pods.iter().map(|p| p.request_milli).sum();
    let requested_f = requested.max(1) as f64;
    if up_rec as f64 > requested_f * (1.0 + policy.tolerance) {
        return scale_up(policy, pods, up_rec - requested, replicas_period_start);
    }
    let down_rec = recommendation(policy, pods, false).unwrap_or(up_rec);
    let window_max = history
        .iter()
        .filter(|(t, _)| now_s - t <= policy.stabilization_s)
        .map(|&(_, r)| r)
        .chain([down_rec])
        .max()
        .unwrap_or(down_rec);
    if (window_max as f64) < requested_f * (1.0 - policy.tolerance) {
        return scale_down(policy, pods, window_max);
    }
    Decision::Nothing(Why::WithinTolerance)
}

/// Room to grow each pod in place: the node's free CPU, up to the per-pod maximum.
fn room(policy: &Policy, pod: &PodView) -> i64 {
    if pod.usage_milli.is_none() {
        return 0;
    }
    round_down(pod.node_free_milli.min(policy.max_pod_cpu_milli - pod.request_milli).max(0), policy.step_milli)
}

fn scale_up(policy: &Policy, pods: &[PodView], missing: i64, replicas_period_start: usize) -> Decision {
    let need = round_up(missing as f64, policy.step_milli);
    if policy.scaling != Scaling::HorizontalOnly {
        let rooms: Vec<i64> = pods.iter().map(|p| room(policy, p)).collect();
        if policy.recreate {
            // One pod per action: the one with the most room.
            let best = (0..pods.len()).max_by_key(|&i| (rooms[i], std::cmp::Reverse(i)));
            if let Some(i) = best {
                let fits = rooms[i] >= need;
                let partial_ok = policy.scaling == Scaling::VerticalOnly && rooms[i] > 0;
                if fits || partial_ok {
                    return Decision::Vertical(vec![(i, pods[i].request_milli + rooms[i].min(need))]);
                }
            }
        } else {
            let total: i64 = rooms.iter().sum();
            if total >= need || (policy.scaling == Scaling::VerticalOnly && total > 0) {
                let mut left = need;
                let mut order: Vec<usize> = (0..pods.len()).collect();
                order.sort_by_key(|&i| std::cmp::Reverse(rooms[i]));
                let mut resizes = Vec::new();
                for i in order {
                    let take = rooms[i].min(left);
                    if take > 0 {
                        resizes.push((i, pods[i].request_milli + take));
                        left -= take;
                    }
                }
                resizes.sort_unstable();
                return Decision::Vertical(resizes);
            }
        }
        if policy.scaling == Scaling::VerticalOnly {
            return Decision::Nothing(Why::NoHeadroom);
        }
    }
    let want = (need as f64 / policy.template_cpu_milli as f64).ceil() as usize;
    let n = pods.len();
    let limit = (replicas_period_start + 4).max(2 * replicas_period_start).min(policy.max_replicas);
    if n >= policy.max_replicas {
        return Decision::Nothing(Why::MaxReached);
    }
    let add = want.min(limit.saturating_sub(n));
    if add == 0 { Decision::Nothing(Why::RateLimited) } else { Decision::AddPods(add) }
}

fn scale_down(policy: &Policy, pods: &[PodView], stabilized: i64) -> Decision {
    let mut remaining: i64 = pods.iter().map(|p| p.request_milli).sum();
    if policy.scaling != Scaling::VerticalOnly {
        let mut remove = 0;
        while pods.len() - remove > policy.min_replicas {
            let last = pods[pods.len() - 1 - remove].request_milli;
            if remaining - last < stabilized {
                break;
            }
            remaining -= last;
            remove += 1;
        }
        if remove > 0 {
            return Decision::RemovePods(remove);
        }
        if policy.scaling == Scaling::HorizontalOnly {
            return Decision::Nothing(Why::AtMinimum);
        }
    }
    // Shrink every pod by the same factor, never below the per-pod minimum.
    let factor = stabilized as f64 / remaining.max(1) as f64;
    let mut resizes: Vec<(usize, i64)> = pods
        .iter()
        .enumerate()
        .filter(|(_, p)| p.usage_milli.is_some())
        .map(|(i, p)| (i, round_up(p.request_milli as f64 * factor, policy.step_milli).max(policy.min_pod_cpu_milli)))
        .filter(|&(i, r)| r < pods[i].request_milli)
        .collect();
    if policy.recreate {
        // One pod per action: the one that gives back most.
        resizes.sort_by_key(|&(i, r)| (std::cmp::Reverse(pods[i].request_milli - r), i));
        resizes.truncate(1);
    }
    if resizes.is_empty() { Decision::Nothing(Why::AtMinimum) } else { Decision::Vertical(resizes) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(request: i64, usage: Option<i64>, free: i64) -> PodView {
        PodView { request_milli: request, usage_milli: usage, node_free_milli: free, restarting: false }
    }

    struct Case {
        name: &'static str,
        scaling: Scaling,
        recreate: bool,
        pods: Vec<PodView>,
        history: Vec<(f64, i64)>,
        period_start: usize,
        want: Decision,
    }

    fn case(name: &'static str, scaling: Scaling, pods: Vec<PodView>, want: Decision) -> Case {
        Case { name, scaling, recreate: false, pods, history: Vec::new(), period_start: 2, want }
    }

    #[test]
    fn decision_table() {
        use Decision::*;
        use Scaling::*;
        let cases = vec![
            // 2 × 1000m at 1000m usage each: rec 2857 → +857 → 900 rounded; node 0 has room for all of it.
            case(
                "headroom → vertical",
                Hybrid,
                vec![pod(1000, Some(1000), 4000), pod(1000, Some(1000), 0)],
                Vertical(vec![(0, 1900)]),
            ),
            case(
                "headroom split over pods",
                Hybrid,
                vec![pod(1000, Some(1000), 500), pod(1000, Some(1000), 400)],
                Vertical(vec![(0, 1500), (1, 1400)]),
            ),
            case(
                "no headroom → horizontal",
                Hybrid,
                vec![pod(1000, Some(1000), 0), pod(1000, Some(1000), 300)],
                AddPods(1),
            ),
            case(
                "HPA never resizes",
                HorizontalOnly,
                vec![pod(1000, Some(1000), 8000), pod(1000, Some(1000), 8000)],
                AddPods(1),
            ),
            case(
                "within tolerance → nothing",
                Hybrid,
                vec![pod(1000, Some(740), 8000), pod(1000, Some(700), 8000)],
                Nothing(Why::WithinTolerance),
            ),
            case(
                "metrics missing → nothing",
                Hybrid,
                vec![pod(1000, None, 8000), pod(1000, None, 8000)],
                Nothing(Why::MetricsMissing),
            ),
            // A starting pod counts as 0 usage on scale-up: 1000 / 0.7 = 1429 < 2000 × 1.1.
            case(
                "starting pod damps scale-up",
                Hybrid,
                vec![pod(1000, Some(1000), 0), pod(1000, None, 0)],
                Nothing(Why::WithinTolerance),
            ),
            case(
                "max reached → nothing",
                Hybrid,
                (0..16).map(|_| pod(1000, Some(1000), 0)).collect(),
                Nothing(Why::MaxReached),
            ),
            case(
                "VPA partial resize",
                VerticalOnly,
                vec![pod(1000, Some(1000), 300), pod(1000, Some(1000), 0)],
                Vertical(vec![(0, 1300)]),
            ),
            case(
                "VPA full node → overload persists",
                VerticalOnly,
                vec![pod(1000, Some(1000), 0), pod(1000, Some(1000), 50)],
                Nothing(Why::NoHeadroom),
            ),
            // Usage 3 × 100m: rec 429 → remove down to min 2 replicas.
            case(
                "scale-down removes pods first",
                Hybrid,
                vec![pod(1000, Some(100), 0), pod(1000, Some(100), 0), pod(1000, Some(100), 0)],
                RemovePods(1),
            ),
            case(
                "scale-down shrinks at min replicas",
                Hybrid,
                vec![pod(2000, Some(200), 0), pod(2000, Some(200), 0)],
                Vertical(vec![(0, 300), (1, 300)]),
            ),
            case(
                "HPA at min replicas",
                HorizontalOnly,
                vec![pod(1000, Some(100), 0), pod(1000, Some(100), 0)],
                Nothing(Why::AtMinimum),
            ),
            Case {
                name: "no fight: horizontal sized by the request before any vertical change",
                // Grown pods (3000m) saturated, no room: missing 8571 − 6000 → ceil(2600 / 1000) = 3 template pods.
                pods: vec![pod(3000, Some(3000), 0), pod(3000, Some(3000), 0)],
                period_start: 2,
                ..case("", Hybrid, vec![], AddPods(3))
            },
            Case {
                name: "scale-up limit max(+4, ×2)",
                pods: (0..6).map(|_| pod(1000, Some(1000), 0)).collect(),
                period_start: 1,
                ..case("", HorizontalOnly, vec![], Nothing(Why::RateLimited))
            },
            Case {
                name: "scale-up limit allows +4 from 1",
                pods: (0..3).map(|_| pod(1000, Some(1000), 0)).collect(),
                period_start: 1,
                ..case("", HorizontalOnly, vec![], AddPods(2))
            },
            Case {
                name: "stabilization holds scale-down",
                pods: vec![pod(1000, Some(100), 0), pod(1000, Some(100), 0), pod(1000, Some(100), 0)],
                history: vec![(200.0, 2900), (0.0, 9000)],
                ..case("", Hybrid, vec![], Nothing(Why::WithinTolerance))
            },
            Case {
                name: "recreate: one pod at a time",
                recreate: true,
                pods: vec![pod(1000, Some(1000), 500), pod(1000, Some(1000), 1000)],
                ..case("", Hybrid, vec![], Vertical(vec![(1, 1900)]))
            },
            Case {
                name: "recreate: single pod can't cover → horizontal",
                recreate: true,
                pods: vec![pod(1000, Some(1000), 500), pod(1000, Some(1000), 500)],
                ..case("", Hybrid, vec![], AddPods(1))
            },
            Case {
                name: "recreate in flight → nothing",
                pods: vec![pod(1000, Some(1000), 5000), PodView { restarting: true, ..pod(1000, None, 5000) }],
                ..case("", Hybrid, vec![], Nothing(Why::InFlight))
            },
        ];
        for c in cases {
            let mut policy = Policy::new(c.scaling, c.recreate);
            policy.target = 0.7;
            let inputs = Inputs {
                now_s: 300.0,
                policy: &policy,
                pods: &c.pods,
                history: &c.history,
                replicas_period_start: c.period_start,
            };
            assert_eq!(decide(&inputs), c.want, "case {:?}", c.name);
        }
    }

    #[test]
    fn stabilization_window_expires() {
        let policy = Policy::new(Scaling::Hybrid, false);
        let pods = [pod(1000, Some(100), 0), pod(1000, Some(100), 0), pod(1000, Some(100), 0)];
        let history = [(0.0, 9000)];
        let at = |now_s| {
            decide(&Inputs { now_s, policy: &policy, pods: &pods, history: &history, replicas_period_start: 3 })
        };
        assert_eq!(at(299.0), Decision::Nothing(Why::WithinTolerance));
        assert_eq!(at(301.0), Decision::RemovePods(1));
    }
}
