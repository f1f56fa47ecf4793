//! No silent bad input: a pod the scheduler cannot place as written, or that waits on something missing,
//! gets `PodScheduled=False` with the cause and a `FailedScheduling` Event saying it, on the real control
//! plane. And a scheduler completing a gang an earlier leader half-bound writes what that leader may not
//! have: the members' `Scheduled` Events, and a PodGroup status whose count and message agree.

use std::time::Duration;

use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, PostParams};
use mlsched_scheduler::Config;
use mlsched_scheduler::kube_io::scheduled_event_name;
use mlsched_scheduler::translate::PodRef;
use mlsched_tests::cluster::pending_pod;
use mlsched_tests::testing::typed;
use serde_json::json;

use crate::cluster::{Env, until};
use crate::scheduler::spawn_scheduler;
use crate::{SchedulerTask, Stopper};

const DOCUMENTED_LEVELS: &str = "network.mlsched.io/spine, network.mlsched.io/rack, kubernetes.io/hostname";

/// A scheduler on the default `topologyLevels` (the config names none), as a fresh install runs.
async fn spawn_scheduler_with_default_levels(client: kube::Client) -> (Stopper, SchedulerTask) {
    let yaml = "profiles:\n  - schedulerName: mlsched\n    policy: bestfit\nlistenAddress: 127.0.0.1:0\n\
                backoff: {initialSeconds: 0.2, maxSeconds: 1}\nleaderElection: {enabled: false}\n";
    let config = Config::from_yaml(yaml).expect("config");
    let (stop, task, _) = crate::run_scheduler(config, client).await;
    (stop, task)
}

/// Whether `pod` has `PodScheduled=False` with `reason` and a message passing `says`.
async fn condition_says(env: &Env, pod: &str, reason: &str, says: impl Fn(&str) -> bool) -> bool {
    env.scheduled_condition(pod)
        .await
        .is_some_and(|(status, r, message)| status == "False" && r == reason && says(&message))
}

