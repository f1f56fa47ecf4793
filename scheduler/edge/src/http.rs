//! `/metrics`, `/healthz`, `/readyz`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

/// A binary's metrics, as served on `/metrics` (OpenMetrics text).
pub trait Exposition: Send + Sync + 'static {
    fn encode(&self) -> String;
}

#[derive(Debug, Default)]
pub struct Health {
    /// The decision loop is running.
    pub live: AtomicBool,
    /// The binary's caches are filled: a standby is ready too, to take over at once.
    pub ready: AtomicBool,
}

struct Shared<M> {
    metrics: Arc<M>,
    health: Arc<Health>,
    /// The `/readyz` body while not ready.
    not_ready: &'static str,
}

impl<M> Clone for Shared<M> {
    fn clone(&self) -> Self {
        Shared { metrics: self.metrics.clone(), health: self.health.clone(), not_ready: self.not_ready }
    }
}

async fn metrics<M: Exposition>(State(s): State<Shared<M>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], s.metrics.encode())
}

fn flag(ok: bool, what: &str) -> (StatusCode, String) {
    if ok { (StatusCode::OK, "ok".into()) } else { (StatusCode::SERVICE_UNAVAILABLE, format!("{what}\n")) }
}

async fn healthz<M>(State(s): State<Shared<M>>) -> impl IntoResponse {
    flag(s.health.live.load(Ordering::Relaxed), "decision loop not running")
}

async fn readyz<M>(State(s): State<Shared<M>>) -> impl IntoResponse {
    flag(s.health.ready.load(Ordering::Relaxed), s.not_ready)
}

/// The three routes; `/readyz` answers 503 with `not_ready` until `health.ready` is set.
pub fn router<M: Exposition>(metrics_: Arc<M>, health: Arc<Health>, not_ready: &'static str) -> Router {
    Router::new()
        .route("/metrics", get(metrics::<M>))
        .route("/healthz", get(healthz::<M>))
        .route("/readyz", get(readyz::<M>))
        .with_state(Shared { metrics: metrics_, health, not_ready })
}

pub async fn serve<M: Exposition>(
    listener: tokio::net::TcpListener,
    metrics_: Arc<M>,
    health: Arc<Health>,
    not_ready: &'static str,
) {
    if let Err(e) = axum::serve(listener, router(metrics_, health, not_ready)).await {
        tracing::error!(error = %e, "HTTP server stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    struct Fixed;

    impl Exposition for Fixed {
        fn encode(&self) -> String {
            "# EOF\n".into()
        }
    }

    /// `GET path` over HTTP/1.0 (the server closes the connection after the response): status line and body.
    async fn get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        (head.lines().next().unwrap().to_string(), body.to_string())
    }

    #[tokio::test]
    async fn probes_follow_health_and_name_what_is_missing() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let health = Arc::new(Health::default());
        tokio::spawn(serve(listener, Arc::new(Fixed), health.clone(), "caches not synced"));

        let (status, body) = get(addr, "/healthz").await;
        assert!(status.contains("503"), "{status}");
        assert_eq!(body, "decision loop not running\n");
        health.live.store(true, Ordering::Relaxed);
        let (status, body) = get(addr, "/healthz").await;
        assert!(status.contains("200"), "{status}");
        assert_eq!(body, "ok");

        let (status, body) = get(addr, "/readyz").await;
        assert!(status.contains("503"), "{status}");
        assert_eq!(body, "caches not synced\n");
        health.ready.store(true, Ordering::Relaxed);
        let (status, body) = get(addr, "/readyz").await;
        assert!(status.contains("200"), "{status}");
        assert_eq!(body, "ok");

        let (status, body) = get(addr, "/metrics").await;
        assert!(status.contains("200"), "{status}");
        assert_eq!(body, "# EOF\n");
    }
}
