//! Operational endpoints: liveness, readiness and metrics.

use std::fmt::Write;

use async_nats::connection::State;
use axum::{
    Json, Router,
    extract::State as AxumState,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use eventlog::jetstream::StreamNames;
use projections::{
    Projection, catalog::Catalog, orders::Orders, store_activity::StoreActivity, stores::Stores,
};

/// Every consumer with a checkpoint (the projector's projections and the bridge
/// relay's router), for the lag figures.
const PROJECTIONS: [&str; 6] = [
    StoreActivity::NAME,
    Stores::NAME,
    Catalog::NAME,
    Orders::NAME,
    bridge_relay::NAME,
    workers::store_deletion::NAME,
];
use serde_json::json;
use sqlx::PgPool;

#[derive(Clone)]
pub struct HealthState {
    pool: PgPool,
    client: async_nats::Client,
    names: StreamNames,
}

impl HealthState {
    pub fn new(pool: PgPool, client: async_nats::Client, names: StreamNames) -> Self {
        Self {
            pool,
            client,
            names,
        }
    }
}

#[expect(
    clippy::disallowed_methods,
    reason = "operational endpoints for probes and scrapers, outside the documented /api/v1"
)]
pub fn router(state: HealthState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"data": {"status": "ok"}, "error": null}))
}

async fn readyz(AxumState(state): AxumState<HealthState>) -> Response {
    let postgres = sqlx::query("SELECT 1").execute(&state.pool).await.is_ok();
    let migrated = migrations_applied(&state.pool).await;
    let nats = state.client.connection_state() == State::Connected;
    let checks = json!({"postgres": postgres, "migrations": migrated, "nats": nats});
    if postgres && migrated && nats {
        Json(json!({"data": {"status": "ready", "checks": checks}, "error": null})).into_response()
    } else {
        let body = json!({"data": null, "error": {
            "code": "not_ready", "message": "a dependency is unavailable", "details": checks}});
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

async fn migrations_applied(pool: &PgPool) -> bool {
    let Some(latest) = eventlog::MIGRATOR.iter().map(|m| m.version).max() else {
        return true;
    };
    sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS (SELECT 1 FROM _sqlx_migrations WHERE version = $1 AND success)",
    )
    .bind(latest)
    .fetch_one(pool)
    .await
    .unwrap_or(false)
}

/// Prometheus text format: how far the publisher and each projection trail the log, and
/// how each periodic job last ran.
async fn metrics(AxumState(state): AxumState<HealthState>) -> Response {
    let figures = async {
        let head = eventlog::head_position(&state.pool).await?;
        let published = eventlog::publisher_checkpoint(&state.pool, &state.names.stream).await?;
        let mut projected = Vec::new();
        for name in PROJECTIONS {
            projected.push((name, projections::checkpoint(&state.pool, name).await?));
        }
        let deliveries_due: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM bridge_messages WHERE state = 'pending' AND next_attempt_at <= now()",
        )
        .fetch_one(&state.pool)
        .await?;
        let jobs = workers::status::job_statuses(&state.pool).await?;
        Ok::<_, sqlx::Error>((head, published, projected, deliveries_due, jobs))
    };
    let Ok((head, published, projected, deliveries_due, jobs)) = figures.await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let mut body = String::new();
    let _ = writeln!(
        body,
        "# TYPE dropship_log_head_position gauge\ndropship_log_head_position {head}"
    );
    let _ = writeln!(
        body,
        "# TYPE dropship_publisher_lag gauge\ndropship_publisher_lag {}",
        head - published
    );
    let _ = writeln!(body, "# TYPE dropship_projection_lag gauge");
    for (name, position) in projected {
        let _ = writeln!(
            body,
            "dropship_projection_lag{{projection=\"{name}\"}} {}",
            head - position
        );
    }
    let _ = writeln!(
        body,
        "# TYPE dropship_bridge_deliveries_due gauge\ndropship_bridge_deliveries_due {deliveries_due}"
    );
    body.push_str(&workers::status::metrics(&jobs));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
