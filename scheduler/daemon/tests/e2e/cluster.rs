//! One test's share of the real control plane (`mlsched_tests::real`): its own namespace and nodes, the
//! cluster to itself while it runs a scheduler, and the checks every scenario ends with.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Binding, Event, Node, Pod};
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::{Client, ResourceExt};
use mlsched_tests::cluster::{gpu_node, pending_pod, pod_group};
use mlsched_tests::podgroup_api_resource;
use mlsched_tests::real::{self, Cluster, objects};
use mlsched_tests::testing::typed;
use serde_json::{Value, json};

pub struct Env {
    pub cluster: &'static Cluster,
    pub admin: Client,
    pub ns: String,
    _alone: tokio::sync::MutexGuard<'static, ()>,
}

impl Env {
    /// Takes the shared control plane (starting it on first use), removes the nodes and namespaces of earlier tests (also of one that failed half-way) and
    /// creates namespace `ns`.
    pub async fn new(ns: &str) -> Env {
        let cluster = tokio::task::spawn_blocking(real::shared).await.expect("control plane");
        let alone = real::exclusive().await;
        let admin = cluster.control_plane.admin_client().await;
        objects::delete_harness_nodes(&admin).await.expect("old nodes deleted");
        objects::delete_harness_namespaces(&admin).await.expect("old namespaces deleted");
        objects::create_namespace(&admin, ns).await.expect("namespace");
        Env { cluster, admin, ns: ns.into(), _alone: alone }
    }

    /// A client as the scheduler's ServiceAccount.
    pub async fn scheduler_client(&self) -> Client {
        self.cluster.scheduler_client().await
    }

    /// The scheduler's clients as its binary builds them: evictions without the client's own retries.
    pub async fn scheduler_clients(&self) -> mlsched_scheduler::Clients {
        let mut config = self.cluster.scheduler_config().await;
        config.default_retry = false;
        let evictions = Client::try_from(config).expect("eviction client");
        mlsched_scheduler::Clients { api: self.scheduler_client().await, evictions }
    }

    pub async fn node(&self, name: &str, gpus: u32) {
        self.node_labeled(name, gpus, &[]).await;
    }

    pub async fn node_labeled(&self, name: &str, gpus: u32, labels: &[(&str, &str)]) {
        objects::add_node(&self.admin, gpu_node(name, gpus, 64, 512, labels)).await.expect("node");
    }

    pub async fn pod(&self, name: &str, gpus: u32, group: Option<&str>) {
        self.create_pod(pending_pod(&self.ns, name, gpus, "mlsched", group)).await;
    }

    pub async fn create_pod(&self, pod: Value) {
        let api: Api<Pod> = Api::namespaced(self.admin.clone(), &self.ns);
        api.create(&PostParams::default(), &typed(pod)).await.expect("pod created");
    }

    pub async fn pod_group(&self, name: &str, min_member: u32, timeout_seconds: Option<u32>) {
        self.create_pod_group(pod_group(&self.ns, name, min_member, timeout_seconds)).await;
    }

    /// Creates a coscheduling PodGroup written out in full (`mlsched_tests::cluster::pod_group`, amended).
    pub async fn create_pod_group(&self, group: Value) {
        let api: Api<DynamicObject> = Api::namespaced_with(self.admin.clone(), &self.ns, &podgroup_api_resource());
        api.create(&PostParams::default(), &typed(group)).await.expect("PodGroup created");
    }

