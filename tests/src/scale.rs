//! `apps/v1` Deployments and StatefulSets with their `scale` subresource (autoscaling/v1 `Scale`), and an
//! optional "replica mirror" that stands in for the workload controllers, which the double does not run.
//!
//! - `GET .../deployments/{name}/scale`: a `Scale` whose `spec.replicas` is the workload's `spec.replicas`,
//!   `status.replicas` its `status.replicas` (0 when unset) and `status.selector` its `spec.selector` as a
//!   label selector string.
//! - `PUT` (a `Scale` body) and `PATCH` (any patch type, applied to the `Scale`): write `spec.replicas` back
//!   into the workload. A `metadata.resourceVersion` in the body is a precondition (409 when stale), as on
//!   the real server.

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::patch::{PatchKind, apply_patch};
use crate::resources::ResourceKind;
use crate::state::StateHandle;
use crate::store::{Store, Sub};

/// Whether a served kind has the `scale` subresource (apps/v1 Deployments, StatefulSets, ReplicaSets).
pub fn has_scale(kind: &ResourceKind) -> bool {
    kind.group == "apps" && matches!(kind.plural.as_str(), "deployments" | "statefulsets" | "replicasets")
}

/// `spec.selector.matchLabels` (and simple `matchExpressions` with `In`/`Exists`) as a label selector string.
pub fn selector_string(obj: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(m) = obj.pointer("/spec/selector/matchLabels").and_then(Value::as_object) {
        for (k, v) in m {
            parts.push(format!("{k}={}", v.as_str().unwrap_or("")));
        }
    }
    if let Some(exprs) = obj.pointer("/spec/selector/matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            let key = e.get("key").and_then(Value::as_str).unwrap_or("");
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            match e.get("operator").and_then(Value::as_str).unwrap_or("") {
                "In" => parts.push(format!("{key} in ({})", values.join(","))),
                "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
                "Exists" => parts.push(key.to_string()),
                "DoesNotExist" => parts.push(format!("!{key}")),
                _ => {}
            }
        }
    }
    parts.join(",")
}

/// The autoscaling/v1 `Scale` view of a workload object.
pub fn scale_of(obj: &Value) -> Value {
    let m = obj.get("metadata").cloned().unwrap_or(json!({}));
    let mut meta = json!({});
    for f in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"] {
        if let Some(v) = m.get(f) {
            meta[f] = v.clone();
        }
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": meta,
        "spec": {"replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)},
        "status": {
            "replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": selector_string(obj),
        },
    })
}

fn write_replicas(
    store: &Store,
    kind: &ResourceKind,
    ns: &str,
    name: &str,
    scale: &Value,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let replicas = scale.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0);
    if replicas < 0 {
        return Err(ApiError::new(
            422,
            format!("Scale.autoscaling \"{name}\" is invalid: spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"),
        )
        .with_details(name, "autoscaling", "Scale"));
    }
    let mut obj = store.get(kind, ns, name)?;
    obj["spec"]["replicas"] = json!(replicas);
    match scale.pointer("/metadata/resourceVersion").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        Some(rv) => obj["metadata"]["resourceVersion"] = json!(rv),
        None => {
            if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("resourceVersion");
            }
        }
    }
    let updated = store.update(kind, ns, name, obj, Sub::Main, dry_run, false)?;
    Ok(scale_of(&updated))
}

/// GET / PUT / PATCH of `{workload}/scale`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn serve(
    store: &Store,
    kind: &ResourceKind,
    method: &axum::http::Method,
    content_type: &str,
    ns: &str,
    name: &str,
    body: &[u8],
    dry_run: bool,
) -> Result<Value, ApiError> {
    use axum::http::Method;
    let parse = || {
        serde_json::from_slice::<Value>(body)
            .map_err(|e| ApiError::bad_request(format!("failed to decode request body as JSON: {e}")))
    };
    match *method {
        Method::GET => Ok(scale_of(&store.get(kind, ns, name)?)),
        Method::PUT => write_replicas(store, kind, ns, name, &parse()?, dry_run),
        Method::PATCH => {
            let pk = PatchKind::from_content_type(content_type)
                .ok_or_else(|| ApiError::new(415, format!("unsupported patch type {content_type:?}")))?;
            let current = scale_of(&store.get(kind, ns, name)?);
            let mut patched = apply_patch(pk, &current, &parse()?)?;
            // A resourceVersion only counts as a precondition when the patch itself carried one.
            if patched.pointer("/metadata/resourceVersion") == current.pointer("/metadata/resourceVersion") {
                patched["metadata"].as_object_mut().map(|m| m.remove("resourceVersion"));
            }
            write_replicas(store, kind, ns, name, &patched, dry_run)
        }
        _ => Err(ApiError::new(405, "the server does not allow this method on the requested resource")),
    }
}

/// Stands in for the Deployment/StatefulSet controller: creates or deletes pods so that the workload
/// `{plural}/{name}` (`deployments` or `statefulsets`) has `spec.replicas` pods, bound at once to `node`
/// and `Running`. Pods are named `{name}-{n}`, get the template's labels, annotations and spec, and are
/// deleted highest `n` first. `status.replicas` is updated. Returns (created, deleted) pod names.
pub fn mirror_replicas(
    state: &StateHandle,
    plural: &str,
    ns: &str,
    name: &str,
    node: &str,
) -> Result<(Vec<String>, Vec<String>), ApiError> {
    let kind = state
        .kind("apps", plural)
        .ok_or_else(|| ApiError::new(404, format!("{plural}.apps is not served by the double")))?;
    let pods_kind = state.kind("", "pods").ok_or_else(|| ApiError::new(404, "pods are not served"))?;
    let obj =
        state.get_value(&kind, ns, name).ok_or_else(|| ApiError::not_found(&kind.qualified(), name, "apps", plural))?;
    let want = obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1).max(0) as usize;
    let template = obj.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let prefix = format!("{name}-");
    let mut mine: Vec<(u64, String)> = state
        .list_values(&pods_kind, Some(ns))
        .iter()
        .filter_map(|p| p.pointer("/metadata/name").and_then(Value::as_str).map(str::to_string))
        .filter_map(|n| n.strip_prefix(&prefix).and_then(|s| s.parse::<u64>().ok()).map(|i| (i, n.clone())))
        .collect();
    mine.sort();
    let (mut created, mut deleted) = (Vec::new(), Vec::new());
    while mine.len() > want {
        let (_, pod) = mine.pop().expect("non-empty");
        state.delete_value(&pods_kind, ns, &pod)?;
        deleted.push(pod);
    }
    let mut next = mine.last().map_or(0, |(i, _)| i + 1);
    while mine.len() + created.len() < want {
        let pod_name = format!("{prefix}{next}");
        next += 1;
        let mut spec = template.get("spec").cloned().unwrap_or(json!({}));
        spec["nodeName"] = json!(node);
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod_name,
                "namespace": ns,
                "labels": template.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
                "annotations": template.pointer("/metadata/annotations").cloned().unwrap_or(json!({})),
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": kind.kind, "name": name,
                    "uid": obj.pointer("/metadata/uid").cloned().unwrap_or(json!("")), "controller": true}],
            },
            "spec": spec,
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
        });
        state.create_value(&pods_kind, ns, pod)?;
        created.push(pod_name);
    }
    let mut obj = state.get_value(&kind, ns, name).unwrap_or(obj);
    obj["status"]["replicas"] = json!(want);
    obj["status"]["readyReplicas"] = json!(want);
    state.replace_value(&kind, ns, name, obj)?;
    Ok((created, deleted))
}
