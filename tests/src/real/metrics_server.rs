//! `metrics.k8s.io/v1beta1` on the real control plane: a small aggregated API server of the tests' own in
//! place of metrics-server, registered with kube-apiserver as the `APIService` `v1beta1.metrics.k8s.io`,
//! so clients read PodMetrics (and NodeMetrics) through the real API server, its authentication, RBAC and
//! aggregation proxy, exactly as they would read metrics-server's.
//!
//! The usage figures are the test's: [`MetricsServer::set_pod_usage`] stores a sample the way the API
//! double does ([`crate::metrics_api`]). What is served is what metrics-server serves: samples of pods
//! (nodes) that exist, with their current labels, selected by the API server's own label and field
//! selectors (the pods are listed from the real API server on every request, as metrics-server lists them
//! from its informer).
//!
//! ```no_run
//! # async fn demo() {
//! use mlsched_tests::metrics_api::ContainerUsage;
//! let metrics = mlsched_tests::real::metrics_server::shared().await;   // starts and registers it once
//! metrics.set_pod_usage("default", "web-0", &[ContainerUsage::new("app", 900, 100 << 20)]).unwrap();
//! # }
//! ```
//!
//! Registration: an `ExternalName` Service whose name is `127.0.0.1` (the aggregator dials the external
//! name and the APIService's port, no Endpoints or kube-proxy needed; `--enable-aggregator-routing` must
//! stay off, it only routes to Endpoints), and the APIService with a `caBundle` for the server's own CA.
//! The aggregator verifies the serving certificate for `<service>.<namespace>.svc`; this server verifies
//! the aggregator's front-proxy client certificate against the front-proxy CA and trusts the
//! `X-Remote-User` it forwards. Authorization is kube-apiserver's: it checks RBAC before it proxies.

use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::{APIService, APIServiceSpec, ServiceReference};
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams};
use kube::{Client, ResourceExt};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};

use super::Cluster;
use super::objects::{self, MANAGER};
use crate::error::ApiError;
use crate::metrics_api::{self, ContainerUsage, METRICS_GROUP, METRICS_VERSION};
use crate::resources::ResourceKind;
use crate::state::StateHandle;
use crate::store::{Store, now_timestamp};

/// The Service the APIService points at.
pub const SERVICE_NAMESPACE: &str = "kube-system";
pub const SERVICE_NAME: &str = "mlsched-e2e-metrics";
/// The APIService, named as metrics-server's.
pub const API_SERVICE: &str = "v1beta1.metrics.k8s.io";

/// The served kind of NodeMetrics (`metrics.k8s.io/v1beta1`, plural `nodes`, cluster-scoped).
pub fn node_metrics_kind() -> ResourceKind {
    ResourceKind::new(METRICS_GROUP, METRICS_VERSION, "nodes", "NodeMetrics", false)
}

/// One request answered (the aggregator's availability checks and discovery included).
#[derive(Clone, Debug)]
pub struct Served {
    pub method: String,
    pub path: String,
    pub query: String,
    /// `X-Remote-User` as forwarded by kube-apiserver: who asked.
    pub user: String,
    pub groups: Vec<String>,
    pub status: u16,
}

#[derive(Default)]
struct Log {
    served: Vec<Served>,
    handshake_errors: Vec<String>,
}

/// The running server. It serves until the process ends (its control plane is per process too).
pub struct MetricsServer {
    addr: SocketAddr,
    samples: StateHandle,
    log: Arc<Mutex<Log>>,
}

impl std::fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsServer").field("addr", &self.addr).finish()
    }
}

/// The metrics server of the test binary's shared control plane ([`super::shared`]), started and
/// registered on first use; returns once the API server routes `metrics.k8s.io` to it.
pub async fn shared() -> &'static MetricsServer {
    static SHARED: tokio::sync::OnceCell<MetricsServer> = tokio::sync::OnceCell::const_new();
    SHARED
        .get_or_init(|| async {
            let cluster = tokio::task::spawn_blocking(super::shared).await.expect("the control plane starts");
            match MetricsServer::start(cluster).await {
                Ok(m) => m,
                Err(e) => panic!("starting the metrics.k8s.io server: {e}"),
            }
        })
        .await
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

