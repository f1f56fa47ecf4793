//! Reads and writes through the real kube client: selectors, paging, conflicts, patches, binding, status.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Binding, Node, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::response::Status;
use kube::discovery::Discovery;
use mlsched_tests::cluster::{self};
use mlsched_tests::podgroup_api_resource;
use mlsched_tests::testing::typed;
use serde_json::json;

use mlsched_tests::testing::seeded_server as seeded;

fn api_status(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.message.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn binding(pod: &str, node: &str) -> Binding {
    Binding {
        metadata: ObjectMeta { name: Some(pod.into()), ..Default::default() },
        target: ObjectReference { kind: Some("Node".into()), name: Some(node.into()), ..Default::default() },
    }
}

#[tokio::test]
async fn discovery_and_version() {
    let (_server, client) = seeded().await;
    let v = client.apiserver_version().await.expect("version");
    assert_eq!(v.major, "1");
    let d = Discovery::new(client.clone()).run().await.expect("discovery");
    let ar = podgroup_api_resource();
    let (found, caps) =
        d.resolve_gvk(&kube::core::GroupVersionKind::gvk(&ar.group, &ar.version, &ar.kind)).expect("podgroups");
    assert_eq!(found.plural, "podgroups");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    assert!(caps.subresources.iter().any(|(r, _)| r.plural == "podgroups/status" || r.plural == "status"));
    let agg = Discovery::new(client).run_aggregated().await.expect("aggregated discovery");
    assert!(agg.groups().any(|g| g.name() == "coordination.k8s.io"));
}

#[tokio::test]
async fn list_with_selectors_and_pages() {
    let (_server, client) = seeded().await;
    let nodes: Api<Node> = Api::all(client.clone());
    assert_eq!(nodes.list(&ListParams::default()).await.unwrap().items.len(), 16);
    let rack1 = nodes.list(&ListParams::default().labels("network.mlsched.io/rack=rack-1")).await.unwrap();
    assert_eq!(rack1.items.len(), 4);
    assert!(rack1.items.iter().all(|n| n.labels()["network.mlsched.io/spine"] == "spine-0"));
    let set =
        nodes.list(&ListParams::default().labels("network.mlsched.io/rack in (rack-0,rack-3),!missing")).await.unwrap();
    assert_eq!(set.items.len(), 8);
    let one = nodes.list(&ListParams::default().fields("metadata.name=gpu-r2-n3")).await.unwrap();
    assert_eq!(one.items.len(), 1);

    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    pods.create(&PostParams::default(), &typed(cluster::pending_pod("default", "other", 1, "default-scheduler", None)))
        .await
        .unwrap();
    let mine = ListParams::default().fields("spec.schedulerName=mlsched,spec.nodeName=");
    assert_eq!(pods.list(&mine).await.unwrap().items.len(), 8);
    pods.create_subresource::<_, Status>("binding", "eval-1", &PostParams::default(), &binding("eval-1", "gpu-r0-n0"))
        .await
        .unwrap();
    assert_eq!(pods.list(&mine).await.unwrap().items.len(), 7);
    let on_node = pods.list(&ListParams::default().fields("spec.nodeName=gpu-r0-n0")).await.unwrap();
    assert_eq!(on_node.items.len(), 1);
    let all_pods: Api<Pod> = Api::all(client.clone());
    assert_eq!(
        all_pods
            .list(&ListParams::default().labels("scheduling.x-k8s.io/pod-group=train-a"))
            .await
            .unwrap()
            .items
            .len(),
        4
    );

    // Paging: the pages of a list are a consistent snapshot, even with writes in between.
    let first = nodes.list(&ListParams::default().limit(5)).await.unwrap();
    assert_eq!(first.items.len(), 5);
    let token = first.metadata.continue_.clone().expect("continue token");
    nodes.delete("gpu-r3-n3", &DeleteParams::default()).await.unwrap();
    let mut names: Vec<String> = first.items.iter().map(|n| n.name_any()).collect();
    let mut tok = Some(token);
    while let Some(t) = tok {
        let page = nodes.list(&ListParams::default().limit(5).continue_token(&t)).await.unwrap();
        assert_eq!(page.metadata.resource_version, first.metadata.resource_version);
        names.extend(page.items.iter().map(|n| n.name_any()));
        tok = page.metadata.continue_.filter(|s| !s.is_empty());
    }
    assert_eq!(names.len(), 16, "snapshot still has the deleted node");
    assert_eq!(nodes.list(&ListParams::default()).await.unwrap().items.len(), 15);
}

#[tokio::test]
async fn resource_versions_increase_and_stale_replace_conflicts() {
    let (server, client) = seeded().await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    let p = pods.get("notebook-1").await.unwrap();
    let rv0: u64 = p.resource_version().unwrap().parse().unwrap();
    let mut a = p.clone();
    a.labels_mut().insert("x".into(), "1".into());
    let a2 = pods.replace("notebook-1", &PostParams::default(), &a).await.unwrap();
    let rv1: u64 = a2.resource_version().unwrap().parse().unwrap();
    assert!(rv1 > rv0);
    assert_eq!(rv1, server.state().resource_version());
    // The same stale object again: 409 Conflict.
    let mut b = p.clone();
    b.labels_mut().insert("y".into(), "2".into());
    let (code, msg) = api_status(pods.replace("notebook-1", &PostParams::default(), &b).await.unwrap_err());
    assert_eq!(code, 409);
    assert!(msg.contains("the object has been modified"), "{msg}");
    // A merge patch carrying a stale resourceVersion conflicts too.
    let stale = json!({"metadata": {"resourceVersion": rv0.to_string(), "labels": {"z": "3"}}});
    assert_eq!(
        api_status(pods.patch("notebook-1", &PatchParams::default(), &Patch::Merge(&stale)).await.unwrap_err()).0,
        409
    );
    // A no-op write does not bump the resourceVersion.
    let same = pods.replace("notebook-1", &PostParams::default(), &a2).await.unwrap();
    assert_eq!(same.resource_version(), a2.resource_version());
    // Creating twice: 409 AlreadyExists; missing: 404.
    let dup: Pod = typed(cluster::pending_pod("default", "notebook-1", 1, "mlsched", None));
    let err = pods.create(&PostParams::default(), &dup).await.unwrap_err();
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists"), "{err:?}");
    assert_eq!(api_status(pods.get("nope").await.unwrap_err()).0, 404);
}

#[tokio::test]
async fn patch_types() {
    let (_server, client) = seeded().await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let merged = pods
        .patch("eval-1", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"m": "1"}}})))
        .await
        .unwrap();
    assert_eq!(merged.labels()["m"], "1");
    let jp: json_patch::Patch =
        serde_json::from_value(json!([{"op": "add", "path": "/metadata/annotations", "value": {"j": "2"}}])).unwrap();
    let jpatched = pods.patch("eval-1", &PatchParams::default(), &Patch::Json::<()>(jp)).await.unwrap();
    assert_eq!(jpatched.annotations()["j"], "2");
    let sp = json!({"metadata": {"labels": {"s": "3"}}, "spec": {"containers": [{"name": "main", "image": "img:2"}]}});
    let spatched = pods.patch("eval-1", &PatchParams::default(), &Patch::Strategic(sp)).await.unwrap();
    let c = &spatched.spec.as_ref().unwrap().containers;
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].image.as_deref(), Some("img:2"));
    assert!(c[0].resources.is_some(), "strategic merge keeps the rest of the container");

    // Server-side apply creates and then updates.
    let leases: Api<Lease> = Api::default_namespaced(client.clone());
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "mlsched"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}});
    let pp = PatchParams::apply("mlsched").force();
    leases.patch("mlsched", &pp, &Patch::Apply(&lease)).await.unwrap();
    let l2 = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "mlsched"},
        "spec": {"holderIdentity": "b"}});
    let got = leases.patch("mlsched", &pp, &Patch::Apply(&l2)).await.unwrap();
    let spec = got.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("b"));
    assert_eq!(spec.lease_duration_seconds, Some(15));

    // Strategic merge is refused for custom resources, like the real server (415).
    let groups: Api<DynamicObject> = Api::namespaced_with(client, "default", &podgroup_api_resource());
    let err =
        groups.patch("train-a", &PatchParams::default(), &Patch::Strategic(json!({"spec": {"minMember": 2}}))).await;
    assert_eq!(api_status(err.unwrap_err()).0, 415);
    let ok = groups
        .patch("train-a", &PatchParams::default(), &Patch::Merge(json!({"spec": {"minMember": 2}})))
        .await
        .unwrap();
    assert_eq!(ok.data["spec"]["minMember"], 2);
    assert_eq!(ok.metadata.generation, Some(2));
}

