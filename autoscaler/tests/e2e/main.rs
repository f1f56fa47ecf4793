//! The autoscaler end to end against the API server double, alone and beside the real scheduler. One
//! test binary for both: each Kubernetes-linked test binary costs a long release link.

mod autoscaler;
mod with_scheduler;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::oneshot;

type Stopper = oneshot::Sender<()>;
type AutoscalerTask = tokio::task::JoinHandle<anyhow::Result<()>>;

/// Runs the autoscaler library on the test's runtime, as its binary would, until the stopper fires;
/// returns once its HTTP endpoint listens.
async fn run_autoscaler(
    config: mlsched_autoscaler::config::Config,
    client: kube::Client,
) -> (Stopper, AutoscalerTask, SocketAddr) {
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (addr_tx, addr_rx) = oneshot::channel();
    let task = tokio::spawn(mlsched_autoscaler::run(
        config,
        client,
        async move {
            let _ = stop_rx.await;
        },
        Some(addr_tx),
    ));
    let http = addr_rx.await.expect("autoscaler listening");
    (stop_tx, task, http)
}

/// Sends the shutdown signal and requires a clean exit within 5 s.
async fn stop_autoscaler(stop: Stopper, task: AutoscalerTask) {
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap().unwrap();
}