impl MetricsServer {
    /// Starts serving on 127.0.0.1 (in a thread of its own, so it outlives the calling test's runtime),
    /// registers the APIService with `cluster` and waits until it is Available and routed.
    pub async fn start(cluster: &Cluster) -> io::Result<MetricsServer> {
        let cp = &cluster.control_plane;
        let (ca_pem, tls) = tls_config(&fs::read(&cp.pki.front_proxy_ca.cert)?)?;
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let store = Store::new(vec![metrics_api::pod_metrics_kind(), node_metrics_kind()], 64);
        let samples = StateHandle { store: Arc::new(store) };
        let log = Arc::new(Mutex::new(Log::default()));
        // Its own identity would buy nothing: metrics-server reads pods and nodes with a cluster-wide role.
        let kube_config = cp.kube_config_from(&cp.admin_kubeconfig).await;
        let (served_samples, served_log) = (samples.clone(), log.clone());
        std::thread::Builder::new().name("metrics-server".into()).spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let client = Client::try_from(kube_config).expect("kube client");
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = App { client, samples: served_samples, log: served_log };
                serve(listener, tokio_rustls::TlsAcceptor::from(Arc::new(tls)), app).await;
            });
        })?;
        let server = MetricsServer { addr, samples, log };
        server.register(cluster, &ca_pem).await?;
        Ok(server)
    }

    /// Where it listens (`127.0.0.1:<port>`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sets the usage of pod `ns/pod` (replacing its sample), timestamped now. Served while the pod exists.
    pub fn set_pod_usage(&self, ns: &str, pod: &str, usage: &[ContainerUsage]) -> Result<(), ApiError> {
        metrics_api::set_pod_usage(&self.samples, ns, pod, usage).map(|_| ())
    }

    /// Removes the sample of a pod: metrics-server has not scraped it yet, or lost it.
    pub fn clear_pod_usage(&self, ns: &str, pod: &str) {
        metrics_api::clear_pod_usage(&self.samples, ns, pod);
    }

    /// Sets the usage of node `node`: CPU in millicores, memory in bytes.
    pub fn set_node_usage(&self, node: &str, cpu_milli: i64, memory_bytes: i64) -> Result<(), ApiError> {
        let kind = node_metrics_kind();
        let obj = json!({
            "apiVersion": format!("{METRICS_GROUP}/{METRICS_VERSION}"),
            "kind": "NodeMetrics",
            "metadata": {"name": node},
            "timestamp": now_timestamp(),
            "window": "15s",
            "usage": {"cpu": format!("{cpu_milli}m"), "memory": memory_bytes.to_string()},
        });
        match self.samples.get_value(&kind, "", node) {
            Some(_) => self.samples.replace_value(&kind, "", node, obj),
            None => self.samples.create_value(&kind, "", obj),
        }
        .map(|_| ())
    }

    /// Every request answered so far, oldest first.
    pub fn requests(&self) -> Vec<Served> {
        lock(&self.log).served.clone()
    }

    /// Takes `metrics.k8s.io` down for the whole cluster (`down`), as a metrics-server that no longer
    /// answers: the APIService is pointed at a port nothing serves, and kube-apiserver's proxy waits on it
    /// (minutes on this harness's loopback) before it answers 503. Returns at once when taking it down;
    /// when bringing it back, once the API server serves the group again.
    pub async fn set_outage(&self, cluster: &Cluster, down: bool) -> io::Result<()> {
        let admin = cluster.control_plane.admin_client().await;
        // Port 1 (tcpmux) is privileged and unused on the machines the harness runs on.
        let port = if down { 1 } else { i32::from(self.addr.port()) };
        let services: Api<APIService> = Api::all(admin.clone());
        let patch = json!({"spec": {"service": {"port": port}}});
        services.patch(API_SERVICE, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(other)?;
        if down {
            return Ok(());
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let discovery = format!("/apis/{METRICS_GROUP}/{METRICS_VERSION}");
            let req = http::Request::get(discovery.as_str()).body(Vec::new()).map_err(other)?;
            let answered = tokio::time::timeout(Duration::from_secs(5), admin.request_text(req)).await;
            if matches!(answered, Ok(Ok(_))) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(other("metrics.k8s.io still unavailable 120 s after the APIService was restored"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn register(&self, cluster: &Cluster, ca_pem: &str) -> io::Result<()> {
        let admin = cluster.control_plane.admin_client().await;
        // The API server creates kube-system at start, but not necessarily before it first answers ready.
        objects::create_namespace(&admin, SERVICE_NAMESPACE).await.map_err(other)?;
        let service = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": SERVICE_NAME, "namespace": SERVICE_NAMESPACE},
            // An IP as the name: it is a valid DNS-1123 subdomain, and "localhost" may resolve to ::1 first.
            "spec": {"type": "ExternalName", "externalName": Ipv4Addr::LOCALHOST.to_string()},
        });
        objects::apply_yaml(&admin, &service.to_string()).await.map_err(other)?;
        let api_service = APIService {
            metadata: ObjectMeta { name: Some(API_SERVICE.into()), ..ObjectMeta::default() },
            spec: Some(APIServiceSpec {
                group: Some(METRICS_GROUP.into()),
                version: Some(METRICS_VERSION.into()),
                service: Some(ServiceReference {
                    namespace: Some(SERVICE_NAMESPACE.into()),
                    name: Some(SERVICE_NAME.into()),
                    port: Some(i32::from(self.addr.port())),
                }),
                ca_bundle: Some(ByteString(ca_pem.as_bytes().to_vec())),
                insecure_skip_tls_verify: None,
                group_priority_minimum: 100,
                version_priority: 100,
            }),
            status: None,
        };
        let mut body = serde_json::to_value(&api_service).map_err(other)?;
        body["apiVersion"] = json!("apiregistration.k8s.io/v1");
        body["kind"] = json!("APIService");
        let services: Api<APIService> = Api::all(admin.clone());
        services.patch(API_SERVICE, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&body)).await.map_err(other)?;

        let deadline = Instant::now() + Duration::from_secs(90);
        let mut last = String::from("no status yet");
        loop {
            let available = services.get(API_SERVICE).await.ok().and_then(|s| {
                let c = s.status?.conditions?.into_iter().find(|c| c.type_ == "Available")?;
                last = format!("{}: {}", c.reason.unwrap_or_default(), c.message.unwrap_or_default());
                Some(c.status == "True")
            });
            // Available is written by the availability controller; the proxy learns it from its informer
            // a moment later, and answers 503 until then.
            if available == Some(true) {
                let discovery = format!("/apis/{METRICS_GROUP}/{METRICS_VERSION}");
                let req = http::Request::get(discovery.as_str()).body(Vec::new()).map_err(other)?;
                if admin.request_text(req).await.is_ok() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                let tls = lock(&self.log).handshake_errors.join("; ");
                return Err(other(format!(
                    "APIService {API_SERVICE} not available after 90 s ({last}); TLS handshake errors: [{tls}]"
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn lock(log: &Mutex<Log>) -> MutexGuard<'_, Log> {
    log.lock().unwrap_or_else(|e| e.into_inner())
}

/// The serving CA (PEM, for the APIService's `caBundle`) and the TLS configuration: a certificate for the
/// Service's name, and client certificates required from the front-proxy CA.
fn tls_config(front_proxy_ca: &[u8]) -> io::Result<(String, rustls::ServerConfig)> {
    let ca_key = KeyPair::generate().map_err(other)?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name.push(DnType::CommonName, "mlsched-e2e-metrics-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca_cert = ca.self_signed(&ca_key).map_err(other)?;
    let issuer = Issuer::new(ca, ca_key);
    // The aggregator checks the name `<service>.<namespace>.svc`, whatever address it dialled.
    let mut leaf = CertificateParams::new(vec![format!("{SERVICE_NAME}.{SERVICE_NAMESPACE}.svc")]).map_err(other)?;
    leaf.subject_alt_names.push(SanType::IpAddress(Ipv4Addr::LOCALHOST.into()));
    leaf.distinguished_name.push(DnType::CommonName, SERVICE_NAME);
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().map_err(other)?;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).map_err(other)?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(front_proxy_ca) {
        roots.add(cert.map_err(other)?).map_err(other)?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(other)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(other)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![leaf_cert.der().clone(), ca_cert.der().clone()], key)
        .map_err(other)?;
    // The aggregator's Go transport offers h2 first; this server speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((ca_cert.pem(), config))
}

#[derive(Clone)]
struct App {
    client: Client,
    samples: StateHandle,
    log: Arc<Mutex<Log>>,
}

async fn serve(listener: tokio::net::TcpListener, acceptor: tokio_rustls::TlsAcceptor, app: App) {
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => return lock(&app.log).handshake_errors.push(e.to_string()),
                Err(_) => return lock(&app.log).handshake_errors.push("handshake timed out".into()),
            };
            let service = service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(&app, req).await) }
            });
            let _ = http1::Builder::new().serve_connection(TokioIo::new(tls), service).await;
        });
    }
}

