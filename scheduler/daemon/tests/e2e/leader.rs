//! Two `mlsched` processes (the real binary) with leader election on the real control plane: the standby
//! takes over when the leader is stopped (SIGTERM: within 1.5 s), dies (kill -9: within the lease
//! duration and 2 s) or freezes (SIGSTOP: as for kill -9; once resumed, the old leader binds nothing),
//! while pods stream in; none is lost, none bound twice, no node over-committed. And a scheduler started
//! on a half-bound gang completes it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use mlsched_tests::real::process::{Process, free_port};
use mlsched_tests::real::{MLSCHED_NAMESPACE, objects};

use crate::cluster::{Env, until};

/// Short, so a takeover after a kill takes seconds: the leader's renew deadline is 4 - 2 = 2 s.
pub const LEASE_SECONDS: u64 = 4;
const RENEW_GRACE_SECONDS: u64 = 2;

/// An `mlsched` process and its `/metrics`, `/healthz`, `/readyz` address.
pub struct Instance {
    pub process: Process,
    pub http: SocketAddr,
}

impl Instance {
    /// Starts the `mlsched` binary as `identity` with leader election on the published Lease, as the
    /// `mlsched` ServiceAccount; through `kubeconfig` when given (a fault proxy's), else straight to the
    /// API server.
    pub fn start(env: &Env, identity: &str, kubeconfig: Option<&Path>) -> Instance {
        let dir = env.cluster.control_plane.dir.clone();
        let port = free_port().unwrap();
        let config = format!(
            "profiles:\n  - schedulerName: mlsched\n    policy: bestfit\n\
             listenAddress: 127.0.0.1:{port}\nplacementApi: 127.0.0.1:{}\n\
             backoff: {{initialSeconds: 0.2, maxSeconds: 1}}\n\
             leaderElection: {{enabled: true, namespace: {MLSCHED_NAMESPACE}, leaseName: mlsched, identity: {identity}, \
             leaseDurationSeconds: {LEASE_SECONDS}, renewGraceSeconds: {RENEW_GRACE_SECONDS}}}\n",
            free_port().unwrap(),
        );
        let path: PathBuf = dir.join(format!("{identity}.yaml"));
        std::fs::write(&path, config).unwrap();
        let kubeconfig = kubeconfig.unwrap_or(env.cluster.mlsched_kubeconfig.as_path()).to_string_lossy().into_owned();
        let process = Process::start_with_env(
            identity,
            Path::new(env!("CARGO_BIN_EXE_mlsched")),
            &["--config".into(), path.to_string_lossy().into_owned()],
            &[("KUBECONFIG", kubeconfig.as_str()), ("RUST_LOG", "info")],
            &dir,
        )
        .expect("mlsched starts");
        Instance { process, http: SocketAddr::from(([127, 0, 0, 1], port)) }
    }

    /// `/readyz` answers 200 (`None`: nothing answers).
    pub async fn ready(&self) -> Option<bool> {
        get(self.http, "/readyz").await.map(|r| r.lines().next().is_some_and(|status| status.contains(" 200 ")))
    }

    /// The `mlsched_leader` gauge (`None`: nothing answers).
    pub async fn leader_gauge(&self) -> Option<i64> {
        let metrics = get(self.http, "/metrics").await?;
        metrics.lines().find_map(|l| l.strip_prefix("mlsched_leader ")).and_then(|v| v.trim().parse().ok())
    }

    pub async fn until_ready(&self) {
        until(&format!("{} ready", self.process.name), Duration::from_secs(30), || async {
            self.ready().await == Some(true)
        })
        .await;
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.process.log).unwrap_or_default()
    }

    /// Pods this instance logged as bound.
    pub fn bound_pods(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains("mlsched_scheduler::run: bound "))
            .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("pod=")).map(str::to_string))
            .collect()
    }

    /// Log lines of binds the API server refused because the pod was bound already: a pod bound twice over.
    pub fn binds_refused_as_bound(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains("bind failed") && l.contains("code: 409"))
            .map(str::to_string)
            .collect()
    }

    pub fn log_lines_with(&self, text: &str) -> Vec<String> {
        self.log().lines().filter(|l| l.contains(text)).map(str::to_string).collect()
    }
}

