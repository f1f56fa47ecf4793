//! End to end: the real scheduler (`mlsched_scheduler::run`, with its Placement gRPC API on loopback) and the
//! real autoscaler (`mlsched_autoscaler::run`, pointed at that API), both in-process against the real
//! control plane, both as the `mlsched` ServiceAccount, with fake GPU nodes on a small fat tree.
//!
//! A 2-replica Deployment (`schedulerName: mlsched`) is bound by the scheduler in one rack. The load rises:
//! the pods grow in place (pod `resize`) while their node has room. Filler pods then take the rest of the
//! pods' node(s); the load rises again: no headroom, so the autoscaler scales out (scale subresource) and
//! the scheduler binds the new pods in the same rack. The load drops: after the scale-down window, back to
//! 2 replicas.
//!
//! The template carries `mlsched.io/near-workload` from the start, as the autoscaler's README advises: the
//! scale-out then only adds pods, and the grown pods stay where they are (the annotation added by the
//! autoscaler itself, and the rollout that follows, are `autoscaler.rs`'s case). kube-controller-manager
//! creates the pods; the kubelet stand-in of `main.rs` starts the bound ones and plays metrics-server.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_metrics::v1beta1::PodMetrics;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::ListParams;
use mlsched_proto::v1 as pb;
use mlsched_proto::v1::placement_client::PlacementClient;
use mlsched_tests::cluster::{LABEL_HOSTNAME, LABEL_RACK, LABEL_SPINE, node_name};
use mlsched_tests::testing::eventually;
use serde_json::{Value, json};

use crate::{Env, Kubelet, cpu_request, node_of};

/// CPU of every node, in millicores.
const NODE_CPU_MILLI: i64 = 8000;
/// The first node of the last rack (`rack-3`).
const ANCHOR_NODE: &str = "gpu-r3-n0";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn names(pods: &[Pod]) -> Vec<String> {
    pods.iter().map(|p| p.metadata.name.clone().unwrap_or_default()).collect()
}

async fn rack_of(env: &Env, node: &str) -> String {
    let n = Api::<Node>::all(env.admin.clone()).get(node).await.unwrap_or_else(|e| panic!("node {node}: {e}"));
    n.metadata.labels.unwrap_or_default().get(LABEL_RACK).cloned().unwrap_or_default()
}

