//! A real Kubernetes control plane on loopback: etcd, kube-apiserver and kube-controller-manager, built
//! from the pinned Go module and started by the harness (the way envtest starts real binaries).
//!
//! What a bare control plane lacks is supplied here, not papered over in the scheduler: no kubelet runs,
//! so fake nodes are created Ready by [`crate::real::nodes`] and their `not-ready` taint is removed; the
//! node-lifecycle controller is off (it would mark nodes without kubelet heartbeats unreachable and evict
//! their pods); pods on deleted namespaces are force-deleted, as a kubelet would finish them.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::binaries::{Binaries, target_dir};
use super::pki::{CertFiles, Pki};
use super::process::{Process, free_port};

/// What to start.
#[derive(Debug, Clone)]
pub struct Options {
    /// Run kube-controller-manager. Like kubeadm's, each of its controllers acts as a ServiceAccount of its
    /// own in `kube-system` (`--use-service-account-credentials`), with the bootstrap role RBAC gives that
    /// controller; its own identity, `system:kube-controller-manager`, may only mint their tokens.
    pub controller_manager: bool,
    /// Extra kube-apiserver flags (`--feature-gates=...`, `--runtime-config=...`).
    pub apiserver_flags: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options { controller_manager: true, apiserver_flags: Vec::new() }
    }
}

/// A running control plane. Dropping it stops every process; its directory (PKI, kubeconfigs, logs) is
/// removed only when it stops cleanly, so a failed run leaves its logs behind.
pub struct ControlPlane {
    pub binaries: Binaries,
    pub dir: PathBuf,
    pub pki: Pki,
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    pub apiserver_port: u16,
    /// A kubeconfig of the harness's own identity (`system:masters`), for kubectl and child processes.
    pub admin_kubeconfig: PathBuf,
    pub admin: CertFiles,
    options: Options,
    etcd_url: String,
    processes: Mutex<Processes>,
}

#[derive(Default)]
struct Processes {
    etcd: Option<Process>,
    apiserver: Option<Process>,
    controller_manager: Option<Process>,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane").field("url", &self.url).field("dir", &self.dir).finish()
    }
}

fn s(v: impl AsRef<std::ffi::OsStr>) -> String {
    v.as_ref().to_string_lossy().into_owned()
}