/// A plain HTTP/1.0 GET of a scheduler's own endpoint; `None` when it does not answer.
async fn get(addr: SocketAddr, path: &str) -> Option<String> {
    let path = path.to_string();
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes()).ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    })
    .await
    .unwrap()
}

pub async fn holder(env: &Env) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(env.admin.clone(), MLSCHED_NAMESPACE);
    leases.get_opt("mlsched").await.ok().flatten()?.spec?.holder_identity.filter(|h| !h.is_empty())
}

/// When each holder of the Lease (`None`: free) was first seen.
type Holders = Arc<Mutex<Vec<(Instant, Option<String>)>>>;

/// The Lease's holder, read every 20 ms in a task of its own.
pub struct HolderLog {
    seen: Holders,
    task: tokio::task::JoinHandle<()>,
}

impl HolderLog {
    pub fn start(env: &Env) -> HolderLog {
        HolderLog::every(env, Duration::from_millis(20))
    }

    /// Reads the Lease every `period`.
    pub fn every(env: &Env, period: Duration) -> HolderLog {
        let seen: Holders = Arc::new(Mutex::new(Vec::new()));
        let leases: Api<Lease> = Api::namespaced(env.admin.clone(), MLSCHED_NAMESPACE);
        let log = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                if let Ok(lease) = leases.get_opt("mlsched").await {
                    let holder = lease.and_then(|l| l.spec?.holder_identity).filter(|h| !h.is_empty());
                    let mut log = log.lock().unwrap();
                    if log.last().map(|(_, h): &(Instant, Option<String>)| h) != Some(&holder) {
                        log.push((Instant::now(), holder));
                    }
                }
                tokio::time::sleep(period).await;
            }
        });
        HolderLog { seen, task }
    }

    /// When `identity` was first seen holding the Lease after `after`.
    pub fn held_by(&self, identity: &str, after: Instant) -> Option<Instant> {
        let seen = self.seen.lock().unwrap();
        seen.iter().find(|(t, h)| *t >= after && h.as_deref() == Some(identity)).map(|(t, _)| *t)
    }

    /// When a holder other than `identity` was first seen after `after`, and who.
    pub fn held_by_other(&self, identity: &str, after: Instant) -> Option<(Instant, String)> {
        let seen = self.seen.lock().unwrap();
        let (t, h) = seen.iter().find(|(t, h)| *t >= after && h.as_deref().is_some_and(|h| h != identity))?;
        Some((*t, h.clone()?))
    }

    pub async fn until_held_by(&self, identity: &str, after: Instant, within: Duration) -> Instant {
        until(&format!("{identity} holds the Lease"), within, || async { self.held_by(identity, after).is_some() })
            .await;
        self.held_by(identity, after).unwrap()
    }
}