fn header_values(req: &Request<hyper::body::Incoming>, name: &str) -> Vec<String> {
    req.headers().get_all(name).iter().filter_map(|v| v.to_str().ok()).map(str::to_string).collect()
}

async fn handle(app: &App, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let answer = if req.method() == Method::GET {
        route(app, &path, &query).await
    } else {
        Err(ApiError::new(405, format!("the server does not allow this method on the requested resource: {path}"))
            .with_reason("MethodNotAllowed"))
    };
    let (status, body, content_type) = match answer {
        Ok(Answer::Json(v)) => (200, serde_json::to_vec(&v).unwrap_or_default(), "application/json"),
        Ok(Answer::Text(t)) => (200, t.as_bytes().to_vec(), "text/plain; charset=utf-8"),
        Err(e) => (e.code, serde_json::to_vec(&e.to_status()).unwrap_or_default(), "application/json"),
    };
    lock(&app.log).served.push(Served {
        method: req.method().to_string(),
        path,
        query,
        user: header_values(&req, "x-remote-user").into_iter().next().unwrap_or_default(),
        groups: header_values(&req, "x-remote-group"),
        status,
    });
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = content_type.parse() {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

enum Answer {
    Json(Value),
    Text(&'static str),
}

const API_VERSION: &str = "metrics.k8s.io/v1beta1";

async fn route(app: &App, path: &str, query: &str) -> Result<Answer, ApiError> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let params: Vec<(String, String)> =
        form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let param = |k: &str| params.iter().find(|(pk, _)| pk == k).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
    if matches!(param("watch"), Some("true" | "1")) {
        return Err(ApiError::new(405, "watch is not supported by metrics.k8s.io").with_reason("MethodNotAllowed"));
    }
    let selectors = (param("labelSelector"), param("fieldSelector"));
    match segs.as_slice() {
        ["healthz" | "readyz" | "livez", ..] => Ok(Answer::Text("ok")),
        ["apis"] => Ok(Answer::Json(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [group()]}))),
        ["apis", METRICS_GROUP] => Ok(Answer::Json(group())),
        ["apis", METRICS_GROUP, METRICS_VERSION] => Ok(Answer::Json(resource_list())),
        ["apis", METRICS_GROUP, METRICS_VERSION, "pods"] => list_pods(app, None, selectors).await,
        ["apis", METRICS_GROUP, METRICS_VERSION, "namespaces", ns, "pods"] => list_pods(app, Some(ns), selectors).await,
        ["apis", METRICS_GROUP, METRICS_VERSION, "namespaces", ns, "pods", name] => get_pod(app, ns, name).await,
        ["apis", METRICS_GROUP, METRICS_VERSION, "nodes"] => list_nodes(app, selectors).await,
        ["apis", METRICS_GROUP, METRICS_VERSION, "nodes", name] => get_node(app, name).await,
        // The aggregator's OpenAPI controllers take a 404 as "no spec", as for metrics-server without one.
        _ => Err(ApiError::new(404, format!("the server could not find the requested resource: {path}"))),
    }
}

