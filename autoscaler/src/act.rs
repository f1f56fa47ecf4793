//! Act: apply one decided action to the cluster, and remember in [`Memory`] what later periods need of it.
//! What is written about it (status, Events, metrics) is [`crate::report`]'s.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};
use tracing::warn;

use crate::decide::{Action, ContainerResize, PodResize};
use crate::memory::Memory;
use crate::observe::{Fail, Observation, Rollout, Scope, Source};
use crate::placement::Plan;
use crate::run::NEAR_WORKLOAD_ANNOTATION;
use mlsched::quantity::{format_cpu, format_memory};

/// What was applied.
#[derive(Clone, Debug, PartialEq)]
pub enum Applied {
    Nothing,
    /// The first `done` pods of the action were resized; `unavailable`: the API server's message when it
    /// refused a resize as unsupported, which stopped the rest.
    Resized {
        done: usize,
        unavailable: Option<String>,
    },
    Recreating,
    ScaledUp,
    ScaledDown,
}

/// The outcome of acting. The plan of a scale-out is kept apart from the result: it is reported even when
/// applying fails after it.
#[derive(Debug)]
pub struct Acted {
    pub plan: Option<Plan>,
    pub result: Result<Applied, Fail>,
}

impl From<Result<Applied, Fail>> for Acted {
    fn from(result: Result<Applied, Fail>) -> Acted {
        Acted { plan: None, result }
    }
}

pub async fn apply(s: &Scope<'_>, mem: &mut Memory, obs: &Observation, action: &Action) -> Acted {
    match action {
        Action::None => Ok(Applied::Nothing).into(),
        Action::Resize { pods, grow } => resize(s, mem, pods, *grow).await.into(),
        Action::Recreate { containers } => recreate(s, mem, obs, containers).await.into(),
        Action::Scale { from, to } if to > from => scale_up(s, obs, to - from, *to).await,
        Action::Scale { to, .. } => scale(s, *to).await.map(|()| Applied::ScaledDown).into(),
    }
}

/// Deletes the next pod of an OnDelete recreate rollout, whose controller recreates it with the new
/// template; returns its name once deleted. A failure is only logged: the next period tries again.
pub async fn recreate_next(s: &Scope<'_>, rollout: &Rollout) -> Option<String> {
    let Rollout::Rolling { next: Some(victim) } = rollout else { return None };
    match s.pods().delete(victim, &DeleteParams::default()).await {
        Ok(_) => Some(victim.clone()),
        Err(e) => {
            warn!(workload = %s.key, pod = %victim, error = %e, "recreating a pod failed");
            None
        }
    }
}

/// Resizes pod after pod through `pods/{name}/resize`. A refusal as unsupported (404/405/415: no such
/// subresource, or the feature is off) is remembered for good, so later periods go horizontal or recreate.
async fn resize(s: &Scope<'_>, mem: &mut Memory, resizes: &[PodResize], grow: bool) -> Result<Applied, Fail> {
    let api = s.pods();
    let mut done = 0;
    let mut unavailable = None;
    for r in resizes {
        let body = json!({"spec": {"containers": r.containers.iter().map(container_resources).collect::<Vec<_>>()}});
        match api.patch_subresource("resize", &r.pod, &PatchParams::default(), &Patch::Strategic(body)).await {
            Ok(_) => done += 1,
            Err(kube::Error::Api(e)) if matches!(e.code, 404 | 405 | 415) => {
                mem.in_place_available = false;
                unavailable = Some(e.message.clone());
                break;
            }
            Err(e) => return Err(Fail::kube("FailedResize", format!("resize of pod {}: {e}", r.pod))),
        }
    }
    if done > 0 && grow {
        mem.last_grow_at = Some(s.now);
    }
    Ok(Applied::Resized { done, unavailable })
}

/// Rewrites the template's requests; the target's controller (or [`recreate_next`]) replaces the pods. The
/// same patch adds the near-workload annotation: the pods are replaced anyway, so it costs no extra rollout,
/// and the replacements land near the pods that still run (the simulator measures what that saves:
/// `bench/README.md`, hybrid-recreate).
async fn recreate(
    s: &Scope<'_>,
    mem: &mut Memory,
    obs: &Observation,
    containers: &[ContainerResize],
) -> Result<Applied, Fail> {
    s.target
        .patch_template(recreate_patch(&obs.selector, containers))
        .await
        .map_err(|e| Fail::kube("FailedRecreate", format!("template of {}: {e}", s.target.name)))?;
    mem.recreate = Some((s.now, containers.iter().map(|c| (c.name.clone(), c.request)).collect()));
    mem.last_grow_at = Some(s.now);
    Ok(Applied::Recreating)
}

