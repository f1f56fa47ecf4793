//! The pod `resize` subresource (in-place pod resize, stable in Kubernetes 1.35).
//!
//! `GET pods/{name}/resize` answers the pod; `PATCH` (any patch type) and `PUT` may change only
//! `spec.containers[*].resources` and `spec.containers[*].resizePolicy` (else 422, like the real server),
//! and only the `cpu` and `memory` entries of the resources. There is no kubelet: the resize is applied
//! at once, and `status.containerStatuses[*].resources` of the resized containers is set to the new values
//! (what a kubelet reports once it has actuated the resize). To make resize unavailable in a test, inject a
//! fault: `RequestMatch::new(Verb::Patch, "pods").subresource("resize")`.

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::patch::{PatchKind, apply_patch};
use crate::resources::ResourceKind;
use crate::store::{Store, Sub};

fn forbidden(name: &str, why: &str) -> ApiError {
    ApiError::new(422, format!("Pod \"{name}\" is invalid: spec: Forbidden: {why}")).with_details(name, "", "Pod")
}

/// The pod with every container's resources and resize policy blanked, to compare everything else.
fn without_resizable(pod: &Value) -> Value {
    let mut p = pod.clone();
    if let Some(cs) = p.pointer_mut("/spec/containers").and_then(Value::as_array_mut) {
        for c in cs {
            if let Some(o) = c.as_object_mut() {
                o.remove("resources");
                o.remove("resizePolicy");
            }
        }
    }
    p.as_object_mut().map(|o| o.remove("status"));
    if let Some(m) = p.get_mut("metadata").and_then(Value::as_object_mut) {
        for f in ["resourceVersion", "generation", "managedFields"] {
            m.remove(f);
        }
    }
    p
}

fn check(name: &str, old: &Value, new: &Value) -> Result<(), ApiError> {
    if without_resizable(old) != without_resizable(new) {
        return Err(forbidden(name, "only cpu and memory resources and resizePolicy are mutable through resize"));
    }
    let containers = |p: &Value| p.pointer("/spec/containers").and_then(Value::as_array).cloned().unwrap_or_default();
    for (a, b) in containers(old).iter().zip(containers(new).iter()) {
        for part in ["requests", "limits"] {
            let ra = a.pointer(&format!("/resources/{part}")).and_then(Value::as_object).cloned().unwrap_or_default();
            let rb = b.pointer(&format!("/resources/{part}")).and_then(Value::as_object).cloned().unwrap_or_default();
            let keys: std::collections::BTreeSet<&String> = ra.keys().chain(rb.keys()).collect();
            for k in keys {
                if k != "cpu" && k != "memory" && ra.get(k) != rb.get(k) {
                    return Err(forbidden(name, &format!("only cpu and memory resources are mutable, not {k}")));
                }
            }
        }
    }
    Ok(())
}

/// GET / PATCH / PUT of `pods/{name}/resize`.
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
    let old = store.get(kind, ns, name)?;
    let parse = || {
        serde_json::from_slice::<Value>(body)
            .map_err(|e| ApiError::bad_request(format!("failed to decode request body as JSON: {e}")))
    };
    let mut new = match *method {
        Method::GET => return Ok(old),
        Method::PUT => parse()?,
        Method::PATCH => {
            let pk = PatchKind::from_content_type(content_type)
                .ok_or_else(|| ApiError::new(415, format!("unsupported patch type {content_type:?}")))?;
            let patch = parse()?;
            let mut p = apply_patch(pk, &old, &patch)?;
            if patch.pointer("/metadata/resourceVersion").is_none() {
                p["metadata"].as_object_mut().map(|m| m.remove("resourceVersion"));
            }
            p
        }
        _ => return Err(ApiError::new(405, "the server does not allow this method on the requested resource")),
    };
    let mut probe = new.clone();
    probe["status"] = old.get("status").cloned().unwrap_or(Value::Null);
    check(name, &old, &probe)?;
    // The "kubelet" actuates at once: report the new resources in the container statuses.
    new["status"] = old.get("status").cloned().unwrap_or(json!({}));
    let resources: Vec<(String, Value)> = new
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    (
                        c.get("name").and_then(Value::as_str).unwrap_or("").to_string(),
                        c.get("resources").cloned().unwrap_or(json!({})),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut statuses = new.pointer("/status/containerStatuses").and_then(Value::as_array).cloned().unwrap_or_default();
    for (cname, res) in resources {
        match statuses.iter_mut().find(|s| s.get("name").and_then(Value::as_str) == Some(cname.as_str())) {
            Some(s) => s["resources"] = res,
            None => statuses.push(json!({"name": cname, "ready": true, "restartCount": 0, "image": "",
                "imageID": "", "resources": res})),
        }
    }
    new["status"]["containerStatuses"] = json!(statuses);
    // Written raw so the status change lands together with the spec change.
    store.update(kind, ns, name, new, Sub::Main, dry_run, true)
}
