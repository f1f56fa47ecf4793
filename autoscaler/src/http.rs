//! `/metrics`, `/healthz`, `/readyz`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::metrics::Metrics;

#[derive(Debug, Default)]
pub struct Health {
    /// The decision loop is running.
    pub live: AtomicBool,
    /// The first list of HybridAutoscalers succeeded (a standby is ready too).
    pub ready: AtomicBool,
}

type Shared = (Arc<Metrics>, Arc<Health>);

async fn metrics(State((m, _)): State<Shared>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], m.encode())
}

fn flag(ok: bool, what: &str) -> (StatusCode, String) {
    if ok { (StatusCode::OK, "ok".into()) } else { (StatusCode::SERVICE_UNAVAILABLE, format!("{what}\n")) }
}

async fn healthz(State((_, h)): State<Shared>) -> impl IntoResponse {
    flag(h.live.load(Ordering::Relaxed), "decision loop not running")
}

async fn readyz(State((_, h)): State<Shared>) -> impl IntoResponse {
    flag(h.ready.load(Ordering::Relaxed), "not synced")
}

pub fn router(metrics_: Arc<Metrics>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state((metrics_, health))
}

pub async fn serve(listener: tokio::net::TcpListener, metrics_: Arc<Metrics>, health: Arc<Health>) {
    if let Err(e) = axum::serve(listener, router(metrics_, health)).await {
        tracing::error!(error = %e, "HTTP server stopped");
    }
}
