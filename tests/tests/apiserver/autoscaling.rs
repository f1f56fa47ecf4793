//! The autoscaling additions of the double: apps/v1 Deployments/StatefulSets with the `scale` subresource,
//! the pod `resize` subresource, metrics.k8s.io PodMetrics, and the replica mirror.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use mlsched_tests::metrics_api::{ContainerUsage, set_pod_usage};
use mlsched_tests::{ApiServer, RequestMatch, Verb, scale};
use serde_json::json;

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "x", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]}}}
    }))
    .unwrap()
}

#[tokio::test]
async fn scale_subresource_reads_and_writes_spec_replicas() {
    let server = ApiServer::start().await.unwrap();
    let api: Api<Deployment> = Api::namespaced(server.client(), "default");
    api.create(&PostParams::default(), &deployment("web", 2)).await.unwrap();
    let s = api.get_scale("web").await.unwrap();
    assert_eq!(s.spec.as_ref().unwrap().replicas, Some(2));
    assert_eq!(s.status.as_ref().unwrap().selector.as_deref(), Some("app=web"));
    api.patch_scale("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 5}}))).await.unwrap();
    assert_eq!(api.get("web").await.unwrap().spec.replicas, Some(5));
    // PUT with a stale resourceVersion conflicts.
    let mut stale = s.clone();
    stale.spec = Some(k8s_openapi::api::autoscaling::v1::ScaleSpec { replicas: Some(1) });
    let err = api.replace_scale("web", &PostParams::default(), &stale).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref e) if e.code == 409), "{err:?}");
    let mut fresh = api.get_scale("web").await.unwrap();
    fresh.spec = Some(k8s_openapi::api::autoscaling::v1::ScaleSpec { replicas: Some(1) });
    api.replace_scale("web", &PostParams::default(), &fresh).await.unwrap();
    assert_eq!(api.get("web").await.unwrap().spec.replicas, Some(1));
    assert_eq!(
        server.faults().count(&RequestMatch::new(Verb::Patch, "deployments").subresource("scale"), Some(200)),
        1
    );

    // StatefulSets too, and the mirror creates and deletes pods to match.
    let sts: Api<StatefulSet> = Api::namespaced(server.client(), "default");
    let mut v = serde_json::to_value(deployment("db", 3)).unwrap();
    v["kind"] = json!("StatefulSet");
    v["spec"]["serviceName"] = json!("db");
    sts.create(&PostParams::default(), &serde_json::from_value(v).unwrap()).await.unwrap();
    let (created, _) = scale::mirror_replicas(server.state(), "statefulsets", "default", "db", "n1").unwrap();
    assert_eq!(created, ["db-0", "db-1", "db-2"]);
    sts.patch_scale("db", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 1}}))).await.unwrap();
    let (_, deleted) = scale::mirror_replicas(server.state(), "statefulsets", "default", "db", "n1").unwrap();
    assert_eq!(deleted, ["db-2", "db-1"]);
    assert_eq!(sts.get_scale("db").await.unwrap().status.unwrap().replicas, 1);
    assert_eq!(server.state().node_of("default", "db-0").as_deref(), Some("n1"));
}

#[tokio::test]
async fn resize_changes_only_cpu_and_memory() {
    let server = ApiServer::start().await.unwrap();
    let deps: Api<Deployment> = Api::namespaced(server.client(), "default");
    deps.create(&PostParams::default(), &deployment("web", 1)).await.unwrap();
    scale::mirror_replicas(server.state(), "deployments", "default", "web", "n1").unwrap();
    let pods: Api<Pod> = Api::namespaced(server.client(), "default");
    let body = json!({"spec": {"containers": [{"name": "app", "resources": {"requests": {"cpu": "1500m", "memory": "1Gi"}}}]}});
    pods.patch_subresource("resize", "web-0", &PatchParams::default(), &Patch::Strategic(body)).await.unwrap();
    let p = pods.get("web-0").await.unwrap();
    let c = &p.spec.as_ref().unwrap().containers[0];
    assert_eq!(c.resources.as_ref().unwrap().requests.as_ref().unwrap()["cpu"].0, "1500m");
    let st = &p.status.unwrap().container_statuses.unwrap()[0];
    assert_eq!(st.resources.as_ref().unwrap().requests.as_ref().unwrap()["cpu"].0, "1500m");
    // Anything else through resize is refused; so is a GPU.
    let image = json!({"spec": {"containers": [{"name": "app", "image": "y"}]}});
    let e =
        pods.patch_subresource("resize", "web-0", &PatchParams::default(), &Patch::Strategic(image)).await.unwrap_err();
    assert!(matches!(e, kube::Error::Api(ref s) if s.code == 422), "{e:?}");
    let gpu = json!({"spec": {"containers": [{"name": "app", "resources": {"requests": {"nvidia.com/gpu": "1"}}}]}});
    let e =
        pods.patch_subresource("resize", "web-0", &PatchParams::default(), &Patch::Strategic(gpu)).await.unwrap_err();
    assert!(matches!(e, kube::Error::Api(ref s) if s.code == 422), "{e:?}");
}

#[tokio::test]
async fn pod_metrics_list_with_selector() {
    let server = ApiServer::start().await.unwrap();
    let deps: Api<Deployment> = Api::namespaced(server.client(), "default");
    deps.create(&PostParams::default(), &deployment("web", 2)).await.unwrap();
    deps.create(&PostParams::default(), &deployment("other", 1)).await.unwrap();
    for d in ["web", "other"] {
        scale::mirror_replicas(server.state(), "deployments", "default", d, "n1").unwrap();
    }
    for p in ["web-0", "web-1", "other-0"] {
        set_pod_usage(server.state(), "default", p, &[ContainerUsage::new("app", 250, 64 << 20)]).unwrap();
    }
    set_pod_usage(server.state(), "default", "web-1", &[ContainerUsage::new("app", 900, 64 << 20)]).unwrap();
    let api: Api<k8s_metrics::v1beta1::PodMetrics> = Api::namespaced(server.client(), "default");
    let list = api.list(&ListParams::default().labels("app=web")).await.unwrap();
    assert_eq!(list.items.len(), 2);
    let one = api.get("web-1").await.unwrap();
    assert_eq!(one.containers[0].usage.cpu.0, "900m");
    assert_eq!(one.containers[0].usage.memory.0, (64u64 << 20).to_string());
}