/// A pod bound to `node` by name (not the workload's, not scheduled), requesting `cpu`.
fn bound_pod(ns: &str, name: &str, node: &str, cpu: &str, gpus: u32) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "c:1",
            "resources": {"requests": {"cpu": cpu, "memory": "1Gi", "nvidia.com/gpu": gpus.to_string()},
                          "limits": {"nvidia.com/gpu": gpus.to_string()}}}]},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resizes_in_place_then_scales_out_next_to_the_workload_through_the_real_scheduler() {
    let env = Env::new("as-sched").await;
    let ns = env.ns.clone();
    // 2 spines × 2 racks × 3 nodes of 8 CPUs.
    for s in 0..2u32 {
        for r in s * 2..s * 2 + 2 {
            for n in 0..3 {
                let (spine, rack) = (format!("spine-{s}"), format!("rack-{r}"));
                env.node(
                    &node_name(r, n),
                    (NODE_CPU_MILLI / 1000) as u32,
                    &[(LABEL_SPINE, &spine), (LABEL_RACK, &rack)],
                )
                .await;
            }
        }
    }

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
        env.cluster.scheduler_client().await,
        async move {
            let _ = sched_stop_rx.await;
        },
        Some(sched_addr_tx),
    ));
    sched_addr_rx.await.expect("scheduler listening");

    // An anchor pod on the first node of the last rack: best fit puts the workload's first pods next to it,
    // so they do not sit in the rack a first-node tie-break would pick anyway.
    let pods_api: Api<Pod> = Api::namespaced(env.admin.clone(), &ns);
    env.create(&pods_api, bound_pod(&ns, "anchor", ANCHOR_NODE, "1", 1)).await;
    let kubelet = Kubelet::start(&env, "web", 600);

    // The workload: 2 replicas of 1 CPU for mlsched.
    let deployments = env.deployments();
    env.create(
        &deployments,
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}, "annotations": {"mlsched.io/near-workload": "app=web"}},
                    "spec": {"schedulerName": "mlsched", "containers": [{"name": "app", "image": "web:1",
                        "resources": {"requests": {"cpu": "1", "memory": "256Mi"}}}]}
                }
            }
        }),
    )
    .await;

    // The scheduler binds both pods, in one rack; the kubelet stand-in starts them.
    let first: Vec<Pod> = eventually("2 web pods bound and running", Duration::from_secs(60), || async {
        let pods = env.pods("web").await;
        (pods.len() == 2 && pods.iter().all(crate::started)).then_some(pods)
    })
    .await;
    let first_names = names(&first);
    let first_nodes: Vec<String> = first.iter().filter_map(node_of).collect();
    let rack = rack_of(&env, &first_nodes[0]).await;
    assert_eq!(rack_of(&env, &first_nodes[1]).await, rack, "initial pods on {first_nodes:?}");
    assert_eq!(rack, "rack-3", "best fit next to the anchor: {first_nodes:?}");

    // The autoscaler, pointed at the scheduler's Placement API; short period and windows.
    let config = env.autoscaler_config(format!("127.0.0.1:{port}"));
    let (as_stop, autoscaler, _) = crate::run_autoscaler(config, env.autoscaler_client().await).await;
    env.create_autoscaler(
        "web",
        json!({"targetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 2, "maxReplicas": 6,
               "mode": "Hybrid", "targetCPUUtilizationPercent": 70,
               "scaleUpStabilizationSeconds": 0, "scaleDownStabilizationSeconds": 2}),
    )
    .await;
    crate::eventually_ha(&env, "web", "a first decision", Duration::from_secs(30), || async {
        let s = env.status("web").await?;
        (s.pointer("/lastDecision/kind")? == "None").then_some(())
    })
    .await;

    // 1. 900m per pod against 1 CPU at a 70 % target; the node has room (headroom from the real scheduler):
    //    both pods grow in place, replicas unchanged.
    kubelet.set_load(1800);
    crate::eventually_ha(&env, "web", "in-place resize of both pods", Duration::from_secs(30), || async {
        let pods = env.pods("web").await;
        (pods.len() == 2 && pods.iter().all(|p| cpu_request(p) > 1000)).then_some(())
    })
    .await;
    assert_eq!(env.replicas("web").await, Some(2));
    let grown = env.pods("web").await;
    assert_eq!(names(&grown), first_names, "resized, not recreated");
    assert_eq!(grown.iter().filter_map(node_of).collect::<Vec<_>>(), first_nodes, "not moved");

    // 2. Filler pods (bound, not the workload's) take every CPU left on the pods' nodes; the load rises: no
    //    headroom, so the autoscaler scales out and the scheduler places the new pods in the same rack.
    let mut used: BTreeMap<String, i64> = first_nodes.iter().map(|n| (n.clone(), 0)).collect();
    for p in pods_api.list(&ListParams::default()).await.unwrap() {
        if let Some(cpu) = node_of(&p).and_then(|n| used.get_mut(&n)) {
            *cpu += cpu_request(&p);
        }
    }
    // The scheduler learns of the fillers from its watch: raise the load only once its Placement API (what
    // the autoscaler asks) has taken them off the nodes' free CPU, or the pods would just grow again.
    let placement = PlacementClient::connect(format!("http://127.0.0.1:{port}")).await.expect("Placement API");
    let refs: Vec<pb::PodRef> =
        first_names.iter().map(|n| pb::PodRef { namespace: ns.clone(), name: n.clone() }).collect();
    let nodes = used.len();
    let free_cpu = || {
        let (mut placement, pods) = (placement.clone(), refs.clone());
        async move {
            let answer = placement.node_headroom(pb::NodeHeadroomRequest { pods }).await.ok()?.into_inner();
            let free: BTreeMap<String, i64> =
                answer.pods.iter().filter_map(|p| Some((p.node.clone(), p.free.as_ref()?.cpu_milli))).collect();
            (free.len() == nodes).then_some(free)
        }
    };
    let before = eventually("the scheduler's headroom", Duration::from_secs(10), &free_cpu).await;
    let mut fillers = BTreeMap::new();
    for (i, (node, cpu)) in used.iter().enumerate() {
        let filler = NODE_CPU_MILLI - cpu;
        env.create(&pods_api, bound_pod(&ns, &format!("filler-{i}"), node, &format!("{filler}m"), 0)).await;
        fillers.insert(node.clone(), filler);
    }
    eventually("the scheduler books the fillers", Duration::from_secs(30), || async {
        let free = free_cpu().await?;
        free.iter().all(|(node, f)| *f <= before[node] - fillers[node]).then_some(())
    })
    .await;
    // 1400m per pod; 4 replicas at 70 % of the 1 CPU baseline. The stand-in metrics-server updates the pods
    // one by one, and a period that reads 900m + 1400m still asks for 4, never 3 first.
    kubelet.set_load(2800);
    let scaled_at = crate::eventually_ha(&env, "web", "scale-out to 4", Duration::from_secs(30), || async {
        (env.replicas("web").await == Some(4)).then(Instant::now)
    })
    .await;
    let new: Vec<Pod> =
        crate::eventually_ha(&env, "web", "the 2 new pods bound and running", Duration::from_secs(60), || async {
            let pods = env.pods("web").await;
            let new: Vec<Pod> =
                pods.into_iter().filter(|p| !first_names.contains(p.metadata.name.as_ref().unwrap())).collect();
            (new.len() == 2 && new.iter().all(crate::started)).then_some(new)
        })
        .await;
    let new_nodes: Vec<String> = new.iter().filter_map(node_of).collect();
    let now = env.pods("web").await;
    let existing: Vec<&Pod> = now.iter().filter(|p| first_names.contains(p.metadata.name.as_ref().unwrap())).collect();
    let grown: Vec<i64> = existing.iter().map(|p| cpu_request(p)).collect();
    eprintln!("rack {rack}: existing on {first_nodes:?} (grown to {grown:?}m), new on {new_nodes:?}");
    assert_eq!(existing.len(), 2, "the grown pods stay");
    assert!(grown.iter().all(|&c| c > 1000), "{grown:?}");
    for node in &new_nodes {
        assert!(!used.contains_key(node), "{node} was full: {new_nodes:?} vs {used:?}");
        assert_eq!(rack_of(&env, node).await, rack, "new pods on {new_nodes:?}, existing in {rack}");
    }
    let s = env.status("web").await.unwrap();
    let planned: Vec<String> = s["placement"]["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["node"].as_str().map(str::to_string))
        .collect();
    assert_eq!(planned.len(), 2, "{s}");
    for node in &planned {
        assert_eq!(rack_of(&env, node).await, rack, "planned {node}: {s}");
    }

    // 3. The load drops: back to 2 replicas, only after the 2 s scale-down window (the autoscaler has seen
    //    the 4 pods with their metrics first).
    let metrics: Api<PodMetrics> = Api::namespaced(env.admin.clone(), &ns);
    eventually("PodMetrics of the 4 pods", Duration::from_secs(30), || async {
        let l = metrics.list(&ListParams::default().labels("app=web")).await.ok()?;
        (l.items.len() == 4).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(env.replicas("web").await, Some(4));
    kubelet.set_load(400);
    let dropped = Instant::now();
    let down_at = crate::eventually_ha(&env, "web", "scale-in to 2", Duration::from_secs(30), || async {
        (env.replicas("web").await == Some(2)).then(Instant::now)
    })
    .await;
    assert!(down_at - dropped >= Duration::from_millis(1500), "scaled in after {:?}", down_at - dropped);
    assert!(down_at > scaled_at);
    eventually("the extra pods are gone", Duration::from_secs(30), || async {
        (env.pods("web").await.len() == 2).then_some(())
    })
    .await;

    crate::stop_autoscaler(as_stop, autoscaler).await;
    let _ = sched_stop.send(());
    tokio::time::timeout(Duration::from_secs(10), scheduler).await.unwrap().unwrap().unwrap();
    env.finish(kubelet).await;
}
