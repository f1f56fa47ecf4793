//! The Placement gRPC API (`proto/mlsched/v1/placement.proto`), served to the autoscaler sidecar on
//! `placementApi` (loopback or a Unix socket).
//!
//! Every answer is computed by the decision loop itself, on the state it schedules from: a request is
//! handed to the loop as a [`Query`] closure and answered from there, so no lock is shared with the
//! scheduling pass and an answer never sees half an update. Each query is short (a lookup, or one
//! scheduling decision per planned replica on a scratch copy of the snapshot).
//!
//! - `NodeHeadroom`: for each pod, its node, the node's free CPU/memory/GPU (allocatable minus every
//!   request booked on it, in-flight assumptions included) and the pod's own requests. A pod the scheduler
//!   does not know, or that is not bound yet, gets an empty node and no `free` (not an error).
//! - `PlanReplicas`: `replicas` copies of the template placed one after another on a clone of the snapshot
//!   through the first profile's filters and scores, nearest first: among the feasible nodes only those
//!   with the shortest mean network distance to the existing pods' nodes are offered to the profile's
//!   choice (the hybrid autoscaling rule: a new replica goes, among nodes with room, where the network path
//!   to the old ones is shortest; the policy breaks ties). With no known existing pod, the replicas planned
//!   so far are the anchors, so a fresh workload is kept together. Nothing is reserved. The first replica
//!   that does not fit stops the plan: it and the rest are `unplaceable`, with the scheduler's reason.
//! - `WorkloadPods`: the pods of a namespace matching every `match_labels` pair (bound, assumed, or pending
//!   with an empty node), sorted by name.
//!
//! Errors: `INVALID_ARGUMENT` for `replicas` outside 1..=1000, a missing template, negative requests, a
//! GPU amount that is neither a share (1..999) nor whole GPUs (multiples of 1000), empty toleration keys,
//! or empty `match_labels`; `UNAVAILABLE` until the watches have synced and while shutting down.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use mlsched::core::{GPU_MILLI, GpuRequest, NodeId, Pod, Resources, Snapshot, Toleration};
use mlsched::framework::Profile;
use mlsched::framework::cycle::{choose, feasible_nodes};
use mlsched::plugins::NetworkProximityScore;
use mlsched_proto::v1 as pb;
use mlsched_proto::v1::placement_server::{Placement, PlacementServer};
use tokio::sync::oneshot;
use tonic::{Request, Response, Status};
use tracing::{error, info};

use crate::config::{Config, ConfigError, PlacementApiAddr};
use crate::state::ClusterState;
use crate::translate::selector_matches;

/// The most replicas one `PlanReplicas` call may ask for.
pub const MAX_REPLICAS: u32 = 1000;

/// What a query sees: the loop's state and profiles, and whether the watches have synced.
pub struct QueryContext<'a> {
    pub state: &'a mut ClusterState,
    pub profiles: &'a [Profile],
    pub synced: bool,
}

/// A request handed to the decision loop, run there with exclusive access to its state.
pub type Query = Box<dyn FnOnce(QueryContext<'_>) + Send>;

/// Hands a query to the decision loop; `false` when the loop is gone.
pub type Submit = Arc<dyn Fn(Query) -> bool + Send + Sync>;

/// The `Placement` service on the decision loop's state.
pub struct PlacementService {
    submit: Submit,
    proximity: Arc<NetworkProximityScore>,
}

impl PlacementService {
    pub fn new(submit: Submit, topology_levels: &[String]) -> Result<Self, ConfigError> {
        let labels: Vec<&str> = topology_levels.iter().map(String::as_str).collect();
        let proximity = NetworkProximityScore::from_labels(&labels)
            .map_err(|e| ConfigError(format!("config: topologyLevels: {e}")))?;
        Ok(PlacementService { submit, proximity: Arc::new(proximity) })
    }

    async fn ask<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut ClusterState, &[Profile]) -> T + Send + 'static,
    ) -> Result<T, Status> {
        let (tx, rx) = oneshot::channel();
        let query: Query = Box::new(move |cx: QueryContext<'_>| {
            let answer = if cx.synced {
                Ok(f(cx.state, cx.profiles))
            } else {
                Err(Status::unavailable("the scheduler's caches have not synced yet"))
            };
            let _ = tx.send(answer);
        });
        if !(self.submit)(query) {
            return Err(Status::unavailable("the scheduler is shutting down"));
        }
        rx.await.map_err(|_| Status::unavailable("the scheduler is shutting down"))?
    }
}

