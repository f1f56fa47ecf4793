//! Fault injection as the kube client sees it: injected errors, kube's automatic retries, latency, and the
//! request log.

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Binding, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams, PostParams};
use kube::core::response::Status;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Client, ResourceExt};
use mlsched_tests::cluster::{self};
use mlsched_tests::testing::{eventually, typed};
use mlsched_tests::{ApiServerHandle, FaultSpec, RequestMatch, Verb};

const WAIT: Duration = Duration::from_secs(10);

use mlsched_tests::testing::seeded_server as seeded;

/// A client without kube's default retry of 429/503/504, to see those answers.
fn no_retry_client(server: &ApiServerHandle) -> Client {
    let mut cfg = server.kube_config();
    cfg.default_retry = false;
    Client::try_from(cfg).unwrap()
}

fn binding(pod: &str, node: &str) -> Binding {
    Binding {
        metadata: ObjectMeta { name: Some(pod.into()), ..Default::default() },
        target: ObjectReference { kind: Some("Node".into()), name: Some(node.into()), ..Default::default() },
    }
}

fn code(e: kube::Error) -> u16 {
    match e {
        kube::Error::Api(s) => s.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn injected_errors_reach_the_client_then_clear() {
    let (server, client) = seeded().await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    server.faults().fail_next(RequestMatch::new(Verb::Create, "pods").subresource("binding"), 2, 500);
    let pp = PostParams::default();
    for _ in 0..2 {
        let e = pods.create_subresource::<_, Status>("binding", "eval-1", &pp, &binding("eval-1", "gpu-r0-n0")).await;
        assert_eq!(code(e.unwrap_err()), 500);
    }
    assert_eq!(server.state().binding_count("default", "eval-1"), 0, "a failed request changes nothing");
    let _: Status = pods.create_subresource("binding", "eval-1", &pp, &binding("eval-1", "gpu-r0-n0")).await.unwrap();
    assert_eq!(server.faults().pending(), 0);

    // A 409 on a write that would otherwise succeed, scoped by name.
    server.faults().inject(
        FaultSpec::new(RequestMatch::new(Verb::Create, "pods").subresource("binding").name("eval-1"), 1, 409)
            .message("injected conflict"),
    );
    let e =
        pods.create_subresource::<_, Status>("binding", "notebook-1", &pp, &binding("notebook-1", "gpu-r0-n1")).await;
    assert!(e.is_ok(), "other pods are not affected");
    let e = pods.create_subresource::<_, Status>("binding", "eval-1", &pp, &binding("eval-1", "gpu-r0-n1")).await;
    match e.unwrap_err() {
        kube::Error::Api(s) => {
            assert_eq!((s.code, s.reason.as_str(), s.message.as_str()), (409, "Conflict", "injected conflict"));
        }
        other => panic!("{other:?}"),
    }

    // Every request is logged, injected ones marked.
    let log = server.faults().requests_matching(&RequestMatch::new(Verb::Create, "pods").subresource("binding"), None);
    let summary: Vec<(u16, bool)> = log.iter().map(|r| (r.status, r.injected)).collect();
    assert_eq!(summary, vec![(500, true), (500, true), (201, false), (201, false), (409, true)]);
    assert!(log[0].path.starts_with("/api/v1/namespaces/default/pods/eval-1/binding"));
    assert_eq!(log[0].method, "POST");
}

#[tokio::test]
async fn throttling_is_retried_by_kube_and_visible_without_retry() {
    let (server, client) = seeded().await;
    let m = RequestMatch::new(Verb::List, "nodes");
    server.faults().fail_next(m.clone(), 2, 429);
    let nodes: Api<kube::api::PartialObjectMeta<k8s_openapi::api::core::v1::Node>> = Api::all(client);
    let got = nodes.list_metadata(&ListParams::default()).await.expect("kube retries 429 by default");
    assert_eq!(got.items.len(), 16);
    assert_eq!(server.faults().count(&m, Some(429)), 2);
    assert_eq!(server.faults().count(&m, Some(200)), 1);

    let plain: Api<k8s_openapi::api::core::v1::Node> = Api::all(no_retry_client(&server));
    server.faults().inject(FaultSpec::new(m.clone(), 1, 429).retry_after(1));
    assert_eq!(code(plain.list(&ListParams::default()).await.unwrap_err()), 429);
    let r = server.faults().requests().into_iter().last().unwrap();
    assert_eq!((r.status, r.injected), (429, true));
    server.faults().fail_next(RequestMatch::any().resource("nodes"), u32::MAX, 503);
    assert_eq!(code(plain.get("gpu-r0-n0").await.unwrap_err()), 503);
    assert_eq!(code(plain.get("gpu-r0-n0").await.unwrap_err()), 503);
    server.faults().clear();
    assert!(plain.get("gpu-r0-n0").await.is_ok());
}

#[tokio::test]
async fn latency_is_added() {
    let (server, client) = seeded().await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    pods.get("eval-1").await.unwrap();
    server.faults().add_latency(RequestMatch::new(Verb::Get, "pods"), Duration::from_millis(200));
    let t = Instant::now();
    pods.get("eval-1").await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(200));
    let t = Instant::now();
    pods.list(&ListParams::default()).await.unwrap();
    assert!(t.elapsed() < Duration::from_millis(200), "only matching requests are delayed");
}

#[tokio::test]
async fn watcher_survives_failing_lists_and_watches() {
    let (server, client) = seeded().await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    server.faults().fail_next(RequestMatch::new(Verb::List, "pods"), 1, 500);
    server.faults().fail_next(RequestMatch::new(Verb::Watch, "pods"), 1, 500);
    let (reader, writer) = reflector::store();
    let stream =
        reflector(writer, watcher(pods.clone(), watcher::Config::default()).default_backoff()).applied_objects();
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        while stream.next().await.is_some() {}
    });
    tokio::time::timeout(WAIT, reader.wait_until_ready()).await.unwrap().unwrap();
    pods.create(&PostParams::default(), &typed(cluster::pending_pod("default", "late", 1, "mlsched", None)))
        .await
        .unwrap();
    eventually("reflector sees the pod after the failures", WAIT, || {
        let st = reader.state();
        async move { st.iter().any(|p| p.name_any() == "late").then_some(()) }
    })
    .await;
    assert_eq!(server.faults().count(&RequestMatch::new(Verb::List, "pods"), Some(500)), 1);
    assert_eq!(server.faults().count(&RequestMatch::new(Verb::Watch, "pods"), Some(500)), 1);
    assert_eq!(server.faults().pending(), 0);
}
