//! Merchant accounts: register, login, refresh (rotating), logout and `me`.

mod client_address;
mod limits;
pub(crate) mod passwords;
mod sessions;

use api_core::{
    ApiError, ApiJson, Data, FieldError,
    auth::{Reader, SessionPrincipal},
    data,
    openapi::ErrorEnvelope,
    tokens::{TokenKind, TokenPair},
};
use axum::{Json, extract::State, http::StatusCode};
use chrono::Utc;
use domain::{
    DisplayName, Email,
    merchant::{Merchant, Register, decide, evolve},
};
use eventlog::{
    AppendError, AppendOutcome, AppendRequest, ExpectedVersion, Fold, NewEvent, UniqueKey,
};
use schemas::{
    Event, EventMetadata,
    api::accounts::{LoggedOut, LoginRequest, MerchantView, RefreshRequest, RegisterRequest},
};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub(crate) use self::client_address::ClientAddress;
pub use self::{client_address::TrustedProxies, limits::AttemptLimits};
use crate::{fields::Fields, state::CommandState};

const EMAIL_SCOPE: &str = "merchant.email";

pub fn router() -> OpenApiRouter<CommandState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
}

struct MerchantFold;

impl Fold for MerchantFold {
    type State = Merchant;
    const STATE_VERSION: u16 = 1;

    fn apply(state: Merchant, event: &Event) -> Merchant {
        evolve(state, event)
    }
}

/// A merchant's stream is this plus their id; the email reservation names it.
const STREAM_PREFIX: &str = "merchant-";

fn stream_id(merchant_id: Uuid) -> String {
    format!("{STREAM_PREFIX}{merchant_id}")
}

pub(crate) fn parse_registration(request: &RegisterRequest) -> Result<Register, ApiError> {
    let mut fields = Fields::default();
    let email = fields.check("email", Email::parse(&request.email));
    let password_chars = request.password.chars().count();
    if password_chars < passwords::MIN_CHARS {
        fields.push(FieldError::new(
            "password",
            "too_short",
            format!("must be at least {} characters", passwords::MIN_CHARS),
        ));
    } else if password_chars > passwords::MAX_CHARS {
        fields.push(FieldError::new(
            "password",
            "too_long",
            format!("must be at most {} characters", passwords::MAX_CHARS),
        ));
    }
    let name = match request
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        None => Some(None),
        Some(raw) => fields.check("name", DisplayName::parse(raw)).map(Some),
    };
    fields.finish(|| {
        Some(Register {
            email: email?,
            name: name?,
        })
    })
}

/// Open a merchant account and log it in.
#[utoipa::path(
    post, path = "/api/v1/auth/register", tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered and logged in", body = Data<TokenPair>),
        (status = 400, body = ErrorEnvelope), (status = 409, description = "The email has an account", body = ErrorEnvelope),
        (status = 413, body = ErrorEnvelope), (status = 415, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope),
        (status = 429, description = "Too many registrations from this address; see `Retry-After`", body = ErrorEnvelope),
    )
)]
async fn register(
    State(state): State<CommandState>,
    ClientAddress(address): ClientAddress,
    body: ApiJson<RegisterRequest>,
) -> Result<(StatusCode, Json<Data<TokenPair>>), ApiError> {
    let registration = parse_registration(&body.value)?;
    if let Some(retry_after) = state.attempt_limits.registration_blocked_for(address) {
        return Err(ApiError::RateLimited { retry_after });
    }
    let merchant_id = Uuid::now_v7();
    let events = decide(&Merchant::Unregistered, &registration).map_err(ApiError::internal)?;
    // The credentials row goes first: if the append then fails, what is left is a hash
    // that no email leads to.
    let hash = passwords::hash(body.value.password.clone()).await?;
    sqlx::query("INSERT INTO merchant_credentials (merchant_id, password_hash) VALUES ($1, $2)")
        .bind(merchant_id)
        .bind(&hash)
        .execute(state.pool())
        .await
        .map_err(ApiError::internal)?;
    let request = AppendRequest::new(
        stream_id(merchant_id),
        ExpectedVersion::NoStream,
        events.into_iter().map(NewEvent::new).collect(),
    )
    .with_metadata(EventMetadata {
        actor: Some(format!("merchant:{merchant_id}")),
        request_id: api_core::current_request_id(),
        ..EventMetadata::default()
    })
    .reserving(UniqueKey::new(EMAIL_SCOPE, registration.email.as_str()));
    match state.log.append(request).await {
        Ok(AppendOutcome::Appended(_)) => {}
        Ok(AppendOutcome::Replayed(_)) => return Err(ApiError::internal("replay without a key")),
        Err(error) => {
            let _ = sqlx::query("DELETE FROM merchant_credentials WHERE merchant_id = $1")
                .bind(merchant_id)
                .execute(state.pool())
                .await;
            return Err(match error {
                AppendError::UniqueKeyTaken { .. } => ApiError::Conflict {
                    code: "email_taken",
                    message: "an account with this email exists; log in instead".into(),
                },
                other => crate::write::append_failed(other),
            });
        }
    }
    let tokens = sessions::open(&state, merchant_id).await?;
    Ok((StatusCode::CREATED, data(tokens)))
}

