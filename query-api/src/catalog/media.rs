//! Uploaded images, served with headers that let browsers and CDNs keep them forever:
//! a URL names its bytes (by digest), so it never changes meaning.

use api_core::{ApiError, media::MediaName, openapi::PublicErrors, resource_id};
use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};

use crate::state::QueryState;

/// An uploaded image.
#[utoipa::path(
    get, path = "/api/v1/public/media/{store_id}/{file}", tag = "storefront",
    params(("store_id" = Uuid, Path), ("file" = String, Path, description = "`<sha256>.<jpg|png|webp|gif>`")),
    responses(
        (status = 200, description = "The image", content_type = "image/*", body = Vec<u8>),
        (status = 304, description = "Not modified (If-None-Match)"),
        PublicErrors,
    )
)]
pub(super) async fn get_media(
    State(state): State<QueryState>,
    Path((store_id, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let store_id = resource_id(&store_id)?;
    let name = MediaName::parse(&file).ok_or(ApiError::NotFound)?;
    let etag = format!("\"{}\"", name.digest());
    let cache = (header::CACHE_CONTROL, "public, max-age=31536000, immutable");
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|value| value.as_bytes() == etag.as_bytes())
    {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [cache, (header::ETAG, etag.as_str())],
        )
            .into_response());
    }
    let bytes = state
        .media
        .get(store_id, &name)
        .await
        .map_err(ApiError::internal)?
        .ok_or(ApiError::NotFound)?;
    Ok((
        [
            (header::CONTENT_TYPE, name.kind.content_type()),
            cache,
            (header::ETAG, etag.as_str()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CONTENT_SECURITY_POLICY, "default-src 'none'"),
        ],
        bytes,
    )
        .into_response())
}
