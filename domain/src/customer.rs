//! The Customer aggregate: a shopper of one store, unique in it by email. What the
//! customer is called and where they live is sealed personal data the rules never read.

use schemas::{Event, customer::CustomerCreated, pii::Sealed};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Customer {
    #[default]
    Unknown,
    Existing(Box<CustomerProfile>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerProfile {
    pub store_id: Uuid,
    pub email_digest: String,
    pub contact: Sealed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerCommand {
    Create {
        store_id: Uuid,
        /// The digest of the normalised email (the store-unique value it holds).
        email_digest: String,
        contact: Sealed,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CustomerError {
    #[error("the customer already exists")]
    AlreadyExists,
}

pub fn decide(state: &Customer, command: &CustomerCommand) -> Result<Vec<Event>, CustomerError> {
    match (state, command) {
        (Customer::Existing(_), CustomerCommand::Create { .. }) => {
            Err(CustomerError::AlreadyExists)
        }
        (
            Customer::Unknown,
            CustomerCommand::Create {
                store_id,
                email_digest,
                contact,
            },
        ) => Ok(vec![Event::CustomerCreated(CustomerCreated {
            store_id: *store_id,
            email_digest: email_digest.clone(),
            contact: contact.clone(),
        })]),
    }
}

pub fn evolve(state: Customer, event: &Event) -> Customer {
    match (state, event) {
        (Customer::Unknown, Event::CustomerCreated(created)) => {
            Customer::Existing(Box::new(CustomerProfile {
                store_id: created.store_id,
                email_digest: created.email_digest.clone(),
                contact: created.contact.clone(),
            }))
        }
        (Customer::Existing(mut profile), Event::CustomerUpdated(updated)) => {
            if let Some(digest) = &updated.email_digest {
                profile.email_digest.clone_from(digest);
            }
            profile.contact = updated.contact.clone();
            Customer::Existing(profile)
        }
        (state, _) => state,
    }
}

#[cfg(test)]
mod tests {
    use schemas::customer::CustomerUpdated;

    use super::*;

    fn sealed(byte: u8) -> Sealed {
        Sealed {
            key_id: Uuid::from_u128(1),
            nonce: vec![byte; 24],
            ciphertext: vec![byte],
        }
    }

    fn create() -> CustomerCommand {
        CustomerCommand::Create {
            store_id: Uuid::from_u128(2),
            email_digest: "d1".into(),
            contact: sealed(1),
        }
    }

    #[test]
    fn a_customer_is_created_once() {
        let events = decide(&Customer::Unknown, &create()).expect("created");
        let state = events.iter().fold(Customer::Unknown, evolve);
        assert!(matches!(&state, Customer::Existing(p) if p.email_digest == "d1"));
        assert_eq!(decide(&state, &create()), Err(CustomerError::AlreadyExists));
    }

    #[test]
    fn an_update_replaces_the_contact_and_maybe_the_email() {
        let created = decide(&Customer::Unknown, &create())
            .expect("created")
            .iter()
            .fold(Customer::Unknown, evolve);
        let updated = evolve(
            created,
            &Event::CustomerUpdated(CustomerUpdated {
                email_digest: Some("d2".into()),
                contact: sealed(2),
                changed: vec!["email".into()],
            }),
        );
        assert!(
            matches!(&updated, Customer::Existing(p) if p.email_digest == "d2" && p.contact == sealed(2))
        );
    }
}
