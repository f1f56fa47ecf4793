//! Every YAML document under `manifests/` parses into its Kubernetes type with no field that type does not
//! know (a typo would otherwise be dropped silently by the API server or by k8s-openapi), and the manifests
//! keep their security and consistency properties: least-privilege RBAC that matches the scheduler's API
//! calls, a hardened two-replica Deployment, a config the daemon accepts, and examples that use the
//! scheduler's real annotation keys.
//!
//! It lives with the daemon so that it checks the manifests against the daemon's own config parser and
//! annotation keys, not copies of them; and, through a dev-dependency on mlsched-autoscaler, the autoscaler
//! sidecar's parts against that crate's own config parser, CRD type and spec validation.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Namespace, Pod, PodSpec, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, Subject};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResourceExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use mlsched_scheduler::Config;
use mlsched_scheduler::keys;

const NAMESPACE: &str = "mlsched-system";
/// Object names of the scheduler's and the autoscaler sidecar's parts.
const SCHEDULER: &str = "mlsched";
const SCHEDULER_CONFIG: &str = "mlsched-config";
const SCHEDULER_LEASE_ROLE: &str = "mlsched-leader-election";
const AUTOSCALER: &str = "mlsched-autoscaler";
const AUTOSCALER_CONFIG: &str = "mlsched-autoscaler-config";
const AUTOSCALER_LEASE_ROLE: &str = "mlsched-autoscaler-leader-election";
const POD_GROUP_CRD: &str = "podgroups.scheduling.x-k8s.io";
const HYBRID_AUTOSCALER_CRD: &str = "hybridautoscalers.autoscaling.mlsched.io";
const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

fn manifests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../manifests")
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

#[derive(Debug, Clone)]
struct Doc {
    /// Path relative to manifests/.
    file: String,
    index: usize,
    value: Value,
}

impl Doc {
    fn at(&self) -> String {
        let name = self.value.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("?");
        format!("{} document {} ({} {name})", self.file, self.index, self.str("/kind"))
    }

    fn str(&self, pointer: &str) -> &str {
        self.value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
    }
}

/// Every non-empty YAML document of every file under manifests/, in file order.
fn documents() -> Vec<Doc> {
    let root = manifests_dir();
    let mut files = Vec::new();
    yaml_files(&root, &mut files);
    files.sort();
    assert!(!files.is_empty(), "no YAML files under {}", root.display());
    let mut docs = Vec::new();
    for path in files {
        let file = path.strip_prefix(&root).unwrap().display().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut count = 0;
        for (index, de) in serde_yaml_ng::Deserializer::from_str(&text).enumerate() {
            let value = Value::deserialize(de).unwrap_or_else(|e| panic!("{file} document {index}: not YAML: {e}"));
            if value.is_null() {
                continue;
            }
            assert!(value.is_object(), "{file} document {index}: not a mapping");
            count += 1;
            docs.push(Doc { file: file.clone(), index, value });
        }
        assert!(count > 0, "{file}: no YAML document");
    }
    docs
}

/// Paths of `orig` that `back` (the typed value serialized again) lacks: fields the type does not know.
fn unknown_fields(orig: &Value, back: &Value, path: &str, out: &mut Vec<String>) {
    match (orig, back) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                match b.get(k) {
                    Some(w) => unknown_fields(v, w, &format!("{path}.{k}"), out),
                    None => out.push(format!("{path}.{k}")),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                out.push(format!("{path}: {} items became {}", a.len(), b.len()));
            }
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                unknown_fields(v, w, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Parses into `T` (which checks apiVersion and kind) and refuses fields `T` does not know.
fn try_strict<T: DeserializeOwned + Serialize>(doc: &Doc) -> Result<T, String> {
    let typed: T = serde_json::from_value(doc.value.clone()).map_err(|e| format!("{}: {e}", doc.at()))?;
    let back = serde_json::to_value(&typed).unwrap();
    let mut unknown = Vec::new();
    unknown_fields(&doc.value, &back, "", &mut unknown);
    if !unknown.is_empty() {
        return Err(format!("{}: fields unknown to the API type: {unknown:?}", doc.at()));
    }
    Ok(typed)
}

fn strict<T: DeserializeOwned + Serialize>(doc: &Doc) -> T {
    try_strict(doc).unwrap_or_else(|e| panic!("{e}"))
}

#[derive(Default)]
struct Manifests {
    docs: Vec<Doc>,
    namespaces: Vec<Namespace>,
    service_accounts: Vec<ServiceAccount>,
    cluster_roles: Vec<ClusterRole>,
    cluster_role_bindings: Vec<ClusterRoleBinding>,
    roles: Vec<Role>,
    role_bindings: Vec<RoleBinding>,
    config_maps: Vec<ConfigMap>,
    deployments: Vec<Deployment>,
    services: Vec<Service>,
    pdbs: Vec<PodDisruptionBudget>,
    crds: Vec<CustomResourceDefinition>,
    /// Example workloads: (file, pod spec, pod annotations, pod labels) of Pods and Job templates.
    workloads: Vec<Workload>,
    jobs: Vec<(String, Job)>,
    pod_groups: Vec<Doc>,
    /// Example HybridAutoscalers, checked against the CRD and the autoscaler's own spec validation.
    hybrid_autoscalers: Vec<Doc>,
    /// Example Deployments (the autoscaler's targets): (file, Deployment).
    example_deployments: Vec<(String, Deployment)>,
}

struct Workload {
    file: String,
    name: String,
    spec: PodSpec,
    annotations: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
}

fn load() -> Manifests {
    let mut m = Manifests { docs: documents(), ..Manifests::default() };
    for doc in m.docs.clone() {
        let api_version = doc.str("/apiVersion");
        assert!(!doc.str("/metadata/name").is_empty(), "{}: metadata.name is missing", doc.at());
        match (api_version, doc.str("/kind")) {
            ("v1", "Namespace") => m.namespaces.push(strict(&doc)),
            ("v1", "ServiceAccount") => m.service_accounts.push(strict(&doc)),
            ("rbac.authorization.k8s.io/v1", "ClusterRole") => m.cluster_roles.push(strict(&doc)),
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => m.cluster_role_bindings.push(strict(&doc)),
            ("rbac.authorization.k8s.io/v1", "Role") => m.roles.push(strict(&doc)),
            ("rbac.authorization.k8s.io/v1", "RoleBinding") => m.role_bindings.push(strict(&doc)),
            ("v1", "ConfigMap") => m.config_maps.push(strict(&doc)),
            ("apps/v1", "Deployment") if doc.file.starts_with("examples") => {
                let d: Deployment = strict(&doc);
                let template = &d.spec.template;
                let meta = template.metadata.clone().unwrap_or_default();
                m.workloads.push(Workload {
                    file: doc.file.clone(),
                    name: d.metadata.name.clone().unwrap_or_default(),
                    spec: template.spec.clone().unwrap_or_else(|| panic!("{}: no pod template spec", doc.at())),
                    annotations: meta.annotations.unwrap_or_default(),
                    labels: meta.labels.unwrap_or_default(),
                });
                m.example_deployments.push((doc.file.clone(), d));
            }
            ("apps/v1", "Deployment") => m.deployments.push(strict(&doc)),
            ("v1", "Service") => m.services.push(strict(&doc)),
            ("policy/v1", "PodDisruptionBudget") => m.pdbs.push(strict(&doc)),
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => m.crds.push(strict(&doc)),
            ("v1", "Pod") => {
                let pod: Pod = strict(&doc);
                let meta = &pod.metadata;
                m.workloads.push(Workload {
                    file: doc.file.clone(),
                    name: meta.name.clone().unwrap_or_default(),
                    spec: pod.spec.clone().unwrap_or_else(|| panic!("{}: no spec", doc.at())),
                    annotations: meta.annotations.clone().unwrap_or_default(),
                    labels: meta.labels.clone().unwrap_or_default(),
                });
            }
            ("batch/v1", "Job") => {
                let job: Job = strict(&doc);
                let template = &job.spec.as_ref().unwrap_or_else(|| panic!("{}: no spec", doc.at())).template;
                let meta = template.metadata.clone().unwrap_or_default();
                m.workloads.push(Workload {
                    file: doc.file.clone(),
                    name: job.metadata.name.clone().unwrap_or_default(),
                    spec: template.spec.clone().unwrap_or_else(|| panic!("{}: no pod template spec", doc.at())),
                    annotations: meta.annotations.unwrap_or_default(),
                    labels: meta.labels.unwrap_or_default(),
                });
                m.jobs.push((doc.file.clone(), job));
            }
            // Checked against the CRD's own schema in `pod_groups_validate_against_the_crd`.
            ("scheduling.x-k8s.io/v1alpha1", "PodGroup") => m.pod_groups.push(doc.clone()),
            // Checked in `hybrid_autoscalers_validate_against_the_crd_and_the_autoscaler`.
            ("autoscaling.mlsched.io/v1alpha1", "HybridAutoscaler") => m.hybrid_autoscalers.push(doc.clone()),
            (v, k) => panic!("{}: unexpected apiVersion/kind {v}/{k}; add it to this test", doc.at()),
        }
    }
    m
}

fn only<'a, T>(items: &'a [T], what: &str) -> &'a T {
    assert_eq!(items.len(), 1, "expected exactly one {what} under manifests/");
    &items[0]
}