#[tokio::test]
async fn binding_once_then_conflict() {
    let (server, client) = seeded().await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    let pp = PostParams::default();
    let mut annotated = binding("train-a-0", "gpu-r0-n0");
    annotated.metadata.annotations = Some([("mlsched.io/gpu-index".to_string(), "0,1".to_string())].into());
    let st: Status = pods.create_subresource("binding", "train-a-0", &pp, &annotated).await.unwrap();
    assert_eq!(st.code, 201);
    let p = pods.get("train-a-0").await.unwrap();
    assert_eq!(p.spec.as_ref().unwrap().node_name.as_deref(), Some("gpu-r0-n0"));
    let annotations = p.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations.get("mlsched.io/gpu-index").map(String::as_str),
        Some("0,1"),
        "binding annotations reach the pod"
    );
    let conds = p.status.unwrap().conditions.unwrap();
    assert!(conds.iter().any(|c| c.type_ == "PodScheduled" && c.status == "True"));

    let err =
        pods.create_subresource::<_, Status>("binding", "train-a-0", &pp, &binding("train-a-0", "gpu-r1-n0")).await;
    let (code, msg) = api_status(err.unwrap_err());
    assert_eq!(code, 409);
    assert_eq!(msg, "pod train-a-0 is already assigned to node \"gpu-r0-n0\"");
    let err = pods.create_subresource::<_, Status>("binding", "ghost", &pp, &binding("ghost", "gpu-r1-n0")).await;
    assert_eq!(api_status(err.unwrap_err()).0, 404);

    // spec.nodeName cannot be changed by an update: use the binding.
    let mut moved = pods.get("train-a-0").await.unwrap();
    moved.spec.as_mut().unwrap().node_name = Some("gpu-r3-n3".into());
    assert_eq!(api_status(pods.replace("train-a-0", &pp, &moved).await.unwrap_err()).0, 422);

    assert_eq!(server.state().binding_count("default", "train-a-0"), 1);
    assert_eq!(server.state().node_of("default", "train-a-0").as_deref(), Some("gpu-r0-n0"));
    assert_eq!(server.state().bindings().len(), 1);
    let binds = server
        .faults()
        .count(&mlsched_tests::RequestMatch::new(mlsched_tests::Verb::Create, "pods").subresource("binding"), None);
    assert_eq!(binds, 3);
}