#[tonic::async_trait]
impl Placement for PlacementService {
    async fn node_headroom(
        &self,
        request: Request<pb::NodeHeadroomRequest>,
    ) -> Result<Response<pb::NodeHeadroomResponse>, Status> {
        let request = request.into_inner();
        let pods = self.ask(move |state, _| node_headroom(state, &request.pods)).await?;
        Ok(Response::new(pb::NodeHeadroomResponse { pods }))
    }

    async fn plan_replicas(
        &self,
        request: Request<pb::PlanReplicasRequest>,
    ) -> Result<Response<pb::PlanReplicasResponse>, Status> {
        let request = request.into_inner();
        let (template, replicas) = validate_plan(&request)?;
        let proximity = self.proximity.clone();
        let existing = request.existing;
        let response = self
            .ask(move |state, profiles| {
                let existing_nodes = existing_nodes(state, &existing);
                let Some(profile) = profiles.first() else {
                    return Err(Status::internal("no scheduling profile"));
                };
                Ok(plan_replicas(state.snapshot(), profile, &proximity, &template, replicas, &existing_nodes))
            })
            .await??;
        Ok(Response::new(response))
    }

    async fn workload_pods(
        &self,
        request: Request<pb::WorkloadPodsRequest>,
    ) -> Result<Response<pb::WorkloadPodsResponse>, Status> {
        let request = request.into_inner();
        if request.match_labels.is_empty() {
            return Err(Status::invalid_argument("match_labels must name at least one label"));
        }
        let namespace = namespace_or_default(&request.namespace);
        let selector: BTreeMap<String, String> = request.match_labels.into_iter().collect();
        let pods = self.ask(move |state, _| workload_pods(state, &namespace, &selector)).await?;
        Ok(Response::new(pb::WorkloadPodsResponse { pods }))
    }
}

fn namespace_or_default(namespace: &str) -> String {
    if namespace.is_empty() { "default".into() } else { namespace.to_string() }
}

fn pod_key(r: &pb::PodRef) -> String {
    format!("{}/{}", namespace_or_default(&r.namespace), r.name)
}

fn requested(pod: &Pod) -> pb::Resources {
    pb::Resources {
        cpu_milli: pod.requests.cpu_milli,
        memory_bytes: pod.requests.memory_bytes,
        gpu_milli: pod.gpu.total_milli(),
    }
}

/// `NodeHeadroom` on the loop's state.
pub fn node_headroom(state: &mut ClusterState, pods: &[pb::PodRef]) -> Vec<pb::PodHeadroom> {
    // Owned first: the snapshot is refreshed through `&mut state` below.
    let known: Vec<(Option<String>, Option<pb::Resources>)> = pods
        .iter()
        .map(|r| match state.known_pod(&pod_key(r)) {
            Some(k) => (k.node.map(str::to_string), Some(requested(k.pod))),
            None => (None, None),
        })
        .collect();
    let snapshot = state.snapshot();
    pods.iter()
        .zip(known)
        .map(|(r, (node, requested))| {
            let free = node.as_deref().and_then(|n| snapshot.node_id(n)).map(|id| {
                let node = &snapshot.nodes()[id];
                let free = node.free();
                pb::Resources {
                    cpu_milli: free.cpu_milli,
                    memory_bytes: free.memory_bytes,
                    gpu_milli: node.gpu_free_milli(),
                }
            });
            pb::PodHeadroom { pod: Some(r.clone()), node: node.unwrap_or_default(), free, requested }
        })
        .collect()
}

/// `WorkloadPods` on the loop's state.
pub fn workload_pods(
    state: &ClusterState,
    namespace: &str,
    selector: &BTreeMap<String, String>,
) -> Vec<pb::WorkloadPod> {
    let mut pods: Vec<pb::WorkloadPod> = state
        .known_pods()
        .filter_map(|k| {
            let (ns, name) = k.key.split_once('/')?;
            (ns == namespace && selector_matches(selector, k.labels)).then(|| pb::WorkloadPod {
                pod: Some(pb::PodRef { namespace: ns.to_string(), name: name.to_string() }),
                node: k.node.unwrap_or_default().to_string(),
                requested: Some(requested(k.pod)),
            })
        })
        .collect();
    pods.sort_by(|a, b| a.pod.as_ref().map(|p| &p.name).cmp(&b.pod.as_ref().map(|p| &p.name)));
    pods
}

