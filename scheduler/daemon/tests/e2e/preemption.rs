//! Preemption end to end on the real control plane: victims are evicted through the Eviction API (so the
//! disruption controller's PodDisruptionBudgets hold), the preemptor is nominated and waits for its
//! victims to terminate. A stand-in kubelet marks bound pods Running and Ready and finishes terminating
//! pods, as the kubelet of their node would.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use mlsched_tests::cluster::{LABEL_POD_GROUP, pending_pod};
use mlsched_tests::real::objects;
use mlsched_tests::testing::typed;
use serde_json::json;

use crate::cluster::{Env, until};
use crate::scheduler::spawn_scheduler;

pub(crate) const LOW: &str = "e2e-preempt-low";
const MID: &str = "e2e-preempt-mid";
pub(crate) const HIGH: &str = "e2e-preempt-high";
const HIGH_NEVER: &str = "e2e-preempt-high-never";

/// The priority classes of these tests (cluster-wide; created once, kept).
pub(crate) async fn priority_classes(admin: &Client) {
    let api: Api<PriorityClass> = Api::all(admin.clone());
    for (name, value, policy) in [
        (LOW, 10, "PreemptLowerPriority"),
        (MID, 100, "PreemptLowerPriority"),
        (HIGH, 1000, "PreemptLowerPriority"),
        (HIGH_NEVER, 1000, "Never"),
    ] {
        let class: PriorityClass = typed(json!({
            "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": name}, "value": value, "preemptionPolicy": policy,
        }));
        match api.create(&PostParams::default(), &class).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => panic!("PriorityClass {name}: {e}"),
        }
    }
}

/// A pod of ours asking `gpus` whole GPUs at `class`'s priority, in PodGroup `group` if given.
pub(crate) async fn pod(env: &Env, name: &str, gpus: u32, class: &str, group: Option<&str>) {
    let mut pod = pending_pod(&env.ns, name, gpus, "mlsched", group);
    pod["spec"]["priorityClassName"] = json!(class);
    env.create_pod(pod).await;
}

