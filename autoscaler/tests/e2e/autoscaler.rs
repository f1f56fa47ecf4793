//! End to end: the autoscaler on the real control plane (a real Deployment and its `scale` subresource,
//! kube-controller-manager's ReplicaSets and pods, the real `pods/resize` subresource, PodMetrics through
//! the aggregated `metrics.k8s.io`) and a fake Placement gRPC server whose headroom the test controls.
//!
//! Total load on a 2-replica Deployment rises: the pods grow in place while their node has room; with no
//! room left, replicas are added (scale subresource) with the near-workload annotation, which makes the
//! Deployment controller roll the pods once (documented); a Placement API error makes it do nothing and
//! say so; when the load drops, it scales back in only after the (shortened) stabilization window.
//!
//! No scheduler runs here: the pod template names the node, and the kubelet stand-in of `main.rs` starts
//! the pods there.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mlsched_proto::v1 as pb;
use mlsched_proto::v1::placement_server::{Placement, PlacementServer};
use mlsched_tests::testing::eventually;
use serde_json::{Value, json};
use tonic::{Request, Response, Status};

use crate::{Env, Kubelet, cpu_request};

#[derive(Default)]
struct Fake {
    free_cpu: AtomicI64,
    fail: AtomicBool,
    plans: Mutex<Vec<pb::PlanReplicasRequest>>,
}

struct Svc(Arc<Fake>, String);

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
            .map(|p| pb::PodHeadroom { pod: Some(p), node: self.1.clone(), free: Some(free), requested: None })
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

/// Serves the fake Placement API on a free loopback port; returns its address.
async fn fake_placement(fake: Arc<Fake>, node: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let svc = PlacementServer::new(Svc(fake, node.to_string()));
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    addr.to_string()
}

/// A Deployment of `replicas` pods of 1 CPU, pinned to `node` (no scheduler in these tests).
fn deployment(ns: &str, name: &str, replicas: i32, node: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"nodeName": node, "containers": [{"name": "app", "image": "web:1",
                    "resources": {"requests": {"cpu": "1", "memory": "256Mi"}}}]}
            }
        }
    })
}