/// The nodes of the known, placed pods among `existing` (one entry per pod).
pub fn existing_nodes(state: &ClusterState, existing: &[pb::PodRef]) -> Vec<String> {
    existing.iter().filter_map(|r| state.known_pod(&pod_key(r))?.node.map(str::to_string)).collect()
}

/// Checks a `PlanReplicas` request and turns its template into a core pod (key set per replica later).
pub fn validate_plan(request: &pb::PlanReplicasRequest) -> Result<(Pod, u32), Status> {
    if !(1..=MAX_REPLICAS).contains(&request.replicas) {
        return Err(Status::invalid_argument(format!("replicas: {} is outside 1..={MAX_REPLICAS}", request.replicas)));
    }
    let template = request.template.as_ref().ok_or_else(|| Status::invalid_argument("template is required"))?;
    let r = template.requests.unwrap_or_default();
    if r.cpu_milli < 0 || r.memory_bytes < 0 || r.gpu_milli < 0 {
        return Err(Status::invalid_argument(format!("template.requests: negative amount in {r:?}")));
    }
    let gpu = match r.gpu_milli {
        0 => GpuRequest::none(),
        m if m < GPU_MILLI => GpuRequest::shared(m),
        m if m % GPU_MILLI == 0 => u32::try_from(m / GPU_MILLI)
            .map(GpuRequest::whole)
            .map_err(|_| Status::invalid_argument(format!("template.requests.gpu_milli: {m} is too large")))?,
        m => {
            return Err(Status::invalid_argument(format!(
                "template.requests.gpu_milli: {m} is neither a share of one GPU (1..{GPU_MILLI}) nor whole GPUs \
                 (a multiple of {GPU_MILLI})"
            )));
        }
    };
    let namespace = namespace_or_default(&template.namespace);
    let mut pod = Pod::new(format!("{namespace}/<replica>"), Resources::new(r.cpu_milli, r.memory_bytes, 1), gpu);
    pod.node_selector = template.node_selector.clone().into_iter().collect();
    for key in &template.tolerated_taint_keys {
        if key.is_empty() {
            return Err(Status::invalid_argument("template.tolerated_taint_keys: empty key"));
        }
        pod.tolerations.push(Toleration { key: key.clone(), exists: true, value: String::new(), effect: None });
    }
    pod.validate().map_err(|e| Status::invalid_argument(format!("template: {e}")))?;
    Ok((pod, request.replicas))
}

/// Places `replicas` copies of `template` one after another on a clone of `snapshot`: nearest to
/// `existing_nodes` first, the profile choosing among the nearest. Pure.
pub fn plan_replicas(
    snapshot: &Snapshot,
    profile: &Profile,
    proximity: &NetworkProximityScore,
    template: &Pod,
    replicas: u32,
    existing_nodes: &[String],
) -> pb::PlanReplicasResponse {
    let mut scratch = snapshot.clone();
    let namespace = template.key.split_once('/').map_or("default", |(ns, _)| ns).to_string();
    let existing: Vec<NodeId> = existing_nodes.iter().filter_map(|n| scratch.node_id(n)).collect();
    let mut planned: Vec<String> = Vec::new();
    let mut response = pb::PlanReplicasResponse::default();
    for i in 0..replicas {
        let mut pod = template.clone();
        // `<` and `>` cannot appear in pod names, so the key never collides with a real pod's.
        pod.key = format!("{namespace}/<replica-{i}>");
        pod.near_nodes = if existing.is_empty() { planned.clone() } else { existing_nodes.to_vec() };
        let (feasible, reasons) = feasible_nodes(profile, &scratch, &pod);
        let anchors = proximity.anchors(&scratch, &pod);
        let nearest = nearest(proximity, &scratch, &feasible, &anchors);
        let Some(decision) = choose(profile, &scratch, &pod, &nearest) else {
            response.unplaceable = replicas - i;
            response.reason = if feasible.is_empty() {
                reasons.to_string()
            } else {
                format!("no GPUs fit on the chosen node for {}", pod.key)
            };
            break;
        };
        if let Err(e) = scratch.assume_decision(&pod, &decision) {
            response.unplaceable = replicas - i;
            response.reason = e.to_string();
            break;
        }
        let node = scratch.nodes()[decision.node].name.clone();
        let (mean_hops, network_cost) =
            proximity.proximity(&scratch, decision.node, &existing).map_or((0.0, 0.0), |p| (p.mean_hops, p.mean_cost));
        planned.push(node.clone());
        response.placements.push(pb::ReplicaPlacement { node, mean_hops, network_cost });
    }
    response
}

