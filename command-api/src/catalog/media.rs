//! Image uploads: multipart in, the bytes checked for what they really are, stored under
//! their digest, answered with the URL the query API serves them at.

use api_core::{
    ApiError,
    auth::Writer,
    media::{ImageKind, MAX_MEDIA_BYTES, MediaName},
    openapi::WriteErrors,
    resource_id,
};
use axum::{
    Json,
    extract::{
        Multipart, Path, State,
        multipart::{MultipartError, MultipartRejection},
    },
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use bytes::BytesMut;
use schemas::api::products::MediaView;

use crate::{aggregate::owned_store, state::CommandState};

/// The multipart body may carry this much beyond the file itself (boundaries, headers).
pub const MULTIPART_OVERHEAD: usize = 64 * 1024;
const ACCEPTED: &str = "image/jpeg, image/png, image/webp or image/gif";

/// A multipart upload: the image in the field named `file`.
#[derive(utoipa::ToSchema)]
#[allow(
    dead_code,
    reason = "describes the request body for the OpenAPI document"
)]
pub struct MediaUpload {
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

fn too_large() -> ApiError {
    ApiError::PayloadTooLarge {
        limit: MAX_MEDIA_BYTES,
    }
}

fn unreadable(error: &MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large()
    } else {
        ApiError::Malformed(error.body_text())
    }
}

/// Upload an image (JPEG, PNG, WebP or GIF, judged by its bytes; at most 10 MB) as the
/// multipart field `file`. The answer's `url` can go into a product's `images`.
#[utoipa::path(
    post, path = "/api/v1/stores/{store_id}/media", tag = "media",
    request_body(content = MediaUpload, content_type = "multipart/form-data"),
    params(("store_id" = Uuid, Path)),
    responses((status = 201, description = "Stored", body = api_core::Data<MediaView>), WriteErrors),
    security(("bearer" = []), ("api_key" = []))
)]
pub(super) async fn upload_media(
    State(state): State<CommandState>,
    Path(store_id): Path<String>,
    Writer(principal): Writer,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let store_id = resource_id(&store_id)?;
    owned_store(&state, &principal, store_id).await?;
    let mut multipart = multipart.map_err(|_| ApiError::UnsupportedMediaType {
        expected: "multipart/form-data",
    })?;
    let mut bytes = BytesMut::new();
    let mut found = false;
    while let Some(mut field) = multipart.next_field().await.map_err(|e| unreadable(&e))? {
        if field.name() != Some("file") {
            continue;
        }
        found = true;
        while let Some(chunk) = field.chunk().await.map_err(|e| unreadable(&e))? {
            if bytes.len() + chunk.len() > MAX_MEDIA_BYTES {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        break;
    }
    if !found {
        return Err(ApiError::Validation(vec![api_core::FieldError::new(
            "file",
            "required",
            "send the image as the multipart field `file`",
        )]));
    }
    let bytes = bytes.freeze();
    let kind =
        ImageKind::sniff(&bytes).ok_or(ApiError::UnsupportedMediaType { expected: ACCEPTED })?;
    let name = MediaName::of(&bytes, kind);
    let size = bytes.len() as u64;
    state
        .media
        .put(store_id, &name, bytes)
        .await
        .map_err(ApiError::internal)?;
    let url = name.url(store_id);
    let view = MediaView {
        url: url.clone(),
        content_type: kind.content_type().to_owned(),
        size,
    };
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, url)],
        Json(api_core::Data {
            data: view,
            error: None,
        }),
    )
        .into_response())
}
