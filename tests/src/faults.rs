//! Fault injection and the request log (a Rust-side handle; nothing of it is reachable over HTTP).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::error::ApiError;
use crate::store::Store;

/// The Kubernetes verb of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }
}

impl std::fmt::Display for Verb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which requests a fault or a log query applies to. Unset fields match anything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestMatch {
    pub verb: Option<Verb>,
    /// Plural resource name (`pods`, `podgroups`, `leases`).
    pub resource: Option<String>,
    /// `Some("")` matches only the main resource; `Some("binding")`/`Some("status")` that subresource.
    pub subresource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

impl RequestMatch {
    /// Matches every request.
    pub fn any() -> Self {
        Self::default()
    }

    /// Matches `verb` on `resource` (any subresource).
    pub fn new(verb: Verb, resource: &str) -> Self {
        Self { verb: Some(verb), resource: Some(resource.to_string()), ..Self::default() }
    }

    pub fn verb(mut self, verb: Verb) -> Self {
        self.verb = Some(verb);
        self
    }

    pub fn resource(mut self, resource: &str) -> Self {
        self.resource = Some(resource.to_string());
        self
    }

    pub fn subresource(mut self, sub: &str) -> Self {
        self.subresource = Some(sub.to_string());
        self
    }

    /// Only the main resource, not its subresources.
    pub fn main(self) -> Self {
        self.subresource("")
    }

    pub fn namespace(mut self, ns: &str) -> Self {
        self.namespace = Some(ns.to_string());
        self
    }

    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    pub fn matches(&self, r: &RequestInfo) -> bool {
        self.verb.is_none_or(|v| Some(v) == r.verb)
            && self.resource.as_deref().is_none_or(|x| x == r.resource)
            && self.subresource.as_deref().is_none_or(|x| x == r.subresource)
            && self.namespace.as_deref().is_none_or(|x| x == r.namespace)
            && self.name.as_deref().is_none_or(|x| x == r.name)
    }
}

/// What the server understood of a request (empty strings where not applicable).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// `None` for non-resource requests (discovery, `/version`).
    pub verb: Option<Verb>,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
}

impl RequestInfo {
    /// What a request is, from its method, path, query and body, the way the API server's request-info
    /// resolver sees it: the verb, the resource and subresource, namespace and name. A POST to the legacy
    /// namespaced `bindings` collection is the `pods/binding` subresource of the pod named in the body.
    pub fn classify(method: &http::Method, path: &str, query: &str, body: &[u8]) -> RequestInfo {
        let Some(p) = ResourcePath::parse(path) else { return RequestInfo::default() };
        let watch = form_urlencoded::parse(query.as_bytes())
            .any(|(k, v)| k == "watch" && matches!(v.as_ref(), "true" | "1" | "True"));
        let verb = match (method, p.name.is_some()) {
            (&http::Method::GET, false) if watch => Verb::Watch,
            (&http::Method::GET, false) => Verb::List,
            (&http::Method::GET, true) => Verb::Get,
            (&http::Method::POST, _) => Verb::Create,
            (&http::Method::PUT, _) => Verb::Update,
            (&http::Method::PATCH, _) => Verb::Patch,
            (&http::Method::DELETE, false) => Verb::DeleteCollection,
            (&http::Method::DELETE, true) => Verb::Delete,
            _ => Verb::Get,
        };
        let mut info = RequestInfo {
            verb: Some(verb),
            resource: p.plural,
            subresource: p.subresource,
            namespace: p.namespace.unwrap_or_default(),
            name: p.name.unwrap_or_default(),
            group: p.group,
        };
        if info.group.is_empty() && info.resource == "bindings" && method == http::Method::POST {
            info.resource = "pods".into();
            info.subresource = "binding".into();
            info.name = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v.pointer("/metadata/name").and_then(serde_json::Value::as_str).map(str::to_string))
                .unwrap_or_default();
        }
        info
    }
}

/// A resource path split into its parts: `/api/v1/` or `/apis/{group}/{version}/`, then
/// `[namespaces/{namespace}/]{plural}[/{name}[/{subresource}]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResourcePath {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// Empty for the main resource.
    pub subresource: String,
}

impl ResourcePath {
    /// `None` for paths that name no resource (discovery, `/version`, health checks).
    pub fn parse(path: &str) -> Option<ResourcePath> {
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let (group, version, rest) = match segs.as_slice() {
            ["api", "v1", rest @ ..] => ("", "v1", rest),
            ["apis", g, v, rest @ ..] => (*g, *v, rest),
            _ => return None,
        };
        let (namespace, rest) = if rest.len() >= 3 && rest[0] == "namespaces" {
            (Some(rest[1].to_string()), &rest[2..])
        } else {
            (None, rest)
        };
        if rest.is_empty() || rest.len() > 3 {
            return None;
        }
        Some(ResourcePath {
            group: group.to_string(),
            version: version.to_string(),
            plural: rest[0].to_string(),
            namespace,
            name: rest.get(1).map(|s| s.to_string()),
            subresource: rest.get(2).map(|s| s.to_string()).unwrap_or_default(),
        })
    }
}

