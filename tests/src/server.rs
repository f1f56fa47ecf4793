//! HTTP front end: routing of Kubernetes API paths, handlers and watch streams.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::faults::{Faults, RequestInfo, RequestRecord, ResourcePath};
use crate::patch::PatchKind;
use crate::resources::{self, ResourceKind};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{ChangeType, ListQuery, Store, Sub};

#[derive(Clone)]
pub(crate) struct App {
    pub store: Arc<Store>,
    pub faults: Faults,
    pub bookmark_interval: Duration,
}

fn json_response(code: u16, body: &Value) -> Response {
    let mut resp = Response::new(Body::from(serde_json::to_vec(body).unwrap_or_default()));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn error_response(e: &ApiError) -> Response {
    json_response(e.code, &e.to_status())
}

/// A parsed resource request path.
#[derive(Debug)]
struct Target {
    kind: Option<ResourceKind>,
    group: String,
    plural: String,
    namespace: Option<String>,
    name: Option<String>,
    sub: String,
}

fn params(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

fn param<'a>(ps: &'a [(String, String)], k: &str) -> Option<&'a str> {
    ps.iter().find(|(pk, _)| pk == k).map(|(_, v)| v.as_str())
}

fn truthy(v: Option<&str>) -> bool {
    matches!(v, Some("true" | "1" | "True"))
}

fn parse_target(store: &Store, p: ResourcePath) -> Target {
    let kind =
        store.kinds.iter().find(|k| k.group == p.group && k.version == p.version && k.plural == p.plural).cloned();
    Target { kind, group: p.group, plural: p.plural, namespace: p.namespace, name: p.name, sub: p.subresource }
}

pub(crate) async fn handle(State(app): State<App>, req: Request) -> Response {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let path = uri.path().to_string();
    let path_and_query = uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| path.clone());
    let ps = params(uri.query().unwrap_or(""));
    let headers = req.headers().clone();
    let body = axum::body::to_bytes(req.into_body(), 64 << 20).await.unwrap_or_default();

    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let target = ResourcePath::parse(&path).map(|p| parse_target(&app.store, p));
    let info = RequestInfo::classify(&method, &path, uri.query().unwrap_or(""), &body);
    let is_watch = truthy(param(&ps, "watch"));

    let (fault, latency) = app.faults.check(&info);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut record = RequestRecord {
        method: method.to_string(),
        path: path_and_query,
        info: info.clone(),
        status: 0,
        injected: false,
    };
    if let Some(f) = fault {
        let e = f.error(&info);
        let mut resp = error_response(&e);
        if let Some(secs) = f.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        record.status = f.status;
        record.injected = true;
        app.faults.record(record);
        return resp;
    }

    let resp = match (segs.as_slice(), target) {
        (["version"], _) => json_response(200, &resources::version_doc()),
        (["healthz" | "readyz" | "livez"], _) => {
            let mut r = Response::new(Body::from("ok"));
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            r
        }
        (["api"], _) if wants_aggregated(&headers) => {
            aggregated_response(resources::aggregated_doc(&app.store.kinds, true))
        }
        (["api"], _) => json_response(200, &resources::core_versions_doc()),
        (["apis"], _) if wants_aggregated(&headers) => {
            aggregated_response(resources::aggregated_doc(&app.store.kinds, false))
        }
        (["apis"], _) => json_response(200, &resources::group_list_doc(&app.store.kinds)),
        (["api", "v1"], _) => doc_or_404(resources::resource_list_doc(&app.store.kinds, "", "v1")),
        (["apis", g], _) => doc_or_404(resources::group_doc_for(&app.store.kinds, g)),
        (["apis", g, v], _) => doc_or_404(resources::resource_list_doc(&app.store.kinds, g, v)),
        (_, Some(t)) => match serve_resource(&app, &method, &headers, &ps, t, &body, is_watch).await {
            Ok(r) => r,
            Err(e) => error_response(&e),
        },
        _ => error_response(&ApiError::new(404, "the server could not find the requested resource")),
    };
    record.status = resp.status().as_u16();
    app.faults.record(record);
    resp
}