/// Stands in for the kubelets of the harness's nodes: bound pods become Running and Ready, and pods being
/// deleted are finished (grace period 0) and recorded.
struct Kubelet {
    finished: Arc<Mutex<BTreeSet<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Kubelet {
    fn start(admin: &Client, ns: &str) -> Kubelet {
        let finished = Arc::new(Mutex::new(BTreeSet::new()));
        let (client, ns, seen) = (admin.clone(), ns.to_string(), finished.clone());
        let task = tokio::spawn(async move {
            let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
            loop {
                for p in api.list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default() {
                    let name = p.name_any();
                    if p.metadata.deletion_timestamp.is_some() {
                        if objects::finish_terminating(&client, &ns, &name).await.is_ok() {
                            seen.lock().unwrap().insert(name);
                        }
                        continue;
                    }
                    let bound = p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
                    let running = p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
                    if bound && !running {
                        let status = json!({"status": {"phase": "Running", "conditions": [
                            {"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}]}});
                        let _ = api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status)).await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Kubelet { finished, task }
    }

    /// The pods finished so far, by name.
    fn finished(&self) -> BTreeSet<String> {
        self.finished.lock().unwrap().clone()
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Every `status.nominatedNodeName` a watch of pod `name` shows, in order, without repeats.
fn watch_nominations(env: &Env, name: &str) -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let api: Api<Pod> = Api::namespaced(env.admin.clone(), &env.ns);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let record = seen.clone();
    tokio::spawn(async move {
        let mut pods = std::pin::pin!(watcher::watcher(api, config).applied_objects());
        while let Some(Ok(pod)) = pods.next().await {
            let nominated = pod.status.and_then(|s| s.nominated_node_name).filter(|n| !n.is_empty());
            let mut seen = record.lock().unwrap();
            if let Some(node) = nominated
                && seen.last() != Some(&node)
            {
                seen.push(node);
            }
        }
    });
    seen
}

/// Stops the scheduler and the kubelet, then clears the test's objects.
async fn finish(env: Env, kubelet: Kubelet, stop: crate::Stopper, task: crate::SchedulerTask) {
    crate::stop_scheduler(Some(stop), task).await;
    drop(kubelet);
    env.finish().await;
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

async fn terminating(env: &Env, name: &str) -> bool {
    env.get_pod(name).await.is_none_or(|p| p.metadata.deletion_timestamp.is_some())
}

async fn condition_message(env: &Env, pod: &str) -> String {
    env.scheduled_condition(pod).await.map(|(_, _, m)| m).unwrap_or_default()
}

/// Two 8-GPU nodes, both held by the 2-pod low-priority gang `train`, scheduled by `mlsched`.
async fn full_of_train(env: &Env, prefix: &str) {
    priority_classes(&env.admin).await;
    env.node(&format!("{prefix}-a"), 8).await;
    env.node(&format!("{prefix}-b"), 8).await;
    env.pod_group("train", 2, None).await;
    for name in ["train-0", "train-1"] {
        pod(env, name, 8, LOW, Some("train")).await;
    }
    until("train bound", Duration::from_secs(20), || async { env.bound().await.len() == 2 }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_high_priority_pod_evicts_the_whole_lower_priority_gang_and_takes_its_nominated_node() {
    let env = Env::new("preempt-gang").await;
    let kubelet = Kubelet::start(&env.admin, &env.ns);
    let (stop, task, http) = spawn_scheduler(env.scheduler_clients().await, "").await;
    full_of_train(&env, "pe").await;

    // The API server clears `nominatedNodeName` at the bind (ClearingNominatedNodeNameAfterBinding): a
    // watch sees it set before.
    let nominations = watch_nominations(&env, "urgent");
    // One node would do, but half a gang is never a victim: both members go.
    pod(&env, "urgent", 8, HIGH, None).await;
    until("urgent bound", Duration::from_secs(30), || async { env.node_of("urgent").await.is_some() }).await;
    // The preemptor needs one node: it may start while the other victim still terminates.
    until("both victims gone", Duration::from_secs(10), || async {
        kubelet.finished() == names(&["train-0", "train-1"])
    })
    .await;
    let node = env.node_of("urgent").await;
    assert_eq!(nominations.lock().unwrap().clone(), Vec::from_iter(node), "nominated once, bound there");
    for victim in ["train-0", "train-1"] {
        let events = env.events(victim, "Preempted").await;
        assert_eq!(events.len(), 1, "{victim}: one Preempted Event");
        assert!(events[0].message.as_deref().unwrap_or_default().contains("Preempted by"), "{events:?}");
    }
    let metrics = crate::http_get(http, "/metrics").await;
    assert!(metrics.contains("mlsched_preemptions_total{result=\"evicted\"} 1"), "{metrics}");
    env.assert_no_overcommit().await;
    finish(env, kubelet, stop, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disruption_budget_that_forbids_the_eviction_keeps_the_victims_running() {
    let env = Env::new("preempt-pdb").await;
    let kubelet = Kubelet::start(&env.admin, &env.ns);
    let (stop, task, http) = spawn_scheduler(env.scheduler_clients().await, "").await;
    full_of_train(&env, "pp").await;
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(env.admin.clone(), &env.ns);
    let budget: PodDisruptionBudget = typed(json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "train"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {LABEL_POD_GROUP: "train"}}},
    }));
    budgets.create(&PostParams::default(), &budget).await.expect("PDB");
    // The disruption controller counts both members healthy (Running and Ready): no disruption allowed.
    until("budget observed", Duration::from_secs(30), || async {
        let status = budgets.get("train").await.ok().and_then(|b| b.status);
        status.is_some_and(|s| s.current_healthy == Some(2) && s.disruptions_allowed == Some(0))
    })
    .await;

    pod(&env, "urgent", 8, HIGH, None).await;
    until("the refused eviction reported", Duration::from_secs(30), || async {
        condition_message(&env, "urgent").await.contains("refused")
    })
    .await;
    let message = condition_message(&env, "urgent").await;
    assert!(message.contains("disruption budget"), "{message}");
    assert!(!terminating(&env, "train-0").await && !terminating(&env, "train-1").await);
    assert!(kubelet.finished().is_empty());
    assert!(env.events("train-0", "Preempted").await.is_empty(), "not preempted: its eviction was refused");
    assert_eq!(env.node_of("urgent").await, None);
    let metrics = crate::http_get(http, "/metrics").await;
    assert!(metrics.contains("mlsched_preemptions_total{result=\"refused\"}"), "{metrics}");
    assert!(!metrics.contains("mlsched_preemptions_total{result=\"evicted\"}"), "{metrics}");

    // The budget gone, the same preemption goes through.
    budgets.delete("train", &DeleteParams::default()).await.expect("PDB deleted");
    until("urgent bound", Duration::from_secs(30), || async { env.node_of("urgent").await.is_some() }).await;
    // The preemptor needs one node: it may start while the other victim still terminates.
    until("both victims gone", Duration::from_secs(10), || async {
        kubelet.finished() == names(&["train-0", "train-1"])
    })
    .await;
    env.assert_no_overcommit().await;
    finish(env, kubelet, stop, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preemption_policy_never_waits_without_evicting() {
    let env = Env::new("preempt-never").await;
    let kubelet = Kubelet::start(&env.admin, &env.ns);
    let (stop, task, _) = spawn_scheduler(env.scheduler_clients().await, "").await;
    full_of_train(&env, "pn").await;
    pod(&env, "polite", 8, HIGH_NEVER, None).await;
    until("polite told why it waits", Duration::from_secs(20), || async {
        condition_message(&env, "polite").await.contains("preemptionPolicy is Never")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(kubelet.finished().is_empty(), "nothing evicted");
    assert!(!terminating(&env, "train-0").await && !terminating(&env, "train-1").await);
    assert_eq!(env.node_of("polite").await, None);
    finish(env, kubelet, stop, task).await;
}

/// Three priorities: `filler` (low) and gang `a` (mid) run; gang `b` (high) evicts `a` only (the reprieve
/// spares `filler`, which it does not need). `a`, re-created as its job controller would, cannot evict `b`
/// (higher) and would not fit by evicting `filler` alone: it evicts nothing and waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gangs_at_three_priorities_do_not_evict_each_other_in_turn() {
    let env = Env::new("preempt-loop").await;
    priority_classes(&env.admin).await;
    let kubelet = Kubelet::start(&env.admin, &env.ns);
    let (stop, task, _) = spawn_scheduler(env.scheduler_clients().await, "").await;
    for node in ["pl-a", "pl-b", "pl-c"] {
        env.node(node, 8).await;
    }
    pod(&env, "filler", 8, LOW, None).await;
    until("filler bound", Duration::from_secs(20), || async { env.node_of("filler").await.is_some() }).await;
    env.pod_group("a", 2, None).await;
    env.pod_group("b", 2, None).await;
    for name in ["a-0", "a-1"] {
        pod(&env, name, 8, MID, Some("a")).await;
    }
    until("a bound", Duration::from_secs(20), || async { env.bound().await.len() == 3 }).await;

    for name in ["b-0", "b-1"] {
        pod(&env, name, 8, HIGH, Some("b")).await;
    }
    until("b bound", Duration::from_secs(30), || async {
        env.node_of("b-0").await.is_some() && env.node_of("b-1").await.is_some()
    })
    .await;
    assert_eq!(kubelet.finished(), names(&["a-0", "a-1"]), "the fewest: filler is spared");

    for name in ["a-0", "a-1"] {
        pod(&env, name, 8, MID, Some("a")).await;
    }
    until("a told it evicts nothing", Duration::from_secs(20), || async {
        condition_message(&env, "a-0").await.contains("would not fit even with all 1 lower-priority units evicted")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(kubelet.finished(), names(&["a-0", "a-1"]), "no second round of evictions");
    for name in ["b-0", "b-1", "filler"] {
        assert!(!terminating(&env, name).await, "{name} still runs");
    }
    assert_eq!(env.node_of("a-0").await, None);
    env.assert_no_overcommit().await;
    finish(env, kubelet, stop, task).await;
}
