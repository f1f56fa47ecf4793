//! End to end under faults: the whole scheduler (`mlsched_scheduler::run`) on the real control plane, its
//! client going through a fault proxy (`mlsched_tests::real::fault_proxy`) that fails binds (500, 409, 429,
//! 403), refuses status writes with conflicts, delays requests and cuts watch streams while it schedules.
//!
//! A bind answered 409 (the pod is bound already) or 404 (the pod is gone) is dropped, never sent again for
//! that decision; a 500 is retried until it succeeds; a 403 is reported and backs off. An injected 409 does
//! not bind the pod, so its pod is decided again once its backoff is over, like any pod still pending.
//!
//! Invariants checked by every test: each pod ends bound exactly once (one successful binding POST per
//! pod went through the proxy, and the API server never had to refuse a binding of an already bound pod)
//! or waits with a recorded reason (`PodScheduled=False` with a message); a gang left partly bound has a
//! `GangBindFailed` Event and is bound whole once the faults stop; no node is over-committed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Binding, Pod};
use kube::api::{Api, PostParams};

use mlsched_tests::cluster::{LABEL_RACK, LABEL_SPINE};
use mlsched_tests::real::fault_proxy::FaultProxy;
use mlsched_tests::real::objects;
use mlsched_tests::testing::typed;
use mlsched_tests::{FaultSpec, Faults, RequestMatch, Verb};

use crate::cluster::{Env, until};
use crate::scheduler::spawn_scheduler;
use crate::{SchedulerTask, Stopper};

/// Long enough for a loaded two-core machine running the control plane too; the waits end as soon as the
/// condition holds.
const WAIT: Duration = Duration::from_secs(60);

struct Harness {
    env: Env,
    proxy: FaultProxy,
    stop: Option<Stopper>,
    task: SchedulerTask,
}

impl Harness {
    /// The test's namespace, `nodes` nodes of 8 GPUs (racks of four, two racks a spine), a proxy set up by
    /// `before`, and a scheduler with fast backoff whose every request goes through the proxy.
    async fn start(ns: &str, nodes: u32, extra_yaml: &str, before: impl FnOnce(&Faults)) -> Harness {
        let env = Env::new(ns).await;
        for i in 0..nodes {
            let (rack, spine) = (format!("rack-{}", i / 4), format!("spine-{}", i / 8));
            let name = format!("{ns}-r{}-n{}", i / 4, i % 4);
            env.node_labeled(&name, 8, &[(LABEL_RACK, &rack), (LABEL_SPINE, &spine)]).await;
        }
        let cp = &env.cluster.control_plane;
        let proxy = FaultProxy::start(&cp.url, &cp.pki.ca_pem).await.expect("fault proxy");
        before(proxy.faults());
        let file = format!("{ns}-scheduler.kubeconfig");
        let kubeconfig = env.cluster.scheduler_kubeconfig_via(&file, proxy.url()).expect("kubeconfig");
        let client = kube::Client::try_from(cp.kube_config_from(&kubeconfig).await).expect("client");
        let yaml = format!("client: {{qps: 1000, burst: 1000}}\n{extra_yaml}");
        let (stop, task, _) = spawn_scheduler(client, &yaml).await;
        Harness { env, proxy, stop: Some(stop), task }
    }

    fn faults(&self) -> &Faults {
        self.proxy.faults()
    }

    /// Every binding POST of `pod` through the proxy: (status, injected by the proxy).
    fn binds_of(&self, pod: &str) -> Vec<(u16, bool)> {
        let m = binding(&self.env.ns).name(pod);
        self.faults().requests_matching(&m, None).iter().map(|r| (r.status, r.injected)).collect()
    }

    async fn pod(&self, name: &str, gpus: u32, group: Option<&str>) -> String {
        self.env.pod(name, gpus, group).await;
        name.to_string()
    }

    /// A PodGroup `name` with `members` pods `name-0..` of `gpus` GPUs each; returns the pod names.
    async fn gang(&self, name: &str, members: u32, gpus: u32) -> Vec<String> {
        self.env.pod_group(name, members, None).await;
        let mut pods = Vec::new();
        for i in 0..members {
            pods.push(self.pod(&format!("{name}-{i}"), gpus, Some(name)).await);
        }
        pods
    }