fn wants_aggregated(h: &HeaderMap) -> bool {
    h.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("apidiscovery.k8s.io"))
}

fn aggregated_response(doc: Value) -> Response {
    let mut r = json_response(200, &doc);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"),
    );
    r
}

fn doc_or_404(doc: Option<Value>) -> Response {
    match doc {
        Some(d) => json_response(200, &d),
        None => error_response(&ApiError::new(404, "the server could not find the requested resource")),
    }
}

fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("failed to decode request body as JSON: {e}")))
}

fn list_query(ps: &[(String, String)]) -> Result<ListQuery, ApiError> {
    Ok(ListQuery {
        label: param(ps, "labelSelector").filter(|s| !s.is_empty()).map(LabelSelector::parse).transpose()?,
        field: param(ps, "fieldSelector").filter(|s| !s.is_empty()).map(FieldSelector::parse).transpose()?,
        resource_version: param(ps, "resourceVersion").map(str::to_string),
        resource_version_match: param(ps, "resourceVersionMatch").map(str::to_string),
        limit: param(ps, "limit").and_then(|l| l.parse().ok()),
        continue_token: param(ps, "continue").map(str::to_string),
    })
}

async fn serve_resource(
    app: &App,
    method: &Method,
    headers: &HeaderMap,
    ps: &[(String, String)],
    t: Target,
    body: &Bytes,
    is_watch: bool,
) -> Result<Response, ApiError> {
    let store = &app.store;
    let dry_run = param(ps, "dryRun").is_some_and(|v| v == "All");
    // Legacy `POST /api/v1/namespaces/{ns}/bindings`.
    if t.group.is_empty() && t.plural == "bindings" && t.name.is_none() && *method == Method::POST {
        let ns = t.namespace.clone().unwrap_or_default();
        let b = parse_body(body)?;
        let name = b.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
        return Ok(json_response(201, &store.bind(&ns, &name, &b)?));
    }
    let kind = t.kind.clone().ok_or_else(|| ApiError::new(404, "the server could not find the requested resource"))?;
    if kind.namespaced && t.namespace.is_none() && t.name.is_some() {
        return Err(ApiError::new(404, "the server could not find the requested resource"));
    }
    let ns_opt = if kind.namespaced { t.namespace.as_deref() } else { None };
    let ns = ns_opt.unwrap_or("");
    let sub = match t.sub.as_str() {
        "" => Sub::Main,
        "status" if kind.status_subresource => Sub::Status,
        "binding" if kind.group.is_empty() && kind.plural == "pods" => {
            if *method != Method::POST {
                return Err(ApiError::new(405, "the server does not allow this method on the requested resource"));
            }
            let name = t.name.clone().unwrap_or_default();
            let b = parse_body(body)?;
            return Ok(json_response(201, &store.bind(ns, &name, &b)?));
        }
        "scale" if crate::scale::has_scale(&kind) && t.name.is_some() => {
            let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            let name = t.name.clone().unwrap_or_default();
            return Ok(json_response(200, &crate::scale::serve(store, &kind, method, ct, ns, &name, body, dry_run)?));
        }
        "resize" if kind.group.is_empty() && kind.plural == "pods" && t.name.is_some() => {
            let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            let name = t.name.clone().unwrap_or_default();
            return Ok(json_response(200, &crate::resize::serve(store, &kind, method, ct, ns, &name, body, dry_run)?));
        }
        _ => return Err(ApiError::new(404, "the server could not find the requested resource")),
    };
    match (method.clone(), t.name.clone()) {
        (Method::GET, None) if is_watch => start_watch(app, &kind, ns_opt, ps),
        (Method::GET, None) => Ok(json_response(200, &store.list(&kind, ns_opt, &list_query(ps)?)?)),
        (Method::GET, Some(name)) => Ok(json_response(200, &store.get(&kind, ns, &name)?)),
        (Method::POST, None) => {
            let obj = store.create(&kind, ns, parse_body(body)?, dry_run, false)?;
            Ok(json_response(201, &obj))
        }
        (Method::PUT, Some(name)) => {
            let obj = store.update(&kind, ns, &name, parse_body(body)?, sub, dry_run, false)?;
            Ok(json_response(200, &obj))
        }
        (Method::PATCH, Some(name)) => {
            let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            let pk = PatchKind::from_content_type(ct).ok_or_else(|| {
                ApiError::new(415, format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {ct:?})"))
            })?;
            if pk == PatchKind::Apply && param(ps, "fieldManager").is_none_or(str::is_empty) {
                return Err(ApiError::new(
                    422,
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                ));
            }
            let patch = parse_body(body)?;
            let (obj, created) = store.patch(&kind, ns, &name, pk, &patch, sub, dry_run)?;
            Ok(json_response(if created { 201 } else { 200 }, &obj))
        }
        (Method::DELETE, Some(name)) => {
            let opts: Value = if body.is_empty() { json!({}) } else { parse_body(body).unwrap_or(json!({})) };
            let uid = opts.pointer("/preconditions/uid").and_then(Value::as_str);
            let rv = opts.pointer("/preconditions/resourceVersion").and_then(Value::as_str);
            let obj = store.delete(&kind, ns, &name, uid, rv, dry_run)?;
            let gone = store.get(&kind, ns, &name).is_err();
            // Like the real server: pods answer with the deleted object; other kinds with a Success Status
            // once the object is gone, and with the object while finalizers hold it.
            if gone && !(kind.group.is_empty() && kind.plural == "pods") {
                let mut st = crate::error::success_status(200);
                st["details"] = json!({"name": name, "group": kind.group, "kind": kind.plural,
                    "uid": obj.pointer("/metadata/uid").cloned().unwrap_or(Value::Null)});
                return Ok(json_response(200, &st));
            }
            Ok(json_response(200, &obj))
        }
        (Method::DELETE, None) => Ok(json_response(200, &store.delete_collection(&kind, ns_opt, &list_query(ps)?)?)),
        _ => Err(ApiError::new(405, "the server does not allow this method on the requested resource")),
    }
}