#[tokio::test]
async fn status_subresource_only_touches_status() {
    let (_server, client) = seeded().await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let before = pods.get("eval-1").await.unwrap();
    // Status patch that also tries to change a label: only status changes.
    let patch = json!({"metadata": {"labels": {"sneaky": "1"}}, "status": {"conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/16 nodes are available"}]}});
    let after = pods.patch_status("eval-1", &PatchParams::default(), &Patch::Strategic(&patch)).await.unwrap();
    assert!(!after.labels().contains_key("sneaky"));
    assert_eq!(after.spec, before.spec);
    let conds = after.status.as_ref().unwrap().conditions.clone().unwrap();
    assert_eq!(conds[0].reason.as_deref(), Some("Unschedulable"));
    assert_eq!(after.status.as_ref().unwrap().phase.as_deref(), Some("Pending"));
    // Main-resource patch ignores status.
    let main = pods
        .patch(
            "eval-1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"l": "1"}}, "status": {"phase": "Running"}})),
        )
        .await
        .unwrap();
    assert_eq!(main.status.as_ref().unwrap().phase.as_deref(), Some("Pending"));
    assert_eq!(main.labels()["l"], "1");

    // Same on the PodGroup CRD, with a merge patch and a PUT of /status.
    let groups: Api<DynamicObject> = Api::namespaced_with(client, "default", &podgroup_api_resource());
    let g = groups
        .patch_status(
            "train-a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"minMember": 1}, "status": {"phase": "Pending", "scheduled": 0}})),
        )
        .await
        .unwrap();
    assert_eq!(g.data["spec"]["minMember"], 4);
    assert_eq!(g.data["status"]["phase"], "Pending");
    let mut g2 = g.clone();
    g2.data["status"]["phase"] = json!("Scheduled");
    g2.data["spec"]["minMember"] = json!(9);
    let g3 = groups.replace_status("train-a", &PostParams::default(), &g2).await.unwrap();
    assert_eq!(g3.data["status"]["phase"], "Scheduled");
    assert_eq!(g3.data["spec"]["minMember"], 4);
    assert_eq!(g3.metadata.generation, Some(1), "status writes do not bump generation");
}