/// The one object of that name (the scheduler's and the autoscaler's parts share kinds).
fn named<'a, T: k8s_openapi::Metadata<Ty = ObjectMeta>>(items: &'a [T], name: &str) -> &'a T {
    let found: Vec<&T> = items.iter().filter(|i| i.metadata().name.as_deref() == Some(name)).collect();
    assert_eq!(found.len(), 1, "expected exactly one {} {name} under manifests/", T::KIND);
    found[0]
}

fn names<T: k8s_openapi::Metadata<Ty = ObjectMeta>>(items: &[T]) -> BTreeSet<String> {
    items.iter().filter_map(|i| i.metadata().name.clone()).collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------------------------- parsing

#[test]
fn every_document_parses_strictly_and_sits_in_the_right_namespace() {
    let m = load();
    let cluster_scoped = ["Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"];
    for doc in &m.docs {
        let kind = doc.str("/kind");
        let namespace = doc.str("/metadata/namespace");
        if cluster_scoped.contains(&kind) {
            assert!(namespace.is_empty(), "{}: cluster-scoped but has a namespace", doc.at());
        } else if doc.file.starts_with("examples") {
            // Examples go into whatever namespace kubectl is pointed at.
            assert!(namespace.is_empty(), "{}: examples should not pin a namespace", doc.at());
        } else {
            assert_eq!(namespace, NAMESPACE, "{}: namespace", doc.at());
        }
    }
    // deployment.yaml defines the Namespace; rbac.yaml repeats it so the documented apply order works.
    let namespace_files: BTreeSet<&str> =
        m.docs.iter().filter(|d| d.str("/kind") == "Namespace").map(|d| d.file.as_str()).collect();
    assert_eq!(namespace_files, BTreeSet::from(["deployment.yaml", "rbac.yaml"]));
    assert!(m.namespaces.windows(2).all(|w| w[0] == w[1]), "the Namespace copies differ");
    assert_eq!(m.namespaces[0].metadata.name.as_deref(), Some(NAMESPACE));
    only(&m.deployments, "Deployment");
    assert_eq!(names(&m.config_maps), set(&[SCHEDULER_CONFIG, AUTOSCALER_CONFIG]));
    assert_eq!(names(&m.crds), set(&[POD_GROUP_CRD, HYBRID_AUTOSCALER_CRD]));
    assert_eq!(names(&m.cluster_roles), set(&[SCHEDULER, AUTOSCALER]));
    assert_eq!(names(&m.cluster_role_bindings), set(&[SCHEDULER, AUTOSCALER]));
    assert_eq!(names(&m.roles), set(&[SCHEDULER_LEASE_ROLE, AUTOSCALER_LEASE_ROLE]));
    assert_eq!(names(&m.role_bindings), set(&[SCHEDULER_LEASE_ROLE, AUTOSCALER_LEASE_ROLE]));
    only(&m.pdbs, "PodDisruptionBudget");
    only(&m.service_accounts, "ServiceAccount");
}

#[test]
fn strictness_catches_a_typo() {
    let doc = Doc {
        file: "inline".into(),
        index: 0,
        value: json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                      "spec": {"schedulerNmae": "mlsched", "containers": [{"name": "c", "image": "i"}]}}),
    };
    let message = try_strict::<Pod>(&doc).unwrap_err();
    assert!(message.contains(".spec.schedulerNmae"), "{message}");
    let wrong_kind = Doc { value: json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "p"}}), ..doc };
    assert!(try_strict::<Pod>(&wrong_kind).is_err());
}

#[test]
fn readme_names_every_file_and_the_apply_command() {
    let readme = std::fs::read_to_string(manifests_dir().join("README.md")).expect("manifests/README.md");
    assert!(readme.contains(
        "kubectl apply -f manifests/crds/ -f manifests/rbac.yaml -f manifests/autoscaler-rbac.yaml \
         -f manifests/config.yaml -f manifests/autoscaler-config.yaml -f manifests/deployment.yaml"
    ));
    assert!(readme.contains("ghcr.io/mlsched/mlsched:0.1.0") && readme.contains("placeholder"));
    assert!(readme.contains("ghcr.io/mlsched/mlsched-autoscaler:0.1.0"));
    let mut files = Vec::new();
    yaml_files(&manifests_dir(), &mut files);
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        assert!(readme.contains(&name), "README.md does not mention {name}");
    }
}

// ------------------------------------------------------------------------------------------------- RBAC

fn rules_of(m: &Manifests) -> Vec<(String, PolicyRule)> {
    let cluster = m.cluster_roles.iter().map(|r| (format!("ClusterRole {:?}", r.metadata.name), &r.rules));
    let namespaced = m.roles.iter().map(|r| (format!("Role {:?}", r.metadata.name), &r.rules));
    cluster
        .chain(namespaced)
        .flat_map(|(owner, rules)| rules.iter().flatten().map(move |rule| (owner.clone(), rule.clone())))
        .collect()
}