    async fn all_bound(&self, pods: &[String]) -> bool {
        let bound = self.env.bound().await;
        pods.iter().all(|p| bound.contains_key(p))
    }

    /// The pod's `PodScheduled=False` message, if it has that condition.
    async fn unschedulable_message(&self, pod: &str) -> Option<String> {
        let (status, _, message) = self.env.scheduled_condition(pod).await?;
        (status == "False" && !message.is_empty()).then_some(message)
    }

    async fn pod_group_phase(&self, name: &str) -> Option<String> {
        self.env.pod_group_status(name).await["phase"].as_str().map(str::to_string)
    }

    /// Exactly once: every pod bound, one successful binding POST per pod through the proxy and none for
    /// pods not bound, no 409 from the API server on a binding (which would mean a bound pod was bound
    /// again), and no node over-committed.
    async fn assert_bound_once(&self, pods: &[String]) {
        let mut ok: BTreeMap<String, usize> = BTreeMap::new();
        for r in self.faults().requests_matching(&binding(&self.env.ns), None) {
            if (200..300).contains(&r.status) {
                *ok.entry(r.info.name.clone()).or_default() += 1;
            }
            assert!(r.injected || r.status != 409, "the scheduler tried to bind {} a second time: {r:?}", r.info.name);
        }
        let bound = self.env.bound().await;
        for p in pods {
            assert!(bound.contains_key(p), "{p} not bound");
            assert_eq!(ok.get(p).copied().unwrap_or(0), 1, "successful binding POSTs for {p}");
        }
        assert_eq!(ok.values().sum::<usize>(), bound.len(), "bound pods {bound:?}, binding POSTs {ok:?}");
        self.env.assert_no_overcommit().await;
    }

    async fn stop(mut self) {
        crate::stop_scheduler(self.stop.take(), self.task).await;
        self.env.finish().await;
    }
}

/// Binding POSTs in namespace `ns`.
fn binding(ns: &str) -> RequestMatch {
    RequestMatch::new(Verb::Create, "pods").subresource("binding").namespace(ns)
}

/// `pods/status` patches (the `PodScheduled` condition) in namespace `ns`.
fn status_patch(ns: &str) -> RequestMatch {
    RequestMatch::new(Verb::Patch, "pods").subresource("status").namespace(ns)
}

/// Gangs of (name, members, GPUs per member) and single pods of (name, GPUs): 84 of 128 GPUs.
const GANGS: [(&str, u32, u32); 4] = [("big", 4, 8), ("mid", 2, 4), ("wide", 8, 1), ("odd", 3, 2)];
const SINGLES: [(&str, u32); 12] = [
    ("s1a", 1),
    ("s1b", 1),
    ("s1c", 1),
    ("s1d", 1),
    ("s2a", 2),
    ("s2b", 2),
    ("s2c", 2),
    ("s4a", 4),
    ("s4b", 4),
    ("s4c", 4),
    ("s1e", 1),
    ("s2d", 2),
];

async fn workload(h: &Harness) -> Vec<String> {
    let mut pods = Vec::new();
    for (name, members, gpus) in GANGS {
        pods.extend(h.gang(name, members, gpus).await);
    }
    for (name, gpus) in SINGLES {
        pods.push(h.pod(name, gpus, None).await);
    }
    pods
}

