//! The HTTP API: the command and query routers of the roles this process runs, one
//! envelope for every failure, and the OpenAPI document of them all.

use std::sync::{Arc, LazyLock};

use api_core::{BODY_LIMIT, api_fallback, assign_request_id, guard_request, normalise_rejections};
use axum::{Extension, Json, Router, extract::DefaultBodyLimit, middleware};
use command_api::CommandState;
use query_api::QueryState;
use tower_http::trace::TraceLayer;
use utoipa::{
    Modify,
    openapi::{InfoBuilder, OpenApi},
};
use utoipa_axum::{router::OpenApiRouter, routes};

/// The whole API's document, whichever roles this process serves: clients and
/// gateways see one API.
pub static DOCUMENT: LazyLock<Arc<OpenApi>> = LazyLock::new(|| {
    let mut document = OpenApiRouter::<()>::new()
        .routes(routes!(openapi_json))
        .into_openapi();
    document.merge(command_api::routes().into_openapi());
    document.merge(query_api::routes().into_openapi());
    document.info = InfoBuilder::new()
        .title("Dropship API")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Merchants' command and query API. Every response is `{\"data\", \"error\"}`.",
        ))
        .build();
    api_core::openapi::SecuritySchemes.modify(&mut document);
    Arc::new(document)
});

/// The routes of the served roles, and the document at `/api/v1/openapi.json`.
pub fn router(command: Option<CommandState>, query: Option<QueryState>) -> Router {
    let mut routes = OpenApiRouter::new().routes(routes!(openapi_json));
    if let Some(command) = command {
        routes = routes.merge(command_api::routes().with_state(command));
    }
    if let Some(query) = query {
        routes = routes.merge(query_api::routes().with_state(query));
    }
    let (routes, _) = routes.split_for_parts();
    routes
        .fallback(api_fallback)
        .layer(Extension(DOCUMENT.clone()))
        .layer(middleware::from_fn(normalise_rejections))
        .layer(middleware::from_fn(guard_request))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        // Outside the guard, so that even a refused request is answered with its id.
        .layer(middleware::from_fn(assign_request_id))
        // A span per request (method, path, status, latency) at `debug`, so
        // `RUST_LOG=tower_http=debug` shows the traffic without code changes.
        .layer(TraceLayer::new_for_http())
}

/// This API's OpenAPI 3 document (itself, not wrapped in the envelope).
#[utoipa::path(
    get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI document", body = Object))
)]
async fn openapi_json(Extension(document): Extension<Arc<OpenApi>>) -> Json<OpenApi> {
    Json(OpenApi::clone(&document))
}