/// (apiGroup, resource) -> verbs, over the rules without resourceNames.
fn grants(rules: &[PolicyRule]) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut out: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for rule in rules.iter().filter(|r| r.resource_names.as_ref().is_none_or(Vec::is_empty)) {
        for group in rule.api_groups.as_deref().unwrap_or_default() {
            for resource in rule.resources.as_deref().unwrap_or_default() {
                out.entry((group.clone(), resource.clone())).or_default().extend(rule.verbs.iter().cloned());
            }
        }
    }
    out
}

#[test]
fn rbac_has_no_secrets_no_wildcards_and_no_escalation() {
    let m = load();
    let rules = rules_of(&m);
    assert!(!rules.is_empty());
    for (owner, rule) in rules {
        let resources = rule.resources.clone().unwrap_or_default();
        let groups = rule.api_groups.clone().unwrap_or_default();
        assert!(!groups.is_empty() && !resources.is_empty(), "{owner}: a rule without apiGroups or resources");
        for r in &resources {
            assert!(!r.contains('*'), "{owner}: wildcard resource {r}");
            assert!(r.split('/').next() != Some("secrets"), "{owner}: grants access to Secrets");
            assert!(!["serviceaccounts/token", "configmaps"].contains(&r.as_str()), "{owner}: grants {r}");
        }
        assert!(!groups.iter().any(|g| g.contains('*')), "{owner}: wildcard apiGroup");
        for v in &rule.verbs {
            assert!(!v.contains('*'), "{owner}: wildcard verb");
            assert!(!["escalate", "bind", "impersonate", "deletecollection"].contains(&v.as_str()), "{owner}: {v}");
        }
        assert!(rule.non_resource_urls.is_none(), "{owner}: nonResourceURLs");
    }
    for r in &m.roles {
        for rule in r.rules.as_deref().unwrap_or_default() {
            if rule.resource_names.as_ref().is_some_and(|n| !n.is_empty()) {
                // These verbs are authorized before the object's name is known; resourceNames would deny them.
                for v in &rule.verbs {
                    assert!(!["create", "list", "watch"].contains(&v.as_str()), "{v} with resourceNames never matches");
                }
            }
        }
    }
}

#[test]
fn cluster_role_grants_exactly_what_the_scheduler_calls() {
    let m = load();
    let role = named(&m.cluster_roles, SCHEDULER);
    let got = grants(role.rules.as_deref().unwrap_or_default());
    // run.rs: watchers (list + watch) on nodes, pods, podgroups of both APIs. kube_io.rs: POST pods/binding,
    // PATCH pods/status, POST + PATCH core/v1 events, PATCH podgroups/status (scheduling.x-k8s.io).
    // evict.rs: POST pods/eviction.
    let want: BTreeMap<(String, String), BTreeSet<String>> = [
        ("", "nodes", &["list", "watch"][..]),
        ("", "pods", &["list", "watch"]),
        ("", "pods/binding", &["create"]),
        ("", "pods/eviction", &["create"]),
        ("", "pods/status", &["patch"]),
        ("", "events", &["create", "patch"]),
        ("scheduling.x-k8s.io", "podgroups", &["list", "watch"]),
        ("scheduling.x-k8s.io", "podgroups/status", &["patch"]),
        ("scheduling.k8s.io", "podgroups", &["list", "watch"]),
    ]
    .into_iter()
    .map(|(g, r, v)| ((g.to_string(), r.to_string()), set(v)))
    .collect();
    assert_eq!(got, want, "ClusterRole rules differ from the scheduler's API calls");
    assert!(role.rules.as_deref().unwrap().iter().all(|r| r.resource_names.is_none()));
}

fn subject_is_the_service_account(subjects: &[Subject], m: &Manifests, what: &str) {
    let sa = only(&m.service_accounts, "ServiceAccount");
    assert_eq!(subjects.len(), 1, "{what}: subjects");
    let s = &subjects[0];
    assert_eq!(s.kind, "ServiceAccount", "{what}");
    assert_eq!(Some(&s.name), sa.metadata.name.as_ref(), "{what}: subject name");
    assert_eq!(s.namespace.as_deref(), sa.metadata.namespace.as_deref(), "{what}: subject namespace");
}

#[test]
fn bindings_tie_the_roles_to_the_deployment_service_account() {
    let m = load();
    // The autoscaler is a sidecar of the scheduler's pod: its roles are bound to the same ServiceAccount.
    for (cluster_role, lease_role) in [(SCHEDULER, SCHEDULER_LEASE_ROLE), (AUTOSCALER, AUTOSCALER_LEASE_ROLE)] {
        let crb = named(&m.cluster_role_bindings, cluster_role);
        assert_eq!(crb.role_ref.kind, "ClusterRole");
        assert_eq!(Some(&crb.role_ref.name), named(&m.cluster_roles, cluster_role).metadata.name.as_ref());
        subject_is_the_service_account(crb.subjects.as_deref().unwrap_or_default(), &m, cluster_role);
        let rb = named(&m.role_bindings, lease_role);
        let role = named(&m.roles, lease_role);
        assert_eq!(rb.role_ref.kind, "Role");
        assert_eq!(Some(&rb.role_ref.name), role.metadata.name.as_ref());
        assert_eq!(rb.metadata.namespace, role.metadata.namespace);
        subject_is_the_service_account(rb.subjects.as_deref().unwrap_or_default(), &m, lease_role);
    }
    let deployment = only(&m.deployments, "Deployment");
    let spec = deployment.spec.template.spec.as_ref().unwrap();
    let sa = only(&m.service_accounts, "ServiceAccount");
    assert_eq!(spec.service_account_name, sa.metadata.name);
    assert_eq!(deployment.metadata.namespace, sa.metadata.namespace);
}

fn check_lease_role(role: &Role, namespace: &str, lease_name: &str) {
    assert_eq!(role.metadata.namespace.as_deref(), Some(namespace));
    let rules = role.rules.as_deref().unwrap_or_default();
    let mut by_name = BTreeSet::new();
    for rule in rules {
        assert_eq!(rule.api_groups.as_deref(), Some(&["coordination.k8s.io".to_string()][..]));
        assert_eq!(rule.resources.as_deref(), Some(&["leases".to_string()][..]));
        match rule.resource_names.as_deref() {
            Some(names) => {
                assert_eq!(names, [lease_name], "resourceNames");
                by_name.extend(rule.verbs.iter().cloned());
            }
            // Both electors create the Lease when it is missing; create cannot name it.
            None => assert_eq!(rule.verbs, ["create"], "only create may go without resourceNames"),
        }
    }
    // The scheduler's elector GETs and merge-PATCHes; the autoscaler's (kube-lease-manager) GETs, then
    // strategic-merge and server-side-apply PATCHes.
    assert_eq!(by_name, set(&["get", "patch"]));
}