impl ControlPlane {
    /// Builds (or reuses) the binaries, generates PKI and starts etcd, kube-apiserver and, unless turned
    /// off, kube-controller-manager; returns once the API server answers `/readyz`. Blocking.
    pub fn start(options: Options) -> io::Result<ControlPlane> {
        let binaries = Binaries::ensure()?;
        let dir = new_run_dir()?;
        let pki = Pki::generate(&dir.join("pki"))?;
        let admin = pki.client("admin", "mlsched-e2e-admin", &["system:masters"])?;
        let etcd_port = free_port()?;
        let apiserver_port = free_port()?;
        let url = format!("https://127.0.0.1:{apiserver_port}");
        let admin_kubeconfig = dir.join("admin.kubeconfig");
        fs::write(&admin_kubeconfig, cert_kubeconfig(&url, &pki.ca.cert, &admin))?;
        let cp = ControlPlane {
            binaries,
            pki,
            url,
            apiserver_port,
            admin_kubeconfig,
            admin,
            options,
            etcd_url: format!("http://127.0.0.1:{etcd_port}"),
            processes: Mutex::new(Processes::default()),
            dir,
        };
        cp.start_etcd()?;
        cp.start_apiserver()?;
        cp.wait_ready(Duration::from_secs(90))?;
        if cp.options.controller_manager {
            cp.start_controller_manager()?;
        }
        Ok(cp)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Processes> {
        self.processes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn start_etcd(&self) -> io::Result<()> {
        let peer = free_port()?;
        let data = self.dir.join("etcd");
        let args = vec![
            format!("--data-dir={}", s(&data)),
            format!("--listen-client-urls={}", self.etcd_url),
            format!("--advertise-client-urls={}", self.etcd_url),
            format!("--listen-peer-urls=http://127.0.0.1:{peer}"),
            format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer}"),
            format!("--initial-cluster=default=http://127.0.0.1:{peer}"),
            // A test store: durability across power loss buys nothing and fsync costs every write.
            "--unsafe-no-fsync".into(),
            "--log-level=warn".into(),
            "--quota-backend-bytes=4294967296".into(),
        ];
        let p = Process::start("etcd", &self.binaries.path("etcd"), &args, &self.dir)?;
        self.lock().etcd = Some(p);
        Ok(())
    }

    fn apiserver_args(&self) -> Vec<String> {
        let pki = &self.pki;
        let mut args = vec![
            format!("--etcd-servers={}", self.etcd_url),
            format!("--secure-port={}", self.apiserver_port),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            // The `kubernetes` Service's endpoints may not be a loopback address, and nothing here reaches the
            // API server through that Service.
            "--endpoint-reconciler-type=none".into(),
            format!("--tls-cert-file={}", s(&pki.serving.cert)),
            format!("--tls-private-key-file={}", s(&pki.serving.key)),
            format!("--client-ca-file={}", s(&pki.ca.cert)),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            format!("--service-account-key-file={}", s(&pki.service_account_pub)),
            format!("--service-account-signing-key-file={}", s(&pki.service_account_key)),
            "--service-cluster-ip-range=10.0.0.0/24".into(),
            "--authorization-mode=RBAC".into(),
            "--allow-privileged=true".into(),
            // Aggregated API servers (metrics.k8s.io in the autoscaler's tests) authenticate the API server by
            // the front-proxy client certificate.
            format!("--requestheader-client-ca-file={}", s(&pki.front_proxy_ca.cert)),
            "--requestheader-allowed-names=front-proxy-client".into(),
            "--requestheader-username-headers=X-Remote-User".into(),
            "--requestheader-group-headers=X-Remote-Group".into(),
            "--requestheader-extra-headers-prefix=X-Remote-Extra-".into(),
            format!("--proxy-client-cert-file={}", s(&pki.front_proxy_client.cert)),
            format!("--proxy-client-key-file={}", s(&pki.front_proxy_client.key)),
            "--profiling=false".into(),
        ];
        args.extend(self.options.apiserver_flags.iter().cloned());
        args
    }

    fn start_apiserver(&self) -> io::Result<()> {
        let p =
            Process::start("kube-apiserver", &self.binaries.path("kube-apiserver"), &self.apiserver_args(), &self.dir)?;
        self.lock().apiserver = Some(p);
        Ok(())
    }

    fn start_controller_manager(&self) -> io::Result<()> {
        let kcm = self.pki.client("kube-controller-manager", "system:kube-controller-manager", &[])?;
        let kubeconfig = self.dir.join("kube-controller-manager.kubeconfig");
        fs::write(&kubeconfig, cert_kubeconfig(&self.url, &self.pki.ca.cert, &kcm))?;
        let args = vec![
            format!("--kubeconfig={}", s(&kubeconfig)),
            "--leader-elect=false".into(),
            "--secure-port=0".into(),
            // No kubelet sends heartbeats: the node-lifecycle controller would taint every node unreachable
            // and evict its pods.
            "--controllers=*,-node-lifecycle-controller".into(),
            format!("--service-account-private-key-file={}", s(&self.pki.service_account_key)),
            format!("--root-ca-file={}", s(&self.pki.ca.cert)),
            "--use-service-account-credentials=true".into(),
            "--kube-api-qps=200".into(),
            "--kube-api-burst=400".into(),
        ];
        let p = Process::start(
            "kube-controller-manager",
            &self.binaries.path("kube-controller-manager"),
            &args,
            &self.dir,
        )?;
        self.lock().controller_manager = Some(p);
        Ok(())
    }

    /// Polls `/readyz` until 200, or fails with the API server's last log lines. Blocking; callable from
    /// async code (it polls on a runtime of its own, in a thread of its own).
    pub fn wait_ready(&self, timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        let kubeconfig = self.admin_kubeconfig.clone();
        let probe = move || -> bool {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                let Ok(kc) = kube::config::Kubeconfig::read_from(&kubeconfig) else { return false };
                let options = kube::config::KubeConfigOptions::default();
                let Ok(mut config) = kube::Config::from_custom_kubeconfig(kc, &options).await else { return false };
                config.connect_timeout = Some(Duration::from_secs(2));
                config.read_timeout = Some(Duration::from_secs(5));
                let Ok(client) = kube::Client::try_from(config) else { return false };
                let request = http::Request::get("/readyz").body(Vec::new()).expect("request");
                client.request_text(request).await.is_ok()
            })
        };
        loop {
            let ok = std::thread::scope(|scope| scope.spawn(&probe).join().unwrap_or(false));
            if ok {
                return Ok(());
            }
            if let Some(p) = self.lock().apiserver.as_mut()
                && let Some(status) = p.exited()
            {
                return Err(io::Error::other(format!(
                    "kube-apiserver exited ({status}) before it was ready:\n{}",
                    p.log_tail(30)
                )));
            }
            if Instant::now() > deadline {
                let tail = self.lock().apiserver.as_ref().map(|p| p.log_tail(30)).unwrap_or_default();
                return Err(io::Error::other(format!("kube-apiserver not ready after {timeout:?}:\n{tail}")));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// A kube client with the harness's identity (`system:masters`), on the caller's runtime.
    pub async fn admin_client(&self) -> kube::Client {
        let config = self.kube_config_from(&self.admin_kubeconfig).await;
        kube::Client::try_from(config).expect("admin client")
    }

    /// A kube client configuration read from a kubeconfig file this harness wrote.
    pub async fn kube_config_from(&self, path: &Path) -> kube::Config {
        let kubeconfig = kube::config::Kubeconfig::read_from(path).expect("kubeconfig");
        kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
            .await
            .expect("kube config")
    }

    /// Writes a kubeconfig for a bearer token (a ServiceAccount's, for example) and returns its path.
    pub fn token_kubeconfig(&self, file: &str, token: &str, server: Option<&str>) -> io::Result<PathBuf> {
        let path = self.dir.join(file);
        let server = server.unwrap_or(&self.url);
        fs::write(&path, token_kubeconfig(server, &self.pki.ca.cert, token))?;
        Ok(path)
    }

    /// The API server's process id (for its CPU time in benchmarks).
    pub fn apiserver_pid(&self) -> u32 {
        self.lock().apiserver.as_ref().map_or(0, Process::pid)
    }

    /// Kills the API server (SIGKILL) and keeps it down until [`Self::restart_apiserver`].
    pub fn kill_apiserver(&self) {
        if let Some(mut p) = self.lock().apiserver.take() {
            p.kill();
        }
    }

    /// Starts the API server again on the same port and store, and waits until it is ready.
    pub fn restart_apiserver(&self) -> io::Result<()> {
        self.start_apiserver()?;
        self.wait_ready(Duration::from_secs(60))
    }

    /// Stops every process; removes the run directory.
    pub fn stop(self) {
        let dir = self.dir.clone();
        drop(self);
        let _ = fs::remove_dir_all(dir);
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let mut p = self.lock();
        // Controllers first, the store last, so none of them logs a storm of connection errors.
        if let Some(mut kcm) = p.controller_manager.take() {
            kcm.stop(Duration::from_secs(2));
        }
        if let Some(mut api) = p.apiserver.take() {
            api.stop(Duration::from_secs(5));
        }
        if let Some(mut etcd) = p.etcd.take() {
            etcd.stop(Duration::from_secs(2));
        }
    }
}

/// A fresh directory for one control plane, under the target directory. Directories of earlier runs are
/// kept for a day, so the logs of a failed run outlive the test binaries that run after it.
fn new_run_dir() -> io::Result<PathBuf> {
    let root = target_dir().join("control-plane/runs");
    fs::create_dir_all(&root)?;
    let day = Duration::from_secs(24 * 3600);
    for entry in fs::read_dir(&root)?.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > day);
        if old {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = root.join(format!("{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn cert_kubeconfig(server: &str, ca: &Path, client: &CertFiles) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: e2e\n  cluster:\n    server: {server}\n    \
         certificate-authority: {}\nusers:\n- name: e2e\n  user:\n    client-certificate: {}\n    client-key: {}\n\
         contexts:\n- name: e2e\n  context:\n    cluster: e2e\n    user: e2e\ncurrent-context: e2e\n",
        s(ca),
        s(&client.cert),
        s(&client.key)
    )
}

fn token_kubeconfig(server: &str, ca: &Path, token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: e2e\n  cluster:\n    server: {server}\n    \
         certificate-authority: {}\nusers:\n- name: e2e\n  user:\n    token: {token}\n\
         contexts:\n- name: e2e\n  context:\n    cluster: e2e\n    user: e2e\ncurrent-context: e2e\n",
        s(ca)
    )
}
