//! The scheduler across API-server outages on the real control plane: back to full service within 5 s of
//! the API server's return, not ready while its caches are stale, and a leader cut off from the API server
//! stops leading before a standby that can still reach it takes over.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use mlsched_tests::cluster::pending_pod;
use mlsched_tests::real::ControlPlane;
use mlsched_tests::real::fault_proxy::FaultProxy;
use mlsched_tests::testing::typed;

use crate::cluster::{Env, until};
use crate::leader::{HolderLog, Instance, LEASE_SECONDS, assert_bound_once, holder};

/// The shared API server, killed. Restarted when dropped if the test did not restart it (it failed half
/// way), so later tests find it ready.
pub(crate) struct ApiServerDown(Option<&'static ControlPlane>);

impl ApiServerDown {
    pub(crate) async fn kill(cp: &'static ControlPlane) -> ApiServerDown {
        tokio::task::spawn_blocking(move || cp.kill_apiserver()).await.unwrap();
        ApiServerDown(Some(cp))
    }

    /// Returns when the API server answers `/readyz` again.
    pub(crate) async fn restart(mut self) -> Instant {
        let cp = self.0.take().expect("down");
        tokio::task::spawn_blocking(move || cp.restart_apiserver()).await.unwrap().expect("kube-apiserver back");
        Instant::now()
    }
}

impl Drop for ApiServerDown {
    fn drop(&mut self) {
        if let Some(cp) = self.0.take()
            && let Err(e) = cp.restart_apiserver()
        {
            eprintln!("restarting kube-apiserver after a failed test: {e}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_api_server_restart_new_pods_are_bound_within_five_seconds() {
    let env = Env::new("apiserver-restart").await;
    for n in 0..4 {
        env.node(&format!("ar-n{n}"), 8).await;
    }
    let mut a = Instance::start(&env, "restart-a", None);
    until("a leads", Duration::from_secs(30), || async { holder(&env).await.as_deref() == Some("restart-a") }).await;
    a.until_ready().await;
    env.pod("before", 1, None).await;
    until("before bound", Duration::from_secs(20), || async { env.node_of("before").await.is_some() }).await;

    let down = ApiServerDown::kill(&env.cluster.control_plane).await;
    let killed_at = Instant::now();
    until("/readyz false while the API server is down", Duration::from_secs(10), || async {
        a.ready().await == Some(false)
    })
    .await;
    let not_ready_after = killed_at.elapsed();
    // Past the renew deadline (lease - grace = 2 s): the leader has stopped leading.
    until("mlsched_leader 0 while the API server is down", Duration::from_secs(10), || async {
        a.leader_gauge().await == Some(0)
    })
    .await;
    let stepped_down_after = killed_at.elapsed();
    assert_eq!(a.ready().await, Some(false), "still not ready");
    assert!(a.process.exited().is_none(), "the scheduler survives the outage:\n{}", a.process.log_tail(20));

    let back_at = down.restart().await;
    // The harness's own client may first try a connection the outage broke.
    let pods: Api<Pod> = Api::namespaced(env.admin.clone(), &env.ns);
    let after: Pod = typed(pending_pod(&env.ns, "after", 1, "mlsched", None));
    until("after created", Duration::from_secs(10), || async {
        match pods.create(&PostParams::default(), &after).await {
            Ok(_) => true,
            // An earlier try went through although its answer was lost.
            Err(kube::Error::Api(s)) => s.code == 409,
            Err(_) => false,
        }
    })
    .await;
    until("after bound", Duration::from_secs(30), || async { env.node_of("after").await.is_some() }).await;
    let service_after = back_at.elapsed();
    eprintln!(
        "API server down {:.1} s: not ready after {:.2} s, stopped leading after {:.2} s; a pod created after \
         its return bound {:.2} s after it was ready",
        (back_at - killed_at).as_secs_f64(),
        not_ready_after.as_secs_f64(),
        stepped_down_after.as_secs_f64(),
        service_after.as_secs_f64(),
    );
    until("ready and leading again", Duration::from_secs(10), || async {
        a.ready().await == Some(true) && a.leader_gauge().await == Some(1)
    })
    .await;
    let warnings = a.log_lines_with("WARN").len();
    eprintln!("{warnings} warnings logged in all");
    assert_bound_once(&env, &["before".into(), "after".into()], &[&a]).await;
    assert_eq!(
        a.log_lines_with("stopped leading").len(),
        1,
        "one line says the leader stopped:\n{}",
        a.process.log_tail(30)
    );
    // The watches and the Lease failed several times a second; each cause is logged once per 10 s.
    assert!(warnings <= 40, "{warnings} warnings:\n{}", a.process.log_tail(40));
    // Nor is every failed request logged again by the client library (its ERROR line per request).
    let client_lines = a.log_lines_with("kube_client::client::builder");
    assert!(client_lines.is_empty(), "{} lines from the kube client: {:?}", client_lines.len(), client_lines.first());
    assert!(service_after <= Duration::from_secs(5), "full service {service_after:?} after the API server's return");
    a.process.stop(Duration::from_secs(10));
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_api_server_stops_leading_before_the_standby_takes_over() {
    let env = Env::new("partition").await;
    for n in 0..4 {
        env.node(&format!("pa-n{n}"), 8).await;
    }
    let cp = &env.cluster.control_plane;
    let proxy = FaultProxy::start(&cp.url, &cp.pki.ca_pem).await.expect("fault proxy");
    let via_proxy = env.cluster.scheduler_kubeconfig_via("partition-a.kubeconfig", proxy.url()).expect("kubeconfig");
    let mut a = Instance::start(&env, "partition-a", Some(&via_proxy));
    until("a leads", Duration::from_secs(30), || async { holder(&env).await.as_deref() == Some("partition-a") }).await;
    let mut b = Instance::start(&env, "partition-b", None);
    b.until_ready().await;
    let mut pods = vec!["p0".to_string()];
    env.pod("p0", 1, None).await;
    until("p0 bound by a", Duration::from_secs(20), || async { a.bound_pods() == ["partition/p0"] }).await;

    let holders = HolderLog::start(&env);
    proxy.partition(true);
    let cut_at = Instant::now();
    for i in 1..=4 {
        let name = format!("p{i}");
        env.pod(&name, 1, None).await;
        pods.push(name);
    }
    // a's own endpoint is not behind the proxy: watch its gauge while the standby waits out the lease.
    until("a stops leading", Duration::from_secs(3 * LEASE_SECONDS), || async { a.leader_gauge().await == Some(0) })
        .await;
    let a_stopped = Instant::now();
    assert_eq!(a.ready().await, Some(false), "a cut off is not ready");
    let b_took = holders.until_held_by("partition-b", cut_at, Duration::from_secs(3 * LEASE_SECONDS)).await;
    eprintln!(
        "leader cut off: it stopped leading after {:.2} s, the standby took the Lease after {:.2} s",
        (a_stopped - cut_at).as_secs_f64(),
        (b_took - cut_at).as_secs_f64(),
    );
    assert!(a_stopped < b_took, "a stopped leading {:?} after the standby took over", a_stopped - b_took);
    until("the pods created while a was cut off bound", Duration::from_secs(30), || async {
        let bound = env.bound().await;
        pods.iter().all(|p| bound.contains_key(p))
    })
    .await;
    let stopped = a.log_lines_with("stopped leading");
    assert!(stopped.len() == 1 && stopped[0].contains("renew deadline"), "{stopped:?}");

    // Back in touch, a stays a standby and is ready again, and nothing it had decided goes out.
    proxy.partition(false);
    a.until_ready().await;
    assert_eq!(a.leader_gauge().await, Some(0));
    assert_eq!(holder(&env).await.as_deref(), Some("partition-b"));
    assert_eq!(a.bound_pods(), ["partition/p0"]);
    assert_bound_once(&env, &pods, &[&a, &b]).await;
    assert!(a.process.exited().is_none() && b.process.exited().is_none());
    a.process.stop(Duration::from_secs(10));
    b.process.stop(Duration::from_secs(10));
    env.finish().await;
}
