//! Watches through the real kube client: raw watch events, bookmarks, watcher + reflector, dropped streams,
//! 410 Gone and re-list, selector-driven ADDED/DELETED, streaming lists.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Binding, Node, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::core::response::Status;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use mlsched_tests::cluster::{self, GpuClusterSpec};
use mlsched_tests::testing::{eventually, typed};
use mlsched_tests::{ApiServer, RequestMatch, Verb};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

use mlsched_tests::testing::seeded_server as seeded;

async fn next_event<K: Clone + std::fmt::Debug>(
    s: &mut (impl futures::Stream<Item = kube::Result<WatchEvent<K>>> + Unpin),
) -> WatchEvent<K> {
    tokio::time::timeout(WAIT, s.next()).await.expect("event in time").expect("stream open").expect("event ok")
}

fn binding(pod: &str, node: &str) -> Binding {
    Binding {
        metadata: ObjectMeta { name: Some(pod.into()), ..Default::default() },
        target: ObjectReference { kind: Some("Node".into()), name: Some(node.into()), ..Default::default() },
    }
}

/// Spawns a reflector over `api` and returns its store once the initial list is in.
async fn reflect<K>(api: Api<K>, cfg: watcher::Config) -> reflector::Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector(writer, watcher(api, cfg).default_backoff()).applied_objects();
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        while stream.next().await.is_some() {}
    });
    tokio::time::timeout(WAIT, reader.wait_until_ready()).await.expect("reflector ready in time").expect("ready");
    reader
}

#[tokio::test]
async fn raw_watch_from_resource_version_with_bookmarks() {
    let (server, client) = seeded().await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    let list = pods.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.clone().unwrap();
    let mut s = pods.watch(&WatchParams::default(), &rv).await.unwrap().boxed();

    pods.create(&PostParams::default(), &typed(cluster::pending_pod("default", "w1", 1, "mlsched", None)))
        .await
        .unwrap();
    match next_event(&mut s).await {
        WatchEvent::Added(p) => assert_eq!(p.name_any(), "w1"),
        e => panic!("expected ADDED, got {e:?}"),
    }
    pods.patch("w1", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})))
        .await
        .unwrap();
    let modified_rv = match next_event(&mut s).await {
        WatchEvent::Modified(p) => {
            assert_eq!(p.labels()["a"], "b");
            p.resource_version().unwrap()
        }
        e => panic!("expected MODIFIED, got {e:?}"),
    };
    pods.delete("w1", &DeleteParams::default()).await.unwrap();
    match next_event(&mut s).await {
        WatchEvent::Deleted(p) => {
            assert!(p.resource_version().unwrap().parse::<u64>().unwrap() > modified_rv.parse().unwrap())
        }
        e => panic!("expected DELETED, got {e:?}"),
    }
    // A change to another kind advances the global resourceVersion; a bookmark reports it.
    server
        .state()
        .modify::<Node>("", "gpu-r0-n0", |n| {
            n.labels_mut().insert("touched".into(), "1".into());
        })
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.state().send_bookmarks();
    match next_event(&mut s).await {
        WatchEvent::Bookmark(b) => {
            assert_eq!(b.metadata.resource_version, server.state().resource_version().to_string())
        }
        e => panic!("expected BOOKMARK, got {e:?}"),
    }
    // Without allowWatchBookmarks there are none: next is the next real change.
    let mut plain = pods
        .watch(&WatchParams::default().disable_bookmarks(), &server.state().resource_version().to_string())
        .await
        .unwrap()
        .boxed();
    server.state().send_bookmarks();
    pods.create(&PostParams::default(), &typed(cluster::pending_pod("default", "w2", 1, "mlsched", None)))
        .await
        .unwrap();
    assert!(matches!(next_event(&mut plain).await, WatchEvent::Added(_)));
}