#[tokio::test]
async fn delete_finalizers_events_and_leases() {
    let (server, client) = seeded().await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    pods.patch("eval-1", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": ["test/hold"]}})))
        .await
        .unwrap();
    let r = pods.delete("eval-1", &DeleteParams::default()).await.unwrap();
    assert!(r.left().is_some_and(|p| p.metadata.deletion_timestamp.is_some()));
    assert!(pods.get("eval-1").await.is_ok());
    pods.patch("eval-1", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}})))
        .await
        .unwrap();
    assert_eq!(api_status(pods.get("eval-1").await.unwrap_err()).0, 404);
    let r = pods.delete("notebook-1", &DeleteParams::default()).await.unwrap();
    assert!(r.is_left(), "pods answer a delete with the object");
    assert!(server.state().pod("default", "notebook-1").is_none());
    let nodes: Api<Node> = Api::all(client.clone());
    let r = nodes.delete("gpu-r0-n0", &DeleteParams::default()).await.unwrap();
    assert!(r.right().is_some_and(|s| s.is_success()), "other kinds answer with a Success Status");

    let core_events: Api<k8s_openapi::api::core::v1::Event> = Api::default_namespaced(client.clone());
    let ev = json!({"metadata": {"generateName": "train-a-0."}, "involvedObject": {"kind": "Pod", "name": "train-a-0", "namespace": "default"},
        "reason": "FailedScheduling", "message": "0/16 nodes are available", "type": "Warning"});
    let created = core_events.create(&PostParams::default(), &typed(ev)).await.unwrap();
    assert!(created.name_any().starts_with("train-a-0."));
    let new_events: Api<k8s_openapi::api::events::v1::Event> = Api::default_namespaced(client.clone());
    let ev2 = json!({"metadata": {"name": "e2"}, "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "mlsched",
        "reportingInstance": "mlsched-0", "action": "Scheduling", "reason": "Scheduled", "regarding": {"kind": "Pod", "name": "x"}, "type": "Normal"});
    new_events.create(&PostParams::default(), &typed(ev2)).await.unwrap();
    assert_eq!(new_events.list(&ListParams::default()).await.unwrap().items.len(), 1);
    assert_eq!(
        core_events.list(&ListParams::default().fields("reason=FailedScheduling")).await.unwrap().items.len(),
        1
    );

    let leases: Api<Lease> = Api::namespaced(client, "kube-system");
    let l: Lease = typed(
        json!({"metadata": {"name": "mlsched-leader"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}),
    );
    let l = leases.create(&PostParams::default(), &l).await.unwrap();
    let mut stale = l.clone();
    let mut l2 = l.clone();
    l2.spec.as_mut().unwrap().holder_identity = Some("b".into());
    leases.replace("mlsched-leader", &PostParams::default(), &l2).await.unwrap();
    stale.spec.as_mut().unwrap().holder_identity = Some("c".into());
    assert_eq!(api_status(leases.replace("mlsched-leader", &PostParams::default(), &stale).await.unwrap_err()).0, 409);
}
