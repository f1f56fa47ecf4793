//! Small helpers for tests written against the double.

use std::future::Future;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Polls `check` every 20 ms until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Converts a JSON object (e.g. from [`crate::cluster`]) into a typed object.
pub fn typed<K: DeserializeOwned>(v: Value) -> K {
    serde_json::from_value(v).expect("object decodes")
}

/// A started double with the default fake GPU cluster and the example workload in `default`, and a
/// client for it.
pub async fn seeded_server() -> (crate::ApiServerHandle, kube::Client) {
    let server = crate::ApiServer::start().await.expect("the API double starts");
    crate::cluster::seed_gpu_cluster(server.state(), &crate::cluster::GpuClusterSpec::default()).expect("nodes");
    crate::cluster::seed_example_workload(server.state(), "default").expect("pods");
    let client = server.client();
    (server, client)
}
