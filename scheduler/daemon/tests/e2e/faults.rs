//! End to end under faults: the whole scheduler (`mlsched_scheduler::run`) against the in-process API double
//! while bind errors (500), conflicts (409 on binding, on the pods/status patch, on the PodGroup status) and
//! dropped or expired watch streams are injected during scheduling.
//!
//! Invariants checked by every test: each pod ends bound exactly once (the double saw one successful binding
//! POST per pod, and no binding of an already bound pod was attempted) or waits with a recorded reason
//! (`PodScheduled=False` with a message); a gang left partly bound has a `GangBindFailed` Event and is bound
//! whole once the faults stop.

use crate::eventually;
use std::collections::BTreeMap;
use std::time::Duration;

use mlsched_scheduler::Config;
use mlsched_tests::cluster::{GpuClusterSpec, pending_pod, pod_group, seed_gpu_cluster};
use mlsched_tests::faults::FaultSpec;
use mlsched_tests::{ApiServer, ApiServerHandle, RequestMatch, Verb};
use serde_json::Value;
use tokio::sync::oneshot;

const NS: &str = "ml";

struct Harness {
    server: ApiServerHandle,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Harness {
    /// A seeded 16-node, 128-GPU cluster (4 racks x 4 nodes x 8 GPUs) and a scheduler with fast backoff.
    async fn start(extra_yaml: &str, before: impl FnOnce(&ApiServerHandle)) -> Harness {
        let server = ApiServer::start().await.expect("API double");
        seed_gpu_cluster(server.state(), &GpuClusterSpec::default()).expect("seed");
        before(&server);
        let yaml = format!(
            "profiles:\n  - schedulerName: mlsched\n    policy: bestfit\nlistenAddress: 127.0.0.1:0\n\
             backoff: {{initialSeconds: 0.1, maxSeconds: 0.5}}\nclient: {{qps: 1000, burst: 1000}}\n{extra_yaml}"
        );
        let mut config = Config::from_yaml(&yaml).expect("config");
        config.leader_election.enabled = false;
        let (stop, task, _) = crate::run_scheduler(config, server.client()).await;
        Harness { server, stop: Some(stop), task }
    }

    fn pod(&self, name: &str, gpus: u32, group: Option<&str>) {
        let kind = self.server.state().kind("", "pods").unwrap();
        self.server.state().create_value(&kind, NS, pending_pod(NS, name, gpus, "mlsched", group)).unwrap();
    }

    /// A PodGroup `name` with `members` pods `name-0..` of `gpus` GPUs each; returns the pod names.
    fn gang(&self, name: &str, members: u32, gpus: u32) -> Vec<String> {
        let kind = self.server.state().kind("scheduling.x-k8s.io", "podgroups").unwrap();
        self.server.state().create_value(&kind, NS, pod_group(NS, name, members, None)).unwrap();
        (0..members)
            .map(|i| {
                let pod = format!("{name}-{i}");
                self.pod(&pod, gpus, Some(name));
                pod
            })
            .collect()
    }

    fn node_of(&self, pod: &str) -> Option<String> {
        self.server.state().node_of(NS, pod)
    }

    fn pod_group(&self, name: &str) -> Option<Value> {
        let kind = self.server.state().kind("scheduling.x-k8s.io", "podgroups").unwrap();
        self.server.state().get_value(&kind, NS, name)
    }

    fn pod_group_phase(&self, name: &str) -> Option<String> {
        self.pod_group(name)?.pointer("/status/phase")?.as_str().map(str::to_string)
    }

    fn events(&self, kind: &str, name: &str, reason: &str) -> Vec<Value> {
        let events = self.server.state().kind("", "events").unwrap();
        self.server
            .state()
            .list_values(&events, Some(NS))
            .into_iter()
            .filter(|e| e.pointer("/involvedObject/kind").and_then(Value::as_str) == Some(kind))
            .filter(|e| e.pointer("/involvedObject/name").and_then(Value::as_str) == Some(name))
            .filter(|e| e.get("reason").and_then(Value::as_str) == Some(reason))
            .collect()
    }

    /// The pod's `PodScheduled=False` message, if it has that condition.
    fn unschedulable_message(&self, pod: &str) -> Option<String> {
        let conditions = self.server.state().pod(NS, pod)?.status?.conditions?;
        conditions
            .into_iter()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False")
            .and_then(|c| c.message)
            .filter(|m| !m.is_empty())
    }

    /// Exactly-once: one binding per pod in the store, one successful binding POST per pod in the request
    /// log, and no real (not injected) 409 on a binding, which would mean an already bound pod was bound again.
    fn assert_bound_once(&self, pods: &[String]) {
        let binding = RequestMatch::new(Verb::Create, "pods").subresource("binding");
        let mut ok: BTreeMap<String, usize> = BTreeMap::new();
        for r in self.server.faults().requests_matching(&binding, None) {
            if (200..300).contains(&r.status) {
                *ok.entry(r.info.name.clone()).or_default() += 1;
            }
            assert!(r.injected || r.status != 409, "the scheduler tried to bind {} a second time: {r:?}", r.info.name);
        }
        for p in pods {
            assert!(self.node_of(p).is_some(), "{p} not bound");
            assert_eq!(self.server.state().binding_count(NS, p), 1, "{p} bound {} times", ok.get(p).unwrap_or(&0));
            assert_eq!(ok.get(p).copied().unwrap_or(0), 1, "successful binding POSTs for {p}");
        }
        assert_eq!(ok.values().sum::<usize>(), self.server.state().bindings().len());
    }

    async fn stop(mut self) {
        crate::stop_scheduler(self.stop.take(), self.task).await;
        self.server.shutdown().await;
    }
}

fn binding() -> RequestMatch {
    RequestMatch::new(Verb::Create, "pods").subresource("binding")
}

/// Gangs of (name, members, GPUs per member) and single pods of (name, GPUs): 84 of the 128 GPUs.
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

fn workload(h: &Harness) -> Vec<String> {
    let mut pods = Vec::new();
    for (name, members, gpus) in GANGS {
        pods.extend(h.gang(name, members, gpus));
    }
    for (name, gpus) in SINGLES {
        h.pod(name, gpus, None);
        pods.push(name.to_string());
    }
    pods
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_errors_and_conflicts_during_scheduling_leave_every_pod_bound_exactly_once() {
    let h = Harness::start("bindRetries: 2\nbindConcurrency: 4\n", |server| {
        let f = server.faults();
        // Spread over the first binds of gangs and single pods alike.
        f.fail_next(binding(), 5, 500);
        f.fail_next(binding(), 3, 409);
        // A gang member that fails its first attempt and both retries: its gang is given up, then retried.
        f.fail_next(binding().name("odd-1"), 3, 500);
        // A single pod that conflicts twice.
        f.fail_next(binding().name("s4b"), 2, 409);
        // PodGroup status writes and Events conflict or fail too.
        f.fail_next(RequestMatch::new(Verb::Patch, "podgroups").subresource("status"), 4, 409);
        f.fail_next(RequestMatch::new(Verb::Create, "events"), 3, 500);
    })
    .await;
    let pods = workload(&h);
    eventually("every pod bound", Duration::from_secs(15), || pods.iter().all(|p| h.node_of(p).is_some())).await;
    h.assert_bound_once(&pods);
    // Every injected fault was hit (the Event ones maybe only after the last binding): the writes really
    // failed and were recovered from.
    eventually("every injected fault used", Duration::from_secs(5), || h.server.faults().pending() == 0).await;
    assert!(h.server.faults().count(&binding(), Some(500)) >= 8);
    assert!(h.server.faults().count(&binding(), Some(409)) >= 5);
    // The gang given up has its reason on record, and every PodGroup ends Scheduled with all members counted
    // (its status writes were refused with 409s along the way).
    eventually("GangBindFailed on odd", Duration::from_secs(5), || {
        !h.events("PodGroup", "odd", "GangBindFailed").is_empty()
    })
    .await;
    for (name, members, _) in GANGS {
        let scheduled = |g: &Value| {
            g.pointer("/status/phase").and_then(Value::as_str) == Some("Scheduled")
                && g.pointer("/status/scheduled").and_then(Value::as_u64) == Some(u64::from(members))
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !h.pod_group(name).is_some_and(|g| scheduled(&g)) {
            assert!(tokio::time::Instant::now() < deadline, "PodGroup {name} not Scheduled: {:?}", h.pod_group(name));
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partly_bound_gang_records_why_and_is_bound_whole_once_the_faults_stop() {
    let h = Harness::start("bindRetries: 1\n", |server| {
        let f = server.faults();
        // Until cleared: one member of the gang and one single pod can never be bound.
        f.inject(FaultSpec::new(binding().name("train-2"), u32::MAX, 500).message("etcdserver: request timed out"));
        f.inject(FaultSpec::new(binding().name("solo"), u32::MAX, 409));
        // Their PodScheduled=False writes are refused a few times (both the strategic and the merge patch).
        f.fail_next(RequestMatch::new(Verb::Patch, "pods").subresource("status").name("train-2"), 4, 409);
        f.fail_next(RequestMatch::new(Verb::Patch, "pods").subresource("status").name("solo"), 4, 409);
    })
    .await;
    let mut pods = h.gang("train", 4, 2);
    h.pod("solo", 1, None);
    h.pod("other", 1, None);
    pods.push("solo".into());
    pods.push("other".into());

    eventually("GangBindFailed Event on the PodGroup", Duration::from_secs(10), || {
        !h.events("PodGroup", "train", "GangBindFailed").is_empty()
    })
    .await;
    eventually("the failing member waits with a reason", Duration::from_secs(10), || {
        h.unschedulable_message("train-2").is_some_and(|m| m.contains("train-2") && m.contains("failed"))
    })
    .await;
    eventually("the failing single pod waits with a reason", Duration::from_secs(10), || {
        h.unschedulable_message("solo").is_some_and(|m| m.contains("solo") && m.contains("failed"))
    })
    .await;
    eventually("a FailedScheduling Event on the failing single pod", Duration::from_secs(10), || {
        !h.events("Pod", "solo", "FailedScheduling").is_empty()
    })
    .await;
    eventually("the unaffected single pod bound", Duration::from_secs(5), || h.node_of("other").is_some()).await;
    assert!(h.node_of("train-2").is_none() && h.node_of("solo").is_none());
    // Partly bound (the others' binds succeeded) but never silently: the PodGroup says why.
    let bound = (0..4).filter(|i| h.node_of(&format!("train-{i}")).is_some()).count();
    assert!(bound < 4);
    let group = h.pod_group("train").expect("PodGroup");
    assert_ne!(group.pointer("/status/phase").and_then(Value::as_str), Some("Scheduled"), "{group}");

    // The retries keep coming while the faults last ...
    let attempts = h.server.faults().count(&binding().name("train-2"), Some(500));
    eventually("train-2 retried", Duration::from_secs(5), || {
        h.server.faults().count(&binding().name("train-2"), Some(500)) > attempts
    })
    .await;
    // ... and once they stop the gang is bound whole, each member once.
    h.server.faults().clear();
    eventually("the whole gang and the single pod bound", Duration::from_secs(10), || {
        pods.iter().all(|p| h.node_of(p).is_some())
    })
    .await;
    h.assert_bound_once(&pods);
    eventually("PodGroup Scheduled", Duration::from_secs(5), || {
        h.pod_group_phase("train").as_deref() == Some("Scheduled")
    })
    .await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reason_refused_with_conflicts_is_still_recorded() {
    // 16 GPUs on 8-GPU nodes never fit: the pod waits, and its reason must reach the API although the first
    // status patches (strategic and merge) and the first Event creations are refused.
    let h = Harness::start("", |server| {
        let f = server.faults();
        f.fail_next(RequestMatch::new(Verb::Patch, "pods").subresource("status"), 4, 409);
        f.fail_next(RequestMatch::new(Verb::Create, "events"), 2, 500);
    })
    .await;
    h.pod("huge", 16, None);
    eventually("PodScheduled=False with the reason", Duration::from_secs(10), || {
        h.unschedulable_message("huge").is_some_and(|m| m.starts_with("0/16 nodes are available"))
    })
    .await;
    eventually("a FailedScheduling Event", Duration::from_secs(10), || {
        !h.events("Pod", "huge", "FailedScheduling").is_empty()
    })
    .await;
    assert_eq!(h.server.faults().pending(), 0);
    assert_eq!(h.server.state().binding_count(NS, "huge"), 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_and_expired_watches_during_scheduling_bind_every_pod_exactly_once() {
    let h = Harness::start("bindRetries: 2\n", |server| {
        server.faults().fail_next(binding(), 6, 500);
    })
    .await;
    // Keep cutting the scheduler's watch streams; every third cut also compacts the history so the resume
    // gets 410 Gone and the watchers re-list.
    let faults = h.server.faults().clone();
    let state = h.server.state().clone();
    let chaos = tokio::spawn(async move {
        let mut i = 0u32;
        loop {
            tokio::time::sleep(Duration::from_millis(120)).await;
            if i % 3 == 2 {
                state.compact();
            }
            faults.drop_watches();
            i += 1;
        }
    });
    // The workload arrives in waves while the streams are being cut.
    let mut pods = Vec::new();
    for (wave, (name, members, gpus)) in GANGS.iter().enumerate() {
        pods.extend(h.gang(name, *members, *gpus));
        for (single, gpus) in SINGLES.iter().skip(wave * 3).take(3) {
            h.pod(single, *gpus, None);
            pods.push(single.to_string());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eventually("every pod bound", Duration::from_secs(15), || pods.iter().all(|p| h.node_of(p).is_some())).await;
    // Some more cuts after the last binding: nothing is bound again from a stale picture.
    let watches = h.server.faults().count(&RequestMatch::new(Verb::Watch, "pods"), None);
    eventually("watches re-opened a few more times", Duration::from_secs(5), || {
        h.server.faults().count(&RequestMatch::new(Verb::Watch, "pods"), None) >= watches + 3
    })
    .await;
    chaos.abort();
    h.assert_bound_once(&pods);
    assert!(
        h.server.faults().count(&RequestMatch::new(Verb::List, "pods"), None) >= 2,
        "the history was compacted, so the scheduler re-listed"
    );
    assert_eq!(h.server.faults().pending(), 0);
    for (name, _, _) in GANGS {
        eventually(&format!("PodGroup {name} Scheduled"), Duration::from_secs(5), || {
            h.pod_group_phase(name).as_deref() == Some("Scheduled")
        })
        .await;
    }
    h.stop().await;
}
