//! The fault proxy in front of the real API server, driven by kube's client as the `mlsched`
//! ServiceAccount: injected answers reach the client as the API server's would, real answers pass through,
//! latency holds only the matching requests, cut watches are resumed, and a partition fails requests until
//! it is lifted.

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Binding, Node, Pod};
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use mlsched_tests::cluster::{gpu_node, pending_pod};
use mlsched_tests::real::fault_proxy::FaultProxy;
use mlsched_tests::real::{self, Cluster, objects};
use mlsched_tests::testing::{eventually, typed};
use mlsched_tests::{FaultSpec, RequestMatch, Verb};
use serde_json::json;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(30);

/// The shared control plane, a namespace of the test's own and a proxy in front of the API server.
struct Setup {
    cluster: &'static Cluster,
    admin: Client,
    proxy: FaultProxy,
    ns: String,
}

impl Setup {
    async fn new(ns: &str) -> Setup {
        let cluster = tokio::task::spawn_blocking(real::shared).await.expect("control plane");
        let admin = cluster.control_plane.admin_client().await;
        objects::create_namespace(&admin, ns).await.expect("namespace");
        let cp = &cluster.control_plane;
        let proxy = FaultProxy::start(&cp.url, &cp.pki.ca_pem).await.expect("proxy starts");
        Setup { cluster, admin, proxy, ns: ns.to_string() }
    }

    /// A client as the `mlsched` ServiceAccount through the proxy; `retry: false` turns off kube's own
    /// retries of 429/503/504, to see those answers.
    async fn client(&self, retry: bool) -> Client {
        let file = format!("{}-via-proxy-{retry}.kubeconfig", self.ns);
        let path = self.cluster.scheduler_kubeconfig_via(&file, self.proxy.url()).expect("kubeconfig");
        let mut config = self.cluster.control_plane.kube_config_from(&path).await;
        config.default_retry = retry;
        Client::try_from(config).expect("client")
    }

    async fn pod(&self, name: &str) {
        let pods: Api<Pod> = Api::namespaced(self.admin.clone(), &self.ns);
        pods.create(&PostParams::default(), &typed(pending_pod(&self.ns, name, 1, "mlsched", None)))
            .await
            .expect("pod");
    }

    fn pods(&self) -> RequestMatch {
        RequestMatch::new(Verb::List, "pods").namespace(&self.ns)
    }

    fn pod_watches(&self) -> RequestMatch {
        RequestMatch::new(Verb::Watch, "pods").namespace(&self.ns)
    }

    async fn finish(self) {
        objects::delete_namespace(&self.admin, &self.ns).await.expect("namespace deleted");
    }
}

