//! What monitoring asks: `GET /healthz` (the process answers), `GET /readyz`
//! (the store answers a query and the node listens) and `GET /metrics`
//! (Prometheus text, `metrics.rs`'s).
//!
//! This module owns reading the node and the store for them, off the async
//! executor where it touches SQLite. Whether `/metrics` needs the token is
//! the router's check (`mod.rs`), not this file's.

use super::{Failure, Shared, blocking};
use crate::api::{ApiError, Health, Readiness};
use crate::metrics::{self, Readings};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// The process is up and answers.
#[utoipa::path(get, path = "/healthz", tag = "meta", security(()),
    responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Ready to serve: the store answers a query and the node listens on at
/// least one address. 503 with the reasons otherwise.
#[utoipa::path(get, path = "/readyz", tag = "meta", security(()),
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(State(control): State<Shared>) -> (StatusCode, Json<Readiness>) {
    let store = control.store.clone();
    let store_ok = blocking(move || store.refresh_head().map_err(Failure::store)).await;
    let listening = control
        .node
        .listen_addrs(Duration::ZERO)
        .await
        .map(|a| a.len())
        .unwrap_or(0);
    let mut problems = Vec::new();
    if let Err(e) = &store_ok {
        problems.push(format!("the store does not answer: {}", e.message));
    }
    if listening == 0 {
        problems.push("the node listens on no address".to_string());
    }
    let ready = problems.is_empty();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        ready,
        store: store_ok.is_ok(),
        listening: listening as u64,
        problems,
    };
    (status, Json(body))
}

/// The node's metrics in the Prometheus text format (OpenMetrics 1.0).
#[utoipa::path(get, path = "/metrics", tag = "meta",
    responses((status = 200, description = "metric families in the Prometheus / OpenMetrics \
        text format", content_type = "application/openmetrics-text"),
        (status = 401, body = ApiError)))]
pub async fn metrics(State(control): State<Shared>) -> Result<Response, Failure> {
    let store = control.store.clone();
    let (collections, disk_bytes, db_version, writes) = blocking(move || {
        let status = store.status().map_err(Failure::store)?;
        Ok((
            status.collections,
            store.disk_bytes(),
            status.db_version.0,
            store.write_latency(),
        ))
    })
    .await?;
    let readings = Readings {
        peers: control.node.peers(),
        net: control.node.metrics(),
        blobs: control.node.blob_transfers(),
        collections,
        disk_bytes,
        db_version,
        writes,
        now_ms: crate::api::now_ms(),
    };
    let text = metrics::encode(&readings);
    Ok(([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response())
}
