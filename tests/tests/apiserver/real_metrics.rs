//! `metrics.k8s.io` on the real control plane: the harness's aggregated API server, read through
//! kube-apiserver's aggregation proxy with kube's own client, as the autoscaler reads metrics-server.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_metrics::v1beta1::{NodeMetrics, PodMetrics};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::api::{Api, ListParams, PostParams};
use kube::{Client, ResourceExt};
use mlsched_tests::cluster::gpu_node;
use mlsched_tests::metrics_api::ContainerUsage;
use mlsched_tests::real::metrics_server::{self, API_SERVICE};
use mlsched_tests::real::{self, MLSCHED_NAMESPACE, MLSCHED_SERVICE_ACCOUNT, objects};
use mlsched_tests::testing::{eventually, typed};
use serde_json::{Value, json};

const NS: &str = "real-metrics";

fn pod(name: &str, app: &str) -> Pod {
    typed(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": app, "tier": "web"}},
        // Nobody schedules these: metrics are served for pods that exist, bound or not.
        "spec": {"schedulerName": "nobody", "containers": [
            {"name": "app", "image": "app:1"}, {"name": "sidecar", "image": "sidecar:1"}]},
    }))
}

async fn names(api: &Api<PodMetrics>, selector: &str) -> BTreeSet<String> {
    let lp = if selector.is_empty() { ListParams::default() } else { ListParams::default().labels(selector) };
    api.list(&lp)
        .await
        .unwrap_or_else(|e| panic!("listing PodMetrics {selector:?}: {e}"))
        .items
        .iter()
        .map(|m| m.name_any())
        .collect()
}

fn set(values: &[&str]) -> BTreeSet<String> {
    values.iter().map(|s| s.to_string()).collect()
}

/// (container, cpu, memory) as served.
fn usage(m: &PodMetrics) -> Vec<(String, String, String)> {
    m.containers.iter().map(|c| (c.name.clone(), c.usage.cpu.0.clone(), c.usage.memory.0.clone())).collect()
}

