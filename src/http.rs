//! The operational surface of the daemon on a local address (`daemon.http_listen`):
//! `GET /metrics` (Prometheus/OpenMetrics text), `GET /healthz` (200 while the loop is alive,
//! 503 when it has not beaten for the watchdog period) and `GET /status` (JSON). It runs on
//! its own thread with a small tokio runtime and only reads what the loop publishes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use crate::ingest::Interrupt;
use crate::metrics::Metrics;

/// How long the loop may go without a beat before `/healthz` says it is stuck.
const ALIVE_WITHIN: Duration = Duration::from_secs(30);

/// Binds `addr` and serves on a thread of its own. Returns the bound address (the port is
/// chosen by the system for `:0`).
pub fn start(addr: &str, metrics: Arc<Metrics>, alive: Interrupt) -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    std::thread::Builder::new()
        .name("votewatch-http".into())
        .spawn(move || {
            runtime.block_on(async move {
                let app = router(metrics, alive);
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => {
                        if let Err(e) = axum::serve(l, app).await {
                            tracing::error!(error = %e, "the HTTP surface stopped");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "cannot serve HTTP"),
                }
            })
        })?;
    Ok(bound)
}

fn router(metrics: Arc<Metrics>, alive: Interrupt) -> Router {
    let m = metrics.clone();
    let s = metrics;
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let body = m.encode();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        body,
                    )
                }
            }),
        )
        .route(
            "/healthz",
            get(move || {
                let ok = alive.alive_within(ALIVE_WITHIN);
                async move {
                    if ok {
                        (StatusCode::OK, "ok\n").into_response()
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "the loop is stuck\n").into_response()
                    }
                }
            }),
        )
        .route(
            "/status",
            get(move || {
                let doc = s.status();
                async move { Json(doc) }
            }),
        )
}
