//! mlsched-tests: an in-process Kubernetes API server test double, for tests of mlsched against the real
//! kube client stack.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use mlsched_tests::{ApiServer, cluster};
//! let server = ApiServer::start().await?;
//! cluster::seed_gpu_cluster(server.state(), &cluster::GpuClusterSpec::default());
//! let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::default_namespaced(server.client());
//! # let _ = pods; Ok(()) }
//! ```

pub mod cluster;
pub mod error;
pub mod faults;
pub mod metrics_api;
pub mod patch;
pub mod real;
pub mod resize;
pub mod resources;
pub mod scale;
pub mod selectors;
mod server;
pub mod state;
pub mod store;
pub mod testing;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use error::ApiError;
pub use faults::{FaultSpec, Faults, RequestInfo, RequestMatch, RequestRecord, Verb};
pub use resources::ResourceKind;
pub use state::StateHandle;
pub use store::{BindingRecord, ChangeType, Sub};

/// API group of the coscheduling PodGroup CRD.
pub const PODGROUP_GROUP: &str = "scheduling.x-k8s.io";
/// API version of the coscheduling PodGroup CRD.
pub const PODGROUP_VERSION: &str = "v1alpha1";

/// `ApiResource` of `scheduling.x-k8s.io/v1alpha1` PodGroup, for `kube::Api::<DynamicObject>::namespaced_with`.
pub fn podgroup_api_resource() -> kube::discovery::ApiResource {
    kube::discovery::ApiResource {
        group: PODGROUP_GROUP.into(),
        version: PODGROUP_VERSION.into(),
        api_version: format!("{PODGROUP_GROUP}/{PODGROUP_VERSION}"),
        kind: "PodGroup".into(),
        plural: "podgroups".into(),
    }
}

/// Builder and entry point of the API server double.
#[derive(Clone, Debug)]
pub struct ApiServer {
    addr: SocketAddr,
    history_limit: usize,
    bookmark_interval: Duration,
    kubeconfig_path: Option<PathBuf>,
    kinds: Vec<ResourceKind>,
}

impl Default for ApiServer {
    fn default() -> Self {
        Self {
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            history_limit: 10_000,
            bookmark_interval: Duration::from_secs(5),
            kubeconfig_path: None,
            kinds: resources::default_kinds(),
        }
    }
}

impl ApiServer {
    /// A builder with defaults: 127.0.0.1, random port, 10 000 changes of watch history, bookmarks every 5 s.
    pub fn builder() -> Self {
        Self::default()
    }

    /// Starts a server with the defaults.
    pub async fn start() -> std::io::Result<ApiServerHandle> {
        Self::default().serve().await
    }

    /// Listening port (0: any free port).
    pub fn port(mut self, port: u16) -> Self {
        self.addr.set_port(port);
        self
    }

    /// Listening address (default 127.0.0.1).
    pub fn bind(mut self, ip: IpAddr) -> Self {
        self.addr.set_ip(ip);
        self
    }

    /// How many changes the watch history keeps; a watch from before them gets 410 Gone.
    pub fn history_limit(mut self, n: usize) -> Self {
        self.history_limit = n;
        self
    }

    /// How often open watches with `allowWatchBookmarks=true` get a BOOKMARK event.
    pub fn bookmark_interval(mut self, d: Duration) -> Self {
        self.bookmark_interval = d;
        self
    }

    /// Where to write the kubeconfig (default: a file in a fresh directory under the system temp dir).
    pub fn kubeconfig_path(mut self, p: impl Into<PathBuf>) -> Self {
        self.kubeconfig_path = Some(p.into());
        self
    }

    /// Serves one more resource type (for instance another CRD).
    pub fn with_kind(mut self, kind: ResourceKind) -> Self {
        self.kinds.retain(|k| k.key() != kind.key());
        self.kinds.push(kind);
        self
    }

    /// Binds, writes the kubeconfig and starts serving on the current tokio runtime.
    pub async fn serve(self) -> std::io::Result<ApiServerHandle> {
        let listener = tokio::net::TcpListener::bind(self.addr).await?;
        let addr = listener.local_addr()?;
        let store = Arc::new(store::Store::new(self.kinds.clone(), self.history_limit));
        let faults = Faults { state: Arc::new(Mutex::new(Default::default())), store: store.clone() };
        let app =
            server::App { store: store.clone(), faults: faults.clone(), bookmark_interval: self.bookmark_interval };
        let router = axum::Router::new().fallback(server::handle).with_state(app);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        let url = format!("http://{addr}");
        let (kubeconfig_path, temp_dir) = match self.kubeconfig_path {
            Some(p) => (p, None),
            None => {
                let dir =
                    std::env::temp_dir().join(format!("mlsched-fake-apiserver-{}-{}", std::process::id(), addr.port()));
                std::fs::create_dir_all(&dir)?;
                (dir.join("kubeconfig"), Some(dir))
            }
        };
        write_kubeconfig(&kubeconfig_path, &url, "default")?;
        Ok(ApiServerHandle {
            url,
            addr,
            kubeconfig_path,
            temp_dir,
            state: StateHandle { store: store.clone() },
            faults,
            store,
            shutdown: Some(tx),
            task: Some(task),
        })
    }
}

/// Writes a kubeconfig with one cluster (`server: <url>`), one user with a dummy token and one context.
pub fn write_kubeconfig(path: &Path, url: &str, namespace: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: mlsched-fake\n  cluster:\n    server: {url}\n\
         contexts:\n- name: mlsched-fake\n  context:\n    cluster: mlsched-fake\n    user: mlsched-fake\n    namespace: {namespace}\n\
         current-context: mlsched-fake\nusers:\n- name: mlsched-fake\n  user:\n    token: fake-token\npreferences: {{}}\n"
    );
    std::fs::write(path, text)
}

/// A running API server double. Dropping it stops the server and removes its temporary kubeconfig.
pub struct ApiServerHandle {
    url: String,
    addr: SocketAddr,
    kubeconfig_path: PathBuf,
    temp_dir: Option<PathBuf>,
    state: StateHandle,
    faults: Faults,
    store: Arc<store::Store>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl ApiServerHandle {
    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The kubeconfig written for this server (use as `KUBECONFIG` for a child process).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// A `kube::Config` for this server, default namespace `default`. Set `default_retry = false` on it to see
    /// injected 429/503/504 answers instead of kube's automatic retries.
    pub fn kube_config(&self) -> kube::Config {
        let mut c = kube::Config::new(self.url.parse().expect("valid url"));
        c.default_namespace = "default".into();
        c
    }

    /// A kube client for this server (needs a tokio runtime).
    pub fn client(&self) -> kube::Client {
        kube::Client::try_from(self.kube_config()).expect("kube client")
    }

    /// Direct access to the stored objects, bypassing HTTP.
    pub fn state(&self) -> &StateHandle {
        &self.state
    }

    /// Fault injection and the request log.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Stops serving and waits for the server task (open watch streams are closed).
    pub async fn shutdown(mut self) {
        self.faults.drop_watches();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}

impl Drop for ApiServerHandle {
    fn drop(&mut self) {
        self.store.drop_tx.send_modify(|n| *n += 1);
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
        }
        if let Some(d) = &self.temp_dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
