//! Personal data sealed with a key per data subject (crypto-shredding, DESIGN §2). Events
//! carry [`Sealed`] JSON; the keys live in `pii_keys`, outside the log. Erasing a subject
//! deletes its key, after which everything sealed for it reads as erased, in every event
//! and every replay, while the log itself stays untouched and its hash chain intact.

use std::time::Duration;

use chacha20poly1305::{
    Key, KeyInit, XChaCha20Poly1305, XNonce,
    aead::{Aead, Generate},
};
use moka::future::Cache;
use schemas::pii::Sealed;
use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use thiserror::Error;
use uuid::Uuid;

/// What a store's customers are unique by and found by: a digest of the normalised
/// email, so the address itself is kept nowhere that outlives the customer's erasure.
pub fn email_digest(normalised_email: &str) -> String {
    hex::encode(Sha256::digest(normalised_email.as_bytes()))
}

/// How long a process may keep using a key after another process erased it.
const KEY_CACHE_TTL: Duration = Duration::from_secs(60);

#[derive(Debug, Error)]
pub enum VaultError {
    #[error("key store: {0}")]
    Database(#[from] sqlx::Error),
    #[error("sealed data that does not open with its key")]
    Tampered,
    #[error("sealed data that is not the expected JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Seals and opens personal data. Cheap to clone.
#[derive(Clone)]
pub struct Vault {
    pool: PgPool,
    keys: Cache<Uuid, Key>,
}

impl Vault {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            keys: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(KEY_CACHE_TTL)
                .build(),
        }
    }

    /// Seals `value` as JSON under the subject's key, creating the key on first use. The
    /// key is committed before the caller appends anything that carries the result.
    pub async fn seal<T: Serialize>(
        &self,
        subject: Uuid,
        store_id: Uuid,
        value: &T,
    ) -> Result<Sealed, VaultError> {
        let key = match self.key(subject).await? {
            Some(key) => key,
            None => self.create_key(subject, store_id).await?,
        };
        let plaintext = serde_json::to_vec(value)?;
        let nonce = XNonce::generate();
        let ciphertext = XChaCha20Poly1305::new(&key)
            .encrypt(&nonce, plaintext.as_slice())
            .map_err(|_| VaultError::Tampered)?;
        Ok(Sealed {
            key_id: subject,
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    /// The sealed value, or `None` when its subject was erased.
    pub async fn open<T: DeserializeOwned>(
        &self,
        sealed: &Sealed,
    ) -> Result<Option<T>, VaultError> {
        let Some(key) = self.key(sealed.key_id).await? else {
            return Ok(None);
        };
        let nonce = XNonce::try_from(sealed.nonce.as_slice()).map_err(|_| VaultError::Tampered)?;
        let plaintext = XChaCha20Poly1305::new(&key)
            .decrypt(&nonce, sealed.ciphertext.as_slice())
            .map_err(|_| VaultError::Tampered)?;
        Ok(Some(serde_json::from_slice(&plaintext)?))
    }

    /// Destroys the subject's key: what was sealed with it can never be opened again.
    /// Whether there was a key to destroy.
    pub async fn erase(&self, subject: Uuid) -> Result<bool, VaultError> {
        let deleted = sqlx::query("DELETE FROM pii_keys WHERE key_id = $1")
            .bind(subject)
            .execute(&self.pool)
            .await?
            .rows_affected();
        self.keys.invalidate(&subject).await;
        Ok(deleted > 0)
    }

    async fn key(&self, subject: Uuid) -> Result<Option<Key>, VaultError> {
        if let Some(key) = self.keys.get(&subject).await {
            return Ok(Some(key));
        }
        let stored: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT key FROM pii_keys WHERE key_id = $1")
                .bind(subject)
                .fetch_optional(&self.pool)
                .await?;
        let Some(bytes) = stored else {
            return Ok(None);
        };
        let key = Key::try_from(bytes.as_slice()).map_err(|_| VaultError::Tampered)?;
        self.keys.insert(subject, key).await;
        Ok(Some(key))
    }

    /// Two writers creating one subject's key at once agree on the first one stored.
    ///
    /// The insert commits without waiting for the WAL flush: a key only matters once an
    /// event sealed with it is appended, and that append's synchronous commit flushes
    /// the WAL past this one. A crash in between loses a key nothing used. A checkout by
    /// a new shopper so waits for one flush (its append's), not two.
    async fn create_key(&self, subject: Uuid, store_id: Uuid) -> Result<Key, VaultError> {
        let fresh = Key::generate();
        sqlx::query(
            "WITH relaxed AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true)) \
             INSERT INTO pii_keys (key_id, store_id, key) SELECT $1, $2, $3 FROM relaxed \
             ON CONFLICT (key_id) DO NOTHING",
        )
        .bind(subject)
        .bind(store_id)
        .bind(fresh.as_slice())
        .execute(&self.pool)
        .await?;
        self.key(subject).await?.ok_or(VaultError::Tampered)
    }
}
