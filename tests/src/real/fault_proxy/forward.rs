//! One request through the proxy: classified, delayed or failed by the fault rules, else forwarded over
//! TLS with its answer streamed back; watch answers stay cuttable for as long as they stream.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::json;

use super::Shared;
use crate::error::ApiError;
use crate::faults::{FaultSpec, RequestInfo, RequestRecord, Verb};
use crate::store::Store;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub(super) type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// The API server behind the proxy.
pub(super) struct Upstream {
    base: String,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Upstream {
    pub(super) fn new(url: &str, ca_pem: &str) -> io::Result<Upstream> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            let cert = cert.map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("CA PEM: {e}")))?;
            roots.add(cert).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("CA: {e}")))?;
        }
        if roots.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no certificate in the CA PEM"));
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector =
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_only().enable_http1().build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Upstream { base: url.trim_end_matches('/').to_string(), client })
    }
}

/// The service of one client connection. An `Err` makes hyper close the connection unanswered, which is
/// how a request that arrives during a partition fails.
pub(super) async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<ProxyBody>, BoxError> {
    if shared.is_partitioned() {
        return Err("partitioned".into());
    }
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let path = parts.uri.path_and_query().map_or_else(|| parts.uri.path().to_string(), |p| p.as_str().to_string());
    let info = RequestInfo::classify(&parts.method, parts.uri.path(), parts.uri.query().unwrap_or(""), &body);
    let mut record = RequestRecord {
        method: parts.method.to_string(),
        path: path.clone(),
        info: info.clone(),
        status: 0,
        injected: false,
    };

    let id = shared.next_request.fetch_add(1, Ordering::Relaxed);
    shared.in_flight().insert(id, info.clone());
    let _held = InFlight(&shared, id);

    let (fault, latency) = shared.faults.check(&info);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if shared.is_partitioned() {
        return Err("partitioned".into());
    }
    if let Some(f) = fault {
        record.status = f.status;
        record.injected = true;
        shared.faults.record(record);
        return Ok(fault_response(&f, &info));
    }

    let upstream = forward(&shared.upstream, parts, &path, body).await;
    let response = match upstream {
        Ok(resp) => {
            let watch = info.verb == Some(Verb::Watch) && resp.status().is_success();
            let (parts, body) = resp.into_parts();
            let body = if watch {
                watch_body(body, shared.faults.store.clone())
            } else {
                body.map_err(Into::into).boxed_unsync()
            };
            Response::from_parts(parts, body)
        }
        Err(e) => status_response(&ApiError::new(502, format!("the API server could not be reached: {e}"))),
    };
    record.status = response.status().as_u16();
    shared.faults.record(record);
    Ok(response)
}

/// Removes a request from the in-flight table when its answer is ready (or the connection is dropped).
struct InFlight<'a>(&'a Shared, u64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight().remove(&self.1);
    }
}

/// Headers of one hop only (RFC 9110 section 7.6.1), and `Host`, which names the proxy.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection" | "keep-alive" | "proxy-connection" | "te" | "trailer" | "transfer-encoding" | "upgrade" | "host"
    )
}

fn end_to_end(headers: &HeaderMap) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
    headers.iter().filter(|(name, _)| !hop_by_hop(name))
}

async fn forward(
    upstream: &Upstream,
    parts: http::request::Parts,
    path: &str,
    body: Bytes,
) -> Result<Response<Incoming>, BoxError> {
    let uri: Uri = format!("{}{path}", upstream.base).parse()?;
    let mut req = Request::builder().method(parts.method).uri(uri).version(http::Version::HTTP_11);
    for (name, value) in end_to_end(&parts.headers) {
        req = req.header(name, value);
    }
    let resp = upstream.client.request(req.body(Full::new(body))?).await?;
    let (mut parts, body) = resp.into_parts();
    let names: Vec<HeaderName> = parts.headers.keys().filter(|n| hop_by_hop(n)).cloned().collect();
    for name in names {
        parts.headers.remove(name);
    }
    Ok(Response::from_parts(parts, body))
}

/// An injected failure as the API server would answer it. A 410 on a watch is what the API server sends
/// for a resume from a compacted resourceVersion: a 200 whose only event is an `ERROR` with the `Expired`
/// Status; other faults are the status code with a `Status` body.
fn fault_response(f: &FaultSpec, info: &RequestInfo) -> Response<ProxyBody> {
    let error = f.error(info);
    if info.verb == Some(Verb::Watch) && f.status == 410 {
        let mut line = serde_json::to_vec(&json!({"type": "ERROR", "object": error.to_status()})).unwrap_or_default();
        line.push(b'\n');
        return json_response(StatusCode::OK, line);
    }
    let mut resp = status_response(&error);
    if let Some(secs) = f.retry_after {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

fn status_response(error: &ApiError) -> Response<ProxyBody> {
    let code = StatusCode::from_u16(error.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code, serde_json::to_vec(&error.to_status()).unwrap_or_default())
}

fn json_response(code: StatusCode, body: Vec<u8>) -> Response<ProxyBody> {
    let mut resp = Response::new(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed_unsync());
    *resp.status_mut() = code;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// A watch answer, passed on whole events at a time (newline-delimited JSON) so that a cut never leaves
/// half an event behind; it ends cleanly when the watches are cut.
struct WatchStream {
    upstream: Incoming,
    cut: tokio::sync::watch::Receiver<u64>,
    pending: BytesMut,
    finished: bool,
    _open: OpenWatch,
}

/// Counts the stream in the open watches while it lives.
struct OpenWatch(Arc<Store>);

impl Drop for OpenWatch {
    fn drop(&mut self) {
        self.0.open_watches.fetch_sub(1, Ordering::SeqCst);
    }
}

fn watch_body(upstream: Incoming, store: Arc<Store>) -> ProxyBody {
    store.open_watches.fetch_add(1, Ordering::SeqCst);
    let mut cut = store.drop_tx.subscribe();
    cut.mark_unchanged();
    let state =
        WatchStream { upstream, cut, pending: BytesMut::new(), finished: false, _open: OpenWatch(store.clone()) };
    let events = futures::stream::unfold(state, |mut s| async move {
        while !s.finished {
            let frame = tokio::select! {
                _ = s.cut.changed() => return None,
                frame = s.upstream.frame() => frame,
            };
            match frame {
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else { continue };
                    s.pending.extend_from_slice(&data);
                    if let Some(end) = s.pending.iter().rposition(|b| *b == b'\n') {
                        let events = s.pending.split_to(end + 1).freeze();
                        return Some((Ok(Frame::data(events)), s));
                    }
                }
                Some(Err(e)) => {
                    s.finished = true;
                    return Some((Err(BoxError::from(e)), s));
                }
                None => {
                    s.finished = true;
                    if !s.pending.is_empty() {
                        let rest = s.pending.split().freeze();
                        return Some((Ok(Frame::data(rest)), s));
                    }
                }
            }
        }
        None
    });
    StreamBody::new(events).boxed_unsync()
}
