//! A storefront account: register (a new customer, or a guest of an earlier checkout
//! becoming one), login, refresh and logout.

use api_core::{
    ApiError, ApiJson, Data,
    auth::CustomerPrincipal,
    data,
    openapi::ErrorEnvelope,
    tokens::{TokenKind, TokenPair},
};
use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use chrono::Utc;
use domain::{
    Email,
    customer::{Customer, CustomerCommand, decide, evolve},
    merchant::Register,
};
use eventlog::{AppendError, AppendRequest, ExpectedVersion, NewEvent, UniqueKey};
use schemas::{
    Event, EventMetadata,
    api::accounts::{LoggedOut, LoginRequest, RefreshRequest, RegisterRequest},
    pii::ContactDetails,
};
use uuid::Uuid;

use super::{email_taken, load_customer, rule_broken, sessions};
use crate::{
    auth::{ClientAddress, parse_registration, passwords},
    checkout::{customer_email_scope, open_store},
    orders::{CUSTOMER_STREAM_PREFIX, customer_stream},
    state::CommandState,
    write::append_failed,
};

/// A registration that lost a race (a checkout or another registration for the same
/// email committed first) is decided again on what won.
const MAX_ATTEMPTS: usize = 3;

/// Open a customer account in this store and log it in. A guest who checked out with
/// this email before becomes the account's customer; their earlier guest orders stay
/// out of the account's history, since nothing proves who typed that email.
#[utoipa::path(
    post, path = "/api/v1/public/stores/{slug}/customers/register", tag = "customers",
    params(("slug" = String, Path)),
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered and logged in", body = Data<TokenPair>),
        (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "The email has an account in this store", body = ErrorEnvelope),
        (status = 413, body = ErrorEnvelope), (status = 415, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope),
        (status = 429, description = "Too many registrations from this address; see `Retry-After`", body = ErrorEnvelope),
    )
)]
pub(super) async fn register(
    State(state): State<CommandState>,
    Path(slug): Path<String>,
    ClientAddress(address): ClientAddress,
    body: ApiJson<RegisterRequest>,
) -> Result<(StatusCode, Json<Data<TokenPair>>), ApiError> {
    let (store_id, _) = open_store(&state, &slug).await?;
    let registration = parse_registration(&body.value)?;
    if let Some(retry_after) = state.attempt_limits.registration_blocked_for(address) {
        return Err(ApiError::RateLimited { retry_after });
    }
    let hash = passwords::hash(body.value.password.clone()).await?;
    for _ in 0..MAX_ATTEMPTS {
        let credential_id = Uuid::now_v7();
        let attempt = match customer_by_email(&state, store_id, &registration.email).await? {
            None => new_account(&state, store_id, &registration, credential_id, &hash).await,
            Some(customer_id) => {
                guest_account(&state, customer_id, &registration, credential_id, &hash).await
            }
        };
        match attempt {
            Ok(customer_id) => {
                let tokens = sessions::open(&state, customer_id, store_id).await?;
                return Ok((StatusCode::CREATED, data(tokens)));
            }
            Err(Lost::Race) => forget_credential(&state, credential_id).await,
            Err(Lost::Refused(error)) => {
                forget_credential(&state, credential_id).await;
                return Err(error);
            }
        }
    }
    Err(ApiError::Conflict {
        code: "contended",
        message: "too many concurrent changes; retry".into(),
    })
}

enum Lost {
    /// Another writer got there first: decide again.
    Race,
    Refused(ApiError),
}

impl From<ApiError> for Lost {
    fn from(error: ApiError) -> Self {
        Self::Refused(error)
    }
}

/// The store's customer with this email, if there is one.
async fn customer_by_email(
    state: &CommandState,
    store_id: Uuid,
    email: &Email,
) -> Result<Option<Uuid>, ApiError> {
    let owner: Option<String> =
        sqlx::query_scalar("SELECT stream_id FROM unique_keys WHERE scope = $1 AND value = $2")
            .bind(customer_email_scope(store_id))
            .bind(pii::email_digest(email.as_str()))
            .fetch_optional(state.pool())
            .await
            .map_err(ApiError::internal)?;
    Ok(owner
        .as_deref()
        .and_then(|stream| stream.strip_prefix(CUSTOMER_STREAM_PREFIX))
        .and_then(|id| Uuid::parse_str(id).ok()))
}

