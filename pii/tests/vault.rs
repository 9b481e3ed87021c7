#![allow(clippy::unwrap_used)]

use futures::future::join_all;
use pii::{Vault, VaultError};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Contact {
    email: String,
    name: String,
}

fn ada() -> Contact {
    Contact {
        email: "ada@example.com".into(),
        name: "Ada Lovelace".into(),
    }
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn sealed_data_opens_with_its_subjects_key_and_shows_no_plaintext(pool: PgPool) {
    let vault = Vault::new(pool.clone());
    let (subject, store) = (Uuid::now_v7(), Uuid::now_v7());
    let first = vault.seal(subject, store, &ada()).await.unwrap();
    let second = vault.seal(subject, store, &ada()).await.unwrap();
    assert_eq!(first.key_id, subject);
    assert_ne!(first.nonce, second.nonce, "a fresh nonce per seal");
    let ciphertext = String::from_utf8_lossy(&first.ciphertext);
    assert!(!ciphertext.contains("ada@example.com"), "{ciphertext}");
    // Another process, with nothing cached, opens it too.
    let elsewhere = Vault::new(pool);
    assert_eq!(
        elsewhere.open::<Contact>(&first).await.unwrap(),
        Some(ada())
    );
    assert_eq!(vault.open::<Contact>(&second).await.unwrap(), Some(ada()));
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn an_erased_subject_reads_as_erased_everywhere(pool: PgPool) {
    let vault = Vault::new(pool.clone());
    let (subject, other) = (Uuid::now_v7(), Uuid::now_v7());
    let store = Uuid::now_v7();
    let sealed = vault.seal(subject, store, &ada()).await.unwrap();
    let kept = vault.seal(other, store, &ada()).await.unwrap();
    assert!(vault.erase(subject).await.unwrap());
    assert!(
        !vault.erase(subject).await.unwrap(),
        "nothing left to erase"
    );
    assert_eq!(vault.open::<Contact>(&sealed).await.unwrap(), None);
    assert_eq!(
        Vault::new(pool).open::<Contact>(&sealed).await.unwrap(),
        None
    );
    assert_eq!(vault.open::<Contact>(&kept).await.unwrap(), Some(ada()));
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn altered_ciphertext_or_nonce_does_not_open(pool: PgPool) {
    let vault = Vault::new(pool);
    let sealed = vault
        .seal(Uuid::now_v7(), Uuid::now_v7(), &ada())
        .await
        .unwrap();
    let mut flipped = sealed.clone();
    flipped.ciphertext[0] ^= 1;
    assert!(matches!(
        vault.open::<Contact>(&flipped).await,
        Err(VaultError::Tampered)
    ));
    let mut short_nonce = sealed;
    short_nonce.nonce.pop();
    assert!(matches!(
        vault.open::<Contact>(&short_nonce).await,
        Err(VaultError::Tampered)
    ));
}

#[sqlx::test(migrator = "eventlog::MIGRATOR")]
async fn writers_sealing_for_a_new_subject_at_once_share_one_key(pool: PgPool) {
    let subject = Uuid::now_v7();
    let store = Uuid::now_v7();
    let vaults: Vec<Vault> = (0..8).map(|_| Vault::new(pool.clone())).collect();
    let contact = ada();
    let sealed = join_all(
        vaults
            .iter()
            .map(|vault| vault.seal(subject, store, &contact)),
    )
    .await;
    let reader = Vault::new(pool);
    for sealed in sealed {
        assert_eq!(
            reader.open::<Contact>(&sealed.unwrap()).await.unwrap(),
            Some(ada())
        );
    }
}