async fn assert_gangs_scheduled(h: &Harness) {
    for (name, members, _) in GANGS {
        until(&format!("PodGroup {name} Scheduled with {members} members"), WAIT, || async {
            let status = h.env.pod_group_status(name).await;
            status["phase"] == "Scheduled" && status["scheduled"].as_u64() == Some(u64::from(members))
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_errors_and_conflicts_during_scheduling_leave_every_pod_bound_exactly_once() {
    const NS: &str = "bind-faults";
    let h = Harness::start(NS, 16, "bindRetries: 2\nbindConcurrency: 4\n", |f| {
        // Spread over the first binds of gangs and single pods alike.
        f.fail_next(binding(NS), 5, 500);
        f.fail_next(binding(NS), 3, 409);
        // A gang member that fails its first attempt and both retries: its gang is given up, then retried.
        f.fail_next(binding(NS).name("odd-1"), 3, 500);
        // A single pod that conflicts twice.
        f.fail_next(binding(NS).name("s4b"), 2, 409);
        // PodGroup status writes and Events conflict or fail too.
        f.fail_next(RequestMatch::new(Verb::Patch, "podgroups").subresource("status"), 4, 409);
        f.fail_next(RequestMatch::new(Verb::Create, "events"), 3, 500);
    })
    .await;
    let pods = workload(&h).await;
    until("every pod bound", WAIT, || h.all_bound(&pods)).await;
    h.assert_bound_once(&pods).await;
    // Every injected fault was hit (the Event ones maybe only after the last binding): the writes really
    // failed and were recovered from.
    until("every injected fault used", WAIT, || async { h.faults().pending() == 0 }).await;
    assert!(h.faults().count(&binding(NS), Some(500)) >= 8);
    assert!(h.faults().count(&binding(NS), Some(409)) >= 5);
    // The gang given up has its reason on record, and every PodGroup ends Scheduled with all members counted
    // (its status writes were refused with 409s along the way).
    until("GangBindFailed on odd", WAIT, || async { !h.env.events("odd", "GangBindFailed").await.is_empty() }).await;
    assert_gangs_scheduled(&h).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_bind_is_retried_until_it_succeeds() {
    const NS: &str = "bind-retry";
    let h = Harness::start(NS, 2, "bindRetries: 3\n", |f| {
        f.fail_next(binding(NS).name("single"), 2, 500);
        f.fail_next(binding(NS).name("pair-1"), 2, 500);
    })
    .await;
    let mut pods = h.gang("pair", 2, 4).await;
    pods.push(h.pod("single", 2, None).await);
    until("every pod bound", WAIT, || h.all_bound(&pods)).await;
    h.assert_bound_once(&pods).await;
    // The single pod is decided again after each failure, the gang member's bind is retried within its
    // gang's attempt: both end bound by the API server after the injected failures, and nothing else.
    let failed_twice = [(500, true), (500, true), (201, false)];
    assert_eq!(h.binds_of("single"), failed_twice);
    assert_eq!(h.binds_of("pair-1"), failed_twice);
    assert_eq!(h.binds_of("pair-0"), [(201, false)]);
    until("PodGroup pair Scheduled", WAIT, || async {
        h.pod_group_phase("pair").await.as_deref() == Some("Scheduled")
    })
    .await;
    assert!(h.env.events("pair", "GangBindFailed").await.is_empty(), "retries within the budget give nothing up");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partly_bound_gang_records_why_and_is_bound_whole_once_the_faults_stop() {
    const NS: &str = "gang-partial";
    let h = Harness::start(NS, 4, "bindRetries: 1\n", |f| {
        // Until cleared: one member of the gang and one single pod can never be bound (a 500 is retried, a
        // 403 is not; both are reported).
        f.inject(FaultSpec::new(binding(NS).name("train-2"), u32::MAX, 500).message("etcdserver: request timed out"));
        f.inject(FaultSpec::new(binding(NS).name("solo"), u32::MAX, 403));
        // Their PodScheduled=False writes are refused a few times (both the strategic and the merge patch).
        f.fail_next(status_patch(NS).name("train-2"), 4, 409);
        f.fail_next(status_patch(NS).name("solo"), 4, 409);
    })
    .await;
    let mut pods = h.gang("train", 4, 2).await;
    pods.push(h.pod("solo", 1, None).await);
    pods.push(h.pod("other", 1, None).await);

    until("GangBindFailed Event on the PodGroup", WAIT, || async {
        !h.env.events("train", "GangBindFailed").await.is_empty()
    })
    .await;
    until("the failing member waits with a reason", WAIT, || async {
        h.unschedulable_message("train-2").await.is_some_and(|m| m.contains("train-2") && m.contains("failed"))
    })
    .await;
    until("the failing single pod waits with a reason", WAIT, || async {
        h.unschedulable_message("solo").await.is_some_and(|m| m.contains("solo") && m.contains("failed"))
    })
    .await;
    until("a FailedScheduling Event on the failing single pod", WAIT, || async {
        !h.env.events("solo", "FailedScheduling").await.is_empty()
    })
    .await;
    until("the unaffected single pod bound", WAIT, || async { h.env.node_of("other").await.is_some() }).await;
    let bound = h.env.bound().await;
    assert!(!bound.contains_key("train-2") && !bound.contains_key("solo"), "{bound:?}");
    // Partly bound (the others' binds succeeded) but never silently: the PodGroup says why.
    assert!(bound.keys().filter(|p| p.starts_with("train-")).count() < 4, "{bound:?}");
    assert_ne!(h.pod_group_phase("train").await.as_deref(), Some("Scheduled"));
    until("the PodGroup's Scheduled condition says GangBindFailed", WAIT, || async {
        let status = h.env.pod_group_status("train").await;
        let conditions = status["conditions"].as_array().cloned().unwrap_or_default();
        conditions.iter().any(|c| c["type"] == "Scheduled" && c["status"] == "False" && c["reason"] == "GangBindFailed")
    })
    .await;

    // The retries keep coming while the faults last ...
    let train_2 = binding(NS).name("train-2");
    let attempts = h.faults().count(&train_2, Some(500));
    until("train-2 retried", WAIT, || async { h.faults().count(&train_2, Some(500)) > attempts }).await;
    // ... and once they stop the gang is bound whole, each member once.
    h.faults().clear();
    until("the whole gang and the single pod bound", WAIT, || h.all_bound(&pods)).await;
    h.assert_bound_once(&pods).await;
    until("PodGroup Scheduled", WAIT, || async { h.pod_group_phase("train").await.as_deref() == Some("Scheduled") })
        .await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reason_refused_with_conflicts_is_still_recorded() {
    // 16 GPUs on 8-GPU nodes never fit: the pod waits, and its reason must reach the API although the first
    // status patches (strategic and merge) and the first Event creations are refused.
    const NS: &str = "reason-conflicts";
    let h = Harness::start(NS, 2, "", |f| {
        f.fail_next(status_patch(NS), 4, 409);
        f.fail_next(RequestMatch::new(Verb::Create, "events").namespace(NS), 2, 500);
    })
    .await;
    h.pod("huge", 16, None).await;
    until("PodScheduled=False with the reason", WAIT, || async {
        h.unschedulable_message("huge").await.is_some_and(|m| m.starts_with("0/2 nodes are available"))
    })
    .await;
    until("a FailedScheduling Event", WAIT, || async { !h.env.events("huge", "FailedScheduling").await.is_empty() })
        .await;
    assert_eq!(h.faults().pending(), 0);
    let huge = status_patch(NS).name("huge");
    assert_eq!(h.faults().count(&huge, Some(409)), 4);
    assert!(h.faults().count(&huge, Some(200)) >= 1, "the reason was written after the conflicts");
    assert!(h.binds_of("huge").is_empty());
    assert!(h.env.node_of("huge").await.is_none());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_and_expired_watches_during_scheduling_bind_every_pod_exactly_once() {
    const NS: &str = "watch-cuts";
    let h = Harness::start(NS, 16, "bindRetries: 2\n", |f| {
        f.fail_next(binding(NS), 6, 500);
    })
    .await;
    let pod_watches = RequestMatch::new(Verb::Watch, "pods");
    let pod_lists = RequestMatch::new(Verb::List, "pods");
    // Keep cutting the scheduler's watch streams. The shared control plane cannot be made to compact its
    // history on demand, so every third resume of the pod watch is answered the way the API server answers
    // one from a compacted version (an `ERROR` event with a 410 `Expired` Status): the watchers re-list.
    let chaos = async {
        for i in 0u32.. {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if i % 3 == 2 {
                h.faults().fail_next(pod_watches.clone(), 1, 410);
            }
            h.proxy.cut_watches();
        }
    };
    let scheduling = async {
        // The workload arrives in waves while the streams are being cut.
        let mut pods = Vec::new();
        for (wave, (name, members, gpus)) in GANGS.iter().enumerate() {
            pods.extend(h.gang(name, *members, *gpus).await);
            for (single, gpus) in SINGLES.iter().skip(wave * 3).take(3) {
                pods.push(h.pod(single, *gpus, None).await);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        until("every pod bound", WAIT, || h.all_bound(&pods)).await;
        // Some more cuts after the last binding: nothing is bound again from a stale picture.
        let watches = h.faults().count(&pod_watches, None);
        until("watches re-opened a few more times", WAIT, || async {
            h.faults().count(&pod_watches, None) >= watches + 3
        })
        .await;
        pods
    };
    let pods = tokio::select! {
        _ = chaos => unreachable!("the chaos never ends"),
        pods = scheduling => pods,
    };
    h.assert_bound_once(&pods).await;
    assert!(h.faults().count(&pod_watches, Some(410)) >= 1, "expired resumes were answered");
    assert!(h.faults().count(&pod_lists, None) >= 2, "an expired resume makes the scheduler re-list");
    assert_eq!(h.faults().count(&binding(NS), Some(500)), 6);
    assert_gangs_scheduled(&h).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bind_refused_because_the_pod_was_deleted_is_not_retried() {
    // The bind of `doomed`, which takes the one node's 8 GPUs, is held in the proxy while the pod is
    // deleted, so the API server itself answers it with 404 NotFound.
    const NS: &str = "bind-gone";
    let h = Harness::start(NS, 1, "", |f| {
        f.add_latency(binding(NS).name("doomed"), Duration::from_secs(3));
    })
    .await;
    h.pod("doomed", 8, None).await;
    until("the bind of doomed in flight", WAIT, || async { h.proxy.in_flight(&binding(NS).name("doomed")) == 1 }).await;
    objects::finish_terminating(&h.env.admin, &h.env.ns, "doomed").await.expect("doomed deleted");
    until("the API server's 404 answered", WAIT, || async { !h.binds_of("doomed").is_empty() }).await;
    assert_eq!(h.binds_of("doomed"), [(404, false)]);
    // Several backoff periods (at most 1 s each) later: no second attempt, and the failure report about the
    // gone pod (its status writes answered 404 too) has stopped.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(h.binds_of("doomed"), [(404, false)]);
    let reports = status_patch(NS).name("doomed");
    let written = h.faults().count(&reports, None);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(h.faults().count(&reports, None), written, "status writes for a deleted pod keep coming");
    assert_eq!(h.binds_of("doomed"), [(404, false)]);
    // The scheduler carries on, and the room doomed was assumed on is free again: a pod needing all of
    // the node's GPUs is bound there.
    let after = vec![h.pod("after", 8, None).await];
    until("a later pod bound", WAIT, || h.all_bound(&after)).await;
    h.assert_bound_once(&after).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_group_deleted_while_the_scheduler_was_cut_off_is_forgotten_on_the_re_list() {
    const NS: &str = "group-gone";
    let h = Harness::start(NS, 1, "", |_| {}).await;
    h.env.pod_group("gone", 3, None).await;
    let member = h.pod("gone-0", 1, Some("gone")).await;
    until("the member waits for members", WAIT, || async {
        h.unschedulable_message(&member).await.is_some_and(|m| m.contains("waiting for members"))
    })
    .await;
    // The deletion happens while the scheduler cannot see it, and its watch resume is answered as one from a
    // compacted version: only the re-list can tell it the PodGroup is gone.
    let group_lists = RequestMatch::new(Verb::List, "podgroups");
    let lists_before = h.faults().count(&group_lists, None);
    h.proxy.partition(true);
    h.faults().fail_next(RequestMatch::new(Verb::Watch, "podgroups"), 1, 410);
    let api: kube::Api<kube::api::DynamicObject> =
        kube::Api::namespaced_with(h.env.admin.clone(), NS, &mlsched_tests::podgroup_api_resource());
    api.delete("gone", &Default::default()).await.expect("PodGroup deleted");
    tokio::time::sleep(Duration::from_secs(1)).await;
    h.proxy.partition(false);
    let missing = format!("PodGroup {NS}/gone does not exist");
    until("the member says its PodGroup does not exist", WAIT, || async {
        h.unschedulable_message(&member).await.is_some_and(|m| m.contains(&missing))
    })
    .await;
    assert!(h.faults().count(&group_lists, None) > lists_before, "the PodGroups were listed again");
    assert!(h.env.node_of(&member).await.is_none(), "a member of a deleted PodGroup was bound");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bind_refused_because_the_pod_is_bound_already_is_not_retried() {
    // The bind of `taken` is held in the proxy while someone else binds the pod, so the API server itself
    // answers it with 409 Conflict (the pod is already assigned to a node).
    const NS: &str = "bind-taken";
    let h = Harness::start(NS, 2, "", |f| {
        f.add_latency(binding(NS).name("taken"), Duration::from_secs(3));
    })
    .await;
    h.pod("taken", 1, None).await;
    until("the bind of taken in flight", WAIT, || async { h.proxy.in_flight(&binding(NS).name("taken")) == 1 }).await;
    let elsewhere = format!("{NS}-r0-n1");
    let binding_elsewhere: Binding = typed(serde_json::json!({
        "apiVersion": "v1", "kind": "Binding", "metadata": {"name": "taken", "namespace": NS},
        "target": {"apiVersion": "v1", "kind": "Node", "name": elsewhere}
    }));
    Api::<Pod>::namespaced(h.env.admin.clone(), NS)
        .create_subresource::<_, serde_json::Value>("binding", "taken", &PostParams::default(), &binding_elsewhere)
        .await
        .expect("bound by someone else");
    until("the API server's 409 answered", WAIT, || async { !h.binds_of("taken").is_empty() }).await;
    assert_eq!(h.binds_of("taken"), [(409, false)]);
    // Several backoff periods (at most 1 s each) later: no second attempt, and no failure reported about a
    // pod that runs.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(h.binds_of("taken"), [(409, false)], "a bind refused as bound already was sent again");
    assert_eq!(h.env.node_of("taken").await.as_deref(), Some(elsewhere.as_str()));
    assert_eq!(h.unschedulable_message("taken").await, None, "a bound pod was reported unschedulable");
    assert!(h.env.events("taken", "FailedScheduling").await.is_empty());
    // The scheduler carries on, with the pod counted where it runs.
    let after = h.pod("after", 1, None).await;
    until("a later pod bound", WAIT, || async { h.env.node_of(&after).await.is_some() }).await;
    assert_eq!(h.binds_of(&after), [(201, false)]);
    h.env.assert_no_overcommit().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bind_throttled_with_retry_after_is_sent_again_after_the_wait() {
    // 429 Too Many Requests with `Retry-After: 1`, twice, on a single pod's bind and on a gang member's. The
    // kube client retries these answers itself (its default retry policy: 429, 503, 504), after the time the
    // server asked for; the scheduler sees the bind succeed. Nothing is given up or reported.
    const NS: &str = "bind-throttled";
    let h = Harness::start(NS, 2, "bindRetries: 3\n", |f| {
        f.inject(FaultSpec::new(binding(NS).name("single"), 2, 429).retry_after(1));
        f.inject(FaultSpec::new(binding(NS).name("pair-1"), 2, 429).retry_after(1));
    })
    .await;
    let started = Instant::now();
    let mut pods = h.gang("pair", 2, 4).await;
    pods.push(h.pod("single", 2, None).await);
    until("every pod bound", WAIT, || h.all_bound(&pods)).await;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "bound {:?} after creation: Retry-After ignored",
        started.elapsed()
    );
    h.assert_bound_once(&pods).await;
    let throttled_twice = [(429, true), (429, true), (201, false)];
    assert_eq!(h.binds_of("single"), throttled_twice);
    assert_eq!(h.binds_of("pair-1"), throttled_twice);
    assert_eq!(h.binds_of("pair-0"), [(201, false)]);
    until("PodGroup pair Scheduled", WAIT, || async {
        h.pod_group_phase("pair").await.as_deref() == Some("Scheduled")
    })
    .await;
    assert!(h.env.events("pair", "GangBindFailed").await.is_empty(), "a throttled bind gave its gang up");
    assert_eq!(h.unschedulable_message("single").await, None);
    h.stop().await;
}