/// Stores the hash under `credential_id` before the event that names it is appended: if
/// the append then fails, what is left is a hash no account points to.
async fn store_credential(
    state: &CommandState,
    credential_id: Uuid,
    customer_id: Uuid,
    store_id: Uuid,
    hash: &str,
) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO customer_credentials (id, customer_id, store_id, password_hash) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(credential_id)
    .bind(customer_id)
    .bind(store_id)
    .bind(hash)
    .execute(state.pool())
    .await
    .map_err(ApiError::internal)?;
    Ok(())
}

async fn forget_credential(state: &CommandState, credential_id: Uuid) {
    let _ = sqlx::query("DELETE FROM customer_credentials WHERE id = $1")
        .bind(credential_id)
        .execute(state.pool())
        .await;
}

fn metadata(customer_id: Uuid) -> EventMetadata {
    EventMetadata {
        actor: Some(format!("customer:{customer_id}")),
        request_id: api_core::current_request_id(),
        ..EventMetadata::default()
    }
}

/// A customer of this store created with their account in one append.
async fn new_account(
    state: &CommandState,
    store_id: Uuid,
    registration: &Register,
    credential_id: Uuid,
    hash: &str,
) -> Result<Uuid, Lost> {
    let customer_id = Uuid::now_v7();
    let email_digest = pii::email_digest(registration.email.as_str());
    let contact = ContactDetails {
        email: registration.email.as_str().to_owned(),
        name: registration.name.as_ref().map(|n| n.as_str().to_owned()),
        shipping_address: None,
    };
    let contact = state
        .vault
        .seal(customer_id, store_id, &contact)
        .await
        .map_err(ApiError::internal)?;
    let create = CustomerCommand::Create {
        store_id,
        email_digest: email_digest.clone(),
        contact,
    };
    let events = decided(
        Customer::Unknown,
        &[create, CustomerCommand::OpenAccount { credential_id }],
    )?;
    store_credential(state, credential_id, customer_id, store_id, hash).await?;
    let request = AppendRequest::new(
        customer_stream(customer_id),
        ExpectedVersion::NoStream,
        events.into_iter().map(NewEvent::new).collect(),
    )
    .in_store(store_id)
    .with_metadata(metadata(customer_id))
    .reserving(UniqueKey::new(customer_email_scope(store_id), email_digest));
    match state.log.append(request).await {
        Ok(_) => Ok(customer_id),
        Err(AppendError::UniqueKeyTaken { .. }) => Err(Lost::Race),
        Err(other) => Err(Lost::Refused(append_failed(other))),
    }
}

/// A guest customer (of an earlier checkout) gains an account, and the name given.
async fn guest_account(
    state: &CommandState,
    customer_id: Uuid,
    registration: &Register,
    credential_id: Uuid,
    hash: &str,
) -> Result<Uuid, Lost> {
    let loaded = load_customer(state, customer_id).await?;
    let Customer::Existing(profile) = &loaded.state else {
        return Err(Lost::Race);
    };
    if profile.credential_id.is_some() {
        return Err(Lost::Refused(email_taken()));
    }
    let mut commands = vec![CustomerCommand::OpenAccount { credential_id }];
    if let Some(name) = &registration.name {
        let mut contact: ContactDetails = state
            .vault
            .open(&profile.contact)
            .await
            .map_err(ApiError::internal)?
            .unwrap_or_else(|| ContactDetails {
                email: registration.email.as_str().to_owned(),
                name: None,
                shipping_address: None,
            });
        contact.name = Some(name.as_str().to_owned());
        let contact = state
            .vault
            .seal(customer_id, profile.store_id, &contact)
            .await
            .map_err(ApiError::internal)?;
        commands.push(CustomerCommand::UpdateContact {
            contact,
            changed: vec!["name".into()],
        });
    }
    let events = decided(loaded.state.clone(), &commands)?;
    store_credential(state, credential_id, customer_id, profile.store_id, hash).await?;
    let request = AppendRequest::new(
        customer_stream(customer_id),
        ExpectedVersion::Exact(loaded.version),
        events.into_iter().map(NewEvent::new).collect(),
    )
    .in_store(profile.store_id)
    .with_metadata(metadata(customer_id));
    match state.log.append(request).await {
        Ok(_) => Ok(customer_id),
        Err(AppendError::VersionConflict { .. }) => Err(Lost::Race),
        Err(other) => Err(Lost::Refused(append_failed(other))),
    }
}

/// The events of `commands` decided one after another from `state`.
fn decided(mut state: Customer, commands: &[CustomerCommand]) -> Result<Vec<Event>, ApiError> {
    let mut all = Vec::new();
    for command in commands {
        let events = decide(&state, command).map_err(rule_broken)?;
        state = events.iter().fold(state, evolve);
        all.extend(events);
    }
    Ok(all)
}