impl Drop for HolderLog {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// No pod lost, none bound twice: every pod is bound, no instance's bind was refused because its pod was
/// bound already, no pod is logged bound by two instances, and no node is over-committed.
pub async fn assert_bound_once(env: &Env, pods: &[String], instances: &[&Instance]) {
    let bound = env.bound().await;
    let lost: Vec<&String> = pods.iter().filter(|p| !bound.contains_key(*p)).collect();
    assert!(lost.is_empty(), "pods not bound: {lost:?}");
    for i in instances {
        let refused = i.binds_refused_as_bound();
        assert!(refused.is_empty(), "{} bound pods already bound:\n{}", i.process.name, refused.join("\n"));
    }
    let twice = bound_by_two(instances);
    assert!(twice.is_empty(), "bound more than once: {twice:?}");
    env.assert_no_overcommit().await;
}

/// Pods that more than one instance logged as bound, each with the instances.
pub fn bound_by_two(instances: &[&Instance]) -> Vec<String> {
    let mut binders: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for i in instances {
        for pod in i.bound_pods() {
            binders.entry(pod).or_default().push(i.process.name.clone());
        }
    }
    binders.into_iter().filter(|(_, by)| by.len() > 1).map(|(pod, by)| format!("{pod}: {}", by.join(", "))).collect()
}

/// Creates pods `<prefix>0..<prefix><total>` 100 ms apart, calling `at_third` after the first third.
async fn stream_pods(env: &Env, prefix: &str, total: usize, mut at_third: impl FnMut()) -> Vec<String> {
    let mut pods = Vec::new();
    for i in 0..total {
        let name = format!("{prefix}{i}");
        env.pod(&name, 1, None).await;
        pods.push(name);
        if i == total / 3 {
            at_third();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pods
}

/// The test's namespace `ns` with eight 8-GPU nodes; `<ns>-a` leading, `<ns>-b` ready as its standby.
async fn leader_and_standby(ns: &str) -> (Env, Instance, Instance) {
    let env = Env::new(ns).await;
    for n in 0..8 {
        env.node(&format!("{ns}-n{n}"), 8).await;
    }
    let leader = format!("{ns}-a");
    let a = Instance::start(&env, &leader, None);
    until("a leads", Duration::from_secs(30), || async { holder(&env).await.as_deref() == Some(leader.as_str()) })
        .await;
    let b = Instance::start(&env, &format!("{ns}-b"), None);
    b.until_ready().await;
    (env, a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_from_a_killed_leader_while_pods_stream_in() {
    let (env, mut a, b) = leader_and_standby("failover").await;
    let holders = HolderLog::start(&env);
    let mut killed_at = None;
    let pods = stream_pods(&env, "p", 48, || {
        a.process.kill();
        killed_at = Some(Instant::now());
    })
    .await;
    let killed_at = killed_at.unwrap();
    let took_over = holders.until_held_by("failover-b", killed_at, Duration::from_secs(3 * LEASE_SECONDS)).await;
    let takeover = took_over - killed_at;
    eprintln!("takeover after kill -9: {:.2} s (lease {LEASE_SECONDS} s)", takeover.as_secs_f64());
    until("every pod bound", Duration::from_secs(60), || async { env.bound().await.len() == pods.len() }).await;
    assert_bound_once(&env, &pods, &[&a, &b]).await;
    assert!(
        takeover <= Duration::from_secs(LEASE_SECONDS + 2),
        "takeover after kill -9 took {takeover:?}, more than the lease ({LEASE_SECONDS} s) and 2 s"
    );
    let mut b = b;
    assert!(b.process.exited().is_none(), "the standby kept running:\n{}", b.process.log_tail(20));
    b.process.stop(Duration::from_secs(10));
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_stopped_with_sigterm_hands_over_within_a_second_and_a_half() {
    let (env, mut a, mut b) = leader_and_standby("handover").await;
    let holders = HolderLog::start(&env);
    let mut signalled_at = None;
    let pods = stream_pods(&env, "p", 30, || {
        a.process.signal(libc::SIGTERM);
        signalled_at = Some(Instant::now());
    })
    .await;
    let signalled_at = signalled_at.unwrap();
    let took_over = holders.until_held_by("handover-b", signalled_at, Duration::from_secs(3 * LEASE_SECONDS)).await;
    let takeover = took_over - signalled_at;
    eprintln!("takeover after SIGTERM: {:.2} s (lease {LEASE_SECONDS} s)", takeover.as_secs_f64());
    until("every pod bound", Duration::from_secs(60), || async { env.bound().await.len() == pods.len() }).await;
    until("a exited", Duration::from_secs(10), || {
        let exited = a.process.exited();
        async move { exited.is_some() }
    })
    .await;
    assert!(a.process.exited().unwrap().success(), "a stopped cleanly:\n{}", a.process.log_tail(20));
    assert_eq!(a.log_lines_with("lease released").len(), 1, "a gave the Lease back:\n{}", a.process.log_tail(20));
    assert_bound_once(&env, &pods, &[&a, &b]).await;
    assert!(!b.bound_pods().is_empty(), "the standby bound the pods created after the handover");
    assert!(takeover <= Duration::from_millis(1500), "takeover after SIGTERM took {takeover:?}");
    b.process.stop(Duration::from_secs(10));
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_frozen_with_sigstop_is_taken_over_and_binds_nothing_once_it_resumes() {
    let (env, mut a, mut b) = leader_and_standby("freeze").await;
    let holders = HolderLog::start(&env);
    let mut stopped_at = None;
    let mut pods = stream_pods(&env, "p", 30, || {
        a.process.signal(libc::SIGSTOP);
        stopped_at = Some(Instant::now());
    })
    .await;
    let stopped_at = stopped_at.unwrap();
    let took_over = holders.until_held_by("freeze-b", stopped_at, Duration::from_secs(3 * LEASE_SECONDS)).await;
    let takeover = took_over - stopped_at;
    eprintln!("takeover after SIGSTOP: {:.2} s (lease {LEASE_SECONDS} s)", takeover.as_secs_f64());
    until("every pod bound while a is frozen", Duration::from_secs(60), || async {
        env.bound().await.len() == pods.len()
    })
    .await;
    // A bind a had let through its fence just before it froze goes out when it resumes, and its answer
    // comes then: bound, or refused (409) if b bound the pod meanwhile. Either way it is for a pod bound by
    // now; a bind for any other pod was decided after the SIGCONT.
    let bound_while_frozen = env.bound().await;
    a.process.signal(libc::SIGCONT);
    until("a says it stopped leading", Duration::from_secs(10), || async {
        !a.log_lines_with("stopped leading").is_empty()
    })
    .await;
    until("a's mlsched_leader is 0", Duration::from_secs(10), || async { a.leader_gauge().await == Some(0) }).await;
    pods.extend(stream_pods(&env, "q", 10, || {}).await);
    until("the pods created after a resumed bound", Duration::from_secs(60), || async {
        env.bound().await.len() == pods.len()
    })
    .await;
    let resumed = a.log_lines_with("stopped leading");
    eprintln!("the frozen leader on resuming: {}", resumed.join(" | "));
    let after_cont: Vec<String> = a
        .bound_pods()
        .into_iter()
        .filter(|p| !bound_while_frozen.contains_key(p.rsplit('/').next().unwrap_or(p)))
        .collect();
    assert!(after_cont.is_empty(), "a bound {after_cont:?} after it resumed:\n{}", a.process.log_tail(30));
    let refused_late: Vec<String> = a
        .binds_refused_as_bound()
        .into_iter()
        .filter(|line| !bound_while_frozen.keys().any(|p| line.contains(&format!("pod=freeze/{p} "))))
        .collect();
    assert!(refused_late.is_empty(), "a tried binds after it resumed: {refused_late:?}");
    assert_eq!(resumed.len(), 1, "one line says a stopped leading:\n{}", a.process.log_tail(30));
    assert_eq!(a.leader_gauge().await, Some(0), "a still reports itself not leading");
    assert_eq!(holder(&env).await.as_deref(), Some("freeze-b"));
    // b never had a bind refused; no pod was bound by both; nothing lost or over-committed.
    assert_bound_once(&env, &pods, &[&b]).await;
    let twice = bound_by_two(&[&a, &b]);
    assert!(twice.is_empty(), "bound more than once: {twice:?}");
    assert!(
        takeover <= Duration::from_secs(LEASE_SECONDS + 2),
        "takeover after SIGSTOP took {takeover:?}, more than the lease ({LEASE_SECONDS} s) and 2 s"
    );
    assert!(a.process.exited().is_none() && b.process.exited().is_none(), "both kept running");
    a.process.stop(Duration::from_secs(10));
    b.process.stop(Duration::from_secs(10));
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_started_on_a_half_bound_gang_completes_it() {
    let env = Env::new("half-bound").await;
    env.node("hb-a", 8).await;
    env.node("hb-b", 8).await;
    env.pod_group("train", 4, None).await;
    for i in 0..4 {
        env.pod(&format!("w{i}"), 4, Some("train")).await;
    }
    // What a scheduler killed in the middle of binding the gang leaves behind: two members bound.
    for (pod, node) in [("w0", "hb-a"), ("w1", "hb-a")] {
        env.bind(pod, node).await;
    }
    let (stop, task, _) = crate::scheduler::spawn_scheduler(env.scheduler_client().await, "").await;
    until("the rest of the gang bound", Duration::from_secs(30), || async { env.bound().await.len() == 4 }).await;
    let bound = env.bound().await;
    assert_eq!(bound["w2"], "hb-b", "{bound:?}");
    assert_eq!(bound["w3"], "hb-b", "{bound:?}");
    until("PodGroup scheduled with all four", Duration::from_secs(10), || async {
        let status = env.pod_group_status("train").await;
        status["phase"] == "Scheduled" && status["scheduled"] == 4
    })
    .await;
    env.assert_no_overcommit().await;
    crate::stop_scheduler(Some(stop), task).await;
    objects::delete_harness_nodes(&env.admin).await.unwrap();
    env.finish().await;
}
