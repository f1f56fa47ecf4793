//! The order of binds when the client budget, not the decisions, is the limit: a pod of higher priority
//! decided while a backlog waits for tokens is bound with the next tokens, not after the backlog.

use std::time::Duration;

use crate::cluster::{Env, until};
use crate::preemption::{HIGH, LOW, pod, priority_classes};
use crate::scheduler::spawn_scheduler;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_high_priority_pod_is_bound_ahead_of_a_throttled_backlog() {
    let env = Env::new("bind-order").await;
    priority_classes(&env.admin).await;
    for i in 0..6 {
        env.node(&format!("bo-{i}"), 8).await;
    }
    const BATCH: usize = 40;
    for i in 0..BATCH {
        pod(&env, &format!("batch-{i:02}"), 1, LOW, None).await;
    }
    // 5 binds a second: the batch, decided in the first pass, takes 8 s to bind.
    let (stop, task, _http) = spawn_scheduler(env.scheduler_clients().await, "client: {qps: 5, burst: 5}").await;
    until("the first binds", Duration::from_secs(20), || async { !env.bound().await.is_empty() }).await;
    pod(&env, "urgent", 1, HIGH, None).await;
    until("urgent bound", Duration::from_secs(20), || async { env.node_of("urgent").await.is_some() }).await;
    let batch_bound = env.bound().await.keys().filter(|name| name.starts_with("batch-")).count();
    // In the order of decisions it would be bound last, after all 40.
    assert!(batch_bound <= BATCH / 2, "urgent bound after {batch_bound} of the {BATCH} pods decided before it");
    until("the batch bound", Duration::from_secs(30), || async { env.bound().await.len() == BATCH + 1 }).await;
    env.assert_no_overcommit().await;
    crate::stop_scheduler(Some(stop), task).await;
    env.finish().await;
}
