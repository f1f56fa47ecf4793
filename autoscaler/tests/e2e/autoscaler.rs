//! End to end: the autoscaler against the API server double (Deployment + scale subresource, pod `resize`,
//! PodMetrics) and a fake Placement gRPC server whose headroom the test controls.
//!
//! Total load on a 2-replica Deployment rises: the pods grow in place while their node has room; with no
//! room left, replicas are added (scale subresource) with the near-workload annotation; a Placement API
//! error makes it do nothing and say so; when the load drops, it scales back in only after the (shortened)
//! stabilization window.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::PostParams;
use mlsched_autoscaler::config::{Config, LeaderElectionConfig};
use mlsched_autoscaler::crd::HybridAutoscaler;
use mlsched_proto::v1 as pb;
use mlsched_proto::v1::placement_server::{Placement, PlacementServer};
use mlsched_tests::metrics_api::{ContainerUsage, set_pod_usage};
use mlsched_tests::testing::eventually;
use mlsched_tests::{ApiServer, RequestMatch, ResourceKind, Verb, scale};
use serde_json::{Value, json};
use tonic::{Request, Response, Status};

#[derive(Default)]
struct Fake {
    free_cpu: AtomicI64,
    fail: AtomicBool,
    plans: Mutex<Vec<pb::PlanReplicasRequest>>,
}

struct Svc(Arc<Fake>);

#[tonic::async_trait]
impl Placement for Svc {
    async fn node_headroom(
        &self,
        r: Request<pb::NodeHeadroomRequest>,
    ) -> Result<Response<pb::NodeHeadroomResponse>, Status> {
        if self.0.fail.load(Ordering::SeqCst) {
            return Err(Status::unavailable("scheduler snapshot not ready"));
        }
        let free =
            pb::Resources { cpu_milli: self.0.free_cpu.load(Ordering::SeqCst), memory_bytes: 64 << 30, gpu_milli: 0 };
        let pods = r
            .into_inner()
            .pods
            .into_iter()
            .map(|p| pb::PodHeadroom { pod: Some(p), node: "node-a".into(), free: Some(free), requested: None })
            .collect();
        Ok(Response::new(pb::NodeHeadroomResponse { pods }))
    }

    async fn plan_replicas(
        &self,
        r: Request<pb::PlanReplicasRequest>,
    ) -> Result<Response<pb::PlanReplicasResponse>, Status> {
        if self.0.fail.load(Ordering::SeqCst) {
            return Err(Status::unavailable("scheduler snapshot not ready"));
        }
        let req = r.into_inner();
        let n = req.replicas;
        self.0.plans.lock().unwrap().push(req);
        let placements =
            (0..n).map(|_| pb::ReplicaPlacement { node: "node-b".into(), mean_hops: 2.0, network_cost: 2.0 }).collect();
        Ok(Response::new(pb::PlanReplicasResponse { placements, unplaceable: 0, reason: String::new() }))
    }

    async fn workload_pods(
        &self,
        _: Request<pb::WorkloadPodsRequest>,
    ) -> Result<Response<pb::WorkloadPodsResponse>, Status> {
        Ok(Response::new(pb::WorkloadPodsResponse { pods: vec![] }))
    }
}

fn ha_kind() -> ResourceKind {
    ResourceKind::new("autoscaling.mlsched.io", "v1alpha1", "hybridautoscalers", "HybridAutoscaler", true)
        .with_status()
        .custom()
}