#[test]
fn lease_role_is_limited_to_the_configured_lease() {
    let m = load();
    let le = scheduler_config(&m).leader_election;
    check_lease_role(named(&m.roles, SCHEDULER_LEASE_ROLE), &le.namespace, &le.lease_name);
    let le = autoscaler_config(&m).leader_election;
    check_lease_role(named(&m.roles, AUTOSCALER_LEASE_ROLE), &le.namespace, &le.lease_name);
}

// ------------------------------------------------------------------------------------------- Deployment

fn scheduler_container(d: &Deployment) -> &Container {
    let spec = d.spec.template.spec.as_ref().unwrap();
    spec.containers.iter().find(|c| c.name == "mlsched").expect("a container named mlsched")
}

fn port_number(c: &Container, port: &IntOrString) -> i32 {
    match port {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => {
            c.ports
                .as_deref()
                .unwrap_or_default()
                .iter()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .unwrap_or_else(|| panic!("no container port named {name}"))
                .container_port
        }
    }
}

#[test]
fn deployment_is_hardened_and_highly_available() {
    let m = load();
    let d = only(&m.deployments, "Deployment");
    let spec = &d.spec;
    assert_eq!(spec.replicas, Some(2));
    let template_labels = spec.template.metadata.as_ref().unwrap().labels.clone().unwrap();
    let selector = spec.selector.match_labels.clone().unwrap();
    assert!(selector.iter().all(|(k, v)| template_labels.get(k) == Some(v)), "selector must match the template");
    let pod = spec.template.spec.as_ref().unwrap();
    assert!(pod.scheduler_name.is_none(), "the scheduler's own pods are placed by the default scheduler");
    assert!(!pod.host_network.unwrap_or(false) && !pod.host_pid.unwrap_or(false) && !pod.host_ipc.unwrap_or(false));
    let psc = pod.security_context.as_ref().expect("pod securityContext");
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(psc.run_as_user, Some(65532));
    assert_eq!(psc.seccomp_profile.as_ref().map(|s| s.type_.as_str()), Some("RuntimeDefault"));
    for v in pod.volumes.as_deref().unwrap_or_default() {
        assert!(v.host_path.is_none() && v.secret.is_none(), "volume {}: no hostPath or Secret volumes", v.name);
    }
    for c in pod.containers.iter().chain(pod.init_containers.as_deref().unwrap_or_default()) {
        let sc = c.security_context.as_ref().unwrap_or_else(|| panic!("{}: securityContext", c.name));
        assert_eq!(sc.allow_privilege_escalation, Some(false), "{}", c.name);
        assert_eq!(sc.read_only_root_filesystem, Some(true), "{}", c.name);
        assert_ne!(sc.privileged, Some(true), "{}", c.name);
        assert_ne!(sc.run_as_non_root, Some(false), "{}", c.name);
        assert!(sc.run_as_user.is_none_or(|u| u != 0), "{}", c.name);
        let caps = sc.capabilities.as_ref().unwrap_or_else(|| panic!("{}: capabilities", c.name));
        assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_string()][..]), "{}: drop ALL", c.name);
        assert!(caps.add.as_ref().is_none_or(Vec::is_empty), "{}: adds capabilities", c.name);
        let resources = c.resources.as_ref().unwrap_or_else(|| panic!("{}: resources", c.name));
        for (what, list) in [("requests", &resources.requests), ("limits", &resources.limits)] {
            let list = list.as_ref().unwrap_or_else(|| panic!("{}: no {what}", c.name));
            assert!(list.contains_key("cpu") && list.contains_key("memory"), "{}: {what} cpu and memory", c.name);
        }
        let image = c.image.as_deref().unwrap_or("");
        assert!(image.contains(':') && !image.ends_with(":latest"), "{}: pin the image tag", c.name);
    }
    let c = scheduler_container(d);
    assert_eq!(c.image.as_deref(), Some("ghcr.io/mlsched/mlsched:0.1.0"));
    // Both replicas are spread over nodes.
    let anti = pod.affinity.as_ref().and_then(|a| a.pod_anti_affinity.as_ref());
    let anti_on_hostname = anti.is_some_and(|a| {
        let preferred = a.preferred_during_scheduling_ignored_during_execution.as_deref().unwrap_or_default();
        let required = a.required_during_scheduling_ignored_during_execution.as_deref().unwrap_or_default();
        preferred.iter().map(|w| &w.pod_affinity_term).chain(required).any(|t| t.topology_key == HOSTNAME_LABEL)
    });
    let spread_on_hostname =
        pod.topology_spread_constraints.as_deref().unwrap_or_default().iter().any(|t| t.topology_key == HOSTNAME_LABEL);
    assert!(anti_on_hostname || spread_on_hostname, "replicas must be spread across nodes");
    // POD_NAME (run.rs: the leader-election identity) from the downward API.
    let env = c.env.as_deref().unwrap_or_default();
    let pod_name = env.iter().find(|e| e.name == "POD_NAME").expect("POD_NAME env");
    let field = pod_name.value_from.as_ref().and_then(|v| v.field_ref.as_ref()).expect("POD_NAME from fieldRef");
    assert_eq!(field.field_path, "metadata.name");
    // The scheduler and the autoscaler sidecar, nothing else (the loop above hardens both).
    let containers: BTreeSet<&str> = pod.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(containers, BTreeSet::from([SCHEDULER, AUTOSCALER]));
}

/// The container's probes hit its own /healthz and /readyz on its listenAddress port, and its --config points
/// into the mounted volume of its ConfigMap.
fn check_probes_and_config_mount(d: &Deployment, c: &Container, listen: SocketAddr, cm: &ConfigMap) {
    for (what, probe, path) in [
        ("startup", &c.startup_probe, "/healthz"),
        ("liveness", &c.liveness_probe, "/healthz"),
        ("readiness", &c.readiness_probe, "/readyz"),
    ] {
        let get = probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .unwrap_or_else(|| panic!("{}: {what}Probe httpGet", c.name));
        assert_eq!(get.path.as_deref(), Some(path), "{}: {what}Probe path", c.name);
        assert_eq!(port_number(c, &get.port), i32::from(listen.port()), "{}: {what}Probe port", c.name);
        assert!(get.scheme.as_deref().is_none_or(|s| s == "HTTP"), "the endpoints are plain HTTP");
    }
    let pod = d.spec.template.spec.as_ref().unwrap();
    let volume = pod
        .volumes
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|v| v.config_map.as_ref().is_some_and(|s| Some(&s.name) == cm.metadata.name.as_ref()))
        .expect("a volume of the ConfigMap");
    let mount = c
        .volume_mounts
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|vm| vm.name == volume.name)
        .expect("the ConfigMap volume is mounted");
    assert_eq!(mount.read_only, Some(true));
    let items = volume.config_map.as_ref().unwrap().items.clone().unwrap_or_default();
    let file_in_volume =
        |key: &str| items.iter().find(|i| i.key == key).map(|i| i.path.clone()).unwrap_or_else(|| key.to_string());
    let args = c.args.clone().unwrap_or_default();
    let config_path = args
        .iter()
        .find_map(|a| a.strip_prefix("--config="))
        .map(str::to_string)
        .or_else(|| args.iter().position(|a| a == "--config").map(|i| args[i + 1].clone()))
        .expect("--config argument");
    let key = cm
        .data
        .as_ref()
        .unwrap()
        .keys()
        .find(|k| config_path == format!("{}/{}", mount.mount_path.trim_end_matches('/'), file_in_volume(k)));
    assert!(key.is_some(), "{}: --config={config_path} is not a key of the mounted ConfigMap", c.name);
}