/// The nodes of `feasible` at the shortest mean weighted distance to `anchors` (all of them without
/// anchors).
fn nearest(
    proximity: &NetworkProximityScore,
    snapshot: &Snapshot,
    feasible: &[NodeId],
    anchors: &[NodeId],
) -> Vec<NodeId> {
    if anchors.is_empty() {
        return feasible.to_vec();
    }
    let costs: Vec<(NodeId, f64)> = feasible
        .iter()
        .map(|&n| (n, proximity.proximity(snapshot, n, anchors).map_or(f64::INFINITY, |p| p.mean_cost)))
        .collect();
    let best = costs.iter().map(|c| c.1).fold(f64::INFINITY, f64::min);
    costs.into_iter().filter(|c| c.1 <= best + 1e-9).map(|c| c.0).collect()
}

/// The running server: stop it with [`Running::stop`].
pub struct Running {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    unix_path: Option<std::path::PathBuf>,
}

impl Running {
    /// Graceful shutdown: no new connections, in-flight calls finish (bounded by `grace`).
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(());
        let mut task = self.task;
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            task.abort();
        }
        if let Some(path) = self.unix_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Binds `config.placementApi` and serves the API until stopped. A bind failure is logged and the
/// scheduler goes on without the API (scheduling does not depend on it): `None`.
pub async fn start(config: &Config, submit: Submit) -> Option<Running> {
    match try_start(config, submit).await {
        Ok(running) => Some(running),
        Err(e) => {
            error!(address = %config.placement_api, error = %e, "the Placement API is not served");
            None
        }
    }
}

async fn try_start(config: &Config, submit: Submit) -> anyhow::Result<Running> {
    let addr = PlacementApiAddr::parse(&config.placement_api)?;
    let service = PlacementServer::new(PlacementService::new(submit, &config.topology_levels)?);
    let (stop, stopped) = oneshot::channel::<()>();
    let signal = async move {
        let _ = stopped.await;
    };
    let router = tonic::transport::Server::builder().add_service(service);
    let (task, unix_path) = match addr {
        PlacementApiAddr::Tcp(addr) => {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            info!(addr = %listener.local_addr()?, "serving the Placement API");
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            (spawn_server(router.serve_with_incoming_shutdown(incoming, signal)), None)
        }
        PlacementApiAddr::Unix(path) => {
            // A socket file left by an earlier run would make the bind fail.
            if std::fs::symlink_metadata(&path).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
                let _ = std::fs::remove_file(&path);
            }
            let listener = tokio::net::UnixListener::bind(&path)?;
            info!(path = %path.display(), "serving the Placement API");
            let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
            (spawn_server(router.serve_with_incoming_shutdown(incoming, signal)), Some(path))
        }
    };
    Ok(Running { stop, task, unix_path })
}

