//! The object store: one global, monotonically increasing resourceVersion, a bounded change history for
//! watches, and the write semantics (preconditions, status subresource, finalizers, binding).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Map, Value, json};
use tokio::sync::watch;

use crate::error::{ApiError, success_status};
use crate::patch::{PatchKind, apply_patch};
use crate::resources::ResourceKind;
use crate::selectors::{FieldSelector, LabelSelector};

/// What a change did to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeType {
    Added,
    Modified,
    Deleted,
}

/// One entry of the change history.
#[derive(Clone, Debug)]
pub struct Change {
    pub resource_version: u64,
    /// Storage key of the resource type (`/pods`, `scheduling.x-k8s.io/podgroups`).
    pub resource: String,
    pub namespace: String,
    pub name: String,
    pub change: ChangeType,
    /// The object after the change (for `Deleted`: its last state, carrying the deletion's resourceVersion).
    pub object: Value,
    /// The object before the change (`None` for `Added`).
    pub prev: Option<Value>,
}

/// One successful `pods/binding` POST.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindingRecord {
    pub namespace: String,
    pub pod: String,
    pub node: String,
    pub resource_version: u64,
}

/// Which part of an object a write addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sub {
    Main,
    Status,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct ListQuery {
    pub label: Option<LabelSelector>,
    pub field: Option<FieldSelector>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
}

pub(crate) struct Inner {
    rv: u64,
    uid_counter: u64,
    uid_seed: u32,
    objects: HashMap<String, BTreeMap<(String, String), Value>>,
    history: VecDeque<Arc<Change>>,
    pub(crate) history_limit: usize,
    /// History holds every change with a resourceVersion above this one.
    compacted_rv: u64,
    bindings: Vec<BindingRecord>,
}

pub(crate) struct Store {
    inner: Mutex<Inner>,
    pub(crate) kinds: Vec<ResourceKind>,
    pub(crate) rv_tx: watch::Sender<u64>,
    pub(crate) drop_tx: watch::Sender<u64>,
    pub(crate) bookmark_tx: watch::Sender<u64>,
    pub(crate) open_watches: AtomicUsize,
}

pub(crate) fn now_timestamp() -> Value {
    let t = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
    serde_json::to_value(t).unwrap_or(Value::Null)
}

fn meta(obj: &Value, field: &str) -> Option<String> {
    obj.get("metadata").and_then(|m| m.get(field)).and_then(Value::as_str).map(str::to_string)
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let o = obj.as_object_mut().expect("object");
    let m = o.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    if !m.is_object() {
        *m = Value::Object(Map::new());
    }
    m.as_object_mut().expect("object")
}

fn has_finalizers(obj: &Value) -> bool {
    obj.pointer("/metadata/finalizers").and_then(Value::as_array).is_some_and(|a| !a.is_empty())
}

/// Everything but `metadata` and `status`: changes here bump `metadata.generation`.
fn spec_part(obj: &Value) -> Value {
    match obj {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        _ => Value::Null,
    }
}

fn without_rv(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
        m.remove("managedFields");
    }
    o
}

fn encode_hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect();
    String::from_utf8(bytes?).ok()
}

/// Continue token: `<rv>.<hex(namespace)>.<hex(name)>` of the last item served.
fn encode_continue(rv: u64, key: &(String, String)) -> String {
    format!("{rv}.{}.{}", encode_hex(&key.0), encode_hex(&key.1))
}

fn decode_continue(token: &str) -> Option<(u64, (String, String))> {
    let mut parts = token.split('.');
    let rv = parts.next()?.parse().ok()?;
    let ns = decode_hex(parts.next()?)?;
    let name = decode_hex(parts.next()?)?;
    Some((rv, (ns, name)))
}

fn parse_rv(s: &str) -> Result<u64, ApiError> {
    s.parse().map_err(|_| ApiError::bad_request(format!("invalid resource version: {s}")))
}