#[test]
fn probes_ports_and_config_mount_agree_with_the_config() {
    let m = load();
    let config = scheduler_config(&m);
    let listen: SocketAddr = config.listen_address.parse().expect("listenAddress");
    let d = only(&m.deployments, "Deployment");
    let c = scheduler_container(d);
    check_probes_and_config_mount(d, c, listen, named(&m.config_maps, SCHEDULER_CONFIG));
    // The metrics Service and the PodDisruptionBudget select the scheduler's pods.
    let template_labels = d.spec.template.metadata.as_ref().unwrap().labels.clone().unwrap();
    let selects =
        |sel: &BTreeMap<String, String>| !sel.is_empty() && sel.iter().all(|(k, v)| template_labels.get(k) == Some(v));
    let svc = m.services.iter().find(|s| s.metadata.namespace.as_deref() == Some(NAMESPACE)).expect("metrics Service");
    let svc_spec = svc.spec.as_ref().unwrap();
    assert!(selects(svc_spec.selector.as_ref().unwrap()), "the Service selects the scheduler pods");
    let svc_port = &svc_spec.ports.as_deref().unwrap()[0];
    let target = svc_port.target_port.clone().unwrap_or(IntOrString::Int(svc_port.port));
    assert_eq!(port_number(c, &target), i32::from(listen.port()), "the Service targets the metrics port");
    let pdb = only(&m.pdbs, "PodDisruptionBudget").spec.as_ref().unwrap();
    assert_eq!(pdb.min_available, Some(IntOrString::Int(1)));
    assert!(selects(pdb.selector.as_ref().unwrap().match_labels.as_ref().unwrap()), "the PDB selects the pods");
}

// ----------------------------------------------------------------------------------------------- config

/// The ConfigMap's config file, through the daemon's own parser and validation.
fn scheduler_config(m: &Manifests) -> Config {
    let cm = named(&m.config_maps, SCHEDULER_CONFIG);
    let data = cm.data.as_ref().expect("ConfigMap data");
    assert_eq!(data.len(), 1, "one config file in the ConfigMap");
    let text = data.get("config.yaml").expect("ConfigMap key config.yaml");
    Config::from_yaml(text).unwrap_or_else(|e| panic!("config.yaml in the ConfigMap: {e}"))
}

/// What the deployment needs beyond what the daemon validates: every key spelled out where a default
/// would not fit the manifests (the default lease lives in kube-system, which the Role does not cover).
#[test]
fn config_is_valid_for_the_daemon_and_fits_the_deployment() {
    let m = load();
    let c = scheduler_config(&m);
    let text = named(&m.config_maps, SCHEDULER_CONFIG).data.as_ref().unwrap()["config.yaml"].clone();
    let raw: Value = serde_yaml_ng::from_str(&text).expect("config YAML");
    for key in ["profiles", "topologyLevels", "client", "leaderElection", "listenAddress"] {
        assert!(raw.get(key).is_some(), "config.yaml spells out {key}");
    }
    assert!(c.profiles.iter().any(|p| p.scheduler_name == keys::DEFAULT_SCHEDULER_NAME));
    let le = &c.leader_election;
    assert!(le.enabled, "two replicas need leader election");
    assert_eq!(le.namespace, NAMESPACE, "the Lease lives next to the scheduler, where the Role grants it");
    c.listen_address.parse::<SocketAddr>().expect("listenAddress");
    assert!(!c.listen_address.starts_with("127."), "probes and scrapes come from outside the pod");
}

// ---------------------------------------------------------------------------------- autoscaler sidecar

/// The autoscaler's ConfigMap's file, through the autoscaler's own parser and validation.
fn autoscaler_config(m: &Manifests) -> mlsched_autoscaler::Config {
    let cm = named(&m.config_maps, AUTOSCALER_CONFIG);
    let data = cm.data.as_ref().expect("ConfigMap data");
    assert_eq!(data.len(), 1, "one config file in the autoscaler's ConfigMap");
    let text = data.get("autoscaler.yaml").expect("ConfigMap key autoscaler.yaml");
    mlsched_autoscaler::Config::from_yaml(text).unwrap_or_else(|e| panic!("autoscaler.yaml in the ConfigMap: {e}"))
}

fn autoscaler_container(d: &Deployment) -> &Container {
    let spec = d.spec.template.spec.as_ref().unwrap();
    spec.containers.iter().find(|c| c.name == AUTOSCALER).expect("a container named mlsched-autoscaler")
}

/// A `placementApi` as a socket address: the autoscaler also takes an `http://` prefix.
fn placement_addr(text: &str, whose: &str) -> SocketAddr {
    let t = text.trim();
    t.strip_prefix("http://")
        .unwrap_or(t)
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|e| panic!("{whose} placementApi {t:?} is not a TCP host:port: {e}"))
}

#[test]
fn autoscaler_config_is_valid_and_talks_to_the_scheduler_in_its_pod() {
    let m = load();
    let scheduler = scheduler_config(&m);
    let c = autoscaler_config(&m);
    let text = named(&m.config_maps, AUTOSCALER_CONFIG).data.as_ref().unwrap()["autoscaler.yaml"].clone();
    let raw: Value = serde_yaml_ng::from_str(&text).expect("autoscaler config YAML");
    for key in ["placementApi", "leaderElection", "listenAddress"] {
        assert!(raw.get(key).is_some(), "autoscaler.yaml spells out {key}");
    }
    // The sidecar reaches the scheduler over the pod's shared loopback.
    let placement = placement_addr(&c.placement_api, "autoscaler");
    assert_eq!(placement, placement_addr(&scheduler.placement_api, "scheduler"), "placementApi differs");
    assert!(placement.ip().is_loopback(), "the scheduler serves the Placement API on loopback only");
    let le = &c.leader_election;
    assert!(le.enabled, "two sidecars need leader election");
    assert_eq!(le.namespace, NAMESPACE, "the Lease lives next to the scheduler's, where the Role grants it");
    assert_ne!(le.lease_name, scheduler.leader_election.lease_name, "the two components need their own Leases");
    let listen: SocketAddr = c.listen_address.parse().expect("listenAddress");
    assert!(!listen.ip().is_loopback(), "probes and scrapes come from outside the pod");
    let scheduler_listen: SocketAddr = scheduler.listen_address.parse().unwrap();
    assert!(![scheduler_listen.port(), placement.port()].contains(&listen.port()), "port clash in the shared pod");
}

