//! The harness's real control plane: it starts, the published RBAC is what the scheduler gets, fake nodes
//! are schedulable, and namespaces clean up without a kubelet.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Binding, Node, Pod, Secret};
use kube::api::{Api, ListParams, PostParams};
use mlsched_tests::cluster::{gpu_node, pending_pod};
use mlsched_tests::real::{self, objects};
use mlsched_tests::testing::{eventually, typed};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_identity_has_exactly_the_published_rights() {
    let cluster = real::shared();
    let _alone = real::exclusive().await;
    let admin = cluster.control_plane.admin_client().await;
    let ns = "harness-rbac";
    objects::create_namespace(&admin, ns).await.unwrap();
    objects::add_node(&admin, gpu_node("harness-n1", 8, 64, 512, &[])).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(admin.clone(), ns);
    pods.create(&PostParams::default(), &typed(pending_pod(ns, "p", 1, "mlsched", None))).await.unwrap();

    let scheduler = cluster.scheduler_client().await;
    // Granted: list nodes and pods, bind.
    let nodes: Api<Node> = Api::all(scheduler.clone());
    let node = nodes.get("harness-n1").await.err().map(|e| e.to_string());
    assert!(node.is_some(), "the scheduler's role has list/watch on nodes, not get");
    assert!(
        nodes
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .any(|n| n.metadata.name.as_deref() == Some("harness-n1"))
    );
    let binding: Binding = typed(json!({
        "apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p", "namespace": ns},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "harness-n1"}
    }));
    let scheduler_pods: Api<Pod> = Api::namespaced(scheduler.clone(), ns);
    scheduler_pods
        .create_subresource::<_, serde_json::Value>("binding", "p", &PostParams::default(), &binding)
        .await
        .expect("pods/binding is granted");
    assert_eq!(pods.get("p").await.unwrap().spec.unwrap().node_name.as_deref(), Some("harness-n1"));
    // A second bind of the same pod is a 409 from the real server.
    let again = scheduler_pods
        .create_subresource::<_, serde_json::Value>("binding", "p", &PostParams::default(), &binding)
        .await
        .unwrap_err();
    assert!(matches!(&again, kube::Error::Api(s) if s.code == 409), "{again}");
    // Refused: Secrets, and creating pods.
    let secrets: Api<Secret> = Api::namespaced(scheduler.clone(), ns);
    let denied = secrets.list(&ListParams::default()).await.unwrap_err();
    assert!(matches!(&denied, kube::Error::Api(s) if s.code == 403), "{denied}");
    let create = scheduler_pods.create(&PostParams::default(), &typed(pending_pod(ns, "q", 1, "mlsched", None))).await;
    assert!(matches!(&create, Err(kube::Error::Api(s)) if s.code == 403), "{create:?}");

    // The fake node is Ready and carries no not-ready taint.
    let n = Api::<Node>::all(admin.clone()).get("harness-n1").await.unwrap();
    let taints = n.spec.unwrap().taints.unwrap_or_default();
    assert!(taints.iter().all(|t| t.key != "node.kubernetes.io/not-ready"), "{taints:?}");
    assert_eq!(n.status.unwrap().allocatable.unwrap()["nvidia.com/gpu"].0, "8");

    // A bound pod of a deleted namespace does not hang in Terminating.
    objects::delete_namespace(&admin, ns).await.unwrap();
    eventually("the namespace's pods are gone", Duration::from_secs(30), || {
        let pods = pods.clone();
        async move { pods.list(&ListParams::default()).await.ok().filter(|l| l.items.is_empty()).map(|_| ()) }
    })
    .await;
    objects::delete_harness_nodes(&admin).await.unwrap();
}
