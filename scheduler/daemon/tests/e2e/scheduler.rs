//! End to end on the real control plane: the whole scheduler (`mlsched_scheduler::run`) as the `mlsched`
//! ServiceAccount with the published RBAC, against kube-apiserver and kube-controller-manager.

use std::net::SocketAddr;
use std::time::Duration;

use mlsched_scheduler::Config;

use crate::cluster::{Env, until};
use crate::{SchedulerTask, Stopper};

const RACK: &str = "network.mlsched.io/rack";
const SPINE: &str = "network.mlsched.io/spine";

/// Starts one scheduler instance on `client`; `extra_yaml` is appended to a base config.
pub async fn spawn_scheduler(
    client: impl Into<mlsched_scheduler::Clients>,
    extra_yaml: &str,
) -> (Stopper, SchedulerTask, SocketAddr) {
    let yaml = format!(
        "profiles:\n  - schedulerName: mlsched\n    policy: bestfit\nlistenAddress: 127.0.0.1:0\n\
         backoff: {{initialSeconds: 0.2, maxSeconds: 1}}\n\
         topologyLevels: [{SPINE}, {RACK}, kubernetes.io/hostname]\n{extra_yaml}"
    );
    let mut config = Config::from_yaml(&yaml).expect("config");
    if !extra_yaml.contains("leaderElection") {
        config.leader_election.enabled = false;
    }
    crate::run_scheduler(config, client).await
}

/// A running scheduler of one test.
struct Running {
    stop: Option<Stopper>,
    task: SchedulerTask,
    http: SocketAddr,
}

impl Running {
    async fn start(env: &Env, extra_yaml: &str) -> Running {
        let (stop, task, http) = spawn_scheduler(env.scheduler_client().await, extra_yaml).await;
        Running { stop: Some(stop), task, http }
    }

    async fn get(&self, path: &str) -> String {
        crate::http_get(self.http, path).await
    }