/// Whether `pod` has a `FailedScheduling` Event with a message passing `says`.
async fn event_says(env: &Env, pod: &str, says: impl Fn(&str) -> bool) -> bool {
    env.events(pod, "FailedScheduling").await.iter().any(|e| e.message.as_deref().is_some_and(&says))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_pod_naming_an_unknown_topology_level_is_refused_and_a_good_pod_beside_it_is_bound() {
    let env = Env::new("bad-level").await;
    env.node("bl-a", 8).await;
    let (stop, task) = spawn_scheduler_with_default_levels(env.scheduler_client().await).await;
    let mut typo = pending_pod(&env.ns, "typo", 1, "mlsched", None);
    typo["metadata"]["annotations"] = json!({"mlsched.io/topology-required-level": "network.mlsched.io/rak"});
    env.create_pod(typo).await;
    env.pod("good", 1, None).await;
    until("the good pod bound", Duration::from_secs(20), || async { env.node_of("good").await.is_some() }).await;
    // The bad value and the levels it could have named (the documented defaults: the config names none).
    let says_why = |m: &str| {
        m.contains("mlsched.io/topology-required-level")
            && m.contains("\"network.mlsched.io/rak\"")
            && m.contains(DOCUMENTED_LEVELS)
    };
    until("PodScheduled=False naming the unknown level", Duration::from_secs(10), || async {
        condition_says(&env, "typo", "InvalidSchedulingRequest", says_why).await
    })
    .await;
    until("a FailedScheduling Event naming the unknown level", Duration::from_secs(10), || async {
        event_says(&env, "typo", says_why).await
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(env.node_of("typo").await.is_none(), "bound as if the annotation were absent");
    crate::stop_scheduler(Some(stop), task).await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_naming_a_missing_pod_group_says_so_and_is_placed_once_the_pod_group_exists() {
    let env = Env::new("missing-podgroup").await;
    env.node("mp-a", 8).await;
    let (stop, task, _) = spawn_scheduler(env.scheduler_client().await, "").await;
    env.pod("orphan", 1, Some("later")).await;
    let missing = format!("PodGroup {}/later does not exist", env.ns);
    let says_why = |m: &str| m.contains(&missing);
    until("PodScheduled=False saying the PodGroup does not exist", Duration::from_secs(20), || async {
        condition_says(&env, "orphan", "Unschedulable", says_why).await
    })
    .await;
    until("a FailedScheduling Event saying the PodGroup does not exist", Duration::from_secs(10), || async {
        event_says(&env, "orphan", says_why).await
    })
    .await;
    assert!(env.node_of("orphan").await.is_none(), "placed without its PodGroup");
    env.pod_group("later", 1, None).await;
    until("placed once the PodGroup exists", Duration::from_secs(20), || async {
        env.node_of("orphan").await.is_some()
    })
    .await;
    crate::stop_scheduler(Some(stop), task).await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_of_a_gang_far_below_min_member_are_told_it_waits_for_members() {
    let env = Env::new("below-min-member").await;
    env.node("bm-a", 8).await;
    let (stop, task, _) = spawn_scheduler(env.scheduler_client().await, "").await;
    env.pod_group("huge", 100_000, None).await;
    for name in ["m0", "m1"] {
        env.pod(name, 1, Some("huge")).await;
    }
    let gang = format!("gang {}/huge", env.ns);
    let says_why =
        |m: &str| m.starts_with(&gang) && m.contains("waiting for members: ") && m.ends_with("/100000 exist");
    for name in ["m0", "m1"] {
        until(&format!("{name}: PodScheduled=False waiting for members"), Duration::from_secs(20), || async {
            condition_says(&env, name, "Unschedulable", says_why).await
        })
        .await;
        until(&format!("{name}: a FailedScheduling Event waiting for members"), Duration::from_secs(10), || async {
            event_says(&env, name, says_why).await
        })
        .await;
    }
    let status = env.pod_group_status("huge").await;
    assert_eq!(status["phase"], "Pending", "{status}");
    assert!(env.bound().await.is_empty(), "a gang below minMember bound a member");
    crate::stop_scheduler(Some(stop), task).await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completing_a_half_bound_gang_writes_the_missing_scheduled_events_once_and_a_status_that_agrees() {
    let env = Env::new("restart-events").await;
    env.node("re-a", 8).await;
    env.node("re-b", 8).await;
    env.pod_group("train", 4, None).await;
    for i in 0..4 {
        env.pod(&format!("w{i}"), 4, Some("train")).await;
    }
    // What a leader killed in the middle of binding the gang leaves: w0 and w1 bound, and only w0's
    // Scheduled Event written (under the name every instance gives it) before it died.
    for pod in ["w0", "w1"] {
        env.bind(pod, "re-a").await;
    }
    let uid = env.get_pod("w0").await.and_then(|p| p.metadata.uid).expect("w0 has a uid");
    let w0 = PodRef { namespace: env.ns.clone(), name: "w0".into(), uid: uid.clone() };
    let earlier: Event = typed(json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": scheduled_event_name(&w0).expect("a short name"), "namespace": env.ns},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "namespace": env.ns, "name": "w0", "uid": uid},
        "reason": "Scheduled", "message": format!("Successfully assigned {}/w0 to re-a", env.ns),
        "type": "Normal", "count": 1, "source": {"component": "mlsched"},
    }));
    Api::<Event>::namespaced(env.admin.clone(), &env.ns).create(&PostParams::default(), &earlier).await.expect("Event");

    let (stop, task, _) = spawn_scheduler(env.scheduler_client().await, "").await;
    until("the rest of the gang bound", Duration::from_secs(30), || async { env.bound().await.len() == 4 }).await;
    until("PodGroup Scheduled with all four", Duration::from_secs(10), || async {
        let status = env.pod_group_status("train").await;
        status["phase"] == "Scheduled" && status["scheduled"] == 4
    })
    .await;
    let status = env.pod_group_status("train").await;
    let message = status["conditions"][0]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("4 members bound"), "status.scheduled is 4, the message says: {status}");
    // The member the dead leader bound without an Event gets one from the new leader; the one whose Event
    // exists does not get a second, nor do the members the new leader bound itself.
    let assigned_w1 = format!("Successfully assigned {}/w1 to re-a", env.ns);
    until("w1's Scheduled Event written by the new leader", Duration::from_secs(10), || async {
        env.events("w1", "Scheduled").await.iter().any(|e| e.message.as_deref() == Some(assigned_w1.as_str()))
    })
    .await;
    until("w2 and w3 have their Scheduled Events", Duration::from_secs(10), || async {
        !env.events("w2", "Scheduled").await.is_empty() && !env.events("w3", "Scheduled").await.is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for pod in ["w0", "w1", "w2", "w3"] {
        let events = env.events(pod, "Scheduled").await;
        assert_eq!(events.len(), 1, "{pod}: {events:#?}");
    }
    env.assert_no_overcommit().await;
    crate::stop_scheduler(Some(stop), task).await;
    env.finish().await;
}