#[test]
fn autoscaler_sidecar_is_hardened_and_probed_on_its_own_port() {
    let m = load();
    let d = only(&m.deployments, "Deployment");
    let c = autoscaler_container(d);
    let listen: SocketAddr = autoscaler_config(&m).listen_address.parse().unwrap();
    check_probes_and_config_mount(d, c, listen, named(&m.config_maps, AUTOSCALER_CONFIG));
    // Hardened like the scheduler container (deployment_is_hardened_and_highly_available checks every
    // container; spelled out here for the sidecar, against the scheduler container's own settings).
    let s = scheduler_container(d);
    let (sc, ssc) = (c.security_context.as_ref().expect("securityContext"), s.security_context.as_ref().unwrap());
    assert_eq!(sc.run_as_non_root, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.capabilities.as_ref().and_then(|c| c.drop.clone()), Some(vec!["ALL".to_string()]));
    assert_eq!(sc, ssc, "the sidecar's securityContext is the scheduler container's");
    let resources = c.resources.as_ref().expect("resources");
    for list in [&resources.requests, &resources.limits] {
        let list = list.as_ref().expect("requests and limits");
        assert!(list.contains_key("cpu") && list.contains_key("memory"));
    }
    assert!(c.image.as_deref().is_some_and(|i| i.starts_with("ghcr.io/mlsched/mlsched-autoscaler:")));
    // Its own port, not the scheduler's; POD_NAME for its leader-election identity (run.rs default_identity).
    let own: BTreeSet<i32> = c.ports.as_deref().unwrap_or_default().iter().map(|p| p.container_port).collect();
    assert_eq!(own, BTreeSet::from([i32::from(listen.port())]));
    let theirs: BTreeSet<i32> = s.ports.as_deref().unwrap_or_default().iter().map(|p| p.container_port).collect();
    assert!(own.is_disjoint(&theirs));
    let env = c.env.as_deref().unwrap_or_default();
    let pod_name = env.iter().find(|e| e.name == "POD_NAME").expect("POD_NAME env");
    let field = pod_name.value_from.as_ref().and_then(|v| v.field_ref.as_ref()).expect("POD_NAME from fieldRef");
    assert_eq!(field.field_path, "metadata.name");
}

#[test]
fn autoscaler_cluster_role_grants_exactly_what_the_autoscaler_calls() {
    let m = load();
    let role = named(&m.cluster_roles, AUTOSCALER);
    let got = grants(role.rules.as_deref().unwrap_or_default());
    // autoscaler/src/run.rs: LIST hybridautoscalers (all namespaces, once per period) + PATCH their status;
    // Target: GET + strategic PATCH of the Deployment/StatefulSet (template annotation, recreate requests),
    // get_scale + patch_scale; LIST pods by selector, DELETE one (OnDelete recreate), PATCH pods/resize;
    // LIST metrics.k8s.io PodMetrics; kube-runtime Recorder: POST + PATCH events.k8s.io Events.
    let want: BTreeMap<(String, String), BTreeSet<String>> = [
        ("autoscaling.mlsched.io", "hybridautoscalers", &["list"][..]),
        ("autoscaling.mlsched.io", "hybridautoscalers/status", &["patch"]),
        ("apps", "deployments", &["get", "patch"]),
        ("apps", "statefulsets", &["get", "patch"]),
        ("apps", "deployments/scale", &["get", "patch"]),
        ("apps", "statefulsets/scale", &["get", "patch"]),
        ("", "pods", &["list", "delete"]),
        ("", "pods/resize", &["patch"]),
        ("metrics.k8s.io", "pods", &["list"]),
        ("events.k8s.io", "events", &["create", "patch"]),
    ]
    .into_iter()
    .map(|(g, r, v)| ((g.to_string(), r.to_string()), set(v)))
    .collect();
    assert_eq!(got, want, "ClusterRole mlsched-autoscaler differs from the autoscaler's API calls");
    assert!(role.rules.as_deref().unwrap().iter().all(|r| r.resource_names.is_none()));
}

#[test]
fn hybrid_autoscaler_crd_is_the_autoscaler_type() {
    let m = load();
    let crd = named(&m.crds, HYBRID_AUTOSCALER_CRD);
    let generated = mlsched_autoscaler::crd::HybridAutoscaler::crd();
    let (got, want) = (serde_json::to_value(&crd.spec).unwrap(), serde_json::to_value(&generated.spec).unwrap());
    assert!(
        got == want,
        "crds/{HYBRID_AUTOSCALER_CRD}.yaml differs from autoscaler/src/crd.rs; regenerate it:\n{}",
        serde_yaml_ng::to_string(&generated).unwrap()
    );
    assert_eq!(crd.metadata.name, generated.metadata.name);
    assert_eq!(crd.spec.scope, "Namespaced");
    let v = &crd.spec.versions[0];
    assert!(v.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some(), "status subresource");
}

fn hybrid_autoscaler_spec_schema(m: &Manifests) -> JSONSchemaProps {
    let crd = named(&m.crds, HYBRID_AUTOSCALER_CRD);
    let schema = crd.spec.versions[0].schema.as_ref().and_then(|s| s.open_api_v3_schema.clone()).unwrap();
    property(&schema, &["spec"]).clone()
}

#[test]
fn hybrid_autoscalers_validate_against_the_crd_and_the_autoscaler() {
    let m = load();
    let spec_schema = hybrid_autoscaler_spec_schema(&m);
    let config = autoscaler_config(&m);
    assert!(!m.hybrid_autoscalers.is_empty(), "an example HybridAutoscaler");
    for doc in &m.hybrid_autoscalers {
        let at = doc.at();
        let spec = doc.value.get("spec").unwrap_or_else(|| panic!("{at}: spec"));
        for required in ["/targetRef/kind", "/targetRef/name", "/maxReplicas"] {
            assert!(spec.pointer(required).is_some(), "{at}: spec{} is required", required.replace('/', "."));
        }
        let mut errors = Vec::new();
        schema_errors(&spec_schema, spec, ".spec", &mut errors);
        assert!(errors.is_empty(), "{at}: {errors:?}");
        assert!(doc.value.get("status").is_none(), "{at}: status is the autoscaler's");
        // The autoscaler's own parse and spec validation (what would give Valid=False).
        let ha: mlsched_autoscaler::crd::HybridAutoscaler =
            serde_json::from_value(doc.value.clone()).unwrap_or_else(|e| panic!("{at}: {e}"));
        mlsched_autoscaler::run::policy_from_spec(&ha.spec, &config).unwrap_or_else(|e| panic!("{at}: {e}"));
        // The target sits next to it, with a matchLabels-only selector; a preset near-workload annotation
        // equals what the autoscaler would write (the selector as k=v,...).
        let target = &ha.spec.target_ref;
        assert_eq!(target.kind, "Deployment", "{at}: the examples target a Deployment");
        let (_, d) = m
            .example_deployments
            .iter()
            .find(|(f, d)| *f == doc.file && d.metadata.name.as_deref() == Some(target.name.as_str()))
            .unwrap_or_else(|| panic!("{at}: target Deployment {} in {}", target.name, doc.file));
        let d = &d.spec;
        assert!(d.selector.match_expressions.as_ref().is_none_or(Vec::is_empty), "{at}: matchLabels only");
        let labels = d.selector.match_labels.clone().unwrap_or_default();
        assert!(!labels.is_empty(), "{at}: the target selects by matchLabels");
        let selector = labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
        let annotations = d.template.metadata.as_ref().and_then(|t| t.annotations.clone()).unwrap_or_default();
        if let Some(near) = annotations.get(keys::NEAR_WORKLOAD_ANNOTATION) {
            assert_eq!(*near, selector, "{at}: {} must be the target's selector", keys::NEAR_WORKLOAD_ANNOTATION);
        }
        let pod = d.template.spec.as_ref().unwrap();
        let min = ha.spec.min_replicas.unwrap_or(1);
        assert!(d.replicas.unwrap_or(1) >= min && d.replicas.unwrap_or(1) <= ha.spec.max_replicas, "{at}: replicas");
        for c in &pod.containers {
            let requests = c.resources.as_ref().and_then(|r| r.requests.clone()).unwrap_or_default();
            assert!(requests.contains_key("cpu") && requests.contains_key("memory"), "{at}: {} requests", c.name);
        }
    }
    // The schema catches a typo and a missing required field.
    let mut errors = Vec::new();
    schema_errors(&spec_schema, &json!({"targetRef": {"kind": "Deployment"}, "maxReplica": 3}), ".spec", &mut errors);
    assert!(errors.iter().any(|e| e.contains(".spec.maxReplica")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains(".spec.targetRef.name: required")), "{errors:?}");
}