/// Exchange email and password for this store's customer tokens.
#[utoipa::path(
    post, path = "/api/v1/public/stores/{slug}/customers/login", tag = "customers",
    params(("slug" = String, Path)),
    request_body = LoginRequest,
    responses(
        (status = 200, body = Data<TokenPair>),
        (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 401, description = "Wrong email or password (never says which)", body = ErrorEnvelope),
        (status = 415, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope),
        (status = 429, description = "Too many failures; see `Retry-After`", body = ErrorEnvelope),
    )
)]
pub(super) async fn login(
    State(state): State<CommandState>,
    Path(slug): Path<String>,
    ClientAddress(address): ClientAddress,
    body: ApiJson<LoginRequest>,
) -> Result<Json<Data<TokenPair>>, ApiError> {
    let (store_id, _) = open_store(&state, &slug).await?;
    let email = body.value.email.trim().to_lowercase();
    let attempt = state
        .attempt_limits
        .begin_login(&format!("{store_id}/{email}"), address)
        .map_err(|retry_after| ApiError::RateLimited { retry_after })?;
    let account = credentials_for(&state, store_id, &email).await?;
    let (customer_id, stored) = account.unzip();
    let matches = passwords::verify(body.value.password.clone(), stored).await?;
    let Some(customer_id) = customer_id.filter(|_| matches) else {
        return Err(ApiError::BadLogin);
    };
    attempt.succeeded();
    Ok(data(sessions::open(&state, customer_id, store_id).await?))
}

/// The account's customer and the hash its valid credential holds.
async fn credentials_for(
    state: &CommandState,
    store_id: Uuid,
    email: &str,
) -> Result<Option<(Uuid, String)>, ApiError> {
    let Ok(email) = Email::parse(email) else {
        return Ok(None);
    };
    let Some(customer_id) = customer_by_email(state, store_id, &email).await? else {
        return Ok(None);
    };
    let loaded = load_customer(state, customer_id).await?;
    let Customer::Existing(profile) = loaded.state else {
        return Ok(None);
    };
    let Some(credential_id) = profile.credential_id else {
        return Ok(None);
    };
    let hash: Option<String> = sqlx::query_scalar(
        "SELECT password_hash FROM customer_credentials WHERE id = $1 AND customer_id = $2",
    )
    .bind(credential_id)
    .bind(customer_id)
    .fetch_optional(state.pool())
    .await
    .map_err(ApiError::internal)?;
    Ok(hash.map(|hash| (customer_id, hash)))
}

/// Trade a customer's refresh token for a new pair. Each works once; presenting a used
/// one revokes its whole session.
#[utoipa::path(
    post, path = "/api/v1/public/stores/{slug}/customers/refresh", tag = "customers",
    params(("slug" = String, Path)),
    request_body = RefreshRequest,
    responses(
        (status = 200, body = Data<TokenPair>),
        (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 401, description = "Invalid, expired, revoked, reused or another store's", body = ErrorEnvelope),
        (status = 415, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope),
    )
)]
pub(super) async fn refresh(
    State(state): State<CommandState>,
    Path(slug): Path<String>,
    body: ApiJson<RefreshRequest>,
) -> Result<Json<Data<TokenPair>>, ApiError> {
    let (store_id, _) = open_store(&state, &slug).await?;
    let claims = state
        .authenticator
        .customer_keys()
        .verify(&body.value.refresh_token, TokenKind::Refresh)?;
    Ok(data(sessions::rotate(&state, &claims, store_id).await?))
}

/// End this customer session: its refresh token and its access tokens stop working.
#[utoipa::path(
    post, path = "/api/v1/public/stores/{slug}/customers/logout", tag = "customers",
    params(("slug" = String, Path)),
    responses(
        (status = 200, body = Data<LoggedOut>),
        (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
    ),
    security(("customer_bearer" = []))
)]
pub(super) async fn logout(
    State(state): State<CommandState>,
    Path(slug): Path<String>,
    principal: CustomerPrincipal,
) -> Result<Json<Data<LoggedOut>>, ApiError> {
    super::customer_store(&state, &slug, &principal).await?;
    let revoked_at = sessions::revoke(&state, principal.session_id, "logout").await?;
    Ok(data(LoggedOut {
        session_id: principal.session_id,
        revoked_at: revoked_at.unwrap_or_else(Utc::now),
    }))
}
