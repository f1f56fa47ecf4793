//! End to end: the whole scheduler (`mlsched_scheduler::run`) against the in-process API server double.

use crate::eventually;
use std::net::SocketAddr;
use std::time::Duration;

use mlsched_scheduler::Config;
use mlsched_tests::cluster::{gpu_node, pending_pod, pod_group};
use mlsched_tests::{ApiServer, ApiServerHandle, RequestMatch, Verb};
use serde_json::Value;
use tokio::sync::oneshot;

const NS: &str = "ml";

struct Harness {
    server: ApiServerHandle,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    http: SocketAddr,
}

impl Harness {
    async fn start(extra_yaml: &str) -> Harness {
        let server = ApiServer::start().await.expect("API double");
        Self::start_on(server, extra_yaml).await
    }

    async fn start_on(server: ApiServerHandle, extra_yaml: &str) -> Harness {
        let (stop, task, http) = spawn_scheduler(server.client(), extra_yaml).await;
        Harness { server, stop: Some(stop), task, http }
    }

    fn node(&self, name: &str, gpus: u32) {
        let kind = self.server.state().kind("", "nodes").unwrap();
        self.server.state().create_value(&kind, "", gpu_node(name, gpus, 64, 512, &[])).unwrap();
    }

    fn pod(&self, name: &str, gpus: u32, group: Option<&str>) {
        let kind = self.server.state().kind("", "pods").unwrap();
        self.server.state().create_value(&kind, NS, pending_pod(NS, name, gpus, "mlsched", group)).unwrap();
    }

    fn node_of(&self, pod: &str) -> Option<String> {
        self.server.state().node_of(NS, pod)
    }

    fn events(&self, pod: &str, reason: &str) -> Vec<Value> {
        let kind = self.server.state().kind("", "events").unwrap();
        self.server
            .state()
            .list_values(&kind, Some(NS))
            .into_iter()
            .filter(|e| e.pointer("/involvedObject/name").and_then(Value::as_str) == Some(pod))
            .filter(|e| e.get("reason").and_then(Value::as_str) == Some(reason))
            .collect()
    }

    async fn get(&self, path: &str) -> String {
        let (addr, path) = (self.http, path.to_string());
        tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes()).unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        })
        .await
        .unwrap()
    }

    async fn stop(mut self) {
        crate::stop_scheduler(self.stop.take(), self.task).await;
        self.server.shutdown().await;
    }
}

use crate::{SchedulerTask, Stopper};