impl Store {
    pub(crate) fn new(kinds: Vec<ResourceKind>, history_limit: usize) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
            .unwrap_or(0);
        let store = Self {
            inner: Mutex::new(Inner {
                rv: 0,
                uid_counter: 0,
                uid_seed: seed,
                objects: HashMap::new(),
                history: VecDeque::new(),
                history_limit: history_limit.max(1),
                compacted_rv: 0,
                bindings: Vec::new(),
            }),
            kinds,
            rv_tx: watch::channel(0).0,
            drop_tx: watch::channel(0).0,
            bookmark_tx: watch::channel(0).0,
            open_watches: AtomicUsize::new(0),
        };
        if let Some(ns_kind) = store.kind("", "namespaces") {
            for ns in ["default", "kube-system"] {
                let _ = store.create(
                    &ns_kind,
                    "",
                    json!({"metadata": {"name": ns}, "status": {"phase": "Active"}}),
                    false,
                    true,
                );
            }
        }
        store
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn kind(&self, group: &str, plural: &str) -> Option<ResourceKind> {
        self.kinds.iter().find(|k| k.group == group && k.plural == plural).cloned()
    }

    pub(crate) fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    pub(crate) fn bindings(&self) -> Vec<BindingRecord> {
        self.lock().bindings.clone()
    }

    /// Drops all history: a watch from any resourceVersion older than the current one gets 410 Gone.
    pub(crate) fn compact(&self) {
        let mut inner = self.lock();
        inner.history.clear();
        inner.compacted_rv = inner.rv;
        drop(inner);
        // Wake watchers so that those behind the compaction learn it now.
        self.rv_tx.send_modify(|_| {});
    }

    pub(crate) fn set_history_limit(&self, n: usize) {
        let mut inner = self.lock();
        inner.history_limit = n.max(1);
        Self::trim(&mut inner);
    }

    fn trim(inner: &mut Inner) {
        while inner.history.len() > inner.history_limit {
            if let Some(c) = inner.history.pop_front() {
                inner.compacted_rv = c.resource_version;
            }
        }
    }

    fn new_uid(inner: &mut Inner) -> String {
        inner.uid_counter += 1;
        format!("{:08x}-0000-4000-8000-{:012x}", inner.uid_seed, inner.uid_counter)
    }

    /// Stores `new` (or removes the object when `None`) under a fresh resourceVersion and records the change.
    fn commit(
        &self,
        inner: &mut Inner,
        kind: &ResourceKind,
        ns: &str,
        name: &str,
        new: Option<Value>,
        ty: ChangeType,
    ) -> Value {
        inner.rv += 1;
        let rv = inner.rv;
        let map = inner.objects.entry(kind.key()).or_default();
        let key = (ns.to_string(), name.to_string());
        let prev = map.get(&key).cloned();
        let object = match new {
            Some(mut obj) => {
                meta_mut(&mut obj).insert("resourceVersion".into(), Value::String(rv.to_string()));
                map.insert(key, obj.clone());
                obj
            }
            None => {
                let mut obj = map.remove(&key).unwrap_or(Value::Null);
                meta_mut(&mut obj).insert("resourceVersion".into(), Value::String(rv.to_string()));
                obj
            }
        };
        inner.history.push_back(Arc::new(Change {
            resource_version: rv,
            resource: kind.key(),
            namespace: ns.to_string(),
            name: name.to_string(),
            change: ty,
            object: object.clone(),
            prev,
        }));
        Self::trim(inner);
        self.rv_tx.send_replace(rv);
        object
    }

    fn check_ns(kind: &ResourceKind, ns: &str) -> Result<(), ApiError> {
        if kind.namespaced && ns.is_empty() {
            return Err(ApiError::bad_request(
                "the server could not find the requested resource: a namespace is required",
            ));
        }
        Ok(())
    }

