use proptest::prelude::*;

use super::*;

fn owner() -> Uuid {
    Uuid::from_u128(7)
}

fn name(raw: &str) -> StoreName {
    StoreName::parse(raw).expect("valid name")
}

fn create(raw_name: &str, n: u32) -> StoreCommand {
    StoreCommand::Create(CreateStore {
        owner_id: owner(),
        name: name(raw_name),
        slug: Slug::candidate(&name(raw_name), n),
        niche: Some(Niche::parse("socks").expect("valid")),
        description: None,
        currency: Currency::platform_default(),
    })
}

/// Given these events, the state they fold into.
fn given(events: &[Event]) -> Store {
    events.iter().fold(Store::default(), evolve)
}

fn created(raw_name: &str) -> Vec<Event> {
    decide(&Store::Unborn, &create(raw_name, 1)).expect("creates")
}

fn with(mut events: Vec<Event>, more: Vec<Event>) -> Vec<Event> {
    events.extend(more);
    events
}

#[test]
fn given_nothing_when_creating_then_the_store_is_created_active() {
    let events = decide(&Store::Unborn, &create("Sunny Socks", 2)).expect("creates");
    assert_eq!(
        events,
        vec![Event::StoreCreated(StoreCreated {
            owner_id: owner(),
            name: "Sunny Socks".into(),
            slug: "sunny-socks-2".into(),
            niche: Some("socks".into()),
            description: None,
            currency: "USD".into(),
        })]
    );
    assert_eq!(
        given(&events).live().map(|p| p.status),
        Some(StoreStatus::Active)
    );
}

#[test]
fn given_a_store_when_creating_it_again_then_it_already_exists() {
    assert_eq!(
        decide(&given(&created("Acme")), &create("Acme", 1)),
        Err(StoreError::AlreadyExists)
    );
}

#[test]
fn given_nothing_when_creating_with_another_names_slug_then_it_is_refused() {
    let command = StoreCommand::Create(CreateStore {
        slug: Slug::candidate(&name("Other"), 1),
        ..match create("Acme", 1) {
            StoreCommand::Create(c) => c,
            _ => unreachable!(),
        }
    });
    assert_eq!(
        decide(&Store::Unborn, &command),
        Err(StoreError::SlugMismatch)
    );
}

#[test]
fn given_a_store_when_renaming_with_a_new_slug_then_both_change() {
    let update = StoreCommand::Update(UpdateStore {
        name: Some(name("Moon Socks")),
        slug: Some(Slug::candidate(&name("Moon Socks"), 1)),
        ..UpdateStore::default()
    });
    let events = decide(&given(&created("Sunny Socks")), &update).expect("updates");
    assert_eq!(
        events,
        vec![Event::StoreUpdated(StoreUpdated {
            name: Some("Moon Socks".into()),
            slug: Some("moon-socks".into()),
            ..StoreUpdated::default()
        })]
    );
}

#[test]
fn given_a_store_when_renaming_without_a_fitting_slug_then_it_is_refused() {
    let update = StoreCommand::Update(UpdateStore {
        name: Some(name("Moon Socks")),
        ..UpdateStore::default()
    });
    assert_eq!(
        decide(&given(&created("Sunny Socks")), &update),
        Err(StoreError::SlugMismatch)
    );
}

#[test]
fn given_a_store_when_renaming_to_the_same_slug_base_then_the_slug_stays() {
    let update = StoreCommand::Update(UpdateStore {
        name: Some(name("ACME")),
        ..UpdateStore::default()
    });
    let events = decide(&given(&created("Acme")), &update).expect("updates");
    assert_eq!(
        events,
        vec![Event::StoreUpdated(StoreUpdated {
            name: Some("ACME".into()),
            ..StoreUpdated::default()
        })]
    );
}

#[test]
fn given_a_store_when_clearing_its_niche_then_the_event_says_so() {
    let update = StoreCommand::Update(UpdateStore {
        niche: Change::Clear,
        ..UpdateStore::default()
    });
    let events = decide(&given(&created("Acme")), &update).expect("updates");
    assert_eq!(
        events,
        vec![Event::StoreUpdated(StoreUpdated {
            niche: Some(String::new()),
            ..StoreUpdated::default()
        })]
    );
    let after = given(&with(created("Acme"), events));
    assert_eq!(after.live().and_then(|p| p.niche.clone()), None);
}

#[test]
fn given_a_store_when_an_update_changes_nothing_then_no_event() {
    let update = StoreCommand::Update(UpdateStore {
        name: Some(name("Acme")),
        niche: Change::Set(Niche::parse("socks").expect("valid")),
        description: Change::Clear,
        ..UpdateStore::default()
    });
    assert_eq!(decide(&given(&created("Acme")), &update), Ok(vec![]));
}

#[test]
fn given_a_store_when_its_low_stock_threshold_changes_then_it_is_recorded_once() {
    let update = StoreCommand::Update(UpdateStore {
        low_stock_threshold: Some(2),
        ..UpdateStore::default()
    });
    let events = decide(&given(&created("Acme")), &update).expect("updates");
    assert_eq!(
        events,
        vec![Event::StoreLowStockThresholdChanged(
            StoreLowStockThresholdChanged { threshold: 2 }
        )]
    );
    let after = given(&with(created("Acme"), events));
    assert_eq!(after.live().map(|p| p.low_stock_threshold), Some(2));
    assert_eq!(decide(&after, &update), Ok(vec![]));
    let absurd = StoreCommand::Update(UpdateStore {
        low_stock_threshold: Some(MAX_LOW_STOCK_THRESHOLD + 1),
        ..UpdateStore::default()
    });
    assert_eq!(decide(&after, &absurd), Err(StoreError::ThresholdTooHigh));
}

