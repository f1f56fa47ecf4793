//! A fault-injecting proxy between a kube client and the real kube-apiserver: plain HTTP on loopback in
//! front, TLS to the API server behind, every request forwarded as it came (the client's bearer token
//! included, so the API server authenticates and authorizes the client, not the proxy).
//!
//! Its faults are the double's own [`Faults`] handle: the same rules, latencies and request log, so a fault
//! test reads the same against either server. What only a proxy can do is on [`FaultProxy`] itself:
//! cutting the open watch streams and partitioning the client from the API server.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use mlsched_tests::real::{self, fault_proxy::FaultProxy};
//! use mlsched_tests::{RequestMatch, Verb};
//! let cluster = real::shared();
//! let proxy = FaultProxy::start(&cluster.control_plane.url, &cluster.control_plane.pki.ca_pem).await?;
//! let kubeconfig = cluster.scheduler_kubeconfig_via("via-proxy.kubeconfig", proxy.url())?;
//! proxy.faults().fail_next(RequestMatch::new(Verb::Create, "pods").subresource("binding"), 2, 500);
//! proxy.cut_watches();
//! proxy.partition(true);
//! # Ok(()) }
//! ```

mod forward;

use std::collections::HashMap;
use std::io;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::faults::{Faults, RequestInfo, RequestMatch};
use crate::store::Store;

/// A running proxy. Dropping it closes its listener and every connection through it.
pub struct FaultProxy {
    url: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

/// What the accept loop, the connections and the handle share.
struct Shared {
    faults: Faults,
    upstream: forward::Upstream,
    partitioned: watch::Sender<bool>,
    closed: watch::Sender<bool>,
    in_flight: Mutex<HashMap<u64, RequestInfo>>,
    next_request: AtomicU64,
}

impl Shared {
    fn in_flight(&self) -> MutexGuard<'_, HashMap<u64, RequestInfo>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_partitioned(&self) -> bool {
        *self.partitioned.borrow()
    }
}

impl FaultProxy {
    /// Listens on `127.0.0.1:<random port>` and forwards to `upstream_url` (`https://...`), trusting only
    /// the CA in `ca_pem`. Serves on the caller's tokio runtime.
    pub async fn start(upstream_url: &str, ca_pem: &str) -> io::Result<FaultProxy> {
        let upstream = forward::Upstream::new(upstream_url, ca_pem)?;
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let url = format!("http://{}", listener.local_addr()?);
        // The double's fault handle over a store that holds no objects: that store's watch registry (its
        // drop signal and open-watch count) is what `drop_watches` and `open_watches` act on, and the
        // proxy's watch streams register there.
        let faults = Faults { state: Arc::default(), store: Arc::new(Store::new(Vec::new(), 1)) };
        let shared = Arc::new(Shared {
            faults,
            upstream,
            partitioned: watch::channel(false).0,
            closed: watch::channel(false).0,
            in_flight: Mutex::default(),
            next_request: AtomicU64::new(0),
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(FaultProxy { url, shared, task })
    }

    /// `http://127.0.0.1:<port>`: the server URL for the clients that should see the faults.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Fault rules, latencies and the request log (every request the proxy saw, with the status it
    /// answered: the API server's, an injected one, or 502 when the API server could not be reached).
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Ends every open watch stream now, cleanly and between two events, as the API server does when it
    /// closes watches (on a restart, or at a watch's timeout); clients resume from their last event.
    pub fn cut_watches(&self) {
        self.shared.faults.drop_watches();
    }

    /// Cuts the clients off from the API server (`true`) or lets them through again (`false`). While cut
    /// off, every connection through the proxy is closed with whatever it was answering or streaming,
    /// and new connections and requests are closed unanswered.
    pub fn partition(&self, on: bool) {
        self.shared.partitioned.send_replace(on);
    }

    /// Requests matching `m` that the proxy holds now: delayed, or waiting for the API server's answer.
    pub fn in_flight(&self, m: &RequestMatch) -> usize {
        self.shared.in_flight().values().filter(|info| m.matches(info)).count()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.closed.send_replace(true);
        self.shared.faults.drop_watches();
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut closed = shared.closed.subscribe();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors and the like: the client sees a failed connection, as it should.
                Err(_) => continue,
            },
            _ = closed.wait_for(|c| *c) => return,
        };
        if shared.is_partitioned() {
            drop(stream);
            continue;
        }
        tokio::spawn(serve_connection(stream, shared.clone()));
    }
}

/// Serves one client connection until it ends, the proxy partitions or the proxy is dropped; dropping
/// the connection drops its in-flight requests and streams with it, upstream included.
async fn serve_connection(stream: tokio::net::TcpStream, shared: Arc<Shared>) {
    let mut partitioned = shared.partitioned.subscribe();
    let mut closed = shared.closed.subscribe();
    let handler = shared.clone();
    let service = service_fn(move |req| forward::handle(handler.clone(), req));
    let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = conn => {}
        _ = partitioned.wait_for(|p| *p) => {}
        _ = closed.wait_for(|c| *c) => {}
    }
}
