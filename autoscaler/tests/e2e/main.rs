//! The autoscaler end to end on a real control plane (`mlsched_tests::real`: etcd, kube-apiserver and
//! kube-controller-manager; `metrics.k8s.io` from the harness's aggregated API server), alone and beside
//! the real scheduler. It connects as the `mlsched` ServiceAccount, so the published RBAC is what it gets.
//! One test binary for both: each Kubernetes-linked test binary costs a long release link.

mod autoscaler;
mod with_scheduler;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use mlsched_autoscaler::config::{Config, LeaderElectionConfig};
use mlsched_autoscaler::crd::HybridAutoscaler;
use mlsched_tests::metrics_api::ContainerUsage;
use mlsched_tests::real::metrics_server::{self, MetricsServer};
use mlsched_tests::real::{self, Cluster, objects};
use mlsched_tests::testing::{eventually, typed};
use serde_json::{Value, json};
use tokio::sync::oneshot;

type Stopper = oneshot::Sender<()>;
type AutoscalerTask = tokio::task::JoinHandle<anyhow::Result<()>>;

/// Runs the autoscaler library on the test's runtime, as its binary would, until the stopper fires;
/// returns once its HTTP endpoint listens.
async fn run_autoscaler(config: Config, client: Client) -> (Stopper, AutoscalerTask, SocketAddr) {
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (addr_tx, addr_rx) = oneshot::channel();
    let task = tokio::spawn(mlsched_autoscaler::run(
        config,
        client,
        async move {
            let _ = stop_rx.await;
        },
        Some(addr_tx),
    ));
    let http = addr_rx.await.expect("autoscaler listening");
    (stop_tx, task, http)
}

/// Sends the shutdown signal and requires a clean exit within 5 s.
async fn stop_autoscaler(stop: Stopper, task: AutoscalerTask) {
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap().unwrap();
}

/// One test's share of the control plane: its namespace, the cluster's nodes to itself, the metrics API.
struct Env {
    cluster: &'static Cluster,
    admin: Client,
    metrics: &'static MetricsServer,
    ns: String,
    _alone: tokio::sync::MutexGuard<'static, ()>,
}

impl Env {
    /// Takes the shared control plane and metrics server (starting them on first use) and the cluster to
    /// itself, removes the nodes of earlier tests and creates namespace `ns`.
    async fn new(ns: &str) -> Env {
        let cluster = tokio::task::spawn_blocking(real::shared).await.expect("control plane");
        let metrics = metrics_server::shared().await;
        let alone = real::exclusive().await;
        let admin = cluster.control_plane.admin_client().await;
        objects::delete_harness_nodes(&admin).await.expect("old nodes deleted");
        objects::create_namespace(&admin, ns).await.expect("namespace");
        Env { cluster, admin, metrics, ns: ns.into(), _alone: alone }
    }

    /// The autoscaler's configuration for this test: short period and history, this namespace only, no
    /// leader election (one replica).
    fn autoscaler_config(&self, placement_api: String) -> Config {
        Config {
            period_seconds: 0.2,
            placement_api,
            placement_timeout_seconds: 1.0,
            history_seconds: 2.0,
            listen_address: "127.0.0.1:0".into(),
            namespace: Some(self.ns.clone()),
            leader_election: LeaderElectionConfig { enabled: false, ..Default::default() },
            ..Config::default()
        }
    }

    /// A client as the `mlsched` ServiceAccount, which the autoscaler sidecar runs as.
    async fn autoscaler_client(&self) -> Client {
        self.cluster.scheduler_client().await
    }

    async fn node(&self, name: &str, cpu: u32, labels: &[(&str, &str)]) {
        let node = mlsched_tests::cluster::gpu_node(name, 8, cpu, 64, labels);
        objects::add_node(&self.admin, node).await.expect("node");
    }

    fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.admin.clone(), &self.ns)
    }

    fn autoscalers(&self) -> Api<HybridAutoscaler> {
        Api::namespaced(self.admin.clone(), &self.ns)
    }

    async fn create<K>(&self, api: &Api<K>, obj: Value) -> K
    where
        K: kube::Resource + Clone + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned,
    {
        api.create(&PostParams::default(), &typed(obj)).await.expect("created")
    }

    /// The workload's pods that are not being deleted, by name.
    async fn pods(&self, app: &str) -> Vec<Pod> {
        let api: Api<Pod> = Api::namespaced(self.admin.clone(), &self.ns);
        let lp = ListParams::default().labels(&format!("app={app}"));
        let mut pods: Vec<Pod> = api
            .list(&lp)
            .await
            .map(|l| l.items)
            .unwrap_or_default()
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        pods.sort_by_key(|p| p.name_any());
        pods
    }

    /// Creates HybridAutoscaler `name` in this namespace with `spec`.
    async fn create_autoscaler(&self, name: &str, spec: Value) -> HybridAutoscaler {
        let body = json!({
            "apiVersion": "autoscaling.mlsched.io/v1alpha1", "kind": "HybridAutoscaler",
            "metadata": {"name": name, "namespace": self.ns}, "spec": spec,
        });
        self.create(&self.autoscalers(), body).await
    }

    /// `spec.replicas` as the scale subresource serves it.
    async fn replicas(&self, deployment: &str) -> Option<i32> {
        self.deployments().get_scale(deployment).await.ok()?.spec?.replicas
    }

    /// The HybridAutoscaler's status as JSON.
    async fn status(&self, name: &str) -> Option<Value> {
        serde_json::to_value(self.autoscalers().get(name).await.ok()?.status?).ok()
    }

    /// (reason, kind and name of the regarding object) of this namespace's events.k8s.io Events.
    async fn events(&self) -> Vec<(String, String, String)> {
        let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(self.admin.clone(), &self.ns);
        let events = api.list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default();
        events
            .into_iter()
            .map(|e| {
                let regarding = e.regarding.unwrap_or_default();
                (e.reason.unwrap_or_default(), regarding.kind.unwrap_or_default(), regarding.name.unwrap_or_default())
            })
            .collect()
    }

    /// Deletes the Deployments and then the other pods while the kubelet stand-in still finishes them,
    /// then the namespace and the nodes.
    async fn finish(self, kubelet: Kubelet) {
        // Foreground: the ReplicaSets and their pods go before the Deployments, so that once the
        // Deployments are gone no controller re-creates a pod.
        let deployments = self.deployments();
        deployments.delete_collection(&DeleteParams::foreground(), &ListParams::default()).await.expect("deleted");
        eventually("the Deployments are gone", Duration::from_secs(60), || {
            let deployments = deployments.clone();
            async move { deployments.list(&ListParams::default()).await.ok().filter(|l| l.items.is_empty()) }
        })
        .await;
        let pods: Api<Pod> = Api::namespaced(self.admin.clone(), &self.ns);
        pods.delete_collection(&DeleteParams::default(), &ListParams::default()).await.expect("pods deleted");
        eventually("the namespace's pods are gone", Duration::from_secs(60), || {
            let pods = pods.clone();
            async move { pods.list(&ListParams::default()).await.ok().filter(|l| l.items.is_empty()) }
        })
        .await;
        kubelet.stop().await;
        objects::delete_namespace(&self.admin, &self.ns).await.expect("namespace deleted");
        objects::delete_harness_nodes(&self.admin).await.expect("nodes deleted");
    }
}

/// [`eventually`], with the HybridAutoscaler's status and the workload's pods in the message on a timeout:
/// what the autoscaler saw and decided is most of the story of a failure.
async fn eventually_ha<T, F, Fut>(env: &Env, ha: &str, what: &str, timeout: Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    match tokio::time::timeout(timeout, eventually(what, timeout * 2, check)).await {
        Ok(v) => v,
        Err(_) => {
            let status = env.status(ha).await.unwrap_or_default();
            let pods: Vec<(String, Option<String>, i64, bool)> =
                env.pods(ha).await.iter().map(|p| (p.name_any(), node_of(p), cpu_request(p), started(p))).collect();
            panic!("timed out after {timeout:?} waiting for: {what}\nstatus of {ha}: {status:#}\npods: {pods:?}")
        }
    }
}