#[test]
fn given_an_active_store_when_pausing_then_paused_and_pausing_again_is_refused() {
    let events = decide(&given(&created("Acme")), &StoreCommand::Pause).expect("pauses");
    assert_eq!(
        events,
        vec![Event::StorePaused(StorePaused { reason: None })]
    );
    let paused = given(&with(created("Acme"), events));
    assert_eq!(
        decide(&paused, &StoreCommand::Pause),
        Err(StoreError::AlreadyPaused)
    );
}

#[test]
fn given_a_paused_store_when_activating_then_active_and_activating_again_is_refused() {
    let paused = with(
        created("Acme"),
        vec![Event::StorePaused(StorePaused { reason: None })],
    );
    let events = decide(&given(&paused), &StoreCommand::Activate).expect("activates");
    assert_eq!(events, vec![Event::StoreActivated(StoreActivated {})]);
    assert_eq!(
        decide(&given(&with(paused, events)), &StoreCommand::Activate),
        Err(StoreError::AlreadyActive)
    );
}

#[test]
fn given_a_store_when_deleting_then_it_is_gone_for_every_command() {
    let events = decide(&given(&created("Acme")), &StoreCommand::Delete).expect("deletes");
    assert_eq!(events, vec![Event::StoreDeleted(StoreDeleted {})]);
    let deleted = given(&with(created("Acme"), events));
    for command in [
        StoreCommand::Update(UpdateStore::default()),
        StoreCommand::Pause,
        StoreCommand::Activate,
        StoreCommand::Delete,
    ] {
        assert_eq!(decide(&deleted, &command), Err(StoreError::NotFound));
    }
    assert_eq!(
        decide(&deleted, &create("Acme", 1)),
        Err(StoreError::AlreadyExists)
    );
}

#[test]
fn given_nothing_when_changing_a_store_then_it_is_not_found() {
    for command in [
        StoreCommand::Update(UpdateStore::default()),
        StoreCommand::Pause,
        StoreCommand::Activate,
        StoreCommand::Delete,
    ] {
        assert_eq!(decide(&Store::Unborn, &command), Err(StoreError::NotFound));
    }
}

fn any_name() -> impl Strategy<Value = StoreName> {
    prop_oneof![
        Just("Acme"),
        Just("ACME"),
        Just("Sunny Socks"),
        Just("Moon"),
        Just("!!!"),
        Just("Café")
    ]
    .prop_map(name)
}

fn any_command() -> impl Strategy<Value = StoreCommand> {
    prop_oneof![
        (any_name(), 1u32..4).prop_map(|(n, i)| StoreCommand::Create(CreateStore {
            owner_id: owner(),
            slug: Slug::candidate(&n, i),
            name: n,
            niche: None,
            description: None,
            currency: Currency::platform_default(),
        })),
        (
            proptest::option::of(any_name()),
            proptest::option::of(any_name()),
            1u32..4,
            prop_oneof![
                Just(Change::Keep),
                Just(Change::Clear),
                Just(Change::Set(Niche::parse("n").expect("valid")))
            ]
        )
            .prop_map(
                |(n, slug_name, i, niche)| StoreCommand::Update(UpdateStore {
                    name: n,
                    slug: slug_name.map(|s| Slug::candidate(&s, i)),
                    niche,
                    description: Change::Keep,
                    low_stock_threshold: None,
                    shipping: None,
                    taxes: None,
                })
            ),
        Just(StoreCommand::Pause),
        Just(StoreCommand::Activate),
        Just(StoreCommand::Delete),
    ]
}

proptest! {
    #[test]
    fn no_sequence_of_commands_breaks_the_invariants(commands in proptest::collection::vec(any_command(), 1..40)) {
        let mut state = Store::Unborn;
        let mut deleted = false;
        for command in &commands {
            let Ok(events) = decide(&state, command) else { continue };
            // A deleted store is final: nothing is ever decided for it again.
            prop_assert!(!deleted || events.is_empty());
            state = events.iter().fold(state, evolve);
            if let Store::Existing(profile) = &state {
                prop_assert!(Slug::from_recorded(profile.slug.clone()).belongs_to(&name(&profile.name)));
                prop_assert!(!profile.name.is_empty() && profile.name.chars().count() <= 100);
                prop_assert_eq!(profile.owner_id, owner());
                deleted = profile.status == StoreStatus::Deleted;
            }
        }
    }
}

#[test]
fn given_a_store_when_its_checkout_settings_change_then_only_changes_are_recorded() {
    use crate::checkout::{ShippingSettings, TaxRate, TaxSettings};
    let store = Store::Existing(StoreProfile {
        owner_id: Uuid::from_u128(1),
        name: "Shop".into(),
        slug: "shop".into(),
        niche: None,
        description: None,
        currency: "EUR".into(),
        status: StoreStatus::Active,
        low_stock_threshold: 5,
        shipping: ShippingSettings::default(),
        taxes: TaxSettings::default(),
    });
    let shipping = ShippingSettings {
        flat_rate: 495,
        free_above: Some(5000),
    };
    let taxes = TaxSettings {
        prices_include_tax: true,
        rates: vec![TaxRate {
            country: "DE".into(),
            region: None,
            basis_points: 1900,
        }],
    };
    let update = StoreCommand::Update(UpdateStore {
        shipping: Some(shipping.clone()),
        taxes: Some(taxes.clone()),
        ..UpdateStore::default()
    });
    let events = decide(&store, &update).expect("accepted");
    assert_eq!(events.len(), 2);
    let after = events.iter().fold(store, evolve);
    let profile = after.live().expect("live");
    assert_eq!((&profile.shipping, &profile.taxes), (&shipping, &taxes));
    assert_eq!(
        decide(&after, &update),
        Ok(vec![]),
        "the same settings change nothing"
    );
}