fn api_error(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Pod names a kube watcher (with kube's default backoff) reports, as they come.
fn watch_pods(client: Client, ns: &str) -> (mpsc::UnboundedReceiver<String>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let api: Api<Pod> = Api::namespaced(client, ns);
    let task = tokio::spawn(async move {
        let mut pods = watcher(api, watcher::Config::default()).default_backoff().applied_objects().boxed();
        while let Some(event) = pods.next().await {
            if let Ok(pod) = event
                && tx.send(pod.name_any()).is_err()
            {
                return;
            }
        }
    });
    (rx, task)
}

async fn seen(rx: &mut mpsc::UnboundedReceiver<String>, name: &str) {
    let found = tokio::time::timeout(WAIT, async {
        while let Some(n) = rx.recv().await {
            if n == name {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "the watcher reports pod {name}");
}

/// Waits until the watcher's watch (after its initial list) streams through the proxy.
async fn watching(s: &Setup) {
    eventually("the watcher's watch open", WAIT, || async { (s.proxy.faults().open_watches() == 1).then_some(()) })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_answers_are_kubernetes_status_objects_and_real_ones_pass_through() {
    let s = Setup::new("proxy-answers").await;
    let client = s.client(true).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &s.ns);
    let lp = ListParams::default();
    let faults = s.proxy.faults();

    faults.inject(FaultSpec::new(s.pods(), 1, 500).message("etcdserver: request timed out"));
    let e = api_error(pods.list(&lp).await.unwrap_err());
    assert_eq!(
        (e.code, e.reason.as_str(), e.message.as_str()),
        (500, "InternalError", "etcdserver: request timed out")
    );
    faults.fail_next(s.pods(), 1, 404);
    let e = api_error(pods.list(&lp).await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (404, "NotFound"));
    faults.fail_next(s.pods(), 1, 409);
    let e = api_error(pods.list(&lp).await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert!(e.message.contains("the object has been modified"), "{}", e.message);

    // What the API server itself refuses passes through: the ServiceAccount may not read Secrets.
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), &s.ns);
    assert_eq!(api_error(secrets.list(&lp).await.unwrap_err()).code, 403);
    let forbidden = RequestMatch::new(Verb::List, "secrets").namespace(&s.ns);
    assert_eq!(faults.requests_matching(&forbidden, Some(403)).iter().filter(|r| !r.injected).count(), 1);

    // A 429 carries Retry-After, and kube's client waits that long and retries by itself.
    faults.inject(FaultSpec::new(s.pods(), 1, 429).retry_after(1));
    let raw = http::Request::get(format!("/api/v1/namespaces/{}/pods", s.ns)).body(Vec::new()).unwrap();
    let answer = s.client(false).await.send(raw.map(kube::client::Body::from)).await.expect("an answer");
    assert_eq!(answer.status().as_u16(), 429);
    assert_eq!(answer.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    let body = http_body_util::BodyExt::collect(answer.into_body()).await.expect("body").to_bytes();
    let status: serde_json::Value = serde_json::from_slice(&body).expect("a Status object");
    assert_eq!((status["kind"].as_str(), status["reason"].as_str()), (Some("Status"), Some("TooManyRequests")));

    faults.inject(FaultSpec::new(s.pods(), 1, 429).retry_after(1));
    let started = Instant::now();
    pods.list(&lp).await.expect("retried past the 429");
    assert!(started.elapsed() >= Duration::from_secs(1), "kube waited Retry-After: {:?}", started.elapsed());
    assert_eq!(faults.count(&s.pods(), Some(429)), 2);
    assert_eq!(faults.pending(), 0);
    assert!(faults.requests_matching(&s.pods(), Some(200)).iter().all(|r| !r.injected));
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bind_failed_by_the_proxy_changes_nothing_and_the_real_bind_then_succeeds() {
    let s = Setup::new("proxy-bind").await;
    let _alone = real::exclusive().await;
    objects::add_node(&s.admin, gpu_node("proxy-bind-n1", 8, 64, 512, &[])).await.expect("node");
    s.pod("p").await;
    let pods: Api<Pod> = Api::namespaced(s.client(true).await, &s.ns);
    let binding: Binding = typed(json!({
        "apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p", "namespace": s.ns},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "proxy-bind-n1"}
    }));
    let pp = PostParams::default();
    let bind = || pods.create_subresource::<_, serde_json::Value>("binding", "p", &pp, &binding);
    let binds = RequestMatch::new(Verb::Create, "pods").subresource("binding").namespace(&s.ns).name("p");
    s.proxy.faults().fail_next(binds.clone(), 1, 500);

    assert_eq!(api_error(bind().await.unwrap_err()).code, 500);
    let admin_pods: Api<Pod> = Api::namespaced(s.admin.clone(), &s.ns);
    let node_of = || async { admin_pods.get("p").await.expect("pod").spec.and_then(|s| s.node_name) };
    assert_eq!(node_of().await, None, "the failed bind never reached the API server");
    bind().await.expect("the real bind");
    assert_eq!(node_of().await.as_deref(), Some("proxy-bind-n1"));
    // A second bind is the API server's own 409, not an injected one.
    assert_eq!(api_error(bind().await.unwrap_err()).code, 409);

    let log: Vec<(u16, bool)> =
        s.proxy.faults().requests_matching(&binds, None).iter().map(|r| (r.status, r.injected)).collect();
    assert_eq!(log, [(500, true), (201, false), (409, false)]);
    objects::delete_harness_nodes(&s.admin).await.expect("nodes deleted");
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_holds_only_the_matching_requests() {
    let s = Setup::new("proxy-latency").await;
    let client = s.client(true).await;
    let delay = Duration::from_secs(3);
    s.proxy.faults().add_latency(s.pods(), delay);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &s.ns);
    let started = Instant::now();
    let slow = tokio::spawn(async move { pods.list(&ListParams::default()).await.map(|l| l.items.len()) });
    eventually("the pod list held by the proxy", WAIT, || async { (s.proxy.in_flight(&s.pods()) == 1).then_some(()) })
        .await;
    // Meanwhile other requests go through at once.
    Api::<Node>::all(client).list(&ListParams::default()).await.expect("nodes listed");
    assert!(!slow.is_finished(), "the delayed list answered after {:?}", started.elapsed());
    assert_eq!(slow.await.expect("no panic").expect("listed"), 0);
    assert!(started.elapsed() >= delay, "answered after {:?}", started.elapsed());
    assert_eq!(s.proxy.in_flight(&RequestMatch::any()), 0);
    assert_eq!(s.proxy.faults().count(&s.pods(), Some(200)), 1);
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_watch_is_resumed_where_it_stopped() {
    let s = Setup::new("proxy-watch-cut").await;
    let (mut names, task) = watch_pods(s.client(true).await, &s.ns);
    s.pod("a").await;
    seen(&mut names, "a").await;
    let faults = s.proxy.faults();
    watching(&s).await;
    assert_eq!(faults.count(&s.pod_watches(), None), 1);
    let lists = faults.count(&s.pods(), None);

    s.proxy.cut_watches();
    eventually("the watch re-opened", WAIT, || async {
        (faults.count(&s.pod_watches(), None) == 2 && faults.open_watches() == 1).then_some(())
    })
    .await;
    s.pod("b").await;
    seen(&mut names, "b").await;
    // Resumed from the last version seen, not re-listed.
    assert_eq!(faults.count(&s.pods(), None), lists);
    let resumed = faults.requests_matching(&s.pod_watches(), None).pop().expect("the second watch");
    let version = resumed.path.split(['?', '&']).find_map(|p| p.strip_prefix("resourceVersion=")).unwrap_or("");
    assert!(!version.is_empty() && version != "0", "resumed from a version: {}", resumed.path);
    task.abort();
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_resumed_from_an_expired_version_relists() {
    let s = Setup::new("proxy-watch-expired").await;
    let (mut names, task) = watch_pods(s.client(true).await, &s.ns);
    s.pod("a").await;
    seen(&mut names, "a").await;
    let faults = s.proxy.faults();
    watching(&s).await;
    let lists = faults.count(&s.pods(), None);
    // The resume is answered as the API server answers one from a compacted version.
    faults.fail_next(s.pod_watches(), 1, 410);
    s.proxy.cut_watches();
    eventually("a re-list after the 410", WAIT, || async { (faults.count(&s.pods(), None) > lists).then_some(()) })
        .await;
    assert_eq!(faults.count(&s.pod_watches(), Some(410)), 1);
    s.pod("b").await;
    seen(&mut names, "b").await;
    task.abort();
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_fails_requests_and_lifting_it_restores_them() {
    let s = Setup::new("proxy-partition").await;
    let client = s.client(true).await;
    let (mut names, task) = watch_pods(client.clone(), &s.ns);
    s.pod("a").await;
    seen(&mut names, "a").await;
    let faults = s.proxy.faults();
    watching(&s).await;
    let pods: Api<Pod> = Api::namespaced(client, &s.ns);
    let lists = faults.count(&s.pods(), None);

    s.proxy.partition(true);
    eventually("the open watch cut", WAIT, || async { (faults.open_watches() == 0).then_some(()) }).await;
    for _ in 0..3 {
        let e = tokio::time::timeout(WAIT, pods.list(&ListParams::default())).await.expect("fails, not hangs");
        let e = e.expect_err("no request gets through");
        assert!(!matches!(e, kube::Error::Api(_)), "no answer at all, got {e:?}");
    }
    assert_eq!(faults.count(&s.pods(), None), lists, "nothing reached the API server");
    s.pod("b").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    while let Ok(name) = names.try_recv() {
        assert_ne!(name, "b", "nothing new reaches the watcher while partitioned");
    }

    s.proxy.partition(false);
    let listed = pods.list(&ListParams::default()).await.expect("through again");
    assert_eq!(listed.items.len(), 2);
    seen(&mut names, "b").await;
    watching(&s).await;
    task.abort();
    s.finish().await;
}
