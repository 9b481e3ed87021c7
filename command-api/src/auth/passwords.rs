//! argon2id password hashing, off the async threads: a hash takes tens of milliseconds
//! of CPU by design. At most one hash per core runs at a time (the rest wait their
//! turn here), so a burst of logins cannot take the whole blocking pool, which DNS
//! lookups and file I/O share.

use std::sync::LazyLock;

use api_core::ApiError;
use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};
use tokio::sync::Semaphore;

pub const MIN_CHARS: usize = 8;
/// Hashing cost grows with length; nobody's password is longer than this.
pub const MAX_CHARS: usize = 1024;

static HASHING: LazyLock<Semaphore> = LazyLock::new(|| {
    Semaphore::new(std::thread::available_parallelism().map_or(2, std::num::NonZero::get))
});

async fn on_a_hashing_slot<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let _slot = HASHING.acquire().await.map_err(ApiError::internal)?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(ApiError::internal)?
}

pub async fn hash(password: String) -> Result<String, ApiError> {
    on_a_hashing_slot(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(ApiError::internal)
    })
    .await
}

/// Whether `password` matches `stored`. With no stored hash (unknown email) it still
/// spends the time of a verification, so timing does not tell which emails exist.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, ApiError> {
    on_a_hashing_slot(move || {
        let argon2 = Argon2::default();
        match stored {
            Some(stored) => {
                let parsed = PasswordHash::new(&stored).map_err(ApiError::internal)?;
                Ok(argon2.verify_password(password.as_bytes(), &parsed).is_ok())
            }
            None => {
                let _ = argon2.hash_password(password.as_bytes());
                Ok(false)
            }
        }
    })
    .await
}
