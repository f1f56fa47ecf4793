//! Patch application: JSON merge patch (RFC 7386), JSON patch (RFC 6902), a strategic merge patch that covers
//! the cases kube clients send (keyed lists such as `conditions` by `type`, `$patch: delete|replace`,
//! `$deleteFromPrimitiveList/...`), and an approximation of server-side apply.

use serde_json::{Map, Value};

use crate::error::ApiError;

/// The patch types, by `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchKind {
    Merge,
    Json,
    Strategic,
    Apply,
}

impl PatchKind {
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let ct = ct.split(';').next().unwrap_or("").trim();
        match ct {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/json-patch+json" => Some(Self::Json),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// Merge key of a list field for strategic merge (`None`: the list is replaced whole).
fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "conditions" | "addresses" | "readinessGates" => "type",
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "resourceClaims"
        | "hostAliases" => "name",
        "ports" => "containerPort",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "ownerReferences" => "uid",
        _ => return None,
    })
}

/// Lists of scalars merged as sets under strategic merge.
fn is_primitive_merge_list(field: &str) -> bool {
    matches!(field, "finalizers")
}

/// Applies `patch` to `doc` with the given patch type and returns the patched document.
pub fn apply_patch(kind: PatchKind, doc: &Value, patch: &Value) -> Result<Value, ApiError> {
    let mut out = doc.clone();
    match kind {
        PatchKind::Merge => json_patch::merge(&mut out, patch),
        PatchKind::Json => {
            let p: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(&mut out, &p).map_err(|e| ApiError::new(422, format!("JSON patch failed: {e}")))?;
        }
        PatchKind::Strategic | PatchKind::Apply => strategic_merge(&mut out, patch),
    }
    Ok(out)
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter().filter(|(k, _)| !k.starts_with('$')).map(|(k, v)| (k.clone(), strip_directives(v))).collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

/// Strategic merge of `patch` into `target`.
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    let Value::Object(pm) = patch else {
        *target = patch.clone();
        return;
    };
    if pm.get("$patch").and_then(Value::as_str) == Some("replace") {
        *target = strip_directives(patch);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let tm = target.as_object_mut().expect("object");
    for (k, v) in pm {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(del)) = (tm.get_mut(field), v) {
                list.retain(|x| !del.contains(x));
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        match v {
            Value::Null => {
                tm.remove(k);
            }
            Value::Array(items) => {
                let existing = tm.get_mut(k);
                match (merge_key(k), existing) {
                    (Some(key), Some(Value::Array(cur))) => merge_keyed_list(cur, items, key),
                    (None, Some(Value::Array(cur))) if is_primitive_merge_list(k) => {
                        for it in items {
                            if !cur.contains(it) {
                                cur.push(it.clone());
                            }
                        }
                    }
                    _ => {
                        let cleaned: Vec<Value> = items
                            .iter()
                            .filter(|it| it.get("$patch").and_then(Value::as_str) != Some("delete"))
                            .map(strip_directives)
                            .collect();
                        tm.insert(k.clone(), Value::Array(cleaned));
                    }
                }
            }
            Value::Object(_) => {
                let entry = tm.entry(k.clone()).or_insert(Value::Null);
                strategic_merge(entry, v);
            }
            other => {
                tm.insert(k.clone(), other.clone());
            }
        }
    }
}

fn merge_keyed_list(cur: &mut Vec<Value>, items: &[Value], key: &str) {
    for it in items {
        let Some(kv) = it.get(key).cloned() else {
            cur.push(strip_directives(it));
            continue;
        };
        let pos = cur.iter().position(|c| c.get(key) == Some(&kv));
        let delete = it.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                cur.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic_merge(&mut cur[i], it),
            (None, false) => cur.push(strip_directives(it)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merges_conditions_by_type() {
        let doc = json!({"status": {"conditions": [
            {"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}]}});
        let p =
            json!({"status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "X", "status": "True"}]}});
        let out = apply_patch(PatchKind::Strategic, &doc, &p).unwrap();
        assert_eq!(out["status"]["conditions"].as_array().unwrap().len(), 3);
        assert_eq!(out["status"]["conditions"][0]["status"], "True");
        let merged = apply_patch(PatchKind::Merge, &doc, &p).unwrap();
        assert_eq!(merged["status"]["conditions"].as_array().unwrap().len(), 2);
        let del = json!({"status": {"conditions": [{"type": "Ready", "$patch": "delete"}]}});
        let out = apply_patch(PatchKind::Strategic, &doc, &del).unwrap();
        assert_eq!(out["status"]["conditions"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn json_patch_works() {
        let doc = json!({"metadata": {"labels": {"a": "1"}}});
        let p = json!([{"op": "add", "path": "/metadata/labels/b", "value": "2"}, {"op": "remove", "path": "/metadata/labels/a"}]);
        let out = apply_patch(PatchKind::Json, &doc, &p).unwrap();
        assert_eq!(out, json!({"metadata": {"labels": {"b": "2"}}}));
        let bad = json!([{"op": "test", "path": "/metadata/labels/a", "value": "9"}]);
        assert_eq!(apply_patch(PatchKind::Json, &doc, &bad).unwrap_err().code, 422);
    }
}
