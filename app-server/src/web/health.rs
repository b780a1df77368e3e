//! Probes. `/healthz`: the process is up (no dependencies checked, so a database outage does
//! not get the process restarted). `/readyz`: the database answers and every migration this
//! binary knows is applied — the signal to route traffic here.

use crate::app::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let backend = state.store.backend();
    let database = state.store.ping().await;
    let migrations = match &database {
        Ok(()) => state.store.migrations_current().await,
        Err(_) => Ok(false),
    };
    let ready = database.is_ok() && matches!(migrations, Ok(true));
    let body = json!({
        "ready": ready,
        "backend": backend,
        "database": if database.is_ok() { "ok" } else { "unreachable" },
        "migrations": match migrations { Ok(true) => "current", Ok(false) => "pending", Err(_) => "unknown" },
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}