/// Plans the `new` replicas, then annotates the template so the scheduler places them near the existing
/// pods, then scales.
/// The template patch of a recreate: the new resources, and the near-workload annotation.
fn recreate_patch(selector: &str, containers: &[ContainerResize]) -> Value {
    json!({
        "metadata": {"annotations": {NEAR_WORKLOAD_ANNOTATION: selector}},
        "spec": {"containers": containers.iter().map(container_resources).collect::<Vec<_>>()},
    })
}

async fn scale_up(s: &Scope<'_>, obs: &Observation, new: u32, to: u32) -> Acted {
    let existing: Vec<String> = obs.pods.iter().map(|p| p.name.clone()).collect();
    let plan = match s.placement.plan_replicas(s.ns, &obs.template, new, &existing).await {
        Ok(plan) => plan,
        Err(e) => {
            return Err(Fail::new(Source::Placement, "PlacementAvailable", "PlacementAPIError", e.to_string())).into();
        }
    };
    let result = async {
        if obs.near_workload.as_deref() != Some(obs.selector.as_str()) {
            let template = json!({"metadata": {"annotations": {NEAR_WORKLOAD_ANNOTATION: obs.selector}}});
            s.target
                .patch_template(template)
                .await
                .map_err(|e| Fail::kube("FailedUpdateTemplate", format!("{}: {e}", s.target.name)))?;
        }
        scale(s, to).await.map(|()| Applied::ScaledUp)
    }
    .await;
    Acted { plan: Some(plan), result }
}

async fn scale(s: &Scope<'_>, to: u32) -> Result<(), Fail> {
    let name = &s.target.name;
    s.target.scale(to).await.map_err(|e| Fail::kube("FailedUpdateScale", format!("scale of {name}: {e}")))
}

/// A container's entry of a strategic merge patch: its name (the merge key) and new resources; limits
/// only on the sides that have one.
fn container_resources(c: &ContainerResize) -> Container {
    let mut limits = BTreeMap::new();
    if let Some(l) = c.limit_cpu {
        limits.insert("cpu".to_string(), Quantity(format_cpu(l)));
    }
    if let Some(l) = c.limit_mem {
        limits.insert("memory".to_string(), Quantity(format_memory(l)));
    }
    let requests = BTreeMap::from([
        ("cpu".to_string(), Quantity(format_cpu(c.request.cpu))),
        ("memory".to_string(), Quantity(format_memory(c.request.mem))),
    ]);
    Container {
        name: c.name.clone(),
        resources: Some(ResourceRequirements {
            requests: Some(requests),
            limits: (!limits.is_empty()).then_some(limits),
            claims: None,
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::Res;

    #[test]
    fn a_recreate_patch_rewrites_the_requests_and_places_the_replacements_near_the_workload() {
        let c = ContainerResize {
            name: "app".into(),
            request: Res::new(1500, 256 << 20),
            limit_cpu: None,
            limit_mem: None,
        };
        assert_eq!(
            recreate_patch("app=web", &[c]),
            json!({"metadata": {"annotations": {"mlsched.io/near-workload": "app=web"}},
                   "spec": {"containers": [{"name": "app", "resources": {"requests": {"cpu": "1500m", "memory": "256Mi"}}}]}})
        );
    }

    /// The patch body is what the API server merges: nothing but the name and the resources may be set.
    #[test]
    fn container_patch_sets_only_name_and_resources() {
        let c = ContainerResize {
            name: "app".into(),
            request: Res::new(1286, 256 << 20),
            limit_cpu: Some(2572),
            limit_mem: None,
        };
        assert_eq!(
            serde_json::to_value(container_resources(&c)).unwrap(),
            json!({"name": "app", "resources": {"requests": {"cpu": "1286m", "memory": "256Mi"},
                                                "limits": {"cpu": "2572m"}}})
        );
        let c = ContainerResize { limit_cpu: None, ..c };
        assert_eq!(
            serde_json::to_value(container_resources(&c)).unwrap(),
            json!({"name": "app", "resources": {"requests": {"cpu": "1286m", "memory": "256Mi"}}})
        );
    }
}