    /// Binds `pod` to `node` through the `binding` subresource, as a scheduler does.
    pub async fn bind(&self, pod: &str, node: &str) {
        let binding: Binding = typed(json!({
            "apiVersion": "v1", "kind": "Binding", "metadata": {"name": pod, "namespace": self.ns},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}
        }));
        let pods: Api<Pod> = Api::namespaced(self.admin.clone(), &self.ns);
        pods.create_subresource::<_, Value>("binding", pod, &PostParams::default(), &binding)
            .await
            .unwrap_or_else(|e| panic!("binding {pod} to {node}: {e}"));
    }

    pub async fn pod_group_status(&self, name: &str) -> Value {
        let api: Api<DynamicObject> = Api::namespaced_with(self.admin.clone(), &self.ns, &podgroup_api_resource());
        api.get(name).await.map(|g| g.data["status"].clone()).unwrap_or(Value::Null)
    }

    pub async fn get_pod(&self, name: &str) -> Option<Pod> {
        Api::<Pod>::namespaced(self.admin.clone(), &self.ns).get_opt(name).await.expect("pod read")
    }

    pub async fn node_of(&self, pod: &str) -> Option<String> {
        self.get_pod(pod).await.and_then(|p| p.spec?.node_name)
    }

    /// Pod name → node, for the bound pods of this test's namespace.
    pub async fn bound(&self) -> BTreeMap<String, String> {
        let api: Api<Pod> = Api::namespaced(self.admin.clone(), &self.ns);
        let pods = api.list(&ListParams::default()).await.expect("pods listed");
        pods.into_iter().filter_map(|p| Some((p.name_any(), p.spec?.node_name?))).collect()
    }

    /// The `PodScheduled` condition of a pod: (status, reason, message).
    pub async fn scheduled_condition(&self, pod: &str) -> Option<(String, String, String)> {
        let conditions = self.get_pod(pod).await?.status?.conditions?;
        let c = conditions.into_iter().find(|c| c.type_ == "PodScheduled")?;
        Some((c.status, c.reason.unwrap_or_default(), c.message.unwrap_or_default()))
    }

    /// core/v1 Events of this namespace about `object` (any kind) with `reason`.
    pub async fn events(&self, object: &str, reason: &str) -> Vec<Event> {
        let api: Api<Event> = Api::namespaced(self.admin.clone(), &self.ns);
        let events = api.list(&ListParams::default()).await.expect("events listed");
        events
            .into_iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(object) && e.reason.as_deref() == Some(reason))
            .collect()
    }

    /// Fails if the GPUs requested by the pods bound to any node exceed what the node offers.
    pub async fn assert_no_overcommit(&self) {
        let over = self.overcommitted().await.expect("pods and nodes listed");
        assert!(over.is_empty(), "{}", over.join("\n"));
    }

    /// The nodes whose bound pods request more GPUs than they offer, with the figures.
    pub async fn overcommitted(&self) -> kube::Result<Vec<String>> {
        let nodes: Api<Node> = Api::all(self.admin.clone());
        let pods: Api<Pod> = Api::all(self.admin.clone());
        let mut used: BTreeMap<String, i64> = BTreeMap::new();
        for p in pods.list(&ListParams::default()).await? {
            let Some(node) = p.spec.as_ref().and_then(|s| s.node_name.clone()) else { continue };
            *used.entry(node).or_default() += gpu_request(&p);
        }
        let mut over = Vec::new();
        for n in nodes.list(&ListParams::default()).await? {
            let offered = n
                .status
                .and_then(|s| s.allocatable)
                .and_then(|a| a.get("nvidia.com/gpu").map(|q| q.0.parse::<i64>().unwrap_or(0)))
                .unwrap_or(0);
            let name = n.metadata.name.unwrap_or_default();
            let taken = used.get(&name).copied().unwrap_or(0);
            if taken > offered {
                over.push(format!("node {name} over-committed: {taken} GPUs bound, {offered} offered"));
            }
        }
        Ok(over)
    }

    /// Deletes the namespace (its pods at once) and the nodes.
    pub async fn finish(self) {
        objects::delete_namespace(&self.admin, &self.ns).await.expect("namespace deleted");
        objects::delete_harness_nodes(&self.admin).await.expect("nodes deleted");
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("control plane logs: {}", self.cluster.control_plane.dir.display());
        }
    }
}

/// Whole GPUs a pod requests (`nvidia.com/gpu` limits of its containers).
pub fn gpu_request(p: &Pod) -> i64 {
    p.spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .filter_map(|c| c.resources.as_ref()?.limits.as_ref()?.get("nvidia.com/gpu"))
        .map(|q| q.0.parse::<i64>().unwrap_or(0))
        .sum()
}

/// Polls an async check every 50 ms until it holds; panics naming `what` after `timeout`.
pub async fn until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