// ------------------------------------------------------------------------------------------- PodGroups

fn schema_errors(schema: &JSONSchemaProps, v: &Value, path: &str, out: &mut Vec<String>) {
    if schema.x_kubernetes_int_or_string == Some(true) {
        if !(v.is_i64() || v.is_u64() || v.is_string()) {
            out.push(format!("{path}: int or string expected"));
        }
        return;
    }
    if let Some(values) = &schema.enum_
        && !values.iter().any(|e| e.0 == *v)
    {
        out.push(format!("{path}: {v} is not one of the enum"));
    }
    match schema.type_.as_deref() {
        Some("object") => {
            let Some(obj) = v.as_object() else { return out.push(format!("{path}: object expected")) };
            for req in schema.required.as_deref().unwrap_or_default() {
                if !obj.contains_key(req) {
                    out.push(format!("{path}.{req}: required"));
                }
            }
            if schema.x_kubernetes_preserve_unknown_fields == Some(true)
                || (path.is_empty() && schema.properties.is_none())
            {
                return;
            }
            for (k, val) in obj {
                let at = format!("{path}.{k}");
                if let Some(s) = schema.properties.as_ref().and_then(|p| p.get(k)) {
                    if at != ".metadata" {
                        schema_errors(s, val, &at, out);
                    }
                } else if let Some(JSONSchemaPropsOrBool::Schema(s)) = &schema.additional_properties {
                    schema_errors(s, val, &at, out);
                } else {
                    out.push(format!("{at}: unknown field (the API server would prune it)"));
                }
            }
        }
        Some("array") => {
            let Some(items) = v.as_array() else { return out.push(format!("{path}: array expected")) };
            if let Some(JSONSchemaPropsOrArray::Schema(s)) = &schema.items {
                for (i, item) in items.iter().enumerate() {
                    schema_errors(s, item, &format!("{path}[{i}]"), out);
                }
            }
        }
        Some("integer") => {
            let Some(n) = v.as_i64() else { return out.push(format!("{path}: integer expected")) };
            if schema.format.as_deref() == Some("int32") && i32::try_from(n).is_err() {
                out.push(format!("{path}: out of int32 range"));
            }
            if schema.minimum.is_some_and(|min| (n as f64) < min) {
                out.push(format!("{path}: below the minimum"));
            }
        }
        Some("string") if !v.is_string() => out.push(format!("{path}: string expected")),
        Some("boolean") if !v.is_boolean() => out.push(format!("{path}: boolean expected")),
        Some("number") if !v.is_number() => out.push(format!("{path}: number expected")),
        _ => {}
    }
}

fn pod_group_schema(m: &Manifests) -> (&CustomResourceDefinition, JSONSchemaProps) {
    let crd = named(&m.crds, POD_GROUP_CRD);
    let version = &crd.spec.versions[0];
    let schema = version.schema.as_ref().and_then(|s| s.open_api_v3_schema.clone()).expect("openAPIV3Schema");
    (crd, schema)
}

fn property<'a>(schema: &'a JSONSchemaProps, path: &[&str]) -> &'a JSONSchemaProps {
    path.iter().fold(schema, |s, p| {
        s.properties.as_ref().and_then(|props| props.get(*p)).unwrap_or_else(|| panic!("schema has no {path:?}"))
    })
}

