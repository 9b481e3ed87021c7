//! The Merchant aggregate: an account that owns stores. Its credentials live outside
//! the log (see `schemas::merchant`), so the aggregate only records that it exists.

use schemas::{Event, merchant::MerchantRegistered};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{DisplayName, Email};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Merchant {
    #[default]
    Unregistered,
    Registered {
        email: String,
        name: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Register {
    pub email: Email,
    pub name: Option<DisplayName>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum MerchantError {
    #[error("the merchant is already registered")]
    AlreadyRegistered,
}

pub fn decide(state: &Merchant, command: &Register) -> Result<Vec<Event>, MerchantError> {
    match state {
        Merchant::Registered { .. } => Err(MerchantError::AlreadyRegistered),
        Merchant::Unregistered => Ok(vec![Event::MerchantRegistered(MerchantRegistered {
            email: command.email.as_str().to_owned(),
            name: command.name.as_ref().map(|n| n.as_str().to_owned()),
        })]),
    }
}

pub fn evolve(state: Merchant, event: &Event) -> Merchant {
    match event {
        Event::MerchantRegistered(registered) => Merchant::Registered {
            email: registered.email.clone(),
            name: registered.name.clone(),
        },
        _ => state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register() -> Register {
        Register {
            email: Email::parse("ada@example.com").expect("valid"),
            name: None,
        }
    }

    #[test]
    fn given_nothing_when_registering_then_the_merchant_is_registered() {
        let events = decide(&Merchant::Unregistered, &register()).expect("registers");
        assert_eq!(
            events,
            vec![Event::MerchantRegistered(MerchantRegistered {
                email: "ada@example.com".into(),
                name: None
            })]
        );
    }

    #[test]
    fn given_a_registration_when_registering_again_then_it_is_refused() {
        let events = decide(&Merchant::Unregistered, &register()).expect("registers");
        let state = events.iter().fold(Merchant::default(), evolve);
        assert_eq!(
            decide(&state, &register()),
            Err(MerchantError::AlreadyRegistered)
        );
    }
}
