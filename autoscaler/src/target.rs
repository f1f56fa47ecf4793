//! The workload a HybridAutoscaler scales, typed: a Deployment or a StatefulSet, its `scale`
//! subresource and template patches.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use crate::crd::TargetRef;

enum Kind {
    Deployment(Api<Deployment>),
    StatefulSet(Api<StatefulSet>),
}

/// Access to one target workload.
pub struct Target {
    kind: Kind,
    pub name: String,
    /// `Deployment` or `StatefulSet`, for messages and Event references.
    pub kind_name: String,
}

/// The target object as read.
pub enum Workload {
    Deployment(Box<Deployment>),
    StatefulSet(Box<StatefulSet>),
}

impl Target {
    /// `policy_from_spec` has already refused kinds other than Deployment and StatefulSet.
    pub fn new(client: &Client, ns: &str, target_ref: &TargetRef) -> Target {
        let kind = if target_ref.kind == "StatefulSet" {
            Kind::StatefulSet(Api::namespaced(client.clone(), ns))
        } else {
            Kind::Deployment(Api::namespaced(client.clone(), ns))
        };
        Target { kind, name: target_ref.name.clone(), kind_name: target_ref.kind.clone() }
    }

    pub async fn get(&self) -> Result<Workload, kube::Error> {
        Ok(match &self.kind {
            Kind::Deployment(a) => Workload::Deployment(Box::new(a.get(&self.name).await?)),
            Kind::StatefulSet(a) => Workload::StatefulSet(Box::new(a.get(&self.name).await?)),
        })
    }

    /// `spec.replicas` as the scale subresource serves it.
    pub async fn replicas(&self) -> Result<u32, kube::Error> {
        let s = match &self.kind {
            Kind::Deployment(a) => a.get_scale(&self.name).await?,
            Kind::StatefulSet(a) => a.get_scale(&self.name).await?,
        };
        Ok(s.spec.and_then(|s| s.replicas).unwrap_or(0).max(0) as u32)
    }

    pub async fn scale(&self, to: u32) -> Result<(), kube::Error> {
        let p = Patch::Merge(json!({"spec": {"replicas": to}}));
        let pp = PatchParams::default();
        match &self.kind {
            Kind::Deployment(a) => a.patch_scale(&self.name, &pp, &p).await.map(|_| ()),
            Kind::StatefulSet(a) => a.patch_scale(&self.name, &pp, &p).await.map(|_| ()),
        }
    }

    /// A strategic merge patch of `spec.template`: only what `template` sets changes (containers merge by
    /// name).
    pub async fn patch_template(&self, template: Value) -> Result<(), kube::Error> {
        let p = Patch::Strategic(json!({"spec": {"template": template}}));
        let pp = PatchParams::default();
        match &self.kind {
            Kind::Deployment(a) => a.patch(&self.name, &pp, &p).await.map(|_| ()),
            Kind::StatefulSet(a) => a.patch(&self.name, &pp, &p).await.map(|_| ()),
        }
    }
}

impl Workload {
    fn parts(&self) -> (&LabelSelector, &PodTemplateSpec) {
        match self {
            Workload::Deployment(d) => (&d.spec.selector, &d.spec.template),
            Workload::StatefulSet(s) => (&s.spec.selector, &s.spec.template),
        }
    }

    /// The selector's `matchLabels`, or `None` when it has none or also has `matchExpressions` (pods and
    /// PodMetrics are listed, and new replicas placed, by labels only).
    pub fn match_labels(&self) -> Option<&BTreeMap<String, String>> {
        let (selector, _) = self.parts();
        if selector.match_expressions.as_ref().is_some_and(|e| !e.is_empty()) {
            return None;
        }
        selector.match_labels.as_ref().filter(|l| !l.is_empty())
    }

    pub fn template(&self) -> &PodTemplateSpec {
        self.parts().1
    }

    /// Only an OnDelete StatefulSet leaves recreating the pods to us; the other controllers roll them.
    pub fn on_delete(&self) -> bool {
        match self {
            Workload::Deployment(_) => false,
            Workload::StatefulSet(s) => {
                let strategy = s.spec.update_strategy.as_ref();
                strategy.and_then(|u| u.type_.as_deref()) == Some("OnDelete")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn statefulset(selector: serde_json::Value, strategy: &str) -> Workload {
        Workload::StatefulSet(Box::new(
            serde_json::from_value(json!({
                "metadata": {"name": "db"},
                "spec": {"selector": selector, "updateStrategy": {"type": strategy}, "template": {}},
            }))
            .unwrap(),
        ))
    }

    #[test]
    fn only_match_labels_selectors_are_supported() {
        let labels = BTreeMap::from([("app".to_string(), "db".to_string())]);
        let w = statefulset(json!({"matchLabels": {"app": "db"}, "matchExpressions": []}), "OnDelete");
        assert_eq!(w.match_labels(), Some(&labels));
        assert!(w.on_delete());
        let exprs = json!({"matchLabels": {"app": "db"},
                           "matchExpressions": [{"key": "tier", "operator": "Exists"}]});
        assert_eq!(statefulset(exprs, "RollingUpdate").match_labels(), None);
        assert!(!statefulset(json!({}), "RollingUpdate").on_delete());
        assert_eq!(statefulset(json!({"matchLabels": {}}), "OnDelete").match_labels(), None);
    }
}
