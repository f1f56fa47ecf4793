//! End to end: the real scheduler (`mlsched_scheduler::run`, with its Placement gRPC API on loopback) and the
//! real autoscaler (`mlsched_autoscaler::run`, pointed at that API), both in-process against the API server
//! double with a seeded GPU/topology cluster.
//!
//! A 2-replica Deployment (`schedulerName: mlsched`) is bound by the scheduler in one rack. The load rises:
//! the pods grow in place (pod `resize`) while their node has room. Filler pods then take the rest of the
//! pods' node(s); the load rises again: no headroom, so the autoscaler scales out (scale subresource) with
//! `mlsched.io/near-workload` on the template, and the scheduler binds the new pods in the same rack. The
//! load drops: after the scale-down window, back to 2 replicas.
//!
//! A small "controller" task stands in for the Deployment controller (the double runs none): it creates
//! *pending* pods from the template (so the scheduler binds them), marks bound pods Running, deletes the
//! highest-numbered pods on scale-in, and plays metrics-server (the total load split evenly over the
//! running pods).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::PostParams;
use mlsched_autoscaler::config::{Config, LeaderElectionConfig};
use mlsched_autoscaler::crd::HybridAutoscaler;
use mlsched_tests::cluster::{GpuClusterSpec, LABEL_HOSTNAME, LABEL_RACK, LABEL_SPINE, seed_gpu_cluster};
use mlsched_tests::metrics_api::{ContainerUsage, clear_pod_usage, set_pod_usage};
use mlsched_tests::state::StateHandle;
use mlsched_tests::testing::eventually;
use mlsched_tests::{ApiServer, RequestMatch, ResourceKind, Verb};
use serde_json::{Value, json};

const NS: &str = "default";
/// CPU of every seeded node, in millicores.
const NODE_CPU_MILLI: i64 = 8000;
/// The first node of the last rack (`rack-3`).
const ANCHOR_NODE: &str = "gpu-r3-n0";

fn ha_kind() -> ResourceKind {
    ResourceKind::new("autoscaling.mlsched.io", "v1alpha1", "hybridautoscalers", "HybridAutoscaler", true)
        .with_status()
        .custom()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn cpu_milli(q: &str) -> i64 {
    match q.strip_suffix('m') {
        Some(m) => m.parse().unwrap_or(0),
        None => q.parse::<f64>().map(|c| (c * 1000.0).round() as i64).unwrap_or(0),
    }
}

fn cpu_request(pod: &Value) -> i64 {
    cpu_milli(pod.pointer("/spec/containers/0/resources/requests/cpu").and_then(Value::as_str).unwrap_or(""))
}

fn name_of(v: &Value) -> String {
    v.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string()
}

/// The `web-N` pods, by N.
fn web_pods(state: &StateHandle) -> BTreeMap<u64, Value> {
    let kind = state.kind("", "pods").unwrap();
    state
        .list_values(&kind, Some(NS))
        .into_iter()
        .filter_map(|p| name_of(&p).strip_prefix("web-").and_then(|n| n.parse().ok()).map(|n| (n, p)))
        .collect()
}

fn node_of(pod: &Value) -> Option<String> {
    pod.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty()).map(str::to_string)
}

fn label_of(state: &StateHandle, node: &str, key: &str) -> String {
    let kind = state.kind("", "nodes").unwrap();
    let n = state.get_value(&kind, "", node).unwrap_or_else(|| panic!("node {node}"));
    n.pointer("/metadata/labels").and_then(|l| l.get(key)).and_then(Value::as_str).unwrap_or("").to_string()
}

fn rack_of(state: &StateHandle, node: &str) -> String {
    label_of(state, node, LABEL_RACK)
}