/// Starts one scheduler instance on `client`; `extra_yaml` is appended to a base config.
async fn spawn_scheduler(client: kube::Client, extra_yaml: &str) -> (Stopper, SchedulerTask, SocketAddr) {
    let yaml = format!(
        "profiles:\n  - schedulerName: mlsched\n    policy: bestfit\nlistenAddress: 127.0.0.1:0\n\
         backoff: {{initialSeconds: 0.2, maxSeconds: 1}}\n{extra_yaml}"
    );
    let mut config = Config::from_yaml(&yaml).expect("config");
    if !extra_yaml.contains("leaderElection") {
        config.leader_election.enabled = false;
    }
    crate::run_scheduler(config, client).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_pods_land_where_the_core_says() {
    let h = Harness::start("").await;
    h.node("small", 4);
    h.node("big", 8);
    h.pod("p3", 3, None);
    eventually("p3 bound", Duration::from_secs(10), || h.node_of("p3").is_some()).await;
    // Best fit: the 4-GPU node is the tighter fit for 3 GPUs.
    assert_eq!(h.node_of("p3").as_deref(), Some("small"));
    h.pod("p8", 8, None);
    eventually("p8 bound", Duration::from_secs(10), || h.node_of("p8").is_some()).await;
    assert_eq!(h.node_of("p8").as_deref(), Some("big"));
    assert_eq!(h.server.state().bindings().len(), 2);
    eventually("Scheduled event", Duration::from_secs(5), || h.events("p8", "Scheduled").len() == 1).await;
    let metrics = h.get("/metrics").await;
    assert!(metrics.contains("scheduler_schedule_attempts_total{result=\"scheduled\"} 2"), "{metrics}");
    assert!(h.get("/readyz").await.contains("200 OK"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eight_member_gang_is_bound_whole_or_not_at_all() {
    let h = Harness::start("").await;
    h.node("a", 4);
    h.node("b", 3);
    let kind = h.server.state().kind("scheduling.x-k8s.io", "podgroups").unwrap();
    h.server.state().create_value(&kind, NS, pod_group(NS, "train", 8, None)).unwrap();
    for i in 0..8 {
        h.pod(&format!("w{i}"), 1, Some("train"));
    }
    // 7 GPUs for 8 one-GPU members: nothing may be bound.
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(h.server.state().bindings().len(), 0, "a partial gang was bound");
    }
    eventually("PodGroup status", Duration::from_secs(5), || {
        h.server.state().get_value(&kind, NS, "train").and_then(|g| g.pointer("/status/phase").cloned())
            == Some(Value::from("Pending"))
    })
    .await;
    h.node("c", 1);
    eventually("the whole gang bound", Duration::from_secs(10), || h.server.state().bindings().len() == 8).await;
    eventually("PodGroup scheduled", Duration::from_secs(5), || {
        h.server.state().get_value(&kind, NS, "train").and_then(|g| g.pointer("/status/phase").cloned())
            == Some(Value::from("Scheduled"))
    })
    .await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfittable_pod_gets_the_condition_and_one_event_then_a_new_node_unblocks_it() {
    // The node exists before the scheduler starts, so the first message already counts it (a pod seen
    // before its node would rightly get a second Event with a new message).
    let server = ApiServer::start().await.unwrap();
    let kind = server.state().kind("", "nodes").unwrap();
    server.state().create_value(&kind, "", gpu_node("a", 4, 64, 512, &[])).unwrap();
    let h = Harness::start_on(server, "").await;
    h.pod("huge", 8, None);
    eventually("PodScheduled=False", Duration::from_secs(10), || {
        h.server.state().pod(NS, "huge").and_then(|p| p.status?.conditions).is_some_and(|c| {
            c.iter().any(|c| {
                c.type_ == "PodScheduled"
                    && c.status == "False"
                    && c.reason.as_deref() == Some("Unschedulable")
                    && c.message.as_deref().is_some_and(|m| m.starts_with("0/1 nodes are available: 1 "))
            })
        })
    })
    .await;
    // Several retries (backoff 0.2 s, 0.4 s, 0.8 s): still exactly one Event, its count bumped.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let events = h.events("huge", "FailedScheduling");
    assert_eq!(events.len(), 1, "{events:#?}");
    assert!(events[0]["count"].as_i64().unwrap() >= 2, "{events:#?}");
    assert_eq!(h.server.state().bindings().len(), 0);
    h.node("b", 8);
    eventually("bound after the node arrived", Duration::from_secs(5), || h.node_of("huge").is_some()).await;
    assert_eq!(h.node_of("huge").as_deref(), Some("b"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_bind_is_retried_and_the_leader_holds_a_lease() {
    let server = ApiServer::start().await.unwrap();
    server.faults().fail_next(RequestMatch::new(Verb::Create, "pods").subresource("binding"), 1, 500);
    let h = Harness::start_on(
        server,
        "leaderElection: {enabled: true, namespace: default, leaseName: mlsched, leaseDurationSeconds: 3, renewGraceSeconds: 1}\n",
    )
    .await;
    h.node("a", 8);
    h.pod("p", 2, None);
    eventually("bound despite one failed bind", Duration::from_secs(15), || h.node_of("p").is_some()).await;
    assert_eq!(h.server.state().binding_count(NS, "p"), 1);
    let leases = h.server.state().kind("coordination.k8s.io", "leases").unwrap();
    let lease = h.server.state().get_value(&leases, "default", "mlsched").expect("lease created");
    assert!(lease.pointer("/spec/holderIdentity").and_then(Value::as_str).is_some_and(|s| !s.is_empty()), "{lease}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gang_member_whose_binds_keep_failing_gives_the_gang_up_then_it_is_retried() {
    let server = ApiServer::start().await.unwrap();
    // The first attempt and its 3 retries on the reserved node fail.
    server.faults().fail_next(RequestMatch::new(Verb::Create, "pods").subresource("binding").name("w1"), 4, 500);
    let h = Harness::start_on(server, "bindRetries: 3\n").await;
    h.node("a", 8);
    let kind = h.server.state().kind("scheduling.x-k8s.io", "podgroups").unwrap();
    h.server.state().create_value(&kind, NS, pod_group(NS, "train", 3, None)).unwrap();
    for i in 0..3 {
        h.pod(&format!("w{i}"), 2, Some("train"));
    }
    eventually("GangBindFailed event on the PodGroup", Duration::from_secs(10), || {
        let events = h.server.state().kind("", "events").unwrap();
        h.server.state().list_values(&events, Some(NS)).iter().any(|e| {
            e.pointer("/involvedObject/kind").and_then(Value::as_str) == Some("PodGroup")
                && e.get("reason").and_then(Value::as_str) == Some("GangBindFailed")
        })
    })
    .await;
    eventually("the rest of the gang bound on the retry", Duration::from_secs(10), || {
        (0..3).all(|i| h.node_of(&format!("w{i}")).is_some())
    })
    .await;
    assert_eq!(h.server.state().binding_count(NS, "w1"), 1);
    assert_eq!(h.server.state().bindings().len(), 3);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_binds_and_a_standby_takes_over() {
    let lease = "leaderElection: {enabled: true, namespace: default, leaseName: mlsched, leaseDurationSeconds: 2, renewGraceSeconds: 1}\n";
    let h = Harness::start(lease).await;
    h.node("a", 8);
    let leases = h.server.state().kind("coordination.k8s.io", "leases").unwrap();
    let holder = || {
        h.server
            .state()
            .get_value(&leases, "default", "mlsched")
            .and_then(|l| l.pointer("/spec/holderIdentity").and_then(Value::as_str).map(str::to_string))
            .filter(|s| !s.is_empty())
    };
    eventually("first instance leads", Duration::from_secs(10), || holder().is_some()).await;
    let first = holder().unwrap();
    let (stop_b, task_b, http_b) = spawn_scheduler(h.server.client(), lease).await;
    h.pod("p1", 1, None);
    eventually("p1 bound", Duration::from_secs(10), || h.node_of("p1").is_some()).await;
    assert_eq!(h.server.state().binding_count(NS, "p1"), 1, "bound once, by the leader");
    assert_eq!(holder().as_deref(), Some(first.as_str()));
    let server = {
        let Harness { server, stop, task, .. } = h;
        let _ = stop.map(|s| s.send(()));
        tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap().unwrap();
        server
    };
    let state = server.state();
    eventually("the standby takes the lease", Duration::from_secs(5), || {
        state
            .get_value(&leases, "default", "mlsched")
            .and_then(|l| l.pointer("/spec/holderIdentity").and_then(Value::as_str).map(str::to_string))
            .is_some_and(|id| !id.is_empty() && id != first)
    })
    .await;
    let kind = state.kind("", "pods").unwrap();
    state.create_value(&kind, NS, pending_pod(NS, "p2", 1, "mlsched", None)).unwrap();
    eventually("p2 bound by the new leader", Duration::from_secs(10), || state.node_of(NS, "p2").is_some()).await;
    let _ = http_b;
    let _ = stop_b.send(());
    tokio::time::timeout(Duration::from_secs(10), task_b).await.unwrap().unwrap().unwrap();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_annotation_is_reported_and_skipped() {
    let h = Harness::start("").await;
    h.node("a", 8);
    let kind = h.server.state().kind("", "pods").unwrap();
    let mut bad = pending_pod(NS, "bad", 0, "mlsched", None);
    bad["metadata"]["annotations"] = serde_json::json!({"mlsched.io/gpu-milli": "half"});
    h.server.state().create_value(&kind, NS, bad).unwrap();
    h.pod("good", 1, None);
    eventually("good bound", Duration::from_secs(10), || h.node_of("good").is_some()).await;
    eventually("bad reported", Duration::from_secs(5), || {
        h.server.state().pod(NS, "bad").and_then(|p| p.status?.conditions).is_some_and(|c| {
            c.iter().any(|c| {
                c.reason.as_deref() == Some("InvalidSchedulingRequest")
                    && c.message.as_deref().is_some_and(|m| m.contains("mlsched.io/gpu-milli"))
            })
        })
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events = h.events("bad", "FailedScheduling");
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["count"].as_i64(), Some(1), "its own status update does not re-report it");
    assert!(h.node_of("bad").is_none());
    h.stop().await;
}