/// What runs on the fake nodes, since no kubelet does: the kubelets, which start every pod bound to a node
/// (status Running and Ready, as a kubelet reports it), apply in-place resizes at once (the container
/// statuses' `resources` follow the spec) and finish terminating pods; and metrics-server, which has a
/// sample for each running pod of the workload (`app=<workload>`), the total load split evenly.
///
/// "Running" is what the autoscaler and the Deployment controller see of a started pod: the autoscaler
/// counts every pod that is not finished or being deleted, and needs a PodMetrics sample for each, which
/// metrics-server only has for running containers; the Deployment controller needs Ready pods to roll.
struct Kubelet {
    load: Arc<AtomicI64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Kubelet {
    fn start(env: &Env, workload: &str, load_milli: i64) -> Kubelet {
        let load = Arc::new(AtomicI64::new(load_milli));
        let stop = Arc::new(AtomicBool::new(false));
        let (admin, ns, metrics, workload) = (env.admin.clone(), env.ns.clone(), env.metrics, workload.to_string());
        let (l, s) = (load.clone(), stop.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::SeqCst) {
                kubelet_pass(&admin, &ns, metrics, &workload, l.load(Ordering::SeqCst)).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Kubelet { load, stop, task }
    }

    /// The workload's total CPU usage, in millicores.
    fn set_load(&self, milli: i64) {
        self.load.store(milli, Ordering::SeqCst);
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.task.await;
    }
}

fn container_started(c: &Container, pod: &Pod) -> bool {
    let statuses = pod.status.as_ref().and_then(|s| s.container_statuses.as_ref());
    statuses.into_iter().flatten().any(|s| {
        s.name == c.name
            && s.ready
            && s.state.as_ref().is_some_and(|st| st.running.is_some())
            && amounts(s.resources.as_ref()) == amounts(c.resources.as_ref())
    })
}

type Amounts = Option<std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>;

fn amounts(r: Option<&k8s_openapi::api::core::v1::ResourceRequirements>) -> (Amounts, Amounts) {
    (r.and_then(|r| r.requests.clone()), r.and_then(|r| r.limits.clone()))
}

fn started(pod: &Pod) -> bool {
    let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
    running && pod.spec.iter().flat_map(|s| &s.containers).all(|c| container_started(c, pod))
}

/// The status a kubelet reports for a started pod. Containers keep their start time across resizes;
/// `resources` are what the API server requires of a running container before it accepts a resize (a
/// kubelet with in-place resize reports them).
fn running_status(pod: &Pod) -> Value {
    let now =
        serde_json::to_value(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()))
            .expect("time");
    let old = pod.status.clone().unwrap_or_default();
    let started_at = |name: &str| -> Value {
        old.container_statuses
            .iter()
            .flatten()
            .find(|s| s.name == name)
            .and_then(|s| s.state.as_ref()?.running.as_ref()?.started_at.clone())
            .and_then(|t| serde_json::to_value(t).ok())
            .unwrap_or_else(|| now.clone())
    };
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let containers: Vec<Value> = pod
        .spec
        .iter()
        .flat_map(|s| &s.containers)
        .map(|c| {
            json!({
                "name": c.name, "image": c.image, "imageID": "", "containerID": format!("fake://{uid}/{}", c.name),
                "ready": true, "started": true, "restartCount": 0,
                "state": {"running": {"startedAt": started_at(&c.name)}},
                "resources": c.resources,
            })
        })
        .collect();
    let conditions = ["PodScheduled", "Initialized", "ContainersReady", "Ready"]
        .map(|t| json!({"type": t, "status": "True", "lastTransitionTime": now}));
    let start_time = old.start_time.and_then(|t| serde_json::to_value(t).ok()).unwrap_or_else(|| now.clone());
    json!({"status": {
        "phase": "Running",
        "startTime": start_time,
        "conditions": conditions,
        "containerStatuses": containers,
    }})
}

async fn kubelet_pass(admin: &Client, ns: &str, metrics: &MetricsServer, workload: &str, load: i64) {
    let api: Api<Pod> = Api::namespaced(admin.clone(), ns);
    let Ok(pods) = api.list(&ListParams::default()).await else { return };
    let mut running = Vec::new();
    for p in &pods.items {
        let name = p.name_any();
        if p.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_none() {
            continue;
        }
        if p.metadata.deletion_timestamp.is_some() {
            let _ = objects::finish_terminating(admin, ns, &name).await;
            continue;
        }
        if !started(p) {
            let _ = api.patch_status(&name, &PatchParams::default(), &Patch::Strategic(running_status(p))).await;
        }
        // A pod being resized keeps running, and keeps its share of the load: were it left out for one pass,
        // the others would report its load on top of theirs.
        let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
        if phase == Some("Running") && p.labels().get("app").map(String::as_str) == Some(workload) {
            running.push(p);
        }
    }
    let per = load / running.len().max(1) as i64;
    for p in running {
        let container = p.spec.as_ref().and_then(|s| s.containers.first()).map(|c| c.name.clone()).unwrap_or_default();
        let _ = metrics.set_pod_usage(ns, &p.name_any(), &[ContainerUsage::new(&container, per, 100 << 20)]);
    }
}

fn cpu_milli(q: &str) -> i64 {
    match q.strip_suffix('m') {
        Some(m) => m.parse().unwrap_or(0),
        None => q.parse::<f64>().map(|c| (c * 1000.0).round() as i64).unwrap_or(0),
    }
}

/// The CPU request of a pod's first container, in millicores.
fn cpu_request(p: &Pod) -> i64 {
    let c = p.spec.as_ref().and_then(|s| s.containers.first());
    let q = c.and_then(|c| c.resources.as_ref()?.requests.as_ref()?.get("cpu").map(|q| q.0.clone()));
    cpu_milli(&q.unwrap_or_default())
}

fn node_of(p: &Pod) -> Option<String> {
    p.spec.as_ref()?.node_name.clone()
}

/// A plain HTTP GET of the autoscaler's own endpoint; the whole answer.
async fn http_get(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}
