//! What the tests put into the real cluster: the published manifests, namespaces, fake GPU nodes, and the
//! ServiceAccount identities the binaries connect with.

use std::time::Duration;

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::pinned_kind;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::binaries::repo_root;

/// The field manager of the harness's own writes.
pub const MANAGER: &str = "mlsched-e2e";
/// Label on every node the harness creates, so a test can remove the nodes of an earlier one.
pub const NODE_OWNER_LABEL: &str = "e2e.mlsched.io/node";
/// Label on every namespace the harness creates: a test that failed half-way leaves pending pods behind,
/// which the next test's scheduler would see (pods of every namespace are its to place).
pub const NAMESPACE_OWNER_LABEL: &str = "e2e.mlsched.io/namespace";

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Applies every document of a YAML file (server-side apply, as `kubectl apply --server-side` would).
pub async fn apply_yaml(client: &Client, text: &str) -> Result<Vec<DynamicObject>, Error> {
    let mut applied = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let value: Value = serde::Deserialize::deserialize(doc)?;
        if value.is_null() {
            continue;
        }
        let obj: DynamicObject = serde_json::from_value(value.clone())?;
        let types = obj.types.clone().ok_or("a document without apiVersion/kind")?;
        let gvk = GroupVersionKind::try_from(&types)?;
        let (resource, caps) = pinned_kind(client, &gvk).await?;
        let api: Api<DynamicObject> = match (caps.scope, obj.metadata.namespace.as_deref()) {
            (kube::discovery::Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &resource),
            (kube::discovery::Scope::Namespaced, None) => Api::default_namespaced_with(client.clone(), &resource),
            (kube::discovery::Scope::Cluster, _) => Api::all_with(client.clone(), &resource),
        };
        let name = obj.name_any();
        let params = PatchParams::apply(MANAGER).force();
        applied.push(api.patch(&name, &params, &Patch::Apply(&value)).await?);
    }
    Ok(applied)
}

/// Applies a file of the repository's `manifests/` folder as published.
pub async fn apply_manifest(client: &Client, relative: &str) -> Result<Vec<DynamicObject>, Error> {
    let path = repo_root().join("manifests").join(relative);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    apply_yaml(client, &text).await.map_err(|e| format!("applying {}: {e}", path.display()).into())
}

/// Applies the CRDs of `manifests/crds/` and waits until each is Established.
pub async fn apply_crds(client: &Client) -> Result<(), Error> {
    let dir = repo_root().join("manifests/crds");
    let mut names = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)?.flatten().map(|e| e.path()).collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        for obj in apply_yaml(client, &text).await? {
            names.push(obj.name_any());
        }
    }
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in names {
        let cond = kube::runtime::conditions::is_crd_established();
        tokio::time::timeout(Duration::from_secs(30), kube::runtime::wait::await_condition(api.clone(), &name, cond))
            .await
            .map_err(|_| format!("CRD {name} not established after 30 s"))??;
    }
    Ok(())
}

/// Creates `name` (if absent) and its `default` ServiceAccount. The ServiceAccount admission plugin refuses
/// pods until that account exists; kube-controller-manager makes it, but not before the first pod of a
/// test may arrive.
pub async fn create_namespace(client: &Client, name: &str) -> Result<(), Error> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": {NAMESPACE_OWNER_LABEL: "true"}}}))?;
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    let sa: Api<ServiceAccount> = Api::namespaced(client.clone(), name);
    let default = serde_json::from_value(json!({"metadata": {"name": "default"}}))?;
    match sa.create(&PostParams::default(), &default).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Deletes a namespace and force-deletes its pods: with no kubelet, a bound pod would stay Terminating.
pub async fn delete_namespace(client: &Client, name: &str) -> Result<(), Error> {
    force_delete_pods(client, name).await?;
    let api: Api<Namespace> = Api::all(client.clone());
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Deletes every namespace the harness created (and their pods at once).
pub async fn delete_harness_namespaces(client: &Client) -> Result<(), Error> {
    let api: Api<Namespace> = Api::all(client.clone());
    for ns in api.list(&ListParams::default().labels(NAMESPACE_OWNER_LABEL)).await? {
        delete_namespace(client, &ns.name_any()).await?;
    }
    Ok(())
}

/// Deletes every pod of `namespace` at once (grace period 0), as a kubelet finishes terminating pods.
pub async fn force_delete_pods(client: &Client, namespace: &str) -> Result<(), Error> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let now = DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::default() };
    for p in pods.list(&ListParams::default()).await? {
        match pods.delete(&p.name_any(), &now).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Finishes a pod that is being deleted (grace period 0), as its kubelet would once the containers stop.
pub async fn finish_terminating(client: &Client, namespace: &str, name: &str) -> Result<(), Error> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let now = DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::default() };
    match pods.delete(name, &now).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Creates a fake node from a Node object (for example [`crate::cluster::gpu_node`]) and makes it
/// schedulable the way a kubelet's first status report would: Ready, its capacity, and no `not-ready`
/// taint (the `TaintNodesByCondition` admission plugin adds it to every new node).
pub async fn add_node(client: &Client, mut node: Value) -> Result<Node, Error> {
    node["metadata"]["labels"][NODE_OWNER_LABEL] = json!("true");
    let api: Api<Node> = Api::all(client.clone());
    let typed: Node = serde_json::from_value(node.clone())?;
    let name = typed.name_any();
    let created = api.create(&PostParams::default(), &typed).await?;
    let status = json!({"status": node["status"].clone()});
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status)).await?;
    let keep: Vec<Value> = created
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t.key != "node.kubernetes.io/not-ready")
        .map(|t| serde_json::to_value(t).expect("taint"))
        .collect();
    let wanted = node.pointer("/spec/taints").and_then(Value::as_array).cloned().unwrap_or_default();
    let taints: Vec<Value> = keep.into_iter().chain(wanted).collect();
    Ok(api.patch(&name, &PatchParams::default(), &Patch::Merge(&json!({"spec": {"taints": taints}}))).await?)
}

/// Deletes every node the harness created.
pub async fn delete_harness_nodes(client: &Client) -> Result<(), Error> {
    let api: Api<Node> = Api::all(client.clone());
    let lp = ListParams::default().labels(NODE_OWNER_LABEL);
    for n in api.list(&lp).await? {
        match api.delete(&n.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A token of `namespace/name`'s ServiceAccount (TokenRequest API), valid for `seconds`.
pub async fn service_account_token(
    client: &Client,
    namespace: &str,
    name: &str,
    seconds: i64,
) -> Result<String, Error> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let request: TokenRequest = serde_json::from_value(json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"audiences": [], "expirationSeconds": seconds}
    }))?;
    let answer: TokenRequest = api.create_subresource("token", name, &PostParams::default(), &request).await?;
    Ok(answer.status.and_then(|s| s.token).ok_or("TokenRequest answered without a token")?)
}
