//! End to end: the Placement gRPC API of the whole scheduler (`mlsched_scheduler::run`) on the real control
//! plane, called with the generated tonic client over loopback.
//!
//! Cluster (8 GPUs, 64 CPUs, 512 GiB each): spine s0 = rack r0 {a0, a1} + rack r1 {b0, b1}; spine s1 =
//! rack r2 {c0, c1}. The workload `workload=web` runs web-0 and web-1 on b0 and web-2 on b1 (rack r1);
//! `other-0` and `other-1` hold 6 GPUs each on c0 and c1, which makes those the best-fit nodes.

use std::time::Duration;

use mlsched_proto::v1 as pb;
use mlsched_proto::v1::placement_client::PlacementClient;
use mlsched_scheduler::Config;
use mlsched_tests::cluster::{LABEL_RACK, LABEL_SPINE, gpu_node, pending_pod};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tonic::transport::Channel;

use crate::cluster::{Env, until};

const NS: &str = "placement";
const GIB: i64 = 1 << 30;

/// A pod of 4 CPUs, 32 GiB and `gpus` GPUs (the shape of `pending_pod`), optionally bound already.
fn pod(name: &str, gpus: u32, node: Option<&str>, labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> Value {
    let mut p = pending_pod(NS, name, gpus, "mlsched", None);
    for (k, v) in labels {
        p["metadata"]["labels"][*k] = json!(v);
    }
    for (k, v) in annotations {
        p["metadata"]["annotations"][*k] = json!(v);
    }
    if let Some(node) = node {
        // Created bound, as a pod of an earlier scheduler or a DaemonSet would be.
        p["spec"]["nodeName"] = json!(node);
    }
    p
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Harness {
    env: Env,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    client: PlacementClient<Channel>,
}

impl Harness {
    async fn start() -> Harness {
        let env = Env::new(NS).await;
        for (spine, rack, names) in [("s0", "r0", ["a0", "a1"]), ("s0", "r1", ["b0", "b1"]), ("s1", "r2", ["c0", "c1"])]
        {
            for name in names {
                let labels = [(LABEL_SPINE, spine), (LABEL_RACK, rack)];
                mlsched_tests::real::objects::add_node(&env.admin, gpu_node(name, 8, 64, 512, &labels)).await.unwrap();
            }
        }
        let port = free_port();
        let yaml = format!(
            "profiles:\n  - schedulerName: mlsched\n    policy: bestfit\nlistenAddress: 127.0.0.1:0\n\
             topologyLevels: [{LABEL_SPINE}, {LABEL_RACK}, kubernetes.io/hostname]\n\
             placementApi: 127.0.0.1:{port}\nbackoff: {{initialSeconds: 0.2, maxSeconds: 1}}\n\
             leaderElection: {{enabled: false}}\n"
        );
        let config = Config::from_yaml(&yaml).expect("config");
        let (stop, task, _) = crate::run_scheduler(config, env.scheduler_client().await).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let client = loop {
            match PlacementClient::connect(format!("http://127.0.0.1:{port}")).await {
                Ok(c) => break c,
                Err(e) if tokio::time::Instant::now() > deadline => panic!("Placement API not reachable: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        Harness { env, stop: Some(stop), task, client }
    }

    async fn create(&self, pod: Value) {
        self.env.create_pod(pod).await;
    }

    async fn node_of(&self, pod: &str) -> Option<String> {
        self.env.node_of(pod).await
    }

    async fn workload(&mut self) -> Result<Vec<pb::WorkloadPod>, tonic::Status> {
        let request = pb::WorkloadPodsRequest {
            namespace: NS.into(),
            match_labels: [("workload".to_string(), "web".to_string())].into(),
        };
        Ok(self.client.workload_pods(request).await?.into_inner().pods)
    }

    async fn headroom(&mut self, names: &[&str]) -> Vec<pb::PodHeadroom> {
        let pods = names.iter().map(|n| pb::PodRef { namespace: NS.into(), name: n.to_string() }).collect();
        self.client.node_headroom(pb::NodeHeadroomRequest { pods }).await.expect("NodeHeadroom").into_inner().pods
    }

    async fn plan(&mut self, gpus: i64, replicas: u32) -> Result<pb::PlanReplicasResponse, tonic::Status> {
        let request = pb::PlanReplicasRequest {
            template: Some(pb::PodTemplate {
                namespace: NS.into(),
                requests: Some(pb::Resources { cpu_milli: 4000, memory_bytes: 32 * GIB, gpu_milli: gpus * 1000 }),
                ..Default::default()
            }),
            replicas,
            existing: ["web-0", "web-1", "web-2"]
                .iter()
                .map(|n| pb::PodRef { namespace: NS.into(), name: n.to_string() })
                .collect(),
        };
        Ok(self.client.plan_replicas(request).await?.into_inner())
    }

    async fn stop(mut self) {
        crate::stop_scheduler(self.stop.take(), self.task).await;
        self.env.finish().await;
    }
}

fn rack_r1(node: &str) -> bool {
    node == "b0" || node == "b1"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_placement_api_answers_from_the_scheduler_s_snapshot() {
    let mut h = Harness::start().await;
    let web = [("workload", "web")];
    h.create(pod("web-0", 2, Some("b0"), &web, &[])).await;
    h.create(pod("web-1", 2, Some("b0"), &web, &[])).await;
    h.create(pod("web-2", 2, Some("b1"), &web, &[])).await;
    h.create(pod("other-0", 6, Some("c0"), &[], &[])).await;
    h.create(pod("other-1", 6, Some("c1"), &[], &[])).await;

    // WorkloadPods: UNAVAILABLE until the caches sync, then the three bound pods.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let pods = loop {
        match h.workload().await {
            Ok(pods) if pods.len() == 3 => break pods,
            Ok(_) | Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            other => panic!("WorkloadPods: {other:?}"),
        }
    };
    // The other pods were created last: the web pods being in the cache says nothing of them.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while h.headroom(&["other-0", "other-1"]).await.iter().any(|p| p.node.is_empty()) {
        assert!(tokio::time::Instant::now() < deadline, "other-0 and other-1 never reached the scheduler's cache");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen: Vec<(&str, &str)> =
        pods.iter().map(|p| (p.pod.as_ref().unwrap().name.as_str(), p.node.as_str())).collect();
    assert_eq!(seen, [("web-0", "b0"), ("web-1", "b0"), ("web-2", "b1")]);
    let requested = pb::Resources { cpu_milli: 4000, memory_bytes: 32 * GIB, gpu_milli: 2000 };
    assert!(pods.iter().all(|p| p.requested == Some(requested)));
    let empty = h.client.workload_pods(pb::WorkloadPodsRequest { namespace: NS.into(), ..Default::default() }).await;
    assert_eq!(empty.unwrap_err().code(), tonic::Code::InvalidArgument);

    // NodeHeadroom: the seeded node minus what is requested on it; unknown pods get an empty node.
    let headroom = h.headroom(&["web-0", "web-2", "nope"]).await;
    assert_eq!(headroom.len(), 3);
    assert_eq!(headroom[0].node, "b0");
    let b0_free = pb::Resources { cpu_milli: 64_000 - 8000, memory_bytes: (512 - 64) * GIB, gpu_milli: 8000 - 4000 };
    assert_eq!(headroom[0].free, Some(b0_free));
    assert_eq!(headroom[0].requested, Some(requested));
    assert_eq!(headroom[1].node, "b1");
    let b1_free = pb::Resources { cpu_milli: 64_000 - 4000, memory_bytes: (512 - 32) * GIB, gpu_milli: 8000 - 2000 };
    assert_eq!(headroom[1].free, Some(b1_free));
    assert_eq!(headroom[2].pod.as_ref().unwrap().name, "nope");
    assert_eq!((headroom[2].node.as_str(), headroom[2].free, headroom[2].requested), ("", None, None));

    // PlanReplicas: two more replicas like web-* land in rack r1 (b0 has room for both).
    let plan = h.plan(2, 2).await.expect("PlanReplicas");
    assert_eq!(plan.unplaceable, 0, "{plan:?}");
    assert_eq!(plan.placements.len(), 2);
    for p in &plan.placements {
        assert!(rack_r1(&p.node), "{plan:?}");
        assert!(p.mean_hops <= 2.0, "{plan:?}");
        assert_eq!(p.network_cost, p.mean_hops, "no bandwidths configured");
    }
    // Whole-node replicas: only a0 and a1 are empty; the rest cannot be placed, with the reason.
    let plan = h.plan(8, 6).await.expect("PlanReplicas");
    let nodes: Vec<&str> = plan.placements.iter().map(|p| p.node.as_str()).collect();
    assert_eq!(nodes, ["a0", "a1"], "{plan:?}");
    assert!(plan.placements.iter().all(|p| p.mean_hops == 4.0), "same spine, other rack: {plan:?}");
    assert_eq!(plan.unplaceable, 4);
    assert!(plan.reason.contains("Insufficient nvidia.com/gpu"), "{}", plan.reason);
    let plan = h.plan(16, 2).await.expect("PlanReplicas");
    assert_eq!((plan.placements.len(), plan.unplaceable), (0, 2));
    assert!(plan.reason.starts_with("0/6 nodes are available"), "{}", plan.reason);
    // Nothing was reserved.
    assert_eq!(h.headroom(&["web-0"]).await[0].free, Some(b0_free));

    // Bad requests.
    for replicas in [0, 1001] {
        let err = h.plan(1, replicas).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{replicas}: {err}");
    }

    // The policy alone (best fit) picks c0, the fullest node, for a plain 2-GPU pod...
    h.create(pod("plain", 2, None, &[], &[])).await;
    until("plain bound", Duration::from_secs(20), || async { h.node_of("plain").await.is_some() }).await;
    assert_eq!(h.node_of("plain").await.as_deref(), Some("c0"));
    // ...but a pod of the workload annotated with mlsched.io/near-workload goes next to its workload, not to
    // c1 (as full as c0 was).
    h.create(pod("web-3", 2, None, &web, &[("mlsched.io/near-workload", "workload=web")])).await;
    until("web-3 bound", Duration::from_secs(20), || async { h.node_of("web-3").await.is_some() }).await;
    let node = h.node_of("web-3").await.unwrap();
    assert!(rack_r1(&node), "web-3 on {node}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let pods = h.workload().await.expect("WorkloadPods");
        if pods.len() == 4 && pods[3].node == node {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "WorkloadPods after web-3: {pods:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    h.stop().await;
}