    /// Creates an object. `raw` skips the create strategy (status reset for pods and custom resources).
    pub(crate) fn create(
        &self,
        kind: &ResourceKind,
        ns: &str,
        mut obj: Value,
        dry_run: bool,
        raw: bool,
    ) -> Result<Value, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request("the body of the request was not a JSON object"));
        }
        let ns = if kind.namespaced { ns } else { "" };
        Self::check_ns(kind, ns)?;
        let mut inner = self.lock();
        if let Some(body_ns) = meta(&obj, "namespace").filter(|s| !s.is_empty())
            && kind.namespaced
            && body_ns != ns
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let name = match meta(&obj, "name").filter(|s| !s.is_empty()) {
            Some(n) => n,
            None => match meta(&obj, "generateName").filter(|s| !s.is_empty()) {
                Some(prefix) => {
                    inner.uid_counter += 1;
                    let mut n = inner.uid_counter * 7919 + inner.rv;
                    let mut suffix = String::new();
                    for _ in 0..5 {
                        suffix.push(b"bcdfghjklmnpqrstvwxz2456789"[(n % 27) as usize] as char);
                        n /= 27;
                    }
                    format!("{prefix}{suffix}")
                }
                None => {
                    return Err(ApiError::new(
                        422,
                        format!(
                            "{} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                            kind.kind
                        ),
                    ));
                }
            },
        };
        let key = (ns.to_string(), name.clone());
        if inner.objects.get(&kind.key()).is_some_and(|m| m.contains_key(&key)) {
            return Err(ApiError::already_exists(&kind.qualified(), &name, &kind.group, &kind.plural));
        }
        let uid = Self::new_uid(&mut inner);
        let o = obj.as_object_mut().expect("object");
        o.insert("apiVersion".into(), Value::String(kind.api_version()));
        o.insert("kind".into(), Value::String(kind.kind.clone()));
        {
            let m = meta_mut(&mut obj);
            m.insert("name".into(), Value::String(name.clone()));
            if kind.namespaced {
                m.insert("namespace".into(), Value::String(ns.to_string()));
            } else {
                m.remove("namespace");
            }
            m.insert("uid".into(), Value::String(uid));
            m.insert("creationTimestamp".into(), now_timestamp());
            m.remove("resourceVersion");
            m.remove("deletionTimestamp");
            m.insert("generation".into(), json!(1));
        }
        if kind.group.is_empty() && kind.plural == "pods" {
            let spec = obj.as_object_mut().expect("object").entry("spec").or_insert_with(|| json!({}));
            if let Some(s) = spec.as_object_mut() {
                let empty = s.get("schedulerName").and_then(Value::as_str).is_none_or(str::is_empty);
                if empty {
                    s.insert("schedulerName".into(), json!("default-scheduler"));
                }
            }
            if !raw || obj.get("status").is_none() {
                obj["status"] = json!({"phase": "Pending"});
            }
        } else if kind.status_subresource && kind.custom && !raw {
            obj.as_object_mut().expect("object").remove("status");
        }
        if dry_run {
            return Ok(obj);
        }
        Ok(self.commit(&mut inner, kind, ns, &name, Some(obj), ChangeType::Added))
    }

    pub(crate) fn get(&self, kind: &ResourceKind, ns: &str, name: &str) -> Result<Value, ApiError> {
        let ns = if kind.namespaced { ns } else { "" };
        self.lock()
            .objects
            .get(&kind.key())
            .and_then(|m| m.get(&(ns.to_string(), name.to_string())))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&kind.qualified(), name, &kind.group, &kind.plural))
    }

    /// All objects of a kind (namespace `None`: every namespace), in (namespace, name) order.
    pub(crate) fn all(&self, kind: &ResourceKind, ns: Option<&str>) -> Vec<Value> {
        self.lock()
            .objects
            .get(&kind.key())
            .map(|m| m.iter().filter(|((n, _), _)| ns.is_none_or(|want| want == n)).map(|(_, v)| v.clone()).collect())
            .unwrap_or_default()
    }

    /// The objects of a kind as they were at resourceVersion `at` (undoing later history), if history allows.
    fn snapshot_at(inner: &Inner, kind: &ResourceKind, at: u64) -> Result<BTreeMap<(String, String), Value>, ApiError> {
        let mut map = inner.objects.get(&kind.key()).cloned().unwrap_or_default();
        if at >= inner.rv {
            return Ok(map);
        }
        if at < inner.compacted_rv {
            return Err(ApiError::gone(format!(
                "The resourceVersion for the provided list is too old: {at} (oldest available {})",
                inner.compacted_rv
            )));
        }
        let key = kind.key();
        for c in inner.history.iter().rev().take_while(|c| c.resource_version > at) {
            if c.resource != key {
                continue;
            }
            let k = (c.namespace.clone(), c.name.clone());
            match (c.change, &c.prev) {
                (ChangeType::Added, _) => {
                    map.remove(&k);
                }
                (_, Some(prev)) => {
                    map.insert(k, prev.clone());
                }
                (_, None) => {}
            }
        }
        Ok(map)
    }

    pub(crate) fn list(&self, kind: &ResourceKind, ns: Option<&str>, q: &ListQuery) -> Result<Value, ApiError> {
        let inner = self.lock();
        let current = inner.rv;
        let (at, after) = if let Some(token) = q.continue_token.as_deref().filter(|t| !t.is_empty()) {
            let (rv, key) = decode_continue(token).ok_or_else(|| ApiError::bad_request("continue key is not valid"))?;
            if rv < inner.compacted_rv {
                return Err(ApiError::gone(
                    "The provided continue parameter is too old to display a consistent list result. \
                     You can start a new list without the continue parameter.",
                ));
            }
            (rv, Some(key))
        } else {
            let rv = q.resource_version.as_deref().filter(|s| !s.is_empty());
            match (rv, q.resource_version_match.as_deref().filter(|s| !s.is_empty())) {
                (None, Some(_)) => {
                    return Err(ApiError::new(
                        422,
                        "resourceVersionMatch is forbidden unless resourceVersion is provided",
                    ));
                }
                (None, None) | (Some("0"), _) => (current, None),
                (Some(rv), Some("Exact")) => {
                    let x = parse_rv(rv)?;
                    if x > current {
                        return Err(ApiError::new(504, format!("Too large resource version: {x}, current: {current}")));
                    }
                    (x, None)
                }
                (Some(rv), Some("NotOlderThan") | None) => {
                    let x = parse_rv(rv)?;
                    if x > current {
                        return Err(ApiError::new(504, format!("Too large resource version: {x}, current: {current}")));
                    }
                    (current, None)
                }
                (Some(_), Some(other)) => {
                    return Err(ApiError::bad_request(format!("unsupported resourceVersionMatch: {other}")));
                }
            }
        };
        let map = Self::snapshot_at(&inner, kind, at)?;
        drop(inner);
        let mut items = Vec::new();
        let mut last_key = None;
        let mut more = 0usize;
        let lower = after.clone().map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        for (k, v) in map.range((lower, std::ops::Bound::Unbounded)) {
            if ns.is_some_and(|n| n != k.0) {
                continue;
            }
            if !q.label.as_ref().is_none_or(|s| s.matches(v)) || !q.field.as_ref().is_none_or(|s| s.matches(v)) {
                continue;
            }
            if q.limit.is_some_and(|l| l > 0 && items.len() >= l) {
                more += 1;
                continue;
            }
            items.push(v.clone());
            last_key = Some(k.clone());
        }
        let mut metadata = json!({"resourceVersion": at.to_string()});
        if more > 0
            && let Some(k) = last_key
        {
            metadata["continue"] = Value::String(encode_continue(at, &k));
            metadata["remainingItemCount"] = json!(more);
        }
        Ok(json!({
            "kind": format!("{}List", kind.kind),
            "apiVersion": kind.api_version(),
            "metadata": metadata,
            "items": items,
        }))
    }

    /// Shared tail of PUT and PATCH: preconditions, field preservation, no-op detection, finalizers, commit.
    #[allow(clippy::too_many_arguments)]
    fn finish_update(
        &self,
        inner: &mut Inner,
        kind: &ResourceKind,
        ns: &str,
        name: &str,
        old: &Value,
        mut new: Value,
        sub: Sub,
        dry_run: bool,
        raw: bool,
    ) -> Result<Value, ApiError> {
        if !new.is_object() {
            return Err(ApiError::bad_request("the body of the request was not a JSON object"));
        }
        let old_rv = meta(old, "resourceVersion").unwrap_or_default();
        if let Some(rv) = meta(&new, "resourceVersion").filter(|s| !s.is_empty())
            && rv != old_rv
        {
            return Err(ApiError::conflict(
                &kind.qualified(),
                name,
                &kind.group,
                &kind.plural,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        if let Some(body_name) = meta(&new, "name").filter(|s| !s.is_empty())
            && body_name != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if !raw {
            match sub {
                Sub::Status => {
                    let mut merged = old.clone();
                    match new.get("status") {
                        Some(s) => merged["status"] = s.clone(),
                        None => {
                            merged.as_object_mut().expect("object").remove("status");
                        }
                    }
                    new = merged;
                }
                Sub::Main => {
                    if kind.status_subresource {
                        match old.get("status") {
                            Some(s) => new["status"] = s.clone(),
                            None => {
                                new.as_object_mut().expect("object").remove("status");
                            }
                        }
                    }
                    if kind.group.is_empty() && kind.plural == "pods" {
                        let old_node = old.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("");
                        let new_node = new.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("");
                        if old_node != new_node {
                            return Err(ApiError::new(
                                422,
                                format!(
                                    "Pod \"{name}\" is invalid: spec: Forbidden: pod updates may not change fields \
                                     other than `spec.containers[*].image`,`spec.initContainers[*].image`,\
                                     `spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing \
                                     tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if \
                                     it was previously negative) (use the binding subresource to set spec.nodeName)"
                                ),
                            )
                            .with_details(name, "", "Pod"));
                        }
                    }
                }
            }
        }
        // Immutable and system-owned fields come from the stored object.
        let o = new.as_object_mut().expect("object");
        o.insert("apiVersion".into(), Value::String(kind.api_version()));
        o.insert("kind".into(), Value::String(kind.kind.clone()));
        {
            let m = meta_mut(&mut new);
            for f in ["name", "namespace", "uid", "creationTimestamp", "deletionTimestamp", "generation"] {
                match old.get("metadata").and_then(|om| om.get(f)) {
                    Some(v) => {
                        m.insert(f.into(), v.clone());
                    }
                    None => {
                        m.remove(f);
                    }
                }
            }
        }
        if sub == Sub::Main && spec_part(&new) != spec_part(old) {
            let g = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0) + 1;
            meta_mut(&mut new).insert("generation".into(), json!(g));
        }
        if without_rv(&new) == without_rv(old) {
            return Ok(old.clone());
        }
        if dry_run {
            return Ok(new);
        }
        let deleting = new.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null());
        if deleting && !has_finalizers(&new) {
            self.commit(inner, kind, ns, name, Some(new), ChangeType::Modified);
            return Ok(self.commit(inner, kind, ns, name, None, ChangeType::Deleted));
        }
        Ok(self.commit(inner, kind, ns, name, Some(new), ChangeType::Modified))
    }

    /// PUT. `raw` (Rust handle only) skips the update strategy: any field may change.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn update(
        &self,
        kind: &ResourceKind,
        ns: &str,
        name: &str,
        new: Value,
        sub: Sub,
        dry_run: bool,
        raw: bool,
    ) -> Result<Value, ApiError> {
        let ns = if kind.namespaced { ns } else { "" };
        let mut inner = self.lock();
        let old = inner
            .objects
            .get(&kind.key())
            .and_then(|m| m.get(&(ns.to_string(), name.to_string())))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&kind.qualified(), name, &kind.group, &kind.plural))?;
        self.finish_update(&mut inner, kind, ns, name, &old, new, sub, dry_run, raw)
    }

    /// PATCH. Returns the object and whether it was created (server-side apply on a missing object).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn patch(
        &self,
        kind: &ResourceKind,
        ns: &str,
        name: &str,
        pk: PatchKind,
        patch: &Value,
        sub: Sub,
        dry_run: bool,
    ) -> Result<(Value, bool), ApiError> {
        let ns = if kind.namespaced { ns } else { "" };
        if pk == PatchKind::Strategic && kind.custom {
            return Err(ApiError::new(
                415,
                "the body of the request was in an unknown format - accepted media types include: \
                 application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
            ));
        }
        let mut inner = self.lock();
        let old = inner.objects.get(&kind.key()).and_then(|m| m.get(&(ns.to_string(), name.to_string()))).cloned();
        let Some(old) = old else {
            if pk == PatchKind::Apply && sub == Sub::Main {
                drop(inner);
                let mut obj = patch.clone();
                meta_mut(&mut obj).insert("name".into(), Value::String(name.to_string()));
                return self.create(kind, ns, obj, dry_run, false).map(|v| (v, true));
            }
            return Err(ApiError::not_found(&kind.qualified(), name, &kind.group, &kind.plural));
        };
        let new = apply_patch(pk, &old, patch)?;
        self.finish_update(&mut inner, kind, ns, name, &old, new, sub, dry_run, false).map(|v| (v, false))
    }

    /// DELETE. With finalizers, sets `deletionTimestamp` and keeps the object until they are removed.
    pub(crate) fn delete(
        &self,
        kind: &ResourceKind,
        ns: &str,
        name: &str,
        precondition_uid: Option<&str>,
        precondition_rv: Option<&str>,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let ns = if kind.namespaced { ns } else { "" };
        let mut inner = self.lock();
        let old = inner
            .objects
            .get(&kind.key())
            .and_then(|m| m.get(&(ns.to_string(), name.to_string())))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&kind.qualified(), name, &kind.group, &kind.plural))?;
        if let Some(uid) = precondition_uid
            && meta(&old, "uid").as_deref() != Some(uid)
        {
            return Err(ApiError::conflict(
                &kind.qualified(),
                name,
                &kind.group,
                &kind.plural,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta(&old, "uid").unwrap_or_default()
                ),
            ));
        }
        if let Some(rv) = precondition_rv
            && meta(&old, "resourceVersion").as_deref() != Some(rv)
        {
            return Err(ApiError::conflict(
                &kind.qualified(),
                name,
                &kind.group,
                &kind.plural,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    meta(&old, "resourceVersion").unwrap_or_default()
                ),
            ));
        }
        if dry_run {
            return Ok(old);
        }
        if has_finalizers(&old) {
            if old.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null()) {
                return Ok(old);
            }
            let mut new = old.clone();
            meta_mut(&mut new).insert("deletionTimestamp".into(), now_timestamp());
            meta_mut(&mut new).insert("deletionGracePeriodSeconds".into(), json!(0));
            return Ok(self.commit(&mut inner, kind, ns, name, Some(new), ChangeType::Modified));
        }
        Ok(self.commit(&mut inner, kind, ns, name, None, ChangeType::Deleted))
    }

    pub(crate) fn delete_collection(
        &self,
        kind: &ResourceKind,
        ns: Option<&str>,
        q: &ListQuery,
    ) -> Result<Value, ApiError> {
        let list =
            self.list(kind, ns, &ListQuery { label: q.label.clone(), field: q.field.clone(), ..Default::default() })?;
        let mut deleted = Vec::new();
        for item in list["items"].as_array().cloned().unwrap_or_default() {
            let (n, name) = (meta(&item, "namespace").unwrap_or_default(), meta(&item, "name").unwrap_or_default());
            if let Ok(v) = self.delete(kind, &n, &name, None, None, false) {
                deleted.push(v);
            }
        }
        Ok(json!({
            "kind": format!("{}List", kind.kind),
            "apiVersion": kind.api_version(),
            "metadata": {"resourceVersion": self.current_rv().to_string()},
            "items": deleted,
        }))
    }

    /// `POST pods/{name}/binding`: sets `spec.nodeName` and the `PodScheduled` condition.
    pub(crate) fn bind(&self, ns: &str, name: &str, binding: &Value) -> Result<Value, ApiError> {
        let kind = self.kind("", "pods").ok_or_else(|| ApiError::new(404, "pods are not served"))?;
        let target = binding.pointer("/target/name").and_then(Value::as_str).unwrap_or("");
        if target.is_empty() {
            return Err(ApiError::new(422, "Binding.target.name: Required value"));
        }
        if let Some(bn) = binding.pointer("/metadata/name").and_then(Value::as_str).filter(|s| !s.is_empty())
            && bn != name
        {
            return Err(ApiError::bad_request(format!(
                "name in the binding ({bn}) does not match the name of the pod ({name})"
            )));
        }
        let mut inner = self.lock();
        let old = inner
            .objects
            .get(&kind.key())
            .and_then(|m| m.get(&(ns.to_string(), name.to_string())))
            .cloned()
            .ok_or_else(|| ApiError::not_found("pods", name, "", "pods"))?;
        if let Some(uid) = binding.pointer("/metadata/uid").and_then(Value::as_str).filter(|s| !s.is_empty())
            && meta(&old, "uid").as_deref() != Some(uid)
        {
            return Err(ApiError::conflict("pods", name, "", "pods", "Precondition failed: UID mismatch"));
        }
        if old.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null()) {
            return Err(ApiError::new(409, format!("pod {name} is being deleted, cannot be assigned to a host"))
                .with_details(name, "", "pods"));
        }
        if let Some(node) = old.pointer("/spec/nodeName").and_then(Value::as_str).filter(|s| !s.is_empty()) {
            return Err(ApiError::new(409, format!("pod {name} is already assigned to node \"{node}\""))
                .with_details(name, "", "pods"));
        }
        let mut new = old.clone();
        new["spec"]["nodeName"] = Value::String(target.to_string());
        // Like the real server's binding storage, the Binding's annotations are copied onto the pod.
        if let Some(annotations) = binding.pointer("/metadata/annotations").and_then(Value::as_object) {
            if !new["metadata"].get("annotations").is_some_and(Value::is_object) {
                new["metadata"]["annotations"] = json!({});
            }
            let target_annotations = new["metadata"]["annotations"].as_object_mut().expect("object");
            for (k, v) in annotations {
                target_annotations.insert(k.clone(), v.clone());
            }
        }
        let cond = json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now_timestamp()});
        if !new.get("status").is_some_and(Value::is_object) {
            new["status"] = json!({});
        }
        let conds = new["status"].as_object_mut().expect("object").entry("conditions").or_insert_with(|| json!([]));
        if let Some(list) = conds.as_array_mut() {
            list.retain(|c| c.get("type").and_then(Value::as_str) != Some("PodScheduled"));
            list.push(cond);
        }
        let obj = self.commit(&mut inner, &kind, ns, name, Some(new), ChangeType::Modified);
        let rv = meta(&obj, "resourceVersion").and_then(|s| s.parse().ok()).unwrap_or(0);
        inner.bindings.push(BindingRecord {
            namespace: ns.to_string(),
            pod: name.to_string(),
            node: target.to_string(),
            resource_version: rv,
        });
        Ok(success_status(201))
    }

    /// Changes to `resource` with resourceVersion above `after`, and the current resourceVersion.
    /// Err(410) when `after` is older than the retained history.
    pub(crate) fn changes_since(&self, resource: &str, after: u64) -> Result<(Vec<Arc<Change>>, u64), ApiError> {
        let inner = self.lock();
        if after < inner.compacted_rv {
            return Err(ApiError::gone(format!("too old resource version: {after} ({})", inner.compacted_rv)));
        }
        let start = inner.history.partition_point(|c| c.resource_version <= after);
        let changes = inner.history.iter().skip(start).filter(|c| c.resource == resource).cloned().collect();
        Ok((changes, inner.rv.max(after)))
    }

    pub(crate) fn watch_count(&self) -> usize {
        self.open_watches.load(Ordering::SeqCst)
    }
}