fn condition(status: &Value, type_: &str) -> Option<Value> {
    status["conditions"].as_array()?.iter().find(|c| c["type"] == type_).cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grows_in_place_then_scales_out_near_then_back_in() {
    const NODE: &str = "as-grow-node";
    let env = Env::new("as-grow").await;
    let ns = env.ns.clone();
    env.node(NODE, 8, &[]).await;
    let fake = Arc::new(Fake::default());
    fake.free_cpu.store(4000, Ordering::SeqCst);
    let placement = fake_placement(fake.clone(), NODE).await;

    let deployments = env.deployments();
    env.create(&deployments, deployment(&ns, "web", 2, NODE)).await;
    let kubelet = Kubelet::start(&env, "web", 600);
    let first: Vec<String> = eventually("2 pods running", Duration::from_secs(60), || async {
        let pods = env.pods("web").await;
        let running = pods.iter().filter(|p| crate::started(p)).count();
        (pods.len() == 2 && running == 2).then(|| pods.iter().map(|p| p.metadata.name.clone().unwrap()).collect())
    })
    .await;

    let config = env.autoscaler_config(placement);
    let (stop_tx, autoscaler, http_addr) = crate::run_autoscaler(config, env.autoscaler_client().await).await;
    env.create_autoscaler(
        "web",
        json!({"targetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 2, "maxReplicas": 6,
               "targetCPUUtilizationPercent": 70, "scaleDownStabilizationSeconds": 2}),
    )
    .await;
    crate::eventually_ha(&env, "web", "a first decision with metrics", Duration::from_secs(30), || async {
        let s = env.status("web").await?;
        let metrics = condition(&s, "MetricsAvailable")?;
        (s.pointer("/lastDecision/kind")? == "None" && metrics["status"] == "True").then_some(())
    })
    .await;

    // 1. 900m per pod against 1 CPU at a 70 % target, and the node has room: resized in place to 1286m.
    //    The same pods, grown: only `pods/resize` changes the requests of an existing pod.
    kubelet.set_load(1800);
    crate::eventually_ha(&env, "web", "in-place resize of both pods", Duration::from_secs(30), || async {
        let pods = env.pods("web").await;
        (pods.len() == 2 && pods.iter().all(|p| cpu_request(p) == 1286)).then_some(())
    })
    .await;
    let pods = env.pods("web").await;
    assert_eq!(pods.iter().map(|p| p.metadata.name.clone().unwrap()).collect::<Vec<_>>(), first, "not recreated");
    assert!(pods.iter().all(|p| p.metadata.generation > Some(1)), "resize bumps the pod's generation");
    // The no-fight rule: pods that keep up after growing are not multiplied (1800m is 257 % of the
    // baseline per pod, but no pod is overloaded against its new request).
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(env.replicas("web").await, Some(2));

    // 2. The Placement API fails: nothing is done, and the status says so.
    fake.fail.store(true, Ordering::SeqCst);
    kubelet.set_load(2400);
    crate::eventually_ha(&env, "web", "PlacementAvailable=False", Duration::from_secs(30), || async {
        let c = condition(&env.status("web").await?, "PlacementAvailable")?;
        (c["status"] == "False").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.replicas("web").await, Some(2));

    // 3. The node is full: add replicas, placed near the existing ones.
    fake.free_cpu.store(0, Ordering::SeqCst);
    fake.fail.store(false, Ordering::SeqCst);
    let scaled_at = crate::eventually_ha(&env, "web", "scale-out to 4", Duration::from_secs(30), || async {
        (env.replicas("web").await == Some(4)).then(Instant::now)
    })
    .await;
    let d = deployments.get("web").await.unwrap();
    let ann = d.spec.template.metadata.unwrap().annotations.unwrap_or_default();
    assert_eq!(ann.get("mlsched.io/near-workload").map(String::as_str), Some("app=web"));
    {
        let plans = fake.plans.lock().unwrap();
        let asked: Vec<(u32, usize)> = plans.iter().map(|p| (p.replicas, p.existing.len())).collect();
        let p = plans.last().expect("PlanReplicas was asked");
        assert_eq!((p.replicas, p.existing.len()), (2, 2), "(new, existing) of each plan: {asked:?}");
        assert_eq!(p.template.as_ref().unwrap().requests.unwrap().cpu_milli, 1000, "baseline request");
    }
    let s = env.status("web").await.unwrap();
    assert_eq!(s["placement"]["replicas"][0]["node"], "node-b", "{s}");

    // The annotation changed the template: the Deployment controller replaces the pods once, with the
    // template's requests (the grown ones go). 600m per pod then keeps up with 1 CPU: it stays at 4.
    crate::eventually_ha(&env, "web", "the rollout to 4 new pods", Duration::from_secs(90), || async {
        let d = deployments.get("web").await.ok()?;
        let st = d.status?;
        let done = d.metadata.generation == st.observed_generation
            && st.updated_replicas == Some(4)
            && st.ready_replicas == Some(4)
            && st.replicas == Some(4);
        let pods = env.pods("web").await;
        let fresh = pods.len() == 4
            && pods.iter().all(|p| crate::started(p) && p.metadata.name.as_ref().is_some_and(|n| !first.contains(n)));
        (done && fresh).then_some(())
    })
    .await;
    assert!(env.pods("web").await.iter().all(|p| cpu_request(p) == 1000));
    // Let the autoscaler see the new pods with their metrics for a few periods, so that the scale-down
    // window below starts from a recommendation of 4.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(env.replicas("web").await, Some(4));

    // 4. Load drops: back to minReplicas, but only after the 2 s scale-down window.
    kubelet.set_load(400);
    let dropped = Instant::now();
    let down_at = crate::eventually_ha(&env, "web", "scale-in to 2", Duration::from_secs(30), || async {
        (env.replicas("web").await == Some(2)).then(Instant::now)
    })
    .await;
    assert!(down_at - dropped >= Duration::from_millis(1500), "scaled in after {:?}", down_at - dropped);
    assert!(down_at > scaled_at);
    eventually("2 pods left", Duration::from_secs(30), || async { (env.pods("web").await.len() == 2).then_some(()) })
        .await;

    // Events on the Deployment and the CR (written after the action and the status), and the metrics.
    eventually("a ScaledDown Event", Duration::from_secs(10), || async {
        env.events().await.iter().any(|(r, _, _)| r == "ScaledDown").then_some(())
    })
    .await;
    let reasons = env.events().await;
    for (reason, on) in [("ResizedUp", "Deployment"), ("ScaledUp", "Deployment"), ("ScaledDown", "HybridAutoscaler")] {
        assert!(reasons.iter().any(|(r, k, _)| r == reason && k == on), "{reason} on {on}: {reasons:?}");
    }
    assert!(reasons.iter().any(|(r, _, _)| r == "PlacementUnavailable"), "{reasons:?}");
    let body = crate::http_get(http_addr, "/metrics").await;
    let workload = format!("workload=\"{ns}/web\"");
    // No flapping: one load step up and one down are one scale-out and one scale-in, every other period
    // decided nothing (or a resize).
    let decided = |kind: &str| {
        let series = format!("mlsched_autoscaler_decisions_total{{{workload},kind=\"{kind}\"}} ");
        body.lines().find_map(|l| l.strip_prefix(&series)).map_or(0.0, |v| v.trim().parse::<f64>().unwrap())
    };
    assert_eq!((decided("ScaleUp"), decided("ScaleDown"), decided("Recreate")), (1.0, 1.0, 0.0), "{body}");
    assert!(decided("Vertical") >= 1.0 && decided("None") > 10.0, "{body}");
    assert!(body.contains(&format!("mlsched_autoscaler_errors_total{{{workload},source=\"placement\"}}")), "{body}");
    assert!(
        !body.contains(&format!("mlsched_autoscaler_errors_total{{{workload},source=\"kube\"}}")),
        "the autoscaler's RBAC covers every call it made: {body}"
    );
    assert!(crate::http_get(http_addr, "/healthz").await.contains("ok"));

    crate::stop_autoscaler(stop_tx, autoscaler).await;
    env.finish(kubelet).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_spec_is_a_condition_not_a_crash() {
    const NODE: &str = "as-bad-node";
    let env = Env::new("as-bad-spec").await;
    let ns = env.ns.clone();
    env.node(NODE, 8, &[]).await;
    let deployments = env.deployments();
    env.create(&deployments, deployment(&ns, "good", 3, NODE)).await;
    let kubelet = Kubelet::start(&env, "good", 300);

    // No Placement API at all: the good workload scales horizontally only, which does not ask it to
    // scale in.
    let config = env.autoscaler_config("127.0.0.1:1".into());
    let (stop_tx, task, _) = crate::run_autoscaler(config, env.autoscaler_client().await).await;
    let has = env.autoscalers();
    // Listed before the good one, so each period meets the bad spec first.
    env.create_autoscaler(
        "bad",
        json!({"targetRef": {"kind": "Job", "name": "x"}, "maxReplicas": 3, "targetCPUUtilizationPercent": 70}),
    )
    .await;
    env.create_autoscaler(
        "good",
        json!({"targetRef": {"kind": "Deployment", "name": "good"}, "minReplicas": 1, "maxReplicas": 3,
               "mode": "HorizontalOnly", "targetCPUUtilizationPercent": 70,
               "scaleDownStabilizationSeconds": 0}),
    )
    .await;
    eventually("Valid=False", Duration::from_secs(30), || async {
        let s = has.get("bad").await.ok()?.status?;
        let c = s.conditions.iter().find(|c| c.type_ == "Valid")?;
        (c.status == "False" && c.reason == "InvalidSpec" && c.message.contains("targetRef.kind")).then_some(())
    })
    .await;
    // The other one keeps working: 300m in all against 70 % of 1 CPU is one replica.
    // (The status is written after the action: the first scale-in may come before any status.)
    crate::eventually_ha(&env, "good", "the good one scaled in to 1, Valid", Duration::from_secs(60), || async {
        let valid = condition(&env.status("good").await?, "Valid")?;
        (env.replicas("good").await == Some(1) && valid["status"] == "True").then_some(())
    })
    .await;
    let bad = env.status("bad").await.unwrap();
    assert_eq!(bad.pointer("/lastDecision/kind").and_then(Value::as_str), Some("None"), "{bad}");
    eventually("ScaledDown on the good one, InvalidSpec on the bad one", Duration::from_secs(10), || async {
        let events = env.events().await;
        let on = |reason: &str, name: &str| {
            events.iter().any(|(r, k, n)| r == reason && k == "HybridAutoscaler" && n == name)
        };
        (on("ScaledDown", "good") && on("InvalidSpec", "bad")).then_some(())
    })
    .await;
    assert!(!task.is_finished(), "the autoscaler is still running");

    crate::stop_autoscaler(stop_tx, task).await;
    env.finish(kubelet).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_api_outage_is_a_condition_and_scaling_resumes_after_it() {
    const NODE: &str = "as-metrics-node";
    let env = Env::new("as-metrics-outage").await;
    let ns = env.ns.clone();
    env.node(NODE, 16, &[]).await;
    env.create(&env.deployments(), deployment(&ns, "web", 2, NODE)).await;
    // 1200m against 70 % of 2 CPU: within the target, nothing to do.
    let kubelet = Kubelet::start(&env, "web", 1200);
    // HorizontalOnly asks the Placement API only to plan a scale-out.
    let placement = fake_placement(Arc::new(Fake::default()), NODE).await;
    let (stop_tx, task, _) =
        crate::run_autoscaler(env.autoscaler_config(placement), env.autoscaler_client().await).await;
    env.create_autoscaler(
        "web",
        json!({"targetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 2, "maxReplicas": 6,
               "mode": "HorizontalOnly", "targetCPUUtilizationPercent": 70}),
    )
    .await;
    let metrics_available = || async {
        let c = condition(&env.status("web").await?, "MetricsAvailable")?;
        Some((c["status"].as_str()? == "True", c["reason"].as_str()?.to_string(), c["message"].to_string()))
    };
    crate::eventually_ha(&env, "web", "MetricsAvailable=True", Duration::from_secs(30), || async {
        metrics_available().await.filter(|(up, _, _)| *up)
    })
    .await;

    // metrics-server stops answering: the sidecar's PodMetrics list gets no answer within its metrics timeout
    // (5 s). The load triples meanwhile.
    env.metrics.set_outage(env.cluster, true).await.expect("metrics.k8s.io down");
    kubelet.set_load(3600);
    let (_, reason, message) =
        crate::eventually_ha(&env, "web", "MetricsAvailable=False", Duration::from_secs(30), || async {
            metrics_available().await.filter(|(up, _, _)| !*up)
        })
        .await;
    assert_eq!(reason, "FailedGetPodMetrics", "{message}");
    assert!(message.contains("metrics.k8s.io"), "{message}");
    // Blind, it changes nothing, for as many periods as the outage lasts (the period is 0.2 s).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(env.replicas("web").await, Some(2), "no scaling without metrics");
    assert!(!task.is_finished(), "the autoscaler is still running");
    assert!(
        env.events().await.iter().any(|(r, k, n)| r == "FailedGetPodMetrics" && k == "HybridAutoscaler" && n == "web"),
        "a Warning Event says why"
    );

    // Back: the condition clears and the tripled load is met, 3600m / (70 % of 1 CPU) = 6 replicas.
    env.metrics.set_outage(env.cluster, false).await.expect("metrics.k8s.io back");
    crate::eventually_ha(&env, "web", "MetricsAvailable=True and 6 replicas", Duration::from_secs(60), || async {
        let up = metrics_available().await.is_some_and(|(up, _, _)| up);
        (up && env.replicas("web").await == Some(6)).then_some(())
    })
    .await;

    crate::stop_autoscaler(stop_tx, task).await;
    env.finish(kubelet).await;
}