#[test]
fn crd_matches_the_daemon_pod_group_type() {
    let m = load();
    let (crd, schema) = pod_group_schema(&m);
    // crd.rs: group scheduling.x-k8s.io, version v1alpha1, kind PodGroup, namespaced, status, shortname pg.
    assert_eq!(crd.metadata.name.as_deref(), Some("podgroups.scheduling.x-k8s.io"));
    assert_eq!(crd.spec.group, "scheduling.x-k8s.io");
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(crd.spec.names.kind, "PodGroup");
    assert_eq!(crd.spec.names.plural, "podgroups");
    assert!(crd.spec.names.short_names.as_deref().unwrap_or_default().contains(&"pg".to_string()));
    assert_eq!(crd.spec.versions.len(), 1);
    let v = &crd.spec.versions[0];
    assert_eq!((v.name.as_str(), v.served, v.storage), ("v1alpha1", true, true));
    assert!(v.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some(), "status subresource");
    let int32 = |path: &[&str]| {
        let p = property(&schema, path);
        assert_eq!((p.type_.as_deref(), p.format.as_deref()), (Some("integer"), Some("int32")), "{path:?}");
    };
    let string = |path: &[&str]| assert_eq!(property(&schema, path).type_.as_deref(), Some("string"), "{path:?}");
    int32(&["spec", "minMember"]);
    int32(&["spec", "scheduleTimeoutSeconds"]);
    let min_resources = property(&schema, &["spec", "minResources"]);
    assert!(matches!(&min_resources.additional_properties, Some(JSONSchemaPropsOrBool::Schema(s))
        if s.x_kubernetes_int_or_string == Some(true)));
    for f in ["scheduled", "running", "succeeded", "failed"] {
        int32(&["status", f]);
    }
    string(&["status", "phase"]);
    string(&["status", "occupiedBy"]);
    string(&["status", "scheduleStartTime"]);
    for f in ["type", "status", "reason", "message", "lastTransitionTime"] {
        let conditions = property(&schema, &["status", "conditions"]);
        let Some(JSONSchemaPropsOrArray::Schema(item)) = &conditions.items else { panic!("conditions items") };
        assert_eq!(property(item, &[f]).type_.as_deref(), Some("string"), "conditions[].{f}");
    }
    // The status the daemon writes (kube_io.rs, Reporter::gang) passes the schema.
    let written = json!({"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup", "metadata": {"name": "g"},
        "spec": {"minMember": 8, "scheduleTimeoutSeconds": 600, "minResources": {"cpu": "8", "nvidia.com/gpu": 64}},
        "status": {"phase": "Scheduled", "scheduled": 8, "conditions": [{"type": "Scheduled", "status": "True",
            "reason": "Scheduled", "message": "8 members bound", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
    let mut errors = Vec::new();
    schema_errors(&schema, &written, "", &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    let typo = json!({"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup", "metadata": {"name": "g"},
        "spec": {"minMembers": 8}, "status": {"conditions": [{"type": "Scheduled"}]}});
    schema_errors(&schema, &typo, "", &mut errors);
    assert!(errors.iter().any(|e| e.contains(".spec.minMembers")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains(".status.conditions[0].status: required")), "{errors:?}");
}

#[test]
fn pod_groups_validate_against_the_crd() {
    let m = load();
    let (_, schema) = pod_group_schema(&m);
    let config = scheduler_config(&m);
    assert!(!m.pod_groups.is_empty(), "an example PodGroup");
    for doc in &m.pod_groups {
        let mut errors = Vec::new();
        schema_errors(&schema, &doc.value, "", &mut errors);
        assert!(errors.is_empty(), "{}: {errors:?}", doc.at());
        assert!(doc.value.get("status").is_none(), "{}: status is the scheduler's", doc.at());
        let min = doc.value.pointer("/spec/minMember").and_then(Value::as_i64).expect("spec.minMember");
        assert!(min >= 1);
        check_mlsched_annotations(doc.value.pointer("/metadata/annotations"), &config, &doc.at());
    }
}

// ---------------------------------------------------------------------------------------------- examples

fn check_mlsched_annotations(annotations: Option<&Value>, config: &Config, at: &str) {
    let known = [
        keys::GPU_MILLI_ANNOTATION,
        keys::GPU_MODELS_ANNOTATION,
        keys::GANG_NAME_ANNOTATION,
        keys::GANG_SIZE_ANNOTATION,
        keys::TOPOLOGY_REQUIRED_ANNOTATION,
        keys::TOPOLOGY_PREFERRED_ANNOTATION,
        keys::GANG_TIMEOUT_ANNOTATION,
        keys::NEAR_WORKLOAD_ANNOTATION,
    ];
    let Some(Value::Object(map)) = annotations else { return };
    for (k, v) in map {
        if k.starts_with("mlsched.io/") {
            assert!(known.contains(&k.as_str()), "{at}: {k} is not an annotation the scheduler reads (keys.rs)");
        }
        if [keys::TOPOLOGY_REQUIRED_ANNOTATION, keys::TOPOLOGY_PREFERRED_ANNOTATION].contains(&k.as_str()) {
            let level = v.as_str().unwrap_or("");
            assert!(config.topology_levels.iter().any(|l| l == level), "{at}: {k}={level} is not in topologyLevels");
        }
    }
}

fn limit(spec: &PodSpec, resource: &str) -> Option<String> {
    spec.containers
        .iter()
        .find_map(|c| {
            let r = c.resources.as_ref()?;
            r.limits.as_ref().and_then(|l| l.get(resource)).or(r.requests.as_ref().and_then(|l| l.get(resource)))
        })
        .map(|q| q.0.clone())
}

#[test]
fn examples_use_the_scheduler_and_its_keys() {
    let m = load();
    let config = scheduler_config(&m);
    let scheduler_names: BTreeSet<&str> = config.profiles.iter().map(|p| p.scheduler_name.as_str()).collect();
    assert!(m.workloads.len() >= 4, "examples: whole GPU, shared GPU, MIG, gang");
    for w in &m.workloads {
        let at = format!("{} {}", w.file, w.name);
        let name = w.spec.scheduler_name.as_deref().unwrap_or("default-scheduler");
        assert!(scheduler_names.contains(name), "{at}: schedulerName {name} is not served by the config");
        let tolerates_gpu = w.spec.tolerations.as_deref().unwrap_or_default().iter().any(|t| {
            t.key.as_deref() == Some("nvidia.com/gpu")
                && t.operator.as_deref() == Some("Exists")
                && t.effect.as_deref() == Some("NoSchedule")
        });
        assert!(tolerates_gpu, "{at}: toleration nvidia.com/gpu Exists NoSchedule");
        let annotations = serde_json::to_value(&w.annotations).unwrap();
        check_mlsched_annotations(Some(&annotations), &config, &at);
        if let Some(milli) = w.annotations.get(keys::GPU_MILLI_ANNOTATION) {
            let milli: u32 = milli.parse().expect("gpu-milli is an integer");
            assert!((1..=1000).contains(&milli), "{at}: gpu-milli in 1..=1000");
            assert!(limit(&w.spec, "nvidia.com/gpu").is_none(), "{at}: a GPU share without nvidia.com/gpu");
        }
        assert!(!w.annotations.contains_key(keys::GPU_INDEX_ANNOTATION), "{at}: gpu-index is written at bind");
    }
    let whole = m.workloads.iter().any(|w| limit(&w.spec, "nvidia.com/gpu").as_deref() == Some("1"));
    let shared = m.workloads.iter().any(|w| w.annotations.contains_key(keys::GPU_MILLI_ANNOTATION));
    let mig = m.workloads.iter().any(|w| limit(&w.spec, "nvidia.com/mig-1g.10gb").as_deref() == Some("1"));
    assert!(whole && shared && mig, "examples: whole GPU {whole}, shared GPU {shared}, MIG {mig}");
    assert!("nvidia.com/mig-1g.10gb".starts_with(keys::MIG_PREFIX));
}

#[test]
fn gang_example_is_an_eight_member_pod_group_within_a_rack() {
    let m = load();
    let gang = m
        .pod_groups
        .iter()
        .find(|d| d.value.pointer("/spec/minMember").and_then(Value::as_i64) == Some(8))
        .expect("a PodGroup with minMember 8");
    let name = gang.str("/metadata/name");
    let level = gang
        .value
        .pointer(&format!("/metadata/annotations/{}", keys::TOPOLOGY_REQUIRED_ANNOTATION.replace('/', "~1")))
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{}: {} annotation", gang.at(), keys::TOPOLOGY_REQUIRED_ANNOTATION));
    assert!(level.contains("rack"), "the gang is confined to a rack, not {level}");
    let members: Vec<&Workload> =
        m.workloads.iter().filter(|w| w.labels.get(keys::POD_GROUP_LABEL).map(String::as_str) == Some(name)).collect();
    assert!(!members.is_empty(), "pods labelled {}={name}", keys::POD_GROUP_LABEL);
    assert!(members.iter().all(|w| w.file == gang.file), "members sit next to their PodGroup");
    // Eight members: eight Pods, or Jobs whose parallelism adds up to eight.
    let count: i32 = members
        .iter()
        .map(|w| {
            m.jobs
                .iter()
                .find(|(f, j)| *f == w.file && j.metadata.name.as_deref() == Some(w.name.as_str()))
                .map_or(1, |(_, j)| j.spec.as_ref().unwrap().parallelism.unwrap_or(1))
        })
        .sum();
    assert_eq!(count, 8, "the gang has 8 workers");
}
