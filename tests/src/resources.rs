//! The resource types the double serves, and the discovery documents built from them.

use serde_json::{Value, json};

/// One served resource type (a group/version/plural with its kind).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceKind {
    /// API group; `""` for the core group.
    pub group: String,
    pub version: String,
    /// Plural resource name used in URLs (`pods`).
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    /// Serves a `status` subresource: the main resource ignores status changes, `/status` touches only status.
    pub status_subresource: bool,
    /// A custom resource: strategic merge patch is refused with 415, as the real server does.
    pub custom: bool,
}

impl ResourceKind {
    pub fn new(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        Self {
            group: group.to_string(),
            version: version.to_string(),
            plural: plural.to_string(),
            singular: kind.to_lowercase(),
            kind: kind.to_string(),
            namespaced,
            status_subresource: false,
            custom: false,
        }
    }

    pub fn with_status(mut self) -> Self {
        self.status_subresource = true;
        self
    }

    pub fn custom(mut self) -> Self {
        self.custom = true;
        self
    }

    /// `v1` for core, `group/version` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    /// Storage key: `group/plural` (`/pods` for core pods).
    pub fn key(&self) -> String {
        format!("{}/{}", self.group, self.plural)
    }

    /// Key used in error messages, like the real server: `pods`, `leases.coordination.k8s.io`.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() { self.plural.clone() } else { format!("{}.{}", self.plural, self.group) }
    }

    fn discovery_entries(&self) -> Vec<Value> {
        let mut out = vec![json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
        })];
        if self.status_subresource {
            out.push(json!({
                "name": format!("{}/status", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        if crate::scale::has_scale(self) {
            out.push(json!({
                "name": format!("{}/scale", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }));
        }
        if self.group.is_empty() && self.plural == "pods" {
            out.push(json!({
                "name": "pods/resize",
                "singularName": "",
                "namespaced": true,
                "kind": "Pod",
                "verbs": ["get", "patch", "update"],
            }));
            out.push(json!({
                "name": "pods/binding",
                "singularName": "",
                "namespaced": true,
                "kind": "Binding",
                "verbs": ["create"],
            }));
        }
        out
    }
}

/// The resource types served by default: Nodes, Pods, Namespaces, ConfigMaps and Events in core/v1,
/// Events in events.k8s.io/v1, Leases in coordination.k8s.io/v1, PodGroups in scheduling.x-k8s.io/v1alpha1,
/// Deployments and StatefulSets in apps/v1 (status and `scale` subresources) and PodMetrics in
/// metrics.k8s.io/v1beta1.
pub fn default_kinds() -> Vec<ResourceKind> {
    vec![
        ResourceKind::new("", "v1", "pods", "Pod", true).with_status(),
        ResourceKind::new("", "v1", "nodes", "Node", false).with_status(),
        ResourceKind::new("", "v1", "namespaces", "Namespace", false).with_status(),
        ResourceKind::new("", "v1", "configmaps", "ConfigMap", true),
        ResourceKind::new("", "v1", "events", "Event", true),
        ResourceKind::new("events.k8s.io", "v1", "events", "Event", true),
        ResourceKind::new("coordination.k8s.io", "v1", "leases", "Lease", true),
        ResourceKind::new(crate::PODGROUP_GROUP, crate::PODGROUP_VERSION, "podgroups", "PodGroup", true)
            .with_status()
            .custom(),
        // Autoscaling (see `scale`, `resize` and `metrics_api`).
        ResourceKind::new("apps", "v1", "deployments", "Deployment", true).with_status(),
        ResourceKind::new("apps", "v1", "statefulsets", "StatefulSet", true).with_status(),
        crate::metrics_api::pod_metrics_kind(),
    ]
}

pub(crate) fn version_doc() -> Value {
    json!({
        "major": "1",
        "minor": "37",
        "gitVersion": "v1.37.0-mlsched-fake",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.25",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub(crate) fn core_versions_doc() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
    })
}

fn groups(kinds: &[ResourceKind]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for k in kinds.iter().filter(|k| !k.group.is_empty()) {
        match out.iter_mut().find(|(g, _)| *g == k.group) {
            Some((_, vs)) => {
                if !vs.contains(&k.version) {
                    vs.push(k.version.clone());
                }
            }
            None => out.push((k.group.clone(), vec![k.version.clone()])),
        }
    }
    out
}

fn group_doc(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> =
        versions.iter().map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v})).collect();
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": vs,
        "preferredVersion": vs[0],
    })
}

pub(crate) fn group_list_doc(kinds: &[ResourceKind]) -> Value {
    let gs: Vec<Value> = groups(kinds).iter().map(|(g, vs)| group_doc(g, vs)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": gs})
}

pub(crate) fn group_doc_for(kinds: &[ResourceKind], group: &str) -> Option<Value> {
    groups(kinds).iter().find(|(g, _)| g == group).map(|(g, vs)| group_doc(g, vs))
}

pub(crate) fn resource_list_doc(kinds: &[ResourceKind], group: &str, version: &str) -> Option<Value> {
    let matching: Vec<&ResourceKind> = kinds.iter().filter(|k| k.group == group && k.version == version).collect();
    if matching.is_empty() {
        return None;
    }
    let gv = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    let resources: Vec<Value> = matching.iter().flat_map(|k| k.discovery_entries()).collect();
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}))
}

/// Aggregated discovery (`apidiscovery.k8s.io/v2`), answered when the client asks for it in `Accept`.
pub(crate) fn aggregated_doc(kinds: &[ResourceKind], core: bool) -> Value {
    let mut items = Vec::new();
    let mut gvs: Vec<(String, Vec<String>)> =
        if core { vec![(String::new(), vec!["v1".to_string()])] } else { groups(kinds) };
    for (g, vs) in gvs.drain(..) {
        let versions: Vec<Value> = vs
            .iter()
            .map(|v| {
                let resources: Vec<Value> = kinds
                    .iter()
                    .filter(|k| k.group == g && &k.version == v)
                    .map(|k| {
                        let mut subs = Vec::new();
                        if k.status_subresource {
                            subs.push(json!({"subresource": "status", "responseKind": {"group": g, "version": v, "kind": k.kind}, "verbs": ["get", "patch", "update"]}));
                        }
                        if crate::scale::has_scale(k) {
                            subs.push(json!({"subresource": "scale", "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"}, "verbs": ["get", "patch", "update"]}));
                        }
                        if g.is_empty() && k.plural == "pods" {
                            subs.push(json!({"subresource": "resize", "responseKind": {"group": "", "version": "v1", "kind": "Pod"}, "verbs": ["get", "patch", "update"]}));
                            subs.push(json!({"subresource": "binding", "responseKind": {"group": "", "version": "v1", "kind": "Binding"}, "verbs": ["create"]}));
                        }
                        json!({
                            "resource": k.plural,
                            "responseKind": {"group": g, "version": v, "kind": k.kind},
                            "scope": if k.namespaced { "Namespaced" } else { "Cluster" },
                            "singularResource": k.singular,
                            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                            "subresources": subs,
                        })
                    })
                    .collect();
                json!({"version": v, "resources": resources, "freshness": "Current"})
            })
            .collect();
        items.push(json!({"metadata": {"name": g}, "versions": versions}));
    }
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}
