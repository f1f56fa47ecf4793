//! The real control plane under mlsched's end-to-end tests.
//!
//! ```no_run
//! # async fn demo() {
//! let cluster = mlsched_tests::real::shared();             // etcd + kube-apiserver + kube-controller-manager
//! let _alone = mlsched_tests::real::exclusive().await;     // scheduler tests take the cluster in turn
//! let admin = cluster.control_plane.admin_client().await;  // system:masters, for the test's own set-up
//! let scheduler = cluster.scheduler_client().await;         // the ServiceAccount and RBAC of manifests/
//! # let _ = (admin, scheduler); }
//! ```

pub mod binaries;
pub mod control_plane;
pub mod fault_proxy;
pub mod metrics_server;
pub mod objects;
pub mod pki;
pub mod process;

use std::path::PathBuf;
use std::sync::OnceLock;

pub use control_plane::{ControlPlane, Options};

/// The namespace and ServiceAccount of `manifests/rbac.yaml`, which the scheduler and its autoscaler
/// sidecar run as.
pub const MLSCHED_NAMESPACE: &str = "mlsched-system";
pub const MLSCHED_SERVICE_ACCOUNT: &str = "mlsched";

/// A control plane with mlsched's CRDs and RBAC applied as published.
pub struct Cluster {
    pub control_plane: ControlPlane,
    /// A kubeconfig with a token of the `mlsched` ServiceAccount (not `system:masters`): what the scheduler
    /// and the autoscaler are allowed to do is what the manifests grant.
    pub mlsched_kubeconfig: PathBuf,
    pub mlsched_token: String,
}

impl Cluster {
    /// Starts a control plane and applies `manifests/crds/`, `rbac.yaml` and `autoscaler-rbac.yaml`.
    /// Blocking (its async set-up runs on a runtime of its own, in a thread of its own).
    pub fn start(options: Options) -> std::io::Result<Cluster> {
        let control_plane = ControlPlane::start(options)?;
        let setup = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                    rt.block_on(install_mlsched(&control_plane)).map_err(std::io::Error::other)
                })
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("set-up panicked")))
        })?;
        let mlsched_kubeconfig = control_plane.token_kubeconfig("mlsched.kubeconfig", &setup, None)?;
        Ok(Cluster { control_plane, mlsched_kubeconfig, mlsched_token: setup })
    }

    /// A client as the `mlsched` ServiceAccount, on the caller's runtime.
    pub async fn scheduler_client(&self) -> kube::Client {
        kube::Client::try_from(self.scheduler_config().await).expect("mlsched client")
    }

    /// The client configuration of the `mlsched` ServiceAccount.
    pub async fn scheduler_config(&self) -> kube::Config {
        self.control_plane.kube_config_from(&self.mlsched_kubeconfig).await
    }

    /// A kubeconfig of the `mlsched` ServiceAccount that reaches the API server at `server` (a fault proxy).
    pub fn scheduler_kubeconfig_via(&self, file: &str, server: &str) -> std::io::Result<PathBuf> {
        self.control_plane.token_kubeconfig(file, &self.mlsched_token, Some(server))
    }
}

async fn install_mlsched(cp: &ControlPlane) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let client = cp.admin_client().await;
    objects::apply_crds(&client).await?;
    objects::apply_manifest(&client, "rbac.yaml").await?;
    objects::apply_manifest(&client, "autoscaler-rbac.yaml").await?;
    objects::service_account_token(&client, MLSCHED_NAMESPACE, MLSCHED_SERVICE_ACCOUNT, 24 * 3600).await
}

/// The control plane shared by the tests of one test binary, started on first use. Its processes die with
/// the test process (see [`process`]).
pub fn shared() -> &'static Cluster {
    static SHARED: OnceLock<Cluster> = OnceLock::new();
    SHARED.get_or_init(|| {
        match Cluster::start(Options { apiserver_flags: workload_api_flags(), ..Options::default() }) {
            Ok(c) => c,
            Err(e) => panic!("starting the test control plane: {e}"),
        }
    })
}

/// Kubernetes' own PodGroup API (`scheduling.k8s.io/v1beta1`, beta in 1.37 behind the `GenericWorkload` gate,
/// off by default; its topology constraint behind the alpha `TopologyAwareWorkloadScheduling`) turned on, so the tests show mlsched honouring it. The live benchmark's control plane runs
/// without it, where mlsched finds the API absent and does not watch it.
pub fn workload_api_flags() -> Vec<String> {
    vec![
        "--feature-gates=GenericWorkload=true,TopologyAwareWorkloadScheduling=true".into(),
        "--runtime-config=scheduling.k8s.io/v1beta1=true".into(),
    ]
}

/// Taken by a test that runs a scheduler: nodes are cluster-wide and a scheduler sees every node, so two
/// such tests at once would place each other's pods.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}
