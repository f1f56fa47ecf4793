//! Direct, synchronous access to the stored objects: seed and inspect state without HTTP.
//!
//! Writes made here go through the same store as API requests: they get resourceVersions and are seen by
//! watches. They are "raw": no create/update strategy is applied, so a test can set `status`, or
//! `spec.nodeName`, directly.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;
use crate::resources::ResourceKind;
use crate::store::{BindingRecord, Store, Sub};

/// Handle to the object store of a running double. Cheap to clone.
#[derive(Clone)]
pub struct StateHandle {
    pub(crate) store: Arc<Store>,
}

fn kind_for<K: Resource<DynamicType = ()>>(store: &Store) -> Result<ResourceKind, ApiError> {
    let group = K::group(&());
    let plural = K::plural(&());
    store
        .kind(&group, &plural)
        .ok_or_else(|| ApiError::new(404, format!("{plural}.{group} is not served by the double")))
}

fn to_value<T: Serialize>(v: &T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::bad_request(e.to_string()))
}

fn from_value<T: DeserializeOwned>(v: Value) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| ApiError::new(500, format!("stored object does not decode: {e}")))
}

impl StateHandle {
    /// The served resource type with this group and plural.
    pub fn kind(&self, group: &str, plural: &str) -> Option<ResourceKind> {
        self.store.kind(group, plural)
    }

    /// The current (highest) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.store.current_rv()
    }

    /// Creates an object as given (status kept). Namespace is taken from the object's metadata.
    pub fn create<K>(&self, obj: &K) -> Result<K, ApiError>
    where
        K: Resource<DynamicType = ()> + Serialize + DeserializeOwned,
    {
        let kind = kind_for::<K>(&self.store)?;
        let ns = obj.meta().namespace.clone().unwrap_or_else(|| "default".into());
        from_value(self.store.create(&kind, &ns, to_value(obj)?, false, true)?)
    }

    /// Reads one object (`namespace` is ignored for cluster-scoped kinds).
    pub fn get<K>(&self, namespace: &str, name: &str) -> Option<K>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned,
    {
        let kind = kind_for::<K>(&self.store).ok()?;
        self.store.get(&kind, namespace, name).ok().and_then(|v| from_value(v).ok())
    }

    /// All objects of a type, in every namespace.
    pub fn list<K>(&self) -> Vec<K>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned,
    {
        let Ok(kind) = kind_for::<K>(&self.store) else { return Vec::new() };
        self.store.all(&kind, None).into_iter().filter_map(|v| from_value(v).ok()).collect()
    }

    /// Read-modify-write of one object; any field may change (status, `spec.nodeName`, ...).
    pub fn modify<K>(&self, namespace: &str, name: &str, f: impl FnOnce(&mut K)) -> Result<K, ApiError>
    where
        K: Resource<DynamicType = ()> + Serialize + DeserializeOwned,
    {
        let kind = kind_for::<K>(&self.store)?;
        let mut obj: K = from_value(self.store.get(&kind, namespace, name)?)?;
        f(&mut obj);
        let mut v = to_value(&obj)?;
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        from_value(self.store.update(&kind, namespace, name, v, Sub::Main, false, true)?)
    }

    /// Deletes an object (honouring finalizers, like the API).
    pub fn delete<K>(&self, namespace: &str, name: &str) -> Result<(), ApiError>
    where
        K: Resource<DynamicType = ()>,
    {
        let kind = kind_for::<K>(&self.store)?;
        self.store.delete(&kind, namespace, name, None, None, false).map(|_| ())
    }

    /// Creates an object of any served type from JSON (`kind` from [`StateHandle::kind`]).
    pub fn create_value(&self, kind: &ResourceKind, namespace: &str, obj: Value) -> Result<Value, ApiError> {
        self.store.create(kind, namespace, obj, false, true)
    }

    pub fn get_value(&self, kind: &ResourceKind, namespace: &str, name: &str) -> Option<Value> {
        self.store.get(kind, namespace, name).ok()
    }

    /// All objects of a type (`namespace` `None`: all namespaces).
    pub fn list_values(&self, kind: &ResourceKind, namespace: Option<&str>) -> Vec<Value> {
        self.store.all(kind, namespace)
    }

    /// Replaces an object of any type from JSON, raw (any field may change).
    pub fn replace_value(
        &self,
        kind: &ResourceKind,
        namespace: &str,
        name: &str,
        mut obj: Value,
    ) -> Result<Value, ApiError> {
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        self.store.update(kind, namespace, name, obj, Sub::Main, false, true)
    }

    pub fn delete_value(&self, kind: &ResourceKind, namespace: &str, name: &str) -> Result<(), ApiError> {
        self.store.delete(kind, namespace, name, None, None, false).map(|_| ())
    }

    /// All nodes.
    pub fn nodes(&self) -> Vec<Node> {
        self.list()
    }

    /// All pods, in every namespace.
    pub fn pods(&self) -> Vec<Pod> {
        self.list()
    }

    pub fn pod(&self, namespace: &str, name: &str) -> Option<Pod> {
        self.get(namespace, name)
    }

    /// The node a pod is bound to.
    pub fn node_of(&self, namespace: &str, name: &str) -> Option<String> {
        self.pod(namespace, name).and_then(|p| p.spec.and_then(|s| s.node_name)).filter(|n| !n.is_empty())
    }

    /// Every successful binding, in order.
    pub fn bindings(&self) -> Vec<BindingRecord> {
        self.store.bindings()
    }

    /// How many times a pod was bound successfully.
    pub fn binding_count(&self, namespace: &str, pod: &str) -> usize {
        self.store.bindings().iter().filter(|b| b.namespace == namespace && b.pod == pod).count()
    }

    /// Drops all watch history: a watch (or paginated list) from an older resourceVersion now gets 410 Gone.
    pub fn compact(&self) {
        self.store.compact();
    }

    /// Changes how many changes the watch history keeps.
    pub fn set_history_limit(&self, n: usize) {
        self.store.set_history_limit(n);
    }

    /// Sends a BOOKMARK now on every open watch that allows bookmarks.
    pub fn send_bookmarks(&self) {
        self.store.bookmark_tx.send_modify(|n| *n += 1);
    }
}