fn code(e: &kube::Error) -> u16 {
    match e {
        kube::Error::Api(s) => s.code,
        _ => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_metrics_through_the_aggregator_with_selectors_and_rbac() {
    let metrics = metrics_server::shared().await;
    let cluster = tokio::task::spawn_blocking(real::shared).await.unwrap();
    let admin = cluster.control_plane.admin_client().await;

    // Registered as metrics-server is, and judged Available by the API server's own check.
    let service = Api::<APIService>::all(admin.clone()).get(API_SERVICE).await.unwrap();
    let available = service.status.and_then(|s| s.conditions).unwrap_or_default();
    assert!(available.iter().any(|c| c.type_ == "Available" && c.status == "True"), "{available:?}");
    // Discovery through the API server lists both kinds (kube's discovery client reads the aggregated
    // /apis, which the aggregator fills from this server in the background).
    let group = eventually("metrics.k8s.io in the API server's discovery", Duration::from_secs(30), || {
        let admin = admin.clone();
        async move { kube::discovery::group(&admin, "metrics.k8s.io").await.ok() }
    })
    .await;
    let kinds: BTreeSet<String> = group.recommended_resources().into_iter().map(|(r, _)| r.kind).collect();
    assert_eq!(kinds, set(&["NodeMetrics", "PodMetrics"]));

    objects::create_namespace(&admin, NS).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(admin.clone(), NS);
    for (name, app) in [("a-0", "a"), ("a-1", "a"), ("a-2", "a"), ("b-0", "b")] {
        pods.create(&PostParams::default(), &pod(name, app)).await.unwrap();
    }
    metrics
        .set_pod_usage(
            NS,
            "a-0",
            &[ContainerUsage::new("app", 250, 64 << 20), ContainerUsage::new("sidecar", 10, 8 << 20)],
        )
        .unwrap();
    metrics.set_pod_usage(NS, "a-1", &[ContainerUsage::new("app", 900, 256 << 20)]).unwrap();
    metrics.set_pod_usage(NS, "b-0", &[ContainerUsage::new("app", 1500, 1 << 30)]).unwrap();
    // a-2 has no sample yet; "gone" has a sample but no pod.
    metrics.set_pod_usage(NS, "gone", &[ContainerUsage::new("app", 1, 1)]).unwrap();

    let api: Api<PodMetrics> = Api::namespaced(admin.clone(), NS);
    assert_eq!(names(&api, "").await, set(&["a-0", "a-1", "b-0"]));
    assert_eq!(names(&api, "app=a").await, set(&["a-0", "a-1"]));
    assert_eq!(names(&api, "app!=a").await, set(&["b-0"]));
    assert_eq!(names(&api, "app in (b),tier=web").await, set(&["b-0"]));
    assert_eq!(names(&api, "app=c").await, set(&[]));

    let a0 = api.get("a-0").await.unwrap();
    assert_eq!(
        usage(&a0),
        vec![
            ("app".into(), "250m".into(), (64 << 20).to_string()),
            ("sidecar".into(), "10m".into(), (8 << 20).to_string())
        ]
    );
    assert_eq!(a0.labels().get("app").map(String::as_str), Some("a"), "labels come from the pod: {:?}", a0.labels());
    assert_eq!(a0.metadata.namespace.as_deref(), Some(NS));
    assert_eq!(a0.window, Duration::from_secs(15));
    let missing = api.get("a-2").await.unwrap_err();
    assert_eq!(code(&missing), 404, "{missing}");
    assert_eq!(code(&api.get("gone").await.unwrap_err()), 404);

    // New figures are served at once; a pod's labels are its current ones.
    metrics.set_pod_usage(NS, "a-0", &[ContainerUsage::new("app", 700, 64 << 20)]).unwrap();
    pods.patch("a-1", &Default::default(), &kube::api::Patch::Merge(json!({"metadata": {"labels": {"app": "b"}}})))
        .await
        .unwrap();
    assert_eq!(usage(&api.get("a-0").await.unwrap())[0].1, "700m");
    assert_eq!(names(&api, "app=b").await, set(&["a-1", "b-0"]));
    // A sample taken away is no longer served (metrics-server lost the pod).
    metrics.clear_pod_usage(NS, "b-0");
    assert_eq!(names(&api, "app=b").await, set(&["a-1"]));
    // An invalid selector is the API server's 400, as for any list.
    let bad = api.list(&ListParams::default().labels("app in (")).await.unwrap_err();
    assert_eq!(code(&bad), 400, "{bad}");

    // The autoscaler's identity: list granted (manifests/autoscaler-rbac.yaml), get not.
    let autoscaler: Client = cluster.scheduler_client().await;
    let as_api: Api<PodMetrics> = Api::namespaced(autoscaler.clone(), NS);
    let before = metrics.requests().len();
    assert_eq!(names(&as_api, "app=a").await, set(&["a-0"]));
    let user = format!("system:serviceaccount:{MLSCHED_NAMESPACE}:{MLSCHED_SERVICE_ACCOUNT}");
    let seen: Vec<_> = metrics.requests().into_iter().skip(before).filter(|r| r.user == user).collect();
    assert!(
        seen.iter().any(|r| r.path == format!("/apis/metrics.k8s.io/v1beta1/namespaces/{NS}/pods") && r.status == 200),
        "the list reached the metrics server on the ServiceAccount's behalf: {seen:?}"
    );
    let denied = as_api.get("a-0").await.unwrap_err();
    assert_eq!(code(&denied), 403, "{denied}");
    let nodes_denied = Api::<NodeMetrics>::all(autoscaler).list(&ListParams::default()).await.unwrap_err();
    assert_eq!(code(&nodes_denied), 403, "{nodes_denied}");
    // Refused by kube-apiserver's RBAC before the proxy: the metrics server never saw those.
    assert!(
        metrics.requests().iter().skip(before).all(|r| r.user != user || r.status == 200),
        "{:?}",
        metrics.requests()
    );

    objects::delete_namespace(&admin, NS).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_metrics_of_existing_nodes() {
    let metrics = metrics_server::shared().await;
    let cluster = tokio::task::spawn_blocking(real::shared).await.unwrap();
    let _alone = real::exclusive().await;
    let admin = cluster.control_plane.admin_client().await;
    objects::add_node(&admin, gpu_node("metrics-n1", 8, 64, 512, &[("pool", "m")])).await.unwrap();
    objects::add_node(&admin, gpu_node("metrics-n2", 8, 64, 512, &[("pool", "other")])).await.unwrap();
    metrics.set_node_usage("metrics-n1", 3500, 12 << 30).unwrap();
    metrics.set_node_usage("metrics-n2", 100, 1 << 30).unwrap();
    metrics.set_node_usage("metrics-gone", 1, 1).unwrap();

    let api: Api<NodeMetrics> = Api::all(admin.clone());
    let n1 = api.get("metrics-n1").await.unwrap();
    assert_eq!((n1.usage.cpu.0.as_str(), n1.usage.memory.0.clone()), ("3500m", (12i64 << 30).to_string()));
    let listed: Vec<String> =
        api.list(&ListParams::default().labels("pool=m")).await.unwrap().items.iter().map(|n| n.name_any()).collect();
    assert_eq!(listed, ["metrics-n1"]);
    let all: BTreeSet<String> =
        api.list(&ListParams::default()).await.unwrap().items.iter().map(|n| n.name_any()).collect();
    assert!(all.contains("metrics-n2") && !all.contains("metrics-gone"), "{all:?}");
    assert_eq!(code(&api.get("metrics-gone").await.unwrap_err()), 404);
    // The figures as kube's raw client sees them: JSON, the metrics-server shape.
    let raw = admin
        .request_text(http::Request::get("/apis/metrics.k8s.io/v1beta1/nodes/metrics-n2").body(Vec::new()).unwrap())
        .await
        .unwrap();
    let raw: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(raw["kind"], "NodeMetrics");
    assert_eq!(raw["usage"]["cpu"], "100m");

    objects::delete_harness_nodes(&admin).await.unwrap();
}
