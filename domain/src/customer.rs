//! The Customer aggregate: a shopper of one store, unique in it by email, with an
//! optional storefront account, saved addresses and a wishlist. What the customer is
//! called and where they live is sealed personal data the rules never read.

use schemas::{
    Event,
    customer::{
        CustomerAccountOpened, CustomerAddressAdded, CustomerAddressRemoved,
        CustomerAddressUpdated, CustomerCreated, CustomerDefaultAddressSet, CustomerUpdated,
        CustomerWishlistAdded, CustomerWishlistRemoved,
    },
    pii::Sealed,
};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

/// Saved addresses per customer: enough for home, work and family, and a bound on what
/// one shopper can make every load of their stream carry.
pub const MAX_ADDRESSES: usize = 20;
/// Products on one wishlist.
pub const MAX_WISHLIST: usize = 200;

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
    /// The credential the storefront account logs in with; none for a guest.
    pub credential_id: Option<Uuid>,
    /// In the order they were added.
    pub addresses: Vec<SavedAddress>,
    /// Set exactly when there are addresses, and one of theirs.
    pub default_address: Option<Uuid>,
    /// In the order they were added, each once.
    pub wishlist: Vec<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedAddress {
    pub id: Uuid,
    pub sealed: Sealed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerCommand {
    Create {
        store_id: Uuid,
        /// The digest of the normalised email (the store-unique value it holds).
        email_digest: String,
        contact: Sealed,
    },
    OpenAccount {
        credential_id: Uuid,
    },
    /// New contact details (the email stays: it is what the customer is unique by).
    UpdateContact {
        contact: Sealed,
        changed: Vec<String>,
    },
    AddAddress {
        address_id: Uuid,
        address: Sealed,
        make_default: bool,
    },
    UpdateAddress {
        address_id: Uuid,
        address: Sealed,
        make_default: bool,
    },
    RemoveAddress {
        address_id: Uuid,
    },
    SetDefaultAddress {
        address_id: Uuid,
    },
    AddToWishlist {
        product_id: Uuid,
    },
    RemoveFromWishlist {
        product_id: Uuid,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CustomerError {
    #[error("the customer already exists")]
    AlreadyExists,
    #[error("no such customer")]
    Unknown,
    #[error("the customer already has an account")]
    AccountExists,
    #[error("no such address")]
    UnknownAddress,
    #[error("an address with this id is saved already")]
    AddressExists,
    #[error("at most {MAX_ADDRESSES} addresses can be saved")]
    TooManyAddresses,
    #[error("at most {MAX_WISHLIST} products fit on a wishlist")]
    WishlistFull,
}

pub fn decide(state: &Customer, command: &CustomerCommand) -> Result<Vec<Event>, CustomerError> {
    let profile = match (state, command) {
        (Customer::Existing(_), CustomerCommand::Create { .. }) => {
            return Err(CustomerError::AlreadyExists);
        }
        (
            Customer::Unknown,
            CustomerCommand::Create {
                store_id,
                email_digest,
                contact,
            },
        ) => {
            return Ok(vec![Event::CustomerCreated(CustomerCreated {
                store_id: *store_id,
                email_digest: email_digest.clone(),
                contact: contact.clone(),
            })]);
        }
        (Customer::Unknown, _) => return Err(CustomerError::Unknown),
        (Customer::Existing(profile), _) => profile,
    };
    decide_existing(profile, command)
}

fn decide_existing(
    profile: &CustomerProfile,
    command: &CustomerCommand,
) -> Result<Vec<Event>, CustomerError> {
    let has_address = |id: &Uuid| profile.addresses.iter().any(|a| a.id == *id);
    let event = match command {
        CustomerCommand::Create { .. } => return Err(CustomerError::AlreadyExists),
        CustomerCommand::OpenAccount { .. } if profile.credential_id.is_some() => {
            return Err(CustomerError::AccountExists);
        }
        CustomerCommand::OpenAccount { credential_id } => {
            Event::CustomerAccountOpened(CustomerAccountOpened {
                credential_id: *credential_id,
            })
        }
        CustomerCommand::UpdateContact { contact, changed } => {
            Event::CustomerUpdated(CustomerUpdated {
                email_digest: None,
                contact: contact.clone(),
                changed: changed.clone(),
            })
        }
        CustomerCommand::AddAddress { address_id, .. } if has_address(address_id) => {
            return Err(CustomerError::AddressExists);
        }
        CustomerCommand::AddAddress { .. } if profile.addresses.len() >= MAX_ADDRESSES => {
            return Err(CustomerError::TooManyAddresses);
        }
        CustomerCommand::AddAddress {
            address_id,
            address,
            make_default,
        } => Event::CustomerAddressAdded(CustomerAddressAdded {
            address_id: *address_id,
            address: address.clone(),
            default: *make_default || profile.addresses.is_empty(),
        }),
        CustomerCommand::UpdateAddress { address_id, .. }
        | CustomerCommand::RemoveAddress { address_id }
        | CustomerCommand::SetDefaultAddress { address_id }
            if !has_address(address_id) =>
        {
            return Err(CustomerError::UnknownAddress);
        }
        CustomerCommand::UpdateAddress {
            address_id,
            address,
            make_default,
        } => {
            let mut events = vec![Event::CustomerAddressUpdated(CustomerAddressUpdated {
                address_id: *address_id,
                address: address.clone(),
            })];
            if *make_default && profile.default_address != Some(*address_id) {
                events.push(Event::CustomerDefaultAddressSet(
                    CustomerDefaultAddressSet {
                        address_id: *address_id,
                    },
                ));
            }
            return Ok(events);
        }
        CustomerCommand::RemoveAddress { address_id } => {
            let new_default = if profile.default_address == Some(*address_id) {
                profile
                    .addresses
                    .iter()
                    .map(|a| a.id)
                    .find(|id| id != address_id)
            } else {
                None
            };
            Event::CustomerAddressRemoved(CustomerAddressRemoved {
                address_id: *address_id,
                new_default,
            })
        }
        CustomerCommand::SetDefaultAddress { address_id } => {
            if profile.default_address == Some(*address_id) {
                return Ok(Vec::new());
            }
            Event::CustomerDefaultAddressSet(CustomerDefaultAddressSet {
                address_id: *address_id,
            })
        }
        CustomerCommand::AddToWishlist { product_id } => {
            if profile.wishlist.contains(product_id) {
                return Ok(Vec::new());
            }
            if profile.wishlist.len() >= MAX_WISHLIST {
                return Err(CustomerError::WishlistFull);
            }
            Event::CustomerWishlistAdded(CustomerWishlistAdded {
                product_id: *product_id,
            })
        }
        CustomerCommand::RemoveFromWishlist { product_id } => {
            if !profile.wishlist.contains(product_id) {
                return Ok(Vec::new());
            }
            Event::CustomerWishlistRemoved(CustomerWishlistRemoved {
                product_id: *product_id,
            })
        }
    };
    Ok(vec![event])
}

pub fn evolve(state: Customer, event: &Event) -> Customer {
    match (state, event) {
        (Customer::Unknown, Event::CustomerCreated(created)) => {
            Customer::Existing(Box::new(CustomerProfile {
                store_id: created.store_id,
                email_digest: created.email_digest.clone(),
                contact: created.contact.clone(),
                credential_id: None,
                addresses: Vec::new(),
                default_address: None,
                wishlist: Vec::new(),
            }))
        }
        (Customer::Existing(mut profile), event) => {
            evolve_existing(&mut profile, event);
            Customer::Existing(profile)
        }
        (state, _) => state,
    }
}

fn evolve_existing(profile: &mut CustomerProfile, event: &Event) {
    match event {
        Event::CustomerUpdated(updated) => {
            if let Some(digest) = &updated.email_digest {
                profile.email_digest.clone_from(digest);
            }
            profile.contact = updated.contact.clone();
        }
        Event::CustomerAccountOpened(opened) => profile.credential_id = Some(opened.credential_id),
        Event::CustomerAddressAdded(added) => {
            profile.addresses.push(SavedAddress {
                id: added.address_id,
                sealed: added.address.clone(),
            });
            if added.default {
                profile.default_address = Some(added.address_id);
            }
        }
        Event::CustomerAddressUpdated(updated) => {
            if let Some(saved) = profile
                .addresses
                .iter_mut()
                .find(|a| a.id == updated.address_id)
            {
                saved.sealed = updated.address.clone();
            }
        }
        Event::CustomerAddressRemoved(removed) => {
            profile.addresses.retain(|a| a.id != removed.address_id);
            if profile.default_address == Some(removed.address_id) {
                profile.default_address = removed.new_default;
            }
        }
        Event::CustomerDefaultAddressSet(set) => profile.default_address = Some(set.address_id),
        Event::CustomerWishlistAdded(added) => profile.wishlist.push(added.product_id),
        Event::CustomerWishlistRemoved(removed) => {
            profile.wishlist.retain(|id| *id != removed.product_id);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

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

    /// The state after `given` events, then what `when` decides.
    fn given(events: &[Event]) -> Customer {
        events.iter().fold(Customer::Unknown, evolve)
    }

    fn created() -> Vec<Event> {
        decide(&Customer::Unknown, &create()).expect("created")
    }

    fn then(state: &Customer, when: &CustomerCommand) -> Result<Vec<Event>, CustomerError> {
        decide(state, when)
    }

    fn profile(state: &Customer) -> &CustomerProfile {
        match state {
            Customer::Existing(profile) => profile,
            Customer::Unknown => panic!("no customer"),
        }
    }

    fn add(n: u128, make_default: bool) -> CustomerCommand {
        CustomerCommand::AddAddress {
            address_id: Uuid::from_u128(n),
            address: sealed(n as u8),
            make_default,
        }
    }

    fn run(state: Customer, commands: &[CustomerCommand]) -> Customer {
        commands.iter().fold(state, |state, command| {
            let events = decide(&state, command).unwrap_or_default();
            events.iter().fold(state, evolve)
        })
    }

    #[test]
    fn a_customer_is_created_once() {
        let state = given(&created());
        assert!(matches!(&state, Customer::Existing(p) if p.email_digest == "d1"));
        assert_eq!(then(&state, &create()), Err(CustomerError::AlreadyExists));
    }

    #[test]
    fn nothing_but_creation_happens_to_an_unknown_customer() {
        assert_eq!(
            then(&Customer::Unknown, &add(1, false)),
            Err(CustomerError::Unknown)
        );
    }

    #[test]
    fn an_update_replaces_the_contact_and_maybe_the_email() {
        let updated = evolve(
            given(&created()),
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

    #[test]
    fn an_account_opens_once_with_the_credential_its_event_names() {
        let open = |n| CustomerCommand::OpenAccount {
            credential_id: Uuid::from_u128(n),
        };
        let state = run(given(&created()), &[open(7)]);
        assert_eq!(profile(&state).credential_id, Some(Uuid::from_u128(7)));
        assert_eq!(then(&state, &open(8)), Err(CustomerError::AccountExists));
    }

    #[test]
    fn the_first_address_is_the_default_and_removing_the_default_moves_it() {
        let state = run(given(&created()), &[add(1, false), add(2, false)]);
        assert_eq!(profile(&state).default_address, Some(Uuid::from_u128(1)));
        let state = run(
            state,
            &[CustomerCommand::RemoveAddress {
                address_id: Uuid::from_u128(1),
            }],
        );
        assert_eq!(profile(&state).default_address, Some(Uuid::from_u128(2)));
        let state = run(
            state,
            &[CustomerCommand::RemoveAddress {
                address_id: Uuid::from_u128(2),
            }],
        );
        assert_eq!(profile(&state).default_address, None);
        assert!(profile(&state).addresses.is_empty());
    }

    #[test]
    fn setting_the_default_again_changes_nothing_and_an_unknown_address_is_refused() {
        let state = run(given(&created()), &[add(1, false), add(2, true)]);
        assert_eq!(profile(&state).default_address, Some(Uuid::from_u128(2)));
        let again = CustomerCommand::SetDefaultAddress {
            address_id: Uuid::from_u128(2),
        };
        assert_eq!(then(&state, &again), Ok(Vec::new()));
        let unknown = CustomerCommand::UpdateAddress {
            address_id: Uuid::from_u128(9),
            address: sealed(9),
            make_default: false,
        };
        assert_eq!(then(&state, &unknown), Err(CustomerError::UnknownAddress));
    }

    #[test]
    fn addresses_and_the_wishlist_are_bounded() {
        let full: Vec<_> = (1..=MAX_ADDRESSES as u128).map(|n| add(n, false)).collect();
        let state = run(given(&created()), &full);
        assert_eq!(
            then(&state, &add(99, false)),
            Err(CustomerError::TooManyAddresses)
        );
        let wished: Vec<_> = (1..=MAX_WISHLIST as u128)
            .map(|n| CustomerCommand::AddToWishlist {
                product_id: Uuid::from_u128(n),
            })
            .collect();
        let state = run(state, &wished);
        let more = CustomerCommand::AddToWishlist {
            product_id: Uuid::from_u128(999),
        };
        assert_eq!(then(&state, &more), Err(CustomerError::WishlistFull));
        let listed = CustomerCommand::AddToWishlist {
            product_id: Uuid::from_u128(1),
        };
        assert_eq!(then(&state, &listed), Ok(Vec::new()), "already listed");
    }

    fn command() -> impl Strategy<Value = CustomerCommand> {
        let id = (1u128..6).prop_map(Uuid::from_u128);
        prop_oneof![
            (id.clone(), any::<bool>()).prop_map(|(address_id, make_default)| {
                CustomerCommand::AddAddress {
                    address_id,
                    address: sealed(1),
                    make_default,
                }
            }),
            id.clone()
                .prop_map(|address_id| CustomerCommand::RemoveAddress { address_id }),
            id.clone()
                .prop_map(|address_id| CustomerCommand::SetDefaultAddress { address_id }),
            id.clone()
                .prop_map(|product_id| CustomerCommand::AddToWishlist { product_id }),
            id.prop_map(|product_id| CustomerCommand::RemoveFromWishlist { product_id }),
        ]
    }

    proptest! {
        #[test]
        fn there_is_one_default_exactly_when_there_are_addresses(
            commands in proptest::collection::vec(command(), 0..40)
        ) {
            let state = run(given(&created()), &commands);
            let profile = profile(&state);
            match profile.default_address {
                None => prop_assert!(profile.addresses.is_empty()),
                Some(default) => prop_assert!(profile.addresses.iter().any(|a| a.id == default)),
            }
            let mut wishlist = profile.wishlist.clone();
            wishlist.sort();
            wishlist.dedup();
            prop_assert_eq!(wishlist.len(), profile.wishlist.len());
        }
    }
}