fn group() -> Value {
    let version = json!({"groupVersion": API_VERSION, "version": METRICS_VERSION});
    json!({"kind": "APIGroup", "apiVersion": "v1", "name": METRICS_GROUP, "versions": [version.clone()],
           "preferredVersion": version})
}

fn resource_list() -> Value {
    let resource = |name: &str, kind: &str, namespaced: bool| json!({"name": name, "singularName": "", "namespaced": namespaced, "kind": kind, "verbs": ["get", "list"]});
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": API_VERSION,
           "resources": [resource("nodes", "NodeMetrics", false), resource("pods", "PodMetrics", true)]})
}

/// An error of the real API server, passed on (an invalid selector stays a 400).
fn upstream(e: kube::Error) -> ApiError {
    match e {
        kube::Error::Api(s) => ApiError::new(s.code, s.message),
        e => ApiError::new(503, format!("listing from the API server: {e}")),
    }
}

fn list_params((labels, fields): (Option<&str>, Option<&str>)) -> ListParams {
    let mut lp = ListParams::default();
    if let Some(l) = labels {
        lp = lp.labels(l);
    }
    if let Some(f) = fields {
        lp = lp.fields(f);
    }
    lp
}

/// A stored sample as served: the object's identity and labels from the live pod or node, the figures
/// from the sample.
fn present(sample: &Value, meta: &ObjectMeta, kind: &str, figures: &[&str]) -> Value {
    let mut m = json!({"name": meta.name, "labels": meta.labels.clone().unwrap_or_default(),
                       "creationTimestamp": now_timestamp()});
    if let Some(ns) = &meta.namespace {
        m["namespace"] = json!(ns);
    }
    let mut out = json!({"kind": kind, "apiVersion": API_VERSION, "metadata": m});
    for f in figures {
        out[*f] = sample.get(*f).cloned().unwrap_or(Value::Null);
    }
    out
}