/// One served request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    /// Path and query, as received.
    pub path: String,
    pub info: RequestInfo,
    /// HTTP status code answered (200 for a watch that started streaming).
    pub status: u16,
    /// Answered by an injected fault.
    pub injected: bool,
}

impl RequestRecord {
    pub fn verb(&self) -> Option<Verb> {
        self.info.verb
    }
}

/// A rule that fails matching requests.
#[derive(Clone, Debug)]
pub struct FaultSpec {
    pub matcher: RequestMatch,
    /// How many more requests to fail; `u32::MAX` for "until cleared".
    pub times: u32,
    pub status: u16,
    /// Message of the `Status` answer (a default one when `None`).
    pub message: Option<String>,
    /// `Retry-After` header, in seconds.
    pub retry_after: Option<u64>,
}

impl FaultSpec {
    pub fn new(matcher: RequestMatch, times: u32, status: u16) -> Self {
        Self { matcher, times, status, message: None, retry_after: None }
    }

    pub fn message(mut self, m: &str) -> Self {
        self.message = Some(m.to_string());
        self
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// The error answered for a request this rule fails: a 409 is the optimistic-concurrency conflict
    /// clients retry on; other codes carry the rule's message (or a default one) and the code's reason.
    pub(crate) fn error(&self, info: &RequestInfo) -> ApiError {
        if self.status == 409 {
            let mut e = ApiError::conflict(
                &info.resource,
                &info.name,
                &info.group,
                &info.resource,
                "the object has been modified; please apply your changes to the latest version and try again",
            );
            if let Some(m) = &self.message {
                e.message = m.clone();
            }
            return e;
        }
        ApiError::new(self.status, self.message.clone().unwrap_or_else(|| format!("injected fault: {}", self.status)))
    }
}

#[derive(Default)]
pub(crate) struct FaultState {
    pub rules: Vec<FaultSpec>,
    pub latency: Vec<(RequestMatch, Duration)>,
    pub log: Vec<RequestRecord>,
}

/// Handle to inject faults and read the request log. Cheap to clone.
#[derive(Clone)]
pub struct Faults {
    pub(crate) state: Arc<Mutex<FaultState>>,
    pub(crate) store: Arc<Store>,
}

impl Faults {
    pub(crate) fn lock(&self) -> MutexGuard<'_, FaultState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fails the next `times` requests matching `m` with HTTP `status` (and a matching `Status` body).
    pub fn fail_next(&self, m: RequestMatch, times: u32, status: u16) {
        self.inject(FaultSpec::new(m, times, status));
    }

    /// Adds a fault rule; rules are tried in the order added.
    pub fn inject(&self, spec: FaultSpec) {
        self.lock().rules.push(spec);
    }

    /// Delays every request matching `m` by `d` before it is served (several matching delays add up).
    pub fn add_latency(&self, m: RequestMatch, d: Duration) {
        self.lock().latency.push((m, d));
    }

    /// Removes all fault rules and latencies (the log is kept).
    pub fn clear(&self) {
        let mut s = self.lock();
        s.rules.clear();
        s.latency.clear();
    }

    /// Fault rules that still have failures left to inject.
    pub fn pending(&self) -> usize {
        self.lock().rules.iter().filter(|r| r.times > 0).count()
    }

    /// Ends every open watch stream now (clients see the stream end, as on an API server restart).
    pub fn drop_watches(&self) {
        self.store.drop_tx.send_modify(|n| *n += 1);
    }

    /// Number of watch streams open now.
    pub fn open_watches(&self) -> usize {
        self.store.watch_count()
    }

    /// Every request served so far, in order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.lock().log.clone()
    }

    /// Requests matching `m` (and answered with `status`, when given).
    pub fn requests_matching(&self, m: &RequestMatch, status: Option<u16>) -> Vec<RequestRecord> {
        self.lock().log.iter().filter(|r| m.matches(&r.info) && status.is_none_or(|s| s == r.status)).cloned().collect()
    }

    /// Number of requests matching `m` (and answered with `status`, when given).
    pub fn count(&self, m: &RequestMatch, status: Option<u16>) -> usize {
        self.requests_matching(m, status).len()
    }

    pub fn clear_requests(&self) {
        self.lock().log.clear();
    }

    /// Takes the fault to answer with, if one matches (consuming one of its `times`), and the latency to add.
    pub(crate) fn check(&self, info: &RequestInfo) -> (Option<FaultSpec>, Duration) {
        let mut s = self.lock();
        let latency = s.latency.iter().filter(|(m, _)| m.matches(info)).map(|(_, d)| *d).sum();
        let mut hit = None;
        for r in s.rules.iter_mut() {
            if r.times > 0 && r.matcher.matches(info) {
                if r.times != u32::MAX {
                    r.times -= 1;
                }
                hit = Some(r.clone());
                break;
            }
        }
        s.rules.retain(|r| r.times > 0);
        (hit, latency)
    }

    pub(crate) fn record(&self, rec: RequestRecord) {
        self.lock().log.push(rec);
    }
}