/// Filters a watch: namespace + selectors.
struct WatchFilter {
    ns: Option<String>,
    label: Option<LabelSelector>,
    field: Option<FieldSelector>,
}

impl WatchFilter {
    fn matches(&self, obj: &Value) -> bool {
        let ns = obj.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("");
        self.ns.as_deref().is_none_or(|n| n == ns)
            && self.label.as_ref().is_none_or(|s| s.matches(obj))
            && self.field.as_ref().is_none_or(|s| s.matches(obj))
    }
}

fn event_line(ty: &str, obj: &Value) -> Bytes {
    let mut v = serde_json::to_vec(&json!({"type": ty, "object": obj})).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

fn bookmark_line(kind: &ResourceKind, rv: u64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    event_line("BOOKMARK", &json!({"kind": kind.kind, "apiVersion": kind.api_version(), "metadata": meta}))
}

struct WatchGuard(Arc<Store>);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.open_watches.fetch_sub(1, Ordering::SeqCst);
    }
}

fn start_watch(
    app: &App,
    kind: &ResourceKind,
    ns: Option<&str>,
    ps: &[(String, String)],
) -> Result<Response, ApiError> {
    let q = list_query(ps)?;
    let filter = WatchFilter { ns: ns.map(str::to_string), label: q.label.clone(), field: q.field.clone() };
    let bookmarks = truthy(param(ps, "allowWatchBookmarks"));
    let send_initial = truthy(param(ps, "sendInitialEvents"));
    let timeout = param(ps, "timeoutSeconds").and_then(|s| s.parse::<u64>().ok()).map(Duration::from_secs);
    let rv_param = q.resource_version.clone().unwrap_or_default();
    if send_initial && (q.resource_version_match.as_deref() != Some("NotOlderThan") || !bookmarks) {
        return Err(ApiError::new(
            422,
            "sendInitialEvents requires resourceVersionMatch=NotOlderThan and allowWatchBookmarks=true",
        ));
    }
    let store = app.store.clone();
    let (tx, mut rx) = mpsc::channel::<Bytes>(256);
    let kind = kind.clone();
    let bookmark_interval = app.bookmark_interval;
    store.open_watches.fetch_add(1, Ordering::SeqCst);
    let guard = WatchGuard(store.clone());
    // Subscribe before computing the start point, so no change is missed.
    let mut rv_rx = store.rv_tx.subscribe();
    let mut drop_rx = store.drop_tx.subscribe();
    let mut bm_rx = store.bookmark_tx.subscribe();
    rv_rx.mark_unchanged();
    drop_rx.mark_unchanged();
    bm_rx.mark_unchanged();

    // Starting point and initial events.
    let mut initial = Vec::new();
    let mut gone = None;
    let mut cursor;
    if send_initial || rv_param.is_empty() || rv_param == "0" {
        let list = store.list(
            &kind,
            ns,
            &ListQuery { label: q.label.clone(), field: q.field.clone(), ..Default::default() },
        )?;
        cursor = list["metadata"]["resourceVersion"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
        for item in list["items"].as_array().cloned().unwrap_or_default() {
            initial.push(event_line("ADDED", &item));
        }
        if send_initial {
            initial.push(bookmark_line(&kind, cursor, true));
        }
    } else {
        cursor = rv_param
            .parse::<u64>()
            .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv_param}")))?;
        if let Err(e) = store.changes_since(&kind.key(), cursor) {
            gone = Some(e);
        }
    }

    tokio::spawn(async move {
        let _guard = guard;
        if let Some(e) = gone {
            let _ = tx.send(event_line("ERROR", &e.to_status())).await;
            return;
        }
        for line in initial {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let mut ticker = tokio::time::interval(bookmark_interval);
        ticker.tick().await;
        let mut send_bookmark = false;
        loop {
            match store.changes_since(&kind.key(), cursor) {
                Err(e) => {
                    let _ = tx.send(event_line("ERROR", &e.to_status())).await;
                    return;
                }
                Ok((changes, upto)) => {
                    for c in changes {
                        let now = c.change != ChangeType::Deleted && filter.matches(&c.object);
                        let before = match c.change {
                            ChangeType::Added => false,
                            ChangeType::Modified => c.prev.as_ref().is_some_and(|p| filter.matches(p)),
                            ChangeType::Deleted => filter.matches(&c.object),
                        };
                        let ty = match (before, now) {
                            (false, true) => "ADDED",
                            (true, true) => "MODIFIED",
                            (true, false) => "DELETED",
                            (false, false) => continue,
                        };
                        if tx.send(event_line(ty, &c.object)).await.is_err() {
                            return;
                        }
                    }
                    cursor = upto;
                }
            }
            if send_bookmark && tx.send(bookmark_line(&kind, cursor, false)).await.is_err() {
                return;
            }
            let sleep_deadline = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            send_bookmark = false;
            tokio::select! {
                _ = tx.closed() => return,
                _ = drop_rx.changed() => return,
                _ = sleep_deadline => return,
                _ = ticker.tick() => send_bookmark = bookmarks,
                r = bm_rx.changed() => {
                    if r.is_err() { return; }
                    send_bookmark = bookmarks;
                }
                r = rv_rx.changed() => {
                    if r.is_err() { return; }
                }
            }
        }
    });

    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|o| o.map(Ok::<Bytes, Infallible>)));
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp.into_response())
}