#[tokio::test]
async fn watch_from_compacted_version_is_gone() {
    let (server, client) = seeded().await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    let old = server.state().resource_version().to_string();
    pods.create(&PostParams::default(), &typed(cluster::pending_pod("default", "w1", 1, "mlsched", None)))
        .await
        .unwrap();
    server.state().compact();
    let mut s = pods.watch(&WatchParams::default(), &old).await.unwrap().boxed();
    match next_event(&mut s).await {
        WatchEvent::Error(e) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
            assert!(e.message.starts_with("too old resource version"), "{}", e.message);
        }
        e => panic!("expected ERROR 410, got {e:?}"),
    }
    // A list page from before the compaction is gone too.
    let server2 = ApiServer::start().await.unwrap();
    cluster::seed_gpu_cluster(server2.state(), &GpuClusterSpec::default()).unwrap();
    let nodes: Api<Node> = Api::all(server2.client());
    let page = nodes.list(&ListParams::default().limit(4)).await.unwrap();
    server2
        .state()
        .modify::<Node>("", "gpu-r0-n0", |n| n.labels_mut().extend([("x".to_string(), "y".to_string())]))
        .unwrap();
    server2.state().compact();
    let err =
        nodes.list(&ListParams::default().limit(4).continue_token(page.metadata.continue_.as_deref().unwrap())).await;
    assert!(matches!(err, Err(kube::Error::Api(s)) if s.code == 410));
}

#[tokio::test]
async fn history_limit_makes_slow_resumes_gone() {
    let server = ApiServer::builder().history_limit(5).serve().await.unwrap();
    let pods: Api<Pod> = Api::default_namespaced(server.client());
    let start = server.state().resource_version().to_string();
    for i in 0..10 {
        pods.create(
            &PostParams::default(),
            &typed(cluster::pending_pod("default", &format!("p{i}"), 1, "mlsched", None)),
        )
        .await
        .unwrap();
    }
    let mut s = pods.watch(&WatchParams::default(), &start).await.unwrap().boxed();
    assert!(matches!(next_event(&mut s).await, WatchEvent::Error(e) if e.code == 410));
    // Within the window it works.
    let recent = (server.state().resource_version() - 3).to_string();
    let mut s = pods.watch(&WatchParams::default(), &recent).await.unwrap().boxed();
    assert!(matches!(next_event(&mut s).await, WatchEvent::Added(p) if p.name_any() == "p7"));
}

#[tokio::test]
async fn field_selector_watch_sees_pods_leave_when_bound() {
    let (_server, client) = seeded().await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    let wp = WatchParams::default().fields("spec.schedulerName=mlsched,spec.nodeName=");
    // resourceVersion "0": the current matching objects arrive as ADDED first.
    let mut s = pods.watch(&wp, "0").await.unwrap().boxed();
    let mut initial = Vec::new();
    for _ in 0..8 {
        match next_event(&mut s).await {
            WatchEvent::Added(p) => initial.push(p.name_any()),
            e => panic!("expected ADDED, got {e:?}"),
        }
    }
    assert!(initial.contains(&"train-b-1".to_string()));
    let _: Status = pods
        .create_subresource("binding", "train-b-1", &PostParams::default(), &binding("train-b-1", "gpu-r2-n0"))
        .await
        .unwrap();
    match next_event(&mut s).await {
        WatchEvent::Deleted(p) => {
            assert_eq!(p.name_any(), "train-b-1");
            assert_eq!(p.spec.unwrap().node_name.as_deref(), Some("gpu-r2-n0"));
        }
        e => panic!("expected DELETED (left the selector), got {e:?}"),
    }
}