fn cpu_request(pod: &Value) -> String {
    pod.pointer("/spec/containers/0/resources/requests/cpu").and_then(Value::as_str).unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grows_in_place_then_scales_out_near_then_back_in() {
    let server = ApiServer::builder().with_kind(ha_kind()).serve().await.unwrap();
    let state = server.state().clone();
    let client = server.client();

    // The fake Placement API.
    let fake = Arc::new(Fake::default());
    fake.free_cpu.store(4000, Ordering::SeqCst);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc_addr = listener.local_addr().unwrap();
    let svc = PlacementServer::new(Svc(fake.clone()));
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
            .unwrap();
    });

    // The workload: 2 replicas of 1 CPU, and a "controller" + "metrics-server" that keep the pods and their
    // usage (the total load split evenly) in step with spec.replicas.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let dep: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "web:1",
                    "resources": {"requests": {"cpu": "1", "memory": "256Mi"}}}]}
            }
        }
    }))
    .unwrap();
    deployments.create(&PostParams::default(), &dep).await.unwrap();
    let load = Arc::new(AtomicI64::new(600));
    let stop = Arc::new(AtomicBool::new(false));
    let (st, ld, sp) = (state.clone(), load.clone(), stop.clone());
    let mirror = tokio::spawn(async move {
        let pods_kind = st.kind("", "pods").unwrap();
        while !sp.load(Ordering::SeqCst) {
            let _ = scale::mirror_replicas(&st, "deployments", "default", "web", "node-a");
            let pods = st.list_values(&pods_kind, Some("default"));
            let n = pods.len().max(1) as i64;
            for p in &pods {
                let name = p.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
                let per = ld.load(Ordering::SeqCst) / n;
                let _ = set_pod_usage(&st, "default", name, &[ContainerUsage::new("app", per, 100 << 20)]);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });

    // The autoscaler, with a short period and a 2 s scale-down window.
    let config = Config {
        period_seconds: 0.2,
        placement_api: grpc_addr.to_string(),
        placement_timeout_seconds: 1.0,
        history_seconds: 2.0,
        listen_address: "127.0.0.1:0".into(),
        leader_election: LeaderElectionConfig { enabled: false, ..Default::default() },
        ..Config::default()
    };
    let (stop_tx, autoscaler, http_addr) = crate::run_autoscaler(config, client.clone()).await;

    let has: Api<HybridAutoscaler> = Api::namespaced(client.clone(), "default");
    let ha: HybridAutoscaler = serde_json::from_value(json!({
        "apiVersion": "autoscaling.mlsched.io/v1alpha1", "kind": "HybridAutoscaler",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"targetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 2, "maxReplicas": 6,
                 "targetCPUUtilizationPercent": 70, "scaleDownStabilizationSeconds": 2}
    }))
    .unwrap();
    has.create(&PostParams::default(), &ha).await.unwrap();
    let status = |k: &'static str| {
        let has = has.clone();
        async move {
            let h = has.get("web").await.ok()?;
            let s = serde_json::to_value(h.status?).ok()?;
            Some((s.pointer(k).cloned().unwrap_or(Value::Null), s))
        }
    };
    eventually("a first decision", Duration::from_secs(10), || async {
        status("/lastDecision/kind").await.filter(|(k, _)| k == "None").map(|_| ())
    })
    .await;

    // 1. 900m per pod against 1 CPU at a 70 % target, and the node has room: resize in place to 1286m.
    load.store(1800, Ordering::SeqCst);
    eventually("in-place resize", Duration::from_secs(10), || async {
        let p = state.pod("default", "web-0")?;
        let v = serde_json::to_value(p).ok()?;
        (cpu_request(&v) == "1286m").then_some(())
    })
    .await;
    assert!(server.faults().count(&RequestMatch::new(Verb::Patch, "pods").subresource("resize"), Some(200)) >= 1);
    // The no-fight rule: pods that keep up after growing are not multiplied (1800m is 257 % of the
    // baseline per pod, but no pod is overloaded against its new request).
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(deployments.get("web").await.unwrap().spec.replicas, Some(2));

    // 2. The Placement API fails: nothing is done, and the status says so.
    fake.fail.store(true, Ordering::SeqCst);
    load.store(2400, Ordering::SeqCst);
    eventually("PlacementAvailable=False", Duration::from_secs(10), || async {
        let (_, s) = status("/conditions").await?;
        let c = s["conditions"].as_array()?.iter().find(|c| c["type"] == "PlacementAvailable")?.clone();
        (c["status"] == "False").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(deployments.get("web").await.unwrap().spec.replicas, Some(2));

    // 3. The node is full: add replicas, placed near the existing ones.
    fake.free_cpu.store(0, Ordering::SeqCst);
    fake.fail.store(false, Ordering::SeqCst);
    let scaled_at = eventually("scale-out to 4", Duration::from_secs(10), || async {
        let d = deployments.get("web").await.ok()?;
        (d.spec.replicas == Some(4)).then(Instant::now)
    })
    .await;
    let d = deployments.get("web").await.unwrap();
    let ann = d.spec.template.metadata.unwrap().annotations.unwrap_or_default();
    assert_eq!(ann.get("mlsched.io/near-workload").map(String::as_str), Some("app=web"));
    {
        let plans = fake.plans.lock().unwrap();
        let p = plans.last().expect("PlanReplicas was asked");
        assert_eq!(p.replicas, 2);
        assert_eq!(p.existing.len(), 2);
        assert_eq!(p.template.as_ref().unwrap().requests.unwrap().cpu_milli, 1000, "baseline request");
    }
    assert!(server.faults().count(&RequestMatch::new(Verb::Patch, "deployments").subresource("scale"), Some(200)) >= 1);
    let (_, s) = status("/placement").await.unwrap();
    assert_eq!(s["placement"]["replicas"][0]["node"], "node-b", "{s}");

    // 4. Load drops: back to minReplicas, but only after the 2 s scale-down window.
    eventually("the new replicas have metrics", Duration::from_secs(10), || async {
        state.pod("default", "web-3").map(|_| ())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    load.store(400, Ordering::SeqCst);
    let dropped = Instant::now();
    let down_at = eventually("scale-in to 2", Duration::from_secs(15), || async {
        let d = deployments.get("web").await.ok()?;
        (d.spec.replicas == Some(2)).then(Instant::now)
    })
    .await;
    assert!(down_at - dropped >= Duration::from_millis(1500), "scaled in after {:?}", down_at - dropped);
    assert!(down_at > scaled_at);

    // Events on the Deployment and the CR, and the metrics.
    let ev_kind = state.kind("events.k8s.io", "events").unwrap();
    let reasons = || -> Vec<(String, String)> {
        state
            .list_values(&ev_kind, Some("default"))
            .iter()
            .map(|e| {
                (
                    e["reason"].as_str().unwrap_or("").to_string(),
                    e.pointer("/regarding/kind").and_then(Value::as_str).unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    // Events are written after the action and the status.
    eventually("a ScaledDown Event", Duration::from_secs(5), || async {
        reasons().iter().any(|(r, _)| r == "ScaledDown").then_some(())
    })
    .await;
    let reasons = reasons();
    for (reason, on) in [("ResizedUp", "Deployment"), ("ScaledUp", "Deployment"), ("ScaledDown", "HybridAutoscaler")] {
        assert!(reasons.iter().any(|(r, k)| r == reason && k == on), "{reason} on {on}: {reasons:?}");
    }
    assert!(reasons.iter().any(|(r, _)| r == "PlacementUnavailable"), "{reasons:?}");
    let body = http_get(http_addr, "/metrics").await;
    assert!(body.contains("mlsched_autoscaler_decisions_total{workload=\"default/web\",kind=\"ScaleUp\"}"), "{body}");
    assert!(http_get(http_addr, "/healthz").await.contains("ok"));

    stop.store(true, Ordering::SeqCst);
    let _ = mirror.await;
    crate::stop_autoscaler(stop_tx, autoscaler).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_spec_is_a_condition_not_a_crash() {
    let server = ApiServer::builder().with_kind(ha_kind()).serve().await.unwrap();
    let client = server.client();
    let config = Config {
        period_seconds: 0.1,
        placement_api: "127.0.0.1:1".into(),
        listen_address: "127.0.0.1:0".into(),
        leader_election: LeaderElectionConfig { enabled: false, ..Default::default() },
        ..Config::default()
    };
    let (stop_tx, task, _) = crate::run_autoscaler(config, client.clone()).await;
    let has: Api<HybridAutoscaler> = Api::namespaced(client.clone(), "default");
    let ha: HybridAutoscaler = serde_json::from_value(json!({
        "apiVersion": "autoscaling.mlsched.io/v1alpha1", "kind": "HybridAutoscaler",
        "metadata": {"name": "bad", "namespace": "default"},
        "spec": {"targetRef": {"kind": "Job", "name": "x"}, "maxReplicas": 3, "targetCPUUtilizationPercent": 70}
    }))
    .unwrap();
    has.create(&PostParams::default(), &ha).await.unwrap();
    eventually("Valid=False", Duration::from_secs(10), || async {
        let s = has.get("bad").await.ok()?.status?;
        let c = s.conditions.iter().find(|c| c.type_ == "Valid")?;
        (c.status == "False" && c.reason == "InvalidSpec" && c.message.contains("targetRef.kind")).then_some(())
    })
    .await;
    crate::stop_autoscaler(stop_tx, task).await;
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}
