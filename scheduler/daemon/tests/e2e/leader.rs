//! Two `mlsched` processes (the real binary) with leader election on the real control plane: the standby
//! takes over when the leader dies, while pods stream in; none is lost, none bound twice, no node
//! over-committed. And a scheduler started on a half-bound gang completes it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Binding, Pod};
use kube::api::{Api, PostParams};
use mlsched_tests::real::process::{Process, free_port};
use mlsched_tests::real::{MLSCHED_NAMESPACE, objects};
use mlsched_tests::testing::typed;
use serde_json::json;

use crate::cluster::{Env, until};

const LEASE_SECONDS: u64 = 4;

/// Starts the `mlsched` binary as `identity`, with leader election on the published Lease.
fn start_binary(env: &Env, identity: &str) -> Process {
    let dir = env.cluster.control_plane.dir.clone();
    let config = format!(
        "profiles:\n  - schedulerName: mlsched\n    policy: bestfit\n\
         listenAddress: 127.0.0.1:{}\nplacementApi: 127.0.0.1:{}\n\
         backoff: {{initialSeconds: 0.2, maxSeconds: 1}}\n\
         leaderElection: {{enabled: true, namespace: {MLSCHED_NAMESPACE}, leaseName: mlsched, identity: {identity}, \
         leaseDurationSeconds: {LEASE_SECONDS}, renewGraceSeconds: 1}}\n",
        free_port().unwrap(),
        free_port().unwrap(),
    );
    let path: PathBuf = dir.join(format!("{identity}.yaml"));
    std::fs::write(&path, config).unwrap();
    let kubeconfig = env.cluster.mlsched_kubeconfig.to_string_lossy().into_owned();
    Process::start_with_env(
        identity,
        std::path::Path::new(env!("CARGO_BIN_EXE_mlsched")),
        &["--config".into(), path.to_string_lossy().into_owned()],
        &[("KUBECONFIG", kubeconfig.as_str()), ("RUST_LOG", "info")],
        &dir,
    )
    .expect("mlsched starts")
}

async fn holder(env: &Env) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(env.admin.clone(), MLSCHED_NAMESPACE);
    leases.get_opt("mlsched").await.ok().flatten()?.spec?.holder_identity.filter(|h| !h.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_from_a_killed_leader_while_pods_stream_in() {
    let env = Env::new("failover").await;
    for n in 0..8 {
        env.node(&format!("fo-n{n}"), 8).await;
    }
    let mut a = start_binary(&env, "failover-a");
    until("a leads", Duration::from_secs(30), || async { holder(&env).await.as_deref() == Some("failover-a") }).await;
    let mut b = start_binary(&env, "failover-b");
    let total = 48;
    let mut killed_at = None;
    for i in 0..total {
        env.pod(&format!("p{i}"), 1, None).await;
        if i == total / 3 {
            a.kill();
            killed_at = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    until("b leads", Duration::from_secs(3 * LEASE_SECONDS), || async {
        holder(&env).await.as_deref() == Some("failover-b")
    })
    .await;
    let takeover = killed_at.unwrap().elapsed();
    until("every pod bound", Duration::from_secs(60), || async { env.bound().await.len() == total }).await;
    // The API server refuses a second binding of a pod, so "bound twice" shows as a second Scheduled Event.
    let mut scheduled: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..total {
        let name = format!("p{i}");
        scheduled.insert(name.clone(), env.events(&name, "Scheduled").await.len());
    }
    assert!(scheduled.values().all(|n| *n <= 1), "{scheduled:?}");
    env.assert_no_overcommit().await;
    assert!(b.exited().is_none(), "the standby kept running:\n{}", b.log_tail(20));
    eprintln!("takeover after kill -9: {:.1} s (lease {LEASE_SECONDS} s)", takeover.as_secs_f64());
    b.stop(Duration::from_secs(10));
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
    let pods: Api<Pod> = Api::namespaced(env.admin.clone(), &env.ns);
    for (pod, node) in [("w0", "hb-a"), ("w1", "hb-a")] {
        let binding: Binding = typed(json!({
            "apiVersion": "v1", "kind": "Binding", "metadata": {"name": pod, "namespace": env.ns},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}
        }));
        pods.create_subresource::<_, serde_json::Value>("binding", pod, &PostParams::default(), &binding)
            .await
            .unwrap();
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