#[tokio::test]
async fn reflector_follows_changes() {
    let (server, client) = seeded().await;
    let nodes: Api<Node> = Api::all(client.clone());
    let store = reflect(nodes.clone(), watcher::Config::default()).await;
    assert_eq!(store.state().len(), 16);
    server
        .state()
        .create_value(
            &server.state().kind("", "nodes").unwrap(),
            "",
            cluster::gpu_node("gpu-extra", 8, 96, 1024, &[("network.mlsched.io/rack", "rack-9")]),
        )
        .unwrap();
    nodes.delete("gpu-r0-n0", &DeleteParams::default()).await.unwrap();
    eventually("reflector sees add and delete", WAIT, || {
        let st = store.state();
        async move {
            (st.len() == 16
                && st.iter().any(|n| n.name_any() == "gpu-extra")
                && !st.iter().any(|n| n.name_any() == "gpu-r0-n0"))
            .then_some(())
        }
    })
    .await;

    // Label-selected reflector on pods.
    let pods: Api<Pod> = Api::all(client);
    let gang = reflect(pods.clone(), watcher::Config::default().labels("scheduling.x-k8s.io/pod-group=train-a")).await;
    assert_eq!(gang.state().len(), 4);
    Api::<Pod>::default_namespaced(pods.into_client())
        .patch(
            "train-a-0",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"scheduling.x-k8s.io/pod-group": "other"}}})),
        )
        .await
        .unwrap();
    eventually("pod leaves the selected set", WAIT, || {
        let n = gang.state().len();
        async move { (n == 3).then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn watcher_resumes_after_dropped_watch() {
    let (server, client) = seeded().await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    let store = reflect(pods.clone(), watcher::Config::default()).await;
    eventually("watch open", WAIT, || {
        let n = server.faults().open_watches();
        async move { (n == 1).then_some(()) }
    })
    .await;
    let watches = || server.faults().count(&RequestMatch::new(Verb::Watch, "pods"), Some(200));
    let lists = || server.faults().count(&RequestMatch::new(Verb::List, "pods"), None);
    let (w0, l0) = (watches(), lists());
    server.faults().drop_watches();
    pods.create(&PostParams::default(), &typed(cluster::pending_pod("default", "after-drop", 1, "mlsched", None)))
        .await
        .unwrap();
    eventually("reflector sees the pod created while its watch was down", WAIT, || {
        let found = store.get(&reflector::ObjectRef::new("after-drop").within("default")).is_some();
        async move { found.then_some(()) }
    })
    .await;
    assert!(watches() > w0, "the watcher opened a new watch");
    assert_eq!(lists(), l0, "resumed from its resourceVersion without a re-list");
}

#[tokio::test]
async fn watcher_relists_after_410() {
    let (server, client) = seeded().await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    let store = reflect(pods.clone(), watcher::Config::default()).await;
    eventually("watch open", WAIT, || {
        let n = server.faults().open_watches();
        async move { (n == 1).then_some(()) }
    })
    .await;
    let lists = || server.faults().count(&RequestMatch::new(Verb::List, "pods"), Some(200));
    let l0 = lists();
    // Hold back new watches so the change and the compaction happen while the watcher is away.
    server.faults().add_latency(RequestMatch::new(Verb::Watch, "pods"), Duration::from_millis(500));
    server.faults().drop_watches();
    server.state().delete::<Pod>("default", "notebook-1").unwrap();
    let pods_kind = server.state().kind("", "pods").unwrap();
    server
        .state()
        .create_value(&pods_kind, "default", cluster::pending_pod("default", "after-gone", 1, "mlsched", None))
        .unwrap();
    server.state().compact();
    eventually("reflector re-lists and converges", WAIT, || {
        let st = store.state();
        async move {
            (st.iter().any(|p| p.name_any() == "after-gone") && !st.iter().any(|p| p.name_any() == "notebook-1"))
                .then_some(())
        }
    })
    .await;
    assert!(lists() > l0, "a 410 makes kube's watcher list again");
}

#[tokio::test]
async fn streaming_list_watcher() {
    let (server, client) = seeded().await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    let store = reflect(pods.clone(), watcher::Config::default().streaming_lists()).await;
    assert_eq!(store.state().len(), 8);
    assert_eq!(
        server.faults().count(&RequestMatch::new(Verb::List, "pods"), None),
        0,
        "no list request with streaming lists"
    );
    pods.delete("eval-1", &DeleteParams::default()).await.unwrap();
    eventually("delete seen", WAIT, || {
        let n = store.state().len();
        async move { (n == 7).then_some(()) }
    })
    .await;
    // The events stream is also usable directly.
    let mut objs = watcher(pods, watcher::Config::default()).touched_objects().boxed();
    assert!(tokio::time::timeout(WAIT, objs.try_next()).await.unwrap().unwrap().is_some());
}