fn spawn_server(
    serve: impl Future<Output = Result<(), tonic::transport::Error>> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = serve.await {
            error!(error = %e, "the Placement API server stopped");
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlsched::core::{MIB, Node};
    use mlsched::plugins::BestFitScore;
    use mlsched::plugins::policy::default_filters;

    const RACK: &str = "network.mlsched.io/rack";

    /// Racks r0 and r1, two nodes each (8 CPUs, 4 GPUs).
    fn snapshot() -> Snapshot {
        let mut nodes = Vec::new();
        for r in 0..2 {
            for n in 0..2 {
                nodes.push(
                    Node::new(format!("r{r}-n{n}"), Resources::new(8000, 64 * 1024 * MIB, 110))
                        .with_gpus(4, "A100")
                        .with_label(RACK, format!("r{r}")),
                );
            }
        }
        Snapshot::new(nodes).unwrap()
    }

    fn template(cpu_milli: i64) -> pb::PlanReplicasRequest {
        pb::PlanReplicasRequest {
            template: Some(pb::PodTemplate {
                namespace: "ml".into(),
                requests: Some(pb::Resources { cpu_milli, memory_bytes: 1 << 30, gpu_milli: 1000 }),
                ..Default::default()
            }),
            replicas: 1,
            existing: Vec::new(),
        }
    }

    fn plan(s: &Snapshot, cpu: i64, replicas: u32, existing: &[&str]) -> pb::PlanReplicasResponse {
        let profile = default_filters(Profile::new("t")).score(BestFitScore, 1000);
        let proximity = NetworkProximityScore::from_labels(&[RACK, mlsched::topology::HOSTNAME_LABEL]).unwrap();
        let (pod, _) = validate_plan(&template(cpu)).unwrap();
        let existing: Vec<String> = existing.iter().map(|s| s.to_string()).collect();
        plan_replicas(s, &profile, &proximity, &pod, replicas, &existing)
    }

    #[test]
    fn replicas_go_to_the_nearest_nodes_with_room_then_unplaceable() {
        let s = snapshot();
        // 3 CPUs each: 2 fit per node. The workload runs on r1-n0.
        let r = plan(&s, 3000, 5, &["r1-n0"]);
        let nodes: Vec<&str> = r.placements.iter().map(|p| p.node.as_str()).collect();
        assert_eq!(nodes[..4], ["r1-n0", "r1-n0", "r1-n1", "r1-n1"]);
        assert_eq!(r.placements[0].mean_hops, 0.0);
        assert_eq!(r.placements[2].mean_hops, 2.0);
        assert_eq!(r.placements[4].mean_hops, 4.0, "then another rack");
        assert_eq!(r.placements[4].network_cost, 4.0);
        assert_eq!(r.unplaceable, 0);
        let r = plan(&s, 3000, 10, &["r1-n0"]);
        assert_eq!((r.placements.len(), r.unplaceable), (8, 2));
        assert!(r.reason.contains("Insufficient cpu"), "{}", r.reason);
        // The caller's snapshot is untouched.
        assert!(s.nodes().iter().all(|n| n.requested.cpu_milli == 0));
    }

    #[test]
    fn without_existing_pods_replicas_stay_together() {
        let r = plan(&snapshot(), 3000, 4, &[]);
        let racks: Vec<&str> = r.placements.iter().map(|p| &p.node[..2]).collect();
        assert!(racks.iter().all(|r| *r == racks[0]), "{racks:?}");
        assert!(r.placements.iter().all(|p| p.mean_hops == 0.0), "no existing pods: 0");
    }

    #[tokio::test]
    async fn serves_on_a_unix_socket_and_removes_it_when_stopped() {
        let path = std::env::temp_dir().join(format!("mlsched-placement-{}.sock", std::process::id()));
        let config = Config { placement_api: format!("unix:{}", path.display()), ..Config::default() };
        let running = start(&config, Arc::new(|_| false)).await.expect("bound");
        assert!(path.exists());
        running.stop(Duration::from_secs(1)).await;
        assert!(!path.exists());
        // Loopback TCP on an ephemeral port.
        let config = Config { placement_api: "127.0.0.1:0".into(), ..Config::default() };
        start(&config, Arc::new(|_| false)).await.expect("bound").stop(Duration::from_secs(1)).await;
    }

    #[test]
    fn bad_requests_are_invalid_arguments() {
        let code = |r: pb::PlanReplicasRequest| validate_plan(&r).unwrap_err().code();
        let mut r = template(1000);
        r.replicas = 0;
        assert_eq!(code(r.clone()), tonic::Code::InvalidArgument);
        r.replicas = MAX_REPLICAS + 1;
        assert_eq!(code(r.clone()), tonic::Code::InvalidArgument);
        r.replicas = MAX_REPLICAS;
        assert!(validate_plan(&r).is_ok());
        let mut bad_gpu = template(1000);
        bad_gpu.template.as_mut().unwrap().requests.as_mut().unwrap().gpu_milli = 1500;
        assert_eq!(code(bad_gpu), tonic::Code::InvalidArgument);
        let mut negative = template(-1);
        negative.replicas = 1;
        assert_eq!(code(negative), tonic::Code::InvalidArgument);
        assert_eq!(code(pb::PlanReplicasRequest { replicas: 1, ..Default::default() }), tonic::Code::InvalidArgument);
        let (pod, _) = validate_plan(&{
            let mut r = template(500);
            r.template.as_mut().unwrap().requests.as_mut().unwrap().gpu_milli = 250;
            r.template.as_mut().unwrap().tolerated_taint_keys = vec!["nvidia.com/gpu".into()];
            r
        })
        .unwrap();
        assert_eq!(pod.gpu.total_milli(), 250);
        assert!(pod.tolerations[0].exists);
    }
}