    async fn stop(mut self) {
        crate::stop_scheduler(self.stop.take(), self.task).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_pods_land_where_the_core_says() {
    let env = Env::new("single-pods").await;
    env.node("sp-small", 4).await;
    env.node("sp-big", 8).await;
    let s = Running::start(&env, "").await;
    env.pod("p3", 3, None).await;
    until("p3 bound", Duration::from_secs(20), || async { env.node_of("p3").await.is_some() }).await;
    // Best fit: the 4-GPU node is the tighter fit for 3 GPUs.
    assert_eq!(env.node_of("p3").await.as_deref(), Some("sp-small"));
    env.pod("p8", 8, None).await;
    until("p8 bound", Duration::from_secs(20), || async { env.node_of("p8").await.is_some() }).await;
    assert_eq!(env.node_of("p8").await.as_deref(), Some("sp-big"));
    until("Scheduled event", Duration::from_secs(10), || async { env.events("p8", "Scheduled").await.len() == 1 })
        .await;
    let (status, _, _) = env.scheduled_condition("p8").await.expect("PodScheduled written by the API server");
    assert_eq!(status, "True");
    let metrics = s.get("/metrics").await;
    assert!(metrics.contains("scheduler_schedule_attempts_total{result=\"scheduled\"} 2"), "{metrics}");
    assert!(s.get("/readyz").await.contains("200 OK"));
    env.assert_no_overcommit().await;
    s.stop().await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eight_member_gang_is_bound_whole_or_not_at_all() {
    let env = Env::new("gang-whole").await;
    env.node("gw-a", 4).await;
    env.node("gw-b", 3).await;
    let s = Running::start(&env, "").await;
    env.pod_group("train", 8, None).await;
    for i in 0..8 {
        env.pod(&format!("w{i}"), 1, Some("train")).await;
    }
    until("PodGroup pending", Duration::from_secs(15), || async {
        env.pod_group_status("train").await["phase"] == "Pending"
    })
    .await;
    // 7 GPUs for 8 one-GPU members: nothing may be bound.
    for _ in 0..10 {
        assert!(env.bound().await.is_empty(), "a partial gang was bound");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    env.node("gw-c", 1).await;
    until("the whole gang bound", Duration::from_secs(20), || async { env.bound().await.len() == 8 }).await;
    until("PodGroup scheduled", Duration::from_secs(10), || async {
        env.pod_group_status("train").await["phase"] == "Scheduled"
    })
    .await;
    env.assert_no_overcommit().await;
    s.stop().await;
    env.finish().await;
}

/// A pod `train` outside any gang that fits nowhere, beside the PodGroup `train` of two members, in one
/// namespace: two units. The gang is bound; the pod waits and says why, and does not hold the gang back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_named_like_a_pod_group_waits_apart_from_it() {
    let env = Env::new("same-name").await;
    env.node("sn-a", 4).await;
    let s = Running::start(&env, "").await;
    env.pod("train", 8, None).await;
    until("the pod told it does not fit", Duration::from_secs(20), || async {
        env.scheduled_condition("train").await.is_some_and(|(status, _, _)| status == "False")
    })
    .await;
    env.pod_group("train", 2, None).await;
    for i in 0..2 {
        env.pod(&format!("train-{i}"), 1, Some("train")).await;
    }
    until("the whole gang bound", Duration::from_secs(20), || async { env.bound().await.len() == 2 }).await;
    assert_eq!(env.node_of("train").await, None, "8 GPUs fit no node");
    until("PodGroup scheduled", Duration::from_secs(10), || async {
        env.pod_group_status("train").await["phase"] == "Scheduled"
    })
    .await;
    env.assert_no_overcommit().await;
    s.stop().await;
    env.finish().await;
}

/// Two racks of two 8-GPU nodes. Two gangs that each need a whole rack's GPUs and must stay in one rack,
/// plus a third that could only fit across racks: the first two get a rack each, whole; the third waits
/// with nothing bound, and takes a rack whole when one is freed. No partial gang at any point.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gangs_competing_for_racks_are_placed_whole_without_deadlock() {
    let env = Env::new("gang-racks").await;
    for (rack, spine) in [("r0", "s0"), ("r1", "s0")] {
        for n in 0..2 {
            env.node_labeled(&format!("gr-{rack}-n{n}"), 8, &[(RACK, rack), (SPINE, spine)]).await;
        }
    }
    let s = Running::start(&env, "").await;
    for g in ["a", "b", "c"] {
        let mut group = mlsched_tests::cluster::pod_group(&env.ns, g, 4, None);
        group["metadata"]["annotations"] = serde_json::json!({"mlsched.io/topology-required-level": RACK});
        env.create_pod_group(group).await;
        for i in 0..4 {
            env.pod(&format!("{g}{i}"), 4, Some(g)).await;
        }
    }
    until("two gangs bound", Duration::from_secs(30), || async { env.bound().await.len() == 8 }).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let bound = env.bound().await;
    assert_eq!(bound.len(), 8, "nothing of the third gang may be bound: {bound:?}");
    let racks_of = |g: &str| -> std::collections::BTreeSet<String> {
        bound.iter().filter(|(p, _)| p.starts_with(g)).map(|(_, n)| n.split('-').nth(1).unwrap().to_string()).collect()
    };
    let placed: Vec<&str> = ["a", "b", "c"].into_iter().filter(|g| !racks_of(g).is_empty()).collect();
    assert_eq!(placed.len(), 2, "{bound:?}");
    for g in &placed {
        assert_eq!(bound.keys().filter(|p| p.starts_with(g)).count(), 4, "gang {g} whole: {bound:?}");
        assert_eq!(racks_of(g).len(), 1, "gang {g} in one rack: {bound:?}");
    }
    assert_ne!(racks_of(placed[0]), racks_of(placed[1]));
    let waiting = ["a", "b", "c"].into_iter().find(|g| !placed.contains(g)).unwrap();
    // Free the first gang's rack: the waiting gang takes it, whole.
    for i in 0..4 {
        mlsched_tests::real::objects::finish_terminating(&env.admin, &env.ns, &format!("{}{i}", placed[0]))
            .await
            .unwrap();
    }
    until("the waiting gang bound whole", Duration::from_secs(30), || async {
        env.bound().await.keys().filter(|p| p.starts_with(waiting)).count() == 4
    })
    .await;
    let bound = env.bound().await;
    let racks: std::collections::BTreeSet<&str> =
        bound.iter().filter(|(p, _)| p.starts_with(waiting)).map(|(_, n)| n.split('-').nth(1).unwrap()).collect();
    assert_eq!(racks.len(), 1, "{bound:?}");
    env.assert_no_overcommit().await;
    s.stop().await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impossible_gang_binds_nothing_and_says_why() {
    let env = Env::new("gang-impossible").await;
    env.node("gi-a", 8).await;
    env.node("gi-b", 8).await;
    let s = Running::start(&env, "").await;
    env.pod_group("huge", 3, None).await;
    for i in 0..3 {
        env.pod(&format!("h{i}"), 8, Some("huge")).await;
    }
    // The gang's own aggregated reason: how many members fit, and why the nodes cannot hold the rest.
    let says_why = |m: &str| m.contains("2/3 members placeable") && m.contains("0/2 nodes can hold 3 pods");
    until("PodScheduled=False with the aggregated reason", Duration::from_secs(20), || async {
        env.scheduled_condition("h0").await.is_some_and(|(status, reason, message)| {
            status == "False" && reason == "Unschedulable" && says_why(&message)
        })
    })
    .await;
    until("a FailedScheduling Event", Duration::from_secs(10), || async {
        env.events("h0", "FailedScheduling").await.iter().any(|e| e.message.as_deref().is_some_and(says_why))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(env.bound().await.is_empty(), "nothing of an impossible gang is bound");
    s.stop().await;
    env.finish().await;
}

/// A PodGroup's `minResources` is checked before placement: two 1-GPU members would fit, but the group says
/// the job needs 24 GPUs free; it waits, told which resource is short, until a third node brings them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gang_waits_for_its_min_resources_and_says_which_are_short() {
    let env = Env::new("gang-min-resources").await;
    env.node("mr-a", 8).await;
    env.node("mr-b", 8).await;
    let s = Running::start(&env, "").await;
    let mut group = mlsched_tests::cluster::pod_group(&env.ns, "job", 2, None);
    group["spec"]["minResources"] = serde_json::json!({"nvidia.com/gpu": 24, "cpu": "1"});
    env.create_pod_group(group).await;
    for i in 0..2 {
        env.pod(&format!("j{i}"), 1, Some("job")).await;
    }
    let says_why = |m: &str| m.contains("minResources not free in the cluster: nvidia.com/gpu: 24 asked, 16 free");
    until("PodScheduled=False naming minResources", Duration::from_secs(20), || async {
        env.scheduled_condition("j0").await.is_some_and(|(status, _, message)| status == "False" && says_why(&message))
    })
    .await;
    until("the PodGroup says so", Duration::from_secs(10), || async {
        env.pod_group_status("job").await["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["message"].as_str().is_some_and(says_why)))
    })
    .await;
    assert!(env.bound().await.is_empty(), "nothing is bound while minResources is short");
    env.node("mr-c", 8).await;
    until("the gang bound once 24 GPUs are free", Duration::from_secs(20), || async { env.bound().await.len() == 2 })
        .await;
    s.stop().await;
    env.finish().await;
}

/// Kubernetes' own PodGroup (`scheduling.k8s.io/v1beta1`, pods joined by `spec.schedulingGroup`): a gang of
/// three 2-GPU members that must share a rack waits, with nothing bound, while no rack has 6 GPUs (the
/// cluster has 8), and is bound whole inside rack r1 once a node there brings it to 6. A pod naming a
/// PodGroup that does not exist is told so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubernetes_pod_group_is_placed_whole_within_its_topology_constraint() {
    let env = Env::new("workload-pod-group").await;
    env.node_labeled("wl-r0-a", 4, &[(RACK, "r0"), (SPINE, "s0")]).await;
    env.node_labeled("wl-r1-a", 4, &[(RACK, "r1"), (SPINE, "s0")]).await;
    let s = Running::start(&env, "").await;
    let groups: kube::Api<k8s_openapi::api::scheduling::v1beta1::PodGroup> =
        kube::Api::namespaced(env.admin.clone(), &env.ns);
    let group = serde_json::json!({
        "apiVersion": "scheduling.k8s.io/v1beta1", "kind": "PodGroup", "metadata": {"name": "train"},
        "spec": {"schedulingPolicy": {"gang": {"minCount": 3}}, "schedulingConstraints": {"topology": [{"key": RACK}]}}
    });
    let created = groups.create(&Default::default(), &mlsched_tests::testing::typed(group)).await.unwrap();
    let kept = created.spec.scheduling_constraints.and_then(|c| c.topology).unwrap_or_default();
    assert_eq!(kept.len(), 1, "the API server kept the topology constraint (its gate is on)");
    let member = |name: &str, group: &str| {
        let mut pod = mlsched_tests::cluster::pending_pod(&env.ns, name, 2, "mlsched", None);
        pod["spec"]["schedulingGroup"] = serde_json::json!({"podGroupName": group});
        pod
    };
    for i in 0..3 {
        env.create_pod(member(&format!("t{i}"), "train")).await;
    }
    env.create_pod(member("lonely", "missing")).await;
    until("the gang told it cannot be placed yet", Duration::from_secs(20), || async {
        env.scheduled_condition("t0").await.is_some_and(|(status, _, _)| status == "False")
    })
    .await;
    let missing = "does not exist (named by spec.schedulingGroup, scheduling.k8s.io/v1beta1)";
    until("the pod of a missing PodGroup says so", Duration::from_secs(20), || async {
        env.scheduled_condition("lonely").await.is_some_and(|(_, _, message)| message.contains(missing))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(env.bound().await.is_empty(), "nothing of the gang is bound while no rack holds it");
    env.node_labeled("wl-r1-b", 2, &[(RACK, "r1"), (SPINE, "s0")]).await;
    until("the gang bound whole", Duration::from_secs(20), || async { env.bound().await.len() == 3 }).await;
    let bound = env.bound().await;
    assert!(bound.values().all(|n| n.starts_with("wl-r1-")), "all in rack r1: {bound:?}");
    env.assert_no_overcommit().await;
    s.stop().await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfittable_pod_gets_the_condition_and_one_event_then_a_new_node_unblocks_it() {
    let env = Env::new("unfittable").await;
    // The node exists before the scheduler starts, so the first message already counts it.
    env.node("uf-a", 4).await;
    let s = Running::start(&env, "").await;
    env.pod("huge", 8, None).await;
    until("PodScheduled=False", Duration::from_secs(20), || async {
        env.scheduled_condition("huge").await.is_some_and(|(status, reason, message)| {
            status == "False" && reason == "Unschedulable" && message.starts_with("0/1 nodes are available: 1 ")
        })
    })
    .await;
    // Several retries (backoff 0.2 s, 0.4 s, 0.8 s): still exactly one Event, its count bumped.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let events = env.events("huge", "FailedScheduling").await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert!(events[0].count.unwrap_or(0) >= 2, "{events:#?}");
    assert!(env.bound().await.is_empty());
    env.node("uf-b", 8).await;
    until("bound after the node arrived", Duration::from_secs(20), || async { env.node_of("huge").await.is_some() })
        .await;
    assert_eq!(env.node_of("huge").await.as_deref(), Some("uf-b"));
    s.stop().await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_annotation_is_reported_and_skipped() {
    let env = Env::new("malformed").await;
    env.node("mf-a", 8).await;
    let s = Running::start(&env, "").await;
    let mut bad = mlsched_tests::cluster::pending_pod(&env.ns, "bad", 0, "mlsched", None);
    bad["metadata"]["annotations"] = serde_json::json!({"mlsched.io/gpu-milli": "half"});
    env.create_pod(bad).await;
    env.pod("good", 1, None).await;
    until("good bound", Duration::from_secs(20), || async { env.node_of("good").await.is_some() }).await;
    until("bad reported", Duration::from_secs(10), || async {
        env.scheduled_condition("bad").await.is_some_and(|(_, reason, message)| {
            reason == "InvalidSchedulingRequest" && message.contains("mlsched.io/gpu-milli")
        })
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let events = env.events("bad", "FailedScheduling").await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0].count, Some(1), "its own status update does not re-report it");
    assert!(env.node_of("bad").await.is_none());
    s.stop().await;
    env.finish().await;
}