/// One pass of the stand-in Deployment controller + metrics-server.
fn reconcile_web(state: &StateHandle, load: i64) {
    let deployments = state.kind("apps", "deployments").unwrap();
    let pods_kind = state.kind("", "pods").unwrap();
    let Some(dep) = state.get_value(&deployments, NS, "web") else { return };
    let want = dep.pointer("/spec/replicas").and_then(Value::as_u64).unwrap_or(1) as usize;
    let template = dep.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let mut pods = web_pods(state);
    while pods.len() > want {
        let (_, p) = pods.pop_last().unwrap();
        let _ = state.delete_value(&pods_kind, NS, &name_of(&p));
        clear_pod_usage(state, NS, &name_of(&p));
    }
    let mut next = pods.last_key_value().map_or(0, |(n, _)| n + 1);
    while pods.len() < want {
        let name = format!("web-{next}");
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": name, "namespace": NS,
                "labels": template.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
                "annotations": template.pointer("/metadata/annotations").cloned().unwrap_or(json!({})),
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                    "uid": dep.pointer("/metadata/uid").cloned().unwrap_or(json!("")), "controller": true}],
            },
            "spec": template.get("spec").cloned().unwrap_or(json!({})),
            "status": {"phase": "Pending"},
        });
        if let Ok(p) = state.create_value(&pods_kind, NS, pod) {
            pods.insert(next, p);
        }
        next += 1;
    }
    // The kubelet: bound pods start.
    for p in pods.values() {
        let running = p.pointer("/status/phase").and_then(Value::as_str) == Some("Running");
        if node_of(p).is_some() && !running {
            let _ = state.modify::<Pod>(NS, &name_of(p), |pod| {
                let st = pod.status.get_or_insert_with(Default::default);
                st.phase = Some("Running".into());
            });
        }
    }
    let running: Vec<String> = web_pods(state)
        .values()
        .filter(|p| p.pointer("/status/phase").and_then(Value::as_str) == Some("Running"))
        .map(name_of)
        .collect();
    let per = load / running.len().max(1) as i64;
    for name in &running {
        let _ = set_pod_usage(state, NS, name, &[ContainerUsage::new("app", per, 100 << 20)]);
    }
    let dep = state.get_value(&deployments, NS, "web").unwrap_or(dep);
    if dep.pointer("/status/replicas").and_then(Value::as_u64) != Some(want as u64) {
        let mut dep = dep;
        dep["status"]["replicas"] = json!(want);
        let _ = state.replace_value(&deployments, NS, "web", dep);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resizes_in_place_then_scales_out_next_to_the_workload_through_the_real_scheduler() {
    let server = ApiServer::builder().with_kind(ha_kind()).serve().await.unwrap();
    let state = server.state().clone();
    let client = server.client();
    // 2 spines × 2 racks × 3 nodes of 8 CPUs.
    let spec = GpuClusterSpec {
        spines: 2,
        racks_per_spine: 2,
        nodes_per_rack: 3,
        gpus_per_node: 8,
        cpu_per_node: (NODE_CPU_MILLI / 1000) as u32,
        memory_gib_per_node: 64,
    };
    seed_gpu_cluster(&state, &spec).unwrap();

    // The scheduler, with its Placement API on a free loopback port.
    let port = free_port();
    let yaml = format!(
        "profiles:\n  - schedulerName: mlsched\n    policy: bestfit\nlistenAddress: 127.0.0.1:0\n\
         topologyLevels: [{LABEL_SPINE}, {LABEL_RACK}, {LABEL_HOSTNAME}]\n\
         placementApi: 127.0.0.1:{port}\nbackoff: {{initialSeconds: 0.2, maxSeconds: 1}}\n\
         leaderElection: {{enabled: false}}\n"
    );
    let sched_config = mlsched_scheduler::Config::from_yaml(&yaml).expect("scheduler config");
    let (sched_stop, sched_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (sched_addr_tx, sched_addr_rx) = tokio::sync::oneshot::channel();
    let scheduler = tokio::spawn(mlsched_scheduler::run(
        sched_config,
        client.clone(),
        async move {
            let _ = sched_stop_rx.await;
        },
        Some(sched_addr_tx),
    ));
    sched_addr_rx.await.expect("scheduler listening");

    // An anchor pod on the first node of the last rack: best fit puts the workload's first pods next to it,
    // so they do not sit in the rack a first-node tie-break would pick anyway.
    let pods_kind = state.kind("", "pods").unwrap();
    let anchor = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "anchor", "namespace": NS, "labels": {"app": "anchor"}},
        "spec": {"nodeName": ANCHOR_NODE, "containers": [{"name": "a", "image": "a:1",
            "resources": {"requests": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "1"},
                          "limits": {"nvidia.com/gpu": "1"}}}]},
        "status": {"phase": "Running"},
    });
    state.create_value(&pods_kind, NS, anchor).unwrap();

    // The workload: 2 replicas of 1 CPU for mlsched, no near-workload annotation yet.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let dep: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"schedulerName": "mlsched", "containers": [{"name": "app", "image": "web:1",
                    "resources": {"requests": {"cpu": "1", "memory": "256Mi"}}}]}
            }
        }
    }))
    .unwrap();
    deployments.create(&PostParams::default(), &dep).await.unwrap();
    let load = Arc::new(AtomicI64::new(600));
    let stop = Arc::new(AtomicBool::new(false));
    let (st, ld, sp) = (state.clone(), load.clone(), stop.clone());
    let controller = tokio::spawn(async move {
        while !sp.load(Ordering::SeqCst) {
            reconcile_web(&st, ld.load(Ordering::SeqCst));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });

    // The scheduler binds both pods, in one rack.
    let first_nodes: Vec<String> = eventually("web-0 and web-1 bound", Duration::from_secs(10), || async {
        let pods = web_pods(&state);
        let nodes: Vec<String> = pods.values().filter_map(node_of).collect();
        (pods.len() == 2 && nodes.len() == 2).then_some(nodes)
    })
    .await;
    let rack = rack_of(&state, &first_nodes[0]);
    assert_eq!(rack_of(&state, &first_nodes[1]), rack, "initial pods on {first_nodes:?}");
    assert_eq!(rack, "rack-3", "best fit next to the anchor: {first_nodes:?}");

    // The autoscaler, pointed at the scheduler's Placement API; short period and windows.
    let config = Config {
        period_seconds: 0.2,
        placement_api: format!("127.0.0.1:{port}"),
        placement_timeout_seconds: 1.0,
        history_seconds: 2.0,
        listen_address: "127.0.0.1:0".into(),
        leader_election: LeaderElectionConfig { enabled: false, ..Default::default() },
        ..Config::default()
    };
    let (as_stop, autoscaler, _) = crate::run_autoscaler(config, client.clone()).await;
    let has: Api<HybridAutoscaler> = Api::namespaced(client.clone(), NS);
    let ha: HybridAutoscaler = serde_json::from_value(json!({
        "apiVersion": "autoscaling.mlsched.io/v1alpha1", "kind": "HybridAutoscaler",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"targetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 2, "maxReplicas": 6,
                 "mode": "Hybrid", "targetCPUUtilizationPercent": 70,
                 "scaleUpStabilizationSeconds": 0, "scaleDownStabilizationSeconds": 2}
    }))
    .unwrap();
    has.create(&PostParams::default(), &ha).await.unwrap();
    let last_decision = || {
        let has = has.clone();
        async move {
            let s = serde_json::to_value(has.get("web").await.ok()?.status?).ok()?;
            s.pointer("/lastDecision/kind").and_then(Value::as_str).map(str::to_string)
        }
    };
    eventually("a first decision", Duration::from_secs(10), || async {
        last_decision().await.filter(|k| k == "None").map(|_| ())
    })
    .await;

    // 1. 900m per pod against 1 CPU at a 70 % target; the node has room (headroom from the real scheduler):
    //    both pods grow in place, replicas unchanged.
    load.store(1800, Ordering::SeqCst);
    eventually("in-place resize of both pods", Duration::from_secs(10), || async {
        let pods = web_pods(&state);
        (pods.len() == 2 && pods.values().all(|p| cpu_request(p) > 1000)).then_some(())
    })
    .await;
    assert!(server.faults().count(&RequestMatch::new(Verb::Patch, "pods").subresource("resize"), Some(200)) >= 1);
    assert_eq!(deployments.get("web").await.unwrap().spec.replicas, Some(2));
    assert_eq!(web_pods(&state).values().filter_map(node_of).collect::<Vec<_>>(), first_nodes, "not moved");

    // 2. Filler pods (bound, not the workload's) take every CPU left on the pods' nodes; the load rises: no
    //    headroom, so the autoscaler scales out and the scheduler places the new pods in the same rack.
    let mut used: BTreeMap<String, i64> = BTreeMap::new();
    for p in web_pods(&state).values() {
        used.insert(node_of(p).unwrap(), 0);
    }
    for p in state.list_values(&pods_kind, Some(NS)) {
        if let Some(cpu) = node_of(&p).and_then(|n| used.get_mut(&n)) {
            *cpu += cpu_request(&p);
        }
    }
    for (i, (node, cpu)) in used.iter().enumerate() {
        let filler = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("filler-{i}"), "namespace": NS, "labels": {"app": "filler"}},
            "spec": {"nodeName": node, "containers": [{"name": "f", "image": "f:1",
                "resources": {"requests": {"cpu": format!("{}m", NODE_CPU_MILLI - cpu), "memory": "1Gi"}}}]},
            "status": {"phase": "Running"},
        });
        state.create_value(&pods_kind, NS, filler).unwrap();
    }
    load.store(2400, Ordering::SeqCst);
    let scaled_at = eventually("scale-out to 4", Duration::from_secs(10), || async {
        let d = deployments.get("web").await.ok()?;
        (d.spec.replicas == Some(4)).then(Instant::now)
    })
    .await;
    let d = deployments.get("web").await.unwrap();
    let ann = d.spec.template.metadata.unwrap().annotations.unwrap_or_default();
    assert_eq!(ann.get("mlsched.io/near-workload").map(String::as_str), Some("app=web"));
    assert!(server.faults().count(&RequestMatch::new(Verb::Patch, "deployments").subresource("scale"), Some(200)) >= 1);
    let new_nodes: Vec<String> = eventually("web-2 and web-3 bound", Duration::from_secs(10), || async {
        let pods = web_pods(&state);
        let nodes: Vec<String> = [2, 3].iter().filter_map(|n| pods.get(n).and_then(node_of)).collect();
        (nodes.len() == 2).then_some(nodes)
    })
    .await;
    let grown: Vec<i64> = web_pods(&state).values().take(2).map(cpu_request).collect();
    eprintln!("rack {rack}: existing on {first_nodes:?} (grown to {grown:?}m), new on {new_nodes:?}");
    for node in &new_nodes {
        assert!(!used.contains_key(node), "{node} was full: {new_nodes:?} vs {used:?}");
        assert_eq!(rack_of(&state, node), rack, "new pods on {new_nodes:?}, existing in {rack}");
    }
    let s = serde_json::to_value(has.get("web").await.unwrap().status.unwrap()).unwrap();
    let planned: Vec<&str> =
        s["placement"]["replicas"].as_array().unwrap().iter().filter_map(|r| r["node"].as_str()).collect();
    assert_eq!(planned.len(), 2, "{s}");
    for node in planned {
        assert_eq!(rack_of(&state, node), rack, "planned {node}: {s}");
    }

    // 3. The load drops: back to 2 replicas, only after the 2 s scale-down window.
    eventually("the new pods have metrics", Duration::from_secs(10), || async {
        let kind = state.kind("metrics.k8s.io", "pods")?;
        state.get_value(&kind, NS, "web-3").map(|_| ())
    })
    .await;
    load.store(400, Ordering::SeqCst);
    let dropped = Instant::now();
    let down_at = eventually("scale-in to 2", Duration::from_secs(15), || async {
        let d = deployments.get("web").await.ok()?;
        (d.spec.replicas == Some(2)).then(Instant::now)
    })
    .await;
    assert!(down_at - dropped >= Duration::from_millis(1500), "scaled in after {:?}", down_at - dropped);
    assert!(down_at > scaled_at);
    eventually("the extra pods are gone", Duration::from_secs(5), || async {
        let pods = web_pods(&state);
        (pods.keys().copied().collect::<Vec<_>>() == [0, 1]).then_some(())
    })
    .await;

    stop.store(true, Ordering::SeqCst);
    let _ = controller.await;
    crate::stop_autoscaler(as_stop, autoscaler).await;
    let _ = sched_stop.send(());
    tokio::time::timeout(Duration::from_secs(10), scheduler).await.unwrap().unwrap().unwrap();
    server.shutdown().await;
}
