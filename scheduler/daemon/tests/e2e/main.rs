//! The scheduler end to end on a real control plane (kube-apiserver, kube-controller-manager and etcd from
//! `mlsched_tests::real`), and the manifests it ships. One test
//! binary for all of them: each Kubernetes-linked test binary costs a long release link.

mod bad_input;
mod bind_order;
mod cluster;
mod faults;
mod leader;
mod manifests;
mod placement_api;
mod preemption;
mod recovery;
mod scheduler;
mod soak;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::oneshot;

/// Sends the shutdown signal to a scheduler started by [`run_scheduler`].
type Stopper = oneshot::Sender<()>;
type SchedulerTask = tokio::task::JoinHandle<anyhow::Result<()>>;

/// Runs the scheduler library on the test's runtime, as its binary would, until the stopper fires; returns
/// once its HTTP endpoint listens.
async fn run_scheduler(
    config: mlsched_scheduler::Config,
    client: impl Into<mlsched_scheduler::Clients>,
) -> (Stopper, SchedulerTask, SocketAddr) {
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (addr_tx, addr_rx) = oneshot::channel();
    let task = tokio::spawn(mlsched_scheduler::run(
        config,
        client.into(),
        async move {
            let _ = stop_rx.await;
        },
        Some(addr_tx),
    ));
    let http = addr_rx.await.expect("scheduler listening");
    (stop_tx, task, http)
}

/// Sends the shutdown signal (if not sent yet) and requires a clean exit within 10 s.
async fn stop_scheduler(stop: Option<Stopper>, task: SchedulerTask) {
    if let Some(tx) = stop {
        let _ = tx.send(());
    }
    let result = tokio::time::timeout(Duration::from_secs(10), task).await.expect("scheduler stops");
    result.expect("no panic").expect("clean exit");
}

/// A plain HTTP/1.0 GET of the scheduler's own endpoint (`/metrics`, `/readyz`); the whole answer.
async fn http_get(addr: SocketAddr, path: &str) -> String {
    let path = path.to_string();
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    })
    .await
    .unwrap()
}