const POD_FIGURES: &[&str] = &["timestamp", "window", "containers"];
const NODE_FIGURES: &[&str] = &["timestamp", "window", "usage"];

fn list_of(kind: &str, items: Vec<Value>) -> Answer {
    Answer::Json(json!({"kind": kind, "apiVersion": API_VERSION, "metadata": {}, "items": items}))
}

async fn list_pods(app: &App, ns: Option<&str>, selectors: (Option<&str>, Option<&str>)) -> Result<Answer, ApiError> {
    let api: Api<Pod> = match ns {
        Some(ns) => Api::namespaced(app.client.clone(), ns),
        None => Api::all(app.client.clone()),
    };
    let pods = api.list(&list_params(selectors)).await.map_err(upstream)?;
    let kind = metrics_api::pod_metrics_kind();
    let items = pods
        .items
        .iter()
        .filter_map(|p| {
            let sample = app.samples.get_value(&kind, &p.namespace().unwrap_or_default(), &p.name_any())?;
            Some(present(&sample, &p.metadata, "PodMetrics", POD_FIGURES))
        })
        .collect();
    Ok(list_of("PodMetricsList", items))
}

async fn get_pod(app: &App, ns: &str, name: &str) -> Result<Answer, ApiError> {
    let not_found = || ApiError::not_found("podmetrics.metrics.k8s.io", name, METRICS_GROUP, "pods");
    let api: Api<Pod> = Api::namespaced(app.client.clone(), ns);
    let pod = api.get_opt(name).await.map_err(upstream)?.ok_or_else(not_found)?;
    let sample = app.samples.get_value(&metrics_api::pod_metrics_kind(), ns, name).ok_or_else(not_found)?;
    Ok(Answer::Json(present(&sample, &pod.metadata, "PodMetrics", POD_FIGURES)))
}

async fn list_nodes(app: &App, selectors: (Option<&str>, Option<&str>)) -> Result<Answer, ApiError> {
    let api: Api<Node> = Api::all(app.client.clone());
    let nodes = api.list(&list_params(selectors)).await.map_err(upstream)?;
    let kind = node_metrics_kind();
    let items = nodes
        .items
        .iter()
        .filter_map(|n| {
            let sample = app.samples.get_value(&kind, "", &n.name_any())?;
            Some(present(&sample, &n.metadata, "NodeMetrics", NODE_FIGURES))
        })
        .collect();
    Ok(list_of("NodeMetricsList", items))
}

async fn get_node(app: &App, name: &str) -> Result<Answer, ApiError> {
    let not_found = || ApiError::not_found("nodemetrics.metrics.k8s.io", name, METRICS_GROUP, "nodes");
    let api: Api<Node> = Api::all(app.client.clone());
    let node = api.get_opt(name).await.map_err(upstream)?.ok_or_else(not_found)?;
    let sample = app.samples.get_value(&node_metrics_kind(), "", name).ok_or_else(not_found)?;
    Ok(Answer::Json(present(&sample, &node.metadata, "NodeMetrics", NODE_FIGURES)))
}