/// Exchange email and password for tokens.
#[utoipa::path(
    post, path = "/api/v1/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, body = Data<TokenPair>),
        (status = 400, body = ErrorEnvelope),
        (status = 401, description = "Wrong email or password (never says which)", body = ErrorEnvelope),
        (status = 415, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope),
        (status = 429, description = "Too many failures; see `Retry-After`", body = ErrorEnvelope),
    )
)]
async fn login(
    State(state): State<CommandState>,
    ClientAddress(address): ClientAddress,
    body: ApiJson<LoginRequest>,
) -> Result<Json<Data<TokenPair>>, ApiError> {
    let email = body.value.email.trim().to_lowercase();
    let attempt = state
        .attempt_limits
        .begin_login(&email, address)
        .map_err(|retry_after| ApiError::RateLimited { retry_after })?;
    let account = credentials_for(&state, &email).await?;
    let (merchant_id, stored) = account.unzip();
    let matches = passwords::verify(body.value.password.clone(), stored).await?;
    let Some(merchant_id) = merchant_id.filter(|_| matches) else {
        return Err(ApiError::BadLogin);
    };
    attempt.succeeded();
    Ok(data(sessions::open(&state, merchant_id).await?))
}

async fn credentials_for(
    state: &CommandState,
    email: &str,
) -> Result<Option<(Uuid, String)>, ApiError> {
    let Ok(email) = Email::parse(email) else {
        return Ok(None);
    };
    let stream: Option<String> =
        sqlx::query_scalar("SELECT stream_id FROM unique_keys WHERE scope = $1 AND value = $2")
            .bind(EMAIL_SCOPE)
            .bind(email.as_str())
            .fetch_optional(state.pool())
            .await
            .map_err(ApiError::internal)?;
    let Some(merchant_id) = stream
        .as_deref()
        .and_then(|s| s.strip_prefix(STREAM_PREFIX))
        .and_then(|id| Uuid::parse_str(id).ok())
    else {
        return Ok(None);
    };
    let hash: Option<String> =
        sqlx::query_scalar("SELECT password_hash FROM merchant_credentials WHERE merchant_id = $1")
            .bind(merchant_id)
            .fetch_optional(state.pool())
            .await
            .map_err(ApiError::internal)?;
    Ok(hash.map(|hash| (merchant_id, hash)))
}

/// Trade a refresh token for a new pair. Each refresh token works once; presenting a
/// used one revokes its whole session.
#[utoipa::path(
    post, path = "/api/v1/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, body = Data<TokenPair>),
        (status = 400, body = ErrorEnvelope),
        (status = 401, description = "Invalid, expired, revoked or reused", body = ErrorEnvelope),
        (status = 415, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope),
    )
)]
async fn refresh(
    State(state): State<CommandState>,
    body: ApiJson<RefreshRequest>,
) -> Result<Json<Data<TokenPair>>, ApiError> {
    let claims = state
        .authenticator
        .keys()
        .verify(&body.value.refresh_token, TokenKind::Refresh)?;
    Ok(data(sessions::rotate(&state, &claims).await?))
}

/// End this session: its refresh token stops working, and so do its access tokens.
#[utoipa::path(
    post, path = "/api/v1/auth/logout", tag = "auth",
    responses(
        (status = 200, body = Data<LoggedOut>),
        (status = 401, body = ErrorEnvelope),
        (status = 403, description = "API keys have no session to end", body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
async fn logout(
    State(state): State<CommandState>,
    session: SessionPrincipal,
) -> Result<Json<Data<LoggedOut>>, ApiError> {
    let revoked_at = sessions::revoke(&state, session.session_id, "logout").await?;
    Ok(data(LoggedOut {
        session_id: session.session_id,
        revoked_at: revoked_at.unwrap_or_else(Utc::now),
    }))
}

/// The calling merchant.
#[utoipa::path(
    get, path = "/api/v1/auth/me", tag = "auth",
    responses(
        (status = 200, body = Data<MerchantView>),
        (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
async fn me(
    State(state): State<CommandState>,
    Reader(principal): Reader,
) -> Result<Json<Data<MerchantView>>, ApiError> {
    let loaded = eventlog::load::<MerchantFold>(
        state.pool(),
        &stream_id(principal.merchant_id),
        state.snapshot_every(),
    )
    .await
    .map_err(ApiError::internal)?;
    match loaded.state {
        Merchant::Registered { email, name } => Ok(data(MerchantView {
            id: principal.merchant_id,
            email,
            name,
        })),
        Merchant::Unregistered => Err(ApiError::Unauthenticated),
    }
}
